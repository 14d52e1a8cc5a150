//! `ctperf fill`: create (or destroy) N synthetic entries in the kernel
//! table of the current network namespace with batched `CT_NEW` /
//! `CT_DELETE` messages (hundreds per `sendmsg`, no acks), optionally
//! paced at a target rate. Also the raw dump used as the floor when
//! benchmarking `conntrack -L`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ct_core::flow::*;
use ct_core::netlink::msg::*;
use ct_core::netlink::request::{self, DumpFilter, DumpKind};
use ct_core::netlink::writer::Writer;
use ct_core::proto::*;
use ct_ring::netlink::{NlSocket, RecvError, NETLINK_NETFILTER};

/// What to generate.
#[derive(Debug, Clone)]
pub struct FillSpec {
    pub n: u64,
    /// Entries per second; 0 = as fast as possible.
    pub rate: u64,
    pub batch: usize,
    pub timeout: u32,
    pub udp: bool,
    pub delete: bool,
    /// First entry index (so several fills can add distinct entries).
    pub start: u64,
    /// Helper assigned to each created entry (`ftp`: expectations can then
    /// be created with it as their master).
    pub helper: Option<String>,
}

impl Default for FillSpec {
    fn default() -> Self {
        FillSpec {
            n: 1000,
            rate: 0,
            batch: 256,
            timeout: 3600,
            udp: false,
            delete: false,
            start: 0,
            helper: None,
        }
    }
}

/// The i-th synthetic entry: 10.A.B.C:port → 10.255.255.254:80.
pub fn synthetic(i: u64, udp: bool, timeout: u32) -> Flow {
    let host = (i / 50_000) as u32;
    let port = 10_000 + (i % 50_000) as u16;
    let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 | (host & 0x00ff_ffff)));
    let dst = IpAddr::V4(Ipv4Addr::new(10, 255, 255, 254));
    let proto = if udp { IPPROTO_UDP } else { IPPROTO_TCP };
    let orig = Tuple {
        src: Some(src),
        dst: Some(dst),
        l4proto: Some(proto),
        src_port: Some(port),
        dst_port: Some(80),
        ..Tuple::default()
    };
    let reply = Tuple {
        src: Some(dst),
        dst: Some(src),
        l4proto: Some(proto),
        src_port: Some(80),
        dst_port: Some(port),
        ..Tuple::default()
    };
    Flow {
        family: AF_INET,
        orig: Some(orig),
        reply: Some(reply),
        status: Some(status::CONFIRMED | status::SEEN_REPLY | status::ASSURED),
        timeout: Some(timeout),
        protoinfo: if udp {
            None
        } else {
            Some(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(3),
                    flags_orig: Some((TCP_FLAG_BE_LIBERAL, TCP_FLAG_BE_LIBERAL)),
                    flags_reply: Some((TCP_FLAG_BE_LIBERAL, TCP_FLAG_BE_LIBERAL)),
                    ..TcpInfo::default()
                }),
                ..ProtoInfo::default()
            })
        },
        ..Flow::default()
    }
}

/// Result of a fill.
#[derive(Debug, Clone, Copy)]
pub struct FillReport {
    pub sent: u64,
    pub seconds: f64,
    pub send_errors: u64,
}

/// Runs a fill in the current namespace.
pub fn fill(spec: &FillSpec, mut progress: impl FnMut(u64)) -> std::io::Result<FillReport> {
    let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
    let _ = sock.set_rcvbuf(1 << 20);
    let mut buf = Vec::with_capacity(spec.batch * 200);
    let start = Instant::now();
    // Pace in slices of 0.5 ms like the lab's ctfill.py.
    let slice = Duration::from_micros(500);
    let per_slice = if spec.rate == 0 {
        spec.batch as u64
    } else {
        (spec.rate / 2000).max(1)
    };
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut seq = 1u32;
    let mut rx = vec![0u8; 1 << 16];
    let mut next = start;
    while sent < spec.n {
        let want = per_slice.min(spec.batch as u64).min(spec.n - sent);
        buf.clear();
        let mut w = Writer::new(&mut buf);
        for k in 0..want {
            let mut f = synthetic(spec.start + sent + k, spec.udp, spec.timeout);
            f.helper = spec.helper.as_deref().map(ct_core::flow::ShortStr::new);
            seq = seq.wrapping_add(1);
            if spec.delete {
                request::ct_delete_tuple(
                    &mut w,
                    seq,
                    NLM_F_REQUEST,
                    AF_INET,
                    f.orig.as_ref().expect("orig"),
                    None,
                );
            } else {
                request::ct_new(&mut w, seq, NLM_F_REQUEST | NLM_F_CREATE, AF_INET, &f);
            }
        }
        if sock.send(&buf).is_err() {
            errors += 1;
        }
        sent += want;
        // Drain any error reports so the socket never fills.
        loop {
            match sock.recv(&mut rx, true) {
                Ok(_) => errors += 1,
                Err(RecvError::WouldBlock) => break,
                Err(_) => break,
            }
        }
        progress(sent);
        if spec.rate != 0 {
            next += slice;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
    }
    Ok(FillReport {
        sent,
        seconds: start.elapsed().as_secs_f64(),
        send_errors: errors,
    })
}

/// A dump that parses nothing beyond the netlink headers: the floor for
/// `conntrack -L`. Returns (messages, bytes, seconds).
pub fn raw_dump() -> std::io::Result<(u64, u64, f64)> {
    let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
    let mut req = Vec::new();
    request::ct_dump(
        &mut Writer::new(&mut req),
        1,
        AF_UNSPEC,
        DumpKind::Normal,
        &DumpFilter::default(),
    );
    let start = Instant::now();
    sock.send(&req)?;
    let mut rx = vec![0u8; 1 << 17];
    let (mut msgs, mut bytes) = (0u64, 0u64);
    'outer: loop {
        let n = match sock.recv(&mut rx, false) {
            Ok(n) => n,
            Err(RecvError::Interrupted) => continue,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        bytes += n as u64;
        for m in Messages::new(&rx[..n]) {
            let Ok(m) = m else { break };
            if m.ty == NLMSG_DONE || m.ty == NLMSG_ERROR {
                break 'outer;
            }
            msgs += 1;
        }
    }
    Ok((msgs, bytes, start.elapsed().as_secs_f64()))
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
        * 1024
}

/// Fills a daemon cache (default HashSize/HashLimit scaled to `n`) with
/// `n` synthetic flows as the kernel would dump them and returns (RSS
/// bytes per flow, RSS delta).
pub fn cache_memory(n: u64) -> (f64, u64) {
    let before = rss_bytes();
    let mut cache = ct_core::table::Cache::new(65536, n as usize);
    for i in 0..n {
        let mut f = synthetic(i, false, 3600);
        f.mark = Some(0);
        f.use_count = Some(1);
        f.id = Some(i as u32);
        if cache.replace(&f, 0, 0) {
            continue;
        }
    }
    let after = rss_bytes();
    let total = after.saturating_sub(before);
    assert_eq!(cache.len() as u64, n);
    (total as f64 / n as f64, total)
}
