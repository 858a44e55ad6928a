//! The vhost-user port as the datapath sees it: `rx_burst` reads the guest's
//! transmit queues, `tx_burst` fills its receive queues.

use super::queue::VirtQueue;
use super::split_ring::RingFeatures;
use crate::mbuf::{Batch, PoolCache};
use crate::port::{DropReason, Port, PortInfo, QueueStats, RxNotify, RxSink};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Whether ferrovsd listens on the socket (QEMU connects) or connects to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketMode {
    Server,
    Client,
}

impl SocketMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketMode::Server => "server",
            SocketMode::Client => "client",
        }
    }
}

#[derive(Clone, Debug)]
pub struct VhostPortConfig {
    pub path: PathBuf,
    pub mode: SocketMode,
    /// Queue pairs offered to the guest.
    pub queue_pairs: u16,
    pub mac: [u8; 6],
    /// When the guest's receive ring is full, try again this many times before
    /// dropping (OVS's tx-retries-max; 0..=32).
    pub tx_retries_max: u32,
    /// Largest L3 payload the port carries (OVS mtu_request): frames above
    /// mtu + 18 bytes (Ethernet header and one VLAN tag) are dropped on output.
    pub mtu: u32,
    /// Offer checksum and segmentation offloads to the guest (CSUM,
    /// GUEST_CSUM, HOST/GUEST_TSO4/6); off: the guest sends finished frames
    /// and the switch finishes what it gets from others.
    pub offloads: bool,
}

pub struct VhostPort {
    pub config: VhostPortConfig,
    /// virtio-net numbering: queue 2k is the guest's receiveq k (our TX),
    /// 2k+1 its transmitq k (our RX).
    pub queues: Vec<VirtQueue>,
    pub connected: AtomicBool,
    pub acked_features: AtomicU64,
    pub acked_protocol_features: AtomicU64,
    /// Last control-plane problem, for `show`.
    /// The last error and when it happened.
    pub last_error: Mutex<Option<(String, std::time::Instant)>>,
    pub connections: AtomicU64,
    /// Bit k set: the guest's receive queue k runs. Output spreads over these
    /// only, so a queue the guest never enabled strands nothing.
    tx_map: AtomicU64,
}

impl VhostPort {
    pub fn new(config: VhostPortConfig) -> VhostPort {
        let n = 2 * config.queue_pairs.max(1) as usize;
        VhostPort {
            config,
            queues: (0..n).map(|_| VirtQueue::default()).collect(),
            connected: AtomicBool::new(false),
            acked_features: AtomicU64::new(0),
            acked_protocol_features: AtomicU64::new(0),
            last_error: Mutex::new(None),
            connections: AtomicU64::new(0),
            tx_map: AtomicU64::new(0),
        }
    }

    /// The virtio features this port offers its guest.
    pub fn offered_features(&self) -> u64 {
        super::features::offered(self.n_rxq() as u16, self.config.offloads)
    }

    pub fn set_error(&self, e: impl Into<String>) {
        *self.last_error.lock().expect("poisoned") = Some((e.into(), std::time::Instant::now()));
    }

    /// Applies negotiated features to every queue's walker.
    pub fn set_ring_features(&self, f: RingFeatures) {
        for q in &self.queues {
            let mut s = q.state.lock();
            s.features = f;
            s.try_start();
        }
    }

    /// Stops and forgets every queue (peer disconnected).
    pub fn reset_queues(&self) {
        for q in &self.queues {
            q.state.lock().reset();
        }
        self.tx_map.store(0, Ordering::Relaxed);
    }

    /// True when the frontend truncated guest memory under us (every queue
    /// shares one memory table, so queue 0 tells).
    pub fn memory_truncated(&self) -> bool {
        self.queues[0]
            .state
            .lock()
            .mem
            .as_ref()
            .is_some_and(|m| m.truncated())
    }

    /// Recomputes which receive queues run (control thread, after each message).
    pub fn refresh_tx_map(&self) {
        let mut map = 0u64;
        for k in 0..self.n_txq() {
            if self.queues[2 * k].state.lock().running() {
                map |= 1 << k;
            }
        }
        self.tx_map.store(map, Ordering::Relaxed);
    }

    /// The receive queue a PMD's `qid` maps to: the qid-th running one.
    #[inline]
    fn pick_txq(&self, qid: usize) -> &VirtQueue {
        let mut map = self.tx_map.load(Ordering::Relaxed);
        if map == 0 {
            return self.txq(qid % self.n_txq());
        }
        for _ in 0..qid % map.count_ones() as usize {
            map &= map - 1;
        }
        self.txq(map.trailing_zeros() as usize)
    }

    fn rxq(&self, qid: usize) -> &VirtQueue {
        &self.queues[2 * qid + 1]
    }

    fn txq(&self, qid: usize) -> &VirtQueue {
        &self.queues[2 * qid]
    }
}

impl Port for VhostPort {
    fn kind(&self) -> &'static str {
        "vhost-user"
    }

    fn mac(&self) -> Option<[u8; 6]> {
        Some(self.config.mac)
    }

    /// Guest TX queue `qid` (virtqueue 2*qid+1) is running.
    fn rxq_enabled(&self, qid: usize) -> bool {
        self.queues
            .get(2 * qid + 1)
            .is_some_and(|vq| vq.state.lock().running())
    }

    fn peer_counters(&self) -> crate::port::PeerCounters {
        let sum = |f: fn(&super::queue::VirtQueue) -> u64| self.queues.iter().map(f).sum::<u64>();
        crate::port::PeerCounters {
            tx_retries: sum(|q| q.retries.load(Ordering::Relaxed)),
            notifications: sum(|q| q.notifications.load(Ordering::Relaxed)),
            notify_failures: sum(|q| q.signal_failures.load(Ordering::Relaxed)),
            one_copy: sum(|q| q.one_copy.load(Ordering::Relaxed)),
            gso_rx: (0..self.n_rxq())
                .map(|k| self.rxq(k).gso.load(Ordering::Relaxed))
                .sum(),
            gso_tx: (0..self.n_txq())
                .map(|k| self.txq(k).gso.load(Ordering::Relaxed))
                .sum(),
        }
    }

    fn n_rxq(&self) -> usize {
        self.queues.len() / 2
    }

    fn n_txq(&self) -> usize {
        self.queues.len() / 2
    }

    fn arm_rx_notify(&self, qid: usize) -> RxNotify {
        let q = self.rxq(qid);
        let Some(mut st) = q.state.try_lock() else {
            return RxNotify::Pending;
        };
        let epoch = st.epoch;
        if !st.is_enabled() {
            return RxNotify::Parked { epoch };
        }
        let st = &mut *st;
        let (Some(ring), Some(kick)) = (st.ring.as_mut(), st.kick.as_ref()) else {
            return RxNotify::Parked { epoch };
        };
        if !st.kick_is_fd {
            return RxNotify::Unsupported;
        }
        if ring.arm_notify() {
            return RxNotify::Pending;
        }
        // A duplicate: the control thread may close or replace the kick fd
        // at any time (and the number be reused); the epoch tells us when.
        match kick.try_clone() {
            Ok(f) => RxNotify::Armed {
                fd: f.into(),
                epoch,
                counter: true,
            },
            Err(_) => {
                ring.disarm_notify();
                RxNotify::Unsupported
            }
        }
    }

    fn disarm_rx_notify(&self, qid: usize) {
        let mut st = self.rxq(qid).state.lock();
        if let Some(ring) = st.ring.as_mut() {
            ring.disarm_notify();
        }
    }

    fn rx_pending(&self, qid: usize) -> bool {
        self.rxq(qid)
            .state
            .try_lock()
            .is_some_and(|st| st.ring.as_ref().is_some_and(|r| r.pending() != 0))
    }

    fn rx_notify_epoch(&self, qid: usize) -> Option<u64> {
        self.rxq(qid).state.try_lock().map(|st| st.epoch)
    }

    fn rx_burst(&self, qid: usize, cache: &mut PoolCache, out: &mut Batch) -> usize {
        let q = self.rxq(qid);
        // Busy means the control thread is changing this queue: skip a turn.
        let Some(mut st) = q.state.try_lock() else {
            return 0;
        };
        if !st.is_enabled() {
            return 0;
        }
        let st = &mut *st;
        let (Some(ring), Some(mem)) = (st.ring.as_mut(), st.mem.as_ref()) else {
            return 0;
        };
        let (n, notify) = ring.dequeue(mem, cache, out, &q.stats);
        q.count(ring.take_counters());
        if notify {
            q.interrupt(st);
        }
        n
    }

    fn rx_burst_into(&self, qid: usize, sink: &mut dyn RxSink) -> usize {
        let q = self.rxq(qid);
        let Some(mut guard) = q.state.try_lock() else {
            return 0;
        };
        if !guard.is_enabled() {
            return 0;
        }
        let st = &mut *guard;
        let (Some(ring), Some(mem)) = (st.ring.as_mut(), st.mem.as_ref()) else {
            return 0;
        };
        let (cache, out) = sink.rx_parts();
        let (n, notify) = ring.dequeue_leasing(mem, cache, out, &q.stats);
        q.count(ring.take_counters());
        if ring.leased() == 0 {
            if notify {
                q.interrupt(st);
            }
            // Nothing held: the burst is switched after the lock is let go.
            drop(guard);
            if n > 0 {
                sink.consume(false);
            }
            return n;
        }
        // The frames' tails are in this guest's buffers: switch and send them
        // while we hold the ring (and so its memory and descriptors), then
        // give the buffers back. Nothing outlives this call.
        sink.consume(true);
        if ring.release() {
            q.interrupt(st);
        }
        n
    }

    fn takes_guest_tails(&self) -> bool {
        true
    }

    fn tx_offloads(&self) -> crate::offload::OffloadCaps {
        super::features::offload_caps(self.acked_features.load(Ordering::Relaxed)).1
    }

    fn tx_burst(&self, qid: usize, cache: &mut PoolCache, pkts: &mut Batch) -> usize {
        if pkts.is_empty() {
            return 0;
        }
        let q = self.pick_txq(qid);
        let max_frame = self.config.mtu as usize + 18;
        if pkts.iter().any(|m| wire_len(m) > max_frame) {
            let mut too_big = 0;
            pkts.retain(
                |m| wire_len(m) <= max_frame,
                |m| {
                    too_big += 1;
                    cache.free(m);
                },
            );
            q.stats.drop_n(DropReason::MtuExceeded, too_big);
        }
        let mut st = q.state.lock();
        let mut sent = 0;
        let mut reason = DropReason::NotReady;
        if st.is_enabled() {
            let st = &mut *st;
            if let (Some(ring), Some(mem)) = (st.ring.as_mut(), st.mem.as_ref()) {
                let (n, mut notify) = ring.enqueue(mem, cache, pkts, &q.stats);
                sent = n;
                // A guest that is draining its ring gets a few more chances;
                // an attempt that moves nothing ends it (OVS's tx-retries-max).
                let (mut last, mut retries) = (n, 0);
                while !pkts.is_empty() && last > 0 && retries < self.config.tx_retries_max {
                    retries += 1;
                    let (more, again) = ring.enqueue(mem, cache, pkts, &q.stats);
                    notify |= again;
                    sent += more;
                    last = more;
                }
                crate::port::bump(&q.retries, retries as u64);
                q.count(ring.take_counters());
                reason = DropReason::RingFull;
                if notify {
                    q.interrupt(st);
                }
            }
        }
        drop(st);
        q.stats.drop_n(reason, pkts.len() as u64);
        cache.free_batch(pkts);
        sent
    }

    fn rxq_stats(&self, qid: usize) -> &QueueStats {
        &self.rxq(qid).stats
    }

    fn txq_stats(&self, qid: usize) -> &QueueStats {
        &self.txq(qid).stats
    }

    fn link_up(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
            && self.queues.iter().any(|q| q.state.lock().running())
    }

    fn info(&self) -> PortInfo {
        let f = self.acked_features.load(Ordering::Relaxed);
        let mut v = vec![
            ("path", self.config.path.display().to_string()),
            ("mode", self.config.mode.as_str().to_string()),
            (
                "state",
                if self.link_up() {
                    "up"
                } else if self.connected.load(Ordering::Relaxed) {
                    "connected"
                } else {
                    "waiting"
                }
                .into(),
            ),
            ("features", super::features::names(f).join(",")),
            ("features_hex", format!("{f:#x}")),
            ("queue_pairs", self.n_rxq().to_string()),
            ("mtu", self.config.mtu.to_string()),
            (
                "connections",
                self.connections.load(Ordering::Relaxed).to_string(),
            ),
        ];
        let enabled: Vec<String> = self
            .queues
            .iter()
            .enumerate()
            .filter(|(_, q)| q.state.lock().running())
            .map(|(i, _)| i.to_string())
            .collect();
        v.push(("running_vrings", enabled.join(",")));
        // An error from before the link came up is history, not the state.
        if let Some((e, at)) = self.last_error.lock().expect("poisoned").as_ref() {
            let key = if self.link_up() {
                "previous_error"
            } else {
                "last_error"
            };
            v.push((key, format!("{e} ({} s ago)", at.elapsed().as_secs())));
        }
        v
    }
}

/// The longest frame `m` puts on a wire: itself, or for a large TCP segment
/// (GSO) the segments it stands for.
#[inline]
fn wire_len(m: &crate::mbuf::Mbuf) -> usize {
    let o = m.offload();
    if o.gso == crate::offload::Gso::None {
        return m.len();
    }
    crate::offload::TcpFrame::parse(m.data())
        .map_or(m.len(), |t| (t.hdrs + o.gso_size as usize).min(m.len()))
}
