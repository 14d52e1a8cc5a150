//! The UNIX control socket: a thread accepts clients (the socket file is
//! created 0600 and only root peers are served), reads the one-`int`
//! request, hands it to the daemon's main loop over a channel (waking the
//! reactor) and writes the reply text back, then closes. Control is the
//! cold path: one connection at a time is plenty.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use ct_core::ctl::Request;
use ct_ring::reactor::Waker;

/// What the control thread tells the main loop.
pub enum ControlMsg {
    /// A request and where to send the reply (the connection closes when
    /// the sender is dropped).
    Request(Request, mpsc::Sender<Vec<u8>>),
    /// A request code the daemon does not know.
    Unknown(i32),
    /// A client that did not send a full request.
    ReadFailed,
}

/// The bound control socket.
pub struct ControlServer {
    path: PathBuf,
}

fn peer_is_root(s: &UnixStream) -> bool {
    let mut cred: libc::ucred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are live and sized for SO_PEERCRED.
    let r = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    r == 0 && (cred.uid == 0 || cred.uid == unsafe { libc::geteuid() })
}

impl ControlServer {
    /// Binds `path` (removing a stale socket file first) and starts the
    /// accept thread.
    pub fn start(
        path: &Path,
        tx: mpsc::Sender<ControlMsg>,
        waker: Waker,
    ) -> std::io::Result<ControlServer> {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        std::thread::Builder::new()
            .name("ctl".into())
            .spawn(move || {
                for conn in l.incoming() {
                    let Ok(mut s) = conn else { continue };
                    if !peer_is_root(&s) {
                        continue;
                    }
                    let mut b = [0u8; 4];
                    let msg = match s.read_exact(&mut b) {
                        Err(_) => ControlMsg::ReadFailed,
                        Ok(()) => match Request::from_bytes(&b) {
                            Ok(r) => {
                                let (rtx, rrx) = mpsc::channel();
                                if tx.send(ControlMsg::Request(r, rtx)).is_err() {
                                    return;
                                }
                                let _ = waker.wake();
                                for chunk in rrx {
                                    if s.write_all(&chunk).is_err() {
                                        break;
                                    }
                                }
                                continue;
                            }
                            Err(code) => ControlMsg::Unknown(code),
                        },
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                    let _ = waker.wake();
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

/// Client side: sends `req` to the daemon at `path` and copies the reply
/// to stdout. Returns false when the daemon cannot be reached.
pub fn client(path: &Path, req: Request) -> bool {
    let Ok(mut s) = UnixStream::connect(path) else {
        return false;
    };
    if s.write_all(&req.to_bytes()).is_err() {
        return false;
    }
    let mut out = std::io::stdout();
    let mut buf = [0u8; 1023];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
            }
        }
    }
    let _ = out.flush();
    true
}
