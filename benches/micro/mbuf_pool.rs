//! Packet buffer pool: a burst of 32 allocs + frees through a thread cache,
//! and the slow path that goes through the shared ring.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pmd::{Batch, Pool, PoolCache, BURST};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mbuf_pool");
    g.throughput(Throughput::Elements(BURST as u64));
    let pool = Pool::new(16384, true).unwrap();
    let mut cache = PoolCache::new(pool.clone());
    g.bench_function("alloc_free_burst32_cached", |b| {
        b.iter(|| {
            let mut batch = Batch::new();
            for _ in 0..BURST {
                let _ = batch.push(cache.alloc().unwrap());
            }
            cache.free_batch(&mut batch);
        })
    });
    // Allocate on one cache, free on another: the shared ring carries every buffer.
    let mut other = PoolCache::new(pool.clone());
    g.bench_function("alloc_free_burst32_cross_cache", |b| {
        b.iter(|| {
            let mut batch = Batch::new();
            for _ in 0..BURST {
                let _ = batch.push(cache.alloc().unwrap());
            }
            other.free_batch(&mut batch);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
