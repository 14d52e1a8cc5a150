//! The replicator's per-flow path (`ct_transport::replicator`, what a
//! daemon's lane runs), without the kernel, as criterion benches:
//!
//! * `primary_event_to_datagram`: a ctnetlink NEW event (bytes, as the
//!   kernel sends them) is parsed, put in the internal cache, queued by
//!   FT-FW and encoded into sync datagrams at the end of the loop
//!   iteration — what the primary does per flow above the kernel's
//!   receive;
//! * `backup_datagram_to_cache`: FT-FW datagrams of real-looking flows
//!   (TCP, status, timeout, mark, state) are received, sequence-checked
//!   and applied to the external cache — what the backup does per flow.
//!
//! Both run 100k distinct flows per iteration; throughput is per flow.
//! Run: `cargo bench -p ct-benches --bench per_flow`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ct_core::config::SyncSection;
use ct_core::flow::*;
use ct_core::netlink::ct::emit_flow;
use ct_core::netlink::writer::Writer;
use ct_transport::replicator::{Config, Io, LinkParams, Now, Replicator, Role};
use ct_transport::wire::Transport;

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

/// A lane's replicator in FT-FW mode on a 1500-byte UDP link.
fn replicator(now: Instant) -> Replicator {
    let mut sync = SyncSection::default();
    sync.modes.ftfw = true;
    sync.resend_queue_size = 2 * N;
    let mut r = Replicator::new(Config {
        role: Role::Sync,
        buckets: N as usize,
        limit: 4 * N as usize,
        filter: None,
        sync: Some(sync),
    });
    r.attach(
        LinkParams {
            mtu: 1500,
            transport: Transport::Udp,
            sealed: false,
        },
        now,
    );
    r
}

/// The datagrams a replicator sends, kept (up to a bound) for the
/// backup's bench.
struct Sink<'a> {
    sent: usize,
    keep: &'a mut Vec<Vec<u8>>,
}

impl Io for Sink<'_> {
    fn send(&mut self, d: &[u8]) {
        self.sent += 1;
        if self.keep.len() < 20_000 {
            self.keep.push(d.to_vec());
        }
    }
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

/// The primary's work for every event datagram, as the daemon's loop
/// does it: the replicator parses, caches and queues; the end of the
/// iteration encodes and sends.
fn primary(events: &[Vec<u8>], datagrams: &mut Vec<Vec<u8>>) -> usize {
    let at = Instant::now();
    let now = Now {
        at,
        secs: 1,
        unix: 1_700_000_000,
    };
    let mut rep = replicator(at);
    let mut io = Sink {
        sent: 0,
        keep: datagrams,
    };
    for d in events {
        rep.on_kernel_events(&now, d, &mut io);
        rep.poll(&now, false, 64, &mut io);
    }
    io.sent
}

/// The backup's work for every datagram: sequence check, decode, apply
/// to the external cache.
fn backup(datagrams: &[Vec<u8>]) -> usize {
    let at = Instant::now();
    let now = Now {
        at,
        secs: 1,
        unix: 1_700_000_000,
    };
    let mut rep = replicator(at);
    let mut acks = Vec::new();
    let mut io = Sink {
        sent: 0,
        keep: &mut acks,
    };
    for d in datagrams {
        rep.on_datagram(&now, d, None, &mut io);
    }
    rep.external().len()
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
