//! The 8-byte message header (`struct nethdr`) and the 16-byte control
//! form (`struct nethdr_ack`), as a zero-copy view ([`Header`]) and as
//! plain values ([`MsgType`], [`Flags`], [`ControlRepr`]).
//!
//! ```text
//!  0        1        2        4                8        12       16
//! +--------+--------+--------+----------------+--------+--------+
//! |ver|type| flags  |  len   |      seq       |  from  |   to   |  (from/to: ACK, NACK, RESYNC)
//! +--------+--------+--------+----------------+--------+--------+
//! ```
//! Byte 0 is `(version << 4) | type`: the version is the HIGH nibble
//! (trap 3). `len` (be16) counts the whole message: header, attributes and
//! their padding. `seq`, `from` and `to` are be32.

use super::error::{EmitError, RecvError};

mod field {
    pub const VER_TYPE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const LEN: core::ops::Range<usize> = 2..4;
    pub const SEQ: core::ops::Range<usize> = 4..8;
    pub const FROM: core::ops::Range<usize> = 8..12;
    pub const TO: core::ops::Range<usize> = 12..16;
}

/// `NETHDR_SIZ`.
pub const HEADER_LEN: usize = 8;
/// `NETHDR_ACK_SIZ`: header plus `from` and `to`.
pub const CONTROL_LEN: usize = 16;
/// `CONNTRACKD_PROTOCOL_VERSION`.
pub const VERSION: u8 = 1;

/// The message type (low nibble of byte 0). Values other than the
/// constants can be received and are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgType(pub u8);

impl MsgType {
    pub const CT_NEW: MsgType = MsgType(0);
    pub const CT_UPD: MsgType = MsgType(1);
    pub const CT_DEL: MsgType = MsgType(2);
    pub const EXP_NEW: MsgType = MsgType(3);
    pub const EXP_UPD: MsgType = MsgType(4);
    pub const EXP_DEL: MsgType = MsgType(5);
    /// `NET_T_CTL`.
    pub const CTL: MsgType = MsgType(10);
    /// `NET_T_STATE_MAX`: the highest data type.
    pub const STATE_MAX: u8 = 5;

    /// The conntrack message type of an operation (a withdrawal is a
    /// DEL).
    pub const fn ct(op: Op) -> MsgType {
        MsgType(op.wire())
    }
    /// The expectation message type of an operation.
    pub const fn exp(op: Op) -> MsgType {
        MsgType(op.wire() + 3)
    }
    /// A conntrack type (0–2).
    pub const fn is_ct(self) -> bool {
        self.0 <= 2
    }
    /// An expectation type (3–5).
    pub const fn is_exp(self) -> bool {
        self.0 >= 3 && self.0 <= Self::STATE_MAX
    }
    /// NEW / UPD / DEL of a data type.
    pub const fn op(self) -> Option<Op> {
        match self.0 {
            0 | 3 => Some(Op::New),
            1 | 4 => Some(Op::Update),
            2 | 5 => Some(Op::Delete),
            _ => None,
        }
    }
}

/// What a data message does to the receiver's external cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    New = 0,
    Update = 1,
    Delete = 2,
    /// Ours: the flow went to another lane of the sender (their count
    /// changed), which sends its state on its own channel. The receiver
    /// drops what this channel gave it (its lane's external cache) but
    /// does not delete the flow from its kernel (DisableExternalCache),
    /// where the other channel's state may already be. On the wire a DEL
    /// whose status has `IPS_TEMPLATE` (see
    /// [`WITHDRAWN_STATUS`](crate::wire::ct::WITHDRAWN_STATUS)): a bit no
    /// entry of a conntrack table carries, which conntrackd 1.4.x ignores
    /// in a DEL (a 1.4.x node that hears one deletes the flow, as it would
    /// have before withdrawals).
    Withdraw = 3,
}

impl Op {
    /// The operation's part of the message type (0 to 2).
    pub const fn wire(self) -> u8 {
        match self {
            Op::New => 0,
            Op::Update => 1,
            Op::Delete | Op::Withdraw => 2,
        }
    }

    /// What a message's removal means: `Delete` or `Withdraw`.
    pub const fn removes(self) -> bool {
        matches!(self, Op::Delete | Op::Withdraw)
    }
}

/// The header flags (byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// `NET_F_UNUSED`.
    pub const UNUSED: Flags = Flags(0x01);
    /// "Send me a bulk update" (16-byte form, from = to = 0).
    pub const RESYNC: Flags = Flags(0x02);
    /// Retransmit the range `[from, to]`.
    pub const NACK: Flags = Flags(0x04);
    /// The range `[from, to]` was received.
    pub const ACK: Flags = Flags(0x08);
    /// Keep-alive.
    pub const ALIVE: Flags = Flags(0x10);
    /// The sender (re)started (FT-FW handshake); may ride on any message.
    pub const HELLO: Flags = Flags(0x20);
    /// Answer to a HELLO; may ride on any message.
    pub const HELLO_BACK: Flags = Flags(0x40);

    /// All bits of `other` are set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Any bit of `other` is set.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

/// True when a message of this type and flags uses the 16-byte form
/// (`IS_ACK || IS_NACK || IS_RESYNC`: a control message with ACK, NACK or
/// RESYNC).
pub const fn has_range(ty: MsgType, flags: Flags) -> bool {
    ty.0 == MsgType::CTL.0 && flags.intersects(Flags(0x02 | 0x04 | 0x08))
}

/// The generic classification of a received header (upstream-facts §4.1,
/// evaluated in this order). Each sync mode then decides what it accepts:
/// NOTRACK treats ACK and NACK as BAD, ALARM treats every message with
/// flags as control and everything else as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Type ≤ 5 and no flags but HELLO / HELLO_BACK.
    Data,
    Ack,
    Nack,
    Resync,
    Alive,
    /// None of the above ("Malformed header").
    Bad,
}

impl Kind {
    /// Classifies a header.
    pub const fn of(ty: MsgType, flags: Flags) -> Kind {
        let hello = Flags::HELLO.0 | Flags::HELLO_BACK.0;
        if ty.0 <= MsgType::STATE_MAX && flags.0 & !hello == 0 {
            Kind::Data
        } else if ty.0 != MsgType::CTL.0 {
            Kind::Bad
        } else if flags.contains(Flags::ACK) {
            Kind::Ack
        } else if flags.contains(Flags::NACK) {
            Kind::Nack
        } else if flags.contains(Flags::RESYNC) {
            Kind::Resync
        } else if flags.contains(Flags::ALIVE) {
            Kind::Alive
        } else {
            Kind::Bad
        }
    }
}

/// A read/write view of a message header over a buffer.
///
/// Accessors index the buffer directly: build the view with
/// [`new_checked`](Header::new_checked) on untrusted bytes, after which no
/// accessor can panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// Wraps a buffer and checks that it holds the whole header (16 bytes
    /// for ACK/NACK/RESYNC, else 8). The `len` field is not checked
    /// against the buffer: that is the [`Datagram`](super::Datagram)
    /// reader's job.
    pub fn new_checked(buffer: T) -> Result<Header<T>, RecvError> {
        let h = Header::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks that the buffer holds the whole header.
    pub fn check_len(&self) -> Result<(), RecvError> {
        let left = self.buffer.as_ref().len();
        if left < HEADER_LEN {
            return Err(RecvError::Truncated {
                left,
                need: HEADER_LEN,
            });
        }
        if self.has_range() && left < CONTROL_LEN {
            return Err(RecvError::Truncated {
                left,
                need: CONTROL_LEN,
            });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole underlying buffer.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Protocol version (high nibble of byte 0).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }
    /// Message type (low nibble of byte 0).
    pub fn msg_type(&self) -> MsgType {
        MsgType(self.buffer.as_ref()[field::VER_TYPE] & 0x0f)
    }
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }
    /// Total message length, header and padding included.
    pub fn len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LEN];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// True when the `len` field is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn seq(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ])
    }
    /// Whether the 16-byte form (with `from` and `to`) is used.
    pub fn has_range(&self) -> bool {
        has_range(self.msg_type(), self.flags())
    }
    /// `from` of the 16-byte form.
    pub fn from(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::FROM])
    }
    /// `to` of the 16-byte form.
    pub fn to(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::TO])
    }
    /// The generic classification of this header.
    pub fn kind(&self) -> Kind {
        Kind::of(self.msg_type(), self.flags())
    }
    /// The length of the header form this message uses (8 or 16).
    pub fn header_len(&self) -> usize {
        if self.has_range() {
            CONTROL_LEN
        } else {
            HEADER_LEN
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Sets byte 0 from a version and a type.
    pub fn set_version_type(&mut self, version: u8, ty: MsgType) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (ty.0 & 0x0f);
    }
    pub fn set_flags(&mut self, flags: Flags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }
    pub fn set_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LEN].copy_from_slice(&len.to_be_bytes());
    }
    pub fn set_seq(&mut self, seq: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&seq.to_be_bytes());
    }
    pub fn set_from(&mut self, from: u32) {
        self.buffer.as_mut()[field::FROM].copy_from_slice(&from.to_be_bytes());
    }
    pub fn set_to(&mut self, to: u32) {
        self.buffer.as_mut()[field::TO].copy_from_slice(&to.to_be_bytes());
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Writes an 8-byte header (version 1) at the start of `buf`.
pub(crate) fn emit_header(
    buf: &mut [u8],
    ty: MsgType,
    flags: Flags,
    len: u16,
    seq: u32,
) -> Result<(), EmitError> {
    let b = buf.get_mut(..HEADER_LEN).ok_or(EmitError::Exhausted)?;
    let mut h = Header::new_unchecked(b);
    h.set_version_type(VERSION, ty);
    h.set_flags(flags);
    h.set_len(len);
    h.set_seq(seq);
    Ok(())
}

/// A control message (type `NET_T_CTL`): ALIVE, ACK, NACK, RESYNC, with
/// or without HELLO / HELLO_BACK.
///
/// The wire form is chosen by the flags: with ACK, NACK or RESYNC it is
/// the 16-byte `nethdr_ack` carrying `from` and `to`; otherwise the bare
/// 8-byte header, and `from` / `to` are not sent (they parse as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ControlRepr {
    pub flags: Flags,
    pub seq: u32,
    pub from: u32,
    pub to: u32,
}

impl ControlRepr {
    /// An ACK of `[from, to]`.
    pub const fn ack(seq: u32, from: u32, to: u32) -> ControlRepr {
        ControlRepr {
            flags: Flags::ACK,
            seq,
            from,
            to,
        }
    }
    /// A NACK of `[from, to]`.
    pub const fn nack(seq: u32, from: u32, to: u32) -> ControlRepr {
        ControlRepr {
            flags: Flags::NACK,
            seq,
            from,
            to,
        }
    }
    /// A RESYNC request (from = to = 0).
    pub const fn resync(seq: u32) -> ControlRepr {
        ControlRepr {
            flags: Flags::RESYNC,
            seq,
            from: 0,
            to: 0,
        }
    }
    /// A keep-alive.
    pub const fn alive(seq: u32) -> ControlRepr {
        ControlRepr {
            flags: Flags::ALIVE,
            seq,
            from: 0,
            to: 0,
        }
    }

    /// Reads a control message from a checked header view; `None` when
    /// the type is not `NET_T_CTL`. Bytes beyond the header form are
    /// ignored (as 1.4.7 does).
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Option<ControlRepr> {
        if h.msg_type() != MsgType::CTL {
            return None;
        }
        let ranged = h.has_range();
        Some(ControlRepr {
            flags: h.flags(),
            seq: h.seq(),
            from: if ranged { h.from() } else { 0 },
            to: if ranged { h.to() } else { 0 },
        })
    }

    /// Bytes this message takes on the wire (8 or 16).
    pub const fn buffer_len(&self) -> usize {
        if has_range(MsgType::CTL, self.flags) {
            CONTROL_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the message at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let n = self.buffer_len();
        let b = buf.get_mut(..n).ok_or(EmitError::Exhausted)?;
        emit_header(b, MsgType::CTL, self.flags, n as u16, self.seq)?;
        if n == CONTROL_LEN {
            let mut h = Header::new_unchecked(b);
            h.set_from(self.from);
            h.set_to(self.to);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_high_nibble() {
        let b = [0x1a, 0x30, 0x00, 0x08, 0x6b, 0x0d, 0x45, 0x3a];
        let h = Header::new_checked(&b[..]).unwrap();
        assert_eq!(h.version(), 1);
        assert_eq!(h.msg_type(), MsgType::CTL);
        assert_eq!(h.flags(), Flags::ALIVE | Flags::HELLO);
        assert_eq!(h.len(), 8);
        assert_eq!(h.seq(), 1796031802);
        assert_eq!(h.kind(), Kind::Alive);
    }

    #[test]
    fn ranged_header_needs_16_bytes() {
        let b = [0x1a, 0x08, 0x00, 0x10, 0, 0, 0, 1, 0, 0];
        assert_eq!(
            Header::new_checked(&b[..]),
            Err(RecvError::Truncated { left: 10, need: 16 })
        );
        assert!(Header::new_checked(&b[..7]).is_err());
    }

    #[test]
    fn classification_order() {
        let k = |t, f| Kind::of(MsgType(t), Flags(f));
        assert_eq!(k(0, 0x40), Kind::Data);
        assert_eq!(k(5, 0x60), Kind::Data);
        assert_eq!(k(1, 0x08), Kind::Bad);
        assert_eq!(k(6, 0), Kind::Bad);
        assert_eq!(k(10, 0x68), Kind::Ack);
        assert_eq!(k(10, 0x0c), Kind::Ack);
        assert_eq!(k(10, 0x14), Kind::Nack);
        assert_eq!(k(10, 0x12), Kind::Resync);
        assert_eq!(k(10, 0x30), Kind::Alive);
        assert_eq!(k(10, 0x20), Kind::Bad);
    }

    #[test]
    fn control_emit() {
        let mut b = [0u8; 16];
        let c = ControlRepr {
            flags: Flags::ACK | Flags::HELLO | Flags::HELLO_BACK,
            seq: 0x6b0d453a,
            from: 0x6b0d453a,
            to: 0x6b0d453a,
        };
        assert_eq!(c.emit(&mut b), Ok(16));
        assert_eq!(
            b,
            [
                0x1a, 0x68, 0x00, 0x10, 0x6b, 0x0d, 0x45, 0x3a, 0x6b, 0x0d, 0x45, 0x3a, 0x6b, 0x0d,
                0x45, 0x3a
            ]
        );
        assert_eq!(c.emit(&mut b[..15]), Err(EmitError::Exhausted));
        let a = ControlRepr::alive(0x6b0d4667);
        assert_eq!(a.emit(&mut b), Ok(8));
        assert_eq!(b[..8], [0x1a, 0x10, 0x00, 0x08, 0x6b, 0x0d, 0x46, 0x67]);
        let h = Header::new_checked(&b[..8]).unwrap();
        assert_eq!(ControlRepr::parse(&h), Some(a));
    }
}
