//! The datapath with in-process ring ports: learning, flooding, unicast,
//! same-port drops and snapshot swaps, on a real PMD thread.

use super::snapshot::{RxqAssign, Snapshot, SwitchPort};
use super::stats::DpDrop;
use super::Datapath;
use crate::fdb::Fdb;
use crate::flow::syntax::{parse_rule, PortNames};
use crate::flow::table::FlowTable;
use crate::flow::vlan::{PortVlan, VlanMode};
use pmd::ring::RingPort;
use pmd::{Batch, Pool, PoolCache, Port};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Rig {
    dp: Datapath,
    fdb: Arc<Fdb>,
    cache: PoolCache,
    /// Our ends of each switch port: (switch side, test side).
    ends: Vec<(Arc<RingPort>, Arc<RingPort>)>,
    /// Rules of the last `publish_with` (their counters live here).
    table: FlowTable,
    snap: Option<Arc<Snapshot>>,
}

struct RigNames;
impl PortNames for RigNames {
    fn number(&self, n: &str) -> Option<u16> {
        n.strip_prefix('r')?.parse::<u16>().ok().map(|i| i + 1)
    }
    fn name(&self, no: u16) -> Option<String> {
        Some(format!("r{}", no - 1))
    }
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
        let dp = Datapath::start(&[core], fdb.clone(), pool.clone(), 50, 1000).unwrap();
        let ends = (0..n_ports).map(|_| RingPort::pair(256)).collect();
        let mut r = Rig {
            dp,
            fdb,
            cache: PoolCache::new(pool),
            ends,
            table: FlowTable::new(1),
            snap: None,
        };
        r.publish(&(0..n_ports).collect::<Vec<_>>());
        r
    }

    /// As `publish`, with VLAN options (by index) and rules (ports named
    /// `r<index>` in the flow syntax).
    fn publish_with(&mut self, which: &[usize], vlans: &[(usize, PortVlan)], flows: &[&str]) {
        let ports = which
            .iter()
            .map(|&i| {
                let p: Arc<dyn Port> = self.ends[i].0.clone();
                Arc::new(SwitchPort::new(i as u16 + 1, format!("r{i}"), p))
            })
            .collect();
        let mut table = FlowTable::empty(1);
        for f in flows {
            table.add(parse_rule(f, &RigNames).unwrap()).unwrap();
        }
        self.table = table;
        let by_no: HashMap<u16, PortVlan> = vlans
            .iter()
            .map(|(i, v)| (*i as u16 + 1, v.clone()))
            .collect();
        let cores = self.dp.cores();
        let snap = Snapshot::build(ports, &cores, RxqAssign::RoundRobin)
            .with_flows(Arc::new(self.table.compile()))
            .with_vlans(&by_no);
        self.snap = Some(self.dp.publish(snap));
    }

    /// Switch drops counted on the port at `index` for `reason`.
    fn port_drops(&self, index: usize, reason: DpDrop) -> u64 {
        let snap = self.snap.as_ref().expect("published with publish_with");
        let sp = snap
            .ports
            .iter()
            .find(|p| p.no == index as u16 + 1)
            .unwrap();
        sp.drops.get(reason)
    }

    /// Makes the listed ports (by index) the switch's ports; port number = index + 1.
    fn publish(&mut self, which: &[usize]) {
        self.publish_with(which, &[], &["priority=0,actions=normal"]);
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

fn tagged(dst: [u8; 6], src: [u8; 6], tci: u16) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(68, 0xaa);
    f
}

fn tci_of(f: &[u8]) -> Option<u16> {
    (f[12..14] == [0x81, 0x00]).then(|| u16::from_be_bytes([f[14], f[15]]))
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn access(tag: u16) -> PortVlan {
    PortVlan::new(Some(tag), None, None).unwrap()
}

#[test]
fn vlans_isolate_tag_and_untag() {
    let mut r = Rig::new(4);
    let trunk = PortVlan::new(None, Some("10,20"), Some(VlanMode::Trunk)).unwrap();
    r.publish_with(
        &[0, 1, 2, 3],
        &[
            (0, access(10)),
            (1, access(10)),
            (2, access(20)),
            (3, trunk),
        ],
        &["priority=0,actions=normal"],
    );
    // Untagged broadcast on access 10: the other VLAN-10 access port untagged,
    // the trunk tagged 10, never VLAN 20.
    r.send(0, &[frame([0xff; 6], mac(1))]);
    let a = r.recv(1, 1);
    assert_eq!(a.len(), 1);
    assert_eq!(tci_of(&a[0]), None);
    let t = r.recv(3, 1);
    assert_eq!(t.len(), 1);
    assert_eq!(tci_of(&t[0]), Some(10));
    assert_eq!(r.recv(2, 0).len(), 0, "VLAN 20 sees nothing of VLAN 10");
    // The VLAN-20 access port sends frames tagged 10: dropped and counted.
    r.send(2, &vec![tagged([0xff; 6], mac(3), 10); 3]);
    wait_for("vlan drops", || r.port_drops(2, DpDrop::Vlan) == 3);
    assert_eq!(
        r.recv(0, 0).len() + r.recv(1, 0).len() + r.recv(3, 0).len(),
        0
    );
    // Trunk frames of VLAN 20 (PCP 5) reach the access-20 port untagged.
    r.send(3, &[tagged([0xff; 6], mac(4), 0xa000 | 20)]);
    let u = r.recv(2, 1);
    assert_eq!(u.len(), 1);
    assert_eq!(tci_of(&u[0]), None);
    assert_eq!(r.recv(0, 0).len() + r.recv(1, 0).len(), 0);
    // Learned in VLAN 20 only: unicast back from the access port to mac(4)
    // leaves the trunk tagged 20.
    r.send(2, &[frame(mac(4), mac(3))]);
    let b = r.recv(3, 1);
    assert_eq!(b.len(), 1);
    assert_eq!(tci_of(&b[0]), Some(20));
    assert_eq!(r.fdb.lookup(20, &mac(4)), Some(4));
    assert_eq!(r.fdb.lookup(10, &mac(4)), None);
    // VLAN 30 is not trunked: dropped.
    r.send(3, &[tagged([0xff; 6], mac(4), 30)]);
    wait_for("vlan drop on the trunk", || {
        r.port_drops(3, DpDrop::Vlan) == 1
    });
}

#[test]
fn rules_steer_drop_rewrite_and_chain_tables() {
    let mut r = Rig::new(3);
    r.publish_with(
        &[0, 1, 2],
        &[],
        &[
            "priority=0,actions=normal",
            "priority=100,in_port=r0,dl_dst=02:00:00:00:00:09,actions=drop",
            "priority=90,in_port=r0,dl_dst=02:00:00:00:00:08,actions=mod_vlan_vid:7,output:r2",
            "priority=90,in_port=r0,dl_dst=02:00:00:00:00:07,actions=goto_table:1",
            "table=1,priority=5,actions=mod_dl_src:02:00:00:00:00:55,output:r1,strip_vlan,output:r2",
            "priority=90,in_port=r0,dl_dst=02:00:00:00:00:06,actions=resubmit(,3),output:r2",
            "priority=90,in_port=r0,dl_dst=02:00:00:00:00:05,actions=resubmit(,2),output:r1",
            "table=2,priority=1,actions=mod_vlan_vid:30",
            "priority=90,in_port=r0,dl_dst=02:00:00:00:00:04,actions=resubmit(,3)",
        ],
    );
    // ACL drop, counted on the input port and on the rule.
    r.send(0, &vec![frame(mac(9), mac(1)); 4]);
    wait_for("acl drops", || r.port_drops(0, DpDrop::Acl) == 4);
    assert_eq!(r.recv(1, 0).len() + r.recv(2, 0).len(), 0);
    // Steering with a pushed tag.
    r.send(0, &[frame(mac(8), mac(1))]);
    let s = r.recv(2, 1);
    assert_eq!(s.len(), 1);
    assert_eq!(tci_of(&s[0]), Some(7));
    assert_eq!(r.recv(1, 0).len(), 0);
    // goto_table: a copy to r1 with the new source, then untagged to r2.
    r.send(0, &[tagged(mac(7), mac(1), 3)]);
    let c1 = r.recv(1, 1);
    let c2 = r.recv(2, 1);
    assert_eq!((c1.len(), c2.len()), (1, 1));
    assert_eq!(&c1[0][6..12], &[2, 0, 0, 0, 0, 0x55]);
    assert_eq!(tci_of(&c1[0]), Some(3));
    assert_eq!(tci_of(&c2[0]), None);
    // resubmit into an empty table does nothing; the packet goes on (OVS).
    r.send(0, &[frame(mac(6), mac(1))]);
    assert_eq!(r.recv(2, 1).len(), 1);
    // What a resubmitted table edits, the caller's later actions see.
    r.send(0, &[frame(mac(5), mac(1))]);
    let e = r.recv(1, 1);
    assert_eq!(e.len(), 1);
    assert_eq!(tci_of(&e[0]), Some(30));
    // A packet whose actions end in a table miss and no output: no_match.
    r.send(0, &[frame(mac(4), mac(1))]);
    wait_for("no_match", || r.port_drops(0, DpDrop::NoMatch) == 1);
    let counts: Vec<u64> = r
        .table
        .entries()
        .iter()
        .map(|e| e.stats.total().0)
        .collect();
    assert_eq!(counts, vec![0, 4, 1, 1, 1, 1, 1, 1, 1]);
}

#[test]
fn a_rule_change_takes_effect_from_the_next_burst() {
    let mut r = Rig::new(2);
    let base = [
        "priority=0,actions=normal",
        "priority=10,udp,actions=output:r1",
    ];
    r.publish_with(&[0, 1], &[], &base);
    let mut udp = frame(mac(2), mac(1));
    udp[14] = 0x45;
    udp[23] = 17;
    r.send(0, &vec![udp.clone(); 8]);
    assert_eq!(r.recv(1, 8).len(), 8);
    let hits = r.dp.pmds[0]
        .cache_hits
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        hits >= 7,
        "a burst of one flow hits the cache after its first packet ({hits})"
    );
    // Same flow, now dropped: the cached answer must not survive the change.
    r.publish_with(
        &[0, 1],
        &[],
        &["priority=0,actions=normal", "priority=20,udp,actions=drop"],
    );
    r.send(0, &vec![udp.clone(); 8]);
    wait_for("acl drops after the change", || {
        r.port_drops(0, DpDrop::Acl) == 8
    });
    assert_eq!(r.recv(1, 0).len(), 0);
    // And back.
    r.publish_with(&[0, 1], &[], &base);
    r.send(0, &[udp]);
    assert_eq!(r.recv(1, 1).len(), 1);
    // A table with no rules drops every packet as no_match.
    r.publish_with(&[0, 1], &[], &[]);
    r.send(0, &[frame(mac(2), mac(1))]);
    wait_for("no_match", || r.port_drops(0, DpDrop::NoMatch) == 1);
}

/// A ring port that watches its rx_burst: it can hold its PMD inside (as a
/// slow driver call would: `stall`), and counts calls entered while
/// another was still inside (two PMDs polling one ring), staying inside
/// `linger` to make that likely.
struct ProbePort {
    inner: Arc<RingPort>,
    stall: std::sync::Mutex<bool>,
    wake: std::sync::Condvar,
    /// Set once a PMD waited on `stall`.
    stalled: std::sync::atomic::AtomicBool,
    busy: std::sync::atomic::AtomicBool,
    overlaps: std::sync::atomic::AtomicU64,
    linger: Duration,
}

impl ProbePort {
    fn new(inner: Arc<RingPort>, stall: bool, linger: Duration) -> ProbePort {
        ProbePort {
            inner,
            stall: std::sync::Mutex::new(stall),
            wake: std::sync::Condvar::new(),
            stalled: Default::default(),
            busy: Default::default(),
            overlaps: Default::default(),
            linger,
        }
    }
}

impl Port for ProbePort {
    fn kind(&self) -> &'static str {
        "probe"
    }
    fn n_rxq(&self) -> usize {
        1
    }
    fn n_txq(&self) -> usize {
        self.inner.n_txq()
    }
    fn rx_burst(&self, qid: usize, cache: &mut PoolCache, out: &mut Batch) -> usize {
        use std::sync::atomic::Ordering::SeqCst;
        {
            let mut stall = self.stall.lock().unwrap();
            while *stall {
                self.stalled.store(true, SeqCst);
                stall = self.wake.wait(stall).unwrap();
            }
        }
        if self.busy.swap(true, SeqCst) {
            self.overlaps.fetch_add(1, SeqCst);
        }
        let t = Instant::now();
        while t.elapsed() < self.linger {
            std::hint::spin_loop();
        }
        let n = self.inner.rx_burst(qid, cache, out);
        self.busy.store(false, SeqCst);
        n
    }
    fn tx_burst(&self, qid: usize, cache: &mut PoolCache, pkts: &mut Batch) -> usize {
        self.inner.tx_burst(qid, cache, pkts)
    }
    fn rxq_stats(&self, q: usize) -> &pmd::QueueStats {
        self.inner.rxq_stats(q)
    }
    fn txq_stats(&self, q: usize) -> &pmd::QueueStats {
        self.inner.txq_stats(q)
    }
    fn link_up(&self) -> bool {
        true
    }
    fn info(&self) -> pmd::port::PortInfo {
        Vec::new()
    }
}

/// Issue 12, "RCU grace period gives up": a removed port must not be freed
/// while a PMD is still inside it, however long that PMD takes. `publish`
/// used to stop waiting after 2 s.
#[test]
fn publish_waits_for_a_late_pmd_however_long() {
    use std::sync::atomic::Ordering::SeqCst;
    let r = Rig::new(1);
    let (a, _b) = RingPort::pair(16);
    let port = Arc::new(ProbePort::new(a, true, Duration::ZERO));
    let sp = Arc::new(SwitchPort::new(
        9,
        "stall".into(),
        port.clone() as Arc<dyn Port>,
    ));
    let cores = r.dp.cores();
    r.dp.publish(Snapshot::build(vec![sp], &cores, RxqAssign::RoundRobin));
    wait_for("the PMD inside the port", || port.stalled.load(SeqCst));
    // Remove the port while the PMD is inside it.
    let snap = Snapshot::build(Vec::new(), &cores, RxqAssign::RoundRobin);
    let dp = &r.dp;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            dp.publish(snap);
            done.store(true, SeqCst);
        });
        std::thread::sleep(Duration::from_millis(3000));
        assert!(
            !done.load(SeqCst),
            "publish returned while a PMD was still inside the removed port"
        );
        *port.stall.lock().unwrap() = false;
        port.wake.notify_all();
    });
    assert!(done.load(SeqCst));
}

/// The one packet the PMDs copied for the controllers (waits up to 2 s).
fn one_copy_for_the_controller(r: &Rig) -> super::controller::ToController {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.is_empty() && Instant::now() < deadline {
        r.dp.drain_to_controller(|p| got.push(p));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(got.len(), 1);
    got.pop().unwrap()
}

/// `controller` copies the packet (as edited so far) for the agent with the
/// rule's table and cookie and goes on; a packet-out runs its actions as if
/// received on its in_port, or from no port.
#[test]
fn controller_copies_and_packet_outs_run_through_the_pipeline() {
    use super::controller::{FromController, Reason};
    use crate::flow::rule::Action;
    let mut r = Rig::new(3);
    r.publish_with(
        &[0, 1, 2],
        &[],
        &[
            "table=0,priority=10,in_port=r0,actions=mod_vlan_vid:100,goto_table:1",
            "table=1,cookie=0x5adc,priority=5,actions=controller:96,strip_vlan,output:r1",
            "table=0,priority=0,actions=controller",
        ],
    );
    let mut f = frame([0xff; 6], mac(1));
    f.resize(200, 0xbb);
    r.send(0, &[f.clone()]);
    assert_eq!(r.recv(1, 1), vec![f.clone()], "forwarded untagged");
    let p = one_copy_for_the_controller(&r);
    assert_eq!(
        (p.in_port, p.table, p.cookie, p.reason, p.max_len),
        (1, 1, 0x5adc, Reason::Action, 96)
    );
    assert_eq!(
        &p.m.data()[12..16],
        &[0x81, 0x00, 0x00, 100],
        "the copy carries the tag table 0 pushed"
    );
    r.cache.free(p.m);

    // The table-miss entry's copies say NO_MATCH.
    r.send(2, &[f.clone()]);
    let p = one_copy_for_the_controller(&r);
    assert_eq!((p.in_port, p.table, p.reason), (3, 0, Reason::NoMatch));
    r.cache.free(p.m);

    // From the controller: out of r2 directly, then through the table as if from r0.
    for (in_port, actions, out) in [
        (None, vec![Action::Output(3)], 2),
        (Some(1), vec![Action::Resubmit(0)], 1),
    ] {
        let mut m = r.cache.alloc().unwrap();
        m.fill(&f);
        assert!(r
            .dp
            .packet_out(FromController {
                m,
                in_port,
                actions
            })
            .is_ok());
        assert_eq!(r.recv(out, 1).len(), 1, "packet-out to port index {out}");
    }
    // Normal and in_port from no port neither panic nor learn.
    for actions in [vec![Action::Normal], vec![Action::InPort]] {
        let mut m = r.cache.alloc().unwrap();
        m.fill(&frame([0xff; 6], mac(9)));
        assert!(r
            .dp
            .packet_out(FromController {
                m,
                in_port: None,
                actions
            })
            .is_ok());
    }
    assert_eq!(
        r.recv(0, 1).len(),
        1,
        "normal floods a controller's broadcast"
    );
    assert_eq!(r.fdb.lookup(0, &mac(9)), None);
}

/// Issue 14 (auto-lb): a queue that moves to another PMD while packets
/// flow is never polled by two PMDs at once and loses nothing.
#[test]
fn queues_move_between_pmds_under_traffic_without_loss_or_overlap() {
    use std::sync::atomic::Ordering::SeqCst;
    let pool = Pool::new(4096, false).unwrap();
    let fdb = Arc::new(Fdb::new(1024, 300));
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let cores = [cpus[0], *cpus.last().unwrap()];
    let dp = Datapath::start(&cores, fdb, pool.clone(), 0, 0).unwrap();
    let (a_sw, a_test) = RingPort::pair(1024);
    let (b_sw, b_test) = RingPort::pair(1024);
    let a = Arc::new(ProbePort::new(a_sw, false, Duration::from_micros(20)));
    // The same drivers, their queue pinned to one PMD or the other.
    let snap_on = |pmd: usize| {
        let mut pa = SwitchPort::new(1, "a".into(), a.clone() as Arc<dyn Port>);
        pa.rxq_affinity[0] = Some(cores[pmd]);
        let mut pb = SwitchPort::new(2, "b".into(), b_sw.clone() as Arc<dyn Port>);
        pb.rxq_affinity[0] = Some(cores[1 - pmd]);
        let flows = "in_port=1,actions=output:2";
        let mut t = FlowTable::empty(1);
        t.add(parse_rule(flows, &RigNames).unwrap()).unwrap();
        Snapshot::build(vec![Arc::new(pa), Arc::new(pb)], &cores, RxqAssign::Cycles)
            .with_flows(Arc::new(t.compile()))
    };
    dp.publish(snap_on(0));
    const N: usize = 40_000;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let got = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut cache = PoolCache::new(pool.clone());
            let f = frame(mac(2), mac(1));
            let mut sent = 0;
            while sent < N {
                let mut b = Batch::new();
                while b.len() < 8 && sent + b.len() < N {
                    let Some(mut m) = cache.alloc() else { break };
                    m.fill(&f);
                    b.push(m).unwrap();
                }
                let n = b.len();
                let taken = a_test.tx_burst(0, &mut cache, &mut b);
                cache.free_batch(&mut b);
                sent += taken.min(n);
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        let receiver = s.spawn(|| {
            let mut cache = PoolCache::new(pool.clone());
            let mut got = 0;
            let mut last = Instant::now();
            // Until all came, or nothing more for 1 s after the sender ended.
            while got < N && !(stop.load(SeqCst) && last.elapsed() > Duration::from_secs(1)) {
                let mut b = Batch::new();
                let n = b_test.rx_burst(0, &mut cache, &mut b);
                if n > 0 {
                    got += n;
                    last = Instant::now();
                }
                cache.free_batch(&mut b);
            }
            got
        });
        let mut moves = 0;
        while !sender.is_finished() {
            moves += 1;
            dp.publish(snap_on(moves % 2));
        }
        sender.join().unwrap();
        assert!(moves > 20, "only {moves} moves while the traffic ran");
        stop.store(true, SeqCst);
        receiver.join().unwrap()
    });
    assert_eq!(
        a.overlaps.load(SeqCst),
        0,
        "two PMDs polled one queue at once"
    );
    assert_eq!(got, N, "frames lost while the queue moved");
}

mod tunnels;
