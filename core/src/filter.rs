//! The `Filter { }` rules of conntrackd.conf applied in userspace to
//! events, dumps and resyncs: protocol, address (orig.src and reply.src,
//! CIDR lists checked first) and TCP state, with 1.4.7's Accept/Ignore
//! logic.

use std::net::IpAddr;

use crate::config::{AddressRule, Filter, FilterPolicy};
use crate::flow::Flow;
use crate::proto::IPPROTO_TCP;

fn v4_in(a: std::net::Ipv4Addr, net: std::net::Ipv4Addr, prefix: u8) -> bool {
    let m = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32) as u32)
    };
    u32::from(a) & m == u32::from(net) & m
}

fn v6_in(a: std::net::Ipv6Addr, net: std::net::Ipv6Addr, prefix: u8) -> bool {
    let m = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix.min(128) as u32)
    };
    u128::from(a) & m == u128::from(net) & m
}

fn address_ok(r: &AddressRule, f: &Flow) -> bool {
    let accept = r.policy == FilterPolicy::Accept;
    let cands = [f.orig.and_then(|o| o.src), f.reply.and_then(|t| t.src)];
    let a = &r.addresses;
    // CIDR lists first: a hit decides.
    for c in cands.iter().flatten() {
        let hit = match c {
            IpAddr::V4(v) => a.ipv4_nets.iter().any(|n| v4_in(*v, n.addr, n.prefix)),
            IpAddr::V6(v) => a.ipv6_nets.iter().any(|n| v6_in(*v, n.addr, n.prefix)),
        };
        if hit {
            return accept;
        }
    }
    let hit = cands.iter().flatten().any(|c| match c {
        IpAddr::V4(v) => a.ipv4.contains(v),
        IpAddr::V6(v) => a.ipv6.contains(v),
    });
    hit == accept
}

/// Whether a flow passes the configured filter.
pub fn accept(filter: &Filter, f: &Flow) -> bool {
    if let Some(p) = &filter.protocol {
        let proto = u32::from(f.l4proto().unwrap_or(0));
        if p.items.contains(&proto) != (p.policy == FilterPolicy::Accept) {
            return false;
        }
    }
    if let Some(a) = &filter.address {
        if !address_ok(a, f) {
            return false;
        }
    }
    if let Some(s) = &filter.state {
        if f.l4proto() == Some(IPPROTO_TCP) {
            if let Some(st) = f.protoinfo.and_then(|p| p.tcp).and_then(|t| t.state) {
                let hit = s.items.iter().any(|x| *x as u8 == st);
                if hit != (s.policy == FilterPolicy::Accept) {
                    return false;
                }
            }
        }
    }
    true
}
