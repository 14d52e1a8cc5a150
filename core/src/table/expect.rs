//! The expectation caches of `ExpectationSync` (internal: this node's
//! kernel expectations; external: the peer's). Expectations are few (one
//! per FTP/SIP control connection at most), so this is a plain slab with
//! a hash index keyed by (master tuple, expected tuple), not the compact
//! flow tables. Object references are [`ObjRef`]s of [`Table::Exp`], so
//! the FT-FW queues can hold them beside the conntracks'.

type HashMap<K, V> = hashbrown::HashMap<K, V, ahash::RandomState>;

use super::cache::{CacheStats, ObjState};
use super::obj_ref::{next_serial, ObjRef, Table};
use crate::flow::{Expect, Tuple};

/// What identifies an expectation.
pub type ExpKey = (Tuple, Tuple);

/// The key of an expectation: its master and expected tuples.
pub fn exp_key(e: &Expect) -> Option<ExpKey> {
    Some((e.master?, e.tuple?))
}

/// One cached expectation.
#[derive(Debug, Clone)]
pub struct ExpEntry {
    pub exp: Expect,
    pub state: ObjState,
    /// When it was added (seconds, the caller's clock).
    pub since: u64,
    /// When it was last added or refreshed (same clock).
    pub updated: u64,
    /// The object's serial (see [`ObjRef`]).
    pub serial: u32,
}

/// A cache of expectations.
#[derive(Default)]
pub struct ExpCache {
    slots: Vec<Option<ExpEntry>>,
    free: Vec<u32>,
    index: HashMap<ExpKey, u32>,
    serial: u32,
    stats: CacheStats,
}

impl ExpCache {
    pub fn new() -> ExpCache {
        ExpCache::default()
    }

    /// Live (non-DEAD) entries.
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|e| e.state != ObjState::Dead)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Adds or refreshes an expectation; returns its reference and
    /// whether it was new. `None` when it has no master or tuple.
    pub fn upsert(&mut self, e: &Expect, now: u64) -> Option<(ObjRef, bool)> {
        let Some(key) = exp_key(e) else {
            self.stats.create_failed += 1;
            return None;
        };
        if let Some(&i) = self.index.get(&key) {
            let ent = self.slots[i as usize].as_mut()?;
            let revived = ent.state == ObjState::Dead;
            ent.exp = *e;
            ent.updated = now;
            ent.state = if revived {
                ent.since = now;
                ent.serial = next_serial(&mut self.serial);
                ObjState::New
            } else {
                ObjState::Alive
            };
            self.stats.updated += 1;
            return Some((ObjRef::new(Table::Exp, i, ent.serial), revived));
        }
        let serial = next_serial(&mut self.serial);
        let ent = ExpEntry {
            exp: *e,
            state: ObjState::New,
            since: now,
            updated: now,
            serial,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(ent);
                i
            }
            None => {
                self.slots.push(Some(ent));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, i);
        self.stats.created += 1;
        Some((ObjRef::new(Table::Exp, i, serial), true))
    }

    /// The reference of the cached expectation with `e`'s key.
    pub fn find(&self, e: &Expect) -> Option<ObjRef> {
        let i = *self.index.get(&exp_key(e)?)?;
        let ent = self.slots.get(i as usize)?.as_ref()?;
        Some(ObjRef::new(Table::Exp, i, ent.serial))
    }

    /// Marks an expectation DEAD (kept until the peer acknowledged it);
    /// returns its reference.
    pub fn mark_dead(&mut self, e: &Expect) -> Option<ObjRef> {
        let r = self.find(e);
        match r.and_then(|r| self.slots[r.pos() as usize].as_mut()) {
            Some(ent) if ent.state != ObjState::Dead => {
                ent.state = ObjState::Dead;
                self.stats.destroyed += 1;
                r
            }
            _ => {
                self.stats.destroy_not_found += 1;
                None
            }
        }
    }

    /// Removes an expectation; returns it.
    pub fn remove(&mut self, e: &Expect) -> Option<Expect> {
        match self.find(e) {
            Some(r) => {
                self.stats.destroyed += 1;
                self.remove_ref(r)
            }
            None => {
                self.stats.destroy_not_found += 1;
                None
            }
        }
    }

    /// Removes the entry `r` refers to.
    pub fn remove_ref(&mut self, r: ObjRef) -> Option<Expect> {
        self.get(r)?;
        let i = r.pos();
        let ent = self.slots.get_mut(i as usize)?.take()?;
        if let Some(k) = exp_key(&ent.exp) {
            self.index.remove(&k);
        }
        self.free.push(i);
        Some(ent.exp)
    }

    /// The entry `r` refers to.
    pub fn get(&self, r: ObjRef) -> Option<&ExpEntry> {
        if !r.is_exp() {
            return None;
        }
        self.slots
            .get(r.pos() as usize)?
            .as_ref()
            .filter(|e| r.names(e.serial))
    }

    /// Every entry with its reference.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(ObjRef, &'a ExpEntry)) {
        for (i, e) in self.slots.iter().enumerate() {
            if let Some(e) = e {
                f(ObjRef::new(Table::Exp, i as u32, e.serial), e);
            }
        }
    }

    /// Visits the entries from slot `from` on until `f` returns false;
    /// returns the slot to resume from then, or `None` at the end.
    pub fn visit_from(&self, from: u32, mut f: impl FnMut(&ExpEntry) -> bool) -> Option<u32> {
        self.visit_from_at(from, |_, e| f(e))
    }

    /// [`visit_from`](Self::visit_from), with each entry's reference.
    pub fn visit_from_at(
        &self,
        from: u32,
        mut f: impl FnMut(ObjRef, &ExpEntry) -> bool,
    ) -> Option<u32> {
        for (i, e) in self.slots.iter().enumerate().skip(from as usize) {
            if let Some(e) = e {
                if !f(ObjRef::new(Table::Exp, i as u32, e.serial), e) {
                    return Some(i as u32 + 1);
                }
            }
        }
        None
    }

    /// Removes the entries last added or refreshed before `cutoff`
    /// (ALARM's CacheTimeout); returns how many.
    pub fn expire_before(&mut self, cutoff: u64) -> usize {
        let mut old = Vec::new();
        self.for_each(|r, e| {
            if e.updated < cutoff {
                old.push(r);
            }
        });
        for &r in &old {
            self.remove_ref(r);
        }
        old.len()
    }

    /// Removes every entry whose master is not accepted by `keep`.
    pub fn retain_masters(&mut self, mut keep: impl FnMut(&Tuple) -> bool) -> usize {
        let mut gone = Vec::new();
        self.for_each(|r, e| {
            if !e.exp.master.as_ref().is_some_and(&mut keep) {
                gone.push(r);
            }
        });
        for &r in &gone {
            self.remove_ref(r);
        }
        gone.len()
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.index.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn exp(port: u16) -> Expect {
        let t = |a: u8, p: u16| Tuple {
            src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a))),
            dst: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))),
            l4proto: Some(6),
            src_port: Some(p),
            dst_port: Some(21),
            ..Tuple::default()
        };
        Expect {
            family: 2,
            master: Some(t(1, 4000)),
            tuple: Some(t(1, port)),
            ..Expect::default()
        }
    }

    #[test]
    fn life_cycle() {
        let mut c = ExpCache::new();
        let (r, new) = c.upsert(&exp(5000), 1).unwrap();
        assert!(new && r.is_exp());
        assert_eq!(c.upsert(&exp(5000), 2).unwrap(), (r, false));
        assert_eq!(c.get(r).unwrap().state, ObjState::Alive);
        let (r2, _) = c.upsert(&exp(5001), 2).unwrap();
        assert_ne!(r, r2);
        assert_eq!(c.len(), 2);
        assert_eq!(c.mark_dead(&exp(5000)), Some(r));
        assert_eq!(c.len(), 1);
        assert_eq!(c.mark_dead(&exp(5000)), None, "already dead");
        // revived before the ack: NEW again, same slot, another object
        let (r3, new) = c.upsert(&exp(5000), 3).unwrap();
        assert!(new && r3.pos() == r.pos() && r3 != r);
        assert!(c.get(r).is_none() && c.get(r3).is_some());
        assert!(c.remove(&exp(5001)).is_some());
        assert!(c.get(r2).is_none());
        assert_eq!(c.len(), 1);
        assert_eq!(c.retain_masters(|_| false), 1);
        assert!(c.is_empty());
        assert!(c.upsert(&Expect::default(), 4).is_none(), "no key");
    }

    #[test]
    fn refreshed_entries_outlive_the_cutoff() {
        let mut c = ExpCache::new();
        c.upsert(&exp(1), 10);
        c.upsert(&exp(2), 10);
        c.upsert(&exp(1), 50); // refreshed
        assert_eq!(c.get(c.find(&exp(1)).unwrap()).unwrap().since, 10);
        assert_eq!(c.expire_before(30), 1);
        assert!(c.find(&exp(1)).is_some() && c.find(&exp(2)).is_none());
    }
}
