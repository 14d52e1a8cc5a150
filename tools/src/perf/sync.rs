//! `ctperf sync`: speaking the sync protocol directly.
//!
//! - source: synthesises a peer's datagrams (NEW messages for synthetic
//!   flows, batched up to the MTU as a NOTRACK/FT-FW sender does, one
//!   sequence number per message) at a set rate, to load a daemon's
//!   receive path; the daemon then holds them in its external cache;
//! - sink: receives a sender's datagrams, decodes every message and counts
//!   them by kind, to measure what a daemon puts on the link.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ct_transport::wire::{
    datagram_limit, Data, Datagram, DatagramWriter, Decoded, EmitOpts, Flags, Op, PushError,
    Transport,
};

use super::fill::synthetic;

/// A source run.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub to: SocketAddr,
    pub bind: Option<SocketAddr>,
    /// Flows to announce.
    pub n: u64,
    /// Flows per second (0: flat out).
    pub rate: u64,
    pub mtu: usize,
    pub start: u64,
}

/// What a source sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceReport {
    pub messages: u64,
    pub datagrams: u64,
    pub bytes: u64,
    pub send_errors: u64,
    pub seconds: f64,
}

/// Sends `spec.n` NEW messages for synthetic flows.
pub fn source(spec: &SourceSpec) -> std::io::Result<SourceReport> {
    let sock = UdpSocket::bind(
        spec.bind
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
    )?;
    let mut w = DatagramWriter::with_mtu(vec![0u8; spec.mtu], spec.mtu, Transport::Udp);
    let _ = datagram_limit(spec.mtu, Transport::Udp);
    let opts = EmitOpts::default();
    let mut r = SourceReport::default();
    let mut seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1);
    let start = Instant::now();
    let send = |w: &mut DatagramWriter<Vec<u8>>, r: &mut SourceReport| {
        if w.is_empty() {
            return;
        }
        match sock.send_to(w.as_bytes(), spec.to) {
            Ok(n) => {
                r.datagrams += 1;
                r.bytes += n as u64;
            }
            Err(_) => r.send_errors += 1,
        }
        w.clear();
    };
    for k in 0..spec.n {
        let f = synthetic(spec.start + k, k % 2 == 0, 600);
        seq = seq.wrapping_add(1);
        match w.push_ct(Op::New, Flags::default(), seq, &f, &opts) {
            Ok(_) => {}
            Err(PushError::Full) => {
                send(&mut w, &mut r);
                let _ = w.push_ct(Op::New, Flags::default(), seq, &f, &opts);
            }
            Err(PushError::TooBig) => continue,
        }
        r.messages += 1;
        if spec.rate > 0 {
            let due = start + Duration::from_secs_f64((k + 1) as f64 / spec.rate as f64);
            let now = Instant::now();
            if due > now + Duration::from_micros(500) {
                send(&mut w, &mut r);
                std::thread::sleep(due - now);
            }
        }
    }
    send(&mut w, &mut r);
    r.seconds = start.elapsed().as_secs_f64();
    Ok(r)
}

/// What a sink heard.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkReport {
    pub datagrams: u64,
    pub bytes: u64,
    pub new: u64,
    pub update: u64,
    pub delete: u64,
    pub expectations: u64,
    pub control: u64,
    /// Messages that did not decode.
    pub bad: u64,
    /// From the first to the last datagram.
    pub seconds: f64,
}

/// Receives on `bind` until `secs` pass or `idle` passes without a datagram
/// (after the first one).
pub fn sink(bind: SocketAddr, secs: f64, idle: f64) -> std::io::Result<SinkReport> {
    let sock = UdpSocket::bind(bind)?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    use std::os::fd::AsFd;
    let _ = ct_ring::sockopt::set_rcvbuf(sock.as_fd(), 16 << 20);
    let mut buf = vec![0u8; 1 << 16];
    let mut r = SinkReport::default();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let (mut first, mut last) = (None, Instant::now());
    while Instant::now() < end {
        let n = match sock.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if first.is_some() && last.elapsed().as_secs_f64() >= idle {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        r.datagrams += 1;
        r.bytes += n as u64;
        for m in Datagram::new(&buf[..n]) {
            match m.map_err(|_| ()).and_then(|m| m.decode().map_err(|_| ())) {
                Ok(Decoded::Data(Data::Ct(op, _))) => match op {
                    Op::New => r.new += 1,
                    Op::Update => r.update += 1,
                    Op::Delete | Op::Withdraw => r.delete += 1,
                },
                Ok(Decoded::Data(Data::Exp(..))) => r.expectations += 1,
                Ok(Decoded::Control(_)) => r.control += 1,
                Err(()) => {
                    r.bad += 1;
                    break;
                }
            }
        }
    }
    if let Some(f) = first {
        r.seconds = last.duration_since(f).as_secs_f64();
    }
    Ok(r)
}

/// The hostile datagrams of `ctperf sync hostile`, each one kind of
/// damage to a valid NEW message, with the `-s network` counter 1.4.7
/// (and ours) puts it under.
pub fn hostile_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    let f = synthetic(9_999_999, false, 600);
    let mut w = DatagramWriter::with_mtu(vec![0u8; 1500], 1500, Transport::Udp);
    let _ = w.push_ct(
        Op::New,
        Flags::default(),
        1_000_000,
        &f,
        &EmitOpts::default(),
    );
    let good = w.as_bytes().to_vec();
    let len = good.len();
    let mut v = Vec::new();
    v.push(("Truncated message", good[..5].to_vec()));
    let mut x = good.clone();
    x[0] = (2 << 4) | (x[0] & 0x0f);
    v.push(("Wrong protocol version", x));
    let mut x = good.clone();
    x[2..4].copy_from_slice(&((len as u16) + 100).to_be_bytes());
    v.push(("Bad message size", x));
    // an unknown type: the mode's classifier calls it a malformed header
    // (1.4.7 counts "Bad message type" only for data types it lets through)
    let mut x = good.clone();
    x[0] = (1 << 4) | 9;
    v.push(("Malformed header", x));
    let mut x = good.clone();
    // the first attribute's length grows past the message
    x[8..10].copy_from_slice(&0x0fffu16.to_be_bytes());
    v.push(("Malformed payload", x));
    v
}

/// Sends each hostile datagram once to `to` (from `bind`); returns the
/// kinds sent, in order.
pub fn hostile(to: SocketAddr, bind: Option<SocketAddr>) -> std::io::Result<Vec<&'static str>> {
    send_each(to, bind, &hostile_datagrams(), Duration::ZERO)
}

/// Sends `(kind, datagram)` pairs once each, in order, `gap` apart, to
/// `to` from `bind` (any port when `None`); returns the kinds.
pub fn send_each(
    to: SocketAddr,
    bind: Option<SocketAddr>,
    all: &[(&'static str, Vec<u8>)],
    gap: Duration,
) -> std::io::Result<Vec<&'static str>> {
    let sock = UdpSocket::bind(bind.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))))?;
    for (_, d) in all {
        sock.send_to(d, to)?;
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
    Ok(all.iter().map(|&(k, _)| k).collect())
}

/// An impairing relay between two daemons (`ctperf sync relay`): what
/// arrives on `a` goes to `peer_b` from `b`, and what arrives on `b` goes
/// to `peer_a` from `a`, so that each daemon sees its configured peer
/// address. Each datagram is dropped with `loss`, sent twice with `dup`,
/// or held back and sent after the next one with `reorder` (percent).
#[derive(Debug, Clone)]
pub struct RelaySpec {
    pub a: SocketAddr,
    pub peer_a: SocketAddr,
    pub b: SocketAddr,
    pub peer_b: SocketAddr,
    pub loss: f64,
    pub dup: f64,
    pub reorder: f64,
    pub secs: f64,
    pub seed: u64,
}

/// What the relay did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayReport {
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

/// Runs the relay for `spec.secs`.
pub fn relay(spec: &RelaySpec) -> std::io::Result<RelayReport> {
    let sa = UdpSocket::bind(spec.a)?;
    let sb = UdpSocket::bind(spec.b)?;
    for s in [&sa, &sb] {
        s.set_read_timeout(Some(Duration::from_millis(1)))?;
        use std::os::fd::AsFd;
        let _ = ct_ring::sockopt::set_rcvbuf(s.as_fd(), 16 << 20);
    }
    let mut rng = spec.seed | 1;
    let mut roll = move || {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        (rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    };
    let mut r = RelayReport::default();
    let mut held: [Option<Vec<u8>>; 2] = [None, None];
    let mut buf = vec![0u8; 1 << 16];
    let end = Instant::now() + Duration::from_secs_f64(spec.secs);
    while Instant::now() < end {
        let mut idle = true;
        for (dir, slot) in held.iter_mut().enumerate() {
            let (rx, tx, to) = if dir == 0 {
                (&sa, &sb, spec.peer_b)
            } else {
                (&sb, &sa, spec.peer_a)
            };
            while let Ok((n, _)) = rx.recv_from(&mut buf) {
                idle = false;
                let d = &buf[..n];
                if roll() < spec.loss {
                    r.dropped += 1;
                    continue;
                }
                if slot.is_none() && roll() < spec.reorder {
                    *slot = Some(d.to_vec());
                    r.reordered += 1;
                    continue;
                }
                let _ = tx.send_to(d, to);
                r.forwarded += 1;
                if roll() < spec.dup {
                    let _ = tx.send_to(d, to);
                    r.duplicated += 1;
                }
                if let Some(h) = slot.take() {
                    let _ = tx.send_to(&h, to);
                    r.forwarded += 1;
                }
            }
        }
        if idle {
            // nothing came: release what was held back
            for (dir, slot) in held.iter_mut().enumerate() {
                if let Some(h) = slot.take() {
                    let (tx, to) = if dir == 0 {
                        (&sb, spec.peer_b)
                    } else {
                        (&sa, spec.peer_a)
                    };
                    let _ = tx.send_to(&h, to);
                    r.forwarded += 1;
                }
            }
        }
    }
    Ok(r)
}
