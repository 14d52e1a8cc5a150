//! The optional Prometheus endpoint: with `CONNTRACKD_METRICS=ADDR:PORT`
//! in the environment (not a conntrackd.conf keyword, so that the file
//! stays one 1.4.7 accepts; empty or unset = off), `GET /metrics` serves
//! the daemon's counters.
//!
//! * The numbers come from the main loop as one typed [`Snapshot`]
//!   (asked in-process, [`ControlMsg::Metrics`]), the same counters that
//!   `-s` prints, plus the per-channel traffic, the unknown-peer and
//!   authentication counters and the replication latency.
//! * They are encoded by `prometheus-client` (the Prometheus project's
//!   Rust client), so every family has its `# TYPE` and `# HELP`, counters
//!   end in `_total`, and units (`_seconds`, `_bytes`) are part of the
//!   name. Prometheus text 0.0.4 by default, OpenMetrics when the scraper
//!   asks for it (`Accept: application/openmetrics-text`).
//! * Each connection has a thread of its own (at most [`MAX_CONNS`] at
//!   once; more wait in the backlog) with a deadline for its request and
//!   a write timeout, so idle or slow connections delay nobody's scrape;
//!   scrapes within 100 ms share one snapshot of the main loop. `GET`/`HEAD /metrics` only: other paths get
//!   404, other methods 405, a request that is not HTTP 400.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use ct_core::ctl::stats::ChannelStats;

use super::control::ControlMsg;
use super::latency::Hist;
pub use super::stats::{CacheCounters, ChannelCounters, LatencyCounters, QueueCounters, Stats};

/// Connections served at once.
pub const MAX_CONNS: usize = 512;
/// How long a connection may take to send its request, or to take the
/// answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a scrape waits for the main loop.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The counters (the daemon's [`Stats`]), as the endpoint encodes them.
pub type Snapshot = Stats;

type Labels = Vec<(&'static str, String)>;

/// Writes families into one descriptor encoder.
struct Out<'a, 'b>(&'a mut DescriptorEncoder<'b>);

impl Out<'_, '_> {
    fn counter(&mut self, name: &str, help: &str, unit: Option<&Unit>, v: u64) -> std::fmt::Result {
        let c = ConstCounter::new(v);
        let m = self
            .0
            .encode_descriptor(name, help, unit, c.metric_type())?;
        c.encode(m)
    }

    fn gauge(&mut self, name: &str, help: &str, unit: Option<&Unit>, v: f64) -> std::fmt::Result {
        let g = ConstGauge::new(v);
        let m = self
            .0
            .encode_descriptor(name, help, unit, g.metric_type())?;
        g.encode(m)
    }

    fn counters(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        rows: &[(Labels, u64)],
    ) -> std::fmt::Result {
        if rows.is_empty() {
            return Ok(());
        }
        let mut m = self
            .0
            .encode_descriptor(name, help, unit, MetricType::Counter)?;
        for (labels, v) in rows {
            ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn gauges(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        rows: &[(Labels, f64)],
    ) -> std::fmt::Result {
        if rows.is_empty() {
            return Ok(());
        }
        let mut m = self
            .0
            .encode_descriptor(name, help, unit, MetricType::Gauge)?;
        for (labels, v) in rows {
            ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Hist) -> std::fmt::Result {
        let mut m =
            self.0
                .encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
        // the +Inf bucket explicitly: the OpenMetrics encoder writes it
        // only when given (the Prometheus text one adds it itself then)
        let mut b = h.buckets();
        let finite: u64 = b.iter().map(|(_, n)| n).sum();
        b.push((f64::INFINITY, h.count() - finite));
        m.encode_histogram::<NoLabelSet>(h.sum(), h.count(), &b, None)
    }
}

fn l(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let mut o = Out(&mut enc);
        let secs = Some(&Unit::Seconds);
        let bytes = Some(&Unit::Bytes);
        let rt = &self.rt;
        o.gauge(
            "conntrackd_uptime",
            "Time since the daemon started.",
            secs,
            self.uptime_secs,
        )?;
        for (name, help, v) in [
            (
                "conntrackd_netlink_events_received",
                "Kernel events received (-s runtime: events received).",
                rt.events_received,
            ),
            (
                "conntrackd_netlink_events_filtered",
                "Kernel events dropped by the Filter section.",
                rt.events_filtered,
            ),
            (
                "conntrackd_netlink_events_unknown_type",
                "Kernel events of an unknown type.",
                rt.events_unknown,
            ),
            (
                "conntrackd_netlink_catch_event_failed",
                "Kernel events that could not be handled.",
                rt.catch_failed,
            ),
            (
                "conntrackd_netlink_dump_unknown_type",
                "Dump entries of an unknown type.",
                rt.dump_unknown,
            ),
            (
                "conntrackd_netlink_overruns",
                "Event socket overruns (ENOBUFS): events were lost and a resync follows.",
                rt.overrun,
            ),
            (
                "conntrackd_kernel_flushes",
                "Kernel table flushes (-F, -t).",
                rt.flush_kernel,
            ),
            (
                "conntrackd_kernel_resyncs",
                "Resyncs with the kernel table (-R, overruns, polling).",
                rt.resync_kernel,
            ),
            (
                "conntrackd_control_read_failed",
                "Control clients that sent no complete request in time.",
                rt.local_read_failed,
            ),
            (
                "conntrackd_control_unknown_requests",
                "Control requests of an unknown code.",
                rt.local_unknown,
            ),
        ] {
            o.counter(name, help, None, v)?;
        }
        o.gauge(
            "conntrackd_netlink_buffer",
            "Receive buffer of the event socket.",
            bytes,
            rt.buffer_size as f64,
        )?;
        let caches = &self.caches;
        o.gauges(
            "conntrackd_cache_entries",
            "Objects in each cache (-s: current active connections).",
            None,
            &caches
                .iter()
                .map(|c| (l(&[("cache", c.name)]), c.entries as f64))
                .collect::<Vec<_>>(),
        )?;
        let mut ops = Vec::new();
        for c in caches {
            let s = &c.stats;
            for (op, ok, failed) in [
                ("create", s.created, s.create_failed),
                ("update", s.updated, s.update_failed),
                ("destroy", s.destroyed, s.destroy_failed),
            ] {
                ops.push((l(&[("cache", c.name), ("op", op), ("result", "ok")]), ok));
                ops.push((
                    l(&[("cache", c.name), ("op", op), ("result", "failed")]),
                    failed,
                ));
            }
        }
        if let Some(s) = &self.inject {
            for (op, ok, failed) in [
                ("create", s.created, s.create_failed),
                ("update", s.updated, s.update_failed),
                ("destroy", s.destroyed, s.destroy_failed),
            ] {
                ops.push((l(&[("cache", "inject"), ("op", op), ("result", "ok")]), ok));
                ops.push((
                    l(&[("cache", "inject"), ("op", op), ("result", "failed")]),
                    failed,
                ));
            }
        }
        o.counters(
            "conntrackd_cache_operations",
            "Cache operations by result (-s; `inject`: DisableExternalCache's kernel operations).",
            None,
            &ops,
        )?;
        if let Some(b) = &self.bypass {
            o.counters(
                "conntrackd_bypass_events",
                "Kernel events sent without an internal cache (DisableInternalCache), by kind.",
                None,
                &[
                    ("new", b.new),
                    ("update", b.updated),
                    ("destroy", b.destroyed),
                ]
                .iter()
                .map(|(k, v)| (l(&[("event", k)]), *v))
                .collect::<Vec<_>>(),
            )?;
        }
        o.counters(
            "conntrackd_cache_full",
            "Objects refused because the cache held HashLimit objects.",
            None,
            &caches
                .iter()
                .map(|c| (l(&[("cache", c.name)]), c.stats.no_space))
                .collect::<Vec<_>>(),
        )?;
        o.counter(
            "conntrackd_traffic",
            "Bytes of the flows destroyed (-s: traffic processed).",
            bytes,
            self.traffic_bytes,
        )?;
        o.counter(
            "conntrackd_traffic_packets",
            "Packets of the flows destroyed (-s: traffic processed).",
            None,
            self.traffic_packets,
        )?;
        if let Some(n) = &self.net {
            o.counters(
                "conntrackd_sync_recv_errors",
                "Sync messages refused on receipt, by reason (-s network).",
                None,
                &[
                    ("malformed", n.malformed),
                    ("wrong_version", n.wrong_version),
                    ("bad_header", n.bad_header),
                    ("bad_payload", n.bad_payload),
                    ("bad_type", n.bad_type),
                    ("truncated", n.truncated),
                    ("bad_size", n.bad_size),
                ]
                .iter()
                .map(|(r, v)| (l(&[("reason", r)]), *v))
                .collect::<Vec<_>>(),
            )?;
            o.counter(
                "conntrackd_sync_lost_messages",
                "Sync messages lost, from sequence gaps (-s network: packets lost).",
                None,
                n.lost,
            )?;
            o.counter(
                "conntrackd_sync_before_messages",
                "Sync messages older than expected (-s network: packets before).",
                None,
                n.before,
            )?;
            let peer = |p: &super::stats::PeerCounters| l(&[("peer", p.addr.as_str())]);
            let gauges = |f: fn(&super::stats::PeerCounters) -> f64| {
                self.peers
                    .iter()
                    .map(|p| (peer(p), f(p)))
                    .collect::<Vec<_>>()
            };
            let counters = |f: fn(&super::stats::PeerCounters) -> u64| {
                self.peers
                    .iter()
                    .map(|p| (peer(p), f(p)))
                    .collect::<Vec<_>>()
            };
            o.gauges(
                "conntrackd_ftfw_peer_up",
                "FT-FW: 1 while the node is heard (silent 5 s: 0, it no longer holds the resend queue).",
                None,
                &gauges(|p| if p.live { 1.0 } else { 0.0 }),
            )?;
            o.gauges(
                "conntrackd_ftfw_peer_unacked_objects",
                "FT-FW: object messages waiting for this node's acknowledgement.",
                None,
                &gauges(|p| p.unacked as f64),
            )?;
            o.gauges(
                "conntrackd_ftfw_peer_lag_messages",
                "FT-FW: how many messages behind our last one the oldest this node has not acknowledged is.",
                None,
                &gauges(|p| p.lag as f64),
            )?;
            o.counters(
                "conntrackd_ftfw_peer_resend_requests",
                "FT-FW: NACKs this node sent us.",
                None,
                &counters(|p| p.nacks),
            )?;
            o.counters(
                "conntrackd_ftfw_peer_resent_messages",
                "FT-FW: messages sent again on this node's NACKs.",
                None,
                &counters(|p| p.resent),
            )?;
            o.counters(
                "conntrackd_ftfw_peer_lost_messages",
                "FT-FW: gaps in this node's numbering (messages).",
                None,
                &counters(|p| p.lost),
            )?;
            o.counters(
                "conntrackd_ftfw_peer_returns",
                "FT-FW: bulk updates sent because this node was heard again after falling silent.",
                None,
                &counters(|p| p.returns),
            )?;
            o.counter(
                "conntrackd_sync_unknown_peer_datagrams",
                "Datagrams and TCP connections from an address that is not the peer, dropped.",
                None,
                n.foreign,
            )?;
            if let Some(a) = &n.auth {
                o.counters(
                    "conntrackd_sync_auth_datagrams",
                    "Datagrams of the authenticated link, by verdict.",
                    None,
                    &[
                        ("ok", a.ok),
                        ("missing", a.missing),
                        ("bad_tag", a.bad_tag),
                        ("replayed", a.replayed),
                    ]
                    .iter()
                    .map(|(r, v)| (l(&[("result", r)]), *v))
                    .collect::<Vec<_>>(),
                )?;
            }
        }
        let chan = |c: &ChannelCounters| -> Labels {
            l(&[
                ("channel", &c.index.to_string()),
                ("kind", c.kind),
                ("device", &c.device),
            ])
        };
        let chans = &self.channels;
        o.gauges(
            "conntrackd_channel_active",
            "1 for the channel in use, 0 for a redundant one (-s link: role).",
            None,
            &chans
                .iter()
                .map(|c| (chan(c), if c.active { 1.0 } else { 0.0 }))
                .collect::<Vec<_>>(),
        )?;
        type Pick = fn(&ChannelStats) -> u64;
        let rows: [(&str, &str, Option<&Unit>, Pick); 6] = [
            (
                "conntrackd_channel_sent",
                "Bytes sent on the channel.",
                bytes,
                |s| s.bytes_sent,
            ),
            (
                "conntrackd_channel_received",
                "Bytes received on the channel.",
                bytes,
                |s| s.bytes_recv,
            ),
            (
                "conntrackd_channel_packets_sent",
                "Datagrams (TCP: writes) sent on the channel.",
                None,
                |s| s.packets_sent,
            ),
            (
                "conntrackd_channel_packets_received",
                "Datagrams (TCP: reads) received on the channel.",
                None,
                |s| s.packets_recv,
            ),
            (
                "conntrackd_channel_send_errors",
                "Sends that failed on the channel.",
                None,
                |s| s.errors_send,
            ),
            (
                "conntrackd_channel_recv_errors",
                "Receives that failed on the channel.",
                None,
                |s| s.errors_recv,
            ),
        ];
        for (name, help, unit, pick) in rows {
            o.counters(
                name,
                help,
                unit,
                &chans
                    .iter()
                    .map(|c| (chan(c), pick(&c.stats)))
                    .collect::<Vec<_>>(),
            )?;
        }
        let q = &self.queues;
        let ql = |x: &QueueCounters| l(&[("queue", x.name)]);
        o.gauges(
            "conntrackd_queue_elements",
            "Elements in each queue (-s queue: current elements).",
            None,
            &q.iter().map(|x| (ql(x), x.len as f64)).collect::<Vec<_>>(),
        )?;
        o.gauges(
            "conntrackd_queue_capacity",
            "Capacity of each queue (-s queue: maximum elements).",
            None,
            &q.iter().map(|x| (ql(x), x.max as f64)).collect::<Vec<_>>(),
        )?;
        o.counters(
            "conntrackd_queue_full",
            "Elements refused because the queue was full (-s queue: not enough space errors).",
            None,
            &q.iter().map(|x| (ql(x), x.full)).collect::<Vec<_>>(),
        )?;
        if let Some(lat) = &self.latency {
            o.histogram(
                "conntrackd_sync_send_delay",
                "Time the oldest message of a send waited since its event.",
                &lat.send_delay,
            )?;
            if let Some((ack, lag, unacked)) = &lat.ftfw {
                o.histogram(
                    "conntrackd_sync_ack",
                    "Time from sending a message to the peer's acknowledgement (FT-FW).",
                    ack,
                )?;
                o.gauge(
                    "conntrackd_sync_replication_lag",
                    "Age of the oldest unacknowledged message (FT-FW).",
                    secs,
                    *lag,
                )?;
                o.gauge(
                    "conntrackd_sync_unacked_messages",
                    "Messages sent and not yet acknowledged (FT-FW).",
                    None,
                    *unacked as f64,
                )?;
            }
        }
        Ok(())
    }
}

/// Lends a shared snapshot to the registry.
#[derive(Debug)]
struct Shared(Arc<Snapshot>);

impl Collector for Shared {
    fn encode(&self, enc: DescriptorEncoder) -> std::fmt::Result {
        self.0.encode(enc)
    }
}

/// The snapshot in the Prometheus text format (0.0.4), or OpenMetrics.
pub fn render(snap: Snapshot, openmetrics: bool) -> String {
    render_shared(Arc::new(snap), openmetrics)
}

fn render_shared(snap: Arc<Snapshot>, openmetrics: bool) -> String {
    let mut reg = Registry::default();
    reg.register_collector(Box::new(Shared(snap)));
    let mut out = String::new();
    let res = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &reg)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &reg)
    };
    // (writing into a String does not fail)
    let _ = res;
    out
}

/// Where the endpoint gets its numbers: the main loop's control channel.
/// Scrapes within [`REUSE`] of each other share one snapshot, so a flood
/// of scrapes costs the main loop at most one snapshot per period.
#[derive(Clone)]
pub struct Source {
    pub lanes: Vec<super::control::LaneTx>,
    pub last: Arc<std::sync::Mutex<Option<Taken>>>,
}

/// A snapshot and when it was taken.
pub type Taken = (std::time::Instant, Arc<Snapshot>);

/// How long a snapshot serves further scrapes.
const REUSE: Duration = Duration::from_millis(100);

impl Source {
    pub fn new(lanes: Vec<super::control::LaneTx>) -> Source {
        Source {
            lanes,
            last: Arc::default(),
        }
    }

    /// Every lane's counters, added up.
    fn ask(&self) -> Option<Arc<Snapshot>> {
        // (held while asking: concurrent scrapes wait for this one's
        // snapshot instead of each asking the lanes)
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, snap)) = last.as_ref() {
            if at.elapsed() < REUSE {
                return Some(snap.clone());
            }
        }
        let (tx, rx) = mpsc::channel();
        for lane in &self.lanes {
            if !lane.send(ControlMsg::Metrics(tx.clone())) {
                return None;
            }
        }
        drop(tx);
        let deadline = std::time::Instant::now() + ASK_TIMEOUT;
        let mut merged: Option<Snapshot> = None;
        for _ in 0..self.lanes.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let st = rx.recv_timeout(left).ok()?;
            match &mut merged {
                None => merged = Some(st),
                Some(m) => m.merge(&st),
            }
        }
        let snap = Arc::new(merged?);
        *last = Some((std::time::Instant::now(), snap.clone()));
        Some(snap)
    }
}

/// Starts the endpoint when `CONNTRACKD_METRICS` is set and not empty;
/// returns the bound address.
pub fn start(src: Source) -> Option<std::io::Result<SocketAddr>> {
    let addr = std::env::var("CONNTRACKD_METRICS").ok()?;
    let addr = addr.trim();
    if addr.is_empty() {
        return None;
    }
    Some(serve(addr, src))
}

fn serve(addr: &str, src: Source) -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind(addr)?;
    let bound = l.local_addr()?;
    let conns = super::control::Slots::new(MAX_CONNS);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            super::control::normal_priority();
            loop {
                // at the cap, new connections wait in the backlog
                let slot = conns.take();
                let s = match l.accept() {
                    Ok((s, _)) => s,
                    Err(_) => {
                        // (EMFILE and the like: do not spin)
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                let src = src.clone();
                let spawned = std::thread::Builder::new()
                    .name("metrics-conn".into())
                    .stack_size(256 * 1024)
                    .spawn(move || {
                        let _slot = slot;
                        super::control::normal_priority();
                        handle(s, &src);
                    });
                if spawned.is_err() {
                    // (the slot went back with the closure)
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })?;
    Ok(bound)
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (or HEAD: `body` false); OpenMetrics if asked for.
    Metrics {
        body: bool,
        openmetrics: bool,
    },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Routes the head of an HTTP request (up to the empty line). Lines end
/// in CRLF or, as RFC 9112 section 2.2 lets a server accept, a bare LF.
pub fn route(head: &str) -> Route {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return Route::NotFound;
    }
    let body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => return Route::MethodNotAllowed,
    };
    let openmetrics = lines.any(|h| {
        h.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("accept") && v.contains("application/openmetrics-text")
        })
    });
    Route::Metrics { body, openmetrics }
}

/// Where the head of a request ends: the empty line, after CRLF or a
/// bare LF (curl and browsers send CRLF; `printf 'GET ...\n\n'` does not).
fn head_end(req: &[u8]) -> Option<usize> {
    let lf = |i: usize| matches!(req.get(i + 1..), Some([b'\n', ..] | [b'\r', b'\n', ..]));
    (0..req.len()).find(|&i| req[i] == b'\n' && lf(i))
}

/// Reads the request head (bounded), answers, closes.
fn handle(mut s: TcpStream, src: &Source) {
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    // the whole request head within IO_TIMEOUT of the accept, not per read
    // (a byte every second must not hold the connection for hours)
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let mut req = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let head = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {
                if req.is_empty() {
                    return;
                }
                break String::from_utf8_lossy(&req).into_owned();
            }
            Ok(n) => {
                req.extend_from_slice(&buf[..n]);
                if let Some(i) = head_end(&req) {
                    break String::from_utf8_lossy(&req[..i]).into_owned();
                }
                if req.len() > 16 * 1024 {
                    break String::new();
                }
            }
        }
    };
    let (status, ctype, body, send_body) = match route(&head) {
        Route::Metrics { body, openmetrics } => match src.ask() {
            Some(snap) => (
                "200 OK",
                if openmetrics {
                    "application/openmetrics-text; version=1.0.0; charset=utf-8"
                } else {
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE
                },
                render_shared(snap, openmetrics),
                body,
            ),
            None => (
                "503 Service Unavailable",
                "text/plain",
                "the daemon did not answer\n".into(),
                body,
            ),
        },
        Route::NotFound => ("404 Not Found", "text/plain", "try /metrics\n".into(), true),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "GET or HEAD\n".into(),
            true,
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain",
            "bad request\n".into(),
            true,
        ),
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let _ = write!(
        s,
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    if send_body {
        let _ = s.write_all(body.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_core::table::CacheStats;

    #[test]
    fn routes() {
        assert_eq!(
            route("GET /metrics HTTP/1.1\r\nHost: x"),
            Route::Metrics {
                body: true,
                openmetrics: false
            }
        );
        assert_eq!(
            route(
                "HEAD /metrics?x=1 HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0"
            ),
            Route::Metrics {
                body: false,
                openmetrics: true
            }
        );
        assert_eq!(route("GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(route("hello"), Route::BadRequest);
        assert_eq!(route("GET /metrics"), Route::BadRequest);
        assert_eq!(route("GET metrics HTTP/1.1"), Route::BadRequest);
        assert_eq!(route(""), Route::BadRequest);
        // bare LF line ends, as `printf 'GET /metrics HTTP/1.0\n\n'` sends
        assert_eq!(
            route("GET /metrics HTTP/1.0\nAccept: application/openmetrics-text"),
            Route::Metrics {
                body: true,
                openmetrics: true
            }
        );
    }

    #[test]
    fn the_head_ends_at_the_empty_line_after_crlf_or_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.0\nA: b\n\r\n"), Some(19));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r"), None);
        assert_eq!(head_end(b""), None);
        let r = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        let head = std::str::from_utf8(&r[..head_end(r).unwrap()]).unwrap();
        assert!(matches!(route(head), Route::Metrics { body: true, .. }));
    }

    #[test]
    fn every_family_is_typed_and_counters_end_in_total() {
        let mut snap = Snapshot {
            uptime_secs: 61.0,
            traffic_bytes: 100,
            ..Default::default()
        };
        snap.rt.events_received = 7;
        snap.caches.push(CacheCounters {
            name: "internal",
            entries: 3,
            stats: CacheStats {
                created: 3,
                ..Default::default()
            },
        });
        snap.channels.push(ChannelCounters {
            index: 0,
            kind: "UDP",
            device: "veth0".into(),
            status: "RUNNING",
            active: true,
            tcp: None,
            stats: ChannelStats {
                bytes_sent: 42,
                ..Default::default()
            },
        });
        let mut h = Hist::default();
        h.observe(Duration::from_micros(300));
        snap.latency = Some(LatencyCounters {
            send_delay: h,
            ftfw: None,
        });
        let out = render(snap, false);
        let names: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split([' ', '{']).next())
            .collect();
        for n in &names {
            let fam = n
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                out.contains(&format!("# TYPE {fam} ")) || out.contains(&format!("# TYPE {n} ")),
                "{n} untyped in\n{out}"
            );
        }
        assert!(out.contains("conntrackd_uptime_seconds 61"), "{out}");
        assert!(
            out.contains("conntrackd_netlink_events_received_total 7"),
            "{out}"
        );
        assert!(
            out.contains(
                "conntrackd_channel_sent_bytes_total{channel=\"0\",kind=\"UDP\",device=\"veth0\"} 42"
            ),
            "{out}"
        );
        assert!(out.contains("conntrackd_traffic_bytes_total 100"), "{out}");
        assert!(
            out.contains("conntrackd_sync_send_delay_seconds_count 1"),
            "{out}"
        );
        assert!(
            out.contains("conntrackd_sync_send_delay_seconds_bucket{le=\"0.00025\"} 0\n")
                && out.contains("conntrackd_sync_send_delay_seconds_bucket{le=\"0.0005\"} 1\n")
                && out.contains("conntrackd_sync_send_delay_seconds_bucket{le=\"5\"} 1\n"),
            "cumulative buckets: {out}"
        );
        let mut snap = Snapshot::default();
        let mut h = Hist::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_secs(9));
        snap.latency = Some(LatencyCounters {
            send_delay: h,
            ftfw: None,
        });
        let om = render(snap.clone(), true);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains("conntrackd_sync_send_delay_seconds_bucket{le=\"+Inf\"} 2\n"),
            "OpenMetrics needs +Inf: {om}"
        );
        let text = render(snap, false);
        assert_eq!(
            text.matches("conntrackd_sync_send_delay_seconds_bucket{le=\"+Inf\"}")
                .count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("conntrackd_sync_send_delay_seconds_bucket{le=\"5\"} 1\n"),
            "{text}"
        );
    }
}
