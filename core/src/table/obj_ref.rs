//! References to cached objects, as the FT-FW queues hold them: the
//! table (IPv4 or IPv6 conntracks, expectations), the slab position, and
//! the serial number of the object that was there when the reference was
//! taken. Every object a cache stores gets a new serial, so a slot freed
//! (an acknowledged deletion, a flush, a resync's sweep) and taken by
//! another object no longer answers to the old reference: a queued
//! reference never sends an object it was not queued for.

/// Which table a reference points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    V4 = 0,
    V6 = 1,
    Exp = 2,
}

/// Serials are this many bits wide (a slot must be reused 2^24 times
/// while one reference waits before an old reference could match).
pub const SERIAL_BITS: u32 = 24;
const SERIAL_MASK: u32 = (1 << SERIAL_BITS) - 1;

/// A reference to a cached object (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef(u64);

impl ObjRef {
    pub fn new(table: Table, pos: u32, serial: u32) -> ObjRef {
        ObjRef(((serial & SERIAL_MASK) as u64) << 40 | (table as u64) << 32 | pos as u64)
    }

    pub fn table(self) -> Table {
        match (self.0 >> 32) as u8 {
            0 => Table::V4,
            1 => Table::V6,
            _ => Table::Exp,
        }
    }

    /// The slab position.
    pub fn pos(self) -> u32 {
        self.0 as u32
    }

    /// The serial of the object referred to.
    pub fn serial(self) -> u32 {
        (self.0 >> 40) as u32
    }

    /// Whether it refers to an expectation (else to a conntrack).
    pub fn is_exp(self) -> bool {
        self.table() == Table::Exp
    }

    /// Whether `serial` (an entry's) is the one this reference names.
    pub fn names(self, serial: u32) -> bool {
        self.serial() == serial & SERIAL_MASK
    }
}

/// The next serial after `s`.
pub fn next_serial(s: &mut u32) -> u32 {
    *s = s.wrapping_add(1) & SERIAL_MASK;
    *s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        for (t, pos, serial) in [
            (Table::V4, 0, 0),
            (Table::V6, u32::MAX, SERIAL_MASK),
            (Table::Exp, 12345, 0xabcdef),
        ] {
            let r = ObjRef::new(t, pos, serial);
            assert_eq!((r.table(), r.pos(), r.serial()), (t, pos, serial));
            assert!(r.names(serial));
            assert!(!r.names(serial ^ 1));
            assert_eq!(r.is_exp(), t == Table::Exp);
        }
        let mut s = SERIAL_MASK - 1;
        assert_eq!(next_serial(&mut s), SERIAL_MASK);
        assert_eq!(next_serial(&mut s), 0);
    }

    /// A reference to an object whose slot another object took no longer
    /// resolves, and cannot remove the new object.
    #[test]
    fn a_reused_slot_does_not_answer_an_old_reference() {
        use crate::flow::{Flow, Tuple, AF_INET};
        use crate::table::{Cache, ObjState};
        let flow = |port: u16| Flow {
            family: AF_INET,
            orig: Some(Tuple {
                src: Some([10, 0, 0, 1].into()),
                dst: Some([10, 0, 0, 2].into()),
                l4proto: Some(17),
                src_port: Some(port),
                dst_port: Some(53),
                ..Tuple::default()
            }),
            ..Flow::default()
        };
        let mut c = Cache::new(16, 100);
        let old = c.replace_ref(&flow(1), 0, 0).unwrap();
        assert_eq!(c.state_of(old), Some(ObjState::New));
        c.remove_ref(old).unwrap();
        let new = c.replace_ref(&flow(2), 0, 0).unwrap();
        assert_eq!(
            (new.table(), new.pos()),
            (old.table(), old.pos()),
            "slot reused"
        );
        assert_ne!(new, old);
        assert_eq!(c.state_of(old), None);
        assert!(c.by_ref(old).is_none());
        assert!(!c.set_dead(old));
        assert!(c.remove_ref(old).is_none());
        assert_eq!(c.by_ref(new).map(|(f, _)| f.orig), Some(flow(2).orig));
        // a DEAD object brought back is another object
        assert!(c.set_dead(new));
        let again = c.upsert_ref(&flow(2), 1, 0).unwrap();
        assert_ne!(again, new);
        assert_eq!(c.state_of(again), Some(ObjState::New));
    }
}
