//! Errors of the sync wire codec, and the receive-side error counters of
//! `conntrackd -s network` ([`RecvCounters`]).
//!
//! [`RecvError`] has one variant per counter of 1.4.7
//! (`network statistics: recv:`); every one of them also counts as a
//! "Malformed message". [`RecvError::stops_datagram`] says whether the rest
//! of the buffer is abandoned (framing errors) or processing continues
//! with the next message (everything else), as `channel_handler_routine`
//! does.

/// Why the TLV payload of a data message was rejected (1.4.7 rejects the
/// WHOLE message for any of these: "Malformed payload").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// `nta_len` < 4 or larger than what is left of the message.
    #[error("attribute {ty} length {len} invalid ({left} bytes left)")]
    BadAttrLen { ty: u16, len: usize, left: usize },
    /// An attribute type this message kind does not define (fatal, not
    /// skipped).
    #[error("unknown attribute type {0}")]
    UnknownAttr(u16),
    /// A fixed-size attribute whose `nta_len` is not exactly `want`.
    #[error("attribute {ty} length {len}, want exactly {want}")]
    WrongSize { ty: u16, len: usize, want: usize },
    /// A variable-size attribute whose `nta_len` exceeds `max`.
    #[error("attribute {ty} length {len}, at most {max}")]
    TooLong { ty: u16, len: usize, max: usize },
    /// NTA_LABELS whose payload is empty or not a multiple of 4 bytes.
    #[error("labels attribute payload of {0} bytes")]
    BadLabels(usize),
}

/// A receive-side error, one variant per `conntrackd -s network` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Fewer bytes left than a header (8, or 16 for ACK/NACK/RESYNC):
    /// "Truncated message". Stops the datagram.
    #[error("truncated message: {left} bytes left, need {need}")]
    Truncated { left: usize, need: usize },
    /// `len` is 0, shorter than its header, or longer than what is left:
    /// "Bad message size". Stops the datagram.
    #[error("bad message size {len} ({left} bytes left)")]
    BadSize { len: usize, left: usize },
    /// Version nibble ≠ 1: "Wrong protocol version". The message is
    /// skipped.
    #[error("wrong protocol version {0}")]
    WrongVersion(u8),
    /// The receiving mode classified the header as BAD: "Malformed
    /// header". The message is skipped.
    #[error("malformed header (type {ty}, flags {flags:#04x})")]
    MalformedHeader { ty: u8, flags: u8 },
    /// A data message whose type is not a conntrack or expectation type:
    /// "Bad message type". The message is skipped.
    #[error("bad message type {0}")]
    BadType(u8),
    /// The attributes did not parse: "Malformed payload". The message is
    /// skipped.
    #[error("malformed payload: {0}")]
    MalformedPayload(#[from] PayloadError),
}

impl RecvError {
    /// True for the framing errors after which 1.4.7 abandons the rest of
    /// the received buffer.
    pub fn stops_datagram(&self) -> bool {
        matches!(
            self,
            RecvError::Truncated { .. } | RecvError::BadSize { .. }
        )
    }
}

/// The `recv:` block of `conntrackd -s network`. Field widths follow the
/// C counters (`malformed` is 64-bit, the others 32-bit and wrap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvCounters {
    /// "Malformed messages": the sum of all the others.
    pub malformed: u64,
    /// "Wrong protocol version".
    pub bad_version: u32,
    /// "Malformed header".
    pub bad_header: u32,
    /// "Malformed payload".
    pub bad_payload: u32,
    /// "Bad message type".
    pub bad_type: u32,
    /// "Truncated message".
    pub truncated: u32,
    /// "Bad message size".
    pub bad_size: u32,
}

impl RecvCounters {
    /// Counts one error the way 1.4.7 does (its own counter and
    /// "Malformed messages").
    pub fn record(&mut self, e: &RecvError) {
        self.malformed = self.malformed.wrapping_add(1);
        let c = match e {
            RecvError::Truncated { .. } => &mut self.truncated,
            RecvError::BadSize { .. } => &mut self.bad_size,
            RecvError::WrongVersion(_) => &mut self.bad_version,
            RecvError::MalformedHeader { .. } => &mut self.bad_header,
            RecvError::BadType(_) => &mut self.bad_type,
            RecvError::MalformedPayload(_) => &mut self.bad_payload,
        };
        *c = c.wrapping_add(1);
    }
}

/// Why a message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The buffer is too small for the message (nothing useful was
    /// written; the buffer content past its old end is unspecified).
    #[error("buffer too small for the message")]
    Exhausted,
}

/// Why [`DatagramWriter`](super::DatagramWriter) did not append a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The message does not fit behind the messages already batched: send
    /// the datagram, [`clear`](super::DatagramWriter::clear) the writer
    /// and push the message again.
    #[error("datagram full")]
    Full,
    /// The message does not fit even in an empty datagram.
    #[error("message larger than a datagram")]
    TooBig,
}
