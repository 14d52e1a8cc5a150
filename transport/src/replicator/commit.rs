//! What a commit writes into the kernel (`conntrackd -c`): every live
//! external entry as the object 1.4.7 creates for it (timeout estimated
//! from the synced one, EXPECTED cleared, reply tuple regenerated,
//! BE_LIBERAL forced unless window tracking (with it, the window scales
//! flagged so that the kernel takes them), NAT re-applied through
//! CTA_NAT_*), masters before related entries. The daemon's committers
//! send these in batches over several netlink sockets at once;
//! [`commit_into`] writes them into any [`KernelTable`] (the in-process
//! tests' fake), with the same EEXIST rule: delete, then create once more.

use ct_core::config::SyncSection;
use ct_core::flow::{Flow, Nat};
use ct_core::proto::{status, TCP_FLAG_BE_LIBERAL, TCP_FLAG_WINDOW_SCALE};
use ct_core::table::{Cache, KernelTable, ObjState};

/// `EEXIST`.
const EEXIST: i32 = 17;

/// The ICMP (ICMPv6 for `AF_INET6`) type answering `t`, for the types the
/// kernel tracks as connections (`ct_core::proto::icmp_reply_type`, which
/// says 255 for the others).
pub fn icmp_reply_type(family: u8, t: u8) -> Option<u8> {
    match ct_core::proto::icmp_reply_type(family == ct_core::flow::AF_INET6, t) {
        255 => None,
        r => Some(r),
    }
}

/// Sets `flag` (in flags and mask) for both directions.
fn or_tcp_flag(t: &mut ct_core::flow::TcpInfo, flag: u8) {
    for f in [&mut t.flags_orig, &mut t.flags_reply] {
        let (a, m) = f.unwrap_or((0, 0));
        *f = Some((a | flag, m | flag));
    }
}

/// The object to create for a cached entry last updated `age` seconds
/// ago.
pub fn commit_object(f: &Flow, sync: &SyncSection, age: u32) -> Flow {
    let mut c = *f;
    c.timeout = if sync.commit_timeout > 0 {
        Some(sync.commit_timeout)
    } else {
        f.timeout.map(|t| {
            let left = t as i64 - age as i64;
            if left <= 0 {
                60
            } else {
                left as u32
            }
        })
    };
    c.status = Some(f.status.unwrap_or(0) & !status::EXPECTED);
    // NAT is re-applied by the kernel from CTA_NAT_*, derived from the
    // reply tuple the cache holds.
    if let Some(r) = f.reply.filter(|_| f.orig.is_some()) {
        if f.is_snat() {
            c.nat_src = Some(Nat {
                min_ip: r.dst,
                min_port: f.is_spat().then_some(r.dst_port).flatten(),
                max_port: f.is_spat().then_some(r.dst_port).flatten(),
                ..Nat::default()
            });
        }
        if f.is_dnat() {
            c.nat_dst = Some(Nat {
                min_ip: r.src,
                min_port: f.is_dpat().then_some(r.src_port).flatten(),
                max_port: f.is_dpat().then_some(r.src_port).flatten(),
                ..Nat::default()
            });
        }
    }
    // Reply tuple regenerated from the original.
    c.reply = f.orig.map(|o| ct_core::flow::Tuple {
        src: o.dst,
        dst: o.src,
        src_port: o.dst_port,
        dst_port: o.src_port,
        // the reply of a request is its answer (echo 8 -> echo reply 0),
        // as libnetfilter_conntrack inverts it for 1.4.7; the sync
        // message carries the original type only
        icmp_type: o
            .icmp_type
            .and_then(|t| icmp_reply_type(f.family, t))
            .or(f.reply.and_then(|r| r.icmp_type))
            .or(o.icmp_type),
        icmp_code: o.icmp_code,
        icmp_id: o.icmp_id,
        zone: f.reply.and_then(|r| r.zone),
        ..o
    });
    // A protocol whose tuple has ports gets them, zero when the message
    // had none (a 1.4.x peer sends no UDP-Lite ports and no GRE keys; the
    // kernel refuses such a tuple without them, 1.4.7 commits zeros).
    let l4 = c.l4proto().unwrap_or(0);
    if ct_core::proto::has_ports(l4) || l4 == ct_core::proto::IPPROTO_GRE {
        for t in [c.orig.as_mut(), c.reply.as_mut()].into_iter().flatten() {
            t.src_port = t.src_port.or(Some(0));
            t.dst_port = t.dst_port.or(Some(0));
        }
    }
    if c.l4proto() == Some(ct_core::proto::IPPROTO_TCP) {
        let mut pi = c.protoinfo.unwrap_or_default();
        let mut t = pi.tcp.unwrap_or_default();
        if !sync.tcp_window_tracking {
            or_tcp_flag(&mut t, TCP_FLAG_BE_LIBERAL);
            t.wscale_orig = None;
            t.wscale_reply = None;
        } else if t.wscale_orig.unwrap_or(0) | t.wscale_reply.unwrap_or(0) != 0 {
            // With window tracking the scales must reach the kernel, which
            // takes them only when both directions are flagged as scaling;
            // the sync message has no TCP flags, and a scale other than
            // zero means both sides negotiated it (1.4.7 sends the scales
            // without the flag, and the kernel drops them).
            or_tcp_flag(&mut t, TCP_FLAG_WINDOW_SCALE);
        } else {
            return c;
        }
        pi.tcp = Some(t);
        c.protoinfo = Some(pi);
    }
    c
}

/// The commit objects of slice `k` of `n` of the cache (every `n`-th live
/// entry, from the `k`-th): with `related` `Some(false)` the masters only,
/// `Some(true)` the entries with a master only, `None` all of them; `now`
/// is the cache clock.
pub fn commit_objects(
    cache: &Cache,
    sync: &SyncSection,
    now: u32,
    related: Option<bool>,
    (k, n): (usize, usize),
    out: &mut dyn FnMut(Flow),
) {
    let n = n.max(1);
    let mut i = 0usize;
    let mut mine = |state: ObjState| {
        i += 1;
        state != ObjState::Dead && i % n == k
    };
    let mut each = |f: Flow, updated: u32| {
        if related.is_none_or(|r| f.master.is_some() == r) {
            out(commit_object(&f, sync, now.saturating_sub(updated)));
        }
    };
    cache.v4.for_each(|e| {
        if mine(e.state) {
            each(e.rec.to_flow(), e.rec.updated);
        }
    });
    cache.v6.for_each(|e| {
        if mine(e.state) {
            each(e.rec.to_flow(), e.rec.updated);
        }
    });
}

/// Commits every live entry of `cache` into `table`, masters first:
/// `(created, failed)`. An entry that exists is deleted and created once
/// more.
pub fn commit_into(
    cache: &Cache,
    sync: &SyncSection,
    now: u32,
    table: &mut dyn KernelTable,
) -> (u64, u64) {
    let (mut ok, mut failed) = (0, 0);
    for related in [false, true] {
        let mut batch = Vec::new();
        commit_objects(cache, sync, now, Some(related), (0, 1), &mut |f| {
            batch.push(f)
        });
        for (f, r) in batch.iter().zip(table.create(&batch)) {
            let r = match r {
                Err(EEXIST) => {
                    let _ = table.delete(f);
                    table.create(std::slice::from_ref(f)).remove(0)
                }
                r => r,
            };
            match r {
                Ok(()) => ok += 1,
                Err(_) => failed += 1,
            }
        }
    }
    (ok, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_core::flow::{Tuple, AF_INET, AF_INET6};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// A flow as the sync wire decodes it: the original tuple only.
    fn icmp(family: u8, ty: u8) -> Flow {
        let (a, b, p) = if family == AF_INET6 {
            (
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                58,
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                1,
            )
        };
        Flow {
            family,
            orig: Some(Tuple {
                src: Some(a),
                dst: Some(b),
                l4proto: Some(p),
                icmp_type: Some(ty),
                icmp_code: Some(0),
                icmp_id: Some(77),
                ..Tuple::default()
            }),
            timeout: Some(30),
            ..Flow::default()
        }
    }

    /// Issue 15: an echo request commits with an echo reply in its reply
    /// tuple (1.4.7 through libnetfilter_conntrack, and the kernel, agree).
    #[test]
    fn icmp_requests_commit_with_their_reply_type() {
        let sync = SyncSection::default();
        for (fam, req, rep) in [
            (AF_INET, 8, 0),
            (AF_INET, 0, 8),
            (AF_INET, 13, 14),
            (AF_INET, 15, 16),
            (AF_INET, 17, 18),
            (AF_INET6, 128, 129),
            (AF_INET6, 129, 128),
            (AF_INET6, 139, 140),
        ] {
            let c = commit_object(&icmp(fam, req), &sync, 0);
            let r = c.reply.unwrap();
            assert_eq!(r.icmp_type, Some(rep), "type {req}");
            assert_eq!((r.icmp_id, r.icmp_code), (Some(77), Some(0)));
            assert_eq!(r.src, c.orig.unwrap().dst);
        }
        assert_eq!(icmp_reply_type(AF_INET, 3), None);
    }

    /// TCP flags on commit: BE_LIBERAL (and no scales) without window
    /// tracking, as 1.4.7; with it, the scales go with the window-scale
    /// flag the kernel wants before it takes them, and none without
    /// scales.
    #[test]
    fn tcp_flags_follow_window_tracking() {
        use ct_core::flow::{ProtoInfo, TcpInfo};
        let mut f = icmp(AF_INET, 8);
        if let Some(t) = f.orig.as_mut() {
            t.l4proto = Some(6);
            t.icmp_type = None;
            t.src_port = Some(1);
            t.dst_port = Some(2);
        }
        let tcp = |wo, wr| {
            Some(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(3),
                    wscale_orig: wo,
                    wscale_reply: wr,
                    ..TcpInfo::default()
                }),
                ..ProtoInfo::default()
            })
        };
        let got = |f: &Flow, wt: bool| {
            let sync = SyncSection {
                tcp_window_tracking: wt,
                ..SyncSection::default()
            };
            commit_object(f, &sync, 0).protoinfo.unwrap().tcp.unwrap()
        };
        f.protoinfo = tcp(Some(7), Some(10));
        let t = got(&f, false);
        assert_eq!((t.flags_orig, t.flags_reply), (Some((8, 8)), Some((8, 8))));
        assert_eq!((t.wscale_orig, t.wscale_reply), (None, None));
        let t = got(&f, true);
        assert_eq!((t.flags_orig, t.flags_reply), (Some((1, 1)), Some((1, 1))));
        assert_eq!((t.wscale_orig, t.wscale_reply), (Some(7), Some(10)));
        f.protoinfo = tcp(Some(0), Some(0));
        let t = got(&f, true);
        assert_eq!((t.flags_orig, t.flags_reply), (None, None));
    }
}
