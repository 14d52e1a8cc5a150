//! The conntrackd sync wire format (conntrack-tools 1.4.x, protocol
//! version 1), in the style of smoltcp's `wire` module: zero-copy views
//! over byte buffers, plain value types, and `emit` functions that write
//! into caller-owned buffers.
//!
//! | module | holds |
//! |---|---|
//! | [`header`] | `struct nethdr` / `nethdr_ack` view ([`Header`]), message types, flags, the receive classification ([`Kind`]), control messages ([`ControlRepr`]) |
//! | [`attr`] | `struct netattr` TLV walking with the per-type length checks of 1.4.7, and the TLV writer |
//! | [`ct`] | conntrack messages ⇄ [`ct_core::flow::Flow`] (`msg2ct` / `ct2msg`) |
//! | [`exp`] | expectation messages ⇄ [`ct_core::flow::Expect`] (`msg2exp` / `exp2msg`) |
//! | [`datagram`] | iterating the messages of a received datagram (or TCP stream buffer) |
//! | [`writer`] | [`DatagramWriter`]: batching messages up to the MTU rule of 1.4.7 |
//! | [`error`] | typed errors, and the receive counters of `conntrackd -s network` |
//!
//! # Byte order
//! Everything is big-endian except three fields that 1.4.7 byte-swaps
//! twice ([`ct::nta::ICMP_ID`], [`ct::nta::SPAT_PORT`],
//! [`ct::nta::DPAT_PORT`]): x86 senders put them on the wire
//! little-endian, and so does this codec (upstream-facts §10 trap 1).
//!
//! # No-panic contract
//! Nothing in this module panics on any input byte string:
//! [`Datagram`], [`Header::new_checked`], [`ct::parse_ct`] and
//! [`exp::parse_exp`] validate every length before reading, and the
//! `emit` functions check the space they are given and return
//! [`EmitError::Exhausted`] instead of writing past the end. The only
//! methods that can panic are the field accessors of a [`Header`] built
//! with [`Header::new_unchecked`] over a buffer that is too short — exactly
//! as in smoltcp; use [`Header::new_checked`] on untrusted input.
//!
//! Nothing here allocates: decoded flows are fixed-size `Copy` values.

pub mod attr;
pub mod ct;
pub mod datagram;
pub mod error;
pub mod exp;
pub mod header;
pub mod writer;

pub use ct::{emit_ct, parse_ct, EmitOpts, WITHDRAWN_STATUS};
pub use datagram::{Data, DataKind, Datagram, Decoded, Message};
pub use error::{EmitError, PayloadError, PushError, RecvCounters, RecvError};
pub use exp::{emit_exp, exp_withdrawn, parse_exp, EXP_WITHDRAWN_FLAG};
pub use header::{ControlRepr, Flags, Header, Kind, MsgType, Op, CONTROL_LEN, HEADER_LEN, VERSION};
pub use writer::{datagram_limit, DatagramWriter, Transport};

/// Rounds up to the 4-byte alignment of TLVs (`NTA_ALIGN`).
#[inline]
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}
