//! A `NETLINK_NETFILTER` socket on plain syscalls: bind to multicast
//! groups, size the receive buffer (SO_RCVBUFFORCE with fallback), send a
//! batch of requests in one `send`, and receive one or many datagrams
//! (`recvmmsg`) into caller-owned buffers. ENOBUFS is reported as
//! [`RecvError::Overrun`] so that a listener can count it and go on.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `NETLINK_NETFILTER`.
pub const NETLINK_NETFILTER: i32 = 12;
const SOL_NETLINK: i32 = 270;
const NETLINK_ADD_MEMBERSHIP: i32 = 1;
const NETLINK_BROADCAST_ERROR: i32 = 4;
const NETLINK_NO_ENOBUFS: i32 = 5;
const NETLINK_EXT_ACK: i32 = 11;
const NETLINK_GET_STRICT_CHK: i32 = 12;

/// Why a receive did not deliver data.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The kernel dropped messages because the receive buffer was full.
    #[error("netlink receive buffer overrun (ENOBUFS)")]
    Overrun,
    /// Non-blocking receive with nothing queued.
    #[error("would block")]
    WouldBlock,
    /// Interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Io(io::Error),
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOBUFS) => RecvError::Overrun,
            Some(libc::EAGAIN) => RecvError::WouldBlock,
            Some(libc::EINTR) => RecvError::Interrupted,
            _ => RecvError::Io(e),
        }
    }
}

/// A netlink socket.
#[derive(Debug)]
pub struct NlSocket {
    fd: OwnedFd,
    portid: u32,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl NlSocket {
    /// Opens a netlink socket of `protocol` bound to the legacy multicast
    /// group bitmask `groups` (0 for a request socket).
    pub fn open(protocol: i32, groups: u32) -> io::Result<NlSocket> {
        NlSocket::open_steps(protocol, groups).map_err(|(_, e)| e)
    }

    /// [`NlSocket::open`], naming the step that failed as libmnl's
    /// functions do (`mnl_socket_open`: the socket; `mnl_socket_bind`:
    /// the bind, as to multicast groups without CAP_NET_ADMIN), for the
    /// tools that print 1.4.7's `perror` line.
    pub fn open_steps(protocol: i32, groups: u32) -> Result<NlSocket, (&'static str, io::Error)> {
        // SAFETY: plain syscalls on values we own; the fd is wrapped at once.
        unsafe {
            let fd = cvt(libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            ))
            .map_err(|e| ("mnl_socket_open", e))?;
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            sa.nl_groups = groups;
            let bind = |e| ("mnl_socket_bind", e);
            cvt(libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            ))
            .map_err(bind)?;
            let mut len = std::mem::size_of::<libc::sockaddr_nl>() as u32;
            cvt(libc::getsockname(
                fd.as_raw_fd(),
                &mut sa as *mut _ as *mut libc::sockaddr,
                &mut len,
            ))
            .map_err(bind)?;
            Ok(NlSocket {
                fd,
                portid: sa.nl_pid,
            })
        }
    }

    /// The port id the kernel assigned to this socket.
    pub fn portid(&self) -> u32 {
        self.portid
    }

    fn setsockopt_int(&self, level: i32, name: i32, v: i32) -> io::Result<()> {
        // SAFETY: the option value is a live i32 of the size passed.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                &v as *const i32 as *const libc::c_void,
                4,
            )
        })
        .map(|_| ())
    }

    fn getsockopt_int(&self, level: i32, name: i32) -> io::Result<i32> {
        let mut v: i32 = 0;
        let mut len: u32 = 4;
        // SAFETY: v and len are live and sized for an int option.
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                &mut v as *mut i32 as *mut libc::c_void,
                &mut len,
            )
        })?;
        Ok(v)
    }

    /// Joins multicast group `group` (NETLINK_ADD_MEMBERSHIP).
    pub fn join_group(&self, group: u32) -> io::Result<()> {
        self.setsockopt_int(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group as i32)
    }

    /// Requests a receive buffer of `bytes` (SO_RCVBUFFORCE, falling back
    /// to SO_RCVBUF) and returns the size the kernel reports back (which is
    /// double the request).
    pub fn set_rcvbuf(&self, bytes: usize) -> io::Result<usize> {
        let v = bytes.min(i32::MAX as usize) as i32;
        if self
            .setsockopt_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v)
            .is_err()
        {
            self.setsockopt_int(libc::SOL_SOCKET, libc::SO_RCVBUF, v)?;
        }
        self.rcvbuf()
    }

    /// conntrack 1.4.7's `-b`: `value` goes to setsockopt as a `size_t`
    /// (SO_RCVBUFFORCE, else SO_RCVBUF) and SO_RCVBUF is read back into
    /// it. The kernel reads and writes an `int` there (the low 32 bits on
    /// this machine's byte order), and the rest stays as given: what 1.4.7
    /// prints, for any value (a negative `atol` too).
    pub fn set_rcvbuf_size_t(&self, value: u64) -> u64 {
        let fd = self.fd.as_raw_fd();
        let mut v = value;
        let size = std::mem::size_of::<u64>() as libc::socklen_t;
        let p = &mut v as *mut u64 as *mut libc::c_void;
        // SAFETY: v is a live u64 of the size passed, for each call.
        unsafe {
            if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, size) < 0 {
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, size);
            }
            let mut len = size;
            libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, &mut len);
        }
        v
    }

    /// The current receive buffer size.
    pub fn rcvbuf(&self) -> io::Result<usize> {
        Ok(self.getsockopt_int(libc::SOL_SOCKET, libc::SO_RCVBUF)? as usize)
    }

    /// Reliable event delivery: the kernel reports no ENOBUFS and instead
    /// fails the event sender (NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS).
    pub fn set_reliable(&self) -> io::Result<()> {
        self.setsockopt_int(SOL_NETLINK, NETLINK_BROADCAST_ERROR, 1)?;
        self.setsockopt_int(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    }

    /// Best-effort extended acks and strict checking (ignored when the
    /// kernel does not know them).
    pub fn set_ext_ack(&self) {
        let _ = self.setsockopt_int(SOL_NETLINK, NETLINK_EXT_ACK, 1);
        let _ = self.setsockopt_int(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 0);
    }

    /// A blocking receive gives up after `t` (SO_RCVTIMEO) and reports
    /// [`RecvError::WouldBlock`]: a listener that must also notice a stop
    /// flag waits in the kernel instead of polling.
    pub fn set_recv_timeout(&self, t: std::time::Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: setsockopt with a timeval that lives for the call.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            )
        })?;
        Ok(())
    }

    /// Switches O_NONBLOCK.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = cvt(libc::fcntl(self.fd.as_raw_fd(), libc::F_GETFL))?;
            let fl = if on {
                fl | libc::O_NONBLOCK
            } else {
                fl & !libc::O_NONBLOCK
            };
            cvt(libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFL, fl))?;
        }
        Ok(())
    }

    /// Sends `buf` (one or many messages) to the kernel in one datagram.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: the address is a zeroed sockaddr_nl (the kernel, pid 0).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        loop {
            // SAFETY: buf is live for the call; sa is a valid sockaddr_nl.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr() as *const libc::c_void,
                    buf.len(),
                    0,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as u32,
                )
            };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    /// Receives one datagram into `buf`. With `dontwait`, returns
    /// `WouldBlock` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8], dontwait: bool) -> Result<usize, RecvError> {
        let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
        // SAFETY: buf is a live, writable slice of the given length.
        let r = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                flags,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(r as usize)
    }

    /// Receives up to `batch.slots()` datagrams with one `recvmmsg`,
    /// blocking until at least one is there (unless `dontwait`). Returns
    /// how many were received; `batch.get(i)` gives each.
    pub fn recv_batch(&self, batch: &mut RecvBatch, dontwait: bool) -> Result<usize, RecvError> {
        let flags = if dontwait {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        batch.prepare();
        // SAFETY: the headers point into batch's own buffers, which live
        // (unmoved) for the duration of the call.
        let r = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                batch.hdrs.as_mut_ptr(),
                batch.hdrs.len() as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error().into());
        }
        batch.count = r as usize;
        Ok(r as usize)
    }
}

impl AsRawFd for NlSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for NlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Hands the socket to a [`Reactor`](crate::reactor::Reactor)
/// (`reactor.register(sock, SockOpts::netlink())`).
impl From<NlSocket> for OwnedFd {
    fn from(s: NlSocket) -> OwnedFd {
        s.fd
    }
}

/// Reusable buffers for [`NlSocket::recv_batch`].
pub struct RecvBatch {
    bufs: Vec<u8>,
    slot: usize,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    count: usize,
}

// SAFETY: the raw pointers inside only ever point into `bufs`, owned by
// the same value; nothing is shared.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// `slots` datagrams of up to `slot_size` bytes each.
    pub fn new(slots: usize, slot_size: usize) -> RecvBatch {
        let slots = slots.max(1);
        RecvBatch {
            bufs: vec![0u8; slots * slot_size],
            slot: slot_size,
            // SAFETY: iovec and mmsghdr are plain C structs; all-zero is valid.
            iovs: vec![unsafe { std::mem::zeroed() }; slots],
            hdrs: vec![unsafe { std::mem::zeroed() }; slots],
            count: 0,
        }
    }

    fn prepare(&mut self) {
        let base = self.bufs.as_mut_ptr();
        for i in 0..self.hdrs.len() {
            // SAFETY: i * slot is within bufs (slots * slot bytes).
            self.iovs[i].iov_base = unsafe { base.add(i * self.slot) } as *mut libc::c_void;
            self.iovs[i].iov_len = self.slot;
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_name = std::ptr::null_mut();
            h.msg_hdr.msg_namelen = 0;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        self.count = 0;
    }

    pub fn slots(&self) -> usize {
        self.hdrs.len()
    }

    /// Datagram `i` of the last receive.
    pub fn get(&self, i: usize) -> &[u8] {
        if i >= self.count {
            return &[];
        }
        let len = (self.hdrs[i].msg_len as usize).min(self.slot);
        &self.bufs[i * self.slot..i * self.slot + len]
    }

    /// Whether datagram `i` was truncated (larger than a slot).
    pub fn truncated(&self, i: usize) -> bool {
        i < self.count && self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }
}
