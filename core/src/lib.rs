//! `ct-core`: the flow model, the ctnetlink codec (zero-copy views for
//! parsing, builders that write into caller-owned buffers) and the output
//! formats of `conntrack`. Nothing here opens a socket, reads a clock or
//! spawns a thread: everything is testable in-process.

#![forbid(unsafe_code)]

pub mod config;
pub mod ctl;
pub mod filter;
pub mod flow;
pub mod format;
pub mod netlink;
pub mod proto;
pub mod table;
