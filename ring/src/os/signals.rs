//! Signal dispositions: handlers without `SA_RESTART` (a blocked call
//! returns `EINTR`, so a loop sees the flag its handler set), ignoring a
//! signal or giving it back its default action, and the one system call
//! a handler may make to wake an event loop.

use std::os::fd::RawFd;

/// A signal handler. It may only store to atomics and call
/// async-signal-safe functions (such as [`wake_eventfd`]).
pub type Handler = extern "C" fn(libc::c_int);

/// Runs `handler` on each of `signals`, without `SA_RESTART` and with
/// nothing blocked while it runs.
///
/// # Safety
/// `handler` runs at any point of any thread: it may only store to
/// atomics and call async-signal-safe functions (no allocation, no lock).
pub unsafe fn handle(signals: &[libc::c_int], handler: Handler) {
    // SAFETY: an all-zero sigaction is a valid value (no flags, empty
    // mask until sigemptyset); the handler's contract is the caller's,
    // and sigaction only reads the struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        for &s in signals {
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
    }
}

/// Ignores `signal` (`SIG_IGN`).
pub fn ignore(signal: libc::c_int) {
    // SAFETY: setting a disposition to SIG_IGN installs no handler.
    unsafe { libc::signal(signal, libc::SIG_IGN) };
}

/// Gives `signal` its default action back (`SIG_DFL`).
pub fn default_action(signal: libc::c_int) {
    // SAFETY: setting a disposition to SIG_DFL installs no handler.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Adds 1 to the eventfd `fd`: one `write(2)`, async-signal-safe, for a
/// handler to wake an event loop.
///
/// # Safety
/// `fd` is an eventfd that stays open for the call: a closed number may
/// by then be another file's, which would get the 8 bytes.
pub unsafe fn wake_eventfd(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: write(2) reads 8 live bytes; fd is an open eventfd (the
    // caller's contract).
    unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    static SEEN: AtomicU32 = AtomicU32::new(0);

    extern "C" fn count(_: libc::c_int) {
        SEEN.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_handler_runs_and_a_wake_reaches_the_eventfd() {
        // SAFETY: the handler only adds to an atomic.
        unsafe { handle(&[libc::SIGUSR2], count) };
        // SAFETY: raise(3) delivers to this thread, whose handler only
        // counts.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(SEEN.load(Ordering::SeqCst), 1);
        ignore(libc::SIGUSR2);
        // SAFETY: the signal is ignored now.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(SEEN.load(Ordering::SeqCst), 1);
        // SAFETY: eventfd has no preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
        assert!(fd >= 0);
        // SAFETY: fd is the open eventfd just made.
        unsafe {
            wake_eventfd(fd);
            wake_eventfd(fd);
        }
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into v from our own fd.
        let n = unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
        // SAFETY: closes our own fd, once.
        unsafe { libc::close(fd) };
        assert_eq!((n, v), (8, 2));
    }
}
