//! A lane's answers to control requests (`-s`, `-i`/`-e`, `-f`, `-F`,
//! `-R`, `-n`, `-B`, `-c`, `-t`, `-k` and the expectation forms) and its
//! counters for `-s` and the metrics endpoint, read from the replicator
//! and the link.

use std::io::Write;
use std::time::Instant;

use ct_core::ctl::stats;
use ct_core::ctl::Request;
use ct_core::flow::{Flow, AF_UNSPEC};
use ct_core::format::{self, EventKind, PlainOpts};
use ct_core::netlink::ct::parse_flow_into;
use ct_core::netlink::msg::*;
use ct_core::netlink::request::{self, DumpFilter, DumpKind};
use ct_core::table::{Cache, KernelTable};

use super::commit::{commit, CommitReport};
use super::control::{Reply as CtlReply, ReplyTx};
use super::engine::{link_flags, now_secs, Engine, Mode};
use super::kernel::NetlinkTable;
use crate::ct::env::SysEnv;
use crate::nl::{Reply, Session};

impl Engine {
    /// `-i`/`-e` (and their XML forms): a snapshot of the cache, formatted
    /// and written by the client's thread.
    fn cache_dump(&self, cache: &Cache, xml: bool, external: bool) -> CtlReply {
        let snap = cache.snapshot();
        let now = now_secs(self.epoch);
        let expires = self.expiry(external);
        let buckets = self.cfg.general.hash_size;
        CtlReply::Stream(Box::new(move |w| {
            write_dump(w, &snap, xml, external, now, expires, buckets)
        }))
    }

    /// ALARM's external caches expire what the peer has not refreshed for
    /// CacheTimeout seconds, and `-e` says when (1.4.7's TIMER feature):
    /// the timeout, for the external cache in ALARM.
    fn expiry(&self, external: bool) -> Option<u32> {
        match (external, self.alarm(), &self.cfg.sync) {
            (true, true, Some(s)) => Some(s.cache_timeout),
            _ => None,
        }
    }

    fn network(&self) -> stats::NetworkStats {
        self.link
            .as_ref()
            .map(|l| l.network_stats(self.rep.protocol()))
            .unwrap_or(self.net)
    }

    /// The queues of `-s queue`, in 1.4.7's order: txqueue, errorq and
    /// (FT-FW) rsqueue.
    fn queues(&self) -> Vec<super::stats::QueueCounters> {
        use super::stats::QueueCounters;
        let Some(sync) = &self.cfg.sync else {
            return Vec::new();
        };
        let ftfw = self.rep.protocol().and_then(|p| p.ftfw());
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
        let p = self.rep.protocol()?.ftfw()?;
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
        let c = *self.rep.counters();
        rt.events_received += c.events_received;
        rt.events_unknown += c.events_unknown;
        rt.events_filtered += c.events_filtered;
        rt.catch_failed += c.catch_failed;
        rt.uptime_secs = self.started.elapsed().as_secs();
        let mut snap = Stats {
            kind: match self.mode {
                Mode::None => Kind::None,
                Mode::Stats => Kind::Stats,
                Mode::Sync => Kind::Sync,
            },
            uptime_secs: self.started.elapsed().as_secs_f64(),
            rt,
            traffic_bytes: c.traffic_bytes,
            traffic_packets: c.traffic_packets,
            ..Default::default()
        };
        let cache = |name, c: &Cache| CacheCounters {
            name,
            entries: c.len() as u64,
            stats: c.stats(),
        };
        match self.mode {
            Mode::None => {}
            Mode::Stats => snap.caches.push(cache("stats", self.rep.internal())),
            Mode::Sync => {
                match self.rep.bypass() {
                    Some(b) => snap.bypass = Some(*b),
                    None => snap.caches.push(cache("internal", self.rep.internal())),
                }
                match &self.inject {
                    Some(i) => snap.inject = Some(i.stats),
                    None => snap.caches.push(cache("external", self.rep.external())),
                }
                if let Some(x) = self.rep.exp() {
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
                // queue's datagrams and FT-FW's control messages (in the
                // tx queue, then ACK / NACK / RESYNC in the resend
                // queue); the resend queue's objects are cache objects,
                // not counted
                let controls = self
                    .rep
                    .protocol()
                    .and_then(|p| p.ftfw())
                    .map_or(0, |p| p.control_entries() as u64);
                snap.allocated = controls
                    + snap
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
                        if let Some(p) = self.rep.protocol().and_then(|p| p.ftfw()) {
                            p.write_rsqueue(&mut text);
                        }
                        let lines: Vec<String> = text.lines().skip(1).map(String::from).collect();
                        snap.rsqueue = Some((lines.len() as u64, lines));
                    }
                }
                if let Some(p) = self.rep.protocol().and_then(|p| p.ftfw()) {
                    snap.peers = p
                        .peers()
                        .map(|v| super::stats::PeerCounters {
                            addr: v.addr.map_or_else(|| "peer".to_string(), |a| a.to_string()),
                            live: v.live,
                            lost: v.lost,
                            before: v.before,
                            unacked: v.unacked as u64,
                            lag: v.lag,
                            nacks: v.nacks,
                            resent: v.resent,
                            returns: v.returns,
                        })
                        .collect();
                }
                if self.link.is_some() {
                    let now = Instant::now();
                    snap.latency = Some(LatencyCounters {
                        send_delay: self.lat.send_delay.clone(),
                        ftfw: self.unacked_objects().map(|unacked| {
                            // nothing unacknowledged: no lag, even if the
                            // tracker has not seen the last ACK yet (it
                            // samples at most once a millisecond)
                            let lag = if unacked == 0 {
                                0.0
                            } else {
                                self.lat.lag(now).as_secs_f64()
                            };
                            (self.lat.ack.clone(), lag, unacked)
                        }),
                    });
                }
            }
        }
        snap
    }

    /// Whether the sync mode is ALARM.
    fn alarm(&self) -> bool {
        self.cfg
            .sync
            .as_ref()
            .is_some_and(|s| s.mode() == ct_core::config::SyncMode::Alarm)
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
            // (`-R` and `-F` alone ask for both tables: with
            // ExpectationSync the expectations follow, logged and counted
            // as 1.4.7 does)
            CtResyncMaster | AllResyncMaster if self.rep.bypass().is_some() => {
                self.log.notice("resync is unsupported in this mode");
                if req == AllResyncMaster && self.rep.exp().is_some() {
                    self.log.notice("resync is unsupported in this mode");
                }
            }
            CtResyncMaster | AllResyncMaster => {
                // (in place of a resync a quiet commit owes, which sweeps)
                let sweep = self.quiet.settled();
                self.log.notice("resync with master conntrack table");
                // (each lane reads its share; the daemon did one resync)
                if self.lane.first() {
                    self.rt.resync_kernel += 1;
                }
                if let Err(e) = self.resync(sweep) {
                    self.log.error(&e);
                }
                if req == AllResyncMaster && self.rep.exp().is_some() {
                    self.resync_exp_master();
                }
            }
            CtFlushMaster | AllFlushMaster if !self.lane.first() => {}
            CtFlushMaster | AllFlushMaster => {
                self.log.notice("flushing kernel conntrack table");
                self.rt.flush_kernel += 1;
                let flt = self.cfg.general.filter.clone();
                let exp = req == AllFlushMaster && self.rep.exp().is_some();
                if exp {
                    self.log.notice("flushing kernel expect table");
                    self.rt.flush_kernel += 1;
                }
                std::thread::spawn(move || {
                    let _ = flush_kernel(flt.as_ref());
                    if exp {
                        let _ = super::expect::kernel_flush();
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
            // ALARM: nothing (1.4.7's ALARM has no handler for either:
            // `-h` says "only FT-FW and NOTRACK modes")
            RequestDump | SendBulk if self.alarm() => {}
            RequestDump if self.link.is_some() => {
                self.log.notice("resync requested");
                self.rep.request_resync();
            }
            SendBulk if self.link.is_some() => {
                // (announced, unless with DisableInternalCache: 1.4.7
                // says nothing when it sends the kernel's table)
                self.rep.send_bulk(true);
            }
            CtDumpInternal | CtDumpIntXml if self.rep.bypass().is_some() && self.lane.first() => {
                // no internal cache: the kernel's table, in conntrack's
                // default format (1.4.7 has no XML form here either);
                // once, by the first lane
                let _ = reply.send(kernel_dump(self.cfg.general.filter.clone()));
            }
            CtDumpInternal | CtDumpIntXml if self.rep.bypass().is_some() => {}
            CtFlushIntCache if self.rep.bypass().is_some() => {
                // 1.4.7 flushes the kernel table here (which, right after
                // the commit of primary-backup.sh, would drop every
                // connection just taken over); there is no internal
                // cache to flush.
                self.log.notice("flushing internal cache");
            }
            CtDumpInternal => {
                let _ = reply.send(self.cache_dump(self.rep.internal(), false, false));
            }
            CtDumpIntXml => {
                let _ = reply.send(self.cache_dump(self.rep.internal(), true, false));
            }
            CtDumpExternal if self.mode == Mode::Sync => {
                let _ = reply.send(self.cache_dump(self.rep.external(), false, true));
            }
            CtDumpExtXml if self.mode == Mode::Sync => {
                let _ = reply.send(self.cache_dump(self.rep.external(), true, true));
            }
            // (bare `-f` asks for every cache: 1.4.7's stats mode has no
            // case for it and does nothing; `-f internal` flushes)
            CtFlushIntCache | CtFlushCache if self.mode == Mode::Stats => {
                self.log.notice("flushing caches");
                self.rep.flush_internal();
            }
            CtFlushIntCache if self.mode == Mode::Sync => {
                self.cancel_purge = true;
                self.quiet.settled();
                self.log.notice("flushing internal cache");
                self.rep.flush_internal();
            }
            CtFlushExtCache if self.mode == Mode::Sync => {
                self.log.notice("flushing external cache");
                self.rep.flush_external();
            }
            AllFlushCache | CtFlushCache if self.mode == Mode::Sync => {
                self.cancel_purge = true;
                self.quiet.settled();
                self.log.notice("flushing caches");
                self.rep.flush_internal();
                self.rep.flush_external();
                if req == AllFlushCache {
                    self.rep.flush_exp();
                }
            }
            ExpStats if self.rep.exp().is_some() => {
                let _ = reply.send(CtlReply::Stats(Box::new(self.stats())));
            }
            ExpFlushMaster if self.rep.exp().is_some() && !self.lane.first() => {}
            ExpFlushMaster if self.rep.exp().is_some() => {
                self.log.notice("flushing kernel expect table");
                self.rt.flush_kernel += 1;
                std::thread::spawn(|| {
                    let _ = super::expect::kernel_flush();
                });
            }
            ExpResyncMaster if self.rep.exp().is_some() && self.rep.bypass().is_some() => {
                self.log.notice("resync is unsupported in this mode");
            }
            ExpResyncMaster if self.rep.exp().is_some() => self.resync_exp_master(),
            ExpDumpInternal | ExpDumpIntXml | ExpDumpExternal | ExpDumpExtXml => {
                let now = now_secs(self.epoch) as u64;
                if let Some(x) = self.rep.exp() {
                    let ext = matches!(req, ExpDumpExternal | ExpDumpExtXml);
                    let xml = matches!(req, ExpDumpIntXml | ExpDumpExtXml);
                    let cache = if ext { &x.external } else { &x.internal };
                    let expires = self.expiry(ext).map(u64::from);
                    let buckets = self.cfg.general.hash_size;
                    text(super::expect::dump(cache, xml, now, expires, buckets));
                }
            }
            ExpCommit if self.rep.exp().is_some() => {
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
                let quiet = self.quiet.begin();
                let res = commit(self.rep.external(), &sync, now_secs(self.epoch), workers);
                if let Err(e) = self.quiet.end(quiet, res.is_ok()) {
                    self.log
                        .error(&format!("cannot listen to new conntrack events again: {e}"));
                }
                match res {
                    Ok(CommitReport {
                        ok,
                        failed,
                        portids,
                        recreated,
                    }) => {
                        self.rep.own.commit = portids;
                        self.rep.own.recreated = recreated.into_iter().collect();
                        self.log_commit(Ok((ok, failed)), started, "entries");
                    }
                    Err(e) => self.log_commit(Err(e.to_string()), started, "entries"),
                }
                if req == AllCommit {
                    self.commit_exp();
                }
            }
            _ => {}
        }
    }

    /// `-R expect` (and `-R`'s second half): the internal expectation
    /// cache from the kernel's table.
    fn resync_exp_master(&mut self) {
        self.log.notice("resync with master expect table");
        if self.lane.first() {
            self.rt.resync_kernel += 1;
        }
        if let Err(e) = self.resync_exp() {
            self.log.error(&e);
        }
    }

    /// Commits the external expectation cache (ExpectationSync).
    fn commit_exp(&mut self) {
        let mut own = std::mem::take(&mut self.rep.own.exp);
        let started = Instant::now();
        let res = self
            .rep
            .exp()
            .map(|x| super::expect::commit(&x.external, &mut own));
        self.rep.own.exp = own;
        let Some(res) = res else { return };
        self.log_commit(res, started, "expectations");
    }

    /// The log lines of a commit, as 1.4.7 writes them (`what`: "entries"
    /// or "expectations").
    fn log_commit(&mut self, res: Result<(u64, u64), String>, started: Instant, what: &str) {
        match res {
            Ok((ok, failed)) => {
                self.log.notice(&format!("Committed {ok} new {what}"));
                if failed > 0 {
                    self.log
                        .notice(&format!("{failed} {what} can't be committed"));
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
            if flt.is_some_and(|f| !ct_core::filter::accept(f, &flow)) {
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
/// With `expires` (ALARM's external cache: CacheTimeout), the default
/// format says ` [expires in Ns]` first: the seconds until the entry
/// expires unless the peer refreshes it. In 1.4.7's order for a cache of
/// `buckets` (HashSize).
fn write_dump(
    w: &mut dyn Write,
    snap: &ct_core::table::Snapshot,
    xml: bool,
    external: bool,
    now: u32,
    expires: Option<u32>,
    buckets: u32,
) -> std::io::Result<()> {
    let env = SysEnv { labels: None };
    let mut line = Vec::with_capacity(512);
    let mut res = Ok(());
    snap.for_each_c_order(buckets, |mut f, created, updated| {
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
            if let Some(t) = expires {
                let left = updated.saturating_add(t).saturating_sub(now);
                let _ = write!(line, " [expires in {left}s]");
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
