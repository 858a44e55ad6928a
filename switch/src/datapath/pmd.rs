//! One PMD thread: poll the rx queues of its list, switch each batch
//! ([`super::pipeline`]), buffer per output port and flush ([`super::tx`]),
//! count, and back off when idle. No syscall, allocation, lock or log line
//! per packet.

use super::rx_modes::{RxQueues, EPOCH_CHECK_MS};
use super::snapshot::Snapshot;
use super::stats::{DpDrop, PmdStats};
use super::{tsc, Shared};
use crate::fdb::Fdb;
use crate::flow::cache::ExactCache;
use pmd::port::bump;
use pmd::{Batch, PoolCache};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

/// Consecutive empty iterations before the thread starts to sleep.
const IDLE_SPINS_BEFORE_SLEEP: u32 = 256;

pub(super) struct Pmd {
    shared: Arc<Shared>,
    snap: Arc<Snapshot>,
    work: Work,
}

/// Everything a PMD mutates while it reads the snapshot.
pub(super) struct Work {
    pub(super) index: usize,
    pub(super) stats: Arc<PmdStats>,
    pub(super) cache: PoolCache,
    /// One pending-output batch per port slot of the snapshot.
    pub(super) tx: Vec<Batch>,
    pub(super) rx: Batch,
    /// Inner frames an underlay burst decapsulated, and per frame the
    /// (tunnel slot, remote) it came from.
    pub(super) decapped: Batch,
    pub(super) decap_from: [(u16, u16); pmd::BURST],
    /// Slots with something in `tx`, to flush without scanning every port.
    pub(super) dirty: Vec<u16>,
    /// Exact-match cache in front of the classifier; valid for one snapshot.
    pub(super) emc: ExactCache,
    /// State of the burst being switched (one input port).
    pub(super) burst: Burst,
    /// This PMD's queues to and from the OpenFlow agent.
    pub(super) channel: Arc<super::controller::Channel>,
    /// Its rx queues: which are polled, which wait for a notification.
    pub(super) rxqs: RxQueues,
}

type VlanMac = (u16, [u8; 6]);

/// Per-burst state: drops to add to the input port at the end, and
/// one-entry caches of `normal` (as VPP's l2-fwd keeps: a burst is usually
/// one or a few flows).
#[derive(Default)]
pub(super) struct Burst {
    pub(super) in_slot: usize,
    pub(super) in_no: u16,
    /// The tunnel endpoint the burst came from (1-based; 0: none).
    pub(super) in_remote: u16,
    /// `normal` must not learn sources (a packet-out "from" a tunnel port).
    pub(super) no_learn: bool,
    pub(super) now: u32,
    pub(super) drops: [u32; DpDrop::ALL.len()],
    pub(super) learned: Option<VlanMac>,
    /// The packet being switched: its length as received (rule byte
    /// counters), how often it was output, and why it ended if it went nowhere.
    pub(super) pkt_len: u64,
    pub(super) outputs: u32,
    pub(super) resubmits: u32,
    pub(super) ended_by: Option<DpDrop>,
    /// The table and cookie of the rule running, and whether it is the
    /// table-miss entry (for packet-ins).
    pub(super) table: u8,
    pub(super) cookie: u64,
    pub(super) table_miss: bool,
    /// The input port is set not to send packet-ins (PORT_MOD).
    pub(super) no_packet_in: bool,
    /// The last lookup: (key with table, rule or NO_MATCH).
    pub(super) memo: Option<(crate::flow::key::FlowKey, u32)>,
    /// Rule counts not yet added: (rule, packets, bytes).
    pub(super) rule_count: Option<(u32, u64, u64)>,
    pub(super) cache_hits: u64,
    /// (VLAN, destination) and the slot (and tunnel remote) it resolved to.
    pub(super) looked_up: Option<(VlanMac, Option<(usize, u16)>)>,
}

impl Work {
    #[inline]
    pub(super) fn drop_pkt(&mut self, m: pmd::Mbuf, why: DpDrop) {
        self.count_drop(why);
        self.cache.free(m);
    }

    /// A packet (or a copy never made) lost for `why`: on the PMD and on
    /// the burst's input port.
    #[inline]
    pub(super) fn count_drop(&mut self, why: DpDrop) {
        self.stats.count_drop(why, 1);
        self.burst.drops[why as usize] += 1;
    }
}

impl Pmd {
    pub(super) fn new(index: usize, shared: Arc<Shared>, stats: Arc<PmdStats>) -> Pmd {
        let cache = PoolCache::new(shared.pool.clone());
        let snap = shared.current();
        let mut rxqs = RxQueues::new(shared.wakes[index].as_raw_fd(), shared.tsc_per_us)
            .expect("an epoll set for the PMD");
        rxqs.set_notify_after_us(shared.notify_after_us.load(Relaxed) as u64);
        let work = Work {
            index,
            stats,
            cache,
            tx: Vec::new(),
            rx: Batch::new(),
            decapped: Batch::new(),
            decap_from: [(0, 0); pmd::BURST],
            dirty: Vec::new(),
            emc: ExactCache::default(),
            burst: Burst::default(),
            channel: shared.channels[index].clone(),
            rxqs,
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
        // Rules, ports or VLANs changed: nothing cached may answer any more.
        w.emc.clear();
        w.rxqs.adopt(&self.snap, w.index, tsc());
        w.stats.generation.store(self.snap.generation, Release);
    }

    pub(super) fn run(mut self) {
        let mut idle_streak = 0u32;
        let mut sleep_us = 0u64;
        // The FDB's clock (seconds) is read every 10 ms, not every iteration.
        let clock_period = self.shared.tsc_per_us * 10_000;
        let mut now = self.shared.fdb.now();
        let mut next_clock = tsc() + clock_period;
        let mut notify_after = self.shared.notify_after_us.load(Relaxed);
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
                let n = self.shared.notify_after_us.load(Relaxed);
                if n != notify_after {
                    notify_after = n;
                    self.work.rxqs.set_notify_after_us(n as u64);
                }
            }
            let got = self.work.iterate(&self.snap, now, &self.shared.fdb);
            let t1 = tsc();
            // Idle queues leave the poll list, notified ones come back.
            self.work.rxqs.after_sweep(&self.snap, t1, got == 0);
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
                // Grow the nap while every polled queue stays empty, like
                // OVS's pmd-sleep-max; with none to poll, wait for a
                // notification (or the next epoch check). A notification
                // or a wake-up (new snapshot, packet-out) ends it at once.
                let timeout = if self.work.rxqs.active().is_empty() {
                    EPOCH_CHECK_MS * 1000
                } else {
                    sleep_us = (sleep_us * 2).clamp(1, max);
                    sleep_us
                };
                if self.work.rxqs.take_events(&self.snap, timeout, t1) {
                    idle_streak = 0;
                    sleep_us = 0;
                }
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
    /// One pass over the poll list: receive, switch, flush. Returns packets received.
    fn iterate(&mut self, snap: &Snapshot, now: u32, fdb: &Fdb) -> usize {
        let mut total = 0;
        // One load when no controller sent anything (the usual case).
        if !self.channel.from_agent.is_empty() {
            total += self.packet_outs(snap, now, fdb);
        }
        let mut k = 0;
        while k < self.rxqs.active().len() {
            let i = self.rxqs.active()[k];
            k += 1;
            let (slot, qid) = {
                let rq = self.rxqs.rxq(i);
                (rq.slot as usize, rq.qid as usize)
            };
            let sp = &snap.ports[slot];
            let t0 = tsc();
            let mut sink = BurstSink {
                work: self,
                snap,
                slot,
                now,
                fdb,
            };
            let n = sp.port.rx_burst_into(qid, &mut sink);
            if n == 0 {
                self.rxqs.empty(i, t0);
                continue;
            }
            self.rxqs.received(i, t0);
            total += n;
            // What this queue costs its PMD (pmd-rxq-show, `cycles` assignment).
            bump(&sp.rxq_cycles[qid], tsc() - t0);
        }
        bump(&self.stats.packets, total as u64);
        self.flush_all(snap);
        total
    }
}

/// A receive burst's way into the switch: the driver fills the PMD's batch
/// and calls `consume` (while it holds the sender's buffers, for a burst that
/// left frame tails in a guest: those frames are sent before it returns).
struct BurstSink<'a> {
    work: &'a mut Work,
    snap: &'a Snapshot,
    slot: usize,
    now: u32,
    fdb: &'a Fdb,
}

impl pmd::port::RxSink for BurstSink<'_> {
    #[inline]
    fn rx_parts(&mut self) -> (&mut PoolCache, &mut Batch) {
        (&mut self.work.cache, &mut self.work.rx)
    }

    #[inline]
    fn consume(&mut self, leased: bool) {
        let w = &mut *self.work;
        let n = w.rx.len();
        bump(&w.stats.batches, 1);
        bump(&w.stats.batch_sizes.0[n.min(pmd::BURST)], 1);
        w.switch_batch(self.snap, self.slot, self.now, self.fdb);
        if leased {
            w.flush_all(self.snap);
        }
    }
}
