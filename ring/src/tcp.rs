//! TCP connections that never block their thread: [`Connecting`] starts
//! a non-blocking `connect` and is asked later whether it completed (a
//! zero-timeout `poll` and `SO_ERROR`), so a peer that does not answer
//! costs the event loop nothing; [`StreamOpts`] are the socket options a
//! sync channel sets before connecting (buffers, checksum, keepalive).
//! Once connected, the stream is handed to the reactor like any other.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::reactor::sys;

/// Keepalive probing: a peer that stops answering is declared dead after
/// `idle + interval * count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub count: u32,
}

/// Options of a connecting socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOpts {
    /// SO_SNDBUFFORCE (falling back to SO_SNDBUF); 0 = system default.
    pub sndbuf: u32,
    /// SO_RCVBUFFORCE (falling back to SO_RCVBUF); 0 = system default.
    pub rcvbuf: u32,
    /// SO_NO_CHECK (`Checksum off`), set when `Some`.
    pub no_check: Option<bool>,
    pub keepalive: Option<Keepalive>,
    /// TCP_USER_TIMEOUT: how long sent data may stay unacknowledged
    /// before the connection is dropped.
    pub user_timeout: Option<Duration>,
    pub nodelay: bool,
}

/// Sets a socket buffer (`snd` true: send buffer) with the FORCE option,
/// falling back to the plain one (capped by the sysctl maximum).
pub fn set_buffer(fd: RawFd, snd: bool, bytes: u32) -> io::Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    let (force, plain) = if snd {
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)
    } else {
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF)
    };
    let v = bytes.min(i32::MAX as u32) as i32;
    sys::setsockopt_int(fd, libc::SOL_SOCKET, force, v)
        .or_else(|_| sys::setsockopt_int(fd, libc::SOL_SOCKET, plain, v))
}

/// SO_NO_CHECK: `true` turns UDP checksums off on what this socket sends
/// (`Checksum off`; accepted and without effect on TCP, as in 1.4.7).
pub fn set_no_check(fd: RawFd, off: bool) -> io::Result<()> {
    sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_NO_CHECK, off as i32)
}

/// Reads SO_NO_CHECK back.
pub fn no_check(fd: RawFd) -> io::Result<bool> {
    Ok(sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_NO_CHECK)? != 0)
}

/// Applies `o` to a TCP socket.
pub fn apply(fd: RawFd, o: &StreamOpts) -> io::Result<()> {
    set_buffer(fd, true, o.sndbuf)?;
    set_buffer(fd, false, o.rcvbuf)?;
    if let Some(off) = o.no_check {
        // (best effort: without effect on TCP, as 1.4.7 sets it anyway)
        let _ = set_no_check(fd, off);
    }
    if let Some(k) = o.keepalive {
        sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        let secs = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64) as i32;
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(k.idle))?;
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(k.interval))?;
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, k.count as i32)?;
    }
    if let Some(t) = o.user_timeout {
        let ms = t.as_millis().min(i32::MAX as u128) as i32;
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)?;
    }
    if o.nodelay {
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    }
    Ok(())
}

/// A connect in progress.
#[derive(Debug)]
pub struct Connecting {
    fd: OwnedFd,
    started: Instant,
}

/// What a [`Connecting`] has become.
#[derive(Debug)]
pub enum Progress {
    /// Not yet.
    Pending,
    /// Connected: the stream, blocking flags untouched (non-blocking).
    Connected(TcpStream),
    /// Refused, unreachable, timed out...
    Failed(io::Error),
}

fn sockaddr(peer: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the variants written
    // below fit in it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match peer {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

impl Connecting {
    /// Creates a non-blocking TCP socket, applies `opts` and starts
    /// connecting to `peer`.
    pub fn start(peer: SocketAddr, opts: &StreamOpts) -> io::Result<Connecting> {
        let family = if peer.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2); the fd is owned at once.
        let fd = sys::cvt(unsafe {
            libc::socket(
                family,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: fd was just returned by socket(2).
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        apply(fd.as_raw_fd(), opts)?;
        let (ss, len) = sockaddr(&peer);
        // SAFETY: ss holds a sockaddr of `len` bytes.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                &ss as *const _ as *const libc::sockaddr,
                len,
            )
        };
        if r < 0 && sys::errno() != libc::EINPROGRESS {
            return Err(io::Error::last_os_error());
        }
        Ok(Connecting {
            fd,
            started: Instant::now(),
        })
    }

    /// How long ago the connect started.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// Checks without waiting whether the connect completed.
    pub fn poll(self) -> (Option<Connecting>, Progress) {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one live pollfd, no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n < 0 {
            return (None, Progress::Failed(io::Error::last_os_error()));
        }
        if n == 0 {
            return (Some(self), Progress::Pending);
        }
        match sys::getsockopt_int(self.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR) {
            Ok(0) if p.revents & (libc::POLLERR | libc::POLLHUP) == 0 => {
                (None, Progress::Connected(TcpStream::from(self.fd)))
            }
            Ok(0) => (
                None,
                Progress::Failed(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            ),
            Ok(e) => (None, Progress::Failed(io::Error::from_raw_os_error(e))),
            Err(e) => (None, Progress::Failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn wait(mut c: Connecting) -> Progress {
        let t0 = Instant::now();
        loop {
            let (next, p) = c.poll();
            match next {
                Some(n) if t0.elapsed() < Duration::from_secs(5) => {
                    c = n;
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => return p,
            }
        }
    }

    #[test]
    fn connects_without_blocking_and_reports_refusal() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let opts = StreamOpts {
            sndbuf: 65536,
            no_check: Some(true),
            keepalive: Some(Keepalive {
                idle: Duration::from_secs(5),
                interval: Duration::from_secs(1),
                count: 3,
            }),
            user_timeout: Some(Duration::from_secs(10)),
            nodelay: true,
            ..StreamOpts::default()
        };
        let c = Connecting::start(l.local_addr().unwrap(), &opts).unwrap();
        match wait(c) {
            Progress::Connected(s) => {
                assert!(no_check(s.as_raw_fd()).unwrap());
                let ka = sys::getsockopt_int(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE);
                assert_eq!(ka.unwrap(), 1);
                let (_peer, from) = l.accept().unwrap();
                assert_eq!(from, s.local_addr().unwrap());
            }
            p => panic!("{p:?}"),
        }
        // nobody listens here any more: refused, reported, not a hang
        let port = l.local_addr().unwrap();
        drop(l);
        match wait(Connecting::start(port, &StreamOpts::default()).unwrap()) {
            Progress::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED)),
            p => panic!("{p:?}"),
        }
    }
}
