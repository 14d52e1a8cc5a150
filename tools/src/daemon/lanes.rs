//! Lanes (`General { Lanes N }`, or `CONNTRACKD_LANES=N` when the file
//! does not say): the daemon runs N event loops, each a thread with its
//! own engine, reactor, caches, ctnetlink event socket and sync channels,
//! sharing nothing. A flow belongs to lane `lane_of(orig tuple) % N`
//! (`ct_core::netlink::lanes`): the kernel gives each lane its share of
//! the events (a BPF program on its socket), dumps are filtered the same
//! way, and lane i syncs with the peer's lane i over its own channels,
//! on the configured ports plus i. When the peer runs fewer lanes (a
//! 1.4.x peer runs one), the lanes follow it (`lane_peer`): only as many
//! lanes as the peer hears sync, the others hand their flows over. The
//! control socket asks every lane and merges the answers.

/// Per lane: the port id of its DisableExternalCache inject handle (0:
/// none), written once when the lane opens its link, read on its ticks by
/// the other lanes (`Own::inject_lanes`).
pub static INJECT_PIDS: [std::sync::atomic::AtomicU32;
    ct_core::netlink::lanes::MAX_LANES as usize] =
    [const { std::sync::atomic::AtomicU32::new(0) }; ct_core::netlink::lanes::MAX_LANES as usize];

/// Per lane: the port id of its expectation inject handle
/// (DisableExternalCache with ExpectationSync; 0: none), as
/// [`INJECT_PIDS`].
pub static EXP_INJECT_PIDS: [std::sync::atomic::AtomicU32;
    ct_core::netlink::lanes::MAX_LANES as usize] =
    [const { std::sync::atomic::AtomicU32::new(0) }; ct_core::netlink::lanes::MAX_LANES as usize];

/// The other lanes' inject handles (conntracks' and expectations'), into
/// `out` (cleared first).
pub fn other_inject_pids(me: Lane, out: &mut Vec<u32>) {
    out.clear();
    for pids in [&INJECT_PIDS, &EXP_INJECT_PIDS] {
        for (i, p) in pids.iter().enumerate().take(me.count as usize) {
            let p = p.load(std::sync::atomic::Ordering::Relaxed);
            if i as u32 != me.index && p != 0 {
                out.push(p);
            }
        }
    }
}

/// Which lane an engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    pub index: u32,
    pub count: u32,
    /// The lanes that sync (`lane_peer`): `count` unless the peer runs
    /// fewer; a lane at or past it owns no flow.
    pub active: u32,
}

impl Lane {
    /// The only lane of a daemon without lanes.
    pub const ONE: Lane = Lane::new(0, 1);

    /// Lane `index` of `count`, all of them syncing.
    pub const fn new(index: u32, count: u32) -> Lane {
        Lane {
            index,
            count,
            active: count,
        }
    }

    /// Whether a flow with this original tuple is this lane's.
    pub fn owns(&self, orig: Option<&ct_core::flow::Tuple>) -> bool {
        self.count <= 1 || ct_core::netlink::lanes::lane_of(orig, self.active) == self.index
    }

    /// Whether this lane does what must be done once per daemon (kernel
    /// flushes, the kernel dump of `-i` without an internal cache,
    /// systemd notifications).
    pub fn first(&self) -> bool {
        self.index == 0
    }
}

/// The number of lanes: the file's `Lanes`, else `CONNTRACKD_LANES`, else
/// 1; a daemon without Sync or Stats runs one.
pub fn count(cfg: &ct_core::config::Config) -> Result<u32, String> {
    if cfg.run_mode() == ct_core::config::RunMode::None {
        return Ok(1);
    }
    if let Some(n) = cfg.general.lanes {
        return Ok(n);
    }
    match std::env::var("CONNTRACKD_LANES") {
        Err(_) => Ok(1),
        Ok(v) if v.trim().is_empty() => Ok(1),
        Ok(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=ct_core::netlink::lanes::MAX_LANES).contains(&n) => Ok(n),
            _ => Err(format!(
                "CONNTRACKD_LANES={v}: must be a number of lanes from 1 to {}",
                ct_core::netlink::lanes::MAX_LANES
            )),
        },
    }
}

/// The first channel whose `Port` (`Group`) plus the last lane's offset
/// passes 65535, with the position of its block: lane i binds every
/// channel's port + i ([`super::sync::SyncLink::open`]), which must not
/// wrap to another port.
pub fn port_past_end(
    cfg: &ct_core::config::Config,
    lanes: u32,
) -> Option<(ct_core::config::Span, &ct_core::config::Channel)> {
    let sync = cfg.sync.as_ref()?;
    // (only channels of the default one's transport are opened)
    let kind = sync.channels.get(sync.default_channel)?.kind;
    sync.channels
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == kind)
        .find(|(_, c)| u32::from(c.port) + lanes.saturating_sub(1) > u32::from(u16::MAX))
        .map(|(i, c)| (cfg.spans.channels.get(i).copied().unwrap_or_default(), c))
}
