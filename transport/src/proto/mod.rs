//! The sync protocols as state machines without I/O: they take local
//! cache changes, received datagrams and timer ticks (with the time passed
//! in), and produce datagrams to send (through a callback) and changes to
//! apply to the external cache.
//!
//! * [`seq`]: sequence numbers (serial arithmetic, the sender's counter,
//!   the receiver's gap/duplicate statistics of `-s network`).
//! * [`notrack`]: NOTRACK, best effort.
//! * [`alarm`]: ALARM, periodic refresh without control traffic.

pub mod alarm;
pub mod ftfw;
mod ftfw_queues;
pub mod notrack;
pub mod seq;
