//! Property tests of the ctnetlink codec: any flow or expectation that is
//! emitted parses back to itself, and no byte string makes a parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ct_core::flow::*;
use ct_core::netlink::attr::Attrs;
use ct_core::netlink::ct::{emit_flow, parse_flow};
use ct_core::netlink::exp::{emit_expect, parse_expect};
use ct_core::netlink::msg::Messages;
use ct_core::netlink::stats::{parse_cpu_stats, parse_global_stats};
use ct_core::netlink::writer::Writer;
use proptest::prelude::*;

fn addr(v6: bool) -> impl Strategy<Value = IpAddr> {
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

prop_compose! {
    fn tuple()(v6 in any::<bool>())(
        src in proptest::option::of(addr(v6)),
        dst in proptest::option::of(addr(v6)),
        l4proto in proptest::option::of(any::<u8>()),
        src_port in proptest::option::of(any::<u16>()),
        dst_port in proptest::option::of(any::<u16>()),
        icmp_type in proptest::option::of(any::<u8>()),
        icmp_code in proptest::option::of(any::<u8>()),
        icmp_id in proptest::option::of(any::<u16>()),
        zone in proptest::option::of(any::<u16>()),
    ) -> Tuple {
        Tuple { src, dst, l4proto, src_port, dst_port, icmp_type, icmp_code, icmp_id, zone }
    }
}

fn name() -> impl Strategy<Value = ShortStr> {
    "[a-z0-9_-]{0,16}".prop_map(|s| ShortStr::new(&s))
}

prop_compose! {
    fn protoinfo()(
        tcp in proptest::option::of((
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<(u8, u8)>()),
            proptest::option::of(any::<(u8, u8)>()),
        )),
        sctp in proptest::option::of((
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        )),
        dccp in proptest::option::of((
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u64>()),
        )),
    ) -> ProtoInfo {
        ProtoInfo {
            tcp: tcp.map(|(state, wscale_orig, wscale_reply, flags_orig, flags_reply)| TcpInfo {
                state, wscale_orig, wscale_reply, flags_orig, flags_reply,
            }),
            sctp: sctp.map(|(state, vtag_orig, vtag_reply)| SctpInfo { state, vtag_orig, vtag_reply }),
            dccp: dccp.map(|(state, role, handshake_seq)| DccpInfo { state, role, handshake_seq }),
        }
    }
}

prop_compose! {
    fn nat()(v6 in any::<bool>())(
        min_ip in proptest::option::of(addr(v6)),
        max_ip in proptest::option::of(addr(v6)),
        min_port in proptest::option::of(any::<u16>()),
        max_port in proptest::option::of(any::<u16>()),
    ) -> Nat {
        Nat { min_ip, max_ip, min_port, max_port }
    }
}

fn opt32() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(any::<u32>())
}

fn labels() -> impl Strategy<Value = Labels> {
    proptest::collection::vec(any::<u8>(), 0..=LABELS_MAX)
        .prop_map(|v| Labels::from_bytes(&v).unwrap())
}

prop_compose! {
    fn flow()(
        family in any::<u8>(),
        orig in proptest::option::of(tuple()),
        reply in proptest::option::of(tuple()),
        master in proptest::option::of(tuple()),
        status in opt32(),
        pi in proptest::option::of(protoinfo()),
        helper in proptest::option::of(name()),
        nat_src in proptest::option::of(nat()),
        nat_dst in proptest::option::of(nat()),
        (timeout, mark, mark_mask, use_count, id, secmark) in (opt32(), opt32(), opt32(), opt32(), opt32(), opt32()),
        counters in proptest::option::of((proptest::option::of(any::<u64>()), proptest::option::of(any::<u64>()))),
        seq in proptest::option::of((opt32(), opt32(), opt32())),
        zone in proptest::option::of(any::<u16>()),
        secctx in proptest::option::of("[a-z_:]{0,40}"),
        ts in proptest::option::of((proptest::option::of(any::<u64>()), proptest::option::of(any::<u64>()))),
        (labels, labels_mask) in (proptest::option::of(labels()), proptest::option::of(labels())),
        syn in proptest::option::of((opt32(), opt32(), opt32())),
        (status_mask, timestamp_event) in (opt32(), proptest::option::of(any::<u64>())),
    ) -> Flow {
        Flow {
            family, orig, reply, master, status, protoinfo: pi, helper, nat_src, nat_dst,
            timeout, mark, mark_mask,
            counters_orig: counters.map(|(packets, bytes)| Counters { packets, bytes }),
            counters_reply: counters.map(|(packets, bytes)| Counters { packets: bytes, bytes: packets }),
            use_count, id,
            seq_adj_orig: seq.map(|(a, b, c)| SeqAdj { correction_pos: a, offset_before: b, offset_after: c }),
            seq_adj_reply: None,
            secmark, zone,
            secctx: secctx.map(|s| CtxStr::new(&s)),
            timestamp: ts.map(|(start, stop)| Timestamp { start, stop }),
            labels, labels_mask,
            synproxy: syn.map(|(isn, its, tsoff)| Synproxy { isn, its, tsoff }),
            status_mask, timestamp_event,
        }
    }
}

proptest! {
    #[test]
    fn flow_roundtrip(f in flow()) {
        let mut buf = Vec::new();
        emit_flow(&mut Writer::new(&mut buf), &f);
        let back = parse_flow(f.family, Attrs::new(&buf)).unwrap();
        prop_assert_eq!(back, f);
    }

    #[test]
    fn expect_roundtrip(
        master in proptest::option::of(tuple()),
        t in proptest::option::of(tuple()),
        mask in proptest::option::of(tuple()),
        (timeout, id, flags, class) in (opt32(), opt32(), opt32(), opt32()),
        helper in proptest::option::of(name()),
        func in proptest::option::of(name()),
        zone in proptest::option::of(any::<u16>()),
        nat in proptest::option::of((opt32(), proptest::option::of(tuple()))),
    ) {
        let e = Expect {
            family: 2, master, tuple: t, mask, timeout, id, helper, zone, flags, class,
            nat: nat.map(|(dir, tuple)| ExpectNat { dir, tuple }), func,
        };
        let mut buf = Vec::new();
        emit_expect(&mut Writer::new(&mut buf), &e);
        prop_assert_eq!(parse_expect(2, Attrs::new(&buf)).unwrap(), e);
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for m in Messages::new(&bytes).flatten() {
            let _ = m.error_code();
            if let Ok((g, attrs)) = m.nfgen() {
                let _ = parse_flow(g.family, attrs.clone());
                let _ = parse_expect(g.family, attrs.clone());
                let _ = parse_cpu_stats(g.res_id, attrs.clone());
                let _ = parse_global_stats(attrs);
            }
        }
        let _ = parse_flow(2, Attrs::new(&bytes));
        let _ = parse_expect(2, Attrs::new(&bytes));
    }
}
