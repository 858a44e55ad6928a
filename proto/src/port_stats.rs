//! The `port-stats` reply: one entry per port.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    pub name: String,
    /// Sums over the port's queues.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
    /// Interrupts sent to the peer, and those its call fd did not take.
    pub guest_notifications: u64,
    pub guest_notify_failures: u64,
    /// Frames written into the guest straight from another guest's buffer
    /// (one copy between two vhost-user ports).
    #[serde(default)]
    pub one_copy_frames: u64,
    /// Large TCP segments (GSO) the guest sent, and those handed to it whole.
    #[serde(default)]
    pub gso_rx_frames: u64,
    #[serde(default)]
    pub gso_tx_frames: u64,
    pub macs_learned: u32,
    pub mac_limit_refused: u64,
    /// Frames received on the port that the switch dropped, by reason (nonzero only).
    pub switch_drops: BTreeMap<String, u64>,
    pub rx: Vec<QueueStats>,
    pub tx: Vec<QueueStats>,
}

/// One rx or tx queue of a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: usize,
    pub packets: u64,
    pub bytes: u64,
    /// The sum of `drops`.
    pub dropped: u64,
    /// By reason (nonzero only).
    pub drops: BTreeMap<String, u64>,
}
