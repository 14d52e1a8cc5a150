//! Shared pieces of the binaries: the `conntrack` command line (`cli`),
//! the netlink request/response session (`nl`) and the `conntrack` tool
//! itself (`ct`).

// System calls go through ct_ring (ct_ring::os and the sockets). The few
// `unsafe` blocks left say what they promise ct_ring: signal handlers that
// only touch atomics and eventfds, an eventfd kept open while a handler
// may write to it, and the mapping of this daemon's own snapshot file.
#![deny(unsafe_code)]

pub mod cli;
pub mod ct;
pub mod daemon;
pub mod fuzzing;
pub mod nfct;
pub mod nl;
pub mod perf;
