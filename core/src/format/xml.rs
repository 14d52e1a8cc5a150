//! `-o xml` rendering of a conntrack entry (`__snprintf_conntrack_xml` of
//! libnetfilter_conntrack 1.0.9): one `<flow>` element per line, no
//! whitespace inside.
//!
//! Quirks kept: ICMP/unknown protocols have an empty `<layer4>`; the reply
//! `<counters>` block depends on the ORIGINAL counters being present; SCTP
//! and DCCP `<state>` use the TCP state names; `<id>` is printed whenever
//! known; the "independent" meta opens for labels even when no label map is
//! loaded, and `<secctx>` is printed even when it does not open; no XML
//! escaping is done.

use super::num::dec;
use super::plain::delta_time;
use super::{
    clamp_line, label_bit, label_bits, write_when, write_xml_flow_open, CTuple, Env, EventKind,
    PlainOpts, Tm,
};
use crate::flow::{Counters, Flow};
use crate::proto::{self, status};

fn write_proto_xml(out: &mut Vec<u8>, t: &CTuple, src: bool) {
    match t.proto {
        proto::IPPROTO_TCP
        | proto::IPPROTO_UDP
        | proto::IPPROTO_UDPLITE
        | proto::IPPROTO_SCTP
        | proto::IPPROTO_DCCP => {
            if src {
                out.extend_from_slice(b"<sport>");
                dec(out, u64::from(t.sport));
                out.extend_from_slice(b"</sport>");
            } else {
                out.extend_from_slice(b"<dport>");
                dec(out, u64::from(t.dport));
                out.extend_from_slice(b"</dport>");
            }
        }
        proto::IPPROTO_GRE => {
            if src {
                out.extend_from_slice(b"<srckey>0x");
                super::num::hex(out, u64::from(t.sport));
                out.extend_from_slice(b"</srckey>");
            } else {
                out.extend_from_slice(b"<dstkey>0x");
                super::num::hex(out, u64::from(t.dport));
                out.extend_from_slice(b"</dstkey>");
            }
        }
        _ => {}
    }
}

/// `<layer3 ...><src/><dst/></layer3><layer4 ...>..</layer4>` of a tuple;
/// shared with nothing else but kept separate for readability.
fn write_layers(out: &mut Vec<u8>, t: &CTuple) {
    out.extend_from_slice(b"<layer3 protonum=\"");
    dec(out, u64::from(t.l3));
    out.extend_from_slice(b"\" protoname=\"");
    out.extend_from_slice(proto::l3_name(t.l3).as_bytes());
    out.extend_from_slice(b"\"><src>");
    t.write_addr(out, true);
    out.extend_from_slice(b"</src><dst>");
    t.write_addr(out, false);
    out.extend_from_slice(b"</dst></layer3><layer4 protonum=\"");
    dec(out, u64::from(t.proto));
    out.extend_from_slice(b"\" protoname=\"");
    out.extend_from_slice(proto::l4_name(t.proto).as_bytes());
    out.extend_from_slice(b"\">");
    write_proto_xml(out, t, true);
    write_proto_xml(out, t, false);
    out.extend_from_slice(b"</layer4>");
}

fn write_meta_dir(
    out: &mut Vec<u8>,
    f: &Flow,
    t: &CTuple,
    orig: bool,
    zone: Option<u16>,
    c: &Option<Counters>,
) {
    out.extend_from_slice(if orig {
        b"<meta direction=\"original\">".as_slice()
    } else {
        b"<meta direction=\"reply\">"
    });
    write_layers(out, t);
    if let Some(z) = zone {
        out.extend_from_slice(b"<zone>");
        dec(out, u64::from(z));
        out.extend_from_slice(b"</zone>");
    }
    let have_orig_counters = matches!(
        f.counters_orig,
        Some(Counters {
            packets: Some(_),
            bytes: Some(_)
        })
    );
    if have_orig_counters {
        let c = c.unwrap_or_default();
        out.extend_from_slice(b"<counters><packets>");
        dec(out, c.packets.unwrap_or(0));
        out.extend_from_slice(b"</packets><bytes>");
        dec(out, c.bytes.unwrap_or(0));
        out.extend_from_slice(b"</bytes></counters>");
    }
    out.extend_from_slice(b"</meta>");
}

fn elem_u64(out: &mut Vec<u8>, open: &[u8], v: u64, close: &[u8]) {
    out.extend_from_slice(open);
    dec(out, v);
    out.extend_from_slice(close);
}

/// Appends one `<flow>...</flow>` line (with `'\n'`). `o.ktimestamp` adds
/// the raw `<timestamp>` block, `o.labels` the `<labels>` (names from
/// `env`); `when` (events with `-o timestamp`) adds a `<when>` block.
/// `o.extended` and `o.id` do not change XML output.
pub fn write_xml_flow(
    out: &mut Vec<u8>,
    f: &Flow,
    ev: EventKind,
    o: &PlainOpts,
    env: &dyn Env,
    when: Option<&Tm>,
) {
    let start = out.len();
    write_xml_flow_open(out, ev);
    let orig = CTuple::new(f.family, f.orig.as_ref());
    let reply = CTuple::new(f.family, f.reply.as_ref());
    write_meta_dir(
        out,
        f,
        &orig,
        true,
        f.orig.and_then(|t| t.zone),
        &f.counters_orig,
    );
    write_meta_dir(
        out,
        f,
        &reply,
        false,
        f.reply.and_then(|t| t.zone),
        &f.counters_reply,
    );

    let pi = f.protoinfo.unwrap_or_default();
    let tcp_state = pi.tcp.and_then(|t| t.state);
    let sctp_state = pi.sctp.and_then(|t| t.state);
    let dccp_state = pi.dccp.and_then(|t| t.state);
    let ts = f.timestamp.unwrap_or_default();
    let independent = tcp_state.is_some()
        || sctp_state.is_some()
        || dccp_state.is_some()
        || f.timeout.is_some()
        || f.mark.is_some()
        || f.secmark.is_some()
        || f.zone.is_some()
        || f.use_count.is_some()
        || f.status.is_some()
        || f.id.is_some()
        || f.labels.is_some()
        || ts.start.is_some()
        || ts.stop.is_some();
    if independent {
        out.extend_from_slice(b"<meta direction=\"independent\">");
    }
    for s in [tcp_state, sctp_state, dccp_state].into_iter().flatten() {
        out.extend_from_slice(b"<state>");
        out.extend_from_slice(proto::tcp_state_name(s).as_bytes());
        out.extend_from_slice(b"</state>");
    }
    if let Some(v) = f.timeout {
        elem_u64(out, b"<timeout>", u64::from(v), b"</timeout>");
    }
    if let Some(v) = f.mark {
        elem_u64(out, b"<mark>", u64::from(v), b"</mark>");
    }
    if o.labels {
        if let Some(l) = &f.labels {
            out.extend_from_slice(b"<labels>");
            let bytes = l.as_bytes();
            for bit in 0..label_bits(bytes.len()) {
                if !label_bit(bytes, bit) {
                    continue;
                }
                if let Some(n) = env.label_name(bit as u32).filter(|n| !n.is_empty()) {
                    out.extend_from_slice(b"<label>");
                    out.extend_from_slice(n.as_bytes());
                    out.extend_from_slice(b"</label>");
                }
            }
            out.extend_from_slice(b"</labels>");
        }
    }
    if let Some(v) = f.secmark {
        elem_u64(out, b"<secmark>", u64::from(v), b"</secmark>");
    }
    if let Some(s) = &f.secctx {
        out.extend_from_slice(b"<secctx>");
        out.extend_from_slice(s.as_str().as_bytes());
        out.extend_from_slice(b"</secctx>");
    }
    if let Some(v) = f.zone {
        elem_u64(out, b"<zone>", u64::from(v), b"</zone>");
    }
    if let Some(v) = f.use_count {
        elem_u64(out, b"<use>", u64::from(v), b"</use>");
    }
    if let Some(v) = f.id {
        elem_u64(out, b"<id>", u64::from(v), b"</id>");
    }
    if let Some(st) = f.status {
        if st & status::ASSURED != 0 {
            out.extend_from_slice(b"<assured/>");
        }
        if st & status::SEEN_REPLY == 0 {
            out.extend_from_slice(b"<unreplied/>");
        }
    }
    if o.ktimestamp && (ts.start.is_some() || ts.stop.is_some()) {
        out.extend_from_slice(b"<timestamp>");
        if let Some(v) = ts.start {
            elem_u64(out, b"<start>", v, b"</start>");
        }
        if let Some(v) = ts.stop {
            elem_u64(out, b"<stop>", v, b"</stop>");
        }
        out.extend_from_slice(b"</timestamp>");
    }
    match (ts.start, ts.stop) {
        (Some(a), Some(b)) => {
            // (stop - start) on u64, then divided: C's arithmetic.
            let d = b.wrapping_sub(a) / 1_000_000_000;
            elem_u64(out, b"<deltatime>", d, b"</deltatime>");
        }
        (Some(a), None) => {
            elem_u64(out, b"<deltatime>", delta_time(a, 0, env), b"</deltatime>");
        }
        _ => {}
    }
    if independent {
        out.extend_from_slice(b"</meta>");
    }
    if let Some(tm) = when {
        out.extend_from_slice(b"<when>");
        write_when(out, tm);
        out.extend_from_slice(b"</when>");
    }
    if let Some(h) = &f.helper {
        out.extend_from_slice(b"<helper>");
        out.extend_from_slice(h.as_str().as_bytes());
        out.extend_from_slice(b"</helper>");
    }
    out.extend_from_slice(b"</flow>");
    clamp_line(out, start, o.dump);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::*;
    use crate::format::plain::tests::*;
    use crate::format::UtcEnv;
    use crate::proto::*;

    fn render(f: &Flow, ev: EventKind, o: PlainOpts, when: Option<&Tm>) -> String {
        let mut v = Vec::new();
        write_xml_flow(&mut v, f, ev, &o, &UtcEnv { now: 1_796_031_384 }, when);
        String::from_utf8(v).unwrap()
    }

    /// The verified XML example of spec §1.8 (`-o xml,ktimestamp`).
    #[test]
    fn spec_example() {
        let mut f = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_TCP, "2.2.2.2", "1.1.1.1", 20, 10),
            status::SEEN_REPLY | status::ASSURED | status::CONFIRMED,
            99,
        );
        f.protoinfo = tcp_state(3);
        f.counters_orig = zero_counters();
        f.counters_reply = zero_counters();
        f.timestamp = Some(Timestamp {
            start: Some(1_796_031_384_715_002_290),
            stop: None,
        });
        let o = PlainOpts {
            ktimestamp: true,
            ..PlainOpts::default()
        };
        assert_eq!(render(&f, EventKind::None, o, None), "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>1.1.1.1</src><dst>2.2.2.2</dst></layer3><layer4 protonum=\"6\" protoname=\"tcp\"><sport>10</sport><dport>20</dport></layer4><counters><packets>0</packets><bytes>0</bytes></counters></meta><meta direction=\"reply\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>2.2.2.2</src><dst>1.1.1.1</dst></layer3><layer4 protonum=\"6\" protoname=\"tcp\"><sport>20</sport><dport>10</dport></layer4><counters><packets>0</packets><bytes>0</bytes></counters></meta><meta direction=\"independent\"><state>ESTABLISHED</state><timeout>99</timeout><mark>0</mark><use>1</use><id>1029127536</id><assured/><timestamp><start>1796031384715002290</start></timestamp><deltatime>0</deltatime></meta></flow>\n");
    }

    /// Lines produced by conntrack 1.4.7 for entries made with `-I`.
    #[test]
    fn tool_examples() {
        let mut s = flow(
            AF_INET,
            tp(IPPROTO_SCTP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_SCTP, "2.2.2.2", "1.1.1.1", 20, 10),
            status::CONFIRMED,
            49,
        );
        s.protoinfo = sctp_state(4);
        s.id = Some(114854127);
        assert_eq!(render(&s, EventKind::None, PlainOpts::default(), None), "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>1.1.1.1</src><dst>2.2.2.2</dst></layer3><layer4 protonum=\"132\" protoname=\"sctp\"><sport>10</sport><dport>20</dport></layer4></meta><meta direction=\"reply\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>2.2.2.2</src><dst>1.1.1.1</dst></layer3><layer4 protonum=\"132\" protoname=\"sctp\"><sport>20</sport><dport>10</dport></layer4></meta><meta direction=\"independent\"><state>FIN_WAIT</state><timeout>49</timeout><mark>0</mark><use>1</use><id>114854127</id><unreplied/></meta></flow>\n");

        let mut z = flow(
            AF_INET,
            tp(IPPROTO_UDP, "1.1.1.1", "2.2.2.2", 3, 2),
            tp(IPPROTO_UDP, "2.2.2.2", "1.1.1.1", 2, 3),
            status::CONFIRMED,
            499,
        );
        z.reply.as_mut().unwrap().zone = Some(4);
        z.id = Some(1311428096);
        assert_eq!(render(&z, EventKind::None, PlainOpts::default(), None), "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>1.1.1.1</src><dst>2.2.2.2</dst></layer3><layer4 protonum=\"17\" protoname=\"udp\"><sport>3</sport><dport>2</dport></layer4></meta><meta direction=\"reply\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>2.2.2.2</src><dst>1.1.1.1</dst></layer3><layer4 protonum=\"17\" protoname=\"udp\"><sport>2</sport><dport>3</dport></layer4><zone>4</zone></meta><meta direction=\"independent\"><timeout>499</timeout><mark>0</mark><use>1</use><id>1311428096</id><unreplied/></meta></flow>\n");

        let mut g = flow(
            AF_INET,
            tp(IPPROTO_GRE, "1.1.1.1", "2.2.2.2", 0x10, 0x20),
            tp(IPPROTO_GRE, "2.2.2.2", "1.1.1.1", 0x20, 0x10),
            status::CONFIRMED,
            499,
        );
        g.id = Some(1912046210);
        assert_eq!(render(&g, EventKind::None, PlainOpts::default(), None), "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>1.1.1.1</src><dst>2.2.2.2</dst></layer3><layer4 protonum=\"47\" protoname=\"gre\"><srckey>0x10</srckey><dstkey>0x20</dstkey></layer4></meta><meta direction=\"reply\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>2.2.2.2</src><dst>1.1.1.1</dst></layer3><layer4 protonum=\"47\" protoname=\"gre\"><srckey>0x20</srckey><dstkey>0x10</dstkey></layer4></meta><meta direction=\"independent\"><timeout>499</timeout><mark>0</mark><use>1</use><id>1912046210</id><unreplied/></meta></flow>\n");

        let mut i = flow(
            AF_INET6,
            ticmp(IPPROTO_ICMPV6, "2001:db8::1", "2001:db8::2", 128, 0, 55),
            ticmp(IPPROTO_ICMPV6, "2001:db8::2", "2001:db8::1", 129, 0, 55),
            status::CONFIRMED,
            499,
        );
        i.id = Some(1152175846);
        assert_eq!(render(&i, EventKind::None, PlainOpts::default(), None), "<flow><meta direction=\"original\"><layer3 protonum=\"10\" protoname=\"ipv6\"><src>2001:db8::1</src><dst>2001:db8::2</dst></layer3><layer4 protonum=\"58\" protoname=\"icmpv6\"></layer4></meta><meta direction=\"reply\"><layer3 protonum=\"10\" protoname=\"ipv6\"><src>2001:db8::2</src><dst>2001:db8::1</dst></layer3><layer4 protonum=\"58\" protoname=\"icmpv6\"></layer4></meta><meta direction=\"independent\"><timeout>499</timeout><mark>0</mark><use>1</use><id>1152175846</id><unreplied/></meta></flow>\n");
    }

    /// Cut to 1023 bytes (checked with `nfct_snprintf_labels`).
    #[test]
    fn truncation() {
        let o = PlainOpts {
            labels: true,
            ..PlainOpts::default()
        };
        let mut v = Vec::new();
        let env = crate::format::plain::tests::LongLabels::new();
        write_xml_flow(
            &mut v,
            &crate::format::plain::tests::labelled_flow(70),
            EventKind::None,
            &o,
            &env,
            None,
        );
        let s = String::from_utf8(v).unwrap();
        assert_eq!(s.len(), 1024);
        assert!(
            s.ends_with("belname021</label><label>labelname022</l\n"),
            "{s}"
        );
    }

    /// Checked against libnetfilter_conntrack 1.0.9 `nfct_snprintf`.
    #[test]
    fn library_cases() {
        // Only a timeout: zeroed tuples, protonum 0 "unknown".
        let f = Flow {
            timeout: Some(5),
            ..Flow::default()
        };
        assert_eq!(render(&f, EventKind::None, PlainOpts::default(), None), "<flow><meta direction=\"original\"><layer3 protonum=\"0\" protoname=\"unknown\"><src></src><dst></dst></layer3><layer4 protonum=\"0\" protoname=\"unknown\"></layer4></meta><meta direction=\"reply\"><layer3 protonum=\"0\" protoname=\"unknown\"><src></src><dst></dst></layer3><layer4 protonum=\"0\" protoname=\"unknown\"></layer4></meta><meta direction=\"independent\"><timeout>5</timeout></meta></flow>\n");

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
        f.timestamp = Some(Timestamp {
            start: Some(0),
            stop: Some(0),
        });
        let tm = Tm::from_utc(1_796_035_204);
        let o = PlainOpts {
            ktimestamp: true,
            ..PlainOpts::default()
        };
        assert_eq!(render(&f, EventKind::None, o, Some(&tm)), "<flow><meta direction=\"original\"><layer3 protonum=\"10\" protoname=\"ipv6\"><src>::</src><dst>::</dst></layer3><layer4 protonum=\"1\" protoname=\"icmp\"></layer4><zone>3</zone></meta><meta direction=\"reply\"><layer3 protonum=\"0\" protoname=\"unknown\"><src></src><dst></dst></layer3><layer4 protonum=\"0\" protoname=\"unknown\"></layer4></meta><meta direction=\"independent\"><secmark>9</secmark><zone>7</zone><use>0</use><id>77</id><unreplied/><timestamp><start>0</start><stop>0</stop></timestamp><deltatime>0</deltatime></meta><when><hour>10</hour><min>40</min><sec>04</sec><wday>2</wday><day>30</day><month>11</month><year>2026</year></when><helper>ftp</helper></flow>\n");
        assert_eq!(render(&f, EventKind::Destroy, PlainOpts::default(), None), "<flow type=\"destroy\"><meta direction=\"original\"><layer3 protonum=\"10\" protoname=\"ipv6\"><src>::</src><dst>::</dst></layer3><layer4 protonum=\"1\" protoname=\"icmp\"></layer4><zone>3</zone></meta><meta direction=\"reply\"><layer3 protonum=\"0\" protoname=\"unknown\"><src></src><dst></dst></layer3><layer4 protonum=\"0\" protoname=\"unknown\"></layer4></meta><meta direction=\"independent\"><secmark>9</secmark><zone>7</zone><use>0</use><id>77</id><unreplied/><deltatime>0</deltatime></meta><helper>ftp</helper></flow>\n");

        // States: TCP names for SCTP and DCCP, NONE past the table.
        for (p, st, name) in [
            (IPPROTO_DCCP, 4u8, "FIN_WAIT"),
            (IPPROTO_DCCP, 9, "SYN_SENT2"),
            (IPPROTO_DCCP, 10, "NONE"),
            (IPPROTO_SCTP, 9, "SYN_SENT2"),
            (IPPROTO_SCTP, 11, "NONE"),
        ] {
            let mut pi = ProtoInfo::default();
            if p == IPPROTO_DCCP {
                pi.dccp = Some(DccpInfo {
                    state: Some(st),
                    ..DccpInfo::default()
                });
            } else {
                pi.sctp = Some(SctpInfo {
                    state: Some(st),
                    ..SctpInfo::default()
                });
            }
            let f = Flow {
                family: AF_INET,
                orig: Some(Tuple {
                    l4proto: Some(p),
                    ..Tuple::default()
                }),
                protoinfo: Some(pi),
                ..Flow::default()
            };
            let s = render(&f, EventKind::None, PlainOpts::default(), None);
            assert!(
                s.contains(&format!(
                    "<meta direction=\"independent\"><state>{name}</state></meta>"
                )),
                "{s}"
            );
        }
    }
}
