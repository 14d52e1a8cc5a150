//! The `conntrack` tool: runs a parsed command line against the kernel
//! (`do_command_ct` of the C tool) and prints what conntrack 1.4.7 prints.
//! `run` returns the process exit status.

pub mod env;
pub mod errors;
pub mod events;
pub mod expect;
pub mod filter;
pub mod output;

use std::io::Write;

use ct_core::flow::{Flow, AF_UNSPEC};
use ct_core::netlink::ct::parse_flow_into;
use ct_core::netlink::msg::*;
use ct_core::netlink::request::{self, DumpFilter, DumpKind};
use ct_core::netlink::stats::{parse_cpu_stats, parse_global_stats, CT_CPU_STAT_NAMES};

use crate::cli::args::{self, opt, CliError, Cmd, Exit, Table};
use crate::cli::protos::cmd;
use crate::nl::{NlFail, Reply, Session};
use env::SysEnv;
use errors::{err2str, BANNER};
use filter::Filter;
use output::{Printer, Site};

/// Prints an `exit_error` message and returns its exit status.
pub fn report(e: &CliError) -> i32 {
    let stderr = std::io::stderr();
    let mut s = stderr.lock();
    let _ = writeln!(s, "{BANNER}: {}", e.msg);
    if e.exit == Exit::Parameter {
        let _ = writeln!(
            s,
            "Try `conntrack -h' or 'conntrack --help' for more information."
        );
    }
    e.exit as i32
}

fn op_failed(errno: i32, command: u32) -> CliError {
    CliError::other(format!("Operation failed: {}", err2str(errno, command)))
}

/// Summary line (`print_stats`): `Err(())` means exit status 1.
fn print_stats(c: &Cmd, counter: u64) -> i32 {
    let msg = match c.cmd {
        cmd::CT_LIST | cmd::CT_GET => "flow entries have been shown.",
        cmd::CT_CREATE => "flow entries have been created.",
        cmd::CT_UPDATE => "flow entries have been updated.",
        cmd::CT_DELETE => "flow entries have been deleted.",
        cmd::CT_EVENT => "flow events have been shown.",
        cmd::EXP_LIST | cmd::EXP_DELETE => "expectations have been shown.",
        cmd::CT_ADD => "flow entries have been added.",
        _ => return 0,
    };
    if c.command == 0 {
        return 0;
    }
    eprintln!("{BANNER}: {counter} {msg}");
    let exempt = [cmd::CT_LIST, cmd::EXP_LIST, cmd::CT_ADD];
    if counter == 0 && !exempt.contains(&c.cmd) {
        1
    } else {
        0
    }
}

/// Entry point of the binary: parse, run, summarise.
pub fn main_with_args(argv: Vec<String>) -> i32 {
    if argv.len() > 2 && (argv[1] == "-R" || argv[1] == "--load-file") {
        return match batch::run_file(&argv[0], &argv[2]) {
            Ok(()) => 0,
            Err(e) => report(&e),
        };
    }
    let stderr = std::io::stderr();
    let parsed = args::parse(argv, &mut stderr.lock());
    let mut c = match parsed {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    match run(&mut c) {
        Ok(counter) => print_stats(&c, counter),
        Err(e) => report(&e),
    }
}

pub mod batch;

/// Runs one parsed command; returns the entry counter.
pub fn run(c: &mut Cmd) -> Result<u64, CliError> {
    let mut sess = Session::open().map_err(|_| CliError::other("Can't open handler"))?;
    let mut p = Printer::new();
    let labels = c.labelmap.clone();
    let env = SysEnv {
        labels: labels.as_ref(),
    };
    let r = match c.cmd {
        cmd::CT_LIST => list(c, &mut sess, &mut p, &env),
        cmd::CT_CREATE | cmd::CT_ADD => create(c, &mut sess),
        cmd::CT_UPDATE => update(c, &mut sess, &mut p, &env),
        cmd::CT_DELETE => delete(c, &mut sess, &mut p, &env),
        cmd::CT_GET => get(c, &mut sess, &mut p, &env),
        cmd::CT_FLUSH => {
            let family = c.family;
            let r = sess.request(
                Reply::Acks(1),
                |w, s| request::ct_flush(w, s, family),
                |_| true,
            );
            eprintln!("{BANNER}: connection tracking table has been emptied.");
            r.map(|_| 0).map_err(|e| op_failed(e.errno(), c.command))
        }
        cmd::CT_EVENT => events::ct_events(c, &mut p, &env),
        cmd::CT_COUNT => count(c, &mut sess, &mut p),
        cmd::CT_STATS => stats(c, &mut sess, &mut p),
        cmd::CT_VERSION => {
            let _ = writeln!(p.out, "{}", errors::VERSION_LINE);
            Ok(0)
        }
        cmd::EXP_LIST
        | cmd::EXP_CREATE
        | cmd::EXP_DELETE
        | cmd::EXP_GET
        | cmd::EXP_FLUSH
        | cmd::EXP_EVENT
        | cmd::EXP_COUNT
        | cmd::EXP_STATS => expect::run(c, &mut sess, &mut p),
        _ => {
            let _ = p.out.write_all(args::usage(&c.progname).as_bytes());
            if c.cmd == cmd::CT_HELP && c.has(opt::PROTO) {
                let _ = p.out.write_all(args::proto_help(c).as_bytes());
            }
            Ok(0)
        }
    };
    let _ = p.out.flush();
    r
}

fn list(c: &mut Cmd, sess: &mut Session, p: &mut Printer, env: &SysEnv) -> Result<u64, CliError> {
    let kind = match c.table {
        Table::Dying => DumpKind::Dying,
        Table::Unconfirmed => DumpKind::Unconfirmed,
        _ => {
            if c.options & opt::COMPARISON != 0 && c.has(opt::ZERO) {
                return Err(CliError::param("Can't use -z with filtering parameters"));
            }
            if c.has(opt::ZERO) {
                DumpKind::CtrZero
            } else {
                DumpKind::Normal
            }
        }
    };
    let (f, kfilter) = if matches!(kind, DumpKind::Dying | DumpKind::Unconfirmed) {
        (Filter::default(), DumpFilter::default())
    } else {
        let f = Filter::init(c)?;
        (
            f,
            DumpFilter {
                mark: c.filter_mark_kernel,
                status: c.filter_status_kernel,
            },
        )
    };
    let family = c.family;
    let mut counter = 0u64;
    let mut flow = Flow::default();
    let mut io_err = None;
    let r = sess.request(
        Reply::Dump,
        |w, s| request::ct_dump(w, s, family, kind, &kfilter),
        |m| {
            let Ok((g, attrs)) = m.nfgen() else {
                return true;
            };
            if parse_flow_into(&mut flow, g.family, attrs).is_err() {
                return true;
            }
            if !filter::accept(c, &f, &flow) {
                return true;
            }
            if let Err(e) = p.entry(c, Site::Dump, &flow, env) {
                io_err.get_or_insert(e);
            }
            counter += 1;
            true
        },
    );
    let _ = p.xml_footer();
    r.map_err(|e| op_failed(e.errno(), c.command))?;
    Ok(counter)
}

fn create(c: &mut Cmd, sess: &mut Session) -> Result<u64, CliError> {
    let mut t = c.tmpl;
    let orig = c.has(opt::ORIG);
    let repl = c.has(opt::REPL);
    if orig && !repl {
        t.setup_reply();
    } else if !orig && repl {
        t.setup_original();
    }
    if c.has(opt::MARK) {
        t.mark = Some(c.mark.0);
    }
    if c.has(opt::ADD_LABEL) {
        t.labels = c.label_modify;
    }
    if let Some(e) = t.build_error() {
        return Err(op_failed(e, c.command));
    }
    let flow = t.to_flow();
    // conntrack 1.4.7 sends NLM_F_EXCL for -A too and treats EEXIST as
    // success there (without counting).
    let flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK | NLM_F_EXCL;
    let family = c.family;
    match sess.request(
        Reply::Acks(1),
        |w, s| request::ct_new(w, s, flags, family, &flow),
        |_| true,
    ) {
        Ok(()) => Ok(1),
        Err(NlFail::Kernel(libc::EEXIST)) if c.cmd == cmd::CT_ADD => Ok(0),
        Err(e) => Err(op_failed(e.errno(), c.command)),
    }
}

fn get(c: &mut Cmd, sess: &mut Session, p: &mut Printer, env: &SysEnv) -> Result<u64, CliError> {
    if let Some(e) = c.tmpl.build_error() {
        return Err(op_failed(e, c.command));
    }
    let tflow = c.tmpl.to_flow();
    let family = c.family;
    let f = Filter {
        family: AF_UNSPEC,
        ..Filter::default()
    };
    let mut counter = 0;
    let mut flow = Flow::default();
    let r = sess.request(
        Reply::Acks(1),
        |w, s| {
            let mut tf = tflow;
            tf.family = family;
            request::ct_get(w, s, NLM_F_REQUEST | NLM_F_ACK, &tf)
        },
        |m| {
            let Ok((g, attrs)) = m.nfgen() else {
                return true;
            };
            if parse_flow_into(&mut flow, g.family, attrs).is_ok() && filter::accept(c, &f, &flow) {
                let _ = p.entry(c, Site::Dump, &flow, env);
                counter += 1;
            }
            true
        },
    );
    let _ = p.out.flush();
    r.map_err(|e| op_failed(e.errno(), c.command))?;
    Ok(counter)
}

fn delete(c: &mut Cmd, sess: &mut Session, p: &mut Printer, env: &SysEnv) -> Result<u64, CliError> {
    let mut modifier = Session::open().map_err(|_| CliError::other("Can't open handler"))?;
    let f = Filter::init(c)?;
    let kfilter = DumpFilter {
        mark: c.filter_mark_kernel,
        status: None,
    };
    let family = c.family;
    let mut counter = 0u64;
    let mut flow = Flow::default();
    let mut fail: Option<CliError> = None;
    let r = sess.request(
        Reply::Dump,
        |w, s| request::ct_dump(w, s, family, DumpKind::Normal, &kfilter),
        |m| {
            if fail.is_some() {
                return false;
            }
            let Ok((g, attrs)) = m.nfgen() else {
                return true;
            };
            if parse_flow_into(&mut flow, g.family, attrs).is_err() || !filter::accept(c, &f, &flow)
            {
                return true;
            }
            let fam = flow.l3_family();
            let del = flow;
            let r = modifier.request(
                Reply::Acks(1),
                |w, s| {
                    let mut d = del;
                    d.family = fam;
                    request::ct_delete(w, s, NLM_F_REQUEST | NLM_F_ACK, &d)
                },
                |_| true,
            );
            if let Err(e) = r {
                fail = Some(op_failed(e.errno(), 1 << cmd::CT_DELETE));
                return false;
            }
            p.render(
                c,
                Site::Delete,
                &flow,
                ct_core::format::EventKind::None,
                env,
            );
            let _ = p.out.write_all(&p.line);
            counter += 1;
            true
        },
    );
    let _ = p.out.flush();
    if let Some(e) = fail {
        return Err(e);
    }
    r.map_err(|e| op_failed(e.errno(), c.command))?;
    Ok(counter)
}

fn update(c: &mut Cmd, sess: &mut Session, p: &mut Printer, env: &SysEnv) -> Result<u64, CliError> {
    let mut modifier = Session::open().map_err(|_| CliError::other("Can't open handler"))?;
    let f = Filter::init(c)?;
    let family = c.family;
    let tmeta = c.tmpl.to_flow();
    let mut counter = 0u64;
    let mut flow = Flow::default();
    let mut fail: Option<CliError> = None;
    let r = sess.request(
        Reply::Dump,
        |w, s| request::ct_dump(w, s, family, DumpKind::Normal, &DumpFilter::default()),
        |m| {
            if fail.is_some() {
                return false;
            }
            let Ok((g, attrs)) = m.nfgen() else {
                return true;
            };
            if parse_flow_into(&mut flow, g.family, attrs).is_err() {
                return true;
            }
            if !filter::nat_ok(c, &flow)
                || !filter::label_ok(c, &flow)
                || !filter::network_ok(&f, &flow)
            {
                return true;
            }
            if let (Some(a), Some(b)) = (c.tmpl.id, flow.id) {
                if a != b {
                    return true;
                }
            }
            if c.options & opt::TUPLE_ORIG != 0 && !orig_matches(c, &flow) {
                return true;
            }
            if c.options & opt::TUPLE_REPL != 0 && !repl_matches(c, &flow) {
                return true;
            }
            let tmp = update_object(c, &tmeta, &flow);
            if unchanged(&tmp, &flow) {
                return true;
            }
            // libnetfilter_conntrack only sends a label mask as long as
            // the labels.
            let mut req = tmp;
            req.labels_mask = tmp
                .labels_mask
                .filter(|m| tmp.labels.map(|l| l.as_bytes().len()) == Some(m.as_bytes().len()));
            // The entry's own family, as conntrack-tools f2b2581 ("unbreak
            // -U command, use correct family"): 1.4.7 sent -f's, AF_UNSPEC
            // without it, and the kernel refused every update.
            let fam = flow.family;
            let r = modifier.request(
                Reply::Acks(1),
                |w, s| request::ct_new(w, s, NLM_F_REQUEST | NLM_F_ACK, fam, &req),
                |_| true,
            );
            if let Err(e) = r {
                let _ = p.out.flush();
                eprintln!(
                    "Operation failed: {}",
                    err2str(e.errno(), 1 << cmd::CT_UPDATE)
                );
            }
            let mut printed = Flow::default();
            let mut got = false;
            let r = modifier.request(
                Reply::Acks(1),
                |w, s| {
                    let mk = w.begin_msg(
                        msg_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET),
                        NLM_F_REQUEST | NLM_F_ACK,
                        s,
                        fam,
                        0,
                    );
                    ct_core::netlink::ct::emit_flow(w, &tmp.request_view());
                    w.end_msg(mk);
                },
                |m| {
                    if let Ok((g, attrs)) = m.nfgen() {
                        if parse_flow_into(&mut printed, g.family, attrs).is_ok() {
                            got = true;
                        }
                    }
                    true
                },
            );
            match r {
                Err(NlFail::Kernel(libc::ENOENT)) => return true,
                Err(e) => {
                    fail = Some(op_failed(e.errno(), 1 << cmd::CT_UPDATE));
                    return false;
                }
                Ok(()) => {}
            }
            if got {
                p.render(
                    c,
                    Site::Print,
                    &printed,
                    ct_core::format::EventKind::None,
                    env,
                );
                let _ = p.out.write_all(&p.line);
            }
            counter += 1;
            true
        },
    );
    let _ = p.out.flush();
    if let Some(e) = fail {
        return Err(e);
    }
    r.map_err(|e| op_failed(e.errno(), c.command))?;
    Ok(counter)
}

/// `nfct_cmp(tmpl, ct, NFCT_CMP_ORIG)`.
fn orig_matches(c: &Cmd, ct: &Flow) -> bool {
    let mut t = crate::cli::template::Template {
        orig: c.tmpl.orig,
        ..Default::default()
    };
    t.orig.zone = None;
    t.matches(ct)
}

/// `nfct_cmp(tmpl, ct, NFCT_CMP_REPL)`.
fn repl_matches(c: &Cmd, ct: &Flow) -> bool {
    let mut t = crate::cli::template::Template {
        repl: c.tmpl.repl,
        ..Default::default()
    };
    t.repl.zone = None;
    t.matches(ct)
}

/// The object `-U` sends: the entry's original tuple plus the command
/// line's meta attributes, with mark, status and labels merged.
fn update_object(c: &Cmd, meta: &Flow, ct: &Flow) -> Flow {
    let mut tmp = Flow {
        family: ct.family,
        orig: ct.orig,
        // the entry's zone: the kernel finds the entry by tuple and zone
        // (1.4.7 sent none, so an entry of a zone other than 0 was not
        // found: 'Operation failed: No such file or directory')
        zone: ct.zone,
        timeout: meta.timeout,
        protoinfo: meta.protoinfo,
        secmark: meta.secmark,
        // NAT options are meta attributes too: the kernel refuses them.
        nat_src: meta.nat_src,
        nat_dst: meta.nat_dst,
        ..Flow::default()
    };
    if c.has(opt::MARK) {
        let old = ct.mark.unwrap_or(0);
        tmp.mark = Some((old & !c.mark.1) ^ c.mark.0);
    }
    if c.has(opt::STATUS) {
        tmp.status = Some(ct.status.unwrap_or(0) | c.tmpl.status.unwrap_or(0));
    }
    if c.has(opt::ADD_LABEL) || c.has(opt::DEL_LABEL) {
        let (l, m) = labels_update(c, ct);
        tmp.labels = l;
        tmp.labels_mask = m;
    }
    tmp
}

fn labels_update(
    c: &Cmd,
    ct: &Flow,
) -> (Option<ct_core::flow::Labels>, Option<ct_core::flow::Labels>) {
    use ct_core::flow::Labels;
    let modify = c.label_modify;
    match ct.labels {
        None => {
            if c.has(opt::ADD_LABEL) {
                (modify, None)
            } else {
                (None, None)
            }
        }
        Some(mut have) => {
            if c.has(opt::ADD_LABEL) {
                let m = modify.unwrap_or_default();
                let mut mask = Labels::zeroed(have.as_bytes().len());
                for i in 0..have.bits() {
                    if m.get(i) {
                        have.set(i, true);
                        mask.set(i, true);
                    } else if have.get(i) {
                        have.set(i, false);
                    }
                }
                (Some(have), Some(mask))
            } else {
                match modify {
                    None => (Some(Labels::zeroed(4)), None),
                    Some(m) => {
                        for i in 0..have.bits() {
                            if m.get(i) {
                                have.set(i, false);
                            }
                        }
                        (Some(have), Some(m))
                    }
                }
            }
        }
    }
}

/// `nfct_cmp(tmp, ct, ALL|MASK)` for the update object: every attribute
/// set in `tmp` equals the entry's.
fn unchanged(tmp: &Flow, ct: &Flow) -> bool {
    if tmp.timeout.is_some() && tmp.timeout != ct.timeout {
        return false;
    }
    if tmp.mark.is_some() && tmp.mark.unwrap_or(0) != ct.mark.unwrap_or(0) {
        return false;
    }
    if tmp.status.is_some() && tmp.status != ct.status {
        return false;
    }
    if tmp.secmark.is_some() && tmp.secmark != ct.secmark {
        return false;
    }
    if let Some(pi) = tmp.protoinfo {
        let cpi = ct.protoinfo.unwrap_or_default();
        if let Some(t) = pi.tcp {
            if t.state.is_some() && t.state != cpi.tcp.and_then(|x| x.state) {
                return false;
            }
        }
        // SCTP verification tags are not compared (1.4.7 reports such an
        // update as "0 flow entries have been updated").
        if let Some(s) = pi.sctp {
            let cs = cpi.sctp.unwrap_or_default();
            if s.state.is_some() && s.state != cs.state {
                return false;
            }
        }
        if let Some(d) = pi.dccp {
            let cd = cpi.dccp.unwrap_or_default();
            if (d.state.is_some() && d.state != cd.state) || (d.role.is_some() && d.role != cd.role)
            {
                return false;
            }
        }
    }
    // An object carrying a label mask never compares equal.
    if tmp.labels_mask.is_some() {
        return false;
    }
    if let Some(l) = tmp.labels {
        let have = ct.labels.unwrap_or_default();
        let n = l.bits().max(have.bits());
        if (0..n).any(|i| l.get(i) != have.get(i)) {
            return false;
        }
    }
    true
}

fn count(c: &Cmd, sess: &mut Session, p: &mut Printer) -> Result<u64, CliError> {
    let mut n: Option<u32> = None;
    let r = sess.request(
        Reply::Single,
        |w, s| {
            let mk = w.begin_msg(
                msg_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS),
                NLM_F_REQUEST,
                s,
                AF_UNSPEC,
                0,
            );
            w.end_msg(mk);
        },
        |m| {
            if let Ok((_, attrs)) = m.nfgen() {
                if let Ok((e, _)) = parse_global_stats(attrs) {
                    n = e;
                }
            }
            true
        },
    );
    let e = match r {
        Ok(()) => {
            if let Some(n) = n {
                let _ = writeln!(p.out, "{}", n as i32);
            }
            return Ok(0);
        }
        Err(e) => e,
    };
    let path = "/proc/sys/net/netfilter/nf_conntrack_count";
    let text =
        std::fs::read_to_string(path).map_err(|_| CliError::other(format!("Can't open {path}")))?;
    let v: i32 = text
        .trim()
        .parse()
        .map_err(|_| CliError::other(format!("Can't read {path}")))?;
    let _ = writeln!(p.out, "{v}");
    // (1.4.7 prints what /proc says, then fails with netlink's error)
    Err(op_failed(e.errno(), c.command))
}

fn stats(c: &Cmd, sess: &mut Session, p: &mut Printer) -> Result<u64, CliError> {
    let mut lines = Vec::new();
    let r = sess.request(Reply::Dump, request::ct_stats_cpu, |m| {
        if let Ok((g, attrs)) = m.nfgen() {
            if let Ok(st) = parse_cpu_stats(g.res_id, attrs) {
                let mut l = format!("cpu={:<4}\t", st.cpu);
                for (i, v) in st.values.iter().enumerate() {
                    if let Some(v) = v {
                        l.push_str(&format!("{}={} ", CT_CPU_STAT_NAMES[i], v));
                    }
                }
                l.push('\n');
                lines.push(l);
            }
        }
        true
    });
    if let Err(e) = r {
        // (1.4.7 prints what /proc says, then fails with netlink's error)
        proc_stats(p)?;
        return Err(op_failed(e.errno(), c.command));
    }
    for l in lines {
        let _ = p.out.write_all(l.as_bytes());
    }
    Ok(0)
}

/// Fallback of `-S`: `/proc/net/stat/nf_conntrack`.
pub fn proc_stats(p: &mut Printer) -> Result<u64, CliError> {
    let text = std::fs::read_to_string("/proc/net/stat/nf_conntrack")
        .map_err(|_| CliError::other("Can't open /proc interface"))?;
    let mut lines = text.lines();
    let names: Vec<&str> = lines
        .next()
        .ok_or_else(|| CliError::other("Can't open /proc interface"))?
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let mut cpu = 0;
    for l in lines {
        let vals: Vec<u32> = l
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|t| u32::from_str_radix(t, 16).unwrap_or(0))
            .collect();
        let _ = write!(p.out, "cpu={cpu:<4}\t");
        for (i, n) in names.iter().enumerate() {
            let _ = write!(p.out, "{}={} ", n, vals.get(i).copied().unwrap_or(0));
        }
        let _ = writeln!(p.out);
        cpu += 1;
    }
    if cpu == 0 {
        return Err(CliError::other("Can't open /proc interface"));
    }
    Ok(0)
}
