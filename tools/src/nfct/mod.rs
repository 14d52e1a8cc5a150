//! `nfct`: conntrack-tools 1.4.7's third program, byte for byte: the
//! kernel's timeout policies (`timeout`: list, get, add, delete, flush,
//! default-set, default-get) and user-space helper objects (`helper`).
//! No options, as 1.4.7 has none: every word is positional. The command
//! line is resolved here, the requests and the text come from
//! `ct_core::netlink::{timeout, cthelper}`, and the kernel is reached
//! through a [`Kernel`] so that the argument rules are tested without it.

mod helper;
mod timeout;
pub mod words;

use std::io::{self, Write};

use ct_core::netlink::msg::Message;

use crate::cli::labels::errno_text;
use crate::nl::{NlFail, Reply, Session};
use words::Subsys;

/// The version nfct reports itself as (and prefixes its messages with).
pub const VERSION: &str = "1.4.7";

const VERSION_MSG: &str = "nfct v1.4.7: utility for the Netfilter's Connection Tracking System\n\
Copyright (C) 2012 Pablo Neira Ayuso <pablo@netfilter.org>\n\
This program comes with ABSOLUTELY NO WARRANTY.\n\
This is free software, and you are welcome to redistribute it under certain \n\
conditions; see LICENSE file distributed in this package for details.\n";

/// One request to the kernel and its answer.
pub trait Kernel {
    /// Sends `req` (one message) and hands every data message of the
    /// reply to `on_data`; a dump ends with `NLMSG_DONE`, anything else
    /// with its ACK. `Err` carries the errno of a kernel error or of a
    /// failed send or receive.
    fn talk(
        &mut self,
        req: &[u8],
        dump: bool,
        on_data: &mut dyn FnMut(&Message),
    ) -> Result<(), i32>;
}

impl Kernel for Session {
    fn talk(
        &mut self,
        req: &[u8],
        dump: bool,
        on_data: &mut dyn FnMut(&Message),
    ) -> Result<(), i32> {
        let reply = if dump { Reply::Dump } else { Reply::Acks(1) };
        self.run(req, 0, reply, |m| {
            on_data(m);
            true
        })
        .map_err(|e: NlFail| e.errno())
    }
}

/// What a run printed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// `nfct_perror` with errno 0.
    fn perror(&mut self, msg: &str) {
        self.stderr.push_str("nfct v1.4.7: ");
        self.stderr.push_str(msg);
        self.stderr.push('\n');
    }

    /// `nfct_perror("netlink error")` after a kernel error.
    fn netlink_error(&mut self, errno: i32) {
        self.perror(&format!("netlink error: {}", errno_text(errno)));
    }
}

/// The failure of a command (its message is already in the output).
pub struct Failed;

/// Builds one request with `build` (given a writer and nfct's sequence
/// number, `time(NULL)`), sends it, and appends what `show` prints of each
/// data message of the reply to stdout; a kernel error becomes
/// `netlink error: ...`.
fn talk<K: Kernel>(
    k: &mut K,
    dump: bool,
    build: impl FnOnce(&mut ct_core::netlink::writer::Writer, u32),
    show: Option<fn(&Message, &mut String)>,
    out: &mut Output,
) -> Result<(), Failed> {
    let mut buf = Vec::with_capacity(256);
    let seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    build(&mut ct_core::netlink::writer::Writer::new(&mut buf), seq);
    let stdout = &mut out.stdout;
    let r = k.talk(&buf, dump, &mut |m| {
        if let Some(f) = show {
            f(m, stdout);
        }
    });
    r.map_err(|e| {
        out.netlink_error(e);
        Failed
    })
}

/// `Usage: ARGV0 command subsystem [parameters]...`
fn usage(out: &mut Output, argv0: &str) {
    out.stderr.push_str(&format!(
        "Usage: {argv0} command subsystem [parameters]...\n"
    ));
}

/// Runs nfct with `argv`; `open` gives the kernel (opened, as 1.4.7
/// does, before the command's arguments are checked). Returns the exit
/// status.
pub fn run<K: Kernel>(
    argv: &[String],
    out: &mut Output,
    open: impl FnOnce() -> io::Result<K>,
) -> i32 {
    let argv0 = argv.first().map_or("nfct", String::as_str);
    if argv.len() < 3 {
        usage(out, argv0);
        return 1;
    }
    let (cmd, subsys) = match words::cmd(&argv[1]) {
        Some(c) => match words::subsys(&argv[2]) {
            Some(s) => (c, s),
            None => {
                out.perror(&format!("Unknown subsystem: {}", argv[1]));
                usage(out, argv0);
                return 1;
            }
        },
        // the older order: subsystem first
        None => {
            let Some(s) = words::subsys(&argv[1]) else {
                out.perror(&format!("Unknown subsystem: {}", argv[1]));
                usage(out, argv0);
                return 1;
            };
            let Some(c) = words::cmd(&argv[2]) else {
                out.perror(&format!("Unknown command: {}", argv[1]));
                usage(out, argv0);
                return 1;
            };
            (c, s)
        }
    };
    if subsys == Subsys::Version {
        out.stdout.push_str(VERSION_MSG);
        return 0;
    }
    let mut k = match open() {
        Ok(k) => k,
        Err(e) => {
            out.perror(&format!(
                "cannot open netlink: {}",
                crate::cli::labels::strerror(&e)
            ));
            return 255;
        }
    };
    let r = match subsys {
        Subsys::Timeout => timeout::run(cmd, argv, &mut k, out),
        _ => helper::run(cmd, argv, &mut k, out),
    };
    match r {
        Ok(()) => 0,
        Err(Failed) => 1,
    }
}

/// The binary's entry point: runs against the kernel and prints (stdout
/// at the end, as a block-buffered C stdout does).
pub fn main_with_args(argv: Vec<String>) -> i32 {
    let mut out = Output::default();
    let code = run(&argv, &mut out, Session::open);
    let _ = io::stderr().write_all(out.stderr.as_bytes());
    let _ = io::stdout().write_all(out.stdout.as_bytes());
    let _ = io::stdout().flush();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that records requests and answers with an errno.
    #[derive(Default)]
    pub(super) struct Fake {
        pub sent: Vec<Vec<u8>>,
        pub answer: Option<i32>,
    }

    impl Kernel for &mut Fake {
        fn talk(
            &mut self,
            req: &[u8],
            _dump: bool,
            _on: &mut dyn FnMut(&Message),
        ) -> Result<(), i32> {
            self.sent.push(req.to_vec());
            self.answer.map_or(Ok(()), Err)
        }
    }

    /// Runs nfct with `args` against a fake kernel answering `answer`:
    /// (exit status, output, requests sent).
    pub(super) fn nfct(args: &[&str], answer: Option<i32>) -> (i32, Output, Vec<Vec<u8>>) {
        let argv: Vec<String> = std::iter::once("nfct")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let mut out = Output::default();
        let mut fake = Fake {
            sent: Vec::new(),
            answer,
        };
        let code = run(&argv, &mut out, || Ok(&mut fake));
        (code, out, fake.sent)
    }

    #[test]
    fn usage_unknown_words_and_version() {
        let (c, o, _) = nfct(&[], None);
        assert_eq!(
            (c, o.stderr.as_str()),
            (1, "Usage: nfct command subsystem [parameters]...\n")
        );
        let (c, o, _) = nfct(&["-h", "timeout"], None);
        assert_eq!(c, 1);
        assert_eq!(
            o.stderr,
            "nfct v1.4.7: Unknown subsystem: -h\nUsage: nfct command subsystem [parameters]...\n"
        );
        let (_, o, _) = nfct(&["list", "foo"], None);
        assert!(o
            .stderr
            .starts_with("nfct v1.4.7: Unknown subsystem: list\n"));
        let (_, o, _) = nfct(&["timeout", "foo"], None);
        assert!(o
            .stderr
            .starts_with("nfct v1.4.7: Unknown command: timeout\n"));
        let (c, o, _) = nfct(&["version", "list", "x"], None);
        assert_eq!((c, o.stdout.as_str()), (0, VERSION_MSG));
        let (c, o, _) = nfct(&["l", "t"], None);
        assert_eq!((c, o.stderr.as_str()), (0, ""));
    }

    #[test]
    fn a_socket_that_cannot_open_exits_255() {
        let argv: Vec<String> = ["nfct", "list", "timeout"].map(String::from).to_vec();
        let mut out = Output::default();
        let code = run::<&mut Fake>(&argv, &mut out, || {
            Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
        });
        assert_eq!(code, 255);
        assert_eq!(
            out.stderr,
            "nfct v1.4.7: cannot open netlink: Address family not supported by protocol\n"
        );
    }

    #[test]
    fn kernel_errors_are_printed_with_strerror() {
        let (c, o, _) = nfct(&["get", "timeout", "nope"], Some(libc::ENOENT));
        assert_eq!(c, 1);
        assert_eq!(
            o.stderr,
            "nfct v1.4.7: netlink error: No such file or directory\n"
        );
    }
}
