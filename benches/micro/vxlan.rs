//! The tunnel stages' own work per packet: encapsulate (flow hash for the
//! UDP source port, 50 header bytes with the IPv4 checksum) and decapsulate
//! (classify and check the outer headers, strip them), on one packet buffer,
//! at 64 and 1518 bytes. No copies of the frame: those are the ports'.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pmd::{Pool, PoolCache};
use switch::tunnel::vxlan::{self, Outer, Underlay, OUTER_LEN};

fn inner(size: usize) -> Vec<u8> {
    let mut f = vec![0u8; size];
    f[0..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa]);
    f[12..14].copy_from_slice(&[8, 0]);
    f[14] = 0x45;
    f[23] = 17;
    f
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("vxlan");
    let pool = Pool::new(64, false).unwrap();
    let mut cache = PoolCache::new(pool);
    let local = [10, 0, 0, 1];
    let outer = Outer::new([2, 0xee, 0, 0, 0, 1], local, [10, 0, 0, 2], 4789, 42);
    for size in [64usize, 1518] {
        let mut m = cache.alloc().unwrap();
        m.fill(&inner(size - 4));
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("encap_decap/{size}B"), |b| {
            b.iter(|| {
                let len = m.len();
                let sport = vxlan::src_port(m.data());
                assert!(m.prepend(OUTER_LEN));
                outer.write(m.data_mut(), [2, 0xaa, 0, 0, 0, 2], len, sport);
                // The frame now comes back as if from the remote: only the
                // addresses differ, so classify it as the remote's own end.
                match vxlan::classify(black_box(m.data()), [10, 0, 0, 2], |p| p == 4789) {
                    Underlay::Vxlan {
                        inner_at,
                        inner_len,
                        ..
                    } => {
                        m.set_len(inner_at + inner_len);
                        m.adj(inner_at);
                    }
                    other => panic!("{other:?}"),
                }
            })
        });
        cache.free(m);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
