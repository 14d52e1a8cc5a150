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
    pub(super) fn open_snapshot(&mut self, sync: &ct_core::config::SyncSection) {
        use super::warm::{self, Warm};
        let Some(mut cfg) = sync.snapshot.clone() else {
            return;
        };
        if self.lane.index > 0 {
            // each lane keeps its own share
            let mut p = cfg.path.into_os_string();
            p.push(format!(".lane{}", self.lane.index));
            cfg.path = p.into();
        }
        if sync.disable_external_cache {
            self.log
                .warning("Snapshot ignored: there is no external cache (DisableExternalCache)");
            return;
        }
        let path = cfg.path.display().to_string();
        let mut w = Warm::new(cfg);
        let t0 = Instant::now();
        match warm::load(&w.cfg.path, self.rep.external_mut(), now_secs(self.epoch)) {
            Ok(Some(l)) => {
                self.log.notice(&format!(
                    "warm restart: {} entries from {path} (written {} s ago) in {:.3} s",
                    l.entries,
                    l.age,
                    t0.elapsed().as_secs_f64()
                ));
                if l.entries > 0 && sync.mode() != ct_core::config::SyncMode::Alarm {
                    self.log
                        .notice("warm restart: asking the peer for a resync to reconcile");
                    w.start_reconcile(Instant::now());
                    self.rep.request_resync();
                }
            }
            Ok(None) => self
                .log
                .notice(&format!("no snapshot at {path}: starting cold")),
            Err(e) => self.log.warning(&format!(
                "snapshot {path} refused ({e}), kept as {path}.refused: starting cold"
            )),
        }
        // Nothing to write until the cache changes (a refused snapshot is
        // not replaced by an empty cache at once).
        w.mark_current(self.rep.external());
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
