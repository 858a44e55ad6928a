//! The virtio-user port: our packet pool and rings are shared with a
//! vhost-user backend, and the datapath polls them like any other port.
//!
//! A small control thread per port owns the socket: it dials (with
//! back-off), negotiates, starts the vrings, then waits for the backend to
//! hang up; on hang-up it stops the queues, takes every buffer back and
//! dials again, so a restarted backend is picked up without the user.

use super::frontend::{self, FeatureWish, Negotiated, SharedArea, VringAddrs};
use super::split::{DriverRing, RingLayout, SplitRing};
use crate::mbuf::{Batch, Pool, PoolCache};
use crate::mem::Region;
use crate::port::{DropReason, Port, PortInfo, QueueStats, RxNotify};
use crate::sync::SpinLock;
use crate::vhost::features::{self as f, names};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use vhost::vhost_user::Frontend;
use vhost::VhostBackend;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

pub const MAX_QUEUE_PAIRS: u16 = 8;

#[derive(Clone, Debug)]
pub struct VirtioUserConfig {
    /// The backend's vhost-user socket: we connect to it, or with `server`
    /// listen on it and take the backend's connection (QEMU's `server=on`,
    /// the peer of a backend in client mode).
    pub path: PathBuf,
    pub server: bool,
    pub queue_pairs: u16,
    /// Descriptors per vring (power of two, 64..=4096).
    pub queue_size: u16,
    pub mac: [u8; 6],
    pub wish: FeatureWish,
    /// Transmit through 2-entry indirect tables (header + frame) instead of
    /// one descriptor with the header in the buffer's headroom.
    pub tx_indirect: bool,
    /// When the backend's ring is full, reclaim and retry this many times.
    pub tx_retries_max: u32,
}

impl VirtioUserConfig {
    pub fn new(path: impl Into<PathBuf>) -> VirtioUserConfig {
        VirtioUserConfig {
            path: path.into(),
            server: false,
            queue_pairs: 1,
            queue_size: 1024,
            mac: [0x02, 0xfe, 0, 0, 0, 1],
            wish: FeatureWish::default(),
            tx_indirect: false,
            tx_retries_max: 8,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_QUEUE_PAIRS).contains(&self.queue_pairs) {
            return Err(format!("queues must be 1..={MAX_QUEUE_PAIRS}"));
        }
        if !self.queue_size.is_power_of_two() || !(64..=4096).contains(&self.queue_size) {
            return Err("queue-size must be a power of two in 64..=4096".into());
        }
        Ok(())
    }
}

struct Queue {
    ring: SpinLock<SplitRing>,
    kick: EventFd,
    call: EventFd,
}

#[derive(Default)]
struct Status {
    state: &'static str,
    negotiated: Negotiated,
    error: Option<String>,
}

pub struct VirtioPort {
    config: VirtioUserConfig,
    pool: Arc<Pool>,
    /// Every vring of the port, 2k = receiveq k, 2k+1 = transmitq k.
    rings: Region,
    queues: Vec<Queue>,
    rx_stats: Vec<QueueStats>,
    tx_stats: Vec<QueueStats>,
    ready: AtomicBool,
    /// Queue pairs the backend agreed to; queues beyond it are idle.
    active_pairs: AtomicUsize,
    tx_indirect: AtomicBool,
    connections: AtomicU64,
    status: Mutex<Status>,
    stop: AtomicBool,
    /// Written with `stop`: ends the control thread's waits at once (they
    /// block without a timeout, so a thousand idle ports cost no wake-ups).
    stop_fd: EventFd,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl VirtioPort {
    /// Creates the port and its control thread, which starts dialing at once.
    pub fn start(config: VirtioUserConfig, pool: Arc<Pool>) -> Result<Arc<VirtioPort>, String> {
        config.validate()?;
        let layout = RingLayout::new(config.queue_size);
        let n = 2 * config.queue_pairs as usize;
        let huge = pool.page_kind() == crate::mem::PageKind::Huge2M;
        let rings = Region::new(layout.bytes * n, huge).map_err(|e| e.to_string())?;
        let mut queues = Vec::with_capacity(n);
        for i in 0..n {
            let kick = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
            let call = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
            // SAFETY: queue i owns bytes [i*layout.bytes, (i+1)*layout.bytes)
            // of `rings`, which lives as long as the port (and so the ring).
            let ring = unsafe {
                SplitRing::new(
                    rings.as_ptr().add(i * layout.bytes),
                    config.queue_size,
                    kick.as_raw_fd(),
                )
            };
            queues.push(Queue {
                ring: SpinLock::new(ring),
                kick,
                call,
            });
        }
        let port = Arc::new(VirtioPort {
            rx_stats: (0..config.queue_pairs)
                .map(|_| QueueStats::default())
                .collect(),
            tx_stats: (0..config.queue_pairs)
                .map(|_| QueueStats::default())
                .collect(),
            tx_indirect: AtomicBool::new(false),
            config,
            pool,
            rings,
            queues,
            ready: AtomicBool::new(false),
            active_pairs: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            status: Mutex::new(Status {
                state: "connecting",
                ..Status::default()
            }),
            stop: AtomicBool::new(false),
            stop_fd: EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?,
            thread: Mutex::new(None),
        });
        let p = Arc::clone(&port);
        let name = format!(
            "vu-{}",
            port.config
                .path
                .file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        );
        let h = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || p.control_loop())
            .map_err(|e| e.to_string())?;
        *port.thread.lock().expect("poisoned") = Some(h);
        Ok(port)
    }

    pub fn config(&self) -> &VirtioUserConfig {
        &self.config
    }

    pub fn mac(&self) -> [u8; 6] {
        self.config.mac
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Waits until the port carries traffic or `timeout` passes.
    pub fn wait_up(&self, timeout: Duration) -> bool {
        let t0 = std::time::Instant::now();
        while !self.link_up() {
            if t0.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn set_status(&self, state: &'static str, error: Option<String>) {
        let mut s = self.status.lock().expect("poisoned");
        s.state = state;
        if error.is_some() {
            s.error = error;
        }
    }

    fn control_loop(self: Arc<Self>) {
        let mut cache = PoolCache::new(Arc::clone(&self.pool));
        let mut backoff = Duration::from_millis(10);
        let listener = if self.config.server {
            match self.listen() {
                Ok(l) => Some(l),
                Err(e) => {
                    self.set_status("stopped", Some(e));
                    return;
                }
            }
        } else {
            None
        };
        while !self.stop.load(Ordering::Relaxed) {
            let stream = match &listener {
                Some(l) => self.accept(l),
                None => UnixStream::connect(&self.config.path).map_err(|e| format!("connect: {e}")),
            };
            match stream.and_then(|s| self.session(s, &mut cache)) {
                Ok(()) => backoff = Duration::from_millis(10),
                Err(e) => {
                    tracing::debug!(path = %self.config.path.display(), "virtio-user: {e}");
                    self.set_status("connecting", Some(e));
                }
            }
            self.ready.store(false, Ordering::Release);
            self.reset_rings(&mut cache);
            // A listener waits in accept; a dialler backs off.
            if listener.is_none() {
                self.sleep_unless_stopped(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
        if listener.is_some() {
            let _ = std::fs::remove_file(&self.config.path);
        }
        self.set_status("stopped", None);
    }

    fn sleep_unless_stopped(&self, d: Duration) {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < d && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10).min(d));
        }
    }

    /// One connection: set up, then wait for the backend to go away.
    /// Blocks until `fd` is readable (true) or the port stops (false).
    fn wait_readable(&self, fd: std::os::fd::RawFd) -> bool {
        let mut pfds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            },
            libc::pollfd {
                fd: self.stop_fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds we own; no timeout (stop_fd ends it).
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, -1) };
        r > 0 && pfds[0].revents != 0
    }

    /// Binds the socket for server mode (replacing a stale file).
    fn listen(&self) -> Result<UnixListener, String> {
        let path = &self.config.path;
        // Only a socket nobody listens on is replaced; anything else is an error.
        if let Ok(m) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(format!("{} exists and is not a socket", path.display()));
            }
            if UnixStream::connect(path).is_err() {
                let _ = std::fs::remove_file(path);
            }
        }
        let l = UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(l)
    }

    /// Waits for the backend to connect (or stop).
    fn accept(&self, l: &UnixListener) -> Result<UnixStream, String> {
        self.set_status("listening", None);
        while !self.stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).map_err(|e| e.to_string())?;
                    return Ok(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.wait_readable(l.as_raw_fd());
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        }
        Err("stopped".into())
    }

    fn session(&self, sock: UnixStream, cache: &mut PoolCache) -> Result<(), String> {
        let watch = sock.try_clone().map_err(|e| e.to_string())?;
        let mut fe = Frontend::from_stream(sock, self.queues.len() as u64);
        self.set_status("negotiating", None);
        let neg = frontend::negotiate(&mut fe, self.config.queue_pairs, self.config.wish)?;
        let pairs = neg.queue_pairs as usize;
        let event_idx = neg.has(f::VIRTIO_RING_F_EVENT_IDX);
        let mrg = neg.has(f::VIRTIO_NET_F_MRG_RXBUF);
        self.tx_indirect.store(
            self.config.tx_indirect && neg.has(f::VIRTIO_RING_F_INDIRECT_DESC),
            Ordering::Relaxed,
        );
        let (tx_offloads, _) = f::offload_caps(neg.features);
        for (i, q) in self.queues.iter().enumerate() {
            let mut r = q.ring.lock();
            r.set_features(event_idx, mrg);
            r.set_tx_offloads(tx_offloads);
            r.reset(cache);
            if i % 2 == 0 && i / 2 < pairs {
                while r.room() > 0 {
                    let Some(m) = cache.alloc() else { break };
                    if let Err(m) = r.add_rx(m) {
                        cache.free(m);
                        break;
                    }
                }
                r.publish();
            }
        }
        let layout = RingLayout::new(self.config.queue_size);
        let base = self.rings.as_ptr() as u64;
        let addrs: Vec<VringAddrs> = (0..2 * pairs)
            .map(|i| {
                let q = base + (i * layout.bytes) as u64;
                VringAddrs {
                    size: self.config.queue_size,
                    desc: q + layout.desc as u64,
                    avail: q + layout.avail as u64,
                    used: q + layout.used as u64,
                }
            })
            .collect();
        let vrings: Vec<_> = addrs
            .iter()
            .zip(&self.queues)
            .map(|(a, q)| (*a, &q.call, &q.kick))
            .collect();
        let pool = self.pool.region();
        let areas = [
            SharedArea {
                addr: pool.as_ptr() as u64,
                len: pool.len() as u64,
                fd: pool.fd(),
            },
            SharedArea {
                addr: base,
                len: self.rings.len() as u64,
                fd: self.rings.fd(),
            },
        ];
        frontend::start_vrings(&mut fe, &neg, &areas, &vrings)?;
        {
            let mut s = self.status.lock().expect("poisoned");
            s.negotiated = neg;
            s.state = "connected";
            s.error = None;
        }
        self.active_pairs.store(pairs, Ordering::Relaxed);
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
        tracing::info!(path = %self.config.path.display(), pairs, "virtio-user connected");
        // The backend sends nothing unprompted: readable means it hung up.
        while !self.stop.load(Ordering::Relaxed) {
            if self.wait_readable(watch.as_raw_fd()) {
                self.set_status("disconnected", Some("backend closed the connection".into()));
                return Ok(());
            }
        }
        // Stopping while the backend lives: GET_VRING_BASE stops each ring
        // (the backend answers once it no longer touches it), so the buffers
        // and ring memory can be taken back safely afterwards.
        self.ready.store(false, Ordering::Release);
        for i in 0..2 * pairs {
            if let Err(e) = fe.get_vring_base(i) {
                tracing::debug!("GET_VRING_BASE {i}: {e}");
                break;
            }
        }
        drop(fe);
        Ok(())
    }

    fn reset_rings(&self, cache: &mut PoolCache) {
        self.active_pairs.store(0, Ordering::Relaxed);
        for q in &self.queues {
            q.ring.lock().reset(cache);
        }
    }

    fn usable(&self, qid: usize) -> bool {
        self.ready.load(Ordering::Acquire) && qid < self.active_pairs.load(Ordering::Relaxed)
    }
}

impl Port for VirtioPort {
    fn kind(&self) -> &'static str {
        "virtio-user"
    }

    fn n_rxq(&self) -> usize {
        self.config.queue_pairs as usize
    }

    fn n_txq(&self) -> usize {
        self.config.queue_pairs as usize
    }

    fn arm_rx_notify(&self, qid: usize) -> RxNotify {
        let Some(epoch) = self.rx_notify_epoch(qid) else {
            return RxNotify::Pending;
        };
        if !self.usable(qid) {
            return RxNotify::Parked { epoch };
        }
        let q = &self.queues[2 * qid];
        let Some(mut r) = q.ring.try_lock() else {
            return RxNotify::Pending;
        };
        if r.set_interrupts(true) {
            r.set_interrupts(false);
            return RxNotify::Pending;
        }
        match q.call.try_clone() {
            // SAFETY: try_clone made a fresh descriptor that only this OwnedFd owns.
            Ok(fd) => RxNotify::Armed {
                fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd.into_raw_fd()) },
                epoch,
                counter: true,
            },
            Err(_) => {
                r.set_interrupts(false);
                RxNotify::Unsupported
            }
        }
    }

    fn rx_pending(&self, qid: usize) -> bool {
        self.usable(qid)
            && self.queues[2 * qid]
                .ring
                .try_lock()
                .is_some_and(|r| r.has_used())
    }

    fn disarm_rx_notify(&self, qid: usize) {
        self.queues[2 * qid].ring.lock().set_interrupts(false);
    }

    /// A new connection (or its end) moves the epoch: the rings are new.
    fn rx_notify_epoch(&self, _qid: usize) -> Option<u64> {
        let ready = self.ready.load(Ordering::Acquire) as u64;
        Some(self.connections.load(Ordering::Relaxed) * 2 + ready)
    }

    fn rx_burst(&self, qid: usize, cache: &mut PoolCache, out: &mut Batch) -> usize {
        if !self.usable(qid) || !Arc::ptr_eq(cache.pool(), &self.pool) {
            return 0;
        }
        let Some(mut r) = self.queues[2 * qid].ring.try_lock() else {
            return 0;
        };
        let stats = &self.rx_stats[qid];
        let before = out.len();
        let n = r.collect_rx(cache, out, stats);
        let bytes: usize = out.iter().skip(before).map(|m| m.len()).sum();
        stats.count(n as u64, bytes as u64);
        // Give the device fresh buffers for every one it filled.
        let mut refilled = false;
        while r.room() > 0 {
            let Some(m) = cache.alloc() else { break };
            if let Err(m) = r.add_rx(m) {
                cache.free(m);
                break;
            }
            refilled = true;
        }
        if refilled {
            r.publish();
        }
        n
    }

    fn tx_burst(&self, qid: usize, cache: &mut PoolCache, pkts: &mut Batch) -> usize {
        let stats = &self.tx_stats[qid % self.tx_stats.len()];
        let pairs = self.active_pairs.load(Ordering::Relaxed);
        if !self.ready.load(Ordering::Acquire) || pairs == 0 {
            stats.drop_n(DropReason::NotReady, pkts.len() as u64);
            cache.free_batch(pkts);
            return 0;
        }
        // The backend can only read buffers of the pool it mapped: every port
        // of a process shares that pool (ferrovsd and ferrovs-testpmd do).
        if !Arc::ptr_eq(cache.pool(), &self.pool) {
            stats.drop_n(DropReason::NotReady, pkts.len() as u64);
            cache.free_batch(pkts);
            return 0;
        }
        let q = &self.queues[2 * (qid % pairs) + 1];
        let mut r = q.ring.lock();
        let indirect = self.tx_indirect.load(Ordering::Relaxed);
        r.reclaim_tx(cache, stats);
        let mut sent = 0usize;
        let mut bytes = 0usize;
        let mut retries = 0;
        let mut full = false;
        pkts.drain_front(pkts.len(), |m| {
            if full {
                stats.drop_n(DropReason::RingFull, 1);
                cache.free(m);
                return;
            }
            let len = m.len();
            let mut m = m;
            loop {
                match r.add_tx(m, indirect) {
                    Ok(()) => {
                        sent += 1;
                        bytes += len;
                        break;
                    }
                    Err(back) => {
                        if retries < self.config.tx_retries_max && r.reclaim_tx(cache, stats) > 0 {
                            retries += 1;
                            m = back;
                            continue;
                        }
                        retries = self.config.tx_retries_max;
                        full = true;
                        stats.drop_n(DropReason::RingFull, 1);
                        cache.free(back);
                        break;
                    }
                }
            }
        });
        r.publish();
        stats.count(sent as u64, bytes as u64);
        sent
    }

    fn rxq_stats(&self, qid: usize) -> &QueueStats {
        &self.rx_stats[qid]
    }

    fn txq_stats(&self, qid: usize) -> &QueueStats {
        &self.tx_stats[qid]
    }

    fn link_up(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn info(&self) -> PortInfo {
        let s = self.status.lock().expect("poisoned");
        let m = self.config.mac;
        let mut v: PortInfo = vec![
            ("path", self.config.path.display().to_string()),
            ("mode", "client".into()),
            ("state", s.state.into()),
            (
                "mac",
                format!(
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                ),
            ),
            (
                "queue_pairs",
                format!(
                    "{}/{}",
                    self.active_pairs.load(Ordering::Relaxed),
                    self.config.queue_pairs
                ),
            ),
            ("queue_size", self.config.queue_size.to_string()),
            ("connections", self.connections().to_string()),
        ];
        // As the vhost-user port reports them (an empty list before negotiation).
        let f = s.negotiated.features;
        v.push(("features", names(f).join(",")));
        v.push(("features_hex", format!("{f:#x}")));
        if let Some(e) = &s.error {
            v.push(("last_error", e.clone()));
        }
        v
    }

    fn tx_in_flight(&self, qid: usize) -> usize {
        if !self.usable(qid) {
            return 0;
        }
        self.queues[2 * qid + 1].ring.lock().in_flight()
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.stop_fd.write(1);
        let h = self.thread.lock().expect("poisoned").take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }
}

impl Drop for VirtioPort {
    fn drop(&mut self) {
        // Buffers still posted go back to the pool (the thread holds an Arc,
        // so by now it has exited).
        let mut cache = PoolCache::new(Arc::clone(&self.pool));
        for q in &self.queues {
            q.ring.lock().reset(&mut cache);
        }
    }
}
