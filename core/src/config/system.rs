//! What the parser needs to ask the operating system, behind a trait so
//! that the parser itself stays free of I/O and tests can pin the answers.
//!
//! [`OsLookup`] is the real thing: it reads `/etc/protocols` and
//! `/sys/class/net` (it only reads files; it opens no socket). Note that
//! `/sys/class/net` shows the interfaces of the network namespace that
//! mounted sysfs, which `ip netns exec` takes care of.

use std::path::{Path, PathBuf};

use super::helper::HelperL4;

/// The policies a user-space helper offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperInfo {
    /// Names accepted by `Policy NAME { }`.
    pub policies: Vec<String>,
}

/// The system look-ups of upstream's parser.
pub trait SystemLookup {
    /// `getprotobyname(name)`: the protocol whose name or alias is exactly
    /// `name` (case-sensitive).
    fn protocol_by_name(&self, name: &str) -> Option<u32>;

    /// `if_nametoindex(name) != 0`. Names of 16 bytes or more are rejected
    /// by the parser before asking.
    fn interface_exists(&self, name: &str) -> bool;

    /// The user-space helper `name` for layer-4 protocol `l4`
    /// (upstream loads `ct_helper_NAME.so`).
    fn helper(&self, name: &str, l4: HelperL4) -> Option<HelperInfo> {
        builtin_helper(name, l4)
    }
}

/// The user-space helpers shipped with conntrack-tools 1.4.7: name, layer
/// 4 protocols; each has one policy named like the helper.
pub const BUILTIN_HELPERS: &[(&str, &[HelperL4])] = &[
    ("amanda", &[HelperL4::Udp]),
    ("dhcpv6", &[HelperL4::Udp]),
    ("ftp", &[HelperL4::Tcp]),
    ("mdns", &[HelperL4::Udp]),
    ("rpc", &[HelperL4::Tcp, HelperL4::Udp]),
    ("sane", &[HelperL4::Tcp]),
    ("slp", &[HelperL4::Udp]),
    ("ssdp", &[HelperL4::Tcp, HelperL4::Udp]),
    ("tftp", &[HelperL4::Udp]),
    ("tns", &[HelperL4::Tcp]),
];

/// Look `name`/`l4` up in [`BUILTIN_HELPERS`].
pub fn builtin_helper(name: &str, l4: HelperL4) -> Option<HelperInfo> {
    BUILTIN_HELPERS
        .iter()
        .find(|(n, l4s)| *n == name && l4s.contains(&l4))
        .map(|(n, _)| HelperInfo {
            policies: vec![n.to_string()],
        })
}

/// Parse the text of an `/etc/protocols` file and find `name` among the
/// names and aliases.
pub fn protocol_in(text: &str, name: &str) -> Option<u32> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(proto), Some(num)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(num) = num.parse::<u32>() else {
            continue;
        };
        if proto == name || words.any(|a| a == name) {
            // glibc keeps the number as an int (`mptcp` is 262)
            return Some(num);
        }
    }
    None
}

/// The operating system: `/etc/protocols`, `/sys/class/net`, and the
/// built-in helper table.
#[derive(Clone, Debug)]
pub struct OsLookup {
    protocols: PathBuf,
    sys_class_net: PathBuf,
}

impl Default for OsLookup {
    fn default() -> OsLookup {
        OsLookup {
            protocols: PathBuf::from("/etc/protocols"),
            sys_class_net: PathBuf::from("/sys/class/net"),
        }
    }
}

impl OsLookup {
    /// The real files.
    pub fn new() -> OsLookup {
        OsLookup::default()
    }

    /// Other files (for tests or a chroot).
    pub fn with_paths(protocols: &Path, sys_class_net: &Path) -> OsLookup {
        OsLookup {
            protocols: protocols.to_path_buf(),
            sys_class_net: sys_class_net.to_path_buf(),
        }
    }
}

impl SystemLookup for OsLookup {
    fn protocol_by_name(&self, name: &str) -> Option<u32> {
        let bytes = std::fs::read(&self.protocols).ok()?;
        protocol_in(&String::from_utf8_lossy(&bytes), name)
    }

    fn interface_exists(&self, name: &str) -> bool {
        !name.is_empty()
            && name.len() < 16
            && name != "."
            && name != ".."
            && !name.contains('/')
            && self.sys_class_net.join(name).exists()
    }
}

/// Fixed answers, for tests and for tools that already know them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticLookup {
    /// `(name or alias, number)`.
    pub protocols: Vec<(String, u32)>,
    /// Existing interfaces.
    pub interfaces: Vec<String>,
}

impl StaticLookup {
    /// Debian's usual protocols (tcp/TCP, udp/UDP, icmp/ICMP, sctp/SCTP,
    /// dccp/DCCP, ipv6-icmp/IPv6-ICMP, gre/GRE, udplite/UDPLite) and the
    /// given interfaces.
    pub fn debian(interfaces: &[&str]) -> StaticLookup {
        let p = [
            ("ip", 0),
            ("IP", 0),
            ("icmp", 1),
            ("ICMP", 1),
            ("tcp", 6),
            ("TCP", 6),
            ("udp", 17),
            ("UDP", 17),
            ("ipv6-icmp", 58),
            ("IPv6-ICMP", 58),
            ("gre", 47),
            ("GRE", 47),
            ("dccp", 33),
            ("DCCP", 33),
            ("sctp", 132),
            ("SCTP", 132),
            ("udplite", 136),
            ("UDPLite", 136),
        ];
        StaticLookup {
            protocols: p.iter().map(|&(n, v)| (n.to_string(), v)).collect(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl SystemLookup for StaticLookup {
    fn protocol_by_name(&self, name: &str) -> Option<u32> {
        self.protocols
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    fn interface_exists(&self, name: &str) -> bool {
        self.interfaces.iter().any(|i| i == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_file_names_and_aliases() {
        let text = "# comment\nip\t0\tIP\ntcp\t6\tTCP\t\t# transmission\nipv6-icmp 58 IPv6-ICMP\n";
        assert_eq!(protocol_in(text, "tcp"), Some(6));
        assert_eq!(protocol_in(text, "TCP"), Some(6));
        assert_eq!(protocol_in(text, "Tcp"), None);
        assert_eq!(protocol_in(text, "IPv6-ICMP"), Some(58));
        assert_eq!(protocol_in(text, "transmission"), None);
    }

    #[test]
    fn helpers_by_l4() {
        assert!(builtin_helper("ftp", HelperL4::Tcp).is_some());
        assert!(builtin_helper("ftp", HelperL4::Udp).is_none());
        assert!(builtin_helper("rpc", HelperL4::Udp).is_some());
        assert!(builtin_helper("sip", HelperL4::Udp).is_none());
    }
}
