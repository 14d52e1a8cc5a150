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
    /// Each lane writes its own file ([`warm::lane_path`]) and reads
    /// every lane's file there is, keeping its own share: a restart with
    /// another `Lanes` count finds a lane's flows in files other lanes
    /// wrote. A lane that took anything from another lane's file, or left
    /// anything out of its own, writes its file at the next interval; the
    /// files of lanes past the count go once every lane's file is current.
    pub(super) fn open_snapshot(&mut self, sync: &ct_core::config::SyncSection) {
        use super::warm::{self, Warm, CURRENT};
        let Some(mut cfg) = sync.snapshot.clone() else {
            return;
        };
        let base = cfg.path.clone();
        cfg.path = warm::lane_path(&base, self.lane.index);
        if sync.disable_external_cache {
            self.log
                .warning("Snapshot ignored: there is no external cache (DisableExternalCache)");
            return;
        }
        let mut w = Warm::new(cfg);
        let t0 = Instant::now();
        let lane = self.lane;
        let now = now_secs(self.epoch);
        let (mut loaded, mut foreign, mut own_found, mut refused) = (0u64, false, false, false);
        // the oldest first: where two files hold a flow (a file of a lane
        // past the count not yet removed), the newer state stays
        let mut files: Vec<(std::time::SystemTime, u32)> = (0..ct_core::netlink::lanes::MAX_LANES)
            .filter_map(|k| {
                let m = std::fs::metadata(warm::lane_path(&base, k)).ok()?;
                Some((m.modified().unwrap_or(std::time::UNIX_EPOCH), k))
            })
            .collect();
        files.sort();
        for (_, k) in files {
            let path = warm::lane_path(&base, k);
            let shown = path.display().to_string();
            let mut keep = |f: &ct_core::flow::Flow| lane.owns(f.orig.as_ref());
            match warm::load(&path, self.rep.external_mut(), now, &mut keep) {
                Ok(Some(l)) => {
                    own_found |= k == lane.index;
                    foreign |= l.skipped > 0 || (k != lane.index && l.entries > 0);
                    loaded += l.entries;
                    if k == lane.index || l.entries > 0 {
                        self.log.notice(&format!(
                            "warm restart: {} entries from {shown} (written {} s ago) in {:.3} s",
                            l.entries,
                            l.age,
                            t0.elapsed().as_secs_f64()
                        ));
                    }
                    if k >= lane.count && lane.first() {
                        w.stale_files.push(path);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    own_found |= k == lane.index;
                    refused = true;
                    self.log.warning(&format!(
                        "snapshot {shown} refused ({e}), kept as {shown}.refused"
                    ))
                }
            }
        }
        if loaded > 0 && sync.mode() != ct_core::config::SyncMode::Alarm {
            self.log
                .notice("warm restart: asking the peer for a resync to reconcile");
            w.start_reconcile(Instant::now());
            self.rep.request_resync();
        }
        if loaded == 0 && refused {
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
        // take in or give away another lane's flows.
        if !foreign {
            w.mark_current(self.rep.external());
            CURRENT.set(lane.index);
        }
        self.warm = Some(w);
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
        if w.due(self.rep.external()) {
            w.start_write(self.rep.external());
        }
        if let Some(r) = w.finished() {
            self.snapshot_written(r);
        }
        self.remove_stale_snapshots();
    }

    /// Lane 0: removes the files of lanes past the count once every
    /// lane's file is current (see [`super::warm::Current`]).
    fn remove_stale_snapshots(&mut self) {
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        if w.stale_files.is_empty() || !super::warm::CURRENT.all(self.lane.count) {
            return;
        }
        for p in std::mem::take(&mut w.stale_files) {
            match std::fs::remove_file(&p) {
                Ok(()) => self.log.notice(&format!(
                    "snapshot {} of a lane this daemon does not run removed (its flows are in the lanes' files)",
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
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        let r = w.write_now(self.rep.external());
        self.snapshot_written(r);
    }

    /// Logs the first failure of a series (and the recovery).
    fn snapshot_written(&mut self, r: std::io::Result<(u64, usize)>) {
        let Some(w) = self.warm.as_mut() else {
            return;
        };
        match r {
            Ok(_) => {
                super::warm::CURRENT.set(self.lane.index);
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
