//! `nfct ... timeout ...`: timeout policies and the namespace's protocol
//! defaults, with 1.4.7's argument checks, in its order, and its
//! messages.

use ct_core::netlink::msg::Message;
use ct_core::netlink::timeout::{emit, state_attr, states, PolicyView, Request};

use super::words::{self, Cmd};
use super::{Failed, Kernel, Output};

/// `nfct_timeout_cb`: a data message of the reply, printed.
fn print(m: &Message, out: &mut String) {
    let Ok((_, attrs)) = m.nfgen() else { return };
    let Ok(p) = PolicyView::parse(attrs).and_then(|v| v.decode()) else {
        return;
    };
    p.write_text(out);
    out.push('\n');
}

/// Sends `req`, printing the policies of the reply when `show`.
fn talk<K: Kernel>(
    k: &mut K,
    req: &Request<'_>,
    show: bool,
    out: &mut Output,
) -> Result<(), Failed> {
    let printer: Option<fn(&Message, &mut String)> = show.then_some(print);
    super::talk(k, req.is_dump(), |w, seq| emit(w, seq, req), printer, out)
}

/// FAMILY PROTO [STATE VALUE]...: (l3, l4, timeouts ascending).
/// What FAMILY PROTO [STATE VALUE]... give: the family, the protocol and
/// the (attribute, seconds) timeouts.
struct Parsed {
    l3: u16,
    l4: u8,
    data: Vec<(u16, u32)>,
}

fn parse(w: &[String], out: &mut Output) -> Result<Parsed, Failed> {
    let Some(l3) = words::family(&w[0]) else {
        out.perror("unknown layer 3 protocol");
        return Err(Failed);
    };
    let proto = &w[1];
    let Some(number) = words::l4proto_number(proto) else {
        out.perror("unknown layer 4 protocol");
        return Err(Failed);
    };
    // states are looked up with the whole number (262 has none), the
    // wire takes its low byte
    let l4 = number as u8;
    let table_l4 = u8::try_from(number).ok();
    let mut data: Vec<(u16, u32)> = Vec::new();
    let mut rest = &w[2..];
    while rest.len() > 1 {
        let Some(attr) = table_l4.and_then(|l4| state_attr(l4, &rest[0])) else {
            out.stderr.push_str(&format!(
                "nfct v1.4.7: Wrong state name: `{}' for protocol `{}'\n",
                rest[0], proto
            ));
            return Err(Failed);
        };
        let v = words::value(&rest[1]);
        match data.iter_mut().find(|(a, _)| *a == attr) {
            Some(e) => e.1 = v,
            None => data.push((attr, v)),
        }
        rest = &rest[2..];
    }
    if !rest.is_empty() {
        out.perror("missing value for this timeout");
        return Err(Failed);
    }
    data.sort_unstable();
    debug_assert!(data.iter().all(|&(a, _)| (a as usize) <= states(l4).len()));
    Ok(Parsed { l3, l4, data })
}

pub(super) fn run<K: Kernel>(
    cmd: Cmd,
    argv: &[String],
    k: &mut K,
    out: &mut Output,
) -> Result<(), Failed> {
    let argc = argv.len();
    let name = |out: &mut Output| -> Result<&str, Failed> {
        if argc < 4 {
            out.perror("missing timeout policy name");
            Err(Failed)
        } else if argc > 4 {
            out.perror("too many arguments");
            Err(Failed)
        } else {
            Ok(&argv[3])
        }
    };
    let no_more = |out: &mut Output| {
        if argc > 3 {
            out.perror("too many arguments");
            Err(Failed)
        } else {
            Ok(())
        }
    };
    match cmd {
        Cmd::List => {
            no_more(out)?;
            talk(k, &Request::List, true, out)
        }
        Cmd::Get => {
            let n = name(out)?;
            talk(k, &Request::Get(n), true, out)
        }
        Cmd::Delete => {
            let n = name(out)?;
            talk(k, &Request::Delete(n), false, out)
        }
        Cmd::Flush => {
            no_more(out)?;
            talk(k, &Request::Flush, false, out)
        }
        Cmd::Add => {
            if argc < 6 {
                out.perror("missing parameters\nsyntax: nfct add timeout name family protocol state1 timeout1 ...");
                return Err(Failed);
            }
            let Parsed { l3, l4, data } = parse(&argv[4..], out)?;
            let req = Request::New {
                name: &argv[3],
                l3,
                l4,
                data: &data,
            };
            talk(k, &req, false, out)
        }
        Cmd::DefaultSet => {
            if argc < 6 {
                out.perror("missing parameters\nsyntax: nfct default-set timeout family protocol state1 timeout1...");
                return Err(Failed);
            }
            let Parsed { l3, l4, data } = parse(&argv[3..], out)?;
            talk(
                k,
                &Request::DefaultSet {
                    l3,
                    l4,
                    data: &data,
                },
                true,
                out,
            )
        }
        Cmd::DefaultGet => {
            if argc < 5 {
                out.perror("missing parameters\nsyntax: nfct default-get timeout family protocol");
                return Err(Failed);
            }
            let Some(l3) = words::family(&argv[3]) else {
                out.perror("unknown layer 3 protocol");
                return Err(Failed);
            };
            let Some(l4) = words::l4proto(&argv[4]) else {
                out.perror("unknown layer 4 protocol");
                return Err(Failed);
            };
            talk(k, &Request::DefaultGet { l3, l4 }, true, out)
        }
        Cmd::Disable => {
            let argv0 = &argv[0];
            out.stderr.push_str(&format!(
                "nfct v1.4.7: Missing command\n{argv0} <list|add|delete|get|default-set|default-get|flush> timeout [<parameters>, ...]\n"
            ));
            Err(Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::nfct;
    use ct_core::netlink::msg::Messages;
    use ct_core::netlink::timeout::{Policy, PolicyView};

    fn sent_policy(b: &[u8]) -> (u16, u16, Policy) {
        let m = Messages::new(b).next().unwrap().unwrap();
        let (_, attrs) = m.nfgen().unwrap();
        (
            m.msg(),
            m.flags,
            PolicyView::parse(attrs).unwrap().decode().unwrap(),
        )
    }

    #[test]
    fn add_parses_pairs_any_case_last_wins_ascending() {
        let (c, o, sent) = nfct(
            &[
                "add",
                "timeout",
                "t",
                "inet",
                "tcp",
                "close",
                "6",
                "ESTABLISHED",
                "5",
                "Close",
                "7",
            ],
            None,
        );
        assert_eq!((c, o.stderr.as_str()), (0, ""));
        let (ty, flags, p) = sent_policy(&sent[0]);
        assert_eq!((ty, flags), (0, 0x405));
        assert_eq!(p.timeouts, Some(vec![(3, 5), (8, 7)]));
    }

    #[test]
    fn argument_errors_in_1_4_7s_order() {
        for (args, err) in [
            (&["add", "timeout", "t", "inet"][..], "nfct v1.4.7: missing parameters\nsyntax: nfct add timeout name family protocol state1 timeout1 ...\n"),
            (&["add", "timeout", "t", "ipv4", "tcp"], "nfct v1.4.7: unknown layer 3 protocol\n"),
            (&["add", "timeout", "t", "inet", "Tcp"], "nfct v1.4.7: unknown layer 4 protocol\n"),
            (&["add", "timeout", "t", "inet", "tcp", "foo", "1"], "nfct v1.4.7: Wrong state name: `foo' for protocol `tcp'\n"),
            (&["add", "timeout", "t", "inet", "udp", "foo"], "nfct v1.4.7: missing value for this timeout\n"),
            (&["add", "timeout", "t", "inet", "udp", "unreplied", "1", "foo", "2"], "nfct v1.4.7: Wrong state name: `foo' for protocol `udp'\n"),
            (&["add", "timeout", "t", "inet", "mptcp", "established", "1"], "nfct v1.4.7: Wrong state name: `established' for protocol `mptcp'\n"),
            (&["get", "timeout"], "nfct v1.4.7: missing timeout policy name\n"),
            (&["delete", "timeout", "a", "b"], "nfct v1.4.7: too many arguments\n"),
            (&["list", "timeout", "-o", "xml"], "nfct v1.4.7: too many arguments\n"),
            (&["default-set", "timeout", "inet", "udp"], "nfct v1.4.7: missing parameters\nsyntax: nfct default-set timeout family protocol state1 timeout1...\n"),
            (&["default-set", "timeout", "inet", "udp", "replied"], "nfct v1.4.7: missing value for this timeout\n"),
            (&["default-get", "timeout", "inet"], "nfct v1.4.7: missing parameters\nsyntax: nfct default-get timeout family protocol\n"),
            (&["disable", "timeout"], "nfct v1.4.7: Missing command\nnfct <list|add|delete|get|default-set|default-get|flush> timeout [<parameters>, ...]\n"),
        ] {
            let (c, o, sent) = nfct(args, None);
            assert_eq!((c, o.stderr.as_str()), (1, err), "{args:?}");
            assert!(sent.is_empty(), "{args:?} sent a request");
        }
    }

    #[test]
    fn what_is_sent() {
        // add without pairs goes out without DATA (the kernel says EINVAL)
        let (c, _, sent) = nfct(&["add", "timeout", "t", "inet", "udp"], Some(libc::EINVAL));
        assert_eq!(c, 1);
        assert_eq!(sent_policy(&sent[0]).2.timeouts, None);
        // mptcp goes on the wire as its low byte; extra words of
        // default-get are ignored
        let (c, _, sent) = nfct(
            &["default-get", "timeout", "inet6", "mptcp", "x", "y"],
            None,
        );
        assert_eq!(c, 0);
        let (ty, _, p) = sent_policy(&sent[0]);
        assert_eq!((ty, p.l3, p.l4), (4, Some(10), Some(6)));
        // the legacy order
        let (c, _, sent) = nfct(&["timeout", "list"], None);
        assert_eq!(c, 0);
        let m = Messages::new(&sent[0]).next().unwrap().unwrap();
        assert_eq!((m.msg(), m.flags), (1, 0x301));
        let (_, attrs) = m.nfgen().unwrap();
        assert_eq!(attrs.count(), 0);
    }
}
