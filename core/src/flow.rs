//! The flow model: a conntrack entry and an expectation as plain values.
//!
//! Every field is optional because ctnetlink is attribute-based: a field is
//! `Some` exactly when the kernel sent (or a request should carry) the
//! matching attribute. Output formats depend on presence, not only on
//! values, so presence is kept faithfully.
//!
//! All types are fixed-size (strings are stored inline), so a dump of a
//! large table decodes without allocating per entry.

use std::net::IpAddr;

/// Address families as used in `nfgenmsg.nfgen_family`.
pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// One direction of a connection: addresses, protocol and the L4 identity.
///
/// GRE keys travel in the port attributes (low 16 bits), so they live in
/// `src_port`/`dst_port` as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tuple {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub l4proto: Option<u8>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub icmp_id: Option<u16>,
    /// CTA_TUPLE_ZONE: zone of this direction.
    pub zone: Option<u16>,
}

impl Tuple {
    /// True when no field of the tuple is set.
    pub fn is_empty(&self) -> bool {
        *self == Tuple::default()
    }

    /// Layer-3 family implied by the addresses (AF_UNSPEC when none).
    pub fn family(&self) -> u8 {
        match self.src.or(self.dst) {
            Some(IpAddr::V4(_)) => AF_INET,
            Some(IpAddr::V6(_)) => AF_INET6,
            None => AF_UNSPEC,
        }
    }
}

/// TCP protocol information (CTA_PROTOINFO_TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfo {
    pub state: Option<u8>,
    pub wscale_orig: Option<u8>,
    pub wscale_reply: Option<u8>,
    /// `(flags, mask)` of the original direction.
    pub flags_orig: Option<(u8, u8)>,
    pub flags_reply: Option<(u8, u8)>,
}

/// SCTP protocol information (CTA_PROTOINFO_SCTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SctpInfo {
    pub state: Option<u8>,
    pub vtag_orig: Option<u32>,
    pub vtag_reply: Option<u32>,
}

/// DCCP protocol information (CTA_PROTOINFO_DCCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DccpInfo {
    pub state: Option<u8>,
    pub role: Option<u8>,
    pub handshake_seq: Option<u64>,
}

/// CTA_PROTOINFO: at most one of these is normally present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtoInfo {
    pub tcp: Option<TcpInfo>,
    pub sctp: Option<SctpInfo>,
    pub dccp: Option<DccpInfo>,
}

impl ProtoInfo {
    pub fn is_empty(&self) -> bool {
        self.tcp.is_none() && self.sctp.is_none() && self.dccp.is_none()
    }
}

/// Packet and byte counters of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

/// A NAT manipulation (CTA_NAT_SRC / CTA_NAT_DST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nat {
    pub min_ip: Option<IpAddr>,
    pub max_ip: Option<IpAddr>,
    pub min_port: Option<u16>,
    pub max_port: Option<u16>,
}

/// TCP sequence adjustment of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqAdj {
    pub correction_pos: Option<u32>,
    pub offset_before: Option<u32>,
    pub offset_after: Option<u32>,
}

/// Start/stop timestamps in nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    pub start: Option<u64>,
    pub stop: Option<u64>,
}

/// SYN proxy state (CTA_SYNPROXY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Synproxy {
    pub isn: Option<u32>,
    pub its: Option<u32>,
    pub tsoff: Option<u32>,
}

/// Maximum length of a label bitmap we keep (the kernel uses 16 bytes).
pub const LABELS_MAX: usize = 32;

/// A connection-label bitmap as the kernel sends it (host-order u32 words
/// in a byte array; bit `b` is bit `b % 32` of word `b / 32`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Labels {
    len: u8,
    bytes: [u8; LABELS_MAX],
}

impl Labels {
    /// Builds a bitmap from raw bytes; `None` when longer than [`LABELS_MAX`].
    pub fn from_bytes(b: &[u8]) -> Option<Labels> {
        if b.len() > LABELS_MAX {
            return None;
        }
        let mut l = Labels {
            len: b.len() as u8,
            bytes: [0; LABELS_MAX],
        };
        l.bytes[..b.len()].copy_from_slice(b);
        Some(l)
    }

    /// An all-zero bitmap of `len` bytes (clamped to [`LABELS_MAX`]).
    pub fn zeroed(len: usize) -> Labels {
        Labels {
            len: len.min(LABELS_MAX) as u8,
            bytes: [0; LABELS_MAX],
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn bits(&self) -> usize {
        self.len as usize * 8
    }

    fn word(&self, i: usize) -> u32 {
        let b = &self.bytes[i * 4..i * 4 + 4];
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Whether bit `bit` is set.
    pub fn get(&self, bit: usize) -> bool {
        if bit >= (self.len as usize / 4) * 32 {
            return false;
        }
        self.word(bit / 32) & (1 << (bit % 32)) != 0
    }

    /// Sets or clears bit `bit`; ignored past the end of the bitmap.
    pub fn set(&mut self, bit: usize, on: bool) {
        if bit >= (self.len as usize / 4) * 32 {
            return;
        }
        let i = bit / 32;
        let mut w = self.word(i);
        if on {
            w |= 1 << (bit % 32);
        } else {
            w &= !(1 << (bit % 32));
        }
        self.bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }

    /// True when no bit is set.
    pub fn is_clear(&self) -> bool {
        self.as_bytes().iter().all(|&b| b == 0)
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Labels({:02x?})", self.as_bytes())
    }
}

/// A string stored inline, truncated to `N` bytes at a character
/// boundary. Helper names are at most 16 bytes in the kernel; security
/// contexts are short too, and keeping them inline means decoding a flow
/// never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr<const N: usize> {
    len: u16,
    bytes: [u8; N],
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr {
            len: 0,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> InlineStr<N> {
    pub fn new(s: &str) -> Self {
        let mut n = s.len().min(N);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut out = InlineStr {
            len: n as u16,
            bytes: [0; N],
        };
        out.bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        out
    }

    /// From raw bytes up to the first NUL; invalid UTF-8 is replaced
    /// lossily (never fails).
    pub fn from_c_bytes(b: &[u8]) -> Self {
        let b = match b.iter().position(|&c| c == 0) {
            Some(i) => &b[..i],
            None => b,
        };
        match std::str::from_utf8(b) {
            Ok(s) => Self::new(s),
            Err(_) => Self::new(&String::from_utf8_lossy(b)),
        }
    }

    pub fn as_str(&self) -> &str {
        // Built only from &str prefixes cut at char boundaries.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl<const N: usize> std::fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Helper and function names.
pub type ShortStr = InlineStr<32>;
/// Security context names.
pub type CtxStr = InlineStr<256>;

/// One conntrack entry, or a request template built from a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flow {
    /// `nfgen_family` of the message the flow came in (or goes out) with.
    pub family: u8,
    pub orig: Option<Tuple>,
    pub reply: Option<Tuple>,
    pub master: Option<Tuple>,
    pub status: Option<u32>,
    pub protoinfo: Option<ProtoInfo>,
    pub helper: Option<ShortStr>,
    pub nat_src: Option<Nat>,
    pub nat_dst: Option<Nat>,
    pub timeout: Option<u32>,
    pub mark: Option<u32>,
    pub mark_mask: Option<u32>,
    pub counters_orig: Option<Counters>,
    pub counters_reply: Option<Counters>,
    pub use_count: Option<u32>,
    pub id: Option<u32>,
    pub seq_adj_orig: Option<SeqAdj>,
    pub seq_adj_reply: Option<SeqAdj>,
    pub secmark: Option<u32>,
    pub zone: Option<u16>,
    pub secctx: Option<CtxStr>,
    pub timestamp: Option<Timestamp>,
    pub labels: Option<Labels>,
    pub labels_mask: Option<Labels>,
    pub synproxy: Option<Synproxy>,
    pub status_mask: Option<u32>,
    pub timestamp_event: Option<u64>,
}

impl Flow {
    /// Resets every field (as `*self = Flow::default()`), writing only each
    /// option's tag: the parsers decode into one reused flow, and building
    /// and copying a whole default flow (about 1 KiB) per message was a
    /// tenth of the per-flow time.
    pub fn clear(&mut self) {
        // (every field by name: a new one must be cleared here; a field
        // already empty is only read, so that the lines of a reused flow
        // that no event fills are not written again each time)
        fn none<T>(o: &mut Option<T>) {
            if o.is_some() {
                *o = None;
            }
        }
        let Flow {
            family,
            orig,
            reply,
            master,
            status,
            protoinfo,
            helper,
            nat_src,
            nat_dst,
            timeout,
            mark,
            mark_mask,
            counters_orig,
            counters_reply,
            use_count,
            id,
            seq_adj_orig,
            seq_adj_reply,
            secmark,
            zone,
            secctx,
            timestamp,
            labels,
            labels_mask,
            synproxy,
            status_mask,
            timestamp_event,
        } = self;
        *family = 0;
        none(orig);
        none(reply);
        none(master);
        none(status);
        none(protoinfo);
        none(helper);
        none(nat_src);
        none(nat_dst);
        none(timeout);
        none(mark);
        none(mark_mask);
        none(counters_orig);
        none(counters_reply);
        none(use_count);
        none(id);
        none(seq_adj_orig);
        none(seq_adj_reply);
        none(secmark);
        none(zone);
        none(secctx);
        none(timestamp);
        none(labels);
        none(labels_mask);
        none(synproxy);
        none(status_mask);
        none(timestamp_event);
    }

    /// The L3 family of the flow: the nfgenmsg family, else the one implied
    /// by the original (then reply) addresses.
    pub fn l3_family(&self) -> u8 {
        if self.family != AF_UNSPEC {
            return self.family;
        }
        self.orig
            .map(|t| t.family())
            .filter(|&f| f != AF_UNSPEC)
            .or_else(|| self.reply.map(|t| t.family()))
            .unwrap_or(AF_UNSPEC)
    }

    /// L4 protocol number from the original (else reply) tuple.
    pub fn l4proto(&self) -> Option<u8> {
        self.orig
            .and_then(|t| t.l4proto)
            .or_else(|| self.reply.and_then(|t| t.l4proto))
    }

    pub fn status_has(&self, bits: u32) -> bool {
        self.status.map(|s| s & bits == bits).unwrap_or(false)
    }
}

/// Expectation flags (CTA_EXPECT_FLAGS).
pub const NF_CT_EXPECT_PERMANENT: u32 = 0x1;
pub const NF_CT_EXPECT_INACTIVE: u32 = 0x2;
pub const NF_CT_EXPECT_USERSPACE: u32 = 0x4;

/// NAT part of an expectation (CTA_EXPECT_NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpectNat {
    pub dir: Option<u32>,
    pub tuple: Option<Tuple>,
}

/// One expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expect {
    pub family: u8,
    pub master: Option<Tuple>,
    pub tuple: Option<Tuple>,
    pub mask: Option<Tuple>,
    pub timeout: Option<u32>,
    pub id: Option<u32>,
    pub helper: Option<ShortStr>,
    pub zone: Option<u16>,
    pub flags: Option<u32>,
    pub class: Option<u32>,
    pub nat: Option<ExpectNat>,
    pub func: Option<ShortStr>,
}

impl Flow {
    fn nat_done(&self, bit: u32) -> bool {
        match self.status {
            None => true,
            Some(s) => s & bit != 0,
        }
    }

    /// libnetfilter_conntrack's `NFCT_GOPT_IS_SNAT`: the status (if any)
    /// says SRC_NAT_DONE and the reply destination differs from the
    /// original source.
    pub fn is_snat(&self) -> bool {
        self.nat_done(crate::proto::status::SRC_NAT_DONE)
            && self.reply.and_then(|r| r.dst) != self.orig.and_then(|o| o.src)
    }

    /// `NFCT_GOPT_IS_DNAT`.
    pub fn is_dnat(&self) -> bool {
        self.nat_done(crate::proto::status::DST_NAT_DONE)
            && self.reply.and_then(|r| r.src) != self.orig.and_then(|o| o.dst)
    }

    /// Whether the original tuple's protocol has ports (TCP, UDP,
    /// UDPLite, SCTP, DCCP). libnetfilter_conntrack after 1.0.9 checks it
    /// before [`is_spat`](Self::is_spat)/[`is_dpat`](Self::is_dpat); 1.0.9
    /// (1.4.7's, and so its sync messages and commits, which these two
    /// serve) does not: GRE's keys count as ports there.
    pub fn has_ports(&self) -> bool {
        self.l4proto().is_some_and(crate::proto::has_ports)
    }

    /// `NFCT_GOPT_IS_SPAT`: source port translated.
    pub fn is_spat(&self) -> bool {
        self.nat_done(crate::proto::status::SRC_NAT_DONE)
            && self.reply.and_then(|r| r.dst_port) != self.orig.and_then(|o| o.src_port)
    }

    /// `NFCT_GOPT_IS_DPAT`: destination port translated.
    pub fn is_dpat(&self) -> bool {
        self.nat_done(crate::proto::status::DST_NAT_DONE)
            && self.reply.and_then(|r| r.src_port) != self.orig.and_then(|o| o.dst_port)
    }
}

#[cfg(test)]
mod nat_tests {
    use super::*;
    use crate::proto::status::{DST_NAT_DONE, SRC_NAT_DONE};
    use std::net::Ipv4Addr;

    fn flow(proto: u8, orig: (u16, u16), reply: (u16, u16)) -> Flow {
        let a = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let b = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        let ports = |(s, d): (u16, u16)| (crate::proto::has_ports(proto)).then_some((s, d));
        let icmp = |(s, d): (u16, u16)| (!crate::proto::has_ports(proto)).then_some((s, d));
        let tuple = |src, dst, p: (u16, u16)| Tuple {
            src,
            dst,
            l4proto: Some(proto),
            src_port: ports(p).map(|x| x.0),
            dst_port: ports(p).map(|x| x.1),
            icmp_id: icmp(p).map(|x| x.0),
            icmp_type: icmp(p).map(|x| x.1 as u8),
            icmp_code: icmp(p).map(|_| 0),
            ..Tuple::default()
        };
        Flow {
            family: AF_INET,
            status: Some(SRC_NAT_DONE | DST_NAT_DONE),
            orig: Some(tuple(a, b, orig)),
            reply: Some(tuple(b, a, reply)),
            ..Flow::default()
        }
    }

    /// A namespace with NAT hooks marks every entry NAT done: ports tell
    /// (the CLI's filters also ask `has_ports`).
    #[test]
    fn only_protocols_with_ports_are_port_translated() {
        // ICMP echo (id 0x1234, type 8; the reply type 0): no ports
        let echo = flow(1, (0x1234, 8), (0x1234, 0));
        assert!(!echo.has_ports());
        assert!(!echo.is_spat() && !echo.is_dpat());
        assert!(!echo.is_snat() && !echo.is_dnat());
        // GRE keys are ports to 1.0.9 (sync messages and commits)
        let mut gre = flow(6, (7, 9), (9, 8));
        for t in [&mut gre.orig, &mut gre.reply].into_iter().flatten() {
            t.l4proto = Some(47);
        }
        assert!(!gre.has_ports() && gre.is_spat());
        // TCP: source port 1000 masqueraded to 2000
        let tcp = flow(6, (1000, 80), (80, 2000));
        assert!(tcp.has_ports() && tcp.is_spat() && !tcp.is_dpat());
        let same = flow(6, (1000, 80), (80, 1000));
        assert!(!same.is_spat() && !same.is_dpat());
    }
}

#[cfg(test)]
mod clear_tests {
    use super::*;

    #[test]
    fn clear_is_default() {
        let mut f = Flow {
            family: 2,
            status: Some(3),
            secctx: Some(CtxStr::new("system_u:object_r")),
            timestamp_event: Some(9),
            labels: Some(Labels::default()),
            ..Flow::default()
        };
        f.clear();
        assert_eq!(f, Flow::default());
    }
}
