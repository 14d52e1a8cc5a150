//! A peer that runs fewer lanes: lane i talks to the peer's lane i (port +
//! i), and nothing on the wire says how many lanes the peer runs (a 1.4.x
//! peer runs one). So the lanes follow what they hear. In NOTRACK and
//! FT-FW every peer lane sends something at least every second, idle or
//! not; lane 0 watches every lane's count of datagrams from its peer,
//! and once lane 0 has heard its peer steadily for [`GRACE`], the lanes
//! that sync are the leading lanes whose peer lane was heard within
//! [`GRACE`]: the *active* count. Lane 0 publishes it; each lane applies
//! it on its next 1-second tick (lane 0 one tick after the others, so a
//! flow is owned twice for a moment rather than by nobody): its share of
//! the kernel's events (its BPF program) becomes `lane_of(tuple, active)`
//! (nothing for a lane at or past `active`), and a resync from the kernel
//! sends what it now owns and withdraws what it no longer does. So a
//! 1.4.x peer sees one ordinary peer however many lanes this daemon runs,
//! a peer restarted with fewer lanes loses nothing, and a peer back with
//! more lanes is followed again. Lane 0 logs each change. A peer that
//! falls silent on every lane (down, link lost) changes nothing. In ALARM
//! an idle peer lane sends nothing, so silence means nothing and the lanes
//! stay as configured.
//!
//! What the lanes share: one padded counter per lane, written by its lane
//! per datagram from the peer (a relaxed store to a line no other thread
//! writes), and the active count, read on the tick.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ct_core::netlink::lanes::MAX_LANES;

use super::lanes::Lane;

/// How long lane 0 must hear its peer, and a silent lane be silent,
/// before the active count goes down.
pub const GRACE: Duration = Duration::from_secs(5);

/// A counter on a cache line of its own.
#[derive(Debug)]
#[repr(align(64))]
pub struct Padded(AtomicU64);

/// What the lanes of one daemon share.
#[derive(Debug)]
pub struct Shared {
    /// Per lane: datagrams heard from its peer lane.
    heard: [Padded; MAX_LANES as usize],
    /// The lanes that sync (0: as configured, nothing decided yet).
    active: AtomicU32,
}

impl Shared {
    pub const fn new() -> Shared {
        Shared {
            heard: [const { Padded(AtomicU64::new(0)) }; MAX_LANES as usize],
            active: AtomicU32::new(0),
        }
    }
}

impl Default for Shared {
    fn default() -> Shared {
        Shared::new()
    }
}

/// The daemon's lanes' words.
pub static SHARED: Shared = Shared::new();

/// What the tick asks of its lane.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// To log as a warning (fewer lanes) or a notice (more again).
    pub warning: Option<String>,
    pub notice: Option<String>,
    /// Sync as lane `index` of this many (a new share of the events and
    /// a resync from the kernel).
    pub follow: Option<u32>,
}

/// Lane 0's view of one lane: its last count and when it changed.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    count: u64,
    at: Option<Instant>,
}

/// One lane's side.
#[derive(Debug)]
pub struct Watch {
    lane: Lane,
    shared: &'static Shared,
    /// The mode's peer speaks while idle (NOTRACK, FT-FW): silence means
    /// something.
    idle_peer_speaks: bool,
    /// This lane's count of datagrams from its peer.
    heard: u64,
    /// The active count this lane applies.
    applied: u32,
    /// Lane 0: every lane's count as last seen, and since when lane 0
    /// has heard its peer without a gap of [`GRACE`].
    seen: Vec<Seen>,
    steady_since: Option<Instant>,
    /// Lane 0: the count it decided and has not applied yet.
    decided: Option<u32>,
}

impl Watch {
    pub fn new(lane: Lane, shared: &'static Shared, idle_peer_speaks: bool) -> Watch {
        let i = lane.index as usize;
        if lane.first() {
            shared.active.store(0, Ordering::Relaxed);
        }
        let heard = shared.heard[i].0.load(Ordering::Relaxed);
        Watch {
            lane,
            shared,
            idle_peer_speaks,
            heard,
            applied: lane.count,
            seen: if lane.first() {
                vec![Seen::default(); lane.count as usize]
            } else {
                Vec::new()
            },
            steady_since: None,
            decided: None,
        }
    }

    /// A datagram from the peer on this lane's channel.
    #[inline]
    pub fn on_heard(&mut self) {
        if self.lane.count > 1 {
            self.heard += 1;
            self.shared.heard[self.lane.index as usize]
                .0
                .store(self.heard, Ordering::Relaxed);
        }
    }

    /// The 1-second tick.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut t = Tick::default();
        if self.lane.count <= 1 || !self.idle_peer_speaks {
            return t;
        }
        if self.lane.first() {
            // what lane 0 decided on its last tick, now that the other
            // lanes have had a tick to apply it
            if let Some(a) = self.decided.take() {
                if a != self.applied {
                    self.applied = a;
                    t.follow = Some(a);
                }
            }
            self.decide(now, &mut t);
        } else {
            let a = self.shared.active.load(Ordering::Relaxed);
            if a != 0 && a != self.applied {
                self.applied = a;
                t.follow = Some(a);
            }
        }
        t
    }

    /// Lane 0: the active count from what every lane heard.
    fn decide(&mut self, now: Instant, t: &mut Tick) {
        for (i, s) in self.seen.iter_mut().enumerate() {
            let c = self.shared.heard[i].0.load(Ordering::Relaxed);
            if c != s.count {
                *s = Seen {
                    count: c,
                    at: Some(now),
                };
            }
        }
        let recent = |s: &Seen| {
            s.at.is_some_and(|at| now.saturating_duration_since(at) <= GRACE)
        };
        if !recent(&self.seen[0]) {
            // the peer is silent on every lane we can tell: no change
            self.steady_since = None;
            return;
        }
        let since = *self.steady_since.get_or_insert(now);
        if now.saturating_duration_since(since) < GRACE {
            return;
        }
        let n = self.lane.count;
        let m = 1 + self.seen[1..].iter().take_while(|s| recent(s)).count() as u32;
        let current = match self.shared.active.load(Ordering::Relaxed) {
            0 => n,
            a => a,
        };
        if m == current {
            return;
        }
        self.shared.active.store(m, Ordering::Relaxed);
        self.decided = Some(m);
        let lanes = |a: u32, b: u32| match b - a {
            1 => format!("lane {a}"),
            _ => format!("lanes {a}-{}", b - 1),
        };
        if m < current {
            t.warning = Some(format!(
                "{} of {n} heard nothing from the peer on {} channel (the configured \
                 port + lane) for {} s while lane 0 heard it: the peer runs {m} \
                 lane{} (conntrackd 1.4.x runs one), so {m} of {n} lanes sync now: \
                 the flows of {} go over {} (a resync from the kernel); the same \
                 Lanes on both ends spreads the load again",
                lanes(m, current),
                if current - m == 1 { "its" } else { "their" },
                GRACE.as_secs(),
                if m == 1 { "" } else { "s" },
                lanes(m, current),
                lanes(0, m),
            ));
        } else {
            t.notice = Some(format!(
                "the peer is heard on the channel of {} too: {m} of {n} lanes sync now",
                lanes(current, m),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(shared: &'static Shared, n: u32) -> Vec<Watch> {
        (0..n)
            .map(|i| Watch::new(Lane::new(i, n), shared, true))
            .collect()
    }

    /// One second: lanes in `hear` hear their peer, then every lane ticks
    /// (lane 0 first); returns what each tick asked.
    fn second(w: &mut [Watch], t: Instant, hear: &[usize]) -> Vec<Tick> {
        for &i in hear {
            w[i].on_heard();
        }
        w.iter_mut().map(|w| w.tick(t)).collect()
    }

    fn follows(ticks: &[Tick]) -> Vec<Option<u32>> {
        ticks.iter().map(|t| t.follow).collect()
    }

    #[test]
    fn lanes_follow_a_peer_with_fewer_lanes_and_back() {
        static S: Shared = Shared::new();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = lanes(&S, 2);
        // Nobody heard anything: nothing changes, however long.
        for s in 0..30 {
            let ticks = second(&mut w, at(s), &[]);
            assert!(ticks.iter().all(|t| *t == Tick::default()), "{ticks:?}");
        }
        // The peer runs one lane: lane 0 hears it, lane 1 nothing. Within
        // GRACE of lane 0 hearing it, nothing changes.
        for s in 30..35 {
            let ticks = second(&mut w, at(s), &[0]);
            assert!(
                ticks.iter().all(|t| *t == Tick::default()),
                "{s}: {ticks:?}"
            );
        }
        let ticks = second(&mut w, at(35), &[0]);
        let warn = ticks[0].warning.as_deref().expect("lane 0 warns");
        assert!(
            warn.contains("lane 1 of 2 heard nothing") && warn.contains("1 of 2 lanes sync now"),
            "{warn}"
        );
        // lane 1 follows at once, lane 0 on its next tick
        assert_eq!(follows(&ticks), [None, Some(1)]);
        let ticks = second(&mut w, at(36), &[0]);
        assert_eq!(follows(&ticks), [Some(1), None]);
        assert!(ticks[0].warning.is_none(), "once");
        for s in 37..60 {
            let ticks = second(&mut w, at(s), &[0]);
            assert!(
                ticks.iter().all(|t| *t == Tick::default()),
                "{s}: {ticks:?}"
            );
        }
        // The peer is back with two lanes: the next tick of lane 0 says so.
        let ticks = second(&mut w, at(60), &[0, 1]);
        let n = ticks[0].notice.as_deref().expect("lane 0 says so");
        assert!(n.contains("channel of lane 1 too: 2 of 2 lanes"), "{n}");
        assert_eq!(follows(&ticks), [None, Some(2)]);
        let ticks = second(&mut w, at(61), &[0, 1]);
        assert_eq!(follows(&ticks), [Some(2), None]);
        // The whole peer goes silent (down, or the link): nothing changes.
        for s in 62..120 {
            let ticks = second(&mut w, at(s), &[]);
            assert!(
                ticks.iter().all(|t| *t == Tick::default()),
                "{s}: {ticks:?}"
            );
        }
    }

    #[test]
    fn four_lanes_follow_a_peer_with_two_and_a_late_lane_is_waited_for() {
        static S: Shared = Shared::new();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = lanes(&S, 4);
        // Lane 3 of the peer comes up 3 s after lane 0: within GRACE.
        for s in 0..3 {
            second(&mut w, at(s), &[0, 1, 2]);
        }
        for s in 3..20 {
            let ticks = second(&mut w, at(s), &[0, 1, 2, 3]);
            assert!(
                ticks.iter().all(|t| *t == Tick::default()),
                "{s}: {ticks:?}"
            );
        }
        // The peer restarts with two lanes (lane 0 never silent for GRACE).
        for s in 20..25 {
            let ticks = second(&mut w, at(s), &[0, 1]);
            assert!(
                ticks.iter().all(|t| *t == Tick::default()),
                "{s}: {ticks:?}"
            );
        }
        let ticks = second(&mut w, at(25), &[0, 1]);
        let warn = ticks[0].warning.as_deref().expect("lane 0 warns");
        assert!(
            warn.contains("lanes 2-3 of 4") && warn.contains("runs 2 lanes"),
            "{warn}"
        );
        assert_eq!(follows(&ticks), [None, Some(2), Some(2), Some(2)]);
        assert_eq!(follows(&second(&mut w, at(26), &[0, 1]))[0], Some(2));
    }

    #[test]
    fn alarm_and_one_lane_never_change() {
        static S: Shared = Shared::new();
        let t0 = Instant::now();
        let mut w: Vec<Watch> = (0..2)
            .map(|i| Watch::new(Lane::new(i, 2), &S, false))
            .collect();
        for s in 0..30 {
            let ticks = second(&mut w, t0 + Duration::from_secs(s), &[0]);
            assert!(ticks.iter().all(|t| *t == Tick::default()), "{ticks:?}");
        }
        static S1: Shared = Shared::new();
        let mut one = vec![Watch::new(Lane::ONE, &S1, true)];
        for s in 0..30 {
            let ticks = second(&mut one, t0 + Duration::from_secs(s), &[0]);
            assert_eq!(ticks, [Tick::default()]);
        }
    }
}
