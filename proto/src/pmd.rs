//! The PMD replies: `pmd-stats`, `pmd-stats-clear`, `pmd-rxq-show` (and
//! `pmd-rxq-rebalance`, which answers as `pmd-rxq-show`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One PMD core's counters since start or the last `pmd-stats-clear`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmdStats {
    pub core: usize,
    pub packets: u64,
    pub batches: u64,
    pub avg_batch: f64,
    pub busy_iterations: u64,
    pub idle_iterations: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    /// Busy cycles over all cycles, sleep included.
    pub busy_pct: f64,
    /// Busy cycles per packet.
    pub cycles_per_packet: f64,
    pub flooded: u64,
    /// Exact-match cache hits and misses, and the masks classifier searches probed.
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub classifier_probes: u64,
    pub sleep_ms: u64,
    /// The switch's own drops, by reason (every reason, zero or not).
    pub drops: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmdStatsCleared {
    /// PMD cores whose counters were reset.
    pub cleared: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmdRxqShow {
    /// The placement policy (pmd.rxq-assign).
    pub assign: String,
    pub pmds: Vec<PmdRxqs>,
}

/// The rx queues one PMD core polls, with their share of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmdRxqs {
    pub core: usize,
    pub queues: Vec<RxqUsage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RxqUsage {
    pub port: String,
    pub queue: u16,
    /// The peer has enabled the queue.
    pub enabled: bool,
    /// Placed by pmd-rxq-affinity.
    pub pinned: bool,
    /// Cycles spent on this queue over all of the core's cycles.
    pub usage_pct: f64,
    /// polled | notified (waits for its peer's signal) | parked (nothing to
    /// poll until its peer sets it up again); see pmd.rxq-notify-after.
    #[serde(default)]
    pub mode: String,
    /// Times a signal brought the queue back to the poll list.
    #[serde(default)]
    pub wakeups: u64,
    /// Times a periodic look found packets a signal should have announced.
    #[serde(default)]
    pub late_wakeups: u64,
}
