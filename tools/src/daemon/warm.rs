//! Warm restart (`Sync { Snapshot { Path … Interval … } }`, an extension):
//! the external cache is written to a snapshot file every `Interval`
//! seconds when it changed, and at shutdown; at start-up the snapshot is
//! read back so that the backup holds its peer's states at once, then it
//! reconciles with the peer.
//!
//! * Writing is crash-consistent: a temporary file next to the snapshot
//!   is sized, mapped (memmap2), filled, flushed, cut to length, synced,
//!   and renamed over the snapshot (then the directory is synced). A crash
//!   at any point leaves the previous snapshot whole; a damaged file is
//!   refused by its SHA-256 (`ct_transport::snapshot`) and the daemon
//!   starts cold.
//! * Reconciliation: loaded entries carry the generation
//!   [`STALE_GEN`]; every message from the peer puts its entry back in
//!   generation 0. The daemon asks the peer for a resync (again every
//!   [`RETRY`] until data comes); once the peer's data has started after
//!   the request and then stopped for [`QUIET`], the entries still stale
//!   are flows the peer no longer has, and are removed. While the peer
//!   does not answer (it may be the node that failed), nothing is removed.
//! * Write errors (disk full, directory not writable) are logged and the
//!   daemon goes on; it tries again at the next interval. The file's
//!   blocks are reserved (`posix_fallocate`) before it is mapped, so a
//!   full disk is an ENOSPC here rather than a SIGBUS in the middle of the
//!   copy (a file system without fallocate is refused the same way).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ct_core::config::SyncSnapshot;
use ct_core::table::{Cache, ObjState};
use ct_transport::snapshot::{Snapshot, SnapshotWriter, HEADER_LEN, MAX_ENTRY_LEN};

/// Generation of entries loaded from a snapshot and not yet confirmed by
/// the peer.
pub const STALE_GEN: u8 = 0xee;
/// Ask the peer again when its resync has not started after this long.
pub const RETRY: Duration = Duration::from_secs(3);
/// The peer's resync is taken as complete after this long without data.
pub const QUIET: Duration = Duration::from_secs(2);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes the live entries of `cache` to `path` (see the module doc);
/// returns (entries, bytes).
pub fn write(path: &Path, cache: &Cache) -> io::Result<(u64, usize)> {
    let tmp = tmp_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let bound = HEADER_LEN + cache.len().max(1) * MAX_ENTRY_LEN;
    // Reserve the blocks before mapping: a store into a mapped page the
    // file system cannot back (disk full) is a SIGBUS, not an error.
    // SAFETY: fallocate on a file we own, with a length that fits off_t.
    let rc =
        unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, bound as i64) };
    if rc != 0 {
        drop(file);
        let _ = std::fs::remove_file(&tmp);
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: the file was just created by us and is not shared; its
    // blocks are allocated; the mapping is dropped before the file is
    // truncated and renamed.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file)? };
    let mut w = SnapshotWriter::new(&mut map);
    let mut full = false;
    cache.for_each(|f, state, _| {
        if state != ObjState::Dead && !full {
            full = !w.push(&f);
        }
    });
    let entries = w.entries();
    let len = w.finish(unix_now());
    let res = map.flush();
    drop(map);
    res?;
    if full {
        let _ = std::fs::remove_file(&tmp);
        return Err(io::Error::other("an entry did not fit its room"));
    }
    file.set_len(len as u64)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok((entries, len))
}

/// What a load found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub entries: u64,
    /// Seconds since it was written.
    pub age: u64,
}

/// Reads `path` into `cache` (entries in [`STALE_GEN`]); `Ok(None)` when
/// there is no snapshot. On a damaged file the cache is left empty.
pub fn load(path: &Path, cache: &mut Cache, now: u32) -> Result<Option<Loaded>, String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    // SAFETY: a read-only mapping of a file only this daemon writes, and
    // always through a rename (the mapped inode is never modified).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let snap = Snapshot::new_checked(&map).map_err(|e| e.to_string())?;
    let r = snap.for_each(|f| {
        cache.replace(&f, now, STALE_GEN);
    });
    match r {
        Ok(entries) => Ok(Some(Loaded {
            entries,
            age: unix_now().saturating_sub(snap.written_at()),
        })),
        Err(e) => {
            cache.clear();
            Err(e.to_string())
        }
    }
}

/// The warm-restart state of a running daemon.
pub struct Warm {
    pub cfg: SyncSnapshot,
    /// The external cache's change count at the last write.
    written: Option<u64>,
    /// Seconds since the last write.
    since: u32,
    pub reconcile: Option<Reconcile>,
    /// The last write failed (logged once per series).
    pub failing: bool,
}

/// Waiting for the peer's resync after a load.
#[derive(Debug, Clone, Copy)]
pub struct Reconcile {
    pub requested: Instant,
    pub last_data: Option<Instant>,
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
            reconcile: None,
            failing: false,
        }
    }

    /// A snapshot was loaded: reconcile with the peer from now on.
    pub fn start_reconcile(&mut self, now: Instant) {
        self.reconcile = Some(Reconcile {
            requested: now,
            last_data: None,
        });
    }

    /// Data from the peer was applied.
    pub fn on_data(&mut self, now: Instant) {
        if let Some(r) = &mut self.reconcile {
            r.last_data = Some(now);
        }
    }

    /// The 1-second tick: reconciliation steps.
    pub fn tick(&mut self, now: Instant) -> Step {
        let Some(r) = &mut self.reconcile else {
            return Step::Nothing;
        };
        match r.last_data {
            None if now.duration_since(r.requested) >= RETRY => {
                r.requested = now;
                Step::RequestResync
            }
            Some(t) if now.duration_since(t) >= QUIET => {
                self.reconcile = None;
                Step::Sweep
            }
            _ => Step::Nothing,
        }
    }

    /// True when a snapshot is due (every `Interval` seconds, and only if
    /// the cache changed since the last one); counts the tick.
    pub fn due(&mut self, cache: &Cache) -> bool {
        self.since += 1;
        self.since >= self.cfg.interval && self.written != Some(changes(cache))
    }

    /// Writes the snapshot now; remembers what it covered.
    pub fn write(&mut self, cache: &Cache) -> io::Result<(u64, usize)> {
        self.since = 0;
        let c = changes(cache);
        let r = write(&self.cfg.path, cache)?;
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
        assert_eq!(write(&p, &c).unwrap().0, 50);
        assert!(!tmp_path(&p).exists());
        let mut back = Cache::new(64, 1000);
        let l = load(&p, &mut back, 5).unwrap().unwrap();
        assert_eq!(l.entries, 50);
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
        // An unwritable place: an error, no panic.
        assert!(write(Path::new("/proc/ctwarm/ext.snap"), &c).is_err());
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
        w.on_data(t0 + RETRY + Duration::from_millis(100));
        assert_eq!(w.tick(t0 + RETRY + Duration::from_secs(1)), Step::Nothing);
        assert_eq!(
            w.tick(t0 + RETRY + QUIET + Duration::from_secs(1)),
            Step::Sweep
        );
        assert!(w.reconcile.is_none());
        // Snapshots: every 2 ticks, only when the cache changed.
        let mut c = Cache::new(8, 10);
        assert!(!w.due(&c));
        assert!(w.due(&c));
        w.written = Some(changes(&c));
        w.since = 0;
        assert!(!w.due(&c) && !w.due(&c));
        c.replace(&flow(1), 1, 0);
        assert!(w.due(&c));
    }
}
