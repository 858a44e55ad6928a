//! A guest's memory as the frontend shared it (SET_MEM_TABLE), with a small
//! translation table for the packet path: guest-physical or frontend-virtual
//! address + length -> host pointer, bounds-checked against one region.
//!
//! The mappings themselves are made and owned by vm-memory; this table only
//! caches their host addresses so the ring walker can translate without the
//! per-access trait machinery.

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
        Ok(GuestMem::with_uvas(mappings, &uvas))
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
