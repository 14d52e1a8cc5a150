//! Conntrack messages (types CT_NEW / CT_UPD / CT_DEL): their TLVs
//! (`enum nta_attr`) decoded into a [`Flow`] (`msg2ct`) and a [`Flow`]
//! encoded exactly as conntrackd 1.4.7's `ct2msg` does (upstream-facts
//! §4.2, §4.3), except that UDP-Lite ports and GRE keys are sent too
//! (`NTA_PORT`, which 1.4.7 parses for any protocol; it sends neither).
//!
//! # What a decoded flow holds
//! `family` (from NTA_IPV4 / NTA_IPV6), the original tuple (addresses,
//! protocol, ports or ICMP type/code/id), `status`, `timeout`, `mark`,
//! `protoinfo` (TCP state and window scales, SCTP state and vtags, DCCP
//! state and role), the `master` tuple, `seq_adj_orig` / `seq_adj_reply`,
//! `helper`, `labels`, `synproxy` and `zone`.
//!
//! **NAT is decoded as reply-side information**: when any of NTA_SNAT_*,
//! NTA_DNAT_*, NTA_SPAT_PORT, NTA_DPAT_PORT is present, `reply` is set to
//! the inverted original tuple (addresses and ports swapped, same
//! protocol, no ICMP fields) with the SNAT address as `reply.dst`, the DNAT
//! address as `reply.src`, the SPAT port as `reply.dst_port` and the DPAT
//! port as `reply.src_port` — exactly the fields `ct2msg` took them from.
//! Without NAT TLVs `reply` stays `None`. This is the form the cache
//! records and the commit path (`Flow::is_snat` & co., then CTA_NAT_*)
//! already consume; `nat_src` / `nat_dst` are never set by decoding and
//! are ignored by encoding.
//!
//! # Encoding rules (`ct2msg`, in order)
//! 1. NTA_IPV4 / NTA_IPV6 when both original addresses are of that family;
//! 2. NTA_STATUS always (0 when absent); 3. NTA_L4PROTO always (0 when
//!    absent);
//! 4. TCP/UDP/SCTP/DCCP: NTA_PORT always (0 for a missing port); TCP with
//!    a state: NTA_TCP_STATE, and with [`EmitOpts::tcp_window_tracking`]
//!    the two window scales; SCTP with a state: state and both vtags; DCCP
//!    with a state: state and role; ICMP/ICMPv6 with a type: type, code and
//!    id; any other protocol (UDPlite, GRE, ...): nothing;
//! 5. NTA_TIMEOUT unless [`EmitOpts::commit_timeout`]; 6. NTA_MARK;
//! 7. master addresses, protocol and (if both are known) ports;
//! 8. NAT from the reply tuple, when present, under the `is_snat` /
//!    `is_dnat` / `is_spat` / `is_dpat` rules of `ct_core::flow::Flow`;
//! 9. NTA_NAT_SEQ_ADJ when all six values are known; 10. NTA_HELPER_NAME;
//! 11. NTA_LABELS when a bit is set (the whole bitmap, be32 words);
//! 12. NTA_SYNPROXY (its, isn, tsoff) when all three are known;
//! 13. NTA_ZONE.
//!
//! Deliberate differences from `ct2msg`: a helper name longer than 11
//! bytes is left out (1.4.7 would send it and every 1.4.7 peer would then
//! drop the whole message); NAT TLVs need the reply fields to be known
//! (libnetfilter_conntrack would send zeros for missing ones); the ICMP
//! quirk of `is_spat` comparing the ICMP type/code with the id is not
//! reproduced. Labels longer than [`LABELS_MAX`] bytes are truncated on
//! decode (kernels use 16).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ct_core::flow::*;
use ct_core::proto::*;

use super::attr::{emit_message, walk, AttrWriter, Size};
use super::error::{EmitError, PayloadError};
use super::header::{Flags, MsgType, Op};

/// `enum nta_attr`.
pub mod nta {
    pub const IPV4: u16 = 0;
    pub const IPV6: u16 = 1;
    pub const L4PROTO: u16 = 2;
    pub const PORT: u16 = 3;
    pub const TCP_STATE: u16 = 4;
    pub const STATUS: u16 = 5;
    pub const TIMEOUT: u16 = 6;
    pub const MARK: u16 = 7;
    pub const MASTER_IPV4: u16 = 8;
    pub const MASTER_IPV6: u16 = 9;
    pub const MASTER_L4PROTO: u16 = 10;
    pub const MASTER_PORT: u16 = 11;
    pub const SNAT_IPV4: u16 = 12;
    pub const DNAT_IPV4: u16 = 13;
    /// Little-endian on the wire (trap 1).
    pub const SPAT_PORT: u16 = 14;
    /// Little-endian on the wire (trap 1).
    pub const DPAT_PORT: u16 = 15;
    pub const NAT_SEQ_ADJ: u16 = 16;
    pub const SCTP_STATE: u16 = 17;
    pub const SCTP_VTAG_ORIG: u16 = 18;
    pub const SCTP_VTAG_REPL: u16 = 19;
    pub const DCCP_STATE: u16 = 20;
    pub const DCCP_ROLE: u16 = 21;
    pub const ICMP_TYPE: u16 = 22;
    pub const ICMP_CODE: u16 = 23;
    /// Little-endian on the wire (trap 1).
    pub const ICMP_ID: u16 = 24;
    pub const TCP_WSCALE_ORIG: u16 = 25;
    pub const TCP_WSCALE_REPL: u16 = 26;
    pub const HELPER_NAME: u16 = 27;
    pub const LABELS: u16 = 28;
    pub const SNAT_IPV6: u16 = 29;
    pub const DNAT_IPV6: u16 = 30;
    pub const SYNPROXY: u16 = 31;
    pub const ZONE: u16 = 32;
    /// Types at or above this reject the message.
    pub const MAX: u16 = 33;
}

/// Receive-side `nta_len` rule per type, indexed by type.
pub const CT_SIZES: [Size; nta::MAX as usize] = [
    Size::Exact(12),   // IPV4
    Size::Exact(36),   // IPV6
    Size::Exact(5),    // L4PROTO
    Size::Exact(8),    // PORT
    Size::Exact(5),    // TCP_STATE
    Size::Exact(8),    // STATUS
    Size::Exact(8),    // TIMEOUT
    Size::Exact(8),    // MARK
    Size::Exact(12),   // MASTER_IPV4
    Size::Exact(36),   // MASTER_IPV6
    Size::Exact(5),    // MASTER_L4PROTO
    Size::Exact(8),    // MASTER_PORT
    Size::Exact(8),    // SNAT_IPV4
    Size::Exact(8),    // DNAT_IPV4
    Size::Exact(6),    // SPAT_PORT
    Size::Exact(6),    // DPAT_PORT
    Size::Exact(28),   // NAT_SEQ_ADJ
    Size::Exact(5),    // SCTP_STATE
    Size::Exact(8),    // SCTP_VTAG_ORIG
    Size::Exact(8),    // SCTP_VTAG_REPL
    Size::Exact(5),    // DCCP_STATE
    Size::Exact(5),    // DCCP_ROLE
    Size::Exact(5),    // ICMP_TYPE
    Size::Exact(5),    // ICMP_CODE
    Size::Exact(6),    // ICMP_ID
    Size::Exact(5),    // TCP_WSCALE_ORIG
    Size::Exact(5),    // TCP_WSCALE_REPL
    Size::Max(16),     // HELPER_NAME
    Size::Words(1028), // LABELS
    Size::Exact(20),   // SNAT_IPV6
    Size::Exact(20),   // DNAT_IPV6
    Size::Exact(16),   // SYNPROXY
    Size::Exact(6),    // ZONE
];

/// Longest helper name a 1.4.7 receiver accepts (`nta_len` ≤ 16).
pub const HELPER_MAX: usize = 11;

/// Sender settings that change what `ct2msg` / `exp2msg` put in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EmitOpts {
    /// `CommitTimeout` is configured: NTA_TIMEOUT / NTA_EXP_TIMEOUT are
    /// not sent.
    pub commit_timeout: bool,
    /// `TCPWindowTracking on`: the TCP window scales are sent.
    pub tcp_window_tracking: bool,
}

/// Protocols whose ports are synced (`NTA_PORT`, `NTA_EXP_*_PORT`).
pub(crate) const fn has_ports(l4: u8) -> bool {
    matches!(l4, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_DCCP)
}

/// Protocols whose ports a conntrack message carries: 1.4.7's, plus
/// UDP-Lite's ports and GRE's keys (the kernel's tuple keeps both where
/// it keeps ports). 1.4.7 sends neither, and its backups commit such
/// flows with zeros; its parser takes `NTA_PORT` whatever the protocol,
/// so a 1.4.x backup of ours commits them right.
pub(crate) const fn sends_ports(l4: u8) -> bool {
    has_ports(l4) || matches!(l4, IPPROTO_UDPLITE | IPPROTO_GRE)
}

/// Copies the first `N` bytes of a payload the size table has already
/// validated (zeros if it is somehow shorter: never panics).
pub(crate) fn arr<const N: usize>(p: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = p.get(at..at + N) {
        a.copy_from_slice(s);
    }
    a
}

pub(crate) fn v4(p: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(arr::<4>(p, at)))
}

pub(crate) fn v6(p: &[u8], at: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(arr::<16>(p, at)))
}

pub(crate) fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(arr(p, at))
}

pub(crate) fn be32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(arr(p, at))
}

/// Sets src/dst from an address-pair payload (8 or 32 bytes).
pub(crate) fn set_addrs(t: &mut Tuple, p: &[u8], six: bool) {
    if six {
        t.src = Some(v6(p, 0));
        t.dst = Some(v6(p, 16));
    } else {
        t.src = Some(v4(p, 0));
        t.dst = Some(v4(p, 4));
    }
}

/// Sets both ports from a raw (network order) port-pair payload.
pub(crate) fn set_ports(t: &mut Tuple, p: &[u8]) {
    t.src_port = Some(be16(p, 0));
    t.dst_port = Some(be16(p, 2));
}

/// Writes an address pair with `ty4` or `ty6` when both addresses are of
/// the same family; returns whether something was written.
pub(crate) fn put_addrs(w: &mut AttrWriter, t: &Tuple, ty4: u16, ty6: u16) -> bool {
    match (t.src, t.dst) {
        (Some(IpAddr::V4(s)), Some(IpAddr::V4(d))) => {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&s.octets());
            b[4..].copy_from_slice(&d.octets());
            w.attr_arr(ty4, b);
            true
        }
        (Some(IpAddr::V6(s)), Some(IpAddr::V6(d))) => {
            let mut b = [0u8; 32];
            b[..16].copy_from_slice(&s.octets());
            b[16..].copy_from_slice(&d.octets());
            w.attr_arr(ty6, b);
            true
        }
        _ => false,
    }
}

/// Writes the raw port pair of a tuple (0 for a missing port).
pub(crate) fn put_ports(w: &mut AttrWriter, ty: u16, t: &Tuple) {
    let [s0, s1] = t.src_port.unwrap_or(0).to_be_bytes();
    let [d0, d1] = t.dst_port.unwrap_or(0).to_be_bytes();
    w.attr_arr(ty, [s0, s1, d0, d1]);
}

#[derive(Default)]
struct NatTlvs {
    snat: Option<IpAddr>,
    dnat: Option<IpAddr>,
    spat: Option<u16>,
    dpat: Option<u16>,
}

/// Decodes the attributes of a conntrack message (the bytes after the
/// 8-byte header) into a flow. See the module doc for what is set.
pub fn parse_ct(payload: &[u8]) -> Result<Flow, PayloadError> {
    let mut f = Flow::default();
    parse_ct_into(payload, &mut f)?;
    Ok(f)
}

/// [`parse_ct`] into a flow the caller reuses (cleared first): the
/// receive path decodes every message into the same one.
pub fn parse_ct_into(payload: &[u8], f: &mut Flow) -> Result<(), PayloadError> {
    f.clear();
    let mut orig = Tuple::default();
    let mut master = Tuple::default();
    let mut nat = NatTlvs::default();
    let mut tcp: Option<TcpInfo> = None;
    let mut sctp: Option<SctpInfo> = None;
    let mut dccp: Option<DccpInfo> = None;
    let mut adj = [0u32; 6];
    let mut has_adj = false;
    walk(payload, &CT_SIZES, |ty, p| match ty {
        nta::IPV4 | nta::IPV6 => {
            let six = ty == nta::IPV6;
            set_addrs(&mut orig, p, six);
            f.family = if six { AF_INET6 } else { AF_INET };
        }
        nta::L4PROTO => orig.l4proto = Some(arr::<1>(p, 0)[0]),
        nta::PORT => set_ports(&mut orig, p),
        nta::TCP_STATE => tcp.get_or_insert_with(Default::default).state = Some(arr::<1>(p, 0)[0]),
        nta::STATUS => f.status = Some(be32(p, 0)),
        nta::TIMEOUT => f.timeout = Some(be32(p, 0)),
        nta::MARK => f.mark = Some(be32(p, 0)),
        nta::MASTER_IPV4 => set_addrs(&mut master, p, false),
        nta::MASTER_IPV6 => set_addrs(&mut master, p, true),
        nta::MASTER_L4PROTO => master.l4proto = Some(arr::<1>(p, 0)[0]),
        nta::MASTER_PORT => set_ports(&mut master, p),
        nta::SNAT_IPV4 => nat.snat = Some(v4(p, 0)),
        nta::DNAT_IPV4 => nat.dnat = Some(v4(p, 0)),
        nta::SNAT_IPV6 => nat.snat = Some(v6(p, 0)),
        nta::DNAT_IPV6 => nat.dnat = Some(v6(p, 0)),
        nta::SPAT_PORT => nat.spat = Some(u16::from_le_bytes(arr(p, 0))),
        nta::DPAT_PORT => nat.dpat = Some(u16::from_le_bytes(arr(p, 0))),
        nta::NAT_SEQ_ADJ => {
            for (i, v) in adj.iter_mut().enumerate() {
                *v = be32(p, i * 4);
            }
            has_adj = true;
        }
        nta::SCTP_STATE => {
            sctp.get_or_insert_with(Default::default).state = Some(arr::<1>(p, 0)[0])
        }
        nta::SCTP_VTAG_ORIG => {
            sctp.get_or_insert_with(Default::default).vtag_orig = Some(be32(p, 0))
        }
        nta::SCTP_VTAG_REPL => {
            sctp.get_or_insert_with(Default::default).vtag_reply = Some(be32(p, 0))
        }
        nta::DCCP_STATE => {
            dccp.get_or_insert_with(Default::default).state = Some(arr::<1>(p, 0)[0])
        }
        nta::DCCP_ROLE => dccp.get_or_insert_with(Default::default).role = Some(arr::<1>(p, 0)[0]),
        nta::ICMP_TYPE => orig.icmp_type = Some(arr::<1>(p, 0)[0]),
        nta::ICMP_CODE => orig.icmp_code = Some(arr::<1>(p, 0)[0]),
        nta::ICMP_ID => orig.icmp_id = Some(u16::from_le_bytes(arr(p, 0))),
        nta::TCP_WSCALE_ORIG => {
            tcp.get_or_insert_with(Default::default).wscale_orig = Some(arr::<1>(p, 0)[0])
        }
        nta::TCP_WSCALE_REPL => {
            tcp.get_or_insert_with(Default::default).wscale_reply = Some(arr::<1>(p, 0)[0])
        }
        nta::HELPER_NAME => f.helper = Some(ShortStr::from_c_bytes(p)),
        nta::LABELS => f.labels = Some(labels_from_wire(p)),
        nta::SYNPROXY => {
            f.synproxy = Some(Synproxy {
                its: Some(be32(p, 0)),
                isn: Some(be32(p, 4)),
                tsoff: Some(be32(p, 8)),
            })
        }
        nta::ZONE => f.zone = Some(be16(p, 0)),
        _ => {}
    })?;
    if !orig.is_empty() {
        f.orig = Some(orig);
    }
    if !master.is_empty() {
        f.master = Some(master);
    }
    if tcp.is_some() || sctp.is_some() || dccp.is_some() {
        f.protoinfo = Some(ProtoInfo { tcp, sctp, dccp });
    }
    if has_adj {
        let sa = |a: &[u32]| SeqAdj {
            correction_pos: Some(a[0]),
            offset_before: Some(a[1]),
            offset_after: Some(a[2]),
        };
        f.seq_adj_orig = Some(sa(&adj[0..3]));
        f.seq_adj_reply = Some(sa(&adj[3..6]));
    }
    if nat.snat.is_some() || nat.dnat.is_some() || nat.spat.is_some() || nat.dpat.is_some() {
        f.reply = Some(Tuple {
            src: nat.dnat.or(orig.dst),
            dst: nat.snat.or(orig.src),
            l4proto: orig.l4proto,
            src_port: nat.dpat.or(orig.dst_port),
            dst_port: nat.spat.or(orig.src_port),
            ..Tuple::default()
        });
    }
    Ok(())
}

/// NTA_LABELS payload (be32 words) to the kernel's bitmap layout
/// (host-order words), truncated to [`LABELS_MAX`] bytes.
fn labels_from_wire(p: &[u8]) -> Labels {
    let mut b = [0u8; LABELS_MAX];
    let n = (p.len() / 4 * 4).min(LABELS_MAX);
    for i in (0..n).step_by(4) {
        let w = u32::from_be_bytes(arr(p, i));
        b[i..i + 4].copy_from_slice(&w.to_ne_bytes());
    }
    Labels::from_bytes(&b[..n]).unwrap_or_default()
}

/// The bitmap as be32 words (a trailing partial word is zero-filled);
/// returns the buffer and the byte count.
fn labels_to_wire(l: &Labels) -> ([u8; LABELS_MAX], usize) {
    let src = l.as_bytes();
    let mut out = [0u8; LABELS_MAX];
    let n = src.len().div_ceil(4) * 4;
    for i in (0..n).step_by(4) {
        let mut w = [0u8; 4];
        for (j, b) in w.iter_mut().enumerate() {
            *b = src.get(i + j).copied().unwrap_or(0);
        }
        out[i..i + 4].copy_from_slice(&u32::from_ne_bytes(w).to_be_bytes());
    }
    (out, n)
}

/// Writes the attributes of a conntrack message for `f` (the rules of the
/// module doc).
pub fn emit_ct_attrs(w: &mut AttrWriter, f: &Flow, opts: &EmitOpts) {
    // (a default built only for a flow without one)
    let none;
    let orig = match f.orig.as_ref() {
        Some(o) => o,
        None => {
            none = Tuple::default();
            &none
        }
    };
    put_addrs(w, orig, nta::IPV4, nta::IPV6);
    w.be32(nta::STATUS, f.status.unwrap_or(0));
    let l4 = f.l4proto().unwrap_or(0);
    w.u8(nta::L4PROTO, l4);
    let no_pi;
    let pi = match f.protoinfo.as_ref() {
        Some(p) => p,
        None => {
            no_pi = ProtoInfo::default();
            &no_pi
        }
    };
    if sends_ports(l4) {
        put_ports(w, nta::PORT, orig);
    }
    match l4 {
        IPPROTO_TCP => {
            if let Some(t) = pi.tcp.filter(|t| t.state.is_some()) {
                w.u8(nta::TCP_STATE, t.state.unwrap_or(0));
                if opts.tcp_window_tracking {
                    w.u8(nta::TCP_WSCALE_ORIG, t.wscale_orig.unwrap_or(0));
                    w.u8(nta::TCP_WSCALE_REPL, t.wscale_reply.unwrap_or(0));
                }
            }
        }
        IPPROTO_SCTP => {
            if let Some(s) = pi.sctp.filter(|s| s.state.is_some()) {
                w.u8(nta::SCTP_STATE, s.state.unwrap_or(0));
                w.be32(nta::SCTP_VTAG_ORIG, s.vtag_orig.unwrap_or(0));
                w.be32(nta::SCTP_VTAG_REPL, s.vtag_reply.unwrap_or(0));
            }
        }
        IPPROTO_DCCP => {
            if let Some(d) = pi.dccp.filter(|d| d.state.is_some()) {
                w.u8(nta::DCCP_STATE, d.state.unwrap_or(0));
                w.u8(nta::DCCP_ROLE, d.role.unwrap_or(0));
            }
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            if let Some(t) = orig.icmp_type {
                w.u8(nta::ICMP_TYPE, t);
                w.u8(nta::ICMP_CODE, orig.icmp_code.unwrap_or(0));
                w.le16(nta::ICMP_ID, orig.icmp_id.unwrap_or(0));
            }
        }
        _ => {}
    }
    if let Some(t) = f.timeout.filter(|_| !opts.commit_timeout) {
        w.be32(nta::TIMEOUT, t);
    }
    if let Some(m) = f.mark {
        w.be32(nta::MARK, m);
    }
    if let Some(m) = &f.master {
        if put_addrs(w, m, nta::MASTER_IPV4, nta::MASTER_IPV6) {
            w.u8(nta::MASTER_L4PROTO, m.l4proto.unwrap_or(0));
            if m.src_port.is_some() && m.dst_port.is_some() {
                put_ports(w, nta::MASTER_PORT, m);
            }
        }
    }
    emit_nat(w, f);
    if let (Some(o), Some(r)) = (f.seq_adj_orig, f.seq_adj_reply) {
        let v = [
            o.correction_pos,
            o.offset_before,
            o.offset_after,
            r.correction_pos,
            r.offset_before,
            r.offset_after,
        ];
        if v.iter().all(Option::is_some) {
            let mut b = [0u8; 24];
            for (i, x) in v.iter().enumerate() {
                b[i * 4..i * 4 + 4].copy_from_slice(&x.unwrap_or(0).to_be_bytes());
            }
            w.attr(nta::NAT_SEQ_ADJ, &b);
        }
    }
    if let Some(h) = f.helper.filter(|h| h.as_str().len() <= HELPER_MAX) {
        w.cstr(nta::HELPER_NAME, h.as_str());
    }
    if let Some(l) = f.labels.filter(|l| !l.is_clear()) {
        let (b, n) = labels_to_wire(&l);
        w.attr(nta::LABELS, &b[..n]);
    }
    if let Some(Synproxy {
        isn: Some(isn),
        its: Some(its),
        tsoff: Some(tsoff),
    }) = f.synproxy
    {
        w.attr_parts(
            nta::SYNPROXY,
            &[&its.to_be_bytes(), &isn.to_be_bytes(), &tsoff.to_be_bytes()],
        );
    }
    if let Some(z) = f.zone {
        w.be16(nta::ZONE, z);
    }
}

/// Step 8 of `ct2msg`: NAT TLVs derived from the reply tuple.
fn emit_nat(w: &mut AttrWriter, f: &Flow) {
    let Some(r) = f.reply.as_ref() else { return };
    let (snat, dnat) = match f.l3_family() {
        AF_INET => (nta::SNAT_IPV4, nta::DNAT_IPV4),
        AF_INET6 => (nta::SNAT_IPV6, nta::DNAT_IPV6),
        _ => return,
    };
    let put = |w: &mut AttrWriter, ty: u16, a: Option<IpAddr>| match a {
        Some(IpAddr::V4(a)) if ty == nta::SNAT_IPV4 || ty == nta::DNAT_IPV4 => {
            w.attr_arr(ty, a.octets())
        }
        Some(IpAddr::V6(a)) if ty == nta::SNAT_IPV6 || ty == nta::DNAT_IPV6 => {
            w.attr_arr(ty, a.octets())
        }
        _ => {}
    };
    if f.is_snat() {
        put(w, snat, r.dst);
    }
    if f.is_dnat() {
        put(w, dnat, r.src);
    }
    if let Some(p) = r.dst_port.filter(|_| f.is_spat()) {
        w.le16(nta::SPAT_PORT, p);
    }
    if let Some(p) = r.src_port.filter(|_| f.is_dpat()) {
        w.le16(nta::DPAT_PORT, p);
    }
}

/// The status bit that makes a DEL a withdrawal ([`Op::Withdraw`]):
/// `IPS_TEMPLATE`, which only the kernel's templates carry, never an entry
/// of its table (so never a flow of a dump or an event, nor a flow 1.4.x
/// sends). conntrackd 1.4.x deletes by tuple and ignores it.
pub const WITHDRAWN_STATUS: u32 = ct_core::proto::status::TEMPLATE;

/// A received conntrack message's operation: a DEL whose status carries
/// [`WITHDRAWN_STATUS`] is a withdrawal, the bit taken off the flow.
pub fn withdrawn(op: Op, f: &mut Flow) -> Op {
    match f.status {
        Some(s) if op == Op::Delete && s & WITHDRAWN_STATUS != 0 => {
            f.status = Some(s & !WITHDRAWN_STATUS);
            Op::Withdraw
        }
        _ => op,
    }
}

/// Writes a whole conntrack message (header + attributes) for `flow` at
/// the start of `buf`; returns its length (a withdrawal: a DEL with
/// [`WITHDRAWN_STATUS`] in its status).
pub fn emit_ct(
    buf: &mut [u8],
    op: Op,
    flags: Flags,
    seq: u32,
    flow: &Flow,
    opts: &EmitOpts,
) -> Result<usize, EmitError> {
    if op == Op::Withdraw {
        let mut marked = *flow;
        marked.status = Some(flow.status.unwrap_or(0) | WITHDRAWN_STATUS);
        return emit_message(buf, MsgType::ct(op), flags, seq, |w| {
            emit_ct_attrs(w, &marked, opts)
        });
    }
    emit_message(buf, MsgType::ct(op), flags, seq, |w| {
        emit_ct_attrs(w, flow, opts)
    })
}
