//! The daemon's counters as one value ([`Stats`]): each lane takes it of
//! itself, the control plane adds the lanes' together ([`Stats::merge`])
//! and renders it, as the `-s` views of 1.4.7 byte for byte
//! ([`Stats::render`]) or as Prometheus families (`daemon::metrics`). So
//! `-s` and the metrics endpoint show the same numbers and nothing
//! re-parses text.

use std::fmt::Write as _;

use ct_core::ctl::stats::{
    self, AuthCounters, BypassStats, ChannelStats, InjectStats, NetworkStats, RuntimeStats,
};
use ct_core::ctl::Request;
use ct_core::table::CacheStats;

use super::latency::Hist;

/// Which daemon the counters come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    None,
    Stats,
    Sync,
}

/// One cache's counters (`cache` label in the metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub name: &'static str,
    pub entries: u64,
    pub stats: CacheStats,
}

/// One sync channel (labels `channel`, `kind`, `device`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelCounters {
    pub index: usize,
    pub kind: &'static str,
    pub device: String,
    /// `RUNNING`, `NO-CARRIER` or `DOWN` (`-s link`).
    pub status: &'static str,
    pub active: bool,
    /// TCP: (server connected, client connected).
    pub tcp: Option<(bool, bool)>,
    pub stats: ChannelStats,
}

/// One queue of `-s queue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounters {
    pub name: &'static str,
    pub len: u64,
    pub max: u64,
    pub full: u64,
}

/// Replication latency (sync mode).
#[derive(Debug, Clone)]
pub struct LatencyCounters {
    pub send_delay: Hist,
    /// FT-FW only: send-to-ACK histogram, lag (s) and unacknowledged
    /// object messages.
    pub ftfw: Option<(Hist, f64, u64)>,
}

/// FT-FW: one node of the channel as we track it (`-s peers`, the
/// metrics), summed over the lanes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// Its address (`peer` when the link has one peer).
    pub addr: String,
    /// Not silent past FT-FW's peer timeout.
    pub live: bool,
    pub lost: u64,
    pub before: u64,
    /// Our object messages waiting for its acknowledgement, and how far
    /// behind our last message the oldest of them is (messages).
    pub unacked: u64,
    pub lag: u64,
    /// NACKs it sent, messages they made us send again, bulk updates it
    /// got for coming back.
    pub nacks: u64,
    pub resent: u64,
    pub returns: u64,
}

/// Everything `-s` and the metrics endpoint show, taken at one instant
/// (of one lane, or the sum of all).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub kind: Kind,
    pub uptime_secs: f64,
    pub rt: RuntimeStats,
    /// `stats` (stats mode), or `internal` (absent with
    /// DisableInternalCache), `external` (absent with
    /// DisableExternalCache), `expect_internal`, `expect_external`.
    pub caches: Vec<CacheCounters>,
    pub inject: Option<InjectStats>,
    pub bypass: Option<BypassStats>,
    pub traffic_bytes: u64,
    pub traffic_packets: u64,
    /// Sync mode: the receive-side counters of `-s network` (the
    /// unknown-peer and authentication ones included).
    pub net: Option<NetworkStats>,
    pub channels: Vec<ChannelCounters>,
    pub queues: Vec<QueueCounters>,
    /// `allocated queue nodes` of `-s queue`.
    pub allocated: u64,
    /// FT-FW: the resend queue (`-s rsqueue`): its length and one line
    /// per entry.
    pub rsqueue: Option<(u64, Vec<String>)>,
    pub latency: Option<LatencyCounters>,
    /// FT-FW: the nodes heard on the channel.
    pub peers: Vec<PeerCounters>,
}

fn add_cache(a: &mut CacheStats, b: &CacheStats) {
    a.created += b.created;
    a.create_failed += b.create_failed;
    a.no_memory += b.no_memory;
    a.no_space += b.no_space;
    a.updated += b.updated;
    a.update_failed += b.update_failed;
    a.update_not_found += b.update_not_found;
    a.destroyed += b.destroyed;
    a.destroy_failed += b.destroy_failed;
    a.destroy_not_found += b.destroy_not_found;
}

fn add_chan(a: &mut ChannelStats, b: &ChannelStats) {
    a.bytes_sent += b.bytes_sent;
    a.bytes_recv += b.bytes_recv;
    a.packets_sent += b.packets_sent;
    a.packets_recv += b.packets_recv;
    a.errors_send += b.errors_send;
    a.errors_recv += b.errors_recv;
}

fn add_rt(a: &mut RuntimeStats, b: &RuntimeStats) {
    a.uptime_secs = a.uptime_secs.max(b.uptime_secs);
    a.events_received += b.events_received;
    a.events_filtered += b.events_filtered;
    a.events_unknown += b.events_unknown;
    a.catch_failed += b.catch_failed;
    a.dump_unknown += b.dump_unknown;
    a.overrun += b.overrun;
    a.flush_kernel += b.flush_kernel;
    a.resync_kernel += b.resync_kernel;
    a.buffer_size += b.buffer_size;
    a.child_failed += b.child_failed;
    a.child_segfault += b.child_segfault;
    a.child_termsig += b.child_termsig;
    a.select_failed += b.select_failed;
    a.wait_failed += b.wait_failed;
    a.local_read_failed += b.local_read_failed;
    a.local_unknown += b.local_unknown;
}

fn add_net(a: &mut NetworkStats, b: &NetworkStats) {
    a.malformed += b.malformed;
    a.wrong_version += b.wrong_version;
    a.bad_header += b.bad_header;
    a.bad_payload += b.bad_payload;
    a.bad_type += b.bad_type;
    a.truncated += b.truncated;
    a.bad_size += b.bad_size;
    a.lost += b.lost;
    a.before += b.before;
    a.foreign += b.foreign;
    a.auth = match (a.auth, b.auth) {
        (Some(x), Some(y)) => Some(AuthCounters {
            ok: x.ok + y.ok,
            missing: x.missing + y.missing,
            bad_tag: x.bad_tag + y.bad_tag,
            replayed: x.replayed + y.replayed,
        }),
        (x, y) => x.or(y),
    };
}

impl Stats {
    /// Adds another lane's counters to these (sums; the uptime and the
    /// lag are the larger; a TCP channel is connected when it is in every
    /// lane; the channel roles and queue sizes are this lane's).
    pub fn merge(&mut self, o: &Stats) {
        self.uptime_secs = self.uptime_secs.max(o.uptime_secs);
        add_rt(&mut self.rt, &o.rt);
        for c in &o.caches {
            match self.caches.iter_mut().find(|x| x.name == c.name) {
                Some(x) => {
                    x.entries += c.entries;
                    add_cache(&mut x.stats, &c.stats);
                }
                None => self.caches.push(c.clone()),
            }
        }
        if let Some(b) = o.inject {
            let a = self.inject.get_or_insert_with(Default::default);
            a.created += b.created;
            a.create_failed += b.create_failed;
            a.updated += b.updated;
            a.update_failed += b.update_failed;
            a.destroyed += b.destroyed;
            a.destroy_failed += b.destroy_failed;
        }
        if let Some(b) = o.bypass {
            let a = self.bypass.get_or_insert_with(Default::default);
            a.new += b.new;
            a.updated += b.updated;
            a.destroyed += b.destroyed;
        }
        self.traffic_bytes += o.traffic_bytes;
        self.traffic_packets += o.traffic_packets;
        for p in &o.peers {
            match self.peers.iter_mut().find(|x| x.addr == p.addr) {
                Some(x) => {
                    x.live &= p.live;
                    x.lost += p.lost;
                    x.before += p.before;
                    x.unacked += p.unacked;
                    x.lag = x.lag.max(p.lag);
                    x.nacks += p.nacks;
                    x.resent += p.resent;
                    x.returns += p.returns;
                }
                None => self.peers.push(p.clone()),
            }
        }
        if let Some(n) = &o.net {
            add_net(self.net.get_or_insert_with(Default::default), n);
        }
        for c in &o.channels {
            match self.channels.iter_mut().find(|x| x.index == c.index) {
                Some(x) => {
                    add_chan(&mut x.stats, &c.stats);
                    x.tcp = match (x.tcp, c.tcp) {
                        (Some((s1, c1)), Some((s2, c2))) => Some((s1 && s2, c1 && c2)),
                        (t, u) => t.or(u),
                    };
                }
                None => self.channels.push(c.clone()),
            }
        }
        for q in &o.queues {
            match self.queues.iter_mut().find(|x| x.name == q.name) {
                Some(x) => {
                    x.len += q.len;
                    x.full += q.full;
                }
                None => self.queues.push(q.clone()),
            }
        }
        self.allocated += o.allocated;
        if let Some((n, lines)) = &o.rsqueue {
            let r = self.rsqueue.get_or_insert_with(Default::default);
            r.0 += n;
            r.1.extend(lines.iter().cloned());
        }
        if let Some(l) = &o.latency {
            match &mut self.latency {
                None => self.latency = Some(l.clone()),
                Some(a) => {
                    a.send_delay.merge(&l.send_delay);
                    a.ftfw = match (a.ftfw.take(), &l.ftfw) {
                        (Some((mut h, lag, n)), Some((h2, lag2, n2))) => {
                            h.merge(h2);
                            Some((h, lag.max(*lag2), n + n2))
                        }
                        (x, y) => x.or_else(|| y.clone()),
                    };
                }
            }
        }
    }

    fn cache(&self, name: &str) -> Option<&CacheCounters> {
        self.caches.iter().find(|c| c.name == name)
    }

    /// The active channel's traffic block.
    fn channel_text(&self, s: &mut String) {
        if let Some(c) = self.channels.iter().find(|c| c.active) {
            stats::channel_block(s, c.kind, &c.device, c.tcp, &c.stats);
        }
    }

    /// `-s peers`, FT-FW: one block per node heard on the channel.
    fn ftfw_peers(&self, s: &mut String) {
        use std::fmt::Write as _;
        for p in &self.peers {
            let _ = write!(
                s,
                "FT-FW peer {} ({}):\n\tmessages lost:\t\t{:>20}\n\tmessages before:\t{:>20}\n\
\tunacknowledged objects:\t{:>20}\n\tlag (messages):\t\t{:>20}\n\tresend requests:\t{:>20}\n\
\tmessages resent:\t{:>20}\n\tcame back:\t\t{:>20}\n\n",
                p.addr,
                if p.live { "alive" } else { "silent" },
                p.lost,
                p.before,
                p.unacked,
                p.lag,
                p.nacks,
                p.resent,
                p.returns
            );
        }
    }

    fn tracking(&self, s: &mut String) {
        let net = self.net.unwrap_or_default();
        stats::tracking_block(s, net.malformed, net.lost);
    }

    /// The text a `-s` request (or `Metrics`) answers, in 1.4.7's
    /// layouts; empty where 1.4.7 answers nothing.
    pub fn render(&self, req: Request) -> Vec<u8> {
        let mut s = String::new();
        let zero = CacheCounters::default();
        match (self.kind, req) {
            (_, Request::Metrics) => {
                return super::metrics::render(self.clone(), false).into_bytes()
            }
            (_, Request::StatsRuntime) => {
                let mut rt = self.rt;
                rt.uptime_secs = self.uptime_secs as u64;
                stats::runtime_block(&mut s, &rt);
            }
            (Kind::Stats, Request::Stats) => {
                let c = self.cache("stats").unwrap_or(&zero);
                stats::cache_block(&mut s, "stats", c.entries, &c.stats);
                stats::traffic_block(&mut s, self.traffic_bytes, self.traffic_packets);
            }
            (Kind::Stats, Request::StatsCache) => {
                let c = self.cache("stats").unwrap_or(&zero);
                let n = c.entries;
                stats::cache_ext_block(&mut s, "stats", n, n, n, &c.stats);
            }
            (Kind::Sync, Request::Stats) => {
                match (&self.bypass, self.cache("internal")) {
                    (Some(b), _) => stats::bypass_block(&mut s, b),
                    (None, c) => {
                        let c = c.unwrap_or(&zero);
                        stats::cache_block(&mut s, "internal", c.entries, &c.stats);
                    }
                }
                match (&self.inject, self.cache("external")) {
                    (Some(i), _) => stats::inject_block(&mut s, i),
                    (None, c) => {
                        let c = c.unwrap_or(&zero);
                        stats::cache_block(&mut s, "external", c.entries, &c.stats);
                    }
                }
                stats::traffic_block(&mut s, self.traffic_bytes, self.traffic_packets);
                self.channel_text(&mut s);
                self.tracking(&mut s);
            }
            (Kind::Sync, Request::StatsNetwork) => {
                stats::network_block(&mut s, &self.net.unwrap_or_default());
                self.channel_text(&mut s);
            }
            (Kind::Sync, Request::StatsPeers) => {
                stats::peers_block(&mut s, &self.net.unwrap_or_default());
                self.ftfw_peers(&mut s);
            }
            (Kind::Sync, Request::StatsLink) => {
                for c in &self.channels {
                    stats::link_block(&mut s, c.kind, &c.device, c.status, c.active, &c.stats);
                }
            }
            (Kind::Sync, Request::StatsQueue) if !self.queues.is_empty() => {
                let rows: Vec<_> = self
                    .queues
                    .iter()
                    .map(|q| (q.name, q.len, q.max, q.full))
                    .collect();
                stats::queue_block(&mut s, self.allocated, &rows);
            }
            (Kind::Sync, Request::StatsRsqueue) => {
                if let Some((n, lines)) = &self.rsqueue {
                    let _ = writeln!(s, "resent queue (len={n})");
                    for l in lines {
                        s.push_str(l);
                        s.push('\n');
                    }
                }
            }
            (Kind::Sync, Request::StatsCache) => {
                match (&self.bypass, self.cache("internal")) {
                    (Some(b), _) => stats::bypass_block(&mut s, b),
                    (None, c) => {
                        let c = c.unwrap_or(&zero);
                        let n = c.entries;
                        stats::cache_ext_block(&mut s, "internal", n, n, n, &c.stats);
                    }
                }
                match (&self.inject, self.cache("external")) {
                    (Some(i), _) => stats::inject_block(&mut s, i),
                    (None, c) => {
                        let c = c.unwrap_or(&zero);
                        let n = c.entries;
                        stats::cache_ext_block(&mut s, "external", n, n, n, &c.stats);
                    }
                }
            }
            (Kind::Sync, Request::ExpStats) => {
                let (Some(i), Some(e)) =
                    (self.cache("expect_internal"), self.cache("expect_external"))
                else {
                    return Vec::new();
                };
                stats::cache_block(&mut s, "internal", i.entries, &i.stats);
                stats::cache_block(&mut s, "external", e.entries, &e.stats);
                stats::traffic_block(&mut s, self.traffic_bytes, self.traffic_packets);
                self.channel_text(&mut s);
                self.tracking(&mut s);
            }
            _ => {}
        }
        s.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(created: u64, sent: u64) -> Stats {
        Stats {
            kind: Kind::Sync,
            uptime_secs: 5.0,
            caches: vec![
                CacheCounters {
                    name: "internal",
                    entries: created,
                    stats: CacheStats {
                        created,
                        ..Default::default()
                    },
                },
                CacheCounters {
                    name: "external",
                    ..Default::default()
                },
            ],
            net: Some(NetworkStats::default()),
            channels: vec![ChannelCounters {
                index: 0,
                kind: "UDP",
                device: "eth1".into(),
                status: "RUNNING",
                active: true,
                tcp: None,
                stats: ChannelStats {
                    packets_sent: sent,
                    ..Default::default()
                },
            }],
            ..Default::default()
        }
    }

    /// Two lanes add up to what one lane with both's counters shows.
    #[test]
    fn lanes_add_up() {
        let mut a = lane(2, 3);
        a.merge(&lane(5, 7));
        let whole = lane(7, 10);
        for req in [
            Request::Stats,
            Request::StatsCache,
            Request::StatsNetwork,
            Request::StatsLink,
        ] {
            assert_eq!(a.render(req), whole.render(req), "{req:?}");
        }
        let s = String::from_utf8(a.render(Request::Stats)).unwrap();
        assert!(
            s.starts_with("cache internal:\ncurrent active connections:\t           7\n"),
            "{s}"
        );
    }

    #[test]
    fn resend_queues_are_listed_together() {
        let mut a = Stats {
            kind: Kind::Sync,
            rsqueue: Some((1, vec!["object -> seq:5".into()])),
            ..Default::default()
        };
        a.merge(&Stats {
            kind: Kind::Sync,
            rsqueue: Some((1, vec!["object -> seq:9".into()])),
            ..Default::default()
        });
        assert_eq!(
            String::from_utf8(a.render(Request::StatsRsqueue)).unwrap(),
            "resent queue (len=2)\nobject -> seq:5\nobject -> seq:9\n"
        );
    }
}
