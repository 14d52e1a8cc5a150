//! Criterion benchmarks of the per-entry hot path of `conntrack -L` and
//! `-E`: decoding a kernel message into a flow, and rendering it in the
//! default, XML and JSON formats. Run: `cargo bench -p ct-benches`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ct_core::flow::*;
use ct_core::format::{self, EventKind, PlainOpts, UtcEnv};
use ct_core::netlink::attr::Attrs;
use ct_core::netlink::ct::{emit_flow, parse_flow_into};
use ct_core::netlink::writer::Writer;

fn sample() -> Flow {
    let t = |s: [u8; 4], d: [u8; 4], sp, dp| Tuple {
        src: Some(std::net::IpAddr::from(s)),
        dst: Some(std::net::IpAddr::from(d)),
        l4proto: Some(6),
        src_port: Some(sp),
        dst_port: Some(dp),
        ..Tuple::default()
    };
    Flow {
        family: AF_INET,
        orig: Some(t([10, 0, 0, 1], [10, 1, 0, 1], 40000, 443)),
        reply: Some(t([10, 1, 0, 1], [10, 0, 0, 1], 443, 40000)),
        status: Some(0x18e),
        timeout: Some(431999),
        mark: Some(0),
        use_count: Some(1),
        id: Some(123456789),
        protoinfo: Some(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(3),
                wscale_orig: Some(7),
                wscale_reply: Some(7),
                flags_orig: Some((0x23, 0x23)),
                flags_reply: Some((0x23, 0x23)),
            }),
            ..ProtoInfo::default()
        }),
        counters_orig: Some(Counters {
            packets: Some(10),
            bytes: Some(1000),
        }),
        counters_reply: Some(Counters {
            packets: Some(8),
            bytes: Some(9000),
        }),
        ..Flow::default()
    }
}

fn bench(c: &mut Criterion) {
    let f = sample();
    let mut wire = Vec::new();
    emit_flow(&mut Writer::new(&mut wire), &f);
    let env = UtcEnv { now: 1_800_000_000 };
    let mut g = c.benchmark_group("per_entry");
    g.throughput(Throughput::Elements(1));
    let mut flow = Flow::default();
    g.bench_function("parse_flow_into", |b| {
        b.iter(|| parse_flow_into(&mut flow, AF_INET, Attrs::new(black_box(&wire))).unwrap())
    });
    let mut out = Vec::with_capacity(1024);
    g.bench_function("write_plain", |b| {
        b.iter(|| {
            out.clear();
            format::write_plain(
                &mut out,
                black_box(&f),
                EventKind::None,
                &PlainOpts::default(),
                &env,
            );
        })
    });
    g.bench_function("write_xml_flow", |b| {
        b.iter(|| {
            out.clear();
            format::write_xml_flow(
                &mut out,
                black_box(&f),
                EventKind::None,
                &PlainOpts::default(),
                &env,
                None,
            );
        })
    });
    g.bench_function("write_json", |b| {
        b.iter(|| {
            out.clear();
            format::write_json(&mut out, black_box(&f), EventKind::None, &env);
        })
    });
    g.bench_function("emit_flow", |b| {
        let mut buf = Vec::with_capacity(512);
        b.iter(|| {
            buf.clear();
            emit_flow(&mut Writer::new(&mut buf), black_box(&f));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
