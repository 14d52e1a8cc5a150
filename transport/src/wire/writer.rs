//! Batching messages into one datagram the way conntrackd 1.4.7's
//! `channel_send` does (upstream-facts §4.4, trap 12): the channel buffer
//! holds `MTU − 28` bytes (UDP and multicast: IPv4 + UDP headers) or
//! `MTU − 40` (TCP: IPv4 + TCP headers), and a message of length L is
//! appended only while `used + L < size` — strictly less, so a datagram is
//! always at least one byte short of the limit.
//!
//! The writer never sends: when a message does not fit it is not written
//! and [`PushError::Full`] tells the caller to send
//! [`as_bytes`](DatagramWriter::as_bytes), [`clear`](DatagramWriter::clear)
//! and push the same message again (1.4.7 sends the buffer and retries the
//! append in the same way). Flushing after every transmit run is the
//! caller's business too.

use ct_core::flow::{Expect, Flow};

use super::ct::{emit_ct, EmitOpts};
use super::error::{EmitError, PushError};
use super::exp::emit_exp;
use super::header::{ControlRepr, Flags, Op};

/// The transport a channel uses, which decides the header overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP unicast or multicast: 28 bytes of IPv4 + UDP headers.
    Udp,
    /// TCP: 40 bytes of IPv4 + TCP headers.
    Tcp,
}

/// The channel buffer size of 1.4.7 for an interface MTU (0 if the MTU is
/// smaller than the headers).
pub const fn datagram_limit(mtu: usize, t: Transport) -> usize {
    let overhead = match t {
        Transport::Udp => 28,
        Transport::Tcp => 40,
    };
    mtu.saturating_sub(overhead)
}

/// Batches messages into a caller-owned buffer `B` (a `Vec<u8>`, a boxed
/// slice, `&mut [u8]`, ...). Messages are encoded in place, without
/// intermediate copies.
#[derive(Debug)]
pub struct DatagramWriter<B> {
    buf: B,
    used: usize,
    limit: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> DatagramWriter<B> {
    /// A writer whose datagrams stay strictly below `limit` bytes (see
    /// [`datagram_limit`]) and within the buffer.
    pub fn new(buf: B, limit: usize) -> DatagramWriter<B> {
        DatagramWriter {
            buf,
            used: 0,
            limit,
        }
    }

    /// The writer of a channel on an interface with this MTU.
    pub fn with_mtu(buf: B, mtu: usize, t: Transport) -> DatagramWriter<B> {
        DatagramWriter::new(buf, datagram_limit(mtu, t))
    }

    /// The channel buffer size (messages fill it to at most `limit − 1`).
    pub fn limit(&self) -> usize {
        self.limit
    }
    /// The batched messages: the datagram to send.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref().get(..self.used).unwrap_or(&[])
    }
    /// Bytes batched.
    pub fn len(&self) -> usize {
        self.used
    }
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }
    /// Forgets the batched messages (after they were sent).
    pub fn clear(&mut self) {
        self.used = 0;
    }
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// The room a new message may use: the strict `used + len < limit`
    /// rule, and the end of the buffer.
    fn room(&mut self) -> &mut [u8] {
        let end = self.limit.saturating_sub(1).min(self.buf.as_ref().len());
        let used = self.used;
        self.buf.as_mut().get_mut(used..end).unwrap_or(&mut [])
    }

    /// Encodes with `f` into the free room and commits the message if it
    /// fits.
    pub fn push_with(
        &mut self,
        f: impl FnOnce(&mut [u8]) -> Result<usize, EmitError>,
    ) -> Result<usize, PushError> {
        let was_empty = self.used == 0;
        match f(self.room()) {
            Ok(n) => {
                self.used += n;
                Ok(n)
            }
            Err(EmitError::Exhausted) if was_empty => Err(PushError::TooBig),
            Err(EmitError::Exhausted) => Err(PushError::Full),
        }
    }

    /// Appends a conntrack message.
    pub fn push_ct(
        &mut self,
        op: Op,
        flags: Flags,
        seq: u32,
        flow: &Flow,
        opts: &EmitOpts,
    ) -> Result<usize, PushError> {
        self.push_with(|b| emit_ct(b, op, flags, seq, flow, opts))
    }

    /// Appends an expectation message.
    pub fn push_exp(
        &mut self,
        op: Op,
        flags: Flags,
        seq: u32,
        exp: &Expect,
        opts: &EmitOpts,
    ) -> Result<usize, PushError> {
        self.push_with(|b| emit_exp(b, op, flags, seq, exp, opts))
    }

    /// Appends a control message.
    pub fn push_control(&mut self, c: &ControlRepr) -> Result<usize, PushError> {
        self.push_with(|b| c.emit(b))
    }

    /// Appends an already encoded message.
    pub fn push_raw(&mut self, msg: &[u8]) -> Result<usize, PushError> {
        self.push_with(|b| {
            let dst = b.get_mut(..msg.len()).ok_or(EmitError::Exhausted)?;
            dst.copy_from_slice(msg);
            Ok(msg.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_below_limit() {
        // Limit 40: two 16-byte ACKs (32) fit, an 8-byte ALIVE would make
        // 40 = limit and does not.
        let mut w = DatagramWriter::new(vec![0u8; 100], 40);
        let ack = ControlRepr::ack(1, 2, 3);
        assert_eq!(w.push_control(&ack), Ok(16));
        assert_eq!(w.push_control(&ack), Ok(16));
        assert_eq!(w.push_control(&ControlRepr::alive(4)), Err(PushError::Full));
        assert_eq!(w.len(), 32);
        w.clear();
        assert_eq!(w.push_control(&ControlRepr::alive(4)), Ok(8));
        assert_eq!(w.as_bytes(), &[0x1a, 0x10, 0, 8, 0, 0, 0, 4]);
    }

    #[test]
    fn too_big_and_small_buffers() {
        let mut w = DatagramWriter::new([0u8; 16], 16);
        assert_eq!(
            w.push_control(&ControlRepr::ack(1, 2, 3)),
            Err(PushError::TooBig)
        );
        let mut w = DatagramWriter::new([0u8; 10], 1000);
        assert_eq!(w.push_control(&ControlRepr::alive(1)), Ok(8));
        assert_eq!(w.push_control(&ControlRepr::alive(2)), Err(PushError::Full));
        assert_eq!(datagram_limit(1500, Transport::Udp), 1472);
        assert_eq!(datagram_limit(1500, Transport::Tcp), 1460);
        assert_eq!(datagram_limit(20, Transport::Tcp), 0);
    }
}
