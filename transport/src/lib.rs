//! `ct-transport`: the conntrackd sync protocol, without sockets or clocks.
//!
//! * [`wire`]: the conntrackd 1.4.x sync wire format (protocol version 1):
//!   message header and control messages, TLV attributes, conntrack and
//!   expectation messages to and from [`ct_core::flow`] values, a datagram
//!   reader that classifies errors like `conntrackd -s network`, and a
//!   batching datagram writer that follows the MTU rule of 1.4.7.
//!
//! * [`proto`]: the protocols as state machines (NOTRACK so far; FT-FW
//!   and ALARM are still to be written).

pub mod proto;
pub mod wire;
