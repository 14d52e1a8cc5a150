//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*`), shared with the
//! regression test that replays the committed corpora
//! (`fuzz/regress/*.bin`, `tools/tests/fuzz_regress.rs`) on stable Rust:
//! every parser of hostile input gets arbitrary bytes and must not panic.

use ct_core::config::{evaluate, parse, StaticLookup};
use ct_core::netlink::attr::Attrs;
use ct_core::netlink::ct::parse_flow;
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::Messages;
use ct_core::netlink::stats::{parse_cpu_stats, parse_global_stats};
use ct_transport::wire::*;

/// ctnetlink messages → flows, expectations, statistics.
pub fn ctnetlink(data: &[u8]) {
    for m in Messages::new(data).flatten() {
        let _ = m.error_code();
        if let Ok((g, attrs)) = m.nfgen() {
            let _ = parse_flow(g.family, attrs.clone());
            let _ = parse_expect(g.family, attrs.clone());
            let _ = parse_cpu_stats(g.res_id, attrs.clone());
            let _ = parse_global_stats(attrs);
        }
    }
    let _ = parse_flow(2, Attrs::new(data));
}

/// Sync datagrams and streams: every message decoded and re-encoded.
pub fn sync_datagram(data: &[u8]) {
    let mut counters = RecvCounters::default();
    let mut out = [0u8; 4096];
    for r in Datagram::new(data).chain(Datagram::stream(data)) {
        let m = match r {
            Ok(m) => m,
            Err(e) => {
                counters.record(&e);
                continue;
            }
        };
        let _ = (m.kind(), m.control(), m.attrs());
        match m.decode() {
            Ok(Decoded::Data(Data::Ct(op, f))) => {
                let _ = emit_ct(&mut out, op, m.flags(), m.seq(), &f, &EmitOpts::default());
            }
            Ok(Decoded::Data(Data::Exp(op, e))) => {
                let _ = emit_exp(&mut out, op, m.flags(), m.seq(), &e, &EmitOpts::default());
            }
            Ok(Decoded::Control(c)) => {
                let _ = c.emit(&mut out);
            }
            Err(e) => counters.record(&e),
        }
    }
    let _ = parse_ct(data);
    let _ = parse_exp(data);
}

/// conntrackd.conf text.
pub fn config(data: &[u8]) {
    let sys = StaticLookup::debian(&["lo", "eth0"]);
    let out = parse(data, "fuzz.conf", &sys);
    for w in &out.warnings {
        let _ = w.c_message();
    }
    match out.result {
        Ok(mut cfg) => {
            for w in evaluate(&mut cfg) {
                let _ = w.c_message();
            }
        }
        Err(e) => {
            let _ = e.c_message_bytes();
            let _ = e.to_string();
        }
    }
}

/// conntrack command lines (arguments separated by NUL).
pub fn cli_args(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut argv = vec!["conntrack".to_string()];
    argv.extend(text.split('\u{0}').map(|s| s.to_string()));
    let _ = crate::cli::args::parse(argv, &mut std::io::sink());
}

/// The authenticated link's receive side (`ct_transport::auth`): the
/// input as one datagram, then as a run of datagrams (`u16` length
/// prefixes) through one opener, then its bytes as replay counters into a
/// window; and a sealed copy of it must open (exactly once).
pub fn auth_datagram(data: &[u8]) {
    use ct_transport::auth::{Opener, Sealer, Trailer, Window};
    const KEY: &[u8] = b"fuzzing key for the sync link!!!";
    let mut o = Opener::new(KEY, 64);
    if let Ok(t) = Trailer::new_checked(data) {
        let _ = (t.counter(), t.tag(), t.payload());
    }
    let _ = o.open(data);
    let mut rest = data;
    while rest.len() >= 2 {
        let n = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let end = (2 + n).min(rest.len());
        let _ = o.open(&rest[2..end]);
        rest = &rest[end..];
    }
    let mut w = Window::new(data.first().copied().unwrap_or(0) as u32 * 40);
    for c in data.chunks(8) {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        let _ = w.accept(u64::from_le_bytes(b));
    }
    let start = data.iter().fold(0u64, |a, &b| a.rotate_left(7) ^ b as u64);
    let mut s = Sealer::new(KEY, start);
    let sealed = s.seal(data).to_vec();
    let mut fresh = Opener::new(KEY, 64);
    assert_eq!(fresh.open(&sealed), Ok(data), "a sealed datagram opens");
    assert!(fresh.open(&sealed).is_err(), "and only once");
}

/// The warm-restart snapshot reader (`ct_transport::snapshot`): the
/// input as a file, and its bytes as the payload of a snapshot with a
/// valid header (so that the entry decoder runs on arbitrary messages).
pub fn snapshot(data: &[u8]) {
    use ct_transport::snapshot::{wrap, wrap_v1, Snapshot, Stamp};
    if let Ok(s) = Snapshot::new_checked(data) {
        let _ = s.stamp();
        let _ = s.for_each(drop);
    }
    let stamp = Stamp {
        seq: data.len() as u64,
        lane: 1,
        lanes: 2,
    };
    for file in [
        wrap(data, data.len() as u64 / 40, 0, stamp),
        wrap_v1(data, data.len() as u64 / 40, 0),
    ] {
        let s = Snapshot::new_checked(&file).expect("a header made valid");
        let mut n = 0u64;
        if let Ok(k) = s.for_each(|_| n += 1) {
            assert_eq!(k, n);
        }
    }
}

/// The replicator of a daemon's lane (`ct_transport::replicator`): the
/// first byte picks the mode, role, transport and options; then records
/// (`op`, `len` as u16 little-endian, bytes) feed it kernel event bytes, peer datagrams (fresh
/// or of a warm restart's generation), ticks, polls, resync requests,
/// bulk sends, kernel dumps (of the last bytes seen, parsed as ctnetlink),
/// flushes, commits and send failures, in any order, with time moving
/// by the op's high bits. Nothing may panic, and neither cache may grow
/// beyond its limit.
pub fn replicator(data: &[u8]) {
    use ct_core::config::SyncSection;
    use ct_core::flow::{Expect, Flow};
    use ct_core::table::FakeTable;
    use ct_transport::replicator::{Config, Io, LinkParams, Now, Replicator, Role};
    use std::time::{Duration, Instant};

    struct FuzzIo<'a> {
        last: &'a [u8],
        fail_dumps: bool,
    }
    impl Io for FuzzIo<'_> {
        fn send(&mut self, d: &[u8]) {
            assert!(!d.is_empty());
        }
        fn dump(&mut self, out: &mut dyn FnMut(&Flow, bool)) -> Result<(), i32> {
            if self.fail_dumps {
                return Err(-105);
            }
            for m in Messages::new(self.last).flatten() {
                if let Ok((g, attrs)) = m.nfgen() {
                    if let Ok(f) = parse_flow(g.family, attrs) {
                        out(&f, f.mark.unwrap_or(0) & 1 == 0);
                    }
                }
            }
            Ok(())
        }
        fn dump_exp(&mut self, out: &mut dyn FnMut(&Expect)) -> Result<(), i32> {
            for m in Messages::new(self.last).flatten() {
                if let Ok((g, attrs)) = m.nfgen() {
                    if let Ok(e) = parse_expect(g.family, attrs) {
                        out(&e);
                    }
                }
            }
            Ok(())
        }
    }

    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let mut sync = SyncSection::default();
    match head % 3 {
        0 => sync.modes.ftfw = true,
        1 => sync.modes.alarm = true,
        _ => sync.modes.notrack = true,
    }
    sync.disable_external_cache = head & 4 != 0;
    sync.disable_internal_cache = head & 8 != 0;
    sync.expectation_sync.enabled = head & 16 != 0;
    sync.resend_queue_size = 32;
    sync.refresh_time = 2;
    sync.cache_timeout = 3;
    let role = if head & 32 != 0 {
        Role::Stats
    } else {
        Role::Sync
    };
    const LIMIT: usize = 48;
    let t0 = Instant::now();
    let mut r = Replicator::new(Config {
        role,
        buckets: 16,
        limit: LIMIT,
        filter: None,
        sync: Some(sync),
    });
    let transport = if head & 64 != 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    r.attach(
        LinkParams {
            mtu: 576,
            transport,
            sealed: head & 128 != 0,
        },
        t0,
    );
    let mut table = FakeTable::default();
    let mut io = FuzzIo {
        last: &[],
        fail_dumps: false,
    };
    let mut ms = 0u64;
    while let Some((&op, tail)) = rest.split_first() {
        let (n, tail) = match tail {
            [a, b, t @ ..] => (u16::from_le_bytes([*a, *b]) as usize, t),
            _ => (0, &[][..]),
        };
        let (chunk, next) = tail.split_at(n.min(tail.len()));
        rest = next;
        ms += u64::from(op >> 4) * 97;
        let now = Now {
            at: t0 + Duration::from_millis(ms),
            secs: (ms / 1000) as u32,
            unix: 1_700_000_000 + (ms / 1000) as u32,
        };
        if !chunk.is_empty() {
            io.last = chunk;
        }
        match op & 15 {
            0 => r.on_kernel_events(&now, chunk, &mut io),
            1 => {
                let _ = r.on_datagram(&now, chunk, None, &mut io);
            }
            2 => r.on_tick(&now, &mut io),
            3 => r.poll(&now, false, 4, &mut io),
            4 => r.poll(&now, true, 1, &mut io),
            5 => r.request_resync(),
            6 => r.send_bulk(chunk.first().is_some_and(|b| b & 1 != 0)),
            7 => {
                let _ = r.resync(&now, chunk.len() & 1 == 0, &mut io);
            }
            8 => {
                let _ = r.resync_exp(&now, chunk.len() & 1 == 0, &mut io);
            }
            9 => r.flush_internal(),
            10 => r.flush_external(),
            11 => r.flush_exp(),
            12 => {
                let _ = r.commit_into(&now, &mut table);
            }
            13 => {
                r.on_send_failed();
                io.fail_dumps = !io.fail_dumps;
            }
            14 => {
                let _ = r.on_datagram(&now, chunk, Some(1), &mut io);
            }
            _ => {
                let _ = r.wait(now.at, Duration::from_secs(1));
            }
        }
        assert!(
            r.internal().len() <= LIMIT,
            "internal cache beyond its limit"
        );
        assert!(
            r.external().len() <= LIMIT,
            "external cache beyond its limit"
        );
    }
}

/// nfnetlink objects of nfct: cttimeout policies and cthelper objects,
/// viewed, decoded and printed; the bytes also as a bare attribute run.
pub fn nfnl_objects(data: &[u8]) {
    use ct_core::netlink::cthelper::HelperObj;
    use ct_core::netlink::timeout::PolicyView;
    let show = |attrs: Attrs<'_>| {
        let mut s = String::new();
        if let Ok(p) = PolicyView::parse(attrs.clone()).and_then(|v| v.decode()) {
            p.write_text(&mut s);
        }
        if let Ok(h) = HelperObj::parse(attrs) {
            h.write_text(&mut s);
        }
    };
    for m in Messages::new(data).flatten() {
        if let Ok((_, attrs)) = m.nfgen() {
            show(attrs);
        }
    }
    show(Attrs::new(data));
}

/// Splits a packed corpus (`u32` little-endian length, then the bytes,
/// repeated) into its inputs.
pub fn unpack(mut packed: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    while packed.len() >= 4 {
        let n = u32::from_le_bytes(packed[..4].try_into().expect("4 bytes")) as usize;
        let Some(b) = packed.get(4..4 + n) else { break };
        v.push(b);
        packed = &packed[4 + n..];
    }
    v
}
