//! The engine's side of a warm restart (`Snapshot`, see [`super::warm`]):
//! the external cache loaded at start-up, reconciled with the peer, and
//! written periodically and at shutdown.

use std::time::Instant;

use super::engine::{now_secs, Engine};

impl Engine {
    /// `Snapshot`: loads the external cache from the snapshot (warm
    /// restart) and, when it held entries, asks the peer for a resync to
    /// reconcile (not in ALARM mode, whose external entries expire by
    /// themselves).
    ///
    /// Each lane writes its own file ([`warm::lane_path`]: `Path` with
    /// one lane, `Path.lane<i>of<N>` with N) and reads every snapshot file
    /// there is, newest first, keeping its own share: of each flow, the
    /// newest file whose writer's share holds it decides ([`warm::take`]),
    /// so a restart with another `Lanes` count, even after a crash between
    /// the lanes' writes, neither loses a flow nor brings back one that
    /// ended. A lane that took flows from another file, or not all of its
    /// own, writes its file at the next interval; files of another count
    /// go once every lane's file is current (and were never written over).
    pub(super) fn open_snapshot(&mut self, sync: &ct_core::config::SyncSection) {
        use super::warm::{self, Warm, SHARED};
        let Some(mut cfg) = sync.snapshot.clone() else {
            return;
        };
        let base = cfg.path.clone();
        let lane = self.lane;
        cfg.path = warm::lane_path(&base, lane.index, lane.count);
        if sync.disable_external_cache {
            self.log
                .warning("Snapshot ignored: there is no external cache (DisableExternalCache)");
            return;
        }
        let mut w = Warm::new(cfg);
        let t0 = Instant::now();
        let now = now_secs(self.epoch);
        let (mut files, own_refused) = self.open_snapshot_files(&base, &mut w);
        files.sort_by_key(|(_, o)| std::cmp::Reverse(o.order_key()));
        let mut newer = Vec::with_capacity(files.len());
        let (mut loaded, mut foreign, mut refused, mut own_found) = (0u64, false, 0u64, false);
        for (path, o) in &files {
            let mine = *path == w.cfg.path;
            own_found |= mine;
            let mut keep = |f: &ct_core::flow::Flow| lane.owns(f.orig.as_ref());
            let t = warm::take(
                &o.snapshot(),
                self.rep.external_mut(),
                now,
                &mut keep,
                &newer,
            );
            newer.push(o.stamp);
            loaded += t.entries;
            refused += t.refused;
            // the file on disk is not what the cache holds
            foreign |= if mine {
                t.skipped + t.older + t.refused > 0
            } else {
                t.entries > 0
            };
            if mine || t.entries > 0 {
                self.log.notice(&format!(
                    "warm restart: {} entries from {} (written {} s ago) in {:.3} s",
                    t.entries,
                    path.display(),
                    o.age,
                    t0.elapsed().as_secs_f64()
                ));
            }
        }
        drop(files);
        w.settle_at = Instant::now() + warm::SETTLE;
        if refused > 0 {
            // the files stay for a next start with more room
            w.keep_files = true;
            self.log.warning(&format!(
                "warm restart: {refused} entries did not fit in this lane's share of HashLimit; \
                 the snapshot files are kept"
            ));
        }
        if loaded > 0 && sync.mode() != ct_core::config::SyncMode::Alarm {
            self.log
                .notice("warm restart: asking the peer for a resync to reconcile");
            w.start_reconcile(Instant::now());
            self.rep.request_resync();
        }
        if loaded == 0 && own_refused {
            self.log
                .notice("warm restart: nothing loaded, starting cold");
        } else if loaded == 0 && !own_found {
            self.log.notice(&format!(
                "no snapshot at {}: starting cold",
                w.cfg.path.display()
            ));
        }
        // Nothing to write until the cache changes (a refused snapshot is
        // not replaced by an empty cache at once), unless the file must
        // take in or give away other flows.
        if !foreign && !w.keep_files {
            w.mark_current(self.rep.external());
            SHARED.set_current(lane.index);
        }
        self.warm = Some(w);
    }

    /// Every snapshot file next to `base`, opened and checked, and
    /// whether this lane's own could not be read. Lane 0 also removes the
    /// leftovers of unfinished writes and notes the files of another lane
    /// count (`w.stale_files`); a file that cannot be read keeps them all.
    fn open_snapshot_files(
        &mut self,
        base: &std::path::Path,
        w: &mut super::warm::Warm,
    ) -> (Vec<(std::path::PathBuf, super::warm::Opened)>, bool) {
        use super::warm::{self, OpenError, Opened, SHARED};
        let lane = self.lane;
        let current: Vec<std::path::PathBuf> = (0..lane.count)
            .map(|i| warm::lane_path(base, i, lane.count))
            .collect();
        if lane.first() {
            for t in warm::leftover_temporaries(base) {
                if std::fs::remove_file(&t).is_ok() {
                    self.log.notice(&format!(
                        "removed {}, left by a snapshot write that did not finish",
                        t.display()
                    ));
                }
            }
        }
        let mut files: Vec<(std::path::PathBuf, Opened)> = Vec::new();
        let mut own_refused = false;
        let names = warm::candidates(base).unwrap_or_else(|e| {
            self.log.warning(&format!(
                "can't list the directory of snapshot {}: {e}; trying the usual names",
                base.display()
            ));
            // files of other names may hold flows: keep everything
            w.keep_files = true;
            warm::probable(base, lane.count)
        });
        for path in names {
            let mine = path == w.cfg.path;
            // lane 0 answers for the files of another lane count
            let stale = !current.contains(&path);
            let answers = mine || (stale && lane.first());
            if stale && lane.first() {
                w.stale_files.push(path.clone());
            }
            let shown = path.display().to_string();
            match Opened::open(&path) {
                Ok(Some(o)) => {
                    SHARED.saw_seq(o.stamp.seq);
                    files.push((path, o));
                }
                Ok(None) => {}
                Err(OpenError::Damaged(e)) if answers => {
                    own_refused |= mine;
                    let kept = if warm::set_aside(&path) {
                        format!(", kept as {shown}.refused")
                    } else {
                        String::new()
                    };
                    self.log
                        .warning(&format!("snapshot {shown} refused ({e}){kept}"));
                }
                Err(OpenError::Io(e)) => {
                    // what it holds is unknown: every file stays, and this
                    // lane's speak only for what they hold
                    own_refused |= mine;
                    w.keep_files = true;
                    w.stale_files.retain(|p| *p != path);
                    self.log
                        .warning(&format!("can't read snapshot {shown}: {e}"));
                }
                // another lane's damaged file: that lane sets it aside
                Err(OpenError::Damaged(_)) => {}
            }
        }
        (files, own_refused)
    }

    /// The stamp of the snapshot written now: the next `seq`, and the
    /// share of the flows this lane's file speaks for: the lane's share
    /// once settled ([`super::warm::Warm::settled_now`]), else only the
    /// flows it holds.
    fn snapshot_stamp(&self) -> ct_transport::snapshot::Stamp {
        let settled = self
            .warm
            .as_ref()
            .is_some_and(|w| w.settled_now(Instant::now()));
        ct_transport::snapshot::Stamp {
            seq: super::warm::SHARED.next_seq(),
            lane: self.lane.index,
            lanes: if settled { self.lane.active } else { 0 },
        }
    }

    /// A lane that does not sync (its peer has fewer lanes) holds nothing
    /// and writes nothing: its last file stays, in case.
    fn writes_snapshots(&self) -> bool {
        self.lane.index < self.lane.active
    }

    /// The 1-second tick of the warm restart: reconciliation steps and
    /// the periodic snapshot.
    pub(super) fn warm_tick(&mut self) {
        use super::warm::Step;
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        match w.tick(Instant::now()) {
            Step::Nothing => {}
            Step::RequestResync => {
                self.rep.request_resync();
                self.log
                    .notice("warm restart: no answer from the peer yet, asking again");
            }
            Step::Sweep => {
                let n = self.rep.external_mut().remove_stale(0);
                self.log.notice(&format!(
                    "warm restart: reconciled with the peer: {n} stale entries removed, {} kept",
                    self.rep.external().len()
                ));
            }
        }
        let settled = w.settled_now(Instant::now());
        if w.due(self.rep.external(), settled) && self.writes_snapshots() {
            let stamp = self.snapshot_stamp();
            if let Some(w) = self.warm.as_mut() {
                w.start_write(self.rep.external(), stamp);
            }
        }
        if let Some(r) = self.warm.as_mut().and_then(|w| w.finished()) {
            self.snapshot_written(r);
        }
        self.remove_stale_snapshots();
    }

    /// Lane 0: removes the files of another lane count once every lane's
    /// file is current (see [`super::warm::Shared`]); also called at
    /// shutdown, after the lanes' last writes.
    pub(super) fn remove_stale_snapshots(&mut self) {
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        if w.stale_files.is_empty() || !super::warm::SHARED.all_current(self.lane.count) {
            return;
        }
        for p in std::mem::take(&mut w.stale_files) {
            match std::fs::remove_file(&p) {
                Ok(()) => self.log.notice(&format!(
                    "snapshot {} of another lane count removed (the lanes' own files speak for its flows)",
                    p.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => self
                    .log
                    .warning(&format!("can't remove snapshot {}: {e}", p.display())),
            }
        }
    }

    /// At shutdown: the snapshot, written in place.
    pub(super) fn write_snapshot(&mut self) {
        if self.warm.is_none() || !self.writes_snapshots() {
            return;
        }
        // the file already stands for the cache: written over, it could
        // only say less (an unsettled lane's speaks for what it holds)
        if let Some(w) = self.warm.as_mut() {
            if w.unchanged(self.rep.external()) && w.cfg.path.exists() {
                if w.covering_on_disk() {
                    super::warm::SHARED.set_current(self.lane.index);
                }
                return;
            }
        }
        let stamp = self.snapshot_stamp();
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        let r = w.write_now(self.rep.external(), stamp);
        self.snapshot_written(r);
    }

    /// Logs the first failure of a series (and the recovery).
    fn snapshot_written(&mut self, r: std::io::Result<(u64, usize)>) {
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        match r {
            Ok(_) => {
                // (a file that speaks only for what it holds leaves the
                // other files needed)
                if w.writing_covers {
                    super::warm::SHARED.set_current(self.lane.index);
                }
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
}
