//! The driver's side of a split virtqueue (virtio 1.x §2.7): we own the
//! descriptor table and the available ring, the device (a vhost-user backend
//! in another process) owns the used ring. Buffers are our own mbufs, posted
//! by address: the backend maps the pool's memfd, so nothing is copied here.
//!
//! The device is not trusted: every used entry is checked (index in range,
//! buffer really outstanding, length within what was posted) before an mbuf
//! is touched; bad entries are counted and skipped.
//!
//! A packed ring would sit beside this file behind the same [`DriverRing`]
//! interface; the port code only uses that trait.

use crate::mbuf::{Batch, Mbuf, PoolCache};
use crate::port::{DropReason, QueueStats};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{fence, Ordering};

/// virtio-net header with VERSION_1 (12 bytes, `num_buffers` included).
pub const NET_HDR_LEN: usize = 12;
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
const AVAIL_F_NO_INTERRUPT: u16 = 1;
const USED_F_NO_NOTIFY: u16 = 1;
/// How far transmit reclaim stays behind the device's used index.
const RECLAIM_LAG: u16 = 32;
/// Per-descriptor scratch area for indirect TX: a 2-entry table + header.
const INDIRECT_SLOT: usize = 64;

#[repr(C)]
#[derive(Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// Where one queue's parts live inside the port's ring memory.
#[derive(Clone, Copy, Debug)]
pub struct RingLayout {
    pub desc: usize,
    pub avail: usize,
    pub used: usize,
    pub indirect: usize,
    /// Bytes the queue occupies (a multiple of 4 KiB).
    pub bytes: usize,
}

impl RingLayout {
    pub fn new(size: u16) -> RingLayout {
        let n = size as usize;
        let desc = 0;
        let avail = desc + 16 * n;
        let used = (avail + 6 + 2 * n).next_multiple_of(64);
        let indirect = (used + 6 + 8 * n).next_multiple_of(64);
        let bytes = (indirect + INDIRECT_SLOT * n).next_multiple_of(4096);
        RingLayout {
            desc,
            avail,
            used,
            indirect,
            bytes,
        }
    }
}

/// What every driver-side ring offers the port (split now, packed later).
pub trait DriverRing {
    /// Forgets all state and gives back every outstanding buffer.
    fn reset(&mut self, cache: &mut PoolCache);
    /// Free descriptor slots.
    fn room(&self) -> usize;
    /// Queues a frame for the device; the mbuf stays ours until reclaimed.
    fn add_tx(&mut self, m: Mbuf, indirect: bool) -> Result<(), Mbuf>;
    /// Posts an empty buffer for the device to fill.
    fn add_rx(&mut self, m: Mbuf) -> Result<(), Mbuf>;
    /// Makes added buffers visible; kicks the device when it asked for it.
    /// Returns whether a kick was sent.
    fn publish(&mut self) -> bool;
    /// Frees transmitted buffers back to the cache; returns how many.
    fn reclaim_tx(&mut self, cache: &mut PoolCache, stats: &QueueStats) -> usize;
    /// Moves received frames into `out`; returns how many.
    fn collect_rx(&mut self, cache: &mut PoolCache, out: &mut Batch, stats: &QueueStats) -> usize;
    /// Buffers published to the device that it has not returned yet.
    fn in_flight(&self) -> usize;
    /// Asks the device for a call on the next used buffer (true) or for none.
    /// Returns true when used buffers are already waiting.
    fn set_interrupts(&mut self, on: bool) -> bool;
    /// The device has returned buffers we have not collected.
    fn has_used(&self) -> bool;
}

/// One split virtqueue in memory the backend has mapped.
pub struct SplitRing {
    size: u16,
    desc: *mut Desc,
    avail: *mut u16,
    used: *mut u8,
    indirect: *mut u8,
    /// Next value of avail.idx; published by `publish`.
    avail_idx: u16,
    /// avail.idx the device last saw (for the EVENT_IDX kick test).
    published: u16,
    last_used: u16,
    /// Free descriptor ids, oldest first: handing them out in ring order keeps
    /// the device's descriptor reads sequential.
    free: VecDeque<u16>,
    slots: Vec<Option<Mbuf>>,
    event_idx: bool,
    mrg_rxbuf: bool,
    /// What the backend finishes for us (negotiated CSUM, HOST_TSO4/6).
    tx_offloads: crate::offload::OffloadCaps,
    interrupts: bool,
    /// last_used when used_event was last pushed ahead (see `suppress`).
    suppressed_at: u16,
    kick_fd: RawFd,
}

// SAFETY: the raw pointers point into ring memory owned by the port that owns
// this ring; the ring is only used under the port's per-queue lock.
unsafe impl Send for SplitRing {}

impl SplitRing {
    /// # Safety
    /// `base` must point at `RingLayout::new(size).bytes` writable bytes that
    /// outlive the ring and that only this ring (and the device) use.
    pub unsafe fn new(base: *mut u8, size: u16, kick_fd: RawFd) -> SplitRing {
        assert!(size.is_power_of_two() && size >= 2);
        let l = RingLayout::new(size);
        SplitRing {
            size,
            // SAFETY (all four): offsets from RingLayout stay inside `bytes`.
            desc: unsafe { base.add(l.desc) }.cast(),
            avail: unsafe { base.add(l.avail) }.cast(),
            used: unsafe { base.add(l.used) },
            indirect: unsafe { base.add(l.indirect) },
            avail_idx: 0,
            published: 0,
            last_used: 0,
            free: (0..size).collect(),
            slots: (0..size).map(|_| None).collect(),
            event_idx: false,
            mrg_rxbuf: false,
            tx_offloads: Default::default(),
            interrupts: false,
            suppressed_at: 0,
            kick_fd,
        }
    }

    /// Features that change how the ring is driven; set before `reset`.
    pub fn set_features(&mut self, event_idx: bool, mrg_rxbuf: bool) {
        self.event_idx = event_idx;
        self.mrg_rxbuf = mrg_rxbuf;
    }

    /// Offloads the backend negotiated to finish for us (see `add_tx`).
    pub fn set_tx_offloads(&mut self, caps: crate::offload::OffloadCaps) {
        self.tx_offloads = caps;
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    fn mask(&self) -> usize {
        self.size as usize - 1
    }

    fn used_idx(&self) -> u16 {
        // SAFETY: used.idx is at offset 2 of the used ring.
        let v = unsafe { ptr::read_volatile(self.used.add(2).cast::<u16>()) };
        fence(Ordering::Acquire);
        v
    }

    fn used_elem(&self, i: u16) -> (u32, u32) {
        let off = 4 + 8 * (i as usize & self.mask());
        // SAFETY: the element lies inside the used ring (index masked).
        unsafe {
            (
                ptr::read_volatile(self.used.add(off).cast::<u32>()),
                ptr::read_volatile(self.used.add(off + 4).cast::<u32>()),
            )
        }
    }

    fn avail_event(&self) -> u16 {
        // SAFETY: avail_event follows the used ring's `size` elements.
        unsafe { ptr::read_volatile(self.used.add(4 + 8 * self.size as usize).cast::<u16>()) }
    }

    fn used_flags(&self) -> u16 {
        // SAFETY: used.flags is the first field of the used ring.
        unsafe { ptr::read_volatile(self.used.cast::<u16>()) }
    }

    fn set_avail_flags(&mut self, v: u16) {
        // SAFETY: avail.flags is the first field of the available ring.
        unsafe { ptr::write_volatile(self.avail, v) };
    }

    fn set_used_event(&mut self, v: u16) {
        // SAFETY: used_event follows the available ring's `size` entries.
        unsafe { ptr::write_volatile(self.avail.add(2 + self.size as usize), v) };
    }

    fn write_desc(&mut self, id: u16, d: Desc) {
        // SAFETY: id < size (it came from the free list).
        unsafe { ptr::write(self.desc.add(id as usize), d) };
    }

    fn push_avail(&mut self, id: u16) {
        let slot = 2 + (self.avail_idx as usize & self.mask());
        // SAFETY: the entry lies inside the available ring (index masked).
        unsafe { ptr::write_volatile(self.avail.add(slot), id) };
        self.avail_idx = self.avail_idx.wrapping_add(1);
    }

    /// Takes the mbuf of a used entry after checking the device's claims.
    fn take_used(&mut self, id: u32) -> Option<Mbuf> {
        if id >= self.size as u32 {
            return None;
        }
        let m = self.slots[id as usize].take()?;
        self.free.push_back(id as u16);
        Some(m)
    }

    /// Keeps interrupts suppressed while polling: with EVENT_IDX the device
    /// only calls when used.idx crosses used_event, so keep it half a lap
    /// ahead. Rewritten only every quarter lap: the device reads that line
    /// after each of its bursts, and every store would pull it back to us.
    fn suppress(&mut self) {
        self.suppress_now(false);
    }

    fn suppress_now(&mut self, force: bool) {
        if self.event_idx && (force || self.last_used.wrapping_sub(self.suppressed_at) >= 0x4000) {
            self.suppressed_at = self.last_used;
            let far = self.last_used.wrapping_add(0x8000);
            self.set_used_event(far);
        }
    }
}

impl DriverRing for SplitRing {
    fn reset(&mut self, cache: &mut PoolCache) {
        for s in self.slots.iter_mut() {
            if let Some(m) = s.take() {
                cache.free(m);
            }
        }
        let l = RingLayout::new(self.size);
        // SAFETY: the whole queue area belongs to this ring (see `new`).
        unsafe { ptr::write_bytes(self.desc.cast::<u8>(), 0, l.bytes) };
        self.avail_idx = 0;
        self.published = 0;
        self.last_used = 0;
        self.free = (0..self.size).collect();
        self.interrupts = false;
        self.set_avail_flags(AVAIL_F_NO_INTERRUPT);
        self.suppress_now(true);
    }

    fn room(&self) -> usize {
        self.free.len()
    }

    fn add_tx(&mut self, mut m: Mbuf, indirect: bool) -> Result<(), Mbuf> {
        if m.headroom() < NET_HDR_LEN {
            return Err(m);
        }
        let Some(id) = self.free.pop_front() else {
            return Err(m);
        };
        let len = m.len();
        // SAFETY: the header goes in the mbuf's own headroom (checked above).
        let hdr = unsafe { m.data_ptr().sub(NET_HDR_LEN) };
        // Zero the header only if it is not zero already (DPDK's
        // ASSIGN_UNLESS_EQUAL): a line we do not write stays valid in the
        // device's cache, and the device reads it for every frame.
        debug_assert!(m.tail().is_none(), "a guest tail reached virtio-user");
        let o = m.offload();
        if !o.is_none() && self.tx_offloads.covers(&o) {
            let hdrs = match o.gso {
                crate::offload::Gso::None => 0,
                _ => crate::offload::TcpFrame::parse(m.data()).map_or(0, |t| t.hdrs),
            };
            let v = o.to_virtio(hdrs as u16);
            // SAFETY: NET_HDR_LEN bytes at `hdr` belong to this mbuf.
            unsafe {
                ptr::copy_nonoverlapping(v.as_ptr(), hdr, v.len());
                ptr::write_bytes(hdr.add(v.len()), 0, NET_HDR_LEN - v.len());
            }
        } else {
            // SAFETY: NET_HDR_LEN bytes at `hdr` belong to this mbuf; unaligned
            // reads of 8 + 4 bytes cover exactly them.
            unsafe {
                let a = ptr::read_unaligned(hdr.cast::<u64>());
                let b = ptr::read_unaligned(hdr.add(8).cast::<u32>());
                if a | b as u64 != 0 {
                    ptr::write_bytes(hdr, 0, NET_HDR_LEN);
                }
            }
        }
        let d = if indirect {
            // SAFETY: slot `id` of the scratch area belongs to descriptor id.
            let table = unsafe { self.indirect.add(id as usize * INDIRECT_SLOT) };
            let entries = [
                Desc {
                    addr: hdr as u64,
                    len: NET_HDR_LEN as u32,
                    flags: DESC_F_NEXT,
                    next: 1,
                },
                Desc {
                    addr: m.data_addr() as u64,
                    len: len as u32,
                    flags: 0,
                    next: 0,
                },
            ];
            // SAFETY: 32 bytes of a 64-byte slot, 16-byte aligned.
            unsafe { ptr::copy_nonoverlapping(entries.as_ptr(), table.cast::<Desc>(), 2) };
            Desc {
                addr: table as u64,
                len: 32,
                flags: DESC_F_INDIRECT,
                next: 0,
            }
        } else {
            Desc {
                addr: hdr as u64,
                len: (NET_HDR_LEN + len) as u32,
                flags: 0,
                next: 0,
            }
        };
        self.write_desc(id, d);
        self.slots[id as usize] = Some(m);
        self.push_avail(id);
        Ok(())
    }

    fn add_rx(&mut self, mut m: Mbuf) -> Result<(), Mbuf> {
        if m.headroom() < NET_HDR_LEN {
            return Err(m);
        }
        let Some(id) = self.free.pop_front() else {
            return Err(m);
        };
        let cap = m.capacity();
        // SAFETY: the header lands in the mbuf's headroom (checked above).
        let start = unsafe { m.data_ptr().sub(NET_HDR_LEN) };
        self.write_desc(
            id,
            Desc {
                addr: start as u64,
                len: (NET_HDR_LEN + cap) as u32,
                flags: DESC_F_WRITE,
                next: 0,
            },
        );
        self.slots[id as usize] = Some(m);
        self.push_avail(id);
        Ok(())
    }

    fn publish(&mut self) -> bool {
        let old = self.published;
        let new = self.avail_idx;
        if old == new {
            return false;
        }
        fence(Ordering::Release);
        // SAFETY: avail.idx is the second u16 of the available ring.
        unsafe { ptr::write_volatile(self.avail.add(1), new) };
        self.published = new;
        // The device's suppression state must be read after our index store.
        fence(Ordering::SeqCst);
        let kick = if self.event_idx {
            let ev = self.avail_event();
            new.wrapping_sub(ev).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            self.used_flags() & USED_F_NO_NOTIFY == 0
        };
        if kick {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a local to our own eventfd; a
            // failure only means the device misses a wake-up it asked for.
            unsafe { libc::write(self.kick_fd, (&one as *const u64).cast(), 8) };
        }
        kick
    }

    fn reclaim_tx(&mut self, cache: &mut PoolCache, stats: &QueueStats) -> usize {
        let mut used = self.used_idx();
        // A device that claims more entries than the ring holds is broken
        // (as in `collect_rx`): count it once and skip, never walk garbage.
        if used.wrapping_sub(self.last_used) > self.size {
            stats.drop_n(DropReason::DescIndex, 1);
            self.last_used = used;
            return 0;
        }
        // Stay a burst behind the device while the ring has room: the used
        // entries it wrote last share cache lines with the ones it writes
        // next, and reading them now would pull those lines away from it.
        let lag = RECLAIM_LAG.min(self.size / 4);
        if self.free.len() > 2 * lag as usize {
            if used.wrapping_sub(self.last_used) <= lag {
                return 0;
            }
            used = used.wrapping_sub(lag);
        }
        let mut n = 0;
        while self.last_used != used {
            let (id, _) = self.used_elem(self.last_used);
            self.last_used = self.last_used.wrapping_add(1);
            match self.take_used(id) {
                Some(m) => {
                    cache.free(m);
                    n += 1;
                }
                None => stats.drop_n(DropReason::DescIndex, 1),
            }
        }
        self.suppress();
        n
    }

    fn collect_rx(&mut self, cache: &mut PoolCache, out: &mut Batch, stats: &QueueStats) -> usize {
        let used = self.used_idx();
        let mut n = 0;
        while self.last_used != used && out.room() > 0 {
            let waiting = used.wrapping_sub(self.last_used);
            let (id, len) = self.used_elem(self.last_used);
            // A device that claims more entries than the ring holds is broken:
            // stop reading instead of walking garbage.
            if waiting > self.size {
                stats.drop_n(DropReason::DescIndex, 1);
                self.last_used = used;
                break;
            }
            let Some(mut m) = self.take_used(id) else {
                self.last_used = self.last_used.wrapping_add(1);
                stats.drop_n(DropReason::DescIndex, 1);
                continue;
            };
            let posted = NET_HDR_LEN + m.capacity();
            let len = len as usize;
            if len < NET_HDR_LEN || len > posted {
                self.last_used = self.last_used.wrapping_add(1);
                stats.drop_n(DropReason::DescLen, 1);
                cache.free(m);
                continue;
            }
            let n_bufs = if self.mrg_rxbuf {
                // SAFETY: num_buffers sits at bytes 10..12 of the header the
                // device wrote into this mbuf's headroom.
                let v = unsafe { ptr::read_unaligned(m.data_ptr().sub(2).cast::<u16>()) };
                v.max(1)
            } else {
                1
            };
            if n_bufs > waiting {
                // The rest of this frame is not published yet: put it back.
                self.slots[id as usize] = Some(m);
                self.free.pop_back();
                break;
            }
            self.last_used = self.last_used.wrapping_add(1);
            m.set_len(len - NET_HDR_LEN);
            let mut ok = true;
            for _ in 1..n_bufs {
                let (id2, len2) = self.used_elem(self.last_used);
                self.last_used = self.last_used.wrapping_add(1);
                let Some(mut part) = self.take_used(id2) else {
                    stats.drop_n(DropReason::DescIndex, 1);
                    ok = false;
                    continue;
                };
                let len2 = len2 as usize;
                let have = m.len();
                if !ok || len2 > NET_HDR_LEN + part.capacity() || have + len2 > m.capacity() {
                    ok = false;
                } else {
                    // SAFETY: later buffers of a merged frame carry data from
                    // their first byte (the posted address, which is
                    // NET_HDR_LEN before data_ptr); both ranges were bounds-checked.
                    unsafe {
                        ptr::copy_nonoverlapping(
                            part.data_ptr().sub(NET_HDR_LEN),
                            m.data_ptr().add(have),
                            len2,
                        );
                    }
                    m.set_len(have + len2);
                }
                cache.free(part);
            }
            if !ok {
                stats.drop_n(DropReason::Oversized, 1);
                cache.free(m);
                continue;
            }
            let _ = out.push(m);
            n += 1;
        }
        if !self.interrupts {
            self.suppress();
        }
        n
    }

    fn in_flight(&self) -> usize {
        self.published.wrapping_sub(self.used_idx()) as usize
    }

    fn has_used(&self) -> bool {
        self.used_idx() != self.last_used
    }

    fn set_interrupts(&mut self, on: bool) -> bool {
        self.interrupts = on;
        if on {
            self.set_avail_flags(0);
            if self.event_idx {
                let at = self.last_used;
                self.set_used_event(at);
            }
        } else {
            self.set_avail_flags(AVAIL_F_NO_INTERRUPT);
            self.suppress_now(true);
        }
        fence(Ordering::SeqCst);
        self.used_idx() != self.last_used
    }
}

#[cfg(test)]
mod tests;
