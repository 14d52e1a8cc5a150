//! nfnetlink_cthelper (`NFNL_SUBSYS_CTHELPER`): the kernel objects behind
//! user-space connection-tracking helpers. conntrackd registers one per
//! `Helper { Type ... }` (`NFNL_MSG_CTHELPER_NEW`), as 1.4.7's
//! `cthelper_setup` does; `nfct add|delete helper` drive the same
//! messages.

use super::msg::*;
use super::writer::Writer;

/// The subsystem.
pub const NFNL_SUBSYS_CTHELPER: u16 = 9;

/// Message types.
pub const NFNL_MSG_CTHELPER_NEW: u16 = 0;
pub const NFNL_MSG_CTHELPER_GET: u16 = 1;
pub const NFNL_MSG_CTHELPER_DEL: u16 = 2;

/// `enum nfnl_cthelper_type`.
pub mod nfcth {
    pub const NAME: u16 = 1;
    pub const TUPLE: u16 = 2;
    pub const QUEUE_NUM: u16 = 3;
    pub const POLICY: u16 = 4;
    pub const PRIV_DATA_LEN: u16 = 5;
    pub const STATUS: u16 = 6;
    /// Inside TUPLE.
    pub const TUPLE_L3PROTONUM: u16 = 1;
    pub const TUPLE_L4PROTONUM: u16 = 2;
    /// Inside POLICY.
    pub const POLICY_SET_NUM: u16 = 1;
    /// POLICY_SET1 + i for the i-th policy.
    pub const POLICY_SET1: u16 = 2;
    /// Inside a policy set.
    pub const POLICY_NAME: u16 = 1;
    pub const POLICY_EXPECT_MAX: u16 = 2;
    pub const POLICY_EXPECT_TIMEOUT: u16 = 3;
}

/// `NFCT_HELPER_STATUS_ENABLED`.
pub const STATUS_ENABLED: u32 = 1;

/// One expectation policy of a helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy<'a> {
    pub name: &'a str,
    pub expect_max: u32,
    pub expect_timeout: u32,
}

/// A helper object as `NFNL_MSG_CTHELPER_NEW` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper<'a> {
    pub name: &'a str,
    /// AF_INET or AF_INET6.
    pub l3: u16,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub l4: u8,
    pub queue_num: u32,
    pub policies: &'a [Policy<'a>],
    /// Private data length (only sent when the helpers are set up).
    pub priv_data_len: Option<u32>,
    pub status: u32,
}

const fn cth(m: u16) -> u16 {
    msg_type(NFNL_SUBSYS_CTHELPER, m)
}

/// `NFNL_MSG_CTHELPER_NEW` with NLM_F_CREATE and an ACK; with `excl`,
/// NLM_F_EXCL too (an existing helper of that name and tuple is then
/// refused with EEXIST instead of updated).
pub fn helper_new(w: &mut Writer, seq: u32, h: &Helper<'_>, excl: bool) {
    let mk = w.begin_msg(
        cth(NFNL_MSG_CTHELPER_NEW),
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK | if excl { NLM_F_EXCL } else { 0 },
        seq,
        h.l3 as u8,
        0,
    );
    w.cstr(nfcth::NAME, h.name);
    let t = w.begin_nest(nfcth::TUPLE);
    w.be16(nfcth::TUPLE_L3PROTONUM, h.l3);
    w.u8(nfcth::TUPLE_L4PROTONUM, h.l4);
    w.end_nest(t);
    w.be32(nfcth::QUEUE_NUM, h.queue_num);
    let p = w.begin_nest(nfcth::POLICY);
    w.be32(nfcth::POLICY_SET_NUM, h.policies.len() as u32);
    for (i, pol) in h.policies.iter().enumerate() {
        let s = w.begin_nest(nfcth::POLICY_SET1 + i as u16);
        w.cstr(nfcth::POLICY_NAME, pol.name);
        w.be32(nfcth::POLICY_EXPECT_MAX, pol.expect_max);
        w.be32(nfcth::POLICY_EXPECT_TIMEOUT, pol.expect_timeout);
        w.end_nest(s);
    }
    w.end_nest(p);
    if let Some(n) = h.priv_data_len {
        w.be32(nfcth::PRIV_DATA_LEN, n);
    }
    w.be32(nfcth::STATUS, h.status);
    w.end_msg(mk);
}

/// `NFNL_MSG_CTHELPER_DEL` of one helper by name (with an ACK).
pub fn helper_del(w: &mut Writer, seq: u32, name: &str, l3: u16, l4: u8) {
    let mk = w.begin_msg(
        cth(NFNL_MSG_CTHELPER_DEL),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        l3 as u8,
        0,
    );
    w.cstr(nfcth::NAME, name);
    let t = w.begin_nest(nfcth::TUPLE);
    w.be16(nfcth::TUPLE_L3PROTONUM, l3);
    w.u8(nfcth::TUPLE_L4PROTONUM, l4);
    w.end_nest(t);
    w.end_msg(mk);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::msg::Messages;

    /// The request is one well-formed message of the cthelper subsystem
    /// whose attributes are where 1.4.7's libnetfilter_cthelper puts them.
    #[test]
    fn helper_new_layout() {
        let mut buf = Vec::new();
        let pols = [Policy {
            name: "ftp",
            expect_max: 1,
            expect_timeout: 300,
        }];
        helper_new(
            &mut Writer::new(&mut buf),
            7,
            &Helper {
                name: "ftp",
                l3: 2,
                l4: 6,
                queue_num: 0,
                policies: &pols,
                priv_data_len: None,
                status: STATUS_ENABLED,
            },
            true,
        );
        let msgs: Vec<_> = Messages::new(&buf).collect();
        assert_eq!(msgs.len(), 1);
        let m = msgs[0].as_ref().unwrap();
        assert_eq!(m.subsys(), NFNL_SUBSYS_CTHELPER);
        assert_eq!(m.msg(), NFNL_MSG_CTHELPER_NEW);
        assert_eq!(m.seq, 7);
        assert_eq!(m.flags & NLM_F_EXCL, NLM_F_EXCL);
        let (g, attrs) = m.nfgen().unwrap();
        assert_eq!(g.family, 2);
        let kinds: Vec<u16> = attrs.map(|a| a.unwrap().ty & 0x3fff).collect();
        assert_eq!(
            kinds,
            [
                nfcth::NAME,
                nfcth::TUPLE,
                nfcth::QUEUE_NUM,
                nfcth::POLICY,
                nfcth::STATUS
            ]
        );
        assert_eq!(buf.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize,
            buf.len()
        );
    }
}
