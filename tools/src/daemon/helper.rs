//! `Helper { Type ... }`: user-space connection-tracking helpers.
//!
//! 1.4.7 registers each helper with the kernel (nfnetlink_cthelper) and
//! then handles the packets the kernel queues to it over NFQUEUE. This
//! daemon does not implement the helpers themselves, so it never runs
//! with a `Helper` section: it registers them as 1.4.7 does, so that it
//! fails the same way where the kernel refuses them (no
//! nfnetlink_cthelper, as on this project's test machines), and where the
//! kernel accepts one it withdraws it and refuses to start, saying why,
//! rather than start without the helpers the configuration asks for.

use ct_core::config::{HelperL3, HelperSection};
use ct_core::netlink::cthelper::{self, Helper, Policy};

use super::log::Logger;
use crate::cli::labels::errno_text;
use crate::nl::{Reply, Session};

/// Registers the helpers, logging as 1.4.7 does; always an `Err` when
/// there is at least one (the message to log before "cannot start").
pub fn setup(sec: &HelperSection, log: &mut Logger) -> Result<(), String> {
    // Upstream keeps the instances newest first and stops at the first
    // failure; and where the first is accepted, it is withdrawn and the
    // daemon refuses to start: only that one is ever tried.
    if let Some(h) = sec.helpers.last() {
        log.notice(&format!(
            "configuring helper `{}' with queuenum={} and queuelen={}",
            h.name, h.queue_num, h.queue_len
        ));
        let policies: Vec<Policy<'_>> = h
            .policies
            .iter()
            .map(|p| {
                log.notice(&format!(
                    "policy name={} expect_timeout={} expect_max={}",
                    p.name, p.expect_timeout, p.expect_max
                ));
                Policy {
                    name: &p.name,
                    expect_max: p.expect_max,
                    expect_timeout: p.expect_timeout,
                }
            })
            .collect();
        if policies.is_empty() {
            return Err("you have to define one policy for helper".into());
        }
        let l3 = match h.l3 {
            HelperL3::Inet => libc::AF_INET as u16,
            HelperL3::Inet6 => libc::AF_INET6 as u16,
        };
        let obj = Helper {
            name: &h.name,
            l3,
            l4: h.l4.protonum(),
            queue_num: h.queue_num,
            policies: &policies,
            priv_data_len: sec.setup.then_some(0),
            status: cthelper::STATUS_ENABLED,
        };
        let mut s =
            Session::open().map_err(|e| format!("can't open the cthelper netlink socket: {e}"))?;
        // NLM_F_EXCL: a helper of that name someone else registered (a
        // 1.4.7 daemon, `nfct add helper`) is neither changed nor removed
        let res = s.request(
            Reply::Acks(1),
            |w, seq| cthelper::helper_new(w, seq, &obj, true),
            |_| true,
        );
        match res {
            Err(e) if e.errno() == libc::EEXIST => {
                return Err(format!(
                    "trying to configure cthelper `{}': a helper of that name is already registered (left as it is); user-space helpers are not implemented by this conntrackd",
                    h.name
                ));
            }
            Err(e) => {
                return Err(format!(
                    "trying to configure cthelper `{}': {}",
                    h.name,
                    errno_text(e.errno())
                ));
            }
            Ok(()) => {}
        }
        // The kernel took it, but nothing here would serve its queue.
        if let Err(e) = s.request(
            Reply::Acks(1),
            |w, seq| cthelper::helper_del(w, seq, &h.name, l3, obj.l4),
            |_| true,
        ) {
            log.error(&format!(
                "can't withdraw cthelper `{}': {}",
                h.name,
                errno_text(e.errno())
            ));
        }
        return Err(format!(
            "user-space helpers are not implemented by this conntrackd: `{}' was withdrawn; remove the Helper section",
            h.name
        ));
    }
    Ok(())
}
