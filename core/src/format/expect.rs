//! Expectation output (`__snprintf_expect_default` / `_xml` of
//! libnetfilter_conntrack 1.0.9), as `conntrack -L expect` and
//! `-E expect` print it:
//!
//! ```text
//! [tag] [timeout] proto=N src= dst= <l4> mask-src= mask-dst= <l4>
//! master-src= master-dst= <l4> [zone=] [PERMANENT,INACTIVE,USERSPACE ]
//! [class=] [helper=]
//! ```
//!
//! The XML form puts the three tuples side by side inside `<layer3>` and
//! `<layer4>` and the rest in `<meta>`.

use super::num::dec;
use super::plain::write_tuple;
use super::{clamp_line, write_event_tag, write_when, write_xml_flow_open, CTuple, EventKind, Tm};
use crate::flow::{Expect, NF_CT_EXPECT_INACTIVE, NF_CT_EXPECT_PERMANENT, NF_CT_EXPECT_USERSPACE};
use crate::proto;

struct Tuples {
    expected: CTuple,
    mask: CTuple,
    master: CTuple,
}

fn tuples(e: &Expect) -> Tuples {
    Tuples {
        expected: CTuple::new(e.family, e.tuple.as_ref()),
        mask: CTuple::new(e.family, e.mask.as_ref()),
        master: CTuple::new(e.family, e.master.as_ref()),
    }
}

/// Appends one expectation line (with `'\n'`).
pub fn write_expect_plain(out: &mut Vec<u8>, e: &Expect, ev: EventKind) {
    let start = out.len();
    write_event_tag(out, ev);
    let t = tuples(e);
    if let Some(v) = e.timeout {
        dec(out, u64::from(v));
        out.push(b' ');
    }
    out.extend_from_slice(b"proto=");
    dec(out, u64::from(t.expected.proto));
    out.push(b' ');
    write_tuple(out, &t.expected, "src", "dst");
    write_tuple(out, &t.mask, "mask-src", "mask-dst");
    write_tuple(out, &t.master, "master-src", "master-dst");
    if let Some(z) = e.zone {
        out.extend_from_slice(b"zone=");
        dec(out, u64::from(z));
        out.push(b' ');
    }
    let flags = e.flags.unwrap_or(0);
    let mut delim: &[u8] = b"";
    if flags & NF_CT_EXPECT_PERMANENT != 0 {
        out.extend_from_slice(b"PERMANENT");
        delim = b",";
    }
    if flags & NF_CT_EXPECT_INACTIVE != 0 {
        out.extend_from_slice(delim);
        out.extend_from_slice(b"INACTIVE");
        delim = b",";
    }
    if flags & NF_CT_EXPECT_USERSPACE != 0 {
        out.extend_from_slice(delim);
        out.extend_from_slice(b"USERSPACE");
    }
    // Any flag bit (named or not) adds the separating space.
    if flags != 0 {
        out.push(b' ');
    }
    if let Some(c) = e.class {
        out.extend_from_slice(b"class=");
        dec(out, u64::from(c));
        out.push(b' ');
    }
    if let Some(h) = &e.helper {
        out.extend_from_slice(b"helper=");
        out.extend_from_slice(h.as_str().as_bytes());
    }
    if out.len() > start && out.last() == Some(&b' ') {
        out.pop();
    }
    clamp_line(out, start, false);
    out.push(b'\n');
}

fn l3_part(out: &mut Vec<u8>, tag: &[u8], t: &CTuple) {
    out.push(b'<');
    out.extend_from_slice(tag);
    out.extend_from_slice(b"><src>");
    t.write_addr(out, true);
    out.extend_from_slice(b"</src><dst>");
    t.write_addr(out, false);
    out.extend_from_slice(b"</dst></");
    out.extend_from_slice(tag);
    out.push(b'>');
}

fn l4_part(out: &mut Vec<u8>, tag: &[u8], t: &CTuple) {
    out.push(b'<');
    out.extend_from_slice(tag);
    out.push(b'>');
    match t.proto {
        proto::IPPROTO_TCP
        | proto::IPPROTO_UDP
        | proto::IPPROTO_UDPLITE
        | proto::IPPROTO_SCTP
        | proto::IPPROTO_DCCP => {
            out.extend_from_slice(b"<sport>");
            dec(out, u64::from(t.sport));
            out.extend_from_slice(b"</sport><dport>");
            dec(out, u64::from(t.dport));
            out.extend_from_slice(b"</dport>");
        }
        proto::IPPROTO_GRE => {
            out.extend_from_slice(b"<srckey>0x");
            super::num::hex(out, u64::from(t.sport));
            out.extend_from_slice(b"</srckey><dstkey>0x");
            super::num::hex(out, u64::from(t.dport));
            out.extend_from_slice(b"</dstkey>");
        }
        _ => {}
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(tag);
    out.push(b'>');
}

/// Appends one expectation `<flow>` line (with `'\n'`); `when` adds the
/// `<when>` block of `-o xml,timestamp` events. Use [`super::EXP_XML_HEADER`]
/// and [`super::EXP_XML_FOOTER`] around a dump.
pub fn write_expect_xml(out: &mut Vec<u8>, e: &Expect, ev: EventKind, when: Option<&Tm>) {
    let start = out.len();
    write_xml_flow_open(out, ev);
    let t = tuples(e);
    out.extend_from_slice(b"<layer3 protonum=\"");
    dec(out, u64::from(t.expected.l3));
    out.extend_from_slice(b"\" protoname=\"");
    out.extend_from_slice(proto::l3_name(t.expected.l3).as_bytes());
    out.extend_from_slice(b"\">");
    l3_part(out, b"expected", &t.expected);
    l3_part(out, b"mask", &t.mask);
    l3_part(out, b"master", &t.master);
    out.extend_from_slice(b"</layer3><layer4 protonum=\"");
    dec(out, u64::from(t.expected.proto));
    out.extend_from_slice(b"\" protoname=\"");
    out.extend_from_slice(proto::l4_name(t.expected.proto).as_bytes());
    out.extend_from_slice(b"\">");
    l4_part(out, b"expected", &t.expected);
    l4_part(out, b"mask", &t.mask);
    l4_part(out, b"master", &t.master);
    out.extend_from_slice(b"</layer4><meta>");
    if let Some(h) = &e.helper {
        out.extend_from_slice(b"<helper-name>");
        out.extend_from_slice(h.as_str().as_bytes());
        out.extend_from_slice(b"</helper-name>");
    }
    if let Some(v) = e.timeout {
        out.extend_from_slice(b"<timeout>");
        dec(out, u64::from(v));
        out.extend_from_slice(b"</timeout>");
    }
    if let Some(v) = e.class {
        out.extend_from_slice(b"<class>");
        dec(out, u64::from(v));
        out.extend_from_slice(b"</class>");
    }
    if let Some(v) = e.zone {
        out.extend_from_slice(b"<zone>");
        dec(out, u64::from(v));
        out.extend_from_slice(b"</zone>");
    }
    if let Some(tm) = when {
        out.extend_from_slice(b"<when>");
        write_when(out, tm);
        out.extend_from_slice(b"</when>");
    }
    let flags = e.flags.unwrap_or(0);
    if flags & NF_CT_EXPECT_PERMANENT != 0 {
        out.extend_from_slice(b"<permanent/>");
    }
    if flags & NF_CT_EXPECT_INACTIVE != 0 {
        out.extend_from_slice(b"<inactive/>");
    }
    if flags & NF_CT_EXPECT_USERSPACE != 0 {
        out.extend_from_slice(b"<userspace/>");
    }
    out.extend_from_slice(b"</meta></flow>");
    clamp_line(out, start, false);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::*;
    use crate::format::plain::tests::*;
    use crate::proto::*;

    fn ftp_expect() -> Expect {
        Expect {
            family: AF_INET,
            tuple: Some(tp(IPPROTO_TCP, "10.9.9.2", "10.9.9.1", 0, 1025)),
            mask: Some(tp(
                IPPROTO_TCP,
                "255.255.255.255",
                "255.255.255.255",
                0,
                65535,
            )),
            master: Some(tp(IPPROTO_TCP, "10.9.9.1", "10.9.9.2", 44136, 21)),
            timeout: Some(298),
            id: Some(1),
            helper: Some(ShortStr::new("ftp")),
            zone: None,
            flags: Some(0),
            class: Some(0),
            nat: None,
            func: None,
        }
    }

    fn plain(e: &Expect, ev: EventKind) -> String {
        let mut v = Vec::new();
        write_expect_plain(&mut v, e, ev);
        String::from_utf8(v).unwrap()
    }

    /// The verified expectation lines of spec §1.9.
    #[test]
    fn spec_examples() {
        let mut e = ftp_expect();
        assert_eq!(plain(&e, EventKind::None), "298 proto=6 src=10.9.9.2 dst=10.9.9.1 sport=0 dport=1025 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.9.9.1 master-dst=10.9.9.2 sport=44136 dport=21 class=0 helper=ftp\n");
        e.timeout = Some(300);
        assert_eq!(plain(&e, EventKind::New), "    [NEW] 300 proto=6 src=10.9.9.2 dst=10.9.9.1 sport=0 dport=1025 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.9.9.1 master-dst=10.9.9.2 sport=44136 dport=21 class=0 helper=ftp\n");
    }

    #[test]
    fn flags_zone_and_absent_fields() {
        let mut e = ftp_expect();
        e.zone = Some(3);
        e.flags = Some(NF_CT_EXPECT_PERMANENT | NF_CT_EXPECT_USERSPACE);
        e.class = None;
        e.helper = None;
        assert!(plain(&e, EventKind::Destroy)
            .ends_with(" sport=44136 dport=21 zone=3 PERMANENT,USERSPACE\n"));
        e.flags = Some(NF_CT_EXPECT_INACTIVE);
        assert!(plain(&e, EventKind::None).ends_with(" dport=21 zone=3 INACTIVE\n"));
        // An unnamed flag bit still adds its space: two spaces before class.
        e.flags = Some(0x8);
        e.class = Some(1);
        assert!(plain(&e, EventKind::None).ends_with(" dport=21 zone=3  class=1\n"));
        e.timeout = None;
        assert!(plain(&e, EventKind::Update).starts_with(" [UPDATE] proto=6 src="));
    }

    #[test]
    fn xml() {
        let mut e = ftp_expect();
        e.zone = Some(0);
        e.flags = Some(NF_CT_EXPECT_PERMANENT | NF_CT_EXPECT_INACTIVE);
        let mut v = Vec::new();
        write_expect_xml(&mut v, &e, EventKind::New, Some(&Tm::from_utc(0)));
        assert_eq!(String::from_utf8(v).unwrap(), "<flow type=\"new\"><layer3 protonum=\"2\" protoname=\"ipv4\"><expected><src>10.9.9.2</src><dst>10.9.9.1</dst></expected><mask><src>255.255.255.255</src><dst>255.255.255.255</dst></mask><master><src>10.9.9.1</src><dst>10.9.9.2</dst></master></layer3><layer4 protonum=\"6\" protoname=\"tcp\"><expected><sport>0</sport><dport>1025</dport></expected><mask><sport>0</sport><dport>65535</dport></mask><master><sport>44136</sport><dport>21</dport></master></layer4><meta><helper-name>ftp</helper-name><timeout>298</timeout><class>0</class><zone>0</zone><when><hour>0</hour><min>00</min><sec>00</sec><wday>5</wday><day>1</day><month>1</month><year>1970</year></when><permanent/><inactive/></meta></flow>\n");
    }
}
