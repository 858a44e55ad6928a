//! The packet path. Read top to bottom: [`pmd`] is the loop each PMD thread
//! runs (receive), [`pipeline`] the stages of a burst (flow key, cache,
//! classifier, actions), [`normal`] the learning switch action, [`tx`] the
//! output batches, [`encap`] and [`decap`] the tunnel stages (a burst from
//! an underlay is decapsulated before the pipeline; a frame for a tunnel
//! port is encapsulated on its way out); [`snapshot`] is the immutable picture of ports and rules
//! a PMD works from, [`placement`] which PMD polls which queue, [`stats`]
//! its counters; [`controller`] carries packets to and from the OpenFlow agent.
//!
//! This module owns the PMD threads and publishes snapshots to them.

pub mod controller;
pub mod decap;
pub mod encap;
pub mod normal;
pub mod pipeline;
pub mod placement;
pub mod pmd;
pub mod port_admin;
pub mod rx_modes;
pub mod snapshot;
pub mod stats;
pub mod tx;

use crate::fdb::Fdb;
use ::pmd::Pool;
use controller::{Channel, FromController, ToController};
use snapshot::Snapshot;
use stats::PmdStats;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) struct Shared {
    snapshot: Mutex<Arc<Snapshot>>,
    generation: AtomicU64,
    stop: AtomicBool,
    pub fdb: Arc<Fdb>,
    pub pool: Arc<Pool>,
    pub sleep_max_us: AtomicU32,
    /// pmd.rxq-notify-after (µs; 0: always poll).
    pub notify_after_us: AtomicU32,
    pub tsc_per_us: u64,
    /// Per PMD: an eventfd in its epoll set, written when it must look up
    /// (a new snapshot, a packet-out, stop) while it waits for its queues.
    pub wakes: Vec<OwnedFd>,
    /// Per PMD: packets to and from the OpenFlow agent.
    pub channels: Vec<Arc<Channel>>,
    /// Which PMD takes the next packet-out.
    next_out: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// Wakes PMD `i` if it waits in its epoll set (never blocks).
    fn wake(&self, i: usize) {
        if let Some(fd) = self.wakes.get(i) {
            let one = 1u64;
            // SAFETY: writes 8 bytes from a u64 to our own non-blocking eventfd.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    fn wake_all(&self) {
        for i in 0..self.wakes.len() {
            self.wake(i);
        }
    }

    /// Only taken when the generation changed, never per iteration.
    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .lock()
            .expect("snapshot lock poisoned")
            .clone()
    }
}

pub struct Datapath {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    pub pmds: Vec<Arc<PmdStats>>,
    /// CPUs of the other threads (for `show`; set by the daemon).
    pub control_cores: Vec<usize>,
}

/// Marks its PMD as gone when dropped, also when the thread unwinds.
struct ExitMark(Arc<PmdStats>);

impl Drop for ExitMark {
    fn drop(&mut self) {
        self.0.exited.store(true, Ordering::Release);
    }
}

/// The CPU's time-stamp counter: cycles for the PMDs' and auto-lb's accounting.
#[inline]
pub(crate) fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

/// Measures the TSC rate once, to turn cycles into time.
fn tsc_per_us() -> u64 {
    let t = Instant::now();
    let c0 = tsc();
    std::thread::sleep(Duration::from_millis(20));
    let c1 = tsc();
    ((c1 - c0) / t.elapsed().as_micros().max(1) as u64).max(1)
}

impl Datapath {
    /// Starts one PMD thread per core, named `pmd<core>` and pinned to it.
    pub fn start(
        cores: &[usize],
        fdb: Arc<Fdb>,
        pool: Arc<Pool>,
        sleep_max_us: u32,
        notify_after_us: u32,
    ) -> std::io::Result<Datapath> {
        let wakes = cores
            .iter()
            .map(|_| {
                // SAFETY: eventfd returns a new descriptor or -1.
                let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: a fresh descriptor nobody else owns.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Arc::new(Snapshot::empty(cores.len()))),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            fdb,
            pool,
            sleep_max_us: AtomicU32::new(sleep_max_us),
            notify_after_us: AtomicU32::new(notify_after_us),
            tsc_per_us: tsc_per_us(),
            wakes,
            channels: cores.iter().map(|_| Arc::new(Channel::default())).collect(),
            next_out: Default::default(),
        });
        let mut threads = Vec::new();
        let mut pmds = Vec::new();
        for (index, &core) in cores.iter().enumerate() {
            let stats = Arc::new(PmdStats {
                core,
                ..Default::default()
            });
            pmds.push(stats.clone());
            let sh = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("pmd{core}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        tracing::warn!("pmd{core}: cannot pin to CPU {core}; running unpinned");
                    }
                    // Short sleeps should be short: the default 50 µs timer slack
                    // would dwarf a 1 µs back-off step.
                    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's slack.
                    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000, 0, 0, 0) };
                    // A PMD that dies (a bug) must not make `publish` wait for it forever.
                    let _exited = ExitMark(stats.clone());
                    pmd::Pmd::new(index, sh, stats).run();
                })?;
            threads.push(t);
        }
        Ok(Datapath {
            shared,
            threads,
            pmds,
            control_cores: Vec::new(),
        })
    }

    pub fn tsc_per_us(&self) -> u64 {
        self.shared.tsc_per_us
    }

    pub fn n_pmds(&self) -> usize {
        self.pmds.len()
    }

    /// PMD cores, in PMD order.
    pub fn cores(&self) -> Vec<usize> {
        self.pmds.iter().map(|p| p.core).collect()
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.shared.current()
    }

    /// Installs a new snapshot and waits until every PMD runs it, so that
    /// whatever the old one held (a removed port, its driver's memory) is no
    /// longer in use by a PMD. A queue that changes PMD is first taken off
    /// every poll list (one more snapshot), so two PMDs never poll one ring;
    /// its packets wait in the ring meanwhile. Sets the generation.
    pub fn publish(&self, snap: Snapshot) -> Arc<Snapshot> {
        if let Some(between) = snap.without_moved_queues(&self.current()) {
            self.install(between);
        }
        self.install(snap)
    }

    /// Never gives up waiting: freeing a port under a late PMD is worse than
    /// a slow control plane, which it says in the log.
    fn install(&self, mut snap: Snapshot) -> Arc<Snapshot> {
        let mut current = self.shared.snapshot.lock().expect("snapshot lock poisoned");
        let generation = current.generation + 1;
        snap.generation = generation;
        let snap = Arc::new(snap);
        // Held until every PMD has moved on, so that the last reference to
        // the old snapshot (its classifier, thousands of rules) is dropped
        // here and its memory freed on this thread, never on a PMD's.
        let _old = std::mem::replace(&mut *current, snap.clone());
        self.shared.generation.store(generation, Ordering::Release);
        drop(current);
        self.shared.wake_all();
        let started = Instant::now();
        let mut next_warning = started + Duration::from_secs(2);
        loop {
            let behind: Vec<usize> = self
                .pmds
                .iter()
                .filter(|p| {
                    !p.exited.load(Ordering::Acquire)
                        && p.generation.load(Ordering::Acquire) < generation
                })
                .map(|p| p.core)
                .collect();
            if behind.is_empty() {
                break;
            }
            if Instant::now() >= next_warning {
                tracing::warn!(
                    "PMD core(s) {behind:?} still run an older snapshot after {:.0?}; waiting before freeing what it held",
                    started.elapsed()
                );
                next_warning += Duration::from_secs(2);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        snap
    }

    /// Hands every packet the PMDs copied for the controllers to `f`
    /// (which owns its buffer and frees it). Returns how many.
    pub fn drain_to_controller(&self, mut f: impl FnMut(ToController)) -> usize {
        let mut n = 0;
        for c in &self.shared.channels {
            while let Some(p) = c.to_agent.pop() {
                f(p);
                n += 1;
            }
        }
        n
    }

    /// Queues a controller's packet for a PMD (round robin); gives it back
    /// when that PMD's queue is full.
    pub fn packet_out(&self, p: FromController) -> Result<(), FromController> {
        let n = self.shared.channels.len();
        if n == 0 {
            return Err(p);
        }
        let i = self.shared.next_out.fetch_add(1, Ordering::Relaxed) % n;
        self.shared.channels[i].from_agent.push(p)?;
        self.shared.wake(i);
        Ok(())
    }

    pub fn set_sleep_max(&self, us: u32) {
        self.shared.sleep_max_us.store(us, Ordering::Relaxed);
    }

    pub fn set_notify_after(&self, us: u32) {
        self.shared.notify_after_us.store(us, Ordering::Relaxed);
    }

    pub fn notify_after(&self) -> u32 {
        self.shared.notify_after_us.load(Ordering::Relaxed)
    }

    pub fn sleep_max(&self) -> u32 {
        self.shared.sleep_max_us.load(Ordering::Relaxed)
    }

    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;
