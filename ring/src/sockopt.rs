//! Socket options a reactor user needs on a registered socket (through
//! [`Reactor::fd`](crate::Reactor::fd)): the receive buffer, which a
//! netlink listener grows after an overrun, and the kernel's drop counter.

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
