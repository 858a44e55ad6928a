//! Interrupt mode for idle receivers (DPDK testpmd's `--rx-mode`, l3fwd-power):
//! an lcore whose streams found nothing for a few sweeps asks each rx
//! queue's peer to signal new packets (`Port::arm_rx_notify`) and sleeps in
//! one epoll set until one does. A queue stays armed while it stays silent
//! (arming a thousand queues again after every wake-up would cost more than
//! the sweep); one that signals or receives is disarmed, so a busy queue
//! costs its peer no signal per packet.

use pmd::port::{Port, RxNotify};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

/// One stream's rx queue while armed: the fd in the epoll set and the
/// epoch it was armed under (a reconnect moves it: arm again).
struct Armed {
    fd: OwnedFd,
    epoch: u64,
    /// An eventfd to empty once it fired (see `RxNotify::Armed`).
    counter: bool,
    port: Arc<dyn Port>,
    qid: usize,
}

pub struct RxWaiter {
    epfd: OwnedFd,
    armed: Vec<Option<Armed>>,
    events: Vec<libc::epoll_event>,
}

impl RxWaiter {
    pub fn new(streams: usize) -> std::io::Result<RxWaiter> {
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RxWaiter {
            // SAFETY: a fresh descriptor nobody else owns.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            armed: (0..streams).map(|_| None).collect(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 64],
        })
    }

    /// Takes stream `i`'s queue out of the set and tells its peer to stop
    /// signalling.
    fn disarm(&mut self, i: usize) {
        let Some(a) = self.armed[i].take() else {
            return;
        };
        // SAFETY: removes an fd we added from our own epoll set.
        unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                a.fd.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
        a.port.disarm_rx_notify(a.qid);
        if a.counter {
            // A signal left in the eventfd would end the next wait at once.
            let mut v = 0u64;
            // SAFETY: reads 8 bytes into a u64 we own from a non-blocking
            // eventfd (EAGAIN when empty).
            unsafe { libc::read(a.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        }
    }

    /// Stream `i` received: its peer need not signal it any more.
    pub fn received(&mut self, i: usize) {
        if self.armed[i].is_some() {
            self.disarm(i);
        }
    }

    /// Arms every silent queue not armed yet and sleeps until one signals
    /// or `timeout` passes. Returns at once when a queue had packets while
    /// being armed; waits at most 1 ms when a queue cannot signal.
    pub fn wait<'a>(
        &mut self,
        queues: impl Iterator<Item = (&'a Arc<dyn Port>, usize)>,
        timeout: Duration,
    ) {
        let mut timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        for (i, (port, qid)) in queues.enumerate() {
            if let Some(a) = &self.armed[i] {
                if port.rx_notify_epoch(qid) == Some(a.epoch) {
                    continue;
                }
                self.disarm(i);
            }
            match port.arm_rx_notify(qid) {
                RxNotify::Armed { fd, epoch, counter } => {
                    let mut ev = libc::epoll_event {
                        events: libc::EPOLLIN as u32,
                        u64: i as u64,
                    };
                    // SAFETY: adds a valid fd we own to our epoll set.
                    let r = unsafe {
                        libc::epoll_ctl(
                            self.epfd.as_raw_fd(),
                            libc::EPOLL_CTL_ADD,
                            fd.as_raw_fd(),
                            &mut ev,
                        )
                    };
                    if r == 0 {
                        self.armed[i] = Some(Armed {
                            fd,
                            epoch,
                            counter,
                            port: Arc::clone(port),
                            qid,
                        });
                    } else {
                        port.disarm_rx_notify(qid);
                        timeout_ms = timeout_ms.min(1);
                    }
                }
                RxNotify::Pending => return,
                // Nothing to wait for on a parked queue; an unsupported one
                // is polled again soon.
                RxNotify::Parked { .. } => {}
                RxNotify::Unsupported => timeout_ms = timeout_ms.min(1),
            }
        }
        // SAFETY: epoll_wait writes at most events.len() entries into our buffer.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
        for k in 0..n.max(0) as usize {
            // The signal is taken (disarm empties it): the queue is polled again.
            self.disarm(self.events[k].u64 as usize);
        }
    }
}
