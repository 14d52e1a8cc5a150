//! Netlink message framing: `struct nlmsghdr` and `struct nfgenmsg` views,
//! an iterator over the messages of one datagram, and the numeric
//! constants of nfnetlink/ctnetlink.

use super::attr::{align4, Attrs};
use super::NlError;

pub const NLMSG_HDRLEN: usize = 16;
pub const NFGENMSG_LEN: usize = 4;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_ECHO: u16 = 0x8;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
pub const NFNL_SUBSYS_CTNETLINK_EXP: u16 = 2;

pub const IPCTNL_MSG_CT_NEW: u16 = 0;
pub const IPCTNL_MSG_CT_GET: u16 = 1;
pub const IPCTNL_MSG_CT_DELETE: u16 = 2;
pub const IPCTNL_MSG_CT_GET_CTRZERO: u16 = 3;
pub const IPCTNL_MSG_CT_GET_STATS_CPU: u16 = 4;
pub const IPCTNL_MSG_CT_GET_STATS: u16 = 5;
pub const IPCTNL_MSG_CT_GET_DYING: u16 = 6;
pub const IPCTNL_MSG_CT_GET_UNCONFIRMED: u16 = 7;

pub const IPCTNL_MSG_EXP_NEW: u16 = 0;
pub const IPCTNL_MSG_EXP_GET: u16 = 1;
pub const IPCTNL_MSG_EXP_DELETE: u16 = 2;
pub const IPCTNL_MSG_EXP_GET_STATS_CPU: u16 = 3;

/// Multicast groups (legacy bind bitmask is `1 << (group - 1)`).
pub const NFNLGRP_CONNTRACK_NEW: u32 = 1;
pub const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
pub const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;
pub const NFNLGRP_CONNTRACK_EXP_NEW: u32 = 4;
pub const NFNLGRP_CONNTRACK_EXP_UPDATE: u32 = 5;
pub const NFNLGRP_CONNTRACK_EXP_DESTROY: u32 = 6;

/// Message type of a ctnetlink message of `subsys`.
pub const fn msg_type(subsys: u16, msg: u16) -> u16 {
    (subsys << 8) | msg
}

/// A view of one netlink message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub len: u32,
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// Everything after the nlmsghdr (nfgenmsg + attributes for nfnetlink).
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    pub fn subsys(&self) -> u16 {
        self.ty >> 8
    }
    pub fn msg(&self) -> u16 {
        self.ty & 0xff
    }

    /// For NLMSG_ERROR: the (positive) errno, 0 for an ACK.
    pub fn error_code(&self) -> Result<i32, NlError> {
        if self.payload.len() < 4 {
            return Err(NlError::Truncated("nlmsgerr"));
        }
        let e = i32::from_ne_bytes([
            self.payload[0],
            self.payload[1],
            self.payload[2],
            self.payload[3],
        ]);
        Ok(e.wrapping_neg())
    }

    /// The nfgenmsg header and the attributes behind it.
    pub fn nfgen(&self) -> Result<(NfGenMsg, Attrs<'a>), NlError> {
        if self.payload.len() < NFGENMSG_LEN {
            return Err(NlError::Truncated("nfgenmsg"));
        }
        let g = NfGenMsg {
            family: self.payload[0],
            version: self.payload[1],
            res_id: u16::from_be_bytes([self.payload[2], self.payload[3]]),
        };
        Ok((g, Attrs::new(&self.payload[NFGENMSG_LEN..])))
    }
}

/// `struct nfgenmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NfGenMsg {
    pub family: u8,
    pub version: u8,
    pub res_id: u16,
}

/// Iterator over the messages of one datagram.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Messages<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Messages { buf, failed: false }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, NlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let b = self.buf;
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        if (len as usize) < NLMSG_HDRLEN || len as usize > b.len() {
            self.failed = true;
            return Some(Err(NlError::BadMsgLen {
                len: len as usize,
                left: b.len(),
            }));
        }
        let m = Message {
            len,
            ty: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            pid: u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
            payload: &b[NLMSG_HDRLEN..len as usize],
        };
        let next = align4(len as usize).min(b.len());
        self.buf = &b[next..];
        Some(Ok(m))
    }
}
