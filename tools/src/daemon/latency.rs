//! Replication latency of the sync link, for the Prometheus endpoint
//! (`CONNTRACKD_METRICS`, `daemon::metrics`):
//!
//! * `conntrackd_sync_send_delay_seconds` (histogram): for each loop
//!   iteration that put datagrams on the link, how long its oldest
//!   message had waited since the event that made it (the batching
//!   delay, `BATCH_DELAY` at most under load);
//! * `conntrackd_sync_ack_seconds` (histogram, FT-FW): from sending a
//!   message until the peer acknowledged it — event→peer latency as the
//!   primary sees it, round trip included;
//! * `conntrackd_sync_replication_lag_seconds` (gauge, FT-FW): the age of
//!   the oldest object message the peer has not acknowledged (0 when
//!   caught up), and `conntrackd_sync_unacked_messages` (object messages
//!   in the resend queue; the ALIVE waiting for its ACK is not counted).
//!
//! Fixed buckets, no allocation per observation; sends are tracked per
//! loop iteration (sequence number of the last message sent, time), not
//! per message.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Upper bounds of the histogram buckets, in seconds.
pub const BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Sends remembered while unacknowledged (older ones are dropped from
/// the front: the lag then reads from the oldest one kept).
const MAX_INFLIGHT: usize = 65536;

/// A Prometheus histogram with [`BUCKETS`].
#[derive(Debug, Clone, Default)]
pub struct Hist {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Hist {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| s <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += s;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds another histogram's observations (another lane's).
    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.count += o.count;
        self.sum += o.sum;
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// (upper bound, observations in that bucket alone) of each finite
    /// bucket, as prometheus-client's encoder takes them (it writes the
    /// cumulative counts; `+Inf` is the total count).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BUCKETS.iter().copied().zip(self.counts).collect()
    }
}

/// The latency state of a link.
#[derive(Debug, Default)]
pub struct SyncLatency {
    pub send_delay: Hist,
    pub ack: Hist,
    /// (last sequence number sent in an iteration, when).
    inflight: VecDeque<(u64, Instant)>,
    last_sent: Option<u64>,
    last_track: Option<Instant>,
}

impl SyncLatency {
    /// Whether a [`track`](Self::track) is due at `now` (at most one per
    /// millisecond: the resolution of the acknowledgement histogram).
    pub fn due(&mut self, now: Instant) -> bool {
        if self
            .last_track
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_millis(1))
        {
            return false;
        }
        self.last_track = Some(now);
        true
    }

    /// FT-FW after a loop iteration: `last_sent` is the sequence number of
    /// the last message sent, `oldest_unacked` that of the oldest object
    /// message not acknowledged (`None`: all acknowledged).
    pub fn track(&mut self, last_sent: Option<u64>, oldest_unacked: Option<u64>, now: Instant) {
        if let Some(s) = last_sent.filter(|&s| Some(s) != self.last_sent) {
            self.last_sent = Some(s);
            // Only control messages went out when all objects are
            // acknowledged: nothing to time then.
            if oldest_unacked.is_some() {
                if self.inflight.len() == MAX_INFLIGHT {
                    self.inflight.pop_front();
                }
                self.inflight.push_back((s, now));
            }
        }
        // Everything before the oldest unacknowledged message was
        // acknowledged (control messages are never in the queue).
        while let Some(&(s, t)) = self.inflight.front() {
            if oldest_unacked.is_some_and(|o| s >= o) {
                break;
            }
            self.ack.observe(now.saturating_duration_since(t));
            self.inflight.pop_front();
        }
    }

    /// The age of the oldest unacknowledged send.
    pub fn lag(&self, now: Instant) -> Duration {
        self.inflight
            .front()
            .map_or(Duration::ZERO, |&(_, t)| now.saturating_duration_since(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_count_each_range() {
        let mut h = Hist::default();
        for us in [50, 300, 300, 2000, 9_000_000] {
            h.observe(Duration::from_micros(us));
        }
        let c = h.buckets();
        let upto = |b: f64| {
            c.iter()
                .filter(|(x, _)| *x <= b)
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        assert_eq!(upto(0.0001), 1);
        assert_eq!(upto(0.0005), 3);
        assert_eq!(upto(0.0025), 4);
        assert_eq!(upto(5.0), 4);
        assert_eq!(h.count(), 5, "+Inf");
    }

    #[test]
    fn acks_are_timed_from_their_send() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut l = SyncLatency::default();
        l.track(Some(10), Some(1), t0); // 1..=10 sent at t0
        l.track(Some(20), Some(1), ms(5)); // 11..=20 at +5 ms
        assert_eq!(l.lag(ms(7)), Duration::from_millis(7));
        l.track(Some(20), Some(11), ms(8)); // 1..=10 acked at +8 ms
        assert_eq!(l.ack.count(), 1);
        assert_eq!(l.lag(ms(9)), Duration::from_millis(4));
        l.track(Some(20), None, ms(20)); // all acked
        assert_eq!(l.ack.count(), 2);
        assert_eq!(l.lag(ms(30)), Duration::ZERO);
        // an ALIVE alone (no object waiting) is not timed
        l.track(Some(21), None, ms(25));
        assert_eq!(l.ack.count(), 2);
        // sent and acknowledged between two tracks: drained all the same
        l.track(Some(30), Some(22), ms(26));
        l.track(Some(31), None, ms(28));
        assert_eq!(l.ack.count(), 3);
        assert_eq!(l.lag(ms(29)), Duration::ZERO);
        assert_eq!(l.ack.count(), 3);
        let c = l.ack.buckets();
        let upto = c
            .iter()
            .filter(|(b, _)| *b <= 0.01)
            .map(|(_, n)| n)
            .sum::<u64>();
        assert_eq!(upto, 2);
    }
}
