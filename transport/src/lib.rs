//! `ct-transport`: the conntrackd sync protocol, without sockets or clocks.
//!
//! * [`wire`]: the conntrackd 1.4.x sync wire format (protocol version 1):
//!   message header and control messages, TLV attributes, conntrack and
//!   expectation messages to and from [`ct_core::flow`] values, a datagram
//!   reader that classifies errors like `conntrackd -s network`, and a
//!   batching datagram writer that follows the MTU rule of 1.4.7.
//!
//! * [`proto`]: the protocols as state machines (NOTRACK, FT-FW, ALARM).
//!
//! * [`replicator`]: the daemon's logic for one lane (caches, events,
//!   received states, bulk updates, resyncs, commits) over the protocols,
//!   its I/O given through a trait.
//!
//! * [`auth`]: the optional authenticated link (an extension): an
//!   HMAC-SHA256 trailer with a 64-bit replay counter on every datagram.
//!
//! * [`snapshot`]: the external-cache snapshot of a warm restart (an
//!   extension), checked with SHA-256.

#![forbid(unsafe_code)]

pub mod auth;
pub mod proto;
pub mod replicator;
pub mod snapshot;
pub mod wire;
