//! Sequence numbers as conntrackd 1.4.x uses them: one 32-bit counter for
//! every transmitted message, started at `time(NULL)`; receivers classify
//! incoming numbers with serial arithmetic and count gaps ("Packets lost",
//! which 1.4.7 over-counts by 2: `s - last + 1`) and old numbers ("Packets
//! before").

/// `before(a, b)`: `(int32)(a - b) < 0`.
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `after(a, b)`: `before(b, a)`.
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// The sender's counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqGen {
    next: Option<u32>,
}

impl SeqGen {
    /// The next number; the first call starts at `now_unix`.
    pub fn next(&mut self, now_unix: u32) -> u32 {
        let s = self.next.unwrap_or(now_unix);
        self.next = Some(s.wrapping_add(1));
        s
    }
}

/// How a received number relates to the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqClass {
    Unset,
    InSync,
    /// A gap: messages were lost.
    After,
    /// An old or duplicated number.
    Before,
}

/// The receiver's state and statistics.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqTracker {
    last: Option<u32>,
    pub lost: u64,
    pub before: u64,
}

impl SeqTracker {
    /// Classifies `s` and updates the counters (not `last`).
    pub fn classify(&mut self, s: u32) -> SeqClass {
        let Some(last) = self.last else {
            return SeqClass::Unset;
        };
        let expected = last.wrapping_add(1);
        if s == expected {
            SeqClass::InSync
        } else if after(s, expected) {
            self.lost += s.wrapping_sub(last).wrapping_add(1) as u64;
            SeqClass::After
        } else {
            self.before += 1;
            SeqClass::Before
        }
    }

    /// Records `s` as the last accepted number.
    pub fn accept(&mut self, s: u32) {
        self.last = Some(s);
    }

    pub fn last(&self) -> Option<u32> {
        self.last
    }

    /// The counters of several trackers added up; the last number is the
    /// first one's.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a SeqTracker>) -> SeqTracker {
        let mut m = SeqTracker::default();
        for (i, t) in parts.into_iter().enumerate() {
            if i == 0 {
                m.last = t.last;
            }
            m.lost += t.lost;
            m.before += t.before;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(before(1, 2));
        assert!(before(u32::MAX, 0));
        assert!(!before(0, u32::MAX));
        assert!(after(3, 2));
    }

    #[test]
    fn tracker_counts_like_1_4_7() {
        let mut t = SeqTracker::default();
        assert_eq!(t.classify(100), SeqClass::Unset);
        t.accept(100);
        assert_eq!(t.classify(101), SeqClass::InSync);
        t.accept(101);
        assert_eq!(t.classify(105), SeqClass::After);
        assert_eq!(t.lost, 5);
        t.accept(105);
        assert_eq!(t.classify(103), SeqClass::Before);
        assert_eq!(t.before, 1);
        let mut g = SeqGen::default();
        assert_eq!(g.next(u32::MAX), u32::MAX);
        assert_eq!(g.next(7), 0);
    }
}
