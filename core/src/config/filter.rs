//! `Filter { }` of `General { }`: which flows the daemon handles.
//!
//! Upstream keeps ONE filter for all `Filter` blocks: items accumulate
//! across blocks, and each `Protocol`/`Address`/`State` block sets the
//! Accept/Ignore logic of its kind (the last one wins for the user-space
//! check). The kernel-space (BPF) filter only ever switches a kind to
//! "ignore", so its logic is Ignore as soon as one Ignore block of that
//! kind appeared; both are recorded.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Accept or Ignore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterPolicy {
    /// Only the listed items pass.
    Accept,
    /// The listed items are dropped.
    Ignore,
}

/// Where events are filtered (`Filter From ...`; the last block decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FilterSource {
    /// `From Userspace` or plain `Filter`.
    #[default]
    Userspace,
    /// `From Kernelspace`: a BPF filter on the event socket.
    Kernelspace,
}

/// A TCP state of `State Accept|Ignore { ... for TCP }`, with the kernel's
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    /// `SYN_SENT` (1).
    SynSent = 1,
    /// `SYN_RECV` (2).
    SynRecv = 2,
    /// `ESTABLISHED` (3).
    Established = 3,
    /// `FIN_WAIT` (4).
    FinWait = 4,
    /// `CLOSE_WAIT` (5).
    CloseWait = 5,
    /// `LAST_ACK` (6).
    LastAck = 6,
    /// `TIME_WAIT` (7).
    TimeWait = 7,
    /// `CLOSE` or `CLOSED` (8).
    Close = 8,
    /// `LISTEN` (9, which the kernel calls SYN_SENT2).
    Listen = 9,
}

/// One kind of rule: its logic and its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule<T> {
    /// Logic of the user-space check (last block of this kind).
    pub policy: FilterPolicy,
    /// Logic of the kernel-space filter (Ignore once any Ignore block).
    pub kernel_policy: FilterPolicy,
    /// Items in order of appearance, without duplicates.
    pub items: Vec<T>,
}

/// An IPv4 network `addr/prefix` (prefix < 32; `addr` is kept as written,
/// not masked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address as written.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=31.
    pub prefix: u8,
}

/// An IPv6 network `addr/prefix` (prefix < 128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    /// The address as written.
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=127.
    pub prefix: u8,
}

/// The addresses of `Address Accept|Ignore { }` blocks. Upstream checks the
/// networks first, then the exact addresses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Addresses {
    /// Exact IPv4 addresses (also `a.b.c.d/32`).
    pub ipv4: Vec<Ipv4Addr>,
    /// Exact IPv6 addresses (also `/128`).
    pub ipv6: Vec<Ipv6Addr>,
    /// IPv4 networks.
    pub ipv4_nets: Vec<Ipv4Net>,
    /// IPv6 networks (upstream's duplicate check for these is broken, so
    /// duplicates are kept).
    pub ipv6_nets: Vec<Ipv6Net>,
}

/// The merged `Filter { }` blocks.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Filter {
    /// Where events are filtered.
    pub source: FilterSource,
    /// `Protocol` rule: protocol numbers as `getprotobyname` gives them
    /// (one above 255, as `mptcp` 262, matches no flow, as in 1.4.7).
    pub protocol: Option<Rule<u32>>,
    /// `Address` rule.
    pub address: Option<AddressRule>,
    /// `State` rule (TCP states).
    pub state: Option<Rule<TcpState>>,
}

/// The `Address` rule: logic plus the address sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRule {
    /// Logic of the user-space check (last block).
    pub policy: FilterPolicy,
    /// Logic of the kernel-space filter.
    pub kernel_policy: FilterPolicy,
    /// The addresses and networks.
    pub addresses: Addresses,
}
