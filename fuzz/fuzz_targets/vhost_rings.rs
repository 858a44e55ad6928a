//! The device side of a split ring (guest TX walk and guest RX enqueue)
//! over guest memory whose every byte — descriptor table, available ring,
//! used index, buffers — comes from the input. Invariants: no panic, no
//! access outside guest memory or our buffers (the sanitizer watches), and
//! every packet buffer we allocate comes back to the pool. With `lease`,
//! frames are received with their tails left in guest memory, checked,
//! finished in software (checksum, segmentation) and written into the RX
//! ring straight from the TX buffers before the chains are released.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pmd::offload::{self, OffloadCaps};
use pmd::vhost::guest_mem::GuestMem;
use pmd::vhost::split_ring::{RingAddrs, RingFeatures, SplitRing};
use pmd::{Batch, Pool, PoolCache, QueueStats};
use std::sync::{Arc, OnceLock};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// 64 KiB of guest memory at guest address 0: TX ring parts at 0x0/0x1000/0x2000,
/// RX ring parts at 0x4000/0x5000/0x6000 (the largest ring, 256, fits each).
const MEM: usize = 0x10000;

#[derive(Arbitrary, Debug)]
struct Input {
    size_log2: u8,
    event_idx: bool,
    mrg_rxbuf: bool,
    modern: bool,
    /// Offloads negotiated both ways, and receive with leases.
    offloads: bool,
    lease: bool,
    tx_base: u16,
    rx_base: u16,
    /// Frame lengths to deliver to the guest.
    rx_frames: Vec<u16>,
    rounds: u8,
    memory: Vec<u8>,
}

fn pool() -> &'static Arc<Pool> {
    static P: OnceLock<Arc<Pool>> = OnceLock::new();
    P.get_or_init(|| Pool::with_data_room(256, 9216, false).unwrap())
}

fuzz_target!(|input: Input| {
    let gm = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).unwrap();
    let n = input.memory.len().min(MEM);
    gm.write_slice(&input.memory[..n], GuestAddress(0)).unwrap();
    let mem = GuestMem::from_mmap(gm);
    let size = 1u16 << (input.size_log2 % 9);
    let caps = if input.offloads {
        OffloadCaps {
            csum: true,
            tso4: true,
            tso6: true,
        }
    } else {
        OffloadCaps::default()
    };
    let features = RingFeatures {
        event_idx: input.event_idx,
        mrg_rxbuf: input.mrg_rxbuf,
        hdr_len: if input.modern || input.mrg_rxbuf {
            12
        } else {
            10
        },
        host_offloads: caps,
        guest_offloads: caps,
    };
    let at = |b: u64| RingAddrs {
        desc: b,
        avail: b + 0x1000,
        used: b + 0x2000,
    };
    let mut cache = PoolCache::new(pool().clone());
    let stats = QueueStats::default();

    let mut rx_ring = SplitRing::new(&mem, size, at(0x4000), input.rx_base, features).ok();
    if let Ok(mut tx) = SplitRing::new(&mem, size, at(0), input.tx_base, features) {
        for _ in 0..(input.rounds % 4) + 1 {
            let mut out = Batch::new();
            if input.lease {
                let _ = tx.dequeue_leasing(&mem, &mut cache, &mut out, &stats);
            } else {
                let _ = tx.dequeue(&mem, &mut cache, &mut out, &stats);
            }
            let mut plain = Batch::new();
            for mut m in out.drain() {
                assert!(m.tail().is_some() || m.len() <= m.capacity());
                assert!(m.offload().fits(m.len()), "offsets checked on receive");
                let mut segs = Batch::new();
                if offload::segment(&m, 0, &mut cache, &mut segs).is_some() {
                    cache.free_batch(&mut segs);
                }
                let _ = offload::complete_csum(&mut m);
                if let Err(m) = plain.push(m) {
                    cache.free(m);
                }
            }
            // While the chains are held: one copy into the other ring.
            if let Some(rx) = rx_ring.as_mut() {
                let _ = rx.enqueue(&mem, &mut cache, &mut plain, &stats);
            }
            cache.free_batch(&mut plain);
            tx.release();
        }
    }
    if let Some(mut rx) = rx_ring {
        let mut pkts = Batch::new();
        for &len in input.rx_frames.iter().take(pmd::BURST) {
            let mut m = cache.alloc().unwrap();
            let len = (len as usize).min(m.capacity());
            m.set_len(len);
            m.data_mut().fill(0xa5);
            let _ = pkts.push(m);
        }
        for _ in 0..(input.rounds % 4) + 1 {
            let _ = rx.enqueue(&mem, &mut cache, &mut pkts, &stats);
        }
        cache.free_batch(&mut pkts);
    }
    drop(cache);
    assert_eq!(pool().stats().in_use, 0, "a packet buffer was lost");
});
