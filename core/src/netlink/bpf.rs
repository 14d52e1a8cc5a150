//! `Filter From Kernelspace`: conntrackd's `Filter { }` compiled into a
//! classic BPF socket filter for the ctnetlink event socket, so that the
//! kernel drops unwanted events before they are queued.
//!
//! The checks are those libnetfilter_conntrack's `nfct_filter` makes for
//! conntrackd 1.4.7, on the ORIGINAL tuple only:
//! - messages of other netlink subsystems pass;
//! - protocol: the L4 number against the `Protocol` items;
//! - addresses: every `Address` item is checked against orig.src AND
//!   against orig.dst (two separate checks, IPv4 and IPv6 apart), masked by
//!   its prefix;
//! - state: the TCP state against the `State` items.
//!
//! Each check uses the rule's kernel logic (Ignore: a hit rejects;
//! Accept: a miss rejects) and passes when the message lacks the
//! attribute it looks at (DESTROY events carry no TCP state, an IPv6 flow
//! no IPv4 address). Attributes are found with the kernel's netlink
//! helpers (`SKF_AD_NLATTR`, `SKF_AD_NLATTR_NEST`).
//!
//! Jumps are built so that every conditional offset is 0 or 1 and all
//! longer jumps are `ja` (32-bit), so any number of items fits the
//! 8-bit conditional offsets; the kernel's limit of 4096 instructions
//! then bounds the filter (≈ 300 IPv6 networks, ≈ 1000 IPv4 addresses).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ct::cta;
use super::msg::NFNL_SUBSYS_CTNETLINK;
use crate::config::{Filter, FilterPolicy};

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// An instruction without jumps (`BPF_STMT`).
pub const fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Most instructions the kernel takes (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

// Opcodes (linux/filter.h).
pub const LD_IMM: u16 = 0x00; // BPF_LD | BPF_IMM
pub const LDX_IMM: u16 = 0x01; // BPF_LDX | BPF_IMM
pub const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS (network order)
pub const LD_B_IND: u16 = 0x50; // BPF_LD | BPF_B | BPF_IND
pub const LD_W_IND: u16 = 0x40; // BPF_LD | BPF_W | BPF_IND
pub const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const TAX: u16 = 0x07; // BPF_MISC | BPF_TAX
pub const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Ancillary loads: `SKF_AD_OFF + SKF_AD_NLATTR` / `_NLATTR_NEST`.
pub const AD_NLATTR: u32 = (-0x1000i32 + 12) as u32;
pub const AD_NLATTR_NEST: u32 = (-0x1000i32 + 16) as u32;

/// Offset of the first attribute: nlmsghdr (16) + nfgenmsg (4).
const PAYLOAD: u32 = 20;
/// Size of an attribute header.
const NLA_HDR: u32 = 4;

/// Verdicts.
const ACCEPT: u32 = u32::MAX;
const REJECT: u32 = 0;

/// Why no filter could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BpfError {
    #[error("the kernel filter would need {0} instructions (at most {MAX_INSNS})")]
    TooLong(usize),
}

#[derive(Clone, Copy)]
enum Label {
    Continue(usize),
    Reject,
}

/// A program under construction: `ja` targets are labels until `finish`.
struct Asm {
    code: Vec<Insn>,
    /// (index of a `ja`, its label)
    fixups: Vec<(usize, Label)>,
    /// Position of each block's continuation, once known.
    conts: Vec<usize>,
}

impl Asm {
    fn op(&mut self, code: u16, k: u32) {
        self.code.push(stmt(code, k));
    }

    fn ja(&mut self, to: Label) {
        self.fixups.push((self.code.len(), to));
        self.op(JA, 0);
    }

    /// `if A == k goto to` (a taken compare falls onto the `ja`).
    fn jeq(&mut self, k: u32, to: Label) {
        self.code.push(Insn {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k,
        });
        self.ja(to);
    }

    fn new_block(&mut self) -> Label {
        self.conts.push(usize::MAX);
        Label::Continue(self.conts.len() - 1)
    }

    fn place(&mut self, l: Label) {
        if let Label::Continue(i) = l {
            self.conts[i] = self.code.len();
        }
    }

    /// Leaves in X the offset of the attribute at `path` inside the
    /// top-level attribute `top`; jumps to `missing` if any is absent.
    fn find(&mut self, top: u16, path: &[u16], missing: Label) {
        self.op(LD_IMM, PAYLOAD);
        self.op(LDX_IMM, top as u32);
        self.op(LD_B_ABS, AD_NLATTR);
        self.jeq(0, missing);
        for &ty in path {
            self.op(LDX_IMM, ty as u32);
            self.op(LD_B_ABS, AD_NLATTR_NEST);
            self.jeq(0, missing);
        }
        self.op(TAX, 0);
    }

    /// Ends a block whose item checks jump to `hit`: with Accept logic a
    /// miss rejects, with Ignore logic a hit does.
    fn end_block(&mut self, accept: bool, cont: Label) {
        if accept {
            self.ja(Label::Reject);
        }
        self.place(cont);
    }

    fn finish(mut self) -> Result<Vec<Insn>, BpfError> {
        self.op(RET_K, ACCEPT);
        let reject = self.code.len();
        self.op(RET_K, REJECT);
        if self.code.len() > MAX_INSNS {
            return Err(BpfError::TooLong(self.code.len()));
        }
        for (at, l) in std::mem::take(&mut self.fixups) {
            let to = match l {
                Label::Continue(i) => self.conts[i],
                Label::Reject => reject,
            };
            self.code[at].k = (to - at - 1) as u32;
        }
        Ok(self.code)
    }
}

/// The label an item hit jumps to: the block's end for Accept, the reject
/// for Ignore.
fn on_hit(accept: bool, cont: Label) -> Label {
    if accept {
        cont
    } else {
        Label::Reject
    }
}

fn v4_checks(a: &mut Asm, items: &[(Ipv4Addr, u8)], which: u16, accept: bool) {
    if items.is_empty() {
        return;
    }
    let cont = a.new_block();
    a.find(cta::TUPLE_ORIG, &[cta::TUPLE_IP, which], cont);
    for &(addr, prefix) in items {
        let mask = prefix_mask32(prefix);
        a.op(LD_W_IND, NLA_HDR);
        a.op(ALU_AND_K, mask);
        a.jeq(u32::from(addr) & mask, on_hit(accept, cont));
    }
    a.end_block(accept, cont);
}

fn v6_checks(a: &mut Asm, items: &[(Ipv6Addr, u8)], which: u16, accept: bool) {
    if items.is_empty() {
        return;
    }
    let cont = a.new_block();
    a.find(cta::TUPLE_ORIG, &[cta::TUPLE_IP, which], cont);
    for &(addr, prefix) in items {
        let m = u128::MAX
            .checked_shl(128 - prefix.min(128) as u32)
            .unwrap_or(0);
        let v = u128::from(addr) & m;
        // Four words; a mismatch skips the rest of this item (each word
        // is ld, and, jeq; the item ends with the hit's ja).
        for w in 0..4u32 {
            let shift = 96 - 32 * w;
            a.op(LD_W_IND, NLA_HDR + 4 * w);
            a.op(ALU_AND_K, (m >> shift) as u32);
            let last = w == 3;
            a.code.push(Insn {
                code: JEQ_K,
                jt: 0,
                jf: if last { 1 } else { (3 * (3 - w) + 1) as u8 },
                k: (v >> shift) as u32,
            });
        }
        a.ja(on_hit(accept, cont));
    }
    a.end_block(accept, cont);
}

fn prefix_mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - prefix.min(32) as u32)
        .unwrap_or(0)
}

/// Compiles the filter; `Ok(None)` when it checks nothing in the kernel.
pub fn compile(f: &Filter) -> Result<Option<Vec<Insn>>, BpfError> {
    let mut a = Asm {
        code: Vec::new(),
        fixups: Vec::new(),
        conts: Vec::new(),
    };
    // Other subsystems (expectations, errors) pass.
    a.op(LD_B_ABS, subsys_offset());
    a.code.push(Insn {
        code: JEQ_K,
        jt: 1,
        jf: 0,
        k: NFNL_SUBSYS_CTNETLINK as u32,
    });
    a.op(RET_K, ACCEPT);
    let header = a.code.len();

    if let Some(p) = f.protocol.as_ref().filter(|p| !p.items.is_empty()) {
        let accept = p.kernel_policy == FilterPolicy::Accept;
        let cont = a.new_block();
        a.find(cta::TUPLE_ORIG, &[cta::TUPLE_PROTO, cta::PROTO_NUM], cont);
        a.op(LD_B_IND, NLA_HDR);
        // (a number above 255 never equals the byte: 1.4.7's filter of
        // `mptcp`, 262, matches nothing either)
        for &proto in &p.items {
            a.jeq(proto, on_hit(accept, cont));
        }
        a.end_block(accept, cont);
    }
    if let Some(r) = &f.address {
        let accept = r.kernel_policy == FilterPolicy::Accept;
        let ad = &r.addresses;
        let v4: Vec<(Ipv4Addr, u8)> = ad
            .ipv4
            .iter()
            .map(|&x| (x, 32))
            .chain(ad.ipv4_nets.iter().map(|n| (n.addr, n.prefix)))
            .collect();
        let v6: Vec<(Ipv6Addr, u8)> = ad
            .ipv6
            .iter()
            .map(|&x| (x, 128))
            .chain(ad.ipv6_nets.iter().map(|n| (n.addr, n.prefix)))
            .collect();
        v4_checks(&mut a, &v4, cta::IP_V4_SRC, accept);
        v4_checks(&mut a, &v4, cta::IP_V4_DST, accept);
        v6_checks(&mut a, &v6, cta::IP_V6_SRC, accept);
        v6_checks(&mut a, &v6, cta::IP_V6_DST, accept);
    }
    if let Some(s) = f.state.as_ref().filter(|s| !s.items.is_empty()) {
        let accept = s.kernel_policy == FilterPolicy::Accept;
        let cont = a.new_block();
        a.find(cta::PROTOINFO, &[cta::PROTOINFO_TCP, cta::TCP_STATE], cont);
        a.op(LD_B_IND, NLA_HDR);
        for &st in &s.items {
            a.jeq(st as u32, on_hit(accept, cont));
        }
        a.end_block(accept, cont);
    }
    if a.code.len() == header {
        return Ok(None);
    }
    a.finish().map(Some)
}

/// Offset of the subsystem byte (the high byte of `nlmsg_type`, a
/// host-order u16 at offset 4).
fn subsys_offset() -> u32 {
    if cfg!(target_endian = "little") {
        5
    } else {
        4
    }
}
