//! FT-FW's bookkeeping without hashing or trees on the per-flow path:
//!
//! * [`SeqQueue`], the resend queue: entries keyed by the sequence number
//!   they were sent with. Numbers only grow, so the queue is a ring
//!   indexed by `seq - base` (1.4.7 uses a list in sending order):
//!   insertion at the end, removal by number and acknowledgement of a
//!   range are O(1) per entry; removed slots in the middle stay empty
//!   until the front passes them.
//! * [`Locs`], where each object is (tx queue, resend queue under which
//!   number, or neither): object references name a table, a slab
//!   position and the object's serial, so a vector per table indexed by
//!   position (with the serial each entry is for) replaces a hash map.

use std::collections::VecDeque;

use ct_core::table::ObjRef;

/// Entries by strictly growing 64-bit sequence number.
#[derive(Debug, Clone)]
pub struct SeqQueue<T> {
    /// The number of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<T>>,
    live: usize,
}

impl<T> Default for SeqQueue<T> {
    fn default() -> Self {
        SeqQueue {
            base: 0,
            slots: VecDeque::new(),
            live: 0,
        }
    }
}

impl<T: Copy> SeqQueue<T> {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Slots between the oldest entry and the newest (held or freed).
    pub fn span(&self) -> usize {
        self.slots.len()
    }

    fn end(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Adds `e` under `seq`, which must follow every number inserted
    /// before (numbers in between stay empty). A number at or before the
    /// end replaces what is there (not used by FT-FW).
    pub fn insert(&mut self, seq: u64, e: T) {
        if self.slots.is_empty() {
            self.base = seq;
        }
        if seq < self.base {
            // before the front: prepend empty slots (not on FT-FW's path)
            for _ in seq..self.base {
                self.slots.push_front(None);
            }
            self.base = seq;
        }
        while self.end() <= seq {
            self.slots.push_back(None);
        }
        let slot = &mut self.slots[(seq - self.base) as usize];
        if slot.is_none() {
            self.live += 1;
        }
        *slot = Some(e);
    }

    /// Takes the entry of `seq`.
    pub fn remove(&mut self, seq: u64) -> Option<T> {
        if seq < self.base || seq >= self.end() {
            return None;
        }
        let e = self.slots[(seq - self.base) as usize].take();
        if e.is_some() {
            self.live -= 1;
            self.trim();
        }
        e
    }

    /// Drops the empty slots at the front.
    fn trim(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        if self.slots.is_empty() {
            self.base = 0;
        }
    }

    /// Takes the oldest entry.
    pub fn pop_first(&mut self) -> Option<(u64, T)> {
        self.trim();
        let seq = self.base;
        let e = self.slots.pop_front()??;
        self.base += 1;
        self.live -= 1;
        self.trim();
        Some((seq, e))
    }

    /// Takes every entry numbered in `lo..=hi`, oldest first, into `out`.
    pub fn take_range(&mut self, lo: u64, hi: u64, out: &mut Vec<(u64, T)>) {
        let from = lo.max(self.base);
        let to = hi.min(self.end().saturating_sub(1));
        if self.slots.is_empty() || from > to {
            return;
        }
        for seq in from..=to {
            if let Some(e) = self.slots[(seq - self.base) as usize].take() {
                self.live -= 1;
                out.push((seq, e));
            }
        }
        self.trim();
    }

    /// Takes the entries numbered in `lo..=hi` for which `done` says so
    /// (it may change the others), oldest first, into `out`.
    pub fn take_range_if(
        &mut self,
        lo: u64,
        hi: u64,
        mut done: impl FnMut(&mut T) -> bool,
        out: &mut Vec<(u64, T)>,
    ) {
        let from = lo.max(self.base);
        let to = hi.min(self.end().saturating_sub(1));
        if self.slots.is_empty() || from > to {
            return;
        }
        for seq in from..=to {
            let slot = &mut self.slots[(seq - self.base) as usize];
            if let Some(e) = slot.as_mut() {
                if done(e) {
                    out.push((seq, *e));
                    *slot = None;
                    self.live -= 1;
                }
            }
        }
        self.trim();
    }

    /// The number after the newest slot (the first of an empty queue: 0).
    pub fn end_seq(&self) -> u64 {
        self.end()
    }

    /// The number of the oldest slot.
    pub fn base_seq(&self) -> u64 {
        self.base
    }

    /// Takes every entry, oldest first.
    pub fn take_all(&mut self) -> Vec<(u64, T)> {
        let base = self.base;
        let v = std::mem::take(&mut self.slots)
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (base + i as u64, e)))
            .collect();
        self.base = 0;
        self.live = 0;
        v
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        let base = self.base;
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(i, e)| e.as_ref().map(|e| (base + i as u64, e)))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().flatten()
    }
}

/// Where an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    Tx,
    /// In the resend queue under this (64-bit) sequence number.
    Rs(u64),
}

/// `Loc` of every object, by reference: per table, per slab position,
/// the location and the serial of the object it is for. A reference with
/// another serial (an object that left that slot, or the one that took
/// it) is not located, and cannot move or remove the other's location.
#[derive(Debug, Clone, Default)]
pub struct Locs {
    /// Per table, per position: 0 = nowhere, 1 = tx, n + 2 = resend `n`.
    tables: Vec<Vec<u64>>,
    /// The serial each location is for.
    serials: Vec<Vec<u32>>,
}

fn split(r: ObjRef) -> (usize, usize) {
    (r.table() as usize, r.pos() as usize)
}

impl Locs {
    pub fn get(&self, r: ObjRef) -> Option<Loc> {
        let (k, i) = split(r);
        let code = self.tables.get(k).and_then(|v| v.get(i)).copied()?;
        if code == 0 || !r.names(self.serials[k][i]) {
            return None;
        }
        match code {
            1 => Some(Loc::Tx),
            n => Some(Loc::Rs(n - 2)),
        }
    }

    pub fn insert(&mut self, r: ObjRef, l: Loc) {
        let (k, i) = split(r);
        if self.tables.len() <= k {
            self.tables.resize_with(k + 1, Vec::new);
            self.serials.resize_with(k + 1, Vec::new);
        }
        let v = &mut self.tables[k];
        if v.len() <= i {
            let n = (i + 1).max(v.len() * 2).max(1024);
            v.resize(n, 0);
            self.serials[k].resize(n, 0);
        }
        v[i] = match l {
            Loc::Tx => 1,
            Loc::Rs(n) => n + 2,
        };
        self.serials[k][i] = r.serial();
    }

    pub fn remove(&mut self, r: ObjRef) -> Option<Loc> {
        let l = self.get(r);
        if l.is_some() {
            let (k, i) = split(r);
            self.tables[k][i] = 0;
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The ring behaves as the BTreeMap it replaces, over random
    /// operations (growing numbers, removals, ranges, pops).
    #[test]
    fn seq_queue_matches_a_btreemap() {
        let mut q = SeqQueue::<u32>::default();
        let mut m = BTreeMap::<u64, u32>::new();
        let mut x: u64 = 0x9e37_79b9;
        let mut next = 1u64 << 32;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..20_000u32 {
            match rnd() % 6 {
                0..=2 => {
                    next += 1 + rnd() % 3;
                    q.insert(next, step);
                    m.insert(next, step);
                }
                3 => {
                    let s = next - rnd() % 50;
                    assert_eq!(q.remove(s), m.remove(&s));
                }
                4 => {
                    let hi = next - rnd() % 40;
                    let lo = hi - rnd() % 20;
                    let mut got = Vec::new();
                    q.take_range(lo, hi, &mut got);
                    let want: Vec<(u64, u32)> = m.range(lo..=hi).map(|(&k, &v)| (k, v)).collect();
                    for (k, _) in &want {
                        m.remove(k);
                    }
                    assert_eq!(got, want);
                }
                _ => assert_eq!(q.pop_first(), m.pop_first()),
            }
            assert_eq!(q.len(), m.len());
            assert!(q
                .iter()
                .map(|(k, v)| (k, *v))
                .eq(m.iter().map(|(&k, &v)| (k, v))));
        }
        assert_eq!(q.take_all(), m.into_iter().collect::<Vec<_>>());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn locs_by_table_position_and_serial() {
        use ct_core::table::Table;
        let r = |t, pos, serial| ObjRef::new(t, pos, serial);
        let mut l = Locs::default();
        assert_eq!(l.get(r(Table::V4, 5, 1)), None);
        l.insert(r(Table::V4, 5, 1), Loc::Tx);
        l.insert(r(Table::V6, 7, 1), Loc::Rs(1 << 32));
        l.insert(r(Table::Exp, 0, 3), Loc::Rs(9));
        assert_eq!(l.get(r(Table::V4, 5, 1)), Some(Loc::Tx));
        assert_eq!(l.get(r(Table::V4, 7, 1)), None);
        assert_eq!(l.get(r(Table::V6, 7, 1)), Some(Loc::Rs(1 << 32)));
        assert_eq!(l.remove(r(Table::Exp, 0, 3)), Some(Loc::Rs(9)));
        assert_eq!(l.get(r(Table::Exp, 0, 3)), None);
        // another object in the same slot: not located, and the old
        // reference cannot remove the new one's location
        assert_eq!(l.get(r(Table::V4, 5, 2)), None);
        l.insert(r(Table::V4, 5, 2), Loc::Rs(4));
        assert_eq!(l.remove(r(Table::V4, 5, 1)), None);
        assert_eq!(l.get(r(Table::V4, 5, 2)), Some(Loc::Rs(4)));
    }
}
