//! The daemon's logic for one lane, without I/O: shaped like
//! quinn-proto's `Connection`, a state machine that takes kernel events
//! (the bytes of ctnetlink event datagrams), datagrams from the peer, the
//! 1-second tick and commands, each with the time ([`Now`]), and gives
//! what to do through [`Io`]: datagrams to send, kernel changes (inject),
//! dumps to read, lines to log. It owns the lane's internal cache (the
//! kernel's table as events and resyncs show it; the "stats" cache in
//! stats mode), external cache (the peer's states), expectation caches
//! and the sync protocol, behind one interface for NOTRACK, ALARM and
//! FT-FW ([`Protocol`]).
//!
//! What stays with the daemon's driver (`tools/src/daemon`): sockets and
//! the reactor, timers, channels and failover, control requests, logs,
//! snapshots and the netlink committers. Tests drive a replicator with a
//! simulated link and [`FakeTable`](ct_core::table::FakeTable) instead
//! (`transport/tests/replicator_sim.rs`).
//!
//! Batching (autocorking): a trickle of events goes out at the end of the
//! loop iteration that brought it (as 1.4.7 sends at the end of every
//! loop); under load ([`BUSY_EVENTS`] event datagrams in an iteration
//! and more already waiting), messages fill datagrams across iterations,
//! waiting at most [`BATCH_DELAY`].

mod bulk;
pub mod commit;
mod exp;
mod io;
mod protocol;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ct_core::config::{Filter, SyncSection};
use ct_core::ctl::stats::BypassStats;
use ct_core::flow::{Expect, Flow, Tuple};
use ct_core::netlink::ct::parse_flow_into;
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::*;
use ct_core::proto::status;
use ct_core::table::{Cache, Change, Mirror, ObjRef, ObjState};

use crate::proto::notrack::Apply;
use crate::wire::Op;

pub use bulk::Touched;
pub use commit::{commit_into, commit_object, commit_objects};
pub use exp::ExpCaches;
pub use io::{Io, Note};
pub use protocol::{LinkParams, Protocol};

/// A sync message waits at most this long for more to share its
/// datagram while events keep arriving; when a loop iteration brings no
/// event the datagram goes at once. Together with the reactor's wake-up
/// moderation (32 completions or 200 µs) this keeps datagrams full under
/// a burst and the latency under 1 ms at 20k changes/s (perf/RESULTS.md,
/// "Replication latency").
pub const BATCH_DELAY: Duration = Duration::from_micros(300);

/// An iteration with fewer event datagrams than this is a trickle: its
/// messages go at once. With more, they wait for the next ones only if
/// the driver already holds more work: a batch of changes that came all
/// at once goes as soon as it is handled. (It was 4: at 5k flows/s, about
/// 10k events a second, a wake-up now and then found 4 waiting and their
/// messages waited up to 300 µs more, 1 % of the flows: p99 430 µs
/// against 194 with 16, for the same CPU at 5k, 20k and 50k flows/s and
/// flat out; perf/RESULTS.md, session 15. A flat-out burst brings rounds
/// of 32, the reactor's moderation.)
pub const BUSY_EVENTS: u32 = 16;

/// The time, as each clock the replicator uses reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// For the protocol's timers and the batching delay.
    pub at: Instant,
    /// Seconds since the daemon started: the caches' update times.
    pub secs: u32,
    /// Unix seconds: the first sequence number of the sync protocols.
    pub unix: u32,
}

/// Which daemon this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Flow statistics: the internal ("stats") cache and the flow log.
    Stats,
    /// Replication: internal and external caches and a sync protocol.
    Sync,
    /// Neither (General and maybe Helper only): nothing is cached.
    Idle,
}

/// How a replicator is set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    /// `HashSize` and `HashLimit` of this lane's caches.
    pub buckets: usize,
    pub limit: usize,
    /// The `Filter { }` section, checked on events in user space unless
    /// the kernel applies it ([`Replicator::set_kernel_filtered`]).
    pub filter: Option<Filter>,
    /// The `Sync { }` section (sync role).
    pub sync: Option<SyncSection>,
}

/// Event counters (`-s runtime`'s, and traffic of destroyed flows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub events_received: u64,
    pub events_unknown: u64,
    pub events_filtered: u64,
    /// Messages that could not be parsed (and datagrams cut short).
    pub catch_failed: u64,
    /// Bytes and packets of the flows destroyed.
    pub traffic_bytes: u64,
    pub traffic_packets: u64,
    /// Entries read back from the kernel for their NAT sequence
    /// adjustment (events flagged SEQ_ADJUST do not carry it).
    pub seq_adj_reads: u64,
}

/// The key of [`Own::recreated`]: a flow's original tuple and its zone,
/// zone 0 as none (events carry no zone attribute for it).
pub fn recreated_key(orig: Tuple, zone: Option<u16>) -> (Tuple, Option<u16>) {
    (orig, zone.filter(|&z| z != 0))
}

/// Netlink port ids whose events are our own changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Own {
    /// DisableExternalCache's inject handle (0: none): its events are
    /// ignored.
    pub inject: u32,
    /// The other lanes' inject handles (conntracks' and expectations'): a
    /// lane that received the state of a flow of another lane's share
    /// (from a peer with fewer lanes) makes an event on that lane, which
    /// must not send it back (a DEL sent back would delete the peer's own
    /// entry).
    pub inject_lanes: Vec<u32>,
    /// The last commit's handles: their events update the internal cache
    /// but are not sent to the peer.
    pub commit: [u32; 4],
    /// The entries the last commit deleted and created again (EEXIST), by
    /// original tuple and zone: the DESTROY event of each (from a commit
    /// handle) is not an end, whenever it is handled (after a `-f` and a
    /// `-R` too), and is dropped, once.
    pub recreated: bulk::Touched,
    /// Expectation commits and injections: not sent back.
    pub exp: Vec<u32>,
}

/// What a received datagram did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// It held a state for an entry of the generation being reconciled
    /// (a warm restart's stale entries).
    pub confirmed: bool,
}

/// A resync could not read the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResyncError {
    #[error("can't get kernel conntrack table: errno {0}")]
    Dump(i32),
    #[error("expectation dump: {}", std::io::Error::from_raw_os_error(*.0))]
    DumpExp(i32),
}

/// Whether a flow with this original tuple (an expectation: its master's)
/// is outside the lane's share.
fn outside_share(share: Option<(u32, u32)>, orig: Option<&ct_core::flow::Tuple>) -> bool {
    share.is_some_and(|(i, n)| ct_core::netlink::lanes::lane_of(orig, n) != i)
}

/// The logic of one lane.
pub struct Replicator {
    role: Role,
    /// The caches' buckets (the lane's part of HashSize).
    buckets: u32,
    sync: SyncSection,
    filter: Option<Filter>,
    kernel_filtered: bool,
    /// The lane's share of the flows, checked in user space: `(index,
    /// count)` once the lanes changed how many sync, as events of the old
    /// share may still wait in the socket ([`Replicator::set_share`]).
    share: Option<(u32, u32)>,
    internal: Mirror,
    external: Cache,
    exp: Option<ExpCaches>,
    proto: Option<Protocol>,
    /// DisableExternalCache: received states go to the kernel.
    inject: bool,
    /// DisableInternalCache: events go to the peer as they come.
    bypass: Option<BypassStats>,
    touched: Touched,
    bulk: Option<bulk::Bulk>,
    /// A bulk update to start at the end of the iteration (announced?).
    bulk_pending: Option<bool>,
    /// NOTRACK/ALARM: entries a resync swept (DEL) or handed over to
    /// another lane (withdrawal), sent first by the next bulk update.
    swept: Vec<(Op, Flow)>,
    /// `swept` waits: it goes at the end of the iteration, alone if no
    /// bulk update is asked for.
    swept_pending: bool,
    /// FT-FW: the DEAD objects handed over to another lane, sent as
    /// withdrawals (until acknowledged, or their slot is another's).
    withdrawn: HashSet<ObjRef, ahash::RandomState>,
    /// The next resync is the one of a lane that takes flows over
    /// ([`Replicator::take_over_next_resync`]).
    taking_over: bool,
    resync_pending: bool,
    send_failed: bool,
    /// 1-second ticks seen (ALARM refresh slices).
    ticks: u64,
    /// Event datagrams since the last [`poll`](Replicator::poll).
    iter_events: u32,
    /// Since when sync messages wait unsent.
    unsent_since: Option<Instant>,
    pub own: Own,
    counters: Counters,
    /// Reused buffers.
    flow: Option<Box<Flow>>,
    released: Vec<ObjRef>,
    exp_seen: Vec<Expect>,
    gone: Vec<ObjRef>,
}

impl Replicator {
    /// A replicator without a link (stats mode, or until
    /// [`attach`](Self::attach)).
    pub fn new(cfg: Config) -> Replicator {
        let sync = cfg.sync.unwrap_or_default();
        let is_sync = cfg.role == Role::Sync;
        Replicator {
            role: cfg.role,
            filter: cfg.filter,
            kernel_filtered: false,
            share: None,
            buckets: cfg.buckets as u32,
            internal: Mirror::new(cfg.buckets, cfg.limit),
            external: Cache::new(if is_sync { cfg.buckets } else { 0 }, cfg.limit),
            exp: (is_sync && sync.expectation_sync.enabled)
                .then(|| ExpCaches::new(&sync.expectation_sync.helpers)),
            proto: None,
            inject: is_sync && sync.disable_external_cache,
            bypass: (is_sync && sync.disable_internal_cache).then(BypassStats::default),
            touched: Touched::default(),
            bulk: None,
            bulk_pending: None,
            swept: Vec::new(),
            swept_pending: false,
            withdrawn: HashSet::default(),
            taking_over: false,
            resync_pending: false,
            send_failed: false,
            ticks: 0,
            iter_events: 0,
            unsent_since: None,
            own: Own::default(),
            counters: Counters::default(),
            flow: Some(Box::default()),
            released: Vec::new(),
            exp_seen: Vec::new(),
            gone: Vec::new(),
            sync,
        }
    }

    /// The sync link is up: its protocol starts.
    pub fn attach(&mut self, link: LinkParams, now: Instant) {
        if self.role == Role::Sync {
            self.proto = Some(Protocol::new(&self.sync, link, now));
        }
    }

    /// The kernel applies the Filter to the events (BPF on the event
    /// socket): no check in user space.
    pub fn set_kernel_filtered(&mut self, yes: bool) {
        self.kernel_filtered = yes;
    }

    /// Events of flows outside lane `index` of `count` are dropped (the
    /// lanes changed their count: the kernel's program for the new share
    /// does not reach events already queued under the old one).
    pub fn set_share(&mut self, index: u32, count: u32) {
        self.share = Some((index, count));
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn internal(&self) -> &Cache {
        &self.internal.cache
    }
    pub fn external(&self) -> &Cache {
        &self.external
    }
    /// The external cache, for a warm restart's load and sweep.
    pub fn external_mut(&mut self) -> &mut Cache {
        &mut self.external
    }
    pub fn exp(&self) -> Option<&ExpCaches> {
        self.exp.as_ref()
    }
    pub fn protocol(&self) -> Option<&Protocol> {
        self.proto.as_ref()
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    /// DisableInternalCache's counters (`internal bypass:`).
    pub fn bypass(&self) -> Option<&BypassStats> {
        self.bypass.as_ref()
    }
    /// DisableExternalCache is on.
    pub fn injects(&self) -> bool {
        self.inject
    }
    /// A bulk update is being sent.
    pub fn bulk_running(&self) -> bool {
        self.bulk.is_some()
    }
    /// Since when messages wait unsent (batching).
    pub fn unsent_since(&self) -> Option<Instant> {
        self.unsent_since
    }

    // ------------------------------------------------------------ inputs

    /// One datagram from the ctnetlink event socket.
    pub fn on_kernel_events(&mut self, now: &Now, data: &[u8], io: &mut dyn Io) {
        self.iter_events += 1;
        // The scratch flow moves out by pointer (a `Flow` is large: a
        // `mem::take` would initialise one per call).
        let mut flow = self.flow.take().unwrap_or_default();
        for m in Messages::new(data) {
            let Ok(m) = m else {
                self.counters.catch_failed += 1;
                break;
            };
            if m.subsys() == NFNL_SUBSYS_CTNETLINK_EXP && self.exp.is_some() {
                self.on_exp_event(now, &m, io);
                continue;
            }
            if m.subsys() != NFNL_SUBSYS_CTNETLINK {
                self.counters.events_unknown += 1;
                continue;
            }
            let change = match m.msg() {
                IPCTNL_MSG_CT_NEW if m.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => Change::New,
                IPCTNL_MSG_CT_NEW => Change::Update,
                IPCTNL_MSG_CT_DELETE => Change::Destroy,
                _ => {
                    self.counters.events_unknown += 1;
                    continue;
                }
            };
            let Ok((g, attrs)) = m.nfgen() else {
                self.counters.catch_failed += 1;
                continue;
            };
            if parse_flow_into(&mut flow, g.family, attrs).is_err() {
                self.counters.catch_failed += 1;
                continue;
            }
            // (an event of another lane's share, queued before the lane's
            // new BPF program, is not this lane's: not counted either)
            if outside_share(self.share, flow.orig.as_ref()) {
                continue;
            }
            self.counters.events_received += 1;
            // Origin: changes made by our inject handle are ignored; those
            // of our commit update the internal cache but are not sent.
            if m.pid != 0 && (m.pid == self.own.inject || self.own.inject_lanes.contains(&m.pid)) {
                continue;
            }
            let own = m.pid != 0 && self.own.commit.contains(&m.pid);
            if !self.kernel_filtered
                && self
                    .filter
                    .as_ref()
                    .is_some_and(|flt| !ct_core::filter::accept(flt, &flow))
            {
                self.counters.events_filtered += 1;
                continue;
            }
            // A commit deletes an entry only to create it again (EEXIST):
            // the DESTROY of an entry it re-created must not take it out of
            // the internal cache (the quiet commit's mirror, or a `-R`,
            // has put it back, and the NEW that follows may not come). The
            // delete can also hit another entry (one whose reply tuple is
            // the committed original): that one goes, as any deletion.
            if own
                && change == Change::Destroy
                && self
                    .own
                    .recreated
                    .remove(&recreated_key(flow.orig.unwrap_or_default(), flow.zone))
            {
                continue;
            }
            // The kernel's events do not carry the NAT sequence
            // adjustment (nothing raises IPCT_SEQADJ): an entry a helper
            // mangled (SEQ_ADJUST) is read back for it, so that a
            // fail-over keeps it (the FTP data after a rewritten PORT).
            if !own
                && change != Change::Destroy
                && flow.status.unwrap_or(0) & status::SEQ_ADJUST != 0
                && flow.seq_adj_orig.is_none()
            {
                io.seq_adj(&mut flow);
                self.counters.seq_adj_reads += 1;
            }
            self.on_ct(now, change, &flow, own, io);
        }
        self.flow = Some(flow);
    }

    /// A conntrack event: into the internal cache and on to the peer.
    fn on_ct(&mut self, now: &Now, change: Change, flow: &Flow, own: bool, io: &mut dyn Io) {
        let op = match change {
            Change::New => Op::New,
            Change::Update => Op::Update,
            Change::Destroy => Op::Delete,
        };
        let mut send = |d: &[u8]| io.send(d);
        if let Some(b) = self.bypass.as_mut() {
            // DisableInternalCache: straight to the peer (not what our
            // own commit did)
            if own {
                return;
            }
            match op {
                Op::New => b.new += 1,
                Op::Update => b.updated += 1,
                Op::Delete | Op::Withdraw => b.destroyed += 1,
            }
            if self.bulk.is_some() {
                self.touched
                    .insert((flow.orig.unwrap_or_default(), flow.zone));
            }
            if let Some(p) = self.proto.as_mut() {
                p.local_ct(op, None, flow, now.unix, &mut send);
            }
            return;
        }
        let removed = match self.proto.as_mut().filter(|p| p.keeps_dead()) {
            Some(p) => {
                // FT-FW: a destroyed entry stays (DEAD) until the peer
                // acknowledged its deletion.
                let obj = self.internal.on_event_keep_dead(change, flow, now.secs);
                match obj {
                    Some(obj) if !own => p.local_ct(op, Some(obj), flow, now.unix, &mut send),
                    // Our own commit's entries are not sent: a DEAD one
                    // leaves at once.
                    Some(obj) if change == Change::Destroy => {
                        p.forget(obj);
                        self.internal.cache.remove_ref(obj);
                    }
                    _ => {}
                }
                change == Change::Destroy && obj.is_some()
            }
            None => {
                let removed = if self.role == Role::Stats {
                    self.internal.on_event_stats(change, flow, now.secs)
                } else {
                    self.internal.on_event(change, flow, now.secs)
                }
                .is_some();
                if let Some(p) = self.proto.as_mut().filter(|_| !own) {
                    if change != Change::Destroy || removed {
                        p.local_ct(op, None, flow, now.unix, &mut send);
                    }
                }
                removed
            }
        };
        if removed {
            for c in [flow.counters_orig, flow.counters_reply]
                .into_iter()
                .flatten()
            {
                self.counters.traffic_bytes += c.bytes.unwrap_or(0) as u32 as u64;
                self.counters.traffic_packets += c.packets.unwrap_or(0) as u32 as u64;
            }
            if self.role == Role::Stats {
                let mut f = *flow;
                f.timeout = None;
                io.flow_ended(&f);
            }
        }
    }

    /// An expectation event (ExpectationSync): into the internal
    /// expectation cache and on to the peer.
    fn on_exp_event(&mut self, now: &Now, m: &Message<'_>, io: &mut dyn Io) {
        let Some(x) = self.exp.as_mut() else { return };
        let Ok((g, attrs)) = m.nfgen() else {
            self.counters.catch_failed += 1;
            return;
        };
        let Ok(e) = parse_expect(g.family, attrs) else {
            self.counters.catch_failed += 1;
            return;
        };
        if outside_share(self.share, e.master.as_ref()) {
            return;
        }
        self.counters.events_received += 1;
        // Our own commit's and inject's expectations are not sent back.
        // (nor another lane's: it received the expectation of a master of
        // this lane's share, from a peer with fewer lanes)
        if m.pid != 0 && (self.own.exp.contains(&m.pid) || self.own.inject_lanes.contains(&m.pid)) {
            return;
        }
        let mut send = |d: &[u8]| io.send(d);
        if self.bypass.is_some() {
            // DisableInternalCache: straight to the peer
            let op = match m.msg() {
                IPCTNL_MSG_EXP_NEW => Op::New,
                IPCTNL_MSG_EXP_DELETE => Op::Delete,
                _ => {
                    self.counters.events_unknown += 1;
                    return;
                }
            };
            if x.helper_wanted(&e) {
                if let Some(p) = self.proto.as_mut() {
                    p.local_exp(op, None, &e, now.unix, &mut send);
                }
            }
            return;
        }
        let keeps_dead = self.proto.as_ref().is_some_and(Protocol::keeps_dead);
        let (op, obj) = match m.msg() {
            IPCTNL_MSG_EXP_NEW => {
                if !x.wanted(&e, &self.internal.cache) {
                    return;
                }
                match x.internal.upsert(&e, now.secs as u64) {
                    Some((r, true)) => (Op::New, Some(r)),
                    Some((r, false)) => (Op::Update, Some(r)),
                    None => return,
                }
            }
            IPCTNL_MSG_EXP_DELETE if keeps_dead => match x.internal.mark_dead(&e) {
                Some(r) => (Op::Delete, Some(r)),
                None => return,
            },
            IPCTNL_MSG_EXP_DELETE => match x.internal.remove(&e) {
                Some(_) => (Op::Delete, None),
                None => return,
            },
            _ => {
                self.counters.events_unknown += 1;
                return;
            }
        };
        if let Some(p) = self.proto.as_mut() {
            p.local_exp(op, obj, &e, now.unix, &mut send);
        }
    }

    /// A datagram from the peer (authenticated, non-empty). `stale`: the
    /// generation of a warm restart's entries being reconciled, if any.
    pub fn on_datagram(
        &mut self,
        now: &Now,
        data: &[u8],
        stale: Option<u8>,
        io: &mut dyn Io,
    ) -> Received {
        self.on_datagram_from(now, data, None, stale, io)
    }

    /// [`on_datagram`](Self::on_datagram) from the node at `from`: on a
    /// multicast channel FT-FW keeps track of each node of the group (its
    /// numbering, its acknowledgements); `None`: the link's only peer.
    pub fn on_datagram_from(
        &mut self,
        now: &Now,
        data: &[u8],
        from: Option<std::net::IpAddr>,
        stale: Option<u8>,
        io: &mut dyn Io,
    ) -> Received {
        let mut res = Received::default();
        let Some(p) = self.proto.as_mut() else {
            return res;
        };
        let (mut resync, mut need_bulk) = (false, false);
        let ext = &mut self.external;
        let inject = self.inject;
        let mut exps = self.exp.as_mut();
        p.on_datagram_from(from.map(|a| (a, now.at)), data, &mut |a| match a {
            // (a withdrawn flow is alive at the sender, and its state
            // comes, or came, on another lane's channel)
            Apply::Ct(Op::Withdraw, _) if inject => {}
            Apply::Ct(op, f) if inject => io.inject(op, f),
            Apply::Ct(op, f) => {
                res.confirmed |= stale.is_some() && ext.gen_of(f) == stale;
                match op {
                    Op::New => {
                        ext.replace(f, now.secs, 0);
                    }
                    Op::Update => {
                        ext.upsert(f, now.secs, 0);
                    }
                    Op::Delete | Op::Withdraw => {
                        ext.remove(f);
                    }
                }
            }
            // (as a withdrawn flow)
            Apply::Exp(Op::Withdraw, _) if inject => {}
            Apply::Exp(op, e) => {
                if let Some(x) = exps.as_deref_mut() {
                    if inject {
                        io.inject_exp(op, e);
                    } else {
                        x.apply_remote(op, e, now.secs as u64);
                    }
                }
            }
            Apply::Resync => resync = true,
            Apply::NeedBulk => need_bulk = true,
        });
        if inject {
            io.inject_flush();
        }
        if resync {
            io.note(Note::ResyncRequested);
            self.bulk_pending = Some(true);
        } else if need_bulk {
            io.note(Note::NeedBulk);
            self.bulk_pending = Some(true);
        }
        res
    }

    /// Datagrams could not be sent since the last tick: FT-FW sends the
    /// unacknowledged objects again on the next one.
    pub fn on_send_failed(&mut self) {
        self.send_failed = true;
    }

    /// The 1-second tick: NOTRACK's ALIVE, FT-FW's resend after failed
    /// sends, ALARM's refresh of one slice of the internal cache (every
    /// entry once per RefreshTime seconds) and expiry of external entries
    /// not updated for CacheTimeout seconds.
    pub fn on_tick(&mut self, now: &Now, io: &mut dyn Io) {
        let Some(p) = self.proto.as_mut() else { return };
        let mut send = |d: &[u8]| io.send(d);
        if std::mem::take(&mut self.send_failed) {
            p.resend_unacked();
        }
        p.on_tick(now.unix, &mut send);
        if !p.is_alarm() {
            return;
        }
        self.ticks = self.ticks.wrapping_add(1);
        let n = self.sync.refresh_time.max(1) as usize;
        let i = (self.ticks % n as u64) as usize;
        let op = |state| {
            if state == ObjState::New {
                Op::New
            } else {
                Op::Update
            }
        };
        let mut f = Flow::default();
        self.internal.cache.v4.for_each_slice(n, i, |e| {
            e.rec.to_flow_into(&mut f);
            p.local_ct(op(e.state), None, &f, now.unix, &mut send);
        });
        self.internal.cache.v6.for_each_slice(n, i, |e| {
            e.rec.to_flow_into(&mut f);
            p.local_ct(op(e.state), None, &f, now.unix, &mut send);
        });
        // Expectations are refreshed the same way.
        if let Some(x) = self.exp.as_ref() {
            x.internal.for_each(|r, e| {
                if e.state != ObjState::Dead && (r.pos() as usize) % n == i {
                    p.local_exp(op(e.state), None, &e.exp, now.unix, &mut send);
                }
            });
        }
        p.flush(&mut send);
        if now.secs > self.sync.cache_timeout {
            let cutoff = now.secs - self.sync.cache_timeout;
            self.external.v4.expire_before(cutoff);
            self.external.v6.expire_before(cutoff);
            if let Some(x) = self.exp.as_mut() {
                x.external.expire_before(cutoff as u64);
            }
        }
    }

    /// The end of a loop iteration: a requested resync goes out, a bulk
    /// update starts or goes on (one slice of at most `budget`
    /// datagrams), and what waits is sent unless the link is busy
    /// (`more_waiting`: the driver already holds more events) and it has
    /// not waited [`BATCH_DELAY`] yet.
    pub fn poll(&mut self, now: &Now, more_waiting: bool, budget: usize, io: &mut dyn Io) {
        let events = std::mem::take(&mut self.iter_events);
        if self.proto.is_none() {
            self.bulk_pending = None;
            self.resync_pending = false;
            self.swept_pending = false;
            return;
        }
        let mut force = false;
        if std::mem::take(&mut self.resync_pending) {
            if let Some(p) = self.proto.as_mut() {
                p.request_resync(now.unix, &mut |d| io.send(d));
            }
            force = true;
        }
        if let Some(announce) = self.bulk_pending.take() {
            if announce && self.bypass.is_none() {
                io.note(Note::SendingBulk);
            }
            self.start_bulk(true, io);
        } else if self.swept_pending {
            self.start_bulk(false, io);
        }
        let Some(p) = self.proto.as_mut() else { return };
        if let Some(b) = self.bulk.as_mut() {
            let done = b.step(
                bulk::Slice {
                    proto: p,
                    cache: &self.internal.cache,
                    exps: self.exp.as_ref().map(|x| &x.internal),
                    touched: &self.touched,
                    unix: now.unix,
                    budget,
                },
                &mut |d| io.send(d),
            );
            if done {
                self.bulk = None;
                self.touched.clear();
            }
            force = true;
        }
        p.on_timer(now.at);
        let busy = events >= BUSY_EVENTS && more_waiting;
        let waited = self
            .unsent_since
            .is_some_and(|t| now.at.saturating_duration_since(t) >= BATCH_DELAY);
        if p.pending() && (force || !busy || waited) {
            p.transmit(
                now.at,
                now.unix,
                budget,
                &mut self.internal.cache,
                self.exp.as_mut().map(|x| &mut x.internal),
                &mut self.withdrawn,
                &mut self.released,
                &mut |d| io.send(d),
            );
        }
        self.unsent_since = if p.pending() {
            self.unsent_since.or(Some(now.at))
        } else {
            None
        };
    }

    /// How long the driver may sleep before the next [`poll`](Self::poll)
    /// (at most `idle`).
    pub fn wait(&self, now: Instant, idle: Duration) -> Duration {
        if self.bulk.is_some()
            || self.bulk_pending.is_some()
            || self.resync_pending
            || self.swept_pending
        {
            return Duration::ZERO;
        }
        let mut w = match self.unsent_since {
            Some(t) => BATCH_DELAY.saturating_sub(now.saturating_duration_since(t)),
            None => idle,
        };
        if let Some(d) = self.proto.as_ref().and_then(Protocol::deadline) {
            w = w.min(d.saturating_duration_since(now));
        }
        w
    }

    // ---------------------------------------------------------- commands

    /// `-n` (and a warm restart's reconciliation): asks the peer for a
    /// bulk update, at the end of the iteration.
    pub fn request_resync(&mut self) {
        if self.proto.is_some() {
            self.resync_pending = true;
        }
    }

    /// `-B`, or after an overrun resync (`announce` false): sends the
    /// internal cache (with DisableInternalCache, the kernel's table) to
    /// the peer, from the end of the iteration on.
    pub fn send_bulk(&mut self, announce: bool) {
        if self.proto.is_some() {
            let a = self.bulk_pending.unwrap_or(false) || announce;
            self.bulk_pending = Some(a);
        }
    }

    /// Starts a bulk update: `full`, or only what a resync swept or
    /// handed over.
    fn start_bulk(&mut self, full: bool, io: &mut dyn Io) {
        self.swept_pending = false;
        let mut queued: Vec<(Op, Flow)> = std::mem::take(&mut self.swept);
        if self.bypass.is_some() && full {
            // No internal cache: the kernel's table is the state to send.
            // Events that go out while it is sent in slices make their
            // flow's dumped state stale: those entries are skipped. (A
            // lane that takes flows over sends them as updates, as
            // `take_over_next_resync` says.)
            self.touched.clear();
            let op = match std::mem::take(&mut self.taking_over) {
                true => Op::Update,
                false => Op::New,
            };
            let r = io.dump(&mut |f, mine| {
                if mine {
                    queued.push((op, *f))
                }
            });
            if let Err(e) = r {
                io.note(Note::DumpFailed(e));
            }
        }
        self.bulk = Some(bulk::Bulk::new(queued, self.bulk.take(), full));
    }

    /// Reads the kernel table into the internal cache (start-up, `-R`,
    /// overrun resync, polling). With `sweep`, entries the dump did not
    /// see go: as DEL to the peer (FT-FW at once; NOTRACK and ALARM at the
    /// end of the iteration, first in a bulk update if one is asked for),
    /// to the flow log in stats mode. A cached flow the dump shows in
    /// another lane's share (the lanes changed their count) is handed
    /// over: it leaves the cache and goes to the peer as a withdrawal
    /// ([`Op::Withdraw`]), so that the peer's lane drops what this
    /// channel gave it without deleting the flow from its kernel (with
    /// DisableExternalCache), where the state the lane that owns the flow
    /// now sends may already be (a DEL arriving after it would delete a
    /// live flow).
    pub fn resync(&mut self, now: &Now, sweep: bool, io: &mut dyn Io) -> Result<(), ResyncError> {
        if self.bypass.is_some() || self.role == Role::Idle {
            // no internal cache to fill; after an overrun the driver
            // sends a bulk update (a kernel dump) instead
            return Ok(());
        }
        let internal = &mut self.internal;
        let keeps_dead = self.proto.as_ref().is_some_and(Protocol::keeps_dead);
        let (handed, swept) = (&mut self.gone, &mut self.swept);
        let taking_over = std::mem::take(&mut self.taking_over);
        handed.clear();
        internal.begin_resync();
        let r = io.dump(&mut |f, mine| {
            if mine && taking_over {
                internal.resync_entry_taken(f, now.secs)
            } else if mine {
                internal.resync_entry(f, now.secs)
            } else if keeps_dead {
                // FT-FW: DEAD until the peer has the withdrawal (one still
                // DEAD with its DEL queued: the tuple is alive again, in
                // the other lane's share, whose state the DEL must not
                // delete)
                let c = &mut internal.cache;
                if let Some(r) = c.obj_ref(f) {
                    if c.state_of(r) == Some(ObjState::Dead) || c.set_dead(r) {
                        handed.push(r)
                    }
                }
            } else if let Some(g) = internal.cache.remove(f) {
                swept.push((Op::Withdraw, g))
            }
        });
        match self.proto.as_mut() {
            Some(p) if keeps_dead => {
                let cache = &self.internal.cache;
                let exps = self.exp.as_ref().map(|x| &x.internal);
                self.withdrawn.retain(|&w| match w.is_exp() {
                    true => exps
                        .and_then(|x| x.get(w))
                        .is_some_and(|e| e.state == ObjState::Dead),
                    false => cache.state_of(w) == Some(ObjState::Dead),
                });
                for &obj in &self.gone {
                    self.withdrawn.insert(obj);
                    p.local_ref(obj);
                }
            }
            Some(_) => self.swept_pending |= !self.swept.is_empty(),
            // (stats mode: the other lane logs the flow when it ends)
            None => self.swept.clear(),
        }
        if let Err(e) = r {
            // (the resync that follows takes the flows over again)
            self.taking_over = taking_over;
            return Err(ResyncError::Dump(e));
        }
        if sweep {
            match self.proto.as_mut().filter(|p| p.keeps_dead()) {
                Some(p) => {
                    for obj in self.internal.end_resync_keep_dead() {
                        p.local_ref(obj);
                    }
                }
                None => {
                    let gone = match self.role {
                        // (logged in 1.4.7's order)
                        Role::Stats => self.internal.end_resync_in_c_order(self.buckets),
                        _ => self.internal.end_resync(),
                    };
                    if self.role == Role::Stats {
                        for mut f in gone {
                            f.timeout = None;
                            io.flow_ended(&f);
                        }
                    } else if self.proto.is_some() {
                        self.swept_pending |= !gone.is_empty();
                        self.swept.extend(gone.into_iter().map(|f| (Op::Delete, f)));
                    }
                }
            }
        }
        self.resync_exp(now, sweep, io)
    }

    /// ExpectationSync: the kernel's expectations into the internal
    /// expectation cache (after the conntracks, their masters).
    pub fn resync_exp(
        &mut self,
        now: &Now,
        sweep: bool,
        io: &mut dyn Io,
    ) -> Result<(), ResyncError> {
        let Some(x) = self.exp.as_mut() else {
            return Ok(());
        };
        let mut seen = std::mem::take(&mut self.exp_seen);
        seen.clear();
        let r = io.dump_exp(&mut |e| seen.push(*e));
        if let Err(e) = r {
            self.exp_seen = seen;
            return Err(ResyncError::DumpExp(e));
        }
        // Expectations whose masters are another lane's share now are
        // handed over with them: withdrawn, as `resync` says of flows
        // (one whose DEL is pending stays a DEL: it ended).
        if self.share.is_some() {
            let share = self.share;
            let mut handed = Vec::new();
            x.internal.for_each(|_, e| {
                if e.state != ObjState::Dead && outside_share(share, e.exp.master.as_ref()) {
                    handed.push(e.exp)
                }
            });
            let keeps_dead = self.proto.as_ref().is_some_and(Protocol::keeps_dead);
            let mut send = |d: &[u8]| io.send(d);
            for e in &handed {
                match self.proto.as_mut() {
                    Some(p) if keeps_dead => {
                        if let Some(r) = x.internal.mark_dead(e) {
                            self.withdrawn.insert(r);
                            p.local_ref(r);
                        }
                    }
                    Some(p) => {
                        if x.internal.remove(e).is_some() {
                            p.local_exp(Op::Withdraw, None, e, now.unix, &mut send);
                        }
                    }
                    None => {
                        x.internal.remove(e);
                    }
                }
            }
            if let Some(p) = self.proto.as_mut().filter(|_| !handed.is_empty()) {
                p.flush(&mut send);
            }
        }
        self.gone.clear();
        x.resync(
            &seen,
            &self.internal.cache,
            now.secs as u64,
            sweep,
            &mut self.gone,
        );
        if let Some(p) = self.proto.as_mut() {
            for &r in &self.gone {
                p.forget(r);
            }
        }
        self.exp_seen = seen;
        Ok(())
    }

    /// The lanes changed their count and this one takes flows over: the
    /// next resync caches the flows it did not hold ALIVE, so that its
    /// bulk update sends them as updates (the peer mostly has them, from
    /// the lane that held them, and a NEW would make a peer that injects
    /// into its kernel delete each and create it again; a peer that lacks
    /// one, as a peer with fewer lanes the other lanes' flows, creates it
    /// from the update as well). With DisableInternalCache: the next bulk
    /// update's kernel dump.
    pub fn take_over_next_resync(&mut self) {
        self.taking_over = true;
    }

    /// A new `HashLimit` for both caches (see [`Cache::set_limit`]).
    pub fn set_limit(&mut self, limit: usize) {
        self.internal.cache.set_limit(limit);
        self.external.set_limit(limit);
    }

    /// `-f internal` (and a scheduled purge): empties the internal cache.
    pub fn flush_internal(&mut self) {
        self.internal.cache.clear();
        // (the expectations' withdrawals stay: their cache is not flushed)
        self.withdrawn.retain(|w| w.is_exp());
    }

    /// `-f external`.
    pub fn flush_external(&mut self) {
        self.external.clear();
    }

    /// `-f` with expectations: empties both expectation caches.
    pub fn flush_exp(&mut self) {
        if let Some(x) = self.exp.as_mut() {
            x.internal.clear();
            x.external.clear();
        }
    }

    /// What a commit of the external cache wrote into the kernel, into
    /// the internal cache, without sending it: the commit's own NEW
    /// events would have put it there (1.4.7's do), and a daemon that
    /// commits without listening to them (tools' quiet_commit.rs) gets no
    /// such events. Entries the kernel refused are swept by the next
    /// resync.
    pub fn mirror_committed(&mut self, now: &Now) {
        if self.bypass.is_some() || self.role != Role::Sync {
            return;
        }
        // (one pass: unlike the kernel, the cache needs no masters first)
        let internal = &mut self.internal;
        commit_objects(
            &self.external,
            &self.sync,
            now.secs,
            None,
            (0, 1),
            // as the commit's NEW events would (a cached object is
            // replaced, counted as 1.4.7 counts it: destroyed and created)
            &mut |f| {
                internal.on_event(Change::New, &f, now.secs);
            },
        );
    }

    /// Commits the external cache into `table`, masters first (the
    /// daemon's committers do the same over several sockets with
    /// [`commit_objects`]): `(created, failed)`.
    pub fn commit_into(
        &self,
        now: &Now,
        table: &mut dyn ct_core::table::KernelTable,
    ) -> (u64, u64) {
        commit_into(&self.external, &self.sync, now.secs, table)
    }
}
