//! The replicator in-process, without sockets: two lanes (a primary and a
//! backup) joined by a simulated link, each with a fake kernel table
//! ([`FakeTable`]) whose changes reach its replicator as real ctnetlink
//! event bytes, with simulated time. Every sync mode is driven the way
//! the daemon drives it (events, datagrams, the 1-second tick, the end of
//! each loop iteration) and checked on what the user cares about: the
//! backup's external cache equals the primary's kernel table after
//! events, an overrun (events lost, then a resync), a bulk update sent in
//! slices while events go on, a peer restart, a flush; a commit creates
//! the external cache in the kernel, masters first.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ct_core::config::{SyncMode, SyncSection};
use ct_core::flow::{Expect, Flow, Tuple, AF_INET};
use ct_core::netlink::lanes::lane_of;
use ct_core::netlink::msg::{NLM_F_CREATE, NLM_F_EXCL};
use ct_core::netlink::request;
use ct_core::netlink::writer::Writer;
use ct_core::table::{Cache, Change, FakeTable, KernelTable, ObjState};
use ct_transport::replicator::{
    Config, Io, LinkParams, Note, Now, Replicator, Role, BATCH_DELAY, BUSY_EVENTS,
};
use ct_transport::wire::{Op, Transport};

const IPS_CONFIRMED: u32 = 1 << 3;
const IPS_SEEN_REPLY: u32 = 1 << 1;

/// A UDP flow `10.0.i.j:port -> 10.1.0.1:53` with a mark (its "state").
fn flow(i: u32, mark: u32) -> Flow {
    let src = IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8));
    let dst = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1));
    let port = 1024 + (i % 50_000) as u16;
    Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: Some(src),
            dst: Some(dst),
            l4proto: Some(17),
            src_port: Some(port),
            dst_port: Some(53),
            ..Tuple::default()
        }),
        reply: Some(Tuple {
            src: Some(dst),
            dst: Some(src),
            l4proto: Some(17),
            src_port: Some(53),
            dst_port: Some(port),
            ..Tuple::default()
        }),
        status: Some(IPS_CONFIRMED | IPS_SEEN_REPLY),
        timeout: Some(120),
        mark: Some(mark),
        ..Flow::default()
    }
}

/// What a flow is compared on: its original tuple and its mark.
type View = BTreeMap<String, Option<u32>>;

fn key(f: &Flow) -> String {
    format!("{:?}", f.orig)
}

fn cache_view(c: &Cache) -> View {
    let mut v = View::new();
    c.for_each(|f, state, _| {
        if state != ObjState::Dead {
            v.insert(key(&f), f.mark);
        }
    });
    v
}

/// The kernel's entry of a key (see [`key`]).
fn kernel_entry(k: &mut FakeTable, key_of: &str) -> Option<Flow> {
    let mut found = None;
    k.dump(&mut |f| {
        if key(f) == key_of {
            found = Some(*f);
        }
    })
    .unwrap();
    found
}

fn kernel_view(k: &mut FakeTable) -> View {
    let mut v = View::new();
    k.dump(&mut |f| {
        v.insert(key(f), f.mark);
    })
    .unwrap();
    v
}

/// A kernel change as the event the kernel multicasts (`pid` of the
/// handle that made it, 0 for packets): without the NAT sequence
/// adjustment, which the kernel's events never carry.
fn event_bytes(change: Change, f: &Flow, pid: u32) -> Vec<u8> {
    let mut f = *f;
    f.seq_adj_orig = None;
    f.seq_adj_reply = None;
    let f = &f;
    let mut buf = Vec::new();
    {
        let mut w = Writer::new(&mut buf);
        match change {
            Change::New => request::ct_new(&mut w, 0, NLM_F_CREATE | NLM_F_EXCL, AF_INET, f),
            Change::Update => request::ct_new(&mut w, 0, 0, AF_INET, f),
            Change::Destroy => request::ct_delete(&mut w, 0, 0, f),
        }
    }
    buf[12..16].copy_from_slice(&pid.to_ne_bytes());
    buf
}

fn sync_section(mode: SyncMode) -> SyncSection {
    let mut s = SyncSection::default();
    match mode {
        SyncMode::Ftfw => s.modes.ftfw = true,
        SyncMode::Alarm => s.modes.alarm = true,
        SyncMode::Notrack => s.modes.notrack = true,
    }
    s
}

/// One lane: its replicator, its kernel, what it sent and said.
struct Node {
    rep: Replicator,
    kernel: FakeTable,
    /// Events of the kernel already given to the replicator.
    seen: usize,
    out: Vec<Vec<u8>>,
    notes: Vec<Note>,
    ended: Vec<Flow>,
    /// Datagrams sent per poll, while counting.
    per_poll: Vec<usize>,
    budget: usize,
    /// The node's lane `(index, count)`, for the kernel's dump (as the
    /// driver marks each flow); `None`: the only lane.
    share: Option<(u32, u32)>,
    /// The kernel's expectations, and every expectation change injected
    /// into it.
    exps: Vec<Expect>,
    exp_ops: Vec<(Op, Expect)>,
}

struct SimIo<'a> {
    out: &'a mut Vec<Vec<u8>>,
    kernel: &'a mut FakeTable,
    notes: &'a mut Vec<Note>,
    ended: &'a mut Vec<Flow>,
    share: Option<(u32, u32)>,
    exps: &'a mut Vec<Expect>,
    exp_ops: &'a mut Vec<(Op, Expect)>,
}

impl Io for SimIo<'_> {
    fn send(&mut self, d: &[u8]) {
        self.out.push(d.to_vec());
    }
    fn inject(&mut self, op: Op, f: &Flow) {
        let _ = self.kernel.delete(f);
        if op != Op::Delete {
            let _ = self.kernel.create(std::slice::from_ref(f));
        }
    }
    fn inject_exp(&mut self, op: Op, e: &Expect) {
        self.exp_ops.push((op, *e));
        let same = |x: &Expect| (x.master, x.tuple) == (e.master, e.tuple);
        self.exps.retain(|x| !same(x));
        if op != Op::Delete {
            self.exps.push(*e);
        }
    }
    fn dump_exp(&mut self, out: &mut dyn FnMut(&Expect)) -> Result<(), i32> {
        // (the lane's share only, as the driver's dump)
        let share = self.share;
        for e in self.exps.iter() {
            if share.is_none_or(|(i, n)| lane_of(e.master.as_ref(), n) == i) {
                out(e)
            }
        }
        Ok(())
    }
    fn dump(&mut self, out: &mut dyn FnMut(&Flow, bool)) -> Result<(), i32> {
        let share = self.share;
        self.kernel.dump(&mut |f| {
            let mine = share.is_none_or(|(i, n)| lane_of(f.orig.as_ref(), n) == i);
            out(f, mine)
        })
    }
    fn seq_adj(&mut self, f: &mut Flow) {
        if let Some(k) = kernel_entry(self.kernel, &key(f)) {
            f.seq_adj_orig = k.seq_adj_orig;
            f.seq_adj_reply = k.seq_adj_reply;
        }
    }
    fn flow_ended(&mut self, f: &Flow) {
        self.ended.push(*f);
    }
    fn note(&mut self, n: Note) {
        self.notes.push(n);
    }
}

impl Node {
    fn new(role: Role, sync: Option<SyncSection>, t: Instant) -> Node {
        let mut rep = Replicator::new(Config {
            role,
            buckets: 1024,
            limit: 1 << 20,
            filter: None,
            sync,
        });
        rep.attach(
            LinkParams {
                mtu: 1500,
                transport: Transport::Udp,
                sealed: false,
            },
            t,
        );
        Node {
            rep,
            kernel: FakeTable::new(),
            seen: 0,
            out: Vec::new(),
            notes: Vec::new(),
            ended: Vec::new(),
            per_poll: Vec::new(),
            budget: 64,
            share: None,
            exps: Vec::new(),
            exp_ops: Vec::new(),
        }
    }

    fn parts(&mut self) -> (&mut Replicator, SimIo<'_>) {
        (
            &mut self.rep,
            SimIo {
                out: &mut self.out,
                kernel: &mut self.kernel,
                notes: &mut self.notes,
                ended: &mut self.ended,
                share: self.share,
                exps: &mut self.exps,
                exp_ops: &mut self.exp_ops,
            },
        )
    }

    /// A new expectation in the kernel, and its event.
    fn add_exp(&mut self, now: &Now, e: Expect) {
        self.exps.push(e);
        self.exp_event(now, &e, false);
    }

    /// An expectation leaves the kernel, and its event.
    fn remove_exp(&mut self, now: &Now, e: &Expect) {
        self.exps
            .retain(|x| (x.master, x.tuple) != (e.master, e.tuple));
        self.exp_event(now, e, true);
    }

    /// The event of an expectation's creation or, with `destroy`, its end
    /// (the same attributes, as the kernel's).
    fn exp_event(&mut self, now: &Now, e: &Expect, destroy: bool) {
        self.exp_event_by(now, e, destroy, 0)
    }

    /// [`exp_event`](Self::exp_event) made by port id `pid` (0: the
    /// kernel).
    fn exp_event_by(&mut self, now: &Now, e: &Expect, destroy: bool, pid: u32) {
        let mut buf = Vec::new();
        request::exp_new(&mut Writer::new(&mut buf), 0, NLM_F_CREATE | NLM_F_EXCL, e);
        if destroy {
            // nlmsg_type: the subsystem's byte, then IPCTNL_MSG_EXP_DELETE
            buf[4] = 2;
        }
        buf[12..16].copy_from_slice(&pid.to_ne_bytes());
        let (rep, mut io) = self.parts();
        rep.on_kernel_events(now, &buf, &mut io);
    }

    /// One event (made by port id `pid`; 0: the kernel) reaches the
    /// replicator.
    fn event(&mut self, now: &Now, c: Change, f: &Flow, pid: u32) {
        let bytes = event_bytes(c, f, pid);
        let (rep, mut io) = self.parts();
        rep.on_kernel_events(now, &bytes, &mut io);
    }

    /// The kernel's new events reach the replicator.
    fn deliver_events(&mut self, now: &Now) {
        while self.seen < self.kernel.events.len() {
            let (c, f) = self.kernel.events[self.seen];
            self.seen += 1;
            self.event(now, c, &f, 0);
        }
    }

    /// The kernel's entry of a key (see [`key`]).
    fn kernel_flow(&mut self, k: &str) -> Option<Flow> {
        kernel_entry(&mut self.kernel, k)
    }

    /// The event socket overran: the kernel's new events are lost.
    fn lose_events(&mut self) {
        self.seen = self.kernel.events.len();
    }

    fn poll(&mut self, now: &Now) {
        let before = self.out.len();
        let budget = self.budget;
        let (rep, mut io) = self.parts();
        rep.poll(now, false, budget, &mut io);
        self.per_poll.push(self.out.len() - before);
    }

    fn tick(&mut self, now: &Now) {
        let (rep, mut io) = self.parts();
        rep.on_tick(now, &mut io);
    }

    fn receive(&mut self, now: &Now, d: &[u8]) {
        let (rep, mut io) = self.parts();
        rep.on_datagram(now, d, None, &mut io);
    }

    fn resync(&mut self, now: &Now, sweep: bool) {
        let (rep, mut io) = self.parts();
        rep.resync(now, sweep, &mut io).unwrap();
    }
}

/// Two lanes over a link that may lose datagrams; simulated time in
/// milliseconds.
struct Sim {
    t0: Instant,
    ms: u64,
    a: Node,
    b: Node,
    /// Every n-th datagram (both ways) is lost; 0: none.
    lose_every: u64,
    sent: u64,
    /// Besides: this per cent of the datagrams is lost at random (a
    /// seeded xorshift* generator).
    lose_pct: u64,
    rng: u64,
}

impl Sim {
    fn new(mode: SyncMode, tweak: impl Fn(&mut SyncSection)) -> Sim {
        let t0 = Instant::now();
        let mut s = sync_section(mode);
        tweak(&mut s);
        Sim {
            t0,
            ms: 0,
            a: Node::new(Role::Sync, Some(s.clone()), t0),
            b: Node::new(Role::Sync, Some(s), t0),
            lose_every: 0,
            sent: 0,
            lose_pct: 0,
            rng: 1,
        }
    }

    fn now(&self) -> Now {
        Now {
            at: self.t0 + Duration::from_millis(self.ms),
            secs: (self.ms / 1000) as u32,
            unix: 1_700_000_000 + (self.ms / 1000) as u32,
        }
    }

    /// One millisecond: events, datagrams both ways, the ends of both
    /// loop iterations, the tick every second.
    fn step(&mut self) {
        self.ms += 1;
        let now = self.now();
        self.a.deliver_events(&now);
        self.b.deliver_events(&now);
        if self.ms.is_multiple_of(1000) {
            self.a.tick(&now);
            self.b.tick(&now);
        }
        self.a.poll(&now);
        self.b.poll(&now);
        for d in std::mem::take(&mut self.a.out) {
            if self.delivered() {
                self.b.receive(&now, &d);
            }
        }
        for d in std::mem::take(&mut self.b.out) {
            if self.delivered() {
                self.a.receive(&now, &d);
            }
        }
    }

    fn delivered(&mut self) -> bool {
        self.sent += 1;
        if self.lose_pct > 0 && self.random() % 100 < self.lose_pct {
            return false;
        }
        self.lose_every == 0 || !self.sent.is_multiple_of(self.lose_every)
    }

    /// Random loss from now on, seeded.
    fn lose_at_random(&mut self, pct: u64, seed: u64) {
        self.lose_pct = pct;
        self.rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step();
        }
    }

    /// The backup's external cache against the primary's kernel.
    fn converged(&mut self) -> (View, View) {
        (
            cache_view(self.b.rep.external()),
            kernel_view(&mut self.a.kernel),
        )
    }
}

const MODES: [SyncMode; 3] = [SyncMode::Notrack, SyncMode::Ftfw, SyncMode::Alarm];

/// Creates, updates and deletes in the primary's kernel.
fn churn(k: &mut FakeTable, base: u32, n: u32) {
    for i in base..base + n {
        k.upsert(flow(i, 1));
    }
    for i in (base..base + n).step_by(3) {
        k.upsert(flow(i, 2));
    }
    for i in (base..base + n).step_by(7) {
        k.expire(&flow(i, 0));
    }
}

#[test]
fn events_reach_the_peer_in_every_mode() {
    for mode in MODES {
        let mut s = Sim::new(mode, |_| {});
        churn(&mut s.a.kernel, 0, 300);
        s.run(3000);
        let (ext, kernel) = s.converged();
        assert_eq!(kernel.len(), 300 - 300usize.div_ceil(7), "{mode:?}");
        assert_eq!(
            ext, kernel,
            "{mode:?}: the backup holds the primary's table"
        );
        // the primary's internal cache is the kernel's table; FT-FW has
        // released every deleted object (acknowledged)
        assert_eq!(cache_view(s.a.rep.internal()), kernel, "{mode:?}");
        assert_eq!(
            s.a.rep.internal().len(),
            kernel.len(),
            "{mode:?}: no DEAD left"
        );
        if let Some(p) = s.a.rep.protocol().and_then(|p| p.ftfw()) {
            assert_eq!(p.tx_len(), 0);
            assert!(
                !p.rs_entries()
                    .any(|e| matches!(e, ct_transport::proto::ftfw::RsEntry::Object { .. })),
                "every object acknowledged"
            );
        }
    }
}

#[test]
fn ftfw_recovers_what_the_link_loses() {
    let mut s = Sim::new(SyncMode::Ftfw, |_| {});
    s.lose_every = 5;
    churn(&mut s.a.kernel, 0, 500);
    s.run(2000);
    // updates after the loss started, then a quiet link
    for i in 0..500 {
        if i % 7 != 0 && i % 2 == 0 {
            s.a.kernel.upsert(flow(i, 9));
        }
    }
    s.run(1000);
    s.lose_every = 0;
    s.run(4000);
    let (ext, kernel) = s.converged();
    assert_eq!(ext, kernel);
}

/// Random loss (20 % of the datagrams, both ways) while flows come and
/// go: deletions arrive while the peer's acknowledgements of the same
/// flows' creations do, in the same loop rounds. Once the link heals, the
/// backup holds exactly the primary's table, in every run. (Before the
/// fix of `Ftfw::drain_released`, a DEAD flow acknowledged for its NEW in
/// the round of its DESTROY left the internal cache with its DEL
/// unacknowledged; a lost DEL then stayed lost.)
#[test]
fn ftfw_converges_under_random_loss_while_flows_end() {
    for seed in 1..=40u64 {
        let mut s = Sim::new(SyncMode::Ftfw, |_| {});
        s.lose_at_random(20, seed);
        let mut alive: Vec<u32> = Vec::new();
        let mut made = 0;
        for ms in 0..4000u64 {
            // a flow every 10 ms; from 200 ms on, a random live one ends
            // every 17 ms
            if ms % 10 == 0 {
                s.a.kernel.upsert(flow(made, 1));
                alive.push(made);
                made += 1;
            }
            if ms >= 200 && ms % 17 == 0 && !alive.is_empty() {
                let i = (s.random() % alive.len() as u64) as usize;
                let f = alive.swap_remove(i);
                s.a.kernel.expire(&flow(f, 0));
            }
            s.step();
        }
        // the link heals
        s.lose_pct = 0;
        s.run(6000);
        let (ext, kernel) = s.converged();
        let extra: Vec<_> = ext.keys().filter(|k| !kernel.contains_key(*k)).collect();
        let missing: Vec<_> = kernel.keys().filter(|k| !ext.contains_key(*k)).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "seed {seed}: the backup holds {} flows the primary does not, lacks {}: {extra:?} {missing:?}",
            extra.len(),
            missing.len()
        );
        assert_eq!(ext, kernel, "seed {seed}");
    }
}

/// Autocorking: the changes of a loop iteration go at once while they
/// trickle in (fewer than `BUSY_EVENTS` event datagrams, even with more
/// waiting in the driver); a busy iteration's wait for the next ones, at
/// most `BATCH_DELAY`.
#[test]
fn a_trickle_goes_at_once_a_burst_waits_for_company() {
    let t = Instant::now();
    let now = |us: u64| Now {
        at: t + Duration::from_micros(us),
        secs: 0,
        unix: 1_700_000_000,
    };
    let mut n = Node::new(Role::Sync, Some(sync_section(SyncMode::Ftfw)), t);
    let poll = |n: &mut Node, at: &Now, more: bool| {
        let (rep, mut io) = n.parts();
        rep.poll(at, more, 64, &mut io);
        std::mem::take(&mut n.out).len()
    };
    let trickle = BUSY_EVENTS - 1;
    for i in 0..trickle {
        n.event(&now(0), Change::New, &flow(i, 1), 0);
    }
    assert!(poll(&mut n, &now(0), true) > 0, "a trickle goes at once");
    for i in 0..BUSY_EVENTS * 2 {
        n.event(&now(10), Change::New, &flow(100 + i, 1), 0);
    }
    assert_eq!(poll(&mut n, &now(10), true), 0, "a burst waits");
    // busy again, but the first of them has waited long enough
    let later = 10 + BATCH_DELAY.as_micros() as u64;
    for i in 0..BUSY_EVENTS * 2 {
        n.event(&now(later), Change::New, &flow(200 + i, 1), 0);
    }
    assert!(poll(&mut n, &now(later), true) > 0, "at most BATCH_DELAY");
}

#[test]
fn an_overrun_resync_repairs_the_peer_in_every_mode() {
    for mode in MODES {
        let mut s = Sim::new(mode, |_| {});
        churn(&mut s.a.kernel, 0, 200);
        s.run(1500);
        assert_eq!(s.converged().0, s.converged().1, "{mode:?} before");
        // Overrun: changes whose events are lost.
        for i in 0..30 {
            if i % 7 != 0 {
                s.a.kernel.expire(&flow(i, 0));
            }
        }
        for i in 200..240 {
            s.a.kernel.upsert(flow(i, 3));
        }
        for i in 100..120 {
            if i % 7 != 0 {
                s.a.kernel.upsert(flow(i, 4));
            }
        }
        s.a.lose_events();
        // what the driver does on the resync timer
        let now = s.now();
        s.a.resync(&now, true);
        s.a.rep.send_bulk(false);
        s.run(3000);
        let (ext, kernel) = s.converged();
        assert_eq!(ext, kernel, "{mode:?}: repaired");
        assert!(
            !s.a.notes.contains(&Note::SendingBulk),
            "{mode:?}: an overrun's bulk update is not announced"
        );
    }
}

#[test]
fn a_bulk_update_goes_in_slices_while_events_go_on() {
    for mode in [SyncMode::Notrack, SyncMode::Ftfw] {
        let mut s = Sim::new(mode, |_| {});
        // The primary's table, never heard by the backup.
        for i in 0..3000 {
            s.a.kernel.upsert(flow(i, 1));
        }
        let now = s.now();
        s.a.deliver_events(&now);
        s.a.poll(&now);
        s.a.out.clear();
        s.a.rep.protocol(); // (the peer heard nothing)
                            // The backup starts and asks for a resync (-n / StartupResync).
        let t0 = s.t0;
        s.b = Node::new(Role::Sync, Some(sync_section(mode)), t0);
        s.b.rep.request_resync();
        s.a.budget = 2;
        s.a.per_poll.clear();
        for k in 0..200u32 {
            s.step();
            // events keep coming during the update
            if k % 10 == 0 {
                s.a.kernel.upsert(flow(5000 + k, 7));
                s.a.kernel.expire(&flow(k * 3, 0));
            }
        }
        s.run(3000);
        let (ext, kernel) = s.converged();
        assert_eq!(ext, kernel, "{mode:?}");
        assert!(s.a.notes.contains(&Note::ResyncRequested), "{mode:?}");
        assert!(s.a.notes.contains(&Note::SendingBulk), "{mode:?}");
        // 3000 flows do not fit in one slice: the update took many polls,
        // none of which sent more than its budget and the datagram being
        // filled (and the event datagrams of the moment)
        let busy = s.a.per_poll.iter().filter(|&&n| n > 0).count();
        assert!(busy > 20, "{mode:?}: {busy} polls sent");
        let most = s.a.per_poll.iter().max().copied().unwrap_or(0);
        assert!(most <= 2 + 2, "{mode:?}: a poll sent {most} datagrams");
    }
}

#[test]
fn a_restarted_backup_gets_everything_back() {
    for mode in [SyncMode::Notrack, SyncMode::Ftfw] {
        let mut s = Sim::new(mode, |_| {});
        churn(&mut s.a.kernel, 0, 400);
        s.run(1500);
        let t0 = s.t0;
        s.b = Node::new(Role::Sync, Some(sync_section(mode)), t0);
        assert!(s.b.rep.external().is_empty());
        s.b.rep.request_resync();
        s.run(3000);
        let (ext, kernel) = s.converged();
        assert_eq!(ext, kernel, "{mode:?}");
    }
}

#[test]
fn a_restarted_primary_sends_its_table_on_request() {
    let mut s = Sim::new(SyncMode::Ftfw, |_| {});
    churn(&mut s.a.kernel, 0, 300);
    s.run(1500);
    // The primary restarts (same kernel table) with changes meanwhile.
    let kernel = std::mem::take(&mut s.a.kernel);
    s.a = Node::new(Role::Sync, Some(sync_section(SyncMode::Ftfw)), s.t0);
    s.a.kernel = kernel;
    for i in 300..350 {
        s.a.kernel.upsert(flow(i, 5));
    }
    s.a.lose_events();
    let now = s.now();
    s.a.resync(&now, false);
    s.run(1500);
    // -B on the new primary
    s.a.rep.send_bulk(true);
    s.run(3000);
    let (ext, kernel) = s.converged();
    assert_eq!(ext, kernel);
}

/// An entry a NAT helper mangled (status SEQ_ADJUST) is read back from
/// the kernel for its sequence adjustment, which no event carries, and
/// reaches the peer with it; other entries are not read back.
#[test]
fn nat_sequence_adjustment_is_read_back_and_replicated() {
    use ct_core::flow::SeqAdj;
    for mode in MODES {
        let mut s = Sim::new(mode, |_| {});
        let adj = |pos, after| {
            Some(SeqAdj {
                correction_pos: Some(pos),
                offset_before: Some(0),
                offset_after: Some(after),
            })
        };
        let mut f = flow(1, 1);
        f.status = Some(IPS_CONFIRMED | IPS_SEEN_REPLY | ct_core::proto::status::SEQ_ADJUST);
        f.seq_adj_orig = adj(1000, 2);
        f.seq_adj_reply = adj(0, 0);
        s.a.kernel.upsert(f);
        s.a.kernel.upsert(flow(2, 1));
        s.run(1500);
        let mut got = None;
        s.b.rep.external().for_each(|x, _, _| {
            if key(&x) == key(&f) {
                got = Some((x.seq_adj_orig, x.seq_adj_reply));
            }
        });
        assert_eq!(got, Some((adj(1000, 2), adj(0, 0))), "{mode:?}");
        assert_eq!(s.a.rep.counters().seq_adj_reads, 1, "{mode:?}");
    }
}

#[test]
fn our_commits_are_cached_but_not_sent_back() {
    for mode in [SyncMode::Notrack, SyncMode::Ftfw] {
        let mut s = Sim::new(mode, |_| {});
        s.a.rep.own.commit = [77, 0, 0, 0];
        let now = s.now();
        // what the commit wrote: the external cache (flows 0..20)
        for i in 0..20 {
            s.a.rep.external_mut().replace(&flow(i, 1), now.secs, 0);
        }
        for i in 0..20 {
            s.a.event(&now, Change::New, &flow(i, 1), 77);
        }
        s.run(1500);
        assert_eq!(s.a.rep.internal().len(), 20, "{mode:?}: cached");
        assert!(s.b.rep.external().is_empty(), "{mode:?}: not sent");
        // A commit that finds an entry deletes it and creates it again
        // (EEXIST), and says so: that DESTROY leaves the entry cached,
        // where the quiet commit's mirror put it, and sends nothing, even
        // once the external cache is gone (`-f` after the commit)
        s.a.rep.own.recreated = (0..20)
            .map(|i| {
                let f = flow(i, 1);
                ct_transport::replicator::recreated_key(f.orig.unwrap(), f.zone)
            })
            .collect();
        s.a.rep.flush_external();
        let now = s.now();
        for i in 0..20 {
            s.a.event(&now, Change::Destroy, &flow(i, 1), 77);
        }
        s.run(1500);
        assert_eq!(s.a.rep.internal().len(), 20, "{mode:?}: still cached");
        assert!(s.b.rep.external().is_empty(), "{mode:?}: nothing sent");
        assert!(
            s.a.rep.own.recreated.is_empty(),
            "{mode:?}: each taken once"
        );
        // The commit's delete hit another entry, one it did not write
        // (flow 50: its reply tuple was a committed original): it goes,
        // as any deletion, and is not sent either
        let now = s.now();
        for (c, pid) in [(Change::New, 0), (Change::Destroy, 77)] {
            s.a.event(&now, c, &flow(50, 1), pid);
        }
        s.run(1500);
        assert_eq!(s.a.rep.internal().len(), 20, "{mode:?}: flow 50 gone");
        // their end (the kernel's: no port id) takes them out, and leaves
        // no DEAD object behind once the peer has it
        let now = s.now();
        for i in 0..20 {
            s.a.event(&now, Change::Destroy, &flow(i, 1), 0);
        }
        s.run(3000);
        assert!(s.a.rep.internal().is_empty(), "{mode:?}");
    }
}

#[test]
fn flushes_then_a_bulk_update_leave_consistent_caches() {
    // Marks name their flow (i * 16 + wave): a state that reached the
    // wrong key would show.
    let mark = |i: u32, wave: u32| i * 16 + wave;
    let mut s = Sim::new(SyncMode::Ftfw, |_| {});
    for i in 0..200 {
        s.a.kernel.upsert(flow(i, mark(i, 1)));
    }
    s.run(1500);
    // Updates queued (events handled, nothing sent yet), then `-f
    // internal`: the queued references point at freed slots, which new
    // flows then take.
    for i in 0..200 {
        s.a.kernel.upsert(flow(i, mark(i, 2)));
    }
    let now = s.now();
    s.a.deliver_events(&now);
    s.a.rep.flush_internal();
    for i in 1000..1050 {
        s.a.kernel.upsert(flow(i, mark(i, 3)));
    }
    s.run(1500);
    for (k, m) in cache_view(s.b.rep.external()) {
        let f = s.a.kernel_flow(&k).expect("a flow of the primary");
        assert_eq!(
            m.map(|m| m / 16),
            f.mark.map(|m| m / 16),
            "{k}: another flow's state"
        );
    }
    assert_eq!(s.b.rep.external().len(), 250);
    // `-f external` on the backup, a resync and `-B` on the primary:
    // equal again.
    s.b.rep.flush_external();
    assert!(s.b.rep.external().is_empty());
    let now = s.now();
    s.a.resync(&now, true);
    s.a.rep.send_bulk(true);
    s.run(3000);
    let (ext, kernel) = s.converged();
    assert_eq!(ext, kernel);
}

#[test]
fn a_commit_creates_the_external_cache_masters_first() {
    let mut s = Sim::new(SyncMode::Ftfw, |_| {});
    for i in 0..100 {
        s.a.kernel.upsert(flow(i, 1));
    }
    // related entries (an FTP data connection has its control one as
    // master)
    for i in 100..110 {
        let mut f = flow(i, 1);
        f.master = flow(i - 100, 1).orig;
        s.a.kernel.upsert(f);
    }
    s.run(1500);
    assert_eq!(s.b.rep.external().len(), 110);
    // The backup's kernel already holds one of them (EEXIST: replaced).
    s.b.kernel.upsert(flow(5, 99));
    s.b.kernel.events.clear();
    let now = s.now();
    let (ok, failed) = s.b.rep.commit_into(&now, &mut s.b.kernel);
    assert_eq!((ok, failed), (110, 0));
    let created: Vec<Flow> =
        s.b.kernel
            .events
            .iter()
            .filter(|(c, _)| *c == Change::New)
            .map(|(_, f)| *f)
            .collect();
    assert_eq!(created.len(), 110);
    let first_related = created.iter().position(|f| f.master.is_some()).unwrap();
    assert!(
        created[..first_related].len() == 100
            && created[first_related..].iter().all(|f| f.master.is_some()),
        "masters first"
    );
    assert_eq!(kernel_view(&mut s.b.kernel), kernel_view(&mut s.a.kernel));
    // committed as 1.4.7 does: EXPECTED cleared, timeout kept
    assert!(created.iter().all(|f| f.status.unwrap() & (1 << 0) == 0));
    // A commit without listening to its NEW events (the daemon's quiet
    // commit: the kernel builds none): what it wrote goes into the
    // internal cache, and is not sent to the peer.
    s.b.kernel.events.clear();
    assert!(s.b.rep.internal().is_empty());
    s.b.rep.mirror_committed(&now);
    assert_eq!(s.b.rep.internal().len(), 110);
    assert_eq!(
        cache_view(s.b.rep.internal()),
        cache_view(s.b.rep.external())
    );
    // A second commit finds every entry (EEXIST: deleted, created again):
    // its mirror counts what 1.4.7's NEW events count, a destroy and a
    // create per cached object, no update.
    s.b.rep.mirror_committed(&now);
    let st = s.b.rep.internal().stats();
    assert_eq!(
        (st.created, st.destroyed, st.updated),
        (220, 110, 0),
        "{st:?}"
    );
    s.run(1500);
    assert!(s.a.rep.external().is_empty(), "not sent back");
}

#[test]
fn disable_external_cache_injects_into_the_kernel() {
    let mut s = Sim::new(SyncMode::Notrack, |x| x.disable_external_cache = true);
    churn(&mut s.a.kernel, 0, 100);
    s.run(1500);
    assert!(s.b.rep.external().is_empty(), "no external cache");
    assert_eq!(
        kernel_view(&mut s.b.kernel),
        kernel_view(&mut s.a.kernel),
        "the backup's kernel holds the primary's table"
    );
}

#[test]
fn disable_internal_cache_sends_events_and_bulks_the_kernel_table() {
    let mut s = Sim::new(SyncMode::Notrack, |x| x.disable_internal_cache = true);
    churn(&mut s.a.kernel, 0, 100);
    s.run(1500);
    assert!(s.a.rep.internal().is_empty(), "no internal cache");
    let b = s.a.rep.bypass().copied().unwrap();
    assert_eq!((b.new, b.destroyed), (100, 100usize.div_ceil(7) as u64));
    assert_eq!(s.converged().0, s.converged().1);
    // -B: the kernel's table, dumped
    s.b.rep.flush_external();
    s.a.rep.send_bulk(true);
    s.run(1500);
    let (ext, kernel) = s.converged();
    assert_eq!(ext, kernel);
    assert!(
        !s.a.notes.contains(&Note::SendingBulk),
        "1.4.7 says nothing when it sends the kernel's table"
    );
}

#[test]
fn stats_mode_logs_ended_flows() {
    let t0 = Instant::now();
    let mut n = Node::new(Role::Stats, None, t0);
    let now = Now {
        at: t0,
        secs: 0,
        unix: 1_700_000_000,
    };
    for i in 0..10 {
        n.kernel.upsert(flow(i, 1));
    }
    n.deliver_events(&now);
    for i in 0..4 {
        n.kernel.expire(&flow(i, 0));
    }
    n.deliver_events(&now);
    assert_eq!(n.ended.len(), 4);
    assert!(n.ended.iter().all(|f| f.timeout.is_none()));
    assert_eq!(n.rep.internal().len(), 6);
    // flows gone while events were lost: found by the resync's sweep
    for i in 4..6 {
        n.kernel.expire(&flow(i, 0));
    }
    n.lose_events();
    n.resync(&now, true);
    assert_eq!(n.ended.len(), 6);
    assert_eq!(n.rep.internal().len(), 4);
    assert!(n.out.is_empty(), "stats mode sends nothing");
    assert_eq!(n.rep.counters().events_received, 14);
}

#[test]
fn garbage_events_are_counted_not_applied() {
    let t0 = Instant::now();
    let mut n = Node::new(Role::Sync, Some(sync_section(SyncMode::Notrack)), t0);
    let now = Now {
        at: t0,
        secs: 0,
        unix: 1_700_000_000,
    };
    let good = event_bytes(Change::New, &flow(1, 1), 0);
    for cut in 0..good.len() {
        let (rep, mut io) = n.parts();
        rep.on_kernel_events(&now, &good[..cut], &mut io);
    }
    let mut bad = good.clone();
    bad[16] = 0xff; // nfgen family
    bad[20..].fill(0xff);
    let (rep, mut io) = n.parts();
    rep.on_kernel_events(&now, &bad, &mut io);
    assert!(n.rep.counters().catch_failed > 0);
    assert!(n.rep.internal().len() <= 1);
}

/// A lane whose share changed (the lanes follow a peer with fewer lanes)
/// may still find events of its old share queued in its socket: with
/// `set_share` it keeps only its new share, in every mode.
#[test]
fn a_lane_keeps_only_its_share_of_the_events() {
    for mode in MODES {
        let t0 = Instant::now();
        let mut a = Node::new(Role::Sync, Some(sync_section(mode)), t0);
        a.rep.set_share(1, 2);
        for i in 0..200 {
            a.kernel.upsert(flow(i, 1));
        }
        let now = Now {
            at: t0,
            secs: 0,
            unix: 1_700_000_000,
        };
        a.deliver_events(&now);
        let mine = (0..200)
            .filter(|&i| lane_of(flow(i, 1).orig.as_ref(), 2) == 1)
            .count();
        assert!(mine > 50 && mine < 150, "{mine}");
        assert_eq!(a.rep.internal().len(), mine, "{mode:?}");
        let mut all = true;
        a.rep.internal().for_each(|f, _, _| {
            all &= lane_of(f.orig.as_ref(), 2) == 1;
        });
        assert!(all, "{mode:?}: only lane 1's flows");
        // the events it drops were not its own: not counted as received
        assert_eq!(a.rep.counters().events_received, mine as u64, "{mode:?}");
    }
}

/// The lanes change their count (they follow a peer): a lane whose resync
/// finds flows of its cache in another lane's share hands them over with
/// a withdrawal (ours: a DEL flagged so), at once, though no bulk update
/// is asked for (the lane only gives flows away). The peer's lane drops
/// what this channel gave it (its external cache keeps this lane's
/// share) but, with DisableExternalCache, leaves the flows in its kernel
/// (the lane that owns them now sends them on its own channel, maybe
/// before: a DEL would delete live flows). Flows gone from the kernel
/// still go as DEL.
#[test]
fn a_lane_hands_flows_over_with_withdrawals() {
    for mode in [SyncMode::Notrack, SyncMode::Ftfw] {
        for inject in [false, true] {
            let what = format!("{mode:?}, DisableExternalCache {inject}");
            let mut s = Sim::new(mode, |x| x.disable_external_cache = inject);
            for i in 0..200 {
                s.a.kernel.upsert(flow(i, 1));
            }
            s.run(1500);
            let backup = |s: &mut Sim| match inject {
                true => kernel_view(&mut s.b.kernel),
                false => cache_view(s.b.rep.external()),
            };
            assert_eq!(
                backup(&mut s),
                kernel_view(&mut s.a.kernel),
                "{what}: before"
            );
            // Lane 0 of 2 from now on; some flows ended unseen meanwhile.
            s.a.rep.set_share(0, 2);
            s.a.share = Some((0, 2));
            for i in (0..200).step_by(9) {
                s.a.kernel.expire(&flow(i, 1));
            }
            s.a.lose_events();
            let now = s.now();
            s.a.resync(&now, true);
            let live = kernel_view(&mut s.a.kernel);
            for ms in 0..2000 {
                s.step();
                if inject {
                    let k = kernel_view(&mut s.b.kernel);
                    let missing = live.keys().filter(|f| !k.contains_key(*f)).count();
                    assert_eq!(missing, 0, "{what}: live flows deleted at {ms} ms");
                }
            }
            let share: View = (0..200)
                .map(|i| flow(i, 1))
                .filter(|f| lane_of(f.orig.as_ref(), 2) == 0)
                .map(|f| (key(&f), f.mark))
                .filter(|(k, _)| live.contains_key(k))
                .collect();
            assert!(share.len() > 50 && share.len() < 130, "{}", share.len());
            let want = if inject { &live } else { &share };
            assert_eq!(&backup(&mut s), want, "{what}: after");
            // (FT-FW: the DEAD objects leave once acknowledged)
            assert_eq!(
                cache_view(s.a.rep.internal()),
                share,
                "{what}: lane 0's share"
            );
        }
    }
}

impl Sim {
    /// ExpectationSync (with DisableExternalCache when `inject`): `n`
    /// flows on the primary, then an expectation of each
    /// ([`expect_of`]), both given time to reach the backup.
    fn with_expectations(mode: SyncMode, inject: bool, n: u32) -> Sim {
        let mut s = Sim::new(mode, |x| {
            x.disable_external_cache = inject;
            x.expectation_sync.enabled = true;
        });
        for i in 0..n {
            s.a.kernel.upsert(flow(i, 1));
        }
        s.run(500);
        let now = s.now();
        for i in 0..n {
            s.a.add_exp(&now, expect_of(i));
        }
        s.run(1500);
        s
    }
}

/// An FTP-style expectation of `flow(i, _)`: the server opens a data
/// connection back to the client.
fn expect_of(i: u32) -> Expect {
    let m = flow(i, 1).orig.unwrap();
    let tuple = Tuple {
        src: m.dst,
        dst: m.src,
        l4proto: Some(6),
        src_port: Some(20),
        dst_port: Some(30_000 + i as u16),
        ..Tuple::default()
    };
    let mask = Tuple {
        src: Some(IpAddr::V4(Ipv4Addr::BROADCAST)),
        dst: Some(IpAddr::V4(Ipv4Addr::BROADCAST)),
        l4proto: Some(6),
        src_port: Some(0),
        dst_port: Some(0xffff),
        ..Tuple::default()
    };
    Expect {
        family: AF_INET,
        master: Some(m),
        tuple: Some(tuple),
        mask: Some(mask),
        timeout: Some(300),
        flags: Some(0),
        helper: Some(ct_core::flow::ShortStr::from_c_bytes(b"ftp")),
        ..Expect::default()
    }
}

/// What an expectation of [`expect_of`] is compared on: its master's
/// source and its expected port.
fn exp_id(e: &Expect) -> String {
    let (m, t) = (e.master.unwrap_or_default(), e.tuple.unwrap_or_default());
    format!("{:?}>{:?}", m.src, t.dst_port)
}

/// The live entries of an expectation cache.
fn exp_keys(c: &ct_core::table::ExpCache) -> std::collections::BTreeSet<String> {
    let mut v = std::collections::BTreeSet::new();
    c.for_each(|_, e| {
        if e.state != ObjState::Dead {
            v.insert(exp_id(&e.exp));
        }
    });
    v
}

/// ExpectationSync: a lane that hands flows over hands their
/// expectations over with them, as withdrawals: the peer drops them from
/// what this channel gave it (its lane's external expectation cache),
/// and with DisableExternalCache leaves them in its kernel. Before, the
/// lane dropped them silently, and the peer's lane kept them for good.
#[test]
fn a_lane_hands_expectations_over_with_their_masters() {
    for mode in [SyncMode::Notrack, SyncMode::Ftfw] {
        for inject in [false, true] {
            let what = format!("{mode:?}, DisableExternalCache {inject}");
            let mut s = Sim::with_expectations(mode, inject, 60);
            let all: std::collections::BTreeSet<String> =
                (0..60).map(|i| exp_id(&expect_of(i))).collect();
            let backup = |s: &Sim| match inject {
                true => s.b.exps.iter().map(exp_id).collect(),
                false => exp_keys(&s.b.rep.exp().unwrap().external),
            };
            assert_eq!(backup(&s), all, "{what}: before");
            // Lane 0 of 2 from now on.
            s.a.rep.set_share(0, 2);
            s.a.share = Some((0, 2));
            let now = s.now();
            s.a.resync(&now, true);
            let ops = s.b.exp_ops.len();
            s.run(2000);
            let share: std::collections::BTreeSet<String> = (0..60)
                .map(expect_of)
                .filter(|e| lane_of(e.master.as_ref(), 2) == 0)
                .map(|e| exp_id(&e))
                .collect();
            assert!(share.len() > 15 && share.len() < 45, "{}", share.len());
            let want = if inject { &all } else { &share };
            assert_eq!(&backup(&s), want, "{what}: after");
            if inject {
                let dels = s.b.exp_ops[ops..]
                    .iter()
                    .filter(|(op, _)| op.removes())
                    .count();
                assert_eq!(dels, 0, "{what}: no expectation deleted");
            }
            // (FT-FW: the DEAD ones leave once acknowledged)
            assert_eq!(
                exp_keys(&s.a.rep.exp().unwrap().internal),
                share,
                "{what}: lane 0's share"
            );
        }
    }
}

/// FT-FW: `-f internal` right after a handover flushes the conntracks
/// only; the expectations handed over still go as withdrawals, never as
/// DELs an injecting peer would apply.
#[test]
fn a_flush_keeps_the_expectations_withdrawals() {
    let mut s = Sim::with_expectations(SyncMode::Ftfw, true, 40);
    assert_eq!(s.b.exps.len(), 40);
    s.a.rep.set_share(0, 2);
    s.a.share = Some((0, 2));
    let now = s.now();
    s.a.resync(&now, true);
    s.a.rep.flush_internal();
    let ops = s.b.exp_ops.len();
    s.run(2000);
    let dels = s.b.exp_ops[ops..]
        .iter()
        .filter(|(op, _)| op.removes())
        .count();
    assert_eq!(dels, 0, "no expectation deleted");
    assert_eq!(s.b.exps.len(), 40);
}

/// An expectation another lane injected (its handle's port id is one
/// of `Own::inject_lanes`) is not sent back; the kernel's own is.
#[test]
fn another_lanes_injected_expectation_is_not_sent_back() {
    for mode in [SyncMode::Notrack, SyncMode::Ftfw] {
        let mut s = Sim::new(mode, |x| x.expectation_sync.enabled = true);
        for i in 0..2 {
            s.a.kernel.upsert(flow(i, 1));
        }
        s.run(500);
        s.a.rep.own.inject_lanes = vec![4242];
        let now = s.now();
        s.a.exps.push(expect_of(0));
        s.a.exp_event_by(&now, &expect_of(0), false, 4242);
        s.a.exps.push(expect_of(1));
        s.a.exp_event_by(&now, &expect_of(1), false, 0);
        s.run(1500);
        let got = exp_keys(&s.b.rep.exp().unwrap().external);
        let want: std::collections::BTreeSet<String> = [exp_id(&expect_of(1))].into();
        assert_eq!(got, want, "{mode:?}");
    }
}

/// FT-FW: an expectation that ended (DEAD, its DEL queued, not sent yet)
/// is not swept by a resync that comes first: its DEL still reaches the
/// peer. (The sweep dropped it, and the peer kept it for good.)
#[test]
fn a_resync_keeps_the_pending_del_of_an_expectation() {
    let mut s = Sim::with_expectations(SyncMode::Ftfw, false, 10);
    assert_eq!(exp_keys(&s.b.rep.exp().unwrap().external).len(), 10);
    let now = s.now();
    s.a.remove_exp(&now, &expect_of(3));
    s.a.resync(&now, true);
    s.run(1500);
    let left = exp_keys(&s.b.rep.exp().unwrap().external);
    assert_eq!(left.len(), 9, "{left:?}");
    assert!(!left.contains(&exp_id(&expect_of(3))));
    assert_eq!(exp_keys(&s.a.rep.exp().unwrap().internal), left);
}

/// FT-FW: a flow that ended (DEAD, its DEL not sent yet) and is back in
/// the kernel, in another lane's share now (its new event went to that
/// lane), is withdrawn too when the lane hands its flows over: the DEL
/// would delete from the peer's kernel the state the other lane sends.
#[test]
fn a_pending_del_of_a_flow_alive_again_elsewhere_becomes_a_withdrawal() {
    let mut s = Sim::new(SyncMode::Ftfw, |x| x.disable_external_cache = true);
    for i in 0..50 {
        s.a.kernel.upsert(flow(i, 1));
    }
    s.run(1500);
    let x = (0..50)
        .map(|i| flow(i, 1))
        .find(|f| lane_of(f.orig.as_ref(), 2) == 1)
        .unwrap();
    assert!(s.b.kernel_flow(&key(&x)).is_some());
    // x ends (its DEL is queued, not sent), then comes again: its NEW goes
    // to the lane whose share it is now
    s.a.kernel.expire(&x);
    let now = s.now();
    s.a.deliver_events(&now);
    s.a.rep.set_share(0, 2);
    s.a.share = Some((0, 2));
    s.a.kernel.upsert(x);
    s.a.lose_events();
    s.a.resync(&now, true);
    s.run(2000);
    assert!(
        s.b.kernel_flow(&key(&x)).is_some(),
        "the backup's kernel lost a flow alive at the primary"
    );
}

/// A lane that takes flows over (the lanes follow a peer with fewer
/// lanes) sends them as updates: the peer has them, from the lane that
/// held them, and applies a NEW of a flow it has by deleting it and
/// creating it again when it injects into its kernel.
#[test]
fn a_lane_that_takes_flows_over_sends_them_as_updates() {
    use ct_transport::wire::{Data, Datagram};
    let bypass = |mode| {
        let mut s = sync_section(mode);
        s.disable_internal_cache = true;
        s
    };
    for sync in [
        sync_section(SyncMode::Notrack),
        sync_section(SyncMode::Ftfw),
        bypass(SyncMode::Notrack),
    ] {
        let mode = (sync.mode(), sync.disable_internal_cache);
        let t0 = Instant::now();
        let mut a = Node::new(Role::Sync, Some(sync), t0);
        a.rep.set_share(0, 2);
        a.share = Some((0, 2));
        for i in 0..200 {
            a.kernel.upsert(flow(i, 1));
        }
        let at = |ms: u64| Now {
            at: t0 + Duration::from_millis(ms),
            secs: (ms / 1000) as u32,
            unix: 1_700_000_000 + (ms / 1000) as u32,
        };
        a.resync(&at(0), true);
        // lane 0 of 1 now: it takes lane 1's flows over
        a.rep.set_share(0, 1);
        a.share = Some((0, 1));
        a.rep.take_over_next_resync();
        a.resync(&at(1), true);
        a.rep.send_bulk(false);
        for ms in 1..200 {
            a.poll(&at(ms));
        }
        let mut ops = BTreeMap::new();
        for d in &a.out {
            for m in Datagram::new(d).flatten() {
                if let Ok(Data::Ct(op, f)) = m.data() {
                    let taken = lane_of(f.orig.as_ref(), 2) == 1;
                    *ops.entry((taken, format!("{op:?}"))).or_insert(0) += 1;
                }
            }
        }
        let taken = (0..200)
            .filter(|&i| lane_of(flow(i, 1).orig.as_ref(), 2) == 1)
            .count();
        assert_eq!(
            ops.get(&(true, "Update".to_string())),
            Some(&taken),
            "{mode:?}: {ops:?}"
        );
        assert_eq!(
            ops.get(&(true, "New".to_string())),
            None,
            "{mode:?}: {ops:?}"
        );
    }
}
