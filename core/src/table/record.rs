//! The compact form of a flow kept in the daemon's caches: a fixed-size
//! record per address family (`Record<[u8; 4]>` is 80 bytes for IPv4),
//! with the rarely used attributes (master tuple, helper, labels, SCTP
//! vtags, DCCP role, NAT sequence adjustment, synproxy) moved behind one
//! optional box. Conversion to and from [`Flow`] is lossless for every
//! attribute the sync protocol and the dumps use, the kernel's id of the
//! entry included (1.4.7's `-i -x` prints it); counters and `use` are not
//! kept (the kernel's own values are transient).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::flow::*;

/// An address type of a cache: `[u8; 4]` or `[u8; 16]`.
pub trait Addr: Copy + Eq + std::hash::Hash + Default + std::fmt::Debug + 'static {
    const FAMILY: u8;
    fn from_ip(a: IpAddr) -> Option<Self>;
    fn to_ip(self) -> IpAddr;
    /// The address as a number (for hashing in one go).
    fn bits(self) -> u128;
}

impl Addr for [u8; 4] {
    const FAMILY: u8 = AF_INET;
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V4(v) => Some(v.octets()),
            IpAddr::V6(_) => None,
        }
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn bits(self) -> u128 {
        u32::from_be_bytes(self) as u128
    }
}

impl Addr for [u8; 16] {
    const FAMILY: u8 = AF_INET6;
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V6(v) => Some(v.octets()),
            IpAddr::V4(_) => None,
        }
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    fn bits(self) -> u128 {
        u128::from_be_bytes(self)
    }
}

/// The cache key: the original tuple and its zone (conntrackd's key).
/// ICMP keeps id in `sport` and type/code in `dport` (`type << 8 | code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Key<A: Addr> {
    pub src: A,
    pub dst: A,
    pub sport: u16,
    pub dport: u16,
    pub l4: u8,
    /// Which of the L4 fields the tuple had (bit 0 ports, bit 1 icmp).
    pub l4_fields: u8,
    pub zone: u16,
}

/// Hashed in one or three writes (the derived impl made nine small ones,
/// a length and the bytes of each address among them: the hash was a
/// sizeable part of every lookup).
impl<A: Addr> std::hash::Hash for Key<A> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let rest = (self.sport as u64) << 48
            | (self.dport as u64) << 32
            | (self.l4 as u64) << 24
            | (self.l4_fields as u64) << 16
            | self.zone as u64;
        if A::FAMILY == AF_INET {
            h.write_u128(self.src.bits() << 96 | self.dst.bits() << 64 | rest as u128);
        } else {
            h.write_u128(self.src.bits());
            h.write_u128(self.dst.bits());
            h.write_u64(rest);
        }
    }
}

/// A reply tuple (kept only when it differs from the swapped original:
/// NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reply<A: Addr> {
    pub src: A,
    pub dst: A,
    pub sport: u16,
    pub dport: u16,
}

/// Attributes most flows do not have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extra {
    pub master: Option<Tuple>,
    pub helper: Option<ShortStr>,
    pub labels: Option<Labels>,
    pub sctp: Option<SctpInfo>,
    pub dccp: Option<DccpInfo>,
    pub seq_adj_orig: Option<SeqAdj>,
    pub seq_adj_reply: Option<SeqAdj>,
    pub synproxy: Option<Synproxy>,
    pub secmark: Option<u32>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        *self == Extra::default()
    }
}

/// Presence bits of the inline optional fields.
mod has {
    pub const STATUS: u16 = 1 << 0;
    pub const TIMEOUT: u16 = 1 << 1;
    pub const MARK: u16 = 1 << 2;
    pub const ZONE: u16 = 1 << 3;
    pub const TCP: u16 = 1 << 4;
    pub const TCP_STATE: u16 = 1 << 5;
    pub const WSCALE_O: u16 = 1 << 6;
    pub const WSCALE_R: u16 = 1 << 7;
    pub const FLAGS_O: u16 = 1 << 8;
    pub const FLAGS_R: u16 = 1 << 9;
    pub const REPLY: u16 = 1 << 10;
    pub const ORIG_L4: u16 = 1 << 11;
    pub const TS_START: u16 = 1 << 12;
    pub const ID: u16 = 1 << 13;
}

/// One cached flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<A: Addr> {
    pub key: Key<A>,
    /// Reply tuple when it is not the mirror of the original (NAT).
    pub reply: Option<Box<Reply<A>>>,
    pub status: u32,
    pub timeout: u32,
    pub mark: u32,
    pub zone: u16,
    present: u16,
    pub tcp_state: u8,
    pub wscale: [u8; 2],
    pub tcp_flags: [u8; 4],
    /// Seconds (daemon clock) when the record was created and updated.
    pub created: u32,
    pub updated: u32,
    /// Kernel start timestamp (ns), when timestamps are on.
    pub ts_start: u64,
    /// The kernel's id of the entry (`CTA_ID`), when an event or a dump
    /// gave it: 1.4.7's `-i -x` prints it.
    pub id: u32,
    /// When the record was made, in the thread's order (a lane is a
    /// thread): a cache lists colliding entries newest first, as 1.4.7
    /// ([`super::c_order`]). Wraps after 2^32 records. (Part of the
    /// derived equality: two records of one flow made apart differ.)
    pub seq: u32,
    pub extra: Option<Box<Extra>>,
}

thread_local! {
    /// The next [`Record::seq`] of this thread.
    static NEXT_SEQ: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn next_seq() -> u32 {
    NEXT_SEQ.with(|c| {
        let s = c.get();
        c.set(s.wrapping_add(1));
        s
    })
}

fn ports_of(t: &Tuple) -> (u16, u16, u8) {
    let mut fields = 0;
    let (mut s, mut d) = (0, 0);
    if t.src_port.is_some() || t.dst_port.is_some() {
        fields |= 1;
        s = t.src_port.unwrap_or(0);
        d = t.dst_port.unwrap_or(0);
    }
    if t.icmp_type.is_some() || t.icmp_code.is_some() || t.icmp_id.is_some() {
        fields |= 2;
        s = t.icmp_id.unwrap_or(0);
        d = (t.icmp_type.unwrap_or(0) as u16) << 8 | t.icmp_code.unwrap_or(0) as u16;
    }
    (s, d, fields)
}

impl<A: Addr> Key<A> {
    /// The key of a flow's original tuple; `None` when the flow has no
    /// original tuple with both addresses of this family.
    pub fn of(f: &Flow) -> Option<Key<A>> {
        let o = f.orig.as_ref()?;
        let (sport, dport, l4_fields) = ports_of(o);
        Some(Key {
            src: A::from_ip(o.src?)?,
            dst: A::from_ip(o.dst?)?,
            sport,
            dport,
            l4: o.l4proto.unwrap_or(0),
            l4_fields,
            zone: o.zone.unwrap_or(0),
        })
    }

    /// The original tuple.
    pub fn tuple(&self, orig_l4_present: bool, has_zone: bool) -> Tuple {
        let mut t = Tuple {
            src: Some(self.src.to_ip()),
            dst: Some(self.dst.to_ip()),
            l4proto: orig_l4_present.then_some(self.l4),
            zone: has_zone.then_some(self.zone),
            ..Tuple::default()
        };
        if self.l4_fields & 1 != 0 {
            t.src_port = Some(self.sport);
            t.dst_port = Some(self.dport);
        }
        if self.l4_fields & 2 != 0 {
            t.icmp_id = Some(self.sport);
            t.icmp_type = Some((self.dport >> 8) as u8);
            t.icmp_code = Some(self.dport as u8);
        }
        t
    }
}

impl<A: Addr> Record<A> {
    /// Builds a record from a flow; `None` when the flow has no usable
    /// original tuple of this family.
    pub fn from_flow(f: &Flow, now: u32) -> Option<Record<A>> {
        let key = Key::<A>::of(f)?;
        let mut r = Record {
            key,
            reply: None,
            status: 0,
            timeout: 0,
            mark: 0,
            zone: 0,
            present: 0,
            tcp_state: 0,
            wscale: [0; 2],
            tcp_flags: [0; 4],
            created: now,
            updated: now,
            ts_start: 0,
            id: 0,
            seq: next_seq(),
            extra: None,
        };
        r.orig_zone_flag(f.orig.and_then(|o| o.zone).is_some());
        if f.orig.and_then(|o| o.l4proto).is_some() {
            r.present |= has::ORIG_L4;
        }
        r.update_from(f, now);
        Some(r)
    }

    fn orig_zone_flag(&mut self, on: bool) {
        // The key's zone is 0 when absent; remember presence in l4_fields.
        if on {
            self.key.l4_fields |= 4;
        }
    }

    /// Copies the meta attributes of `f` (status, timeout, mark, protocol
    /// info, NAT reply, extras) into the record, as an UPDATE event does.
    pub fn update_from(&mut self, f: &Flow, now: u32) {
        self.updated = now;
        if let Some(v) = f.status {
            self.status = v;
            self.present |= has::STATUS;
        }
        if let Some(v) = f.timeout {
            self.timeout = v;
            self.present |= has::TIMEOUT;
        }
        if let Some(v) = f.mark {
            self.mark = v;
            self.present |= has::MARK;
        }
        if let Some(v) = f.zone {
            self.zone = v;
            self.present |= has::ZONE;
        }
        if let Some(ts) = f.timestamp.and_then(|t| t.start) {
            self.ts_start = ts;
            self.present |= has::TS_START;
        }
        if let Some(v) = f.id {
            self.id = v;
            self.present |= has::ID;
        }
        if let Some(r) = &f.reply {
            let k = &self.key;
            let (rs, rd, _) = ports_of(r);
            let rep = Reply {
                src: r.src.and_then(A::from_ip).unwrap_or_default(),
                dst: r.dst.and_then(A::from_ip).unwrap_or_default(),
                sport: rs,
                dport: rd,
            };
            self.present |= has::REPLY;
            // ICMP replies carry another type: never a plain mirror.
            let mirror = rep.src == k.dst
                && rep.dst == k.src
                && k.l4_fields & 2 == 0
                && (k.l4_fields & 1 == 0 || (rep.sport == k.dport && rep.dport == k.sport));
            self.reply = if mirror { None } else { Some(Box::new(rep)) };
        }
        let mut extra = self.extra.take().map(|b| *b).unwrap_or_default();
        if let Some(pi) = f.protoinfo {
            if let Some(t) = pi.tcp {
                self.present |= has::TCP;
                if let Some(s) = t.state {
                    self.tcp_state = s;
                    self.present |= has::TCP_STATE;
                }
                if let Some(w) = t.wscale_orig {
                    self.wscale[0] = w;
                    self.present |= has::WSCALE_O;
                }
                if let Some(w) = t.wscale_reply {
                    self.wscale[1] = w;
                    self.present |= has::WSCALE_R;
                }
                if let Some((a, b)) = t.flags_orig {
                    self.tcp_flags[0] = a;
                    self.tcp_flags[1] = b;
                    self.present |= has::FLAGS_O;
                }
                if let Some((a, b)) = t.flags_reply {
                    self.tcp_flags[2] = a;
                    self.tcp_flags[3] = b;
                    self.present |= has::FLAGS_R;
                }
            }
            if pi.sctp.is_some() {
                extra.sctp = pi.sctp;
            }
            if pi.dccp.is_some() {
                extra.dccp = pi.dccp;
            }
        }
        if f.master.is_some() {
            extra.master = f.master;
        }
        if f.helper.is_some() {
            extra.helper = f.helper;
        }
        if f.labels.is_some() {
            extra.labels = f.labels;
        }
        if f.seq_adj_orig.is_some() {
            extra.seq_adj_orig = f.seq_adj_orig;
        }
        if f.seq_adj_reply.is_some() {
            extra.seq_adj_reply = f.seq_adj_reply;
        }
        // Current kernels attach an all-zero SYNPROXY to almost every
        // entry; it carries nothing, so it is not worth a box per flow.
        if let Some(sp) = f.synproxy {
            if sp.isn.unwrap_or(0) | sp.its.unwrap_or(0) | sp.tsoff.unwrap_or(0) != 0 {
                extra.synproxy = Some(sp);
            }
        }
        if f.secmark.is_some() {
            extra.secmark = f.secmark;
        }
        self.extra = if extra.is_empty() {
            None
        } else {
            Some(Box::new(extra))
        };
    }

    /// Back to a [`Flow`] (family set, no counters or use).
    pub fn to_flow(&self) -> Flow {
        let mut f = Flow::default();
        self.to_flow_into(&mut f);
        f
    }

    /// [`to_flow`](Self::to_flow) into a flow the caller reuses (every
    /// field is written: no 1 KiB flow is built and moved per message).
    pub fn to_flow_into(&self, out: &mut Flow) {
        let k = &self.key;
        let p = self.present;
        let orig = k.tuple(p & has::ORIG_L4 != 0, k.l4_fields & 4 != 0);
        let reply = if p & has::REPLY != 0 {
            let mut t = Tuple {
                l4proto: orig.l4proto,
                ..Tuple::default()
            };
            match &self.reply {
                Some(r) => {
                    t.src = Some(r.src.to_ip());
                    t.dst = Some(r.dst.to_ip());
                    if k.l4_fields & 1 != 0 {
                        t.src_port = Some(r.sport);
                        t.dst_port = Some(r.dport);
                    }
                    if k.l4_fields & 2 != 0 {
                        t.icmp_id = Some(r.sport);
                        t.icmp_type = Some((r.dport >> 8) as u8);
                        t.icmp_code = Some(r.dport as u8);
                    }
                }
                None => {
                    t.src = orig.dst;
                    t.dst = orig.src;
                    t.src_port = orig.dst_port;
                    t.dst_port = orig.src_port;
                }
            }
            Some(t)
        } else {
            None
        };
        let extra = self.extra.as_deref();
        let mut pi = ProtoInfo::default();
        if p & has::TCP != 0 {
            pi.tcp = Some(TcpInfo {
                state: (p & has::TCP_STATE != 0).then_some(self.tcp_state),
                wscale_orig: (p & has::WSCALE_O != 0).then_some(self.wscale[0]),
                wscale_reply: (p & has::WSCALE_R != 0).then_some(self.wscale[1]),
                flags_orig: (p & has::FLAGS_O != 0)
                    .then_some((self.tcp_flags[0], self.tcp_flags[1])),
                flags_reply: (p & has::FLAGS_R != 0)
                    .then_some((self.tcp_flags[2], self.tcp_flags[3])),
            });
        }
        if let Some(e) = extra {
            pi.sctp = e.sctp;
            pi.dccp = e.dccp;
        }
        // (every field by name: a new one must be decided here)
        let Flow {
            family,
            orig: o,
            reply: r,
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
        } = out;
        *family = A::FAMILY;
        *o = Some(orig);
        *r = reply;
        *master = extra.and_then(|e| e.master);
        *status = (p & has::STATUS != 0).then_some(self.status);
        *protoinfo = (!pi.is_empty()).then_some(pi);
        *helper = extra.and_then(|e| e.helper);
        *nat_src = None;
        *nat_dst = None;
        *timeout = (p & has::TIMEOUT != 0).then_some(self.timeout);
        *mark = (p & has::MARK != 0).then_some(self.mark);
        *mark_mask = None;
        *counters_orig = None;
        *counters_reply = None;
        *use_count = None;
        *id = (p & has::ID != 0).then_some(self.id);
        *seq_adj_orig = extra.and_then(|e| e.seq_adj_orig);
        *seq_adj_reply = extra.and_then(|e| e.seq_adj_reply);
        *secmark = extra.and_then(|e| e.secmark);
        *zone = (p & has::ZONE != 0).then_some(self.zone);
        *secctx = None;
        *timestamp = (p & has::TS_START != 0).then_some(Timestamp {
            start: Some(self.ts_start),
            stop: None,
        });
        *labels = extra.and_then(|e| e.labels);
        *labels_mask = None;
        *synproxy = extra.and_then(|e| e.synproxy);
        *status_mask = None;
        *timestamp_event = None;
    }
}
