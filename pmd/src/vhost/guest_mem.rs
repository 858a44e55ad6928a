//! A guest's memory as the frontend shared it (SET_MEM_TABLE), with a small
//! translation table for the packet path: guest-physical or frontend-virtual
//! address + length -> host pointer, bounds-checked against one region.
//!
//! The mappings themselves are made and owned by vm-memory; this table only
//! caches their host addresses so the ring walker can translate without the
//! per-access trait machinery.

use super::fault_guard::Guard;
use std::fs::File;
use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{
    FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

#[derive(Clone, Copy, Debug)]
struct Region {
    gpa: u64,
    uva: u64,
    len: u64,
    host: *mut u8,
}

pub struct GuestMem {
    regions: Vec<Region>,
    /// Mappings of files we could not seal, watched for truncation; declared
    /// before the mappings so they unregister before the unmap.
    guards: Vec<Guard>,
    _mappings: GuestMemoryMmap,
}

// SAFETY: the raw host pointers point into mappings owned by `_mappings`,
// which live exactly as long as this value; concurrent access to guest memory
// is inherent to virtio (the guest writes it too) and done with volatile-safe
// copies by the ring walker.
unsafe impl Send for GuestMem {}
// SAFETY: see above; the table itself is immutable after construction.
unsafe impl Sync for GuestMem {}

#[derive(Debug, thiserror::Error)]
pub enum GuestMemError {
    #[error("memory table has {regions} regions but {files} file descriptors")]
    FdCount { regions: usize, files: usize },
    #[error("memory region at guest address {gpa:#x} cannot be mapped: {reason}")]
    Map { gpa: u64, reason: String },
}

/// A mapping past the end of its file faults (SIGBUS) on first access and
/// would kill the whole switch: refuse a region whose `offset + size` is
/// beyond a regular file's length (memfd, hugetlbfs and tmpfs files are
/// regular). Other kinds (devices) have no length to check against. A file
/// truncated later is issue 12's other half (seals or a guarded access).
fn check_within_file(f: &File, offset: u64, size: u64) -> Result<(), String> {
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat the region's file: {e}"))?;
    if !meta.file_type().is_file() {
        return Ok(());
    }
    let end = offset
        .checked_add(size)
        .ok_or_else(|| "mmap_offset + size overflows".to_string())?;
    if end > meta.len() {
        return Err(format!(
            "mmap_offset {offset:#x} + size {size:#x} is beyond the end of its file ({:#x} bytes)",
            meta.len()
        ));
    }
    Ok(())
}

/// Keeps a region's file from shrinking under the mapping for as long as it
/// lives (a later truncate would SIGBUS on the next access):
/// memfds that allow sealing get F_SEAL_SHRINK; QEMU's memfd backend seals
/// its own. False for files that cannot be sealed (hugetlbfs or tmpfs paths,
/// memfds made without MFD_ALLOW_SEALING): those are mapped as every
/// vhost-user backend maps them, and `fault_guard` keeps a truncation from
/// killing the switch.
fn seal_against_shrinking(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GET_SEALS only reads.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_SHRINK != 0 {
        return true;
    }
    // SAFETY: as above; F_ADD_SEALS fails (EPERM/EINVAL) where sealing is not allowed.
    unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) == 0 }
}

impl GuestMem {
    /// Maps the regions of a SET_MEM_TABLE message.
    pub fn from_vhost(
        regions: &[VhostUserMemoryRegion],
        files: Vec<File>,
    ) -> Result<GuestMem, GuestMemError> {
        if regions.len() != files.len() {
            return Err(GuestMemError::FdCount {
                regions: regions.len(),
                files: files.len(),
            });
        }
        let mut ranges = Vec::with_capacity(regions.len());
        let mut uvas = Vec::with_capacity(regions.len());

        let mut sorted: Vec<_> = regions.iter().zip(files).collect();
        sorted.sort_by_key(|(r, _)| r.guest_phys_addr);
        for (r, f) in sorted {
            let size = usize::try_from(r.memory_size)
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| GuestMemError::Map {
                    gpa: r.guest_phys_addr,
                    reason: "bad size".into(),
                })?;
            // Seal first, then check: a frontend resizing the file in a loop
            // must not get it sealed at a size smaller than the one checked.
            seal_against_shrinking(&f);
            check_within_file(&f, r.mmap_offset, r.memory_size).map_err(|reason| {
                GuestMemError::Map {
                    gpa: r.guest_phys_addr,
                    reason,
                }
            })?;
            ranges.push((
                GuestAddress(r.guest_phys_addr),
                size,
                Some(FileOffset::new(f, r.mmap_offset)),
            ));
            uvas.push(r.user_addr);
        }
        let mappings =
            GuestMemoryMmap::from_ranges_with_files(ranges).map_err(|e| GuestMemError::Map {
                gpa: 0,
                reason: e.to_string(),
            })?;
        let mut mem = GuestMem::with_uvas(mappings, &uvas);
        // Every region, sealed or not: a seal stops truncation, not a hole
        // punched in a hugetlb file whose pages then cannot come back.
        for r in mem.regions.iter() {
            match Guard::new(r.host, r.len as usize) {
                Some(g) => mem.guards.push(g),
                None => tracing::warn!(
                    gpa = r.gpa,
                    "every fault guard is taken: a frontend that truncates this region's file \
                     would crash the switch"
                ),
            }
        }
        Ok(mem)
    }

    /// True once a frontend truncated a file behind this memory (its
    /// mappings now read as zeros): the connection is to be dropped.
    pub fn truncated(&self) -> bool {
        self.guards.iter().any(Guard::poisoned)
    }

    /// Wraps memory built elsewhere (tests): frontend addresses equal guest addresses.
    pub fn from_mmap(mappings: GuestMemoryMmap) -> GuestMem {
        let uvas: Vec<u64> = mappings.iter().map(|r| r.start_addr().0).collect();
        GuestMem::with_uvas(mappings, &uvas)
    }

    fn with_uvas(mappings: GuestMemoryMmap, uvas: &[u64]) -> GuestMem {
        let regions = mappings
            .iter()
            .zip(uvas)
            .map(|(r, uva)| Region {
                gpa: r.start_addr().0,
                uva: *uva,
                len: r.len(),
                host: r
                    .get_host_address(MemoryRegionAddress(0))
                    .expect("offset 0 is in the region"),
            })
            .collect();
        GuestMem {
            regions,
            guards: Vec::new(),
            _mappings: mappings,
        }
    }

    pub fn mappings(&self) -> &GuestMemoryMmap {
        &self._mappings
    }

    /// Host pointer to `len` bytes at guest-physical `gpa`, or None if the
    /// range is not wholly inside one region.
    #[inline]
    pub fn gpa(&self, gpa: u64, len: u64) -> Option<*mut u8> {
        for r in &self.regions {
            let off = gpa.wrapping_sub(r.gpa);
            if gpa >= r.gpa && off < r.len && len <= r.len - off {
                // SAFETY: off + len <= r.len, so the result stays in the mapping.
                return Some(unsafe { r.host.add(off as usize) });
            }
        }
        None
    }

    /// As [`gpa`](Self::gpa) for addresses in the frontend's own address
    /// space (SET_VRING_ADDR gives ring addresses this way).
    pub fn uva(&self, uva: u64, len: u64) -> Option<*mut u8> {
        for r in &self.regions {
            let off = uva.wrapping_sub(r.uva);
            if uva >= r.uva && off < r.len && len <= r.len - off {
                // SAFETY: as in `gpa`.
                return Some(unsafe { r.host.add(off as usize) });
            }
        }
        None
    }

    pub fn total_size(&self) -> u64 {
        self.regions.iter().map(|r| r.len).sum()
    }

    pub fn n_regions(&self) -> usize {
        self.regions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd(len: u64) -> File {
        // SAFETY: memfd_create with a static NUL-terminated name; the fd is new and ours.
        let fd = unsafe { libc::memfd_create(c"fv-guest-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is a valid, owned descriptor.
        let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.set_len(len).unwrap();
        f
    }

    /// A frontend that truncates guest memory after SET_MEM_TABLE would make
    /// the next access SIGBUS the switch: a sealable memfd is sealed against
    /// shrinking, so the truncate fails instead.
    #[test]
    fn guest_memory_cannot_shrink_under_the_mapping() {
        // SAFETY: memfd_create with a static NUL-terminated name; the fd is new and ours.
        let fd = unsafe { libc::memfd_create(c"fv-guest-seal".as_ptr(), libc::MFD_ALLOW_SEALING) };
        assert!(fd >= 0);
        // SAFETY: fd is a valid, owned descriptor.
        let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.set_len(0x2000).unwrap();
        let frontend = f.try_clone().unwrap();
        let g = GuestMem::from_vhost(&[region(0x2000, 0)], vec![f]).unwrap();
        assert!(frontend.set_len(0).is_err(), "the truncate is refused");
        assert!(frontend.set_len(0x4000).is_ok(), "growing stays allowed");
        assert!(g.gpa(0x1000, 0x2000).is_some());
        assert!(!g.truncated());
    }

    /// An unsealable file is mapped under a fault guard: truncating it turns
    /// the memory into zeros and marks it, instead of a SIGBUS.
    #[test]
    fn an_unsealable_file_truncated_later_reads_as_zeros() {
        let f = memfd(0x4000);
        let frontend = f.try_clone().unwrap();
        let g = GuestMem::from_vhost(&[region(0x4000, 0)], vec![f]).unwrap();
        let p = g.gpa(0x3000, 16).unwrap();
        // SAFETY: inside the mapping just made.
        unsafe { p.write_volatile(9) };
        frontend.set_len(0).unwrap();
        // SAFETY: as above; without the guard this read is a SIGBUS.
        assert_eq!(unsafe { p.read_volatile() }, 0);
        assert!(g.truncated());
    }

    fn region(size: u64, offset: u64) -> VhostUserMemoryRegion {
        VhostUserMemoryRegion::new(0x1000, size, 0x7f00_0000, offset)
    }

    /// A region longer than its file would SIGBUS the switch on first access.
    #[test]
    fn regions_beyond_their_file_are_refused() {
        assert!(GuestMem::from_vhost(&[region(0x2000, 0)], vec![memfd(0x2000)]).is_ok());
        let e = GuestMem::from_vhost(&[region(0x2000, 0)], vec![memfd(0x1000)])
            .err()
            .expect("a region longer than its file");
        assert!(e.to_string().contains("beyond the end of its file"), "{e}");
        assert!(GuestMem::from_vhost(&[region(0x1000, 0x1000)], vec![memfd(0x1800)]).is_err());
        assert!(
            GuestMem::from_vhost(&[region(0x1000, u64::MAX - 0x10)], vec![memfd(0x1000)]).is_err()
        );
    }

    #[test]
    fn translation_is_bounded_by_the_region() {
        let m = GuestMemoryMmap::<()>::from_ranges(&[
            (GuestAddress(0x1000), 0x2000),
            (GuestAddress(0x10000), 0x1000),
        ])
        .unwrap();
        let g = GuestMem::from_mmap(m);
        assert!(g.gpa(0x1000, 0x2000).is_some());
        assert!(g.gpa(0x2fff, 1).is_some());
        assert!(g.gpa(0x2fff, 2).is_none(), "crosses the end of a region");
        assert!(g.gpa(0x0fff, 1).is_none());
        assert!(g.gpa(0x3000, 1).is_none(), "gap between regions");
        assert!(g.gpa(0x10000, 0x1000).is_some());
        assert!(g.gpa(u64::MAX, 2).is_none(), "wrap-around");
        assert!(g.gpa(0x1000, u64::MAX).is_none());
        assert_eq!(g.total_size(), 0x3000);
    }
}
