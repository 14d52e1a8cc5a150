//! Criterion benchmarks of the conntrackd sync wire codec: encoding a
//! conntrack message from a flow, batching a datagram at MTU 1500,
//! reading + decoding a full datagram, and the authenticated link's cost
//! per datagram (sealing and opening a full one, HMAC-SHA256). Run:
//! `cargo bench -p ct-benches --bench sync_wire`.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ct_core::flow::*;
use ct_transport::wire::*;

fn sample(i: u32) -> Flow {
    let ip = |a: u32| Some(IpAddr::V4(Ipv4Addr::from(a)));
    Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: ip(0x0a4d6400 + i),
            dst: ip(0x0a4dc800 + i),
            l4proto: Some(6),
            src_port: Some(40000 + (i % 20000) as u16),
            dst_port: Some(443),
            ..Tuple::default()
        }),
        status: Some(0xe),
        timeout: Some(600),
        mark: Some(0),
        protoinfo: Some(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(3),
                ..TcpInfo::default()
            }),
            ..ProtoInfo::default()
        }),
        synproxy: Some(Synproxy {
            isn: Some(0),
            its: Some(0),
            tsoff: Some(0),
        }),
        ..Flow::default()
    }
}

fn bench(c: &mut Criterion) {
    let opts = EmitOpts::default();
    let flows: Vec<Flow> = (0..17).map(sample).collect();
    let mut w = DatagramWriter::with_mtu(vec![0u8; 2048], 1500, Transport::Udp);
    for (i, f) in flows.iter().enumerate() {
        w.push_ct(Op::New, Flags::NONE, i as u32, f, &opts).unwrap();
    }
    let datagram = w.as_bytes().to_vec();

    let mut g = c.benchmark_group("sync_wire");
    g.throughput(Throughput::Elements(1));
    let mut buf = [0u8; 256];
    g.bench_function("emit_ct", |b| {
        b.iter(|| {
            emit_ct(
                &mut buf,
                Op::Update,
                Flags::NONE,
                7,
                black_box(&flows[3]),
                &opts,
            )
        })
    });
    g.throughput(Throughput::Elements(flows.len() as u64));
    g.bench_function("batch_17_msgs", |b| {
        b.iter(|| {
            w.clear();
            for (i, f) in flows.iter().enumerate() {
                let _ = w.push_ct(Op::New, Flags::NONE, i as u32, black_box(f), &opts);
            }
            w.len()
        })
    });
    g.bench_function("read_decode_17_msgs", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in Datagram::new(black_box(&datagram)).flatten() {
                if let Ok(Decoded::Data(Data::Ct(_, f))) = m.decode() {
                    n += f.timeout.unwrap_or(0);
                }
            }
            n
        })
    });
    g.throughput(Throughput::Elements(1));
    let key = [7u8; 32];
    let mut sealer = ct_transport::auth::Sealer::new(&key, 1);
    g.bench_function("auth_seal_datagram", |b| {
        b.iter(|| sealer.seal(black_box(&datagram)).len())
    });
    // Open a distinct fresh datagram each time: sealed ahead, in order.
    let sealed: Vec<Vec<u8>> = (0..4096).map(|_| sealer.seal(&datagram).to_vec()).collect();
    g.bench_function("auth_open_datagram", |b| {
        let mut opener = ct_transport::auth::Opener::new(&key, 1024);
        let mut i = 0;
        b.iter(|| {
            if i == sealed.len() {
                // Start over with a fresh window.
                opener = ct_transport::auth::Opener::new(&key, 1024);
                i = 0;
            }
            i += 1;
            opener
                .open(black_box(&sealed[i - 1]))
                .map_or(0, |p| p.len())
        })
    });
    g.finish();
    eprintln!("auth: datagram of {} bytes sealed/opened", datagram.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
