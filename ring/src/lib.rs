//! `ct-ring`: the I/O driver. [`reactor`] is the per-thread event loop
//! of the daemon (io_uring with a plain-syscall fallback: multishot
//! receive from provided buffer rings, batched sends, timers, cross-thread
//! wake); [`netlink`] is the netlink socket on plain syscalls that the
//! `conntrack` tool uses and that the daemon hands to the reactor.
//! It knows nothing of flows or sync messages.

pub mod iface;
pub mod netlink;
pub mod os;
pub mod reactor;
pub mod sockopt;
pub mod tcp;
pub mod udp;

pub use reactor::{
    Backend, BackendChoice, Config, Ctx, Errno, Event, Outbox, Reactor, SendError, SockError,
    SockId, SockKind, SockOpts, SockStats, TimerId, Waker, BACKEND_ENV,
};
