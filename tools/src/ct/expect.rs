//! The expectation-table commands (`-L/-G/-D/-I/-F/-E/-C/-S expect`).

use std::io::Write;

use ct_core::flow::Expect;
use ct_core::format::EventKind;
use ct_core::netlink::exp::parse_expect;
use ct_core::netlink::msg::*;
use ct_core::netlink::request;
use ct_core::netlink::stats::{parse_cpu_stats, EXP_CPU_STAT_NAMES};
use ct_ring::netlink::{NlSocket, RecvBatch, RecvError, NETLINK_NETFILTER};

use super::events::{finish, install_signals, stopped, ENOBUFS_WARNING};
use super::output::Printer;
use crate::cli::args::{ev, opt, CliError, Cmd};
use crate::cli::protos::cmd;
use crate::cli::template::to_tuple;
use crate::nl::{Reply, Session};

fn failed(e: i32, c: &Cmd) -> CliError {
    super::op_failed(e, c.command)
}

fn dump(c: &Cmd, sess: &mut Session, mut each: impl FnMut(&Expect)) -> Result<(), CliError> {
    let family = c.family;
    sess.request(
        Reply::Dump,
        |w, s| request::exp_dump(w, s, family),
        |m| {
            if let Ok((g, attrs)) = m.nfgen() {
                if let Ok(e) = parse_expect(g.family, attrs) {
                    each(&e);
                }
            }
            true
        },
    )
    .map_err(|e| failed(e.errno(), c))
}

/// Runs an expectation command; returns the summary counter.
pub fn run(c: &mut Cmd, sess: &mut Session, p: &mut Printer) -> Result<u64, CliError> {
    let t = &c.tmpl;
    let orig = to_tuple(
        &t.orig,
        (t.orig.icmp_type, t.orig.icmp_code, t.orig.icmp_id),
    );
    match c.cmd {
        cmd::EXP_LIST => {
            let mut n = 0;
            let r = dump(c, sess, |e| {
                let _ = p.expect(c, e, EventKind::None);
                n += 1;
            });
            let _ = p.expect_footer();
            r.map(|_| n)
        }
        cmd::EXP_COUNT => {
            let mut n = 0i32;
            let r = dump(c, sess, |_| n += 1);
            // (1.4.7 prints the count even when the dump failed, then the
            // error)
            let _ = writeln!(p.out, "{n}");
            r.map(|_| 0)
        }
        cmd::EXP_CREATE => {
            let e = Expect {
                family: c.family,
                master: Some(orig),
                tuple: Some(to_tuple(&c.exptuple, (None, None, None))),
                mask: Some(to_tuple(&c.mask, (None, None, None))),
                timeout: c.tmpl.timeout,
                ..Expect::default()
            };
            let flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK | NLM_F_EXCL;
            sess.request(
                Reply::Acks(1),
                |w, s| request::exp_new(w, s, flags, &e),
                |_| true,
            )
            .map_err(|e| failed(e.errno(), c))?;
            Ok(0)
        }
        cmd::EXP_DELETE => {
            let family = c.family;
            sess.request(
                Reply::Acks(1),
                |w, s| request::exp_by_tuple(w, s, IPCTNL_MSG_EXP_DELETE, family, &orig),
                |_| true,
            )
            .map_err(|e| failed(e.errno(), c))?;
            Ok(0)
        }
        cmd::EXP_GET => {
            let family = c.family;
            sess.request(
                Reply::Acks(1),
                |w, s| {
                    let mk = w.begin_msg(
                        msg_type(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET),
                        NLM_F_REQUEST | NLM_F_ACK,
                        s,
                        family,
                        0,
                    );
                    ct_core::netlink::ct::emit_tuple(
                        w,
                        ct_core::netlink::exp::cta_exp::MASTER,
                        &orig,
                    );
                    w.end_msg(mk);
                },
                |m| {
                    if let Ok((g, attrs)) = m.nfgen() {
                        if let Ok(e) = parse_expect(g.family, attrs) {
                            let _ = p.expect(c, &e, EventKind::None);
                        }
                    }
                    true
                },
            )
            .map_err(|e| failed(e.errno(), c))?;
            Ok(0)
        }
        cmd::EXP_FLUSH => {
            let family = c.family;
            let r = sess.request(
                Reply::Acks(1),
                |w, s| request::exp_flush(w, s, family),
                |_| true,
            );
            eprintln!(
                "{}: expectation table has been emptied.",
                super::errors::BANNER
            );
            r.map_err(|e| failed(e.errno(), c))?;
            Ok(0)
        }
        cmd::EXP_STATS => {
            let mut lines = Vec::new();
            let r = sess.request(Reply::Dump, request::exp_stats_cpu, |m| {
                if let Ok((g, attrs)) = m.nfgen() {
                    if let Ok(st) = parse_cpu_stats(g.res_id, attrs) {
                        let mut l = format!("cpu={:<4}\t", st.cpu);
                        for (i, v) in st.values.iter().enumerate().take(4) {
                            if let Some(v) = v {
                                l.push_str(&format!("{}={} ", EXP_CPU_STAT_NAMES[i], v));
                            }
                        }
                        l.push('\n');
                        lines.push(l);
                    }
                }
                true
            });
            if let Err(e) = r {
                // (as 1.4.7: what /proc says, then netlink's error)
                super::proc_stats(p)?;
                return Err(failed(e.errno(), c));
            }
            for l in lines {
                let _ = p.out.write_all(l.as_bytes());
            }
            Ok(0)
        }
        cmd::EXP_EVENT => events(c, p),
        _ => Ok(0),
    }
}

fn events(c: &Cmd, p: &mut Printer) -> Result<u64, CliError> {
    let groups = if c.has(opt::EVENT_MASK) {
        let mut g = 0;
        if c.event_mask & ev::NEW != 0 {
            g |= 0x08;
        }
        if c.event_mask & ev::UPD != 0 {
            g |= 0x10;
        }
        if c.event_mask & ev::DEL != 0 {
            g |= 0x20;
        }
        g
    } else {
        0x38
    };
    let sock = NlSocket::open(NETLINK_NETFILTER, groups)
        .map_err(|_| CliError::other("Can't open handler"))?;
    let _ = sock.set_rcvbuf(super::events::EVENT_RCVBUF);
    install_signals();
    let mut batch = RecvBatch::new(16, 16 << 10);
    let mut counter = 0u64;
    while !stopped() {
        let n = match sock.recv_batch(&mut batch, false) {
            Ok(n) => n,
            Err(RecvError::Overrun) => {
                let _ = p.out.flush();
                eprint!("{ENOBUFS_WARNING}");
                continue;
            }
            Err(_) => continue,
        };
        for i in 0..n {
            for m in Messages::new(batch.get(i)) {
                let Ok(m) = m else { break };
                if m.subsys() != NFNL_SUBSYS_CTNETLINK_EXP {
                    continue;
                }
                let kind = match m.msg() {
                    IPCTNL_MSG_EXP_NEW if m.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => {
                        EventKind::New
                    }
                    IPCTNL_MSG_EXP_NEW => EventKind::Update,
                    IPCTNL_MSG_EXP_DELETE => EventKind::Destroy,
                    _ => EventKind::None,
                };
                if let Ok((g, attrs)) = m.nfgen() {
                    if let Ok(e) = parse_expect(g.family, attrs) {
                        let _ = p.expect(c, &e, kind);
                        counter += 1;
                    }
                }
            }
        }
        let _ = p.out.flush();
    }
    if p.xml_open {
        let _ = p.out.write_all(ct_core::format::EXP_XML_FOOTER.as_bytes());
        p.xml_open = false;
    }
    finish(p, counter, "expectation events")
}
