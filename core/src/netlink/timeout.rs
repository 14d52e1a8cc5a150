//! nfnetlink_cttimeout (`NFNL_SUBSYS_CTNETLINK_TIMEOUT`): the kernel's
//! connection-tracking timeout policies, the objects `iptables -t raw -j
//! CT --timeout NAME` attaches to flows, and the per-namespace protocol
//! defaults. Request builders (the layout of 1.4.7's `nfct` through
//! libnetfilter_cttimeout), a zero-copy view of a policy message, the
//! decoded [`Policy`], and its text as libnetfilter_cttimeout prints it.

use super::attr::Attrs;
use super::msg::*;
use super::writer::Writer;
use super::NlError;

/// The subsystem.
pub const NFNL_SUBSYS_CTNETLINK_TIMEOUT: u16 = 8;

/// Message types (`enum ctnl_timeout_msg_types`).
pub const IPCTNL_MSG_TIMEOUT_NEW: u16 = 0;
pub const IPCTNL_MSG_TIMEOUT_GET: u16 = 1;
pub const IPCTNL_MSG_TIMEOUT_DELETE: u16 = 2;
pub const IPCTNL_MSG_TIMEOUT_DEFAULT_SET: u16 = 3;
pub const IPCTNL_MSG_TIMEOUT_DEFAULT_GET: u16 = 4;

/// Top-level attributes (`enum ctattr_timeout`).
pub mod cta {
    pub const NAME: u16 = 1;
    pub const L3PROTO: u16 = 2;
    pub const L4PROTO: u16 = 3;
    pub const DATA: u16 = 4;
    pub const USE: u16 = 5;
}

/// The longest policy name the kernel keeps (`CTNL_TIMEOUT_NAME_MAX` is
/// 32 with the NUL); longer names are cut to it, as 1.4.7's nfct does.
pub const NAME_MAX: usize = 31;

const TCP: &[&str] = &[
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
    "RETRANS",
    "UNACKNOWLEDGED",
];
const UDP: &[&str] = &["UNREPLIED", "REPLIED"];
const ONE: &[&str] = &["TIMEOUT"];
const SCTP: &[&str] = &[
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
];
const DCCP: &[&str] = &[
    "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT",
];

/// The timeout states of an L4 protocol, in attribute order (state `i`
/// is DATA attribute `i + 1`); empty for protocols without a table.
pub fn states(l4: u8) -> &'static [&'static str] {
    match l4 {
        6 => TCP,
        17 | 136 | 47 => UDP,
        1 | 58 | 255 => ONE,
        132 => SCTP,
        33 => DCCP,
        _ => &[],
    }
}

/// The attribute number of `name` (any case) in `l4`'s table.
pub fn state_attr(l4: u8, name: &str) -> Option<u16> {
    states(l4)
        .iter()
        .position(|s| s.eq_ignore_ascii_case(name))
        .map(|i| i as u16 + 1)
}

const fn cto(m: u16) -> u16 {
    msg_type(NFNL_SUBSYS_CTNETLINK_TIMEOUT, m)
}

fn name_attr(w: &mut Writer, name: &str) {
    let mut end = name.len().min(NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    w.cstr(cta::NAME, &name[..end]);
}

fn data_attr(w: &mut Writer, data: &[(u16, u32)]) {
    if data.is_empty() {
        return;
    }
    let n = w.begin_nest(cta::DATA);
    for &(ty, v) in data {
        w.be32(ty, v);
    }
    w.end_nest(n);
}

/// What a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// All policies (a dump).
    List,
    /// One policy by name.
    Get(&'a str),
    /// A new policy; `data` is (attribute, seconds), ascending, and the
    /// DATA nest is left out when it is empty (the kernel then refuses
    /// the policy with EINVAL, as it does 1.4.7's).
    New {
        name: &'a str,
        l3: u16,
        l4: u8,
        data: &'a [(u16, u32)],
    },
    /// One policy by name.
    Delete(&'a str),
    /// Every unused policy.
    Flush,
    /// The namespace's defaults of a protocol.
    DefaultSet {
        l3: u16,
        l4: u8,
        data: &'a [(u16, u32)],
    },
    DefaultGet {
        l3: u16,
        l4: u8,
    },
}

impl Request<'_> {
    /// Whether the reply is a dump (ended by `NLMSG_DONE`) rather than an
    /// acknowledged request.
    pub fn is_dump(&self) -> bool {
        matches!(self, Request::List)
    }
}

/// Writes `req` as one message with sequence number `seq`.
pub fn emit(w: &mut Writer, seq: u32, req: &Request<'_>) {
    let (ty, flags) = match req {
        Request::List => (IPCTNL_MSG_TIMEOUT_GET, NLM_F_DUMP),
        Request::Get(_) => (IPCTNL_MSG_TIMEOUT_GET, NLM_F_ACK),
        Request::New { .. } => (IPCTNL_MSG_TIMEOUT_NEW, NLM_F_CREATE | NLM_F_ACK),
        Request::Delete(_) | Request::Flush => (IPCTNL_MSG_TIMEOUT_DELETE, NLM_F_ACK),
        Request::DefaultSet { .. } => (IPCTNL_MSG_TIMEOUT_DEFAULT_SET, NLM_F_ACK),
        Request::DefaultGet { .. } => (IPCTNL_MSG_TIMEOUT_DEFAULT_GET, NLM_F_ACK),
    };
    let m = w.begin_msg(cto(ty), NLM_F_REQUEST | flags, seq, 0, 0);
    match *req {
        Request::List | Request::Flush => {}
        Request::Get(name) | Request::Delete(name) => name_attr(w, name),
        Request::New { name, l3, l4, data } => {
            name_attr(w, name);
            w.be16(cta::L3PROTO, l3);
            w.u8(cta::L4PROTO, l4);
            data_attr(w, data);
        }
        Request::DefaultSet { l3, l4, data } => {
            w.be16(cta::L3PROTO, l3);
            w.u8(cta::L4PROTO, l4);
            data_attr(w, data);
        }
        Request::DefaultGet { l3, l4 } => {
            w.be16(cta::L3PROTO, l3);
            w.u8(cta::L4PROTO, l4);
        }
    }
    w.end_msg(m);
}

/// A policy message, zero-copy: each attribute's bytes where the message
/// has it, validated for length.
#[derive(Debug, Clone, Default)]
pub struct PolicyView<'a> {
    pub name: Option<&'a [u8]>,
    pub l3: Option<u16>,
    pub l4: Option<u8>,
    pub data: Option<Attrs<'a>>,
    pub use_count: Option<u32>,
}

impl<'a> PolicyView<'a> {
    /// The attributes of a cttimeout message (after its nfgenmsg).
    pub fn parse(attrs: Attrs<'a>) -> Result<PolicyView<'a>, NlError> {
        let mut v = PolicyView::default();
        for a in attrs {
            let a = a?;
            match a.ty {
                cta::NAME => {
                    // a C string: up to the first NUL
                    let end = a
                        .payload
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(NlError::Truncated("timeout policy name without its NUL"))?;
                    v.name = Some(&a.payload[..end]);
                }
                cta::L3PROTO => v.l3 = Some(a.be16()?),
                cta::L4PROTO => v.l4 = Some(a.u8()?),
                cta::DATA => v.data = Some(a.nested()),
                cta::USE => v.use_count = Some(a.be32()?),
                _ => {}
            }
        }
        Ok(v)
    }

    /// The decoded policy. Timeouts are kept for the states of the
    /// protocol's table only (what 1.4.7 can show); the others the kernel
    /// may add (SCTP's heartbeat states) are left out.
    pub fn decode(&self) -> Result<Policy, NlError> {
        let mut p = Policy {
            name: self.name.map(|n| String::from_utf8_lossy(n).into_owned()),
            l3: self.l3,
            l4: self.l4,
            timeouts: None,
            use_count: self.use_count,
        };
        if let Some(d) = self.data.clone() {
            let known = states(self.l4.unwrap_or(0)).len() as u16;
            let mut t: Vec<(u16, u32)> = Vec::new();
            for a in d {
                let a = a?;
                let v = a.be32()?;
                if a.ty >= 1 && a.ty <= known {
                    match t.iter_mut().find(|(ty, _)| *ty == a.ty) {
                        Some(e) => e.1 = v,
                        None => t.push((a.ty, v)),
                    }
                }
            }
            t.sort_unstable();
            if !t.is_empty() {
                p.timeouts = Some(t);
            }
        }
        Ok(p)
    }
}

/// A timeout policy (or a protocol's defaults, which have no name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub name: Option<String>,
    pub l3: Option<u16>,
    pub l4: Option<u8>,
    /// (attribute, seconds) of the states the message had, ascending;
    /// `None` when it had none.
    pub timeouts: Option<Vec<(u16, u32)>>,
    pub use_count: Option<u32>,
}

impl Policy {
    /// The policy as libnetfilter_cttimeout 1.0.1 prints it (without the
    /// newline nfct adds): every state of the protocol's table in order,
    /// 0 for one the message lacked; TAB indentation.
    pub fn write_text(&self, out: &mut String) {
        use std::fmt::Write;
        if let Some(n) = &self.name {
            let _ = writeln!(out, ".{n} = {{");
        }
        if let Some(l3) = self.l3 {
            let _ = writeln!(out, "\t.l3proto = {l3},");
        }
        if let Some(l4) = self.l4 {
            let _ = writeln!(out, "\t.l4proto = {l4},");
        }
        if let Some(t) = &self.timeouts {
            let l4 = self.l4.unwrap_or(0);
            // a protocol without a table prints the generic one
            let names = if states(l4).is_empty() {
                states(255)
            } else {
                states(l4)
            };
            out.push_str("\t.policy = {\n");
            for (i, s) in names.iter().enumerate() {
                let v = t
                    .iter()
                    .find(|(ty, _)| *ty as usize == i + 1)
                    .map_or(0, |e| e.1);
                let _ = writeln!(out, "\t\t.{s} = {v},");
            }
            out.push_str("\t},\n");
        }
        out.push_str("};");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::msg::Messages;
    use proptest::prelude::*;

    fn one(req: &Request<'_>, seq: u32) -> Vec<u8> {
        let mut buf = Vec::new();
        emit(&mut Writer::new(&mut buf), seq, req);
        buf
    }

    /// The bytes 1.4.7's nfct sends for `add timeout t1 inet tcp
    /// established 100` (upstream facts, nfct.md §5.2).
    #[test]
    fn add_is_byte_identical_to_nfct() {
        let b = one(
            &Request::New {
                name: "t1",
                l3: 2,
                l4: 6,
                data: &[(3, 100)],
            },
            0x0102_0304,
        );
        let want: Vec<u8> = [
            &[0x38, 0, 0, 0, 0x00, 0x08, 0x05, 0x04][..],
            &0x0102_0304u32.to_le_bytes(),
            &[0, 0, 0, 0, 0, 0, 0, 0],
            &[7, 0, 1, 0, b't', b'1', 0, 0],
            &[6, 0, 2, 0, 0, 2, 0, 0],
            &[5, 0, 3, 0, 6, 0, 0, 0],
            &[0x0c, 0, 0x04, 0x80, 8, 0, 3, 0, 0, 0, 0, 0x64],
        ]
        .concat();
        assert_eq!(b, want);
    }

    #[test]
    fn list_and_default_get_headers() {
        let b = one(&Request::List, 9);
        assert_eq!(b.len(), 20);
        assert_eq!(&b[4..8], &[0x01, 0x08, 0x01, 0x03]);
        let b = one(&Request::DefaultGet { l3: 2, l4: 17 }, 9);
        assert_eq!(b.len(), 0x24);
        assert_eq!(&b[4..8], &[0x04, 0x08, 0x05, 0x00]);
        // no DATA nest without timeouts
        let b = one(
            &Request::New {
                name: "x",
                l3: 2,
                l4: 17,
                data: &[],
            },
            1,
        );
        assert_eq!(b.len(), 16 + 4 + 8 + 8 + 8);
    }

    #[test]
    fn names_are_cut_to_31_bytes() {
        let long = "a".repeat(40);
        let b = one(&Request::Get(&long), 1);
        let m = Messages::new(&b).next().unwrap().unwrap();
        let (_, attrs) = m.nfgen().unwrap();
        let v = PolicyView::parse(attrs).unwrap();
        assert_eq!(v.name.unwrap().len(), 31);
    }

    #[test]
    fn text_is_libnetfilter_cttimeouts() {
        let p = Policy {
            name: Some("test".into()),
            l3: Some(2),
            l4: Some(17),
            timeouts: Some(vec![(1, 1), (2, 2)]),
            use_count: Some(1),
        };
        let mut s = String::new();
        p.write_text(&mut s);
        assert_eq!(
            s,
            ".test = {\n\t.l3proto = 2,\n\t.l4proto = 17,\n\t.policy = {\n\t\t.UNREPLIED = 1,\n\t\t.REPLIED = 2,\n\t},\n};"
        );
        // defaults: no name line; a missing state prints 0
        let p = Policy {
            name: None,
            l3: Some(10),
            l4: Some(6),
            timeouts: Some(vec![(3, 5)]),
            use_count: None,
        };
        let mut s = String::new();
        p.write_text(&mut s);
        assert!(
            s.starts_with("\t.l3proto = 10,\n\t.l4proto = 6,\n\t.policy = {\n\t\t.SYN_SENT = 0,\n")
        );
        assert!(s.contains("\t\t.ESTABLISHED = 5,\n"));
        assert!(s.ends_with("\t\t.UNACKNOWLEDGED = 0,\n\t},\n};"));
    }

    #[test]
    fn state_names_match_any_case() {
        assert_eq!(state_attr(6, "established"), Some(3));
        assert_eq!(state_attr(6, "UnAcknowledged"), Some(11));
        assert_eq!(state_attr(6, "unack"), None);
        assert_eq!(state_attr(132, "heartbeat_sent"), None);
        assert_eq!(state_attr(58, "timeout"), Some(1));
        assert_eq!(state_attr(41, "timeout"), None);
    }

    fn l4s() -> impl Strategy<Value = u8> {
        prop::sample::select(vec![1u8, 6, 17, 33, 47, 58, 132, 136, 255])
    }

    proptest! {
        /// A policy built into a NEW request and read back through the
        /// view decodes to what was sent.
        #[test]
        fn new_round_trips(name in "[a-zA-Z0-9_ -]{0,31}", l3 in prop::sample::select(vec![2u16, 10]),
                           l4 in l4s(), vals in prop::collection::vec(any::<u32>(), 11)) {
            let n = states(l4).len();
            let data: Vec<(u16, u32)> = (0..n).map(|i| (i as u16 + 1, vals[i])).collect();
            let b = one(&Request::New { name: &name, l3, l4, data: &data }, 7);
            let m = Messages::new(&b).next().unwrap().unwrap();
            prop_assert_eq!(m.subsys(), NFNL_SUBSYS_CTNETLINK_TIMEOUT);
            prop_assert_eq!(m.msg(), IPCTNL_MSG_TIMEOUT_NEW);
            let (_, attrs) = m.nfgen().unwrap();
            let p = PolicyView::parse(attrs).unwrap().decode().unwrap();
            prop_assert_eq!(p, Policy {
                name: Some(name.clone()),
                l3: Some(l3),
                l4: Some(l4),
                timeouts: (!data.is_empty()).then_some(data.clone()),
                use_count: None,
            });
        }

        /// Arbitrary attribute bytes never panic the view.
        #[test]
        fn view_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(v) = PolicyView::parse(Attrs::new(&bytes)) {
                if let Ok(p) = v.decode() {
                    let mut s = String::new();
                    p.write_text(&mut s);
                }
            }
        }
    }
}
