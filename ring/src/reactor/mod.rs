//! The reactor: one per thread, owned by that thread (it is `!Send`),
//! driving every socket of that thread with one of two backends chosen at
//! start-up — io_uring (multishot receive from provided buffer rings,
//! SENDMSG, EXT_ARG timeouts) or plain syscalls (epoll, recvmmsg,
//! sendmmsg, epoll timeouts) — behind one API:
//!
//! * [`Reactor::register`] takes a socket (netlink, UDP, TCP) and receives
//!   on it; [`Reactor::poll`] hands each datagram to a callback as a
//!   borrowed `&[u8]` (plus the UDP sender), and the buffer is recycled
//!   when the callback returns. Nothing is allocated per event: receive
//!   buffers, send slots and timer slots are preallocated and reused.
//! * [`Reactor::send`]/[`send_to`](Reactor::send_to)/[`send_with`](Reactor::send_with)
//!   queue datagrams into send slots; `poll` or [`flush`](Reactor::flush)
//!   hands all of them to the kernel at once (one `io_uring_enter`, or one
//!   `sendmmsg` per socket and 64 datagrams).
//! * One-shot and periodic timers ([`Reactor::timer_add`]) bound the wait;
//!   [`Waker`] wakes the reactor from another thread (eventfd).
//! * Errors are per socket, as values ([`Event::Error`]); `poll` itself
//!   fails only if the reactor cannot wait at all.
//!
//! # Choosing the backend
//! [`BackendChoice::Auto`] reads `CT_RING_BACKEND` (`syscall`, `uring`,
//! `auto`); when unset it opens an io_uring and proves it works (setup,
//! EXT_ARG, the opcodes RECV/RECVMSG/SEND/SENDMSG/READ/ASYNC_CANCEL/
//! TIMEOUT/PROVIDE_BUFFERS, and a real multishot receive from a registered
//! buffer ring on a socketpair), and falls back to the syscall backend when
//! anything fails (`kernel.io_uring_disabled`, seccomp EPERM, ENOSYS, an
//! old kernel). [`Reactor::backend`] and [`Reactor::describe`] say what
//! runs and why, for the daemon's log.
//!
//! # ENOBUFS (netlink overrun) on this kernel (6.18.44)
//! Verified by `tests/netlink.rs` in scratch namespaces (run it with
//! `CT_RING_TRACE=1` to see every receive completion without data):
//! * io_uring: an overrun arrives as **one CQE with `res = -ENOBUFS`
//!   (-105), `flags = 0`: no buffer (`IORING_CQE_F_BUFFER` clear) and no
//!   `IORING_CQE_F_MORE`**, so it ends the multishot receive; the reactor
//!   re-arms at once (`rearms` counts it). Seen identically for a burst
//!   that overran while nobody polled (SO_RCVBUF 4096: 1 CQE, then the 6
//!   queued and all later events) and for dozens of overruns in the
//!   middle of a live multishot receive (64 KiB buffer, 20000 creates).
//! * The error comes **before** the messages that were queued when the
//!   buffer overflowed: the kernel checks `sk_err` before the queue, so
//!   after the Overrun event the caller still receives those messages.
//! * An empty provided-buffer ring produces the *same* CQE (`-ENOBUFS`,
//!   no buffer, no F_MORE), although nothing was lost. The reactor tells
//!   them apart with the socket's drop counter (`SO_MEMINFO`, `sk_drops`,
//!   which netlink increments for every message it fails to queue for
//!   this socket): if it grew, [`SockError::Overrun`] `{ dropped }`
//!   reports the growth; otherwise it counts `ring_empty` in [`SockStats`]
//!   and re-arms silently.
//! * Netlink raises ENOBUFS only once per congestion episode (it sets
//!   `sk_err` when the socket turns congested; until the queue has
//!   drained, further drops only bump `sk_drops`). So after an overrun the
//!   reactor re-reads the counter after every poll and reports any growth
//!   as another `Overrun`, until a round with neither growth nor data.
//!   Each growth is reported once, so a loss is never hidden, and the
//!   count is exact: over 20000 creates with dozens of overruns,
//!   delivered events + the sum of `dropped` = 20000 on both backends
//!   (before this re-check, 18 drops at the end of a burst went unseen).
//! * Multishot receives may also end without any error (res >= 0, no
//!   F_MORE, REPORT §6 pitfall 2); the reactor re-arms whenever F_MORE is
//!   clear. Closing a socket ends its receive with `-ECANCELED`.
//! * Syscall backend: `recvmmsg` fails with ENOBUFS once per overrun (also
//!   before the queued messages); the next call returns them. Same value.
//!
//! # Measured (informally)
//! `tests/throughput.rs` (ignored; `cargo test -p ct-ring --release --test
//! throughput -- --ignored --nocapture --test-threads=1`), 2 vCPU shared
//! with other builds (load average 3.7-5.9 during the runs), two runs:
//!
//! | what | syscall | io_uring |
//! |---|---|---|
//! | UDP recv, 64 B, from a `sendmmsg` blaster thread: rate (sender-bound) | 195-300k/s | 219-296k/s |
//! | same, reactor thread CPU per datagram | 1.41 us | 1.40 us |
//! | UDP send through send slots (256, refilled per poll): rate | 214-290k/s | 239-282k/s |
//! | same, CPU per datagram (includes the loopback receive softirq) | 3.3 us | 3.4 us |
//! | conntrack NEW events, 100k flat out, 32 MiB buffer: received | 100% | 100% |
//! | same, CPU per event (rate bound by the inserting thread, 190k/s) | 2.1 us | 1.8 us |
//!
//! No datagram or event was lost in these runs. On this box the two
//! backends are within noise of each other for datagrams; io_uring saves
//! ~10% CPU per netlink event. The numbers say the reactor is not the
//! bottleneck (REPORT §6: `conntrack -E` loses 53% at 100k/s), not which
//! backend is faster under real load.
//!
//! # Other behaviour worth knowing
//! * Timers live in a heap in the reactor and bound the wait (io_uring:
//!   the EXT_ARG timeout of `io_uring_enter`; syscall: the epoll timeout,
//!   rounded up to 1 ms). TIMEOUT is probed but no TIMEOUT SQE is used.
//! * io_uring is set up `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel
//!   allows (else `COOP_TASKRUN`, else plain): completions are produced
//!   only while the reactor waits, never behind its back.
//! * Datagram sends that find the socket buffer full fail at once with
//!   EAGAIN (io_uring: MSG_DONTWAIT, so nothing is parked in the kernel)
//!   and are reported as [`SockError::Send`]: the sync protocols recover
//!   lost datagrams. Stream sends are never dropped: they wait for room,
//!   in order; after a failed write the stream refuses further sends
//!   ([`SendError::Broken`]).
//! * The reactor never changes an fd's flags (every call passes
//!   MSG_DONTWAIT where it matters), so blocking sockets are fine.
//! * Multicast joins and TCP connect/accept are socket setup for the
//!   caller (std's `UdpSocket::join_multicast_v4`, `TcpStream`); the
//!   reactor takes bound or connected sockets. [`crate::sockopt`] grows a
//!   registered socket's receive buffer (e.g. after an overrun).

mod addr;
mod config;
mod ctx;
mod event;
mod outbox;
mod shared;
pub(crate) mod sys;
mod syscall;
mod timers;
mod uring;
mod waker;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

pub use self::config::{
    Backend, BackendChoice, Config, SockKind, SockOpts, BACKEND_ENV, MODERATION_RATE,
};
pub use self::ctx::Ctx;
pub use self::event::{Errno, Event, SendError, SockError, SockId, SockStats, TimerId};
pub use self::outbox::Outbox;
pub use self::waker::Waker;

use self::shared::{Shared, State};
use self::syscall::SyscallBackend;
use self::uring::UringBackend;

enum Imp {
    Uring(Box<UringBackend>),
    Syscall(SyscallBackend),
}

/// The I/O driver of one thread. Not `Send`: create it on the thread
/// that runs it (io_uring is set up single-issuer).
///
/// ```compile_fail
/// fn needs_send<T: Send>() {}
/// needs_send::<ct_ring::Reactor>();
/// ```
pub struct Reactor {
    imp: Imp,
    shared: Shared,
    waker: Waker,
    note: String,
}

impl Reactor {
    /// Creates a reactor, choosing the backend as `cfg.backend` says.
    pub fn new(cfg: Config) -> io::Result<Reactor> {
        let waker = Waker::new()?;
        let shared = Shared::new(&cfg)?;
        let wake_fd = waker.fd.as_raw_fd();
        let (choice, why) = match cfg.backend {
            BackendChoice::Auto => (BackendChoice::from_env()?, BACKEND_ENV),
            c => (c, "configuration"),
        };
        let syscall = |note: String| -> io::Result<(Imp, String)> {
            Ok((Imp::Syscall(SyscallBackend::new(wake_fd)?), note))
        };
        let (imp, note) = match choice {
            BackendChoice::Syscall => syscall(format!("forced by {why}"))?,
            BackendChoice::Uring => match UringBackend::new(&cfg, wake_fd) {
                Ok(b) => {
                    let note = format!("{}, required by {why}", b.setup);
                    (Imp::Uring(Box::new(b)), note)
                }
                Err(reason) => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("io_uring required by {why} but unusable: {reason}"),
                    ))
                }
            },
            BackendChoice::Auto => match UringBackend::new(&cfg, wake_fd) {
                Ok(b) => {
                    let note = b.setup.to_string();
                    (Imp::Uring(Box::new(b)), note)
                }
                Err(reason) => syscall(format!("io_uring unavailable: {reason}"))?,
            },
        };
        Ok(Reactor {
            imp,
            shared,
            waker,
            note,
        })
    }

    /// A reactor with default sizes on the given backend choice.
    pub fn with_backend(choice: BackendChoice) -> io::Result<Reactor> {
        Reactor::new(Config::with_backend(choice))
    }

    /// The backend that runs.
    pub fn backend(&self) -> Backend {
        match self.imp {
            Imp::Uring(_) => Backend::Uring,
            Imp::Syscall(_) => Backend::Syscall,
        }
    }

    /// One line for the log, e.g. `io_uring (single_issuer+defer_taskrun)`
    /// or `syscall (io_uring unavailable: io_uring_setup: EPERM ...)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.backend(), self.note)
    }

    /// Registers a socket (the reactor owns it from now on; it is closed
    /// by [`close`](Reactor::close) or when the reactor is dropped).
    pub fn register(&mut self, fd: impl Into<OwnedFd>, opts: SockOpts) -> io::Result<SockId> {
        opts.validate()?;
        let id = self.shared.alloc_sock(fd.into(), opts);
        let r = match &mut self.imp {
            Imp::Uring(b) => b.register(&mut self.shared, id),
            Imp::Syscall(b) => b.register(&mut self.shared, id),
        };
        if let Err(e) = r {
            self.shared.free_sock(id.idx);
            return Err(e);
        }
        Ok(id)
    }

    /// Stops receiving and sending on `sock` and closes it (once the
    /// kernel has let go of it). Queued sends are dropped.
    pub fn close(&mut self, sock: SockId) -> io::Result<()> {
        if self.shared.open_entry(sock).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unknown socket",
            ));
        }
        match &mut self.imp {
            Imp::Uring(b) => b.close(&mut self.shared, sock),
            Imp::Syscall(b) => {
                b.close(&mut self.shared, sock);
                Ok(())
            }
        }
    }

    /// The socket's fd, for socket options (e.g. growing the receive
    /// buffer after an overrun). Do not close it or read from it.
    pub fn fd(&self, sock: SockId) -> Option<BorrowedFd<'_>> {
        let e = self.shared.socks.get(sock.idx as usize)?;
        if e.state != State::Open || e.gen != sock.gen {
            return None;
        }
        e.fd.as_ref().map(|f| f.as_fd())
    }

    /// The socket's counters.
    pub fn stats(&self, sock: SockId) -> Option<SockStats> {
        let e = self.shared.socks.get(sock.idx as usize)?;
        (e.state == State::Open && e.gen == sock.gen).then_some(e.stats)
    }

    /// Queues `data` on a connected (or netlink) socket.
    pub fn send(&mut self, sock: SockId, data: &[u8]) -> Result<(), SendError> {
        self.shared.send_to(sock, data, None)
    }

    /// Queues a datagram to `to`.
    pub fn send_to(&mut self, sock: SockId, data: &[u8], to: &SocketAddr) -> Result<(), SendError> {
        self.shared.send_to(sock, data, Some(to))
    }

    /// Queues a datagram that `fill` writes in place into a send slot
    /// (of [`Config::send_slot_size`] bytes); returns its length.
    pub fn send_with<F: FnOnce(&mut [u8]) -> usize>(
        &mut self,
        sock: SockId,
        to: Option<&SocketAddr>,
        fill: F,
    ) -> Result<usize, SendError> {
        self.shared.queue(sock, to, fill)
    }

    /// Send slots neither queued nor in flight: how many datagrams can be
    /// queued now without [`SendError::QueueFull`].
    pub fn free_send_slots(&self) -> usize {
        self.shared.free_slots()
    }

    /// Whether more completions are already waiting (data arrived since
    /// the last poll): `Some(false)` means a poll now would block. `None`
    /// when the backend cannot tell cheaply (syscall backend, io_uring
    /// without `DEFER_TASKRUN`).
    pub fn work_pending(&mut self) -> Option<bool> {
        match &mut self.imp {
            Imp::Uring(b) => b.work_pending(),
            Imp::Syscall(_) => None,
        }
    }

    /// Lingering (io_uring only; the syscall backend ignores it): while
    /// set, every blocking poll first waits until `want` completions are
    /// ready or `max` has passed, whatever the rate of traffic (unlike
    /// [`Config::moderation`], which engages only under steady load), so
    /// that a trickle is handled a few completions per wake-up. io_uring
    /// wakes a waiter for a socket's first datagram only (the next ones
    /// join it until it is handled), so with `want` 2 one busy socket
    /// waits `max` while a second source of completions (another socket,
    /// the [`Waker`]) ends the wait. Data on an [`urgent`] socket ends it
    /// at once (a one-shot exclusive poll, which the kernel does not
    /// count lazily, is armed on it while lingering). An idle ring still
    /// wakes at the first completion once `max` has passed. `None` turns
    /// it off.
    ///
    /// [`urgent`]: SockOpts::urgent
    pub fn set_linger(&mut self, linger: Option<(u32, Duration)>) {
        if let Imp::Uring(b) = &mut self.imp {
            b.linger = linger;
        }
    }

    /// Hands the queued sends to the kernel and waits, at most `wait`,
    /// until a send slot is free again (after [`SendError::QueueFull`]);
    /// other completions stay for the next [`poll`](Self::poll). Returns
    /// how many sends completed.
    pub fn reap_sends(&mut self, wait: Duration) -> io::Result<usize> {
        match &mut self.imp {
            Imp::Uring(b) => b.reap_sends(&mut self.shared, wait),
            Imp::Syscall(b) => b.reap_sends(&mut self.shared, wait),
        }
    }

    /// Hands every queued send to the kernel now (poll does it too).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.imp {
            Imp::Uring(b) => b.flush(&mut self.shared),
            Imp::Syscall(b) => b.flush(&mut self.shared),
        }
    }

    /// A new timer, due at `deadline` (`None`: disarmed), then every
    /// `period` if given.
    pub fn timer_add(&mut self, deadline: Option<Instant>, period: Option<Duration>) -> TimerId {
        self.shared.timers.add(deadline, period)
    }

    /// Re-arms (`None`: disarms) a timer and sets its period.
    pub fn timer_set(
        &mut self,
        id: TimerId,
        deadline: Option<Instant>,
        period: Option<Duration>,
    ) -> bool {
        self.shared.timers.set(id, deadline, period)
    }

    /// Re-arms or disarms a timer, keeping its period (e.g. with a
    /// protocol's `next_deadline()`).
    pub fn timer_reset(&mut self, id: TimerId, deadline: Option<Instant>) -> bool {
        self.shared.timers.reset(id, deadline)
    }

    /// Deletes a timer.
    pub fn timer_remove(&mut self, id: TimerId) -> bool {
        self.shared.timers.remove(id)
    }

    /// A handle that wakes this reactor from any thread.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Sends what is queued, waits until something happens (at most
    /// `timeout`, and no later than the next timer), and hands every event
    /// to `handler`. Returns the number of events (0 on timeout).
    pub fn poll<F>(&mut self, timeout: Option<Duration>, mut handler: F) -> io::Result<usize>
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let now = Instant::now();
        self.shared.now = now;
        let mut wait = timeout;
        if let Some(d) = self.shared.timers.next_deadline() {
            let until = d.saturating_duration_since(now);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        let mut n = match &mut self.imp {
            Imp::Uring(b) => b.poll(&mut self.shared, wait, &mut handler)?,
            Imp::Syscall(b) => b.poll(&mut self.shared, wait, &mut handler)?,
        };
        n += self.shared.deliver_errors_and_timers(&mut handler);
        self.flush()?;
        Ok(n)
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        if let Imp::Uring(b) = &mut self.imp {
            b.shutdown(&mut self.shared);
        }
    }
}
