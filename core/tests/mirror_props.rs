//! The internal cache against a scripted kernel table: with every event
//! delivered the cache equals the table; when events are lost (an
//! overrun), one resync (dump + sweep) makes it equal again, with no stale
//! entry surviving.

use std::net::{IpAddr, Ipv4Addr};

use ct_core::flow::*;
use ct_core::table::{Change, FakeTable, Mirror};
use proptest::prelude::*;

fn flow(port: u16, mark: u32) -> Flow {
    Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))),
            dst: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))),
            l4proto: Some(17),
            src_port: Some(port),
            dst_port: Some(53),
            ..Tuple::default()
        }),
        status: Some(8),
        mark: Some(mark),
        timeout: Some(30),
        ..Flow::default()
    }
}

proptest! {
    #[test]
    fn events_keep_the_mirror_equal(
        ops in proptest::collection::vec((any::<bool>(), 0u16..50, any::<u32>()), 1..400),
        lose in proptest::collection::vec(any::<bool>(), 400),
    ) {
        let mut kernel = FakeTable::new();
        let mut lossless = Mirror::new(64, 1000);
        let mut lossy = Mirror::new(64, 1000);
        for (up, port, mark) in &ops {
            if *up {
                kernel.upsert(flow(*port, *mark));
            } else {
                kernel.expire(&flow(*port, 0));
            }
        }
        let mut lost = 0;
        for (i, (c, f)) in kernel.events.iter().enumerate() {
            lossless.on_event(*c, f, 1);
            if lose[i % lose.len()] {
                lost += 1;
            } else {
                lossy.on_event(*c, f, 1);
            }
        }
        prop_assert!(lossless.equals(&mut kernel));
        // After an overrun the resync repairs everything.
        let swept = lossy.resync(&mut kernel, 2).unwrap();
        prop_assert!(lossy.equals(&mut kernel), "lost {lost}, swept {}", swept.len());
        prop_assert_eq!(lossy.cache.len(), kernel.len());
        let _ = Change::New;
    }
}

proptest! {
    /// FT-FW's use of the cache: DESTROY keeps the entry DEAD until its
    /// deletion is acknowledged; the reference returned for an event names
    /// that event's entry until it is released, and once every DEAD entry
    /// is released the cache equals the table.
    #[test]
    fn keep_dead_references_stay_valid(
        ops in proptest::collection::vec((any::<bool>(), 0u16..50, any::<u32>()), 1..400),
        acks in proptest::collection::vec(any::<bool>(), 400),
    ) {
        use ct_core::table::ObjState;
        let mut kernel = FakeTable::new();
        for (up, port, mark) in &ops {
            if *up {
                kernel.upsert(flow(*port, *mark));
            } else {
                kernel.expire(&flow(*port, 0));
            }
        }
        let mut m = Mirror::new(64, 1000);
        let mut queued: Vec<ct_core::table::ObjRef> = Vec::new();
        for (i, (c, f)) in kernel.events.iter().enumerate() {
            let r = m.on_event_keep_dead(*c, f, 1);
            if let Some(r) = r {
                let (got, state) = m.cache.by_ref(r).expect("live reference");
                prop_assert_eq!(got.orig.unwrap().src_port, f.orig.unwrap().src_port);
                prop_assert_eq!(state == ObjState::Dead, *c == Change::Destroy);
                queued.push(r);
            } else {
                prop_assert_eq!(*c, Change::Destroy);
            }
            // Sometimes the peer acknowledges everything queued so far.
            if acks[i % acks.len()] {
                for r in queued.drain(..) {
                    if m.cache.state_of(r) == Some(ObjState::Dead) {
                        prop_assert!(m.cache.remove_ref(r).is_some());
                    }
                }
            }
        }
        for r in queued.drain(..) {
            if m.cache.state_of(r) == Some(ObjState::Dead) {
                m.cache.remove_ref(r);
            }
        }
        prop_assert!(m.equals(&mut kernel));
        prop_assert_eq!(m.cache.len(), kernel.len());
    }
}
