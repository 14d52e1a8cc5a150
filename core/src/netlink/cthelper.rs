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

/// The longest helper name the kernel keeps (`NF_CT_HELPER_NAME_LEN` is
/// 16 with the NUL); nfct cuts longer ones.
pub const NAME_MAX: usize = 15;

/// A helper conntrack-tools 1.4.7 ships as user-space code, which `nfct
/// add helper` registers with the kernel: name, the L4 protocols it
/// serves, its private data length and its one expectation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub l4: &'static [u8],
    pub priv_data_len: u32,
    pub expect_max: u32,
    pub expect_timeout: u32,
}

/// The helpers of conntrack-tools 1.4.7 (`src/helpers/`).
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "amanda",
        l4: &[17],
        priv_data_len: 0,
        expect_max: 3,
        expect_timeout: 180,
    },
    Builtin {
        name: "dhcpv6",
        l4: &[17],
        priv_data_len: 0,
        expect_max: 1,
        expect_timeout: 300,
    },
    Builtin {
        name: "ftp",
        l4: &[6],
        priv_data_len: 24,
        expect_max: 1,
        expect_timeout: 300,
    },
    Builtin {
        name: "mdns",
        l4: &[17],
        priv_data_len: 0,
        expect_max: 8,
        expect_timeout: 30,
    },
    Builtin {
        name: "rpc",
        l4: &[6, 17],
        priv_data_len: 16,
        expect_max: 1,
        expect_timeout: 300,
    },
    Builtin {
        name: "sane",
        l4: &[6],
        priv_data_len: 4,
        expect_max: 1,
        expect_timeout: 300,
    },
    Builtin {
        name: "slp",
        l4: &[17],
        priv_data_len: 0,
        expect_max: 8,
        expect_timeout: 16,
    },
    Builtin {
        name: "ssdp",
        l4: &[17, 6],
        priv_data_len: 0,
        expect_max: 8,
        expect_timeout: 300,
    },
    Builtin {
        name: "tftp",
        l4: &[17],
        priv_data_len: 0,
        expect_max: 1,
        expect_timeout: 300,
    },
    Builtin {
        name: "tns",
        l4: &[6],
        priv_data_len: 1,
        expect_max: 1,
        expect_timeout: 300,
    },
];

/// The built-in helper `name` (exact) for `l4`.
pub fn builtin(name: &str, l4: u8) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|b| b.name == name && b.l4.contains(&l4))
}

/// What an `nfct ... helper` request carries (the layout of 1.4.7's nfct
/// through libnetfilter_cthelper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfctRequest<'a> {
    List,
    Flush,
    /// By name, optionally with the family and (else 0) protocol.
    Get(&'a str, Option<(u16, u8)>),
    Delete(&'a str, Option<(u16, u8)>),
    /// Register a built-in helper for a family and protocol.
    Add(&'a Builtin, u16, u8),
    /// Set a helper's status to disabled.
    Disable(&'a str, u16, u8),
}

fn cut(name: &str) -> &str {
    let mut end = name.len().min(NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn tuple(w: &mut Writer, l3: u16, l4: u8) {
    let t = w.begin_nest(nfcth::TUPLE);
    w.be16(nfcth::TUPLE_L3PROTONUM, l3);
    w.u8(nfcth::TUPLE_L4PROTONUM, l4);
    w.end_nest(t);
}

/// Writes an nfct helper request as one message.
pub fn emit_nfct(w: &mut Writer, seq: u32, req: &NfctRequest<'_>) {
    let (ty, flags) = match req {
        NfctRequest::List => (NFNL_MSG_CTHELPER_GET, NLM_F_DUMP),
        NfctRequest::Get(..) => (NFNL_MSG_CTHELPER_GET, NLM_F_ACK),
        NfctRequest::Flush | NfctRequest::Delete(..) => (NFNL_MSG_CTHELPER_DEL, NLM_F_ACK),
        NfctRequest::Add(..) | NfctRequest::Disable(..) => {
            (NFNL_MSG_CTHELPER_NEW, NLM_F_CREATE | NLM_F_ACK)
        }
    };
    let m = w.begin_msg(cth(ty), NLM_F_REQUEST | flags, seq, 0, 0);
    match *req {
        NfctRequest::List | NfctRequest::Flush => {}
        NfctRequest::Get(name, t) | NfctRequest::Delete(name, t) => {
            w.cstr(nfcth::NAME, cut(name));
            if let Some((l3, l4)) = t {
                tuple(w, l3, l4);
            }
        }
        NfctRequest::Add(b, l3, l4) => {
            w.cstr(nfcth::NAME, b.name);
            w.be32(nfcth::PRIV_DATA_LEN, b.priv_data_len);
            tuple(w, l3, l4);
            let p = w.begin_nest(nfcth::POLICY);
            let s = w.begin_nest(nfcth::POLICY_SET1);
            w.cstr(nfcth::POLICY_NAME, b.name);
            w.be32(nfcth::POLICY_EXPECT_MAX, b.expect_max);
            w.be32(nfcth::POLICY_EXPECT_TIMEOUT, b.expect_timeout);
            w.end_nest(s);
            w.be32(nfcth::POLICY_SET_NUM, 1);
            w.end_nest(p);
        }
        NfctRequest::Disable(name, l3, l4) => {
            w.cstr(nfcth::NAME, cut(name));
            tuple(w, l3, l4);
            w.be32(nfcth::STATUS, 0);
        }
    }
    w.end_msg(m);
}

/// A helper object as the kernel reports it (`NFNL_MSG_CTHELPER_NEW` in a
/// GET reply), decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelperObj {
    pub name: String,
    pub queue_num: u32,
    pub l3: u16,
    pub l4: u8,
    pub priv_data_len: u32,
    pub status: u32,
}

impl HelperObj {
    /// Decodes the attributes of a helper message.
    pub fn parse(attrs: super::attr::Attrs<'_>) -> Result<HelperObj, super::NlError> {
        let mut h = HelperObj::default();
        for a in attrs {
            let a = a?;
            match a.ty {
                nfcth::NAME => {
                    let end = a
                        .payload
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(a.payload.len());
                    h.name = String::from_utf8_lossy(&a.payload[..end]).into_owned();
                }
                nfcth::TUPLE => {
                    for t in a.nested() {
                        let t = t?;
                        match t.ty {
                            nfcth::TUPLE_L3PROTONUM => h.l3 = t.be16()?,
                            nfcth::TUPLE_L4PROTONUM => h.l4 = t.u8()?,
                            _ => {}
                        }
                    }
                }
                nfcth::QUEUE_NUM => h.queue_num = a.be32()?,
                nfcth::PRIV_DATA_LEN => h.priv_data_len = a.be32()?,
                nfcth::STATUS => h.status = a.be32()?,
                _ => {}
            }
        }
        Ok(h)
    }

    /// The object as libnetfilter_cthelper 1.0.1 prints it (without the
    /// newline nfct adds).
    pub fn write_text(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{{\n\t.name = {},\n\t.queuenum = {},\n\t.l3protonum = {},\n\t.l4protonum = {},\n\t.priv_data_len = {},\n\t.status = {},\n}};",
            self.name,
            self.queue_num,
            self.l3,
            self.l4,
            self.priv_data_len,
            if self.status != 0 { "enabled" } else { "disabled" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::msg::Messages;

    /// A nest's length counts its last attribute's padding, as libmnl
    /// writes it: `nfct delete helper ftp inet tcp` sends 1.4.7's bytes,
    /// a TUPLE of 20 (a be16 and a u8 attribute, 8 bytes each).
    #[test]
    fn nest_lengths_count_the_padding_as_libmnl() {
        let mut buf = Vec::new();
        helper_del(&mut Writer::new(&mut buf), 1, "ftp", 2, 6);
        // nlmsghdr 16 + nfgenmsg 4, then NAME "ftp\0" (8), then TUPLE
        let tuple = &buf[28..];
        assert_eq!(u16::from_ne_bytes([tuple[0], tuple[1]]), 20);
        assert_eq!(tuple.len(), 20, "nothing after the nest");
        assert_eq!(buf.len() % 4, 0);
    }

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

    /// nfct's helper requests decode back to what was asked.
    #[test]
    fn nfct_requests_round_trip() {
        let ftp = builtin("ftp", 6).unwrap();
        assert!(builtin("ftp", 17).is_none());
        assert_eq!(builtin("ssdp", 6).unwrap().expect_max, 8);
        for (req, ty, flags) in [
            (NfctRequest::List, NFNL_MSG_CTHELPER_GET, 0x301),
            (NfctRequest::Flush, NFNL_MSG_CTHELPER_DEL, 0x5),
            (
                NfctRequest::Get("averyveryverylongname", Some((2, 0))),
                NFNL_MSG_CTHELPER_GET,
                0x5,
            ),
            (NfctRequest::Delete("ftp", None), NFNL_MSG_CTHELPER_DEL, 0x5),
            (NfctRequest::Add(ftp, 10, 6), NFNL_MSG_CTHELPER_NEW, 0x405),
            (
                NfctRequest::Disable("ftp", 2, 6),
                NFNL_MSG_CTHELPER_NEW,
                0x405,
            ),
        ] {
            let mut buf = Vec::new();
            emit_nfct(&mut Writer::new(&mut buf), 3, &req);
            let m = Messages::new(&buf).next().unwrap().unwrap();
            assert_eq!(
                (m.subsys(), m.msg(), m.flags),
                (NFNL_SUBSYS_CTHELPER, ty, flags | 1)
            );
            let (_, attrs) = m.nfgen().unwrap();
            let h = HelperObj::parse(attrs).unwrap();
            match req {
                NfctRequest::Get(..) => {
                    assert_eq!((h.name.as_str(), h.l3, h.l4), ("averyveryverylo", 2, 0))
                }
                NfctRequest::Add(..) => {
                    assert_eq!(
                        (h.name.as_str(), h.l3, h.l4, h.priv_data_len),
                        ("ftp", 10, 6, 24)
                    )
                }
                NfctRequest::Disable(..) => assert_eq!((h.l3, h.status), (2, 0)),
                _ => {}
            }
        }
        let mut s = String::new();
        HelperObj {
            name: "ftp".into(),
            l3: 2,
            l4: 6,
            status: 1,
            ..HelperObj::default()
        }
        .write_text(&mut s);
        assert_eq!(s, "{\n\t.name = ftp,\n\t.queuenum = 0,\n\t.l3protonum = 2,\n\t.l4protonum = 6,\n\t.priv_data_len = 0,\n\t.status = enabled,\n};");
    }

    proptest::proptest! {
        /// Every nfct helper request decodes back to what it carries.
        #[test]
        fn nfct_requests_round_trip_for_any_name(
            name in "[a-z0-9_-]{0,20}",
            l3 in proptest::sample::select(vec![2u16, 10]),
            l4 in proptest::sample::select(vec![6u8, 17]),
            which in 0usize..4,
        ) {
            let req = match which {
                0 => NfctRequest::Get(&name, Some((l3, l4))),
                1 => NfctRequest::Delete(&name, Some((l3, 0))),
                2 => NfctRequest::Disable(&name, l3, l4),
                _ => NfctRequest::Get(&name, None),
            };
            let mut buf = Vec::new();
            emit_nfct(&mut Writer::new(&mut buf), 9, &req);
            let m = Messages::new(&buf).next().unwrap().unwrap();
            proptest::prop_assert_eq!(m.len as usize, buf.len());
            let (_, attrs) = m.nfgen().unwrap();
            let h = HelperObj::parse(attrs).unwrap();
            let cut: String = name.chars().take(NAME_MAX).collect();
            proptest::prop_assert_eq!(&h.name, &cut);
            match req {
                NfctRequest::Get(_, Some((a, b))) | NfctRequest::Disable(_, a, b) => {
                    proptest::prop_assert_eq!((h.l3, h.l4), (a, b))
                }
                NfctRequest::Delete(_, Some((a, _))) => proptest::prop_assert_eq!((h.l3, h.l4), (a, 0)),
                _ => proptest::prop_assert_eq!((h.l3, h.l4), (0, 0)),
            }
        }
    }
}
