//! The datapath with in-process ring ports: learning, flooding, unicast,
//! same-port drops and snapshot swaps, on a real PMD thread.

use super::snapshot::{RxqAssign, Snapshot, SwitchPort};
use super::Datapath;
use crate::fdb::Fdb;
use pmd::ring::RingPort;
use pmd::{Batch, Pool, PoolCache, Port};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Rig {
    dp: Datapath,
    fdb: Arc<Fdb>,
    cache: PoolCache,
    /// Our ends of each switch port: (switch side, test side).
    ends: Vec<(Arc<RingPort>, Arc<RingPort>)>,
    generation: u64,
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(64, 0xaa);
    f
}

impl Rig {
    fn new(n_ports: usize) -> Rig {
        let pool = Pool::new(4096, false).unwrap();
        let fdb = Arc::new(Fdb::new(1024, 300));
        let core = core_affinity::get_core_ids().unwrap()[0].id;
        let dp = Datapath::start(&[core], fdb.clone(), pool.clone(), 50).unwrap();
        let ends = (0..n_ports).map(|_| RingPort::pair(256)).collect();
        let mut r = Rig {
            dp,
            fdb,
            cache: PoolCache::new(pool),
            ends,
            generation: 0,
        };
        r.publish(&(0..n_ports).collect::<Vec<_>>());
        r
    }

    /// Makes the listed ports (by index) the switch's ports; port number = index + 1.
    fn publish(&mut self, which: &[usize]) {
        self.generation += 1;
        let ports = which
            .iter()
            .map(|&i| {
                let p: Arc<dyn Port> = self.ends[i].0.clone();
                Arc::new(SwitchPort::new(i as u16 + 1, format!("r{i}"), p, None))
            })
            .collect();
        let cores = self.dp.cores();
        self.dp.publish(Snapshot::build(
            self.generation,
            ports,
            &cores,
            RxqAssign::RoundRobin,
        ));
    }

    fn send(&mut self, port: usize, frames: &[Vec<u8>]) {
        let mut b = Batch::new();
        for f in frames {
            let mut m = self.cache.alloc().unwrap();
            m.fill(f);
            b.push(m).unwrap();
        }
        self.ends[port].1.tx_burst(0, &mut self.cache, &mut b);
    }

    /// Frames that came out of `port` within a short wait.
    fn recv(&mut self, port: usize, expect: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let wait = if expect == 0 {
            Duration::from_millis(150)
        } else {
            Duration::from_secs(2)
        };
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let mut b = Batch::new();
            self.ends[port].1.rx_burst(0, &mut self.cache, &mut b);
            for m in b.iter() {
                got.push(m.data().to_vec());
            }
            self.cache.free_batch(&mut b);
            if got.len() >= expect {
                // Give stragglers a moment, then stop.
                std::thread::sleep(Duration::from_millis(20));
                if expect > 0 {
                    let mut b = Batch::new();
                    self.ends[port].1.rx_burst(0, &mut self.cache, &mut b);
                    for m in b.iter() {
                        got.push(m.data().to_vec());
                    }
                    self.cache.free_batch(&mut b);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }
}

#[test]
fn learns_floods_and_forwards_unicast() {
    let mut r = Rig::new(3);
    // Unknown destination: flooded to every port but the in-port.
    r.send(0, &[frame(mac(2), mac(1))]);
    assert_eq!(r.recv(1, 1).len(), 1);
    assert_eq!(r.recv(2, 1).len(), 1);
    assert_eq!(r.recv(0, 0).len(), 0, "never back out of the in-port");
    assert_eq!(r.fdb.lookup(0, &mac(1)), Some(1));
    // Port 1 answers: now both are known and unicast goes only where it should.
    r.send(1, &[frame(mac(1), mac(2))]);
    assert_eq!(r.recv(0, 1).len(), 1);
    assert_eq!(r.recv(2, 0).len(), 0, "learned unicast is not flooded");
    r.send(0, &vec![frame(mac(2), mac(1)); 20]);
    assert_eq!(r.recv(1, 20).len(), 20);
    assert_eq!(r.recv(2, 0).len(), 0);
    // Broadcast reaches every port but the in-port.
    r.send(2, &[frame([0xff; 6], mac(3))]);
    assert_eq!(r.recv(0, 1).len(), 1);
    assert_eq!(r.recv(1, 1).len(), 1);
    assert_eq!(r.recv(2, 0).len(), 0);
}

#[test]
fn moved_mac_follows_and_same_port_is_dropped() {
    let mut r = Rig::new(3);
    r.send(0, &[frame([0xff; 6], mac(1))]);
    r.recv(1, 1);
    r.recv(2, 1);
    r.send(1, &[frame([0xff; 6], mac(1))]);
    r.recv(0, 1);
    r.recv(2, 1);
    let deadline = Instant::now() + Duration::from_secs(2);
    while r.fdb.lookup(0, &mac(1)) != Some(2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(r.fdb.lookup(0, &mac(1)), Some(2), "MAC moved to port 2");
    // A frame to mac(1) arriving on the port mac(1) lives on is dropped.
    r.send(1, &[frame(mac(1), mac(7))]);
    assert_eq!(r.recv(0, 0).len() + r.recv(2, 0).len(), 0);
    let drops = r.dp.pmds[0].read().drops;
    assert_eq!(drops.iter().find(|d| d.0 == "same_port").unwrap().1, 1);
}

#[test]
fn runt_frames_are_counted() {
    let mut r = Rig::new(2);
    r.send(0, &[vec![1, 2, 3]]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while r.dp.pmds[0]
        .read()
        .drops
        .iter()
        .find(|d| d.0 == "runt")
        .unwrap()
        .1
        == 0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        r.dp.pmds[0]
            .read()
            .drops
            .iter()
            .find(|d| d.0 == "runt")
            .unwrap()
            .1,
        1
    );
}

#[test]
fn removed_port_gets_nothing_and_others_keep_forwarding() {
    let mut r = Rig::new(3);
    r.send(0, &[frame([0xff; 6], mac(1))]);
    r.recv(1, 1);
    r.recv(2, 1);
    r.publish(&[0, 1]);
    r.send(0, &[frame([0xff; 6], mac(1))]);
    assert_eq!(r.recv(1, 1).len(), 1);
    assert_eq!(r.recv(2, 0).len(), 0, "port 3 is gone from the snapshot");
}

#[test]
fn a_burst_keeps_its_order() {
    let mut r = Rig::new(2);
    let frames: Vec<Vec<u8>> = (0..30u8)
        .map(|i| {
            let mut f = frame(mac(2), mac(1));
            f[20] = i;
            f
        })
        .collect();
    r.send(0, &frames);
    let got = r.recv(1, 30);
    assert_eq!(
        got.iter().map(|f| f[20]).collect::<Vec<_>>(),
        (0..30).collect::<Vec<u8>>()
    );
}
