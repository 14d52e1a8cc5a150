//! [`Outbox`]: queueing sends the same way from outside a `poll` (on the
//! [`Reactor`](super::Reactor)) and from inside its callback (on a
//! [`Ctx`](super::Ctx)), so that a caller writes its send path once.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::event::{SendError, SockId};

/// Where datagrams (or stream bytes) can be queued.
pub trait Outbox {
    /// Queues `data` on `sock`, to `to` when given (UDP), else on the
    /// connected or netlink socket.
    fn queue_to(
        &mut self,
        sock: SockId,
        data: &[u8],
        to: Option<&SocketAddr>,
    ) -> Result<(), SendError>;

    /// After [`SendError::QueueFull`]: waits at most `wait` for a send
    /// slot ([`Reactor::reap_sends`](super::Reactor::reap_sends)).
    /// `None` where waiting is impossible (inside a `poll` callback).
    fn wait_for_slot(&mut self, wait: Duration) -> Option<io::Result<usize>>;
}

impl Outbox for super::Reactor {
    fn queue_to(
        &mut self,
        sock: SockId,
        data: &[u8],
        to: Option<&SocketAddr>,
    ) -> Result<(), SendError> {
        self.shared.send_to(sock, data, to)
    }

    fn wait_for_slot(&mut self, wait: Duration) -> Option<io::Result<usize>> {
        Some(self.reap_sends(wait))
    }
}

impl Outbox for super::Ctx<'_> {
    fn queue_to(
        &mut self,
        sock: SockId,
        data: &[u8],
        to: Option<&SocketAddr>,
    ) -> Result<(), SendError> {
        self.sh.send_to(sock, data, to)
    }

    fn wait_for_slot(&mut self, _: Duration) -> Option<io::Result<usize>> {
        None
    }
}
