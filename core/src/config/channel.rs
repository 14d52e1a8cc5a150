//! Dedicated-link (channel) blocks of `Sync { }`: `Multicast`, `UDP` and
//! `TCP`.

use std::net::{IpAddr, Ipv4Addr};

/// An address family a channel was configured for (upstream's `ipproto`:
/// the family of the last address option that was accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// AF_INET.
    Ipv4,
    /// AF_INET6.
    Ipv6,
}

/// The transport of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelType {
    /// `Multicast { }`.
    Multicast,
    /// `UDP { }`.
    Udp,
    /// `TCP { }`.
    Tcp,
}

impl ChannelType {
    /// The keyword that opens such a block.
    pub fn keyword(&self) -> &'static str {
        match self {
            ChannelType::Multicast => "Multicast",
            ChannelType::Udp => "UDP",
            ChannelType::Tcp => "TCP",
        }
    }
}

/// One channel block.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// The transport.
    pub kind: ChannelType,
    /// Marked `Default`.
    pub default: bool,
    /// `Interface` (required by the daemon; not checked by the parser).
    pub interface: Option<String>,
    /// Family of the last accepted address option; `None` if none.
    pub family: Option<Family>,
    /// Multicast: the group (`IPv4_address`/`IPv6_address`). UDP/TCP: the
    /// local address to bind (`IPv4_address`/`IPv6_address`).
    pub address: Option<IpAddr>,
    /// UDP/TCP: the peer (`IPv4_Destination_Address`/
    /// `IPv6_Destination_Address`). Always `None` for multicast.
    pub destination: Option<IpAddr>,
    /// Multicast: `IPv4_interface` (local address for the membership).
    pub interface_address: Option<Ipv4Addr>,
    /// Multicast `Group` or UDP/TCP `Port` (truncated to 16 bits as the
    /// daemon's `htons` does); 0 when absent (there is no default).
    pub port: u16,
    /// `SndSocketBuffer` (bytes, 0 = system default).
    pub sndbuf: u32,
    /// `RcvSocketBuffer` (bytes, 0 = system default).
    pub rcvbuf: u32,
    /// `Checksum` (on by default: UDP checksums are computed).
    pub checksum: bool,
    /// IPv6 multicast: whether 1.4.7 knows the `Interface`'s index for
    /// the group. It does when `Interface` follows `IPv6_address`; when it
    /// comes first, 1.4.7 looks the group ADDRESS up as an interface name,
    /// warns (`... is an invalid interface`) and joins with index 0 (the
    /// routing table's choice).
    pub v6_group_index: bool,
}

impl Channel {
    /// An empty channel block of type `kind`.
    pub fn new(kind: ChannelType) -> Channel {
        Channel {
            kind,
            default: false,
            interface: None,
            family: None,
            address: None,
            destination: None,
            interface_address: None,
            port: 0,
            sndbuf: 0,
            rcvbuf: 0,
            checksum: true,
            v6_group_index: false,
        }
    }
}
