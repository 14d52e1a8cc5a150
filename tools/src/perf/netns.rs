//! Moving the calling thread into a named network namespace (the ones
//! `ip netns add` makes under /var/run/netns), so that one `ctperf`
//! process can drive one namespace's kernel table from one thread and
//! listen to another's from a second thread, on one clock.

pub use ct_ring::os::netns::enter;
