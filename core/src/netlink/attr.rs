//! Netlink attribute (`struct nlattr`) views: a zero-copy iterator over a
//! run of attributes that validates every length before handing out a
//! payload, and typed accessors that check the payload size. Nothing here
//! can panic on any input.

use super::NlError;

/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_F_NET_BYTEORDER`.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// Mask of the type bits.
pub const NLA_TYPE_MASK: u16 = 0x3fff;
/// Size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;

/// Rounds up to the 4-byte netlink alignment.
#[inline]
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One attribute: its type (flags stripped) and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub ty: u16,
    pub nested: bool,
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    fn fixed<const N: usize>(&self) -> Result<[u8; N], NlError> {
        if self.payload.len() < N {
            return Err(NlError::AttrTooShort {
                ty: self.ty,
                len: self.payload.len(),
                want: N,
            });
        }
        let mut a = [0u8; N];
        a.copy_from_slice(&self.payload[..N]);
        Ok(a)
    }

    pub fn u8(&self) -> Result<u8, NlError> {
        Ok(self.fixed::<1>()?[0])
    }
    pub fn be16(&self) -> Result<u16, NlError> {
        Ok(u16::from_be_bytes(self.fixed()?))
    }
    pub fn be32(&self) -> Result<u32, NlError> {
        Ok(u32::from_be_bytes(self.fixed()?))
    }
    pub fn be64(&self) -> Result<u64, NlError> {
        Ok(u64::from_be_bytes(self.fixed()?))
    }
    pub fn ne32(&self) -> Result<u32, NlError> {
        Ok(u32::from_ne_bytes(self.fixed()?))
    }
    pub fn array<const N: usize>(&self) -> Result<[u8; N], NlError> {
        self.fixed()
    }

    /// The attributes nested in this one's payload.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }
}

/// Iterator over a run of attributes. Yields `Err` once (and then stops)
/// when an attribute header is truncated or claims more than is left.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { buf, failed: false }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, NlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        // Trailing bytes shorter than a header are padding the kernel may
        // leave at the end of a message: ignore them like libmnl does.
        if self.buf.len() < NLA_HDRLEN {
            self.buf = &[];
            return None;
        }
        let len = u16::from_ne_bytes([self.buf[0], self.buf[1]]) as usize;
        let raw_ty = u16::from_ne_bytes([self.buf[2], self.buf[3]]);
        if len < NLA_HDRLEN || len > self.buf.len() {
            self.failed = true;
            return Some(Err(NlError::BadAttrLen {
                ty: raw_ty & NLA_TYPE_MASK,
                len,
                left: self.buf.len(),
            }));
        }
        let payload = &self.buf[NLA_HDRLEN..len];
        let next = align4(len).min(self.buf.len());
        self.buf = &self.buf[next..];
        Some(Ok(Attr {
            ty: raw_ty & NLA_TYPE_MASK,
            nested: raw_ty & NLA_F_NESTED != 0,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_and_aligns() {
        // u8 attr type 1 (len 5, padded), u32 attr type 2.
        let buf = [5, 0, 1, 0, 7, 0, 0, 0, 8, 0, 2, 0x80, 0, 0, 0, 9];
        let v: Vec<_> = Attrs::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].u8().unwrap(), 7);
        assert_eq!(v[1].ty, 2);
        assert!(v[1].nested);
        assert_eq!(v[1].be32().unwrap(), 9);
    }

    #[test]
    fn rejects_overlong() {
        let buf = [40, 0, 1, 0, 7, 0, 0, 0];
        let mut it = Attrs::new(&buf);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn short_payload_is_error() {
        let buf = [5, 0, 1, 0, 7, 0, 0, 0];
        let a = Attrs::new(&buf).next().unwrap().unwrap();
        assert!(a.be32().is_err());
    }
}
