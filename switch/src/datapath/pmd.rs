//! One PMD thread: poll the rx queues of its list, switch each batch through
//! the FDB, buffer per output port, flush, count, and back off when idle.
//! No syscall, allocation, lock or log line per packet.

use super::classify::L2Key;
use super::snapshot::Snapshot;
use super::stats::{DpDrop, PmdStats};
use super::Shared;
use crate::fdb::Fdb;
use pmd::port::bump;
use pmd::{Batch, PoolCache};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::time::Duration;

type VlanMac = (u16, [u8; 6]);

/// Consecutive empty iterations before the thread starts to sleep.
const IDLE_SPINS_BEFORE_SLEEP: u32 = 256;

#[inline]
fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

pub(super) struct Pmd {
    shared: Arc<Shared>,
    snap: Arc<Snapshot>,
    work: Work,
}

/// Everything a PMD mutates while it reads the snapshot.
struct Work {
    index: usize,
    stats: Arc<PmdStats>,
    cache: PoolCache,
    /// One pending-output batch per port slot of the snapshot.
    tx: Vec<Batch>,
    rx: Batch,
    /// Slots with something in `tx`, to flush without scanning every port.
    dirty: Vec<u16>,
}

impl Pmd {
    pub(super) fn new(index: usize, shared: Arc<Shared>, stats: Arc<PmdStats>) -> Pmd {
        let cache = PoolCache::new(shared.pool.clone());
        let snap = shared.current();
        let work = Work {
            index,
            stats,
            cache,
            tx: Vec::new(),
            rx: Batch::new(),
            dirty: Vec::new(),
        };
        let mut p = Pmd { shared, snap, work };
        p.adopt_snapshot();
        p
    }

    fn adopt_snapshot(&mut self) {
        let w = &mut self.work;
        w.tx.clear();
        w.tx.resize_with(self.snap.ports.len(), Batch::new);
        w.dirty = Vec::with_capacity(self.snap.ports.len());
        w.stats.generation.store(self.snap.generation, Release);
    }

    pub(super) fn run(mut self) {
        let mut idle_streak = 0u32;
        let mut sleep_us = 0u64;
        // The FDB's clock (seconds) is read every 10 ms, not every iteration.
        let clock_period = self.shared.tsc_per_us * 10_000;
        let mut now = self.shared.fdb.now();
        let mut next_clock = tsc() + clock_period;
        while !self.shared.stop.load(Relaxed) {
            if self.shared.generation.load(Acquire) != self.snap.generation {
                self.work.flush_all(&self.snap);
                self.snap = self.shared.current();
                self.adopt_snapshot();
            }
            let t0 = tsc();
            if t0 >= next_clock {
                now = self.shared.fdb.now();
                next_clock = t0 + clock_period;
            }
            let got = self.work.iterate(&self.snap, now, &self.shared.fdb);
            let t1 = tsc();
            if got > 0 {
                bump(&self.work.stats.busy_iterations, 1);
                bump(&self.work.stats.busy_cycles, t1 - t0);
                idle_streak = 0;
                sleep_us = 0;
                continue;
            }
            bump(&self.work.stats.idle_iterations, 1);
            bump(&self.work.stats.idle_cycles, t1 - t0);
            idle_streak = idle_streak.saturating_add(1);
            let max = self.shared.sleep_max_us.load(Relaxed) as u64;
            if max > 0 && idle_streak > IDLE_SPINS_BEFORE_SLEEP {
                // Grow the nap while every queue stays empty, like OVS's pmd-sleep-max.
                sleep_us = (sleep_us * 2).clamp(1, max);
                std::thread::sleep(Duration::from_micros(sleep_us));
                bump(
                    &self.work.stats.sleep_ns,
                    (tsc() - t1) * 1000 / self.shared.tsc_per_us.max(1),
                );
            }
        }
        self.work.flush_all(&self.snap);
        self.work.stats.exited.store(true, Release);
    }
}

impl Work {
    /// One pass over the poll list. Returns packets received.
    fn iterate(&mut self, snap: &Snapshot, now: u32, fdb: &Fdb) -> usize {
        let mut total = 0;
        for rq in &snap.poll[self.index] {
            let sp = &snap.ports[rq.slot as usize];
            let t0 = tsc();
            let n = sp
                .port
                .rx_burst(rq.qid as usize, &mut self.cache, &mut self.rx);
            if n == 0 {
                continue;
            }
            total += n;
            bump(&self.stats.batches, 1);
            bump(&self.stats.batch_sizes.0[n.min(pmd::BURST)], 1);
            self.switch_batch(snap, rq.slot as usize, now, fdb);
            // What this queue costs its PMD (pmd-rxq-show, `cycles` assignment).
            bump(&sp.rxq_cycles[rq.qid as usize], tsc() - t0);
        }
        bump(&self.stats.packets, total as u64);
        self.flush_all(snap);
        total
    }

    /// Learns, looks up and queues every packet of `self.rx`.
    fn switch_batch(&mut self, snap: &Snapshot, in_slot: usize, now: u32, fdb: &Fdb) {
        let in_no = snap.ports[in_slot].no;
        // One-entry caches, as VPP's l2-fwd keeps: a burst is usually one or
        // a few flows, so most packets skip the table entirely.
        let mut learned: Option<VlanMac> = None;
        let mut looked_up: Option<(VlanMac, Option<usize>)> = None;
        let mut rx = std::mem::take(&mut self.rx);
        for m in rx.drain() {
            let Some(k) = L2Key::parse(m.data()) else {
                self.stats.count_drop(DpDrop::Runt, 1);
                self.cache.free(m);
                continue;
            };
            if !k.src_is_group() && learned != Some((k.vlan, k.src)) {
                fdb.learn(k.vlan, &k.src, in_no, now);
                learned = Some((k.vlan, k.src));
            }
            let out = if k.dst_is_group() {
                None
            } else {
                match looked_up {
                    Some((key, out)) if key == (k.vlan, k.dst) => out,
                    _ => {
                        let out = fdb.lookup(k.vlan, &k.dst).and_then(|no| snap.slot(no));
                        looked_up = Some(((k.vlan, k.dst), out));
                        out
                    }
                }
            };
            match out {
                Some(s) if s == in_slot => {
                    self.stats.count_drop(DpDrop::SamePort, 1);
                    self.cache.free(m);
                }
                Some(s) => self.enqueue(snap, s, m),
                None => self.flood(snap, in_slot, m),
            }
        }
        self.rx = rx;
    }

    fn flood(&mut self, snap: &Snapshot, in_slot: usize, m: pmd::Mbuf) {
        bump(&self.stats.flooded, 1);
        let last = (0..snap.ports.len()).rev().find(|&s| s != in_slot);
        let Some(last) = last else {
            self.cache.free(m);
            return;
        };
        for s in 0..last {
            if s == in_slot {
                continue;
            }
            match self.cache.alloc() {
                Some(mut c) => {
                    c.fill(m.data());
                    self.enqueue(snap, s, c);
                }
                None => self.stats.count_drop(DpDrop::NoBuffer, 1),
            }
        }
        self.enqueue(snap, last, m);
    }

    #[inline]
    fn enqueue(&mut self, snap: &Snapshot, slot: usize, m: pmd::Mbuf) {
        let b = &mut self.tx[slot];
        if b.is_empty() {
            self.dirty.push(slot as u16);
        }
        if let Err(m) = b.push(m) {
            // A full batch goes out now; the packet starts the next one.
            snap.ports[slot]
                .port
                .tx_burst(self.index, &mut self.cache, b);
            let _ = b.push(m);
        }
    }

    fn flush_all(&mut self, snap: &Snapshot) {
        for &slot in &self.dirty {
            let b = &mut self.tx[slot as usize];
            if !b.is_empty() {
                snap.ports[slot as usize]
                    .port
                    .tx_burst(self.index, &mut self.cache, b);
            }
        }
        self.dirty.clear();
    }
}
