//! A peer that runs fewer lanes: lane i talks only to the peer's lane i
//! (port + i), so the flows of a lane the peer does not run go nowhere,
//! and nothing on the wire says so (a 1.4.x peer runs one lane). Each
//! lane notes when it first hears its peer; a lane after the first that
//! has heard nothing [`GRACE`] after lane 0 first heard its peer (a peer
//! sends something every second in NOTRACK and FT-FW; in ALARM an idle
//! peer lane sends nothing, so there it never warns) says so in the log,
//! once, and again once it does hear it. The lanes share one word per
//! lane, written once and read on the 1-second tick: nothing on the
//! per-event path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ct_core::netlink::lanes::MAX_LANES;

use super::lanes::Lane;

/// How long after lane 0 first heard its peer a silent lane warns.
pub const GRACE: Duration = Duration::from_secs(5);

/// Per lane: when it first heard its peer, in milliseconds since
/// [`epoch`] plus one (0: not yet).
pub type FirstHeard = [AtomicU64; MAX_LANES as usize];

/// The daemon's lanes' words.
pub static FIRST_HEARD: FirstHeard = [const { AtomicU64::new(0) }; MAX_LANES as usize];

/// The instant the words count from (the first use in the process).
fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// One lane's side.
#[derive(Debug)]
pub struct Watch {
    lane: Lane,
    shared: &'static FirstHeard,
    /// The mode's peer speaks while idle (NOTRACK, FT-FW): silence means
    /// something.
    idle_peer_speaks: bool,
    warned: bool,
}

impl Watch {
    pub fn new(lane: Lane, shared: &'static FirstHeard, idle_peer_speaks: bool) -> Watch {
        shared[lane.index as usize].store(0, Ordering::Relaxed);
        epoch();
        Watch {
            lane,
            shared,
            idle_peer_speaks,
            warned: false,
        }
    }

    /// Whether this lane heard its peer (its word is set).
    fn heard(&self) -> bool {
        self.shared[self.lane.index as usize].load(Ordering::Relaxed) != 0
    }

    /// Something from the peer on this lane's channel (`now` is read the
    /// first time only). Returns the line to log when this lane had
    /// warned.
    pub fn on_heard(&mut self, now: impl FnOnce() -> Instant) -> Option<String> {
        if self.heard() {
            return None;
        }
        let ms = now().saturating_duration_since(epoch()).as_millis() as u64 + 1;
        self.shared[self.lane.index as usize].store(ms, Ordering::Relaxed);
        self.warned
            .then(|| format!("lane {} hears the peer on its channel now", self.lane.index))
    }

    /// The 1-second tick: the warning, once, when lane 0 has heard its
    /// peer for [`GRACE`] and this lane never.
    pub fn tick(&mut self, now: Instant) -> Option<String> {
        if self.lane.first() || self.heard() || self.warned || !self.idle_peer_speaks {
            return None;
        }
        let first = self.shared[0].load(Ordering::Relaxed);
        if first == 0 {
            return None;
        }
        let lane0 = epoch() + Duration::from_millis(first - 1);
        if now.saturating_duration_since(lane0) < GRACE {
            return None;
        }
        self.warned = true;
        Some(format!(
            "lane {i} of {n} has heard nothing from the peer on its channel \
             (the configured port + {i}) {s} s after lane 0 heard it: the peer \
             runs fewer lanes (conntrackd 1.4.x runs one) and this lane's flows \
             do not reach it; set the same Lanes on both ends (Lanes 1 toward 1.4.x)",
            i = self.lane.index,
            n = self.lane.count,
            s = GRACE.as_secs(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_lane_warns_once_after_lane_0_heard_and_says_when_it_hears() {
        static W: FirstHeard = [const { AtomicU64::new(0) }; MAX_LANES as usize];
        let t = Instant::now();
        let mut l0 = Watch::new(Lane { index: 0, count: 2 }, &W, true);
        let mut l1 = Watch::new(Lane { index: 1, count: 2 }, &W, true);
        // Nobody heard anything: no warning, however long.
        assert_eq!(l1.tick(t + Duration::from_secs(60)), None);
        assert_eq!(l0.on_heard(|| t + Duration::from_secs(60)), None);
        assert_eq!(l1.tick(t + Duration::from_secs(64)), None, "within GRACE");
        let w = l1.tick(t + Duration::from_secs(66)).expect("warns");
        assert!(w.contains("lane 1 of 2") && w.contains("same Lanes"), "{w}");
        assert_eq!(l1.tick(t + Duration::from_secs(67)), None, "once");
        assert_eq!(l0.tick(t + Duration::from_secs(67)), None, "lane 0 never");
        let h = l1
            .on_heard(|| t + Duration::from_secs(68))
            .expect("says so");
        assert!(h.contains("lane 1 hears"), "{h}");
        assert_eq!(l1.on_heard(|| t + Duration::from_secs(69)), None);
        // A lane that hears its peer in time never warns.
        let mut l1 = Watch::new(Lane { index: 1, count: 2 }, &W, true);
        assert_eq!(l1.on_heard(|| t + Duration::from_secs(61)), None);
        assert_eq!(l1.tick(t + Duration::from_secs(90)), None);
        // ALARM: an idle peer lane sends nothing; no warning.
        let mut l1 = Watch::new(Lane { index: 1, count: 2 }, &W, false);
        assert_eq!(l1.tick(t + Duration::from_secs(90)), None);
    }
}
