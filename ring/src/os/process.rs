//! The daemon's process set-up and identity: the file mode mask, the
//! standard descriptors, the open-files limit, the scheduling policy of
//! a thread, the effective uid and the uid at the other end of a UNIX
//! stream.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// Sets the process's file mode creation mask.
pub fn umask(mask: u32) {
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Makes sure fds 0, 1 and 2 are open (on /dev/null when whoever started
/// us closed them), so that no file or socket opened later lands on them.
/// Meant for the start of `main`, before any thread (another thread's
/// open(2) could take the free number first: a leaked fd, no more).
pub fn std_fds_open() {
    for fd in 0..3 {
        // SAFETY: fcntl(F_GETFD) only queries; open(2) returns the lowest
        // free fd, which is this one while it is closed.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) < 0 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

/// Raises the soft limit of open files to the hard one.
pub fn raise_nofile() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: l is a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// The highest static priority of scheduling `policy` (`libc::SCHED_*`).
pub fn priority_max(policy: i32) -> i32 {
    // SAFETY: no preconditions; an unknown policy gives -1.
    unsafe { libc::sched_get_priority_max(policy) }
}

/// Sets the calling thread's scheduling `policy` and `priority`
/// (threads it starts afterwards inherit them).
pub fn set_scheduler(policy: i32, priority: i32) -> io::Result<()> {
    let p = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the calling thread; p is a live sched_param.
    if unsafe { libc::sched_setscheduler(0, policy, &p) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Drops the calling thread to the normal policy (`SCHED_OTHER`): a
/// thread started by a real-time one inherits its policy.
pub fn normal_priority() {
    let _ = set_scheduler(libc::SCHED_OTHER, 0);
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of a UNIX stream
/// (`SO_PEERCRED`).
pub fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are live and sized for SO_PEERCRED.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

/// The number of threads of this process (`/proc/self/task`).
pub fn threads() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_limits() {
        assert!(priority_max(libc::SCHED_RR) >= 1);
        assert_eq!(priority_max(-5), -1);
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a), Some(euid()));
        drop(b);
        raise_nofile();
        std_fds_open();
        assert!(threads().unwrap() >= 1);
        // the normal policy is always allowed
        normal_priority();
        assert!(set_scheduler(-5, 0).is_err());
    }
}
