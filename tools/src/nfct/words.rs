//! The words of nfct 1.4.7's command line: its command and subsystem
//! tables (matched by prefix, first hit wins), the family names, the L4
//! protocol lookup (`getprotobyname` over /etc/protocols, then `icmpv6`
//! and `generic`) and C `atoi` values.

/// A command, in 1.4.7's table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    List,
    Add,
    Delete,
    Get,
    Flush,
    Disable,
    DefaultSet,
    DefaultGet,
}

const CMDS: &[(&str, Cmd)] = &[
    ("list", Cmd::List),
    ("add", Cmd::Add),
    ("delete", Cmd::Delete),
    ("get", Cmd::Get),
    ("flush", Cmd::Flush),
    ("disable", Cmd::Disable),
    ("default-set", Cmd::DefaultSet),
    ("default-get", Cmd::DefaultGet),
];

/// A subsystem. `help` is in 1.4.7's table but every prefix of it is a
/// prefix of `helper`, found first, so it can never be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsys {
    Timeout,
    Helper,
    Version,
}

const SUBSYS: &[(&str, Subsys)] = &[
    ("timeout", Subsys::Timeout),
    ("helper", Subsys::Helper),
    ("version", Subsys::Version),
];

/// The first entry `word` is a prefix of (the empty word matches the
/// first), case-sensitive, as 1.4.7's `strncmp(entry, word, strlen(word))`.
fn prefix<T: Copy>(table: &[(&str, T)], word: &str) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| name.starts_with(word))
        .map(|&(_, v)| v)
}

pub fn cmd(word: &str) -> Option<Cmd> {
    prefix(CMDS, word)
}

pub fn subsys(word: &str) -> Option<Subsys> {
    prefix(SUBSYS, word)
}

/// `inet` or `inet6`, exactly.
pub fn family(word: &str) -> Option<u16> {
    match word {
        "inet" => Some(2),
        "inet6" => Some(10),
        _ => None,
    }
}

/// The protocol number of an official name or alias of a protocols(5)
/// text, as `getprotobyname` (the daemon's config parser uses it too).
pub use ct_core::config::protocol_in;

/// nfct's L4 protocol: the system's protocol database, then `icmpv6` (58)
/// and `generic` (255). The number goes on the wire as a u8, as 1.4.7
/// truncates it (`mptcp`, 262, is sent as 6).
pub fn l4proto(word: &str) -> Option<u8> {
    l4proto_number(word).map(|n| n as u8)
}

/// The whole protocol number behind [`l4proto`].
pub fn l4proto_number(word: &str) -> Option<u32> {
    let db = std::fs::read_to_string("/etc/protocols").unwrap_or_default();
    if let Some(n) = protocol_in(&db, word) {
        return Some(n);
    }
    match word {
        "icmpv6" => Some(58),
        "generic" => Some(255),
        _ => None,
    }
}

/// C `atoi` as nfct sends it: `strtol` saturated, low 32 bits.
pub fn value(word: &str) -> u32 {
    crate::cli::cparse::atoi(word) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_by_prefix_in_table_order() {
        assert_eq!(cmd(""), Some(Cmd::List));
        assert_eq!(cmd("d"), Some(Cmd::Delete));
        assert_eq!(cmd("di"), Some(Cmd::Disable));
        assert_eq!(cmd("def"), Some(Cmd::DefaultSet));
        assert_eq!(cmd("default-g"), Some(Cmd::DefaultGet));
        assert_eq!(cmd("LIST"), None);
        assert_eq!(cmd("listx"), None);
        assert_eq!(subsys(""), Some(Subsys::Timeout));
        assert_eq!(subsys("help"), Some(Subsys::Helper));
        assert_eq!(subsys("v"), Some(Subsys::Version));
        assert_eq!(subsys("-h"), None);
    }

    #[test]
    fn protocols_by_name_or_alias() {
        let db = "# comment\nip\t0\tIP\ntcp 6 TCP # x\nmptcp\t262\tMPTCP\nipv6-icmp 58 IPv6-ICMP\n";
        assert_eq!(protocol_in(db, "TCP"), Some(6));
        assert_eq!(protocol_in(db, "Tcp"), None);
        assert_eq!(protocol_in(db, "IPv6-ICMP"), Some(58));
        assert_eq!(protocol_in(db, "mptcp"), Some(262));
        assert_eq!(protocol_in(db, "6"), None);
    }

    #[test]
    fn values_are_atoi() {
        for (w, v) in [
            ("abc", 0),
            ("", 0),
            ("12abc", 12),
            ("+5", 5),
            (" 7", 7),
            ("0x20", 0),
            ("3.9", 3),
            ("-1", u32::MAX),
            ("4294967296", 0),
            ("4294967297", 1),
            ("2147483648", 0x8000_0000),
            ("-2147483649", 0x7FFF_FFFF),
            ("99999999999999999999", u32::MAX),
            ("-99999999999999999999", 0),
        ] {
            assert_eq!(value(w), v, "{w:?}");
        }
    }
}
