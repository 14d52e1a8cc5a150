//! The daemon's per-flow path without the kernel, as criterion benches
//! (issue 12: "criterion benches of the replicator's per-flow path"):
//!
//! * `primary_event_to_datagram`: a ctnetlink NEW event (bytes, as the
//!   kernel sends them) is parsed, put in the internal cache, queued by
//!   FT-FW and encoded into sync datagrams — what the primary does per
//!   flow above the kernel's receive;
//! * `backup_datagram_to_cache`: FT-FW datagrams of real-looking flows
//!   (TCP, status, timeout, mark, state) are received, sequence-checked
//!   and applied to the external cache — what the backup does per flow.
//!
//! Both run 100k distinct flows per iteration; throughput is per flow.
//! Run: `cargo bench -p ct-benches --bench per_flow`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ct_core::flow::*;
use ct_core::netlink::ct::{emit_flow, parse_flow_into};
use ct_core::netlink::msg::Messages;
use ct_core::netlink::writer::Writer;
use ct_core::table::{Cache, Change, Mirror, ObjState};
use ct_transport::proto::ftfw::{self, Apply, Ftfw, Object};
use ct_transport::wire::{EmitOpts, Op, Transport};

const N: u32 = 100_000;

fn sample(i: u32) -> Flow {
    let ip = |a: u32| Some(IpAddr::V4(Ipv4Addr::from(a)));
    let t = |s, d, sp, dp| Tuple {
        src: ip(s),
        dst: ip(d),
        l4proto: Some(6),
        src_port: Some(sp),
        dst_port: Some(dp),
        ..Tuple::default()
    };
    let sp = 1024 + (i % 60000) as u16;
    Flow {
        family: AF_INET,
        orig: Some(t(0x0a00_0000 + i, 0x0aff_0001, sp, 443)),
        reply: Some(t(0x0aff_0001, 0x0a00_0000 + i, 443, sp)),
        status: Some(0x18e),
        timeout: Some(431_999),
        mark: Some(0),
        use_count: Some(1),
        id: Some(i),
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
        ..Flow::default()
    }
}

fn ftfw(now: Instant) -> Ftfw {
    Ftfw::new(
        ftfw::Config {
            mtu: 1500,
            transport: Transport::Udp,
            opts: EmitOpts::default(),
            window: 300,
            resend_queue_size: 2 * N,
        },
        now,
    )
}

/// The kernel's NEW events for the flows, a few per netlink datagram.
fn events() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for i in 0..N {
        let mut w = Writer::new(&mut buf);
        // IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL, as an event
        let m = w.begin_msg(1 << 8, 0x0400 | 0x0200, 0, AF_INET, 0);
        emit_flow(&mut w, &sample(i));
        w.end_msg(m);
        if i % 8 == 7 {
            out.push(std::mem::take(&mut buf));
        }
    }
    if !buf.is_empty() {
        out.push(buf);
    }
    out
}

/// The primary's work for every event: parse, cache, queue, encode.
fn primary(events: &[Vec<u8>], datagrams: &mut Vec<Vec<u8>>) -> usize {
    let now = Instant::now();
    let mut cache = Mirror::new(N as usize, 4 * N as usize);
    let mut p = ftfw(now);
    let mut flow = Flow::default();
    let mut sent = 0;
    for d in events {
        for m in Messages::new(d) {
            let m = m.unwrap();
            let (g, attrs) = m.nfgen().unwrap();
            parse_flow_into(&mut flow, g.family, attrs).unwrap();
            if let Some(obj) = cache.on_event_keep_dead(Change::New, &flow, 1) {
                p.on_local(obj);
            }
        }
        let view: &Cache = &cache.cache;
        p.transmit(
            now,
            1,
            &mut |obj, cur| {
                let st = view.by_ref_into(obj, &mut cur.flow)?;
                let op = match st {
                    ObjState::New => Op::New,
                    ObjState::Alive => Op::Update,
                    ObjState::Dead => Op::Delete,
                };
                Some(Object::Ct(op))
            },
            &mut |dg| {
                sent += 1;
                if datagrams.len() < 20_000 {
                    datagrams.push(dg.to_vec());
                }
            },
        );
    }
    sent
}

/// The backup's work for every datagram: sequence check, decode, apply.
fn backup(datagrams: &[Vec<u8>]) -> usize {
    let mut p = ftfw(Instant::now());
    let mut ext = Cache::new(N as usize, 4 * N as usize);
    for d in datagrams {
        p.on_datagram(d, &mut |a| match a {
            Apply::Ct(Op::New, f) => {
                ext.replace(f, 1, 0);
            }
            Apply::Ct(Op::Update, f) => {
                ext.upsert(f, 1, 0);
            }
            Apply::Ct(Op::Delete, f) => {
                ext.remove(f);
            }
            _ => {}
        });
    }
    ext.len()
}

fn bench(c: &mut Criterion) {
    let ev = events();
    let mut datagrams = Vec::new();
    primary(&ev, &mut datagrams);
    assert_eq!(backup(&datagrams), N as usize, "every flow arrives");
    let mut g = c.benchmark_group("per_flow");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("primary_event_to_datagram", |b| {
        let mut sink = Vec::new();
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                sink.clear();
                primary(&ev, &mut sink);
            }
            t0.elapsed()
        })
    });
    g.bench_function("backup_datagram_to_cache", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                backup(&datagrams);
            }
            t0.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
