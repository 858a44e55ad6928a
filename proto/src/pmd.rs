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
    /// Offloads done in software for ports that do not take them: checksums
    /// completed, large TCP segments (GSO) split, the segments made.
    #[serde(default)]
    pub soft_csum: u64,
    #[serde(default)]
    pub soft_gso: u64,
    #[serde(default)]
    pub soft_segments: u64,
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
    #[serde(default)]
    pub auto_lb: AutoLbStatus,
}

/// Automatic rx queue rebalancing (OVS pmd-auto-lb): its settings and what
/// its checks found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoLbStatus {
    pub enabled: bool,
    /// A PMD busier than this (% of its core) over an interval asks for a dry run.
    pub load_threshold_pct: u8,
    /// The dry run must cut the variance of PMD loads by this much (%).
    pub improvement_threshold_pct: u8,
    /// Measuring interval, and the least time between two rebalances.
    pub interval_s: u64,
    /// Intervals measured so far.
    pub checks: u64,
    /// Times queues were moved.
    pub rebalances: u64,
    /// What the last check found, in words.
    pub last: String,
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
    /// Cycles spent on this queue over all of the core's cycles, in the
    /// last measured interval (before the first: since start).
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
