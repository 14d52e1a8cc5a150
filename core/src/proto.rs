//! Protocol numbers, state names and status-bit names shared by the parser
//! of the command line and the output formats.

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_DCCP: u8 = 33;
pub const IPPROTO_GRE: u8 = 47;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;
pub const IPPROTO_UDPLITE: u8 = 136;

/// Name of an L4 protocol as the output formats print it (`unknown` for
/// protocols without a handler).
pub fn l4_name(p: u8) -> &'static str {
    match p {
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        IPPROTO_UDPLITE => "udplite",
        IPPROTO_ICMP => "icmp",
        IPPROTO_ICMPV6 => "icmpv6",
        IPPROTO_SCTP => "sctp",
        IPPROTO_GRE => "gre",
        IPPROTO_DCCP => "dccp",
        _ => "unknown",
    }
}

/// Name of an L3 family as the output formats print it.
pub fn l3_name(f: u8) -> &'static str {
    match f {
        crate::flow::AF_INET => "ipv4",
        crate::flow::AF_INET6 => "ipv6",
        _ => "unknown",
    }
}

/// Whether the protocol's tuple carries source/destination ports.
pub fn has_ports(p: u8) -> bool {
    matches!(
        p,
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP
    )
}

/// TCP conntrack states, index = kernel value.
pub const TCP_STATES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];
pub const TCP_STATE_TIME_WAIT: u8 = 7;

/// SCTP conntrack states as libnetfilter_conntrack 1.0.9 prints them.
pub const SCTP_STATES: [&str; 10] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
    "HEARTBEAT_ACKED",
];
/// SCTP state names accepted by `--state` (only the first 8).
pub const SCTP_STATES_CLI: usize = 8;

/// DCCP conntrack states.
pub const DCCP_STATES: [&str; 10] = [
    "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE",
    "INVALID",
];

/// State name used in the plain text formats (index ≥ 10 prints `NONE`
/// for TCP as libnetfilter_conntrack does).
pub fn tcp_state_name(s: u8) -> &'static str {
    TCP_STATES.get(s as usize).copied().unwrap_or("NONE")
}
pub fn sctp_state_name(s: u8) -> &'static str {
    SCTP_STATES.get(s as usize).copied().unwrap_or("NONE")
}
pub fn dccp_state_name(s: u8) -> &'static str {
    DCCP_STATES.get(s as usize).copied().unwrap_or("NONE")
}

/// TCP protoinfo flag bits.
pub const TCP_FLAG_WINDOW_SCALE: u8 = 0x01;
pub const TCP_FLAG_SACK_PERM: u8 = 0x02;
pub const TCP_FLAG_CLOSE_INIT: u8 = 0x04;
pub const TCP_FLAG_BE_LIBERAL: u8 = 0x08;

/// Conntrack status bits.
pub mod status {
    pub const EXPECTED: u32 = 0x1;
    pub const SEEN_REPLY: u32 = 0x2;
    pub const ASSURED: u32 = 0x4;
    pub const CONFIRMED: u32 = 0x8;
    pub const SRC_NAT: u32 = 0x10;
    pub const DST_NAT: u32 = 0x20;
    pub const SEQ_ADJUST: u32 = 0x40;
    pub const SRC_NAT_DONE: u32 = 0x80;
    pub const DST_NAT_DONE: u32 = 0x100;
    pub const DYING: u32 = 0x200;
    pub const FIXED_TIMEOUT: u32 = 0x400;
    pub const TEMPLATE: u32 = 0x800;
    pub const UNTRACKED: u32 = 0x1000;
    pub const HELPER: u32 = 0x2000;
    pub const OFFLOAD: u32 = 0x4000;
    pub const HW_OFFLOAD: u32 = 0x8000;
}

/// ICMP reply type for an original type, as conntrack computes it when it
/// completes a reply tuple (255 = no reply type known).
pub fn icmp_reply_type(family_v6: bool, t: u8) -> u8 {
    if family_v6 {
        match t {
            128 => 129,
            129 => 128,
            139 => 140,
            140 => 139,
            _ => 255,
        }
    } else {
        match t {
            8 => 0,
            0 => 8,
            13 => 14,
            14 => 13,
            15 => 16,
            16 => 15,
            17 => 18,
            18 => 17,
            _ => 255,
        }
    }
}
