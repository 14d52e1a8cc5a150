//! The kernel-space filter (`netlink::bpf`) run in a small classic-BPF
//! interpreter that emulates the kernel's netlink attribute loads
//! (`SKF_AD_NLATTR`, `SKF_AD_NLATTR_NEST`), on ctnetlink event messages
//! encoded by our own emitter: for random filters and flows its verdict
//! equals a direct model of libnetfilter_conntrack's checks (and, with the
//! `origin` prefix, drops exactly the messages of our own port ids), every jump
//! lands inside the program, and long rule lists still compile.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ct_core::config::{
    AddressRule, Addresses, Filter, FilterPolicy, FilterSource, Ipv4Net, Ipv6Net, Rule, TcpState,
};
use ct_core::flow::{Flow, ProtoInfo, TcpInfo, Tuple, AF_INET, AF_INET6};
use ct_core::netlink::bpf::{self, Insn};
use ct_core::netlink::ct::emit_flow;
use ct_core::netlink::lanes;
use ct_core::netlink::origin;
use ct_core::netlink::writer::Writer;
use proptest::prelude::*;

const STATES: [TcpState; 9] = [
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::Established,
    TcpState::FinWait,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::TimeWait,
    TcpState::Close,
    TcpState::Listen,
];

/// `nla_find` over `data[from..]`: offset of the first attribute of type
/// `ty`, or 0.
fn nla_find(data: &[u8], mut at: usize, end: usize, ty: u32) -> u32 {
    while at + 4 <= end {
        let len = u16::from_ne_bytes([data[at], data[at + 1]]) as usize;
        let t = u16::from_ne_bytes([data[at + 2], data[at + 3]]) & 0x3fff;
        if len < 4 || at + len > end {
            return 0;
        }
        if t as u32 == ty {
            return at as u32;
        }
        at += (len + 3) & !3;
    }
    0
}

/// Runs a program over one message; returns the verdict.
fn run(prog: &[Insn], data: &[u8]) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let mut mem = [0u32; 16];
    let word = |o: usize| -> Option<u32> {
        data.get(o..o + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            bpf::LD_IMM => a = i.k,
            bpf::LDX_IMM => x = i.k,
            bpf::LD_B_ABS if i.k == bpf::AD_NLATTR => {
                let at = a as usize;
                a = if at + 4 > data.len() {
                    0
                } else {
                    nla_find(data, at, data.len(), x)
                };
            }
            bpf::LD_B_ABS if i.k == bpf::AD_NLATTR_NEST => {
                let at = a as usize;
                a = 0;
                if at + 4 <= data.len() {
                    let len = u16::from_ne_bytes([data[at], data[at + 1]]) as usize;
                    if at + len <= data.len() {
                        a = nla_find(data, at + 4, at + len, x);
                    }
                }
            }
            bpf::LD_B_ABS => match data.get(i.k as usize) {
                Some(&b) => a = b as u32,
                None => return 0,
            },
            bpf::LD_B_IND => match data.get((x + i.k) as usize) {
                Some(&b) => a = b as u32,
                None => return 0,
            },
            bpf::LD_W_IND => match word((x + i.k) as usize) {
                Some(w) => a = w,
                None => return 0,
            },
            bpf::LD_W_ABS => match word(i.k as usize) {
                Some(w) => a = w,
                None => return 0,
            },
            bpf::ALU_AND_K => a &= i.k,
            lanes::LD_H_IND => match data.get((x + i.k) as usize..(x + i.k) as usize + 2) {
                Some(b) => a = u16::from_be_bytes([b[0], b[1]]) as u32,
                None => return 0,
            },
            lanes::ST => mem[i.k as usize] = a,
            lanes::LD_MEM => a = mem[i.k as usize],
            lanes::LDX_MEM => x = mem[i.k as usize],
            lanes::ALU_XOR_X => a ^= x,
            lanes::ALU_LSH_K => a <<= i.k,
            lanes::ALU_RSH_K => a >>= i.k,
            lanes::ALU_MUL_K => a = a.wrapping_mul(i.k),
            lanes::ALU_MOD_K => a %= i.k,
            bpf::TAX => x = a,
            bpf::JA => pc += i.k as usize,
            bpf::JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
            bpf::RET_K => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
        assert!(pc < prog.len(), "fell off the program");
    }
}

fn message(f: &Flow) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf);
    // IPCTNL_MSG_CT_NEW of NFNL_SUBSYS_CTNETLINK, as an event
    let m = w.begin_msg(1 << 8, 0x0400 | 0x0200, 0, f.family, 0);
    emit_flow(&mut w, f);
    w.end_msg(m);
    buf
}

fn v4_hit(a: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let m = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
    u32::from(a) & m == u32::from(net) & m
}

fn v6_hit(a: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let m = u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0);
    u128::from(a) & m == u128::from(net) & m
}

/// libnetfilter_conntrack's checks for conntrackd, written directly.
fn model(f: &Filter, flow: &Flow) -> bool {
    let orig = flow.orig.unwrap_or_default();
    if let (Some(p), Some(proto)) = (&f.protocol, orig.l4proto) {
        // (a number above 255 is no bit of the library's map: no hit)
        if p.items.contains(&u32::from(proto)) != (p.kernel_policy == FilterPolicy::Accept) {
            return false;
        }
    }
    if let Some(r) = &f.address {
        let acc = r.kernel_policy == FilterPolicy::Accept;
        let ad = &r.addresses;
        for addr in [orig.src, orig.dst] {
            let hit = match addr {
                Some(IpAddr::V4(v)) if !(ad.ipv4.is_empty() && ad.ipv4_nets.is_empty()) => {
                    ad.ipv4.iter().any(|n| v4_hit(v, *n, 32))
                        || ad.ipv4_nets.iter().any(|n| v4_hit(v, n.addr, n.prefix))
                }
                Some(IpAddr::V6(v)) if !(ad.ipv6.is_empty() && ad.ipv6_nets.is_empty()) => {
                    ad.ipv6.iter().any(|n| v6_hit(v, *n, 128))
                        || ad.ipv6_nets.iter().any(|n| v6_hit(v, n.addr, n.prefix))
                }
                _ => continue,
            };
            if hit != acc {
                return false;
            }
        }
    }
    let state = flow.protoinfo.and_then(|p| p.tcp).and_then(|t| t.state);
    if let (Some(s), Some(st)) = (&f.state, state) {
        if s.items.iter().any(|x| *x as u8 == st) != (s.kernel_policy == FilterPolicy::Accept) {
            return false;
        }
    }
    true
}

fn policy() -> impl Strategy<Value = FilterPolicy> {
    prop_oneof![Just(FilterPolicy::Accept), Just(FilterPolicy::Ignore)]
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    (0u8..4, 0u8..4).prop_map(|(a, b)| Ipv4Addr::new(10, a, 0, b))
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    (0u16..4, 0u16..4).prop_map(|(a, b)| Ipv6Addr::new(0xfd00, a, 0, 0, 0, 0, 0, b))
}

fn filter() -> impl Strategy<Value = Filter> {
    let proto = proptest::option::of(
        (
            policy(),
            proptest::collection::vec(prop_oneof![Just(6u32), Just(17), Just(1), Just(262)], 1..3),
        )
            .prop_map(|(p, items)| Rule {
                policy: p,
                kernel_policy: p,
                items,
            }),
    );
    let addr = proptest::option::of(
        (
            policy(),
            proptest::collection::vec(v4(), 0..3),
            proptest::collection::vec((v4(), 0u8..32), 0..2),
            proptest::collection::vec(v6(), 0..3),
            proptest::collection::vec((v6(), 0u8..128), 0..2),
        )
            .prop_map(|(p, a4, n4, a6, n6)| AddressRule {
                policy: p,
                kernel_policy: p,
                addresses: Addresses {
                    ipv4: a4,
                    ipv4_nets: n4
                        .into_iter()
                        .map(|(addr, prefix)| Ipv4Net { addr, prefix })
                        .collect(),
                    ipv6: a6,
                    ipv6_nets: n6
                        .into_iter()
                        .map(|(addr, prefix)| Ipv6Net { addr, prefix })
                        .collect(),
                },
            }),
    );
    let state = proptest::option::of(
        (policy(), proptest::collection::vec(0usize..9, 1..4)).prop_map(|(p, ix)| Rule {
            policy: p,
            kernel_policy: p,
            items: ix.into_iter().map(|i| STATES[i]).collect(),
        }),
    );
    (proto, addr, state).prop_map(|(protocol, address, state)| Filter {
        source: FilterSource::Kernelspace,
        protocol,
        address,
        state,
    })
}

fn flow() -> impl Strategy<Value = Flow> {
    let addrs = prop_oneof![
        (v4(), v4()).prop_map(|(s, d)| (IpAddr::V4(s), IpAddr::V4(d))),
        (v6(), v6()).prop_map(|(s, d)| (IpAddr::V6(s), IpAddr::V6(d))),
    ];
    (
        addrs,
        prop_oneof![Just(6u8), Just(17), Just(1)],
        proptest::option::of(1u8..10),
    )
        .prop_map(|((s, d), proto, state)| {
            let t = |s, d| Tuple {
                src: Some(s),
                dst: Some(d),
                l4proto: Some(proto),
                src_port: (proto != 1).then_some(1000),
                dst_port: (proto != 1).then_some(80),
                icmp_type: (proto == 1).then_some(8),
                icmp_code: (proto == 1).then_some(0),
                icmp_id: (proto == 1).then_some(7),
                ..Tuple::default()
            };
            Flow {
                family: if s.is_ipv4() { AF_INET } else { AF_INET6 },
                orig: Some(t(s, d)),
                reply: Some(t(d, s)),
                status: Some(0xe),
                timeout: Some(30),
                protoinfo: state.filter(|_| proto == 6).map(|st| ProtoInfo {
                    tcp: Some(TcpInfo {
                        state: Some(st),
                        ..TcpInfo::default()
                    }),
                    ..ProtoInfo::default()
                }),
                ..Flow::default()
            }
        })
}

fn check_jumps(prog: &[Insn]) {
    for (pc, i) in prog.iter().enumerate() {
        let next = pc + 1;
        match i.code {
            bpf::JA => assert!(next + (i.k as usize) < prog.len(), "ja at {pc}"),
            bpf::JEQ_K => {
                assert!(next + (i.jt as usize) < prog.len(), "jt at {pc}");
                assert!(next + (i.jf as usize) < prog.len(), "jf at {pc}");
            }
            _ => {}
        }
    }
    assert_eq!(prog.last().unwrap().code, bpf::RET_K);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn verdict_matches_the_model(f in filter(), fl in flow()) {
        match bpf::compile(&f).unwrap() {
            None => prop_assert!(model(&f, &fl), "no program but the model rejects"),
            Some(prog) => {
                check_jumps(&prog);
                let got = run(&prog, &message(&fl)) != 0;
                prop_assert_eq!(got, model(&f, &fl), "{:?}\n{:?}", f, fl);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Lanes: the kernel's program keeps exactly the events whose lane,
    /// as the daemon computes it, is its own; composed after a filter, it
    /// keeps what both keep. Also for one lane syncing, and for a lane
    /// past the count (the lanes follow a peer with fewer: it gets none).
    #[test]
    fn lane_program_agrees_with_lane_of(f in filter(), fl in flow(), n in 1u32..9, sport in any::<u16>()) {
        let mut fl = fl;
        if let Some(t) = fl.orig.as_mut().filter(|t| t.src_port.is_some()) {
            t.src_port = Some(sport);
        }
        let want = lanes::lane_of(fl.orig.as_ref(), n);
        let msg = message(&fl);
        for lane in 0..n + 2 {
            let prog = lanes::program(lane, n);
            check_jumps(&prog);
            prop_assert_eq!(run(&prog, &msg) != 0, lane == want, "{:?}", fl);
            if let Some(fprog) = bpf::compile(&f).unwrap() {
                let both = lanes::compose(&fprog, &prog).unwrap();
                check_jumps(&both);
                prop_assert_eq!(run(&both, &msg) != 0, lane == want && model(&f, &fl));
            }
        }
    }
}

/// An expectation event goes to its master's lane (CTA_EXPECT_MASTER has
/// CTA_TUPLE_ORIG's number and layout); a message without a tuple to
/// lane 0.
#[test]
fn expectations_follow_their_master_and_the_rest_go_to_lane_0() {
    use ct_core::flow::Expect;
    use ct_core::netlink::exp::emit_expect;
    let master = Tuple {
        src: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
        dst: Some(IpAddr::V4(Ipv4Addr::new(10, 4, 5, 6))),
        l4proto: Some(6),
        src_port: Some(40000),
        dst_port: Some(21),
        ..Tuple::default()
    };
    let e = Expect {
        family: AF_INET,
        master: Some(master),
        tuple: Some(Tuple {
            src: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
            dst: Some(IpAddr::V4(Ipv4Addr::new(10, 4, 5, 6))),
            l4proto: Some(6),
            src_port: Some(0),
            dst_port: Some(5000),
            ..Tuple::default()
        }),
        mask: Some(Tuple::default()),
        timeout: Some(300),
        ..Expect::default()
    };
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf);
    let m = w.begin_msg(2 << 8, 0x0400 | 0x0200, 0, AF_INET, 0);
    emit_expect(&mut w, &e);
    w.end_msg(m);
    for n in 2..6 {
        let want = lanes::lane_of(Some(&master), n);
        for lane in 0..n {
            assert_eq!(run(&lanes::program(lane, n), &buf) != 0, lane == want);
        }
    }
    let mut empty = Vec::new();
    let mut w = Writer::new(&mut empty);
    let m = w.begin_msg(1 << 8, 0, 0, AF_INET, 0);
    w.end_msg(m);
    assert_ne!(run(&lanes::program(0, 3), &empty), 0);
    assert_eq!(run(&lanes::program(1, 3), &empty), 0);
}

#[test]
fn other_subsystems_pass() {
    let f = Filter {
        source: FilterSource::Kernelspace,
        protocol: Some(Rule {
            policy: FilterPolicy::Accept,
            kernel_policy: FilterPolicy::Accept,
            items: vec![6],
        }),
        address: None,
        state: None,
    };
    let prog = bpf::compile(&f).unwrap().unwrap();
    // an expectation event (NFNL_SUBSYS_CTNETLINK_EXP) without attributes
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf);
    let m = w.begin_msg(2 << 8, 0, 0, AF_INET, 0);
    w.end_msg(m);
    assert_ne!(run(&prog, &buf), 0);
}

#[test]
fn long_lists_compile_within_the_kernel_limit_or_say_so() {
    let many = |n: u32| Filter {
        source: FilterSource::Kernelspace,
        protocol: None,
        address: Some(AddressRule {
            policy: FilterPolicy::Ignore,
            kernel_policy: FilterPolicy::Ignore,
            addresses: Addresses {
                ipv4: (0..n).map(|i| Ipv4Addr::from(0x0a00_0000 + i)).collect(),
                ..Addresses::default()
            },
        }),
        state: None,
    };
    // 300 addresses: far beyond an 8-bit jump, still one program.
    let prog = bpf::compile(&many(300)).unwrap().unwrap();
    check_jumps(&prog);
    let mut fl = Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 20))), // the 277th
            dst: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            l4proto: Some(17),
            src_port: Some(1),
            dst_port: Some(2),
            ..Tuple::default()
        }),
        ..Flow::default()
    };
    assert_eq!(run(&prog, &message(&fl)), 0, "listed source ignored");
    fl.orig.as_mut().unwrap().src = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
    assert_ne!(run(&prog, &message(&fl)), 0, "unlisted passes");
    assert!(matches!(
        bpf::compile(&many(2000)),
        Err(bpf::BpfError::TooLong(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Our own sockets' events (the inject handle's): the prefix drops the
    /// messages whose sender port id is one of ours, and leaves the others
    /// to the filter and lane programs after it.
    #[test]
    fn own_port_ids_are_dropped_and_the_rest_decided_as_before(
        f in filter(),
        fl in flow(),
        own in proptest::collection::vec(any::<u32>(), 0..6),
        sender in any::<u32>(),
        pick in any::<proptest::sample::Index>(),
        n in 1u32..4,
    ) {
        // the sender: one of ours (when there are) or another process's
        let ours = !own.is_empty() && sender % 2 == 0;
        let pid = if ours { own[pick.index(own.len())] } else { sender | 1 };
        let ours = own.contains(&pid);
        let mut msg = message(&fl);
        msg[12..16].copy_from_slice(&pid.to_ne_bytes());
        let fprog = bpf::compile(&f).unwrap();
        let lane = lanes::program(0, n);
        let rests: Vec<(Option<Vec<Insn>>, bool)> = vec![
            (None, true),
            (fprog.clone(), fprog.is_none() || model(&f, &fl)),
            (Some(lane.clone()), lanes::lane_of(fl.orig.as_ref(), n) == 0),
        ];
        for (rest, keeps) in rests {
            let prog = origin::skip_own(&own, rest.as_deref()).unwrap();
            check_jumps(&prog);
            prop_assert_eq!(run(&prog, &msg) != 0, !ours && keeps, "own {:?} pid {}", own, pid);
        }
    }
}
