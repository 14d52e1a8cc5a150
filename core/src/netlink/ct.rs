//! Conntrack messages: decoding the attributes of an `IPCTNL_MSG_CT_*`
//! message into a [`Flow`], and encoding a [`Flow`] back into attributes
//! in the order libnetfilter_conntrack uses (so that requests are the same
//! bytes the C tool sends, attribute for attribute).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attr::{Attr, Attrs};
use super::writer::Writer;
use super::NlError;
use crate::flow::*;
use crate::proto::{IPPROTO_ICMP, IPPROTO_ICMPV6};

/// Top-level conntrack attributes (`enum ctattr_type`).
pub mod cta {
    pub const TUPLE_ORIG: u16 = 1;
    pub const TUPLE_REPLY: u16 = 2;
    pub const STATUS: u16 = 3;
    pub const PROTOINFO: u16 = 4;
    pub const HELP: u16 = 5;
    pub const NAT_SRC: u16 = 6;
    pub const TIMEOUT: u16 = 7;
    pub const MARK: u16 = 8;
    pub const COUNTERS_ORIG: u16 = 9;
    pub const COUNTERS_REPLY: u16 = 10;
    pub const USE: u16 = 11;
    pub const ID: u16 = 12;
    pub const NAT_DST: u16 = 13;
    pub const TUPLE_MASTER: u16 = 14;
    pub const SEQ_ADJ_ORIG: u16 = 15;
    pub const SEQ_ADJ_REPLY: u16 = 16;
    pub const SECMARK: u16 = 17;
    pub const ZONE: u16 = 18;
    pub const SECCTX: u16 = 19;
    pub const TIMESTAMP: u16 = 20;
    pub const MARK_MASK: u16 = 21;
    pub const LABELS: u16 = 22;
    pub const LABELS_MASK: u16 = 23;
    pub const SYNPROXY: u16 = 24;
    pub const FILTER: u16 = 25;
    pub const STATUS_MASK: u16 = 26;
    pub const TIMESTAMP_EVENT: u16 = 27;

    pub const TUPLE_IP: u16 = 1;
    pub const TUPLE_PROTO: u16 = 2;
    pub const TUPLE_ZONE: u16 = 3;

    pub const IP_V4_SRC: u16 = 1;
    pub const IP_V4_DST: u16 = 2;
    pub const IP_V6_SRC: u16 = 3;
    pub const IP_V6_DST: u16 = 4;

    pub const PROTO_NUM: u16 = 1;
    pub const PROTO_SRC_PORT: u16 = 2;
    pub const PROTO_DST_PORT: u16 = 3;
    pub const PROTO_ICMP_ID: u16 = 4;
    pub const PROTO_ICMP_TYPE: u16 = 5;
    pub const PROTO_ICMP_CODE: u16 = 6;
    pub const PROTO_ICMPV6_ID: u16 = 7;
    pub const PROTO_ICMPV6_TYPE: u16 = 8;
    pub const PROTO_ICMPV6_CODE: u16 = 9;

    pub const PROTOINFO_TCP: u16 = 1;
    pub const PROTOINFO_DCCP: u16 = 2;
    pub const PROTOINFO_SCTP: u16 = 3;

    pub const TCP_STATE: u16 = 1;
    pub const TCP_WSCALE_ORIGINAL: u16 = 2;
    pub const TCP_WSCALE_REPLY: u16 = 3;
    pub const TCP_FLAGS_ORIGINAL: u16 = 4;
    pub const TCP_FLAGS_REPLY: u16 = 5;

    pub const DCCP_STATE: u16 = 1;
    pub const DCCP_ROLE: u16 = 2;
    pub const DCCP_HANDSHAKE_SEQ: u16 = 3;

    pub const SCTP_STATE: u16 = 1;
    pub const SCTP_VTAG_ORIGINAL: u16 = 2;
    pub const SCTP_VTAG_REPLY: u16 = 3;

    pub const COUNTERS_PACKETS: u16 = 1;
    pub const COUNTERS_BYTES: u16 = 2;
    pub const COUNTERS32_PACKETS: u16 = 3;
    pub const COUNTERS32_BYTES: u16 = 4;

    pub const NAT_V4_MINIP: u16 = 1;
    pub const NAT_V4_MAXIP: u16 = 2;
    pub const NAT_PROTO: u16 = 3;
    pub const NAT_V6_MINIP: u16 = 4;
    pub const NAT_V6_MAXIP: u16 = 5;
    pub const PROTONAT_PORT_MIN: u16 = 1;
    pub const PROTONAT_PORT_MAX: u16 = 2;

    pub const SEQADJ_CORRECTION_POS: u16 = 1;
    pub const SEQADJ_OFFSET_BEFORE: u16 = 2;
    pub const SEQADJ_OFFSET_AFTER: u16 = 3;

    pub const HELP_NAME: u16 = 1;
    pub const SECCTX_NAME: u16 = 1;
    pub const TIMESTAMP_START: u16 = 1;
    pub const TIMESTAMP_STOP: u16 = 2;

    pub const SYNPROXY_ISN: u16 = 1;
    pub const SYNPROXY_ITS: u16 = 2;
    pub const SYNPROXY_TSOFF: u16 = 3;
}

fn v4(a: &Attr) -> Result<IpAddr, NlError> {
    Ok(IpAddr::V4(Ipv4Addr::from(a.array::<4>()?)))
}
fn v6(a: &Attr) -> Result<IpAddr, NlError> {
    Ok(IpAddr::V6(Ipv6Addr::from(a.array::<16>()?)))
}

/// Decodes a tuple nest (CTA_TUPLE_ORIG/REPLY/MASTER, or an expectation's
/// tuple/mask/master).
pub fn parse_tuple(attrs: Attrs) -> Result<Tuple, NlError> {
    let mut t = Tuple::default();
    for a in attrs {
        let a = a?;
        match a.ty {
            cta::TUPLE_IP => {
                for ip in a.nested() {
                    let ip = ip?;
                    match ip.ty {
                        cta::IP_V4_SRC => t.src = Some(v4(&ip)?),
                        cta::IP_V4_DST => t.dst = Some(v4(&ip)?),
                        cta::IP_V6_SRC => t.src = Some(v6(&ip)?),
                        cta::IP_V6_DST => t.dst = Some(v6(&ip)?),
                        _ => {}
                    }
                }
            }
            cta::TUPLE_PROTO => {
                for p in a.nested() {
                    let p = p?;
                    match p.ty {
                        cta::PROTO_NUM => t.l4proto = Some(p.u8()?),
                        cta::PROTO_SRC_PORT => t.src_port = Some(p.be16()?),
                        cta::PROTO_DST_PORT => t.dst_port = Some(p.be16()?),
                        cta::PROTO_ICMP_ID | cta::PROTO_ICMPV6_ID => t.icmp_id = Some(p.be16()?),
                        cta::PROTO_ICMP_TYPE | cta::PROTO_ICMPV6_TYPE => {
                            t.icmp_type = Some(p.u8()?)
                        }
                        cta::PROTO_ICMP_CODE | cta::PROTO_ICMPV6_CODE => {
                            t.icmp_code = Some(p.u8()?)
                        }
                        _ => {}
                    }
                }
            }
            cta::TUPLE_ZONE => t.zone = Some(a.be16()?),
            _ => {}
        }
    }
    Ok(t)
}

fn parse_protoinfo(attrs: Attrs) -> Result<ProtoInfo, NlError> {
    let mut pi = ProtoInfo::default();
    for a in attrs {
        let a = a?;
        match a.ty {
            cta::PROTOINFO_TCP => {
                let mut t = TcpInfo::default();
                for x in a.nested() {
                    let x = x?;
                    match x.ty {
                        cta::TCP_STATE => t.state = Some(x.u8()?),
                        cta::TCP_WSCALE_ORIGINAL => t.wscale_orig = Some(x.u8()?),
                        cta::TCP_WSCALE_REPLY => t.wscale_reply = Some(x.u8()?),
                        cta::TCP_FLAGS_ORIGINAL => {
                            let f = x.array::<2>()?;
                            t.flags_orig = Some((f[0], f[1]));
                        }
                        cta::TCP_FLAGS_REPLY => {
                            let f = x.array::<2>()?;
                            t.flags_reply = Some((f[0], f[1]));
                        }
                        _ => {}
                    }
                }
                pi.tcp = Some(t);
            }
            cta::PROTOINFO_SCTP => {
                let mut s = SctpInfo::default();
                for x in a.nested() {
                    let x = x?;
                    match x.ty {
                        cta::SCTP_STATE => s.state = Some(x.u8()?),
                        cta::SCTP_VTAG_ORIGINAL => s.vtag_orig = Some(x.be32()?),
                        cta::SCTP_VTAG_REPLY => s.vtag_reply = Some(x.be32()?),
                        _ => {}
                    }
                }
                pi.sctp = Some(s);
            }
            cta::PROTOINFO_DCCP => {
                let mut d = DccpInfo::default();
                for x in a.nested() {
                    let x = x?;
                    match x.ty {
                        cta::DCCP_STATE => d.state = Some(x.u8()?),
                        cta::DCCP_ROLE => d.role = Some(x.u8()?),
                        cta::DCCP_HANDSHAKE_SEQ => d.handshake_seq = Some(x.be64()?),
                        _ => {}
                    }
                }
                pi.dccp = Some(d);
            }
            _ => {}
        }
    }
    Ok(pi)
}

fn parse_counters(attrs: Attrs) -> Result<Counters, NlError> {
    let mut c = Counters::default();
    for a in attrs {
        let a = a?;
        match a.ty {
            cta::COUNTERS_PACKETS => c.packets = Some(a.be64()?),
            cta::COUNTERS_BYTES => c.bytes = Some(a.be64()?),
            cta::COUNTERS32_PACKETS => c.packets = Some(a.be32()? as u64),
            cta::COUNTERS32_BYTES => c.bytes = Some(a.be32()? as u64),
            _ => {}
        }
    }
    Ok(c)
}

fn parse_nat(attrs: Attrs) -> Result<Nat, NlError> {
    let mut n = Nat::default();
    for a in attrs {
        let a = a?;
        match a.ty {
            cta::NAT_V4_MINIP => n.min_ip = Some(v4(&a)?),
            cta::NAT_V4_MAXIP => n.max_ip = Some(v4(&a)?),
            cta::NAT_V6_MINIP => n.min_ip = Some(v6(&a)?),
            cta::NAT_V6_MAXIP => n.max_ip = Some(v6(&a)?),
            cta::NAT_PROTO => {
                for p in a.nested() {
                    let p = p?;
                    match p.ty {
                        cta::PROTONAT_PORT_MIN => n.min_port = Some(p.be16()?),
                        cta::PROTONAT_PORT_MAX => n.max_port = Some(p.be16()?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(n)
}

fn parse_seqadj(attrs: Attrs) -> Result<SeqAdj, NlError> {
    let mut s = SeqAdj::default();
    for a in attrs {
        let a = a?;
        match a.ty {
            cta::SEQADJ_CORRECTION_POS => s.correction_pos = Some(a.be32()?),
            cta::SEQADJ_OFFSET_BEFORE => s.offset_before = Some(a.be32()?),
            cta::SEQADJ_OFFSET_AFTER => s.offset_after = Some(a.be32()?),
            _ => {}
        }
    }
    Ok(s)
}

/// Decodes the attributes of a conntrack message into `f` (which is reset
/// first). `family` is the message's nfgenmsg family.
pub fn parse_flow_into(f: &mut Flow, family: u8, attrs: Attrs) -> Result<(), NlError> {
    f.clear();
    f.family = family;
    for a in attrs {
        let a = a?;
        match a.ty {
            cta::TUPLE_ORIG => f.orig = Some(parse_tuple(a.nested())?),
            cta::TUPLE_REPLY => f.reply = Some(parse_tuple(a.nested())?),
            cta::TUPLE_MASTER => f.master = Some(parse_tuple(a.nested())?),
            cta::STATUS => f.status = Some(a.be32()?),
            cta::PROTOINFO => f.protoinfo = Some(parse_protoinfo(a.nested())?),
            cta::HELP => {
                for h in a.nested() {
                    let h = h?;
                    if h.ty == cta::HELP_NAME {
                        f.helper = Some(ShortStr::from_c_bytes(h.payload));
                    }
                }
            }
            cta::NAT_SRC => f.nat_src = Some(parse_nat(a.nested())?),
            cta::NAT_DST => f.nat_dst = Some(parse_nat(a.nested())?),
            cta::TIMEOUT => f.timeout = Some(a.be32()?),
            cta::MARK => f.mark = Some(a.be32()?),
            cta::MARK_MASK => f.mark_mask = Some(a.be32()?),
            cta::COUNTERS_ORIG => f.counters_orig = Some(parse_counters(a.nested())?),
            cta::COUNTERS_REPLY => f.counters_reply = Some(parse_counters(a.nested())?),
            cta::USE => f.use_count = Some(a.be32()?),
            cta::ID => f.id = Some(a.be32()?),
            cta::SEQ_ADJ_ORIG => f.seq_adj_orig = Some(parse_seqadj(a.nested())?),
            cta::SEQ_ADJ_REPLY => f.seq_adj_reply = Some(parse_seqadj(a.nested())?),
            cta::SECMARK => f.secmark = Some(a.be32()?),
            cta::ZONE => f.zone = Some(a.be16()?),
            cta::SECCTX => {
                for s in a.nested() {
                    let s = s?;
                    if s.ty == cta::SECCTX_NAME {
                        f.secctx = Some(CtxStr::from_c_bytes(s.payload));
                    }
                }
            }
            cta::TIMESTAMP => {
                let mut ts = Timestamp::default();
                for t in a.nested() {
                    let t = t?;
                    match t.ty {
                        cta::TIMESTAMP_START => ts.start = Some(t.be64()?),
                        cta::TIMESTAMP_STOP => ts.stop = Some(t.be64()?),
                        _ => {}
                    }
                }
                f.timestamp = Some(ts);
            }
            cta::LABELS => f.labels = Labels::from_bytes(a.payload),
            cta::LABELS_MASK => f.labels_mask = Labels::from_bytes(a.payload),
            cta::SYNPROXY => {
                let mut s = Synproxy::default();
                for x in a.nested() {
                    let x = x?;
                    match x.ty {
                        cta::SYNPROXY_ISN => s.isn = Some(x.be32()?),
                        cta::SYNPROXY_ITS => s.its = Some(x.be32()?),
                        cta::SYNPROXY_TSOFF => s.tsoff = Some(x.be32()?),
                        _ => {}
                    }
                }
                f.synproxy = Some(s);
            }
            cta::STATUS_MASK => f.status_mask = Some(a.be32()?),
            cta::TIMESTAMP_EVENT => f.timestamp_event = Some(a.be64()?),
            _ => {}
        }
    }
    Ok(())
}

/// Decodes a conntrack message's attributes into a new [`Flow`].
pub fn parse_flow(family: u8, attrs: Attrs) -> Result<Flow, NlError> {
    let mut f = Flow::default();
    parse_flow_into(&mut f, family, attrs)?;
    Ok(f)
}

fn put_addr(w: &mut Writer, ty4: u16, ty6: u16, a: IpAddr) {
    match a {
        IpAddr::V4(a) => w.bytes(ty4, &a.octets()),
        IpAddr::V6(a) => w.bytes(ty6, &a.octets()),
    }
}

/// Encodes a tuple nest of type `ty` (libnetfilter_conntrack order: IP
/// nest src/dst, PROTO nest, TUPLE_ZONE).
pub fn emit_tuple(w: &mut Writer, ty: u16, t: &Tuple) {
    let n = w.begin_nest(ty);
    if t.src.is_some() || t.dst.is_some() {
        let ip = w.begin_nest(cta::TUPLE_IP);
        if let Some(a) = t.src {
            put_addr(w, cta::IP_V4_SRC, cta::IP_V6_SRC, a);
        }
        if let Some(a) = t.dst {
            put_addr(w, cta::IP_V4_DST, cta::IP_V6_DST, a);
        }
        w.end_nest(ip);
    }
    if t.l4proto.is_some()
        || t.src_port.is_some()
        || t.dst_port.is_some()
        || t.icmp_type.is_some()
        || t.icmp_code.is_some()
        || t.icmp_id.is_some()
    {
        let p = w.begin_nest(cta::TUPLE_PROTO);
        if let Some(n) = t.l4proto {
            w.u8(cta::PROTO_NUM, n);
        }
        if let Some(v) = t.src_port {
            w.be16(cta::PROTO_SRC_PORT, v);
        }
        if let Some(v) = t.dst_port {
            w.be16(cta::PROTO_DST_PORT, v);
        }
        let (ty_t, ty_c, ty_i) = if t.l4proto == Some(IPPROTO_ICMPV6) {
            (
                cta::PROTO_ICMPV6_TYPE,
                cta::PROTO_ICMPV6_CODE,
                cta::PROTO_ICMPV6_ID,
            )
        } else {
            let _ = IPPROTO_ICMP;
            (
                cta::PROTO_ICMP_TYPE,
                cta::PROTO_ICMP_CODE,
                cta::PROTO_ICMP_ID,
            )
        };
        if let Some(v) = t.icmp_code {
            w.u8(ty_c, v);
        }
        if let Some(v) = t.icmp_type {
            w.u8(ty_t, v);
        }
        if let Some(v) = t.icmp_id {
            w.be16(ty_i, v);
        }
        w.end_nest(p);
    }
    if let Some(z) = t.zone {
        w.be16(cta::TUPLE_ZONE, z);
    }
    w.end_nest(n);
}

fn emit_nat(w: &mut Writer, ty: u16, n: &Nat) {
    let nest = w.begin_nest(ty);
    if let Some(a) = n.min_ip {
        put_addr(w, cta::NAT_V4_MINIP, cta::NAT_V6_MINIP, a);
    }
    if let Some(a) = n.max_ip {
        put_addr(w, cta::NAT_V4_MAXIP, cta::NAT_V6_MAXIP, a);
    }
    if n.min_port.is_some() || n.max_port.is_some() {
        let p = w.begin_nest(cta::NAT_PROTO);
        if let Some(v) = n.min_port {
            w.be16(cta::PROTONAT_PORT_MIN, v);
        }
        if let Some(v) = n.max_port {
            w.be16(cta::PROTONAT_PORT_MAX, v);
        }
        w.end_nest(p);
    }
    w.end_nest(nest);
}

fn emit_seqadj(w: &mut Writer, ty: u16, s: &SeqAdj) {
    let n = w.begin_nest(ty);
    if let Some(v) = s.correction_pos {
        w.be32(cta::SEQADJ_CORRECTION_POS, v);
    }
    if let Some(v) = s.offset_before {
        w.be32(cta::SEQADJ_OFFSET_BEFORE, v);
    }
    if let Some(v) = s.offset_after {
        w.be32(cta::SEQADJ_OFFSET_AFTER, v);
    }
    w.end_nest(n);
}

fn emit_counters(w: &mut Writer, ty: u16, c: &Counters) {
    let n = w.begin_nest(ty);
    if let Some(v) = c.packets {
        w.be64(cta::COUNTERS_PACKETS, v);
    }
    if let Some(v) = c.bytes {
        w.be64(cta::COUNTERS_BYTES, v);
    }
    w.end_nest(n);
}

fn emit_protoinfo(w: &mut Writer, pi: &ProtoInfo) {
    let n = w.begin_nest(cta::PROTOINFO);
    if let Some(t) = pi.tcp {
        let x = w.begin_nest(cta::PROTOINFO_TCP);
        if let Some(v) = t.state {
            w.u8(cta::TCP_STATE, v);
        }
        if let Some(v) = t.wscale_orig {
            w.u8(cta::TCP_WSCALE_ORIGINAL, v);
        }
        if let Some(v) = t.wscale_reply {
            w.u8(cta::TCP_WSCALE_REPLY, v);
        }
        if let Some((f, m)) = t.flags_orig {
            w.bytes(cta::TCP_FLAGS_ORIGINAL, &[f, m]);
        }
        if let Some((f, m)) = t.flags_reply {
            w.bytes(cta::TCP_FLAGS_REPLY, &[f, m]);
        }
        w.end_nest(x);
    }
    if let Some(s) = pi.sctp {
        let x = w.begin_nest(cta::PROTOINFO_SCTP);
        if let Some(v) = s.state {
            w.u8(cta::SCTP_STATE, v);
        }
        if let Some(v) = s.vtag_orig {
            w.be32(cta::SCTP_VTAG_ORIGINAL, v);
        }
        if let Some(v) = s.vtag_reply {
            w.be32(cta::SCTP_VTAG_REPLY, v);
        }
        w.end_nest(x);
    }
    if let Some(d) = pi.dccp {
        let x = w.begin_nest(cta::PROTOINFO_DCCP);
        if let Some(v) = d.state {
            w.u8(cta::DCCP_STATE, v);
        }
        if let Some(v) = d.role {
            w.u8(cta::DCCP_ROLE, v);
        }
        if let Some(v) = d.handshake_seq {
            w.be64(cta::DCCP_HANDSHAKE_SEQ, v);
        }
        w.end_nest(x);
    }
    w.end_nest(n);
}

/// Encodes every present field of `f` as conntrack attributes: first the
/// fields libnetfilter_conntrack serialises, in its order, then the
/// read-only ones (counters, use, id, secctx, timestamps) so that a
/// decoded flow re-encodes completely. Requests should not carry the
/// read-only fields: see [`Flow::request_view`].
pub fn emit_flow(w: &mut Writer, f: &Flow) {
    if let Some(t) = &f.orig {
        emit_tuple(w, cta::TUPLE_ORIG, t);
    }
    if let Some(t) = &f.reply {
        emit_tuple(w, cta::TUPLE_REPLY, t);
    }
    if let Some(t) = &f.master {
        emit_tuple(w, cta::TUPLE_MASTER, t);
    }
    if let Some(v) = f.status {
        w.be32(cta::STATUS, v);
    }
    if let Some(v) = f.timeout {
        w.be32(cta::TIMEOUT, v);
    }
    if let Some(v) = f.mark {
        w.be32(cta::MARK, v);
    }
    if let Some(v) = f.secmark {
        w.be32(cta::SECMARK, v);
    }
    if let Some(pi) = &f.protoinfo {
        emit_protoinfo(w, pi);
    }
    if let Some(n) = &f.nat_src {
        emit_nat(w, cta::NAT_SRC, n);
    }
    if let Some(n) = &f.nat_dst {
        emit_nat(w, cta::NAT_DST, n);
    }
    if let Some(s) = &f.seq_adj_orig {
        emit_seqadj(w, cta::SEQ_ADJ_ORIG, s);
    }
    if let Some(s) = &f.seq_adj_reply {
        emit_seqadj(w, cta::SEQ_ADJ_REPLY, s);
    }
    if let Some(h) = &f.helper {
        let n = w.begin_nest(cta::HELP);
        w.cstr(cta::HELP_NAME, h.as_str());
        w.end_nest(n);
    }
    if let Some(z) = f.zone {
        w.be16(cta::ZONE, z);
    }
    if let Some(l) = &f.labels {
        w.bytes(cta::LABELS, l.as_bytes());
    }
    if let Some(l) = &f.labels_mask {
        w.bytes(cta::LABELS_MASK, l.as_bytes());
    }
    if let Some(s) = &f.synproxy {
        let n = w.begin_nest(cta::SYNPROXY);
        if let Some(v) = s.isn {
            w.be32(cta::SYNPROXY_ISN, v);
        }
        if let Some(v) = s.its {
            w.be32(cta::SYNPROXY_ITS, v);
        }
        if let Some(v) = s.tsoff {
            w.be32(cta::SYNPROXY_TSOFF, v);
        }
        w.end_nest(n);
    }
    if let Some(c) = &f.counters_orig {
        emit_counters(w, cta::COUNTERS_ORIG, c);
    }
    if let Some(c) = &f.counters_reply {
        emit_counters(w, cta::COUNTERS_REPLY, c);
    }
    if let Some(v) = f.use_count {
        w.be32(cta::USE, v);
    }
    if let Some(v) = f.id {
        w.be32(cta::ID, v);
    }
    if let Some(s) = &f.secctx {
        let n = w.begin_nest(cta::SECCTX);
        w.cstr(cta::SECCTX_NAME, s.as_str());
        w.end_nest(n);
    }
    if let Some(ts) = &f.timestamp {
        let n = w.begin_nest(cta::TIMESTAMP);
        if let Some(v) = ts.start {
            w.be64(cta::TIMESTAMP_START, v);
        }
        if let Some(v) = ts.stop {
            w.be64(cta::TIMESTAMP_STOP, v);
        }
        w.end_nest(n);
    }
    if let Some(v) = f.mark_mask {
        w.be32(cta::MARK_MASK, v);
    }
    if let Some(v) = f.status_mask {
        w.be32(cta::STATUS_MASK, v);
    }
    if let Some(v) = f.timestamp_event {
        w.be64(cta::TIMESTAMP_EVENT, v);
    }
}

impl Flow {
    /// The flow without the fields the kernel reports but a request must
    /// not carry (counters, use, id, secctx, timestamps, masks).
    pub fn request_view(&self) -> Flow {
        Flow {
            counters_orig: None,
            counters_reply: None,
            use_count: None,
            id: None,
            secctx: None,
            timestamp: None,
            mark_mask: None,
            status_mask: None,
            timestamp_event: None,
            ..*self
        }
    }
}
