//! Rings built in fake guest memory by a small driver-side helper, walked by
//! our device side. Each malformed-input case must cost exactly the bad
//! packet, counted by reason, and nothing else.
//!
//! (virtio-queue 0.18's MockSplitQueue is not used: its `SplitQueueRing::end`
//! adds the entry count instead of the byte size, so for small rings the used
//! ring it lays out overlaps the available ring's tail and `used_event`.)

use super::*;
use crate::mbuf::{Pool, PoolCache};
use crate::vhost::guest_mem::GuestMem;
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

mod lease;

const QSIZE: u16 = 16;
const MEM_SIZE: usize = 0x10_0000;
const BUFS: u64 = 0x8_0000;

struct Fixture {
    mem: Arc<GuestMem>,
    cache: PoolCache,
    stats: QueueStats,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_data_room(crate::mbuf::DATA_ROOM)
    }

    fn with_data_room(room: usize) -> Fixture {
        let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap();
        Fixture {
            mem: Arc::new(GuestMem::from_mmap(m)),
            cache: PoolCache::new(Pool::with_data_room(1024, room, false).unwrap()),
            stats: QueueStats::default(),
        }
    }

    fn gm(&self) -> &GuestMemoryMmap {
        self.mem.mappings()
    }

    fn ring(&self, q: &Driver<'_>, f: RingFeatures) -> SplitRing {
        let addrs = RingAddrs {
            desc: q.desc_table_addr().0,
            avail: q.avail_addr().0,
            used: q.used_addr().0,
        };
        SplitRing::new(&self.mem, QSIZE, addrs, 0, f).unwrap()
    }
}

/// The driver's side of a ring: descriptor table at 0, avail at 0x1000,
/// used at 0x2000 (all well inside the fake memory).
struct Driver<'a> {
    gm: &'a GuestMemoryMmap,
}

struct Idx<'a> {
    gm: &'a GuestMemoryMmap,
    at: u64,
}

impl Idx<'_> {
    fn load(&self) -> u16 {
        self.gm.read_obj(GuestAddress(self.at)).unwrap()
    }
    fn store(&self, v: u16) {
        self.gm.write_obj(v, GuestAddress(self.at)).unwrap()
    }
}

struct AvailRing<'a> {
    gm: &'a GuestMemoryMmap,
}

impl<'a> AvailRing<'a> {
    fn idx(&self) -> Idx<'a> {
        Idx {
            gm: self.gm,
            at: 0x1002,
        }
    }
    fn set_entry(&self, i: usize, head: u16) {
        self.gm
            .write_obj(head, GuestAddress(0x1004 + 2 * i as u64))
            .unwrap()
    }
}

impl<'a> Driver<'a> {
    fn desc_table_addr(&self) -> GuestAddress {
        GuestAddress(0)
    }
    fn avail_addr(&self) -> GuestAddress {
        GuestAddress(0x1000)
    }
    fn used_addr(&self) -> GuestAddress {
        GuestAddress(0x2000)
    }
    fn store_desc(&self, i: u16, d: Desc) {
        put_desc(self.gm, 16 * i as u64, d);
    }
    fn avail(&self) -> AvailRing<'a> {
        AvailRing { gm: self.gm }
    }
    fn used_idx(&self) -> Idx<'a> {
        Idx {
            gm: self.gm,
            at: 0x2002,
        }
    }
}

fn mock(mem: &GuestMem) -> Driver<'_> {
    Driver { gm: mem.mappings() }
}

/// Writes a descriptor at guest address `at` (ring table or indirect table).
fn put_desc(gm: &GuestMemoryMmap, at: u64, d: Desc) {
    gm.write_obj(d.addr, GuestAddress(at)).unwrap();
    gm.write_obj(d.len, GuestAddress(at + 8)).unwrap();
    gm.write_obj(d.flags, GuestAddress(at + 12)).unwrap();
    gm.write_obj(d.next, GuestAddress(at + 14)).unwrap();
}

fn feats() -> RingFeatures {
    RingFeatures {
        event_idx: false,
        mrg_rxbuf: true,
        hdr_len: 12,
        ..Default::default()
    }
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> Desc {
    Desc {
        addr,
        len,
        flags,
        next,
    }
}

/// Writes descriptors at the given table indices and makes `heads` available.
fn offer(q: &Driver<'_>, descs: &[(u16, Desc)], heads: &[u16]) {
    for (i, d) in descs {
        q.store_desc(*i, *d);
    }
    let start = q.avail().idx().load();
    for (n, h) in heads.iter().enumerate() {
        q.avail()
            .set_entry((start as usize + n) % QSIZE as usize, *h);
    }
    q.avail()
        .idx()
        .store(start.wrapping_add(heads.len() as u16));
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A TX packet: header in one descriptor, the frame in a second.
fn tx_chain(f: &Fixture, head: u16, addr: u64, data: &[u8]) -> Vec<(u16, Desc)> {
    f.gm().write_slice(&[0u8; 12], GuestAddress(addr)).unwrap();
    f.gm().write_slice(data, GuestAddress(addr + 12)).unwrap();
    vec![
        (head, desc(addr, 12, VRING_DESC_F_NEXT, head + 1)),
        (head + 1, desc(addr + 12, data.len() as u32, 0, 0)),
    ]
}

fn dequeue_all(f: &mut Fixture, r: &mut SplitRing) -> Batch {
    let mut out = Batch::new();
    r.dequeue(&f.mem, &mut f.cache, &mut out, &f.stats);
    out
}

#[test]
fn dequeue_copies_frames_and_returns_descriptors() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    let a = frame(60, 1);
    let b = frame(1514, 2);
    let mut d = tx_chain(&f, 0, BUFS, &a);
    d.extend(tx_chain(&f, 2, BUFS + 0x1000, &b));
    offer(&q, &d, &[0, 2]);
    let mut out = dequeue_all(&mut f, &mut r);
    assert_eq!(out.len(), 2);
    assert_eq!(out.get(0).data(), &a[..]);
    assert_eq!(out.get(1).data(), &b[..]);
    assert_eq!(q.used_idx().load(), 2);
    assert_eq!(f.stats.snapshot().packets, 2);
    assert_eq!(f.stats.snapshot().total_drops(), 0);
    f.cache.free_batch(&mut out);
    assert_eq!(dequeue_all(&mut f, &mut r).len(), 0, "nothing new offered");
}

#[test]
fn dequeue_follows_an_indirect_table() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    let data = frame(100, 3);
    let table = BUFS + 0x4000;
    for (i, d) in tx_chain(&f, 0, BUFS, &data) {
        put_desc(f.gm(), table + 16 * i as u64, d);
    }
    offer(&q, &[(5, desc(table, 32, VRING_DESC_F_INDIRECT, 0))], &[5]);
    let mut out = dequeue_all(&mut f, &mut r);
    assert_eq!(out.len(), 1);
    assert_eq!(out.get(0).data(), &data[..]);
    f.cache.free_batch(&mut out);
}

/// Offers one bad chain then one good one: the bad one is dropped with
/// `reason`, the good one still arrives.
fn bad_then_good(bad: &[(u16, Desc)], head: u16, reason: DropReason) {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    let good = frame(64, 9);
    let mut d = bad.to_vec();
    d.extend(tx_chain(&f, 10, BUFS + 0x8000, &good));
    offer(&q, &d, &[head, 10]);
    let mut out = dequeue_all(&mut f, &mut r);
    assert_eq!(
        f.stats.drops(reason),
        1,
        "expected one {reason:?} drop; stats {:?}",
        f.stats.snapshot()
    );
    assert_eq!(f.stats.snapshot().total_drops(), 1);
    assert_eq!(
        out.len(),
        1,
        "the good packet after the bad one is delivered"
    );
    assert_eq!(out.get(0).data(), &good[..]);
    f.cache.free_batch(&mut out);
}

#[test]
fn descriptor_loop_is_dropped() {
    bad_then_good(
        &[
            (0, desc(BUFS, 64, VRING_DESC_F_NEXT, 1)),
            (1, desc(BUFS, 64, VRING_DESC_F_NEXT, 0)),
        ],
        0,
        DropReason::DescLoop,
    );
}

#[test]
fn self_loop_is_dropped() {
    bad_then_good(
        &[(3, desc(BUFS, 64, VRING_DESC_F_NEXT, 3))],
        3,
        DropReason::DescLoop,
    );
}

#[test]
fn head_index_out_of_range_is_dropped() {
    bad_then_good(&[], 500, DropReason::DescIndex);
}

#[test]
fn next_index_out_of_range_is_dropped() {
    bad_then_good(
        &[(0, desc(BUFS, 64, VRING_DESC_F_NEXT, QSIZE))],
        0,
        DropReason::DescIndex,
    );
}

#[test]
fn address_outside_guest_memory_is_dropped() {
    bad_then_good(
        &[(0, desc(MEM_SIZE as u64 - 8, 64, 0, 0))],
        0,
        DropReason::DescAddr,
    );
    bad_then_good(
        &[(0, desc(u64::MAX - 4, 64, 0, 0))],
        0,
        DropReason::DescAddr,
    );
}

#[test]
fn zero_length_is_dropped() {
    bad_then_good(&[(0, desc(BUFS, 0, 0, 0))], 0, DropReason::DescLen);
}

#[test]
fn header_only_frame_is_dropped() {
    bad_then_good(&[(0, desc(BUFS, 12, 0, 0))], 0, DropReason::DescLen);
}

#[test]
fn oversized_frame_is_dropped() {
    bad_then_good(
        &[(0, desc(BUFS, 12 + 4096, 0, 0))],
        0,
        DropReason::Oversized,
    );
}

#[test]
fn writable_descriptor_on_tx_is_dropped() {
    bad_then_good(
        &[(0, desc(BUFS, 64, VRING_DESC_F_WRITE, 0))],
        0,
        DropReason::DescFlags,
    );
}

#[test]
fn malformed_indirect_tables_are_dropped() {
    // length not a multiple of 16
    bad_then_good(
        &[(0, desc(BUFS, 24, VRING_DESC_F_INDIRECT, 0))],
        0,
        DropReason::DescIndirect,
    );
    // INDIRECT together with NEXT
    bad_then_good(
        &[(
            0,
            desc(BUFS, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1),
        )],
        0,
        DropReason::DescIndirect,
    );
    // table outside memory
    bad_then_good(
        &[(0, desc(MEM_SIZE as u64, 32, VRING_DESC_F_INDIRECT, 0))],
        0,
        DropReason::DescAddr,
    );
}

#[test]
fn nested_indirect_is_dropped() {
    let table = BUFS + 0x4000;
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    put_desc(f.gm(), table, desc(table, 16, VRING_DESC_F_INDIRECT, 0));
    offer(&q, &[(0, desc(table, 16, VRING_DESC_F_INDIRECT, 0))], &[0]);
    assert_eq!(dequeue_all(&mut f, &mut r).len(), 0);
    assert_eq!(f.stats.drops(DropReason::DescIndirect), 1);
}

#[test]
fn indirect_loop_is_bounded_by_its_table() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    let table = BUFS + 0x4000;
    put_desc(f.gm(), table, desc(BUFS, 64, VRING_DESC_F_NEXT, 1));
    put_desc(f.gm(), table + 16, desc(BUFS, 64, VRING_DESC_F_NEXT, 0));
    offer(&q, &[(0, desc(table, 32, VRING_DESC_F_INDIRECT, 0))], &[0]);
    assert_eq!(dequeue_all(&mut f, &mut r).len(), 0);
    assert_eq!(f.stats.drops(DropReason::DescLoop), 1);
}

/// A guest claims more available entries than the ring holds (40000 in a
/// 16-entry ring): the ring is broken, no stale head is walked and nothing is
/// returned on the used ring; counted once (issue 12, as DPDK and virtio-queue).
#[test]
fn avail_index_beyond_the_ring_size_marks_the_ring_broken() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    let used_before = q.used_idx().load();
    q.avail().idx().store(40000);
    for _ in 0..3 {
        let mut out = Batch::new();
        let (n, notify) = r.dequeue(&f.mem, &mut f.cache, &mut out, &f.stats);
        assert_eq!((n, notify), (0, false));
    }
    assert_eq!(q.used_idx().load(), used_before, "no stale head returned");
    assert_eq!(f.stats.drops(DropReason::DescIndex), 1, "counted once");
    assert_eq!(f.stats.snapshot().total_drops(), 1);
    // Guest RX on a broken ring sends nothing either.
    let mut pkts = batch_of(&mut f, &[frame(60, 1)]);
    assert_eq!(r.enqueue(&f.mem, &mut f.cache, &mut pkts, &f.stats).0, 0);
    f.cache.free_batch(&mut pkts);
    // Exactly a full ring is fine.
    let mut r2 = f.ring(&q, feats());
    q.avail().idx().store(QSIZE);
    let mut out = Batch::new();
    let _ = r2.dequeue(&f.mem, &mut f.cache, &mut out, &f.stats);
    assert_eq!(
        f.stats.snapshot().total_drops(),
        1 + QSIZE as u64,
        "a full ring is walked: its 16 garbage chains dropped one by one"
    );
    f.cache.free_batch(&mut out);
}

#[test]
fn ring_outside_memory_or_misaligned_is_refused() {
    let f = Fixture::new();
    let base = RingAddrs {
        desc: 0,
        avail: 0x1000,
        used: 0x2000,
    };
    assert!(SplitRing::new(&f.mem, 16, base, 0, feats()).is_ok());
    assert_eq!(
        SplitRing::new(&f.mem, 15, base, 0, feats()).err(),
        Some(RingError::BadSize(15))
    );
    let far = RingAddrs {
        desc: MEM_SIZE as u64 - 8,
        ..base
    };
    assert_eq!(
        SplitRing::new(&f.mem, 16, far, 0, feats()).err(),
        Some(RingError::Unmapped("descriptor"))
    );
    let odd = RingAddrs {
        used: 0x2002,
        ..base
    };
    assert_eq!(
        SplitRing::new(&f.mem, 16, odd, 0, feats()).err(),
        Some(RingError::Misaligned("used"))
    );
}

fn rx_buffers(q: &Driver<'_>, n: u16, len: u32, flags: u16) {
    let d: Vec<_> = (0..n)
        .map(|i| (i, desc(BUFS + 0x1000 * i as u64, len, flags, 0)))
        .collect();
    let heads: Vec<u16> = (0..n).collect();
    offer(q, &d, &heads);
}

fn batch_of(f: &mut Fixture, frames: &[Vec<u8>]) -> Batch {
    let mut b = Batch::new();
    for fr in frames {
        let mut m = f.cache.alloc().unwrap();
        m.fill(fr);
        b.push(m).unwrap();
    }
    b
}

fn used_elem(f: &Fixture, q: &Driver<'_>, i: u64) -> (u32, u32) {
    let a = q.used_addr().0 + 4 + 8 * i;
    (
        f.gm().read_obj(GuestAddress(a)).unwrap(),
        f.gm().read_obj(GuestAddress(a + 4)).unwrap(),
    )
}

#[test]
fn enqueue_writes_header_and_frame() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    rx_buffers(&q, 4, 2048, VRING_DESC_F_WRITE);
    let fr = frame(1000, 5);
    let mut b = batch_of(&mut f, std::slice::from_ref(&fr));
    let (sent, _) = r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats);
    assert_eq!(sent, 1);
    assert!(b.is_empty());
    assert_eq!(q.used_idx().load(), 1);
    assert_eq!(used_elem(&f, &q, 0), (0, 1012));
    let mut got = vec![0u8; 1012];
    f.gm().read_slice(&mut got, GuestAddress(BUFS)).unwrap();
    assert_eq!(&got[12..], &fr[..]);
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1, "num_buffers");
}

#[test]
fn enqueue_merges_small_buffers() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    rx_buffers(&q, 8, 512, VRING_DESC_F_WRITE);
    let fr = frame(1400, 6);
    let mut b = batch_of(&mut f, std::slice::from_ref(&fr));
    assert_eq!(r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats).0, 1);
    assert_eq!(
        q.used_idx().load(),
        3,
        "12 + 1400 bytes need three 512-byte buffers"
    );
    let mut hdr = [0u8; 12];
    f.gm().read_slice(&mut hdr, GuestAddress(BUFS)).unwrap();
    assert_eq!(u16::from_le_bytes([hdr[10], hdr[11]]), 3);
    let mut got = Vec::new();
    for i in 0..3u64 {
        let (id, len) = used_elem(&f, &q, i);
        let mut part = vec![0u8; len as usize];
        f.gm()
            .read_slice(&mut part, GuestAddress(BUFS + 0x1000 * id as u64))
            .unwrap();
        got.extend(part);
    }
    assert_eq!(&got[12..], &fr[..]);
}

#[test]
fn enqueue_without_room_keeps_the_packets() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    rx_buffers(&q, 1, 2048, VRING_DESC_F_WRITE);
    let mut b = batch_of(&mut f, &[frame(64, 1), frame(64, 2), frame(64, 3)]);
    assert_eq!(r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats).0, 1);
    assert_eq!(
        b.len(),
        2,
        "two frames found no buffer and are left to the caller"
    );
    assert_eq!(b.get(0).data()[0], frame(64, 2)[0]);
    f.cache.free_batch(&mut b);
}

#[test]
fn enqueue_rolls_back_a_frame_that_does_not_fit() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    rx_buffers(&q, 2, 512, VRING_DESC_F_WRITE);
    let mut b = batch_of(&mut f, &[frame(1400, 1)]);
    assert_eq!(r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats).0, 0);
    assert_eq!(
        q.used_idx().load(),
        0,
        "nothing published for a half-written frame"
    );
    assert_eq!(r.pending(), 2, "its buffers stay available");
    f.cache.free_batch(&mut b);
}

#[test]
fn enqueue_into_read_only_buffer_is_dropped() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    rx_buffers(&q, 2, 2048, 0);
    let mut b = batch_of(&mut f, &[frame(64, 1)]);
    assert_eq!(r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats).0, 0);
    assert_eq!(f.stats.drops(DropReason::DescFlags), 1);
    assert!(b.is_empty());
    assert_eq!(
        used_elem(&f, &q, 0),
        (0, 0),
        "the bad buffer is returned empty"
    );
}

#[test]
fn without_mergeable_buffers_a_small_buffer_is_oversized() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(
        &q,
        RingFeatures {
            mrg_rxbuf: false,
            ..feats()
        },
    );
    rx_buffers(&q, 4, 512, VRING_DESC_F_WRITE);
    let mut b = batch_of(&mut f, &[frame(1400, 1)]);
    assert_eq!(r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats).0, 0);
    assert_eq!(f.stats.drops(DropReason::Oversized), 1);
    assert_eq!(
        used_elem(&f, &q, 0),
        (0, 0),
        "the buffer goes back empty, not with a truncated frame"
    );
}

#[test]
fn event_idx_signals_only_when_the_guest_asks() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(
        &q,
        RingFeatures {
            event_idx: true,
            ..feats()
        },
    );
    // used_event lives after avail.ring[QSIZE]
    let used_event = GuestAddress(q.avail_addr().0 + 4 + 2 * QSIZE as u64);
    f.gm().write_obj(5u16, used_event).unwrap();
    rx_buffers(&q, 8, 2048, VRING_DESC_F_WRITE);
    let mut b = batch_of(&mut f, &[frame(64, 1), frame(64, 2)]);
    assert_eq!(
        r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats),
        (2, false),
        "used 0->2 does not pass 5"
    );
    let mut b = batch_of(
        &mut f,
        &[frame(64, 1), frame(64, 2), frame(64, 3), frame(64, 4)],
    );
    assert_eq!(
        r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats),
        (4, true),
        "used 2->6 passes 5"
    );
}

#[test]
fn no_interrupt_flag_is_honoured() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let mut r = f.ring(&q, feats());
    rx_buffers(&q, 4, 2048, VRING_DESC_F_WRITE);
    f.gm()
        .write_obj(VRING_AVAIL_F_NO_INTERRUPT, q.avail_addr())
        .unwrap();
    let mut b = batch_of(&mut f, &[frame(64, 1)]);
    assert_eq!(
        r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats),
        (1, false)
    );
    f.gm().write_obj(0u16, q.avail_addr()).unwrap();
    let mut b = batch_of(&mut f, &[frame(64, 1)]);
    assert_eq!(r.enqueue(&f.mem, &mut f.cache, &mut b, &f.stats), (1, true));
}

/// virtio's kick test, as a driver runs it after publishing `new` over `old`.
fn driver_kicks(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// Hybrid polling: arming asks the driver to kick (flags, or avail_event
/// under EVENT_IDX), a ring with entries already waiting stays unarmed, and
/// disarming takes the request back.
#[test]
fn arming_asks_for_kicks_and_rechecks_the_ring() {
    let mut f = Fixture::new();
    let mem = f.mem.clone();
    let q = mock(&mem);
    let flags = Idx {
        gm: q.gm,
        at: 0x2000,
    };
    let avail_event = Idx {
        gm: q.gm,
        at: 0x2000 + 4 + 8 * QSIZE as u64,
    };
    let mut r = f.ring(&q, feats());
    assert_eq!(flags.load(), VRING_USED_F_NO_NOTIFY, "polled: no kicks");
    assert!(!r.arm_notify(), "nothing waiting");
    assert_eq!(flags.load(), 0, "armed: kick me");
    r.disarm_notify();
    assert_eq!(flags.load(), VRING_USED_F_NO_NOTIFY);

    // An entry the driver added before it could see the request: found on
    // the second look, and the ring stays unarmed (the driver will not kick).
    offer(&q, &tx_chain(&f, 0, BUFS, &frame(60, 1)), &[0]);
    assert!(r.arm_notify(), "an entry is waiting");
    assert_eq!(flags.load(), VRING_USED_F_NO_NOTIFY);
    let mut out = dequeue_all(&mut f, &mut r);
    assert_eq!(out.len(), 1);
    f.cache.free_batch(&mut out);

    // EVENT_IDX: the event index is what the driver tests.
    let mut r = f.ring(
        &q,
        RingFeatures {
            event_idx: true,
            ..feats()
        },
    );
    r.last_avail = 1;
    assert!(!r.arm_notify());
    assert_eq!(avail_event.load(), 1);
    assert!(
        driver_kicks(avail_event.load(), 2, 1),
        "the next entry kicks"
    );
    r.disarm_notify();
    assert!(!driver_kicks(avail_event.load(), 2, 1), "disarmed: no kick");
    assert!(!driver_kicks(avail_event.load(), 40, 2));
}
