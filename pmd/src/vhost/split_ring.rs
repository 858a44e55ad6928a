//! A burst-oriented walker of one split virtqueue, device side.
//!
//! Ring addresses are translated once when the ring starts; each burst does
//! one read of `avail.idx`, one store of `used.idx` and one notification
//! decision. Everything read from guest memory is read once into a local and
//! validated: indices against the table size, chain length against the table
//! size (which also ends loops), addresses and lengths against guest memory.
//! A bad chain costs the packet (counted by reason), never our memory.

use super::guest_mem::GuestMem;
use crate::mbuf::{Batch, GuestTail, Mbuf, PoolCache, TailRange, BURST};
use crate::offload::{Offload, OffloadCaps, TcpFrame, MAX_GSO_FRAME};
use crate::port::{DropReason, QueueStats};
use std::ptr;
use std::sync::atomic::{fence, Ordering};

pub const VRING_DESC_F_NEXT: u16 = 1;
pub const VRING_DESC_F_WRITE: u16 = 2;
pub const VRING_DESC_F_INDIRECT: u16 = 4;
pub const VRING_USED_F_NO_NOTIFY: u16 = 1;
pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// How many chains ahead the walker prefetches guest buffers.
const PREFETCH_AHEAD: usize = 4;
/// Leased frames: bytes copied into our buffer, where the switch reads and
/// edits headers: Ethernet, two VLAN tags, IPv4 with options and TCP with
/// options take at most 142 (the flow key reads ~90; segmentation and the
/// checksum field need all of them). The rest stays in the guest until output.
pub const LEASE_HEAD: usize = 192;
/// Frames shorter than this are copied whole: below it the second copy costs
/// less than holding descriptors (DPDK measured zero-copy a loss under 512 B;
/// here leasing 512 B frames cost 4-8% against two copies, compare.sh).
pub const LEASE_MIN_FRAME: usize = 1024;
/// Most pieces a leased tail may have: Linux sends a TSO frame as its linear
/// part and up to MAX_SKB_FRAGS (17, at most 45) page fragments. A longer
/// chain is copied whole if it fits a buffer, else dropped as oversized.
pub const MAX_TAIL_RANGES: usize = 48;

/// Where the tails of one leasing burst live (one row per leased chain).
type TailSlots = [[TailRange; MAX_TAIL_RANGES]; BURST];

#[inline]
fn prefetch(p: *const u8) {
    // SAFETY: a prefetch is only a hint; it cannot fault, even on a bad address.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast(), core::arch::x86_64::_MM_HINT_T0)
    };
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

/// Where a ring lives, in the frontend's address space (SET_VRING_ADDR).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingAddrs {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

/// How the negotiated features shape the ring and the packet header.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingFeatures {
    pub event_idx: bool,
    pub mrg_rxbuf: bool,
    /// virtio-net header length: 12 with VERSION_1 or MRG_RXBUF, else 10.
    pub hdr_len: usize,
    /// Offloads the guest may ask of us (CSUM, HOST_TSO4/6), read from the
    /// headers of the frames it sends; none: headers are ignored.
    pub host_offloads: OffloadCaps,
    /// Offloads the guest takes (GUEST_CSUM, GUEST_TSO4/6): what the headers
    /// we write may ask of it.
    pub guest_offloads: OffloadCaps,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RingError {
    BadSize(u16),
    Unmapped(&'static str),
    Misaligned(&'static str),
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::BadSize(n) => write!(
                f,
                "queue size {n} is not a power of two up to {MAX_QUEUE_SIZE}"
            ),
            RingError::Unmapped(what) => write!(f, "{what} ring is not inside the guest's memory"),
            RingError::Misaligned(what) => write!(f, "{what} ring is misaligned"),
        }
    }
}

pub struct SplitRing {
    size: u16,
    desc: *const Desc,
    /// flags, idx, ring[size], used_event
    avail: *const u16,
    /// flags, idx, then `size` elements of {id: u32, len: u32}, then avail_event
    used: *mut u16,
    pub last_avail: u16,
    used_idx: u16,
    features: RingFeatures,
    /// The guest claimed more available entries than the ring has: its
    /// state is broken (virtio's NEEDS_RESET); nothing more is walked until
    /// the frontend sets the ring up again (a new `SplitRing`).
    broken: bool,
    /// Chains whose frames were handed out with a guest tail
    /// ([`SplitRing::dequeue_leasing`]): they go on the used ring at
    /// [`SplitRing::release`], after the frames were sent.
    leased: [u16; BURST],
    n_leased: usize,
    /// `used_idx` before the leasing burst (what `release` publishes from).
    lease_from: u16,
    /// The leased tails' ranges: allocated on the ring's first leasing burst
    /// (once per ring, which only the control thread rebuilds; most rings
    /// never lease), freed with the ring. A raw allocation, not a Box, so
    /// the pointers buffers keep into it stay valid while the ring moves.
    tails: *mut TailSlots,
    /// What this ring carried since the last `take_counters`.
    counters: RingCounters,
}

/// Frames a ring carried that the plain packet counters do not tell apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Written (guest RX) straight from another guest's buffer.
    pub one_copy: u64,
    /// Received (guest TX) or written (guest RX) as one large TCP segment (GSO).
    pub gso: u64,
}

// SAFETY: the pointers point into guest memory that the owner of this ring
// keeps mapped (it holds the GuestMem Arc next to it under one lock), and
// into `tails`, which the ring owns.
unsafe impl Send for SplitRing {}

impl Drop for SplitRing {
    fn drop(&mut self) {
        if !self.tails.is_null() {
            // SAFETY: made by Box::into_raw in `dequeue_burst`, freed once,
            // here; no lease outlives its ring (release happens under the
            // queue's lock, which dropping the ring also needs).
            drop(unsafe { Box::from_raw(self.tails) });
        }
    }
}

/// What one chain offers to a writer (guest RX): the head and the bytes
/// written so far.
struct Written {
    head: u16,
    len: u32,
}

impl SplitRing {
    /// Translates and checks the three areas of a ring of `size` entries.
    pub fn new(
        mem: &GuestMem,
        size: u16,
        addrs: RingAddrs,
        base: u16,
        features: RingFeatures,
    ) -> Result<SplitRing, RingError> {
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(RingError::BadSize(size));
        }
        let n = size as u64;
        let desc = mem
            .uva(addrs.desc, 16 * n)
            .ok_or(RingError::Unmapped("descriptor"))?;
        let avail = mem
            .uva(addrs.avail, 6 + 2 * n)
            .ok_or(RingError::Unmapped("available"))?;
        let used = mem
            .uva(addrs.used, 6 + 8 * n)
            .ok_or(RingError::Unmapped("used"))?;
        if !(desc as usize).is_multiple_of(16) {
            return Err(RingError::Misaligned("descriptor"));
        }
        if !(avail as usize).is_multiple_of(2) {
            return Err(RingError::Misaligned("available"));
        }
        if !(used as usize).is_multiple_of(4) {
            return Err(RingError::Misaligned("used"));
        }
        let mut r = SplitRing {
            size,
            desc: desc as *const Desc,
            avail: avail as *const u16,
            used: used as *mut u16,
            last_avail: base,
            used_idx: 0,
            features,
            broken: false,
            leased: [0; BURST],
            n_leased: 0,
            lease_from: 0,
            tails: ptr::null_mut(),
            counters: RingCounters::default(),
        };
        // Continue from what the guest has already seen as used.
        r.used_idx = r.read_used_idx();
        // We poll: ask the guest not to kick us.
        // SAFETY: `used` was translated for its whole length above.
        unsafe { ptr::write_volatile(r.used, VRING_USED_F_NO_NOTIFY) };
        Ok(r)
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// avail_event: the u16 after the used ring's elements (EVENT_IDX).
    #[inline]
    fn write_avail_event(&mut self, v: u16) {
        // SAFETY: the used area was translated for 6 + 8 * size bytes; avail_event
        // is its last u16, at byte 4 + 8 * size.
        unsafe { ptr::write_volatile(self.used.add(2 + 4 * self.size as usize), v) };
    }

    /// Hybrid polling: asks the guest to kick us when it adds entries (clears
    /// NO_NOTIFY; under EVENT_IDX, avail_event = the next entry), then looks
    /// once more: true when entries are already waiting (a guest that added
    /// them before it could see the request would not kick), and then
    /// notifications are off again and the caller goes on polling.
    pub fn arm_notify(&mut self) -> bool {
        if self.features.event_idx {
            self.write_avail_event(self.last_avail);
        }
        // SAFETY: used[0] (flags) is inside the translated used area.
        unsafe { ptr::write_volatile(self.used, 0) };
        // The request must be visible before we read the index again.
        fence(Ordering::SeqCst);
        if self.pending() != 0 || self.broken {
            self.disarm_notify();
            return true;
        }
        false
    }

    /// Back to polling: the guest need not kick (under EVENT_IDX, the event
    /// index is put just behind what the guest has added, so its next kick is
    /// 65 536 entries away).
    pub fn disarm_notify(&mut self) {
        // SAFETY: used[0] (flags) is inside the translated used area.
        unsafe { ptr::write_volatile(self.used, VRING_USED_F_NO_NOTIFY) };
        if self.features.event_idx {
            self.write_avail_event(self.last_avail.wrapping_sub(1));
        }
    }

    fn read_used_idx(&self) -> u16 {
        // SAFETY: used[1] is inside the translated used area.
        unsafe { ptr::read_volatile(self.used.add(1)) }
    }

    #[inline]
    fn avail_idx(&self) -> u16 {
        // SAFETY: avail[1] is inside the translated avail area.
        let idx = unsafe { ptr::read_volatile(self.avail.add(1)) };
        // Entries up to idx must be read after idx itself.
        fence(Ordering::Acquire);
        idx
    }

    #[inline]
    fn avail_entry(&self, i: u16) -> u16 {
        // SAFETY: the index is masked to the ring size.
        unsafe { ptr::read_volatile(self.avail.add(2 + (i & (self.size - 1)) as usize)) }
    }

    /// Entries the guest has made available and we have not taken yet.
    #[inline]
    pub fn pending(&self) -> u16 {
        self.avail_idx().wrapping_sub(self.last_avail)
    }

    /// `pending`, or None for a broken ring: more entries than the ring holds
    /// would mean walking heads the guest never wrote (DPDK and virtio-queue
    /// refuse the same). Counted once, as an invalid index.
    #[inline]
    fn pending_checked(&mut self, stats: &QueueStats) -> Option<u16> {
        let n = self.pending();
        if n <= self.size && !self.broken {
            return Some(n);
        }
        if !self.broken {
            self.broken = true;
            stats.drop_n(DropReason::DescIndex, 1);
        }
        None
    }

    #[inline]
    fn push_used(&mut self, head: u16, len: u32) {
        let slot = (self.used_idx & (self.size - 1)) as usize;
        // SAFETY: slot < size; elements start 4 bytes into the used area,
        // which was translated for 6 + 8 * size bytes.
        unsafe {
            let e = self.used.cast::<u8>().add(4 + 8 * slot).cast::<u32>();
            ptr::write_volatile(e, head as u32);
            ptr::write_volatile(e.add(1), len);
        }
        self.used_idx = self.used_idx.wrapping_add(1);
    }

    /// A dropped frame's buffers go back to the guest empty (len 0), never
    /// with a truncated frame in them.
    fn empty_used_since(&mut self, from: u16) {
        let mut i = from;
        while i != self.used_idx {
            let slot = (i & (self.size - 1)) as usize;
            // SAFETY: slot < size, inside the translated used area (see push_used).
            unsafe {
                ptr::write_volatile(self.used.cast::<u8>().add(8 + 8 * slot).cast::<u32>(), 0)
            };
            i = i.wrapping_add(1);
        }
    }

    /// Publishes the used entries of this burst and says whether the guest
    /// wants an interrupt for them.
    #[inline]
    fn publish_used(&mut self, old_used: u16) -> bool {
        if self.used_idx == old_used {
            return false;
        }
        fence(Ordering::Release);
        // SAFETY: used[1] is inside the translated used area.
        unsafe { ptr::write_volatile(self.used.add(1), self.used_idx) };
        // The guest's suppression flags must be read after the index store.
        fence(Ordering::SeqCst);
        if self.features.event_idx {
            // SAFETY: used_event sits right after avail.ring[size], translated above.
            let used_event = unsafe { ptr::read_volatile(self.avail.add(2 + self.size as usize)) };
            self.used_idx.wrapping_sub(used_event).wrapping_sub(1)
                < self.used_idx.wrapping_sub(old_used)
        } else {
            // SAFETY: avail[0] (flags) is inside the translated avail area.
            let flags = unsafe { ptr::read_volatile(self.avail) };
            flags & VRING_AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// Guest TX: copies up to `out.room()` frames out of the guest into new
    /// buffers. Returns (packets received, whether to signal the guest).
    pub fn dequeue(
        &mut self,
        mem: &GuestMem,
        cache: &mut PoolCache,
        out: &mut Batch,
        stats: &QueueStats,
    ) -> (usize, bool) {
        self.dequeue_burst(mem, cache, out, stats, false)
    }

    /// As [`SplitRing::dequeue`], but a frame of [`LEASE_MIN_FRAME`] bytes or
    /// more is copied only up to [`LEASE_HEAD`]; the buffer ends in a
    /// [`GuestTail`] and the chain stays ours. When [`SplitRing::leased`]
    /// says chains are held, nothing is published (the signal answer is
    /// false) and the caller must send or free every frame, then call
    /// [`SplitRing::release`] before it lets go of the ring (the queue's
    /// lock), in the same iteration.
    pub fn dequeue_leasing(
        &mut self,
        mem: &GuestMem,
        cache: &mut PoolCache,
        out: &mut Batch,
        stats: &QueueStats,
    ) -> (usize, bool) {
        self.dequeue_burst(mem, cache, out, stats, true)
    }

    /// Returns the leased chains (used entries, length 0: nothing written)
    /// and publishes the burst. Returns whether to signal the guest.
    pub fn release(&mut self) -> bool {
        if self.n_leased == 0 {
            return false;
        }
        for i in 0..self.n_leased {
            self.push_used(self.leased[i], 0);
        }
        self.n_leased = 0;
        self.publish_used(self.lease_from)
    }

    /// What the ring counted since the last call.
    pub fn take_counters(&mut self) -> RingCounters {
        std::mem::take(&mut self.counters)
    }

    /// Chains held since `dequeue_leasing` (0 outside a lease).
    pub fn leased(&self) -> usize {
        self.n_leased
    }

    fn dequeue_burst(
        &mut self,
        mem: &GuestMem,
        cache: &mut PoolCache,
        out: &mut Batch,
        stats: &QueueStats,
        lease: bool,
    ) -> (usize, bool) {
        debug_assert_eq!(self.n_leased, 0, "a lease was not released");
        let Some(avail) = self.pending_checked(stats) else {
            return (0, false);
        };
        if avail == 0 {
            return (0, false);
        }
        let n = (avail as usize).min(out.room());
        let old_used = self.used_idx;
        let heads = self.prefetch_burst(mem, n);
        let (mut got, mut bytes) = (0usize, 0u64);
        if lease && self.tails.is_null() {
            self.tails = Box::into_raw(Box::new([[TailRange::default(); MAX_TAIL_RANGES]; BURST]));
        }
        let tails = if lease { self.tails } else { ptr::null_mut() };
        for (i, &head) in heads[..n].iter().enumerate() {
            if let Some(&ahead) = heads
                .get(i + PREFETCH_AHEAD)
                .filter(|_| i + PREFETCH_AHEAD < n)
            {
                self.prefetch_buffer(mem, ahead);
            }
            let Some(mut m) = cache.alloc() else {
                stats.drop_n(DropReason::NoBuffer, 1);
                break; // leave the chain in the ring; retry next poll
            };
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut held = false;
            // n <= out.room() <= BURST, and the lease was empty: a row each.
            // SAFETY: `tails` is this ring's live allocation of BURST rows and
            // n_leased < BURST; only this row is borrowed, and only here.
            let slot = (!tails.is_null()).then(|| unsafe {
                &mut *tails
                    .cast::<[TailRange; MAX_TAIL_RANGES]>()
                    .add(self.n_leased)
            });
            match self.read_chain(mem, head, &mut m, slot) {
                Ok(len) => {
                    bytes += len as u64;
                    got += 1;
                    held = m.tail().is_some();
                    self.counters.gso += (m.offload().gso != crate::offload::Gso::None) as u64;
                    let _ = out.push(m);
                }
                Err(reason) => {
                    stats.drop_n(reason, 1);
                    cache.free(m);
                }
            }
            if held {
                self.leased[self.n_leased] = head;
                self.n_leased += 1;
            } else if head < self.size {
                self.push_used(head, 0);
            }
        }
        stats.count(got as u64, bytes);
        if self.n_leased > 0 {
            self.lease_from = old_used;
            return (got, false);
        }
        (got, self.publish_used(old_used))
    }

    /// Reads the burst's heads from the avail ring (one or two cache lines)
    /// and prefetches their descriptors and first buffers, so the guest's
    /// cache lines arrive in parallel rather than one miss after another.
    #[inline]
    fn prefetch_burst(&self, mem: &GuestMem, n: usize) -> [u16; BURST] {
        let mut heads = [0u16; BURST];
        for (i, h) in heads[..n].iter_mut().enumerate() {
            *h = self.avail_entry(self.last_avail.wrapping_add(i as u16));
            if *h < self.size {
                // SAFETY: h < size: inside the translated descriptor table.
                prefetch(unsafe { self.desc.add(*h as usize) }.cast());
            }
        }
        for &h in &heads[..n.min(PREFETCH_AHEAD)] {
            self.prefetch_buffer(mem, h);
        }
        heads
    }

    /// Prefetches the first buffer of chain `head` (a hint: nothing is
    /// validated or trusted here beyond what translation checks).
    #[inline]
    fn prefetch_buffer(&self, mem: &GuestMem, head: u16) {
        if head >= self.size {
            return;
        }
        // SAFETY: head < size: inside the translated descriptor table.
        let d = unsafe { ptr::read_volatile(self.desc.add(head as usize)) };
        if d.flags & VRING_DESC_F_INDIRECT == 0 {
            if let Some(p) = mem.gpa(d.addr, 1) {
                prefetch(p);
            }
        }
    }

    /// Copies one TX chain into `m`: its virtio-net header read (into a
    /// local) and checked, the frame after it. With a `tail` row (leasing), a
    /// frame of [`LEASE_MIN_FRAME`] bytes or more keeps all but its first
    /// [`LEASE_HEAD`] bytes in guest memory, in at most [`MAX_TAIL_RANGES`]
    /// ranges written to the row, and `m` ends in that [`GuestTail`]; only
    /// such a frame may be larger than `m` (a GSO frame, up to 64 KiB).
    fn read_chain(
        &self,
        mem: &GuestMem,
        head: u16,
        m: &mut Mbuf,
        mut tail: Option<&mut [TailRange; MAX_TAIL_RANGES]>,
    ) -> Result<usize, DropReason> {
        let hdr_len = self.features.hdr_len;
        let mut hdr = [0u8; 12];
        let mut hdr_got = 0usize;
        let mut offload = Offload::default();
        let cap = m.capacity();
        let mut limit = cap;
        let dst = m.data_ptr();
        // Frame bytes seen; the first `in_room` are copied, the rest are the
        // `n_tail` ranges of `tail` (translated and bounds-checked).
        let (mut written, mut in_room, mut n_tail) = (0usize, 0usize, 0usize);
        let mut walker = ChainWalker::new(self, mem, head);
        while let Some(d) = walker.next()? {
            if d.flags & VRING_DESC_F_WRITE != 0 {
                return Err(DropReason::DescFlags);
            }
            let src = mem.gpa(d.addr, d.len as u64).ok_or(DropReason::DescAddr)?;
            let mut len = d.len as usize;
            let mut off = 0usize;
            if hdr_got < hdr_len {
                let k = (hdr_len - hdr_got).min(len);
                // SAFETY: k <= d.len bytes of translated guest memory, into a
                // local array with room for hdr_len - hdr_got >= k bytes.
                unsafe { ptr::copy_nonoverlapping(src, hdr.as_mut_ptr().add(hdr_got), k) };
                hdr_got += k;
                off = k;
                len -= k;
                if hdr_got == hdr_len && self.features.host_offloads != OffloadCaps::default() {
                    offload = Offload::from_virtio(&hdr[..10], self.features.host_offloads)
                        .map_err(|_| DropReason::BadOffload)?;
                    if offload.gso != crate::offload::Gso::None && tail.is_some() {
                        limit = limit.max(MAX_GSO_FRAME);
                    }
                }
            }
            if len == 0 {
                continue;
            }
            if written + len > limit {
                return Err(DropReason::Oversized);
            }
            // SAFETY: src..src+d.len is guest memory (translated above).
            let src = unsafe { src.add(off) };
            let last = d.flags & VRING_DESC_F_NEXT == 0;
            let copy = match tail {
                None => len,
                // A short frame ending here: copied whole, in one go.
                Some(_) if last && n_tail == 0 && written + len < LEASE_MIN_FRAME => len,
                Some(_) if n_tail == 0 && written < LEASE_HEAD => len.min(LEASE_HEAD - written),
                Some(_) => 0,
            };
            if copy > 0 {
                if written + copy > cap {
                    return Err(DropReason::Oversized);
                }
                // SAFETY: src..src+copy is inside guest memory (translated
                // above) and dst..dst+written+copy inside the buffer (checked
                // against capacity). The guest may write concurrently: we
                // copy bytes, and a torn frame is the guest's own problem.
                unsafe { ptr::copy_nonoverlapping(src, dst.add(written), copy) };
                // Only while no tail was recorded: the room stays contiguous.
                written += copy;
                in_room = written;
            }
            if copy < len {
                let rest = TailRange {
                    ptr: src.wrapping_add(copy).cast_const(),
                    len: len - copy,
                };
                let row = tail.as_deref_mut().expect("tails only when leasing");
                if n_tail == MAX_TAIL_RANGES {
                    m.set_offload(offload);
                    return self.copy_rest_in(walker, m, &row[..n_tail], in_room, rest);
                }
                row[n_tail] = rest;
                n_tail += 1;
                written += rest.len;
            }
        }
        if written == 0 {
            return Err(DropReason::DescLen);
        }
        if !offload.fits(written) {
            return Err(DropReason::BadOffload);
        }
        m.set_offload(offload);
        let Some(row) = tail.filter(|_| n_tail > 0) else {
            m.set_len(in_room);
            return Ok(written);
        };
        // SAFETY: the row lives in this ring's `tails`, which stay (with the
        // guest memory they point into) until `release`, under the queue's lock.
        let t = unsafe { GuestTail::new(row.as_ptr(), n_tail) };
        if written < LEASE_MIN_FRAME {
            if written > cap {
                return Err(DropReason::Oversized);
            }
            // SAFETY: the ranges were translated above; the room holds
            // `written` <= cap bytes (checked).
            unsafe { t.copy_to(0, dst.add(in_room), written - in_room) };
            m.set_len(written);
            return Ok(written);
        }
        m.set_len(in_room);
        // SAFETY: the tail lives until `release`, which the caller calls after
        // sending or freeing every buffer of the burst (dequeue_leasing).
        unsafe { m.set_tail(Some(t)) };
        Ok(written)
    }

    /// A leased chain with more ranges than a tail holds: copy what was
    /// recorded, then `rest`, then the rest of the chain, as without a lease
    /// (so it must fit the buffer).
    #[cold]
    fn copy_rest_in(
        &self,
        mut walker: ChainWalker<'_>,
        m: &mut Mbuf,
        tail: &[TailRange],
        mut written: usize,
        rest: TailRange,
    ) -> Result<usize, DropReason> {
        let cap = m.capacity();
        let dst = m.data_ptr();
        for r in tail.iter().chain([&rest]) {
            if written + r.len > cap {
                return Err(DropReason::Oversized);
            }
            // SAFETY: each range was translated and checked against guest
            // memory; the buffer has room (checked above).
            unsafe { ptr::copy_nonoverlapping(r.ptr, dst.add(written), r.len) };
            written += r.len;
        }
        while let Some(d) = walker.next()? {
            if d.flags & VRING_DESC_F_WRITE != 0 {
                return Err(DropReason::DescFlags);
            }
            let src = walker
                .mem
                .gpa(d.addr, d.len as u64)
                .ok_or(DropReason::DescAddr)?;
            let len = d.len as usize;
            if written + len > cap {
                return Err(DropReason::Oversized);
            }
            // SAFETY: as in read_chain: translated source, checked room.
            unsafe { ptr::copy_nonoverlapping(src, dst.add(written), len) };
            written += len;
        }
        if !m.offload().fits(written) {
            return Err(DropReason::BadOffload);
        }
        m.set_len(written);
        Ok(written)
    }

    /// Guest RX: copies frames from the front of `pkts` into guest buffers.
    /// Sent frames are freed; frames that found no room stay in `pkts` (the
    /// caller retries or drops them). Returns (sent, whether to signal).
    pub fn enqueue(
        &mut self,
        mem: &GuestMem,
        cache: &mut PoolCache,
        pkts: &mut Batch,
        stats: &QueueStats,
    ) -> (usize, bool) {
        let old_used = self.used_idx;
        let Some(mut avail) = self.pending_checked(stats) else {
            return (0, false);
        };
        // One guest buffer per frame is the common case: warm those lines.
        let ahead = (avail as usize).min(pkts.len());
        let heads = self.prefetch_burst(mem, ahead);
        let (mut done, mut sent, mut bytes) = (0usize, 0u64, 0u64);
        while done < pkts.len() && avail > 0 {
            if done + PREFETCH_AHEAD < ahead {
                self.prefetch_buffer(mem, heads[done + PREFETCH_AHEAD]);
            }
            let (saved_avail, saved_used) = (self.last_avail, self.used_idx);
            let frame = Frame::of(pkts.get(done));
            match self.write_packet(mem, &frame, &mut avail) {
                Ok(gso) => {
                    self.counters.one_copy += frame.m.tail().is_some() as u64;
                    self.counters.gso += gso as u64;
                    sent += 1;
                    bytes += pkts.get(done).len() as u64;
                }
                Err(None) => {
                    // Out of guest buffers mid-frame: undo and stop.
                    self.last_avail = saved_avail;
                    self.used_idx = saved_used;
                    break;
                }
                Err(Some(reason)) => stats.drop_n(reason, 1),
            }
            done += 1;
        }
        if done == pkts.len() {
            cache.free_batch(pkts);
        } else {
            pkts.drain_front(done, |m| cache.free(m));
        }
        stats.count(sent, bytes);
        (sent as usize, self.publish_used(old_used))
    }

    /// Writes header + frame into one chain (or, with mergeable buffers, as
    /// many chains as needed). Err(None): not enough buffers; Err(Some):
    /// the guest's chain was invalid (its buffers are returned with len 0).
    fn write_packet(
        &mut self,
        mem: &GuestMem,
        frame: &Frame<'_>,
        avail: &mut u16,
    ) -> Result<bool, Option<DropReason>> {
        let hdr_len = self.features.hdr_len;
        let total = hdr_len + frame.len;
        let mut pos = 0usize; // bytes of (header + frame) written
        let mut num_buffers: u16 = 0;
        let mut hdr_ptr: *mut u8 = ptr::null_mut();
        let mut header = [0u8; 12];
        // The sender's offloads go on to a guest that takes them; the switch
        // did them in software otherwise, so a frame still asking for one
        // here met a renegotiation: dropped, never passed as finished.
        let o = frame.offload;
        let gso = o.gso != crate::offload::Gso::None;
        if !o.is_none() {
            if !self.features.guest_offloads.covers(&o) || !o.fits(frame.len) {
                return Err(Some(DropReason::BadOffload));
            }
            let hdrs = if gso {
                TcpFrame::parse(frame.m.data()).map_or(0, |t| t.hdrs)
            } else {
                0
            };
            header[..10].copy_from_slice(&o.to_virtio(hdrs as u16));
        }
        let first_used = self.used_idx;
        while pos < total {
            if num_buffers > 0 && !self.features.mrg_rxbuf {
                break;
            }
            if *avail == 0 {
                return Err(None);
            }
            *avail -= 1;
            let head = self.avail_entry(self.last_avail);
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut chunk = Written { head, len: 0 };
            let res = self.fill_chain(
                mem,
                &mut chunk,
                frame,
                &header,
                &mut pos,
                total,
                &mut hdr_ptr,
            );
            if head < self.size {
                self.push_used(chunk.head, chunk.len);
            }
            if let Err(reason) = res {
                self.empty_used_since(first_used);
                return Err(Some(reason));
            }
            num_buffers += 1;
        }
        if pos < total {
            self.empty_used_since(first_used);
            return Err(Some(DropReason::Oversized));
        }
        if self.features.mrg_rxbuf || hdr_len == 12 {
            header[10..12].copy_from_slice(&num_buffers.to_le_bytes());
            // SAFETY: hdr_ptr points at the start of the first buffer, which
            // fill_chain checked holds at least hdr_len bytes.
            unsafe { ptr::copy_nonoverlapping(header[10..12].as_ptr(), hdr_ptr.add(10), 2) };
        }
        Ok(gso)
    }

    #[allow(clippy::too_many_arguments)]
    fn fill_chain(
        &self,
        mem: &GuestMem,
        chunk: &mut Written,
        frame: &Frame<'_>,
        header: &[u8; 12],
        pos: &mut usize,
        total: usize,
        hdr_ptr: &mut *mut u8,
    ) -> Result<(), DropReason> {
        let hdr_len = self.features.hdr_len;
        let mut walker = ChainWalker::new(self, mem, chunk.head);
        while let Some(d) = walker.next()? {
            if d.flags & VRING_DESC_F_WRITE == 0 {
                return Err(DropReason::DescFlags);
            }
            let dst = mem.gpa(d.addr, d.len as u64).ok_or(DropReason::DescAddr)?;
            if hdr_ptr.is_null() {
                if (d.len as usize) < hdr_len {
                    return Err(DropReason::DescLen);
                }
                *hdr_ptr = dst;
            }
            let mut room = d.len as usize;
            let mut off = 0usize;
            if *pos == 0 && room >= 12 {
                // The common case, without a memcpy call: the whole 12-byte
                // header (num_buffers is patched in later) in two stores.
                // SAFETY: room >= 12 bytes of translated guest memory at dst.
                unsafe {
                    ptr::write_unaligned(
                        dst.cast::<u64>(),
                        u64::from_le_bytes(header[..8].try_into().expect("8 bytes")),
                    );
                    if hdr_len == 12 {
                        ptr::write_unaligned(
                            dst.add(8).cast::<u32>(),
                            u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")),
                        );
                    } else {
                        ptr::write_unaligned(
                            dst.add(8).cast::<u16>(),
                            u16::from_le_bytes(header[8..10].try_into().expect("2 bytes")),
                        );
                    }
                }
                off = hdr_len;
                room -= hdr_len;
                *pos = hdr_len;
                chunk.len += hdr_len as u32;
            }
            while room > 0 && *pos < total {
                let n = if *pos < hdr_len {
                    let n = (hdr_len - *pos).min(room);
                    // SAFETY: dst..dst+d.len is guest memory translated above
                    // and off + n <= d.len.
                    unsafe { ptr::copy_nonoverlapping(header[*pos..].as_ptr(), dst.add(off), n) };
                    n
                } else {
                    let f = *pos - hdr_len;
                    let n = (frame.len - f).min(room);
                    // SAFETY: as above for the destination; f + n <= frame.len.
                    unsafe { frame.copy_to(f, dst.add(off), n) };
                    n
                };
                off += n;
                room -= n;
                *pos += n;
                chunk.len += n as u32;
            }
            if *pos == total {
                break;
            }
        }
        Ok(())
    }
}

/// A frame to write into a guest: the bytes in our buffer, then any tail
/// still in the sending guest's memory (one copy between two guests).
struct Frame<'a> {
    m: &'a Mbuf,
    len: usize,
    offload: Offload,
}

impl<'a> Frame<'a> {
    fn of(m: &'a Mbuf) -> Frame<'a> {
        Frame {
            m,
            len: m.len(),
            offload: m.offload(),
        }
    }

    /// Copies frame bytes `[from, from + n)` to `dst`.
    ///
    /// # Safety
    /// `dst` writable for `n` bytes.
    #[inline]
    unsafe fn copy_to(&self, from: usize, dst: *mut u8, n: usize) {
        // SAFETY: the caller's promise; the buffer's tail is valid while it
        // is being sent (the PMD holds the source guest's descriptors).
        unsafe { self.m.copy_to_ptr(from, dst, n) }
    }
}

/// Follows one descriptor chain, direct or through one indirect table, with
/// every step checked. Ends after at most `table size` steps.
struct ChainWalker<'a> {
    mem: &'a GuestMem,
    table: *const Desc,
    table_len: u32,
    next: Option<u32>,
    steps: u32,
    indirect: bool,
}

impl<'a> ChainWalker<'a> {
    fn new(ring: &SplitRing, mem: &'a GuestMem, head: u16) -> Self {
        ChainWalker {
            mem,
            table: ring.desc,
            table_len: ring.size as u32,
            next: Some(head as u32),
            steps: 0,
            indirect: false,
        }
    }

    fn next(&mut self) -> Result<Option<Desc>, DropReason> {
        loop {
            let Some(i) = self.next else { return Ok(None) };
            if i >= self.table_len {
                return Err(DropReason::DescIndex);
            }
            self.steps += 1;
            if self.steps > self.table_len {
                return Err(DropReason::DescLoop);
            }
            // SAFETY: i < table_len and the table was translated for
            // table_len descriptors; one volatile read, then only the copy is used.
            let d = unsafe { ptr::read_volatile(self.table.add(i as usize)) };
            if d.flags & VRING_DESC_F_INDIRECT != 0 {
                if self.indirect || d.flags & VRING_DESC_F_NEXT != 0 {
                    return Err(DropReason::DescIndirect);
                }
                if d.len == 0 || d.len % 16 != 0 || d.len / 16 > MAX_QUEUE_SIZE as u32 {
                    return Err(DropReason::DescIndirect);
                }
                let t = self
                    .mem
                    .gpa(d.addr, d.len as u64)
                    .ok_or(DropReason::DescAddr)?;
                if !(t as usize).is_multiple_of(std::mem::align_of::<Desc>()) {
                    return Err(DropReason::DescIndirect);
                }
                self.table = t as *const Desc;
                self.table_len = d.len / 16;
                self.next = Some(0);
                self.steps = 0;
                self.indirect = true;
                continue;
            }
            if d.len == 0 {
                return Err(DropReason::DescLen);
            }
            self.next = (d.flags & VRING_DESC_F_NEXT != 0).then_some(d.next as u32);
            return Ok(Some(d));
        }
    }
}

#[cfg(test)]
mod tests;
