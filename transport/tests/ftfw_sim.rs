//! FT-FW over a deterministic simulated link: a primary (internal cache of
//! flows, random creates / updates / deletes) and a backup (external
//! cache), both running `proto::ftfw`, joined by a link that loses
//! (independently or in bursts), reorders, duplicates and corrupts
//! datagrams, with simulated time. After the traffic stops the backup's
//! external cache must equal the primary's internal cache (live entries),
//! every DEAD object must have been released, and no object may be left
//! in the resend queue.
//!
//! Everything is seeded (a small xorshift), caches that are iterated are
//! `BTreeMap`s, and time is `t0 + simulated offset`, so a run is exactly
//! reproducible.
//!
//! Corruption is of the kinds a receiver can detect (truncated datagram,
//! wrong version, zero length, impossible flags). The sync protocol has no
//! checksum of its own (1.4.7 relies on the UDP checksum, `Checksum on`):
//! a flipped bit in a sequence number or a TLV value is undetectable, and
//! a malformed payload has already been counted as received — neither
//! FT-FW 1.4.7 nor this implementation recovers from those, so they are
//! not simulated.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ct_core::flow::{Flow, Tuple, AF_INET};
use ct_transport::proto::ftfw::{Apply, Config, Ftfw, HelloState, ObjRef, Object, RsEntry};
use ct_transport::wire::*;

// ------------------------------------------------------------------ rng

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

// ----------------------------------------------------------------- link

#[derive(Debug, Clone, Copy, Default)]
struct LinkCfg {
    /// Independent loss per datagram.
    loss: f64,
    /// Bursts (Gilbert–Elliott): per datagram chance to enter a burst, to
    /// leave it, and the loss inside a burst.
    burst: Option<(f64, f64, f64)>,
    dup: f64,
    /// Chance of an extra random delay (up to 40 ms): reordering.
    reorder: f64,
    corrupt: f64,
    /// Chance that the first message's sequence number is overwritten
    /// with this value (the lab's nftables rule: `@ih,32,32 set
    /// 0xdeadbeef`); the datagram stays well-formed.
    overwrite_seq: Option<(f64, u32)>,
}

#[derive(Default, Debug)]
struct LinkStats {
    sent: u64,
    lost: u64,
    dup: u64,
    reordered: u64,
    corrupted: u64,
}

struct Link {
    cfg: LinkCfg,
    in_burst: bool,
    /// (due, order, bytes)
    queue: Vec<(Duration, u64, Vec<u8>)>,
    order: u64,
    /// Due time of the last datagram not reordered: the link is FIFO
    /// except for the datagrams picked for reordering.
    last_due: Duration,
    stats: LinkStats,
}

const BASE_DELAY: Duration = Duration::from_millis(2);

impl Link {
    fn new(cfg: LinkCfg) -> Link {
        Link {
            cfg,
            in_burst: false,
            queue: Vec::new(),
            order: 0,
            last_due: Duration::ZERO,
            stats: LinkStats::default(),
        }
    }

    fn send(&mut self, now: Duration, d: &[u8], rng: &mut Rng) {
        self.stats.sent += 1;
        let mut loss = self.cfg.loss;
        if let Some((enter, leave, in_loss)) = self.cfg.burst {
            if self.in_burst {
                if rng.chance(leave) {
                    self.in_burst = false;
                }
            } else if rng.chance(enter) {
                self.in_burst = true;
            }
            if self.in_burst {
                loss = in_loss;
            }
        }
        if rng.chance(loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if rng.chance(self.cfg.dup) {
            self.stats.dup += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut bytes = d.to_vec();
            if rng.chance(self.cfg.corrupt) {
                self.stats.corrupted += 1;
                corrupt(&mut bytes, rng);
            }
            if let Some((p, v)) = self.cfg.overwrite_seq {
                if bytes.len() >= 8 && rng.chance(p) {
                    self.stats.corrupted += 1;
                    bytes[4..8].copy_from_slice(&v.to_be_bytes());
                }
            }
            let mut due = now + BASE_DELAY + Duration::from_micros(rng.below(500));
            if rng.chance(self.cfg.reorder) {
                self.stats.reordered += 1;
                due += Duration::from_millis(1 + rng.below(40));
            } else {
                due = due.max(self.last_due);
                self.last_due = due;
            }
            self.order += 1;
            self.queue.push((due, self.order, bytes));
        }
    }

    fn due(&mut self, now: Duration) -> Vec<Vec<u8>> {
        let mut ready: Vec<(Duration, u64, Vec<u8>)> = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].0 <= now {
                ready.push(self.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        ready.sort_by_key(|r| (r.0, r.1));
        ready.into_iter().map(|r| r.2).collect()
    }
}

/// A detectable corruption of one message of the datagram.
fn corrupt(b: &mut Vec<u8>, rng: &mut Rng) {
    let offsets: Vec<usize> = {
        let mut v = Vec::new();
        let mut d = Datagram::new(b);
        let mut pos = 0;
        while let Some(Ok(m)) = d.next() {
            v.push(pos);
            pos += m.as_bytes().len();
        }
        v
    };
    if offsets.is_empty() {
        return;
    }
    let at = offsets[rng.below(offsets.len() as u64) as usize];
    match rng.below(4) {
        // Cut inside the message (Truncated / Bad message size).
        0 => b.truncate(at + 1 + rng.below(7) as usize),
        // Wrong protocol version: only this message is skipped.
        1 => b[at] = (b[at] & 0x0f) | 0x20,
        // len = 0: Bad message size, the rest of the datagram is dropped.
        2 => {
            b[at + 2] = 0;
            b[at + 3] = 0;
        }
        // Flags no mode accepts: Malformed header.
        _ => b[at + 1] = 0x01,
    }
}

// ---------------------------------------------------------------- nodes

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    New,
    Alive,
    Dead,
}

struct Obj {
    key: u32,
    flow: Flow,
    status: Status,
}

struct Node {
    ft: Ftfw,
    internal: BTreeMap<ObjRef, Obj>,
    by_key: BTreeMap<u32, ObjRef>,
    external: HashMap<Tuple, Flow>,
    next_id: u32,
    bulk: bool,
    honour_need_bulk: bool,
    need_bulk: u64,
    resync_requests: u64,
    unix: u32,
}

impl Node {
    fn new(cfg: Config, t0: Instant, unix: u32) -> Node {
        Node {
            ft: Ftfw::new(cfg, t0),
            internal: BTreeMap::new(),
            by_key: BTreeMap::new(),
            external: HashMap::new(),
            next_id: 1,
            bulk: false,
            honour_need_bulk: true,
            need_bulk: 0,
            resync_requests: 0,
            unix,
        }
    }

    fn receive(&mut self, d: &[u8]) {
        let ext = &mut self.external;
        let mut bulk = false;
        let mut need = 0;
        let mut resync = 0;
        self.ft.on_datagram(d, &mut |a| match a {
            Apply::Ct(Op::New, f) | Apply::Ct(Op::Update, f) => {
                ext.insert(f.orig.unwrap(), *f);
            }
            Apply::Ct(Op::Delete | Op::Withdraw, f) => {
                ext.remove(&f.orig.unwrap());
            }
            Apply::Exp(..) => panic!("no expectations here"),
            Apply::Resync => {
                resync += 1;
                bulk = true;
            }
            Apply::NeedBulk { .. } => {
                need += 1;
                bulk = true;
            }
        });
        self.need_bulk += need;
        self.resync_requests += resync;
        if bulk && (resync > 0 || self.honour_need_bulk) {
            self.bulk = true;
        }
    }

    fn step(&mut self, t0: Instant, now: Duration, link: &mut Link, rng: &mut Rng) {
        let at = t0 + now;
        self.ft.on_timer(at);
        if std::mem::take(&mut self.bulk) {
            let ids: Vec<ObjRef> = self.internal.keys().copied().collect();
            for id in ids {
                self.ft.on_local(id);
            }
        }
        if self.ft.has_pending() {
            let internal = &self.internal;
            let mut out: Vec<Vec<u8>> = Vec::new();
            self.ft.transmit(
                at,
                self.unix.wrapping_add(now.as_secs() as u32),
                &mut |id, cur| {
                    internal.get(&id).map(|o| {
                        let op = match o.status {
                            Status::New => Op::New,
                            Status::Alive => Op::Update,
                            Status::Dead => Op::Delete,
                        };
                        cur.flow = o.flow;
                        Object::Ct(op)
                    })
                },
                &mut |d| out.push(d.to_vec()),
            );
            for d in out {
                link.send(now, &d, rng);
            }
        }
        let released: Vec<ObjRef> = self.ft.drain_released().collect();
        for id in released {
            if self.internal.get(&id).map(|o| o.status) == Some(Status::Dead) {
                let o = self.internal.remove(&id).unwrap();
                if self.by_key.get(&o.key) == Some(&id) {
                    self.by_key.remove(&o.key);
                }
            }
        }
    }

    /// A random local change (as kernel events would produce them).
    fn random_op(&mut self, rng: &mut Rng, keys: u32, deletes: bool) {
        let key = rng.below(keys as u64) as u32;
        let existing = self.by_key.get(&key).copied();
        match existing.map(|id| (id, self.internal[&id].status)) {
            Some((id, Status::New | Status::Alive)) => {
                let o = self.internal.get_mut(&id).unwrap();
                if deletes && rng.chance(0.3) {
                    o.status = Status::Dead;
                } else {
                    o.status = Status::Alive;
                    o.flow.timeout = Some(1 + rng.below(10_000) as u32);
                    o.flow.mark = Some(rng.below(100) as u32);
                }
                self.ft.on_local(id);
            }
            dead_or_none => {
                // NEW event: a DEAD object of the same key is dropped and
                // re-created (1.4.7 does the same).
                if let Some((old, _)) = dead_or_none {
                    self.ft.forget(old);
                    self.internal.remove(&old);
                }
                let id = ObjRef::new(ct_core::table::Table::V4, self.next_id, 0);
                self.next_id += 1;
                self.internal.insert(
                    id,
                    Obj {
                        key,
                        flow: flow(key, rng),
                        status: Status::New,
                    },
                );
                self.by_key.insert(key, id);
                self.ft.on_local(id);
            }
        }
    }

    /// The live entries as the peer decodes them.
    fn expected(&self) -> HashMap<Tuple, Flow> {
        let mut buf = [0u8; 512];
        self.internal
            .values()
            .filter(|o| o.status != Status::Dead)
            .map(|o| {
                let n = emit_ct(
                    &mut buf,
                    Op::New,
                    Flags::NONE,
                    1,
                    &o.flow,
                    &EmitOpts::default(),
                )
                .unwrap();
                let f = parse_ct(&buf[HEADER_LEN..n]).unwrap();
                (f.orig.unwrap(), f)
            })
            .collect()
    }
}

fn flow(key: u32, rng: &mut Rng) -> Flow {
    let tcp = !key.is_multiple_of(3);
    Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (key >> 8)))),
            dst: Some(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1))),
            l4proto: Some(if tcp { 6 } else { 17 }),
            src_port: Some(1024 + (key & 0xff) as u16),
            dst_port: Some(if tcp { 443 } else { 53 }),
            ..Tuple::default()
        }),
        status: Some(if tcp { 0xe } else { 0x8 }),
        timeout: Some(1 + rng.below(600) as u32),
        mark: Some(0),
        ..Flow::default()
    }
}

// ----------------------------------------------------------- scenarios

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    seed: u64,
    link: LinkCfg,
    ops: u32,
    keys: u32,
    deletes: bool,
    cfg: Config,
    /// Seconds since the epoch at start (sequence numbers start there).
    unix: u32,
    /// Restart the backup after this many ops (it then asks for a resync).
    restart_backup_at: Option<u32>,
    /// Steps the backup stays dead before it restarts (everything sent
    /// meanwhile is lost), and whether its new sequence starts behind the
    /// old one (a `kill -9` and a restart within seconds: both start at
    /// `time(NULL)`, the old one had advanced).
    restart_down_steps: u32,
    restart_seq_behind: bool,
    honour_need_bulk: bool,
    /// The link becomes loss-free when the traffic stops.
    clean_after_traffic: bool,
    /// Local changes per step outside bursts (0..n).
    trickle: u64,
}

impl Scenario {
    fn new(name: &'static str, seed: u64, link: LinkCfg) -> Scenario {
        Scenario {
            name,
            seed,
            link,
            ops: 5000,
            keys: 1500,
            deletes: true,
            cfg: Config::default(),
            unix: 1_700_000_000,
            restart_backup_at: None,
            restart_down_steps: 0,
            restart_seq_behind: false,
            honour_need_bulk: true,
            clean_after_traffic: false,
            trickle: 4,
        }
    }
}

#[derive(Debug)]
#[allow(dead_code)] // printed
struct Report {
    converged_after: Option<Duration>,
    live: usize,
    primary_msgs: u64,
    backup_msgs: u64,
    link_ab: LinkStats,
    link_ba: LinkStats,
    backup_lost: u64,
    backup_before: u64,
    backup_malformed: u64,
    primary_malformed: u64,
    nacked: u64,
    rs_full: u64,
    need_bulk: u64,
    missing: usize,
    stale: usize,
    differ: usize,
}

const STEP: Duration = Duration::from_millis(5);
const SETTLE_MAX: Duration = Duration::from_secs(120);

fn run(sc: Scenario) -> Report {
    let mut rng = Rng::new(sc.seed);
    let t0 = Instant::now();
    let mut a = Node::new(sc.cfg, t0, sc.unix);
    a.honour_need_bulk = sc.honour_need_bulk;
    let mut b = Node::new(sc.cfg, t0, sc.unix.wrapping_add(17));
    let mut ab = Link::new(sc.link);
    let mut ba = Link::new(sc.link);
    let mut now = Duration::ZERO;

    let tick =
        |now: Duration, a: &mut Node, b: &mut Node, ab: &mut Link, ba: &mut Link, rng: &mut Rng| {
            for d in ab.due(now) {
                b.receive(&d);
            }
            for d in ba.due(now) {
                a.receive(&d);
            }
            a.step(t0, now, ab, rng);
            b.step(t0, now, ba, rng);
        };

    // Handshake (HELLO / HELLO_BACK) before traffic: until it completes a
    // node is unreliable by design (every HELLO discards the peer's
    // resend queue and bypasses the sequence check).
    while a.ft.hello_state() != HelloState::Done || b.ft.hello_state() != HelloState::Done {
        tick(now, &mut a, &mut b, &mut ab, &mut ba, &mut rng);
        now += STEP;
        assert!(now < Duration::from_secs(60), "{}: no handshake", sc.name);
    }
    // Traffic: a steady trickle with occasional bursts (a bulk of events
    // in one loop iteration, as after a netlink burst).
    let mut done = 0;
    let mut down_left: Option<u32> = None;
    while done < sc.ops || down_left.is_some() {
        if let Some(left) = down_left {
            // the backup is dead: nothing reaches it, nothing comes back
            ab.queue.clear();
            ba.queue.clear();
            if left == 0 {
                let base = if sc.restart_seq_behind {
                    sc.unix.wrapping_add(1)
                } else {
                    sc.unix.wrapping_add(5000)
                };
                b = Node::new(sc.cfg, t0 + now, base);
                b.ft.request_resync();
                down_left = None;
            } else {
                down_left = Some(left - 1);
            }
        }
        let n = if rng.chance(0.02) {
            50 + rng.below(300) as u32
        } else {
            rng.below(sc.trickle) as u32
        };
        for _ in 0..n.min(sc.ops - done) {
            a.random_op(&mut rng, sc.keys, sc.deletes);
            done += 1;
            if sc.restart_backup_at == Some(done) && sc.restart_down_steps > 0 {
                down_left = Some(sc.restart_down_steps);
            } else if sc.restart_backup_at == Some(done) {
                // The backup restarts with an empty cache and asks for a
                // bulk send (`conntrackd -n` from the HA script).
                b = Node::new(sc.cfg, t0 + now, sc.unix.wrapping_add(5000));
                ba.queue.clear();
                b.ft.request_resync();
            }
        }
        tick(now, &mut a, &mut b, &mut ab, &mut ba, &mut rng);
        now += STEP;
    }
    // Quiescence: no more local changes, the link stays as bad.
    let quiet = now;
    if sc.clean_after_traffic {
        ab.cfg = LinkCfg::default();
        ba.cfg = LinkCfg::default();
    }
    let expected = a.expected();
    let mut converged_after = None;
    while now - quiet < SETTLE_MAX {
        tick(now, &mut a, &mut b, &mut ab, &mut ba, &mut rng);
        now += STEP;
        if (now - quiet).as_millis().is_multiple_of(100) && b.external == a.expected() {
            let objs_in_rs =
                a.ft.rs_entries()
                    .filter(|e| matches!(e, RsEntry::Object { .. }))
                    .count();
            let dead = a
                .internal
                .values()
                .filter(|o| o.status == Status::Dead)
                .count();
            if objs_in_rs == 0 && dead == 0 && !a.ft.has_pending() {
                converged_after = Some(now - quiet);
                break;
            }
        }
    }
    let missing = expected
        .keys()
        .filter(|k| !b.external.contains_key(k))
        .count();
    let stale = b
        .external
        .keys()
        .filter(|k| !expected.contains_key(k))
        .count();
    let differ = expected
        .iter()
        .filter(|(k, f)| b.external.get(k).is_some_and(|g| g != *f))
        .count();
    let r = Report {
        converged_after,
        live: expected.len(),
        primary_msgs: a.ft.stats.sent,
        backup_msgs: b.ft.stats.sent,
        link_ab: ab.stats,
        link_ba: ba.stats,
        backup_lost: b.ft.rx().lost,
        backup_before: b.ft.rx().before,
        backup_malformed: b.ft.recv_errors.malformed,
        primary_malformed: a.ft.recv_errors.malformed,
        nacked: a.ft.stats.nacked,
        rs_full: a.ft.rs_full(),
        need_bulk: a.need_bulk,
        missing,
        stale,
        differ,
    };
    eprintln!("{}: {:?}", sc.name, r);
    r
}

fn assert_converged(r: &Report, name: &str) {
    assert!(
        r.converged_after.is_some(),
        "{name}: not converged: {} missing, {} stale, {} differ",
        r.missing,
        r.stale,
        r.differ
    );
    assert_eq!((r.missing, r.stale, r.differ), (0, 0, 0), "{name}");
}

#[test]
fn clean_link() {
    let r = run(Scenario::new("clean", 1, LinkCfg::default()));
    assert_converged(&r, "clean");
    assert_eq!(r.backup_lost, 0);
    assert_eq!(r.nacked, 0);
    assert!(r.live > 500);
}

#[test]
fn loss_5_percent() {
    let link = LinkCfg {
        loss: 0.05,
        ..LinkCfg::default()
    };
    for seed in [2, 3] {
        let r = run(Scenario::new("loss5", seed, link));
        assert_converged(&r, "loss5");
        assert!(r.nacked > 0 && r.backup_lost > 0);
    }
}

#[test]
fn loss_20_percent_reorder_duplicate() {
    let link = LinkCfg {
        loss: 0.20,
        dup: 0.03,
        reorder: 0.05,
        ..LinkCfg::default()
    };
    let r = run(Scenario::new("loss20+reorder+dup", 4, link));
    assert_converged(&r, "loss20");
    assert!(
        r.backup_before > 0,
        "duplicates and late datagrams are dropped"
    );
}

#[test]
fn loss_in_bursts_of_50_percent() {
    let link = LinkCfg {
        loss: 0.01,
        burst: Some((0.03, 0.1, 0.5)),
        ..LinkCfg::default()
    };
    let r = run(Scenario::new("bursts50", 5, link));
    assert_converged(&r, "bursts50");
}

#[test]
fn corruption_is_counted_and_recovered() {
    let link = LinkCfg {
        loss: 0.05,
        corrupt: 0.05,
        ..LinkCfg::default()
    };
    let r = run(Scenario::new("corrupt5+loss5", 6, link));
    assert_converged(&r, "corrupt");
    assert!(r.backup_malformed > 0 && r.primary_malformed > 0);
}

/// The lab's corruption: one value written over the sequence number of
/// 20 % of the datagrams, both ways, with the sender's numbers started
/// 2,284,272 below it (a CI run's random start put one lane there: the
/// backup took the value for a gap, and every genuine message after it
/// for an old one).
#[test]
fn a_fixed_corrupted_sequence_number_just_ahead_is_not_believed() {
    let link = LinkCfg {
        loss: 0.05,
        overwrite_seq: Some((0.20, 0xdead_beef)),
        ..LinkCfg::default()
    };
    let mut sc = Scenario::new("overwrite", 11, link);
    sc.unix = 0xdead_beefu32.wrapping_sub(2_284_272);
    let r = run(sc);
    assert_converged(&r, "overwrite");
    assert!(r.link_ab.corrupted > 0 && r.link_ba.corrupted > 0);
}

#[test]
fn sequence_numbers_wrap_around() {
    let link = LinkCfg {
        loss: 0.10,
        reorder: 0.02,
        ..LinkCfg::default()
    };
    let mut sc = Scenario::new("wrap", 7, link);
    sc.unix = u32::MAX - 3000;
    let r = run(sc);
    assert_converged(&r, "wrap");
    assert!(r.primary_msgs > 3000, "the counter wrapped");
}

#[test]
fn backup_restart_and_resync() {
    let link = LinkCfg {
        loss: 0.05,
        ..LinkCfg::default()
    };
    let mut sc = Scenario::new("restart", 8, link);
    sc.restart_backup_at = Some(2500);
    let r = run(sc);
    assert_converged(&r, "restart");
}

/// A backup killed -9 in the middle of the traffic, dead for a while
/// (everything sent to it is lost), restarted within seconds so that its
/// new sequence numbers start BEHIND the old ones, asking for a resync.
#[test]
fn backup_killed_and_restarted_behind_in_sequence() {
    let link = LinkCfg {
        loss: 0.3,
        ..LinkCfg::default()
    };
    let mut sc = Scenario::new("killed", 9, link);
    sc.ops = 20000;
    sc.keys = 20000;
    sc.deletes = false;
    sc.restart_backup_at = Some(8000);
    sc.restart_down_steps = 60;
    sc.restart_seq_behind = true;
    let r = run(sc);
    assert_converged(&r, "killed");
}

/// The stall of REPORT §5e: a blast of new flows, much larger than the
/// resend queue, meets heavy loss (there: the receiver's socket buffer
/// overflowed); the link is clean again afterwards. 1.4.7 loses the
/// flows whose resend entries fell out of the queue for good; with
/// `NeedBulk` answered by a bulk send the backup converges. (Creates and
/// updates only: a bulk send does not repair a lost DEL, nor does 1.4.7's
/// `-n`.)
#[test]
fn resend_queue_overflow_needs_bulk() {
    let link = LinkCfg {
        loss: 0.25,
        ..LinkCfg::default()
    };
    let mut sc = Scenario::new("overflow+needbulk", 9, link);
    sc.cfg.resend_queue_size = 256;
    sc.deletes = false;
    sc.keys = 4000;
    sc.ops = 4000;
    sc.trickle = 40;
    sc.clean_after_traffic = true;
    let fixed = run(sc);
    assert!(fixed.rs_full > 0 && fixed.need_bulk > 0);
    assert_converged(&fixed, "overflow+needbulk");

    sc.name = "overflow, 1.4.7 behaviour";
    sc.honour_need_bulk = false;
    let old = run(sc);
    assert!(old.rs_full > 0);
    assert!(
        old.converged_after.is_none() && old.missing > 0,
        "expected the 1.4.7 stall with this seed: {old:?}"
    );
}

/// Everything at once, for longer: 30 000 changes over 1 500 keys with
/// 10 % loss, 2 % duplicates, 3 % reordering and 2 % corruption.
#[test]
fn long_mixed_run() {
    let link = LinkCfg {
        loss: 0.10,
        dup: 0.02,
        reorder: 0.03,
        corrupt: 0.02,
        ..LinkCfg::default()
    };
    let mut sc = Scenario::new("long mixed", 10, link);
    sc.ops = 30_000;
    let r = run(sc);
    assert_converged(&r, "long mixed");
}
