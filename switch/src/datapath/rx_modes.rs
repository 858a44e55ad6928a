//! Hybrid polling, per rx queue (VPP's adaptive rx-mode; OVS only sleeps a
//! whole PMD): a queue silent for `notify-after` leaves the PMD's poll list
//! and asks its peer to signal new packets (a kick eventfd for vhost-user,
//! a call eventfd for our virtio-user driver); the PMD learns of signals
//! through one epoll set, looked at every [`EVENT_CHECK_US`] while it has
//! work and waited on when it has none, and a signalled queue goes back to
//! the poll list. Idle ports then cost nothing per sweep.
//!
//! A queue whose driver cannot be signalled stays polled. A queue with
//! nothing to poll (no peer, disabled) is *parked* until its epoch moves.
//! No packet may be stranded in a queue nobody polls, so: arming re-checks
//! the ring after asking (the driver's job); a queue's epoch (its ring or
//! kick fd replaced) is compared every [`EPOCH_CHECK_MS`]; and every
//! waiting queue is polled once every [`RESCUE_MS`] whatever it was told,
//! packets found that way counted as late wake-ups.

use super::snapshot::{RxqRef, Snapshot};
use pmd::port::{Port, RxNotify};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// While the PMD has queues to poll, how often it looks at the epoll set:
/// the wake-up latency of a notified queue on a busy PMD (an `epoll_wait`
/// costs ~0.3 µs, ~1% of a core at this period).
pub const EVENT_CHECK_US: u64 = 25;
/// How often waiting queues' epochs are compared.
pub const EPOCH_CHECK_MS: u64 = 10;
/// How often every waiting queue is polled once anyway (a peer that ignores
/// the request to signal still gets served, late).
pub const RESCUE_MS: u64 = 100;
/// Epoll data of the PMD's own wake-up eventfd.
const WAKE: u64 = u64::MAX;

/// What `show` and `pmd-rxq-show` say about a queue (`SwitchPort::rxq_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RxqMode {
    Polled = 0,
    Notified = 1,
    Parked = 2,
}

impl RxqMode {
    pub fn from_u8(v: u8) -> RxqMode {
        match v {
            1 => RxqMode::Notified,
            2 => RxqMode::Parked,
            _ => RxqMode::Polled,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RxqMode::Polled => "polled",
            RxqMode::Notified => "notified",
            RxqMode::Parked => "parked",
        }
    }
}

enum Mode {
    Polled {
        /// The driver said it cannot signal: never ask again.
        can_notify: bool,
    },
    Notified {
        fd: OwnedFd,
        epoch: u64,
        /// An eventfd to empty after it fired (see `RxNotify::Armed`).
        counter: bool,
    },
    Parked {
        epoch: u64,
    },
}

struct Rxq {
    rq: RxqRef,
    /// The driver (held until the next snapshot is adopted, so a queue
    /// dropped from this PMD can still be told to stop signalling).
    port: Arc<dyn Port>,
    /// Identity across snapshots: the driver object and queue.
    key: (usize, u16),
    mode: Mode,
    /// TSC of the last receive (or of the last change of mode).
    last_rx: u64,
}

/// One PMD's rx queues and its epoll set.
pub(super) struct RxQueues {
    queues: Vec<Rxq>,
    /// Indices into `queues` of the polled ones, in poll order.
    active: Vec<u32>,
    /// Queues that went idle in this sweep (kept to reuse its capacity).
    to_arm: Vec<u32>,
    /// Queues an epoch check or a rescue wakes (kept to reuse its capacity:
    /// no allocation on the PMD after the first).
    to_wake: Vec<u32>,
    epfd: OwnedFd,
    /// The PMD's wake-up eventfd (in the epoll set; owned by `Shared`).
    wake: RawFd,
    /// Notified or parked queues.
    waiting: usize,
    notify_after: u64,
    tsc_per_us: u64,
    next_events: u64,
    next_epochs: u64,
    next_rescue: u64,
    events: Vec<libc::epoll_event>,
}

fn key_of(port: &Arc<dyn Port>, qid: u16) -> (usize, u16) {
    (Arc::as_ptr(port) as *const () as usize, qid)
}

impl RxQueues {
    /// An epoll set holding `wake` (the PMD's wake-up eventfd).
    pub(super) fn new(wake: RawFd, tsc_per_us: u64) -> std::io::Result<RxQueues> {
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let q = RxQueues {
            queues: Vec::new(),
            active: Vec::new(),
            to_arm: Vec::new(),
            to_wake: Vec::new(),
            epfd,
            wake,
            waiting: 0,
            notify_after: 0,
            tsc_per_us,
            next_events: 0,
            next_epochs: 0,
            next_rescue: 0,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 64],
        };
        q.ctl(libc::EPOLL_CTL_ADD, wake, WAKE)?;
        Ok(q)
    }

    fn ctl(&self, op: i32, fd: RawFd, data: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        // SAFETY: epoll_ctl on our epoll fd with a valid event struct.
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Takes the queues of a new snapshot; a queue that was in the old one
    /// (same driver object, same queue) keeps its mode, so a rule change
    /// does not wake every idle port.
    pub(super) fn adopt(&mut self, snap: &Snapshot, pmd: usize, now: u64) {
        let mut old: HashMap<(usize, u16), Rxq> =
            self.queues.drain(..).map(|q| (q.key, q)).collect();
        self.active.clear();
        self.waiting = 0;
        for &rq in snap.poll_list(pmd) {
            let port = snap.ports[rq.slot as usize].port.clone();
            let key = key_of(&port, rq.qid);
            let i = self.queues.len() as u32;
            let q = match old.remove(&key) {
                Some(mut q) => {
                    q.rq = rq;
                    if let Mode::Notified { fd, .. } = &q.mode {
                        // Same fd, new index: its events must name the new one.
                        if self
                            .ctl(libc::EPOLL_CTL_MOD, fd.as_raw_fd(), i as u64)
                            .is_err()
                        {
                            q.port.disarm_rx_notify(rq.qid as usize);
                            q.mode = Mode::Polled { can_notify: true };
                        }
                    }
                    q
                }
                None => Rxq {
                    rq,
                    port,
                    key,
                    mode: Mode::Polled { can_notify: true },
                    last_rx: now,
                },
            };
            match q.mode {
                Mode::Polled { .. } => self.active.push(i),
                _ => self.waiting += 1,
            }
            self.queues.push(q);
        }
        // Queues this PMD no longer has (port removed, or moved to another
        // PMD, which starts by polling them): their peer stops signalling
        // and their fd leaves the epoll set.
        for (_, q) in old {
            if let Mode::Notified { fd, counter, .. } = q.mode {
                q.port.disarm_rx_notify(q.rq.qid as usize);
                let _ = self.ctl(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), 0);
                // A signal left in it would wake the next PMD to arm it for nothing.
                if counter {
                    drain(&fd);
                }
            }
        }
        self.publish_modes(snap);
    }

    /// The mode of every queue, for `pmd-rxq-show`.
    fn publish_modes(&self, snap: &Snapshot) {
        for q in &self.queues {
            let m = match q.mode {
                Mode::Polled { .. } => RxqMode::Polled,
                Mode::Notified { .. } => RxqMode::Notified,
                Mode::Parked { .. } => RxqMode::Parked,
            };
            let sp = &snap.ports[q.rq.slot as usize];
            sp.rxq_mode[q.rq.qid as usize].store(m as u8, Relaxed);
        }
    }

    pub(super) fn set_notify_after_us(&mut self, us: u64) {
        self.notify_after = us * self.tsc_per_us;
    }

    /// The queues to poll this sweep.
    #[inline]
    pub(super) fn active(&self) -> &[u32] {
        &self.active
    }

    #[inline]
    pub(super) fn rxq(&self, i: u32) -> RxqRef {
        self.queues[i as usize].rq
    }

    #[inline]
    pub(super) fn received(&mut self, i: u32, now: u64) {
        self.queues[i as usize].last_rx = now;
    }

    /// Queue `i` found nothing at `now`: if it has been silent long
    /// enough, it is asked to be signalled after this sweep.
    #[inline]
    pub(super) fn empty(&mut self, i: u32, now: u64) {
        let q = &self.queues[i as usize];
        if self.notify_after != 0
            && now.wrapping_sub(q.last_rx) > self.notify_after
            && matches!(q.mode, Mode::Polled { can_notify: true })
        {
            self.to_arm.push(i);
        }
    }

    /// After a sweep: arms the queues that went idle, looks at the epoll set
    /// when due -- every [`EVENT_CHECK_US`] while packets flow, after every
    /// sweep that found nothing (a spinning PMD has the time: a kick then
    /// wakes its queue in about a microsecond, not up to 25) -- and checks
    /// waiting queues' epochs and rescue polls when due. Returns whether a
    /// queue came back to the poll list.
    pub(super) fn after_sweep(&mut self, snap: &Snapshot, now: u64, empty: bool) -> bool {
        let mut changed = false;
        if !self.to_arm.is_empty() {
            let mut to_arm = std::mem::take(&mut self.to_arm);
            for &i in &to_arm {
                changed |= self.arm(i, now);
            }
            to_arm.clear();
            self.to_arm = to_arm;
        }
        if self.waiting > 0 {
            if empty || now >= self.next_events {
                self.next_events = now + EVENT_CHECK_US * self.tsc_per_us;
                changed |= self.take_events(snap, 0, now);
            }
            if now >= self.next_epochs {
                self.next_epochs = now + EPOCH_CHECK_MS * 1000 * self.tsc_per_us;
                changed |= self.check_epochs(now);
            }
            if now >= self.next_rescue {
                self.next_rescue = now + RESCUE_MS * 1000 * self.tsc_per_us;
                // Signals already in count as signals, not as late.
                changed |= self.take_events(snap, 0, now);
                changed |= self.rescue(snap, now);
            }
        }
        if changed {
            self.publish_modes(snap);
        }
        changed
    }

    fn arm(&mut self, i: u32, now: u64) -> bool {
        let q = &mut self.queues[i as usize];
        let port = q.port.clone();
        let qid = q.rq.qid as usize;
        match port.arm_rx_notify(qid) {
            RxNotify::Unsupported => {
                q.mode = Mode::Polled { can_notify: false };
                return false;
            }
            RxNotify::Pending => {
                q.last_rx = now;
                return false;
            }
            RxNotify::Armed { fd, epoch, counter } => {
                let raw = fd.as_raw_fd();
                q.mode = Mode::Notified { fd, epoch, counter };
                if self.ctl(libc::EPOLL_CTL_ADD, raw, i as u64).is_err() {
                    // Not pollable after all: stay polled for good.
                    port.disarm_rx_notify(qid);
                    self.queues[i as usize].mode = Mode::Polled { can_notify: false };
                    return false;
                }
            }
            RxNotify::Parked { epoch } => q.mode = Mode::Parked { epoch },
        }
        self.active.retain(|&a| a != i);
        self.waiting += 1;
        true
    }

    /// Queue `i` goes back to the poll list.
    fn wake(&mut self, i: u32, now: u64) {
        let q = &mut self.queues[i as usize];
        let qid = q.rq.qid as usize;
        match std::mem::replace(&mut q.mode, Mode::Polled { can_notify: true }) {
            Mode::Notified { fd, counter, .. } => {
                q.port.disarm_rx_notify(qid);
                // The kick fd lives on in the control thread: closing our
                // duplicate alone would leave it in the epoll set.
                let _ = self.ctl(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), 0);
                if counter {
                    drain(&fd);
                }
            }
            Mode::Parked { .. } => {}
            Mode::Polled { .. } => return,
        }
        self.queues[i as usize].last_rx = now;
        self.waiting -= 1;
        self.active.push(i);
    }

    /// Handles what the epoll set has, waiting up to `timeout_us` (0: not at
    /// all). Returns whether a queue came back.
    pub(super) fn take_events(&mut self, snap: &Snapshot, timeout_us: u64, now: u64) -> bool {
        let ts = libc::timespec {
            tv_sec: (timeout_us / 1_000_000) as libc::time_t,
            tv_nsec: ((timeout_us % 1_000_000) * 1000) as libc::c_long,
        };
        // SAFETY: epoll_pwait2 (Linux 5.11) fills at most `events.len()`
        // entries of our buffer; a null sigmask means none.
        let n = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as libc::c_int,
                &ts as *const libc::timespec,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        if n <= 0 {
            return false;
        }
        let mut woke = false;
        for k in 0..n as usize {
            let data = self.events[k].u64;
            if data == WAKE {
                // The PMD looks at the generation and its packet-outs anyway.
                let mut v = 0u64;
                // SAFETY: reads 8 bytes into a u64 from our non-blocking eventfd.
                unsafe { libc::read(self.wake, (&mut v as *mut u64).cast(), 8) };
                continue;
            }
            let i = data as u32;
            if (i as usize) < self.queues.len()
                && matches!(self.queues[i as usize].mode, Mode::Notified { .. })
            {
                let rq = self.queues[i as usize].rq;
                snap.ports[rq.slot as usize].rxq_wakeups[rq.qid as usize].fetch_add(1, Relaxed);
                self.wake(i, now);
                woke = true;
            }
        }
        if woke {
            self.publish_modes(snap);
        }
        woke
    }

    fn check_epochs(&mut self, now: u64) -> bool {
        let mut moved = std::mem::take(&mut self.to_wake);
        moved.clear();
        for (i, q) in self.queues.iter().enumerate() {
            let had = match q.mode {
                Mode::Notified { epoch, .. } | Mode::Parked { epoch } => epoch,
                Mode::Polled { .. } => continue,
            };
            if q.port.rx_notify_epoch(q.rq.qid as usize) != Some(had) {
                moved.push(i as u32);
            }
        }
        for &i in &moved {
            self.wake(i, now);
        }
        let any = !moved.is_empty();
        self.to_wake = moved;
        any
    }

    /// Polls every notified queue's ring once: a peer that added packets
    /// without signalling (or a signal lost) is served now, counted.
    fn rescue(&mut self, snap: &Snapshot, now: u64) -> bool {
        let mut late = std::mem::take(&mut self.to_wake);
        late.clear();
        for (i, q) in self.queues.iter().enumerate() {
            if let Mode::Notified { .. } = q.mode {
                if q.port.rx_pending(q.rq.qid as usize) {
                    snap.ports[q.rq.slot as usize].rxq_late_wakeups[q.rq.qid as usize]
                        .fetch_add(1, Relaxed);
                    late.push(i as u32);
                }
            }
        }
        for &i in &late {
            self.wake(i, now);
        }
        let any = !late.is_empty();
        self.to_wake = late;
        any
    }
}

/// Empties an eventfd (never blocks: called after epoll said it is readable,
/// and a second reader is not expected; a spurious wake-up costs one poll).
fn drain(fd: &OwnedFd) {
    let mut v = 0u64;
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on our descriptor, no wait.
    if unsafe { libc::poll(&mut pfd, 1, 0) } == 1 {
        // SAFETY: reads 8 bytes into a u64 we own.
        unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}
