//! Packet memory regions: anonymous 2 MiB hugepages when the kernel has them
//! reserved, normal pages otherwise (with one warning per process).

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

/// An owned, zero-filled, private mapping. Unmapped on drop.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    kind: PageKind,
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
            if let Some(ptr) = map(len, libc::MAP_HUGETLB | (21 << libc::MAP_HUGE_SHIFT)) {
                return Ok(Region {
                    ptr,
                    len,
                    kind: PageKind::Huge2M,
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
            Some(ptr) => Ok(Region {
                ptr,
                len,
                kind: PageKind::Normal,
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
}

fn map(len: usize, extra_flags: i32) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; the result is checked against MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra_flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast())
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
}
