//! `-o save`: an entry as `conntrack` command-line options
//! (`ct_save_snprintf` of conntrack 1.4.7, not libnetfilter_conntrack):
//!
//! ```text
//! -A|-U|-D [-t T] [-u FLAGS|UNSET] [-c SECMARK] [-w ZONE] [--orig-zone Z]
//! [--reply-zone Z] -s SRC -d DST (-g|-r) RSRC (-n|-q) RDST -p PROTO <proto opts>
//! ```
//!
//! Mark, labels, helper and NAT ports are not saved. `-g`/`-n` replace
//! `-r`/`-q` when the entry is destination/source NATed (the reply address
//! differs from the original one and, if a status is known, the
//! `*_NAT_DONE` bit is set). Trailing spaces are removed.

use super::num::dec;
use super::{CTuple, EventKind};
use crate::flow::{Flow, AF_INET, AF_INET6};
use crate::proto::{self, status};

/// Why an entry cannot be rendered as `-o save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaveError {
    /// Neither IPv4 nor IPv6. conntrack prints
    /// `WARNING: unsupported l3proto %d, skipping.` on stderr.
    #[error("unsupported l3proto {0}, skipping.")]
    UnsupportedL3(u8),
}

/// `-u` names by status bit; bits without a name are skipped.
const STATUS_NAMES: [(u32, &str); 4] = [
    (status::EXPECTED, "EXPECTED"),
    (status::SEEN_REPLY, "SEEN_REPLY"),
    (status::ASSURED, "ASSURED"),
    (status::FIXED_TIMEOUT, "FIXED_TIMEOUT"),
];

/// State names of conntrack's own protocol extensions (index = kernel
/// value). Missing entries print as glibc prints a NULL `%s`.
const SAVE_SCTP_STATES: [&str; 8] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
];
const DCCP_ROLES: [&str; 2] = ["client", "server"];
const NULL_STR: &str = "(null)";

fn opt(out: &mut Vec<u8>, name: &str, v: Option<u64>) {
    if let Some(v) = v {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        dec(out, v);
        out.push(b' ');
    }
}

fn opt_str(out: &mut Vec<u8>, name: &str, v: Option<&str>) {
    if let Some(v) = v {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(v.as_bytes());
        out.push(b' ');
    }
}

fn opt_addr(out: &mut Vec<u8>, name: &str, t: &CTuple, src: bool, present: bool) {
    if present {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        t.write_addr(out, src);
        out.push(b' ');
    }
}

/// Appends one `-o save` line (with `'\n'`). `EventKind::None` and `New`
/// give `-A`, `Update` gives `-U`, `Destroy` gives `-D` (the C tool passes
/// "new" for list output).
///
/// For a family other than IPv4/IPv6 the C tool stops after the generic
/// options and still prints what it has (e.g. `-A -t 29 -u UNSET `, with
/// the trailing space); that same partial line is appended here before
/// the error is returned, so the caller only has to print the warning.
pub fn write_save(out: &mut Vec<u8>, f: &Flow, ev: EventKind) -> Result<(), SaveError> {
    let start = out.len();
    out.extend_from_slice(match ev {
        EventKind::None | EventKind::New => b"-A ".as_slice(),
        EventKind::Update => b"-U ",
        EventKind::Destroy => b"-D ",
    });

    opt(out, "-t", f.timeout.map(u64::from));
    if let Some(st) = f.status {
        out.extend_from_slice(b"-u ");
        let mut found = false;
        for (bit, name) in STATUS_NAMES {
            if st & bit != 0 {
                out.extend_from_slice(name.as_bytes());
                out.push(b',');
                found = true;
            }
        }
        if found {
            out.pop();
            out.push(b' ');
        } else {
            out.extend_from_slice(b"UNSET ");
        }
    }
    opt(out, "-c", f.secmark.map(u64::from));
    opt(out, "-w", f.zone.map(u64::from));
    opt(
        out,
        "--orig-zone",
        f.orig.and_then(|t| t.zone).map(u64::from),
    );
    opt(
        out,
        "--reply-zone",
        f.reply.and_then(|t| t.zone).map(u64::from),
    );

    let orig = CTuple::new(f.family, f.orig.as_ref());
    let reply = CTuple::new(f.family, f.reply.as_ref());
    let l3 = if orig.l3 != 0 { orig.l3 } else { reply.l3 };
    if l3 != AF_INET && l3 != AF_INET6 {
        out.push(b'\n');
        return Err(SaveError::UnsupportedL3(l3));
    }
    // libnetfilter_conntrack's NFCT_GOPT_IS_SNAT / IS_DNAT (1.0.9 also
    // handles IPv6): with a status the NAT_DONE bit is required.
    let done = |bit: u32| !matches!(f.status, Some(s) if s & bit == 0);
    let is_dnat = done(status::DST_NAT_DONE) && !orig.addr_eq(&reply.src, &orig.dst);
    let is_snat = done(status::SRC_NAT_DONE) && !orig.addr_eq(&reply.dst, &orig.src);
    // Only addresses of the entry's family count as set.
    let fam_ok = |a: Option<std::net::IpAddr>| match a {
        Some(std::net::IpAddr::V4(_)) => l3 == AF_INET,
        Some(std::net::IpAddr::V6(_)) => l3 == AF_INET6,
        None => false,
    };
    let mut t = orig;
    t.l3 = l3;
    opt_addr(out, "-s", &t, true, fam_ok(f.orig.and_then(|x| x.src)));
    opt_addr(out, "-d", &t, false, fam_ok(f.orig.and_then(|x| x.dst)));
    let mut r = reply;
    r.l3 = l3;
    let rsrc = fam_ok(f.reply.and_then(|x| x.src));
    let rdst = fam_ok(f.reply.and_then(|x| x.dst));
    opt_addr(out, if is_dnat { "-g" } else { "-r" }, &r, true, rsrc);
    opt_addr(out, if is_snat { "-n" } else { "-q" }, &r, false, rdst);

    let p = f.orig.and_then(|t| t.l4proto).unwrap_or(0);
    let o = f.orig.unwrap_or_default();
    let rp = f.reply.unwrap_or_default();
    let pi = f.protoinfo.unwrap_or_default();
    let ports = |out: &mut Vec<u8>, names: [&str; 4]| {
        opt(out, names[0], o.src_port.map(u64::from));
        opt(out, names[1], o.dst_port.map(u64::from));
        opt(out, names[2], rp.src_port.map(u64::from));
        opt(out, names[3], rp.dst_port.map(u64::from));
    };
    const PORTS: [&str; 4] = ["--sport", "--dport", "--reply-port-src", "--reply-port-dst"];
    match p {
        proto::IPPROTO_TCP => {
            out.extend_from_slice(b"-p tcp ");
            ports(out, PORTS);
            let st = pi.tcp.and_then(|t| t.state);
            opt_str(
                out,
                "--state",
                st.map(|s| {
                    proto::TCP_STATES
                        .get(s as usize)
                        .copied()
                        .unwrap_or(NULL_STR)
                }),
            );
        }
        proto::IPPROTO_UDP => {
            out.extend_from_slice(b"-p udp ");
            ports(out, PORTS);
        }
        proto::IPPROTO_UDPLITE => {
            out.extend_from_slice(b"-p udplite ");
            ports(out, PORTS);
        }
        proto::IPPROTO_SCTP => {
            out.extend_from_slice(b"-p sctp ");
            ports(out, PORTS);
            let s = pi.sctp.unwrap_or_default();
            opt_str(
                out,
                "--state",
                s.state.map(|s| {
                    SAVE_SCTP_STATES
                        .get(s as usize)
                        .copied()
                        .unwrap_or(NULL_STR)
                }),
            );
            // conntrack prints ntohl() of the value libnetfilter_conntrack
            // decoded (already host order): byte-swapped on little-endian.
            // That undoes the double htonl() of `conntrack -I --orig-vtag`.
            let vtag = |v: u32| u64::from(u32::from_be(v));
            opt(out, "--orig-vtag", s.vtag_orig.map(vtag));
            opt(out, "--reply-vtag", s.vtag_reply.map(vtag));
        }
        proto::IPPROTO_DCCP => {
            out.extend_from_slice(b"-p dccp ");
            ports(out, PORTS);
            let d = pi.dccp.unwrap_or_default();
            opt_str(
                out,
                "--state",
                d.state.map(|s| {
                    proto::DCCP_STATES
                        .get(s as usize)
                        .copied()
                        .unwrap_or(NULL_STR)
                }),
            );
            opt_str(
                out,
                "--role",
                d.role
                    .map(|r| DCCP_ROLES.get(r as usize).copied().unwrap_or(NULL_STR)),
            );
        }
        proto::IPPROTO_ICMP | proto::IPPROTO_ICMPV6 => {
            let (name, ty, code, id): (&[u8], _, _, _) = if p == proto::IPPROTO_ICMP {
                (b"-p icmp ", "--icmp-type", "--icmp-code", "--icmp-id")
            } else {
                (
                    b"-p icmpv6 ",
                    "--icmpv6-type",
                    "--icmpv6-code",
                    "--icmpv6-id",
                )
            };
            out.extend_from_slice(name);
            opt(out, ty, o.icmp_type.map(u64::from));
            opt(out, code, o.icmp_code.map(u64::from));
            opt(out, id, o.icmp_id.map(u64::from));
        }
        proto::IPPROTO_GRE => {
            out.extend_from_slice(b"-p gre ");
            ports(
                out,
                ["--srckey", "--dstkey", "--reply-key-src", "--reply-key-dst"],
            );
        }
        other => {
            out.extend_from_slice(b"-p ");
            dec(out, u64::from(other));
            out.push(b' ');
        }
    }

    while out.len() > start && out.last() == Some(&b' ') {
        out.pop();
    }
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::*;
    use crate::format::plain::tests::*;
    use crate::proto::*;

    fn save(f: &Flow, ev: EventKind) -> String {
        let mut v = Vec::new();
        write_save(&mut v, f, ev).unwrap();
        String::from_utf8(v).unwrap()
    }

    const C: u32 = status::CONFIRMED;

    /// Every `-o save` example of spec §1.8 and the event example.
    #[test]
    fn spec_examples() {
        let mut f = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_TCP, "2.2.2.2", "1.1.1.1", 20, 10),
            C | status::SEEN_REPLY,
            95,
        );
        f.protoinfo = tcp_state(3);
        f.mark = Some(7);
        assert_eq!(save(&f, EventKind::None), "-A -t 95 -u SEEN_REPLY -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p tcp --sport 10 --dport 20 --reply-port-src 20 --reply-port-dst 10 --state ESTABLISHED\n");

        let u = flow(
            AF_INET,
            tbare(200, "1.1.1.1", "2.2.2.2"),
            tbare(200, "2.2.2.2", "1.1.1.1"),
            C,
            29,
        );
        assert_eq!(
            save(&u, EventKind::None),
            "-A -t 29 -u UNSET -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p 200\n"
        );

        let mut z = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.3", "2.2.2.3", 11, 21),
            tp(IPPROTO_TCP, "2.2.2.3", "1.1.1.3", 21, 11),
            C | status::ASSURED,
            99,
        );
        z.protoinfo = tcp_state(1);
        z.zone = Some(5);
        assert_eq!(save(&z, EventKind::None), "-A -t 99 -u ASSURED -w 5 -s 1.1.1.3 -d 2.2.2.3 -r 2.2.2.3 -q 1.1.1.3 -p tcp --sport 11 --dport 21 --reply-port-src 21 --reply-port-dst 11 --state SYN_SENT\n");

        let g = flow(
            AF_INET,
            tp(IPPROTO_GRE, "1.1.1.1", "2.2.2.2", 0x10, 0x20),
            tp(IPPROTO_GRE, "2.2.2.2", "1.1.1.1", 0x20, 0x10),
            C,
            29,
        );
        assert_eq!(save(&g, EventKind::None), "-A -t 29 -u UNSET -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p gre --srckey 16 --dstkey 32 --reply-key-src 32 --reply-key-dst 16\n");

        let i6 = flow(
            AF_INET6,
            ticmp(IPPROTO_ICMPV6, "2001:db8::1", "2001:db8::2", 128, 0, 55),
            ticmp(IPPROTO_ICMPV6, "2001:db8::2", "2001:db8::1", 129, 0, 55),
            C,
            29,
        );
        assert_eq!(save(&i6, EventKind::None), "-A -t 29 -u UNSET -s 2001:db8::1 -d 2001:db8::2 -r 2001:db8::2 -q 2001:db8::1 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 55\n");

        let e = flow(
            AF_INET,
            tp(IPPROTO_UDP, "5.5.5.5", "6.6.6.6", 1, 2),
            tp(IPPROTO_UDP, "6.6.6.6", "5.5.5.5", 2, 1),
            C,
            29,
        );
        assert_eq!(save(&e, EventKind::Update), "-U -t 29 -u UNSET -s 5.5.5.5 -d 6.6.6.6 -r 6.6.6.6 -q 5.5.5.5 -p udp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1\n");
        assert!(save(&e, EventKind::Destroy).starts_with("-D -t 29 "));
        assert!(save(&e, EventKind::New).starts_with("-A -t 29 "));
    }

    /// Lines printed by conntrack 1.4.7 for NATed, zoned and flagged
    /// entries made with `-I`.
    #[test]
    fn tool_examples() {
        let nat = status::SRC_NAT | status::SRC_NAT_DONE | status::DST_NAT_DONE;
        let mut d = flow(
            AF_INET,
            tp(IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 1000, 80),
            tp(IPPROTO_TCP, "10.0.0.9", "10.0.0.1", 80, 1000),
            C | status::SEEN_REPLY | status::ASSURED | status::DST_NAT | nat,
            499,
        );
        d.protoinfo = tcp_state(3);
        assert_eq!(save(&d, EventKind::None), "-A -t 499 -u SEEN_REPLY,ASSURED -s 10.0.0.1 -d 10.0.0.2 -g 10.0.0.9 -q 10.0.0.1 -p tcp --sport 1000 --dport 80 --reply-port-src 80 --reply-port-dst 1000 --state ESTABLISHED\n");

        let s6 = flow(
            AF_INET6,
            tp(IPPROTO_UDP, "2001:db8::1", "2001:db8::2", 1, 2),
            tp(IPPROTO_UDP, "2001:db8::2", "2001:db8::8", 2, 1),
            C | nat,
            499,
        );
        assert_eq!(save(&s6, EventKind::None), "-A -t 499 -u UNSET -s 2001:db8::1 -d 2001:db8::2 -r 2001:db8::2 -n 2001:db8::8 -p udp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1\n");
        // Without the NAT_DONE bits the reply side is -r/-q.
        let mut s6b = s6;
        s6b.status = Some(C);
        assert!(save(&s6b, EventKind::None).contains(" -q 2001:db8::8 "));
        // Without a status at all, differing addresses are enough.
        s6b.status = None;
        assert!(save(&s6b, EventKind::None).contains(" -n 2001:db8::8 "));

        let mut m = flow(
            AF_INET6,
            tp(IPPROTO_UDP, "::ffff:1.2.3.4", "::1.2.3.4", 1, 2),
            tp(IPPROTO_UDP, "::1.2.3.4", "::ffff:1.2.3.4", 2, 1),
            C | status::FIXED_TIMEOUT | status::ASSURED | status::SEEN_REPLY,
            499,
        );
        m.mark = Some(42);
        m.zone = Some(7);
        assert_eq!(save(&m, EventKind::None), "-A -t 499 -u SEEN_REPLY,ASSURED,FIXED_TIMEOUT -w 7 -s ::ffff:1.2.3.4 -d ::1.2.3.4 -r ::1.2.3.4 -q ::ffff:1.2.3.4 -p udp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1\n");

        let mut oz = flow(
            AF_INET,
            tp(IPPROTO_UDP, "1.1.1.1", "2.2.2.2", 3, 2),
            tp(IPPROTO_UDP, "2.2.2.2", "1.1.1.1", 2, 3),
            C,
            499,
        );
        oz.reply.as_mut().unwrap().zone = Some(4);
        assert_eq!(save(&oz, EventKind::None), "-A -t 499 -u UNSET --reply-zone 4 -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p udp --sport 3 --dport 2 --reply-port-src 2 --reply-port-dst 3\n");

        let mut sc = flow(
            AF_INET,
            tp(IPPROTO_SCTP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_SCTP, "2.2.2.2", "1.1.1.1", 20, 10),
            C,
            49,
        );
        sc.protoinfo = sctp_state(4);
        assert_eq!(save(&sc, EventKind::None), "-A -t 49 -u UNSET -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p sctp --sport 10 --dport 20 --reply-port-src 20 --reply-port-dst 10 --state ESTABLISHED --orig-vtag 1 --reply-vtag 258\n");
        sc.protoinfo = sctp_state(8);
        assert!(save(&sc, EventKind::None).contains(" --state (null) "));

        let mut l = flow(
            AF_INET,
            tp(IPPROTO_TCP, "1.1.1.1", "2.2.2.2", 10, 20),
            tp(IPPROTO_TCP, "2.2.2.2", "1.1.1.1", 20, 10),
            C,
            49,
        );
        l.protoinfo = tcp_state(9);
        assert!(save(&l, EventKind::None).ends_with(" --state SYN_SENT2\n"));

        let i = flow(
            AF_INET,
            ticmp(IPPROTO_ICMP, "1.1.1.1", "2.2.2.2", 8, 0, 1226),
            ticmp(IPPROTO_ICMP, "2.2.2.2", "1.1.1.1", 0, 0, 1226),
            C,
            499,
        );
        assert_eq!(save(&i, EventKind::None), "-A -t 499 -u UNSET -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 1226\n");

        let mut dc = flow(
            AF_INET,
            tp(IPPROTO_DCCP, "1.1.1.1", "2.2.2.2", 1, 2),
            tp(IPPROTO_DCCP, "2.2.2.2", "1.1.1.1", 2, 1),
            C,
            5,
        );
        dc.protoinfo = Some(ProtoInfo {
            dccp: Some(DccpInfo {
                state: Some(4),
                role: Some(0),
                handshake_seq: Some(1),
            }),
            ..ProtoInfo::default()
        });
        assert!(save(&dc, EventKind::None)
            .ends_with(" -p dccp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1 --state OPEN --role client\n"));
    }

    #[test]
    fn unsupported_family() {
        let f = Flow {
            family: 7,
            orig: Some(Tuple {
                l4proto: Some(IPPROTO_UDP),
                ..Tuple::default()
            }),
            status: Some(C),
            timeout: Some(29),
            ..Flow::default()
        };
        let mut v = Vec::new();
        assert_eq!(
            write_save(&mut v, &f, EventKind::None),
            Err(SaveError::UnsupportedL3(7))
        );
        assert_eq!(v, b"-A -t 29 -u UNSET \n");
        assert_eq!(
            SaveError::UnsupportedL3(7).to_string(),
            "unsupported l3proto 7, skipping."
        );
    }
}
