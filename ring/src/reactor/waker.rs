//! [`Waker`]: wakes a reactor from another thread through its eventfd
//! (the reactor then delivers one [`Event::Wake`](super::Event::Wake) for
//! any number of wakes since the last one).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::sys;

/// A cloneable, `Send + Sync` handle that wakes one reactor.
#[derive(Clone, Debug)]
pub struct Waker {
    pub(crate) fd: Arc<OwnedFd>,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        Ok(Waker {
            fd: Arc::new(sys::eventfd()?),
        })
    }

    /// Makes the reactor's current or next `poll` return with
    /// [`Event::Wake`](super::Event::Wake). Never blocks.
    pub fn wake(&self) -> io::Result<()> {
        sys::eventfd_signal(self.fd.as_fd())
    }
}

impl std::os::fd::AsRawFd for Waker {
    /// The eventfd: writing an 8-byte 1 to it wakes the reactor. A signal
    /// handler may do that (`write` is async-signal-safe) as long as the
    /// reactor, which owns the fd, is alive.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
