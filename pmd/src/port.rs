//! The interface every driver implements, and the per-queue counters.

use crate::mbuf::{Batch, PoolCache};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a packet was dropped by a driver. The names are the `reason` label of
/// drop counters; keep them stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// The packet pool had no free buffer.
    NoBuffer,
    /// The guest's receive ring had no room (after retries).
    RingFull,
    /// The port is not connected or the queue is not enabled.
    NotReady,
    /// A frame larger than a packet buffer (or the guest's buffers).
    Oversized,
    /// A frame larger than the output port's MTU (OVS: tx_mtu_exceeded_drops).
    MtuExceeded,
    /// A descriptor index at or beyond the queue size.
    DescIndex,
    /// A chain longer than the queue (or a loop).
    DescLoop,
    /// A buffer address or length outside the guest's memory.
    DescAddr,
    /// A zero length, or a frame shorter than the virtio-net header.
    DescLen,
    /// A descriptor that points the wrong way (writable on TX, read-only on RX).
    DescFlags,
    /// A malformed indirect table.
    DescIndirect,
    /// A virtio-net header asking for what was not negotiated, or with
    /// offsets outside the frame (CVE-2024-11614).
    BadOffload,
    /// Dropped by the NIC or its kernel side before we polled: no free receive
    /// descriptor (DPDK's `imissed`, OVS's `rx_missed_errors`). Device-held,
    /// read by [`Port::refresh_stats`].
    Missed,
}

impl DropReason {
    pub const ALL: [DropReason; 13] = [
        DropReason::NoBuffer,
        DropReason::RingFull,
        DropReason::NotReady,
        DropReason::Oversized,
        DropReason::MtuExceeded,
        DropReason::DescIndex,
        DropReason::DescLoop,
        DropReason::DescAddr,
        DropReason::DescLen,
        DropReason::DescFlags,
        DropReason::DescIndirect,
        DropReason::BadOffload,
        DropReason::Missed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoBuffer => "no_buffer",
            DropReason::RingFull => "ring_full",
            DropReason::NotReady => "not_ready",
            DropReason::Oversized => "oversized",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::DescIndex => "invalid_desc_index",
            DropReason::DescLoop => "invalid_desc_loop",
            DropReason::DescAddr => "invalid_desc_addr",
            DropReason::DescLen => "invalid_desc_len",
            DropReason::DescFlags => "invalid_desc_flags",
            DropReason::DescIndirect => "invalid_desc_indirect",
            DropReason::BadOffload => "invalid_offload",
            DropReason::Missed => "rx_missed",
        }
    }
}

/// Counters of one queue in one direction. Written by whichever thread holds
/// the queue (one at a time), read by anyone: relaxed atomics, no RMW needed
/// for the common counters.
#[derive(Default)]
pub struct QueueStats {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

/// A plain-number copy of [`QueueStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    pub packets: u64,
    pub bytes: u64,
    pub drops: Vec<(&'static str, u64)>,
}

impl QueueCounters {
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|d| d.1).sum()
    }
}

/// Adds to a counter that has a single writer: a load and a store, no lock prefix.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl QueueStats {
    #[inline]
    pub fn count(&self, packets: u64, bytes: u64) {
        if packets != 0 {
            bump(&self.packets, packets);
            bump(&self.bytes, bytes);
        }
    }

    /// Drops can be counted by threads that do not hold the queue, so they
    /// use a real atomic add; they are the exception, not the steady state.
    #[inline]
    pub fn drop_n(&self, reason: DropReason, n: u64) {
        if n != 0 {
            self.drops[reason as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Sets a drop counter to a total kept elsewhere (a device's own counter).
    pub fn set_drops(&self, reason: DropReason, total: u64) {
        self.drops[reason as usize].store(total, Ordering::Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> QueueCounters {
        QueueCounters {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name(), self.drops(*r)))
                .filter(|(_, n)| *n != 0)
                .collect(),
        }
    }
}

/// Counters of what a driver did for its peer, beyond packets and drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// Extra attempts into a full peer ring (tx-retries-max).
    pub tx_retries: u64,
    /// Interrupts (call eventfd writes) sent to the peer.
    pub notifications: u64,
    /// Interrupts the peer's call fd did not take (a full pipe, a saturated eventfd).
    pub notify_failures: u64,
    /// Frames written into the peer straight from the sending guest's
    /// buffer (one copy, no switch buffer in between).
    pub one_copy: u64,
    /// Large TCP segments (GSO) received from the peer, and handed to it whole.
    pub gso_rx: u64,
    pub gso_tx: u64,
}

/// One line of `show` output about a port: key/value facts (type, path,
/// state, negotiated features ...).
pub type PortInfo = Vec<(&'static str, String)>;

/// A poll-mode port. Any thread may call any method; a queue is used by one
/// thread at a time (drivers enforce it where a queue could be shared).
/// What [`Port::arm_rx_notify`] did for an idle rx queue (hybrid polling:
/// a queue silent for a while stops being polled and waits to be told).
#[derive(Debug)]
pub enum RxNotify {
    /// The driver cannot ask its peer to signal this queue: keep polling it.
    Unsupported,
    /// Packets came in while arming (or the queue is busy being changed):
    /// notifications are off again, keep polling.
    Pending,
    /// The peer will make `fd` (a duplicate the caller owns) readable when
    /// it adds packets. `epoch` is [`Port::rx_notify_epoch`] as it was.
    /// `counter`: `fd` is an eventfd whose count the waiter empties once it
    /// fired; otherwise it is the data channel itself (a tap fd: reading it
    /// would take a packet) and stays readable while packets wait.
    Armed {
        fd: std::os::fd::OwnedFd,
        epoch: u64,
        counter: bool,
    },
    /// Nothing can arrive (no peer, queue not set up): poll again when the
    /// epoch moves.
    Parked { epoch: u64 },
}

/// Where [`Port::rx_burst_into`] puts a burst: the switch's receive batch and
/// buffer cache, and its next step.
pub trait RxSink {
    /// The buffer cache to allocate from and the (empty) batch to fill.
    fn rx_parts(&mut self) -> (&mut PoolCache, &mut Batch);
    /// Switches the burst now in `batch()`. `leased`: some of its buffers end
    /// in a guest tail ([`crate::mbuf::GuestTail`]), valid only until this
    /// returns, so everything must be sent or freed before it does.
    fn consume(&mut self, leased: bool);
}

pub trait Port: Send + Sync {
    /// Driver name shown to operators (`vhost-user`, `ring`, ...).
    fn kind(&self) -> &'static str;
    fn n_rxq(&self) -> usize;
    fn n_txq(&self) -> usize;
    /// Receives up to `out.room()` packets from queue `qid`; returns how many.
    fn rx_burst(&self, qid: usize, cache: &mut PoolCache, out: &mut Batch) -> usize;
    /// Sends every packet of `pkts` on queue `qid`, consuming the batch:
    /// packets that cannot be sent are freed and counted as drops with their
    /// reason. Returns how many were sent.
    fn tx_burst(&self, qid: usize, cache: &mut PoolCache, pkts: &mut Batch) -> usize;
    /// Receives a burst from queue `qid` into `sink` and has it consumed
    /// there; returns how many packets. A driver that can leave frame tails
    /// in its peer's memory (vhost-user) holds the peer's buffers while the
    /// sink runs and returns them after: one copy between two guests.
    fn rx_burst_into(&self, qid: usize, sink: &mut dyn RxSink) -> usize {
        let (cache, out) = sink.rx_parts();
        let n = self.rx_burst(qid, cache, out);
        if n > 0 {
            sink.consume(false);
        }
        n
    }
    /// Whether `tx_burst` takes buffers that end in a guest tail (and copies
    /// the tail itself); for other drivers the switch copies tails in first.
    fn takes_guest_tails(&self) -> bool {
        false
    }
    /// Which offloads `tx_burst` passes on to the peer (checksum left to it,
    /// large TCP segments); the switch does the rest in software first.
    fn tx_offloads(&self) -> crate::offload::OffloadCaps {
        crate::offload::OffloadCaps::default()
    }
    /// Whether PMDs poll its rx queues. A tunnel port says no: its frames
    /// arrive through its underlay, and its "queues" are counting lanes.
    fn polled(&self) -> bool {
        true
    }
    fn rxq_stats(&self, qid: usize) -> &QueueStats;
    fn txq_stats(&self, qid: usize) -> &QueueStats;
    /// True when a peer is attached and the port can carry traffic.
    fn link_up(&self) -> bool;
    fn info(&self) -> PortInfo;
    /// Called once when the port is removed from the switch.
    fn shutdown(&self) {}
    /// Copies counters the device keeps itself (e.g. DPDK's `imissed`) into
    /// the queue stats. Control path only: it may make a syscall.
    fn refresh_stats(&self) {}
    /// Frames handed to the peer on queue `qid` that it has not consumed yet
    /// (drivers that cannot tell say 0). Lets a generator wait until a
    /// backend really polls before it starts.
    fn tx_in_flight(&self, _qid: usize) -> usize {
        0
    }
    /// The MAC the port shows its peer (a guest's config space), if any.
    fn mac(&self) -> Option<[u8; 6]> {
        None
    }
    /// Whether the peer enabled rx queue `qid` (drivers without such a notion say yes).
    fn rxq_enabled(&self, _qid: usize) -> bool {
        true
    }
    fn peer_counters(&self) -> PeerCounters {
        PeerCounters::default()
    }
    /// Hybrid polling: asks the peer to signal new packets on rx queue `qid`
    /// and looks at the queue once more after asking (a peer that added
    /// packets before it saw the request would not signal). Called by the
    /// queue's PMD only, when the queue has been idle for a while.
    fn arm_rx_notify(&self, _qid: usize) -> RxNotify {
        RxNotify::Unsupported
    }
    /// Back to polling: the peer need not signal any more.
    fn disarm_rx_notify(&self, _qid: usize) {}
    /// Whether rx queue `qid` has packets waiting (a look, nothing taken;
    /// drivers that cannot tell say no).
    fn rx_pending(&self, _qid: usize) -> bool {
        false
    }
    /// Moves whenever queue `qid`'s notification channel is replaced or goes
    /// (the peer reconnected, the ring was set up again): an armed or parked
    /// queue whose epoch moved must be polled again. `None`: cannot tell now
    /// (being changed); treat as moved.
    fn rx_notify_epoch(&self, _qid: usize) -> Option<u64> {
        Some(0)
    }
}
