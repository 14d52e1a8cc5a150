//! The typed configuration: what `conntrackd.conf` says once parsed, with
//! upstream's defaults applied (a value of 0 in the file means "default").

use std::path::PathBuf;

use super::channel::Channel;
use super::filter::Filter;
use super::helper::HelperSection;
use super::span::Span;

/// `LockFile` when none is given.
pub const DEFAULT_LOCKFILE: &str = "/var/lock/conntrackd.lock";
/// General `LogFile on`.
pub const DEFAULT_LOGFILE: &str = "/var/log/conntrackd.log";
/// Stats `LogFile on`.
pub const DEFAULT_STATS_LOGFILE: &str = "/var/log/conntrackd-stats.log";
/// Default `HashSize` (buckets).
pub const DEFAULT_HASHSIZE: u32 = 65536;
/// Default `HashLimit` (objects per cache).
pub const DEFAULT_HASHLIMIT: u32 = 262_144;
/// Default `CacheTimeout` (s).
pub const DEFAULT_CACHE_TIMEOUT: u32 = 180;
/// Default `PurgeTimeout` (s).
pub const DEFAULT_PURGE_TIMEOUT: u32 = 60;
/// Default `RefreshTime` (s).
pub const DEFAULT_REFRESH: u32 = 60;
/// Default `ResendQueueSize` (objects).
pub const DEFAULT_RESEND_QUEUE_SIZE: u32 = 131_072;
/// Default `ACKWindowSize` (messages).
pub const DEFAULT_WINDOW_SIZE: u32 = 300;
/// Default `EventIterationLimit`.
pub const DEFAULT_EVENT_ITERATION_LIMIT: u32 = 100;
/// Default (and `on`) `NetlinkOverrunResync` (s).
pub const DEFAULT_OVERRUN_RESYNC: i32 = 30;
/// Default TCP `ErrorQueueLength`.
pub const DEFAULT_ERROR_QUEUE_LENGTH: u32 = 128;
/// Hash buckets committed per main-loop step (not configurable upstream).
pub const COMMIT_STEPS: u32 = 8192;
/// Longest `LogFile`/`LockFile` path accepted (FILENAME_MAXLEN).
pub const FILENAME_MAXLEN: usize = 256;
/// Longest UNIX `Path` accepted by the Debian 1.4.7 build.
pub const UNIX_PATH_MAX: usize = 107;
/// Most dedicated links (channel blocks that carry options).
pub const MAX_CHANNELS: usize = 4;

/// A parsed and defaulted `conntrackd.conf`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    /// `General { }` (all blocks merged; defaults when absent).
    pub general: General,
    /// `Sync { }` blocks merged; `None` when there is none.
    pub sync: Option<SyncSection>,
    /// `Stats { }` blocks merged; `None` when there is none.
    pub stats: Option<StatsSection>,
    /// `Helper { }` blocks merged; `None` when there is none.
    pub helper: Option<HelperSection>,
    /// Where things were written (not part of equality).
    pub spans: Spans,
}

/// Positions of the parts of a [`Config`], for messages about it. Two
/// `Spans` always compare equal, so that comparing configurations compares
/// what they say, not where.
#[derive(Clone, Debug, Default)]
pub struct Spans {
    /// First `General` keyword.
    pub general: Option<Span>,
    /// First `Sync` keyword.
    pub sync: Option<Span>,
    /// First `Stats` keyword.
    pub stats: Option<Span>,
    /// First `Helper` keyword.
    pub helper: Option<Span>,
    /// Last `CommitTimeout` statement.
    pub commit_timeout: Option<Span>,
    /// Keyword of each channel block, parallel to
    /// [`SyncSection::channels`].
    pub channels: Vec<Span>,
    /// `Type` of each helper, parallel to [`HelperSection::helpers`].
    pub helpers: Vec<Span>,
}

impl PartialEq for Spans {
    fn eq(&self, _: &Spans) -> bool {
        true
    }
}

/// What the daemon does, from which sections are present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// A `Sync` section: state replication.
    Sync,
    /// A `Stats` section: flow logging.
    Stats,
    /// Neither. 1.4.7 then runs neither mode (only the UNIX socket and the
    /// user-space helpers); its "No running mode specified" warning is dead
    /// code there.
    None,
}

impl Config {
    /// The running mode.
    pub fn run_mode(&self) -> RunMode {
        if self.sync.is_some() {
            RunMode::Sync
        } else if self.stats.is_some() {
            RunMode::Stats
        } else {
            RunMode::None
        }
    }
}

/// A syslog facility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyslogFacility {
    /// `daemon` (also what `Syslog on` means).
    Daemon,
    /// `local0` .. `local7`.
    Local(u8),
}

impl SyslogFacility {
    /// The facility named exactly `name` (lower case only, as upstream).
    pub fn from_name(name: &[u8]) -> Option<SyslogFacility> {
        match name {
            b"daemon" => Some(SyslogFacility::Daemon),
            [b'l', b'o', b'c', b'a', b'l', d @ b'0'..=b'7'] => {
                Some(SyslogFacility::Local(d - b'0'))
            }
            _ => None,
        }
    }
}

/// Scheduling policy of `Scheduler { Type ... }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedPolicy {
    /// `RR` (any case).
    RoundRobin,
    /// `FIFO` (any case).
    Fifo,
}

/// `Scheduler { Type ...; Priority ... }`; both unset when not configured
/// (the daemon then picks SCHED_RR at the maximum priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Scheduler {
    /// `Type`.
    pub policy: Option<SchedPolicy>,
    /// `Priority`, 0..=99.
    pub priority: Option<u8>,
}

/// `General { }`.
#[derive(Clone, Debug, PartialEq)]
pub struct General {
    /// `HashSize`: buckets of every cache hash table.
    pub hash_size: u32,
    /// `HashLimit`: most objects per cache.
    pub hash_limit: u32,
    /// `LogFile`: `None` = off. NB: upstream's `LogFile off` does nothing,
    /// it does not undo an earlier `on` or path.
    pub log_file: Option<PathBuf>,
    /// `Syslog`: `None` = off.
    pub syslog: Option<SyslogFacility>,
    /// `LockFile`.
    pub lock_file: PathBuf,
    /// `UNIX { Path }`; no default (without it the daemon cannot start).
    pub unix_path: Option<PathBuf>,
    /// `NetlinkBufferSize` (alias `SocketBufferSize`); 0 = system default.
    pub netlink_buffer_size: u32,
    /// `NetlinkBufferSizeMaxGrowth` (aliases `SocketBufferSizeMaxGrowth`,
    /// `SocketBufferSizeMaxGrown`); 0 = no growth.
    pub netlink_buffer_size_max_growth: u32,
    /// `NetlinkOverrunResync` as upstream stores it: seconds, or -1 for
    /// `off` (see [`General::overrun_resync_secs`]).
    pub netlink_overrun_resync: i32,
    /// `NetlinkEventsReliable`.
    pub netlink_events_reliable: bool,
    /// `PollSecs`: `Some` = polling mode (never 0).
    pub poll_secs: Option<u32>,
    /// `EventIterationLimit`.
    pub event_iteration_limit: u32,
    /// `Scheduler { }`.
    pub scheduler: Scheduler,
    /// `Systemd` (on by default in the Debian build).
    pub systemd: bool,
    /// `Lanes` (ours): threads that share the flows; `None` when not
    /// given (1, unless the daemon's environment says otherwise).
    pub lanes: Option<u32>,
    /// `Filter { }` blocks merged; `None` when there is none.
    pub filter: Option<Filter>,
}

impl General {
    /// Seconds after which an overrun triggers a resync, `None` if off.
    pub fn overrun_resync_secs(&self) -> Option<u32> {
        u32::try_from(self.netlink_overrun_resync)
            .ok()
            .filter(|&s| s > 0)
    }
}

impl Default for General {
    fn default() -> General {
        General {
            hash_size: DEFAULT_HASHSIZE,
            hash_limit: DEFAULT_HASHLIMIT,
            log_file: None,
            syslog: None,
            lock_file: PathBuf::from(DEFAULT_LOCKFILE),
            unix_path: None,
            netlink_buffer_size: 0,
            netlink_buffer_size_max_growth: 0,
            netlink_overrun_resync: DEFAULT_OVERRUN_RESYNC,
            netlink_events_reliable: false,
            poll_secs: None,
            event_iteration_limit: DEFAULT_EVENT_ITERATION_LIMIT,
            scheduler: Scheduler::default(),
            systemd: true,
            lanes: None,
            filter: None,
        }
    }
}

/// `Stats { }`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StatsSection {
    /// `LogFile`: `None` = off (`off` does not undo an earlier value).
    pub log_file: Option<PathBuf>,
    /// `Syslog`: `None` = off. General's facility wins on conflict.
    pub syslog: Option<SyslogFacility>,
}

/// A synchronisation protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncMode {
    /// `FTFW` (reliable).
    Ftfw,
    /// `ALARM` (periodic refresh).
    Alarm,
    /// `NOTRACK` (best effort).
    Notrack,
}

/// Which `Mode` blocks appeared (upstream ORs flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SyncModes {
    /// `Mode FTFW` (or `NACK`).
    pub ftfw: bool,
    /// `Mode ALARM` (or `PERSISTENT`).
    pub alarm: bool,
    /// `Mode NOTRACK`.
    pub notrack: bool,
}

impl SyncModes {
    /// The mode the daemon runs: FTFW wins over ALARM over NOTRACK; `None`
    /// when no `Mode` block appeared.
    pub fn selected(&self) -> Option<SyncMode> {
        if self.ftfw {
            Some(SyncMode::Ftfw)
        } else if self.alarm {
            Some(SyncMode::Alarm)
        } else if self.notrack {
            Some(SyncMode::Notrack)
        } else {
            None
        }
    }
}

/// `Options { ExpectationSync ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExpectationSync {
    /// Expectations are synchronised (`on` or a list appeared; a later
    /// `off` does NOT clear this upstream).
    pub enabled: bool,
    /// The event socket subscribes to expectation events (the last of
    /// `on`/list → true, `off` → false).
    pub expect_events: bool,
    /// Helper-name prefixes of the `{ ... }` lists, in order, without
    /// duplicates; empty = every helper.
    pub helpers: Vec<String>,
}

/// `Sync { }`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncSection {
    /// `Mode` blocks seen.
    pub modes: SyncModes,
    /// `RefreshTime` (s), ALARM.
    pub refresh_time: u32,
    /// `CacheTimeout` (s), ALARM.
    pub cache_timeout: u32,
    /// `CommitTimeout` (s); 0 = estimate from the entry.
    pub commit_timeout: u32,
    /// `PurgeTimeout` (s).
    pub purge_timeout: u32,
    /// `ResendQueueSize`, FTFW.
    pub resend_queue_size: u32,
    /// `ACKWindowSize`, FTFW.
    pub ack_window_size: u32,
    /// `DisableInternalCache`, NOTRACK.
    pub disable_internal_cache: bool,
    /// `DisableExternalCache`, FTFW and NOTRACK.
    pub disable_external_cache: bool,
    /// `StartupResync`, FTFW and NOTRACK.
    pub startup_resync: bool,
    /// Channel blocks in order.
    pub channels: Vec<Channel>,
    /// Index of the initially active channel: the last block marked
    /// `Default`, else 0.
    pub default_channel: usize,
    /// TCP `ErrorQueueLength` (one global value).
    pub error_queue_length: u32,
    /// `Options { TCPWindowTracking }`.
    pub tcp_window_tracking: bool,
    /// `Options { ExpectationSync }`.
    pub expectation_sync: ExpectationSync,
    /// `Authentication { }` (an extension; off when absent).
    pub auth: Option<SyncAuth>,
    /// `Snapshot { }` (an extension; off when absent).
    pub snapshot: Option<SyncSnapshot>,
}

/// Default `Snapshot { Interval }` in seconds.
pub const DEFAULT_SNAPSHOT_INTERVAL: u32 = 10;

/// `Sync { Snapshot { Path /file  Interval N } }`: the external cache is
/// written to `path` every `interval` seconds (when it changed) and at
/// shutdown, and read back at start-up (warm restart; an extension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSnapshot {
    pub path: std::path::PathBuf,
    pub interval: u32,
}

/// Default `ReplayWindow`: datagrams accepted out of order behind the
/// newest one.
pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;

/// `Sync { Authentication { KeyFile /path  ReplayWindow N } }`: every
/// datagram of the sync link carries an HMAC-SHA256 tag and a 64-bit
/// replay counter (an extension of this implementation; peers must both
/// have it, so it is off unless configured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncAuth {
    /// The file holding the shared key.
    pub key_file: std::path::PathBuf,
    /// Counters accepted out of order behind the newest one.
    pub replay_window: u32,
}

impl SyncSection {
    /// The protocol the daemon runs (FTFW when no `Mode` block appeared,
    /// with the warning [`super::WarningKind::NoSyncMode`]).
    pub fn mode(&self) -> SyncMode {
        self.modes.selected().unwrap_or(SyncMode::Ftfw)
    }
}

impl Default for SyncSection {
    fn default() -> SyncSection {
        SyncSection {
            modes: SyncModes::default(),
            refresh_time: DEFAULT_REFRESH,
            cache_timeout: DEFAULT_CACHE_TIMEOUT,
            commit_timeout: 0,
            purge_timeout: DEFAULT_PURGE_TIMEOUT,
            resend_queue_size: DEFAULT_RESEND_QUEUE_SIZE,
            ack_window_size: DEFAULT_WINDOW_SIZE,
            disable_internal_cache: false,
            disable_external_cache: false,
            startup_resync: false,
            channels: Vec::new(),
            default_channel: 0,
            error_queue_length: DEFAULT_ERROR_QUEUE_LENGTH,
            tcp_window_tracking: false,
            expectation_sync: ExpectationSync::default(),
            auth: None,
            snapshot: None,
        }
    }
}
