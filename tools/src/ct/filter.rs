//! The userspace filter applied to every dumped entry and event
//! (`nfct_filter` of the C tool): NAT, mark, labels, network masks and
//! the comparison with the command-line template.

use std::net::IpAddr;

use ct_core::flow::Flow;

use crate::cli::args::{opt, Cmd};

/// Network filter of one direction: `(addr & mask) == network`.
#[derive(Debug, Clone, Copy)]
pub struct NetFilter {
    pub family: u8,
    pub network: IpAddr,
    pub mask: IpAddr,
}

fn and(a: IpAddr, m: IpAddr) -> Option<IpAddr> {
    match (a, m) {
        (IpAddr::V4(a), IpAddr::V4(m)) => Some(IpAddr::V4((u32::from(a) & u32::from(m)).into())),
        (IpAddr::V6(a), IpAddr::V6(m)) => Some(IpAddr::V6((u128::from(a) & u128::from(m)).into())),
        _ => None,
    }
}

/// The prepared filter (`nfct_filter_init`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub family: u8,
    pub src: Option<NetFilter>,
    pub dst: Option<NetFilter>,
}

impl Filter {
    /// Prepares the network filters and removes the exact addresses they
    /// replace from the template. Fails like the C tool when a mask has no
    /// address.
    pub fn init(c: &mut Cmd) -> Result<Filter, crate::cli::args::CliError> {
        let mut f = Filter {
            family: c.family,
            ..Filter::default()
        };
        if c.has(opt::MASK_SRC) {
            if !c.has(opt::ORIG_SRC) {
                return Err(crate::cli::args::CliError::param(
                    "Can't use --mask-src without --src",
                ));
            }
            let a = c.tmpl.orig.src.take();
            f.src = net(c.family, a, c.mask.src);
        }
        if c.has(opt::MASK_DST) {
            if !c.has(opt::ORIG_DST) {
                return Err(crate::cli::args::CliError::param(
                    "Can't use --mask-dst without --dst",
                ));
            }
            let a = c.tmpl.orig.dst.take();
            f.dst = net(c.family, a, c.mask.dst);
        }
        Ok(f)
    }
}

fn net(family: u8, a: Option<IpAddr>, m: Option<IpAddr>) -> Option<NetFilter> {
    let (a, m) = (a?, m?);
    Some(NetFilter {
        family,
        network: and(a, m)?,
        mask: m,
    })
}

fn net_match(nf: &Option<NetFilter>, ct: &Flow, src: bool) -> bool {
    let Some(nf) = nf else { return true };
    if ct.l3_family() != nf.family {
        return false;
    }
    let o = ct.orig.unwrap_or_default();
    let a = if src { o.src } else { o.dst };
    match a.and_then(|a| and(a, nf.mask)) {
        Some(x) => x == nf.network,
        None => false,
    }
}

/// `filter_nat`: true when the entry passes the NAT options.
pub fn nat_ok(c: &Cmd, ct: &Flow) -> bool {
    // Only a protocol with ports is port-translated, as in
    // libnetfilter_conntrack after 1.0.9: 1.4.7's took every ICMP entry
    // of a namespace with NAT hooks for one (conntrack(8), DIFFERENCES).
    let spat = || ct.has_ports() && ct.is_spat();
    let dpat = || ct.has_ports() && ct.is_dpat();
    let any = c.has(opt::ANY_NAT);
    let check_src = c.has(opt::SRC_NAT) || any;
    let check_dst = c.has(opt::DST_NAT) || any;
    let r = ct.reply.unwrap_or_default();
    let v4 = |a: Option<IpAddr>| matches!(a, Some(IpAddr::V4(_)));
    let mut has_src = false;
    let mut has_dst = false;
    if check_src {
        let (mut ca, mut cp) = (false, false);
        if v4(c.tmpl.snat_ip) {
            ca = true;
            if ct.is_snat() && r.dst == c.tmpl.snat_ip {
                has_src = true;
            }
        }
        if let Some(p) = c.tmpl.snat_port {
            cp = true;
            let ok = spat() && r.dst_port == Some(p);
            if ca && has_src && !ok {
                has_src = false;
            }
            if !ca && ok {
                has_src = true;
            }
        }
        if !ca && !cp && (ct.is_snat() || spat()) {
            has_src = true;
        }
    }
    if check_dst {
        let (mut ca, mut cp) = (false, false);
        if v4(c.tmpl.dnat_ip) {
            ca = true;
            if ct.is_dnat() && r.src == c.tmpl.dnat_ip {
                has_dst = true;
            }
        }
        if let Some(p) = c.tmpl.dnat_port {
            cp = true;
            let ok = dpat() && r.src_port == Some(p);
            if ca && has_dst && !ok {
                has_dst = false;
            }
            if !ca && ok {
                has_dst = true;
            }
        }
        if !ca && !cp && (ct.is_dnat() || dpat()) {
            has_dst = true;
        }
    }
    if any {
        has_src || has_dst
    } else if c.has(opt::SRC_NAT) && c.has(opt::DST_NAT) {
        has_src && has_dst
    } else if c.has(opt::SRC_NAT) {
        has_src
    } else if c.has(opt::DST_NAT) {
        has_dst
    } else {
        true
    }
}

/// `filter_label`: every requested label bit is set on the entry.
pub fn label_ok(c: &Cmd, ct: &Flow) -> bool {
    let Some(want) = &c.label else { return true };
    let Some(have) = &ct.labels else { return false };
    (0..want.bits()).all(|i| !want.get(i) || have.get(i))
}

/// `filter_mark`.
pub fn mark_ok(c: &Cmd, ct: &Flow) -> bool {
    if !c.has(opt::MARK) {
        return true;
    }
    match ct.mark {
        Some(m) => m & c.mark.1 == c.mark.0,
        None => false,
    }
}

/// `filter_network`.
pub fn network_ok(f: &Filter, ct: &Flow) -> bool {
    net_match(&f.src, ct, true) && net_match(&f.dst, ct, false)
}

/// `nfct_filter`: true when the entry is to be shown.
pub fn accept(c: &Cmd, f: &Filter, ct: &Flow) -> bool {
    if !nat_ok(c, ct) || !mark_ok(c, ct) || !label_ok(c, ct) || !network_ok(f, ct) {
        return false;
    }
    if c.options & opt::COMPARISON != 0 && !c.tmpl.matches(ct) {
        return false;
    }
    true
}
