//! `Options { ExpectationSync }`: the expectation caches of one lane and
//! their rules. A local expectation is synchronised when its helper is
//! wanted and its master is in the internal conntrack cache; the peer's
//! expectations land in the external cache (or, with
//! DisableExternalCache, go to the kernel through [`Io`](super::Io)).

use ct_core::flow::{Expect, Flow};
use ct_core::table::{Cache, ExpCache, ObjRef, ObjState};

use crate::wire::Op;

/// The expectation caches of a sync daemon.
pub struct ExpCaches {
    pub internal: ExpCache,
    pub external: ExpCache,
    /// Lower-case helper-name prefixes; empty = every helper.
    helpers: Vec<String>,
    /// Expectations ignored (unwanted helper or master not cached).
    pub ignored: u64,
}

impl ExpCaches {
    /// With the helper names of `ExpectationSync { }` (none: every
    /// helper).
    pub fn new(helpers: &[String]) -> ExpCaches {
        ExpCaches {
            internal: ExpCache::new(),
            external: ExpCache::new(),
            helpers: helpers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            ignored: 0,
        }
    }

    /// Whether a local expectation is synchronised: its helper starts
    /// with a listed name (case-insensitive) and its master is in the
    /// internal conntrack cache. Counts the ignored ones.
    pub fn wanted(&mut self, e: &Expect, masters: &Cache) -> bool {
        let master = Flow {
            family: e.family,
            orig: e.master,
            ..Flow::default()
        };
        let ok = self.helper_wanted(e) && masters.obj_ref(&master).is_some();
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

    /// A peer's expectation change into the external cache.
    pub fn apply_remote(&mut self, op: Op, e: &Expect, now: u64) {
        match op {
            Op::Delete | Op::Withdraw => {
                self.external.remove(e);
            }
            _ => {
                self.external.upsert(e, now);
            }
        }
    }

    /// The kernel's expectations (a dump) into the internal cache; with
    /// `sweep`, cached ones the dump did not have are dropped, but for
    /// DEAD ones (FT-FW: their DEL or withdrawal is queued, and they leave
    /// once the peer has it). Returns how many the dump held; the
    /// references of dropped ones go to `gone`.
    pub fn resync(
        &mut self,
        seen: &[Expect],
        masters: &Cache,
        now: u64,
        sweep: bool,
        gone: &mut Vec<ObjRef>,
    ) -> usize {
        let mut keep = std::collections::HashSet::new();
        for e in seen {
            if self.wanted(e, masters) {
                if let Some((r, _)) = self.internal.upsert(e, now) {
                    keep.insert(r);
                }
            }
        }
        if sweep {
            let start = gone.len();
            self.internal.for_each(|r, e| {
                if e.state != ObjState::Dead && !keep.contains(&r) {
                    gone.push(r);
                }
            });
            for &r in &gone[start..] {
                self.internal.remove_ref(r);
            }
        }
        seen.len()
    }
}
