//! A forwarding stream, as in DPDK's testpmd: one receive queue, one
//! transmit queue, and what the engine needs to work on them.

use crate::frame::{self, Check};
use crate::latency::Histogram;
use pmd::port::bump;
use pmd::{Batch, PoolCache, Port};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Per-stream results the main thread reads while the run goes on.
#[derive(Default)]
pub struct StreamCounters {
    pub generated: AtomicU64,
    pub checked_good: AtomicU64,
    pub checked_bad: AtomicU64,
    pub foreign: AtomicU64,
    /// The stream's packet budget is spent (generators with --nb-pkts).
    pub done: AtomicBool,
    /// vtep: ARP requests answered, VXLAN frames reflected, other frames freed.
    pub vtep_arp_replies: AtomicU64,
    pub vtep_reflected: AtomicU64,
    pub vtep_other: AtomicU64,
}

/// Received frames per VLAN (index: VID, or `frame::UNTAGGED`). A plain
/// array owned by the stream's core, so counting is one add per frame; it
/// is read once the core has stopped.
pub struct VlanCounts(Box<[u64; frame::VLAN_SLOTS]>);

impl Default for VlanCounts {
    fn default() -> Self {
        VlanCounts(Box::new([0; frame::VLAN_SLOTS]))
    }
}

impl VlanCounts {
    #[inline]
    pub fn count(&mut self, frame: &[u8]) {
        self.0[frame::vlan_slot(frame)] += 1;
    }

    pub fn add(&mut self, other: &VlanCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// (VID or None for untagged, frames) of every VLAN seen: untagged
    /// first, then VIDs in order.
    pub fn seen(&self) -> impl Iterator<Item = (Option<u16>, u64)> + '_ {
        std::iter::once(frame::UNTAGGED)
            .chain(0..frame::UNTAGGED)
            .filter(|&i| self.0[i] > 0)
            .map(|i| ((i != frame::UNTAGGED).then_some(i as u16), self.0[i]))
    }
}

/// Paces a generator at `pps`, in bursts (a token bucket on the clock).
pub struct Pacer {
    per_ns: f64,
    tokens: f64,
    cap: f64,
    last: u64,
}

impl Pacer {
    pub fn new(pps: f64, burst: usize) -> Pacer {
        Pacer {
            per_ns: pps / 1e9,
            tokens: 0.0,
            cap: (burst * 4) as f64,
            last: frame::now_ns(),
        }
    }

    #[inline]
    pub fn quota(&mut self, want: usize, now: u64) -> usize {
        self.tokens = (self.tokens + (now - self.last) as f64 * self.per_ns).min(self.cap);
        self.last = now;
        let n = (self.tokens as usize).min(want);
        self.tokens -= n as f64;
        n
    }
}

pub struct Stream {
    /// Index of the receiving port (per-port results are summed by it).
    pub rx_port: usize,
    pub rx: Arc<dyn Port>,
    pub rxq: usize,
    pub tx: Arc<dyn Port>,
    pub txq: usize,
    /// MAC of the transmitting port, and the destination for its frames.
    pub tx_mac: [u8; 6],
    pub peer_mac: [u8; 6],
    pub batch: Batch,
    pub burst: usize,
    pub counters: Arc<StreamCounters>,
    pub latency: Histogram,
    /// Generators: packets still to send (None: unlimited).
    pub budget: Option<u64>,
    pub pacer: Option<Pacer>,
    /// Every received frame, by VLAN (whatever the engine does with it).
    pub vlans: VlanCounts,
}

impl Stream {
    /// A stream that receives on `port` and sends back out of it as
    /// `tx_mac` (unit tests of engines over ring ports).
    #[cfg(test)]
    pub fn looped(port: usize, p: &Arc<dyn Port>, tx_mac: [u8; 6]) -> Stream {
        Stream {
            rx_port: port,
            rx: Arc::clone(p),
            rxq: 0,
            tx: Arc::clone(p),
            txq: 0,
            tx_mac,
            peer_mac: [0; 6],
            batch: Batch::new(),
            burst: 32,
            counters: Arc::default(),
            latency: Histogram::default(),
            budget: None,
            pacer: None,
            vlans: VlanCounts::default(),
        }
    }

    /// Receives a burst into `self.batch`, counting it by VLAN.
    #[inline]
    pub fn receive(&mut self, cache: &mut PoolCache) -> usize {
        let before = self.batch.len();
        let n = self.rx.rx_burst(self.rxq, cache, &mut self.batch);
        for m in self.batch.iter().skip(before) {
            self.vlans.count(m.data());
        }
        n
    }

    /// Transmits `self.batch` (the port frees what it cannot send).
    #[inline]
    pub fn send(&mut self, cache: &mut PoolCache) -> usize {
        self.tx.tx_burst(self.txq, cache, &mut self.batch)
    }

    /// Checks the payload of every received frame, records latency of
    /// stamped ones, then frees the batch.
    pub fn inspect_and_free(&mut self, cache: &mut PoolCache) {
        if self.batch.is_empty() {
            return;
        }
        let now = frame::now_ns();
        let (mut good, mut bad, mut foreign) = (0, 0, 0);
        for m in self.batch.iter() {
            match frame::check(m.data()) {
                Check::Good { sent_ns } => {
                    good += 1;
                    if sent_ns != 0 && now >= sent_ns {
                        self.latency.record(now - sent_ns);
                    }
                }
                Check::Bad => bad += 1,
                Check::Foreign => foreign += 1,
            }
        }
        bump(&self.counters.checked_good, good);
        bump(&self.counters.checked_bad, bad);
        bump(&self.counters.foreign, foreign);
        cache.free_batch(&mut self.batch);
    }

    /// How many frames a generator may build now (budget and pace).
    #[inline]
    pub fn tx_quota(&mut self, now: u64) -> usize {
        let mut n = self.burst;
        if let Some(b) = self.budget {
            if b == 0 {
                self.counters.done.store(true, Ordering::Relaxed);
                return 0;
            }
            n = n.min(b as usize);
        }
        if let Some(p) = &mut self.pacer {
            n = p.quota(n, now);
        }
        n
    }

    /// Books `n` generated frames against the budget.
    #[inline]
    pub fn spent(&mut self, n: usize) {
        if let Some(b) = &mut self.budget {
            *b -= n as u64;
        }
        bump(&self.counters.generated, n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameSpec, Generator, UNTAGGED};
    use crate::ports::Ports;

    #[test]
    fn vlan_counts_add_up_untagged_first() {
        let mut a = VlanCounts::default();
        let tagged = |vid: u16| {
            let mut f = vec![0u8; 64];
            f[12..16].copy_from_slice(&[0x81, 0x00, 0xa0 | (vid >> 8) as u8, vid as u8]);
            f
        };
        a.count(&tagged(4095));
        a.count(&tagged(20));
        a.count(&[0u8; 60]);
        let mut b = VlanCounts::default();
        b.count(&tagged(20));
        b.count(&tagged(0));
        b.add(&a);
        let seen: Vec<_> = b.seen().collect();
        assert_eq!(
            seen,
            [(None, 1), (Some(0), 1), (Some(20), 2), (Some(4095), 1)]
        );
        assert_eq!(a.0[UNTAGGED], 1);
    }

    #[test]
    fn every_received_frame_is_counted_by_vlan() {
        let pool = pmd::Pool::new(256, false).unwrap();
        let specs = ["ring".to_string(), "ring".to_string()];
        let ports = Ports::open(&specs, &pool, "").unwrap();
        let mut cache = PoolCache::new(Arc::clone(&pool));
        let mut spec = FrameSpec::plain(64, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        spec.flows = 3;
        spec.vlans = vec![Some(10), None, Some(20)];
        let mut g = Generator::new(spec, 1, false);
        let mut b = Batch::new();
        for flow in 0..7 {
            let mut m = cache.alloc().unwrap();
            g.fill(&mut m, flow, false, 0);
            b.push(m).unwrap();
        }
        ports.list[0].port.tx_burst(0, &mut cache, &mut b);
        let mut s = Stream::looped(1, &ports.list[1].port, [0; 6]);
        assert_eq!(s.receive(&mut cache), 7);
        s.inspect_and_free(&mut cache);
        let seen: Vec<_> = s.vlans.seen().collect();
        assert_eq!(seen, [(None, 2), (Some(10), 3), (Some(20), 2)]);
        assert_eq!(s.counters.checked_good.load(Ordering::Relaxed), 7);
        drop(s);
        drop(cache);
        ports.close(&pool);
    }
}
