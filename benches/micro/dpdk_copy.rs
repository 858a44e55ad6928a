//! What crossing into DPDK costs a `dpdk` port: a burst of 32 frames sent
//! and received back over DPDK's `net_ring` (a loopback: rte_ring enqueue
//! and dequeue, no NIC), against the same round trip over our own loopback
//! `RingPort` (pointer passing). The difference is the per-frame price of
//! the two copies and DPDK's mbuf alloc/free. Needs `--features dpdk`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pmd::dpdk::{eal_cleanup, eal_init, DpdkPort, DpdkPortConfig};
use pmd::ring::RingPort;
use pmd::{Batch, Pool, PoolCache, Port, BURST};

fn round_trip(port: &dyn Port, cache: &mut PoolCache, size: usize) {
    let mut b = Batch::new();
    for _ in 0..BURST {
        let mut m = cache.alloc().expect("pool has room");
        m.set_len(size);
        let _ = b.push(m);
    }
    let sent = port.tx_burst(0, cache, &mut b);
    let mut back = Batch::new();
    let mut got = 0;
    while got < sent {
        got += port.rx_burst(0, cache, &mut back);
        cache.free_batch(&mut back);
    }
}

fn bench(c: &mut Criterion) {
    let prefix = format!("fvbench{}", std::process::id());
    let args: Vec<String> = [
        "ferrovs-bench",
        "-l",
        "0",
        "--no-pci",
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--file-prefix",
        &prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    eal_init(&args).expect("DPDK EAL");
    let dpdk = DpdkPort::open(DpdkPortConfig::new("net_ring0")).expect("net_ring0");
    let ring = RingPort::loopback(1024);
    let mut cache = PoolCache::new(Pool::new(8192, true).unwrap());
    let mut g = c.benchmark_group("dpdk_copy");
    g.throughput(Throughput::Elements(BURST as u64));
    for size in [64usize, 1518] {
        g.bench_with_input(
            BenchmarkId::new("ring_port_round_trip", size),
            &size,
            |b, &s| b.iter(|| round_trip(ring.as_ref(), &mut cache, s)),
        );
        g.bench_with_input(
            BenchmarkId::new("dpdk_net_ring_round_trip", size),
            &size,
            |b, &s| b.iter(|| round_trip(&dpdk, &mut cache, s)),
        );
    }
    g.finish();
    dpdk.shutdown();
    eal_cleanup(&prefix);
}

criterion_group!(benches, bench);
criterion_main!(benches);
