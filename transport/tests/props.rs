//! Property tests of the sync wire codec: any flow or expectation the sync
//! protocol can carry survives emit → parse unchanged (in the form
//! decoding produces: see `wire::ct`), any batch of messages survives the
//! datagram writer and reader, and no byte string makes the reader or the
//! decoders panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ct_core::flow::*;
use ct_core::proto::status::{DST_NAT_DONE, SRC_NAT_DONE};
use ct_transport::wire::*;
use proptest::prelude::*;

fn addr(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed()
    }
}

fn l4proto() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(6u8),
        Just(17),
        Just(132),
        Just(33),
        Just(1),
        Just(58),
        Just(47),
        Just(136),
        any::<u8>()
    ]
}

fn has_ports(p: u8) -> bool {
    matches!(p, 6 | 17 | 132 | 33)
}

/// A conntrack message's original tuple also carries UDP-Lite ports and
/// GRE keys (beyond 1.4.7).
fn ct_ports(p: u8) -> bool {
    has_ports(p) || matches!(p, 136 | 47)
}

/// An original (or master) tuple as the protocol carries it: both
/// addresses, the protocol, ports exactly for the port protocols, ICMP
/// type/code/id all or nothing for ICMP.
fn tuple(v6: bool) -> impl Strategy<Value = Tuple> {
    (
        addr(v6),
        addr(v6),
        l4proto(),
        any::<(u16, u16)>(),
        proptest::option::of(any::<(u8, u8, u16)>()),
    )
        .prop_map(|(src, dst, p, (sp, dp), icmp)| {
            let icmp = icmp.filter(|_| p == 1 || p == 58);
            Tuple {
                src: Some(src),
                dst: Some(dst),
                l4proto: Some(p),
                src_port: ct_ports(p).then_some(sp),
                dst_port: ct_ports(p).then_some(dp),
                icmp_type: icmp.map(|i| i.0),
                icmp_code: icmp.map(|i| i.1),
                icmp_id: icmp.map(|i| i.2),
                ..Tuple::default()
            }
        })
}

fn master(v6: bool) -> impl Strategy<Value = Tuple> {
    (
        addr(v6),
        addr(v6),
        any::<u8>(),
        proptest::option::of(any::<(u16, u16)>()),
    )
        .prop_map(|(src, dst, p, ports)| Tuple {
            src: Some(src),
            dst: Some(dst),
            l4proto: Some(p),
            src_port: ports.map(|x| x.0),
            dst_port: ports.map(|x| x.1),
            ..Tuple::default()
        })
}

fn name(max: usize) -> impl Strategy<Value = ShortStr> {
    proptest::string::string_regex(&format!("[a-z0-9_-]{{0,{max}}}"))
        .unwrap()
        .prop_map(|s| ShortStr::new(&s))
}

fn labels() -> impl Strategy<Value = Labels> {
    (1usize..=8, any::<[u8; LABELS_MAX]>(), any::<u8>()).prop_map(|(words, bytes, bit)| {
        let mut l = Labels::from_bytes(&bytes[..words * 4]).unwrap();
        // Never all clear (a clear bitmap is not sent).
        l.set(bit as usize % (words * 32), true);
        l
    })
}

fn seq_adj() -> impl Strategy<Value = SeqAdj> {
    any::<(u32, u32, u32)>().prop_map(|(a, b, c)| SeqAdj {
        correction_pos: Some(a),
        offset_before: Some(b),
        offset_after: Some(c),
    })
}

/// NAT as decoding produces it: the reply tuple is the inverted original
/// with the translated fields; translations differ from the original and
/// the status carries the matching NAT_DONE bit.
#[derive(Debug, Clone)]
struct NatGen {
    snat: Option<IpAddr>,
    dnat: Option<IpAddr>,
    spat: Option<u16>,
    dpat: Option<u16>,
}

fn nat(v6: bool) -> impl Strategy<Value = Option<NatGen>> {
    proptest::option::of(
        (
            proptest::option::of(addr(v6)),
            proptest::option::of(addr(v6)),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(|(snat, dnat, spat, dpat)| NatGen {
                snat,
                dnat,
                spat,
                dpat,
            }),
    )
}

fn apply_nat(f: &mut Flow, n: &NatGen) {
    let o = f.orig.unwrap();
    let snat = n.snat.filter(|a| Some(*a) != o.src);
    let dnat = n.dnat.filter(|a| Some(*a) != o.dst);
    let spat = n.spat.filter(|p| Some(*p) != o.src_port);
    let dpat = n.dpat.filter(|p| Some(*p) != o.dst_port);
    if snat.is_none() && dnat.is_none() && spat.is_none() && dpat.is_none() {
        return;
    }
    let mut st = f.status.unwrap_or(0);
    if snat.is_some() || spat.is_some() {
        st |= SRC_NAT_DONE;
    }
    if dnat.is_some() || dpat.is_some() {
        st |= DST_NAT_DONE;
    }
    f.status = Some(st);
    f.reply = Some(Tuple {
        src: dnat.or(o.dst),
        dst: snat.or(o.src),
        l4proto: o.l4proto,
        src_port: dpat.or(o.dst_port),
        dst_port: spat.or(o.src_port),
        ..Tuple::default()
    });
}

prop_compose! {
    fn flow(window_tracking: bool)(v6 in any::<bool>())(
        orig in tuple(v6),
        status in any::<u32>(),
        timeout in proptest::option::of(any::<u32>()),
        mark in proptest::option::of(any::<u32>()),
        master in proptest::option::of(master(v6)),
        nat in nat(v6),
        pi_state in proptest::option::of(any::<(u8, u8, u8, u32, u32)>()),
        adj in proptest::option::of((seq_adj(), seq_adj())),
        helper in proptest::option::of(name(11)),
        labels in proptest::option::of(labels()),
        synproxy in proptest::option::of(any::<(u32, u32, u32)>()),
        zone in proptest::option::of(any::<u16>()),
        v6 in Just(v6),
    ) -> Flow {
        let p = orig.l4proto.unwrap_or(0);
        let protoinfo = pi_state.and_then(|(s, a, b, x, y)| match p {
            6 => Some(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(s),
                    wscale_orig: window_tracking.then_some(a),
                    wscale_reply: window_tracking.then_some(b),
                    ..TcpInfo::default()
                }),
                ..ProtoInfo::default()
            }),
            132 => Some(ProtoInfo {
                sctp: Some(SctpInfo { state: Some(s), vtag_orig: Some(x), vtag_reply: Some(y) }),
                ..ProtoInfo::default()
            }),
            33 => Some(ProtoInfo {
                dccp: Some(DccpInfo { state: Some(s), role: Some(a), handshake_seq: None }),
                ..ProtoInfo::default()
            }),
            _ => None,
        });
        let mut f = Flow {
            family: if v6 { AF_INET6 } else { AF_INET },
            orig: Some(orig),
            status: Some(status & !(SRC_NAT_DONE | DST_NAT_DONE)),
            timeout,
            mark,
            master,
            protoinfo,
            seq_adj_orig: adj.map(|a| a.0),
            seq_adj_reply: adj.map(|a| a.1),
            helper,
            labels,
            synproxy: synproxy.map(|(isn, its, tsoff)| Synproxy {
                isn: Some(isn), its: Some(its), tsoff: Some(tsoff),
            }),
            zone,
            ..Flow::default()
        };
        if let Some(n) = nat {
            apply_nat(&mut f, &n);
        }
        f
    }
}

fn exp_tuple(v4: bool, ports: bool) -> impl Strategy<Value = Tuple> {
    (addr(!v4), addr(!v4), any::<u8>(), any::<(u16, u16)>()).prop_map(move |(s, d, p, (sp, dp))| {
        Tuple {
            src: Some(s),
            dst: Some(d),
            l4proto: Some(p),
            src_port: ports.then_some(sp),
            dst_port: ports.then_some(dp),
            ..Tuple::default()
        }
    })
}

prop_compose! {
    fn expect()(v6 in any::<bool>(), p in l4proto())(
        master_addrs in (addr(v6), addr(v6)),
        tuple in exp_tuple(!v6, has_ports(p)),
        mask in exp_tuple(!v6, has_ports(p)),
        nat in proptest::option::of((exp_tuple(!v6, has_ports(p)), any::<u32>())),
        ports in any::<(u16, u16)>(),
        timeout in proptest::option::of(any::<u32>()),
        flags in any::<u32>(),
        class in proptest::option::of(any::<u32>()),
        helper in proptest::option::of(name(11)),
        func in proptest::option::of(name(27)),
        v6 in Just(v6),
        p in Just(p),
    ) -> Expect {
        let master = Tuple {
            src: Some(master_addrs.0),
            dst: Some(master_addrs.1),
            l4proto: Some(p),
            src_port: has_ports(p).then_some(ports.0),
            dst_port: has_ports(p).then_some(ports.1),
            ..Tuple::default()
        };
        Expect {
            family: if v6 { AF_INET6 } else { AF_INET },
            master: Some(master),
            tuple: Some(tuple),
            mask: Some(mask),
            timeout,
            flags: Some(flags),
            class,
            // Only IPv4 NAT addresses are carried.
            nat: nat.map(|(mut t, dir)| {
                if v6 {
                    t.src = None;
                    t.dst = None;
                }
                ExpectNat { dir: Some(dir), tuple: Some(t) }
            }),
            helper,
            func,
            ..Expect::default()
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::New), Just(Op::Update), Just(Op::Delete)]
}

/// A conntrack message's operation: also a withdrawal (ours).
fn ct_op() -> impl Strategy<Value = Op> {
    prop_oneof![op(), Just(Op::Withdraw)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn flow_roundtrip(f in flow(false), op in ct_op(), flags in 0u8..0x80, seq in any::<u32>()) {
        let opts = EmitOpts::default();
        let mut buf = [0u8; 1024];
        let n = emit_ct(&mut buf, op, Flags(flags), seq, &f, &opts).unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        prop_assert_eq!(m.as_bytes().len(), n);
        prop_assert_eq!((m.flags(), m.seq()), (Flags(flags), seq));
        prop_assert_eq!(m.msg_type().0, op.wire());
        // a withdrawal is a DEL with WITHDRAWN_STATUS in its status (and a
        // DEL with it, a withdrawal): the bit is not the flow's
        let bit = f.status.unwrap_or(0) & WITHDRAWN_STATUS != 0;
        let (got, want) = match op {
            Op::Withdraw => (Op::Withdraw, f.status.map(|s| s & !WITHDRAWN_STATUS)),
            Op::Delete if bit => (Op::Withdraw, f.status.map(|s| s & !WITHDRAWN_STATUS)),
            _ => (op, f.status),
        };
        prop_assert_eq!(m.data(), Ok(Data::Ct(got, Flow { status: want, ..f })));
        // Too small a buffer is an error, never a panic.
        for short in [0, 7, n / 2, n - 1] {
            prop_assert_eq!(
                emit_ct(&mut buf[..short], op, Flags(flags), seq, &f, &opts),
                Err(EmitError::Exhausted)
            );
        }
    }

    #[test]
    fn flow_roundtrip_window_tracking_commit_timeout(f in flow(true)) {
        let opts = EmitOpts { commit_timeout: true, tcp_window_tracking: true };
        let mut buf = [0u8; 1024];
        let n = emit_ct(&mut buf, Op::Update, Flags::NONE, 1, &f, &opts).unwrap();
        let want = Flow { timeout: None, ..f };
        prop_assert_eq!(parse_ct(&buf[8..n]), Ok(want));
    }

    #[test]
    fn expect_roundtrip(e in expect(), op in ct_op(), seq in any::<u32>()) {
        let mut buf = [0u8; 1024];
        let n = emit_exp(&mut buf, op, Flags::HELLO, seq, &e, &EmitOpts::default()).unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        prop_assert_eq!(m.msg_type().0, 3 + op.wire());
        // a withdrawal is an EXP_DEL with EXP_WITHDRAWN_FLAG in its flags
        // (and an EXP_DEL with it, a withdrawal): the bit is not the
        // expectation's
        let bit = e.flags.unwrap_or(0) & EXP_WITHDRAWN_FLAG != 0;
        let off = |e: Expect| Expect { flags: Some(e.flags.unwrap_or(0) & !EXP_WITHDRAWN_FLAG), ..e };
        let (got, want) = match op {
            Op::Withdraw => (Op::Withdraw, off(e)),
            Op::Delete if bit => (Op::Withdraw, off(e)),
            _ => (op, e),
        };
        prop_assert_eq!(m.decode(), Ok(Decoded::Data(Data::Exp(got, want))));
    }

    #[test]
    fn writer_reader_roundtrip(
        flows in proptest::collection::vec(flow(false), 1..40),
        mtu in 200usize..2000,
    ) {
        // Batch, send-on-full, then read every datagram back.
        let opts = EmitOpts::default();
        let mut w = DatagramWriter::with_mtu(vec![0u8; 4096], mtu, Transport::Udp);
        let mut datagrams = Vec::new();
        for (i, f) in flows.iter().enumerate() {
            loop {
                match w.push_ct(Op::New, Flags::NONE, i as u32, f, &opts) {
                    Ok(_) => break,
                    Err(PushError::Full) => {
                        datagrams.push(w.as_bytes().to_vec());
                        w.clear();
                    }
                    Err(PushError::TooBig) => break,
                }
            }
        }
        datagrams.push(w.as_bytes().to_vec());
        let mut got = Vec::new();
        for d in &datagrams {
            prop_assert!(d.len() < datagram_limit(mtu, Transport::Udp));
            for m in Datagram::new(d) {
                let m = m.unwrap();
                let Data::Ct(_, f) = m.data().unwrap() else { panic!() };
                got.push((m.seq(), f));
            }
        }
        let want: Vec<_> = flows
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                let mut b = [0u8; 4096];
                emit_ct(&mut b, Op::New, Flags::NONE, 0, f, &opts).unwrap()
                    < datagram_limit(mtu, Transport::Udp)
            })
            .map(|(i, f)| (i as u32, *f))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut counters = RecvCounters::default();
        for r in Datagram::new(&bytes).chain(Datagram::stream(&bytes)) {
            match r.and_then(|m| {
                let _ = (m.kind(), m.control(), m.header().has_range());
                m.decode()
            }) {
                Ok(_) => {}
                Err(e) => counters.record(&e),
            }
        }
        let _ = parse_ct(&bytes);
        let _ = parse_exp(&bytes);
        prop_assert!(counters.malformed <= bytes.len() as u64);
    }

    #[test]
    fn mutated_messages_never_panic(
        f in flow(false),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        // Valid messages with a few bytes changed reach the deep checks.
        let mut buf = [0u8; 1024];
        let n = emit_ct(&mut buf, Op::New, Flags::NONE, 1, &f, &EmitOpts::default()).unwrap();
        let b = &mut buf[..n];
        for (i, v) in flips {
            b[i % n] = v;
        }
        for m in Datagram::new(b).flatten() {
            let _ = m.decode();
            let _ = m.data();
        }
    }
}
