//! Writes seed inputs for the `replicator` fuzz target
//! (`ct_tools::fuzzing::replicator`) into a directory: real ctnetlink
//! events (NEW, UPDATE, DESTROY of TCP and UDP flows, IPv4 and IPv6) and
//! the sync datagrams a primary replicator sends for them, in every mode,
//! interleaved with ticks, polls, resyncs, bulk sends and commits.
//!
//! `cargo run -p ct-tools --example replicator_seeds -- DIR`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ct_core::config::SyncSection;
use ct_core::flow::*;
use ct_core::netlink::ct::emit_flow;
use ct_core::netlink::writer::Writer;
use ct_transport::replicator::{Config, Io, LinkParams, Now, Replicator, Role};
use ct_transport::wire::Transport;

fn flow(i: u32, v6: bool, udp: bool) -> Flow {
    let ip = |a: u32| {
        Some(if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, a as u16))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + a))
        })
    };
    let proto = if udp { 17 } else { 6 };
    let t = |s, d, sp, dp| Tuple {
        src: ip(s),
        dst: ip(d),
        l4proto: Some(proto),
        src_port: Some(sp),
        dst_port: Some(dp),
        ..Tuple::default()
    };
    Flow {
        family: if v6 { AF_INET6 } else { AF_INET },
        orig: Some(t(i + 1, 0xff01, 1024 + i as u16, 443)),
        reply: Some(t(0xff01, i + 1, 443, 1024 + i as u16)),
        status: Some(0x18e),
        timeout: Some(120),
        mark: Some(i),
        id: Some(i),
        protoinfo: (!udp).then(|| ProtoInfo {
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

/// One netlink datagram with events of type `msg` and `flags`.
fn events(flows: &[Flow], msg: u16, flags: u16) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf);
    for f in flows {
        let m = w.begin_msg(1 << 8 | msg, flags, 0, f.family, 0);
        emit_flow(&mut w, f);
        w.end_msg(m);
    }
    buf
}

struct Keep(Vec<Vec<u8>>);
impl Io for Keep {
    fn send(&mut self, d: &[u8]) {
        self.0.push(d.to_vec());
    }
}

fn record(out: &mut Vec<u8>, op: u8, bytes: &[u8]) {
    out.push(op);
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: replicator_seeds DIR");
    std::fs::create_dir_all(&dir).expect("create DIR");
    let mut n = 0;
    for head in [0u8, 1, 2, 4, 8 | 2, 16, 32, 64, 128 + 3] {
        for (v6, udp) in [(false, false), (true, false), (false, true)] {
            let flows: Vec<Flow> = (0..2).map(|i| flow(i, v6, udp)).collect();
            let new = events(&flows, 0, 0x0400 | 0x0200);
            let upd = events(&flows[..1], 0, 0);
            let del = events(&flows, 2, 0);
            // what a primary of this mode sends for them
            let mut sync = SyncSection::default();
            match head % 3 {
                0 => sync.modes.ftfw = true,
                1 => sync.modes.alarm = true,
                _ => sync.modes.notrack = true,
            }
            let t0 = Instant::now();
            let now = Now {
                at: t0,
                secs: 0,
                unix: 1_700_000_000,
            };
            let mut p = Replicator::new(Config {
                role: Role::Sync,
                buckets: 16,
                limit: 48,
                filter: None,
                sync: Some(sync),
            });
            p.attach(
                LinkParams {
                    mtu: 576,
                    transport: Transport::Udp,
                    sealed: false,
                },
                t0,
            );
            let mut io = Keep(Vec::new());
            for e in [&new, &upd, &del] {
                p.on_kernel_events(&now, e, &mut io);
                p.poll(&now, false, 4, &mut io);
            }
            p.request_resync();
            p.poll(&now, false, 4, &mut io);
            // a primary's input, then a backup's
            let mut a = vec![head];
            for (op, b) in [
                (0u8, &new),
                (3, &Vec::new()),
                (0x10, &upd),
                (0x22, &Vec::new()),
                (0x07, &new),
                (6, &vec![1]),
                (4, &Vec::new()),
                (0x30, &del),
                (3, &Vec::new()),
                (0x52, &Vec::new()),
            ] {
                record(&mut a, op, b);
            }
            let mut b = vec![head];
            for d in &io.0 {
                record(&mut b, 1, d);
                record(&mut b, 0x13, &[]);
            }
            for op in [12u8, 0x4e, 10, 0x1f, 9, 11] {
                record(&mut b, op, &[]);
            }
            for (k, s) in [a, b].iter().enumerate() {
                std::fs::write(format!("{dir}/seed-{head}-{v6}-{udp}-{k}"), s).expect("write");
                n += 1;
            }
        }
    }
    println!("{n} seeds in {dir}");
}
