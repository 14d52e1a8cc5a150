//! The daemon's flow tables: compact per-family records ([`record`]) in a
//! slab-backed hash index ([`cache`]), and [`Cache`], which routes a
//! [`Flow`] to the IPv4 or IPv6 table; [`expect`] holds the expectation
//! caches of ExpectationSync.

pub mod c_order;
pub mod cache;
pub mod expect;
pub mod mirror;
pub mod obj_ref;
pub mod record;

pub use cache::{CacheStats, Entry, FlowCache, ObjState};
pub use expect::{ExpCache, ExpEntry};
pub use mirror::{Change, FakeTable, KernelTable, Mirror};
pub use obj_ref::{ObjRef, Table};
pub use record::{Addr, Extra, Key, Record, Reply};

use crate::flow::{Flow, AF_INET6};

/// An internal or external cache: one table per address family.
pub struct Cache {
    pub v4: FlowCache<[u8; 4]>,
    pub v6: FlowCache<[u8; 16]>,
    /// `HashLimit`: the most objects of both families together (as
    /// 1.4.7's one hash table per cache).
    limit: usize,
}

impl Cache {
    /// `buckets` = HashSize, `limit` = HashLimit (shared by both families).
    pub fn new(buckets: usize, limit: usize) -> Cache {
        Cache {
            v4: FlowCache::new(buckets, limit),
            v6: FlowCache::new(buckets / 4, limit),
            limit,
        }
    }

    /// A new `HashLimit` (the lanes follow a peer with fewer lanes: a
    /// lane's share grows); objects beyond it stay, new ones are refused.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Whether `f` is IPv6; before an insertion into that family, its
    /// room becomes what the other family leaves of `HashLimit`.
    fn is_v6(&mut self, f: &Flow) -> bool {
        if f.l3_family() == AF_INET6 {
            self.v6.set_limit(self.limit.saturating_sub(self.v4.len()));
            true
        } else {
            self.v4.set_limit(self.limit.saturating_sub(self.v6.len()));
            false
        }
    }

    fn is_v6_ref(f: &Flow) -> bool {
        f.l3_family() == AF_INET6
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Insert-or-update (see [`FlowCache::upsert`]).
    pub fn upsert(&mut self, f: &Flow, now: u32, gen: u8) -> Option<ObjState> {
        if self.is_v6(f) {
            self.v6.upsert(f, now, gen)
        } else {
            self.v4.upsert(f, now, gen)
        }
    }

    /// Insert-or-update, a created object ALIVE (see
    /// [`FlowCache::upsert_alive`]).
    pub fn upsert_alive(&mut self, f: &Flow, now: u32, gen: u8) -> Option<ObjState> {
        if self.is_v6(f) {
            self.v6.upsert_alive(f, now, gen)
        } else {
            self.v4.upsert_alive(f, now, gen)
        }
    }

    /// Replaces any object with `f` (a NEW event or a CT_NEW message).
    pub fn replace(&mut self, f: &Flow, now: u32, gen: u8) -> bool {
        self.replace_ref(f, now, gen).is_some()
    }

    /// Inserts `f` unless its key is cached (which stays as it is, not
    /// counted): stats mode's NEW, as 1.4.7's `stats_event_new`.
    pub fn insert_if_absent(&mut self, f: &Flow, now: u32, gen: u8) -> bool {
        if self.is_v6(f) {
            Record::from_flow(f, now).and_then(|r| self.v6.insert_new(r, ObjState::New, gen))
        } else {
            Record::from_flow(f, now).and_then(|r| self.v4.insert_new(r, ObjState::New, gen))
        }
        .is_some()
    }

    /// Removes the object of `f`'s original tuple; returns it as a flow.
    pub fn remove(&mut self, f: &Flow) -> Option<Flow> {
        if Self::is_v6_ref(f) {
            let k = Key::of(f)?;
            self.v6.remove(&k).map(|e| e.rec.to_flow())
        } else {
            let k = Key::of(f)?;
            self.v4.remove(&k).map(|e| e.rec.to_flow())
        }
    }

    /// The cached flow of `f`'s key.
    pub fn get(&self, f: &Flow) -> Option<(Flow, ObjState, u32)> {
        if Self::is_v6_ref(f) {
            let e = self.v6.get(&Key::of(f)?)?;
            Some((e.rec.to_flow(), e.state, e.rec.created))
        } else {
            let e = self.v4.get(&Key::of(f)?)?;
            Some((e.rec.to_flow(), e.state, e.rec.created))
        }
    }

    /// Visits every object as (flow, state, created).
    pub fn for_each(&self, mut cb: impl FnMut(Flow, ObjState, u32)) {
        self.v4
            .for_each(|e| cb(e.rec.to_flow(), e.state, e.rec.created));
        self.v6
            .for_each(|e| cb(e.rec.to_flow(), e.state, e.rec.created));
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    /// Removes the entries whose generation is not `gen`; returns how many.
    pub fn remove_stale(&mut self, gen: u8) -> usize {
        let (a, b) = (self.v4.stale(gen), self.v6.stale(gen));
        for k in &a {
            self.v4.remove(k);
        }
        for k in &b {
            self.v6.remove(k);
        }
        a.len() + b.len()
    }

    /// The generation of `f`'s entry, if cached.
    pub fn gen_of(&self, f: &Flow) -> Option<u8> {
        if Self::is_v6_ref(f) {
            let k = record::Key::of(f)?;
            self.v6.get(&k).map(|e| e.gen)
        } else {
            let k = record::Key::of(f)?;
            self.v4.get(&k).map(|e| e.gen)
        }
    }

    /// Entries whose generation is `gen`.
    pub fn count_gen(&self, gen: u8) -> usize {
        let mut n = 0;
        self.v4.for_each(|e| n += usize::from(e.gen == gen));
        self.v6.for_each(|e| n += usize::from(e.gen == gen));
        n
    }

    /// [`replace`](Self::replace), returning the object's reference.
    pub fn replace_ref(&mut self, f: &Flow, now: u32, gen: u8) -> Option<ObjRef> {
        if self.is_v6(f) {
            let r = Record::from_flow(f, now)?;
            let i = self.v6.insert_slot(r, ObjState::New, gen)?;
            self.v6
                .entry_at(i)
                .map(|e| ObjRef::new(Table::V6, i, e.serial))
        } else {
            let r = Record::from_flow(f, now)?;
            let i = self.v4.insert_slot(r, ObjState::New, gen)?;
            self.v4
                .entry_at(i)
                .map(|e| ObjRef::new(Table::V4, i, e.serial))
        }
    }

    /// [`upsert`](Self::upsert), returning the object's reference.
    pub fn upsert_ref(&mut self, f: &Flow, now: u32, gen: u8) -> Option<ObjRef> {
        if self.is_v6(f) {
            let (_, i) = self.v6.upsert_slot(f, now, gen)?;
            self.v6
                .entry_at(i)
                .map(|e| ObjRef::new(Table::V6, i, e.serial))
        } else {
            let (_, i) = self.v4.upsert_slot(f, now, gen)?;
            self.v4
                .entry_at(i)
                .map(|e| ObjRef::new(Table::V4, i, e.serial))
        }
    }

    /// The reference of the object of `f`'s key, for protocols that queue
    /// objects.
    pub fn obj_ref(&self, f: &Flow) -> Option<ObjRef> {
        if Self::is_v6_ref(f) {
            let i = self.v6.slot_of(&Key::of(f)?)?;
            self.v6
                .entry_at(i)
                .map(|e| ObjRef::new(Table::V6, i, e.serial))
        } else {
            let i = self.v4.slot_of(&Key::of(f)?)?;
            self.v4
                .entry_at(i)
                .map(|e| ObjRef::new(Table::V4, i, e.serial))
        }
    }

    /// The object behind a reference: (flow, state); `None` when it is
    /// gone (its slot free or another object's).
    pub fn by_ref(&self, r: ObjRef) -> Option<(Flow, ObjState)> {
        let mut f = Flow::default();
        let st = self.by_ref_into(r, &mut f)?;
        Some((f, st))
    }

    /// [`by_ref`](Self::by_ref) into a flow the caller reuses.
    pub fn by_ref_into(&self, r: ObjRef, out: &mut Flow) -> Option<ObjState> {
        match r.table() {
            Table::V4 => {
                let e = self.v4.entry_named(r.pos(), r)?;
                e.rec.to_flow_into(out);
                Some(e.state)
            }
            Table::V6 => {
                let e = self.v6.entry_named(r.pos(), r)?;
                e.rec.to_flow_into(out);
                Some(e.state)
            }
            Table::Exp => None,
        }
    }

    /// The state behind a reference.
    pub fn state_of(&self, r: ObjRef) -> Option<ObjState> {
        match r.table() {
            Table::V4 => self.v4.entry_named(r.pos(), r).map(|e| e.state),
            Table::V6 => self.v6.entry_named(r.pos(), r).map(|e| e.state),
            Table::Exp => None,
        }
    }

    /// Marks the object of `f` DEAD (kept until its deletion is
    /// acknowledged); returns its reference if it was live.
    pub fn mark_dead(&mut self, f: &Flow) -> Option<ObjRef> {
        let r = self.obj_ref(f)?;
        self.set_dead(r).then_some(r)
    }

    /// Marks the object behind a reference DEAD; false when it was already
    /// DEAD or is gone.
    /// (Counted destroyed now, as 1.4.7's `cache_object_set_status`
    /// does; its removal later is not counted again.)
    pub fn set_dead(&mut self, r: ObjRef) -> bool {
        match r.table() {
            Table::V4 => self.v4.set_dead_at(r),
            Table::V6 => self.v6.set_dead_at(r),
            Table::Exp => false,
        }
    }

    /// Removes the object behind a reference.
    pub fn remove_ref(&mut self, r: ObjRef) -> Option<Flow> {
        self.state_of(r)?;
        match r.table() {
            Table::V4 => self.v4.remove_at(r.pos()).map(|e| e.rec.to_flow()),
            Table::V6 => self.v6.remove_at(r.pos()).map(|e| e.rec.to_flow()),
            Table::Exp => None,
        }
    }

    /// Every object's reference and state.
    pub fn refs(&self, mut f: impl FnMut(ObjRef, ObjState)) {
        self.v4
            .for_each_at(|i, e| f(ObjRef::new(Table::V4, i, e.serial), e.state));
        self.v6
            .for_each_at(|i, e| f(ObjRef::new(Table::V6, i, e.serial), e.state));
    }

    /// A copy of the live (not DEAD) objects, taken now: a control dump
    /// is formatted from it by another thread while this cache goes on.
    pub fn snapshot(&self) -> Snapshot {
        let mut v4 = Vec::with_capacity(self.v4.len());
        let mut v6 = Vec::with_capacity(self.v6.len());
        self.v4.for_each(|e| {
            if e.state != ObjState::Dead {
                v4.push(e.rec.clone())
            }
        });
        self.v6.for_each(|e| {
            if e.state != ObjState::Dead {
                v6.push(e.rec.clone())
            }
        });
        Snapshot { v4, v6 }
    }

    /// Summed counters of both families.
    pub fn stats(&self) -> CacheStats {
        let (a, b) = (self.v4.stats, self.v6.stats);
        CacheStats {
            created: a.created + b.created,
            create_failed: a.create_failed + b.create_failed,
            no_memory: a.no_memory + b.no_memory,
            no_space: a.no_space + b.no_space,
            updated: a.updated + b.updated,
            update_failed: a.update_failed + b.update_failed,
            update_not_found: a.update_not_found + b.update_not_found,
            destroyed: a.destroyed + b.destroyed,
            destroy_failed: a.destroy_failed + b.destroy_failed,
            destroy_not_found: a.destroy_not_found + b.destroy_not_found,
        }
    }
}

/// The live objects of a [`Cache`] at one instant ([`Cache::snapshot`]).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    v4: Vec<Record<[u8; 4]>>,
    v6: Vec<Record<[u8; 16]>>,
}

impl Snapshot {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Visits every object as (flow, created), IPv4 first, in the
    /// cache's order.
    pub fn for_each(&self, mut cb: impl FnMut(Flow, u32)) {
        self.for_each_timed(|f, created, _| cb(f, created))
    }

    /// [`for_each_timed`](Self::for_each_timed) in the order conntrackd
    /// 1.4.7 lists a cache of `hashsize` buckets ([`c_order`]): bucket by
    /// bucket, the newest object first (by creation time, then by the
    /// order the records were made in, [`Record::seq`]).
    pub fn for_each_c_order(&self, hashsize: u32, mut cb: impl FnMut(Flow, u32, u32)) {
        let n4 = self.v4.len();
        // (bucket, created, seq, place)
        let mut order: Vec<(u32, u32, u32, u32)> = Vec::with_capacity(self.len());
        // (one flow reused for the buckets: only the tuple is read)
        let mut f = Flow::default();
        for (i, r) in self.v4.iter().enumerate() {
            r.to_flow_into(&mut f);
            let b = c_order::bucket(&f, hashsize);
            order.push((b, r.created, r.seq, i as u32));
        }
        for (i, r) in self.v6.iter().enumerate() {
            r.to_flow_into(&mut f);
            let b = c_order::bucket(&f, hashsize);
            order.push((b, r.created, r.seq, (n4 + i) as u32));
        }
        c_order::sort_listing(&mut order);
        for (_, _, _, at) in order {
            let at = at as usize;
            if at < n4 {
                let r = &self.v4[at];
                cb(r.to_flow(), r.created, r.updated);
            } else {
                let r = &self.v6[at - n4];
                cb(r.to_flow(), r.created, r.updated);
            }
        }
    }

    /// [`for_each`](Self::for_each) with when each object was last added
    /// or updated too: (flow, created, updated).
    pub fn for_each_timed(&self, mut cb: impl FnMut(Flow, u32, u32)) {
        for r in &self.v4 {
            cb(r.to_flow(), r.created, r.updated);
        }
        for r in &self.v6 {
            cb(r.to_flow(), r.created, r.updated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Tuple, AF_INET};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn flow(i: u32, v6: bool) -> Flow {
        let (src, dst) = if v6 {
            (
                IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | i as u128)),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)),
            )
        };
        Flow {
            family: if v6 { AF_INET6 } else { AF_INET },
            orig: Some(Tuple {
                src: Some(src),
                dst: Some(dst),
                l4proto: Some(17),
                src_port: Some(1),
                dst_port: Some(2),
                ..Tuple::default()
            }),
            ..Flow::default()
        }
    }

    /// A NEW for a cached object replaces it as 1.4.7 does (deleted, then
    /// added): both counted, so created - destroyed is what the cache
    /// holds.
    #[test]
    fn a_new_for_a_cached_object_counts_a_destroy_and_a_create() {
        let mut c = Cache::new(16, 100);
        for v6 in [false, true] {
            c.replace(&flow(1, v6), 1, 0);
            c.replace(&flow(1, v6), 2, 0);
            c.replace(&flow(2, v6), 2, 0);
        }
        let s = c.stats();
        assert_eq!((s.created, s.destroyed, c.len()), (6, 2, 4));
        assert_eq!(s.created - s.destroyed, c.len() as u64);
    }

    /// Stats mode's NEW of a cached flow keeps the object and counts
    /// nothing (1.4.7's `stats_event_new`); a DEAD object revived by an
    /// update is counted gone and created.
    #[test]
    fn stats_new_keeps_and_dead_revival_counts() {
        let mut m = Mirror::new(16, 100);
        m.on_event_stats(Change::New, &flow(1, false), 1);
        let mut g = flow(1, false);
        g.mark = Some(7);
        m.on_event_stats(Change::New, &g, 2);
        let s = m.cache.stats();
        assert_eq!((s.created, s.destroyed), (1, 0));
        assert_eq!(
            m.cache.get(&g).unwrap().0.mark,
            None,
            "the first object stays"
        );
        let mut c = Cache::new(16, 100);
        c.replace(&flow(2, false), 1, 0);
        c.mark_dead(&flow(2, false));
        // counted when it dies, as 1.4.7 does, not again when revived
        assert_eq!(c.stats().destroyed, 1);
        c.upsert(&flow(2, false), 2, 0);
        let s = c.stats();
        assert_eq!((s.created, s.destroyed, c.len()), (2, 1, 1));
        // nor when a DEAD object leaves (after the peer's ACK), nor in a
        // flush
        c.replace(&flow(3, false), 3, 0);
        let r = c.mark_dead(&flow(3, false)).unwrap();
        c.remove_ref(r);
        c.replace(&flow(4, false), 3, 0);
        c.mark_dead(&flow(4, false));
        c.clear();
        let s = c.stats();
        assert_eq!((s.created, s.destroyed), (4, 4), "{s:?}");
    }

    /// A flush counts every object destroyed, as 1.4.7's `cache_flush`;
    /// the deletion of an object not held counts nothing (1.4.7's
    /// "failed" and "entry not found" are never raised).
    #[test]
    fn flush_counts_and_a_missing_deletion_does_not() {
        let mut c = Cache::new(16, 100);
        for i in 0..5 {
            c.replace(&flow(i, i % 2 == 0), 1, 0);
        }
        c.remove(&flow(9, false));
        c.clear();
        let s = c.stats();
        assert_eq!((s.created, s.destroyed, c.len()), (5, 5, 0));
        assert_eq!((s.destroy_failed, s.destroy_not_found), (0, 0));
    }

    /// `HashLimit` bounds both families together, as 1.4.7's single table
    /// does: 3 IPv4 + 2 IPv6 fill a limit of 5, and the sixth object of
    /// either family is refused and counted as "no space".
    #[test]
    fn hash_limit_is_shared_by_both_families() {
        let mut c = Cache::new(16, 5);
        for i in 0..3 {
            assert!(c.upsert(&flow(i, false), 1, 0).is_some());
        }
        for i in 0..2 {
            assert!(c.upsert(&flow(i, true), 1, 0).is_some());
        }
        assert_eq!(c.len(), 5);
        assert!(c.upsert(&flow(9, false), 1, 0).is_none());
        assert!(c.replace_ref(&flow(9, true), 1, 0).is_none());
        assert_eq!(c.stats().no_space, 2);
        // updates of cached objects still work when full
        assert!(c.upsert(&flow(0, true), 2, 0).is_some());
        // room again once one leaves, for either family
        c.remove(&flow(0, false));
        assert!(c.upsert(&flow(9, true), 1, 0).is_some());
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn snapshot_holds_the_live_objects() {
        let mut c = Cache::new(16, 100);
        c.upsert(&flow(1, false), 1, 0);
        c.upsert(&flow(2, true), 1, 0);
        let r = c.upsert_ref(&flow(3, false), 1, 0).unwrap();
        c.set_dead(r);
        let snap = c.snapshot();
        assert_eq!(snap.len(), 2);
        let mut n = 0;
        snap.for_each(|f, created| {
            assert_eq!(created, 1);
            assert!(c.get(&f).is_some());
            n += 1;
        });
        assert_eq!(n, 2);
    }
}
