//! The default one-line rendering of a conntrack entry
//! (`__snprintf_conntrack_default` of libnetfilter_conntrack 1.0.9):
//!
//! ```text
//! [tag] [l3 l3num] l4 l4num [timeout] [state] src= dst= <l4> [zone-orig=]
//! [packets= bytes=] [[UNREPLIED]] src= dst= <l4> [zone-reply=] [packets= bytes=]
//! [[HW_OFFLOAD]|[OFFLOAD]|[ASSURED]] [mark=] [secmark=] [secctx=] [zone=]
//! [delta-time=] [[start=..] [stop=..]] [helper=] [use=] [id=] [labels=..]
//! ```
//!
//! Tokens are separated by one space, the final space is dropped.

use super::num::{dec, hex, pad_right};
use super::{
    clamp_line, label_bit, label_bits, write_event_tag, CTuple, Env, EventKind, PlainOpts,
};
use crate::flow::{Counters, Flow};
use crate::proto::{self, status};

/// `src=.. dst=.. ` followed by the L4 part of a tuple, with custom tags
/// (`mask-src`, `master-src` for expectations).
pub(crate) fn write_tuple(out: &mut Vec<u8>, t: &CTuple, src_tag: &str, dst_tag: &str) {
    if matches!(t.l3, crate::flow::AF_INET | crate::flow::AF_INET6) {
        out.extend_from_slice(src_tag.as_bytes());
        out.push(b'=');
        t.write_addr(out, true);
        out.push(b' ');
        out.extend_from_slice(dst_tag.as_bytes());
        out.push(b'=');
        t.write_addr(out, false);
        out.push(b' ');
    }
    match t.proto {
        proto::IPPROTO_TCP
        | proto::IPPROTO_UDP
        | proto::IPPROTO_UDPLITE
        | proto::IPPROTO_SCTP
        | proto::IPPROTO_DCCP => {
            out.extend_from_slice(b"sport=");
            dec(out, u64::from(t.sport));
            out.extend_from_slice(b" dport=");
            dec(out, u64::from(t.dport));
            out.push(b' ');
        }
        proto::IPPROTO_GRE => {
            out.extend_from_slice(b"srckey=0x");
            hex(out, u64::from(t.sport));
            out.extend_from_slice(b" dstkey=0x");
            hex(out, u64::from(t.dport));
            out.push(b' ');
        }
        proto::IPPROTO_ICMP | proto::IPPROTO_ICMPV6 => {
            out.extend_from_slice(b"type=");
            dec(out, u64::from(t.icmp_type));
            out.extend_from_slice(b" code=");
            dec(out, u64::from(t.icmp_code));
            out.extend_from_slice(b" id=");
            dec(out, u64::from(t.icmp_id));
            out.push(b' ');
        }
        _ => {}
    }
}

fn write_counters(out: &mut Vec<u8>, c: &Option<Counters>) {
    if let Some(Counters {
        packets: Some(p),
        bytes: Some(b),
    }) = c
    {
        out.extend_from_slice(b"packets=");
        dec(out, *p);
        out.extend_from_slice(b" bytes=");
        dec(out, *b);
        out.push(b' ');
    }
}

fn field_u64(out: &mut Vec<u8>, name: &[u8], v: u64) {
    out.extend_from_slice(name);
    dec(out, v);
    out.push(b' ');
}

/// Seconds from `start_ns` to `stop_ns` (or to now when there is no stop
/// or it is 0), computed on `time_t` and printed unsigned as C does.
pub(crate) fn delta_time(start_ns: u64, stop_ns: u64, env: &dyn Env) -> u64 {
    let stop = if stop_ns == 0 {
        env.now_secs() as i64
    } else {
        (stop_ns / 1_000_000_000) as i64
    };
    stop.wrapping_sub((start_ns / 1_000_000_000) as i64) as u64
}

/// Appends one entry line (with `'\n'`), as `conntrack -L`/`-E` print it.
///
/// `f.orig` must carry an L4 protocol (and, with `extended`, exist): the
/// kernel always sends both. Without them libnetfilter_conntrack fails
/// half-way and the tool prints whatever was in its buffer; this writes
/// the part rendered before the failure (possibly nothing) and a newline.
pub fn write_plain(out: &mut Vec<u8>, f: &Flow, ev: EventKind, o: &PlainOpts, env: &dyn Env) {
    let start = out.len();
    write_event_tag(out, ev);
    let family = f.family;
    let orig = CTuple::new(family, f.orig.as_ref());
    let reply = CTuple::new(family, f.reply.as_ref());

    if o.extended {
        if f.orig.is_none() {
            out.push(b'\n');
            return;
        }
        pad_right(out, proto::l3_name(orig.l3), 8);
        out.push(b' ');
        field_u64(out, b"", u64::from(orig.l3));
    }
    if f.orig.and_then(|t| t.l4proto).is_none() {
        out.push(b'\n');
        return;
    }
    pad_right(out, proto::l4_name(orig.proto), 8);
    out.push(b' ');
    field_u64(out, b"", u64::from(orig.proto));

    if let Some(t) = f.timeout {
        field_u64(out, b"", u64::from(t));
    }
    if let Some(pi) = &f.protoinfo {
        if let Some(s) = pi.tcp.and_then(|t| t.state) {
            out.extend_from_slice(proto::tcp_state_name(s).as_bytes());
            out.push(b' ');
        }
        if let Some(s) = pi.sctp.and_then(|t| t.state) {
            out.extend_from_slice(proto::sctp_state_name(s).as_bytes());
            out.push(b' ');
        }
        if let Some(s) = pi.dccp.and_then(|t| t.state) {
            out.extend_from_slice(proto::dccp_state_name(s).as_bytes());
            out.push(b' ');
        }
    }

    write_tuple(out, &orig, "src", "dst");
    if let Some(z) = f.orig.and_then(|t| t.zone) {
        field_u64(out, b"zone-orig=", u64::from(z));
    }
    write_counters(out, &f.counters_orig);
    if let Some(st) = f.status {
        if st & status::SEEN_REPLY == 0 {
            out.extend_from_slice(b"[UNREPLIED] ");
        }
    }

    write_tuple(out, &reply, "src", "dst");
    if let Some(z) = f.reply.and_then(|t| t.zone) {
        field_u64(out, b"zone-reply=", u64::from(z));
    }
    write_counters(out, &f.counters_reply);
    if let Some(st) = f.status {
        if st & status::HW_OFFLOAD != 0 {
            out.extend_from_slice(b"[HW_OFFLOAD] ");
        } else if st & status::OFFLOAD != 0 {
            out.extend_from_slice(b"[OFFLOAD] ");
        } else if st & status::ASSURED != 0 {
            out.extend_from_slice(b"[ASSURED] ");
        }
    }

    if let Some(v) = f.mark {
        field_u64(out, b"mark=", u64::from(v));
    }
    if let Some(v) = f.secmark {
        field_u64(out, b"secmark=", u64::from(v));
    }
    if let Some(s) = &f.secctx {
        out.extend_from_slice(b"secctx=");
        out.extend_from_slice(s.as_str().as_bytes());
        out.push(b' ');
    }
    if let Some(v) = f.zone {
        field_u64(out, b"zone=", u64::from(v));
    }

    let ts = f.timestamp.unwrap_or_default();
    if let Some(st) = ts.start {
        field_u64(
            out,
            b"delta-time=",
            delta_time(st, ts.stop.unwrap_or(0), env),
        );
    }
    if o.ktimestamp {
        if let Some(st) = ts.start {
            out.extend_from_slice(b"[start=");
            env.ctime((st / 1_000_000_000) as i64, out);
            out.extend_from_slice(b"] ");
        }
        if let Some(sp) = ts.stop {
            out.extend_from_slice(b"[stop=");
            env.ctime((sp / 1_000_000_000) as i64, out);
            out.extend_from_slice(b"] ");
        }
    }

    if let Some(h) = &f.helper {
        out.extend_from_slice(b"helper=");
        out.extend_from_slice(h.as_str().as_bytes());
        out.push(b' ');
    }
    if let Some(v) = f.use_count {
        field_u64(out, b"use=", u64::from(v));
    }
    if o.id {
        if let Some(v) = f.id {
            field_u64(out, b"id=", u64::from(v));
        }
    }
    if o.labels {
        if let Some(l) = &f.labels {
            // "labels=" + "name," per named set bit; the last character
            // (a ',' or, with no names, the '=') is replaced by ' '.
            out.extend_from_slice(b"labels=");
            let bytes = l.as_bytes();
            for bit in 0..label_bits(bytes.len()) {
                if !label_bit(bytes, bit) {
                    continue;
                }
                match env.label_name(bit as u32) {
                    Some(n) if !n.is_empty() => {
                        out.extend_from_slice(n.as_bytes());
                        out.push(b',');
                    }
                    _ => {}
                }
            }
            out.pop();
            out.push(b' ');
        }
    }

    // Every token ends with a space; C drops the last character.
    if out.len() > start {
        out.pop();
    }
    clamp_line(out, start, o.dump);
    out.push(b'\n');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::flow::*;
    use crate::format::UtcEnv;
    use crate::proto::*;
    use std::net::IpAddr;

    pub(crate) fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// A tuple with ports (or GRE keys).
    pub(crate) fn tp(p: u8, src: &str, dst: &str, sp: u16, dp: u16) -> Tuple {
        Tuple {
            src: ip(src),
            dst: ip(dst),
            l4proto: Some(p),
            src_port: Some(sp),
            dst_port: Some(dp),
            ..Tuple::default()
        }
    }

    pub(crate) fn ticmp(p: u8, src: &str, dst: &str, ty: u8, code: u8, id: u16) -> Tuple {
        Tuple {
            src: ip(src),
            dst: ip(dst),
            l4proto: Some(p),
            icmp_type: Some(ty),
            icmp_code: Some(code),
            icmp_id: Some(id),
            ..Tuple::default()
        }
    }

    pub(crate) fn tbare(p: u8, src: &str, dst: &str) -> Tuple {
        Tuple {
            src: ip(src),
            dst: ip(dst),
            l4proto: Some(p),
            ..Tuple::default()
        }
    }

    /// A flow as the kernel dumps it: family, tuples, status, timeout,
    /// mark 0, use 1, id.
    pub(crate) fn flow(family: u8, orig: Tuple, reply: Tuple, st: u32, timeout: u32) -> Flow {
        Flow {
            family,
            orig: Some(orig),
            reply: Some(reply),
            status: Some(st),
            timeout: Some(timeout),
            mark: Some(0),
            use_count: Some(1),
            id: Some(1029127536),
            ..Flow::default()
        }
    }

    pub(crate) fn tcp_state(s: u8) -> Option<ProtoInfo> {
        Some(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(s),
                ..TcpInfo::default()
            }),
            ..ProtoInfo::default()
        })
    }

    pub(crate) fn sctp_state(s: u8) -> Option<ProtoInfo> {
        Some(ProtoInfo {
            sctp: Some(SctpInfo {
                state: Some(s),
                // What the kernel reports for `-I --orig-vtag 1
                // --reply-vtag 258` (conntrack swaps them twice).
                vtag_orig: Some(1u32.to_be()),
                vtag_reply: Some(258u32.to_be()),
            }),
            ..ProtoInfo::default()
        })
    }

    pub(crate) fn zero_counters() -> Option<Counters> {
        Some(Counters {
            packets: Some(0),
            bytes: Some(0),
        })
    }

    fn render(f: &Flow, ev: EventKind, o: PlainOpts, env: &dyn Env) -> String {
        let mut v = Vec::new();
        write_plain(&mut v, f, ev, &o, env);
        String::from_utf8(v).unwrap()
    }

    const ENV: UtcEnv = UtcEnv { now: 1_796_031_384 };
    const SR: u32 = status::SEEN_REPLY | status::CONFIRMED;

    fn plain(f: &Flow) -> String {
        render(f, EventKind::None, PlainOpts::default(), &ENV)
    }

    /// Every default-format example line of spec §1.8.
    #[test]
    fn spec_examples() {
        let mut f = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_TCP, "2.2.2.2", "1.1.1.1", 20, 10),
            SR,
            99,
        );
        f.protoinfo = tcp_state(3);
        assert_eq!(plain(&f), "tcp      6 99 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=10 dport=20 src=2.2.2.2 dst=1.1.1.1 sport=20 dport=10 mark=0 use=1\n");

        let u = flow(
            AF_INET,
            tp(IPPROTO_UDP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_UDP, "2.2.2.2", "1.1.1.1", 20, 10),
            status::CONFIRMED,
            49,
        );
        assert_eq!(plain(&u), "udp      17 49 src=1.1.1.1 dst=2.2.2.2 sport=10 dport=20 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 sport=20 dport=10 mark=0 use=1\n");

        let i = flow(
            AF_INET,
            ticmp(IPPROTO_ICMP, "1.1.1.1", "2.2.2.2", 8, 0, 1226),
            ticmp(IPPROTO_ICMP, "2.2.2.2", "1.1.1.1", 0, 0, 1226),
            status::CONFIRMED,
            29,
        );
        assert_eq!(plain(&i), "icmp     1 29 src=1.1.1.1 dst=2.2.2.2 type=8 code=0 id=1226 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 type=0 code=0 id=1226 mark=0 use=1\n");

        let i6 = flow(
            AF_INET6,
            ticmp(IPPROTO_ICMPV6, "2001:db8::1", "2001:db8::2", 128, 0, 55),
            ticmp(IPPROTO_ICMPV6, "2001:db8::2", "2001:db8::1", 129, 0, 55),
            status::CONFIRMED,
            29,
        );
        assert_eq!(plain(&i6), "icmpv6   58 29 src=2001:db8::1 dst=2001:db8::2 type=128 code=0 id=55 [UNREPLIED] src=2001:db8::2 dst=2001:db8::1 type=129 code=0 id=55 mark=0 use=1\n");

        let mut s = flow(
            AF_INET,
            tp(IPPROTO_SCTP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_SCTP, "2.2.2.2", "1.1.1.1", 20, 10),
            status::CONFIRMED,
            29,
        );
        s.protoinfo = sctp_state(4);
        assert_eq!(plain(&s), "sctp     132 29 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=10 dport=20 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 sport=20 dport=10 mark=0 use=1\n");

        let g = flow(
            AF_INET,
            tp(IPPROTO_GRE, "1.1.1.1", "2.2.2.2", 0x10, 0x20),
            tp(IPPROTO_GRE, "2.2.2.2", "1.1.1.1", 0x20, 0x10),
            status::CONFIRMED,
            29,
        );
        assert_eq!(plain(&g), "gre      47 29 src=1.1.1.1 dst=2.2.2.2 srckey=0x10 dstkey=0x20 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 srckey=0x20 dstkey=0x10 mark=0 use=1\n");

        let ul = flow(
            AF_INET,
            tp(IPPROTO_UDPLITE, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_UDPLITE, "2.2.2.2", "1.1.1.1", 20, 10),
            status::CONFIRMED,
            29,
        );
        assert_eq!(plain(&ul), "udplite  136 29 src=1.1.1.1 dst=2.2.2.2 sport=10 dport=20 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 sport=20 dport=10 mark=0 use=1\n");

        let un = flow(
            AF_INET,
            tbare(200, "1.1.1.1", "2.2.2.2"),
            tbare(200, "2.2.2.2", "1.1.1.1"),
            status::CONFIRMED,
            29,
        );
        assert_eq!(plain(&un), "unknown  200 29 src=1.1.1.1 dst=2.2.2.2 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 mark=0 use=1\n");

        let mut z = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.3", "2.2.2.3", 11, 21),
            tp(IPPROTO_TCP, "2.2.2.3", "1.1.1.3", 21, 11),
            status::ASSURED | status::CONFIRMED,
            99,
        );
        z.protoinfo = tcp_state(1);
        z.mark = Some(7);
        z.zone = Some(5);
        assert_eq!(plain(&z), "tcp      6 99 SYN_SENT src=1.1.1.3 dst=2.2.2.3 sport=11 dport=21 [UNREPLIED] src=2.2.2.3 dst=1.1.1.3 sport=21 dport=11 [ASSURED] mark=7 zone=5 use=1\n");

        let mut a = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_TCP, "2.2.2.2", "1.1.1.1", 20, 10),
            SR | status::ASSURED,
            99,
        );
        a.protoinfo = tcp_state(3);
        a.counters_orig = zero_counters();
        a.counters_reply = zero_counters();
        a.timestamp = Some(Timestamp {
            start: Some(1_796_031_384_715_002_290),
            stop: None,
        });
        assert_eq!(plain(&a), "tcp      6 99 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=10 dport=20 packets=0 bytes=0 src=2.2.2.2 dst=1.1.1.1 sport=20 dport=10 packets=0 bytes=0 [ASSURED] mark=0 delta-time=0 use=1\n");

        let ext = PlainOpts {
            extended: true,
            id: true,
            ktimestamp: true,
            labels: false,
            dump: false,
        };
        assert_eq!(render(&a, EventKind::None, ext, &ENV), "ipv4     2 tcp      6 99 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=10 dport=20 packets=0 bytes=0 src=2.2.2.2 dst=1.1.1.1 sport=20 dport=10 packets=0 bytes=0 [ASSURED] mark=0 delta-time=0 [start=Mon Nov 30 09:36:24 2026] use=1 id=1029127536\n");

        let mut h = flow(
            AF_INET,
            tp(IPPROTO_TCP, "10.9.9.1", "10.9.9.2", 48760, 21),
            tp(IPPROTO_TCP, "10.9.9.2", "10.9.9.1", 21, 48760),
            SR | status::ASSURED | status::HELPER,
            431998,
        );
        h.protoinfo = tcp_state(3);
        h.helper = Some(ShortStr::new("ftp"));
        h.id = Some(888323381);
        let ext = PlainOpts {
            extended: true,
            id: true,
            ..PlainOpts::default()
        };
        assert_eq!(render(&h, EventKind::None, ext, &ENV), "ipv4     2 tcp      6 431998 ESTABLISHED src=10.9.9.1 dst=10.9.9.2 sport=48760 dport=21 src=10.9.9.2 dst=10.9.9.1 sport=21 dport=48760 [ASSURED] mark=0 helper=ftp use=1 id=888323381\n");
    }

    /// Event lines of spec §1.8 (without the caller's `[USERSPACE]` part).
    #[test]
    fn spec_event_examples() {
        let mut f = flow(
            AF_INET,
            tp(IPPROTO_UDP, "5.5.5.5", "6.6.6.6", 1, 2),
            tp(IPPROTO_UDP, "6.6.6.6", "5.5.5.5", 2, 1),
            status::CONFIRMED,
            30,
        );
        f.use_count = None;
        f.id = None;
        let o = PlainOpts::default();
        assert_eq!(render(&f, EventKind::New, o, &ENV), "    [NEW] udp      17 30 src=5.5.5.5 dst=6.6.6.6 sport=1 dport=2 [UNREPLIED] src=6.6.6.6 dst=5.5.5.5 sport=2 dport=1 mark=0\n");
        f.timeout = Some(29);
        f.mark = Some(3);
        assert_eq!(render(&f, EventKind::Update, o, &ENV), " [UPDATE] udp      17 29 src=5.5.5.5 dst=6.6.6.6 sport=1 dport=2 [UNREPLIED] src=6.6.6.6 dst=5.5.5.5 sport=2 dport=1 mark=3\n");
        f.counters_orig = zero_counters();
        f.counters_reply = zero_counters();
        f.timestamp = Some(Timestamp {
            start: Some(1_796_031_384_000_000_000),
            stop: Some(1_796_031_384_900_000_000),
        });
        assert_eq!(render(&f, EventKind::Destroy, o, &ENV), "[DESTROY] udp      17 29 src=5.5.5.5 dst=6.6.6.6 sport=1 dport=2 packets=0 bytes=0 [UNREPLIED] src=6.6.6.6 dst=5.5.5.5 sport=2 dport=1 packets=0 bytes=0 mark=3 delta-time=0\n");
    }

    /// Cases checked against libnetfilter_conntrack 1.0.9's
    /// `nfct_snprintf` (driven through ctypes).
    #[test]
    fn library_cases() {
        // States past the tables print NONE; DCCP uses its own names.
        let mut f = Flow {
            family: AF_INET,
            orig: Some(Tuple {
                l4proto: Some(IPPROTO_DCCP),
                ..Tuple::default()
            }),
            ..Flow::default()
        };
        f.family = AF_INET;
        for (st, name) in [(4u8, "OPEN"), (9, "INVALID"), (10, "NONE")] {
            f.protoinfo = Some(ProtoInfo {
                dccp: Some(DccpInfo {
                    state: Some(st),
                    ..DccpInfo::default()
                }),
                ..ProtoInfo::default()
            });
            assert_eq!(
                plain(&f),
                format!("dccp     33 {name} src=0.0.0.0 dst=0.0.0.0 sport=0 dport=0\n")
            );
        }
        for (st, name) in [
            (8u8, "HEARTBEAT_SENT"),
            (9, "HEARTBEAT_ACKED"),
            (10, "NONE"),
        ] {
            f.orig.as_mut().unwrap().l4proto = Some(IPPROTO_SCTP);
            f.protoinfo = Some(ProtoInfo {
                sctp: Some(SctpInfo {
                    state: Some(st),
                    ..SctpInfo::default()
                }),
                ..ProtoInfo::default()
            });
            assert_eq!(
                plain(&f),
                format!("sctp     132 {name} src=0.0.0.0 dst=0.0.0.0 sport=0 dport=0\n")
            );
        }
        // No reply tuple: nothing for it.
        let g = Flow {
            family: AF_INET,
            orig: Some(Tuple {
                src: ip("1.2.3.4"),
                l4proto: Some(IPPROTO_TCP),
                ..Tuple::default()
            }),
            ..Flow::default()
        };
        let ext = PlainOpts {
            extended: true,
            ..PlainOpts::default()
        };
        assert_eq!(
            render(&g, EventKind::None, ext, &ENV),
            "ipv4     2 tcp      6 src=1.2.3.4 dst=0.0.0.0 sport=0 dport=0\n"
        );
        // Missing L4 protocol: the library fails after the tag.
        let bad = Flow {
            timeout: Some(5),
            ..Flow::default()
        };
        assert_eq!(plain(&bad), "\n");
        assert_eq!(render(&bad, EventKind::New, ext, &ENV), "    [NEW] \n");
        let no_l4 = Flow {
            family: AF_INET,
            orig: Some(Tuple::default()),
            timeout: Some(5),
            ..Flow::default()
        };
        assert_eq!(
            render(&no_l4, EventKind::Update, ext, &ENV),
            " [UPDATE] ipv4     2 \n"
        );
    }

    #[test]
    fn timestamps_and_misc() {
        let mut f = flow(
            AF_INET6,
            ticmp(IPPROTO_ICMP, "::", "::", 8, 0, 4660),
            ticmp(IPPROTO_ICMP, "::", "::", 0, 0, 4660),
            0,
            1,
        );
        f.reply = None;
        f.timeout = None;
        f.mark = None;
        f.use_count = Some(0);
        f.id = Some(77);
        f.secmark = Some(9);
        f.zone = Some(7);
        f.orig.as_mut().unwrap().zone = Some(3);
        f.helper = Some(ShortStr::new("ftp"));
        f.secctx = Some(CtxStr::new("system_u:object_r"));
        f.timestamp = Some(Timestamp {
            start: Some(0),
            stop: Some(0),
        });
        let all = PlainOpts {
            extended: true,
            id: true,
            ktimestamp: true,
            labels: false,
            dump: false,
        };
        // delta-time with stop == 0 is now - start.
        assert_eq!(render(&f, EventKind::None, all, &UtcEnv { now: 1_796_035_204 }), "ipv6     10 icmp     1 src=:: dst=:: type=8 code=0 id=4660 zone-orig=3 [UNREPLIED] secmark=9 secctx=system_u:object_r zone=7 delta-time=1796035204 [start=Thu Jan  1 00:00:00 1970] [stop=Thu Jan  1 00:00:00 1970] helper=ftp use=0 id=77\n");
        // A start in the future wraps like C's unsigned print.
        f.timestamp = Some(Timestamp {
            start: Some(10_000_000_000),
            stop: None,
        });
        let s = render(
            &f,
            EventKind::None,
            PlainOpts::default(),
            &UtcEnv { now: 5 },
        );
        assert!(s.contains("delta-time=18446744073709551611 "), "{s}");
    }

    struct LabelEnv;
    impl Env for LabelEnv {
        fn now_secs(&self) -> u64 {
            0
        }
        fn ctime(&self, _secs: i64, _out: &mut Vec<u8>) {}
        fn label_name(&self, bit: u32) -> Option<&str> {
            match bit {
                0 => Some("zero"),
                1 => Some("one"),
                5 => Some("five"),
                127 => Some("last"),
                _ => None,
            }
        }
    }

    /// `labels=` as libnetfilter_conntrack prints it with a map holding
    /// bits 0, 1, 5 and 127 (verified with `nfct_snprintf_labels`).
    #[test]
    fn labels() {
        let base = Flow {
            family: AF_INET,
            orig: Some(Tuple {
                l4proto: Some(IPPROTO_UDP),
                ..Tuple::default()
            }),
            mark: Some(1),
            ..Flow::default()
        };
        let o = PlainOpts {
            labels: true,
            ..PlainOpts::default()
        };
        for (bits, want) in [
            (&[][..], "labels"),
            (&[0, 1][..], "labels=zero,one"),
            (&[2, 3][..], "labels"),
            (&[5, 127][..], "labels=five,last"),
            (&[1, 2, 127][..], "labels=one,last"),
        ] {
            let mut l = Labels::zeroed(16);
            for &b in bits {
                l.set(b, true);
            }
            let f = Flow {
                labels: Some(l),
                ..base
            };
            assert_eq!(
                render(&f, EventKind::None, o, &LabelEnv),
                format!("udp      17 src=0.0.0.0 dst=0.0.0.0 sport=0 dport=0 mark=1 {want}\n")
            );
            // Without the map nothing is printed.
            assert_eq!(
                render(&f, EventKind::None, PlainOpts::default(), &LabelEnv),
                "udp      17 src=0.0.0.0 dst=0.0.0.0 sport=0 dport=0 mark=1\n"
            );
        }
    }

    /// Environment naming all 128 label bits `labelnameNNN`.
    pub(crate) struct LongLabels(pub Vec<String>);
    impl LongLabels {
        pub(crate) fn new() -> Self {
            LongLabels((0..128).map(|i| format!("labelname{i:03}")).collect())
        }
    }
    impl Env for LongLabels {
        fn now_secs(&self) -> u64 {
            0
        }
        fn ctime(&self, _: i64, _: &mut Vec<u8>) {}
        fn label_name(&self, bit: u32) -> Option<&str> {
            self.0.get(bit as usize).map(|s| s.as_str())
        }
    }

    /// A udp flow with `n` named labels set, as in the library check.
    pub(crate) fn labelled_flow(n: usize) -> Flow {
        let mut l = Labels::zeroed(16);
        for b in 0..n {
            l.set(b, true);
        }
        Flow {
            family: AF_INET,
            orig: Some(Tuple {
                l4proto: Some(IPPROTO_UDP),
                ..Tuple::default()
            }),
            mark: Some(1),
            labels: Some(l),
            ..Flow::default()
        }
    }

    #[test]
    fn status_tags() {
        let mut f = flow(
            AF_INET,
            tp(IPPROTO_UDP, "1.1.1.1", "2.2.2.2", 1, 2),
            tp(IPPROTO_UDP, "2.2.2.2", "1.1.1.1", 2, 1),
            SR | status::ASSURED | status::OFFLOAD,
            1,
        );
        assert!(plain(&f).contains(" [OFFLOAD] mark=0"));
        f.status = Some(SR | status::ASSURED | status::OFFLOAD | status::HW_OFFLOAD);
        assert!(plain(&f).contains(" [HW_OFFLOAD] mark=0"));
    }

    /// Lines are cut to 1023 bytes like the C tool's `char buf[1024]`
    /// (lengths and tails checked with `nfct_snprintf_labels`).
    #[test]
    fn truncation() {
        let o = PlainOpts {
            labels: true,
            ..PlainOpts::default()
        };
        let env = LongLabels::new();
        for (n, len, tail) in [
            (70, 975, "6,labelname067,labelname068,labelname069"),
            (72, 1001, "8,labelname069,labelname070,labelname071"),
            (128, 1023, "me070,labelname071,labelname072,labelnam"),
        ] {
            let s = render(&labelled_flow(n), EventKind::None, o, &env);
            let s = s.strip_suffix('\n').unwrap();
            assert_eq!(s.len(), len, "{n} labels");
            assert!(s.ends_with(tail), "{n} labels: {s}");
        }
        // conntrack's dump (-L, -G) renders into 4096 bytes: the same
        // record whole
        let dump = PlainOpts { dump: true, ..o };
        let s = render(&labelled_flow(128), EventKind::None, dump, &env);
        let s = s.strip_suffix('\n').unwrap();
        assert!(s.len() > 1023 && s.len() < 4095, "{}", s.len());
        assert!(s.ends_with("labelname126,labelname127"), "{s}");
    }
}
