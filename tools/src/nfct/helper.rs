//! `nfct ... helper ...`: user-space helper objects (nfnetlink_cthelper),
//! with 1.4.7's argument checks and messages. A kernel without
//! nfnetlink_cthelper answers every request with EINVAL, which is then
//! printed as 1.4.7 prints it.

use ct_core::netlink::cthelper::{builtin, emit_nfct, HelperObj, NfctRequest};
use ct_core::netlink::msg::Message;

use super::words::{self, Cmd};
use super::{Failed, Kernel, Output};

/// A helper object of the reply, printed.
fn print(m: &Message, out: &mut String) {
    if let Ok(h) = m.nfgen().and_then(|(_, a)| HelperObj::parse(a)) {
        h.write_text(out);
        out.push('\n');
    }
}

/// Sends `req`, printing the helpers of the reply when `show`.
fn talk<K: Kernel>(
    k: &mut K,
    req: &NfctRequest<'_>,
    show: bool,
    out: &mut Output,
) -> Result<(), Failed> {
    let printer: Option<fn(&Message, &mut String)> = show.then_some(print);
    let dump = matches!(req, NfctRequest::List);
    super::talk(k, dump, |w, seq| emit_nfct(w, seq, req), printer, out)
}

/// A helper's family and protocol.
type Tuple = (u16, u8);

fn family(w: &str, out: &mut Output) -> Result<u16, Failed> {
    words::family(w).ok_or_else(|| {
        out.perror("unknown layer 3 protocol");
        Failed
    })
}

/// Helpers take `tcp` or `udp` only, exactly.
fn l4(w: &str, out: &mut Output) -> Result<u8, Failed> {
    match w {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        _ => {
            out.perror("unsupported layer 4 protocol");
            Err(Failed)
        }
    }
}

fn usage(argv0: &str, out: &mut Output) {
    out.stderr.push_str(&format!(
        "nfct v1.4.7: Missing command\n{argv0} helper list|add|delete|disable|get|flush [parameters...]\n"
    ));
}

pub(super) fn run<K: Kernel>(
    cmd: Cmd,
    argv: &[String],
    k: &mut K,
    out: &mut Output,
) -> Result<(), Failed> {
    let argc = argv.len();
    let no_more = |out: &mut Output| {
        if argc > 3 {
            out.perror("too many arguments");
            Err(Failed)
        } else {
            Ok(())
        }
    };
    // NAME [FAMILY [PROTO]] of get and delete
    let named = |out: &mut Output| -> Result<(&str, Option<Tuple>), Failed> {
        if argc < 4 {
            out.perror("missing helper policy name");
            return Err(Failed);
        }
        if argc > 6 {
            out.perror("too many arguments");
            return Err(Failed);
        }
        let mut t = None;
        if argc >= 5 {
            t = Some((family(&argv[4], out)?, 0));
        }
        if argc == 6 {
            let p = l4(&argv[5], out)?;
            t = t.map(|(f, _)| (f, p));
        }
        Ok((&argv[3], t))
    };
    // NAME FAMILY PROTO of add and disable, a helper 1.4.7 ships
    let full = |syntax: &str, out: &mut Output| {
        if argc < 6 {
            out.perror(&format!(
                "missing parameters\nsyntax: nfct {syntax} helper name family protocol"
            ));
            return Err(Failed);
        }
        let f = family(&argv[4], out)?;
        let p = l4(&argv[5], out)?;
        match builtin(&argv[3], p) {
            Some(b) => Ok((b, f, p)),
            None => {
                out.perror("that helper is not supported");
                Err(Failed)
            }
        }
    };
    match cmd {
        Cmd::List => {
            no_more(out)?;
            talk(k, &NfctRequest::List, true, out)
        }
        Cmd::Flush => {
            no_more(out)?;
            talk(k, &NfctRequest::Flush, false, out)
        }
        Cmd::Get => {
            let (n, t) = named(out)?;
            talk(k, &NfctRequest::Get(n, t), true, out)
        }
        Cmd::Delete => {
            let (n, t) = named(out)?;
            talk(k, &NfctRequest::Delete(n, t), false, out)
        }
        Cmd::Add => {
            let (b, f, p) = full("add", out)?;
            talk(k, &NfctRequest::Add(b, f, p), false, out)
        }
        Cmd::Disable => {
            let (_, f, p) = full("disable", out)?;
            talk(k, &NfctRequest::Disable(&argv[3], f, p), false, out)
        }
        Cmd::DefaultSet | Cmd::DefaultGet => {
            out.perror(&format!("Unknown command: {}", argv[2]));
            usage(&argv[0], out);
            Err(Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::nfct;

    #[test]
    fn helper_arguments_and_messages() {
        for (args, err) in [
            (&["add", "helper", "ftp", "inet"][..], "nfct v1.4.7: missing parameters\nsyntax: nfct add helper name family protocol\n"),
            (&["disable", "helper", "ftp"], "nfct v1.4.7: missing parameters\nsyntax: nfct disable helper name family protocol\n"),
            (&["add", "helper", "ftp", "inet", "udp"], "nfct v1.4.7: that helper is not supported\n"),
            (&["add", "helper", "ftp", "inet", "sctp"], "nfct v1.4.7: unsupported layer 4 protocol\n"),
            (&["add", "helper", "ftp", "ip", "tcp"], "nfct v1.4.7: unknown layer 3 protocol\n"),
            (&["get", "helper"], "nfct v1.4.7: missing helper policy name\n"),
            (&["get", "helper", "a", "inet", "tcp", "x"], "nfct v1.4.7: too many arguments\n"),
            (&["list", "helper", "x"], "nfct v1.4.7: too many arguments\n"),
            (&["default-set", "helper"], "nfct v1.4.7: Unknown command: helper\nnfct v1.4.7: Missing command\nnfct helper list|add|delete|disable|get|flush [parameters...]\n"),
            (&["helper", "default-get"], "nfct v1.4.7: Unknown command: default-get\nnfct v1.4.7: Missing command\nnfct helper list|add|delete|disable|get|flush [parameters...]\n"),
        ] {
            let (c, o, sent) = nfct(args, None);
            assert_eq!((c, o.stderr.as_str()), (1, err), "{args:?}");
            assert!(sent.is_empty());
        }
        let (c, o, sent) = nfct(
            &["add", "helper", "ftp", "inet", "tcp", "extra"],
            Some(libc::EINVAL),
        );
        assert_eq!(
            (c, o.stderr.as_str()),
            (1, "nfct v1.4.7: netlink error: Invalid argument\n")
        );
        assert_eq!(sent.len(), 1);
    }
}
