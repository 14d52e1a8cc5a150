// ctdump: dumps the conntrack (or expectation) table of the current network
// namespace with ct-core's codec and prints it with `ct_core::format`, the
// way `conntrack -L [-o ...]` does. A development aid and the helper of
// `tests/format_oracle.rs` (which `include!`s this file, hence no `//!`).
//
//     ip netns exec NS cargo run --example ctdump -- [-o WORD[,WORD...]] [expect]
//
// WORDs: extended, id, ktimestamp, labels, xml, save, json.

use std::io::{self, Write};

use ct_core::flow::AF_UNSPEC;
use ct_core::format::{
    write_ctime, write_expect_plain, write_expect_xml, write_json, write_plain, write_save,
    write_xml_flow, Env, EventKind, PlainOpts, Tm, EXP_XML_FOOTER, EXP_XML_HEADER, XML_FOOTER,
    XML_HEADER,
};
use ct_core::netlink::ct::parse_flow;
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::{Messages, NLMSG_DONE, NLMSG_ERROR};
use ct_core::netlink::request::{ct_dump, exp_dump, DumpFilter, DumpKind};
use ct_core::netlink::writer::Writer;
use ct_ring::netlink::{NlSocket, NETLINK_NETFILTER};

/// Wall clock and local time from libc; no connection-label names.
pub struct LocalEnv;

/// `localtime_r` of `secs`.
pub fn local_tm(secs: i64) -> Tm {
    // SAFETY: localtime_r only writes the tm we pass; tzset is implied.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let t: libc::time_t = secs as libc::time_t;
        libc::localtime_r(&t, &mut tm);
        tm
    };
    Tm {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
        min: tm.tm_min as u8,
        sec: tm.tm_sec as u8,
        wday: tm.tm_wday as u8,
    }
}

impl Env for LocalEnv {
    fn now_secs(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
    fn ctime(&self, secs: i64, out: &mut Vec<u8>) {
        write_ctime(out, &local_tm(secs));
    }
    fn label_name(&self, _bit: u32) -> Option<&str> {
        None
    }
}

/// What to print, from `-o` words.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pub opts: PlainOpts,
    pub xml: bool,
    pub save: bool,
    pub json: bool,
    pub expect: bool,
}

/// Parses a comma-separated `-o` list (exact lowercase words).
pub fn parse_words(s: &str) -> Result<Output, String> {
    let mut o = Output::default();
    for w in s.split(',').filter(|w| !w.is_empty()) {
        match w {
            "extended" => o.opts.extended = true,
            "id" => o.opts.id = true,
            "ktimestamp" => o.opts.ktimestamp = true,
            "labels" => o.opts.labels = true,
            "xml" => o.xml = true,
            "save" => o.save = true,
            "json" => o.json = true,
            _ => return Err(format!("unknown output word `{w}'")),
        }
    }
    Ok(o)
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Dumps the table through a fresh netlink socket (in the calling thread's
/// network namespace) and returns what `conntrack -L` would write on
/// stdout, plus the number of records.
pub fn dump(o: &Output) -> io::Result<(Vec<u8>, usize)> {
    let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
    let mut req = Vec::new();
    {
        let mut w = Writer::new(&mut req);
        if o.expect {
            exp_dump(&mut w, 1, AF_UNSPEC);
        } else {
            ct_dump(
                &mut w,
                1,
                AF_UNSPEC,
                DumpKind::Normal,
                &DumpFilter::default(),
            );
        }
    }
    sock.send(&req)?;
    let env = LocalEnv;
    let mut buf = vec![0u8; 1 << 17];
    let mut out = Vec::new();
    let mut header = false;
    let mut count = 0;
    'recv: loop {
        let n = sock.recv(&mut buf, false).map_err(bad)?;
        for m in Messages::new(&buf[..n]) {
            let m = m.map_err(bad)?;
            match m.ty {
                NLMSG_DONE => break 'recv,
                NLMSG_ERROR => {
                    let e = m.error_code().map_err(bad)?;
                    if e != 0 {
                        return Err(io::Error::from_raw_os_error(e));
                    }
                    continue;
                }
                _ => {}
            }
            let (g, attrs) = m.nfgen().map_err(bad)?;
            count += 1;
            if o.xml && !header {
                header = true;
                out.extend_from_slice(if o.expect {
                    EXP_XML_HEADER.as_bytes()
                } else {
                    XML_HEADER.as_bytes()
                });
            }
            if o.expect {
                let e = parse_expect(g.family, attrs).map_err(bad)?;
                if o.xml {
                    write_expect_xml(&mut out, &e, EventKind::None, None);
                } else {
                    write_expect_plain(&mut out, &e, EventKind::None);
                }
                continue;
            }
            let f = parse_flow(g.family, attrs).map_err(bad)?;
            if o.save {
                if let Err(e) = write_save(&mut out, &f, EventKind::None) {
                    eprintln!("WARNING: {e}");
                }
            } else if o.json {
                write_json(&mut out, &f, EventKind::None, &env);
            } else if o.xml {
                write_xml_flow(&mut out, &f, EventKind::None, &o.opts, &env, None);
            } else {
                write_plain(&mut out, &f, EventKind::None, &o.opts, &env);
            }
        }
    }
    if header {
        out.extend_from_slice(if o.expect {
            EXP_XML_FOOTER.as_bytes()
        } else {
            XML_FOOTER.as_bytes()
        });
    }
    Ok((out, count))
}

#[allow(dead_code)]
fn main() {
    let mut args = std::env::args().skip(1);
    let mut words = String::new();
    let mut expect = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" => words.push_str(&args.next().unwrap_or_default()),
            "expect" => expect = true,
            _ => {
                eprintln!("usage: ctdump [-o WORD[,WORD...]] [expect]");
                std::process::exit(2);
            }
        }
        words.push(',');
    }
    let mut o = parse_words(&words).unwrap_or_else(|e| {
        eprintln!("ctdump: {e}");
        std::process::exit(2);
    });
    o.expect = expect;
    match dump(&o) {
        Ok((text, n)) => {
            let _ = io::stdout().write_all(&text);
            let what = if expect {
                "expectations have been shown."
            } else {
                "flow entries have been shown."
            };
            eprintln!("ctdump: {n} {what}");
        }
        Err(e) => {
            eprintln!("ctdump: {e}");
            std::process::exit(1);
        }
    }
}
