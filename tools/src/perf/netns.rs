//! Moving the calling thread into a named network namespace (the ones
//! `ip netns add` makes under /var/run/netns), so that one `ctperf`
//! process can drive one namespace's kernel table from one thread and
//! listen to another's from a second thread, on one clock.

use std::os::fd::AsRawFd;

/// Enters the network namespace `name` (a name under /var/run/netns, or
/// a path) in the calling thread only.
pub fn enter(name: &str) -> std::io::Result<()> {
    let path = if name.contains('/') {
        name.to_string()
    } else {
        format!("/var/run/netns/{name}")
    };
    let f = std::fs::File::open(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
    // SAFETY: setns on a namespace fd we own; affects this thread only.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("setns {path}: {e}")));
    }
    Ok(())
}
