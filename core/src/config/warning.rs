//! Warnings about a configuration that is accepted nonetheless, each with
//! the exact text conntrackd 1.4.7 logs at level `warning`.

use std::fmt;

use super::span::Span;

/// When upstream prints the warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// While parsing (client and daemon modes).
    Parse,
    /// In `evaluate()`, right after parsing (client and daemon modes).
    Evaluate,
    /// When the daemon initialises its mode (daemon mode only).
    Init,
}

/// A warning with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where: the token or statement concerned.
    pub span: Span,
    /// When upstream prints it.
    pub phase: Phase,
    /// What.
    pub kind: WarningKind,
}

impl Warning {
    /// The message conntrackd 1.4.7 logs for this warning, without the
    /// `[time] (pid=N) [warning] ` prefix (it may end with `\n`, which
    /// upstream prints as an extra empty line).
    pub fn c_message(&self) -> String {
        self.kind.c_message()
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.span, self.kind)
    }
}

/// The kinds of warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// `Mode PERSISTENT` (now ALARM).
    PersistentRenamed,
    /// `Mode NACK` (now FTFW).
    NackRenamed,
    /// `Syslog NAME` with an unknown facility (ignored); `stats` when in
    /// `Stats { }` (whose message ends with a period).
    UnknownSyslogFacility {
        /// The name given.
        name: String,
        /// Inside `Stats { }`.
        stats: bool,
    },
    /// General and Stats name different syslog facilities.
    ConflictingSyslog,
    /// `UNIX { Backlog N }` (ignored).
    UnixBacklogDeprecated,
    /// `Nice N` (ignored).
    NiceDeprecated,
    /// An IPv4 channel address that `inet_aton` rejects (ignored).
    InvalidIpv4Address {
        /// The text given.
        addr: String,
    },
    /// An IPv6 channel address that `inet_pton` rejects (ignored).
    InvalidIpv6Address {
        /// The text given.
        addr: String,
    },
    /// Multicast `IPv4_address` after an IPv6 address.
    MulticastV4AddressOnV6,
    /// Multicast `IPv4_interface` after an IPv6 address.
    MulticastV4InterfaceOnV6,
    /// Multicast `IPv6_address` after an IPv4 address or interface.
    MulticastV6AddressOnV4,
    /// Multicast `IPv6_interface` (ignored).
    Ipv6InterfaceIgnored,
    /// An interface name that does not exist. Upstream also looks up a
    /// multicast `IPv6_address` given after `Interface` as if it were an
    /// interface name, which always gives this warning with the address.
    InvalidInterface {
        /// The name looked up.
        name: String,
    },
    /// A filter network with a prefix longer than the address (ignored).
    InvalidNetwork {
        /// The address part.
        addr: String,
        /// The prefix as upstream reads it (`atoi`).
        prefix: i32,
    },
    /// A filter `IPv4_address` that is not an address (ignored).
    InvalidFilterIpv4 {
        /// The text given (without `/prefix`).
        addr: String,
    },
    /// A filter `IPv6_address` that is not an address (ignored).
    InvalidFilterIpv6 {
        /// The text given (without `/prefix`).
        addr: String,
    },
    /// The same IPv4 network twice in the filter.
    NetmaskRepeated {
        /// The address part.
        addr: String,
    },
    /// A filter protocol not in /etc/protocols (ignored).
    UnknownProtocol {
        /// The name given.
        name: String,
    },
    /// `CommitTimeout` with `DisableExternalCache on`: the timeout is reset.
    CommitTimeoutIgnored,
    /// `Sync` without `Mode`: FTFW is used.
    NoSyncMode,
}

impl WarningKind {
    /// Upstream's text.
    pub fn c_message(&self) -> String {
        use WarningKind::*;
        match self {
            PersistentRenamed => "Now `persistent' mode is called `alarm'. Please, update your \
                                  conntrackd.conf file."
                .to_string(),
            NackRenamed => {
                "Now `nack' mode is called `ftfw'. Please, update your conntrackd.conf file.\n"
                    .to_string()
            }
            UnknownSyslogFacility { name, stats } => format!(
                "'{name}' is not a known syslog facility, ignoring{}",
                if *stats { "." } else { "" }
            ),
            ConflictingSyslog => "conflicting Syslog facility values, defaulting to General".into(),
            UnixBacklogDeprecated => "deprecated unix backlog configuration, ignoring.".into(),
            NiceDeprecated => "deprecated nice configuration, ignoring. The nice value can be set \
                               externally with nice(1) and renice(1)."
                .into(),
            InvalidIpv4Address { addr } => format!("{addr} is not a valid IPv4 address"),
            InvalidIpv6Address { addr } => format!("{addr} is not a valid IPv6 address"),
            MulticastV4AddressOnV6 => "your multicast address is IPv4 but is binded to an IPv6 \
                                       interface? Surely, this is not what you want"
                .into(),
            MulticastV4InterfaceOnV6 => "your multicast interface is IPv4 but is binded to an \
                                         IPv6 interface? Surely, this is not what you want"
                .into(),
            MulticastV6AddressOnV4 => "your multicast address is IPv6 but is binded to an IPv4 \
                                       interface? Surely this is not what you want"
                .into(),
            Ipv6InterfaceIgnored => "`IPv6_interface' not required, ignoring".into(),
            InvalidInterface { name } => format!("{name} is an invalid interface"),
            InvalidNetwork { addr, prefix } => {
                format!("{addr}/{prefix} is not a valid network, ignoring")
            }
            InvalidFilterIpv4 { addr } => format!("{addr} is not a valid IPv4, ignoring"),
            InvalidFilterIpv6 { addr } => format!("{addr} is not a valid IPv6, ignoring"),
            NetmaskRepeated { addr } => format!("netmask {addr} is repeated in the ignore pool"),
            UnknownProtocol { name } => {
                format!("getprotobyname() cannot find protocol `{name}' in /etc/protocols")
            }
            CommitTimeoutIgnored => "`CommitTimeout' can't be combined with \
                                     `DisableExternalCache', ignoring this option. Fix your \
                                     configuration file."
                .into(),
            NoSyncMode => "No synchronization mode specified. Defaulting to FT-FW mode.".into(),
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.c_message().trim_end_matches('\n'))
    }
}
