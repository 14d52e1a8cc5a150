//! The UNIX control socket. The accept thread checks each client's
//! credentials (root, or the daemon's own user; the socket file is also
//! 0600) and gives it a thread of its own, so that any number of clients
//! are served at once and a slow or idle one delays nobody else:
//!
//! * the one-`int` request must arrive within [`REQUEST_TIMEOUT`], else
//!   the connection is closed and counted (`local read failed`);
//! * the request goes to the daemon's main loop over a channel (waking
//!   the reactor); the loop answers with [`Reply`]s and never waits for
//!   the client: text is handed over whole, and the cache dumps (`-i`,
//!   `-e`, their XML forms) are a snapshot that the client's own thread
//!   formats and streams;
//! * a client that stops reading for [`WRITE_TIMEOUT`] is dropped, and
//!   one answer may take at most [`REPLY_DEADLINE`] in all;
//! * at most [`MAX_CLIENTS`] are served at once; further connections wait
//!   in the listen backlog until one ends (never closed unanswered, which
//!   a client would take for a request done), and at most [`MAX_DUMPS`]
//!   cache snapshots exist at once (further dump requests wait for one);
//! * these threads run at the normal scheduling priority, not the
//!   real-time one of the main loop.
//!
//! The connection closes when the main loop drops the reply sender: at
//! once for most requests, after the commit for `-c`, after the lock and
//! socket are removed for `-k`.

use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ct_core::ctl::Request;
use ct_ring::reactor::Waker;

/// How long a client has to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may leave a reply unread before it is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Clients served at once.
pub const MAX_CLIENTS: usize = 256;
/// Cache dumps (each a snapshot of a cache) under way at once.
pub const MAX_DUMPS: usize = 8;
/// The longest one answer may take to write.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(600);

/// Drops the calling thread to the normal scheduling policy: threads
/// inherit the main loop's real-time one (`Scheduler`), which control and
/// metrics clients must not get.
pub use ct_ring::os::process::normal_priority;

/// A counting semaphore (cold path: a mutex and a condvar).
pub struct Slots {
    used: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            used: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
            max,
        })
    }

    /// Waits for a free slot; it is given back when the guard drops.
    pub fn take(self: &Arc<Slots>) -> Slot {
        self.take_while(|| true)
            .expect("waits for as long as it takes")
    }

    /// Waits for a free slot while `wanted()` holds (asked every 100 ms);
    /// `None` once it no longer does.
    pub fn take_while(self: &Arc<Slots>, mut wanted: impl FnMut() -> bool) -> Option<Slot> {
        let mut n = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.max {
            if !wanted() {
                return None;
            }
            n = self
                .freed
                .wait_timeout(n, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *n += 1;
        Some(Slot(self.clone()))
    }
}

/// A taken slot of [`Slots`].
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = self.0.used.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.0.freed.notify_one();
    }
}

/// A dump written by the client's thread.
pub type StreamFn = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

/// Part of an answer.
pub enum Reply {
    /// Bytes to write as they are.
    Text(Vec<u8>),
    /// Output produced by the client's own thread (from a snapshot the
    /// main loop took), so that formatting and writing a large dump
    /// never holds the loop.
    Stream(StreamFn),
    /// A lane's counters: the client's thread adds every lane's together
    /// and renders the view asked for.
    Stats(Box<super::stats::Stats>),
}

/// Where a lane takes its control messages.
#[derive(Clone)]
pub struct LaneTx {
    pub tx: mpsc::Sender<ControlMsg>,
    pub waker: Waker,
}

impl LaneTx {
    /// Sends a message and wakes the lane; false when it is gone.
    pub fn send(&self, m: ControlMsg) -> bool {
        let ok = self.tx.send(m).is_ok();
        if ok {
            let _ = self.waker.wake();
        }
        ok
    }
}

/// Where the main loop sends the answer; dropping it closes the
/// connection.
pub type ReplyTx = mpsc::Sender<Reply>;

/// What the control threads tell the main loop.
pub enum ControlMsg {
    /// A request and where to send the reply.
    Request(Request, ReplyTx),
    /// A request code the daemon does not know.
    Unknown(i32),
    /// A client that did not send a full request in time.
    ReadFailed,
    /// The metrics endpoint asks for the counters.
    Metrics(mpsc::Sender<super::metrics::Snapshot>),
}

/// The bound control socket.
pub struct ControlServer {
    path: PathBuf,
}

use ct_ring::os::process::{euid, peer_uid};

/// Whether `uid` may use a daemon running as `daemon_uid`: root, or the
/// daemon's own user.
fn permitted(uid: u32, daemon_uid: u32) -> bool {
    uid == 0 || uid == daemon_uid
}

impl ControlServer {
    /// Binds `path` (removing a stale socket file first), makes it 0600
    /// and starts the accept thread.
    pub fn start(path: &Path, lanes: Vec<LaneTx>) -> std::io::Result<ControlServer> {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let clients = Slots::new(MAX_CLIENTS);
        let dumps = Slots::new(MAX_DUMPS);
        std::thread::Builder::new()
            .name("ctl".into())
            .spawn(move || {
                normal_priority();
                loop {
                    // at the cap, wait (the kernel keeps the connections
                    // in the backlog) rather than close one unanswered
                    let slot = clients.take();
                    let s = match l.accept() {
                        Ok((s, _)) => s,
                        Err(_) => {
                            // (EMFILE and the like: do not spin)
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    };
                    if !peer_uid(&s).is_some_and(|u| permitted(u, euid())) {
                        // the client sees the credentials too and says so
                        continue;
                    }
                    let (lanes, dumps) = (lanes.clone(), dumps.clone());
                    let spawned = std::thread::Builder::new()
                        .name("ctl-client".into())
                        .stack_size(256 * 1024)
                        .spawn(move || {
                            let _slot = slot;
                            normal_priority();
                            serve_client(s, &lanes, &dumps);
                        });
                    if spawned.is_err() {
                        // (the slot went back with the closure)
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
        })
    }

    /// Removes the socket file.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a request is answered with a snapshot of a cache.
fn is_dump(r: Request) -> bool {
    matches!(
        r,
        Request::CtDumpInternal
            | Request::CtDumpExternal
            | Request::CtDumpIntXml
            | Request::CtDumpExtXml
    )
}

/// A writer that fails once `deadline` has passed.
struct Deadlined<W> {
    w: W,
    deadline: std::time::Instant,
}

impl<W: Write> Write for Deadlined<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if std::time::Instant::now() >= self.deadline {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.w.write(b)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// One client: its request (to every lane), then the reply: text and
/// dumps as the lanes send them, counters added up and rendered once all
/// lanes have answered.
fn serve_client(mut s: UnixStream, lanes: &[LaneTx], dumps: &Arc<Slots>) {
    let _ = s.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut b = [0u8; 4];
    let msg = match s.read_exact(&mut b) {
        Err(_) => ControlMsg::ReadFailed,
        Ok(()) => match Request::from_bytes(&b) {
            Err(code) => ControlMsg::Unknown(code),
            Ok(r) => {
                // at most MAX_DUMPS snapshots at once: wait for a slot
                // before the lanes take theirs, while the client is there
                // (one that went away gives its client slot back at once)
                let _dump = if is_dump(r) {
                    use std::os::fd::AsFd;
                    let there = || !ct_ring::sockopt::peer_gone(s.as_fd());
                    let Some(slot) = dumps.take_while(there) else {
                        return;
                    };
                    Some(slot)
                } else {
                    None
                };
                let (rtx, rrx) = mpsc::channel();
                for lane in lanes {
                    let _ = lane.send(ControlMsg::Request(r, rtx.clone()));
                }
                drop(rtx);
                let mut out = Deadlined {
                    w: &mut s,
                    deadline: std::time::Instant::now() + REPLY_DEADLINE,
                };
                let mut merged: Option<super::stats::Stats> = None;
                for reply in rrx {
                    let ok = match reply {
                        Reply::Text(t) => out.write_all(&t).is_ok(),
                        Reply::Stats(st) => {
                            match &mut merged {
                                None => merged = Some(*st),
                                Some(m) => m.merge(&st),
                            }
                            true
                        }
                        Reply::Stream(f) => {
                            let mut w = BufWriter::with_capacity(64 * 1024, &mut out);
                            let ok = f(&mut w).and_then(|_| w.flush()).is_ok();
                            if !ok {
                                // drop what is buffered rather than try
                                // once more to write it to a client that
                                // is not reading
                                let _ = w.into_parts();
                            }
                            ok
                        }
                    };
                    if !ok {
                        return;
                    }
                }
                if let Some(m) = merged {
                    let _ = out.write_all(&m.render(r));
                }
                return;
            }
        },
    };
    // (counted once, by the first lane)
    if let Some(first) = lanes.first() {
        first.send(msg);
    }
}

/// Why a client request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("can't connect: is conntrackd running? appropriate permissions?")]
    Connect,
    #[error("permission denied: the daemon (uid {daemon}) serves only root and its own user")]
    Refused { daemon: u32 },
}

/// Client side: sends `req` to the daemon at `path` and copies the reply
/// to stdout until the daemon closes the connection.
pub fn client(path: &Path, req: Request) -> Result<(), ClientError> {
    let mut s = UnixStream::connect(path).map_err(|_| ClientError::Connect)?;
    // The daemon closes a client it does not serve without a word; say
    // why here rather than print nothing and succeed.
    if let Some(daemon) = peer_uid(&s) {
        if !permitted(euid(), daemon) {
            return Err(ClientError::Refused { daemon });
        }
    }
    s.write_all(&req.to_bytes())
        .map_err(|_| ClientError::Connect)?;
    let mut out = std::io::stdout();
    let mut buf = [0u8; 1023];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
            }
        }
    }
    let _ = out.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_ask() {
        assert!(permitted(0, 0));
        assert!(permitted(0, 1000));
        assert!(permitted(1000, 1000));
        assert!(!permitted(1000, 0));
        assert!(!permitted(65534, 1000));
    }
}
