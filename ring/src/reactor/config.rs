//! Start-up choices: which backend (`CT_RING_BACKEND` or an explicit
//! [`BackendChoice`]), sizes of the send slots and rings, and per-socket
//! receive options ([`SockOpts`]).

use std::fmt;
use std::io;

/// The environment variable read when the choice is [`BackendChoice::Auto`]:
/// `syscall` forces the fallback, `uring` (or `io_uring`) requires
/// io_uring, `auto` or unset tries io_uring first.
pub const BACKEND_ENV: &str = "CT_RING_BACKEND";

/// The backend a reactor runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// io_uring: multishot receive from provided buffer rings.
    Uring,
    /// epoll + recvmmsg/sendmmsg.
    Syscall,
}

impl Backend {
    /// `"io_uring"` or `"syscall"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "io_uring",
            Backend::Syscall => "syscall",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to pick the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// Follow `CT_RING_BACKEND`; when unset, io_uring if it works here,
    /// otherwise the syscall backend.
    #[default]
    Auto,
    /// io_uring or fail.
    Uring,
    /// The syscall backend.
    Syscall,
}

impl BackendChoice {
    /// Parses `auto`, `uring`/`io_uring`, `syscall`.
    pub fn parse(s: &str) -> Option<BackendChoice> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Some(BackendChoice::Auto),
            "uring" | "io_uring" | "io-uring" => Some(BackendChoice::Uring),
            "syscall" | "epoll" => Some(BackendChoice::Syscall),
            _ => None,
        }
    }

    /// The choice `CT_RING_BACKEND` asks for (`Auto` when unset); an
    /// unknown value is an `InvalidInput` error.
    pub fn from_env() -> io::Result<BackendChoice> {
        match std::env::var(BACKEND_ENV) {
            Err(_) => Ok(BackendChoice::Auto),
            Ok(v) => BackendChoice::parse(&v).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{BACKEND_ENV}={v}: expected auto, uring or syscall"),
                )
            }),
        }
    }
}

/// Reactor-wide settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub backend: BackendChoice,
    /// Send slots (datagrams queued or in flight at once), shared by all
    /// sockets.
    pub send_slots: u32,
    /// Bytes per send slot: the largest datagram (or stream write).
    pub send_slot_size: u32,
    /// io_uring submission queue entries.
    pub sq_entries: u32,
    /// io_uring completion queue entries.
    pub cq_entries: u32,
    /// Wake-up moderation (io_uring only): while traffic is steady (the
    /// rounds handled at least an eighth of this many, and 2, on a moving
    /// average, at [`Config::moderation_rate`] or more), a
    /// blocking poll first waits until this many completions are ready or
    /// this long has passed, so that a busy socket is handled in batches
    /// (fewer wake-ups, less CPU) at the cost of at most that delay; a
    /// trickle wakes at the first completion. `None`: always the first.
    pub moderation: Option<(u32, std::time::Duration)>,
    /// Completions a second from which moderation may engage (measured
    /// over 10-ms windows): below it every completion wakes the poll at
    /// once, whatever the rounds.
    pub moderation_rate: u64,
}

/// The default [`Config::moderation_rate`]: at 20k flows/s (about that
/// many completions) waiting cost half of the flows up to the whole delay
/// for little CPU (perf/RESULTS.md, session 13).
pub const MODERATION_RATE: u64 = 40_000;

impl Default for Config {
    fn default() -> Config {
        Config {
            backend: BackendChoice::Auto,
            send_slots: 256,
            send_slot_size: 2048,
            sq_entries: 256,
            cq_entries: 4096,
            moderation: None,
            moderation_rate: MODERATION_RATE,
        }
    }
}

impl Config {
    /// The default settings with an explicit backend choice.
    pub fn with_backend(backend: BackendChoice) -> Config {
        Config {
            backend,
            ..Config::default()
        }
    }
}

/// Datagram (netlink, UDP) or stream (TCP) semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockKind {
    /// One receive = one datagram; one send = one datagram; a failed send
    /// drops that datagram.
    Datagram,
    /// Receives are chunks of a byte stream (the caller frames them);
    /// sends are written in order, completely, one at a time.
    Stream,
}

/// How to register a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOpts {
    pub kind: SockKind,
    /// Receive on it (false: a send-only socket).
    pub recv: bool,
    /// Deliver the sender's address with each datagram (UDP).
    pub want_addr: bool,
    /// Bytes per receive buffer (the largest datagram kept whole).
    pub buf_size: u32,
    /// io_uring: provided buffers in this socket's ring (a power of two,
    /// at most 32768).
    pub buf_count: u16,
    /// Syscall backend: datagrams per `recvmmsg`.
    pub batch: u32,
    /// Receives handed over per wake-up before the other sockets and the
    /// timers get their turn (conntrackd's `EventIterationLimit`); 0 = no
    /// limit. The rest waits for the next `poll`, in order.
    pub max_per_wake: u32,
    /// Data on it ends a lingering wait at once
    /// ([`Reactor::set_linger`](crate::Reactor::set_linger)): a socket
    /// whose receive buffer a linger could overrun, or whose traffic
    /// cannot wait (a conntrack event socket).
    pub urgent: bool,
}

impl SockOpts {
    /// A netlink event or request socket: 4 KiB buffers, no addresses.
    pub fn netlink() -> SockOpts {
        SockOpts {
            kind: SockKind::Datagram,
            recv: true,
            want_addr: false,
            buf_size: 4096,
            buf_count: 1024,
            batch: 64,
            max_per_wake: 0,
            urgent: false,
        }
    }

    /// A UDP socket with the sender's address on each datagram.
    pub fn udp() -> SockOpts {
        SockOpts {
            want_addr: true,
            buf_size: 2048,
            ..SockOpts::netlink()
        }
    }

    /// A connected TCP socket.
    pub fn stream() -> SockOpts {
        SockOpts {
            kind: SockKind::Stream,
            buf_size: 16384,
            buf_count: 64,
            batch: 1,
            ..SockOpts::netlink()
        }
    }

    /// Only send on it.
    pub fn send_only(self) -> SockOpts {
        SockOpts {
            recv: false,
            ..self
        }
    }

    pub fn buf_size(self, bytes: u32) -> SockOpts {
        SockOpts {
            buf_size: bytes,
            ..self
        }
    }

    pub fn buf_count(self, n: u16) -> SockOpts {
        SockOpts {
            buf_count: n,
            ..self
        }
    }

    pub fn want_addr(self, on: bool) -> SockOpts {
        SockOpts {
            want_addr: on,
            ..self
        }
    }

    pub fn batch(self, n: u32) -> SockOpts {
        SockOpts { batch: n, ..self }
    }

    /// Caps the receives delivered per wake-up (0 = no cap).
    pub fn max_per_wake(self, n: u32) -> SockOpts {
        SockOpts {
            max_per_wake: n,
            ..self
        }
    }

    /// Data on it ends a lingering wait at once (see [`SockOpts::urgent`]).
    pub fn urgent(self) -> SockOpts {
        SockOpts {
            urgent: true,
            ..self
        }
    }

    pub(crate) fn validate(&self) -> io::Result<()> {
        let bad = |m: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, m.to_string()));
        if self.recv {
            if self.buf_size == 0 || self.buf_size > (1 << 24) {
                return bad("buf_size must be 1..=16 MiB");
            }
            if !self.buf_count.is_power_of_two() || self.buf_count > 32768 {
                return bad("buf_count must be a power of two <= 32768");
            }
            if self.batch == 0 || self.batch > 1024 {
                return bad("batch must be 1..=1024");
            }
        }
        Ok(())
    }
}
