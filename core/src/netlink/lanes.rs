//! Lanes (`General { Lanes N }`): which of the daemon's N threads owns a
//! flow. The lane is a hash of the original tuple's addresses and ports,
//! computed the same way by the kernel — a classic-BPF program on each
//! lane's event socket keeps that lane's share of the events — and here,
//! for everything else (dumps, commands). Expectations follow their
//! master: an expectation event's `CTA_EXPECT_MASTER` has the same type
//! number and layout as a conntrack event's `CTA_TUPLE_ORIG`, so the same
//! program hashes it. A message with neither hashes to 0 and goes to lane
//! 0 whatever N is.
//!
//! The hash: XOR of the address words (big-endian 32-bit words, as
//! `BPF_W` loads them; four per IPv6 address), the source port shifted
//! left 16 and the destination port (ICMP tuples have no ports), then
//! mixed (`h ^= h >> 16; h *= 0x45d9f3b; h ^= h >> 16`), modulo N.

use super::bpf::{self, Insn, AD_NLATTR, AD_NLATTR_NEST};
use super::ct::cta;
use crate::flow::Tuple;

/// Most lanes a daemon runs.
pub const MAX_LANES: u32 = 64;

const MIX: u32 = 0x045d_9f3b;

fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(MIX);
    h ^ (h >> 16)
}

fn addr_words(a: std::net::IpAddr) -> u32 {
    match a {
        std::net::IpAddr::V4(v) => u32::from_be_bytes(v.octets()),
        std::net::IpAddr::V6(v) => {
            let o = v.octets();
            (0..4).fold(0, |h, w| {
                h ^ u32::from_be_bytes([o[4 * w], o[4 * w + 1], o[4 * w + 2], o[4 * w + 3]])
            })
        }
    }
}

/// The unmixed hash of an original tuple (or an expectation's master).
pub fn tuple_hash(t: &Tuple) -> u32 {
    let mut h = 0;
    if let Some(a) = t.src {
        h ^= addr_words(a);
    }
    if let Some(a) = t.dst {
        h ^= addr_words(a);
    }
    if let Some(p) = t.src_port {
        h ^= (p as u32) << 16;
    }
    if let Some(p) = t.dst_port {
        h ^= p as u32;
    }
    h
}

/// The lane (0..n) of a flow whose original tuple is `t`; 0 without one.
pub fn lane_of(t: Option<&Tuple>, n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    mix(t.map(tuple_hash).unwrap_or(0)) % n
}

// Opcodes the lane program adds to those of `bpf`.
pub const ST: u16 = 0x02; // BPF_ST
pub const LD_MEM: u16 = 0x60; // BPF_LD | BPF_MEM
pub const LDX_MEM: u16 = 0x61; // BPF_LDX | BPF_MEM
pub const LD_H_IND: u16 = 0x48; // BPF_LD | BPF_H | BPF_IND
pub const ALU_XOR_X: u16 = 0xac; // BPF_ALU | BPF_XOR | BPF_X
pub const ALU_LSH_K: u16 = 0x64; // BPF_ALU | BPF_LSH | BPF_K
pub const ALU_RSH_K: u16 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub const ALU_MUL_K: u16 = 0x24; // BPF_ALU | BPF_MUL | BPF_K
pub const ALU_MOD_K: u16 = 0x94; // BPF_ALU | BPF_MOD | BPF_K

/// Offset of the first attribute: nlmsghdr (16) + nfgenmsg (4).
const PAYLOAD: u32 = 20;
const NLA_HDR: u32 = 4;
/// Scratch memory: the hash, an attribute's offset, and those of the
/// original tuple, its IP part and its protocol part (each looked up
/// once).
const M_HASH: u32 = 0;
const M_OFF: u32 = 1;
const M_ORIG: u32 = 2;
const M_IP: u32 = 3;
const M_PROTO: u32 = 4;

fn op(p: &mut Vec<Insn>, code: u16, k: u32) {
    p.push(bpf::stmt(code, k));
}

/// `if A == 0 goto <patched>`: returns its index.
fn jz(p: &mut Vec<Insn>) -> usize {
    p.push(Insn {
        code: bpf::JEQ_K,
        jt: 0,
        jf: 0,
        k: 0,
    });
    p.len() - 1
}

/// Points the taken branch of the `jz`s at the current end.
fn land(p: &mut [Insn], jumps: &[usize]) {
    let end = p.len();
    for &j in jumps {
        let d = end - j - 1;
        assert!(d <= u8::MAX as usize, "a lane program jump beyond 255");
        p[j].jt = d as u8;
    }
}

/// `A = nested attribute `ty` inside the one at M[parent]`.
fn nested(p: &mut Vec<Insn>, parent: u32, ty: u16) {
    op(p, LD_MEM, parent);
    op(p, bpf::LDX_IMM, ty as u32);
    op(p, bpf::LD_B_ABS, AD_NLATTR_NEST);
}

/// `A = word at off + k; M[hash] ^= A` (the offset from M[M_OFF]).
fn xor_word(p: &mut Vec<Insn>, k: u32, shift: u32, half: bool) {
    op(p, LDX_MEM, M_OFF);
    op(p, if half { LD_H_IND } else { bpf::LD_W_IND }, k);
    if shift > 0 {
        op(p, ALU_LSH_K, shift);
    }
    op(p, LDX_MEM, M_HASH);
    op(p, ALU_XOR_X, 0);
    op(p, ST, M_HASH);
}

/// The program that accepts the messages of lane `lane` of `n` (n >= 2).
/// Each attribute is looked up once (the original tuple, its IP and
/// protocol parts, then their members), as the kernel scans attributes
/// linearly for every lookup.
pub fn program(lane: u32, n: u32) -> Vec<Insn> {
    let mut p = Vec::new();
    op(&mut p, bpf::LD_IMM, 0);
    op(&mut p, ST, M_HASH);
    // the original tuple (an expectation's master); none: hash 0
    op(&mut p, bpf::LD_IMM, PAYLOAD);
    op(&mut p, bpf::LDX_IMM, cta::TUPLE_ORIG as u32);
    op(&mut p, bpf::LD_B_ABS, AD_NLATTR);
    let no_orig = jz(&mut p);
    op(&mut p, ST, M_ORIG);
    // addresses
    nested(&mut p, M_ORIG, cta::TUPLE_IP);
    let no_ip = jz(&mut p);
    op(&mut p, ST, M_IP);
    for (ty, words) in [
        (cta::IP_V4_SRC, 1),
        (cta::IP_V4_DST, 1),
        (cta::IP_V6_SRC, 4),
        (cta::IP_V6_DST, 4),
    ] {
        nested(&mut p, M_IP, ty);
        let missing = jz(&mut p);
        op(&mut p, ST, M_OFF);
        for w in 0..words {
            xor_word(&mut p, NLA_HDR + 4 * w, 0, false);
        }
        land(&mut p, &[missing]);
    }
    land(&mut p, &[no_ip]);
    // ports
    nested(&mut p, M_ORIG, cta::TUPLE_PROTO);
    let no_proto = jz(&mut p);
    op(&mut p, ST, M_PROTO);
    for (ty, shift) in [(cta::PROTO_SRC_PORT, 16), (cta::PROTO_DST_PORT, 0)] {
        nested(&mut p, M_PROTO, ty);
        let missing = jz(&mut p);
        op(&mut p, ST, M_OFF);
        xor_word(&mut p, NLA_HDR, shift, true);
        land(&mut p, &[missing]);
    }
    land(&mut p, &[no_orig, no_proto]);
    // mix, modulo, verdict
    op(&mut p, LD_MEM, M_HASH);
    op(&mut p, bpf::TAX, 0);
    op(&mut p, ALU_RSH_K, 16);
    op(&mut p, ALU_XOR_X, 0);
    op(&mut p, ALU_MUL_K, MIX);
    op(&mut p, bpf::TAX, 0);
    op(&mut p, ALU_RSH_K, 16);
    op(&mut p, ALU_XOR_X, 0);
    op(&mut p, ALU_MOD_K, n);
    p.push(Insn {
        code: bpf::JEQ_K,
        jt: 0,
        jf: 1,
        k: lane,
    });
    op(&mut p, bpf::RET_K, u32::MAX);
    op(&mut p, bpf::RET_K, 0);
    p
}

/// The `Filter` program followed by the lane program: where the filter
/// accepts, the lane decides.
pub fn compose(filter: &[Insn], lane: &[Insn]) -> Result<Vec<Insn>, bpf::BpfError> {
    let mut p: Vec<Insn> = filter.to_vec();
    let start = p.len();
    for (i, insn) in p.iter_mut().enumerate() {
        if insn.code == bpf::RET_K && insn.k != 0 {
            *insn = Insn {
                code: bpf::JA,
                jt: 0,
                jf: 0,
                k: (start - i - 1) as u32,
            };
        }
    }
    p.extend_from_slice(lane);
    if p.len() > bpf::MAX_INSNS {
        return Err(bpf::BpfError::TooLong(p.len()));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn one_lane_is_lane_zero_and_lanes_spread() {
        let t = |i: u32| Tuple {
            src: Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))),
            dst: Some(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9))),
            l4proto: Some(17),
            src_port: Some(1000 + i as u16),
            dst_port: Some(53),
            ..Tuple::default()
        };
        assert_eq!(lane_of(Some(&t(1)), 1), 0);
        assert_eq!(lane_of(None, 4), 0);
        let mut per = [0u32; 4];
        for i in 0..4000 {
            per[lane_of(Some(&t(i)), 4) as usize] += 1;
        }
        for n in per {
            assert!((800..1200).contains(&n), "{per:?}");
        }
    }
}
