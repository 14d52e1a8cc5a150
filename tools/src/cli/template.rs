//! The command line's conntrack template: the attributes `-s`, `-p`,
//! `--sport`, `-u`, ... set, kept attribute by attribute as
//! libnetfilter_conntrack keeps them (so that "is this attribute set"
//! survives), with the two things the tool does with it: turn it into a
//! request [`Flow`] (completing the reply or original tuple as the C tool
//! does) and compare it with a kernel entry (`nfct_cmp` with
//! `NFCT_CMP_ALL | NFCT_CMP_MASK`).

use std::net::IpAddr;

use ct_core::flow::*;
use ct_core::proto::*;

/// One direction's attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TTuple {
    pub l3: Option<u8>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub l4: Option<u8>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub icmp_id: Option<u16>,
    pub zone: Option<u16>,
}

impl TTuple {
    fn any_set(&self) -> bool {
        self.l3.is_some()
            || self.src.is_some()
            || self.dst.is_some()
            || self.l4.is_some()
            || self.sport.is_some()
            || self.dport.is_some()
            || self.icmp_type.is_some()
            || self.icmp_code.is_some()
            || self.icmp_id.is_some()
            || self.zone.is_some()
    }
}

/// The template (`tmpl.ct` of the C tool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Template {
    pub orig: TTuple,
    pub repl: TTuple,
    /// ICMP type/code/id of the reply side, set when `--icmp-*` is parsed.
    pub repl_icmp_type: Option<u8>,
    pub repl_icmp_code: Option<u8>,
    pub repl_icmp_id: Option<u16>,
    pub status: Option<u32>,
    pub timeout: Option<u32>,
    pub mark: Option<u32>,
    pub secmark: Option<u32>,
    pub id: Option<u32>,
    pub zone: Option<u16>,
    pub tcp_state: Option<u8>,
    pub tcp_flags: Option<u8>,
    pub sctp_state: Option<u8>,
    pub sctp_vtag_orig: Option<u32>,
    pub sctp_vtag_repl: Option<u32>,
    pub dccp_state: Option<u8>,
    pub dccp_role: Option<u8>,
    pub snat_ip: Option<IpAddr>,
    pub snat_port: Option<u16>,
    pub dnat_ip: Option<IpAddr>,
    pub dnat_port: Option<u16>,
    pub labels: Option<Labels>,
}

fn zero_addr(family: u8) -> IpAddr {
    if family == AF_INET6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

/// Builds a netlink tuple from template attributes the way
/// libnetfilter_conntrack does: both addresses, the protocol number and,
/// depending on it, both ports or the three ICMP fields (zero when unset).
pub fn to_tuple(t: &TTuple, icmp: (Option<u8>, Option<u8>, Option<u16>)) -> Tuple {
    let fam = t.l3.unwrap_or(AF_INET);
    let mut out = Tuple {
        src: Some(t.src.unwrap_or_else(|| zero_addr(fam))),
        dst: Some(t.dst.unwrap_or_else(|| zero_addr(fam))),
        l4proto: Some(t.l4.unwrap_or(0)),
        zone: t.zone,
        ..Tuple::default()
    };
    match t.l4.unwrap_or(0) {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP | IPPROTO_GRE => {
            out.src_port = Some(t.sport.unwrap_or(0));
            out.dst_port = Some(t.dport.unwrap_or(0));
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            out.icmp_type = Some(icmp.0.unwrap_or(0));
            out.icmp_code = Some(icmp.1.unwrap_or(0));
            out.icmp_id = Some(icmp.2.unwrap_or(0));
        }
        _ => {}
    }
    out
}

impl Template {
    /// `NFCT_SOPT_SETUP_REPLY`: derive the reply tuple from the original.
    pub fn setup_reply(&mut self) {
        self.repl.l3 = self.orig.l3;
        self.repl.l4 = self.orig.l4;
        self.repl.src = self.orig.dst;
        self.repl.dst = self.orig.src;
        if matches!(
            self.orig.l4.unwrap_or(0),
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP | IPPROTO_GRE
        ) {
            self.repl.sport = Some(self.orig.dport.unwrap_or(0));
            self.repl.dport = Some(self.orig.sport.unwrap_or(0));
        }
    }

    /// `NFCT_SOPT_SETUP_ORIGINAL`: derive the original tuple from the reply.
    pub fn setup_original(&mut self) {
        self.orig.l3 = self.repl.l3;
        self.orig.l4 = self.repl.l4;
        self.orig.src = self.repl.dst;
        self.orig.dst = self.repl.src;
        if matches!(
            self.repl.l4.unwrap_or(0),
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP | IPPROTO_GRE
        ) {
            self.orig.sport = Some(self.repl.dport.unwrap_or(0));
            self.orig.dport = Some(self.repl.sport.unwrap_or(0));
        }
    }

    /// libnetfilter_conntrack refuses to build a message whose original
    /// tuple has fields but no layer-3 protocol (EINVAL before sending).
    pub fn build_error(&self) -> Option<i32> {
        (self.orig.any_set() && self.orig.l3.is_none()).then_some(libc::EINVAL)
    }

    /// The request flow (`nfct_nlmsg_build` of the template).
    pub fn to_flow(&self) -> Flow {
        let mut f = Flow::default();
        if self.orig.any_set() {
            f.orig = Some(to_tuple(
                &self.orig,
                (self.orig.icmp_type, self.orig.icmp_code, self.orig.icmp_id),
            ));
        }
        if self.repl.any_set() {
            f.reply = Some(to_tuple(
                &self.repl,
                (self.repl_icmp_type, self.repl_icmp_code, self.repl_icmp_id),
            ));
        }
        f.status = self.status.map(|s| s | status::CONFIRMED);
        f.timeout = self.timeout;
        f.mark = self.mark;
        f.secmark = self.secmark;
        let mut pi = ProtoInfo::default();
        if self.tcp_state.is_some() || self.tcp_flags.is_some() {
            pi.tcp = Some(TcpInfo {
                state: self.tcp_state,
                flags_orig: self.tcp_flags.map(|f| (f, f)),
                flags_reply: self.tcp_flags.map(|f| (f, f)),
                ..TcpInfo::default()
            });
        }
        if self.sctp_state.is_some()
            || self.sctp_vtag_orig.is_some()
            || self.sctp_vtag_repl.is_some()
        {
            pi.sctp = Some(SctpInfo {
                state: self.sctp_state,
                vtag_orig: self.sctp_vtag_orig,
                vtag_reply: self.sctp_vtag_repl,
            });
        }
        if self.dccp_state.is_some() || self.dccp_role.is_some() {
            pi.dccp = Some(DccpInfo {
                state: self.dccp_state,
                role: self.dccp_role,
                handshake_seq: None,
            });
        }
        if !pi.is_empty() {
            f.protoinfo = Some(pi);
        }
        let nat_port = |p: Option<u16>| {
            if matches!(self.orig.l4, Some(IPPROTO_TCP) | Some(IPPROTO_UDP)) {
                p
            } else {
                None
            }
        };
        if let Some(ip) = self.snat_ip {
            let p = nat_port(self.snat_port);
            f.nat_src = Some(Nat {
                min_ip: Some(ip),
                min_port: p,
                max_port: p,
                ..Nat::default()
            });
        }
        if let Some(ip) = self.dnat_ip {
            let p = nat_port(self.dnat_port);
            f.nat_dst = Some(Nat {
                min_ip: Some(ip),
                min_port: p,
                max_port: p,
                ..Nat::default()
            });
        }
        f.zone = self.zone;
        f.labels = self.labels;
        f.id = self.id;
        f
    }

    /// `nfct_cmp(tmpl, ct, NFCT_CMP_ALL | NFCT_CMP_MASK)`: true when every
    /// attribute set in the template matches the entry.
    pub fn matches(&self, ct: &Flow) -> bool {
        let o = ct.orig.unwrap_or_default();
        let r = ct.reply.unwrap_or_default();
        let ct_l3 = ct.l3_family();
        fn eq<T: PartialEq + Copy + Default>(t: Option<T>, e: Option<T>) -> bool {
            match t {
                None => true,
                Some(v) => e.unwrap_or_default() == v,
            }
        }
        fn eq_addr(t: Option<IpAddr>, e: Option<IpAddr>) -> bool {
            match t {
                None => true,
                Some(v) => e == Some(v),
            }
        }
        // Original direction.
        if let Some(l3) = self.orig.l3 {
            if ct_l3 != l3 {
                return false;
            }
        }
        if !eq_addr(self.orig.src, o.src) || !eq_addr(self.orig.dst, o.dst) {
            return false;
        }
        // As libnetfilter_conntrack's cmp_orig_l4proto: the protocol's own
        // attributes are compared by the template's protocol (the last
        // `-p`): ports for TCP, UDP, UDPLite, DCCP and SCTP (GRE keys
        // travel in the port slots but are not compared), ICMP type, code
        // and id for ICMP and ICMPv6; what an earlier `-p` set is not.
        let ports = |l4: Option<u8>| {
            matches!(
                l4,
                Some(IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_DCCP | IPPROTO_SCTP)
            )
        };
        let icmp = matches!(self.orig.l4, Some(IPPROTO_ICMP | IPPROTO_ICMPV6));
        if !eq(self.orig.l4, o.l4proto) {
            return false;
        }
        if icmp
            && (!eq(self.orig.icmp_type, o.icmp_type)
                || !eq(self.orig.icmp_code, o.icmp_code)
                || !eq(self.orig.icmp_id, o.icmp_id))
        {
            return false;
        }
        if ports(self.orig.l4)
            && (!eq(self.orig.sport, o.src_port) || !eq(self.orig.dport, o.dst_port))
        {
            return false;
        }
        // Reply direction.
        if let Some(l3) = self.repl.l3 {
            if ct_l3 != l3 {
                return false;
            }
        }
        if !eq_addr(self.repl.src, r.src) || !eq_addr(self.repl.dst, r.dst) {
            return false;
        }
        if !eq(self.repl.l4, r.l4proto) {
            return false;
        }
        if ports(self.repl.l4)
            && (!eq(self.repl.sport, r.src_port) || !eq(self.repl.dport, r.dst_port))
        {
            return false;
        }
        // Zones of the directions: an entry without one counts as zone 0.
        if !eq(self.orig.zone, o.zone) || !eq(self.repl.zone, r.zone) {
            return false;
        }
        // Meta attributes.
        if let Some(s) = self.status {
            if ct.status.unwrap_or(0) & s != s {
                return false;
            }
        }
        if !eq(self.timeout, ct.timeout) || !eq(self.id, ct.id) || !eq(self.zone, ct.zone) {
            return false;
        }
        if !eq(self.mark, ct.mark) {
            return false;
        }
        let pi = ct.protoinfo.unwrap_or_default();
        if !eq(self.tcp_state, pi.tcp.and_then(|t| t.state)) {
            return false;
        }
        if !eq(self.sctp_state, pi.sctp.and_then(|t| t.state))
            || !eq(self.sctp_vtag_orig, pi.sctp.and_then(|t| t.vtag_orig))
            || !eq(self.sctp_vtag_repl, pi.sctp.and_then(|t| t.vtag_reply))
        {
            return false;
        }
        if !eq(self.dccp_state, pi.dccp.and_then(|t| t.state))
            || !eq(self.dccp_role, pi.dccp.and_then(|t| t.role))
        {
            return false;
        }
        true
    }
}
