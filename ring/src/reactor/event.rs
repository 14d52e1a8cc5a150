//! What the reactor hands to its caller: socket and timer ids, events,
//! per-socket errors (as values, never as a failed `poll`) and counters.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A socket registered with a [`Reactor`](super::Reactor). Ids are not
/// reused: a stale id is rejected, never mistaken for a newer socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockId {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
}

/// A timer of a [`Reactor`](super::Reactor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
}

/// An OS error number, cheap to copy (formats like `io::Error`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// As an `io::Error`.
    pub fn to_io(self) -> io::Error {
        io::Error::from_raw_os_error(self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, self.to_io())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_io(), f)
    }
}

/// An error on one socket, reported as an [`Event::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockError {
    /// Messages for this socket were dropped because its receive buffer
    /// was full (a netlink overrun): reported on ENOBUFS (`first`: the
    /// kernel raises it once per congestion episode) and, while the
    /// congestion lasts, whenever the socket's drop counter (`SO_MEMINFO`)
    /// grows again without a new ENOBUFS (`first` false). `dropped` is the
    /// counter's growth since the last report (0 if unavailable).
    /// Receiving goes on.
    Overrun { dropped: u32, first: bool },
    /// Another receive error. With `stopped`, the reactor no longer
    /// receives on this socket (it stays registered for sends and `close`).
    Recv { errno: Errno, stopped: bool },
    /// `count` queued sends failed since the last report, the last with
    /// `errno`. Failed datagrams are dropped; a failed stream send drops
    /// the stream's queue.
    Send { errno: Errno, count: u32 },
}

impl fmt::Display for SockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockError::Overrun { dropped, first } => {
                let what = if *first { "(ENOBUFS)" } else { "continues" };
                write!(f, "receive buffer overrun {what}, {dropped} dropped")
            }
            SockError::Recv { errno, stopped } => {
                write!(f, "receive error: {errno}")?;
                if *stopped {
                    f.write_str(" (receive stopped)")?;
                }
                Ok(())
            }
            SockError::Send { errno, count } => write!(f, "{count} send(s) failed: {errno}"),
        }
    }
}

/// One thing that happened, handed to the `poll` callback. Byte views
/// borrow the reactor's buffers and are recycled when the callback returns.
#[derive(Debug)]
pub enum Event<'a> {
    /// A datagram (or, on a stream socket, a chunk of the byte stream).
    Recv {
        sock: SockId,
        data: &'a [u8],
        /// The sender, for UDP sockets registered with `want_addr`.
        from: Option<SocketAddr>,
        /// The datagram was larger than the receive buffer and was cut.
        truncated: bool,
    },
    /// A per-socket error; the socket stays registered.
    Error { sock: SockId, error: SockError },
    /// A stream socket reached end of file (the peer closed); receiving
    /// has stopped.
    Closed { sock: SockId },
    /// A timer expired.
    Timer(TimerId),
    /// Some [`Waker`](super::Waker) woke the reactor (wakes coalesce).
    Wake,
}

/// Counters of one socket (see [`Reactor::stats`](super::Reactor::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockStats {
    /// Datagrams (stream: chunks) delivered.
    pub rx_datagrams: u64,
    pub rx_bytes: u64,
    /// Datagrams cut to the buffer size.
    pub rx_truncated: u64,
    /// ENOBUFS overruns reported.
    pub overruns: u64,
    /// Sum of `dropped` over the overruns.
    pub dropped: u64,
    /// Other receive errors reported.
    pub recv_errors: u64,
    /// io_uring: times a multishot receive ended and was armed again.
    pub rearms: u64,
    /// io_uring: times the provided-buffer ring ran empty (an ENOBUFS
    /// completion that was not an overrun: no data was lost).
    pub ring_empty: u64,
    /// Datagrams (stream: queued writes) handed to the kernel successfully.
    pub tx_datagrams: u64,
    pub tx_bytes: u64,
    /// Sends that failed (reported as [`SockError::Send`]).
    pub tx_errors: u64,
    /// Sends refused because every send slot was in use.
    pub tx_queue_full: u64,
}

/// Why a send could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Every send slot is queued or in flight; poll (or flush) and retry.
    #[error("send queue full")]
    QueueFull,
    /// The datagram is larger than a send slot.
    #[error("datagram larger than the send slot size")]
    TooBig,
    /// The socket id is stale, closing, or not registered here.
    #[error("unknown or closed socket")]
    BadSocket,
    /// An earlier write on this stream failed (reported as
    /// [`SockError::Send`]); the stream has a hole, so close it.
    #[error("stream broken by an earlier send error")]
    Broken,
}
