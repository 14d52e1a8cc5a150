//! [`KernelTable`] over ctnetlink: dumps (through the configured Filter),
//! creates and deletes, each on its own request socket.

use ct_core::config::Filter;
use ct_core::flow::{Flow, AF_UNSPEC};
use ct_core::netlink::ct::parse_flow_into;
use ct_core::netlink::msg::*;
use ct_core::netlink::request::{self, DumpFilter, DumpKind};
use ct_core::table::KernelTable;

use crate::nl::{Reply, Session};
use ct_core::filter;

/// Taken around each batch of writes to the kernel's table that a
/// commit's committers send (each its own socket, every lane's): the
/// kernel applies them within the `sendmsg`, one entry at a time under the
/// nfnetlink subsystem mutex, and a second writer spins on that mutex
/// (`mutex_spin_on_owner`) for as long as the first holds it: two
/// committers took twice the CPU of one for the same time. Waiting here
/// sleeps instead, while the other committers build their next batch.
/// (Injecting lanes do not take it: a shared lock on their per-datagram
/// path bought 5 % of CPU at 50k flows/s with two lanes, within noise.)
static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This thread's turn to write a batch into the kernel's table (see
/// [`WRITING`]); the next writer goes when the guard drops.
pub fn write_turn() -> std::sync::MutexGuard<'static, ()> {
    WRITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The kernel table of the current network namespace.
pub struct NetlinkTable {
    sess: Session,
    filter: Option<Filter>,
}

impl NetlinkTable {
    pub fn open(filter: Option<Filter>) -> std::io::Result<NetlinkTable> {
        Ok(NetlinkTable {
            sess: Session::open()?,
            filter,
        })
    }
}

impl KernelTable for NetlinkTable {
    fn dump(&mut self, f: &mut dyn FnMut(&Flow)) -> Result<(), i32> {
        let mut flow = Flow::default();
        let flt = self.filter.as_ref();
        self.sess
            .request(
                Reply::Dump,
                |w, s| request::ct_dump(w, s, AF_UNSPEC, DumpKind::Normal, &DumpFilter::default()),
                |m| {
                    let Ok((g, attrs)) = m.nfgen() else {
                        return true;
                    };
                    if parse_flow_into(&mut flow, g.family, attrs).is_ok()
                        && flt.is_none_or(|x| filter::accept(x, &flow))
                    {
                        f(&flow);
                    }
                    true
                },
            )
            .map_err(|e| e.errno())
    }

    fn create(&mut self, flows: &[Flow]) -> Vec<Result<(), i32>> {
        flows
            .iter()
            .map(|fl| ct_new(&mut self.sess, fl, NLM_F_CREATE | NLM_F_EXCL))
            .collect()
    }

    fn delete(&mut self, fl: &Flow) -> Result<(), i32> {
        destroy(&mut self.sess, fl)
    }
}

/// Reads the kernel's entry of `fl`'s tuple (and zone) over `sess` (the
/// lane keeps one: an event of a helper-mangled entry comes with each of
/// its changes) and copies its NAT sequence adjustment into `fl`.
pub fn read_seq_adj(sess: &mut Session, fl: &mut Flow) -> Result<(), i32> {
    let mut got = Flow::default();
    let ask = *fl;
    sess.request(
        Reply::Acks(1),
        |w, s| request::ct_get(w, s, NLM_F_REQUEST | NLM_F_ACK, &ask),
        |m| {
            if let Ok((g, attrs)) = m.nfgen() {
                let _ = parse_flow_into(&mut got, g.family, attrs);
            }
            true
        },
    )
    .map_err(|e| e.errno())?;
    fl.seq_adj_orig = got.seq_adj_orig;
    fl.seq_adj_reply = got.seq_adj_reply;
    Ok(())
}

/// Sends `fl` as IPCTNL_MSG_CT_NEW with `flags` (CREATE|EXCL to create,
/// none to update) and waits for the ACK.
pub fn ct_new(sess: &mut Session, fl: &Flow, flags: u16) -> Result<(), i32> {
    sess.request(
        Reply::Acks(1),
        |w, s| request::ct_new(w, s, flags | NLM_F_REQUEST | NLM_F_ACK, fl.l3_family(), fl),
        |_| true,
    )
    .map_err(|e| e.errno())
}

/// Deletes the kernel entry of `fl`'s original tuple (and zone).
pub fn destroy(sess: &mut Session, fl: &Flow) -> Result<(), i32> {
    let t = fl.orig.unwrap_or_default();
    sess.request(
        Reply::Acks(1),
        |w, s| {
            request::ct_delete_tuple(w, s, NLM_F_REQUEST | NLM_F_ACK, fl.l3_family(), &t, fl.zone)
        },
        |_| true,
    )
    .map_err(|e| e.errno())
}
