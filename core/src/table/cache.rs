//! A flow cache: records in a chunked slab (64 Ki-record chunks, so
//! growing never copies or doubles memory; a chunk's room is reserved
//! at once but filled, and so paid for, as records arrive) and a `hashbrown::HashTable`
//! of 4-byte slab indices hashed with ahash over the key. One owner
//! thread; no locks. `HashLimit` bounds the number of objects (refusals
//! are counted), and the counters are those `conntrackd -s cache` shows.
//!
//! Chosen over dashmap after measuring memory: a dashmap of key → record
//! pays the hash table's power-of-two slack on the whole record (≈240 B
//! per flow at 1M flows), this layout pays it on 4-byte indices only
//! (see `perf/RESULTS.md`, bytes per cached flow).

use hashbrown::HashTable;

use super::record::{Addr, Key, Record};
use crate::flow::Flow;

const CHUNK: usize = 1 << 16;

/// Spreads a 32-bit hash over 64 bits for hashbrown, which takes its
/// control byte from the top bits and the bucket from the low ones.
#[inline]
fn widen(h: u32) -> u64 {
    (h as u64) << 32 | h as u64
}

/// Life-cycle state of a cached object (FT-FW keeps DEAD objects until
/// their deletion has been acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjState {
    New,
    Alive,
    Dead,
}

/// One occupied slot.
#[derive(Debug, Clone)]
pub struct Entry<A: Addr> {
    pub rec: Record<A>,
    pub state: ObjState,
    /// Resync generation the entry was last seen in.
    pub gen: u8,
    /// The object's serial (see [`ObjRef`](super::ObjRef)): new for each
    /// object stored, so that references to a freed slot go stale.
    pub serial: u32,
}

/// Counters of `-s cache` / `-s`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub created: u64,
    pub create_failed: u64,
    pub no_memory: u64,
    pub no_space: u64,
    pub updated: u64,
    pub update_failed: u64,
    pub update_not_found: u64,
    pub destroyed: u64,
    pub destroy_failed: u64,
    pub destroy_not_found: u64,
}

/// The cache of one address family.
pub struct FlowCache<A: Addr> {
    chunks: Vec<Vec<Option<Entry<A>>>>,
    free: Vec<u32>,
    next: u32,
    /// (slab index, 32-bit hash): growing the table rehashes from the
    /// stored hash without touching the records (which would be a cache
    /// miss per entry and a stall long enough to overrun the event socket).
    index: HashTable<(u32, u32)>,
    hasher: ahash::RandomState,
    limit: usize,
    len: usize,
    /// The last serial given.
    serial: u32,
    pub stats: CacheStats,
}

impl<A: Addr> FlowCache<A> {
    /// A cache that refuses objects beyond `limit`; `buckets` pre-sizes
    /// the index (`HashSize`).
    pub fn new(buckets: usize, limit: usize) -> FlowCache<A> {
        FlowCache {
            chunks: Vec::new(),
            free: Vec::new(),
            next: 0,
            index: HashTable::with_capacity(buckets.min(limit)),
            hasher: ahash::RandomState::new(),
            limit,
            len: 0,
            serial: 0,
            stats: CacheStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Changes the most objects this cache takes (a [`Cache`](super::Cache)
    /// shares one `HashLimit` between its two families by lowering each
    /// family's room to what the other leaves). Objects beyond it stay.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Objects allocated (including DEAD ones).
    pub fn allocated(&self) -> usize {
        self.len
    }

    fn slot(&self, i: u32) -> &Option<Entry<A>> {
        &self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn slot_mut(&mut self, i: u32) -> &mut Option<Entry<A>> {
        &mut self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn hash(&self, k: &Key<A>) -> u64 {
        widen(self.hasher.hash_one(k) as u32)
    }

    fn find(&self, k: &Key<A>) -> Option<u32> {
        self.find_hashed(k, self.hash(k))
    }

    /// [`find`](Self::find) with the key's hash already computed (an
    /// insert after a miss reuses it).
    fn find_hashed(&self, k: &Key<A>, h: u64) -> Option<u32> {
        let h32 = h as u32;
        self.index
            .find(h, |&(i, hh)| {
                hh == h32 && self.slot(i).as_ref().map(|e| &e.rec.key) == Some(k)
            })
            .map(|&(i, _)| i)
    }

    /// The slab position of a key's entry (stable while the entry lives).
    pub fn slot_of(&self, k: &Key<A>) -> Option<u32> {
        self.find(k)
    }

    /// The entry at a slab position.
    pub fn entry_at(&self, i: u32) -> Option<&Entry<A>> {
        let c = self.chunks.get(i as usize / CHUNK)?;
        c.get(i as usize % CHUNK)?.as_ref()
    }

    /// The entry at a slab position if it is the object of `serial`.
    pub fn entry_named(&self, i: u32, r: super::ObjRef) -> Option<&Entry<A>> {
        self.entry_at(i).filter(|e| r.names(e.serial))
    }

    /// The entry at a slab position, mutable.
    pub fn entry_at_mut(&mut self, i: u32) -> Option<&mut Entry<A>> {
        let c = self.chunks.get_mut(i as usize / CHUNK)?;
        c.get_mut(i as usize % CHUNK)?.as_mut()
    }

    /// Removes the entry at a slab position.
    pub fn remove_at(&mut self, i: u32) -> Option<Entry<A>> {
        let k = self.entry_at(i)?.rec.key;
        self.remove(&k)
    }

    /// Visits every entry with its slab position.
    pub fn for_each_at(&self, mut f: impl FnMut(u32, &Entry<A>)) {
        for (ci, c) in self.chunks.iter().enumerate() {
            for (j, e) in c.iter().enumerate() {
                if let Some(e) = e {
                    f((ci * CHUNK + j) as u32, e);
                }
            }
        }
    }

    /// The entry of a key.
    pub fn get(&self, k: &Key<A>) -> Option<&Entry<A>> {
        self.find(k).and_then(|i| self.slot(i).as_ref())
    }

    pub fn get_mut(&mut self, k: &Key<A>) -> Option<&mut Entry<A>> {
        let i = self.find(k)?;
        self.slot_mut(i).as_mut()
    }

    fn alloc(&mut self, e: Entry<A>) -> u32 {
        if let Some(i) = self.free.pop() {
            *self.slot_mut(i) = Some(e);
            return i;
        }
        // A fresh position is the next one of the last chunk: pushed
        // (the chunk's capacity is reserved, so it never moves), which
        // touches only the memory of records that exist.
        let i = self.next;
        if i as usize / CHUNK >= self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let last = self.chunks.last_mut().expect("a chunk for the position");
        debug_assert_eq!(last.len(), i as usize % CHUNK);
        last.push(Some(e));
        self.next += 1;
        i
    }

    /// Inserts a new object (replacing an existing one with the same key).
    /// Returns false when the cache is full (counted).
    pub fn insert(&mut self, rec: Record<A>, state: ObjState, gen: u8) -> bool {
        self.insert_slot(rec, state, gen).is_some()
    }

    /// [`insert`](Self::insert), returning the object's slab position.
    pub fn insert_slot(&mut self, rec: Record<A>, state: ObjState, gen: u8) -> Option<u32> {
        let h = self.hash(&rec.key);
        if let Some(i) = self.find_hashed(&rec.key, h) {
            let was_dead = self
                .slot(i)
                .as_ref()
                .is_some_and(|e| e.state == ObjState::Dead);
            let serial = super::obj_ref::next_serial(&mut self.serial);
            *self.slot_mut(i) = Some(Entry {
                rec,
                state,
                gen,
                serial,
            });
            // as 1.4.7's NEW of a cached object: deleted, then added
            // (created - destroyed stays the count of live objects; a
            // DEAD one was counted when it died)
            if !was_dead {
                self.stats.destroyed += 1;
            }
            self.stats.created += 1;
            return Some(i);
        }
        self.insert_absent(rec, h, state, gen)
    }

    /// Inserts an object unless its key is cached (one hash, one lookup);
    /// `None` then, or when the cache is full.
    pub fn insert_new(&mut self, rec: Record<A>, state: ObjState, gen: u8) -> Option<u32> {
        let h = self.hash(&rec.key);
        if self.find_hashed(&rec.key, h).is_some() {
            return None;
        }
        self.insert_absent(rec, h, state, gen)
    }

    /// Inserts an object whose key (of hash `h`) is known to be absent.
    fn insert_absent(&mut self, rec: Record<A>, h: u64, state: ObjState, gen: u8) -> Option<u32> {
        if self.len >= self.limit {
            self.stats.create_failed += 1;
            self.stats.no_space += 1;
            return None;
        }
        let serial = super::obj_ref::next_serial(&mut self.serial);
        let i = self.alloc(Entry {
            rec,
            state,
            gen,
            serial,
        });
        self.index
            .insert_unique(h, (i, h as u32), |&(_, hh)| widen(hh));
        self.len += 1;
        self.stats.created += 1;
        Some(i)
    }

    /// Updates the object of `f`'s key in place (creating it when missing
    /// or DEAD, as conntrackd does). Returns the resulting state, or None
    /// when it had to be created and the cache is full.
    pub fn upsert(&mut self, f: &Flow, now: u32, gen: u8) -> Option<ObjState> {
        self.upsert_slot(f, now, gen).map(|(s, _)| s)
    }

    /// [`upsert`](Self::upsert), also returning the slab position (one
    /// hash lookup).
    pub fn upsert_slot(&mut self, f: &Flow, now: u32, gen: u8) -> Option<(ObjState, u32)> {
        let key = Key::<A>::of(f)?;
        let h = self.hash(&key);
        match self.find_hashed(&key, h) {
            Some(i) => {
                let e = self.slot_mut(i).as_mut()?;
                if e.state != ObjState::Dead {
                    e.rec.update_from(f, now);
                    e.state = ObjState::Alive;
                    e.gen = gen;
                    self.stats.updated += 1;
                    Some((ObjState::Alive, i))
                } else {
                    let rec = Record::from_flow(f, now)?;
                    let serial = super::obj_ref::next_serial(&mut self.serial);
                    *self.slot_mut(i) = Some(Entry {
                        rec,
                        state: ObjState::New,
                        gen,
                        serial,
                    });
                    // (the DEAD object was counted destroyed when it died)
                    self.stats.created += 1;
                    Some((ObjState::New, i))
                }
            }
            None => {
                let rec = Record::from_flow(f, now)?;
                self.insert_absent(rec, h, ObjState::New, gen)
                    .map(|i| (ObjState::New, i))
            }
        }
    }

    /// [`upsert`](Self::upsert), an object it creates ALIVE (a flow this
    /// cache takes over from another, which its peer mostly has: it goes
    /// as an update, not as a NEW, which a peer injecting into its kernel
    /// applies as a delete and a create; a peer that lacks it creates it
    /// from the update too).
    pub fn upsert_alive(&mut self, f: &Flow, now: u32, gen: u8) -> Option<ObjState> {
        let (st, i) = self.upsert_slot(f, now, gen)?;
        if st == ObjState::New {
            self.entry_at_mut(i)?.state = ObjState::Alive;
        }
        Some(st)
    }

    /// Marks the object `r` names DEAD (kept until its deletion is
    /// acknowledged), counted destroyed as 1.4.7 counts it then; false
    /// when it was DEAD already or is gone.
    pub fn set_dead_at(&mut self, r: super::ObjRef) -> bool {
        match self.entry_at_mut(r.pos()).filter(|e| r.names(e.serial)) {
            Some(e) if e.state != ObjState::Dead => {
                e.state = ObjState::Dead;
                self.stats.destroyed += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes an object. Returns it when it was there.
    pub fn remove(&mut self, k: &Key<A>) -> Option<Entry<A>> {
        let h = self.hash(k);
        let h32 = h as u32;
        let Self { index, chunks, .. } = self;
        let found = index.find_entry(h, |&(i, hh)| {
            hh == h32
                && chunks[i as usize / CHUNK][i as usize % CHUNK]
                    .as_ref()
                    .map(|e| &e.rec.key)
                    == Some(k)
        });
        match found {
            Ok(occ) => {
                let ((i, _), _) = occ.remove();
                let e = self.slot_mut(i).take();
                self.free.push(i);
                self.len -= 1;
                // (a DEAD object was counted when it died)
                if e.as_ref().is_some_and(|e| e.state != ObjState::Dead) {
                    self.stats.destroyed += 1;
                }
                e
            }
            // (1.4.7 counts nothing for a deletion of an object it does
            // not hold: its "failed" and "entry not found" stay 0)
            Err(_) => None,
        }
    }

    /// Visits every entry (slab order).
    pub fn for_each(&self, mut f: impl FnMut(&Entry<A>)) {
        for c in &self.chunks {
            for e in c.iter().flatten() {
                f(e);
            }
        }
    }

    /// Visits the entries from slab position `from` on, in slab order,
    /// until `f` returns false; returns the position to resume from then,
    /// or `None` when every entry was visited (a bulk send spread over
    /// several loop iterations).
    pub fn visit_from(&self, from: u32, mut f: impl FnMut(&Entry<A>) -> bool) -> Option<u32> {
        self.visit_from_at(from, |_, e| f(e))
    }

    /// [`visit_from`](Self::visit_from), with each entry's slab position.
    pub fn visit_from_at(
        &self,
        from: u32,
        mut f: impl FnMut(u32, &Entry<A>) -> bool,
    ) -> Option<u32> {
        for i in from..self.next {
            if let Some(e) = self.slot(i) {
                if !f(i, e) {
                    return Some(i + 1);
                }
            }
        }
        None
    }

    /// Visits the entries whose slab position is `i` modulo `n` (a stable
    /// slice of the cache, for periodic refreshes spread over `n` ticks).
    pub fn for_each_slice(&self, n: usize, i: usize, mut f: impl FnMut(&Entry<A>)) {
        let n = n.max(1);
        for (ci, c) in self.chunks.iter().enumerate() {
            for (j, e) in c.iter().enumerate() {
                if (ci * CHUNK + j) % n == i % n {
                    if let Some(e) = e {
                        f(e);
                    }
                }
            }
        }
    }

    /// Removes the entries last updated before `cutoff`; returns how many.
    pub fn expire_before(&mut self, cutoff: u32) -> usize {
        let mut old = Vec::new();
        self.for_each(|e| {
            if e.rec.updated < cutoff {
                old.push(e.rec.key);
            }
        });
        for k in &old {
            self.remove(k);
        }
        old.len()
    }

    /// Keys of entries whose generation differs from `gen` (not seen by
    /// the last resync dump).
    pub fn stale(&self, gen: u8) -> Vec<Key<A>> {
        let mut v = Vec::new();
        self.for_each(|e| {
            if e.gen != gen {
                v.push(e.rec.key);
            }
        });
        v
    }

    /// Drops every object.
    /// Empties the cache; every live object counts as destroyed (1.4.7's
    /// `cache_flush` deletes them one by one; DEAD ones were counted when
    /// they died).
    pub fn clear(&mut self) {
        let mut live = 0u64;
        self.for_each(|e| live += u64::from(e.state != ObjState::Dead));
        self.stats.destroyed += live;
        self.chunks.clear();
        self.free.clear();
        self.next = 0;
        self.index.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Tuple, AF_INET};
    use std::net::{IpAddr, Ipv4Addr};

    fn flow(i: u32) -> Flow {
        Flow {
            family: AF_INET,
            orig: Some(Tuple {
                src: Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))),
                dst: Some(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9))),
                l4proto: Some(17),
                src_port: Some(1),
                dst_port: Some(2),
                ..Tuple::default()
            }),
            ..Flow::default()
        }
    }

    /// A visit in slices (stopping after 3 entries each time) sees every
    /// entry once, holes left by removals included.
    #[test]
    fn visit_from_resumes_where_it_stopped() {
        let mut c = FlowCache::<[u8; 4]>::new(16, 100);
        for i in 0..10 {
            c.upsert(&flow(i), 1, 0);
        }
        c.remove(&Key::of(&flow(4)).unwrap());
        let mut seen = Vec::new();
        let mut pos = Some(0);
        let mut slices = 0;
        while let Some(p) = pos {
            let mut n = 0;
            pos = c.visit_from(p, |e| {
                seen.push(e.rec.key);
                n += 1;
                n < 3
            });
            slices += 1;
        }
        assert_eq!(seen.len(), 9);
        assert!(slices >= 3);
        let mut keys: Vec<_> = (0..10)
            .filter(|&i| i != 4)
            .map(|i| Key::of(&flow(i)).unwrap())
            .collect();
        keys.sort_by_key(|k| format!("{k:?}"));
        seen.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(seen, keys);
    }
}
