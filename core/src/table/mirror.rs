//! Keeping a cache equal to a kernel table: the event rules of
//! conntrackd's internal cache (NEW replaces, UPDATE updates or creates,
//! DESTROY removes), the resync that follows a lost event (a full dump
//! marks what it sees with a new generation, then everything older is
//! swept), and [`KernelTable`], the seam between this logic and the
//! kernel (ctnetlink in the daemon, [`FakeTable`] in tests).

use std::collections::HashMap;

use super::{Cache, Key, ObjRef, ObjState, Table};
use crate::flow::{Flow, AF_INET6};

/// What an event says happened to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    New,
    Update,
    Destroy,
}

/// The kernel's connection table as the daemon uses it.
pub trait KernelTable {
    /// Calls `f` for every entry.
    fn dump(&mut self, f: &mut dyn FnMut(&Flow)) -> Result<(), i32>;
    /// Creates entries; one result per flow (errno on failure).
    fn create(&mut self, flows: &[Flow]) -> Vec<Result<(), i32>>;
    /// Deletes the entry of a flow's original tuple.
    fn delete(&mut self, f: &Flow) -> Result<(), i32>;
}

/// A cache kept equal to the kernel table by events and resyncs.
pub struct Mirror {
    pub cache: Cache,
    gen: u8,
}

impl Mirror {
    pub fn new(buckets: usize, limit: usize) -> Mirror {
        Mirror {
            cache: Cache::new(buckets, limit),
            gen: 0,
        }
    }

    /// Applies one event; returns the cached flow a DESTROY removed.
    pub fn on_event(&mut self, change: Change, f: &Flow, now: u32) -> Option<Flow> {
        match change {
            Change::New => {
                self.cache.replace(f, now, self.gen);
                None
            }
            Change::Update => {
                self.cache.upsert(f, now, self.gen);
                None
            }
            Change::Destroy => self.cache.remove(f),
        }
    }

    /// [`on_event`](Mirror::on_event) for the stats cache: a NEW of a
    /// cached flow changes nothing (1.4.7's stats mode keeps the object).
    pub fn on_event_stats(&mut self, change: Change, f: &Flow, now: u32) -> Option<Flow> {
        if change == Change::New {
            self.cache.insert_if_absent(f, now, self.gen);
            return None;
        }
        self.on_event(change, f, now)
    }

    /// Applies one event for a protocol that acknowledges deletions
    /// (FT-FW): a DESTROY marks the entry DEAD instead of removing it (it
    /// leaves the cache once the peer acknowledged the deletion, through
    /// [`Cache::remove_ref`]). Returns the entry's reference when there is
    /// something to send (None: a DESTROY of an unknown or already DEAD
    /// entry, or a full cache).
    pub fn on_event_keep_dead(&mut self, change: Change, f: &Flow, now: u32) -> Option<ObjRef> {
        match change {
            Change::New => self.cache.replace_ref(f, now, self.gen),
            Change::Update => self.cache.upsert_ref(f, now, self.gen),
            Change::Destroy => self.cache.mark_dead(f),
        }
    }

    /// Ends a resync like [`end_resync`](Mirror::end_resync), but marks the
    /// entries the dump did not see DEAD and returns their references.
    pub fn end_resync_keep_dead(&mut self) -> Vec<ObjRef> {
        let gen = self.gen;
        let mut gone = Vec::new();
        self.cache.v4.for_each_at(|i, e| {
            if e.gen != gen && e.state != ObjState::Dead {
                gone.push(ObjRef::new(Table::V4, i, e.serial));
            }
        });
        self.cache.v6.for_each_at(|i, e| {
            if e.gen != gen && e.state != ObjState::Dead {
                gone.push(ObjRef::new(Table::V6, i, e.serial));
            }
        });
        for &r in &gone {
            self.cache.set_dead(r);
        }
        gone
    }

    /// Starts a resync: entries seen from now on carry a new generation.
    pub fn begin_resync(&mut self) {
        self.gen = self.gen.wrapping_add(1);
    }

    /// One entry of the resync dump.
    pub fn resync_entry(&mut self, f: &Flow, now: u32) {
        self.cache.upsert(f, now, self.gen);
    }

    /// One entry of the resync dump of a lane that takes flows over: an
    /// entry it creates is ALIVE (see [`Cache::upsert_alive`]).
    pub fn resync_entry_taken(&mut self, f: &Flow, now: u32) {
        self.cache.upsert_alive(f, now, self.gen);
    }

    /// Ends a resync: removes and returns every entry the dump did not see.
    pub fn end_resync(&mut self) -> Vec<Flow> {
        let mut gone = Vec::new();
        self.sweep_stale(|_, _, f| gone.push(f));
        gone
    }

    /// Removes the entries the resync did not see, each given to `out`
    /// as (created, seq, flow).
    fn sweep_stale(&mut self, mut out: impl FnMut(u32, u32, Flow)) {
        for k in self.cache.v4.stale(self.gen) {
            if let Some(e) = self.cache.v4.remove(&k) {
                out(e.rec.created, e.rec.seq, e.rec.to_flow());
            }
        }
        for k in self.cache.v6.stale(self.gen) {
            if let Some(e) = self.cache.v6.remove(&k) {
                out(e.rec.created, e.rec.seq, e.rec.to_flow());
            }
        }
    }

    /// [`end_resync`](Self::end_resync), the swept flows in the order
    /// conntrackd 1.4.7 walks a cache of `hashsize` buckets
    /// ([`super::c_order`]): its stats mode logs them so.
    pub fn end_resync_in_c_order(&mut self, hashsize: u32) -> Vec<Flow> {
        let mut keyed: Vec<(u32, u32, u32, Flow)> = Vec::new();
        self.sweep_stale(|c, s, f| keyed.push((super::c_order::bucket(&f, hashsize), c, s, f)));
        super::c_order::sort_listing(&mut keyed);
        keyed.into_iter().map(|(_, _, _, f)| f).collect()
    }

    /// A full resync from `table`; returns the swept flows.
    pub fn resync(&mut self, table: &mut dyn KernelTable, now: u32) -> Result<Vec<Flow>, i32> {
        self.begin_resync();
        let mut seen = Vec::new();
        table.dump(&mut |f| seen.push(*f))?;
        for f in &seen {
            self.resync_entry(f, now);
        }
        Ok(self.end_resync())
    }

    /// Whether every live cached entry is in `table` and vice versa
    /// (compared by key, mark and status).
    pub fn equals(&self, table: &mut dyn KernelTable) -> bool {
        let mut kernel: HashMap<String, (Option<u32>, Option<u32>)> = HashMap::new();
        let _ = table.dump(&mut |f| {
            kernel.insert(key_text(f), (f.mark, f.status));
        });
        let mut n = 0;
        let mut ok = true;
        self.cache.for_each(|f, state, _| {
            if state == ObjState::Dead {
                return;
            }
            n += 1;
            if kernel.get(&key_text(&f)) != Some(&(f.mark, f.status)) {
                ok = false;
            }
        });
        ok && n == kernel.len()
    }
}

fn key_text(f: &Flow) -> String {
    if f.l3_family() == AF_INET6 {
        format!("{:?}", Key::<[u8; 16]>::of(f))
    } else {
        format!("{:?}", Key::<[u8; 4]>::of(f))
    }
}

/// An in-memory kernel table for tests: keyed like the kernel (original
/// tuple), it records the events it would send so a test can deliver,
/// drop or reorder them.
#[derive(Default)]
pub struct FakeTable {
    entries: HashMap<String, Flow>,
    /// Events generated by changes, in order.
    pub events: Vec<(Change, Flow)>,
}

impl FakeTable {
    pub fn new() -> FakeTable {
        FakeTable::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Creates or updates an entry as packets would.
    pub fn upsert(&mut self, f: Flow) {
        let k = key_text(&f);
        let change = if self.entries.contains_key(&k) {
            Change::Update
        } else {
            Change::New
        };
        self.entries.insert(k, f);
        self.events.push((change, f));
    }

    /// Removes an entry (expiry).
    pub fn expire(&mut self, f: &Flow) {
        if let Some(old) = self.entries.remove(&key_text(f)) {
            self.events.push((Change::Destroy, old));
        }
    }
}

impl KernelTable for FakeTable {
    fn dump(&mut self, f: &mut dyn FnMut(&Flow)) -> Result<(), i32> {
        for e in self.entries.values() {
            f(e);
        }
        Ok(())
    }

    fn create(&mut self, flows: &[Flow]) -> Vec<Result<(), i32>> {
        flows
            .iter()
            .map(|f| {
                match self.entries.entry(key_text(f)) {
                    std::collections::hash_map::Entry::Occupied(_) => Err(17), // EEXIST
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(*f);
                        self.events.push((Change::New, *f));
                        Ok(())
                    }
                }
            })
            .collect()
    }

    fn delete(&mut self, f: &Flow) -> Result<(), i32> {
        match self.entries.remove(&key_text(f)) {
            Some(old) => {
                self.events.push((Change::Destroy, old));
                Ok(())
            }
            None => Err(2), // ENOENT
        }
    }
}
