//! FDB lookup and learn, at 1 and 8192 learned MACs.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use switch::fdb::Fdb;

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0, b[0], b[1], b[2], b[3]]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fdb");
    for n in [1u32, 8192] {
        let f = Fdb::new(8192, 300);
        for i in 0..n {
            f.learn(0, &mac(i), 1 + (i % 4) as u16, 0);
        }
        let macs: Vec<[u8; 6]> = (0..1024).map(|i| mac(i % n)).collect();
        g.throughput(Throughput::Elements(macs.len() as u64));
        g.bench_function(format!("lookup_hit/{n}_macs"), |b| {
            b.iter(|| {
                let mut s = 0u32;
                for m in &macs {
                    s += f.lookup(0, black_box(m)).unwrap_or(0) as u32;
                }
                s
            })
        });
        g.bench_function(format!("learn_refresh/{n}_macs"), |b| {
            b.iter(|| {
                for (i, m) in macs.iter().enumerate() {
                    f.learn(0, black_box(m), 1 + (i as u32 % n % 4) as u16, 0);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
