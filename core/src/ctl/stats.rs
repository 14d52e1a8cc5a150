//! The text blocks of `conntrackd -s ...`, byte for byte as 1.4.7 prints
//! them (fixed-width right-aligned numbers and TABs), so that scripts that
//! parse them keep working.

use std::fmt::Write;

use crate::table::CacheStats;

/// `-s` / `-s ct` block of one cache (`internal`, `external`, `stats`).
pub fn cache_block(out: &mut String, name: &str, active: u64, s: &CacheStats) {
    let _ = write!(
        out,
        "cache {name}:\ncurrent active connections:\t{active:>12}\n\
connections created:\t\t{:>12}\tfailed:\t{:>12}\n\
connections updated:\t\t{:>12}\tfailed:\t{:>12}\n\
connections destroyed:\t\t{:>12}\tfailed:\t{:>12}\n\n",
        s.created as u32,
        s.create_failed as u32,
        s.updated as u32,
        s.update_failed as u32,
        s.destroyed as u32,
        s.destroy_failed as u32,
    );
}

/// `-s cache` block of one cache.
pub fn cache_ext_block(
    out: &mut String,
    name: &str,
    objects: u64,
    active: u64,
    total: u64,
    s: &CacheStats,
) {
    let _ = write!(
        out,
        "cache:{name}\tactive objects:\t\t{objects:>12}\n\
\tactive/total entries:\t\t{active:>12}/{total:>12}\n\
\tcreation OK/failed:\t\t{:>12}/{:>12}\n\
\t\tno memory available:\t{:>12}\n\
\t\tno space left in cache:\t{:>12}\n\
\tupdate OK/failed:\t\t{:>12}/{:>12}\n\
\t\tentry not found:\t{:>12}\n\
\tdeletion created/failed:\t{:>12}/{:>12}\n\
\t\tentry not found:\t{:>12}\n\n",
        s.created as u32,
        s.create_failed as u32,
        s.no_memory as u32,
        s.no_space as u32,
        s.updated as u32,
        s.update_failed as u32,
        s.update_not_found as u32,
        s.destroyed as u32,
        s.destroy_failed as u32,
        s.destroy_not_found as u32,
    );
}

/// Counters of `DisableExternalCache` (received states applied straight to
/// the kernel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectStats {
    pub created: u64,
    pub create_failed: u64,
    pub updated: u64,
    pub update_failed: u64,
    pub destroyed: u64,
    pub destroy_failed: u64,
}

/// `external inject:` block (replaces the external cache block of `-s`
/// with DisableExternalCache).
pub fn inject_block(out: &mut String, s: &InjectStats) {
    let _ = write!(
        out,
        "external inject:\nconnections created:\t\t{:>12}\tfailed:\t{:>12}\n\
connections updated:\t\t{:>12}\tfailed:\t{:>12}\n\
connections destroyed:\t\t{:>12}\tfailed:\t{:>12}\n\n",
        s.created as u32,
        s.create_failed as u32,
        s.updated as u32,
        s.update_failed as u32,
        s.destroyed as u32,
        s.destroy_failed as u32
    );
}

/// Counters of `DisableInternalCache` (NOTRACK's internal bypass: events
/// go to the peer without an internal cache).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BypassStats {
    pub new: u64,
    pub updated: u64,
    pub destroyed: u64,
}

/// `internal bypass:` block (replaces the internal cache block of `-s`
/// and `-s cache` with DisableInternalCache).
pub fn bypass_block(out: &mut String, s: &BypassStats) {
    let _ = write!(
        out,
        "internal bypass:\nconnections new:\t\t{:>12}\nconnections updated:\t\t{:>12}\nconnections destroyed:\t\t{:>12}\n\n",
        s.new as u32, s.updated as u32, s.destroyed as u32
    );
}

/// `traffic processed:` block.
pub fn traffic_block(out: &mut String, bytes: u64, packets: u64) {
    let _ = write!(
        out,
        "traffic processed:\n{bytes:>20} Bytes      {packets:>20} Pckts\n\n"
    );
}

/// Counters of `-s runtime`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    pub uptime_secs: u64,
    pub events_received: u64,
    pub events_filtered: u64,
    pub events_unknown: u64,
    pub catch_failed: u64,
    pub dump_unknown: u64,
    pub overrun: u64,
    pub flush_kernel: u64,
    pub resync_kernel: u64,
    pub buffer_size: u64,
    pub child_failed: u64,
    pub child_segfault: u64,
    pub child_termsig: u64,
    pub select_failed: u64,
    pub wait_failed: u64,
    pub local_read_failed: u64,
    pub local_unknown: u64,
}

/// The uptime text: `[N day[s] ]` then `H h M min` or `M min`.
pub fn uptime(secs: u64) -> String {
    let days = secs / 86400;
    let hours = (secs / 3600) % 24;
    let mins = (secs / 60) % 60;
    let mut s = String::new();
    if days > 0 {
        let _ = write!(s, "{days} {} ", if days == 1 { "day" } else { "days" });
    }
    if hours > 0 {
        let _ = write!(s, "{hours} h {mins} min");
    } else {
        let _ = write!(s, "{mins} min");
    }
    s
}

/// `-s runtime`.
pub fn runtime_block(out: &mut String, r: &RuntimeStats) {
    let _ = write!(
        out,
        "daemon uptime: {}\n\nnetlink stats:\n\
\tevents received:\t{:>20}\n\
\tevents filtered:\t{:>20}\n\
\tevents unknown type:\t\t{:>12}\n\
\tcatch event failed:\t\t{:>12}\n\
\tdump unknown type:\t\t{:>12}\n\
\tnetlink overrun:\t\t{:>12}\n\
\tflush kernel table:\t\t{:>12}\n\
\tresync with kernel table:\t{:>12}\n\
\tcurrent buffer size (in bytes):\t{:>12}\n\n\
runtime stats:\n\
\tchild process failed:\t\t{:>12}\n\
\t\tchild process segfault:\t{:>12}\n\
\t\tchild process termsig:\t{:>12}\n\
\tselect failed:\t\t\t{:>12}\n\
\twait failed:\t\t\t{:>12}\n\
\tlocal read failed:\t\t{:>12}\n\
\tlocal unknown request:\t\t{:>12}\n\n",
        uptime(r.uptime_secs),
        r.events_received,
        r.events_filtered,
        r.events_unknown as u32,
        r.catch_failed as u32,
        r.dump_unknown as u32,
        r.overrun as u32,
        r.flush_kernel as u32,
        r.resync_kernel as u32,
        r.buffer_size as u32,
        r.child_failed as u32,
        r.child_segfault as u32,
        r.child_termsig as u32,
        r.select_failed as u32,
        r.wait_failed as u32,
        r.local_read_failed as u32,
        r.local_unknown as u32,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_text() {
        assert_eq!(uptime(0), "0 min");
        assert_eq!(uptime(3600 * 26 + 300), "1 day 2 h 5 min");
        assert_eq!(uptime(86400 * 3), "3 days 0 min");
    }

    #[test]
    fn traffic_layout() {
        let mut s = String::new();
        traffic_block(&mut s, 0, 0);
        assert_eq!(
            s,
            "traffic processed:\n                   0 Bytes                         0 Pckts\n\n"
        );
    }

    #[test]
    fn cache_layout() {
        let mut s = String::new();
        cache_block(
            &mut s,
            "internal",
            10,
            &CacheStats {
                created: 10,
                ..Default::default()
            },
        );
        assert!(s.starts_with("cache internal:\ncurrent active connections:\t          10\n"));
        assert!(s.contains("connections created:\t\t          10\tfailed:\t           0\n"));
    }
}

/// Traffic counters of one sync channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub errors_send: u64,
    pub errors_recv: u64,
}

impl ChannelStats {
    /// Counts one datagram (or stream write) of `len` bytes handed to the
    /// socket, or refused.
    pub fn record_send(&mut self, len: usize, ok: bool) {
        if ok {
            self.bytes_sent += len as u64;
            self.packets_sent += 1;
        } else {
            self.errors_send += 1;
        }
    }
}

fn channel_counts(out: &mut String, c: &ChannelStats) {
    let _ = write!(
        out,
        "{:>20} Bytes sent {:>20} Bytes recv\n{:>20} Pckts sent {:>20} Pckts recv\n{:>20} Error send {:>20} Error recv\n\n",
        c.bytes_sent, c.bytes_recv, c.packets_sent, c.packets_recv, c.errors_send, c.errors_recv
    );
}

/// The current channel's block of `-s` / `-s network`. `kind` is
/// `multicast`, `UDP` or `TCP`; `tcp_state` gives (server, client)
/// connected flags for TCP.
pub fn channel_block(
    out: &mut String,
    kind: &str,
    device: &str,
    tcp_state: Option<(bool, bool)>,
    c: &ChannelStats,
) {
    match tcp_state {
        Some((srv, cli)) => {
            let st = |b: bool| if b { "connected" } else { "disconnected" };
            let _ = writeln!(
                out,
                "{kind} traffic (active device={device}) server={} client={}:",
                st(srv),
                st(cli)
            );
        }
        None => {
            let _ = writeln!(out, "{kind} traffic (active device={device}):");
        }
    }
    channel_counts(out, c);
}

/// One channel of `-s link`.
pub fn link_block(
    out: &mut String,
    kind: &str,
    device: &str,
    status: &str,
    active: bool,
    c: &ChannelStats,
) {
    let _ = writeln!(
        out,
        "{kind} traffic device={device} status={status} role={}:",
        if active { "ACTIVE" } else { "BACKUP" }
    );
    channel_counts(out, c);
}

/// `message tracking:` block of the sync `-s`.
pub fn tracking_block(out: &mut String, malformed: u64, lost: u64) {
    let _ = write!(
        out,
        "message tracking:\n{malformed:>20} Malformed msgs {lost:>20} Lost msgs\n\n"
    );
}

/// Receive-side counters of `-s network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    pub malformed: u64,
    pub wrong_version: u64,
    pub bad_header: u64,
    pub bad_payload: u64,
    pub bad_type: u64,
    pub truncated: u64,
    pub bad_size: u64,
    pub lost: u64,
    pub before: u64,
    /// Datagrams (and TCP connections) from an address other than the
    /// configured peer, dropped (ours: `-s peers`).
    pub foreign: u64,
    /// The authenticated link's counters, when `Authentication` is
    /// configured (ours: `-s peers`).
    pub auth: Option<AuthCounters>,
}

/// Datagrams the authenticated link accepted and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthCounters {
    /// Accepted.
    pub ok: u64,
    /// Without a trailer.
    pub missing: u64,
    /// Whose tag did not verify.
    pub bad_tag: u64,
    /// Authentic but refused as replays.
    pub replayed: u64,
}

/// `-s network` (followed by the channel block).
pub fn network_block(out: &mut String, n: &NetworkStats) {
    let _ = write!(
        out,
        "network statistics:\n\trecv:\n\
\t\tMalformed messages:\t{:>20}\n\
\t\tWrong protocol version:\t{:>20}\n\
\t\tMalformed header:\t{:>20}\n\
\t\tMalformed payload:\t{:>20}\n\
\t\tBad message type:\t{:>20}\n\
\t\tTruncated message:\t{:>20}\n\
\t\tBad message size:\t{:>20}\n\
\tsend:\n\
\t\tMalformed messages:\t{:>20}\n\n\
sequence tracking statistics:\n\trecv:\n\
\t\tPackets lost:\t\t{:>20}\n\
\t\tPackets before:\t\t{:>20}\n\n",
        n.malformed,
        n.wrong_version as u32,
        n.bad_header as u32,
        n.bad_payload as u32,
        n.bad_type as u32,
        n.truncated as u32,
        n.bad_size as u32,
        0u32,
        n.lost,
        n.before
    );
}

/// `-s peers` (ours): what `-s network` of 1.4.7 has no room for, kept
/// out of it so that its layout stays byte for byte 1.4.7's: datagrams
/// and TCP connections from unknown peers, and the authenticated link's
/// verdicts (when `Authentication` is configured).
pub fn peers_block(out: &mut String, n: &NetworkStats) {
    let _ = write!(
        out,
        "unknown peers:\n\tdatagrams dropped:\t{:>20}\n\n",
        n.foreign
    );
    if let Some(a) = n.auth {
        let _ = write!(
            out,
            "authentication:\n\tdatagrams accepted:\t{:>20}\n\
\tdatagrams without tag:\t{:>20}\n\
\tdatagrams with bad tag:\t{:>20}\n\
\tdatagrams replayed:\t{:>20}\n\n",
            a.ok, a.missing, a.bad_tag, a.replayed
        );
    }
}

/// One queue of `-s queue`: (name, current, maximum, no-space errors).
pub fn queue_block(out: &mut String, allocated: u64, queues: &[(&str, u64, u64, u64)]) {
    let _ = write!(
        out,
        "allocated queue nodes:\t\t{:>12}\n\n",
        allocated as u32
    );
    for (name, cur, max, full) in queues {
        let _ = write!(
            out,
            "queue {name}:\ncurrent elements:\t\t{:>12}\nmaximum elements:\t\t{:>12}\nnot enough space errors:\t{:>12}\n\n",
            *cur as u32, *max as u32, *full as u32
        );
    }
}
