//! Packet memory regions: 2 MiB hugepages when the kernel has them reserved,
//! normal pages otherwise (with one warning per process).
//!
//! Every region is a shared mapping of its own memfd, so the virtio-user
//! driver can hand it to a vhost-user backend (SET_MEM_TABLE) and the
//! backend reads our packet buffers in place, as DPDK's memfd segments allow.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Once;

pub const HUGEPAGE_SIZE: usize = 2 << 20;

/// Which kind of page backs a region; shown by `ferrovs-ctl show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    Huge2M,
    Normal,
}

impl PageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Huge2M => "hugepages-2048kB",
            PageKind::Normal => "4KiB-pages",
        }
    }
}

/// An owned, zero-filled mapping of a memfd. Unmapped on drop.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    kind: PageKind,
    fd: OwnedFd,
}

// SAFETY: the region is plain memory owned by this value; users synchronise
// access to its contents themselves (the buffer pool hands out disjoint buffers).
unsafe impl Send for Region {}
// SAFETY: as above, shared references only expose the base pointer.
unsafe impl Sync for Region {}

static FALLBACK_WARNING: Once = Once::new();

#[derive(Debug, thiserror::Error)]
pub enum MemError {
    #[error("cannot map {len} bytes of packet memory: {source}")]
    Map { len: usize, source: std::io::Error },
}

impl Region {
    /// Maps `len` bytes (rounded up to 2 MiB), trying hugepages first unless
    /// `allow_huge` is false.
    pub fn new(len: usize, allow_huge: bool) -> Result<Region, MemError> {
        let len = len.div_ceil(HUGEPAGE_SIZE) * HUGEPAGE_SIZE;
        if allow_huge {
            if let Some((ptr, fd)) = map(len, libc::MFD_HUGETLB | libc::MFD_HUGE_2MB) {
                return Ok(Region {
                    ptr,
                    len,
                    kind: PageKind::Huge2M,
                    fd,
                });
            }
            FALLBACK_WARNING.call_once(|| {
                tracing::warn!(
                    "no free 2 MiB hugepages for {} MiB of packet buffers; using normal pages \
                     (slower). Reserve some with: echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                    len >> 20
                );
            });
        }
        match map(len, 0) {
            Some((ptr, fd)) => Ok(Region {
                ptr,
                len,
                kind: PageKind::Normal,
                fd,
            }),
            None => Err(MemError::Map {
                len,
                source: std::io::Error::last_os_error(),
            }),
        }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn kind(&self) -> PageKind {
        self.kind
    }

    /// The memfd behind the mapping (offset 0 is `as_ptr()`).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// True when `[addr, addr+len)` lies inside this region.
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        let base = self.ptr.as_ptr() as usize;
        addr >= base && len <= self.len && addr - base <= self.len - len
    }
}

fn map(len: usize, memfd_flags: libc::c_uint) -> Option<(NonNull<u8>, OwnedFd)> {
    // Sealable: sealed against resizing right after it is sized.
    // SAFETY: the name is a NUL-terminated literal; the result is checked.
    let raw = unsafe {
        libc::memfd_create(
            c"ferrovs-pkt".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | memfd_flags,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: plain syscall on a descriptor we own.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return None;
    }
    // Fixed size from now on: a vhost-user backend we share it with cannot
    // truncate it under our mappings (SIGBUS) or grow it.
    // SAFETY: fcntl on our own memfd, made with MFD_ALLOW_SEALING.
    unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
        )
    };
    // SAFETY: a shared mapping of our own memfd with no address hint; the
    // result is checked against MAP_FAILED. Hugetlb mappings fail here (not
    // later with SIGBUS) when the reserved pages do not cover `len`.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast()).map(|p| (p, fd))
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned and nothing borrows the
        // region once its owner is dropped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_pages_are_zeroed_and_writable() {
        let r = Region::new(4096, false).unwrap();
        assert_eq!(r.kind(), PageKind::Normal);
        assert_eq!(r.len(), HUGEPAGE_SIZE);
        // SAFETY: within the mapping just created.
        unsafe {
            assert_eq!(*r.as_ptr().add(100), 0);
            *r.as_ptr().add(100) = 7;
            assert_eq!(*r.as_ptr().add(100), 7);
        }
    }

    #[test]
    fn huge_request_falls_back_or_succeeds() {
        let r = Region::new(HUGEPAGE_SIZE, true).unwrap();
        assert!(matches!(r.kind(), PageKind::Huge2M | PageKind::Normal));
    }

    #[test]
    fn region_is_shareable_through_its_fd() {
        let r = Region::new(4096, false).unwrap();
        // SAFETY: within the mapping.
        unsafe { *r.as_ptr().add(4000) = 42 };
        // SAFETY: a second shared mapping of the same memfd, unmapped below.
        let q = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                r.len(),
                libc::PROT_READ,
                libc::MAP_SHARED,
                r.fd(),
                0,
            )
        };
        assert_ne!(q, libc::MAP_FAILED);
        // SAFETY: q maps r.len() bytes.
        assert_eq!(unsafe { *q.cast::<u8>().add(4000) }, 42);
        // SAFETY: q came from mmap above.
        unsafe { libc::munmap(q, r.len()) };
        assert!(r.contains(r.as_ptr() as usize + 10, 100));
        assert!(!r.contains(r.as_ptr() as usize + r.len() - 10, 100));
    }
}
