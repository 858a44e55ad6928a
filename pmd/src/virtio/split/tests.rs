//! The driver ring against a fake device written here: it reads our
//! descriptors the way a backend would and writes used entries, honest or not.

use super::*;
use crate::mbuf::Pool;
use crate::mem::Region;
use std::os::fd::AsRawFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

const QSZ: u16 = 8;

struct Rig {
    _mem: Region,
    base: *mut u8,
    ring: SplitRing,
    cache: PoolCache,
    kick: EventFd,
    stats: QueueStats,
    /// Device side: next avail entry to read, next used slot to write.
    dev_avail: u16,
    dev_used: u16,
}

impl Rig {
    fn new() -> Rig {
        let mem = Region::new(RingLayout::new(QSZ).bytes, false).unwrap();
        let kick = EventFd::new(EFD_NONBLOCK).unwrap();
        let base = mem.as_ptr();
        // SAFETY: the region holds one queue and outlives the ring.
        let mut ring = unsafe { SplitRing::new(base, QSZ, kick.as_raw_fd()) };
        let mut cache = PoolCache::new(Pool::new(256, false).unwrap());
        ring.reset(&mut cache);
        Rig {
            _mem: mem,
            base,
            ring,
            cache,
            kick,
            stats: QueueStats::default(),
            dev_avail: 0,
            dev_used: 0,
        }
    }

    fn l(&self) -> RingLayout {
        RingLayout::new(QSZ)
    }

    fn rd<T: Copy>(&self, off: usize) -> T {
        // SAFETY: offsets used by the tests stay inside the queue area.
        unsafe { ptr::read_unaligned(self.base.add(off).cast::<T>()) }
    }

    fn wr<T>(&self, off: usize, v: T) {
        // SAFETY: as for `rd`.
        unsafe { ptr::write_unaligned(self.base.add(off).cast::<T>(), v) }
    }

    /// Device pops the next available head: (id, desc).
    fn pop_avail(&mut self) -> Option<(u16, Desc)> {
        let l = self.l();
        let idx: u16 = self.rd(l.avail + 2);
        if idx == self.dev_avail {
            return None;
        }
        let id: u16 = self.rd(l.avail + 4 + 2 * (self.dev_avail as usize % QSZ as usize));
        self.dev_avail = self.dev_avail.wrapping_add(1);
        Some((id, self.rd(l.desc + 16 * id as usize)))
    }

    fn push_used(&mut self, id: u32, len: u32) {
        let l = self.l();
        let off = l.used + 4 + 8 * (self.dev_used as usize % QSZ as usize);
        self.wr(off, id);
        self.wr(off + 4, len);
        self.dev_used = self.dev_used.wrapping_add(1);
        self.wr(l.used + 2, self.dev_used);
    }

    fn frame(&mut self, bytes: &[u8]) -> Mbuf {
        let mut m = self.cache.alloc().unwrap();
        m.fill(bytes);
        m
    }

    fn in_use(&self) -> usize {
        self.cache.pool().stats().in_use
    }
}

fn bytes_at(addr: u64, len: usize) -> Vec<u8> {
    // SAFETY: the tests only pass addresses of live mbufs or ring memory.
    unsafe { std::slice::from_raw_parts(addr as *const u8, len).to_vec() }
}

#[test]
fn tx_puts_header_and_frame_in_one_descriptor_and_reclaims() {
    let mut r = Rig::new();
    for i in 0..3u8 {
        let m = r.frame(&[i; 60]);
        r.ring.add_tx(m, false).unwrap();
    }
    r.ring.publish();
    for i in 0..3u8 {
        let (id, d) = r.pop_avail().unwrap();
        assert_eq!(d.len as usize, NET_HDR_LEN + 60);
        assert_eq!(d.flags, 0);
        let b = bytes_at(d.addr, d.len as usize);
        assert_eq!(&b[..NET_HDR_LEN], &[0; NET_HDR_LEN]);
        assert_eq!(&b[NET_HDR_LEN..], &[i; 60]);
        r.push_used(id as u32, 0);
    }
    assert!(r.pop_avail().is_none());
    // While the ring has room, reclaim stays `lag` (here 2) entries behind
    // the device; once it runs short it takes everything used.
    assert_eq!(r.ring.reclaim_tx(&mut r.cache, &r.stats), 1);
    for _ in 0..4 {
        let m = r.frame(&[9; 60]);
        r.ring.add_tx(m, false).unwrap();
    }
    r.ring.publish();
    while let Some((id, d)) = r.pop_avail() {
        assert_eq!(bytes_at(d.addr + NET_HDR_LEN as u64, 60), vec![9; 60]);
        r.push_used(id as u32, 0);
    }
    assert_eq!(r.ring.reclaim_tx(&mut r.cache, &r.stats), 6);
    assert_eq!(r.ring.room(), QSZ as usize);
    assert_eq!(r.in_use(), 0);
}

#[test]
fn tx_indirect_uses_a_two_entry_table() {
    let mut r = Rig::new();
    let m = r.frame(&[7; 100]);
    r.ring.add_tx(m, true).unwrap();
    r.ring.publish();
    let (_, d) = r.pop_avail().unwrap();
    assert_eq!(d.flags, DESC_F_INDIRECT);
    assert_eq!(d.len, 32);
    let t = bytes_at(d.addr, 32);
    // SAFETY: t holds two descriptors.
    let (h, p) = unsafe {
        (
            ptr::read_unaligned(t.as_ptr().cast::<Desc>()),
            ptr::read_unaligned(t.as_ptr().add(16).cast::<Desc>()),
        )
    };
    assert_eq!(
        (h.len as usize, h.flags, h.next),
        (NET_HDR_LEN, DESC_F_NEXT, 1)
    );
    assert_eq!((p.len, p.flags), (100, 0));
    assert_eq!(bytes_at(p.addr, 100), vec![7; 100]);
}

#[test]
fn full_ring_gives_the_buffer_back() {
    let mut r = Rig::new();
    for _ in 0..QSZ {
        let m = r.frame(&[0; 60]);
        r.ring.add_tx(m, false).unwrap();
    }
    let m = r.frame(&[0; 60]);
    let back = r.ring.add_tx(m, false).unwrap_err();
    r.cache.free(back);
}

/// Posts QSZ receive buffers and returns their (id, desc) as the device sees them.
fn post_rx(r: &mut Rig) -> Vec<(u16, Desc)> {
    for _ in 0..QSZ {
        let m = r.cache.alloc().unwrap();
        r.ring.add_rx(m).unwrap();
    }
    r.ring.publish();
    std::iter::from_fn(|| r.pop_avail()).collect()
}

fn device_write(d: &Desc, num_buffers: u16, payload: &[u8], with_hdr: bool) -> u32 {
    let mut off = 0;
    if with_hdr {
        let mut hdr = [0u8; NET_HDR_LEN];
        hdr[10..12].copy_from_slice(&num_buffers.to_le_bytes());
        // SAFETY: d.addr is a posted buffer of d.len >= NET_HDR_LEN bytes.
        unsafe { ptr::copy_nonoverlapping(hdr.as_ptr(), d.addr as *mut u8, NET_HDR_LEN) };
        off = NET_HDR_LEN;
    }
    assert!(off + payload.len() <= d.len as usize);
    // SAFETY: within the posted buffer (asserted).
    unsafe {
        ptr::copy_nonoverlapping(
            payload.as_ptr(),
            (d.addr as *mut u8).add(off),
            payload.len(),
        )
    };
    (off + payload.len()) as u32
}

#[test]
fn rx_returns_frames_without_the_header() {
    let mut r = Rig::new();
    r.ring.set_features(true, true);
    let posted = post_rx(&mut r);
    assert_eq!(posted.len(), QSZ as usize);
    assert!(posted.iter().all(|(_, d)| d.flags == DESC_F_WRITE));
    for (i, (id, d)) in posted.iter().take(3).enumerate() {
        let len = device_write(d, 1, &vec![i as u8 + 1; 64 + i], true);
        r.push_used(*id as u32, len);
    }
    let mut out = Batch::new();
    assert_eq!(r.ring.collect_rx(&mut r.cache, &mut out, &r.stats), 3);
    for (i, m) in out.iter().enumerate() {
        assert_eq!(m.data(), &vec![i as u8 + 1; 64 + i][..]);
    }
    r.cache.free_batch(&mut out);
}

#[test]
fn merged_rx_buffers_become_one_frame_once_all_are_published() {
    let mut r = Rig::new();
    r.ring.set_features(false, true);
    let posted = post_rx(&mut r);
    let (id0, d0) = posted[0];
    let (id1, d1) = posted[1];
    let len0 = device_write(&d0, 2, &[1; 100], true);
    let len1 = device_write(&d1, 0, &[2; 50], false);
    r.push_used(id0 as u32, len0);
    let mut out = Batch::new();
    // Only the first part is published: nothing comes out yet.
    assert_eq!(r.ring.collect_rx(&mut r.cache, &mut out, &r.stats), 0);
    r.push_used(id1 as u32, len1);
    assert_eq!(r.ring.collect_rx(&mut r.cache, &mut out, &r.stats), 1);
    let m = out.get(0);
    assert_eq!(m.len(), 150);
    assert_eq!(&m.data()[..100], &[1; 100]);
    assert_eq!(&m.data()[100..], &[2; 50]);
    r.cache.free_batch(&mut out);
}

/// A backend that sets used.idx far beyond what the ring holds: TX reclaim
/// counts it once and walks nothing (it used to walk up to 65535 garbage
/// entries, counting each).
#[test]
fn tx_reclaim_refuses_a_used_index_beyond_the_ring() {
    let mut r = Rig::new();
    for _ in 0..3 {
        let m = r.frame(&[1; 60]);
        r.ring.add_tx(m, false).unwrap();
    }
    r.ring.publish();
    let l = r.l();
    r.wr(l.used + 2, 40_000u16);
    assert_eq!(r.ring.reclaim_tx(&mut r.cache, &r.stats), 0);
    assert_eq!(r.stats.drops(DropReason::DescIndex), 1, "counted once");
    assert_eq!(r.ring.reclaim_tx(&mut r.cache, &r.stats), 0);
    assert_eq!(r.stats.drops(DropReason::DescIndex), 1, "and not again");
    let (mut ring, mut cache) = (r.ring, r.cache);
    ring.reset(&mut cache);
    assert_eq!(
        cache.pool().stats().in_use,
        0,
        "the held buffers come back at reset"
    );
}

#[test]
fn hostile_used_entries_are_counted_not_followed() {
    let mut r = Rig::new();
    r.ring.set_features(false, true);
    let posted = post_rx(&mut r);
    let (id0, d0) = posted[0];
    let len0 = device_write(&d0, 1, &[9; 60], true);
    r.push_used(QSZ as u32 + 5, 60); // index out of range
    r.push_used(id0 as u32, len0);
    r.push_used(id0 as u32, len0); // already returned
    r.push_used(posted[1].0 as u32, 1_000_000); // longer than posted
    r.push_used(posted[2].0 as u32, 3); // shorter than the header
    let mut out = Batch::new();
    assert_eq!(r.ring.collect_rx(&mut r.cache, &mut out, &r.stats), 1);
    assert_eq!(out.get(0).data(), &[9; 60]);
    assert_eq!(r.stats.drops(DropReason::DescIndex), 2);
    assert_eq!(r.stats.drops(DropReason::DescLen), 2);
    r.cache.free_batch(&mut out);
    // Outstanding buffers are still accounted for: reset returns them all.
    let (mut ring, mut cache) = (r.ring, r.cache);
    ring.reset(&mut cache);
    assert_eq!(cache.pool().stats().in_use, 0);
}

#[test]
fn kicks_only_when_the_device_asks() {
    let mut r = Rig::new();
    let l = r.l();
    // Device polls: NO_NOTIFY set, no event index.
    r.wr::<u16>(l.used, USED_F_NO_NOTIFY);
    let m = r.frame(&[0; 60]);
    r.ring.add_tx(m, false).unwrap();
    assert!(!r.ring.publish());
    assert!(r.kick.read().is_err(), "no kick expected");
    r.wr::<u16>(l.used, 0);
    let m = r.frame(&[0; 60]);
    r.ring.add_tx(m, false).unwrap();
    assert!(r.ring.publish());
    assert_eq!(r.kick.read().unwrap(), 1);
    // EVENT_IDX: kick exactly when avail.idx passes avail_event.
    r.ring.set_features(true, false);
    r.wr::<u16>(l.used + 4 + 8 * QSZ as usize, 3); // avail_event = 3
    let m = r.frame(&[0; 60]);
    r.ring.add_tx(m, false).unwrap(); // idx 2 -> 3: event 3 not passed
    assert!(!r.ring.publish());
    let m = r.frame(&[0; 60]);
    r.ring.add_tx(m, false).unwrap(); // idx 3 -> 4: passes 3
    assert!(r.ring.publish());
    assert!(r.in_use() > 0);
}

#[test]
fn interrupts_are_requested_only_when_waiting() {
    let mut r = Rig::new();
    r.ring.set_features(true, false);
    r.ring.reset(&mut r.cache);
    let l = r.l();
    let used_event = l.avail + 4 + 2 * QSZ as usize;
    assert_eq!(r.rd::<u16>(l.avail), AVAIL_F_NO_INTERRUPT);
    assert_eq!(r.rd::<u16>(used_event), 0x8000);
    assert!(!r.ring.set_interrupts(true));
    assert_eq!((r.rd::<u16>(l.avail), r.rd::<u16>(used_event)), (0, 0));
    let posted = post_rx(&mut r);
    r.push_used(posted[0].0 as u32, NET_HDR_LEN as u32 + 1);
    assert!(r.ring.set_interrupts(false), "a used buffer is waiting");
    assert_eq!(r.rd::<u16>(l.avail), AVAIL_F_NO_INTERRUPT);
}
