//! Our virtio driver (the virtio-user port) reading used rings a backend
//! wrote: after posting receive buffers and transmitting frames, the used
//! ring, its index and the receive buffers' headers become the input's.
//! Invariants: no panic, no access outside our ring memory or buffers, and
//! every buffer comes back to the pool once the ring is reset.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pmd::virtio::split::{DriverRing, RingLayout, SplitRing};
use pmd::{Batch, Pool, PoolCache, QueueStats};
use std::sync::{Arc, OnceLock};

#[derive(Arbitrary, Debug)]
struct Input {
    size_log2: u8,
    event_idx: bool,
    mrg_rxbuf: bool,
    posted: u8,
    /// (used.idx, [(id, len)]) written by the "backend" before each call.
    rounds: Vec<(u16, Vec<(u32, u32)>)>,
    /// Bytes the backend wrote into every posted buffer's room (its header included).
    fill: Vec<u8>,
}

const NET_HDR: usize = 12;

fn pool() -> &'static Arc<Pool> {
    static P: OnceLock<Arc<Pool>> = OnceLock::new();
    P.get_or_init(|| Pool::new(1024, false).unwrap())
}

fuzz_target!(|input: Input| {
    let size = 2u16 << (input.size_log2 % 8);
    let layout = RingLayout::new(size);
    let mut mem = vec![0u64; layout.bytes / 8];
    let base = mem.as_mut_ptr().cast::<u8>();
    let mut cache = PoolCache::new(pool().clone());
    let stats = QueueStats::default();
    for tx in [false, true] {
        // SAFETY: `mem` holds layout.bytes bytes, outlives the ring and only it uses them.
        let mut ring = unsafe { SplitRing::new(base, size, -1) };
        ring.set_features(input.event_idx, input.mrg_rxbuf);
        ring.reset(&mut cache);
        for _ in 0..(input.posted as usize).min(size as usize) {
            let mut m = cache.alloc().unwrap();
            // What the backend may write: the virtio-net header in the
            // headroom (num_buffers included) and the whole data room.
            let n = input.fill.len().min(NET_HDR + m.capacity());
            // SAFETY: NET_HDR bytes of headroom precede data_ptr (HEADROOM is
            // larger) and capacity() bytes follow it, all in this buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(input.fill.as_ptr(), m.data_ptr().sub(NET_HDR), n)
            };
            if tx {
                m.set_len(60);
                if let Err(m) = ring.add_tx(m, input.event_idx) {
                    cache.free(m);
                }
            } else if let Err(m) = ring.add_rx(m) {
                cache.free(m);
            }
        }
        ring.publish();
        for (idx, elems) in input.rounds.iter().take(8) {
            let used = base.wrapping_add(layout.used);
            for (k, (id, len)) in elems.iter().take(size as usize).enumerate() {
                // SAFETY: element k < size of the used ring lies in `mem`.
                unsafe {
                    let e = used.add(4 + 8 * k);
                    e.cast::<u32>().write_unaligned(*id);
                    e.add(4).cast::<u32>().write_unaligned(*len);
                }
            }
            // SAFETY: used.idx is bytes 2..4 of the used ring, inside `mem`.
            unsafe { used.add(2).cast::<u16>().write_unaligned(*idx) };
            if tx {
                ring.reclaim_tx(&mut cache, &stats);
            } else {
                let mut out = Batch::new();
                ring.collect_rx(&mut cache, &mut out, &stats);
                for m in out.drain() {
                    assert!(m.len() <= m.capacity());
                    cache.free(m);
                }
            }
        }
        ring.reset(&mut cache);
    }
    drop(cache);
    assert_eq!(pool().stats().in_use, 0, "a packet buffer was lost");
});
