//! The flow table's hot parts: exact-match cache hit, classifier search at
//! 10/100/1000 rules (per-tenant ACLs as the e2e flow bench generates them),
//! key extraction, and parsing the ovs-ofctl flow syntax (control path).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use switch::flow::cache::ExactCache;
use switch::flow::classifier::Classifier;
use switch::flow::key::FlowKey;
use switch::flow::rule::Rule;
use switch::flow::syntax::{parse_rule, PortNames};

struct Names;
impl PortNames for Names {
    fn number(&self, n: &str) -> Option<u16> {
        n.strip_prefix('p')?.parse().ok()
    }
    fn name(&self, no: u16) -> Option<String> {
        Some(format!("p{no}"))
    }
}

/// `n` rules shaped like a per-tenant ACL: allow lists on IP/L4, drops, a default.
fn acl(n: usize) -> Vec<String> {
    let mut v = vec!["priority=0,actions=normal".to_string()];
    for i in 0..n.saturating_sub(1) {
        let t = i / 10;
        v.push(match i % 5 {
            0 => format!(
                "priority=100,udp,nw_src=10.{}.{}.0/24,tp_dst={},actions=normal",
                t / 256,
                t % 256,
                1000 + i
            ),
            1 => format!(
                "priority=100,tcp,nw_dst=10.{}.{}.0/24,tp_dst={},actions=normal",
                t / 256,
                t % 256,
                2000 + i
            ),
            2 => format!(
                "priority=90,ip,nw_src=10.{}.{}.0/24,actions=drop",
                t / 256,
                t % 256
            ),
            3 => format!("priority=80,udp,tp_dst={},actions=drop", 3000 + i),
            _ => format!(
                "priority=70,in_port=p{},ip,nw_dst=10.{}.{}.1,actions=output:p2",
                i % 8 + 1,
                t / 256,
                t % 256
            ),
        });
    }
    v
}

fn frame(src: [u8; 4], dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = vec![
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0,
    ];
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&[0x30, 0x39]);
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

fn keys(n: usize) -> Vec<FlowKey> {
    (0..n)
        .map(|i| {
            let f = frame(
                [10, 0, (i % 40) as u8, 5],
                [10, 0, (i % 37) as u8, 1],
                1000 + (i % 600) as u16,
            );
            FlowKey::extract(&f, 1 + (i % 8) as u16).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("flows");
    let ks = keys(1024);
    g.throughput(Throughput::Elements(ks.len() as u64));
    for n in [10usize, 100, 1000] {
        let rules: Vec<Rule> = acl(n)
            .iter()
            .map(|l| parse_rule(l, &Names).unwrap())
            .collect();
        let cls = Classifier::from_rules(&rules);
        g.bench_function(format!("classifier_lookup/{n}_rules"), |b| {
            b.iter(|| {
                let mut s = 0u32;
                for k in &ks {
                    s = s.wrapping_add(cls.lookup(0, black_box(k)).unwrap_or(0));
                }
                s
            })
        });
    }
    let mut emc = ExactCache::default();
    for (i, k) in ks.iter().enumerate() {
        emc.insert(*k, i as u32);
    }
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            let mut s = 0u32;
            for k in &ks {
                s = s.wrapping_add(emc.get(black_box(k)).unwrap_or(0));
            }
            s
        })
    });
    let frames: Vec<Vec<u8>> = (0..1024)
        .map(|i| frame([10, 0, (i % 40) as u8, 5], [10, 0, 1, 1], 1000 + i as u16))
        .collect();
    g.bench_function("key_extract", |b| {
        b.iter(|| {
            let mut s = 0u64;
            for f in &frames {
                s ^= FlowKey::extract(black_box(f), 1).unwrap().w[2];
            }
            s
        })
    });
    let lines = acl(1000);
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse/1000_flows", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(parse_rule(black_box(l), &Names).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
