//! Output formats of `conntrack`: the entry line (`plain`), `-o xml`
//! (`xml`), `-o save` (`save`), expectation lines and XML (`expect`), and
//! our own `-o json` (`json`).
//!
//! The text formats are byte-for-byte those of conntrack 1.4.7 on
//! libnetfilter_conntrack 1.0.9 (which renders everything but `-o save`).
//! They are written from the C sources and checked against the installed
//! tool and library (see `tools/tests/format_oracle.rs`). What the C code
//! does is kept even where it looks odd:
//!
//! * every field appears only when its attribute was present (a `Some` in
//!   the [`Flow`](crate::flow::Flow)); tuple fields that are missing print as zero (`sport=0`,
//!   `0.0.0.0`), because C prints them from a zeroed struct;
//! * a line is cut to 1023 bytes: the C tool renders into `char buf[1024]`;
//! * SCTP and DCCP states are named from the TCP table in XML;
//! * `delta-time` is an unsigned print of a signed difference, so a start
//!   in the future prints as a huge number.
//!
//! Where the C tool (the reference) differs from or goes beyond
//! `upstream-facts.md` §1.8/§1.9:
//!
//! * `-o save` prints SCTP vtags as `ntohl()` of the decoded value, i.e.
//!   byte-swapped on little-endian hosts; this undoes the double `htonl()`
//!   of `conntrack -I --orig-vtag N`, so `N` round-trips;
//! * `-o save` with a family other than IPv4/IPv6: the C code stops after
//!   the generic options but its caller still prints the partial buffer
//!   (`-A -t 29 -u UNSET `), not an empty line (unreachable with a real
//!   kernel, so unverified; [`write_save`] appends the partial line);
//! * DCCP states past `INVALID`, SCTP states past `HEARTBEAT_ACKED` and TCP
//!   states past `SYN_SENT2` print `NONE` in XML too (bounds-checked in
//!   library 1.0.9); `-o save` prints `(null)` for the SCTP states the
//!   tool's own table lacks (`HEARTBEAT_SENT`, `HEARTBEAT_ACKED`);
//! * the IPv6 NAT test of `-o save` (`-g`/`-n`) compares full addresses:
//!   library 1.0.9 handles IPv6, not only IPv4;
//! * a flow without an original L4 protocol makes the library fail: only
//!   the text before the failing field (event tag, `-o extended` prefix)
//!   is printed.
//!
//! Nothing here reads a clock or the time zone: the caller supplies the
//! current time, `ctime()` text, the broken-down local time of `<when>`
//! blocks and connection-label names through [`Env`] and [`Tm`]. Writers
//! append to a caller-owned `Vec<u8>` and never allocate otherwise.
//!
//! Not done here (the caller's job): the `[sec.usec]\t` prefix of
//! `-o timestamp` events, the ` [USERSPACE] portid=N progname=X` suffix,
//! and the XML header/footer (see [`XML_HEADER`] and friends for when the
//! C tool prints them).

use std::net::IpAddr;

use crate::flow::{Tuple, AF_INET, AF_INET6, AF_UNSPEC};

mod expect;
mod json;
pub mod num;
mod plain;
mod save;
mod xml;

pub use expect::{write_expect_plain, write_expect_xml};
pub use json::write_json;
pub use plain::write_plain;
pub use save::{write_save, SaveError};
pub use xml::write_xml_flow;

/// Printed before the first `<flow>` of `-L`/`-E -o xml` (and by `-G`).
pub const XML_HEADER: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n";
/// Printed after a conntrack XML dump, only if the header was printed.
pub const XML_FOOTER: &str = "</conntrack>\n";
/// Header of expectation XML output.
pub const EXP_XML_HEADER: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<expect>\n";
/// Footer of expectation XML output.
pub const EXP_XML_FOOTER: &str = "</expect>\n";

/// The C tool renders each record into `char buf[1024]`, but for its
/// conntrack dump (`-L`, `-G`: `mnl_nfct_dump_cb`), `char buf[4096]`.
pub(crate) const C_LINE_MAX: usize = 1023;
pub(crate) const C_DUMP_LINE_MAX: usize = 4095;

/// Which message a record comes from: `None` for list/get/delete output
/// (no tag), otherwise the event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventKind {
    #[default]
    None,
    New,
    Update,
    Destroy,
}

/// `-o` flags that change the plain (and partly the XML) rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlainOpts {
    /// `-o extended`: L3 name and number before the L4 protocol.
    pub extended: bool,
    /// `-o id`: `id=N` (XML always prints `<id>` when known).
    pub id: bool,
    /// `-o ktimestamp`: `[start=...] [stop=...]` / `<timestamp>` block.
    pub ktimestamp: bool,
    /// The connection-label map is loaded (`-o labels` or any label
    /// option, and `connlabel.conf` could be read): print `labels=`.
    pub labels: bool,
    /// The record is one of conntrack's dump (`-L`, `-G`), which 1.4.7
    /// renders into 4096 bytes, not the 1024 of its other outputs: the
    /// line is cut at 4095 bytes, not 1023.
    pub dump: bool,
}

/// Everything time- or system-dependent, supplied by the binary.
pub trait Env {
    /// Current wall-clock time in seconds (`time(NULL)`), for `delta-time`.
    fn now_secs(&self) -> u64;
    /// Appends `ctime(&secs)` without its trailing newline, in local time
    /// (e.g. `Mon Nov 30 09:36:24 2026`). [`write_ctime`] formats a [`Tm`].
    fn ctime(&self, secs: i64, out: &mut Vec<u8>);
    /// Name of connection-label bit `bit` from `connlabel.conf`, if any.
    fn label_name(&self, bit: u32) -> Option<&str>;
}

/// Broken-down local time (what `localtime_r` yields), used for the XML
/// `<when>` block and by [`write_ctime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tm {
    /// Full year, e.g. 2026.
    pub year: i32,
    /// Month 1..=12.
    pub month: u8,
    /// Day of the month 1..=31.
    pub day: u8,
    pub hour: u8,
    pub min: u8,
    pub sec: u8,
    /// Day of the week, 0 = Sunday (like `tm_wday`; XML prints it + 1).
    pub wday: u8,
}

impl Tm {
    /// The UTC broken-down time of `secs` since the epoch.
    pub fn from_utc(secs: i64) -> Tm {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Civil-from-days (H. Hinnant).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Tm {
            year: year as i32,
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            min: (rem % 3600 / 60) as u8,
            sec: (rem % 60) as u8,
            // 1970-01-01 was a Thursday.
            wday: (days + 4).rem_euclid(7) as u8,
        }
    }
}

/// Appends `asctime()` text without the newline:
/// `%.3s %.3s%3d %.2d:%.2d:%.2d %d` (e.g. `Thu Jan  1 00:00:00 1970`).
pub fn write_ctime(out: &mut Vec<u8>, tm: &Tm) {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    out.extend_from_slice(DAYS.get(tm.wday as usize).unwrap_or(&"???").as_bytes());
    out.push(b' ');
    let m = (tm.month as usize).wrapping_sub(1);
    out.extend_from_slice(MONTHS.get(m).unwrap_or(&"???").as_bytes());
    if tm.day < 10 {
        out.extend_from_slice(b"  ");
    } else {
        out.push(b' ');
    }
    num::dec(out, u64::from(tm.day));
    out.push(b' ');
    num::dec02(out, u64::from(tm.hour));
    out.push(b':');
    num::dec02(out, u64::from(tm.min));
    out.push(b':');
    num::dec02(out, u64::from(tm.sec));
    out.push(b' ');
    num::dec_signed(out, i64::from(tm.year));
}

/// A deterministic [`Env`]: fixed "now", UTC `ctime`, no label names.
/// Handy for tests and for `TZ=UTC` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcEnv {
    pub now: u64,
}

impl Env for UtcEnv {
    fn now_secs(&self) -> u64 {
        self.now
    }
    fn ctime(&self, secs: i64, out: &mut Vec<u8>) {
        write_ctime(out, &Tm::from_utc(secs));
    }
    fn label_name(&self, _bit: u32) -> Option<&str> {
        None
    }
}

/// One tuple as libnetfilter_conntrack's `struct __nfct_tuple` holds it:
/// zero-filled where an attribute was absent. The address union is kept
/// as 16 bytes (an IPv4 address in the first four).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CTuple {
    pub l3: u8,
    pub proto: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
}

fn addr_bytes(a: Option<IpAddr>) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        Some(IpAddr::V4(a)) => b[..4].copy_from_slice(&a.octets()),
        Some(IpAddr::V6(a)) => b = a.octets(),
        None => {}
    }
    b
}

impl CTuple {
    /// `family` is the message's nfgen family; the C parser stamps it on
    /// every tuple present. A hand-built flow without a family falls back
    /// to the family of the tuple's own addresses.
    pub fn new(family: u8, t: Option<&Tuple>) -> CTuple {
        let Some(t) = t else {
            return CTuple::default();
        };
        CTuple {
            l3: if family != AF_UNSPEC {
                family
            } else {
                t.family()
            },
            proto: t.l4proto.unwrap_or(0),
            src: addr_bytes(t.src),
            dst: addr_bytes(t.dst),
            sport: t.src_port.unwrap_or(0),
            dport: t.dst_port.unwrap_or(0),
            icmp_type: t.icmp_type.unwrap_or(0),
            icmp_code: t.icmp_code.unwrap_or(0),
            icmp_id: t.icmp_id.unwrap_or(0),
        }
    }

    /// Writes the source (`src == true`) or destination address in the
    /// tuple's family; nothing for families other than IPv4/IPv6.
    pub fn write_addr(&self, out: &mut Vec<u8>, src: bool) {
        let a = if src { &self.src } else { &self.dst };
        match self.l3 {
            AF_INET => num::ipv4(out, [a[0], a[1], a[2], a[3]]),
            AF_INET6 => num::ipv6(out, *a),
            _ => {}
        }
    }

    /// Whether the address bytes of this family are equal.
    pub fn addr_eq(&self, a: &[u8; 16], b: &[u8; 16]) -> bool {
        match self.l3 {
            AF_INET => a[..4] == b[..4],
            _ => a == b,
        }
    }
}

/// `%9s ` of the event tag, as the default formats print it.
pub(crate) fn write_event_tag(out: &mut Vec<u8>, ev: EventKind) {
    let tag = match ev {
        EventKind::None => return,
        EventKind::New => "[NEW]",
        EventKind::Update => "[UPDATE]",
        EventKind::Destroy => "[DESTROY]",
    };
    num::pad_left(out, tag, 9);
    out.push(b' ');
}

/// `<flow>` / `<flow type="...">`.
pub(crate) fn write_xml_flow_open(out: &mut Vec<u8>, ev: EventKind) {
    out.extend_from_slice(match ev {
        EventKind::None => b"<flow>".as_slice(),
        EventKind::New => b"<flow type=\"new\">",
        EventKind::Update => b"<flow type=\"update\">",
        EventKind::Destroy => b"<flow type=\"destroy\">",
    });
}

/// The XML `<when>` block body (without the enclosing tags).
pub(crate) fn write_when(out: &mut Vec<u8>, tm: &Tm) {
    out.extend_from_slice(b"<hour>");
    num::dec(out, u64::from(tm.hour));
    out.extend_from_slice(b"</hour><min>");
    num::dec02(out, u64::from(tm.min));
    out.extend_from_slice(b"</min><sec>");
    num::dec02(out, u64::from(tm.sec));
    out.extend_from_slice(b"</sec><wday>");
    num::dec(out, u64::from(tm.wday) + 1);
    out.extend_from_slice(b"</wday><day>");
    num::dec(out, u64::from(tm.day));
    out.extend_from_slice(b"</day><month>");
    num::dec(out, u64::from(tm.month));
    out.extend_from_slice(b"</month><year>");
    num::dec_signed(out, i64::from(tm.year));
    out.extend_from_slice(b"</year>");
}

/// Cuts the record that starts at `start` to the C buffer size (of the
/// dump with `dump`).
pub(crate) fn clamp_line(out: &mut Vec<u8>, start: usize, dump: bool) {
    let max = if dump { C_DUMP_LINE_MAX } else { C_LINE_MAX };
    if out.len() - start > max {
        out.truncate(start + max);
    }
}

/// Bit `bit` of a label bitmap stored as native-endian u32 words (bytes
/// past the end count as zero).
pub(crate) fn label_bit(bytes: &[u8], bit: usize) -> bool {
    let w = bit / 32;
    let mut word = [0u8; 4];
    for (i, b) in word.iter_mut().enumerate() {
        *b = bytes.get(w * 4 + i).copied().unwrap_or(0);
    }
    u32::from_ne_bytes(word) & (1 << (bit % 32)) != 0
}

/// Number of bits libnetfilter_conntrack scans in a label bitmap of
/// `len` bytes (whole 32-bit words).
pub(crate) fn label_bits(len: usize) -> usize {
    len.div_ceil(4) * 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_text() {
        let mut v = Vec::new();
        write_ctime(&mut v, &Tm::from_utc(0));
        assert_eq!(v, b"Thu Jan  1 00:00:00 1970");
        v.clear();
        // The spec's example: start=1796031384 (UTC here).
        write_ctime(&mut v, &Tm::from_utc(1_796_031_384));
        assert_eq!(v, b"Mon Nov 30 09:36:24 2026");
        v.clear();
        write_ctime(&mut v, &Tm::from_utc(951_782_400)); // leap day 2000
        assert_eq!(v, b"Tue Feb 29 00:00:00 2000");
        v.clear();
        write_ctime(&mut v, &Tm::from_utc(-1));
        assert_eq!(v, b"Wed Dec 31 23:59:59 1969");
    }

    #[test]
    fn when_block() {
        let mut v = Vec::new();
        write_when(&mut v, &Tm::from_utc(1_796_035_204));
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "<hour>10</hour><min>40</min><sec>04</sec><wday>2</wday><day>30</day><month>11</month><year>2026</year>"
        );
    }
}
