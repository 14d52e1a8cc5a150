//! Property tests of the authenticated link: sealed datagrams round-trip,
//! and the anti-replay window agrees with a model (a set of seen
//! counters and the newest one) for any order of arrivals, duplicates
//! included.

use std::collections::HashSet;

use ct_transport::auth::{AuthError, Opener, Sealer, Window, TRAILER_LEN};
use proptest::prelude::*;

const KEY: &[u8] = b"property-test key, long enough";

proptest! {
    #[test]
    fn seal_open_round_trip(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1500), 1..20),
                            start in any::<u64>()) {
        let mut s = Sealer::new(KEY, start);
        let mut o = Opener::new(KEY, 1024);
        for p in &payloads {
            let d = s.seal(p).to_vec();
            prop_assert_eq!(d.len(), p.len() + TRAILER_LEN);
            prop_assert_eq!(o.open(&d), Ok(&p[..]));
            // The same datagram again is a replay.
            prop_assert!(matches!(o.open(&d), Err(AuthError::Replayed(_))));
        }
        prop_assert_eq!(o.stats.ok, payloads.len() as u64);
    }

    #[test]
    fn window_matches_model(size in 1u32..300, arrivals in prop::collection::vec(0u64..600, 1..400)) {
        let mut w = Window::new(size);
        let span = (size.max(64) as u64).div_ceil(64) * 64;
        let mut seen = HashSet::new();
        let mut top: Option<u64> = None;
        for c in arrivals {
            let fresh = match top {
                None => true,
                Some(t) => c > t || (t - c < span && !seen.contains(&c)),
            };
            prop_assert_eq!(w.accept(c), fresh, "counter {} top {:?}", c, top);
            if fresh {
                seen.insert(c);
                top = Some(top.map_or(c, |t| t.max(c)));
            }
        }
    }
}
