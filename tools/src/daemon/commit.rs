//! Committing the external cache into the kernel (`conntrackd -c`): every
//! entry becomes a `CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL`, built as
//! 1.4.7 builds it (timeout estimated from the synced one, EXPECTED
//! cleared, reply tuple regenerated, BE_LIBERAL forced unless window
//! tracking, NAT re-applied through CTA_NAT_*), masters before related
//! entries, hundreds of requests per `sendmsg` with one ack each; EEXIST
//! is answered by deleting the entry and creating it once more.

use ct_core::config::SyncSection;
use ct_core::flow::{Flow, Nat};
use ct_core::netlink::msg::*;
use ct_core::netlink::request;
use ct_core::netlink::writer::Writer;
use ct_core::proto::{status, TCP_FLAG_BE_LIBERAL};
use ct_core::table::{Cache, ObjState};
use ct_ring::netlink::{NlSocket, RecvError, NETLINK_NETFILTER};

/// Requests per batch.
const BATCH: usize = 256;

/// Outcome of a commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitReport {
    pub ok: u64,
    pub failed: u64,
    /// Portid of the netlink handle that created the entries (their
    /// events carry it).
    pub portid: u32,
}

/// The object to create for a cached entry.
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
    if let (Some(o), Some(r)) = (f.orig, f.reply) {
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
        let _ = o;
    }
    // Reply tuple regenerated from the original.
    c.reply = f.orig.map(|o| ct_core::flow::Tuple {
        src: o.dst,
        dst: o.src,
        src_port: o.dst_port,
        dst_port: o.src_port,
        icmp_type: f.reply.and_then(|r| r.icmp_type).or(o.icmp_type),
        icmp_code: o.icmp_code,
        icmp_id: o.icmp_id,
        zone: f.reply.and_then(|r| r.zone),
        ..o
    });
    if c.l4proto() == Some(ct_core::proto::IPPROTO_TCP) && !sync.tcp_window_tracking {
        let mut pi = c.protoinfo.unwrap_or_default();
        let mut t = pi.tcp.unwrap_or_default();
        let or = |x: Option<(u8, u8)>| {
            let (a, b) = x.unwrap_or((0, 0));
            Some((a | TCP_FLAG_BE_LIBERAL, b | TCP_FLAG_BE_LIBERAL))
        };
        t.flags_orig = or(t.flags_orig);
        t.flags_reply = or(t.flags_reply);
        t.wscale_orig = None;
        t.wscale_reply = None;
        pi.tcp = Some(t);
        c.protoinfo = Some(pi);
    }
    c
}

fn send_batch(
    sock: &NlSocket,
    flows: &[Flow],
    seq0: u32,
    buf: &mut Vec<u8>,
) -> std::io::Result<Vec<(usize, i32)>> {
    buf.clear();
    let mut w = Writer::new(buf);
    for (i, f) in flows.iter().enumerate() {
        let flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
        request::ct_new(&mut w, seq0.wrapping_add(i as u32), flags, f.l3_family(), f);
    }
    sock.send(buf)?;
    let mut left = flows.len();
    let mut errs = Vec::new();
    let mut rx = vec![0u8; 1 << 16];
    while left > 0 {
        let n = match sock.recv(&mut rx, false) {
            Ok(n) => n,
            Err(RecvError::Interrupted) => continue,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        for m in Messages::new(&rx[..n]).flatten() {
            if m.ty == NLMSG_ERROR {
                left = left.saturating_sub(1);
                let e = m.error_code().unwrap_or(libc::EIO);
                if e != 0 {
                    errs.push((m.seq.wrapping_sub(seq0) as usize, e));
                }
            }
        }
    }
    Ok(errs)
}

/// Commits every live entry of `cache`; `now` is the daemon clock used
/// for the cache's update times.
pub fn commit(cache: &Cache, sync: &SyncSection, now: u32) -> std::io::Result<CommitReport> {
    let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
    let _ = sock.set_rcvbuf(8 << 20);
    let mut masters = Vec::new();
    let mut related = Vec::new();
    let mut collect = |c: &Cache| {
        c.v4.for_each(|e| {
            if e.state == ObjState::Dead {
                return;
            }
            let f = e.rec.to_flow();
            let age = now.saturating_sub(e.rec.updated);
            let o = commit_object(&f, sync, age);
            if f.master.is_some() {
                related.push(o);
            } else {
                masters.push(o);
            }
        });
        c.v6.for_each(|e| {
            if e.state == ObjState::Dead {
                return;
            }
            let f = e.rec.to_flow();
            let age = now.saturating_sub(e.rec.updated);
            let o = commit_object(&f, sync, age);
            if f.master.is_some() {
                related.push(o);
            } else {
                masters.push(o);
            }
        });
    };
    collect(cache);
    let mut report = CommitReport::default();
    let mut buf = Vec::with_capacity(BATCH * 200);
    let mut seq = 1u32;
    for list in [masters, related] {
        for chunk in list.chunks(BATCH) {
            let errs = send_batch(&sock, chunk, seq, &mut buf)?;
            seq = seq.wrapping_add(chunk.len() as u32);
            report.ok += (chunk.len() - errs.len()) as u64;
            for (i, e) in errs {
                let Some(f) = chunk.get(i) else { continue };
                if e == libc::EEXIST {
                    // Delete and create once more.
                    let t = f.orig.unwrap_or_default();
                    buf.clear();
                    request::ct_delete_tuple(
                        &mut Writer::new(&mut buf),
                        seq,
                        NLM_F_REQUEST | NLM_F_ACK,
                        f.l3_family(),
                        &t,
                        f.zone,
                    );
                    if sock.send(&buf).is_ok() {
                        let mut rx = [0u8; 4096];
                        let _ = sock.recv(&mut rx, false);
                    }
                    seq = seq.wrapping_add(1);
                    let again = send_batch(&sock, std::slice::from_ref(f), seq, &mut buf)?;
                    seq = seq.wrapping_add(1);
                    if again.is_empty() {
                        report.ok += 1;
                        continue;
                    }
                }
                report.failed += 1;
            }
        }
    }
    report.portid = sock.portid();
    Ok(report)
}
