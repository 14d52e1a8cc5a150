//! Socket options a reactor user needs on a registered socket (through
//! [`Reactor::fd`](crate::Reactor::fd)): the receive buffer, which a
//! netlink listener grows after an overrun, the kernel's drop counter,
//! a BPF filter and netlink group membership; and whether a connected
//! stream's peer has gone.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::reactor::sys;

/// Requests a receive buffer of `bytes` (SO_RCVBUFFORCE, which needs
/// CAP_NET_ADMIN, falling back to SO_RCVBUF, capped by
/// `net.core.rmem_max`); returns what the kernel reports (twice the
/// granted request).
pub fn set_rcvbuf(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let raw = fd.as_raw_fd();
    let v = bytes.min(i32::MAX as usize) as i32;
    if sys::setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
        sys::setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, v)?;
    }
    rcvbuf(fd)
}

/// The receive buffer size the kernel reports.
pub fn rcvbuf(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(sys::getsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)? as usize)
}

/// The socket's drop counter (`SO_MEMINFO`): messages the kernel could
/// not queue for it (0 when unavailable).
pub fn drops(fd: BorrowedFd<'_>) -> u32 {
    sys::sock_drops(fd.as_raw_fd())
}

/// Joins (`true`) or leaves netlink multicast group `group`
/// (NETLINK_ADD_MEMBERSHIP / NETLINK_DROP_MEMBERSHIP). While no socket
/// of a network namespace is in a group, the kernel does not even build
/// that group's messages.
pub fn netlink_group(fd: BorrowedFd<'_>, group: u32, join: bool) -> io::Result<()> {
    const NETLINK_ADD_MEMBERSHIP: i32 = 1;
    const NETLINK_DROP_MEMBERSHIP: i32 = 2;
    let name = if join {
        NETLINK_ADD_MEMBERSHIP
    } else {
        NETLINK_DROP_MEMBERSHIP
    };
    sys::setsockopt_int(fd.as_raw_fd(), libc::SOL_NETLINK, name, group as i32)
}

/// Removes the socket's BPF program (`SO_DETACH_FILTER`): every message
/// is queued again. Not having one is no error.
pub fn detach_filter(fd: BorrowedFd<'_>) -> io::Result<()> {
    match sys::setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r,
    }
}

/// Attaches a classic BPF program (`SO_ATTACH_FILTER`): the kernel runs
/// it on every message queued to the socket and drops what it rejects.
pub fn attach_filter(fd: BorrowedFd<'_>, prog: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(prog.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let fp = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fp points at prog, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fp as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the peer of a connected stream socket has closed it entirely
/// (POLLHUP, or an error pending), without reading anything. A peer that
/// only shut its sending side down (SHUT_WR) still counts as there.
pub fn peer_gone(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

#[cfg(test)]
mod peer_tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_closed_peer_is_gone_a_half_closed_one_is_not() {
        let (a, mut b) = UnixStream::pair().unwrap();
        assert!(!super::peer_gone(a.as_fd()));
        b.write_all(b"x").unwrap();
        b.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(!super::peer_gone(a.as_fd()), "half closed");
        drop(b);
        assert!(super::peer_gone(a.as_fd()), "closed");
    }
}
