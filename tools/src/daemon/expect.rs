//! `Options { ExpectationSync on | { helper ... } }`: the expectation
//! caches and their kernel side. Expectation events (and a dump at start
//! and on `-R expect`) feed the internal cache when their helper is
//! wanted and their master is in the internal conntrack cache; the
//! peer's expectations land in the external cache (or straight in the
//! kernel with DisableExternalCache) and are committed after the
//! conntracks, whose master entries they need.

use std::io::Write as _;

use ct_core::config::ExpectationSync;
use ct_core::flow::{Expect, Flow, AF_UNSPEC};
use ct_core::format::{self, EventKind};
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::*;
use ct_core::netlink::request;
use ct_core::table::{Cache, ExpCache, ObjState};
use ct_transport::wire::Op;

use crate::nl::{Reply, Session};

/// The expectation caches of a sync daemon.
pub struct ExpSync {
    pub internal: ExpCache,
    pub external: ExpCache,
    /// Lower-case helper-name prefixes; empty = every helper.
    helpers: Vec<String>,
    /// Expectations ignored (unwanted helper or master not cached).
    pub ignored: u64,
    /// Netlink port ids of our own commits and injections: their events
    /// are not sent back to the peer.
    pub own_portids: Vec<u32>,
    /// DisableExternalCache: the session that injects the peer's
    /// expectations.
    pub inject: Option<Session>,
}

impl ExpSync {
    /// `None` unless ExpectationSync is enabled.
    pub fn new(cfg: &ExpectationSync) -> Option<ExpSync> {
        cfg.enabled.then(|| ExpSync {
            internal: ExpCache::new(),
            external: ExpCache::new(),
            helpers: cfg.helpers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            ignored: 0,
            own_portids: Vec::new(),
            inject: None,
        })
    }

    /// Whether a local expectation is synchronised: its helper starts
    /// with a listed name (case-insensitive) and its master is in the
    /// internal conntrack cache.
    pub fn wanted(&mut self, e: &Expect, masters: &Cache) -> bool {
        let helper_ok = self.helper_wanted(e);
        let master = Flow {
            family: e.family,
            orig: e.master,
            ..Flow::default()
        };
        let ok = helper_ok && masters.obj_ref(&master).is_some();
        if !ok {
            self.ignored += 1;
        }
        ok
    }

    /// Whether the expectation's helper is one of `ExpectationSync { }`'s
    /// (all when the list is empty); DisableInternalCache checks only this
    /// (there is no cache of masters).
    pub fn helper_wanted(&self, e: &Expect) -> bool {
        self.helpers.is_empty()
            || e.helper.as_ref().is_some_and(|h| {
                let h = h.as_str().to_ascii_lowercase();
                self.helpers.iter().any(|p| h.starts_with(p.as_str()))
            })
    }

    /// `-i expect` / `-e expect` (plain: without the timeout, with
    /// ` [active since Ns]`; XML: bare `<flow>` lines). DEAD entries are
    /// hidden.
    pub fn dump(&self, external: bool, xml: bool, now: u64) -> Vec<u8> {
        let cache = if external {
            &self.external
        } else {
            &self.internal
        };
        let mut out = Vec::new();
        cache.for_each(|_, ent| {
            if ent.state == ObjState::Dead {
                return;
            }
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
                let _ = writeln!(out, " [active since {}s]", now.saturating_sub(ent.since));
            }
        });
        out
    }
}

impl ExpSync {
    /// A peer's expectation change: into the external cache, or (with
    /// DisableExternalCache) straight into the kernel.
    pub fn apply_remote(&mut self, op: Op, e: &Expect, now: u64) -> Result<(), String> {
        if let Some(sess) = self.inject.as_mut() {
            let r = match op {
                Op::Delete => kernel_delete(sess, e),
                _ => match kernel_create(sess, e) {
                    Err(libc::EEXIST) => Ok(()),
                    r => r,
                },
            };
            return r.map_err(|errno| {
                format!(
                    "inject expectation: {}",
                    std::io::Error::from_raw_os_error(errno)
                )
            });
        }
        match op {
            Op::Delete => {
                self.external.remove(e);
            }
            _ => {
                self.external.upsert(e, now);
            }
        }
        Ok(())
    }

    /// Reads the kernel's expectations into the internal cache (start-up,
    /// `-R expect`, overrun resync); with `sweep`, cached ones the kernel
    /// no longer has are dropped. Returns how many were read.
    /// `lane` keeps the expectations whose master is this lane's.
    pub fn resync(
        &mut self,
        masters: &Cache,
        now: u64,
        sweep: bool,
        lane: super::lanes::Lane,
    ) -> Result<usize, String> {
        let mut sess = Session::open().map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        kernel_dump(&mut sess, &mut |e| {
            if lane.owns(e.master.as_ref()) {
                seen.push(*e)
            }
        })
        .map_err(|e| format!("expectation dump: {}", std::io::Error::from_raw_os_error(e)))?;
        let mut keep = std::collections::HashSet::new();
        for e in &seen {
            if self.wanted(e, masters) {
                if let Some((r, _)) = self.internal.upsert(e, now) {
                    keep.insert(r);
                }
            }
        }
        if sweep {
            let mut gone = Vec::new();
            self.internal.for_each(|r, _| {
                if !keep.contains(&r) {
                    gone.push(r);
                }
            });
            for r in gone {
                self.internal.remove_ref(r);
            }
        }
        Ok(seen.len())
    }

    /// Commits the external cache (after the conntracks): `(ok, failed)`.
    pub fn commit(&mut self) -> Result<(u64, u64), String> {
        let mut sess = Session::open().map_err(|e| e.to_string())?;
        self.own_portids.push(sess.sock.portid());
        if self.own_portids.len() > 8 {
            self.own_portids.remove(0);
        }
        let (mut ok, mut failed) = (0, 0);
        let mut list = Vec::new();
        self.external.for_each(|_, ent| {
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

    /// DisableExternalCache: opens the injecting session.
    pub fn open_inject(&mut self) -> std::io::Result<()> {
        let sess = Session::open()?;
        self.own_portids.push(sess.sock.portid());
        self.inject = Some(sess);
        Ok(())
    }
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
