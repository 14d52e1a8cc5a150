//! Shared pieces of the binaries: the `conntrack` command line (`cli`),
//! the netlink request/response session (`nl`) and the `conntrack` tool
//! itself (`ct`).

pub mod cli;
pub mod ct;
pub mod daemon;
pub mod fuzzing;
pub mod nfct;
pub mod nl;
pub mod perf;
