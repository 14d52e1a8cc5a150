//! Expectation messages (types EXP_NEW / EXP_UPD / EXP_DEL): their TLVs
//! (`enum nta_exp_attr`) decoded into an [`Expect`] (`msg2exp`) and an
//! [`Expect`] encoded as conntrackd 1.4.7's `exp2msg` does
//! (upstream-facts §4.2, §4.3).
//!
//! Encoding order: master addresses (IPv4 or IPv6), MASTER_L4PROTO
//! (always), MASTER_PORT; expected addresses, EXPECT_L4PROTO (always),
//! EXPECT_PORT; mask addresses, MASK_L4PROTO (always), MASK_PORT; TIMEOUT
//! (if set and no `CommitTimeout`); FLAGS (always, 0 when absent); CLASS
//! (if set); when `nat.tuple` is set: NAT_IPV4 (IPv4 addresses only),
//! NAT_L4PROTO, NAT_PORT, NAT_DIR (0 when absent); HELPER_NAME; FN. Every
//! `*_PORT` is sent exactly when the MASTER's protocol is TCP, UDP, SCTP
//! or DCCP (0 for a missing port). Names longer than the receiver accepts
//! (helper 11 bytes, function 27 bytes) are left out.
//!
//! Decoding sets `family` from the master addresses, `master`, `tuple`,
//! `mask` (each only when one of its TLVs is present), `timeout`, `flags`,
//! `class`, `nat` (`tuple` from NAT_IPV4 / NAT_L4PROTO / NAT_PORT, `dir`
//! from NAT_DIR), `helper` and `func`.

use ct_core::flow::*;

use super::attr::{emit_message, walk, AttrWriter, Size};
use super::ct::{arr, be32, has_ports, put_addrs, put_ports, set_addrs, set_ports, EmitOpts};
use super::error::{EmitError, PayloadError};
use super::header::{Flags, MsgType, Op};

/// `enum nta_exp_attr`.
pub mod nta_exp {
    pub const MASTER_IPV4: u16 = 0;
    pub const MASTER_IPV6: u16 = 1;
    pub const MASTER_L4PROTO: u16 = 2;
    pub const MASTER_PORT: u16 = 3;
    pub const EXPECT_IPV4: u16 = 4;
    pub const EXPECT_IPV6: u16 = 5;
    pub const EXPECT_L4PROTO: u16 = 6;
    pub const EXPECT_PORT: u16 = 7;
    pub const MASK_IPV4: u16 = 8;
    pub const MASK_IPV6: u16 = 9;
    pub const MASK_L4PROTO: u16 = 10;
    pub const MASK_PORT: u16 = 11;
    pub const TIMEOUT: u16 = 12;
    pub const FLAGS: u16 = 13;
    pub const CLASS: u16 = 14;
    pub const NAT_IPV4: u16 = 15;
    pub const NAT_PORT: u16 = 16;
    pub const NAT_L4PROTO: u16 = 17;
    pub const NAT_DIR: u16 = 18;
    pub const HELPER_NAME: u16 = 19;
    pub const FN: u16 = 20;
    /// Types at or above this reject the message.
    pub const MAX: u16 = 21;
}

/// Receive-side `nta_len` rule per type, indexed by type.
pub const EXP_SIZES: [Size; nta_exp::MAX as usize] = [
    Size::Exact(12), // MASTER_IPV4
    Size::Exact(36), // MASTER_IPV6
    Size::Exact(5),  // MASTER_L4PROTO
    Size::Exact(8),  // MASTER_PORT
    Size::Exact(12), // EXPECT_IPV4
    Size::Exact(36), // EXPECT_IPV6
    Size::Exact(5),  // EXPECT_L4PROTO
    Size::Exact(8),  // EXPECT_PORT
    Size::Exact(12), // MASK_IPV4
    Size::Exact(36), // MASK_IPV6
    Size::Exact(5),  // MASK_L4PROTO
    Size::Exact(8),  // MASK_PORT
    Size::Exact(8),  // TIMEOUT
    Size::Exact(8),  // FLAGS
    Size::Exact(8),  // CLASS
    Size::Exact(12), // NAT_IPV4
    Size::Exact(8),  // NAT_PORT
    Size::Exact(5),  // NAT_L4PROTO
    Size::Exact(8),  // NAT_DIR
    Size::Max(16),   // HELPER_NAME
    Size::Max(32),   // FN
];

/// Longest helper name a 1.4.7 receiver accepts.
pub const EXP_HELPER_MAX: usize = 11;
/// Longest expectation function name a 1.4.7 receiver accepts.
pub const EXP_FN_MAX: usize = 27;

/// Decodes the attributes of an expectation message (the bytes after the
/// 8-byte header).
pub fn parse_exp(payload: &[u8]) -> Result<Expect, PayloadError> {
    use nta_exp as n;
    let mut e = Expect::default();
    let mut master = Tuple::default();
    let mut tuple = Tuple::default();
    let mut mask = Tuple::default();
    let mut nat_tuple = Tuple::default();
    let mut nat_dir = None;
    walk(payload, &EXP_SIZES, |ty, p| {
        let u8v = || arr::<1>(p, 0)[0];
        match ty {
            n::MASTER_IPV4 | n::MASTER_IPV6 => {
                let six = ty == n::MASTER_IPV6;
                set_addrs(&mut master, p, six);
                e.family = if six { AF_INET6 } else { AF_INET };
            }
            n::MASTER_L4PROTO => master.l4proto = Some(u8v()),
            n::MASTER_PORT => set_ports(&mut master, p),
            n::EXPECT_IPV4 => set_addrs(&mut tuple, p, false),
            n::EXPECT_IPV6 => set_addrs(&mut tuple, p, true),
            n::EXPECT_L4PROTO => tuple.l4proto = Some(u8v()),
            n::EXPECT_PORT => set_ports(&mut tuple, p),
            n::MASK_IPV4 => set_addrs(&mut mask, p, false),
            n::MASK_IPV6 => set_addrs(&mut mask, p, true),
            n::MASK_L4PROTO => mask.l4proto = Some(u8v()),
            n::MASK_PORT => set_ports(&mut mask, p),
            n::TIMEOUT => e.timeout = Some(be32(p, 0)),
            n::FLAGS => e.flags = Some(be32(p, 0)),
            n::CLASS => e.class = Some(be32(p, 0)),
            n::NAT_IPV4 => set_addrs(&mut nat_tuple, p, false),
            n::NAT_PORT => set_ports(&mut nat_tuple, p),
            n::NAT_L4PROTO => nat_tuple.l4proto = Some(u8v()),
            n::NAT_DIR => nat_dir = Some(be32(p, 0)),
            n::HELPER_NAME => e.helper = Some(ShortStr::from_c_bytes(p)),
            n::FN => e.func = Some(ShortStr::from_c_bytes(p)),
            _ => {}
        }
    })?;
    let some = |t: Tuple| (!t.is_empty()).then_some(t);
    e.master = some(master);
    e.tuple = some(tuple);
    e.mask = some(mask);
    if !nat_tuple.is_empty() || nat_dir.is_some() {
        e.nat = Some(ExpectNat {
            dir: nat_dir,
            tuple: some(nat_tuple),
        });
    }
    Ok(e)
}

/// Writes the attributes of an expectation message for `e`.
pub fn emit_exp_attrs(w: &mut AttrWriter, e: &Expect, opts: &EmitOpts) {
    use nta_exp as n;
    let master = e.master.unwrap_or_default();
    let l4 = master.l4proto.unwrap_or(0);
    let ports = has_ports(l4);
    let part = |w: &mut AttrWriter, t: &Tuple, ty4: u16, ty6: u16, tyl4: u16, typort: u16| {
        put_addrs(w, t, ty4, ty6);
        w.u8(tyl4, t.l4proto.unwrap_or(0));
        if ports {
            put_ports(w, typort, t);
        }
    };
    part(
        w,
        &master,
        n::MASTER_IPV4,
        n::MASTER_IPV6,
        n::MASTER_L4PROTO,
        n::MASTER_PORT,
    );
    let tuple = e.tuple.unwrap_or_default();
    part(
        w,
        &tuple,
        n::EXPECT_IPV4,
        n::EXPECT_IPV6,
        n::EXPECT_L4PROTO,
        n::EXPECT_PORT,
    );
    let mask = e.mask.unwrap_or_default();
    part(
        w,
        &mask,
        n::MASK_IPV4,
        n::MASK_IPV6,
        n::MASK_L4PROTO,
        n::MASK_PORT,
    );
    if let Some(t) = e.timeout.filter(|_| !opts.commit_timeout) {
        w.be32(n::TIMEOUT, t);
    }
    w.be32(n::FLAGS, e.flags.unwrap_or(0));
    if let Some(c) = e.class {
        w.be32(n::CLASS, c);
    }
    if let Some(nat) = e.nat {
        if let Some(t) = nat.tuple {
            // exp2msg only knows the IPv4 NAT attribute.
            if let (Some(std::net::IpAddr::V4(s)), Some(std::net::IpAddr::V4(d))) = (t.src, t.dst) {
                w.attr_parts(n::NAT_IPV4, &[&s.octets(), &d.octets()]);
            }
            w.u8(n::NAT_L4PROTO, t.l4proto.unwrap_or(0));
            if ports {
                put_ports(w, n::NAT_PORT, &t);
            }
            w.be32(n::NAT_DIR, nat.dir.unwrap_or(0));
        }
    }
    if let Some(h) = e.helper.filter(|h| h.as_str().len() <= EXP_HELPER_MAX) {
        w.cstr(n::HELPER_NAME, h.as_str());
    }
    if let Some(f) = e.func.filter(|f| f.as_str().len() <= EXP_FN_MAX) {
        w.cstr(n::FN, f.as_str());
    }
}

/// The expectation flag that makes an EXP_DEL a withdrawal
/// ([`Op::Withdraw`], as [`WITHDRAWN_STATUS`](super::ct::WITHDRAWN_STATUS)
/// for a conntrack): the top bit, far above the kernel's `NF_CT_EXPECT_*`
/// flags (1, 2 and 4), so never an expectation of a dump or an event.
/// conntrackd 1.4.x deletes by tuple and ignores it.
pub const EXP_WITHDRAWN_FLAG: u32 = 1 << 31;

/// A received expectation message's operation: an EXP_DEL whose flags
/// carry [`EXP_WITHDRAWN_FLAG`] is a withdrawal, the bit taken off.
pub fn exp_withdrawn(op: Op, e: &mut Expect) -> Op {
    match e.flags {
        Some(f) if op == Op::Delete && f & EXP_WITHDRAWN_FLAG != 0 => {
            e.flags = Some(f & !EXP_WITHDRAWN_FLAG);
            Op::Withdraw
        }
        _ => op,
    }
}

/// Writes a whole expectation message at the start of `buf`; returns its
/// length (a withdrawal: an EXP_DEL with [`EXP_WITHDRAWN_FLAG`] in its
/// flags).
pub fn emit_exp(
    buf: &mut [u8],
    op: Op,
    flags: Flags,
    seq: u32,
    exp: &Expect,
    opts: &EmitOpts,
) -> Result<usize, EmitError> {
    if op == Op::Withdraw {
        let mut marked = *exp;
        marked.flags = Some(exp.flags.unwrap_or(0) | EXP_WITHDRAWN_FLAG);
        return emit_message(buf, MsgType::exp(op), flags, seq, |w| {
            emit_exp_attrs(w, &marked, opts)
        });
    }
    emit_message(buf, MsgType::exp(op), flags, seq, |w| {
        emit_exp_attrs(w, exp, opts)
    })
}
