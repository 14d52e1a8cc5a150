//! Broken pipes end the C tools: they keep SIGPIPE's default action, so
//! `conntrack -E | head -1` ends at the first write after `head` is gone
//! (exit status 141), and so does a dump piped into `head`. Rust's
//! runtime ignores SIGPIPE, which turns those writes into errors the
//! tools would have to check on every line (and a failed `eprintln!`
//! into a panic). The binaries put the default action back first thing;
//! the daemon ignores SIGPIPE again once it runs (`install_signals`).

/// SIGPIPE's default action (the process ends) for the calling process.
pub fn default_action() {
    ct_ring::os::signals::default_action(libc::SIGPIPE);
}
