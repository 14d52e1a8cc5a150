//! TLV attributes (`struct netattr`): walking them with the checks of
//! 1.4.7's `msg2ct` / `msg2exp`, and writing them.
//!
//! ```text
//! +---------+---------+------------------+-------+
//! | nta_len | nta_attr|  payload         |  pad  |   nta_len = 4 + payload (unpadded)
//! +---------+---------+------------------+-------+   next TLV at align4(nta_len)
//! ```
//! Both header fields are be16; padding is zero. Walking stops when 4 or
//! fewer bytes are left (trailing bytes are ignored). Every TLV must have
//! `4 ≤ nta_len ≤ left`, a type below the table size, and the size the
//! table prescribes (exact for fixed-size types, a maximum for strings and
//! labels); one violation rejects the whole message (trap 2).

use super::align4;
use super::error::{EmitError, PayloadError};
use super::header::{emit_header, Flags, MsgType, HEADER_LEN};

/// Size of `struct netattr`.
pub const NTA_HDRLEN: usize = 4;

/// The receive-side size rule of one attribute type (`nta_len`, header
/// included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// `nta_len` must be exactly this.
    Exact(u16),
    /// `nta_len` must be at most this (NUL-terminated strings).
    Max(u16),
    /// NTA_LABELS: at most this, and a payload that is a non-zero
    /// multiple of 4.
    Words(u16),
}

impl Size {
    fn check(self, ty: u16, len: usize) -> Result<(), PayloadError> {
        match self {
            Size::Exact(n) if len != n as usize => Err(PayloadError::WrongSize {
                ty,
                len,
                want: n as usize,
            }),
            Size::Max(n) | Size::Words(n) if len > n as usize => Err(PayloadError::TooLong {
                ty,
                len,
                max: n as usize,
            }),
            Size::Words(_) if len == NTA_HDRLEN || (len - NTA_HDRLEN) & 3 != 0 => {
                Err(PayloadError::BadLabels(len - NTA_HDRLEN))
            }
            _ => Ok(()),
        }
    }
}

/// Walks the attributes of a message payload (the bytes after the
/// header), checking each against `sizes` (indexed by type; types at or
/// beyond its length are rejected), and calls `f(type, payload)` for each.
/// Stops at the first error; `f` may have been called for the attributes
/// before it, so callers must discard what they built on error.
pub fn walk<'a>(
    mut buf: &'a [u8],
    sizes: &[Size],
    mut f: impl FnMut(u16, &'a [u8]),
) -> Result<(), PayloadError> {
    while buf.len() > NTA_HDRLEN {
        let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
        let ty = u16::from_be_bytes([buf[2], buf[3]]);
        if len > buf.len() || len < NTA_HDRLEN {
            return Err(PayloadError::BadAttrLen {
                ty,
                len,
                left: buf.len(),
            });
        }
        let size = sizes
            .get(ty as usize)
            .ok_or(PayloadError::UnknownAttr(ty))?;
        size.check(ty, len)?;
        f(ty, &buf[NTA_HDRLEN..len]);
        // The padding of the last TLV may be missing: stop then.
        buf = buf.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(())
}

/// Writes TLVs into a slice. Running out of space is remembered and
/// reported by [`finish`](AttrWriter::finish), so emit code can write
/// attribute after attribute without checking each one.
#[derive(Debug)]
pub struct AttrWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    exhausted: bool,
}

impl<'a> AttrWriter<'a> {
    /// Writes from offset `pos` of `buf`.
    pub fn new(buf: &'a mut [u8], pos: usize) -> AttrWriter<'a> {
        let exhausted = pos > buf.len();
        AttrWriter {
            buf,
            pos,
            exhausted,
        }
    }

    /// Room for one TLV of `plen` payload bytes: writes its header and
    /// zero padding and returns the payload's bytes, or remembers that the
    /// buffer ran out.
    #[inline]
    fn slot(&mut self, ty: u16, plen: usize) -> Option<&mut [u8]> {
        let len = NTA_HDRLEN + plen;
        let end = self.pos + align4(len);
        if self.exhausted || len > u16::MAX as usize {
            self.exhausted = true;
            return None;
        }
        let Some(dst) = self.buf.get_mut(self.pos..end) else {
            self.exhausted = true;
            return None;
        };
        self.pos = end;
        dst[0..2].copy_from_slice(&(len as u16).to_be_bytes());
        dst[2..4].copy_from_slice(&ty.to_be_bytes());
        dst[len..].fill(0);
        Some(&mut dst[NTA_HDRLEN..len])
    }

    /// Appends one TLV whose payload is the concatenation of `parts`,
    /// followed by zero padding to 4 bytes.
    pub fn attr_parts(&mut self, ty: u16, parts: &[&[u8]]) {
        let plen: usize = parts.iter().map(|p| p.len()).sum();
        let Some(dst) = self.slot(ty, plen) else {
            return;
        };
        let mut at = 0;
        for p in parts {
            dst[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
    }

    /// Appends one TLV with a raw payload.
    pub fn attr(&mut self, ty: u16, payload: &[u8]) {
        self.attr_parts(ty, &[payload]);
    }

    /// Appends one TLV with a payload of a size known at compile time
    /// (the per-flow path's addresses, ports and numbers: straight
    /// stores, no loop over parts).
    #[inline]
    pub fn attr_arr<const N: usize>(&mut self, ty: u16, payload: [u8; N]) {
        if let Some(dst) = self.slot(ty, N) {
            dst.copy_from_slice(&payload);
        }
    }
    #[inline]
    pub fn u8(&mut self, ty: u16, v: u8) {
        self.attr_arr(ty, [v]);
    }
    #[inline]
    pub fn be16(&mut self, ty: u16, v: u16) {
        self.attr_arr(ty, v.to_be_bytes());
    }
    /// A u16 in the byte-swapped form 1.4.7 x86 senders use (trap 1).
    #[inline]
    pub fn le16(&mut self, ty: u16, v: u16) {
        self.attr_arr(ty, v.to_le_bytes());
    }
    #[inline]
    pub fn be32(&mut self, ty: u16, v: u32) {
        self.attr_arr(ty, v.to_be_bytes());
    }
    /// A NUL-terminated string.
    pub fn cstr(&mut self, ty: u16, s: &str) {
        self.attr_parts(ty, &[s.as_bytes(), &[0]]);
    }

    /// The offset after the last attribute written, or `Exhausted`.
    pub fn finish(self) -> Result<usize, EmitError> {
        if self.exhausted {
            Err(EmitError::Exhausted)
        } else {
            Ok(self.pos)
        }
    }
}

/// Writes a data message at the start of `buf`: the 8-byte header, then
/// whatever `body` writes; patches `len` and returns it.
pub(crate) fn emit_message(
    buf: &mut [u8],
    ty: MsgType,
    flags: Flags,
    seq: u32,
    body: impl FnOnce(&mut AttrWriter),
) -> Result<usize, EmitError> {
    let mut w = AttrWriter::new(buf, HEADER_LEN);
    body(&mut w);
    let len = w.finish()?;
    let len16 = u16::try_from(len).map_err(|_| EmitError::Exhausted)?;
    emit_header(buf, ty, flags, len16, seq)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [Size; 3] = [Size::Exact(5), Size::Max(8), Size::Words(12)];

    fn collect(b: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, PayloadError> {
        let mut v = Vec::new();
        walk(b, &SIZES, |t, p| v.push((t, p.to_vec())))?;
        Ok(v)
    }

    #[test]
    fn walks_and_ignores_short_tail() {
        let b = [
            0, 5, 0, 0, 7, 0, 0, 0, 0, 6, 0, 1, b'a', 0, 0, 0, 1, 2, 3, 4,
        ];
        assert_eq!(collect(&b).unwrap(), vec![(0, vec![7]), (1, vec![b'a', 0])]);
    }

    #[test]
    fn exact_size_enforced() {
        let b = [0, 6, 0, 0, 7, 0, 0, 0];
        assert_eq!(
            collect(&b),
            Err(PayloadError::WrongSize {
                ty: 0,
                len: 6,
                want: 5
            })
        );
    }

    #[test]
    fn unknown_type_rejects() {
        let b = [0, 5, 0, 3, 7, 0, 0, 0];
        assert_eq!(collect(&b), Err(PayloadError::UnknownAttr(3)));
    }

    #[test]
    fn bad_lengths() {
        assert!(matches!(
            collect(&[0, 3, 0, 0, 0]),
            Err(PayloadError::BadAttrLen { .. })
        ));
        assert!(matches!(
            collect(&[0, 9, 0, 1, 0, 0, 0, 0]),
            Err(PayloadError::BadAttrLen { .. })
        ));
        assert_eq!(
            collect(&[0, 10, 0, 2, 0, 0, 0, 0, 0, 0]),
            Err(PayloadError::BadLabels(6))
        );
        assert_eq!(collect(&[0, 4, 0, 2, 0]), Err(PayloadError::BadLabels(0)));
    }

    #[test]
    fn writer_pads_and_detects_overflow() {
        let mut b = [0xffu8; 16];
        let mut w = AttrWriter::new(&mut b, 0);
        w.u8(2, 6);
        w.le16(24, 0x1234);
        assert_eq!(w.finish(), Ok(16));
        assert_eq!(b[..8], [0, 5, 0, 2, 6, 0, 0, 0]);
        assert_eq!(b[8..16], [0, 6, 0, 24, 0x34, 0x12, 0, 0]);
        let mut w = AttrWriter::new(&mut b, 12);
        w.le16(24, 0x1234);
        assert_eq!(w.finish(), Err(EmitError::Exhausted));
    }

    #[test]
    fn fixed_size_attributes_write_what_the_slice_writer_writes() {
        fn both<const N: usize>(payload: [u8; N]) {
            let (mut a, mut b) = ([0xffu8; 48], [0xffu8; 48]);
            let mut wa = AttrWriter::new(&mut a, 4);
            wa.attr_arr(7, payload);
            wa.attr_arr(9, payload);
            let mut wb = AttrWriter::new(&mut b, 4);
            wb.attr(7, &payload);
            wb.attr(9, &payload);
            assert_eq!(wa.finish(), wb.finish());
            assert_eq!(a, b, "payload of {N} bytes");
        }
        both([1]);
        both([1, 2]);
        both([1, 2, 3]);
        both([1, 2, 3, 4]);
        both([9; 8]);
        both([9; 16]);
        // no room: both report it
        let mut s = [0u8; 6];
        let mut w = AttrWriter::new(&mut s, 0);
        w.attr_arr(1, [1, 2, 3]);
        assert_eq!(w.finish(), Err(EmitError::Exhausted));
    }
}
