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

/// Replays per second, with nothing accepted, that make [`LinkAuth::tick`]
/// warn.
const REPLAY_ALARM: u64 = 20;

/// A random sender id (from /dev/urandom; the start time and pid if it
/// cannot be read), never 0 (the id of senders that set none).
fn sender_id(start: u64) -> u32 {
    use std::io::Read;
    let mut b = [0u8; 4];
    let id = match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u32::from_ne_bytes(b),
        Err(_) => (start ^ (start >> 32)) as u32 ^ std::process::id().rotate_left(16),
    };
    id.max(1)
}

/// Sealer and opener of a link.
pub struct LinkAuth {
    pub sealer: Sealer,
    pub opener: Opener,
    /// (accepted, replayed) at the last tick, and whether the "peer
    /// behind the window" warning is out.
    last: (u64, u64),
    warned: bool,
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
        let id = sender_id(start);
        Ok((
            LinkAuth {
                sealer: Sealer::new(&key, start).sender(id),
                opener: Opener::new(&key, a.replay_window).own(id),
                last: (0, 0),
                warned: false,
            },
            warning,
        ))
    }

    /// The 1-second tick: a warning (once per series) when authentic
    /// datagrams keep being refused as replays while none is accepted —
    /// the peer's counter is behind our window, as after its clock went
    /// back before it restarted.
    pub fn tick(&mut self) -> Option<String> {
        let s = self.opener.stats;
        let (ok, replayed) = (s.ok - self.last.0, s.replayed - self.last.1);
        self.last = (s.ok, s.replayed);
        if ok > 0 {
            self.warned = false;
            return None;
        }
        if replayed >= REPLAY_ALARM && !std::mem::replace(&mut self.warned, true) {
            return Some(format!(
                "{replayed} authentic datagrams refused as replays in the last second and none \
                 accepted: the peer's counter is behind our window (did its clock go back \
                 before it restarted?); restarting this daemon resets the window"
            ));
        }
        None
    }

    /// The counters for `-s network`.
    pub fn counters(&self) -> AuthCounters {
        self.opener.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_behind_the_window_is_reported_once() {
        let p = std::env::temp_dir().join(format!("ctauth-unit-{}.key", std::process::id()));
        std::fs::write(&p, "00112233445566778899aabbccddeeff\n").unwrap();
        let cfg = SyncAuth {
            key_file: p.clone(),
            replay_window: 64,
        };
        let (mut a, warning) = LinkAuth::load(&cfg).unwrap();
        assert!(warning.is_some(), "the test file is not 0600");
        let key = parse_key(b"00112233445566778899aabbccddeeff").unwrap();
        // The peer ran ahead, then restarted with its clock a second back.
        let mut ahead = Sealer::new(&key, 5_000_000_000).sender(7);
        assert!(a.opener.open(ahead.seal(b"x")).is_ok());
        assert_eq!(a.tick(), None);
        let mut behind = Sealer::new(&key, 4_000_000_000).sender(8);
        for _ in 0..REPLAY_ALARM {
            assert!(a.opener.open(behind.seal(b"y")).is_err());
        }
        let w = a.tick().expect("warned");
        assert!(w.contains("behind our window"), "{w}");
        for _ in 0..REPLAY_ALARM {
            let _ = a.opener.open(behind.seal(b"y"));
        }
        assert_eq!(a.tick(), None, "once per series");
        // Its own datagrams are never accepted.
        let mine = a.sealer.seal(b"z").to_vec();
        assert!(a.opener.open(&mine).is_err());
        let _ = std::fs::remove_file(p);
    }
}
