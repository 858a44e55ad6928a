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
}

impl Stream {
    /// Receives a burst into `self.batch`.
    #[inline]
    pub fn receive(&mut self, cache: &mut PoolCache) -> usize {
        self.rx.rx_burst(self.rxq, cache, &mut self.batch)
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
