//! Ring walks, bursts of 32: guest TX (header + frame chains) with our burst
//! walker against virtio-queue's reference accessors on the same memory, and
//! guest RX (our enqueue into 2 KiB mergeable buffers).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrovs_benches::{FakeTxRing, AVAIL, DESC, QSIZE, USED};
use pmd::{Batch, Pool, PoolCache, QueueStats, BURST};
use virtio_queue::{Queue, QueueT};
use vm_memory::Bytes;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_walk");
    g.throughput(Throughput::Elements(BURST as u64));
    for len in [64u32, 1514] {
        let mut fake = FakeTxRing::new(len);
        let mut ring = fake.ring();
        let mut cache = PoolCache::new(Pool::new(4096, true).unwrap());
        let stats = QueueStats::default();
        g.bench_function(format!("ferrovs_dequeue/{len}B"), |b| {
            b.iter(|| {
                fake.offer(BURST as u16);
                let mut out = Batch::new();
                let (n, _) = ring.dequeue(&fake.mem, &mut cache, &mut out, &stats);
                assert_eq!(n, BURST);
                cache.free_batch(&mut out);
            })
        });

        let mut fake = FakeTxRing::new(len);
        let mut q = Queue::new(QSIZE).unwrap();
        q.set_size(QSIZE);
        q.set_desc_table_address(Some(DESC as u32), Some(0));
        q.set_avail_ring_address(Some(AVAIL as u32), Some(0));
        q.set_used_ring_address(Some(USED as u32), Some(0));
        q.set_ready(true);
        let mut buf = vec![0u8; 2048];
        g.bench_function(format!("virtio_queue_pop_read_add_used/{len}B"), |b| {
            b.iter(|| {
                fake.offer(BURST as u16);
                let m = fake.mem.mappings();
                let mut n = 0;
                while let Some(chain) = q.pop_descriptor_chain(m) {
                    let head = chain.head_index();
                    let mut off = 0usize;
                    for d in chain {
                        if d.len() > 12 {
                            let l = d.len() as usize;
                            m.read_slice(&mut buf[off..off + l], d.addr()).unwrap();
                            off += l;
                        }
                    }
                    q.add_used(m, head, 0).unwrap();
                    n += 1;
                }
                assert_eq!(n, BURST);
            })
        });
    }
    for len in [64usize, 1514] {
        let mut fake = FakeTxRing::new_rx();
        let mut ring = fake.ring();
        let mut cache = PoolCache::new(Pool::new(4096, true).unwrap());
        let stats = QueueStats::default();
        let frame = vec![0x5au8; len];
        g.bench_function(format!("ferrovs_enqueue/{len}B"), |b| {
            b.iter(|| {
                fake.offer(BURST as u16);
                let mut batch = Batch::new();
                for _ in 0..BURST {
                    let mut m = cache.alloc().unwrap();
                    m.fill(&frame);
                    let _ = batch.push(m);
                }
                let (n, _) = ring.enqueue(&fake.mem, &mut cache, &mut batch, &stats);
                assert_eq!(n, BURST);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
