//! Building netlink messages into a caller-owned, reused `Vec<u8>`: a
//! message (nlmsghdr + nfgenmsg) is opened, attributes and nests are
//! appended, and lengths are patched when the message or nest is closed.
//! Many messages can be batched into one buffer and sent with one syscall.

use super::attr::{align4, NLA_F_NESTED, NLA_HDRLEN};
use super::msg::{NFGENMSG_LEN, NLMSG_HDRLEN};

/// Writes netlink messages into a buffer it borrows.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
}

/// Marks an open message; pass it back to [`Writer::end_msg`].
#[must_use]
#[derive(Debug, Clone, Copy)]
pub struct MsgMark(usize);

/// Marks an open nest; pass it back to [`Writer::end_nest`].
#[must_use]
#[derive(Debug, Clone, Copy)]
pub struct NestMark(usize);

impl<'b> Writer<'b> {
    /// Appends to `buf` (whatever it holds already stays: batching).
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        Writer { buf }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn pad(&mut self) {
        let n = align4(self.buf.len()) - self.buf.len();
        self.buf.extend_from_slice(&[0u8; 4][..n]);
    }

    /// Opens a message with an nfgenmsg header.
    pub fn begin_msg(&mut self, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> MsgMark {
        self.pad();
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        debug_assert_eq!(self.buf.len() - start, NLMSG_HDRLEN + NFGENMSG_LEN);
        MsgMark(start)
    }

    /// Closes a message: pads it and writes its length.
    pub fn end_msg(&mut self, m: MsgMark) {
        self.pad();
        let len = (self.buf.len() - m.0) as u32;
        self.buf[m.0..m.0 + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends an attribute with a raw payload.
    pub fn bytes(&mut self, ty: u16, payload: &[u8]) {
        self.pad();
        let len = (NLA_HDRLEN + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
    }

    pub fn u8(&mut self, ty: u16, v: u8) {
        self.bytes(ty, &[v]);
    }
    pub fn be16(&mut self, ty: u16, v: u16) {
        self.bytes(ty, &v.to_be_bytes());
    }
    pub fn be32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_be_bytes());
    }
    pub fn be64(&mut self, ty: u16, v: u64) {
        self.bytes(ty, &v.to_be_bytes());
    }
    /// A NUL-terminated string attribute.
    pub fn cstr(&mut self, ty: u16, s: &str) {
        self.pad();
        let len = (NLA_HDRLEN + s.len() + 1) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// Opens a nested attribute (NLA_F_NESTED is set, as libmnl does).
    pub fn begin_nest(&mut self, ty: u16) -> NestMark {
        self.pad();
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        NestMark(start)
    }

    /// Closes a nested attribute. Its length counts the last attribute's
    /// padding, as libmnl's `mnl_attr_nest_end` does (the kernel reads
    /// either; 1.4.7's requests are matched byte for byte).
    pub fn end_nest(&mut self, n: NestMark) {
        self.pad();
        let len = (self.buf.len() - n.0) as u16;
        self.buf[n.0..n.0 + 2].copy_from_slice(&len.to_ne_bytes());
    }
}
