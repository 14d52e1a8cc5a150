//! The authenticated sync link of the daemon (`Sync { Authentication {
//! KeyFile … ReplayWindow … } }`, an extension of this implementation):
//! loads the key, and holds the sealing side (our datagrams) and the
//! opening side (the peer's) of `ct_transport::auth` for one link — one
//! counter and one replay window shared by all of its redundant channels,
//! since they carry the same peer's datagrams.

use std::os::unix::fs::MetadataExt;

use ct_core::config::SyncAuth;
use ct_core::ctl::stats::AuthCounters;
use ct_transport::auth::{parse_key, Opener, Sealer};

/// Sealer and opener of a link.
pub struct LinkAuth {
    pub sealer: Sealer,
    pub opener: Opener,
}

impl LinkAuth {
    /// Reads the key file. The error names the file; the warning (if any)
    /// says that the file is readable by others.
    pub fn load(a: &SyncAuth) -> Result<(LinkAuth, Option<String>), String> {
        let path = a.key_file.display();
        let bytes = std::fs::read(&a.key_file)
            .map_err(|e| format!("Authentication KeyFile {path}: {e}"))?;
        let key = parse_key(&bytes).map_err(|e| format!("Authentication KeyFile {path}: {e}"))?;
        let warning = std::fs::metadata(&a.key_file)
            .ok()
            .filter(|m| m.mode() & 0o077 != 0)
            .map(|m| {
                format!(
                    "Authentication KeyFile {path} is readable by others (mode {:o}), \
                     make it 0600",
                    m.mode() & 0o777
                )
            });
        // The first counter: our start-up time in Unix nanoseconds, so
        // that counters keep growing across restarts.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok((
            LinkAuth {
                sealer: Sealer::new(&key, start),
                opener: Opener::new(&key, a.replay_window),
            },
            warning,
        ))
    }

    /// The counters for `-s network`.
    pub fn counters(&self) -> AuthCounters {
        let s = self.opener.stats;
        AuthCounters {
            ok: s.ok,
            missing: s.missing,
            bad_tag: s.bad_tag,
            replayed: s.replayed,
        }
    }
}
