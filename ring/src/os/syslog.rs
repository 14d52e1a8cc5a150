//! syslog(3) as conntrackd 1.4.7 uses it: ident `conntrack-tools`, with
//! the pid, and each message passed whole (never as a format).

use std::ffi::CString;

/// Opens syslog with ident `conntrack-tools` and the pid
/// (`LOG_PID`), messages going to `facility` unless they say otherwise.
pub fn open(facility: libc::c_int) {
    // SAFETY: the ident is a static NUL-terminated string, as openlog
    // keeps the pointer.
    unsafe { libc::openlog(c"conntrack-tools".as_ptr(), libc::LOG_PID, facility) };
}

/// Sends `msg` with `priority` (a level, or a facility | level); a
/// message with a NUL byte is not sent.
pub fn send(priority: libc::c_int, msg: &[u8]) {
    let Ok(c) = CString::new(msg) else { return };
    // SAFETY: format and message are NUL-terminated C strings; the
    // message is an argument, never read as a format.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), c.as_ptr()) };
}
