//! [`Ctx`]: what a `poll` callback may do while the reactor is busy
//! delivering events (queue sends, manage timers, read the time).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::event::{SendError, SockId, TimerId};
use super::shared::Shared;

/// What a `poll` callback may do while the reactor is busy delivering:
/// queue sends and manage timers. Sends queued here go out before `poll`
/// returns.
pub struct Ctx<'a> {
    pub(crate) sh: &'a mut Shared,
}

impl Ctx<'_> {
    /// The time this poll round started (or the last timer check).
    pub fn now(&self) -> Instant {
        self.sh.now
    }

    /// Queues a datagram (or stream bytes) on a connected or netlink socket.
    pub fn send(&mut self, sock: SockId, data: &[u8]) -> Result<(), SendError> {
        self.sh.send_to(sock, data, None)
    }

    /// Queues a datagram to `to`.
    pub fn send_to(&mut self, sock: SockId, data: &[u8], to: &SocketAddr) -> Result<(), SendError> {
        self.sh.send_to(sock, data, Some(to))
    }

    /// Queues a datagram written in place by `fill` into a send slot.
    pub fn send_with<F: FnOnce(&mut [u8]) -> usize>(
        &mut self,
        sock: SockId,
        to: Option<&SocketAddr>,
        fill: F,
    ) -> Result<usize, SendError> {
        self.sh.queue(sock, to, fill)
    }

    /// A new timer (see [`Reactor::timer_add`](super::Reactor::timer_add)).
    pub fn timer_add(&mut self, deadline: Option<Instant>, period: Option<Duration>) -> TimerId {
        self.sh.timers.add(deadline, period)
    }

    /// Re-arms (`None`: disarms) a timer and sets its period.
    pub fn timer_set(
        &mut self,
        id: TimerId,
        deadline: Option<Instant>,
        period: Option<Duration>,
    ) -> bool {
        self.sh.timers.set(id, deadline, period)
    }

    /// Re-arms or disarms a timer, keeping its period.
    pub fn timer_reset(&mut self, id: TimerId, deadline: Option<Instant>) -> bool {
        self.sh.timers.reset(id, deadline)
    }

    /// Deletes a timer.
    pub fn timer_remove(&mut self, id: TimerId) -> bool {
        self.sh.timers.remove(id)
    }
}
