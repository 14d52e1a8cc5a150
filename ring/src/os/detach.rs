//! `-d`: the daemon detaches from its caller only once it is ready.
//!
//! conntrackd 1.4.7 initialises everything (sockets, control socket,
//! kernel subscription) and then forks, so `conntrackd -d` returns when
//! the daemon can already be asked. Our daemon runs threads (control
//! server, snapshot writer), which must not exist across a `fork`, so it
//! forks first and the parent waits on a pipe: the child writes one byte
//! when start-up has succeeded (the control socket is listening and the
//! event loop is about to run), and the parent then exits 0. If the child
//! fails, it says why on the stderr it still shares with the caller, exits
//! 1, and the parent (seeing the pipe close without that byte) exits with
//! the child's status. Only then does the child drop the console.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Which side of the fork this is.
pub enum Forked {
    /// The caller's process: exit with this status.
    Parent(i32),
    /// The daemon: call [`Ready::done`] once start-up has succeeded.
    Child(Ready),
}

/// The child's end of the readiness pipe.
pub struct Ready {
    fd: OwnedFd,
}

impl Ready {
    /// Tells the waiting parent that start-up succeeded, then points
    /// stdin, stdout and stderr at /dev/null (the caller's terminal is
    /// no longer ours).
    pub fn done(self) {
        // SAFETY: plain syscalls on fds this process owns; the buffer is
        // one live byte.
        unsafe {
            let b = [1u8];
            while libc::write(self.fd.as_raw_fd(), b.as_ptr().cast(), 1) < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                libc::dup2(null, 2);
                libc::close(null);
            }
        }
    }
}

/// Forks. The child starts a new session (no controlling terminal); the
/// parent blocks until the child is ready or gone.
///
/// Refused while the process has other threads: the child would hold a
/// copy of the process with only this thread, and the locks the others
/// held, forever.
pub fn fork() -> io::Result<Forked> {
    match super::process::threads() {
        Ok(1) => {}
        Ok(_) => return Err(io::Error::other("cannot detach: threads are running")),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot tell whether other threads run (/proc/self/task: {e})"),
            ))
        }
    }
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two fds; each is owned once.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists (checked above, and only this
    // thread could start one), so the child's copy of the process is
    // consistent.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(r);
            // SAFETY: no preconditions.
            unsafe { libc::setsid() };
            Ok(Forked::Child(Ready { fd: w }))
        }
        pid => {
            drop(w);
            Ok(Forked::Parent(wait_ready(r, pid)))
        }
    }
}

/// The parent: 0 once the child wrote its byte; otherwise the child's
/// exit status (1 when it died of a signal).
fn wait_ready(r: OwnedFd, pid: libc::pid_t) -> i32 {
    let mut b = [0u8];
    loop {
        // SAFETY: reads one byte into a live buffer.
        let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        if n == 1 {
            return 0;
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break;
    }
    let mut status = 0;
    // SAFETY: waits for our own child; status is a live int.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 1;
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0 {
        libc::WEXITSTATUS(status)
    } else {
        1
    }
}
