//! A lane's driver: one thread owns the lane's reactor (the ctnetlink
//! event socket, the sync link's sockets, timers), its control channel
//! and its [`Replicator`], the sans-IO state machine that holds the
//! caches and the sync protocol. The loop hands the replicator what
//! arrives (event datagrams, sync datagrams, ticks, control requests),
//! each with the time, and carries out what it asks through
//! [`World`](super::world::World): datagrams to send, kernel changes and
//! dumps, log lines. Overruns (grow the buffer, schedule a resync),
//! timers, failover, TCP upkeep, snapshots and signals are the driver's.

use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ct_core::config::{Config, RunMode};
use ct_core::ctl::stats::{self, RuntimeStats};
use ct_ring::reactor::{Event, Outbox, Reactor, SockError, SockId, TimerId};
use ct_transport::replicator::{self, Now, Replicator, Role};

use super::control::{ControlMsg, ReplyTx};
use super::inject::Inject;
use super::log::{FlowLog, Logger};
use super::sync::SyncLink;
use super::world::{await_send_slot, flush_error_queue, slice_budget, World};
use crate::nl::Session;

/// Which daemon this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stats,
    Sync,
    /// Neither Sync nor Stats (General and maybe Helper only): 1.4.7 runs
    /// the control socket alone, answering `-s runtime` and `-k`.
    None,
}

/// Everything a lane's loop owns.
pub struct Engine {
    pub cfg: Config,
    pub mode: Mode,
    pub log: Logger,
    pub flowlog: Option<FlowLog>,
    /// The lane's logic: caches, protocol, bulk updates, resyncs.
    pub rep: Replicator,
    /// The driver's counters (the replicator's event counters are added
    /// to them in [`stats`](Engine::stats)).
    pub rt: RuntimeStats,
    /// Sync link counters while there is no link.
    pub net: stats::NetworkStats,
    pub(super) started: Instant,
    pub(super) epoch: Instant,
    pub(super) ev_sock: Option<SockId>,
    resync_timer: Option<TimerId>,
    /// The sync link (sync mode with a channel this build speaks).
    pub link: Option<SyncLink>,
    pub(super) alive_timer: Option<TimerId>,
    /// Redundant links: the rtnetlink link-event socket (failover as
    /// soon as a link changes; without it, link state is polled every
    /// second).
    pub(super) rtnl: Option<SockId>,
    /// systemd's watchdog: `WATCHDOG=1` on every expiry.
    pub watchdog: Option<TimerId>,
    /// TCP: a short periodic timer while a connect is in progress (its
    /// completion is checked without waiting).
    connect_timer: Option<TimerId>,
    /// Reused by the run loop: the TCP connections of every channel and
    /// the server connections of the other channels.
    tcp_socks: Vec<SockId>,
    other_servers: Vec<SockId>,
    /// The clocks read once per loop iteration for the event path: one
    /// clock read per wake-up instead of one per event.
    iter_now: Option<Now>,
    /// `Snapshot`: warm restart of the external cache.
    pub(super) warm: Option<super::warm::Warm>,
    /// Replication latency for the metrics endpoint.
    pub(super) lat: super::latency::SyncLatency,
    /// DisableExternalCache: the handles that inject received states.
    pub(super) inject: Option<Inject>,
    pub(super) exp_inject: Option<Session>,
    /// Polling mode (`PollSecs`): the periodic re-read of the table.
    pub(super) poll_timer: Option<TimerId>,
    /// `-t`: the scheduled kernel flush (PurgeTimeout).
    pub(super) purge_timer: Option<TimerId>,
    /// Timer changes asked by control requests, applied by the loop.
    pub(super) arm_purge: bool,
    pub(super) cancel_purge: bool,
    /// `-c` without NEW events, and the resync it owes.
    pub(super) quiet: super::quiet_commit::QuietCommit,
    grow_warned: bool,
    /// When the event socket's buffer was last doubled ([`GROW_EVERY`]).
    grown_at: Option<Instant>,
    pub kill: bool,
    /// Which lane this engine is (`Lanes`).
    pub lane: super::lanes::Lane,
    /// Whether this lane's peer lane is there (a peer with fewer lanes).
    lane_peer: super::lane_peer::Watch,
    /// With lanes: the event socket, to give the lane a new share of the
    /// events when the lanes follow the peer.
    pub(super) ev_fd: Option<std::os::fd::OwnedFd>,
    /// Reads entries back (the NAT sequence adjustment); see World.
    getter: Option<crate::nl::Session>,
    /// SIGHUPs handled (the count in `daemon::REOPEN`).
    hups_seen: u64,
    /// Control connections kept open until shutdown has finished (`-k`
    /// returns when the lock and the socket are gone).
    pub held: Vec<ReplyTx>,
    line: Vec<u8>,
    /// The last kernel event or control request: the reactor lingers
    /// ([`LINGER`]) only [`LINGER_AFTER`] past it.
    urgent_at: Instant,
    /// Whether the reactor lingers now.
    lingering: bool,
}

pub(super) fn now_secs(epoch: Instant) -> u32 {
    epoch.elapsed().as_secs() as u32
}

/// Sets one-shot timer `t` to fire at `at`, adding it the first time.
pub(super) fn rearm(r: &mut Reactor, t: &mut Option<TimerId>, at: Instant) {
    match *t {
        Some(id) => {
            r.timer_reset(id, Some(at));
        }
        None => *t = Some(r.timer_add(Some(at), None)),
    }
}

/// The event socket's buffer doubles at most once in this long.
const GROW_EVERY: Duration = Duration::from_secs(1);

/// How often a TCP connect in progress is checked.
const CONNECT_POLL: Duration = Duration::from_millis(10);

/// A lane that keeps an external cache and has had no kernel event and
/// no control request for [`LINGER_AFTER`] (a backup, or a quiet
/// primary) lets the reactor linger ([`Reactor::set_linger`]): the sync
/// link's datagrams are handled every 5 ms (want 2: one busy socket never
/// makes two completions before it is handled), not each as it comes, so
/// a backup fed a trickle wakes a few times less often (each wake-up of an
/// idle vCPU costs more than the datagrams it handles; perf/RESULTS.md,
/// session 20). Kernel events still wake it at once (the event socket is
/// urgent: a linger must not let a burst overrun it), and so does a
/// control request that comes while datagrams wait; a wake-up that finds
/// [`SyncLink::linger_busy`](super::sync::SyncLink) completions or more
/// (a quarter of what a channel socket holds: 64 with the lab's 24 MB
/// buffers, 15 with the system's default 208 KiB) ends the lingering for
/// [`LINGER_AFTER`] (a burst on the link must not fill the socket's
/// buffer). The external cache lags by at most 5 ms; a fail-over's commit
/// is a control request, handled with every datagram that came before
/// it. Not with DisableExternalCache: the states go into the kernel, where
/// latency counts.
const LINGER: (u32, Duration) = (2, Duration::from_millis(5));
const LINGER_AFTER: Duration = Duration::from_secs(1);

/// The replicator's [`Io`](replicator::Io) over the engine's parts and an
/// outbox (the reactor outside a poll, its callback's context inside),
/// borrowing every field but `rep`.
macro_rules! world {
    ($e:ident, $o:expr) => {
        World {
            o: $o,
            link: $e.link.as_mut(),
            inject: $e.inject.as_mut(),
            exp_inject: $e.exp_inject.as_mut(),
            sync: $e.cfg.sync.as_ref(),
            filter: $e.cfg.general.filter.as_ref(),
            lane: $e.lane,
            log: &mut $e.log,
            flowlog: $e.flowlog.as_mut(),
            line: &mut $e.line,
            getter: &mut $e.getter,
        }
    };
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
        let rep = Replicator::new(replicator::Config {
            role: match mode {
                Mode::Sync => Role::Sync,
                Mode::Stats => Role::Stats,
                Mode::None => Role::Idle,
            },
            buckets: (g.hash_size as usize).div_ceil(n),
            limit: (g.hash_limit as usize).div_ceil(n),
            filter: g.filter.clone(),
            sync: cfg.sync.clone().filter(|_| mode == Mode::Sync),
        });
        Engine {
            mode,
            log,
            flowlog: None,
            rep,
            rt: RuntimeStats::default(),
            net: stats::NetworkStats::default(),
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
            iter_now: None,
            warm: None,
            lat: super::latency::SyncLatency::default(),
            inject: None,
            exp_inject: None,
            poll_timer: None,
            purge_timer: None,
            arm_purge: false,
            cancel_purge: false,
            quiet: Default::default(),
            grow_warned: false,
            grown_at: None,
            kill: false,
            lane,
            lane_peer: super::lane_peer::Watch::new(
                lane,
                &super::lane_peer::SHARED,
                cfg.sync
                    .as_ref()
                    .is_some_and(|s| s.mode() != ct_core::config::SyncMode::Alarm),
            ),
            ev_fd: None,
            getter: None,
            hups_seen: 0,
            held: Vec::new(),
            line: Vec::with_capacity(1024),
            urgent_at: Instant::now(),
            lingering: false,
            cfg,
        }
    }

    /// The time, read now.
    pub(super) fn now(&self) -> Now {
        Now {
            at: Instant::now(),
            secs: now_secs(self.epoch),
            unix: crate::ct::env::now().0 as u32,
        }
    }

    /// Arms the connect timer while a TCP connect is in progress, removes
    /// it otherwise.
    pub(super) fn arm_connect_timer(&mut self, r: &mut Reactor) {
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

    /// Asks the peer for a resync (`-n`, StartupResync); sent by the run
    /// loop.
    pub fn request_resync(&mut self) {
        self.rep.request_resync();
    }

    /// Dumps the kernel table into the internal cache (start-up, `-R`,
    /// overrun resync). With `sweep`, entries the dump did not see are
    /// removed afterwards (sent as DEL, or logged in stats mode).
    pub fn resync(&mut self, sweep: bool) -> Result<(), String> {
        let now = self.now();
        self.resync_with(&now, sweep, &mut Offline)
    }

    fn resync_with<O: Outbox>(&mut self, now: &Now, sweep: bool, o: &mut O) -> Result<(), String> {
        self.rep
            .resync(now, sweep, &mut world!(self, o))
            .map_err(|e| e.to_string())
    }

    /// ExpectationSync: the kernel's expectations into the internal
    /// expectation cache.
    pub(super) fn resync_exp(&mut self) -> Result<(), String> {
        let now = self.now();
        self.rep
            .resync_exp(&now, false, &mut world!(self, &mut Offline))
            .map_err(|e| e.to_string())
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

    /// Bytes from the TCP server connection: complete messages are
    /// processed, a partial one waits for the next read.
    fn on_sync_stream<O: Outbox>(&mut self, data: &[u8], o: &mut O) {
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
            self.on_sync(&buf[..done], None, o);
        }
        buf.drain(..done);
        if let Some(tcp) = self.link.as_mut().and_then(|l| l.tcp.as_mut()) {
            tcp.pending = buf;
        }
    }

    /// A datagram from the sync link; `from`: its sender, on a multicast
    /// group (FT-FW tracks each node).
    fn on_sync<O: Outbox>(&mut self, data: &[u8], from: Option<IpAddr>, o: &mut O) {
        let Some(link) = &mut self.link else { return };
        if let Some(w) = self.warm.as_mut() {
            w.on_heard(Instant::now());
        }
        self.lane_peer.on_heard();
        // (an empty datagram counts as a received packet, as in 1.4.7,
        // and carries nothing)
        link.chan.bytes_recv += data.len() as u64;
        link.chan.packets_recv += 1;
        if data.is_empty() {
            return;
        }
        // Warm restart: a message about an entry loaded from the snapshot
        // (still stale) confirms it.
        let stale = self
            .warm
            .as_ref()
            .is_some_and(|w| w.reconcile.is_some())
            .then_some(super::warm::STALE_GEN);
        let now = self.now();
        let got = self
            .rep
            .on_datagram_from(&now, data, from, stale, &mut world!(self, o));
        if let Some(w) = self.warm.as_mut().filter(|_| got.confirmed) {
            w.on_confirm(Instant::now());
        }
    }

    /// ENOBUFS on the event socket: count it, grow the buffer, schedule a
    /// resync.
    fn on_overrun(&mut self, r: &mut Reactor) {
        self.rt.overrun += 1;
        self.rt.catch_failed += 1;
        let max = self.cfg.general.netlink_buffer_size_max_growth as u64;
        let cur = self.rt.buffer_size;
        // At most one doubling a second: the kernel raises ENOBUFS once
        // per congestion episode, but a reader as quick as this one
        // drains the queue between episodes, so a burst is several of
        // them, and doubling on each took the buffer from 8 MB to 256 MB
        // within the second of a fail-over's commit (1.4.7, reading one
        // message per wake-up, doubled once there).
        let now = Instant::now();
        let grew_lately = self
            .grown_at
            .is_some_and(|t| now.duration_since(t) < GROW_EVERY);
        if !grew_lately && cur * 2 <= max {
            self.grown_at = Some(now);
            // (the kernel doubles what is asked: cur * 2)
            if let Some(fd) = self.ev_sock.and_then(|s| r.fd(s)) {
                if let Ok(v) = ct_ring::sockopt::set_rcvbuf(fd, cur as usize) {
                    self.rt.buffer_size = v as u64;
                    self.log.notice(&format!(
                        "netlink event socket buffer size has been doubled to {v} bytes"
                    ));
                }
            }
        } else if !grew_lately && !self.grow_warned {
            self.grow_warned = true;
            self.log.warning("netlink event socket buffer size cannot be doubled further since it will exceed NetlinkBufferSizeMaxGrowth. We are likely to be losing events, this may lead to unsynchronized replicas. Please, consider increasing netlink socket buffer size via NetlinkBufferSize and NetlinkBufferSizeMaxGrowth clauses in conntrackd.conf");
        }
        self.rearm_overrun_resync(r);
    }

    /// `NetlinkOverrunResync`: the resync after lost events, N seconds
    /// after the last loss.
    fn rearm_overrun_resync(&mut self, r: &mut Reactor) {
        if let Some(secs) = self.cfg.general.overrun_resync_secs() {
            let at = Instant::now() + Duration::from_secs(secs as u64);
            rearm(r, &mut self.resync_timer, at);
        }
    }

    /// Runs until killed or signalled.
    pub fn run(
        &mut self,
        r: &mut Reactor,
        ctl: &mpsc::Receiver<ControlMsg>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> std::io::Result<()> {
        // (every lane has opened its inject handle, once and for all, when
        // the gate lets this one run)
        self.filter_other_injects();
        while !self.kill && !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let hups = super::REOPEN.load(std::sync::atomic::Ordering::SeqCst);
            if hups != self.hups_seen {
                self.hups_seen = hups;
                self.reopen_logs();
            }
            let mut overrun = false;
            // (events dropped later in the same congestion episode)
            let mut more_drops = false;
            let mut resync = false;
            let mut owed_fired = false;
            // (a lane that only gave flows away: no bulk after its resync)
            let mut gives_only = false;
            let mut purge = false;
            let ev = self.ev_sock;
            let timer = self.resync_timer;
            let ptimer = self.purge_timer;
            let poll = self.poll_timer;
            let qtimer = self.quiet.timer();
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
            let mut send_failed = false;
            let connect_timer = self.connect_timer;
            let mut closed: Vec<SockId> = Vec::new();
            self.iter_now = None;
            let wait = self.rep.wait(Instant::now(), Duration::from_secs(1));
            let sent_before = self.link.as_ref().map_or(0, |l| l.chan.packets_sent);
            let waiting_since = self.rep.unsent_since();
            let linger = self.mode == Mode::Sync
                && self.link.is_some()
                && self.inject.is_none()
                && self.urgent_at.elapsed() >= LINGER_AFTER;
            if linger != self.lingering {
                self.lingering = linger;
                r.set_linger(linger.then_some(LINGER));
            }
            let mut urgent = false;
            let handled = r.poll(Some(wait), |ctx, e| match e {
                Event::Recv { sock, data, .. } if Some(sock) == ev => {
                    urgent = true;
                    let epoch = self.epoch;
                    let now = *self.iter_now.get_or_insert_with(|| Now {
                        at: Instant::now(),
                        secs: now_secs(epoch),
                        unix: crate::ct::env::now().0 as u32,
                    });
                    self.rep
                        .on_kernel_events(&now, data, &mut world!(self, ctx))
                }
                // Datagrams from anyone but the configured peer are
                // dropped and counted (`-s network`).
                Event::Recv { sock, from, .. }
                    if (Some(sock) == link_sock
                        || self.link.as_ref().is_some_and(|l| l.is_other(sock)))
                        && !self.link.as_mut().is_some_and(|l| l.from_peer(sock, from)) => {}
                Event::Recv {
                    sock, data, from, ..
                } if Some(sock) == link_sock
                    || self.link.as_ref().is_some_and(|l| l.is_other(sock)) =>
                {
                    let Some(l) = self.link.as_mut() else { return };
                    // One multicast group: a cluster of any number of
                    // nodes, told apart by their addresses (with redundant
                    // channels a node has several: two nodes, as 1.4.7).
                    let sender = from
                        .filter(|_| l.peer.ip().is_multicast() && !l.has_others())
                        .map(|a| a.ip());
                    // Authentication: only authentic, fresh datagrams go on.
                    let Some(data) = l.open_datagram(data) else {
                        return;
                    };
                    // Redundant links: follow the channel the peer uses.
                    if Some(sock) != link_sock && !data.is_empty() {
                        l.follow(sock);
                    }
                    self.on_sync(data, sender, ctx)
                }
                Event::Recv { sock, data, .. } if Some(sock) == tcp_server => {
                    self.on_sync_stream(data, ctx)
                }
                Event::Recv { sock, data, .. } if other_servers.contains(&sock) => {
                    // Redundant TCP links: follow the channel the peer uses.
                    if let Some(l) = self.link.as_mut() {
                        l.follow_tcp(sock);
                    }
                    self.on_sync_stream(data, ctx)
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
                } if Some(sock) == link_sock => send_failed = true,
                Event::Timer(t) if Some(t) == alive => tick = true,
                Event::Timer(t) if Some(t) == connect_timer => connect_tick = true,
                Event::Recv { sock, .. } if Some(sock) == rtnl => link_event = true,
                Event::Timer(t) if Some(t) == watchdog => {
                    super::notify::notify("WATCHDOG=1");
                }
                Event::Error {
                    error: SockError::Overrun { first, .. },
                    ..
                } => {
                    overrun |= first;
                    more_drops |= !first;
                }
                Event::Timer(t) if Some(t) == timer => resync = true,
                Event::Timer(t) if Some(t) == ptimer => purge = true,
                Event::Timer(t) if Some(t) == poll => resync = true,
                // (what a quiet commit owes: as after an overrun)
                Event::Timer(t) if Some(t) == qtimer => {
                    resync = true;
                    owed_fired = true;
                }
                _ => {}
            })?;
            if owed_fired {
                self.quiet.fired();
            }
            let woke = Instant::now();
            let busy = self.link.as_ref().map_or(usize::MAX, |l| l.linger_busy);
            if urgent || (self.lingering && handled >= busy) {
                self.urgent_at = woke;
            }
            self.tcp_socks = tcp_socks;
            self.other_servers = other_servers;
            if send_failed {
                self.rep.on_send_failed();
            }
            if let Some(link) = self.link.as_mut() {
                for sock in closed {
                    link.tcp_closed(r, sock);
                }
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
                if link_event || (tick && rtnl.is_none()) {
                    match link.failover(link_flags) {
                        Some(Ok(m)) => self.log.notice(&m),
                        Some(Err(m)) => self.log.error(&m),
                        None => {}
                    }
                }
            }
            if tick {
                let now = self.now();
                self.rep.on_tick(&now, &mut world!(self, r));
            }
            if tick || connect_tick {
                self.arm_connect_timer(r);
            }
            if tick {
                self.warm_tick();
                let t = self.lane_peer.tick(Instant::now());
                if let Some(m) = t.warning {
                    self.log.warning(&m);
                }
                if let Some(m) = t.notice {
                    self.log.notice(&m);
                }
                if let Some(active) = t.follow {
                    // a new share of the events, then a resync from the
                    // kernel: what the lane no longer owns is withdrawn,
                    // what it takes over goes out in a bulk update
                    self.follow_peer_lanes(active);
                    // (unless a resync was due anyway: it sends its bulk)
                    gives_only = !t.takes && !resync;
                    resync = true;
                }
                if let Some(w) = self
                    .link
                    .as_mut()
                    .and_then(|l| l.auth.as_mut())
                    .and_then(|a| a.tick())
                {
                    self.log.warning(&w);
                }
            }
            if purge {
                self.purge_timer = None;
                if self.lane.first() {
                    self.log
                        .notice("flushing kernel conntrack table (scheduled)");
                    self.rt.flush_kernel += 1;
                    let flt = self.cfg.general.filter.clone();
                    std::thread::spawn(move || {
                        let _ = super::engine_requests::flush_kernel(flt.as_ref());
                    });
                }
                self.rep.flush_internal();
            }
            if overrun {
                self.on_overrun(r);
            } else if more_drops {
                self.rearm_overrun_resync(r);
            }
            if resync {
                self.rt.resync_kernel += 1;
                let now = self.now();
                match self.resync_with(&now, true, r) {
                    // As 1.4.7 after an overrun (or a poll): every entry of
                    // the dump is sent again, so changes whose events were
                    // lost reach the peer (FT-FW queues references:
                    // entries already queued are not duplicated).
                    Ok(()) if self.mode == Mode::Sync && !gives_only => self.rep.send_bulk(false),
                    Ok(()) => {}
                    Err(e) => self.log.error(&e),
                }
            }
            // Control requests (the control thread also wakes the reactor).
            while let Ok(m) = ctl.try_recv() {
                match m {
                    ControlMsg::Request(req, reply) => {
                        self.urgent_at = Instant::now();
                        self.on_request(req, &reply);
                        // (the client has its answer before the lane
                        // mirrors a quiet commit)
                        drop(reply);
                        if self.quiet.take_mirror() {
                            let now = self.now();
                            self.rep.mirror_committed(&now);
                        }
                    }
                    ControlMsg::Metrics(tx) => {
                        let _ = tx.send(self.stats());
                    }
                    ControlMsg::Unknown(_) => self.rt.local_unknown += 1,
                    ControlMsg::ReadFailed => self.rt.local_read_failed += 1,
                }
            }
            self.quiet.apply(r);
            let sending = self.rep.bulk_running()
                || self
                    .rep
                    .protocol()
                    .is_some_and(|p| p.ftfw().is_some_and(|f| f.has_pending()));
            if sending {
                // A bulk update larger than the send slots: wait for the
                // link rather than spin on a poll that returns at once.
                await_send_slot(r);
            }
            self.end_of_iteration(r);
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
                if let Some(p) = self
                    .rep
                    .protocol()
                    .and_then(|p| p.ftfw())
                    .filter(|_| self.lat.due(woke))
                {
                    self.lat.track(p.last_sent_seq(), p.oldest_unacked(), woke);
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

    /// The replicator's end of an iteration: requested resyncs, bulk
    /// slices and what waits to be sent (unless busy: more events
    /// already wait in the ring).
    fn end_of_iteration(&mut self, r: &mut Reactor) {
        if self.link.is_none() {
            return;
        }
        let now = self.now();
        let more = r.work_pending().unwrap_or(true);
        let budget = slice_budget(r);
        self.rep.poll(&now, more, budget, &mut world!(self, r));
    }
}

/// An outbox for replicator calls that send nothing (resyncs at start-up
/// and on `-R`: their sweeps go at the end of the loop's iteration, from
/// the replicator's poll).
pub(super) struct Offline;

impl Outbox for Offline {
    fn queue_to(
        &mut self,
        _sock: SockId,
        _data: &[u8],
        _to: Option<&std::net::SocketAddr>,
    ) -> Result<(), ct_ring::SendError> {
        Err(ct_ring::SendError::QueueFull)
    }

    fn wait_for_slot(&mut self, _max: Duration) -> Option<std::io::Result<usize>> {
        None
    }
}

/// (IFF_UP, IFF_RUNNING) of an interface.
pub(super) fn link_flags(dev: &str) -> (bool, bool) {
    ct_ring::iface::flags(dev)
}
