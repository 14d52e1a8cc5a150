//! Hand-annotated sync messages from ../shared/lab/REPORT.md §4 and
//! ../shared/spec/upstream-facts.md §4.3 (copied here, annotated), decoded
//! field by field and re-encoded byte for byte; plus hand-built vectors
//! for the attributes the captures do not contain (NAT, IPv6, master,
//! labels, helper, SCTP, DCCP, seq adj, zone, expectations).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ct_core::flow::*;
use ct_transport::wire::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ip(a: [u8; 4]) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(a)))
}

const OPTS: EmitOpts = EmitOpts {
    commit_timeout: false,
    tcp_window_tracking: false,
};

/// Decodes one CT message, checks header fields, re-encodes it.
fn ct_roundtrip(bytes: &[u8], op: Op, flags: Flags, seq: u32) -> Flow {
    let m = Message::parse(bytes).unwrap();
    assert_eq!(m.as_bytes().len(), bytes.len());
    assert_eq!(m.flags(), flags);
    assert_eq!(m.seq(), seq);
    let Ok(Decoded::Data(Data::Ct(got_op, flow))) = m.decode() else {
        panic!("not a ct message: {:?}", m.decode())
    };
    assert_eq!(got_op, op);
    let mut out = [0u8; 512];
    let n = emit_ct(&mut out, op, flags, seq, &flow, &OPTS).unwrap();
    assert_eq!(&out[..n], bytes);
    flow
}

fn tcp_established(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Flow {
    Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: ip(src),
            dst: ip(dst),
            l4proto: Some(6),
            src_port: Some(sp),
            dst_port: Some(dp),
            ..Tuple::default()
        }),
        status: Some(0xe),
        protoinfo: Some(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(3),
                ..TcpInfo::default()
            }),
            ..ProtoInfo::default()
        }),
        ..Flow::default()
    }
}

#[test]
fn spec_tcp_new_with_mark() {
    // upstream-facts §4.3: kernel-created TCP 10.1.1.1:1111 -> 10.2.2.2:80, mark 5.
    let b = hex("10 00 00 54 6b 0d 44 3c
         00 0c 00 00 0a 01 01 01 0a 02 02 02
         00 08 00 05 00 00 00 0e
         00 05 00 02 06 00 00 00
         00 08 00 03 04 57 00 50
         00 05 00 04 03 00 00 00
         00 08 00 06 00 00 01 2c
         00 08 00 07 00 00 00 05
         00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00");
    let f = ct_roundtrip(&b, Op::New, Flags::NONE, 0x6b0d443c);
    let mut want = tcp_established([10, 1, 1, 1], [10, 2, 2, 2], 1111, 80);
    want.timeout = Some(300);
    want.mark = Some(5);
    want.synproxy = Some(Synproxy {
        isn: Some(0),
        its: Some(0),
        tsoff: Some(0),
    });
    assert_eq!(f, want);
}

#[test]
fn report_frame3_hello_back() {
    let b = hex(
        "10 40 00 54 6b 0d 45 3b 00 0c 00 00 0a 4d 64 0b 0a 4d c8 0b 00 08 00 05 00 00 00 0e 00 05 00 02
         06 00 00 00 00 08 00 03 a0 28 01 bb 00 05 00 04 03 00 00 00 00 08 00 06 00 00 02 58 00 08 00 07
         00 00 00 00 00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00",
    );
    let f = ct_roundtrip(&b, Op::New, Flags::HELLO_BACK, 1796031803);
    let o = f.orig.unwrap();
    assert_eq!(
        (o.src, o.dst),
        (ip([10, 77, 100, 11]), ip([10, 77, 200, 11]))
    );
    assert_eq!((o.src_port, o.dst_port), (Some(41000), Some(443)));
    assert_eq!(
        (f.status, f.timeout, f.mark),
        (Some(0xe), Some(600), Some(0))
    );
}

#[test]
fn report_frame4_udp() {
    let b = hex(
        "10 00 00 4c 6b 0d 45 3c 00 0c 00 00 0a 4d 64 0c 0a 4d c8 0c 00 08 00 05 00 00 00 08 00 05 00 02
         11 00 00 00 00 08 00 03 14 e9 00 35 00 08 00 06 00 00 02 58 00 08 00 07 00 00 00 00 00 10 00 1f
         00 00 00 00 00 00 00 00 00 00 00 00",
    );
    let f = ct_roundtrip(&b, Op::New, Flags::NONE, 1796031804);
    let o = f.orig.unwrap();
    assert_eq!(
        (o.l4proto, o.src_port, o.dst_port),
        (Some(17), Some(5353), Some(53))
    );
    assert_eq!(f.protoinfo, None);
    assert_eq!((f.status, f.timeout), (Some(8), Some(600)));
}

#[test]
fn report_frames_11_12_update_and_delete() {
    let body = "00 0c 00 00 0a 4d 64 0d 0a 4d c8 0d 00 08 00 05 00 00 00 0e 00 05 00 02
         06 00 00 00 00 08 00 03 a4 10 00 16 00 05 00 04 03 00 00 00 00 08 00 06 00 00 02 57 00 08 00 07
         00 00 00 07 00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00";
    let upd = hex(&format!("11 00 00 54 6b 0d 45 46 {body}"));
    let del = hex(&format!("12 00 00 54 6b 0d 45 47 {body}"));
    let a = ct_roundtrip(&upd, Op::Update, Flags::NONE, 0x6b0d4546);
    let b = ct_roundtrip(&del, Op::Delete, Flags::NONE, 0x6b0d4547);
    assert_eq!(a, b);
    assert_eq!((a.mark, a.timeout), (Some(7), Some(599)));
    assert_eq!(a.orig.unwrap().src_port, Some(42000));
}

#[test]
fn report_frame6_icmp_id_is_little_endian() {
    let b = hex(
        "11 00 00 44 6b 0d 45 3e 00 0c 00 00 0a 4d 0a 64 0a 4d 14 64 00 08 00 05 00 00 00 0a 00 05 00 02
         01 00 00 00 00 05 00 16 08 00 00 00 00 05 00 17 00 00 00 00 00 06 00 18 70 62 00 00 00 08 00 06 00 00 00 1e",
    );
    let f = ct_roundtrip(&b, Op::Update, Flags::NONE, 0x6b0d453e);
    let o = f.orig.unwrap();
    assert_eq!((o.icmp_type, o.icmp_code), (Some(8), Some(0)));
    // Wire bytes 70 62: the id is 0x6270 (the x86 sender's htons(htons(id))).
    assert_eq!(o.icmp_id, Some(0x6270));
    assert_eq!((o.src_port, o.dst_port), (None, None));
    assert_eq!((f.status, f.timeout, f.mark), (Some(0xa), Some(30), None));
}

#[test]
fn spec_icmp_id_4660() {
    // upstream-facts §4.3: ICMP echo id 0x1234 is `34 12` on the wire.
    let f = Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: ip([1, 1, 1, 1]),
            dst: ip([2, 2, 2, 2]),
            l4proto: Some(1),
            icmp_type: Some(8),
            icmp_code: Some(0),
            icmp_id: Some(4660),
            ..Tuple::default()
        }),
        status: Some(0),
        ..Flow::default()
    };
    let mut out = [0u8; 128];
    let n = emit_ct(&mut out, Op::New, Flags::NONE, 1, &f, &OPTS).unwrap();
    let tail = hex("00 05 00 02 01 00 00 00 00 05 00 16 08 00 00 00 00 05 00 17 00 00 00 00 00 06 00 18 34 12 00 00");
    assert_eq!(&out[n - tail.len()..n], &tail[..]);
    assert_eq!(parse_ct(&out[8..n]).unwrap(), f);
}

#[test]
fn report_control_vectors() {
    let cases: [(&str, ControlRepr, Kind); 6] = [
        (
            "1a 30 00 08 6b 0d 45 3a",
            ControlRepr {
                flags: Flags::ALIVE | Flags::HELLO,
                seq: 1796031802,
                from: 0,
                to: 0,
            },
            Kind::Alive,
        ),
        (
            "1a 68 00 10 6b 0d 45 3a 6b 0d 45 3a 6b 0d 45 3a",
            ControlRepr {
                flags: Flags::ACK | Flags::HELLO | Flags::HELLO_BACK,
                seq: 1796031802,
                from: 1796031802,
                to: 1796031802,
            },
            Kind::Ack,
        ),
        (
            "1a 08 00 10 6b 0d 45 3b 6b 0d 45 3b 6b 0d 45 43",
            ControlRepr::ack(0x6b0d453b, 1796031803, 1796031811),
            Kind::Ack,
        ),
        (
            "1a 02 00 10 6b 0d 45 3c 00 00 00 00 00 00 00 00",
            ControlRepr::resync(0x6b0d453c),
            Kind::Resync,
        ),
        (
            "1a 04 00 10 6b 0d 46 45 6b 0d 46 56 6b 0d 46 66",
            ControlRepr::nack(0x6b0d4645, 1796032086, 1796032102),
            Kind::Nack,
        ),
        (
            "1a 10 00 08 6b 0d 46 67",
            ControlRepr::alive(0x6b0d4667),
            Kind::Alive,
        ),
    ];
    for (h, want, kind) in cases {
        let b = hex(h);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.kind(), kind);
        assert_eq!(m.decode(), Ok(Decoded::Control(want)), "{h}");
        let mut out = [0u8; 16];
        let n = want.emit(&mut out).unwrap();
        assert_eq!(&out[..n], &b[..]);
    }
}

/// A TCP flow with every optional attribute, SNAT + DNAT with port
/// translation, master, seq adj, helper, labels, synproxy, zone.
fn kitchen_sink() -> Flow {
    let mut f = tcp_established([192, 168, 1, 10], [203, 0, 113, 5], 40000, 80);
    f.status = Some(0xe | 0x80 | 0x100 | 0x2000);
    f.reply = Some(Tuple {
        src: ip([10, 0, 0, 80]),
        dst: ip([198, 51, 100, 1]),
        l4proto: Some(6),
        src_port: Some(8080),
        dst_port: Some(61000),
        ..Tuple::default()
    });
    f.timeout = Some(120);
    f.mark = Some(0x01020304);
    f.master = Some(Tuple {
        src: ip([192, 168, 1, 10]),
        dst: ip([203, 0, 113, 5]),
        l4proto: Some(6),
        src_port: Some(1025),
        dst_port: Some(21),
        ..Tuple::default()
    });
    let sa = |a, b, c| SeqAdj {
        correction_pos: Some(a),
        offset_before: Some(b),
        offset_after: Some(c),
    };
    f.seq_adj_orig = Some(sa(1, 2, 3));
    f.seq_adj_reply = Some(sa(4, 5, 6));
    f.helper = Some(ShortStr::new("ftp"));
    let mut l = Labels::zeroed(16);
    l.set(0, true);
    l.set(33, true);
    f.labels = Some(l);
    f.synproxy = Some(Synproxy {
        isn: Some(0x11111111),
        its: Some(0x22222222),
        tsoff: Some(0x33333333),
    });
    f.zone = Some(7);
    f
}

#[test]
fn kitchen_sink_bytes() {
    let f = kitchen_sink();
    let want = hex("10 00 00 d0 00 00 00 2a
         00 0c 00 00 c0 a8 01 0a cb 00 71 05
         00 08 00 05 00 00 21 8e
         00 05 00 02 06 00 00 00
         00 08 00 03 9c 40 00 50
         00 05 00 04 03 00 00 00
         00 08 00 06 00 00 00 78
         00 08 00 07 01 02 03 04
         00 0c 00 08 c0 a8 01 0a cb 00 71 05
         00 05 00 0a 06 00 00 00
         00 08 00 0b 04 01 00 15
         00 08 00 0c c6 33 64 01
         00 08 00 0d 0a 00 00 50
         00 06 00 0e 48 ee 00 00
         00 06 00 0f 90 1f 00 00
         00 1c 00 10 00 00 00 01 00 00 00 02 00 00 00 03 00 00 00 04 00 00 00 05 00 00 00 06
         00 08 00 1b 66 74 70 00
         00 14 00 1c 00 00 00 01 00 00 00 02 00 00 00 00 00 00 00 00
         00 10 00 1f 22 22 22 22 11 11 11 11 33 33 33 33
         00 06 00 20 00 07 00 00");
    let mut out = [0u8; 512];
    let n = emit_ct(&mut out, Op::New, Flags::NONE, 42, &f, &OPTS).unwrap();
    assert_eq!(&out[..n], &want[..]);
    let back = parse_ct(&want[8..]).unwrap();
    // Decoding keeps everything; the reply tuple is rebuilt from the NAT TLVs.
    assert_eq!(back, f);
}

#[test]
fn window_tracking_and_commit_timeout() {
    let mut f = tcp_established([1, 0, 0, 1], [1, 0, 0, 2], 1, 2);
    f.timeout = Some(10);
    let t = f.protoinfo.as_mut().unwrap().tcp.as_mut().unwrap();
    t.wscale_orig = Some(7);
    t.wscale_reply = Some(9);
    let opts = EmitOpts {
        commit_timeout: true,
        tcp_window_tracking: true,
    };
    let mut out = [0u8; 256];
    let n = emit_ct(&mut out, Op::Update, Flags::NONE, 1, &f, &opts).unwrap();
    let tail = hex("00 05 00 04 03 00 00 00 00 05 00 19 07 00 00 00 00 05 00 1a 09 00 00 00");
    assert_eq!(&out[n - tail.len()..n], &tail[..]);
    let back = parse_ct(&out[8..n]).unwrap();
    assert_eq!(back.timeout, None);
    assert_eq!(back.protoinfo, f.protoinfo);
    // Without window tracking the scales are not sent.
    let n2 = emit_ct(&mut out, Op::Update, Flags::NONE, 1, &f, &OPTS).unwrap();
    assert_eq!(n2, n - 16 + 8);
}

#[test]
fn ipv6_sctp_dccp_gre() {
    let a: IpAddr = "2001:db8::1".parse().unwrap();
    let b: IpAddr = "2001:db8::2".parse().unwrap();
    let mut f = Flow {
        family: AF_INET6,
        orig: Some(Tuple {
            src: Some(a),
            dst: Some(b),
            l4proto: Some(132),
            src_port: Some(5000),
            dst_port: Some(5001),
            ..Tuple::default()
        }),
        status: Some(0x188),
        protoinfo: Some(ProtoInfo {
            sctp: Some(SctpInfo {
                state: Some(3),
                vtag_orig: Some(0xdeadbeef),
                vtag_reply: Some(0x01020304),
            }),
            ..ProtoInfo::default()
        }),
        reply: Some(Tuple {
            src: Some(b),
            dst: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            l4proto: Some(132),
            src_port: Some(5001),
            dst_port: Some(5000),
            ..Tuple::default()
        }),
        ..Flow::default()
    };
    let mut out = [0u8; 256];
    let n = emit_ct(&mut out, Op::New, Flags::NONE, 1, &f, &OPTS).unwrap();
    let m = Message::parse(&out[..n]).unwrap();
    let Data::Ct(_, back) = m.data().unwrap() else {
        panic!()
    };
    assert_eq!(back, f);
    // 8 hdr + 36 IPV6 + 8 status + 8 l4 + 8 port + 8 state + 8 + 8 vtags + 20 SNAT_IPV6
    assert_eq!(n, 8 + 36 + 8 + 8 + 8 + 8 + 8 + 8 + 20);

    // DCCP: state and role.
    let o = f.orig.as_mut().unwrap();
    o.l4proto = Some(33);
    f.reply = None;
    f.protoinfo = Some(ProtoInfo {
        dccp: Some(DccpInfo {
            state: Some(2),
            role: Some(1),
            handshake_seq: None,
        }),
        ..ProtoInfo::default()
    });
    let n = emit_ct(&mut out, Op::New, Flags::NONE, 1, &f, &OPTS).unwrap();
    assert_eq!(parse_ct(&out[8..n]).unwrap(), f);

    // GRE keys and UDP-Lite ports: 1.4.7 sends neither (trap 7), so its
    // backups commit zeros; ours sends them in NTA_PORT, which 1.4.7's
    // parser takes for any protocol.
    for p in [47u8, 136] {
        let mut g = f;
        g.protoinfo = None;
        g.orig.as_mut().unwrap().l4proto = Some(p);
        let n = emit_ct(&mut out, Op::New, Flags::NONE, 1, &g, &OPTS).unwrap();
        assert_eq!(n, 8 + 36 + 8 + 8 + 8);
        let back = parse_ct(&out[8..n]).unwrap();
        let o = back.orig.unwrap();
        assert_eq!((o.src_port, o.dst_port), (Some(5000), Some(5001)));
    }
}

#[test]
fn helper_too_long_is_left_out() {
    let mut f = tcp_established([1, 0, 0, 1], [1, 0, 0, 2], 1, 2);
    f.helper = Some(ShortStr::new("exactly11ch"));
    let mut out = [0u8; 256];
    let n = emit_ct(&mut out, Op::New, Flags::NONE, 1, &f, &OPTS).unwrap();
    assert_eq!(parse_ct(&out[8..n]).unwrap().helper, f.helper);
    f.helper = Some(ShortStr::new("twelve_chars"));
    let n = emit_ct(&mut out, Op::New, Flags::NONE, 1, &f, &OPTS).unwrap();
    assert_eq!(parse_ct(&out[8..n]).unwrap().helper, None);
    // A 12-char name on the wire is rejected (nta_len 17 > 16).
    let bad = hex("00 11 00 1b 74 77 65 6c 76 65 5f 63 68 61 72 73 00 00 00 00");
    assert_eq!(
        parse_ct(&bad),
        Err(PayloadError::TooLong {
            ty: 27,
            len: 17,
            max: 16
        })
    );
}

#[test]
fn payload_rejections() {
    // Unknown type 33 rejects the whole message, even after good TLVs.
    let b = hex("00 08 00 05 00 00 00 0e 00 05 00 21 00 00 00 00");
    assert_eq!(parse_ct(&b), Err(PayloadError::UnknownAttr(33)));
    // STATUS with nta_len 9 (exact size 8).
    let b = hex("00 09 00 05 00 00 00 0e 00 00 00 00");
    assert!(matches!(parse_ct(&b), Err(PayloadError::WrongSize { .. })));
    // Trailing 4 bytes ignored.
    let b = hex("00 08 00 05 00 00 00 0e 00 ff 00 ff");
    assert_eq!(parse_ct(&b).unwrap().status, Some(0xe));
    // Labels must be whole words.
    let b = hex("00 06 00 1c 00 01 00 00");
    assert_eq!(parse_ct(&b), Err(PayloadError::BadLabels(2)));
    // An expectation type 21 rejects.
    let b = hex("00 08 00 15 00 00 00 00");
    assert_eq!(parse_exp(&b), Err(PayloadError::UnknownAttr(21)));
}

#[test]
fn expectation_both_ways() {
    let t = |s, d, sp, dp| Tuple {
        src: ip(s),
        dst: ip(d),
        l4proto: Some(6),
        src_port: Some(sp),
        dst_port: Some(dp),
        ..Tuple::default()
    };
    let e = Expect {
        family: AF_INET,
        master: Some(t([10, 0, 0, 1], [10, 0, 0, 2], 40000, 21)),
        tuple: Some(t([10, 0, 0, 2], [10, 0, 0, 1], 0, 50000)),
        mask: Some(t([255; 4], [255; 4], 0, 0xffff)),
        timeout: Some(300),
        flags: Some(0),
        class: Some(0),
        nat: Some(ExpectNat {
            dir: Some(1),
            tuple: Some(t([192, 168, 0, 1], [0, 0, 0, 0], 0, 2121)),
        }),
        helper: Some(ShortStr::new("ftp")),
        func: Some(ShortStr::new("nat-follow-master")),
        ..Expect::default()
    };
    let want = hex("13 00 00 b8 00 00 00 05
         00 0c 00 00 0a 00 00 01 0a 00 00 02
         00 05 00 02 06 00 00 00
         00 08 00 03 9c 40 00 15
         00 0c 00 04 0a 00 00 02 0a 00 00 01
         00 05 00 06 06 00 00 00
         00 08 00 07 00 00 c3 50
         00 0c 00 08 ff ff ff ff ff ff ff ff
         00 05 00 0a 06 00 00 00
         00 08 00 0b 00 00 ff ff
         00 08 00 0c 00 00 01 2c
         00 08 00 0d 00 00 00 00
         00 08 00 0e 00 00 00 00
         00 0c 00 0f c0 a8 00 01 00 00 00 00
         00 05 00 11 06 00 00 00
         00 08 00 10 00 00 08 49
         00 08 00 12 00 00 00 01
         00 08 00 13 66 74 70 00
         00 16 00 14 6e 61 74 2d 66 6f 6c 6c 6f 77 2d 6d 61 73 74 65 72 00 00 00");
    let mut out = [0u8; 512];
    let n = emit_exp(&mut out, Op::New, Flags::NONE, 5, &e, &OPTS).unwrap();
    assert_eq!(&out[..n], &want[..]);
    let m = Message::parse(&want).unwrap();
    assert_eq!(m.decode(), Ok(Decoded::Data(Data::Exp(Op::New, e))));
}
