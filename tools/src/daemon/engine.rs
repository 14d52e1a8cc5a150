//! The daemon's main loop and state: one thread owns the caches, the
//! netlink event socket (on the `ring` reactor) and the counters; it
//! takes kernel events (NEW/UPDATE/DESTROY) into the internal cache (the
//! "stats" cache in stats mode), recovers from overruns (grow the buffer,
//! re-dump, sweep entries the dump did not see), answers control
//! requests, writes the stats-mode flow log and commits the external
//! cache into the kernel.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ct_core::config::{Config, FilterSource, RunMode};
use ct_core::ctl::stats::{self, RuntimeStats};
use ct_core::ctl::Request;
use ct_core::flow::{Flow, AF_UNSPEC};
use ct_core::format::{self, EventKind, PlainOpts};
use ct_core::netlink::bpf;
use ct_core::netlink::ct::parse_flow_into;
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::*;
use ct_core::netlink::request::{self, DumpFilter, DumpKind};
use ct_core::table::{is_exp_ref, Cache, Change, ExpCache, KernelTable, Mirror, ObjState};
use ct_ring::netlink::{NlSocket, NETLINK_NETFILTER};
use ct_ring::reactor::{Ctx, Event, Outbox, Reactor, SockError, SockId, SockOpts, TimerId};
use ct_transport::proto::ftfw::Object;
use ct_transport::proto::notrack::Apply;
use ct_transport::wire::Op;

use super::commit::{commit, CommitReport};
use super::control::{ControlMsg, Reply as CtlReply, ReplyTx};
use super::expect::{self as expsync, ExpSync};
use super::filter;
use super::inject::Inject;
use super::kernel::NetlinkTable;
use super::log::{FlowLog, Logger};
use super::sync::SyncLink;
use crate::ct::env::SysEnv;
use crate::nl::{Reply, Session};

/// Which daemon this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stats,
    Sync,
    /// Neither Sync nor Stats (General and maybe Helper only): 1.4.7 runs
    /// the control socket alone, answering `-s runtime` and `-k`.
    None,
}

/// Everything the main loop owns.
pub struct Engine {
    pub cfg: Config,
    pub mode: Mode,
    pub log: Logger,
    pub flowlog: Option<FlowLog>,
    /// Internal cache (stats cache in stats mode), kept equal to the
    /// kernel table by events and resyncs.
    pub internal: Mirror,
    /// External cache (sync mode).
    pub external: Cache,
    pub rt: RuntimeStats,
    pub traffic_bytes: u64,
    pub traffic_packets: u64,
    /// Sync link counters (the channels arrive with the sync protocols).
    pub net: stats::NetworkStats,
    pub chan: stats::ChannelStats,
    started: Instant,
    epoch: Instant,
    ev_sock: Option<SockId>,
    resync_timer: Option<TimerId>,
    /// The sync link (sync mode with a channel this build speaks).
    pub link: Option<SyncLink>,
    alive_timer: Option<TimerId>,
    /// Redundant links: the rtnetlink link-event socket (failover as
    /// soon as a link changes; without it, link state is polled every
    /// second).
    rtnl: Option<SockId>,
    /// systemd's watchdog: `WATCHDOG=1` on every expiry.
    pub watchdog: Option<TimerId>,
    /// TCP: a short periodic timer while a connect is in progress (its
    /// completion is checked without waiting).
    connect_timer: Option<TimerId>,
    /// Reused by the run loop: the TCP connections of every channel and
    /// the server connections of the other channels.
    tcp_socks: Vec<SockId>,
    other_servers: Vec<SockId>,
    /// A bulk send asked by the peer (RESYNC), by `-B` or by `-n`.
    bulk: bool,
    bulk_now: bool,
    /// 1-second ticks seen (ALARM refresh slices).
    ticks: u64,
    /// Event datagrams handled in the current loop iteration, and since
    /// when sync messages wait unsent (batching under load).
    iter_events: u32,
    /// The clock read once per loop iteration for the event path
    /// (seconds since start, Unix seconds): one `clock_gettime` per wake-up
    /// instead of one per event.
    iter_clock: Option<(u32, u32)>,
    /// `Snapshot`: warm restart of the external cache.
    warm: Option<super::warm::Warm>,
    /// Replication latency for the metrics endpoint.
    lat: super::latency::SyncLatency,
    /// A NOTRACK/ALARM bulk update in progress (sent a slice per loop
    /// iteration, as many datagrams as there are free send slots).
    bulk_cursor: Option<BulkCursor>,
    unsent_since: Option<Instant>,
    resync_request: bool,
    /// Reused buffer of the objects FT-FW released.
    released: Vec<u64>,
    /// Entries a resync swept, to be sent as DEL (NOTRACK/ALARM).
    swept: Vec<Flow>,
    /// DisableExternalCache: received states go straight to the kernel.
    pub inject: Option<Inject>,
    /// DisableInternalCache (NOTRACK): no internal cache; events go to
    /// the peer as they come, a bulk update is a kernel dump.
    pub bypass: Option<stats::BypassStats>,
    /// DisableInternalCache while a bulk update (a kernel dump sent in
    /// slices) goes on: the flows whose events went out since the dump
    /// (their dumped state is older and must not follow it).
    bypass_touched:
        std::collections::HashSet<(ct_core::flow::Tuple, Option<u16>), ahash::RandomState>,
    /// ExpectationSync: the expectation caches.
    pub exp: Option<ExpSync>,
    /// Portid of the last commit's netlink handle: the events of the
    /// committed entries update the internal cache but are not sent.
    commit_portids: [u32; super::commit::MAX_PORTIDS],
    /// Polling mode (`PollSecs`): the periodic re-read of the table.
    poll_timer: Option<TimerId>,
    /// `-t`: the scheduled kernel flush (PurgeTimeout).
    purge_timer: Option<TimerId>,
    /// Timer changes asked by control requests, applied by the loop.
    arm_purge: bool,
    cancel_purge: bool,
    grow_warned: bool,
    /// Events are filtered by the BPF program on the event socket.
    kernel_filter: bool,
    /// The sync link failed to send datagrams since the last tick (FT-FW
    /// then sends the unacknowledged objects again on the tick).
    link_send_failed: bool,
    pub kill: bool,
    /// Which lane this engine is (`Lanes`).
    pub lane: super::lanes::Lane,
    /// SIGHUPs handled (the count in `daemon::REOPEN`).
    hups_seen: u64,
    /// Control connections kept open until shutdown has finished (`-k`
    /// returns when the lock and the socket are gone).
    pub held: Vec<ReplyTx>,
    flow: Flow,
    line: Vec<u8>,
}

/// Where a NOTRACK/ALARM bulk update stands: the queued flows (entries a
/// resync swept, sent as DEL; with DisableInternalCache, the kernel's
/// dump, sent as NEW), then the IPv4 and IPv6 entries, then the
/// expectations, each by slab position.
struct BulkCursor {
    queued: Vec<(Op, Flow)>,
    stage: u8,
    pos: u32,
}

fn now_secs(epoch: Instant) -> u32 {
    epoch.elapsed().as_secs() as u32
}

/// Seconds since `epoch` and Unix seconds, read once per loop iteration.
fn iter_clock(cache: &mut Option<(u32, u32)>, epoch: Instant) -> (u32, u32) {
    *cache.get_or_insert_with(|| (now_secs(epoch), crate::ct::env::now().0 as u32))
}

impl Engine {
    pub fn new(cfg: Config, log: Logger, lane: super::lanes::Lane) -> Engine {
        let mode = match cfg.run_mode() {
            RunMode::Sync => Mode::Sync,
            RunMode::Stats => Mode::Stats,
            RunMode::None => Mode::None,
        };
        let g = &cfg.general;
        // With lanes, each lane's caches take their share of HashLimit
        // (and of the buckets).
        let n = lane.count.max(1) as usize;
        let (buckets, limit) = (
            (g.hash_size as usize).div_ceil(n),
            (g.hash_limit as usize).div_ceil(n),
        );
        Engine {
            mode,
            log,
            flowlog: None,
            internal: Mirror::new(buckets, limit),
            external: Cache::new(if mode == Mode::Sync { buckets } else { 0 }, limit),
            rt: RuntimeStats::default(),
            traffic_bytes: 0,
            traffic_packets: 0,
            net: stats::NetworkStats::default(),
            chan: stats::ChannelStats::default(),
            started: Instant::now(),
            epoch: Instant::now(),
            ev_sock: None,
            resync_timer: None,
            link: None,
            alive_timer: None,
            rtnl: None,
            watchdog: None,
            connect_timer: None,
            tcp_socks: Vec::new(),
            other_servers: Vec::new(),
            bulk: false,
            bulk_now: false,
            ticks: 0,
            iter_events: 0,
            iter_clock: None,
            warm: None,
            lat: super::latency::SyncLatency::default(),
            bulk_cursor: None,
            unsent_since: None,
            resync_request: false,
            released: Vec::new(),
            swept: Vec::new(),
            inject: None,
            bypass: (mode == Mode::Sync
                && cfg.sync.as_ref().is_some_and(|s| s.disable_internal_cache))
            .then(stats::BypassStats::default),
            bypass_touched: Default::default(),
            exp: if mode == Mode::Sync {
                cfg.sync
                    .as_ref()
                    .and_then(|s| ExpSync::new(&s.expectation_sync))
            } else {
                None
            },
            commit_portids: [0; super::commit::MAX_PORTIDS],
            poll_timer: None,
            purge_timer: None,
            arm_purge: false,
            cancel_purge: false,
            grow_warned: false,
            kernel_filter: false,
            link_send_failed: false,
            kill: false,
            lane,
            hups_seen: 0,
            held: Vec::new(),
            flow: Flow::default(),
            line: Vec::with_capacity(1024),
            cfg,
        }
    }

    fn accept(&self, f: &Flow) -> bool {
        match &self.cfg.general.filter {
            Some(flt) => filter::accept(flt, f),
            None => true,
        }
    }

    /// Opens the event socket, sizes its buffer as 1.4.7 does, and
    /// registers it with the reactor.
    pub fn open_events(&mut self, r: &mut Reactor) -> std::io::Result<()> {
        // Groups are joined once the kernel filter (if any) is in place.
        let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
        self.attach_kernel_filter(&sock)?;
        // NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY (+ EXP_NEW, _UPDATE,
        // _DESTROY with ExpectationSync)
        let groups = if self.exp.is_some() { 6 } else { 3 };
        for group in 1..=groups {
            sock.join_group(group)?;
        }
        let g = &self.cfg.general;
        if g.netlink_events_reliable {
            sock.set_reliable()?;
            self.log
                .notice("reliable ctnetlink event delivery is ENABLED.");
        }
        if g.netlink_buffer_size > 0 && g.netlink_buffer_size_max_growth >= g.netlink_buffer_size {
            sock.set_rcvbuf(g.netlink_buffer_size as usize / 2)?;
        } else {
            self.log.notice("NetlinkBufferSize is either not set or is greater than NetlinkBufferSizeMaxGrowth. Using current system buffer size");
        }
        let size = sock.rcvbuf()? as u64;
        self.rt.buffer_size = size;
        self.log.notice(&format!(
            "netlink event socket buffer size has been set to {size} bytes"
        ));
        let opts = SockOpts::netlink()
            .buf_size(2048)
            .buf_count(1024)
            .max_per_wake(g.event_iteration_limit);
        let id = r.register(sock, opts)?;
        self.ev_sock = Some(id);
        Ok(())
    }

    /// `Filter From Kernelspace`: the filter as BPF on the event socket,
    /// which then makes the user-space check of events unnecessary
    /// (dumps and resyncs still use it). On failure 1.4.7 logs and runs
    /// unfiltered; we log the same error and filter events in user space.
    /// With lanes, the lane's program follows (the kernel gives each lane
    /// its share); a lane whose program cannot be attached cannot run.
    fn attach_kernel_filter(&mut self, sock: &NlSocket) -> std::io::Result<()> {
        let flt = self
            .cfg
            .general
            .filter
            .as_ref()
            .filter(|f| f.source == FilterSource::Kernelspace);
        let filter_prog = match flt.map(bpf::compile) {
            None => None,
            Some(Ok(None)) => {
                self.kernel_filter = true;
                None
            }
            Some(Ok(Some(p))) => Some(p),
            Some(Err(e)) => {
                self.log.error(&format!("cannot set event filtering: {e}"));
                None
            }
        };
        let lane_prog = (self.lane.count > 1)
            .then(|| ct_core::netlink::lanes::program(self.lane.index, self.lane.count));
        let (prog, with_filter) = match (filter_prog, lane_prog) {
            (None, None) => return Ok(()),
            (Some(f), None) => (f, true),
            (None, Some(l)) => (l, false),
            (Some(f), Some(l)) => match ct_core::netlink::lanes::compose(&f, &l) {
                Ok(p) => (p, true),
                Err(e) => {
                    // the lane's share first; the filter then in user space
                    self.log.error(&format!("cannot set event filtering: {e}"));
                    (l, false)
                }
            },
        };
        let raw: Vec<libc::sock_filter> = prog
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        use std::os::fd::AsFd;
        match ct_ring::sockopt::attach_filter(sock.as_fd(), &raw) {
            Ok(()) => {
                self.kernel_filter |= with_filter;
                Ok(())
            }
            Err(e) if self.lane.count > 1 => Err(std::io::Error::new(
                e.kind(),
                format!("cannot give lane {} its events (BPF): {e}", self.lane.index),
            )),
            Err(e) => {
                self.log.error(&format!("cannot set event filtering: {e}"));
                Ok(())
            }
        }
    }

    /// Arms the connect timer while a TCP connect is in progress, removes
    /// it otherwise.
    fn arm_connect_timer(&mut self, r: &mut Reactor) {
        let connecting = self.link.as_ref().is_some_and(|l| l.tcp_connecting());
        match (connecting, self.connect_timer) {
            (true, None) => {
                let every = CONNECT_POLL;
                self.connect_timer = Some(r.timer_add(Some(Instant::now() + every), Some(every)));
            }
            (false, Some(t)) => {
                r.timer_remove(t);
                self.connect_timer = None;
            }
            _ => {}
        }
    }

    /// Queues a RESYNC request to the peer (`-n`, StartupResync); sent by
    /// the run loop.
    pub fn request_resync(&mut self) {
        self.resync_request = true;
    }

    /// SIGHUP: reopens the LogFile and the Stats LogFile by path.
    fn reopen_logs(&mut self) {
        let mut res = self.log.reopen();
        if let Some(fl) = &mut self.flowlog {
            res = res.and(fl.reopen());
        }
        match res {
            Ok(()) => self.log.notice("log files reopened"),
            Err(e) => self.log.error_loud(&e),
        }
    }

    /// `Snapshot`: loads the external cache from the snapshot (warm
    /// restart) and, when it held entries, asks the peer for a resync to
    /// reconcile (not in ALARM mode, whose external entries expire by
    /// themselves).
    fn open_snapshot(&mut self, sync: &ct_core::config::SyncSection) {
        use super::warm::{self, Warm};
        let Some(mut cfg) = sync.snapshot.clone() else {
            return;
        };
        if self.lane.index > 0 {
            // each lane keeps its own share
            let mut p = cfg.path.into_os_string();
            p.push(format!(".lane{}", self.lane.index));
            cfg.path = p.into();
        }
        if sync.disable_external_cache {
            self.log
                .warning("Snapshot ignored: there is no external cache (DisableExternalCache)");
            return;
        }
        let path = cfg.path.display().to_string();
        let mut w = Warm::new(cfg);
        let t0 = Instant::now();
        match warm::load(&w.cfg.path, &mut self.external, now_secs(self.epoch)) {
            Ok(Some(l)) => {
                self.log.notice(&format!(
                    "warm restart: {} entries from {path} (written {} s ago) in {:.3} s",
                    l.entries,
                    l.age,
                    t0.elapsed().as_secs_f64()
                ));
                if l.entries > 0 && sync.mode() != ct_core::config::SyncMode::Alarm {
                    self.log
                        .notice("warm restart: asking the peer for a resync to reconcile");
                    w.start_reconcile(Instant::now());
                    self.resync_request = true;
                }
            }
            Ok(None) => self
                .log
                .notice(&format!("no snapshot at {path}: starting cold")),
            Err(e) => self.log.warning(&format!(
                "snapshot {path} refused ({e}), kept as {path}.refused: starting cold"
            )),
        }
        // Nothing to write until the cache changes (a refused snapshot is
        // not replaced by an empty cache at once).
        w.mark_current(&self.external);
        self.warm = Some(w);
    }

    /// The 1-second tick of the warm restart: reconciliation steps and
    /// the periodic snapshot.
    fn warm_tick(&mut self) {
        use super::warm::Step;
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        match w.tick(Instant::now()) {
            Step::Nothing => {}
            Step::RequestResync => {
                self.resync_request = true;
                self.log
                    .notice("warm restart: no answer from the peer yet, asking again");
            }
            Step::Sweep => {
                let n = self.external.remove_stale(0);
                self.log.notice(&format!(
                    "warm restart: reconciled with the peer: {n} stale entries removed, {} kept",
                    self.external.len()
                ));
            }
        }
        if w.due(&self.external) {
            w.start_write(&self.external);
        }
        if let Some(r) = w.finished() {
            self.snapshot_written(r);
        }
    }

    /// At shutdown: the snapshot, written in place.
    fn write_snapshot(&mut self) {
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        let r = w.write_now(&self.external);
        self.snapshot_written(r);
    }

    /// Logs the first failure of a series (and the recovery).
    fn snapshot_written(&mut self, r: std::io::Result<(u64, usize)>) {
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        match r {
            Ok(_) => {
                if std::mem::take(&mut w.failing) {
                    self.log.notice("snapshot written again");
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut w.failing, true) {
                    self.log.error(&format!(
                        "can't write snapshot {}: {e}",
                        w.cfg.path.display()
                    ));
                }
            }
        }
    }

    /// Opens the sync link and its 1-second alive timer.
    pub fn open_link(&mut self, r: &mut Reactor) -> std::io::Result<()> {
        let Some(sync) = self.cfg.sync.clone() else {
            return Ok(());
        };
        if sync.disable_external_cache {
            self.log.notice("disabling external cache");
            self.inject = Some(Inject::open()?);
            if let Some(x) = self.exp.as_mut() {
                x.open_inject()?;
            }
        }
        let auth = match sync.auth.as_ref().map(super::auth::LinkAuth::load) {
            None => None,
            Some(Ok((a, warning))) => {
                if let Some(w) = warning {
                    self.log.warning(&w);
                }
                self.log.notice("sync link authentication: HMAC-SHA256");
                Some(a)
            }
            Some(Err(e)) => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e));
            }
        };
        {
            let mut link = SyncLink::open(
                &sync,
                self.cfg.general.event_iteration_limit,
                self.lane.index as u16,
                r,
            )?;
            link.auth = auth;
            self.open_snapshot(&sync);
            let period = Duration::from_secs(1);
            self.alive_timer = Some(r.timer_add(Some(Instant::now() + period), Some(period)));
            if link.has_others() {
                // RTMGRP_LINK of NETLINK_ROUTE, as 1.4.7 watches links.
                match NlSocket::open(libc::NETLINK_ROUTE, libc::RTMGRP_LINK as u32)
                    .and_then(|s| r.register(s, SockOpts::netlink()))
                {
                    Ok(id) => self.rtnl = Some(id),
                    Err(e) => self.log.warning(&format!(
                        "can't watch link events ({e}), polling link state every second"
                    )),
                }
            }
            self.link = Some(link);
            self.arm_connect_timer(r);
        }
        Ok(())
    }

    /// Sends the internal cache to the peer (bulk send).
    fn bulk_send(&mut self, r: &mut Reactor) {
        let swept = std::mem::take(&mut self.swept);
        let Some(link) = &mut self.link else { return };
        if let Some(p) = link.proto.ftfw() {
            self.internal.cache.refs(|obj, state| {
                if state != ObjState::Dead {
                    p.on_local(obj);
                }
            });
            // Expectations after the conntracks (their masters).
            if let Some(x) = &self.exp {
                x.internal.for_each(|obj, e| {
                    if e.state != ObjState::Dead {
                        p.on_local(obj);
                    }
                });
            }
            ftfw_transmit(
                link,
                &mut self.internal.cache,
                self.exp.as_mut().map(|x| &mut x.internal),
                r,
                &mut self.released,
            );
            return;
        }
        // A bulk update still going: its unsent DELs are kept.
        let mut queued: Vec<(Op, Flow)> = swept.into_iter().map(|f| (Op::Delete, f)).collect();
        if let Some(old) = self.bulk_cursor.take().filter(|c| c.stage == 0) {
            queued.extend(
                old.queued
                    .into_iter()
                    .skip(old.pos as usize)
                    .filter(|(op, _)| *op == Op::Delete),
            );
        }
        if self.bypass.is_some() {
            // No internal cache: the kernel's table is the state to send.
            // Events that go out while it is sent in slices make their
            // flow's dumped state stale: those entries are skipped.
            self.bypass_touched.clear();
            let mut table = match NetlinkTable::open(self.cfg.general.filter.clone()) {
                Ok(t) => t,
                Err(e) => {
                    self.log.error(&format!("can't dump kernel table: {e}"));
                    return;
                }
            };
            let lane = self.lane;
            if let Err(e) = table.dump(&mut |f| {
                if lane.owns(f.orig.as_ref()) {
                    queued.push((Op::New, *f))
                }
            }) {
                self.log.error(&format!(
                    "can't dump kernel table: {}",
                    crate::cli::labels::errno_text(e)
                ));
            }
        }
        self.bulk_cursor = Some(BulkCursor {
            queued,
            stage: 0,
            pos: 0,
        });
        self.bulk_step(r);
    }

    /// One slice of a NOTRACK/ALARM bulk update: no more datagrams than
    /// there are free send slots (at least one), so that the update goes
    /// out as fast as the link takes it and events are handled between
    /// slices.
    fn bulk_step(&mut self, r: &mut Reactor) {
        let Some(mut cur) = self.bulk_cursor.take() else {
            return;
        };
        let Some(link) = &mut self.link else { return };
        let unix = crate::ct::env::now().0 as u32;
        let budget = slice_budget(r);
        let (proto, mut send) = split(link, r);
        let sent = std::cell::Cell::new(0usize);
        let mut counted = |d: &[u8]| {
            sent.set(sent.get() + 1);
            send(d)
        };
        let op_of = |state| match state {
            ObjState::New => Some(Op::New),
            ObjState::Alive => Some(Op::Update),
            ObjState::Dead => None,
        };
        let room = || sent.get() < budget;
        loop {
            let next = match cur.stage {
                0 => {
                    let mut i = cur.pos as usize;
                    let touched = &self.bypass_touched;
                    while i < cur.queued.len() && room() {
                        let (op, f) = &cur.queued[i];
                        let stale = *op == Op::New
                            && !touched.is_empty()
                            && touched.contains(&(f.orig.unwrap_or_default(), f.zone));
                        if !stale {
                            proto.on_local(*op, f, unix, &mut counted);
                        }
                        i += 1;
                    }
                    (i < cur.queued.len()).then_some(i as u32)
                }
                1 => self.internal.cache.v4.visit_from(cur.pos, |e| {
                    if let Some(op) = op_of(e.state) {
                        proto.on_local(op, &e.rec.to_flow(), unix, &mut counted);
                    }
                    room()
                }),
                2 => self.internal.cache.v6.visit_from(cur.pos, |e| {
                    if let Some(op) = op_of(e.state) {
                        proto.on_local(op, &e.rec.to_flow(), unix, &mut counted);
                    }
                    room()
                }),
                3 => self.exp.as_ref().and_then(|x| {
                    x.internal.visit_from(cur.pos, |e| {
                        if let Some(op) = op_of(e.state) {
                            proto.on_local_exp(op, &e.exp, unix, &mut counted);
                        }
                        room()
                    })
                }),
                _ => {
                    proto.flush(&mut counted);
                    self.bypass_touched.clear();
                    return;
                }
            };
            match next {
                Some(p) => {
                    cur.pos = p;
                    // out of room: the rest on the next iteration
                    proto.flush(&mut counted);
                    self.bulk_cursor = Some(cur);
                    return;
                }
                None => {
                    cur.stage += 1;
                    cur.pos = 0;
                }
            }
        }
    }

    /// ALARM: refresh one slice of the internal cache (every entry is
    /// re-sent once per RefreshTime seconds) and expire external entries
    /// not updated for CacheTimeout seconds.
    fn alarm_tick(&mut self, r: &mut Reactor) {
        let Some(link) = &mut self.link else { return };
        if !link.proto.is_alarm() {
            return;
        }
        let sync = self.cfg.sync.clone().unwrap_or_default();
        self.ticks = self.ticks.wrapping_add(1);
        let n = sync.refresh_time.max(1) as usize;
        let i = (self.ticks % n as u64) as usize;
        let unix = crate::ct::env::now().0 as u32;
        let (proto, mut send) = split(link, r);
        {
            let mut refresh = |state: ObjState, f: Flow| {
                let op = if state == ObjState::New {
                    Op::New
                } else {
                    Op::Update
                };
                proto.on_local(op, &f, unix, &mut send);
            };
            self.internal
                .cache
                .v4
                .for_each_slice(n, i, |e| refresh(e.state, e.rec.to_flow()));
            self.internal
                .cache
                .v6
                .for_each_slice(n, i, |e| refresh(e.state, e.rec.to_flow()));
        }
        // Expectations (ExpectationSync) are refreshed the same way, one
        // slice of the internal expectation cache per tick.
        if let Some(x) = self.exp.as_ref() {
            x.internal.for_each(|r, e| {
                if e.state != ObjState::Dead && (r as u32 as usize) % n == i {
                    let op = if e.state == ObjState::New {
                        Op::New
                    } else {
                        Op::Update
                    };
                    proto.on_local_exp(op, &e.exp, unix, &mut send);
                }
            });
        }
        proto.flush(&mut send);
        let now = now_secs(self.epoch);
        if now > sync.cache_timeout {
            let cutoff = now - sync.cache_timeout;
            self.external.v4.expire_before(cutoff);
            self.external.v6.expire_before(cutoff);
            if let Some(x) = self.exp.as_mut() {
                x.external.expire_before(cutoff as u64);
            }
        }
    }

    /// Bytes from the TCP server connection: complete messages are
    /// processed, a partial one waits for the next read.
    fn on_sync_stream(&mut self, data: &[u8]) {
        let Some(tcp) = self.link.as_mut().and_then(|l| l.tcp.as_mut()) else {
            return;
        };
        let mut buf = std::mem::take(&mut tcp.pending);
        buf.extend_from_slice(data);
        let mut d = ct_transport::wire::Datagram::stream(&buf);
        for _ in d.by_ref() {}
        let done = d.consumed();
        // (a read that held only part of a message is not a packet yet)
        if done > 0 {
            self.on_sync(&buf[..done]);
        }
        buf.drain(..done);
        if let Some(tcp) = self.link.as_mut().and_then(|l| l.tcp.as_mut()) {
            tcp.pending = buf;
        }
    }

    /// A datagram from the sync link.
    fn on_sync(&mut self, data: &[u8]) {
        let now = now_secs(self.epoch);
        let Some(link) = &mut self.link else { return };
        if let Some(w) = self.warm.as_mut() {
            w.on_heard(Instant::now());
        }
        // (an empty datagram counts as a received packet, as in 1.4.7,
        // and carries nothing)
        link.chan.bytes_recv += data.len() as u64;
        link.chan.packets_recv += 1;
        if data.is_empty() {
            return;
        }
        let ext = &mut self.external;
        let (mut bulk, mut need_bulk, mut confirmed) = (false, false, false);
        // Warm restart: a message about an entry loaded from the snapshot
        // (still stale) confirms it.
        let reconciling = self.warm.as_ref().is_some_and(|w| w.reconcile.is_some());
        let stale = super::warm::STALE_GEN;
        // DisableExternalCache: states go to the kernel instead.
        let mut inject = self.inject.as_mut().zip(self.cfg.sync.as_ref());
        let log = &mut self.log;
        let mut exps = self.exp.as_mut();
        link.proto
            .on_datagram(data, &mut |a| match (a, &mut inject) {
                (Apply::Ct(op, f), Some((inj, sync))) => {
                    if let Err(e) = inj.apply(op, f, sync) {
                        log.warning(&e);
                    }
                }
                (Apply::Ct(op, f), None) => {
                    confirmed |= reconciling && ext.gen_of(f) == Some(stale);
                    match op {
                        Op::New => {
                            ext.replace(f, now, 0);
                        }
                        Op::Update => {
                            ext.upsert(f, now, 0);
                        }
                        Op::Delete => {
                            ext.remove(f);
                        }
                    }
                }
                (Apply::Exp(op, e), _) => {
                    if let Some(x) = exps.as_deref_mut() {
                        if let Err(e) = x.apply_remote(op, e, now as u64) {
                            log.warning(&e);
                        }
                    }
                }
                (Apply::Resync, _) => bulk = true,
                (Apply::NeedBulk, _) => need_bulk = true,
            });
        if let Some(w) = self.warm.as_mut().filter(|_| confirmed) {
            w.on_confirm(Instant::now());
        }
        if bulk {
            self.log.notice("resync requested by other node");
            self.bulk = true;
        } else if need_bulk {
            self.log
                .notice("peer lost messages no longer in the resend queue, sending a bulk update");
            self.bulk = true;
        }
    }

    /// Polling mode: a periodic timer instead of the event socket.
    pub fn start_polling(&mut self, r: &mut Reactor, secs: u32) {
        let period = Duration::from_secs(secs.max(1) as u64);
        self.poll_timer = Some(r.timer_add(Some(Instant::now() + period), Some(period)));
    }

    /// Dumps the kernel table into the internal cache (start-up, `-R`,
    /// overrun resync). With `sweep`, entries the dump did not see are
    /// removed afterwards (logged in stats mode).
    pub fn resync(&mut self, sweep: bool) -> Result<(), String> {
        if self.bypass.is_some() {
            // no internal cache to fill; after an overrun the caller
            // sends a bulk update (a kernel dump) instead
            return Ok(());
        }
        let mut table =
            NetlinkTable::open(self.cfg.general.filter.clone()).map_err(|e| e.to_string())?;
        let now = now_secs(self.epoch);
        let internal = &mut self.internal;
        let lane = self.lane;
        internal.begin_resync();
        table
            .dump(&mut |f| {
                if lane.owns(f.orig.as_ref()) {
                    internal.resync_entry(f, now)
                }
            })
            .map_err(|e| format!("can't get kernel conntrack table: errno {e}"))?;
        if let Some(p) = self
            .link
            .as_mut()
            .and_then(|l| l.proto.ftfw())
            .filter(|_| sweep)
        {
            for obj in self.internal.end_resync_keep_dead() {
                p.on_local(obj);
            }
        } else if sweep {
            let gone = self.internal.end_resync();
            if self.mode == Mode::Stats {
                for mut f in gone {
                    f.timeout = None;
                    self.log_flow(&f);
                }
            } else if self.link.is_some() {
                // NOTRACK/ALARM: the peer hears of the swept entries.
                self.swept = gone;
            }
        }
        self.resync_exp(sweep)
    }

    /// ExpectationSync: the kernel's expectations into the internal
    /// expectation cache (after the conntracks, their masters).
    fn resync_exp(&mut self, sweep: bool) -> Result<(), String> {
        let now = now_secs(self.epoch) as u64;
        if let Some(x) = self.exp.as_mut() {
            x.resync(&self.internal.cache, now, sweep, self.lane)?;
        }
        Ok(())
    }

    fn log_flow(&mut self, f: &Flow) {
        if let Some(fl) = &mut self.flowlog {
            self.line.clear();
            let env = SysEnv { labels: None };
            format::write_plain(
                &mut self.line,
                f,
                EventKind::None,
                &PlainOpts::default(),
                &env,
            );
            fl.write(&self.line);
        }
    }

    /// An expectation event (ExpectationSync): into the internal
    /// expectation cache and on to the peer.
    fn on_exp_event(&mut self, m: &Message<'_>, ctx: &mut Ctx<'_>) {
        let Some(x) = self.exp.as_mut() else { return };
        let Ok((g, attrs)) = m.nfgen() else {
            self.rt.catch_failed += 1;
            return;
        };
        let Ok(e) = parse_expect(g.family, attrs) else {
            self.rt.catch_failed += 1;
            return;
        };
        self.rt.events_received += 1;
        // Our own commit's and inject's expectations are not sent back.
        if m.pid != 0 && x.own_portids.contains(&m.pid) {
            return;
        }
        if self.bypass.is_some() {
            // DisableInternalCache: straight to the peer
            let op = match m.msg() {
                IPCTNL_MSG_EXP_NEW => Op::New,
                IPCTNL_MSG_EXP_DELETE => Op::Delete,
                _ => {
                    self.rt.events_unknown += 1;
                    return;
                }
            };
            if !x.helper_wanted(&e) {
                return;
            }
            if let Some(link) = self.link.as_mut() {
                let unix = crate::ct::env::now().0 as u32;
                let (proto, mut send) = split(link, ctx);
                proto.on_local_exp(op, &e, unix, &mut send);
            }
            return;
        }
        let now = now_secs(self.epoch) as u64;
        let ftfw = self
            .link
            .as_ref()
            .is_some_and(|l| l.proto.ftfw_ref().is_some());
        let (op, obj) = match m.msg() {
            IPCTNL_MSG_EXP_NEW => {
                if !x.wanted(&e, &self.internal.cache) {
                    return;
                }
                match x.internal.upsert(&e, now) {
                    Some((r, true)) => (Op::New, r),
                    Some((r, false)) => (Op::Update, r),
                    None => return,
                }
            }
            IPCTNL_MSG_EXP_DELETE if ftfw => match x.internal.mark_dead(&e) {
                Some(r) => (Op::Delete, r),
                None => return,
            },
            IPCTNL_MSG_EXP_DELETE => match x.internal.remove(&e) {
                Some(_) => (Op::Delete, 0),
                None => return,
            },
            _ => {
                self.rt.events_unknown += 1;
                return;
            }
        };
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if let Some(p) = link.proto.ftfw() {
            p.on_local(obj);
        } else {
            let unix = crate::ct::env::now().0 as u32;
            let (proto, mut send) = split(link, ctx);
            proto.on_local_exp(op, &e, unix, &mut send);
        }
    }

    /// Handles one datagram from the event socket.
    fn on_events(&mut self, data: &[u8], ctx: &mut Ctx<'_>) {
        self.iter_events += 1;
        let (now, unix) = iter_clock(&mut self.iter_clock, self.epoch);
        let mut flow = std::mem::take(&mut self.flow);
        for m in Messages::new(data) {
            let Ok(m) = m else {
                self.rt.catch_failed += 1;
                break;
            };
            if m.subsys() == NFNL_SUBSYS_CTNETLINK_EXP && self.exp.is_some() {
                self.on_exp_event(&m, ctx);
                continue;
            }
            if m.subsys() != NFNL_SUBSYS_CTNETLINK {
                self.rt.events_unknown += 1;
                continue;
            }
            let kind = match m.msg() {
                IPCTNL_MSG_CT_NEW if m.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => EventKind::New,
                IPCTNL_MSG_CT_NEW => EventKind::Update,
                IPCTNL_MSG_CT_DELETE => EventKind::Destroy,
                _ => {
                    self.rt.events_unknown += 1;
                    continue;
                }
            };
            let Ok((g, attrs)) = m.nfgen() else {
                self.rt.catch_failed += 1;
                continue;
            };
            if parse_flow_into(&mut flow, g.family, attrs).is_err() {
                self.rt.catch_failed += 1;
                continue;
            }
            self.rt.events_received += 1;
            // Origin: changes made by our inject handle are ignored; those
            // of our commit update the internal cache but are not sent.
            if m.pid != 0 && self.inject.as_ref().is_some_and(|i| i.portid() == m.pid) {
                continue;
            }
            let own = m.pid != 0 && self.commit_portids.contains(&m.pid);
            if !self.kernel_filter && !self.accept(&flow) {
                self.rt.events_filtered += 1;
                continue;
            }
            if let Some(b) = self.bypass.as_mut() {
                // DisableInternalCache: straight to the peer (not what our
                // own commit did)
                if own {
                    continue;
                }
                let op = match kind {
                    EventKind::New => {
                        b.new += 1;
                        Op::New
                    }
                    EventKind::Update => {
                        b.updated += 1;
                        Op::Update
                    }
                    _ => {
                        b.destroyed += 1;
                        Op::Delete
                    }
                };
                if self.bulk_cursor.is_some() {
                    self.bypass_touched
                        .insert((flow.orig.unwrap_or_default(), flow.zone));
                }
                if let Some(link) = self.link.as_mut() {
                    let (proto, mut send) = split(link, ctx);
                    proto.on_local(op, &flow, unix, &mut send);
                }
                continue;
            }
            let change = match kind {
                EventKind::New => Change::New,
                EventKind::Update => Change::Update,
                _ => Change::Destroy,
            };
            let ftfw = self.link.as_mut().and_then(|l| l.proto.ftfw());
            let removed = if let Some(p) = ftfw {
                // FT-FW: a destroyed entry stays (DEAD) until the peer
                // acknowledged its deletion.
                let obj = self.internal.on_event_keep_dead(change, &flow, now);
                if let Some(obj) = obj.filter(|_| !own) {
                    p.on_local(obj);
                }
                // Our own commit's entries are not sent: a DEAD one leaves
                // at once.
                if let Some(obj) = obj.filter(|_| own && change == Change::Destroy) {
                    p.forget(obj);
                    self.internal.cache.remove_ref(obj);
                }
                (change == Change::Destroy && obj.is_some()).then_some(())
            } else {
                self.internal.on_event(change, &flow, now).map(|_| ())
            };
            if let Some(link) = self
                .link
                .as_mut()
                .filter(|l| !own && l.proto.ftfw_ref().is_none())
            {
                if change != Change::Destroy || removed.is_some() {
                    let op = match change {
                        Change::New => Op::New,
                        Change::Update => Op::Update,
                        Change::Destroy => Op::Delete,
                    };
                    let (proto, mut send) = split(link, ctx);
                    proto.on_local(op, &flow, unix, &mut send);
                }
            }
            if removed.is_some() {
                for c in [flow.counters_orig, flow.counters_reply]
                    .into_iter()
                    .flatten()
                {
                    self.traffic_bytes += c.bytes.unwrap_or(0) as u32 as u64;
                    self.traffic_packets += c.packets.unwrap_or(0) as u32 as u64;
                }
                if self.mode == Mode::Stats {
                    let mut f = flow;
                    f.timeout = None;
                    self.log_flow(&f);
                }
            }
        }
        self.flow = flow;
    }

    /// ENOBUFS on the event socket: count it, grow the buffer, schedule a
    /// resync.
    fn on_overrun(&mut self, r: &mut Reactor) {
        self.rt.overrun += 1;
        self.rt.catch_failed += 1;
        let max = self.cfg.general.netlink_buffer_size_max_growth as u64;
        let cur = self.rt.buffer_size;
        if cur * 2 <= max {
            // (the kernel doubles what is asked: cur * 2)
            if let Some(fd) = self.ev_sock.and_then(|s| r.fd(s)) {
                if let Ok(v) = ct_ring::sockopt::set_rcvbuf(fd, cur as usize) {
                    self.rt.buffer_size = v as u64;
                    self.log.notice(&format!(
                        "netlink event socket buffer size has been doubled to {v} bytes"
                    ));
                }
            }
        } else if !self.grow_warned {
            self.grow_warned = true;
            self.log.warning("netlink event socket buffer size cannot be doubled further since it will exceed NetlinkBufferSizeMaxGrowth. We are likely to be losing events, this may lead to unsynchronized replicas. Please, consider increasing netlink socket buffer size via NetlinkBufferSize and NetlinkBufferSizeMaxGrowth clauses in conntrackd.conf");
        }
        if let Some(secs) = self.cfg.general.overrun_resync_secs() {
            let at = Instant::now() + Duration::from_secs(secs as u64);
            match self.resync_timer {
                Some(t) => {
                    r.timer_reset(t, Some(at));
                }
                None => self.resync_timer = Some(r.timer_add(Some(at), None)),
            }
        }
    }

    /// `-i`/`-e` (and their XML forms): a snapshot of the cache, formatted
    /// and written by the client's thread.
    fn cache_dump(&self, cache: &Cache, xml: bool, external: bool) -> CtlReply {
        let snap = cache.snapshot();
        let now = now_secs(self.epoch);
        CtlReply::Stream(Box::new(move |w| write_dump(w, &snap, xml, external, now)))
    }

    fn network(&self) -> stats::NetworkStats {
        self.link
            .as_ref()
            .map(|l| l.network_stats())
            .unwrap_or(self.net)
    }

    /// The queues of `-s queue`, in 1.4.7's order: txqueue, errorq and
    /// (FT-FW) rsqueue.
    fn queues(&self) -> Vec<super::stats::QueueCounters> {
        use super::stats::QueueCounters;
        let Some(sync) = &self.cfg.sync else {
            return Vec::new();
        };
        let ftfw = self.link.as_ref().and_then(|l| l.proto.ftfw_ref());
        let errq = self
            .link
            .as_ref()
            .map(|l| l.error_queue())
            .unwrap_or_default();
        let mut q = vec![
            QueueCounters {
                name: "txqueue",
                len: ftfw.map(|p| p.tx_len() as u64).unwrap_or(0),
                max: i32::MAX as u64,
                full: 0,
            },
            QueueCounters {
                name: "errorq",
                len: errq.0,
                max: sync.error_queue_length as u64,
                full: errq.1,
            },
        ];
        if sync.mode() == ct_core::config::SyncMode::Ftfw {
            let (len, full) = ftfw
                .map(|p| (p.rs_len() as u64, p.rs_full()))
                .unwrap_or((0, 0));
            q.push(QueueCounters {
                name: "rsqueue",
                len,
                max: sync.resend_queue_size as u64,
                full,
            });
        }
        q
    }

    /// FT-FW: the object messages (not control ones) awaiting the peer's
    /// acknowledgement.
    fn unacked_objects(&self) -> Option<u64> {
        let p = self.link.as_ref()?.proto.ftfw_ref()?;
        Some(
            p.rs_entries()
                .filter(|e| matches!(e, ct_transport::proto::ftfw::RsEntry::Object { .. }))
                .count() as u64,
        )
    }

    /// Every counter of this lane, for `-s` and the metrics endpoint.
    pub fn stats(&self) -> super::stats::Stats {
        use super::stats::{CacheCounters, ChannelCounters, Kind, LatencyCounters, Stats};
        let mut rt = self.rt;
        rt.uptime_secs = self.started.elapsed().as_secs();
        let mut snap = Stats {
            kind: match self.mode {
                Mode::None => Kind::None,
                Mode::Stats => Kind::Stats,
                Mode::Sync => Kind::Sync,
            },
            uptime_secs: self.started.elapsed().as_secs_f64(),
            rt,
            traffic_bytes: self.traffic_bytes,
            traffic_packets: self.traffic_packets,
            ..Default::default()
        };
        let cache = |name, c: &Cache| CacheCounters {
            name,
            entries: c.len() as u64,
            stats: c.stats(),
        };
        match self.mode {
            Mode::None => {}
            Mode::Stats => snap.caches.push(cache("stats", &self.internal.cache)),
            Mode::Sync => {
                match &self.bypass {
                    Some(b) => snap.bypass = Some(*b),
                    None => snap.caches.push(cache("internal", &self.internal.cache)),
                }
                match &self.inject {
                    Some(i) => snap.inject = Some(i.stats),
                    None => snap.caches.push(cache("external", &self.external)),
                }
                if let Some(x) = &self.exp {
                    for (name, c) in [
                        ("expect_internal", &x.internal),
                        ("expect_external", &x.external),
                    ] {
                        snap.caches.push(CacheCounters {
                            name,
                            entries: c.len() as u64,
                            stats: c.stats(),
                        });
                    }
                }
                snap.net = Some(self.network());
                snap.queues = self.queues();
                // 1.4.7 counts the queue objects it allocates: the error
                // queue's datagrams (and control messages waiting in the
                // tx queue, sent at once here); the resend queue links
                // cache objects and is not counted
                snap.allocated = snap
                    .queues
                    .iter()
                    .find(|x| x.name == "errorq")
                    .map_or(0, |x| x.len);
                if let Some(sync) = &self.cfg.sync {
                    let cur = self
                        .link
                        .as_ref()
                        .map(|l| l.index)
                        .unwrap_or(sync.default_channel);
                    for (i, c) in sync.channels.iter().enumerate() {
                        let dev = c.interface.clone().unwrap_or_default();
                        snap.channels.push(ChannelCounters {
                            index: i,
                            kind: channel_kind(c.kind),
                            status: link_status(&dev),
                            device: dev,
                            active: i == cur,
                            tcp: (c.kind == ct_core::config::ChannelType::Tcp).then(|| {
                                self.link
                                    .as_ref()
                                    .and_then(|l| l.tcp_state_of(i))
                                    .unwrap_or((false, false))
                            }),
                            stats: self
                                .link
                                .as_ref()
                                .and_then(|l| l.chan_of(i))
                                .unwrap_or_default(),
                        });
                    }
                    if sync.mode() == ct_core::config::SyncMode::Ftfw {
                        let mut text = String::new();
                        if let Some(p) = self.link.as_ref().and_then(|l| l.proto.ftfw_ref()) {
                            p.write_rsqueue(&mut text);
                        }
                        let lines: Vec<String> = text.lines().skip(1).map(String::from).collect();
                        snap.rsqueue = Some((lines.len() as u64, lines));
                    }
                }
                if self.link.is_some() {
                    let now = Instant::now();
                    snap.latency = Some(LatencyCounters {
                        send_delay: self.lat.send_delay.clone(),
                        ftfw: self.unacked_objects().map(|unacked| {
                            (
                                self.lat.ack.clone(),
                                self.lat.lag(now).as_secs_f64(),
                                unacked,
                            )
                        }),
                    });
                }
            }
        }
        snap
    }

    /// Answers a control request; the reply goes back through `reply`.
    pub fn on_request(&mut self, req: Request, reply: &ReplyTx) {
        use Request::*;
        if self.mode == Mode::None && !matches!(req, Kill | StatsRuntime | Metrics) {
            // no mode runs: 1.4.7 answers nothing else
            return;
        }
        let text = |t: Vec<u8>| {
            let _ = reply.send(CtlReply::Text(t));
        };
        match req {
            Kill => {
                self.kill = true;
                // `-k` returns once the lock and the socket are gone.
                self.held.push(reply.clone());
            }
            StatsRuntime | Stats | StatsCache | StatsNetwork | StatsLink | StatsQueue
            | StatsRsqueue | StatsPeers | Metrics => {
                // (rendered by the control thread, once every lane's
                // counters are in)
                let _ = reply.send(CtlReply::Stats(Box::new(self.stats())));
            }
            CtResyncMaster | AllResyncMaster if self.bypass.is_some() => {
                self.log.notice("resync is unsupported in this mode");
            }
            CtResyncMaster | AllResyncMaster => {
                self.log.notice("resync with master conntrack table");
                self.rt.resync_kernel += 1;
                if let Err(e) = self.resync(false) {
                    self.log.error(&e);
                }
            }
            CtFlushMaster | AllFlushMaster if !self.lane.first() => {}
            CtFlushMaster | AllFlushMaster => {
                self.log.notice("flushing kernel conntrack table");
                self.rt.flush_kernel += 1;
                let flt = self.cfg.general.filter.clone();
                let exp = req == AllFlushMaster && self.exp.is_some();
                std::thread::spawn(move || {
                    let _ = flush_kernel(flt.as_ref());
                    if exp {
                        let _ = expsync::kernel_flush();
                    }
                });
            }
            ResetTimers
                if self.mode == Mode::Sync && self.purge_timer.is_none() && !self.arm_purge =>
            {
                let secs = self
                    .cfg
                    .sync
                    .as_ref()
                    .map(|x| x.purge_timeout)
                    .unwrap_or(60);
                self.log
                    .notice(&format!("flushing conntrack table in {secs} secs"));
                self.arm_purge = true;
            }
            RequestDump if self.link.is_some() => {
                self.log.notice("resync requested");
                self.resync_request = true;
            }
            SendBulk if self.link.is_some() => {
                // (1.4.7 says nothing when it sends the kernel's table)
                if self.bypass.is_none() {
                    self.log.notice("sending bulk update");
                }
                self.bulk_now = true;
            }
            CtDumpInternal | CtDumpIntXml if self.bypass.is_some() && self.lane.first() => {
                // no internal cache: the kernel's table, in conntrack's
                // default format (1.4.7 has no XML form here either);
                // once, by the first lane
                let _ = reply.send(kernel_dump(self.cfg.general.filter.clone()));
            }
            CtDumpInternal | CtDumpIntXml if self.bypass.is_some() => {}
            CtFlushIntCache if self.bypass.is_some() => {
                // 1.4.7 flushes the kernel table here (which, right after
                // the commit of primary-backup.sh, would drop every
                // connection just taken over); there is no internal
                // cache to flush.
                self.log.notice("flushing internal cache");
            }
            CtDumpInternal => {
                let _ = reply.send(self.cache_dump(&self.internal.cache, false, false));
            }
            CtDumpIntXml => {
                let _ = reply.send(self.cache_dump(&self.internal.cache, true, false));
            }
            CtDumpExternal if self.mode == Mode::Sync => {
                let _ = reply.send(self.cache_dump(&self.external, false, true));
            }
            CtDumpExtXml if self.mode == Mode::Sync => {
                let _ = reply.send(self.cache_dump(&self.external, true, true));
            }
            CtFlushIntCache | CtFlushCache | AllFlushCache if self.mode == Mode::Stats => {
                self.log.notice("flushing caches");
                self.internal.cache.clear();
            }
            CtFlushIntCache if self.mode == Mode::Sync => {
                self.cancel_purge = true;
                self.log.notice("flushing internal cache");
                self.internal.cache.clear();
            }
            CtFlushExtCache if self.mode == Mode::Sync => {
                self.log.notice("flushing external cache");
                self.external.clear();
            }
            AllFlushCache | CtFlushCache if self.mode == Mode::Sync => {
                self.cancel_purge = true;
                self.log.notice("flushing caches");
                self.internal.cache.clear();
                self.external.clear();
                if let Some(x) = self.exp.as_mut().filter(|_| req == AllFlushCache) {
                    x.internal.clear();
                    x.external.clear();
                }
            }
            ExpStats if self.exp.is_some() => {
                let _ = reply.send(CtlReply::Stats(Box::new(self.stats())));
            }
            ExpFlushMaster if self.exp.is_some() && !self.lane.first() => {}
            ExpFlushMaster if self.exp.is_some() => {
                self.log.notice("flushing kernel expect table");
                std::thread::spawn(|| {
                    let _ = expsync::kernel_flush();
                });
            }
            ExpResyncMaster if self.exp.is_some() && self.bypass.is_some() => {
                self.log.notice("resync is unsupported in this mode");
            }
            ExpResyncMaster if self.exp.is_some() => {
                self.log.notice("resync with master expect table");
                if let Err(e) = self.resync_exp(false) {
                    self.log.error(&e);
                }
            }
            ExpDumpInternal | ExpDumpIntXml | ExpDumpExternal | ExpDumpExtXml => {
                let now = now_secs(self.epoch) as u64;
                if let Some(x) = &self.exp {
                    let ext = matches!(req, ExpDumpExternal | ExpDumpExtXml);
                    let xml = matches!(req, ExpDumpIntXml | ExpDumpExtXml);
                    text(x.dump(ext, xml, now));
                }
            }
            ExpCommit if self.exp.is_some() => {
                self.log.notice("committing expectation cache");
                self.commit_exp();
            }
            CtCommit | AllCommit if self.mode == Mode::Sync => {
                self.cancel_purge = true;
                self.log.notice(if req == AllCommit {
                    "committing all external caches"
                } else {
                    "committing conntrack cache"
                });
                let sync = self.cfg.sync.clone().unwrap_or_default();
                let started = Instant::now();
                // (the lanes commit at once: they share the cores)
                let workers = super::commit::workers(self.lane.count);
                match commit(&self.external, &sync, now_secs(self.epoch), workers) {
                    Ok(CommitReport {
                        ok,
                        failed,
                        portids,
                    }) => {
                        self.commit_portids = portids;
                        self.log_commit(Ok((ok, failed)), started);
                    }
                    Err(e) => self.log_commit(Err(e.to_string()), started),
                }
                if req == AllCommit {
                    self.commit_exp();
                }
            }
            _ => {}
        }
    }

    /// Commits the external expectation cache (ExpectationSync).
    fn commit_exp(&mut self) {
        let Some(x) = self.exp.as_mut() else { return };
        let started = Instant::now();
        let res = x.commit();
        self.log_commit(res, started);
    }

    /// The log lines of a commit, as 1.4.7 writes them.
    fn log_commit(&mut self, res: Result<(u64, u64), String>, started: Instant) {
        match res {
            Ok((ok, failed)) => {
                self.log.notice(&format!("Committed {ok} new entries"));
                if failed > 0 {
                    self.log
                        .notice(&format!("{failed} entries can't be committed"));
                }
                let d = started.elapsed();
                self.log.notice(&format!(
                    "commit has taken {}.{:06} seconds",
                    d.as_secs(),
                    d.subsec_micros()
                ));
            }
            Err(e) => self.log.error(&format!("commit failed: {e}")),
        }
    }

    /// Runs until killed or signalled.
    pub fn run(
        &mut self,
        r: &mut Reactor,
        ctl: &mpsc::Receiver<ControlMsg>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> std::io::Result<()> {
        while !self.kill && !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let hups = super::REOPEN.load(std::sync::atomic::Ordering::SeqCst);
            if hups != self.hups_seen {
                self.hups_seen = hups;
                self.reopen_logs();
            }
            let mut overrun = false;
            let mut resync = false;
            let mut purge = false;
            let ev = self.ev_sock;
            let timer = self.resync_timer;
            let ptimer = self.purge_timer;
            let poll = self.poll_timer;
            let link_sock = self.link.as_ref().map(|l| l.sock);
            let tcp_server = self
                .link
                .as_ref()
                .and_then(|l| l.tcp.as_ref())
                .and_then(|t| t.server);
            // TCP: the connections of every channel, in buffers kept
            // across iterations (empty for datagram links).
            let mut tcp_socks = std::mem::take(&mut self.tcp_socks);
            let mut other_servers = std::mem::take(&mut self.other_servers);
            tcp_socks.clear();
            other_servers.clear();
            if let Some(l) = self.link.as_ref().filter(|l| l.tcp.is_some()) {
                l.tcp_socks_into(&mut tcp_socks);
                l.other_tcp_servers_into(&mut other_servers);
            }
            let is_tcp = |s: SockId| tcp_socks.contains(&s);
            let alive = self.alive_timer;
            let rtnl = self.rtnl;
            let watchdog = self.watchdog;
            let mut link_event = false;
            let mut tick = false;
            let mut connect_tick = false;
            let connect_timer = self.connect_timer;
            let mut closed: Vec<SockId> = Vec::new();
            self.iter_events = 0;
            self.iter_clock = None;
            let mut wait = match self.unsent_since {
                Some(t) => BATCH_DELAY.saturating_sub(t.elapsed()),
                None => Duration::from_secs(1),
            };
            if self.bulk_cursor.is_some() {
                // a bulk update goes on: do not sleep
                wait = Duration::ZERO;
            }
            if let Some(p) = self.link.as_ref().and_then(|l| l.proto.ftfw_ref()) {
                wait = wait.min(p.next_deadline().saturating_duration_since(Instant::now()));
            }
            let sent_before = self.link.as_ref().map_or(0, |l| l.chan.packets_sent);
            let waiting_since = self.unsent_since;
            r.poll(Some(wait), |ctx, e| match e {
                Event::Recv { sock, data, .. } if Some(sock) == ev => self.on_events(data, ctx),
                // Datagrams from anyone but the configured peer are
                // dropped and counted (`-s network`).
                Event::Recv { sock, from, .. }
                    if (Some(sock) == link_sock
                        || self.link.as_ref().is_some_and(|l| l.is_other(sock)))
                        && !self.link.as_mut().is_some_and(|l| l.from_peer(sock, from)) => {}
                Event::Recv { sock, data, .. }
                    if Some(sock) == link_sock
                        || self.link.as_ref().is_some_and(|l| l.is_other(sock)) =>
                {
                    let Some(l) = self.link.as_mut() else { return };
                    // Authentication: only authentic, fresh datagrams go on.
                    let Some(data) = l.open_datagram(data) else {
                        return;
                    };
                    // Redundant links: follow the channel the peer uses.
                    if Some(sock) != link_sock && !data.is_empty() {
                        l.follow(sock);
                    }
                    self.on_sync(data)
                }
                Event::Recv { sock, data, .. } if Some(sock) == tcp_server => {
                    self.on_sync_stream(data)
                }
                Event::Recv { sock, data, .. } if other_servers.contains(&sock) => {
                    // Redundant TCP links: follow the channel the peer uses.
                    if let Some(l) = self.link.as_mut() {
                        l.follow_tcp(sock);
                    }
                    self.on_sync_stream(data)
                }
                Event::Closed { sock } if is_tcp(sock) => closed.push(sock),
                Event::Error {
                    sock,
                    error: SockError::Recv { stopped: true, .. },
                } if is_tcp(sock) => closed.push(sock),
                Event::Error {
                    sock,
                    error: SockError::Send { .. },
                } if is_tcp(sock) => closed.push(sock),
                Event::Error {
                    sock,
                    error: SockError::Send { .. },
                } if Some(sock) == link_sock => self.link_send_failed = true,
                Event::Timer(t) if Some(t) == alive => tick = true,
                Event::Timer(t) if Some(t) == connect_timer => connect_tick = true,
                Event::Recv { sock, .. } if Some(sock) == rtnl => link_event = true,
                Event::Timer(t) if Some(t) == watchdog => {
                    super::notify::notify("WATCHDOG=1");
                }
                Event::Error {
                    error: SockError::Overrun { .. },
                    ..
                } => overrun = true,
                Event::Timer(t) if Some(t) == timer => resync = true,
                Event::Timer(t) if Some(t) == ptimer => purge = true,
                Event::Timer(t) if Some(t) == poll => resync = true,
                _ => {}
            })?;
            let woke = Instant::now();
            self.tcp_socks = tcp_socks;
            self.other_servers = other_servers;
            if let Some(link) = self.link.as_mut() {
                for sock in closed {
                    link.tcp_closed(r, sock);
                }
            }
            if let Some(link) = &mut self.link {
                if tick || connect_tick {
                    // TCP: accept, (re)connect without waiting, then send
                    // what waited in the error queue.
                    link.maintain_tcp(r);
                    if let Some(t) = link.tcp.as_mut() {
                        flush_error_queue(r, t, &mut link.chan);
                    }
                    for m in link.tcp_reports() {
                        self.log.notice(&m);
                    }
                }
                if tick && std::mem::take(&mut self.link_send_failed) {
                    if let Some(p) = link.proto.ftfw() {
                        p.resend_unacked();
                    }
                }
                if link_event || (tick && rtnl.is_none()) {
                    match link.failover(link_flags) {
                        Some(Ok(m)) => self.log.notice(&m),
                        Some(Err(m)) => self.log.error(&m),
                        None => {}
                    }
                }
            }
            if let Some(link) = &mut self.link {
                // Under load, keep filling datagrams (up to the MTU) across
                // iterations; send when an iteration brings no event, after
                // BATCH_DELAY, or on the tick.
                // Busy: many events in this iteration and more already
                // waiting in the ring. When the kernel has nothing more
                // for us, the burst is over: send now rather than wait.
                let busy = self.iter_events >= BUSY_EVENTS && r.work_pending().unwrap_or(true);
                let waited = self
                    .unsent_since
                    .is_some_and(|t| t.elapsed() >= BATCH_DELAY);
                if let Some(p) = link.proto.ftfw() {
                    p.on_timer(Instant::now());
                    if p.has_pending() && (!busy || waited) {
                        ftfw_transmit(
                            link,
                            &mut self.internal.cache,
                            self.exp.as_mut().map(|x| &mut x.internal),
                            r,
                            &mut self.released,
                        );
                    }
                } else {
                    let unix = crate::ct::env::now().0 as u32;
                    let (proto, mut send) = split(link, r);
                    if tick {
                        proto.on_tick(unix, &mut send);
                    } else if !busy || waited {
                        proto.flush(&mut send);
                    }
                }
                self.unsent_since = if link.proto.pending() {
                    self.unsent_since.or(Some(Instant::now()))
                } else {
                    None
                };
                // A bulk update larger than the send slots: wait here
                // rather than spin on a poll that returns at once.
                if link.proto.ftfw_ref().is_some_and(|p| p.has_pending()) {
                    await_send_slot(r);
                }
            }
            if tick || connect_tick {
                self.arm_connect_timer(r);
            }
            if let Some(link) = &self.link {
                // Latency: the batching delay of what was sent in this
                // iteration, and FT-FW's acknowledgements.
                if link.chan.packets_sent > sent_before {
                    self.lat
                        .send_delay
                        .observe(waiting_since.unwrap_or(woke).elapsed());
                }
                // (At most once per millisecond: finding the oldest
                // unacknowledged object walks past the control messages
                // at the head of the resend queue.)
                if let Some(p) = link.proto.ftfw_ref().filter(|_| self.lat.due(woke)) {
                    self.lat.track(p.last_sent_seq(), p.oldest_unacked(), woke);
                }
            }
            if tick {
                self.alarm_tick(r);
                self.warm_tick();
                if let Some(w) = self
                    .link
                    .as_mut()
                    .and_then(|l| l.auth.as_mut())
                    .and_then(|a| a.tick())
                {
                    self.log.warning(&w);
                }
            }
            if std::mem::take(&mut self.bulk) {
                // (with DisableInternalCache 1.4.7 sends the kernel's
                // table without a word)
                if self.bypass.is_none() {
                    self.log.notice("sending bulk update");
                }
                self.bulk_send(r);
            }
            if purge {
                self.purge_timer = None;
                if self.lane.first() {
                    self.log
                        .notice("flushing kernel conntrack table (scheduled)");
                    self.rt.flush_kernel += 1;
                    let flt = self.cfg.general.filter.clone();
                    std::thread::spawn(move || {
                        let _ = flush_kernel(flt.as_ref());
                    });
                }
                self.internal.cache.clear();
            }
            if overrun {
                self.on_overrun(r);
            }
            if resync {
                self.rt.resync_kernel += 1;
                match self.resync(true) {
                    // As 1.4.7 after an overrun (or a poll): every entry of
                    // the dump is sent again, so changes whose events were
                    // lost reach the peer (FT-FW queues references:
                    // entries already queued are not duplicated).
                    Ok(()) if self.mode == Mode::Sync => self.bulk_send(r),
                    Ok(()) => {}
                    Err(e) => self.log.error(&e),
                }
            }
            // Control requests (the control thread also wakes the reactor).
            while let Ok(m) = ctl.try_recv() {
                match m {
                    ControlMsg::Request(req, reply) => self.on_request(req, &reply),
                    ControlMsg::Metrics(tx) => {
                        let _ = tx.send(self.stats());
                    }
                    ControlMsg::Unknown(_) => self.rt.local_unknown += 1,
                    ControlMsg::ReadFailed => self.rt.local_read_failed += 1,
                }
            }
            if std::mem::take(&mut self.bulk_now) {
                self.bulk_send(r);
            } else if self.bulk_cursor.is_some() {
                // The next slice of a NOTRACK/ALARM bulk update.
                await_send_slot(r);
                self.bulk_step(r);
            }
            if std::mem::take(&mut self.resync_request) {
                if let Some(link) = self.link.as_mut().filter(|l| l.proto.ftfw_ref().is_some()) {
                    if let Some(p) = link.proto.ftfw() {
                        p.request_resync();
                    }
                    ftfw_transmit(
                        link,
                        &mut self.internal.cache,
                        self.exp.as_mut().map(|x| &mut x.internal),
                        r,
                        &mut self.released,
                    );
                } else if let Some(link) = &mut self.link {
                    let unix = crate::ct::env::now().0 as u32;
                    let (proto, mut send) = split(link, r);
                    proto.request_resync(unix, &mut send);
                    proto.flush(&mut send);
                }
            }
            if std::mem::take(&mut self.cancel_purge) {
                if let Some(t) = self.purge_timer.take() {
                    r.timer_remove(t);
                }
            }
            if std::mem::take(&mut self.arm_purge) {
                let secs = self
                    .cfg
                    .sync
                    .as_ref()
                    .map(|x| x.purge_timeout)
                    .unwrap_or(60);
                let at = Instant::now() + Duration::from_secs(secs as u64);
                self.purge_timer = Some(r.timer_add(Some(at), None));
            }
        }
        // Shutdown: the last state for the next start.
        self.write_snapshot();
        Ok(())
    }
}

fn channel_kind(k: ct_core::config::ChannelType) -> &'static str {
    match k {
        ct_core::config::ChannelType::Multicast => "multicast",
        ct_core::config::ChannelType::Udp => "UDP",
        ct_core::config::ChannelType::Tcp => "TCP",
    }
}

/// `RUNNING`, `NO-CARRIER` or `DOWN` from the interface flags
/// (`SIOCGIFFLAGS`, which includes the computed IFF_RUNNING).
fn link_status(dev: &str) -> &'static str {
    match link_flags(dev) {
        (true, true) => "RUNNING",
        (true, false) => "NO-CARRIER",
        _ => "DOWN",
    }
}

/// (IFF_UP, IFF_RUNNING) of an interface.
fn link_flags(dev: &str) -> (bool, bool) {
    ct_ring::iface::flags(dev)
}

/// How long a datagram waits for a free send slot before it counts as a
/// send error (FT-FW then resends it; NOTRACK and ALARM lose it). After
/// such a time-out the link counts as stalled and datagrams fail at once
/// for a second, so a stuck TCP peer cannot hold the event loop.
const SEND_WAIT: Duration = Duration::from_millis(100);

/// Queues one datagram on the sync link, waiting for a send slot when
/// they are all busy.
fn send_datagram<O: Outbox>(
    o: &mut O,
    sock: SockId,
    peer: &std::net::SocketAddr,
    mut tcp: Option<&mut super::sync::TcpLink>,
    chan: &mut stats::ChannelStats,
    stalled: &mut Option<Instant>,
    d: &[u8],
) {
    // TCP: earlier datagrams that could not be sent go first, in order;
    // while some remain, or while the client is down, this one joins them
    // (the error queue, as 1.4.7's).
    if let Some(t) = tcp.as_deref_mut() {
        flush_error_queue(o, t, chan);
        if t.client.is_none() || !t.errq.is_empty() {
            t.enqueue_error(d);
            chan.record_send(d.len(), false);
            return;
        }
    }
    let client = tcp.as_deref().and_then(|t| t.client);
    let once = |o: &mut O| match client {
        Some(c) => o.queue_to(c, d, None),
        None => o.queue_to(sock, d, Some(peer)),
    };
    // Every send slot busy (a bulk update outruns the link): wait for
    // slots to come back rather than drop the datagram, up to SEND_WAIT
    // (not inside a poll callback, where nothing can be waited for).
    let mut res = once(o);
    let calm = stalled.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
    if calm && matches!(res, Err(ct_ring::SendError::QueueFull)) {
        let t0 = Instant::now();
        while matches!(res, Err(ct_ring::SendError::QueueFull)) {
            let left = SEND_WAIT.saturating_sub(t0.elapsed());
            let freed = if left.is_zero() {
                Some(Ok(0))
            } else {
                o.wait_for_slot(left)
            };
            match freed {
                None => break,
                Some(Ok(n)) if n > 0 => res = once(o),
                Some(_) => {
                    *stalled = Some(Instant::now());
                    break;
                }
            }
        }
    }
    if res.is_err() {
        if let Some(t) = tcp {
            t.enqueue_error(d);
        }
    }
    chan.record_send(d.len(), res.is_ok());
}

/// Sends what waits in a TCP channel's error queue while its client is
/// up, oldest first, stopping at the first failure.
fn flush_error_queue<O: Outbox>(
    o: &mut O,
    t: &mut super::sync::TcpLink,
    chan: &mut stats::ChannelStats,
) {
    let Some(c) = t.client else { return };
    while let Some(d) = t.errq.front() {
        if o.queue_to(c, d, None).is_err() {
            break;
        }
        chan.record_send(d.len(), true);
        t.errq.pop_front();
    }
}

/// How often a TCP connect in progress is checked.
const CONNECT_POLL: Duration = Duration::from_millis(10);

/// A sync message waits at most this long for more to share its
/// datagram while events keep arriving; when a loop iteration brings no
/// event the datagram goes at once. Together with the reactor's wake-up
/// moderation (32 completions or 200 µs, see `daemon::MODERATION`) this
/// keeps datagrams full under a burst and the latency under 1 ms at 20k
/// changes/s. Measured (`perf/bench_latency.py`, `perf/bench_sync.py`,
/// table in perf/RESULTS.md): 5 ms without moderation gave a p50 of 4 ms
/// at 20k/s (1.4.7: 0.46 ms); 300 µs with moderation gives 0.83 ms, and
/// the primary's CPU in a 100k burst drops from 0.27 s to 0.16 s.
const BATCH_DELAY: Duration = Duration::from_micros(300);

/// An iteration with fewer event datagrams than this is a trickle: its
/// messages go at once (as 1.4.7 sends at the end of every loop). With
/// more, they wait for the next ones only if the ring already holds more
/// work (`Reactor::work_pending`): a batch of changes that came all at
/// once goes as soon as it is handled. Before that check, such a batch
/// waited the whole BATCH_DELAY: p50 latency 0.55 ms at 5k changes/s
/// against 0.26 ms for 1.4.7 (perf/RESULTS.md, "Replication latency").
const BUSY_EVENTS: u32 = 4;

/// One FT-FW tx run: every queued message goes out, encoded from the
/// internal cache's current state of each object (NEW, UPD or, for a DEAD
/// entry, DEL); DEAD entries the state machine released (their deletion
/// was acknowledged) then leave the cache. `released` is a reused buffer.
fn ftfw_transmit(
    link: &mut SyncLink,
    cache: &mut Cache,
    mut exps: Option<&mut ExpCache>,
    r: &mut Reactor,
    released: &mut Vec<u64>,
) {
    let unix = crate::ct::env::now().0 as u32;
    // A bulk update goes out as fast as the link takes it, over several
    // loop iterations, never waiting here.
    let budget = slice_budget(r);
    let (proto, mut send) = split(link, r);
    let Some(p) = proto.ftfw() else { return };
    let view: &Cache = cache;
    let exp_view = exps.as_deref();
    let op_of = |state| match state {
        ObjState::New => Op::New,
        ObjState::Alive => Op::Update,
        ObjState::Dead => Op::Delete,
    };
    p.transmit_some(
        Instant::now(),
        unix,
        budget,
        &mut |obj, cur| {
            if is_exp_ref(obj) {
                let e = exp_view?.get(obj)?;
                cur.exp = e.exp;
                return Some(Object::Exp(op_of(e.state)));
            }
            let state = view.by_ref_into(obj, &mut cur.flow)?;
            Some(Object::Ct(op_of(state)))
        },
        &mut send,
    );
    released.clear();
    released.extend(p.drain_released());
    for &obj in released.iter() {
        if is_exp_ref(obj) {
            if let Some(x) = exps.as_deref_mut() {
                if x.get(obj).is_some_and(|e| e.state == ObjState::Dead) {
                    x.remove_ref(obj);
                }
            }
        } else if cache.state_of(obj) == Some(ObjState::Dead) {
            cache.remove_ref(obj);
        }
    }
}

/// Datagrams a slice of a bulk update may send now: the free send slots
/// but one (for the datagram being filled), at least one.
fn slice_budget(r: &Reactor) -> usize {
    r.free_send_slots().saturating_sub(1).max(1)
}

/// Before the next slice of a bulk update: when (nearly) every send slot
/// is taken, waits at most SEND_WAIT for one to come back (the other
/// completions are kept for the next poll).
fn await_send_slot(r: &mut Reactor) {
    if r.free_send_slots() <= 1 {
        let _ = r.reap_sends(SEND_WAIT);
    }
}

/// A link's protocol and a sender on its current channel, through the
/// reactor (outside a `poll`) or its callback's `Ctx` (inside one).
fn split<'a, O: Outbox>(
    link: &'a mut SyncLink,
    o: &'a mut O,
) -> (&'a mut super::sync::Proto, impl FnMut(&[u8]) + 'a) {
    let SyncLink {
        proto,
        chan,
        sock,
        peer,
        tcp,
        auth,
        send_stalled,
        ..
    } = link;
    let (sock, peer) = (*sock, *peer);
    (proto, move |d: &[u8]| {
        let d = seal(auth, d);
        send_datagram(o, sock, &peer, tcp.as_mut(), chan, send_stalled, d)
    })
}

/// The datagram as it goes on the link: with its authentication trailer
/// when `Authentication` is configured.
fn seal<'a>(auth: &'a mut Option<super::auth::LinkAuth>, d: &'a [u8]) -> &'a [u8] {
    match auth {
        Some(a) => a.sealer.seal(d),
        None => d,
    }
}

/// Deletes every kernel entry that passes the filter (`-F`).
pub fn flush_kernel(flt: Option<&ct_core::config::Filter>) -> Result<u64, String> {
    let mut dump = Session::open().map_err(|e| e.to_string())?;
    let mut del = Session::open().map_err(|e| e.to_string())?;
    let mut flow = Flow::default();
    let mut n = 0;
    dump.request(
        Reply::Dump,
        |w, s| request::ct_dump(w, s, AF_UNSPEC, DumpKind::Normal, &DumpFilter::default()),
        |m| {
            let Ok((g, attrs)) = m.nfgen() else {
                return true;
            };
            if parse_flow_into(&mut flow, g.family, attrs).is_err() {
                return true;
            }
            if flt.is_some_and(|f| !filter::accept(f, &flow)) {
                return true;
            }
            let fam = flow.l3_family();
            let t = flow.orig.unwrap_or_default();
            let zone = flow.zone;
            if del
                .request(
                    Reply::Acks(1),
                    |w, s| request::ct_delete_tuple(w, s, NLM_F_REQUEST | NLM_F_ACK, fam, &t, zone),
                    |_| true,
                )
                .is_ok()
            {
                n += 1;
            }
            true
        },
    )
    .map_err(|e| format!("errno {}", e.errno()))?;
    Ok(n)
}

/// Writes a cache dump as 1.4.7 does: the default format with
/// ` [active since Ns]`, or XML; the external cache without reply tuples.
fn write_dump(
    w: &mut dyn Write,
    snap: &ct_core::table::Snapshot,
    xml: bool,
    external: bool,
    now: u32,
) -> std::io::Result<()> {
    let env = SysEnv { labels: None };
    let mut line = Vec::with_capacity(512);
    let mut res = Ok(());
    snap.for_each(|mut f, created| {
        if res.is_err() {
            return;
        }
        f.timeout = None;
        if external {
            f.reply = None;
        }
        line.clear();
        if xml {
            format::write_xml_flow(
                &mut line,
                &f,
                EventKind::None,
                &PlainOpts::default(),
                &env,
                None,
            );
        } else {
            format::write_plain(&mut line, &f, EventKind::None, &PlainOpts::default(), &env);
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let _ = writeln!(line, " [active since {}s]", now.saturating_sub(created));
        }
        res = w.write_all(&line);
    });
    res
}

/// `-i` with DisableInternalCache: a live dump of the kernel's table
/// (through the Filter), in conntrack's default format, made by the
/// client's thread.
fn kernel_dump(filter: Option<ct_core::config::Filter>) -> CtlReply {
    CtlReply::Stream(Box::new(move |w| {
        let mut table = NetlinkTable::open(filter)?;
        let env = SysEnv { labels: None };
        let mut line = Vec::with_capacity(512);
        let mut res = Ok(());
        table
            .dump(&mut |f| {
                if res.is_err() {
                    return;
                }
                line.clear();
                format::write_plain(&mut line, f, EventKind::None, &PlainOpts::default(), &env);
                res = w.write_all(&line);
            })
            .map_err(std::io::Error::from_raw_os_error)?;
        res
    }))
}
