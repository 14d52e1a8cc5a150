//! The flow cache: kernel-like flows survive the compact record
//! unchanged (for every attribute the cache keeps), and the cache behaves
//! like a map under random insert / update / remove sequences.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ct_core::flow::*;
use ct_core::table::{Cache, Key, ObjState, Record};
use proptest::prelude::*;

fn kernel_flow() -> impl Strategy<Value = Flow> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        prop_oneof![
            Just(6u8),
            Just(17),
            Just(1),
            Just(58),
            Just(132),
            Just(47),
            Just(200)
        ],
        any::<(u16, u16)>(),
        proptest::option::of(any::<([u8; 16], u16)>()),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        ),
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..10),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(v6, s, d, p, (sp, dp), nat, (status, timeout, mark, id), zone, st, ts)| {
                let ip = |b: [u8; 16]| {
                    if v6 {
                        IpAddr::V6(Ipv6Addr::from(b))
                    } else {
                        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                    }
                };
                let icmp = p == 1 || p == 58;
                let ports = matches!(p, 6 | 17 | 132 | 47);
                let mk = |src, dst, a: u16, b: u16, reply: bool| Tuple {
                    src: Some(src),
                    dst: Some(dst),
                    l4proto: Some(p),
                    src_port: ports.then_some(a),
                    dst_port: ports.then_some(b),
                    icmp_type: icmp.then_some(if reply { 0 } else { 8 }),
                    icmp_code: icmp.then_some(0),
                    icmp_id: icmp.then_some(a),
                    zone: None,
                };
                let orig = mk(ip(s), ip(d), sp, dp, false);
                let reply = match nat {
                    Some((n, np)) => mk(ip(n), ip(s), np, sp, true),
                    None => mk(ip(d), ip(s), if icmp { sp } else { dp }, sp, true),
                };
                Flow {
                    family: if v6 { AF_INET6 } else { AF_INET },
                    orig: Some(orig),
                    reply: Some(reply),
                    status: Some(status),
                    timeout: Some(timeout),
                    mark,
                    zone,
                    protoinfo: (p == 6).then_some(ProtoInfo {
                        tcp: Some(TcpInfo {
                            state: st,
                            wscale_orig: Some(7),
                            wscale_reply: Some(6),
                            flags_orig: Some((0x23, 0x23)),
                            flags_reply: Some((0x20, 0x20)),
                        }),
                        ..ProtoInfo::default()
                    }),
                    timestamp: ts.map(|t| Timestamp {
                        start: Some(t),
                        stop: None,
                    }),
                    id,
                    ..Flow::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn record_roundtrip(f in kernel_flow()) {
        let back = if f.family == AF_INET6 {
            Record::<[u8; 16]>::from_flow(&f, 1).unwrap().to_flow()
        } else {
            Record::<[u8; 4]>::from_flow(&f, 1).unwrap().to_flow()
        };
        prop_assert_eq!(back, f);
    }

    #[test]
    fn cache_is_a_map(ops in proptest::collection::vec((0u8..3, 0u16..40, any::<u32>()), 1..300)) {
        let mut cache = Cache::new(64, 30);
        let mut model: HashMap<u16, u32> = HashMap::new();
        for (op, port, mark) in ops {
            let f = Flow {
                family: AF_INET,
                orig: Some(Tuple {
                    src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                    dst: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
                    l4proto: Some(17),
                    src_port: Some(port),
                    dst_port: Some(53),
                    ..Tuple::default()
                }),
                mark: Some(mark),
                ..Flow::default()
            };
            match op {
                0 => {
                    let ok = cache.replace(&f, 0, 0);
                    if model.contains_key(&port) || model.len() < 30 {
                        prop_assert!(ok);
                        model.insert(port, mark);
                    } else {
                        prop_assert!(!ok, "limit must be enforced");
                    }
                }
                1 => {
                    let r = cache.upsert(&f, 0, 0);
                    if model.contains_key(&port) {
                        prop_assert_eq!(r, Some(ObjState::Alive));
                        model.insert(port, mark);
                    } else if model.len() < 30 {
                        prop_assert_eq!(r, Some(ObjState::New));
                        model.insert(port, mark);
                    } else {
                        prop_assert_eq!(r, None);
                    }
                }
                _ => {
                    let r = cache.remove(&f);
                    prop_assert_eq!(r.is_some(), model.remove(&port).is_some());
                }
            }
            prop_assert_eq!(cache.len(), model.len());
        }
        for (port, mark) in &model {
            let probe = Flow {
                family: AF_INET,
                orig: Some(Tuple {
                    src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                    dst: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
                    l4proto: Some(17),
                    src_port: Some(*port),
                    dst_port: Some(53),
                    ..Tuple::default()
                }),
                ..Flow::default()
            };
            let (got, _, _) = cache.get(&probe).unwrap();
            prop_assert_eq!(got.mark, Some(*mark));
            prop_assert!(Key::<[u8; 4]>::of(&probe).is_some());
        }
    }
}

#[test]
fn record_is_compact() {
    assert!(
        std::mem::size_of::<Record<[u8; 4]>>() <= 80,
        "{}",
        std::mem::size_of::<Record<[u8; 4]>>()
    );
}
