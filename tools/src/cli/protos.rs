//! The protocol handlers of `conntrack -p`: their long options (added to
//! the option table once `-p` is seen), the option/command matrices, the
//! coupled-pair messages and the help texts of conntrack 1.4.7.

use ct_core::proto::*;

/// Command indices (bit numbers of the C tool's command mask).
pub mod cmd {
    pub const CT_LIST: usize = 0;
    pub const CT_CREATE: usize = 1;
    pub const CT_UPDATE: usize = 2;
    pub const CT_DELETE: usize = 3;
    pub const CT_GET: usize = 4;
    pub const CT_FLUSH: usize = 5;
    pub const CT_EVENT: usize = 6;
    pub const CT_VERSION: usize = 7;
    pub const CT_HELP: usize = 8;
    pub const EXP_LIST: usize = 9;
    pub const EXP_CREATE: usize = 10;
    pub const EXP_DELETE: usize = 11;
    pub const EXP_GET: usize = 12;
    pub const EXP_FLUSH: usize = 13;
    pub const EXP_EVENT: usize = 14;
    pub const CT_COUNT: usize = 15;
    pub const EXP_COUNT: usize = 16;
    pub const CT_STATS: usize = 17;
    pub const EXP_STATS: usize = 18;
    pub const CT_ADD: usize = 19;
    pub const NUMBER: usize = 20;
}

/// What a protocol option sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum POpt {
    OrigSport,
    OrigDport,
    ReplSport,
    ReplDport,
    MaskSport,
    MaskDport,
    State,
    TupleSport,
    TupleDport,
    OrigVtag,
    ReplVtag,
    Role,
    IcmpType,
    IcmpCode,
    IcmpId,
}

/// Kinds of handler (they differ in value parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Udp,
    Sctp,
    Dccp,
    Icmp,
    Icmpv6,
    Gre,
    Unknown,
}

/// One protocol handler.
#[derive(Debug)]
pub struct ProtoDef {
    pub name: &'static str,
    pub num: u8,
    pub kind: Kind,
    /// Long options: (name, flag bit). Several names may share a bit.
    pub opts: &'static [(&'static str, usize)],
    /// Flag bit → what it sets.
    pub bits: &'static [POpt],
    /// Flag bit → name used in error messages.
    pub optflags: &'static [&'static str],
    /// `[command][bit]`: 0 illegal, 1 required, 2 optional, 3 coupled.
    pub matrix: fn(usize) -> &'static [u8],
    /// Messages for an incomplete (orig, reply) pair, if coupled.
    pub coupled: Option<(&'static str, &'static str)>,
    pub help: &'static str,
}

const PORT_BITS: &[POpt] = &[
    POpt::OrigSport,
    POpt::OrigDport,
    POpt::ReplSport,
    POpt::ReplDport,
    POpt::MaskSport,
    POpt::MaskDport,
    POpt::State,
    POpt::TupleSport,
    POpt::TupleDport,
];

const TCP_OPTS: &[(&str, usize)] = &[
    ("orig-port-src", 0),
    ("sport", 0),
    ("orig-port-dst", 1),
    ("dport", 1),
    ("reply-port-src", 2),
    ("reply-port-dst", 3),
    ("mask-port-src", 4),
    ("mask-port-dst", 5),
    ("state", 6),
    ("tuple-port-src", 7),
    ("tuple-port-dst", 8),
];
const TCP_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "state",
    "tuple-port-src",
    "tuple-port-dst",
];

fn tcp_matrix(c: usize) -> &'static [u8] {
    use cmd::*;
    match c {
        CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 2, 0, 0],
        CT_CREATE | CT_ADD => &[3, 3, 3, 3, 0, 0, 1, 0, 0],
        CT_GET => &[3, 3, 3, 3, 0, 0, 2, 0, 0],
        EXP_CREATE => &[1, 1, 0, 0, 1, 1, 0, 1, 1],
        EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0, 0],
        _ => &[0; 9],
    }
}

const UDP_OPTS: &[(&str, usize)] = &[
    ("orig-port-src", 0),
    ("sport", 0),
    ("orig-port-dst", 1),
    ("dport", 1),
    ("reply-port-src", 2),
    ("reply-port-dst", 3),
    ("mask-port-src", 4),
    ("mask-port-dst", 5),
    ("tuple-port-src", 6),
    ("tuple-port-dst", 7),
];
const UDP_BITS: &[POpt] = &[
    POpt::OrigSport,
    POpt::OrigDport,
    POpt::ReplSport,
    POpt::ReplDport,
    POpt::MaskSport,
    POpt::MaskDport,
    POpt::TupleSport,
    POpt::TupleDport,
];
const UDP_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "tuple-port-src",
    "tuple-port-dst",
];

fn udp_matrix(c: usize) -> &'static [u8] {
    use cmd::*;
    match c {
        CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 0, 0],
        CT_CREATE | CT_ADD | CT_GET => &[3, 3, 3, 3, 0, 0, 0, 0],
        EXP_CREATE => &[1, 1, 0, 0, 1, 1, 1, 1],
        EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0],
        _ => &[0; 8],
    }
}

const SCTP_OPTS: &[(&str, usize)] = &[
    ("orig-port-src", 0),
    ("orig-port-dst", 1),
    ("reply-port-src", 2),
    ("reply-port-dst", 3),
    ("mask-port-src", 4),
    ("mask-port-dst", 5),
    ("state", 6),
    ("tuple-port-src", 7),
    ("tuple-port-dst", 8),
    ("orig-vtag", 9),
    ("reply-vtag", 10),
    ("sport", 0),
    ("dport", 1),
];
const SCTP_BITS: &[POpt] = &[
    POpt::OrigSport,
    POpt::OrigDport,
    POpt::ReplSport,
    POpt::ReplDport,
    POpt::MaskSport,
    POpt::MaskDport,
    POpt::State,
    POpt::TupleSport,
    POpt::TupleDport,
    POpt::OrigVtag,
    POpt::ReplVtag,
];
const SCTP_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "state",
    "tuple-port-src",
    "tuple-port-dst",
    "orig-vtag",
    "reply-vtag",
];

fn sctp_matrix(c: usize) -> &'static [u8] {
    use cmd::*;
    match c {
        CT_LIST | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 2, 0, 0, 0, 0],
        CT_CREATE | CT_ADD => &[3, 3, 3, 3, 0, 0, 1, 0, 0, 1, 1],
        CT_UPDATE => &[2, 2, 2, 2, 0, 0, 2, 0, 0, 2, 2],
        CT_GET => &[3, 3, 3, 3, 0, 0, 2, 0, 0, 2, 2],
        EXP_CREATE => &[1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1],
        EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        _ => &[0; 11],
    }
}

const DCCP_OPTS: &[(&str, usize)] = &[
    ("orig-port-src", 0),
    ("orig-port-dst", 1),
    ("reply-port-src", 2),
    ("reply-port-dst", 3),
    ("mask-port-src", 4),
    ("mask-port-dst", 5),
    ("state", 6),
    ("tuple-port-src", 7),
    ("tuple-port-dst", 8),
    ("role", 9),
    ("sport", 0),
    ("dport", 1),
];
const DCCP_BITS: &[POpt] = &[
    POpt::OrigSport,
    POpt::OrigDport,
    POpt::ReplSport,
    POpt::ReplDport,
    POpt::MaskSport,
    POpt::MaskDport,
    POpt::State,
    POpt::TupleSport,
    POpt::TupleDport,
    POpt::Role,
];
const DCCP_FLAGS: &[&str] = &[
    "sport",
    "dport",
    "reply-port-src",
    "reply-port-dst",
    "mask-port-src",
    "mask-port-dst",
    "state",
    "tuple-port-src",
    "tuple-port-dst",
    "role",
];

fn dccp_matrix(c: usize) -> &'static [u8] {
    use cmd::*;
    match c {
        CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 2, 0, 0, 0],
        CT_CREATE | CT_ADD => &[3, 3, 3, 3, 0, 0, 1, 0, 0, 1],
        CT_GET => &[3, 3, 3, 3, 0, 0, 2, 0, 0, 0],
        EXP_CREATE => &[1, 1, 0, 0, 1, 1, 0, 1, 1, 1],
        EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
        _ => &[0; 10],
    }
}

const ICMP_OPTS: &[(&str, usize)] = &[("icmp-type", 0), ("icmp-code", 1), ("icmp-id", 2)];
const ICMPV6_OPTS: &[(&str, usize)] = &[("icmpv6-type", 0), ("icmpv6-code", 1), ("icmpv6-id", 2)];
const ICMP_BITS: &[POpt] = &[POpt::IcmpType, POpt::IcmpCode, POpt::IcmpId];
const ICMP_FLAGS: &[&str] = &["icmp-type", "icmp-code", "icmp-id"];
const ICMPV6_FLAGS: &[&str] = &["icmpv6-type", "icmpv6-code", "icmpv6-id"];

fn icmp_matrix(c: usize) -> &'static [u8] {
    use cmd::*;
    match c {
        CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2],
        CT_CREATE | CT_ADD | CT_GET => &[1, 1, 2],
        _ => &[0; 3],
    }
}

const GRE_OPTS: &[(&str, usize)] = &[
    ("orig-key-src", 0),
    ("srckey", 0),
    ("orig-key-dst", 1),
    ("dstkey", 1),
    ("reply-key-src", 2),
    ("reply-key-dst", 3),
    ("mask-key-src", 4),
    ("mask-key-dst", 5),
    ("tuple-key-src", 6),
    ("tuple-key-dst", 7),
];
const GRE_FLAGS: &[&str] = &[
    "srckey",
    "dstkey",
    "reply-key-src",
    "reply-key-dst",
    "mask-key-src",
    "mask-key-dst",
    "tuple-key-src",
    "tuple-key-dst",
];

fn gre_matrix(c: usize) -> &'static [u8] {
    use cmd::*;
    match c {
        CT_LIST | CT_UPDATE | CT_DELETE | CT_EVENT => &[2, 2, 2, 2, 0, 0, 0, 0],
        CT_CREATE | CT_ADD | CT_GET => &[3, 3, 3, 3, 0, 0, 0, 0],
        EXP_CREATE => &[1, 1, 1, 1, 1, 1, 1, 1],
        EXP_DELETE | EXP_GET => &[1, 1, 1, 1, 0, 0, 0, 0],
        _ => &[0; 8],
    }
}

fn no_matrix(_: usize) -> &'static [u8] {
    &[]
}

const PORT_HELP: &str = "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n";

const PORT_COUPLED: (&str, &str) = (
    "you have to specify `--sport' and `--dport'",
    "you have to specify `--reply-src-port' and `--reply-dst-port'",
);

pub static TCP: ProtoDef = ProtoDef {
    name: "tcp",
    num: IPPROTO_TCP,
    kind: Kind::Tcp,
    opts: TCP_OPTS,
    bits: PORT_BITS,
    optflags: TCP_FLAGS,
    matrix: tcp_matrix,
    coupled: Some(PORT_COUPLED),
    help: "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n  --state\t\t\tTCP state, fe. ESTABLISHED\n",
};

pub static UDP: ProtoDef = ProtoDef {
    name: "udp",
    num: IPPROTO_UDP,
    kind: Kind::Udp,
    opts: UDP_OPTS,
    bits: UDP_BITS,
    optflags: UDP_FLAGS,
    matrix: udp_matrix,
    coupled: Some(PORT_COUPLED),
    help: PORT_HELP,
};

pub static UDPLITE: ProtoDef = ProtoDef {
    name: "udplite",
    num: IPPROTO_UDPLITE,
    kind: Kind::Udp,
    opts: UDP_OPTS,
    bits: UDP_BITS,
    optflags: UDP_FLAGS,
    matrix: udp_matrix,
    coupled: Some(PORT_COUPLED),
    help: PORT_HELP,
};

pub static SCTP: ProtoDef = ProtoDef {
    name: "sctp",
    num: IPPROTO_SCTP,
    kind: Kind::Sctp,
    opts: SCTP_OPTS,
    bits: SCTP_BITS,
    optflags: SCTP_FLAGS,
    matrix: sctp_matrix,
    coupled: Some(PORT_COUPLED),
    help: "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n  --state\t\t\tSCTP state, fe. ESTABLISHED\n  --orig-vtag\t\toriginal verification tag\n  --reply-vtag\t\treply verification tag\n",
};

pub static DCCP: ProtoDef = ProtoDef {
    name: "dccp",
    num: IPPROTO_DCCP,
    kind: Kind::Dccp,
    opts: DCCP_OPTS,
    bits: DCCP_BITS,
    optflags: DCCP_FLAGS,
    matrix: dccp_matrix,
    coupled: Some((
        "you have to specify `--sport' and `--dport'",
        "you have to specify `--reply-port-src' and `--report-port-dst'",
    )),
    help: "  --orig-port-src\t\toriginal source port\n  --orig-port-dst\t\toriginal destination port\n  --reply-port-src\t\treply source port\n  --reply-port-dst\t\treply destination port\n  --mask-port-src\t\tmask source port\n  --mask-port-dst\t\tmask destination port\n  --tuple-port-src\t\texpectation tuple src port\n  --tuple-port-src\t\texpectation tuple dst port\n  --state\t\t\tDCCP state, fe. RESPOND\n",
};

pub static ICMP: ProtoDef = ProtoDef {
    name: "icmp",
    num: IPPROTO_ICMP,
    kind: Kind::Icmp,
    opts: ICMP_OPTS,
    bits: ICMP_BITS,
    optflags: ICMP_FLAGS,
    matrix: icmp_matrix,
    coupled: None,
    help: "  --icmp-type\t\t\ticmp type\n  --icmp-code\t\t\ticmp code\n  --icmp-id\t\t\ticmp id\n",
};

pub static ICMPV6: ProtoDef = ProtoDef {
    name: "icmpv6",
    num: IPPROTO_ICMPV6,
    kind: Kind::Icmpv6,
    opts: ICMPV6_OPTS,
    bits: ICMP_BITS,
    optflags: ICMPV6_FLAGS,
    matrix: icmp_matrix,
    coupled: None,
    help: "  --icmpv6-type\t\t\ticmpv6 type\n  --icmpv6-code\t\t\ticmpv6 code\n  --icmpv6-id\t\t\ticmpv6 id\n",
};

pub static GRE: ProtoDef = ProtoDef {
    name: "gre",
    num: IPPROTO_GRE,
    kind: Kind::Gre,
    opts: GRE_OPTS,
    bits: UDP_BITS,
    optflags: GRE_FLAGS,
    matrix: gre_matrix,
    coupled: Some((
        "you have to specify `--srckey' and `--dstkey'",
        "you have to specify `--reply-src-key' and `--reply-dst-key'",
    )),
    help: "  --orig-key-src\t\toriginal source key\n  --orig-key-dst\t\toriginal destination key\n  --reply-key-src\t\treply source key\n  --reply-key-dst\t\treply destination key\n  --mask-key-src\t\tmask source key\n  --mask-key-dst\t\tmask destination key\n  --tuple-key-src\t\texpectation tuple src key\n  --tuple-key-src\t\texpectation tuple dst key\n",
};

pub static UNKNOWN: ProtoDef = ProtoDef {
    name: "unknown",
    num: 0,
    kind: Kind::Unknown,
    opts: &[],
    bits: &[],
    optflags: &[],
    matrix: no_matrix,
    coupled: None,
    help: "  no options (unsupported)\n",
};

/// Built-in handlers in the order the C tool registers (and searches) them.
pub static BUILTIN: [&ProtoDef; 8] = [&TCP, &UDP, &UDPLITE, &SCTP, &DCCP, &ICMP, &ICMPV6, &GRE];

/// The handler for a protocol number (for output and `-o save`).
pub fn by_number(n: u8) -> Option<&'static ProtoDef> {
    BUILTIN.iter().copied().find(|h| h.num == n)
}
