//! A peer that runs fewer lanes: lane i talks to the peer's lane i (port +
//! i), and nothing on the wire says how many lanes the peer runs (a 1.4.x
//! peer runs one). So the lanes follow what they hear. In NOTRACK and
//! FT-FW every peer lane sends something at least every second, idle or
//! not; lane 0 watches every lane's count of datagrams from its peer. Once
//! lane 0 has heard its peer steadily for [`STEADY`], and while it hears
//! it, the lanes that sync (the *active* count) are the leading lanes,
//! from lane 0 on, whose peer lane is there: a syncing lane while its peer
//! lane was heard within [`SILENCE`] (never heard: not there), a lane that
//! does not sync once its peer lane was heard on two ticks within
//! [`RISE`] (one stray datagram does not bring it back). Lane 0 publishes
//! the count; each lane applies it on a tick: its share of the kernel's
//! events (its BPF program) becomes `lane_of(tuple, active)` (nothing for
//! a lane at or past `active`, and the same check in user space for
//! events already queued), and a resync from the kernel sends what it now
//! owns (a bulk update, unless it takes nothing over) and withdraws what
//! it no longer does ([`Op::Withdraw`](ct_transport::wire::Op): the
//! peer's lane drops what this channel gave it, and deletes nothing from
//! its kernel, where the flow's state from its new lane's channel may
//! already be). Every lane applies the count on the first tick that sees
//! it, so the events of a flow that changes lanes reach neither lane for
//! a second at most. So a 1.4.x peer sees one ordinary peer however many
//! lanes this daemon runs (a lane gives flows away only to a peer that
//! runs two lanes or more; and a withdrawal is a DEL to 1.4.x), a peer
//! restarted with fewer lanes loses nothing, and a peer back with more
//! lanes is followed again. Lane 0 logs
//! each change. A peer that falls silent on every lane (down, link lost)
//! changes nothing. In ALARM an idle peer lane sends nothing, so silence
//! means nothing and the lanes stay as configured.
//!
//! What the lanes share: one padded counter per lane, written by its lane
//! per datagram from the peer (a relaxed store to a line no other thread
//! writes), and the active count, read on the tick.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ct_core::netlink::lanes::MAX_LANES;

use super::lanes::Lane;

/// How long lane 0 must hear its peer, and a syncing lane's peer lane be
/// silent, before that lane stops syncing (ten alive messages lost in a
/// row on a lossy link: rare).
pub const SILENCE: Duration = Duration::from_secs(10);

/// A lane that does not sync does again once its peer lane is heard on
/// two ticks within this.
pub const RISE: Duration = Duration::from_secs(5);

/// Lane 0 decides once it has heard its peer for this long (its peer
/// lanes start together: a lane never heard by then is not there).
pub const STEADY: Duration = Duration::from_secs(3);

/// Lane 0 decides only while it heard its peer this recently.
const HEARD_NOW: Duration = Duration::from_secs(2);

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
    /// With `follow`: the lane takes flows over (they go to the peer in a
    /// bulk update; a lane that only gives flows away just withdraws).
    pub takes: bool,
}

/// Lane 0's view of one lane: its last count, and the last two ticks on
/// which it had changed.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    count: u64,
    at: Option<Instant>,
    before: Option<Instant>,
}

impl Seen {
    fn within(at: Option<Instant>, now: Instant, d: Duration) -> bool {
        at.is_some_and(|at| now.saturating_duration_since(at) <= d)
    }
}

/// Whether lane `i` only gives flows away when `old` lanes become `new`
/// (its share under `new` is within its share under `old`).
fn only_gives(i: u32, old: u32, new: u32) -> bool {
    i >= new || (new.is_multiple_of(old) && i < old)
}

/// One lane's side.
#[derive(Debug)]
pub struct Watch {
    lane: Lane,
    shared: &'static Shared,
    /// The mode's peer speaks while idle (NOTRACK, FT-FW): silence means
    /// something.
    idle_peer_speaks: bool,
    /// Lane 0: every lane's count as last seen, and since when lane 0
    /// has heard its peer without a gap of [`SILENCE`] (decisions after
    /// [`STEADY`]).
    seen: Vec<Seen>,
    steady_since: Option<Instant>,
    /// The count this lane syncs as one of.
    applied: u32,
}

impl Watch {
    pub fn new(lane: Lane, shared: &'static Shared, idle_peer_speaks: bool) -> Watch {
        if lane.first() {
            shared.active.store(0, Ordering::Relaxed);
        }
        Watch {
            lane,
            shared,
            idle_peer_speaks,
            seen: if lane.first() {
                vec![Seen::default(); lane.count as usize]
            } else {
                Vec::new()
            },
            steady_since: None,
            applied: lane.count,
        }
    }

    /// A datagram from the peer on this lane's channel.
    #[inline]
    pub fn on_heard(&mut self) {
        if self.lane.count > 1 {
            // (only this lane writes its word: no read-modify-write)
            let w = &self.shared.heard[self.lane.index as usize].0;
            w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// The 1-second tick.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut t = Tick::default();
        if self.lane.count <= 1 || !self.idle_peer_speaks {
            return t;
        }
        if self.lane.first() {
            self.decide(now, &mut t);
        }
        let a = self.shared.active.load(Ordering::Relaxed);
        if a == 0 || a == self.applied {
            return t;
        }
        // (toward fewer lanes, the withdrawals of the lanes that stop go
        // to silent peer lanes)
        t.takes = !only_gives(self.lane.index, self.applied, a);
        t.follow = Some(a);
        self.applied = a;
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
                    before: s.at,
                };
            }
        }
        if !Seen::within(self.seen[0].at, now, SILENCE) {
            // the peer is silent on every lane we can tell: no change
            self.steady_since = None;
            return;
        }
        if !Seen::within(self.seen[0].at, now, HEARD_NOW) {
            // lane 0 itself has not heard its peer for a moment (a peer
            // going down falls silent on its lanes a tick apart): wait
            return;
        }
        let since = *self.steady_since.get_or_insert(now);
        if now.saturating_duration_since(since) < STEADY {
            return;
        }
        let n = self.lane.count;
        let current = match self.shared.active.load(Ordering::Relaxed) {
            0 => n,
            a => a,
        };
        let there = |(i, s): &(usize, &Seen)| {
            if (*i as u32) < current {
                Seen::within(s.at, now, SILENCE)
            } else {
                Seen::within(s.before, now, RISE)
            }
        };
        let m = 1 + self
            .seen
            .iter()
            .enumerate()
            .skip(1)
            .take_while(there)
            .count() as u32;
        if m == current {
            return;
        }
        self.shared.active.store(m, Ordering::Relaxed);
        let lanes = |a: u32, b: u32| match b - a {
            1 => format!("lane {a}"),
            _ => format!("lanes {a}-{}", b - 1),
        };
        if m < current {
            t.warning = Some(format!(
                "{m} of {n} lanes sync now: the peer was not heard on the channel of \
                 lane {m} (the configured port + {m}) while lane 0 heard it (the peer \
                 runs fewer lanes; conntrackd 1.4.x runs one), so the flows of {} go \
                 over {} (a resync from the kernel); the same Lanes on both ends \
                 spreads the load again",
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

    fn quiet(
        w: &mut [Watch],
        at: impl Fn(u64) -> Instant,
        secs: std::ops::Range<u64>,
        hear: &[usize],
    ) {
        for s in secs {
            let ticks = second(w, at(s), hear);
            assert!(
                ticks.iter().all(|t| *t == Tick::default()),
                "{s}: {ticks:?}"
            );
        }
    }

    #[test]
    fn lanes_follow_a_peer_with_fewer_lanes_and_back() {
        static S: Shared = Shared::new();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = lanes(&S, 2);
        // Nobody heard anything: nothing changes, however long.
        quiet(&mut w, at, 0..30, &[]);
        // The peer runs one lane: lane 0 hears it, lane 1 nothing. Within
        // STEADY of lane 0 hearing it, nothing changes.
        quiet(&mut w, at, 30..33, &[0]);
        let ticks = second(&mut w, at(33), &[0]);
        let warn = ticks[0].warning.as_deref().expect("lane 0 warns");
        assert!(
            warn.starts_with(
                "1 of 2 lanes sync now: the peer was not heard on the channel of lane 1"
            ),
            "{warn}"
        );
        // fewer lanes: lane 1 gives its flows away, lane 0 takes them over
        // (and sends them in a bulk update), both at once
        assert_eq!(follows(&ticks), [Some(1), Some(1)]);
        assert!(ticks[0].takes && !ticks[1].takes);
        quiet(&mut w, at, 34..60, &[0]);
        // One stray datagram on lane 1's channel changes nothing.
        quiet(&mut w, at, 60..61, &[0, 1]);
        quiet(&mut w, at, 61..80, &[0]);
        // The peer is back with two lanes: lane 1 heard on two ticks.
        quiet(&mut w, at, 80..81, &[0, 1]);
        let ticks = second(&mut w, at(81), &[0, 1]);
        let n = ticks[0].notice.as_deref().expect("lane 0 says so");
        assert!(n.contains("channel of lane 1 too: 2 of 2 lanes"), "{n}");
        // more lanes: lane 0 gives flows away (withdrawals), lane 1 takes
        // them over (a bulk update), at once
        assert_eq!(follows(&ticks), [Some(2), Some(2)]);
        assert!(!ticks[0].takes && ticks[1].takes);
        // The whole peer goes silent (down, or the link): nothing changes.
        quiet(&mut w, at, 83..150, &[]);
        // A syncing lane's peer lane silent for less than SILENCE: nothing.
        quiet(&mut w, at, 150..170, &[0, 1]);
        quiet(&mut w, at, 170..180, &[0]);
        quiet(&mut w, at, 180..200, &[0, 1]);
        // The peer goes down, its lane 1 falling silent a tick before its
        // lane 0: nothing changes either.
        quiet(&mut w, at, 200..201, &[0]);
        quiet(&mut w, at, 201..260, &[]);
    }

    #[test]
    fn four_lanes_follow_a_peer_with_two_and_a_late_lane_is_waited_for() {
        static S: Shared = Shared::new();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = lanes(&S, 4);
        // Lane 3 of the peer comes up 3 s after lane 0: within STEADY.
        quiet(&mut w, at, 0..3, &[0, 1, 2]);
        quiet(&mut w, at, 3..30, &[0, 1, 2, 3]);
        // The peer restarts with two lanes (lane 0 never silent long).
        quiet(&mut w, at, 30..40, &[0, 1]);
        let ticks = second(&mut w, at(40), &[0, 1]);
        let warn = ticks[0].warning.as_deref().expect("lane 0 warns");
        assert!(
            warn.starts_with("2 of 4 lanes sync now")
                && warn.contains("flows of lanes 2-3 go over lanes 0-1"),
            "{warn}"
        );
        // fewer lanes: lanes 2 and 3 give, lanes 0 and 1 take, at once
        assert_eq!(follows(&ticks), [Some(2), Some(2), Some(2), Some(2)]);
        quiet(&mut w, at, 41..50, &[0, 1]);
        // back to four: lanes 0 and 1 give, 2 and 3 take over, at once
        quiet(&mut w, at, 50..51, &[0, 1, 2, 3]);
        let ticks = second(&mut w, at(51), &[0, 1, 2, 3]);
        assert!(ticks[0].notice.is_some());
        assert_eq!(follows(&ticks), [Some(4); 4]);
        let takes: Vec<bool> = ticks.iter().map(|t| t.takes).collect();
        assert_eq!(takes, [false, false, true, true]);
        quiet(&mut w, at, 52..60, &[0, 1, 2, 3]);
    }

    #[test]
    fn a_lane_that_ticks_late_applies_the_count_when_it_does() {
        static S: Shared = Shared::new();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = lanes(&S, 4);
        // The peer runs two lanes: lanes 2 and 3 give their flows away.
        quiet(&mut w, at, 0..3, &[0, 1]);
        let ticks = second(&mut w, at(3), &[0, 1]);
        assert_eq!(follows(&ticks), [Some(2), Some(2), Some(2), Some(2)]);
        quiet(&mut w, at, 4..10, &[0, 1]);
        // Back to four while lane 1 is busy (in a long dump: it does not
        // tick): the others apply the count at once, lane 1 on its next
        // tick, once.
        quiet(&mut w, at, 10..11, &[0, 1, 2, 3]);
        let mut tick = |s: u64| {
            for i in [0, 1, 2, 3] {
                w[i].on_heard();
            }
            [0, 2, 3].map(|i| w[i].tick(at(s)).follow)
        };
        assert_eq!(tick(11), [Some(4), Some(4), Some(4)]);
        assert_eq!(tick(12), [None, None, None]);
        let t = w[1].tick(at(13));
        assert_eq!((t.follow, t.takes), (Some(4), false));
        assert_eq!(w[1].tick(at(14)).follow, None);
    }

    #[test]
    fn who_gives_and_who_takes() {
        // 2 -> 1: lane 1 gives, lane 0 takes; 1 -> 2 the other way round
        assert!(only_gives(1, 2, 1) && !only_gives(0, 2, 1));
        assert!(only_gives(0, 1, 2) && !only_gives(1, 1, 2));
        // 2 -> 4: lanes 0 and 1 give to 2 and 3
        assert!(only_gives(0, 2, 4) && only_gives(1, 2, 4));
        assert!(!only_gives(2, 2, 4) && !only_gives(3, 2, 4));
        // 4 -> 3: lanes 0-2 give and take, lane 3 gives
        assert!(!only_gives(0, 4, 3) && !only_gives(2, 4, 3) && only_gives(3, 4, 3));
    }

    #[test]
    fn alarm_and_one_lane_never_change() {
        static S: Shared = Shared::new();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w: Vec<Watch> = (0..2)
            .map(|i| Watch::new(Lane::new(i, 2), &S, false))
            .collect();
        quiet(&mut w, at, 0..30, &[0]);
        static S1: Shared = Shared::new();
        let mut one = vec![Watch::new(Lane::ONE, &S1, true)];
        quiet(&mut one, at, 0..30, &[0]);
    }
}
