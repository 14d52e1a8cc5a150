//! `Options { ExpectationSync on | { helper ... } }`: the kernel side of
//! the expectation caches (which live in the replicator,
//! `ct_transport::replicator::ExpCaches`): dumps, the injection of the
//! peer's expectations with DisableExternalCache, the commit (after the
//! conntracks, whose master entries they need), `-i expect` output.

use std::io::Write as _;

use ct_core::flow::{Expect, AF_UNSPEC};
use ct_core::format::{self, EventKind};
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::*;
use ct_core::netlink::request;
use ct_core::table::{ExpCache, ObjState};
use ct_transport::wire::Op;

use crate::nl::{Reply, Session};

/// `-i expect` / `-e expect` (plain: without the timeout, with
/// ` [active since Ns]`, after ` [expires in Ns]` with `expires`, ALARM's
/// CacheTimeout for its external cache; XML: bare `<flow>` lines). DEAD
/// entries are hidden.
pub fn dump(cache: &ExpCache, xml: bool, now: u64, expires: Option<u64>, buckets: u32) -> Vec<u8> {
    let mut out = Vec::new();
    // 1.4.7's order: its hash table's buckets in turn, newest first
    let mut listed = Vec::new();
    cache.for_each(|_, ent| {
        if ent.state != ObjState::Dead {
            let b = ct_core::table::c_order::exp_bucket(&ent.exp, buckets);
            listed.push((b, ent.since as u32, ent.serial, ent));
        }
    });
    ct_core::table::c_order::sort_listing(&mut listed);
    for (_, _, _, ent) in listed {
        let e = Expect {
            timeout: None,
            ..ent.exp
        };
        if xml {
            format::write_expect_xml(&mut out, &e, EventKind::None, None);
        } else {
            let start = out.len();
            format::write_expect_plain(&mut out, &e, EventKind::None);
            if out.len() > start && out.last() == Some(&b'\n') {
                out.pop();
            }
            if let Some(t) = expires {
                let left = ent.updated.saturating_add(t).saturating_sub(now);
                let _ = write!(out, " [expires in {left}s]");
            }
            let _ = writeln!(out, " [active since {}s]", now.saturating_sub(ent.since));
        }
    }
    out
}

/// DisableExternalCache: a peer's expectation change into the kernel
/// (an existing one is left as it is).
pub fn inject(sess: &mut Session, op: Op, e: &Expect) -> Result<(), String> {
    let r = match op {
        Op::Delete => kernel_delete(sess, e),
        // (the replicator does not inject them: the sender's other lane
        // has the expectation)
        Op::Withdraw => Ok(()),
        _ => match kernel_create(sess, e) {
            Err(libc::EEXIST) => Ok(()),
            r => r,
        },
    };
    r.map_err(|errno| {
        format!(
            "inject expectation: {}",
            std::io::Error::from_raw_os_error(errno)
        )
    })
}

/// Commits the external expectation cache (after the conntracks):
/// `(ok, failed)`. The session's portid joins `own` (its events are not
/// sent back).
pub fn commit(external: &ExpCache, own: &mut Vec<u32>) -> Result<(u64, u64), String> {
    let mut sess = Session::open().map_err(|e| e.to_string())?;
    own.push(sess.sock.portid());
    if own.len() > 8 {
        own.remove(0);
    }
    let (mut ok, mut failed) = (0, 0);
    let mut list = Vec::new();
    external.for_each(|_, ent| {
        if ent.state != ObjState::Dead {
            list.push(ent.exp);
        }
    });
    for e in &list {
        match kernel_create(&mut sess, e) {
            Ok(()) | Err(libc::EEXIST) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    Ok((ok, failed))
}

/// DisableExternalCache: the session that injects the peer's
/// expectations; its portid joins `own`.
pub fn open_inject(own: &mut Vec<u32>) -> std::io::Result<Session> {
    let sess = Session::open()?;
    own.push(sess.sock.portid());
    Ok(sess)
}

/// Reads the kernel's expectation table.
pub fn kernel_dump(sess: &mut Session, out: &mut dyn FnMut(&Expect)) -> Result<(), i32> {
    sess.request(
        Reply::Dump,
        |w, s| request::exp_dump(w, s, AF_UNSPEC),
        |m| {
            if let Ok((g, attrs)) = m.nfgen() {
                if let Ok(e) = parse_expect(g.family, attrs) {
                    out(&e);
                }
            }
            true
        },
    )
    .map_err(|e| e.errno())
}

/// Creates (or, with `flags` 0, updates) an expectation in the kernel.
pub fn kernel_create(sess: &mut Session, e: &Expect) -> Result<(), i32> {
    sess.request(
        Reply::Acks(1),
        |w, s| {
            request::exp_new(
                w,
                s,
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                e,
            )
        },
        |_| true,
    )
    .map_err(|e| e.errno())
}

/// Deletes the kernel expectation with `e`'s expected tuple.
pub fn kernel_delete(sess: &mut Session, e: &Expect) -> Result<(), i32> {
    let t = e.tuple.unwrap_or_default();
    let family = e.master.map(|m| m.family()).unwrap_or(e.family);
    sess.request(
        Reply::Acks(1),
        |w, s| request::exp_by_tuple(w, s, IPCTNL_MSG_EXP_DELETE, family, &t),
        |_| true,
    )
    .map_err(|e| e.errno())
}

/// Empties the kernel's expectation table (`-F expect`).
pub fn kernel_flush() -> Result<(), i32> {
    let mut sess = Session::open().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    sess.request(
        Reply::Acks(1),
        |w, s| request::exp_flush(w, s, AF_UNSPEC),
        |_| true,
    )
    .map_err(|e| e.errno())
}
