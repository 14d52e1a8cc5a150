//! Shared pieces of the binaries: the `conntrack` command line (`cli`),
//! the netlink request/response session (`nl`) and the `conntrack` tool
//! itself (`ct`).

// System calls go through ct_ring (ct_ring::os and the sockets); the one
// `unsafe` here maps this daemon's own snapshot file (daemon::warm).
#![deny(unsafe_code)]

pub mod cli;
pub mod ct;
pub mod daemon;
pub mod fuzzing;
pub mod nfct;
pub mod nl;
pub mod perf;
