//! `-o json` (our extension): one JSON object per entry and line.
//!
//! Unlike the C-compatible formats, JSON reports exactly what the kernel
//! sent: a key is present only when its attribute was, and nothing is
//! zero-filled. Object keys, in output order (`?` = optional):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `event`? | string | `"new"`, `"update"` or `"destroy"` (absent for list/get output) |
//! | `family` | string | `"ipv4"`, `"ipv6"` or `"unknown"` |
//! | `l3num` | number | address family number (2, 10, ...) |
//! | `proto` | string | L4 protocol name (`"tcp"`, ..., `"unknown"`) |
//! | `protonum` | number | L4 protocol number |
//! | `timeout`? | number | seconds left |
//! | `state`? | string | TCP, SCTP or DCCP state name |
//! | `tcp`? | object | `wscale_orig`?, `wscale_reply`?, `flags_orig`?, `flags_reply`? (numbers: window scale, `IP_CT_TCP_FLAG_*` bits) |
//! | `sctp`? | object | `vtag_orig`?, `vtag_reply`? (verification tags) |
//! | `dccp`? | object | `role`?, `handshake_seq`? |
//! | `orig`?, `reply`? | object | tuples, see below |
//! | `status`? | array of strings | names of the set status bits (`"SEEN_REPLY"`, `"ASSURED"`, ...; unnamed bits as `"BIT<n>"`) |
//! | `mark`?, `secmark`? | number | |
//! | `secctx`? | string | security context |
//! | `zone`? | number | conntrack zone (CTA_ZONE) |
//! | `helper`? | string | helper name |
//! | `use`? | number | reference count |
//! | `id`? | number | conntrack id |
//! | `timestamp`? | object | `start`?, `stop`? in nanoseconds since the epoch |
//! | `delta_time`? | number | seconds from start to stop (or now), when a start is known |
//! | `labels`? | array of objects | `{"bit": n}` per set label bit, plus `"name"` when `connlabel.conf` names it |
//! | `seqadj_orig`?, `seqadj_reply`? | object | NAT sequence adjustment: `correction_pos`?, `offset_before`?, `offset_after`? |
//!
//! A tuple object has `src`?, `dst`? (address strings, IPv6 as
//! `inet_ntop` prints it) and, by protocol: `sport`?, `dport`? (TCP, UDP,
//! UDP-Lite, SCTP, DCCP), `srckey`?, `dstkey`? (GRE, numbers), `type`?,
//! `code`?, `id`? (ICMP, ICMPv6); then `zone`? (per-direction zone),
//! `packets`?, `bytes`? (counters, with accounting enabled). Strings are
//! escaped per RFC 8259.

use super::num::{dec, ip};
use super::plain::delta_time;
use super::{label_bit, label_bits, Env, EventKind};
use crate::flow::{Counters, Flow, ProtoInfo, Tuple};
use crate::proto;

const STATUS_BITS: [&str; 16] = [
    "EXPECTED",
    "SEEN_REPLY",
    "ASSURED",
    "CONFIRMED",
    "SRC_NAT",
    "DST_NAT",
    "SEQ_ADJUST",
    "SRC_NAT_DONE",
    "DST_NAT_DONE",
    "DYING",
    "FIXED_TIMEOUT",
    "TEMPLATE",
    "UNTRACKED",
    "HELPER",
    "OFFLOAD",
    "HW_OFFLOAD",
];

/// A JSON string literal.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Writes `,"key":` (or `"key":` for the first member).
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }
    fn num(&mut self, k: &str, v: Option<u64>) {
        if let Some(v) = v {
            dec(self.key(k), v);
        }
    }
    fn str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            string(self.key(k), v);
        }
    }
    fn close(self) {
        self.out.push(b'}');
    }
}

fn tuple(out: &mut Vec<u8>, t: &Tuple, c: &Option<Counters>) {
    let mut o = Obj::open(out);
    if let Some(a) = t.src {
        let k = o.key("src");
        k.push(b'"');
        ip(k, a);
        k.push(b'"');
    }
    if let Some(a) = t.dst {
        let k = o.key("dst");
        k.push(b'"');
        ip(k, a);
        k.push(b'"');
    }
    match t.l4proto {
        Some(proto::IPPROTO_GRE) => {
            o.num("srckey", t.src_port.map(u64::from));
            o.num("dstkey", t.dst_port.map(u64::from));
        }
        Some(proto::IPPROTO_ICMP) | Some(proto::IPPROTO_ICMPV6) => {
            o.num("type", t.icmp_type.map(u64::from));
            o.num("code", t.icmp_code.map(u64::from));
            o.num("id", t.icmp_id.map(u64::from));
        }
        _ => {
            o.num("sport", t.src_port.map(u64::from));
            o.num("dport", t.dst_port.map(u64::from));
        }
    }
    o.num("zone", t.zone.map(u64::from));
    if let Some(c) = c {
        o.num("packets", c.packets);
        o.num("bytes", c.bytes);
    }
    o.close();
}

/// The `tcp`, `sctp` and `dccp` objects: what CTA_PROTOINFO held beyond
/// the state.
fn protoinfo(o: &mut Obj, pi: &ProtoInfo) {
    if let Some(t) = &pi.tcp {
        if t.wscale_orig.is_some()
            || t.wscale_reply.is_some()
            || t.flags_orig.is_some()
            || t.flags_reply.is_some()
        {
            let mut x = Obj::open(o.key("tcp"));
            x.num("wscale_orig", t.wscale_orig.map(u64::from));
            x.num("wscale_reply", t.wscale_reply.map(u64::from));
            x.num("flags_orig", t.flags_orig.map(|(f, _)| u64::from(f)));
            x.num("flags_reply", t.flags_reply.map(|(f, _)| u64::from(f)));
            x.close();
        }
    }
    if let Some(s) = pi
        .sctp
        .filter(|s| s.vtag_orig.is_some() || s.vtag_reply.is_some())
    {
        let mut x = Obj::open(o.key("sctp"));
        x.num("vtag_orig", s.vtag_orig.map(u64::from));
        x.num("vtag_reply", s.vtag_reply.map(u64::from));
        x.close();
    }
    if let Some(d) = pi
        .dccp
        .filter(|d| d.role.is_some() || d.handshake_seq.is_some())
    {
        let mut x = Obj::open(o.key("dccp"));
        x.num("role", d.role.map(u64::from));
        x.num("handshake_seq", d.handshake_seq);
        x.close();
    }
}

/// Appends one JSON object and `'\n'` (schema in the module docs).
pub fn write_json(out: &mut Vec<u8>, f: &Flow, ev: EventKind, env: &dyn Env) {
    let mut o = Obj::open(out);
    o.str(
        "event",
        match ev {
            EventKind::None => None,
            EventKind::New => Some("new"),
            EventKind::Update => Some("update"),
            EventKind::Destroy => Some("destroy"),
        },
    );
    let l3 = f.l3_family();
    o.str("family", Some(proto::l3_name(l3)));
    o.num("l3num", Some(u64::from(l3)));
    let p = f.l4proto().unwrap_or(0);
    o.str("proto", Some(proto::l4_name(p)));
    o.num("protonum", Some(u64::from(p)));
    o.num("timeout", f.timeout.map(u64::from));
    let pi = f.protoinfo.unwrap_or_default();
    let state = pi
        .tcp
        .and_then(|t| t.state)
        .map(proto::tcp_state_name)
        .or_else(|| pi.sctp.and_then(|s| s.state).map(proto::sctp_state_name))
        .or_else(|| pi.dccp.and_then(|d| d.state).map(proto::dccp_state_name));
    o.str("state", state);
    protoinfo(&mut o, &pi);
    if let Some(t) = &f.orig {
        tuple(o.key("orig"), t, &f.counters_orig);
    }
    if let Some(t) = &f.reply {
        tuple(o.key("reply"), t, &f.counters_reply);
    }
    if let Some(st) = f.status {
        let k = o.key("status");
        k.push(b'[');
        let mut first = true;
        for bit in 0..32 {
            if st & (1 << bit) == 0 {
                continue;
            }
            if !first {
                k.push(b',');
            }
            first = false;
            match STATUS_BITS.get(bit) {
                Some(n) => string(k, n),
                None => {
                    k.extend_from_slice(b"\"BIT");
                    dec(k, bit as u64);
                    k.push(b'"');
                }
            }
        }
        k.push(b']');
    }
    o.num("mark", f.mark.map(u64::from));
    o.num("secmark", f.secmark.map(u64::from));
    o.str("secctx", f.secctx.as_ref().map(|s| s.as_str()));
    o.num("zone", f.zone.map(u64::from));
    o.str("helper", f.helper.as_ref().map(|s| s.as_str()));
    o.num("use", f.use_count.map(u64::from));
    o.num("id", f.id.map(u64::from));
    if let Some(ts) = f.timestamp {
        let mut t = Obj::open(o.key("timestamp"));
        t.num("start", ts.start);
        t.num("stop", ts.stop);
        t.close();
        if let Some(start) = ts.start {
            o.num(
                "delta_time",
                Some(delta_time(start, ts.stop.unwrap_or(0), env)),
            );
        }
    }
    if let Some(l) = &f.labels {
        let k = o.key("labels");
        k.push(b'[');
        let bytes = l.as_bytes();
        let mut first = true;
        for bit in 0..label_bits(bytes.len()) {
            if !label_bit(bytes, bit) {
                continue;
            }
            if !first {
                k.push(b',');
            }
            first = false;
            let mut e = Obj::open(k);
            e.num("bit", Some(bit as u64));
            e.str("name", env.label_name(bit as u32).filter(|n| !n.is_empty()));
            e.close();
        }
        k.push(b']');
    }
    for (k, a) in [
        ("seqadj_orig", &f.seq_adj_orig),
        ("seqadj_reply", &f.seq_adj_reply),
    ] {
        if let Some(a) = a {
            let mut t = Obj::open(o.key(k));
            t.num("correction_pos", a.correction_pos.map(u64::from));
            t.num("offset_before", a.offset_before.map(u64::from));
            t.num("offset_after", a.offset_after.map(u64::from));
            t.close();
        }
    }
    o.close();
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::*;
    use crate::format::plain::tests::*;
    use crate::format::UtcEnv;
    use crate::proto::*;

    fn json(f: &Flow, ev: EventKind) -> String {
        let mut v = Vec::new();
        write_json(&mut v, f, ev, &UtcEnv { now: 1_796_031_390 });
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn tcp_entry() {
        let mut f = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_TCP, "2.2.2.2", "1.1.1.1", 20, 10),
            status::SEEN_REPLY | status::ASSURED | status::CONFIRMED,
            99,
        );
        f.protoinfo = tcp_state(3);
        f.counters_orig = zero_counters();
        f.timestamp = Some(Timestamp {
            start: Some(1_796_031_384_715_002_290),
            stop: None,
        });
        f.helper = Some(ShortStr::new("a\"b\\c\u{1}"));
        let mut l = Labels::zeroed(16);
        l.set(3, true);
        l.set(100, true);
        f.labels = Some(l);
        assert_eq!(
            json(&f, EventKind::New),
            concat!(
                r#"{"event":"new","family":"ipv4","l3num":2,"proto":"tcp","protonum":6,"timeout":99,"state":"ESTABLISHED","#,
                r#""orig":{"src":"1.1.1.1","dst":"2.2.2.2","sport":10,"dport":20,"packets":0,"bytes":0},"#,
                r#""reply":{"src":"2.2.2.2","dst":"1.1.1.1","sport":20,"dport":10},"#,
                r#""status":["SEEN_REPLY","ASSURED","CONFIRMED"],"mark":0,"helper":"a\"b\\c\u0001","use":1,"id":1029127536,"#,
                r#""timestamp":{"start":1796031384715002290},"delta_time":6,"labels":[{"bit":3},{"bit":100}]}"#,
                "\n"
            )
        );
    }

    #[test]
    fn protoinfo_and_seqadj() {
        let mut f = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_TCP, "2.2.2.2", "1.1.1.1", 20, 10),
            status::CONFIRMED | status::SEQ_ADJUST,
            9,
        );
        f.protoinfo = Some(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(3),
                wscale_orig: Some(7),
                wscale_reply: Some(9),
                flags_orig: Some((0x23, 0x23)),
                flags_reply: Some((0x01, 0xff)),
            }),
            ..ProtoInfo::default()
        });
        f.seq_adj_orig = Some(SeqAdj {
            correction_pos: Some(1000),
            offset_before: Some(0),
            offset_after: Some(2),
        });
        let s = json(&f, EventKind::None);
        assert!(
            s.contains(r#""state":"ESTABLISHED","tcp":{"wscale_orig":7,"wscale_reply":9,"flags_orig":35,"flags_reply":1},"orig":"#),
            "{s}"
        );
        assert!(
            s.trim_end().ends_with(
                r#","seqadj_orig":{"correction_pos":1000,"offset_before":0,"offset_after":2}}"#
            ),
            "{s}"
        );
        assert!(!s.contains("seqadj_reply"), "{s}");
        f.protoinfo = Some(ProtoInfo {
            sctp: Some(SctpInfo {
                state: Some(3),
                vtag_orig: Some(0xdead),
                vtag_reply: None,
            }),
            ..ProtoInfo::default()
        });
        let s = json(&f, EventKind::None);
        assert!(s.contains(r#","sctp":{"vtag_orig":57005},"#), "{s}");
        assert!(!s.contains("\"tcp\":{"), "{s}");
    }

    #[test]
    fn icmp_gre_and_minimal() {
        let i = flow(
            AF_INET6,
            ticmp(IPPROTO_ICMPV6, "::1.2.3.4", "2001:db8::2", 128, 0, 55),
            ticmp(IPPROTO_ICMPV6, "2001:db8::2", "::1.2.3.4", 129, 0, 55),
            status::CONFIRMED | (1 << 20),
            29,
        );
        let s = json(&i, EventKind::None);
        assert!(s.starts_with(r#"{"family":"ipv6","l3num":10,"proto":"icmpv6","protonum":58,"timeout":29,"orig":{"src":"::1.2.3.4","dst":"2001:db8::2","type":128,"code":0,"id":55},"#), "{s}");
        assert!(s.contains(r#""status":["CONFIRMED","BIT20"]"#), "{s}");
        let g = flow(
            AF_INET,
            tp(IPPROTO_GRE, "1.1.1.1", "2.2.2.2", 16, 32),
            tp(IPPROTO_GRE, "2.2.2.2", "1.1.1.1", 32, 16),
            0,
            29,
        );
        assert!(json(&g, EventKind::Destroy)
            .contains(r#""orig":{"src":"1.1.1.1","dst":"2.2.2.2","srckey":16,"dstkey":32}"#));
        assert_eq!(
            json(&Flow::default(), EventKind::None),
            "{\"family\":\"unknown\",\"l3num\":0,\"proto\":\"unknown\",\"protonum\":0}\n"
        );
    }
}
