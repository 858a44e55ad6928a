//! Packet buffers: a fixed-size pool in one [`Region`], a shared lock-free
//! free ring, and a per-thread [`PoolCache`] that refills and spills in bursts
//! so the steady state never touches the shared ring.
//!
//! A buffer is a 64-byte header and a room: `HEADROOM` bytes, then the
//! pool's data room (2048 bytes by default; a pool for jumbo frames has one
//! buffer per frame, as Snabb's packets do, rather than chains). Unlike
//! DPDK's rte_mbuf the headers do not sit in front of their rooms: the rooms
//! are one region the virtio-user driver shares with its vhost-user backend,
//! and the headers (lengths, offsets, indexes, room pointers) are a second
//! region no peer ever maps, so a hostile backend can corrupt frame bytes but
//! never steer where we write or which buffer we free.
//!
//! A buffer may also end in a *guest tail*: the frame's first bytes are in the
//! room (a private copy, what the switch decides on and edits), the rest is
//! still in the sending guest's memory (see [`GuestTail`]). Only the vhost-user
//! receive path makes such buffers, only for the one PMD iteration that holds
//! the guest's descriptors, so a frame between two guests is copied once.

use crate::mem::{MemError, PageKind, Region};
use crate::offload::Offload;
use crossbeam_queue::ArrayQueue;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub const HEADROOM: usize = 128;
/// Default data room: a 1518-byte frame plus slack.
pub const DATA_ROOM: usize = 2048;
/// Largest data room a pool may have: a 64 KiB TCP segment for offload
/// generators (a switch pool holds a 9000-byte MTU frame at most).
pub const MAX_DATA_ROOM: usize = 65536 - HEADROOM - 64;
const HDR_SIZE: usize = 64;
const _: () = assert!(std::mem::size_of::<MbufHdr>() == HDR_SIZE);
/// Size of every burst on the packet path (rx, tx, cache refill).
pub const BURST: usize = 32;
const CACHE_SIZE: usize = 256;

#[repr(C, align(64))]
struct MbufHdr {
    /// First byte of this buffer's room (headroom + data room) in the shared region.
    room_start: *mut u8,
    data_off: u16,
    /// Frame bytes in the room (the whole frame unless there is a tail).
    len: u16,
    index: u32,
    /// Headroom + data room of this buffer's pool.
    room: u32,
    /// Frame bytes after the room's, still in guest memory (0: no tail).
    tail_len: u32,
    /// Where those bytes are: `n_tail` ranges (see [`GuestTail`]).
    tail: *const TailRange,
    n_tail: u16,
    /// Checksum and segmentation the sender left to us (virtio-net header).
    offload: Offload,
}

/// One piece of a guest tail: translated, bounds-checked guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailRange {
    pub ptr: *const u8,
    pub len: usize,
}

impl Default for TailRange {
    fn default() -> Self {
        TailRange {
            ptr: std::ptr::null(),
            len: 0,
        }
    }
}

/// The end of a frame left in the sending guest's memory: ranges kept by the
/// receiving ring. Valid only while the PMD that received the frame holds the
/// guest's descriptors (one iteration, under the queue's lock), which is why
/// nothing but that PMD's output step ever sees one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestTail {
    ranges: *const TailRange,
    n: usize,
    len: usize,
}

impl GuestTail {
    /// # Safety
    /// `ranges` points at `n` ranges that stay valid, with the guest memory
    /// they describe, as long as any buffer carries this tail.
    pub unsafe fn new(ranges: *const TailRange, n: usize) -> GuestTail {
        // SAFETY: the caller's promise.
        let len = unsafe { std::slice::from_raw_parts(ranges, n) }
            .iter()
            .map(|r| r.len)
            .sum();
        GuestTail { ranges, n, len }
    }

    pub(crate) fn ranges(&self) -> &[TailRange] {
        // SAFETY: valid for the tail's life (see `new`).
        unsafe { std::slice::from_raw_parts(self.ranges, self.n) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the tail's bytes `[from, from + n)` to `dst`.
    ///
    /// # Safety
    /// `from + n <= len()`, and `dst` writable for `n` bytes.
    #[inline]
    pub unsafe fn copy_to(&self, mut from: usize, dst: *mut u8, n: usize) {
        let mut done = 0;
        for r in self.ranges() {
            if done == n {
                break;
            }
            if from >= r.len {
                from -= r.len;
                continue;
            }
            let k = (r.len - from).min(n - done);
            // SAFETY: from + k <= r.len bytes of checked guest memory; dst
            // has room for n >= done + k bytes.
            unsafe { std::ptr::copy_nonoverlapping(r.ptr.add(from), dst.add(done), k) };
            done += k;
            from = 0;
        }
    }
}

/// A handle to one packet buffer. Not `Clone`: one owner at a time; it is
/// given back with [`PoolCache::free`] (a dropped handle leaks its buffer,
/// which `in_use` makes visible).
#[derive(Debug)]
pub struct Mbuf(NonNull<MbufHdr>);

// SAFETY: an Mbuf is a unique handle to a buffer of a pool that lives as long
// as any PoolCache of it; moving it between threads moves ownership.
unsafe impl Send for Mbuf {}

impl Mbuf {
    fn hdr(&self) -> &MbufHdr {
        // SAFETY: the handle points at a header inside a live pool region.
        unsafe { self.0.as_ref() }
    }
    fn hdr_mut(&mut self) -> &mut MbufHdr {
        // SAFETY: as above, and the handle is unique.
        unsafe { self.0.as_mut() }
    }

    /// The frame's length: the bytes in the room and any guest tail.
    pub fn len(&self) -> usize {
        self.hdr().len as usize + self.hdr().tail_len as usize
    }

    /// Bytes of the frame in the room (what `data()` shows).
    pub fn head_len(&self) -> usize {
        self.hdr().len as usize
    }

    /// The part of the frame still in the sending guest's memory, if any.
    #[inline]
    pub fn tail(&self) -> Option<GuestTail> {
        let h = self.hdr();
        (h.tail_len != 0).then_some(GuestTail {
            ranges: h.tail,
            n: h.n_tail as usize,
            len: h.tail_len as usize,
        })
    }

    /// Makes the frame end in `tail` (the vhost-user receive path; the
    /// switch's copy of a buffer shares the original's tail).
    ///
    /// # Safety
    /// The tail stays valid (its ranges and the guest memory behind them) for
    /// as long as this buffer carries it: the buffer is sent or freed, or
    /// brought whole with [`Mbuf::take_tail_in`], before the lease that made
    /// the tail ends.
    pub unsafe fn set_tail(&mut self, tail: Option<GuestTail>) {
        let h = self.hdr_mut();
        match tail {
            Some(t) if !t.is_empty() => {
                h.tail = t.ranges;
                h.n_tail = t.n as u16;
                h.tail_len = t.len as u32;
            }
            _ => h.tail_len = 0,
        }
    }

    /// What the sender left to the switch (checksum, segmentation).
    #[inline]
    pub fn offload(&self) -> Offload {
        self.hdr().offload
    }

    pub fn set_offload(&mut self, o: Offload) {
        self.hdr_mut().offload = o;
    }

    /// Copies frame bytes `[from, from + dst.len())` (room, then tail) to `dst`.
    pub fn copy_out(&self, from: usize, dst: &mut [u8]) {
        // SAFETY: dst is ours, for dst.len() bytes.
        unsafe { self.copy_to_ptr(from, dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies frame bytes `[from, from + n)` (room, then tail) to `dst`, which
    /// may be guest memory (never made a slice).
    ///
    /// # Safety
    /// `dst` is writable for `n` bytes and does not overlap this buffer.
    #[inline]
    pub unsafe fn copy_to_ptr(&self, from: usize, dst: *mut u8, n: usize) {
        assert!(from + n <= self.len(), "read past the frame");
        let head = self.data();
        let mut done = 0;
        if from < head.len() {
            done = n.min(head.len() - from);
            // SAFETY: from + done <= head length; dst has room for n >= done.
            unsafe { std::ptr::copy_nonoverlapping(head.as_ptr().add(from), dst, done) };
        }
        if done < n {
            let t = self
                .tail()
                .expect("a frame longer than its room has a tail");
            // SAFETY: a tail is valid while its buffer exists (see GuestTail),
            // the range is inside the frame (asserted), dst has room.
            unsafe { t.copy_to(from + done - head.len(), dst.add(done), n - done) };
        }
    }

    /// Copies a guest tail into the room, so the whole frame is in `data()`;
    /// false (nothing changed) when the room cannot hold it. Frames with a
    /// tail are made to fit, so false means a bug elsewhere.
    pub fn take_tail_in(&mut self) -> bool {
        let Some(t) = self.tail() else { return true };
        let head = self.head_len();
        if head + t.len() > self.capacity() {
            return false;
        }
        // SAFETY: a tail is valid while the buffer exists (see GuestTail), and
        // the room has capacity() >= head + t.len() bytes from data_ptr().
        unsafe { t.copy_to(0, self.data_ptr().add(head), t.len()) };
        let h = self.hdr_mut();
        h.len += h.tail_len as u16;
        h.tail_len = 0;
        true
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes available after the current data offset.
    pub fn capacity(&self) -> usize {
        self.hdr().room as usize - self.hdr().data_off as usize
    }

    /// Sets the frame length (all of it in the room, no tail); panics (a
    /// bug, not input) if it exceeds capacity.
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.capacity());
        let h = self.hdr_mut();
        h.len = len as u16;
        h.tail_len = 0;
    }

    /// Pointer to the first byte of frame data (valid for `capacity()` bytes).
    pub fn data_ptr(&mut self) -> *mut u8 {
        let h = self.hdr();
        // SAFETY: data_off <= room keeps us inside this buffer's room.
        unsafe { h.room_start.add(h.data_off as usize) }
    }

    /// Address of the first byte of frame data; `headroom()` bytes before it
    /// belong to this buffer too (drivers put device headers there).
    pub fn data_addr(&self) -> usize {
        self.hdr().room_start as usize + self.hdr().data_off as usize
    }

    pub fn headroom(&self) -> usize {
        self.hdr().data_off as usize
    }

    /// The frame's bytes in the room: all of it, or its head when it has a
    /// guest tail (see [`Mbuf::tail`]).
    pub fn data(&self) -> &[u8] {
        // SAFETY: len <= capacity, so the slice lies inside this buffer's
        // room, which only this handle can access (a virtio-user backend may
        // write frame bytes there, never our lengths or offsets).
        unsafe { std::slice::from_raw_parts(self.data_addr() as *const u8, self.head_len()) }
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = self.head_len();
        // SAFETY: as for `data`, and we hold the unique handle mutably.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// Grows the frame by `n` bytes at its front (taken from the headroom),
    /// e.g. to push an 802.1Q tag; false when the headroom is too small.
    pub fn prepend(&mut self, n: usize) -> bool {
        let h = self.hdr_mut();
        if (h.data_off as usize) < n {
            return false;
        }
        h.data_off -= n as u16;
        h.len += n as u16;
        // Offsets count from the frame's first byte (e.g. a pushed VLAN tag).
        h.offload.csum_start = h.offload.csum_start.wrapping_add(n as u16);
        true
    }

    /// Drops `n` bytes from the frame's front (they return to the headroom),
    /// e.g. to pop an 802.1Q tag; false when the frame is shorter than `n`.
    pub fn adj(&mut self, n: usize) -> bool {
        let h = self.hdr_mut();
        if (h.len as usize) < n {
            return false;
        }
        h.data_off += n as u16;
        h.len -= n as u16;
        h.offload.csum_start = h.offload.csum_start.wrapping_sub(n as u16);
        true
    }

    /// Replaces the frame with `bytes` (truncated to capacity).
    pub fn fill(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.capacity());
        self.set_len(n);
        self.data_mut().copy_from_slice(&bytes[..n]);
    }
}

/// A pool of `n` packet buffers shared by all threads of the process.
pub struct Pool {
    /// A backend that punches a hole in the shared rooms (a hugetlb page that
    /// cannot come back) costs frame bytes, not the process. Declared before
    /// `rooms` so it unregisters before the unmap.
    _guard: Option<crate::vhost::fault_guard::Guard>,
    /// The rooms, `room_size` bytes each; shareable with a backend.
    rooms: Region,
    /// The headers, `HDR_SIZE` bytes each; never shared.
    headers: Region,
    count: u32,
    room_size: usize,
    free: ArrayQueue<u32>,
    /// Each cache publishes its length here (plain stores, read at stats time).
    caches: Mutex<Vec<Weak<AtomicUsize>>>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    pub total: usize,
    pub free_shared: usize,
    pub in_thread_caches: usize,
    pub in_use: usize,
}

impl Pool {
    /// Creates a pool of `count` buffers of the default data room, on
    /// hugepages when `allow_huge`.
    pub fn new(count: u32, allow_huge: bool) -> Result<Arc<Pool>, MemError> {
        Pool::with_data_room(count, DATA_ROOM, allow_huge)
    }

    /// As [`Pool::new`] with `data_room` bytes of frame space per buffer
    /// (rounded up to 64, at most [`MAX_DATA_ROOM`]).
    pub fn with_data_room(
        count: u32,
        data_room: usize,
        allow_huge: bool,
    ) -> Result<Arc<Pool>, MemError> {
        let data_room = data_room.clamp(64, MAX_DATA_ROOM).next_multiple_of(64);
        let room_size = HEADROOM + data_room;
        let rooms = Region::new(count as usize * room_size, allow_huge)?;
        let headers = Region::new(count as usize * HDR_SIZE, allow_huge)?;
        let free = ArrayQueue::new(count as usize);
        for i in 0..count {
            // SAFETY: i < count, so the header lies inside `headers` and the
            // room inside `rooms`; both are freshly mapped and private so far.
            unsafe {
                let h = headers
                    .as_ptr()
                    .add(i as usize * HDR_SIZE)
                    .cast::<MbufHdr>();
                h.write(MbufHdr {
                    room_start: rooms.as_ptr().add(i as usize * room_size),
                    data_off: HEADROOM as u16,
                    len: 0,
                    index: i,
                    room: room_size as u32,
                    tail_len: 0,
                    tail: std::ptr::null(),
                    n_tail: 0,
                    offload: Offload::default(),
                });
            }
            let _ = free.push(i);
        }
        Ok(Arc::new(Pool {
            _guard: crate::vhost::fault_guard::Guard::new(rooms.as_ptr(), rooms.len()),
            rooms,
            headers,
            count,
            room_size,
            free,
            caches: Mutex::new(Vec::new()),
        }))
    }

    /// Frame bytes one buffer holds.
    pub fn data_room(&self) -> usize {
        self.room_size - HEADROOM
    }

    pub fn page_kind(&self) -> PageKind {
        self.rooms.kind()
    }

    pub fn stats(&self) -> PoolStats {
        let total = self.count as usize;
        let free_shared = self.free.len();
        let in_thread_caches = self
            .caches
            .lock()
            .expect("pool cache list poisoned")
            .iter()
            .filter_map(Weak::upgrade)
            .map(|n| n.load(Ordering::Relaxed))
            .sum::<usize>();
        PoolStats {
            total,
            free_shared,
            in_thread_caches,
            in_use: total.saturating_sub(free_shared + in_thread_caches),
        }
    }

    fn buf(&self, index: u32) -> Mbuf {
        debug_assert!(index < self.count);
        // SAFETY: index < count, so the header is inside the header region.
        let p = unsafe { self.headers.as_ptr().add(index as usize * HDR_SIZE) };
        Mbuf(NonNull::new(p.cast()).expect("region pointer is non-null"))
    }

    /// The memory every buffer's room lives in (shared with vhost-user
    /// backends by the virtio-user driver); holds no buffer header.
    pub fn region(&self) -> &Region {
        &self.rooms
    }

    pub fn owns(&self, m: &Mbuf) -> bool {
        let base = self.headers.as_ptr() as usize;
        let p = m.0.as_ptr() as usize;
        p >= base && p < base + self.count as usize * HDR_SIZE
    }
}

/// A thread's private stack of free buffers. Alloc/free touch only this
/// stack; the shared ring is visited once per `CACHE_SIZE/2` buffers.
pub struct PoolCache {
    pool: Arc<Pool>,
    stack: Vec<u32>,
    published_len: Arc<AtomicUsize>,
}

impl PoolCache {
    pub fn new(pool: Arc<Pool>) -> PoolCache {
        let published_len = Arc::new(AtomicUsize::new(0));
        let mut list = pool.caches.lock().expect("pool cache list poisoned");
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&published_len));
        drop(list);
        PoolCache {
            pool,
            stack: Vec::with_capacity(CACHE_SIZE * 2),
            published_len,
        }
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    pub fn alloc(&mut self) -> Option<Mbuf> {
        if self.stack.is_empty() {
            self.refill();
        }
        let i = self.stack.pop()?;
        self.publish();
        let mut m = self.pool.buf(i);
        let h = m.hdr_mut();
        h.data_off = HEADROOM as u16;
        h.len = 0;
        h.tail_len = 0;
        h.offload = Offload::default();
        Some(m)
    }

    pub fn free(&mut self, m: Mbuf) {
        debug_assert!(self.pool.owns(&m), "mbuf freed to a foreign pool");
        let i = m.hdr().index;
        self.stack.push(i);
        self.publish();
        if self.stack.len() >= CACHE_SIZE * 2 {
            self.spill();
        }
    }

    /// Frees every buffer of a batch.
    pub fn free_batch(&mut self, b: &mut Batch) {
        while let Some(m) = b.pop() {
            self.free(m);
        }
    }

    fn refill(&mut self) {
        let mut got = 0;
        while got < CACHE_SIZE {
            match self.pool.free.pop() {
                Some(i) => self.stack.push(i),
                None => break,
            }
            got += 1;
        }
        self.publish();
    }

    /// A plain store on this thread's own line: no read-modify-write.
    fn publish(&self) {
        self.published_len
            .store(self.stack.len(), Ordering::Relaxed);
    }

    fn spill(&mut self) {
        for i in self.stack.drain(CACHE_SIZE..) {
            // Cannot fail: the ring has room for every buffer of the pool.
            let _ = self.pool.free.push(i);
        }
        self.publish();
    }
}

impl Drop for PoolCache {
    fn drop(&mut self) {
        for i in self.stack.drain(..) {
            let _ = self.pool.free.push(i);
        }
        self.publish();
    }
}

/// Up to [`BURST`] buffers, moved through the packet path without allocation.
pub struct Batch {
    len: usize,
    /// Most buffers the batch takes (BURST unless a smaller burst was asked for).
    limit: usize,
    slots: [Option<Mbuf>; BURST],
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            len: 0,
            limit: BURST,
            slots: std::array::from_fn(|_| None),
        }
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }
    /// A batch that holds at most `limit` (1..=BURST) buffers.
    pub fn with_limit(limit: usize) -> Batch {
        Batch {
            limit: limit.clamp(1, BURST),
            ..Batch::default()
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.len >= self.limit
    }
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.len)
    }
    /// Appends a buffer; gives it back if the batch is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len >= self.limit {
            return Err(m);
        }
        self.slots[self.len] = Some(m);
        self.len += 1;
        Ok(())
    }
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        self.slots[self.len].take()
    }
    pub fn get(&self, i: usize) -> &Mbuf {
        assert!(i < self.len);
        self.slots[i].as_ref().expect("slot below len is filled")
    }
    pub fn get_mut(&mut self, i: usize) -> &mut Mbuf {
        assert!(i < self.len);
        self.slots[i].as_mut().expect("slot below len is filled")
    }
    /// Removes the first `n` buffers, keeping the rest in order; the removed
    /// ones are handed to `f` (e.g. a cache's `free`).
    pub fn drain_front(&mut self, n: usize, mut f: impl FnMut(Mbuf)) {
        let n = n.min(self.len);
        for i in 0..n {
            if let Some(m) = self.slots[i].take() {
                f(m);
            }
        }
        self.slots[..self.len].rotate_left(n);
        self.len -= n;
    }
    /// Takes every buffer out, first to last (packet order matters: TCP).
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let n = std::mem::take(&mut self.len);
        self.slots[..n]
            .iter_mut()
            .map(|s| s.take().expect("slot below len is filled"))
    }

    /// Keeps the buffers for which `keep` holds, in order; hands the others to `gone`.
    pub fn retain(&mut self, mut keep: impl FnMut(&Mbuf) -> bool, mut gone: impl FnMut(Mbuf)) {
        let mut w = 0;
        for r in 0..self.len {
            let m = self.slots[r].take().expect("slot below len is filled");
            if keep(&m) {
                self.slots[w] = Some(m);
                w += 1;
            } else {
                gone(m);
            }
        }
        self.len = w;
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mbuf> {
        self.slots[..self.len]
            .iter()
            .map(|s| s.as_ref().expect("filled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12, item 1: a virtio-user backend maps `region()` and may write
    /// anything there; no buffer's bookkeeping may change with it.
    #[test]
    fn a_peer_scribbling_over_the_shared_region_cannot_redirect_buffers() {
        let pool = Pool::new(256, false).unwrap();
        let r = pool.region();
        let mut c = PoolCache::new(pool.clone());
        let mut held: Vec<Mbuf> = (0..10).map(|_| c.alloc().unwrap()).collect();
        for m in held.iter_mut() {
            m.fill(&[1; 100]);
        }
        // SAFETY: writes only inside the shared region, as a backend may.
        unsafe { std::ptr::write_bytes(r.as_ptr(), 0xff, r.len()) };
        for m in held.iter_mut() {
            assert_eq!(m.len(), 100);
            assert_eq!(m.capacity(), DATA_ROOM);
            assert!(r.contains(m.data_addr(), m.capacity()));
            m.fill(&[2; 60]);
        }
        for m in held {
            c.free(m);
        }
        assert_eq!(pool.stats().in_use, 0);
        // Every buffer comes back once, each with its own room.
        let all: Vec<Mbuf> = (0..256).map(|_| c.alloc().unwrap()).collect();
        let mut rooms: Vec<usize> = all.iter().map(|m| m.data_addr()).collect();
        rooms.sort_unstable();
        rooms.dedup();
        assert_eq!(rooms.len(), 256);
        assert!(rooms.iter().all(|&a| r.contains(a, DATA_ROOM)));
        for m in all {
            c.free(m);
        }
    }

    #[test]
    fn prepend_and_adj_move_the_front_within_the_buffer() {
        let mut c = PoolCache::new(Pool::new(1024, false).unwrap());
        let mut m = c.alloc().unwrap();
        m.fill(&[1, 2, 3, 4]);
        assert!(m.prepend(2));
        assert_eq!(m.len(), 6);
        m.data_mut()[..2].copy_from_slice(&[9, 9]);
        assert_eq!(m.data(), &[9, 9, 1, 2, 3, 4]);
        assert!(m.adj(4));
        assert_eq!(m.data(), &[3, 4]);
        assert!(!m.adj(3), "cannot drop more than the frame");
        assert!(!m.prepend(HEADROOM + 3), "cannot grow past the headroom");
        c.free(m);
    }

    #[test]
    fn alloc_free_roundtrip_and_stats() {
        let pool = Pool::new(1024, false).unwrap();
        let mut c = PoolCache::new(pool.clone());
        let mut held = Vec::new();
        for _ in 0..600 {
            let mut m = c.alloc().unwrap();
            m.fill(&[0xab; 60]);
            assert_eq!(m.len(), 60);
            held.push(m);
        }
        assert_eq!(pool.stats().in_use, 600);
        for m in held {
            c.free(m);
        }
        assert_eq!(pool.stats().in_use, 0);
        drop(c);
        assert_eq!(pool.stats().free_shared, 1024);
    }

    #[test]
    fn jumbo_pool_holds_a_9000_byte_frame() {
        let pool = Pool::with_data_room(64, 9216, false).unwrap();
        assert_eq!(pool.data_room(), 9216);
        let mut c = PoolCache::new(pool.clone());
        let mut m = c.alloc().unwrap();
        assert_eq!(m.capacity(), 9216);
        m.fill(&vec![7u8; 9018]);
        assert_eq!(m.len(), 9018);
        c.free(m);
        let small = Pool::new(64, false).unwrap();
        assert_eq!(small.data_room(), DATA_ROOM);
    }

    #[test]
    fn exhaustion_returns_none() {
        let pool = Pool::new(64, false).unwrap();
        let mut c = PoolCache::new(pool.clone());
        let all: Vec<_> = (0..64).map(|_| c.alloc().unwrap()).collect();
        assert!(c.alloc().is_none());
        for m in all {
            c.free(m);
        }
        assert!(c.alloc().is_some_and(|m| {
            c.free(m);
            true
        }));
    }

    #[test]
    fn two_caches_share_one_pool() {
        let pool = Pool::new(2048, false).unwrap();
        let mut a = PoolCache::new(pool.clone());
        let mut b = PoolCache::new(pool.clone());
        let bufs: Vec<_> = (0..1000).map(|_| a.alloc().unwrap()).collect();
        for m in bufs {
            b.free(m);
        }
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn batch_drain_yields_in_order() {
        let pool = Pool::new(64, false).unwrap();
        let mut c = PoolCache::new(pool);
        let mut b = Batch::new();
        for i in 0..4u8 {
            let mut m = c.alloc().unwrap();
            m.fill(&[i]);
            b.push(m).unwrap();
        }
        let got: Vec<Mbuf> = b.drain().collect();
        assert!(b.is_empty());
        assert_eq!(
            got.iter().map(|m| m.data()[0]).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        for m in got {
            c.free(m);
        }
    }

    #[test]
    fn batch_drain_front_keeps_order() {
        let pool = Pool::new(64, false).unwrap();
        let mut c = PoolCache::new(pool);
        let mut b = Batch::new();
        for i in 0..5u8 {
            let mut m = c.alloc().unwrap();
            m.fill(&[i]);
            b.push(m).unwrap();
        }
        let mut freed = Vec::new();
        b.drain_front(2, |m| freed.push(m));
        assert_eq!(b.len(), 3);
        assert_eq!(b.get(0).data(), &[2]);
        for m in freed {
            c.free(m);
        }
        c.free_batch(&mut b);
    }
}
