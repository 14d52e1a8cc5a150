//! systemd readiness and watchdog (`sd_notify` without libsystemd): with
//! `Systemd on` (the default), the daemon sends `READY=1` once it is
//! initialised, `WATCHDOG=1` every half `WATCHDOG_USEC` while its loop runs,
//! and `STOPPING=1` on shutdown, as datagrams to `$NOTIFY_SOCKET` (a path,
//! or `@name` for the abstract namespace). Without `$NOTIFY_SOCKET` (not
//! started by systemd) nothing is sent.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` to the service manager; false when there is none or the
/// send failed.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        match std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
            Ok(addr) => sock.send_to_addr(state.as_bytes(), &addr).is_ok(),
            Err(_) => false,
        }
    } else {
        sock.send_to(state.as_bytes(), &path).is_ok()
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is
/// set for this process (`$WATCHDOG_PID`, if set, is ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
