//! Survives a frontend truncating guest memory we cannot seal.
//!
//! A mapping of a file that shrinks faults with SIGBUS on the next access,
//! which would kill the switch and every VM on it. Sealable memfds are sealed
//! against shrinking (see `guest_mem`); what is left (hugetlbfs or tmpfs
//! files, memfds made without MFD_ALLOW_SEALING) is registered here. A
//! process-wide SIGBUS handler that finds the faulting address inside a
//! registered mapping puts anonymous zero pages over the whole mapping
//! (MAP_FIXED, so the address stays ours and nothing else can land there),
//! marks the mapping poisoned and returns: the interrupted copy finishes on
//! zeros, the ring reads as empty, and the control thread drops the peer on
//! its next look. Any other SIGBUS goes to the handler installed before ours
//! (Rust's runtime) or the default action.
//!
//! The handler only reads atomics and calls mmap, which is a plain system
//! call on Linux; nothing here allocates or locks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Mappings that can be guarded at once (eight regions per port for 1000
/// ports would be 8000: past this the mapping is left unguarded, with a warning).
const SLOTS: usize = 4096;
const FREE: usize = 0;
const CLAIMED: usize = 1;

struct Slot {
    /// Start address; FREE or CLAIMED while not in use.
    start: AtomicUsize,
    len: AtomicUsize,
    poisoned: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // used only as an array initialiser
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(FREE),
    len: AtomicUsize::new(0),
    poisoned: AtomicBool::new(false),
};
static SLOTS_TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
/// Every mapping ever guarded (for tests and `show`).
static FAULTS: AtomicUsize = AtomicUsize::new(0);

static INSTALL: Once = Once::new();
/// The SIGBUS action before ours, written once before ours is installed.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A guarded mapping; unregistered on drop (before the mapping goes away).
#[derive(Debug)]
pub struct Guard(usize);

impl Guard {
    /// Guards `[start, start+len)`; None when every slot is taken.
    pub fn new(start: *mut u8, len: usize) -> Option<Guard> {
        INSTALL.call_once(install);
        for (i, s) in SLOTS_TABLE.iter().enumerate() {
            if s.start
                .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                s.len.store(len, Ordering::Release);
                s.poisoned.store(false, Ordering::Relaxed);
                s.start.store(start as usize, Ordering::Release);
                return Some(Guard(i));
            }
        }
        None
    }

    /// True once the file behind the mapping was found truncated.
    pub fn poisoned(&self) -> bool {
        SLOTS_TABLE[self.0].poisoned.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        SLOTS_TABLE[self.0].start.store(FREE, Ordering::Release);
    }
}

/// How many truncated mappings the handler has replaced, process-wide.
pub fn faults() -> usize {
    FAULTS.load(Ordering::Relaxed)
}

fn install() {
    // SAFETY: sigaction with a handler of the SA_SIGINFO signature; the old
    // action is stored before the new one can run (PREVIOUS is written only
    // here, once, and read only by the handler afterwards).
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) == 0 {
            PREVIOUS = Some(old);
        }
        if libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) != 0 {
            tracing::warn!(
                "cannot install the SIGBUS handler: a truncated guest memory file would crash the switch"
            );
        }
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Sent by someone (kill -BUS), not a fault: nothing to repair, and
    // handing it on could reset the disposition and lose the guard.
    if code <= 0 {
        return;
    }
    for s in SLOTS_TABLE.iter() {
        let start = s.start.load(Ordering::Acquire);
        if start <= CLAIMED {
            continue;
        }
        let len = s.len.load(Ordering::Acquire);
        // The slot may have been freed and reused between the two loads.
        if s.start.load(Ordering::Acquire) != start {
            continue;
        }
        if addr < start || addr - start >= len {
            continue;
        }
        // SAFETY: [start, start+len) is a live guest mapping this process
        // owns (registered until its Guard drops, before the unmap); fixed
        // anonymous pages replace it in place, so no other mapping is touched.
        let p = unsafe {
            libc::mmap(
                start as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            s.poisoned.store(true, Ordering::Release);
            FAULTS.fetch_add(1, Ordering::Relaxed);
            return; // the faulting access is retried on the zero pages
        }
    }
    // Not ours: hand it on.
    // SAFETY: PREVIOUS was written before this handler was installed.
    let prev = unsafe { *std::ptr::addr_of!(PREVIOUS) };
    match prev {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with this signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler takes the signal number only.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Default action: restore it and return; the access faults again and kills us.
            // SAFETY: resetting a signal's disposition to the default.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_file_mapping_reads_as_zeros_and_is_marked() {
        // SAFETY: a fresh memfd (not sealable) mapped shared, then truncated,
        // as a hostile frontend would; the mapping is ours to unmap.
        unsafe {
            let fd = libc::memfd_create(c"fv-guard-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, 0x4000), 0);
            let p = libc::mmap(
                std::ptr::null_mut(),
                0x4000,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
            .cast::<u8>();
            assert_ne!(p.cast(), libc::MAP_FAILED);
            p.add(0x3000).write_volatile(7);
            let g = Guard::new(p, 0x4000).unwrap();
            assert!(!g.poisoned());
            assert_eq!(libc::ftruncate(fd, 0), 0);
            // Without the guard this read kills the process.
            assert_eq!(p.add(0x3000).read_volatile(), 0);
            assert!(g.poisoned());
            assert!(faults() >= 1);
            p.add(0x10).write_volatile(1); // and writes land in the zero pages
            drop(g);
            libc::munmap(p.cast(), 0x4000);
            libc::close(fd);
        }
    }
}
