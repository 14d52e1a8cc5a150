//! Criterion benchmarks of the daemon's per-event cache work: insert,
//! update in place and lookup in a cache of 100k flows.
//! Run: `cargo bench -p ct-benches --bench table`.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ct_core::flow::*;
use ct_core::table::Cache;

fn flow(i: u32, mark: u32) -> Flow {
    let t = |s: u32, d: u32, sp: u16, dp: u16| Tuple {
        src: Some(IpAddr::V4(Ipv4Addr::from(s))),
        dst: Some(IpAddr::V4(Ipv4Addr::from(d))),
        l4proto: Some(6),
        src_port: Some(sp),
        dst_port: Some(dp),
        ..Tuple::default()
    };
    let src = 0x0a00_0000 | (i / 50_000);
    let sport = 10_000 + (i % 50_000) as u16;
    Flow {
        family: AF_INET,
        orig: Some(t(src, 0x0aff_fffe, sport, 80)),
        reply: Some(t(0x0aff_fffe, src, 80, sport)),
        status: Some(0xe),
        timeout: Some(3600),
        mark: Some(mark),
        protoinfo: Some(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(3),
                ..TcpInfo::default()
            }),
            ..ProtoInfo::default()
        }),
        ..Flow::default()
    }
}

fn bench(c: &mut Criterion) {
    let n = 100_000u32;
    let flows: Vec<Flow> = (0..n).map(|i| flow(i, 0)).collect();
    let mut g = c.benchmark_group("cache");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("insert_100k", |b| {
        b.iter(|| {
            let mut cache = Cache::new(65536, 1 << 22);
            for f in &flows {
                cache.replace(black_box(f), 0, 0);
            }
            cache.len()
        })
    });
    let mut cache = Cache::new(65536, 1 << 22);
    for f in &flows {
        cache.replace(f, 0, 0);
    }
    let updated: Vec<Flow> = (0..n).map(|i| flow(i, 7)).collect();
    g.bench_function("update_100k", |b| {
        b.iter(|| {
            for f in &updated {
                cache.upsert(black_box(f), 1, 0);
            }
        })
    });
    g.bench_function("lookup_100k", |b| {
        b.iter(|| {
            let mut hits = 0;
            for f in &flows {
                hits += cache.get(black_box(f)).is_some() as u32;
            }
            hits
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
