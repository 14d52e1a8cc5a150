//! One-shot and periodic timers: a slab of timer slots and a binary heap
//! of deadlines with lazy deletion (each heap entry carries the slot's arm
//! sequence; re-arming or removing bumps it, so old entries are skipped).
//! Neither arming nor firing allocates once the heap has grown to the
//! number of timers; stale entries are swept when they outnumber live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::event::TimerId;

struct Slot {
    gen: u32,
    live: bool,
    arm: u32,
    deadline: Option<Instant>,
    period: Option<Duration>,
}

/// The timer set of one reactor.
pub(crate) struct Timers {
    slots: Vec<Slot>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    armed: usize,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            slots: Vec::new(),
            free: Vec::new(),
            heap: BinaryHeap::with_capacity(64),
            armed: 0,
        }
    }

    fn slot(&mut self, id: TimerId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.idx as usize)
            .filter(|s| s.live && s.gen == id.gen)
    }

    /// A new timer, armed at `deadline` (if any), repeating every `period`.
    pub(crate) fn add(&mut self, deadline: Option<Instant>, period: Option<Duration>) -> TimerId {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    gen: 0,
                    live: false,
                    arm: 0,
                    deadline: None,
                    period: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[idx as usize];
        s.gen = s.gen.wrapping_add(1);
        s.live = true;
        s.deadline = None;
        let id = TimerId { idx, gen: s.gen };
        self.set(id, deadline, period);
        id
    }

    /// Re-arms (or, with `None`, disarms) a timer; false for a stale id.
    pub(crate) fn set(
        &mut self,
        id: TimerId,
        deadline: Option<Instant>,
        period: Option<Duration>,
    ) -> bool {
        let Some(s) = self.slot(id) else {
            return false;
        };
        let was = s.deadline.is_some();
        s.arm = s.arm.wrapping_add(1);
        s.deadline = deadline;
        s.period = period.filter(|p| !p.is_zero());
        let arm = s.arm;
        match (was, deadline) {
            (false, Some(_)) => self.armed += 1,
            (true, None) => self.armed -= 1,
            _ => {}
        }
        if let Some(d) = deadline {
            self.heap.push(Reverse((d, id.idx, arm)));
            self.sweep();
        }
        true
    }

    /// Re-arms a timer keeping its period; false for a stale id.
    pub(crate) fn reset(&mut self, id: TimerId, deadline: Option<Instant>) -> bool {
        let Some(period) = self.slot(id).map(|s| s.period) else {
            return false;
        };
        self.set(id, deadline, period)
    }

    /// Deletes a timer; false for a stale id.
    pub(crate) fn remove(&mut self, id: TimerId) -> bool {
        if !self.set(id, None, None) {
            return false;
        }
        self.slots[id.idx as usize].live = false;
        self.free.push(id.idx);
        true
    }

    fn is_current(slots: &[Slot], e: &(Instant, u32, u32)) -> bool {
        let s = &slots[e.1 as usize];
        s.live && s.arm == e.2 && s.deadline == Some(e.0)
    }

    /// Drops stale heap entries when they dominate.
    fn sweep(&mut self) {
        if self.heap.len() > 2 * self.armed + 32 {
            let slots = &self.slots;
            self.heap.retain(|Reverse(e)| Self::is_current(slots, e));
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse(e)) = self.heap.peek() {
            if Self::is_current(&self.slots, e) {
                return Some(e.0);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops one timer due at `now`, re-arming it if periodic (the next
    /// deadline is the old one plus the period, or `now` plus the period
    /// when it fell behind, so missed ticks are not replayed).
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<TimerId> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, idx, _)) = self.heap.pop().expect("peeked");
        let s = &mut self.slots[idx as usize];
        let id = TimerId { idx, gen: s.gen };
        s.arm = s.arm.wrapping_add(1);
        match s.period {
            Some(p) => {
                let mut next = deadline + p;
                if next <= now {
                    next = now + p;
                }
                s.deadline = Some(next);
                let arm = s.arm;
                self.heap.push(Reverse((next, idx, arm)));
            }
            None => {
                s.deadline = None;
                self.armed -= 1;
            }
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_periodic_reset_remove() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Timers::new();
        let a = t.add(Some(t0 + ms(10)), None);
        let b = t.add(Some(t0 + ms(5)), Some(ms(5)));
        let c = t.add(Some(t0 + ms(1)), None);
        assert!(t.remove(c));
        assert!(!t.remove(c));
        assert_eq!(t.next_deadline(), Some(t0 + ms(5)));
        assert_eq!(t.pop_expired(t0 + ms(4)), None);
        assert_eq!(t.pop_expired(t0 + ms(5)), Some(b));
        assert_eq!(t.next_deadline(), Some(t0 + ms(10)));
        // Same deadline: the lower slot first.
        assert_eq!(t.pop_expired(t0 + ms(10)), Some(a));
        assert_eq!(t.pop_expired(t0 + ms(10)), Some(b));
        assert_eq!(t.pop_expired(t0 + ms(10)), None);
        // b fell behind: next tick is now + period, not a replay.
        assert_eq!(t.pop_expired(t0 + ms(100)), Some(b));
        assert_eq!(t.next_deadline(), Some(t0 + ms(105)));
        assert!(t.reset(b, None));
        assert_eq!(t.next_deadline(), None);
        assert!(t.reset(b, Some(t0)));
        assert_eq!(t.pop_expired(t0), Some(b));
        // Re-arming many times keeps the heap bounded.
        for i in 0..10_000u64 {
            t.reset(b, Some(t0 + Duration::from_nanos(i)));
        }
        assert!(t.heap.len() < 100);
        let d = t.add(None, None);
        assert_ne!(d, c);
        assert_eq!(d.idx, c.idx);
    }
}
