//! `ctperf churn`: a steady mix of creations, updates and destructions in
//! the kernel table of the current namespace, paced in 1 ms slices, in
//! the shape of a carrier-grade NAT: many short flows (UDP and TCP, each
//! destroyed `life` seconds after its creation) and a share of long ones
//! (TCP, kept). Entries are [`synthetic`](super::fill::synthetic) flows, so
//! an observer can map a tuple back to its index (and creation time).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ct_core::flow::AF_INET;
use ct_core::netlink::msg::*;
use ct_core::netlink::request;
use ct_core::netlink::writer::Writer;
use ct_ring::netlink::{NlSocket, RecvError, NETLINK_NETFILTER};

use super::fill::synthetic;

/// What to generate.
#[derive(Debug, Clone)]
pub struct ChurnSpec {
    /// Creations per second.
    pub rate: u64,
    /// How long to run.
    pub secs: f64,
    /// Seconds a short flow lives before it is destroyed (0: never).
    pub life: f64,
    /// Every `long_every`-th flow is long-lived (0: none).
    pub long_every: u64,
    /// Updates per second, spread over the live short flows.
    pub update_rate: u64,
    /// Index of the first flow.
    pub start: u64,
    /// Destroy what is still alive at the end.
    pub cleanup: bool,
    /// How often the due creations, updates and destructions go out
    /// (each step one batch): 1 ms sends a few flows at once, a step
    /// shorter than 1/rate one flow at a time, as real traffic would.
    pub step: Duration,
}

impl Default for ChurnSpec {
    fn default() -> Self {
        ChurnSpec {
            rate: 10_000,
            secs: 10.0,
            life: 2.0,
            long_every: 10,
            update_rate: 0,
            start: 0,
            step: Duration::from_millis(1),
            cleanup: true,
        }
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChurnReport {
    pub created: u64,
    pub updated: u64,
    pub destroyed: u64,
    /// Requests the kernel refused (netlink error reports).
    pub errors: u64,
    pub seconds: f64,
    /// Flows alive at the end (before the cleanup).
    pub live: u64,
}

/// Messages per `sendmsg`.
const BATCH: usize = 256;

struct Sender {
    sock: NlSocket,
    buf: Vec<u8>,
    rx: Vec<u8>,
    n: usize,
    seq: u32,
    errors: u64,
}

impl Sender {
    fn push(&mut self, f: impl FnOnce(&mut Writer, u32)) {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        f(&mut Writer::new(&mut self.buf), seq);
        self.n += 1;
        if self.n >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.n > 0 && self.sock.send(&self.buf).is_err() {
            self.errors += 1;
        }
        self.buf.clear();
        self.n = 0;
        loop {
            match self.sock.recv(&mut self.rx, true) {
                Ok(_) => self.errors += 1,
                Err(RecvError::WouldBlock) => break,
                Err(_) => break,
            }
        }
    }
}

/// Runs the churn in the current namespace. `on_create(index, at)` is
/// called for every flow just before the batch holding it is sent;
/// `progress` once per second.
pub fn churn(
    spec: &ChurnSpec,
    mut on_create: impl FnMut(u64, Instant),
    mut progress: impl FnMut(&ChurnReport),
) -> std::io::Result<ChurnReport> {
    let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
    let _ = sock.set_rcvbuf(1 << 20);
    let mut tx = Sender {
        sock,
        buf: Vec::with_capacity(BATCH * 200),
        rx: vec![0u8; 1 << 16],
        n: 0,
        seq: 1,
        errors: 0,
    };
    let mut r = ChurnReport::default();
    // Short flows alive, oldest first: (index, created at).
    let mut live: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut long_live = 0u64;
    let mut cursor = 0usize;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(spec.secs);
    let life = Duration::from_secs_f64(spec.life);
    let short_timeout = (spec.life.ceil() as u32).saturating_add(120);
    let mut next_report = start + Duration::from_secs(1);
    let mut slice_end = start;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let t = (now - start).as_secs_f64();
        let due = (spec.rate as f64 * t) as u64;
        while r.created < due {
            let i = spec.start + r.created;
            let long = spec.long_every > 0 && (r.created + 1) % spec.long_every == 0;
            let udp = !long && i.is_multiple_of(2);
            let f = synthetic(i, udp, if long { 3600 } else { short_timeout });
            on_create(i, now);
            tx.push(|w, seq| request::ct_new(w, seq, NLM_F_REQUEST | NLM_F_CREATE, AF_INET, &f));
            r.created += 1;
            if long {
                long_live += 1;
            } else {
                live.push_back((i, now));
            }
        }
        let due_up = (spec.update_rate as f64 * t) as u64;
        while r.updated < due_up && !live.is_empty() {
            cursor = (cursor + 1) % live.len();
            let (i, _) = live[cursor];
            let mut f = synthetic(i, i.is_multiple_of(2), short_timeout);
            f.mark = Some(r.updated as u32);
            tx.push(|w, seq| request::ct_new(w, seq, NLM_F_REQUEST, AF_INET, &f));
            r.updated += 1;
        }
        if spec.life > 0.0 {
            while live
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) >= life)
            {
                let (i, _) = live.pop_front().expect("front");
                destroy(&mut tx, i, i.is_multiple_of(2));
                r.destroyed += 1;
            }
        }
        tx.flush();
        if now >= next_report {
            next_report += Duration::from_secs(1);
            r.live = live.len() as u64 + long_live;
            r.errors = tx.errors;
            r.seconds = t;
            progress(&r);
        }
        slice_end += spec.step;
        let now = Instant::now();
        if slice_end > now {
            std::thread::sleep(slice_end - now);
        } else if now - slice_end > Duration::from_millis(50) {
            // far behind (the machine is busy): do not try to catch up in
            // one go, the rate is computed from the elapsed time anyway
            slice_end = now;
        }
    }
    r.seconds = start.elapsed().as_secs_f64();
    r.live = live.len() as u64 + long_live;
    if spec.cleanup {
        for (i, _) in live.drain(..) {
            destroy(&mut tx, i, i.is_multiple_of(2));
        }
        let first_long = spec.long_every.max(1);
        if spec.long_every > 0 {
            let mut k = first_long;
            while k <= r.created {
                destroy(&mut tx, spec.start + k - 1, false);
                k += spec.long_every;
            }
        }
        tx.flush();
    }
    r.errors = tx.errors;
    Ok(r)
}

fn destroy(tx: &mut Sender, i: u64, udp: bool) {
    let f = synthetic(i, udp, 0);
    let t = f.orig.expect("synthetic flows have an original tuple");
    tx.push(|w, seq| request::ct_delete_tuple(w, seq, NLM_F_REQUEST, AF_INET, &t, None));
}
