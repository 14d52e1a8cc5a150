//! Reading the messages of a received datagram (or of a TCP stream
//! buffer), with the checks and the error classes of 1.4.7's
//! `channel_handler_routine` / `do_channel_handler_step`
//! (upstream-facts §4.4):
//!
//! 1. fewer than 8 bytes left → [`RecvError::Truncated`], stop;
//! 2. `len` = 0 or `len` > bytes left → [`RecvError::BadSize`], stop;
//! 3. ACK/NACK/RESYNC: fewer than 16 bytes left → `Truncated`, stop;
//!    `len` < 16 → `BadSize`, stop; other messages: `len` < 8 →
//!    `BadSize`, stop;
//! 4. version ≠ 1 → [`RecvError::WrongVersion`], skip to the next message.
//!
//! The remaining classes belong to the receiving mode, which first
//! classifies the header (see [`Kind`]): [`Message::data`] yields
//! [`RecvError::BadType`] and [`RecvError::MalformedPayload`], and
//! [`Message::decode`] applies the generic classification
//! ([`RecvError::MalformedHeader`] for [`Kind::Bad`]).
//!
//! In stream mode ([`Datagram::stream`], for TCP) a message cut off at the
//! end of the buffer is not an error: iteration stops and
//! [`Datagram::consumed`] says how much of the buffer to drop; the rest is
//! kept for the next read.

use ct_core::flow::{Expect, Flow};

use super::ct::parse_ct;
use super::error::RecvError;
use super::exp::parse_exp;
use super::header::VERSION;
use super::header::{ControlRepr, Flags, Header, Kind, MsgType, Op, CONTROL_LEN, HEADER_LEN};

/// Iterator over the messages of a received buffer. Yields at most one
/// framing error, after which it stops; version errors are yielded and
/// iteration goes on.
#[derive(Debug, Clone)]
pub struct Datagram<'a> {
    buf: &'a [u8],
    pos: usize,
    stream: bool,
    done: bool,
}

impl<'a> Datagram<'a> {
    /// A UDP datagram: every byte must belong to a complete message.
    pub fn new(buf: &'a [u8]) -> Datagram<'a> {
        Datagram {
            buf,
            pos: 0,
            stream: false,
            done: false,
        }
    }

    /// A TCP stream buffer: a partial message at the end is left for later.
    pub fn stream(buf: &'a [u8]) -> Datagram<'a> {
        Datagram {
            stream: true,
            ..Datagram::new(buf)
        }
    }

    /// Bytes consumed by the messages (and version errors) yielded so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    fn stop(&mut self, e: RecvError, partial: bool) -> Option<Result<Message<'a>, RecvError>> {
        self.done = true;
        if self.stream && partial {
            None
        } else {
            Some(Err(e))
        }
    }
}

impl<'a> Iterator for Datagram<'a> {
    type Item = Result<Message<'a>, RecvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let left = self.rest();
        if left.is_empty() {
            self.done = true;
            return None;
        }
        let n = left.len();
        if n < HEADER_LEN {
            let e = RecvError::Truncated {
                left: n,
                need: HEADER_LEN,
            };
            return self.stop(e, true);
        }
        let h = Header::new_unchecked(left);
        let len = h.len() as usize;
        if len == 0 {
            return self.stop(RecvError::BadSize { len, left: n }, false);
        }
        if len > n {
            return self.stop(RecvError::BadSize { len, left: n }, true);
        }
        let min = h.header_len();
        if min == CONTROL_LEN && n < CONTROL_LEN {
            let e = RecvError::Truncated {
                left: n,
                need: CONTROL_LEN,
            };
            return self.stop(e, true);
        }
        if len < min {
            return self.stop(RecvError::BadSize { len, left: n }, false);
        }
        self.pos += len;
        let msg = Message {
            hdr: Header::new_unchecked(&left[..len]),
        };
        if msg.hdr.version() != VERSION {
            return Some(Err(RecvError::WrongVersion(msg.hdr.version())));
        }
        Some(Ok(msg))
    }
}

/// One framed message of a received buffer: `len` bytes (at least its
/// header form), version 1. All accessors are infallible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    hdr: Header<&'a [u8]>,
}

/// The payload of a data message.
///
/// Flows are large `Copy` values; they are returned by value (not boxed)
/// so that decoding never allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Ct(Op, Flow),
    Exp(Op, Expect),
}

/// What [`Message::data_into`] decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    Ct(Op),
    Exp(Op),
}

/// A message after the generic classification.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A conntrack or expectation message (HELLO / HELLO_BACK may be set in
    /// the header flags).
    Data(Data),
    /// A control message (ACK, NACK, RESYNC or ALIVE).
    Control(ControlRepr),
}

impl<'a> Message<'a> {
    /// Frames the first message of `buf` (the first item of
    /// [`Datagram::new`]).
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, RecvError> {
        Datagram::new(buf)
            .next()
            .unwrap_or(Err(RecvError::Truncated {
                left: 0,
                need: HEADER_LEN,
            }))
    }

    /// The header view (over exactly this message's bytes).
    pub fn header(&self) -> Header<&'a [u8]> {
        self.hdr
    }
    /// The message's bytes (`len` of them).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.hdr.into_inner()
    }
    pub fn msg_type(&self) -> MsgType {
        self.hdr.msg_type()
    }
    pub fn flags(&self) -> Flags {
        self.hdr.flags()
    }
    pub fn seq(&self) -> u32 {
        self.hdr.seq()
    }
    /// The generic classification (§4.1).
    pub fn kind(&self) -> Kind {
        self.hdr.kind()
    }
    /// The bytes after the 8-byte header (the TLVs of a data message).
    pub fn attrs(&self) -> &'a [u8] {
        self.as_bytes().get(HEADER_LEN..).unwrap_or(&[])
    }
    /// The message as a control message; `None` unless its type is CTL.
    pub fn control(&self) -> Option<ControlRepr> {
        ControlRepr::parse(&self.hdr)
    }

    /// A data message's operation (its type's).
    fn op(&self) -> Result<Op, RecvError> {
        let ty = self.msg_type();
        ty.op().ok_or(RecvError::BadType(ty.0))
    }

    /// Decodes the message as data, for a mode that classified it DATA:
    /// a type above 5 is [`RecvError::BadType`], an attribute error
    /// [`RecvError::MalformedPayload`].
    pub fn data(&self) -> Result<Data, RecvError> {
        let op = self.op()?;
        let ty = self.msg_type();
        if ty.is_ct() {
            let mut f = parse_ct(self.attrs())?;
            Ok(Data::Ct(super::ct::withdrawn(op, &mut f), f))
        } else {
            let mut e = parse_exp(self.attrs())?;
            Ok(Data::Exp(super::exp::exp_withdrawn(op, &mut e), e))
        }
    }

    /// [`data`](Message::data) into a flow or an expectation the caller
    /// reuses: which one was written, and its operation.
    pub fn data_into(&self, flow: &mut Flow, exp: &mut Expect) -> Result<DataKind, RecvError> {
        let op = self.op()?;
        let ty = self.msg_type();
        if ty.is_ct() {
            super::ct::parse_ct_into(self.attrs(), flow)?;
            Ok(DataKind::Ct(super::ct::withdrawn(op, flow)))
        } else {
            *exp = parse_exp(self.attrs())?;
            Ok(DataKind::Exp(super::exp::exp_withdrawn(op, exp)))
        }
    }

    /// Decodes with the generic classification: [`Kind::Bad`] is
    /// [`RecvError::MalformedHeader`], data is decoded with
    /// [`data`](Message::data), control messages are returned as they are.
    pub fn decode(&self) -> Result<Decoded, RecvError> {
        match self.kind() {
            Kind::Data => Ok(Decoded::Data(self.data()?)),
            Kind::Bad => Err(RecvError::MalformedHeader {
                ty: self.msg_type().0,
                flags: self.flags().0,
            }),
            _ => Ok(Decoded::Control(self.control().unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(b: &[u8]) -> Vec<Result<u32, RecvError>> {
        Datagram::new(b).map(|r| r.map(|m| m.seq())).collect()
    }

    const ALIVE: [u8; 8] = [0x1a, 0x10, 0, 8, 0, 0, 0, 1];

    #[test]
    fn framing_errors_stop() {
        let mut b = ALIVE.to_vec();
        b.extend_from_slice(&[0x1a, 0x10, 0, 8, 0]);
        assert_eq!(
            errs(&b),
            vec![Ok(1), Err(RecvError::Truncated { left: 5, need: 8 })]
        );
        let mut b = ALIVE.to_vec();
        b.extend_from_slice(&[0x1a, 0x10, 0, 0, 0, 0, 0, 2]);
        b.extend_from_slice(&ALIVE);
        assert_eq!(
            errs(&b),
            vec![Ok(1), Err(RecvError::BadSize { len: 0, left: 16 })]
        );
        assert_eq!(
            errs(&[0x1a, 0x10, 0, 9, 0, 0, 0, 1]),
            vec![Err(RecvError::BadSize { len: 9, left: 8 })]
        );
        assert_eq!(
            errs(&[0x1a, 0x10, 0, 7, 0, 0, 0, 1]),
            vec![Err(RecvError::BadSize { len: 7, left: 8 })]
        );
        // ACK announced with 8 bytes only.
        assert_eq!(
            errs(&[0x1a, 0x08, 0, 8, 0, 0, 0, 1, 0, 0]),
            vec![Err(RecvError::Truncated { left: 10, need: 16 })]
        );
        let mut b = vec![0x1a, 0x08, 0, 8, 0, 0, 0, 1];
        b.extend_from_slice(&[0; 8]);
        assert_eq!(errs(&b), vec![Err(RecvError::BadSize { len: 8, left: 16 })]);
    }

    #[test]
    fn wrong_version_skips_one() {
        let mut b = vec![0x2a, 0x10, 0, 8, 0, 0, 0, 9];
        b.extend_from_slice(&ALIVE);
        assert_eq!(errs(&b), vec![Err(RecvError::WrongVersion(2)), Ok(1)]);
    }

    #[test]
    fn stream_keeps_partial() {
        let mut b = ALIVE.to_vec();
        b.extend_from_slice(&[0x1a, 0x08, 0, 16, 0, 0, 0, 2, 0]);
        let mut d = Datagram::stream(&b);
        assert_eq!(d.next().map(|r| r.map(|m| m.seq())), Some(Ok(1)));
        assert!(d.next().is_none());
        assert_eq!(d.consumed(), 8);
        assert_eq!(d.rest().len(), 9);
    }

    #[test]
    fn classification_errors() {
        let m = Message::parse(&[0x1a, 0x20, 0, 8, 0, 0, 0, 1]).unwrap();
        assert_eq!(
            m.decode(),
            Err(RecvError::MalformedHeader {
                ty: 10,
                flags: 0x20
            })
        );
        let m = Message::parse(&[0x1a, 0x00, 0, 8, 0, 0, 0, 1]).unwrap();
        assert_eq!(m.data(), Err(RecvError::BadType(10)));
        let m = Message::parse(&[0x10, 0, 0, 16, 0, 0, 0, 1, 0, 8, 0, 33, 0, 0, 0, 0]).unwrap();
        assert!(matches!(m.decode(), Err(RecvError::MalformedPayload(_))));
    }
}
