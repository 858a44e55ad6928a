//! One virtqueue of a vhost-user port: the state the control thread sets up
//! from vhost-user messages, and the running ring the PMD walks, under one
//! spin lock so a message (GET_VRING_BASE, SET_MEM_TABLE ...) can never change
//! a ring in the middle of a burst.

use super::guest_mem::GuestMem;
use super::split_ring::{RingAddrs, RingFeatures, SplitRing};
use crate::port::QueueStats;
use crate::sync::SpinLock;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

#[derive(Default)]
pub struct QueueState {
    pub size: u16,
    pub addrs: Option<RingAddrs>,
    pub base: u16,
    pub kick: Option<File>,
    /// `kick` is the frontend's eventfd (not a stand-in for "no fd").
    pub kick_is_fd: bool,
    pub call: Option<File>,
    /// Last SET_VRING_ENABLE; see [`QueueState::is_enabled`].
    pub enabled: bool,
    /// Whether a SET_VRING_ENABLE reached us on this connection.
    pub enable_seen: bool,
    pub features: RingFeatures,
    pub mem: Option<Arc<GuestMem>>,
    /// Some while the ring runs: every parameter set and the kick fd received.
    pub ring: Option<SplitRing>,
    pub last_error: Option<String>,
    /// Bumped whenever the ring or its kick fd is replaced or dropped: a
    /// PMD waiting on the old kick fd must poll the queue again.
    pub epoch: u64,
}

impl QueueState {
    /// (Re)starts the ring when everything it needs is known. Called after
    /// each message that changes one of its inputs.
    pub fn try_start(&mut self) {
        self.epoch += 1;
        let last_avail = self
            .ring
            .as_ref()
            .map(|r| r.last_avail)
            .unwrap_or(self.base);
        self.ring = None;
        let (Some(addrs), Some(mem)) = (self.addrs, self.mem.as_ref()) else {
            return;
        };
        if self.kick.is_none() || self.size == 0 {
            return;
        }
        match SplitRing::new(mem, self.size, addrs, last_avail, self.features) {
            Ok(r) => {
                self.ring = Some(r);
                self.last_error = None;
            }
            Err(e) => self.last_error = Some(e.to_string()),
        }
    }

    /// Stops the ring (GET_VRING_BASE) and returns where the guest should resume.
    pub fn stop(&mut self) -> u16 {
        self.epoch += 1;
        if let Some(r) = self.ring.take() {
            self.base = r.last_avail;
        }
        self.kick = None;
        self.base
    }

    /// Forgets the connection entirely (peer gone, RESET_OWNER).
    pub fn reset(&mut self) {
        let epoch = self.epoch + 1;
        *self = QueueState::default();
        self.epoch = epoch;
    }

    /// QEMU sends SET_VRING_ENABLE(1) as soon as the backend *offers*
    /// PROTOCOL_FEATURES, before SET_FEATURES acks it; the vhost crate refuses
    /// it then and we never see it. So a ring that has had no SET_VRING_ENABLE
    /// at all counts as enabled (as DPDK's vhost library behaves); an explicit
    /// disable is honoured.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled || !self.enable_seen
    }

    pub fn running(&self) -> bool {
        self.ring.is_some() && self.is_enabled()
    }

    /// Interrupts the guest; false when the call fd took nothing (a full
    /// pipe, an eventfd at its maximum, a bad fd). Never blocks: the fd is
    /// non-blocking (`nonblocking_call_fd`), and the PMD holds the ring lock.
    pub fn signal(&mut self) -> bool {
        match self.call.as_mut() {
            Some(call) => call.write(&1u64.to_ne_bytes()).is_ok(),
            None => true,
        }
    }
}

/// A frontend may pass any fd as a call fd (SET_VRING_CALL): a pipe that
/// nobody reads would block the PMD's write forever. Make it non-blocking.
pub fn nonblocking_call_fd(f: File) -> std::io::Result<File> {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL only change its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

pub struct VirtQueue {
    pub state: SpinLock<QueueState>,
    pub stats: QueueStats,
    /// Guest interrupts we raised.
    pub notifications: std::sync::atomic::AtomicU64,
    /// Extra enqueue attempts into a full guest ring (tx-retries-max).
    pub retries: std::sync::atomic::AtomicU64,
    /// Interrupts the call fd did not take (see `QueueState::signal`).
    pub signal_failures: std::sync::atomic::AtomicU64,
    /// Frames written into this (receive) queue from another guest's buffer.
    pub one_copy: std::sync::atomic::AtomicU64,
    /// Large TCP segments (GSO) this queue carried whole.
    pub gso: std::sync::atomic::AtomicU64,
}

impl VirtQueue {
    /// Interrupts the guest (its `state` is held by the caller), counted.
    #[inline]
    pub fn interrupt(&self, state: &mut QueueState) {
        if state.signal() {
            crate::port::bump(&self.notifications, 1);
        } else {
            self.signal_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Adds what the ring counted (only when there is something to add:
    /// this runs on every poll).
    #[inline]
    pub fn count(&self, c: super::split_ring::RingCounters) {
        if c.one_copy != 0 {
            crate::port::bump(&self.one_copy, c.one_copy);
        }
        if c.gso != 0 {
            crate::port::bump(&self.gso, c.gso);
        }
    }
}

impl Default for VirtQueue {
    fn default() -> Self {
        VirtQueue {
            state: SpinLock::new(QueueState::default()),
            stats: QueueStats::default(),
            notifications: Default::default(),
            retries: Default::default(),
            signal_failures: Default::default(),
            one_copy: Default::default(),
            gso: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;
    use std::time::Duration;

    /// A frontend passes a pipe nobody reads as its call fd and fills it:
    /// the PMD's interrupt must fail (and be counted), never block.
    #[test]
    fn a_full_pipe_as_call_fd_never_blocks_the_pmd() {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors we then own.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), 0) }, 0);
        // SAFETY: both are fresh, owned descriptors.
        let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let mut st = QueueState {
            call: Some(nonblocking_call_fd(w).unwrap()),
            ..QueueState::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ok = 0;
            for _ in 0..100_000 {
                if st.signal() {
                    ok += 1;
                }
            }
            let _ = tx.send(ok);
        });
        let ok = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("signal() blocked on a full pipe");
        assert!(ok < 100_000, "a 64 KiB pipe cannot take 800 KB");
        drop(r);
    }
}
