//! Warm restart (`Sync { Snapshot { Path … Interval … } }`, an extension):
//! the external cache is written to a snapshot file every `Interval`
//! seconds when it changed, and at shutdown; at start-up the snapshot is
//! mapped (memmap2) and read back so that the backup holds its peer's
//! states at once, then it reconciles with the peer.
//!
//! * The entries are encoded in the event loop (about 0.1 s at 1M flows);
//!   hashing and the file work happen in a thread of their own, one
//!   snapshot at a time. At shutdown it is all done in place.
//! * Writing is crash-consistent: a new temporary file next to the
//!   snapshot (`O_EXCL | O_NOFOLLOW`, a name with our pid) is written,
//!   synced and renamed over the snapshot, then the directory is synced. A
//!   crash at any point leaves the previous snapshot whole; a damaged file
//!   is refused by its SHA-256 or its entries (`ct_transport::snapshot`),
//!   kept aside as `PATH.refused` (or `.refused.1` ...), and adds nothing.
//! * Lanes: each writes its own file ([`lane_path`]) stamped with its
//!   share and a `seq` above every file read at start-up ([`Shared`]);
//!   each reads every file there is, newest first, and [`take`]s its
//!   share (see `Engine::open_snapshot`). Plain writes, no
//!   mapping: a full disk is an ENOSPC, never a SIGBUS.
//! * Reconciliation: loaded entries carry the generation [`STALE_GEN`];
//!   a message from the peer about one of them (after our resync request)
//!   confirms it (generation 0 again). The daemon asks the peer for a
//!   resync (again every [`RETRY`] until a confirmation comes); once
//!   confirmations have started and then stopped for [`QUIET`], the
//!   entries still stale are flows the peer no longer has, and are
//!   removed. Ordinary traffic about entries the peer already confirmed
//!   does not hold the sweep back. While nothing is confirmed (the peer may
//!   be the node that failed), nothing is removed.
//! * Write errors (disk full, directory not writable) are logged once per
//!   series and the daemon goes on; it tries again at the next interval.
//!   Nothing is written before the cache changed: an unreadable or
//!   refused snapshot is not overwritten by an empty cache at start.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ct_core::config::SyncSnapshot;
use ct_core::flow::Flow;
use ct_core::table::{Cache, ObjState};
use ct_transport::snapshot::{Snapshot, SnapshotWriter, Stamp};

/// Generation of entries loaded from a snapshot and not yet confirmed by
/// the peer.
pub const STALE_GEN: u8 = 0xee;
/// Ask the peer again when its resync has not started after this long.
pub const RETRY: Duration = Duration::from_secs(3);
/// The peer's resync is taken as complete after this long without data.
pub const QUIET: Duration = Duration::from_secs(2);
/// How long after the start (or after the lanes followed the peer) the
/// lanes' shares may still differ from the peer's: a peer with more lanes
/// follows ours only after `lane_peer::SILENCE`, then sends the flows of
/// its other lanes. Until then nothing is swept, and snapshots speak only
/// for the flows they hold (a lane's share may hold flows it does not
/// have yet).
pub const SETTLE: Duration = Duration::from_secs(
    super::lane_peer::SILENCE.as_secs() + super::lane_peer::STEADY.as_secs() + RETRY.as_secs(),
);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".tmp.{}", std::process::id()));
    PathBuf::from(s)
}

/// The live entries of `cache`, encoded (the slow part that needs the
/// cache; [`write_file`] does the rest).
///
/// Every live flow goes in, those outside the stamp's share too (a lane
/// may hold another share's flows until the lanes follow the peer, and
/// the file is then their only copy; at start-up they count for what the
/// file holds). Should one not encode, the stamp is taken back to speak
/// only for what the file holds (the flow is not there, but it did not
/// end).
pub fn encode(cache: &Cache, stamp: &mut Stamp) -> SnapshotWriter {
    let mut w = SnapshotWriter::with_capacity(cache.len());
    let mut lost = false;
    cache.for_each(|f, state, _| {
        if state != ObjState::Dead {
            lost |= !w.push(&f);
        }
    });
    if lost {
        stamp.lanes = 0;
    }
    w
}

/// Finishes `w` (header, hash) and writes it to `path` (see the module
/// doc); returns (entries, bytes).
pub fn write_file(path: &Path, w: SnapshotWriter, stamp: Stamp) -> io::Result<(u64, usize)> {
    let entries = w.entries();
    let bytes = w.finish(unix_now(), stamp);
    let tmp = tmp_path(path);
    let _ = std::fs::remove_file(&tmp); // ours, left by a crash
    let res = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok((entries, bytes.len()))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Writes the live entries of `cache` to `path` in this thread.
pub fn write(path: &Path, cache: &Cache, mut stamp: Stamp) -> io::Result<(u64, usize)> {
    let w = encode(cache, &mut stamp);
    write_file(path, w, stamp)
}

/// The snapshot file of lane `index` of `lanes` for the configured
/// `Path`: `Path` itself with one lane, `Path.lane<i>of<N>` with N. Files
/// of another count are never written over: they go once every lane of
/// this count has written its own ([`Shared`]).
pub fn lane_path(base: &Path, index: u32, lanes: u32) -> PathBuf {
    if lanes <= 1 {
        return base.to_path_buf();
    }
    let mut p = base.as_os_str().to_owned();
    p.push(format!(".lane{index}of{lanes}"));
    PathBuf::from(p)
}

/// Whether `suffix` (what follows `Path`'s file name) names a snapshot
/// file: nothing (`Path`), `.lane<i>of<N>`, or `.lane<i>` (this daemon's
/// names for lane i before the stamps).
fn lane_suffix(suffix: &[u8]) -> bool {
    let digits = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    if suffix.is_empty() {
        return true;
    }
    let Some(rest) = suffix.strip_prefix(b".lane") else {
        return false;
    };
    match rest.iter().position(|&c| c == b'o') {
        None => digits(rest),
        Some(i) => digits(&rest[..i]) && rest[i..].starts_with(b"of") && digits(&rest[i + 2..]),
    }
}

/// The entries next to `base` whose names start with its file name:
/// what follows the name, and the path.
fn siblings(base: &Path) -> io::Result<Vec<(Vec<u8>, PathBuf)>> {
    use std::os::unix::ffi::OsStrExt;
    let Some(name) = base.file_name() else {
        return Ok(Vec::new());
    };
    let dir = match base.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d,
        None => Path::new("."),
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let n = e?.file_name();
        if let Some(suffix) = n.as_bytes().strip_prefix(name.as_bytes()) {
            out.push((suffix.to_vec(), base.with_file_name(&n)));
        }
    }
    out.sort();
    Ok(out)
}

/// The snapshot files next to `base` (see [`lane_suffix`]); `Err` when
/// the directory cannot be read.
pub fn candidates(base: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(siblings(base)?
        .into_iter()
        .filter(|(suffix, _)| lane_suffix(suffix))
        .map(|(_, p)| p)
        .collect())
}

/// Temporary files of snapshots that another process (an earlier run,
/// killed while writing) left next to `base`: `<file>.tmp.<pid>` for a
/// snapshot file name and a pid not ours. (The lock file keeps a second
/// daemon of the same configuration out.)
pub fn leftover_temporaries(base: &Path) -> Vec<PathBuf> {
    let ours = std::process::id().to_string();
    let leftover = |rest: &[u8]| {
        let Some(at) = rest.windows(5).rposition(|w| w == b".tmp.") else {
            return false;
        };
        let pid = &rest[at + 5..];
        lane_suffix(&rest[..at])
            && !pid.is_empty()
            && pid.iter().all(u8::is_ascii_digit)
            && pid != ours.as_bytes()
    };
    siblings(base)
        .unwrap_or_default()
        .into_iter()
        .filter(|(suffix, _)| leftover(suffix))
        .map(|(_, p)| p)
        .collect()
}

/// The snapshot files `base` may have when its directory cannot be
/// listed: `base`, the lanes' of `lanes`, and the older `base.lane<i>`.
pub fn probable(base: &Path, lanes: u32) -> Vec<PathBuf> {
    let mut v = vec![base.to_path_buf()];
    for i in 0..ct_core::netlink::lanes::MAX_LANES {
        if lanes > 1 && i < lanes {
            v.push(lane_path(base, i, lanes));
        }
        if i > 0 {
            let mut p = base.as_os_str().to_owned();
            p.push(format!(".lane{i}"));
            v.push(PathBuf::from(p));
        }
    }
    v
}

/// A snapshot file, mapped and checked whole (header, hash, and every
/// entry decoded once).
pub struct Opened {
    map: memmap2::Mmap,
    pub stamp: Stamp,
    /// Seconds since it was written.
    pub age: u64,
    /// Modification time: orders files of the same `seq` (version 1).
    pub mtime: std::time::SystemTime,
}

/// Why a snapshot file could not be read.
#[derive(Debug)]
pub enum OpenError {
    /// Damaged (refused by its checksum or its entries): set it aside.
    Damaged(String),
    /// Not readable (permissions, I/O): left alone.
    Io(io::Error),
}

impl Opened {
    /// Opens `path`; `Ok(None)` when there is no such file.
    pub fn open(path: &Path) -> Result<Option<Opened>, OpenError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(OpenError::Io(e)),
        };
        let mtime = file
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        // SAFETY: a read-only mapping of a file only this daemon writes, and
        // always through a rename (the mapped inode is never modified).
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(OpenError::Io)?;
        let snap = Snapshot::new_checked(&map).map_err(|e| OpenError::Damaged(e.to_string()))?;
        snap.for_each(drop)
            .map_err(|e| OpenError::Damaged(e.to_string()))?;
        let (stamp, age) = (snap.stamp(), unix_now().saturating_sub(snap.written_at()));
        Ok(Some(Opened {
            map,
            stamp,
            age,
            mtime,
        }))
    }

    /// The checked view.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::new_checked(&self.map).expect("checked when opened")
    }

    /// Newest first: by `seq`, then by modification time.
    pub fn order_key(&self) -> (u64, std::time::SystemTime) {
        (self.stamp.seq, self.mtime)
    }
}

/// Whether a file with `stamp` speaks for `f` (its writer's share holds
/// it, whether or not the file does).
pub fn covers(stamp: &Stamp, f: &Flow) -> bool {
    stamp.lanes > 0 && ct_core::netlink::lanes::lane_of(f.orig.as_ref(), stamp.lanes) == stamp.lane
}

/// What a lane took from one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    /// Entries taken into the cache.
    pub entries: u64,
    /// Entries of another lane's share (`keep` said no).
    pub skipped: u64,
    /// Entries a newer file speaks for (ended or changed since).
    pub older: u64,
    /// Entries the cache had no room for (its HashLimit share).
    pub refused: u64,
}

/// Takes into `cache` (in [`STALE_GEN`]) the entries of `snap` that
/// `keep` accepts, unless a `newer` file speaks for them or the cache
/// holds them already (from a newer file): files are taken newest first.
pub fn take(
    snap: &Snapshot,
    cache: &mut Cache,
    now: u32,
    keep: &mut dyn FnMut(&Flow) -> bool,
    newer: &[Stamp],
) -> Taken {
    let mut t = Taken::default();
    let _ = snap.for_each(|f| {
        if !keep(&f) {
            t.skipped += 1;
        } else if newer.iter().any(|s| covers(s, &f)) || cache.get(&f).is_some() {
            t.older += 1;
        } else if cache.replace(&f, now, STALE_GEN) {
            t.entries += 1;
        } else {
            t.refused += 1;
        }
    });
    t
}

/// How many refused snapshots of one path are kept (`PATH.refused`,
/// then `PATH.refused.1` ...): past that, the last name is reused.
const REFUSED_KEPT: u32 = 10;

/// Renames a refused snapshot to `PATH.refused`, or the first of
/// `PATH.refused.1` ... not taken (kept for a look: neither the next
/// snapshot nor the next refusal overwrites one); false when it could
/// not.
pub fn set_aside(path: &Path) -> bool {
    let name = |k: u32| {
        let mut s = path.as_os_str().to_owned();
        s.push(".refused");
        if k > 0 {
            s.push(format!(".{k}"));
        }
        PathBuf::from(s)
    };
    let free = (0..REFUSED_KEPT).map(name).find(|p| !p.exists());
    let to = free.unwrap_or_else(|| name(REFUSED_KEPT - 1));
    std::fs::rename(path, to).is_ok()
}

/// What the lanes of a daemon share about their snapshot files: which
/// lanes' files stand for their external cache since the start (bit i
/// for lane i: loaded with nothing of another lane's, or written since),
/// and the highest `seq` seen or given. Once every lane's file is
/// current, the files of another lane count hold nothing a current file
/// does not speak for, and lane 0 removes them. All lanes load before any
/// writes (they start behind a gate), so every `seq` written is above
/// every `seq` read.
pub struct Shared {
    current: AtomicU64,
    seq: AtomicU64,
}

impl Shared {
    pub const fn new() -> Shared {
        Shared {
            current: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        }
    }
    pub fn set_current(&self, lane: u32) {
        self.current.fetch_or(1 << lane, Ordering::AcqRel);
    }
    /// Whether lanes 0..`count` are all current.
    pub fn all_current(&self, count: u32) -> bool {
        let want = if count >= 64 {
            u64::MAX
        } else {
            (1 << count) - 1
        };
        self.current.load(Ordering::Acquire) & want == want
    }
    /// A file with `seq` was read.
    pub fn saw_seq(&self, seq: u64) {
        self.seq.fetch_max(seq, Ordering::AcqRel);
    }
    /// The `seq` of the next file written: above every `seq` read and,
    /// in case a file could not be read, above the seconds since the
    /// epoch times 2^20 (a later run writes above an earlier one's files
    /// unless the clock went back).
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_max(unix_now() << 20, Ordering::AcqRel);
        self.seq.fetch_add(1, Ordering::AcqRel) + 1
    }
}

impl Default for Shared {
    fn default() -> Shared {
        Shared::new()
    }
}

/// The daemon's lanes.
pub static SHARED: Shared = Shared::new();

/// What a snapshot write gives: (entries, bytes) or the error.
pub type WriteResult = io::Result<(u64, usize)>;

/// The warm-restart state of a running daemon.
pub struct Warm {
    pub cfg: SyncSnapshot,
    /// The external cache's change count the file on disk reflects.
    written: Option<u64>,
    /// Seconds since the last write started.
    since: u32,
    /// The write in progress (another thread), and the change count it
    /// covers.
    inflight: Option<(mpsc::Receiver<WriteResult>, u64)>,
    pub reconcile: Option<Reconcile>,
    /// The last write failed (logged once per series).
    pub failing: bool,
    /// Lane 0: the files of another lane count found at start-up, to
    /// remove once every lane's file is current ([`Shared`]).
    pub stale_files: Vec<PathBuf>,
    /// Some loaded entries found no room, or a file could not be read:
    /// the lane never counts as current and its files speak only for what
    /// they hold, so that the other files stay and still count.
    pub keep_files: bool,
    /// Not before: the sweep of what the peer did not confirm, and
    /// snapshots that speak for the lane's whole share ([`SETTLE`]).
    pub settle_at: Instant,
    /// The write under way speaks for the lane's whole share.
    pub writing_covers: bool,
    /// The file on disk does (written so since the start).
    covering: bool,
    /// A flow did not encode: the files speak only for what they hold,
    /// and settling forces no more writes.
    cannot_cover: bool,
}

/// Waiting for the peer's resync after a load.
#[derive(Debug, Clone, Copy)]
pub struct Reconcile {
    pub requested: Instant,
    /// The last confirmation of a loaded entry by the peer.
    pub last_confirmed: Option<Instant>,
    /// When the peer was first heard from (any datagram) since the load.
    pub heard: Option<Instant>,
}

/// What the engine should do after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Ask the peer for a resync (again).
    RequestResync,
    /// The resync is over: remove what is still stale.
    Sweep,
}

/// The external cache's change count (what a snapshot would differ by).
pub fn changes(c: &Cache) -> u64 {
    let s = c.stats();
    s.created + s.updated + s.destroyed
}

impl Warm {
    pub fn new(cfg: SyncSnapshot) -> Warm {
        Warm {
            cfg,
            written: None,
            since: 0,
            inflight: None,
            reconcile: None,
            failing: false,
            stale_files: Vec::new(),
            keep_files: false,
            settle_at: Instant::now(),
            writing_covers: false,
            covering: false,
            cannot_cover: false,
        }
    }

    /// Whether the file on disk already stands for `cache` (nothing to
    /// write at shutdown; a write under way is waited for first).
    pub fn unchanged(&mut self, cache: &Cache) -> bool {
        let _ = self.collect(true);
        self.written == Some(changes(cache))
    }

    /// The lane's share changed: its file no longer speaks for it.
    pub fn forget_covering(&mut self) {
        self.covering = false;
    }

    /// Whether the file on disk speaks for the lane's share.
    pub fn covering_on_disk(&self) -> bool {
        self.covering
    }

    /// Whether this lane's files may speak for its whole share now: the
    /// shares settled ([`SETTLE`]), nothing left to reconcile, nothing
    /// kept ([`Warm::keep_files`]).
    pub fn settled_now(&self, now: Instant) -> bool {
        now >= self.settle_at && self.reconcile.is_none() && !self.keep_files
    }

    /// The file on disk stands for `cache` as it is (after a load, or
    /// when there is nothing to write yet): no write until it changes.
    pub fn mark_current(&mut self, cache: &Cache) {
        self.written = Some(changes(cache));
    }

    /// A snapshot was loaded: reconcile with the peer from now on.
    pub fn start_reconcile(&mut self, now: Instant) {
        self.reconcile = Some(Reconcile {
            requested: now,
            last_confirmed: None,
            heard: None,
        });
    }

    /// The peer confirmed (updated or deleted) an entry still stale.
    pub fn on_confirm(&mut self, now: Instant) {
        if let Some(r) = &mut self.reconcile {
            r.last_confirmed = Some(now);
        }
    }

    /// A datagram came from the peer (alive, whatever it says).
    /// The peer's shares settle with ours no sooner than [`SETTLE`] after
    /// it is first heard (it may come up long after this daemon).
    pub fn on_heard(&mut self, now: Instant) {
        if let Some(r) = &mut self.reconcile {
            if r.heard.is_none() {
                r.heard = Some(now);
                self.settle_at = self.settle_at.max(now + SETTLE);
            }
        }
    }

    /// The 1-second tick: reconciliation steps. Stale entries are swept
    /// once the peer's confirmations have stopped for [`QUIET`], or when
    /// the peer, alive for two resync requests' time, has confirmed none
    /// (it had nothing of ours: every loaded entry ended meanwhile, as a
    /// lane whose share emptied). While the peer is silent, nothing goes.
    pub fn tick(&mut self, now: Instant) -> Step {
        let settled = now >= self.settle_at;
        let Some(r) = &mut self.reconcile else {
            return Step::Nothing;
        };
        match r.last_confirmed {
            None if settled
                && r.heard
                    .is_some_and(|h| now.saturating_duration_since(h) >= 2 * RETRY) =>
            {
                self.reconcile = None;
                Step::Sweep
            }
            None if now.duration_since(r.requested) >= RETRY => {
                r.requested = now;
                Step::RequestResync
            }
            Some(t) if settled && now.duration_since(t) >= QUIET => {
                self.reconcile = None;
                Step::Sweep
            }
            _ => Step::Nothing,
        }
    }

    /// True when a snapshot is due (every `Interval` seconds, only if the
    /// cache changed since the file was written, or the lane has `settled`
    /// and its file does not yet speak for its share; none being
    /// written); counts the tick.
    pub fn due(&mut self, cache: &Cache, settled: bool) -> bool {
        self.since += 1;
        self.inflight.is_none()
            && self.since >= self.cfg.interval
            && (self.written != Some(changes(cache))
                || (settled && !self.covering && !self.cannot_cover))
    }

    /// Encodes `cache` here and writes it in another thread, with
    /// `stamp`; see [`finished`](Self::finished).
    pub fn start_write(&mut self, cache: &Cache, stamp: Stamp) {
        let (w, stamp, c) = self.encode(cache, stamp);
        let path = self.cfg.path.clone();
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                super::control::normal_priority();
                let _ = tx.send(write_file(&path, w, stamp));
            });
        if spawned.is_ok() {
            self.inflight = Some((rx, c));
        }
    }

    /// Encodes `cache` for a write with `stamp` (taken back to speak only
    /// for what the file holds should a flow not encode); returns the
    /// encoded file, the stamp and the change count it stands for.
    fn encode(&mut self, cache: &Cache, mut stamp: Stamp) -> (SnapshotWriter, Stamp, u64) {
        self.since = 0;
        let c = changes(cache);
        let asked = stamp.lanes > 0;
        let w = encode(cache, &mut stamp);
        self.writing_covers = stamp.lanes > 0;
        self.cannot_cover |= asked && !self.writing_covers;
        (w, stamp, c)
    }

    /// The outcome of the write in progress, once it is over (with
    /// `wait`, once it is over whatever it takes); `None` while it runs or
    /// when there is none.
    fn collect(&mut self, wait: bool) -> Option<io::Result<(u64, usize)>> {
        let (rx, c) = self.inflight.as_ref()?;
        let died = || Err(io::Error::other("snapshot thread died"));
        let r = if wait {
            rx.recv().unwrap_or_else(|_| died())
        } else {
            match rx.try_recv() {
                Ok(r) => r,
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => died(),
            }
        };
        if r.is_ok() {
            self.written = Some(*c);
            self.covering = self.writing_covers;
        }
        self.inflight = None;
        Some(r)
    }

    /// The outcome of the write in progress, once it is over.
    pub fn finished(&mut self) -> Option<io::Result<(u64, usize)>> {
        self.collect(false)
    }

    /// Writes the snapshot now, in this thread, after the one in progress
    /// (shutdown).
    pub fn write_now(&mut self, cache: &Cache, stamp: Stamp) -> io::Result<(u64, usize)> {
        let _ = self.collect(true);
        let (w, stamp, c) = self.encode(cache, stamp);
        let r = write_file(&self.cfg.path, w, stamp)?;
        self.covering = self.writing_covers;
        self.written = Some(c);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_core::flow::Flow;

    fn flow(i: u32) -> Flow {
        crate::perf::fill::synthetic(i as u64, true, 100)
    }

    /// Reads `path` whole into `cache` (entries in [`STALE_GEN`]); `Ok(None)`
    /// when there is no snapshot. A damaged file is set aside and adds
    /// nothing. (One file, nothing filtered.)
    pub fn load(path: &Path, cache: &mut Cache, now: u32) -> Result<Option<u64>, String> {
        match Opened::open(path) {
            Ok(Some(o)) => Ok(Some(
                take(&o.snapshot(), cache, now, &mut |_| true, &[]).entries,
            )),
            Ok(None) => Ok(None),
            Err(OpenError::Damaged(e)) => {
                set_aside(path);
                Err(e)
            }
            Err(OpenError::Io(e)) => Err(e.to_string()),
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ctwarm-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn write_load_and_damage() {
        let d = dir("wl");
        let p = d.join("ext.snap");
        let mut c = Cache::new(64, 1000);
        for i in 0..50 {
            c.replace(&flow(i), 1, 0);
        }
        assert_eq!(write(&p, &c, Stamp::default()).unwrap().0, 50);
        assert!(!tmp_path(&p).exists());
        let mut back = Cache::new(64, 1000);
        assert_eq!(load(&p, &mut back, 5), Ok(Some(50)));
        assert_eq!(back.count_gen(STALE_GEN), 50);
        // The peer confirms 30 of them; the other 20 are swept.
        for i in 0..30 {
            back.upsert(&flow(i), 6, 0);
        }
        assert_eq!(back.remove_stale(0), 20);
        assert_eq!(back.len(), 30);
        // No file: a cold start. A torn one: refused, cache left empty.
        let mut cold = Cache::new(64, 1000);
        assert_eq!(load(&d.join("none"), &mut cold, 1), Ok(None));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load(&p, &mut cold, 1).is_err());
        assert!(cold.is_empty());
        // A refused file is kept aside, and a second refusal keeps both.
        let mut aside = p.as_os_str().to_owned();
        aside.push(".refused");
        assert!(Path::new(&aside).exists() && !p.exists());
        std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
        assert!(load(&p, &mut cold, 1).is_err());
        let mut second = aside.clone();
        second.push(".1");
        assert!(Path::new(&second).exists() && !p.exists());
        assert_eq!(std::fs::read(&aside).unwrap().len(), bytes.len() / 2);
        assert_eq!(std::fs::read(&second).unwrap().len(), bytes.len() / 3);
        // An unwritable place: an error, no panic, no temporary left.
        assert!(write(Path::new("/proc/ctwarm/ext.snap"), &c, Stamp::default()).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn lane_files_and_current_lanes() {
        let base = Path::new("/run/x.snap");
        assert_eq!(lane_path(base, 0, 1), base);
        assert_eq!(lane_path(base, 3, 4), Path::new("/run/x.snap.lane3of4"));
        let c = Shared::new();
        c.set_current(0);
        assert!(c.all_current(1) && !c.all_current(2));
        c.set_current(1);
        assert!(c.all_current(2) && !c.all_current(3));
        for i in 2..64 {
            c.set_current(i);
        }
        assert!(c.all_current(64));
        let floor = unix_now() << 20;
        c.saw_seq(floor + 7);
        c.saw_seq(3);
        assert_eq!((c.next_seq(), c.next_seq()), (floor + 8, floor + 9));
        let fresh = Shared::new();
        assert!(fresh.next_seq() > floor);
    }

    /// Three files of two lane counts, newest first: of each flow a lane
    /// owns, the newest file that speaks for it decides (a flow it does
    /// not hold ended); a version 1 file speaks only for what it holds.
    #[test]
    fn the_newest_file_that_speaks_for_a_flow_decides() {
        use ct_core::netlink::lanes::lane_of;
        let d = dir("newest");
        let lane2 = |f: &Flow| lane_of(f.orig.as_ref(), 2);
        // an old one-lane file with flows 0..40
        let mut all = Cache::new(64, 1000);
        for i in 0..40 {
            all.replace(&flow(i), 1, 0);
        }
        let old = d.join("s");
        write(
            &old,
            &all,
            Stamp {
                seq: 4,
                lane: 0,
                lanes: 1,
            },
        )
        .unwrap();
        // then lane 1 of 2 wrote its share, some of its flows ended
        let mut one = Cache::new(64, 1000);
        let ended: Vec<u32> = (0..40).filter(|&i| lane2(&flow(i)) == 1).take(3).collect();
        for i in (0..40).filter(|&i| lane2(&flow(i)) == 1 && !ended.contains(&i)) {
            one.replace(&flow(i), 1, 0);
        }
        let newer = lane_path(&d.join("s"), 1, 2);
        write(
            &newer,
            &one,
            Stamp {
                seq: 5,
                lane: 1,
                lanes: 2,
            },
        )
        .unwrap();
        for junk in [
            "s.lane1of2.bak",
            "s.lanes",
            "s.lane1of2.tmp.77",
            "s.refused",
            "s.refused.1",
            "sx",
        ] {
            std::fs::write(d.join(junk), b"x").unwrap();
        }
        assert_eq!(
            candidates(&d.join("s")).unwrap(),
            vec![old.clone(), newer.clone()]
        );
        for (suffix, ok) in [
            ("", true),
            (".lane3", true),
            (".lane0of2", true),
            (".lane12of16", true),
            (".lane", false),
            (".laneof2", false),
            (".lane1of", false),
            (".lane1of2.bak", false),
            (".lane1ox2", false),
            (".refused", false),
            (".refused.1", false),
        ] {
            assert_eq!(lane_suffix(suffix.as_bytes()), ok, "{suffix:?}");
        }
        assert!(candidates(&d.join("none/s")).is_err());
        // what a kill -9 left while writing goes; ours and others stay
        let mine = format!("s.lane0of2.tmp.{}", std::process::id());
        for t in [
            "s.tmp.1",
            "s.lane1of2.tmp.42",
            mine.as_str(),
            "s.lane1of2.tmp.x",
            "t.tmp.5",
        ] {
            std::fs::write(d.join(t), b"x").unwrap();
        }
        assert_eq!(
            leftover_temporaries(&d.join("s")),
            vec![
                d.join("s.lane1of2.tmp.42"),
                d.join("s.lane1of2.tmp.77"),
                d.join("s.tmp.1")
            ]
        );
        assert_eq!(
            probable(&d.join("s"), 2)[..3],
            [d.join("s"), d.join("s.lane0of2"), d.join("s.lane1of2")]
        );
        let mut files: Vec<Opened> = [&old, &newer]
            .iter()
            .map(|p| Opened::open(p).unwrap().unwrap())
            .collect();
        files.sort_by_key(|o| std::cmp::Reverse(o.order_key()));
        // each lane of two takes its share: lane 1 from the newer file
        // (not the ended ones), lane 0 from the old one
        let mut got = 0;
        for lane in 0..2u32 {
            let mut c = Cache::new(64, 1000);
            let mut seen = Vec::new();
            for o in &files {
                let mut keep = |f: &Flow| lane2(f) == lane;
                let t = take(&o.snapshot(), &mut c, 2, &mut keep, &seen);
                seen.push(o.stamp);
                if lane == 1 && o.stamp.seq == 4 {
                    assert_eq!(t.entries, 0, "{t:?}");
                    assert_eq!(t.older, one.len() as u64 + 3);
                }
            }
            for e in &ended {
                assert!(c.get(&flow(*e)).is_none(), "flow {e} ended");
            }
            got += c.len();
        }
        assert_eq!(got, 40 - 3);
        // a file that speaks for a share holds the other flows of its
        // lane too (they count for what it holds)
        let share = d.join("share");
        let n = write(
            &share,
            &all,
            Stamp {
                seq: 9,
                lane: 1,
                lanes: 2,
            },
        )
        .unwrap()
        .0;
        assert_eq!(n, 40);
        // a version 1 file speaks only for what it holds
        let v1 = Stamp::default();
        assert!(!covers(&v1, &flow(1)));
        // a lane with no room counts what it could not take
        let mut small = Cache::new(8, 5);
        let t = take(&files[1].snapshot(), &mut small, 2, &mut |_| true, &[]);
        assert_eq!((t.entries, t.refused), (5, 35));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reconcile_steps() {
        let cfg = SyncSnapshot {
            path: PathBuf::from("/x"),
            interval: 2,
        };
        let mut w = Warm::new(cfg);
        let t0 = Instant::now();
        assert_eq!(w.tick(t0), Step::Nothing);
        w.start_reconcile(t0);
        assert_eq!(w.tick(t0 + Duration::from_secs(1)), Step::Nothing);
        // no answer: ask again, keep everything
        assert_eq!(w.tick(t0 + RETRY), Step::RequestResync);
        w.on_confirm(t0 + RETRY + Duration::from_millis(100));
        assert_eq!(w.tick(t0 + RETRY + Duration::from_secs(1)), Step::Nothing);
        assert_eq!(
            w.tick(t0 + RETRY + QUIET + Duration::from_secs(1)),
            Step::Sweep
        );
        assert!(w.reconcile.is_none());
        // before the shares settle nothing is swept
        w.start_reconcile(t0);
        w.settle_at = t0 + SETTLE;
        w.on_confirm(t0 + Duration::from_millis(100));
        assert_eq!(w.tick(t0 + QUIET + Duration::from_secs(1)), Step::Nothing);
        assert!(!w.settled_now(t0 + QUIET + Duration::from_secs(1)));
        assert_eq!(w.tick(t0 + SETTLE), Step::Sweep);
        assert!(w.settled_now(t0 + SETTLE));
        w.settle_at = t0;
        // a peer that answers but confirms nothing: swept after two
        // requests' time; a silent one: never
        w.start_reconcile(t0);
        w.on_heard(t0 + Duration::from_millis(500));
        assert_eq!(w.tick(t0 + RETRY), Step::RequestResync);
        assert_eq!(w.tick(t0 + 2 * RETRY), Step::RequestResync);
        // (and not before SETTLE after the peer was first heard)
        assert_ne!(w.tick(t0 + 2 * RETRY + Duration::from_secs(1)), Step::Sweep);
        assert_eq!(
            w.tick(t0 + Duration::from_millis(500) + SETTLE),
            Step::Sweep
        );
        w.settle_at = t0;
        w.start_reconcile(t0);
        for k in 1..10 {
            assert_ne!(w.tick(t0 + k * RETRY), Step::Sweep, "silent peer");
        }
        w.reconcile = None;
        // Snapshots: every 2 ticks, only when the cache changed since the
        // file was written (or loaded), one at a time, in a thread.
        let d = dir("due");
        w.cfg.path = d.join("s.snap");
        let mut c = Cache::new(8, 10);
        w.mark_current(&c);
        assert!(!w.due(&c, false) && !w.due(&c, false), "nothing changed");
        c.replace(&flow(1), 1, 0);
        assert!(w.due(&c, false));
        w.start_write(&c, Stamp::default());
        assert!(!w.due(&c, false), "one at a time");
        let t0 = Instant::now();
        let r = loop {
            if let Some(r) = w.finished() {
                break r;
            }
            assert!(t0.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(r.unwrap().0, 1);
        w.since = 5;
        assert!(!w.due(&c, false), "written");
        // settled: written once more, to speak for the share
        assert!(w.due(&c, true));
        assert_eq!(w.write_now(&c, Stamp::default()).unwrap().0, 1);
        // the file stands for the cache: nothing to write at shutdown
        assert!(w.unchanged(&c) && !w.covering_on_disk());
        let covering = Stamp {
            seq: 1,
            lane: 0,
            lanes: 1,
        };
        w.write_now(&c, covering).unwrap();
        assert!(w.covering_on_disk() && !w.due(&c, true));
        // the lanes followed the peer: the file speaks for the old share
        w.forget_covering();
        w.since = 5;
        assert!(w.due(&c, true));
        let _ = std::fs::remove_dir_all(&d);
    }
}
