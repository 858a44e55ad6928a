//! Shared set-up for the micro-benchmarks: a split ring in fake guest memory
//! that a "driver" keeps refilling with TX chains.

use pmd::vhost::guest_mem::GuestMem;
use pmd::vhost::split_ring::{RingAddrs, RingFeatures, SplitRing, VRING_DESC_F_NEXT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub const QSIZE: u16 = 256;
pub const DESC: u64 = 0;
pub const AVAIL: u64 = 0x1_0000;
pub const USED: u64 = 0x2_0000;
pub const BUFS: u64 = 0x10_0000;

pub struct FakeTxRing {
    pub mem: GuestMem,
    avail_idx: u16,
    /// Descriptors per chain.
    chain: u16,
}

impl FakeTxRing {
    /// A guest receive ring: every descriptor one writable 2048-byte buffer.
    pub fn new_rx() -> FakeTxRing {
        let gm = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x100_0000)]).unwrap();
        for i in 0..QSIZE {
            let d = 16 * i as u64;
            gm.write_obj(BUFS + 0x800 * i as u64, GuestAddress(d))
                .unwrap();
            gm.write_obj(2048u32, GuestAddress(d + 8)).unwrap();
            gm.write_obj(
                pmd::vhost::split_ring::VRING_DESC_F_WRITE,
                GuestAddress(d + 12),
            )
            .unwrap();
        }
        FakeTxRing {
            mem: GuestMem::from_mmap(gm),
            avail_idx: 0,
            chain: 1,
        }
    }

    /// Every descriptor pair (2i, 2i+1) is a 12-byte header + a `frame_len` frame.
    pub fn new(frame_len: u32) -> FakeTxRing {
        let gm = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x100_0000)]).unwrap();
        for i in 0..QSIZE / 2 {
            let buf = BUFS + 0x800 * i as u64;
            let d0 = 16 * (2 * i) as u64;
            gm.write_obj(buf, GuestAddress(d0)).unwrap();
            gm.write_obj(12u32, GuestAddress(d0 + 8)).unwrap();
            gm.write_obj(VRING_DESC_F_NEXT, GuestAddress(d0 + 12))
                .unwrap();
            gm.write_obj(2 * i + 1, GuestAddress(d0 + 14)).unwrap();
            let d1 = d0 + 16;
            gm.write_obj(buf + 12, GuestAddress(d1)).unwrap();
            gm.write_obj(frame_len, GuestAddress(d1 + 8)).unwrap();
            gm.write_obj(0u16, GuestAddress(d1 + 12)).unwrap();
        }
        FakeTxRing {
            mem: GuestMem::from_mmap(gm),
            avail_idx: 0,
            chain: 2,
        }
    }

    pub fn addrs() -> RingAddrs {
        RingAddrs {
            desc: DESC,
            avail: AVAIL,
            used: USED,
        }
    }

    pub fn ring(&self) -> SplitRing {
        SplitRing::new(
            &self.mem,
            QSIZE,
            Self::addrs(),
            0,
            RingFeatures {
                event_idx: false,
                mrg_rxbuf: true,
                hdr_len: 12,
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// Makes `n` more chains available, as the guest driver would (with
    /// plain stores, so the producer costs little next to the walker).
    pub fn offer(&mut self, n: u16) {
        let avail = self
            .mem
            .gpa(AVAIL, 4 + 2 * QSIZE as u64)
            .unwrap()
            .cast::<u16>();
        for _ in 0..n {
            let slot = self.avail_idx % QSIZE;
            let head = (self.avail_idx % (QSIZE / self.chain)) * self.chain;
            // SAFETY: slot < QSIZE, inside the avail ring translated above.
            unsafe { avail.add(2 + slot as usize).write_volatile(head) };
            self.avail_idx = self.avail_idx.wrapping_add(1);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        // SAFETY: the idx field of the translated avail ring.
        unsafe { avail.add(1).write_volatile(self.avail_idx) };
    }
}
