//! The replicator's [`Io`] over the real world: datagrams go out on the
//! sync link through the reactor (sealed when `Authentication` is on,
//! waiting for a send slot when they are all busy, the TCP error queue
//! first), injected states go to the kernel through the inject handles,
//! dumps read the kernel (through the Filter, each flow marked with
//! whether it is the lane's share), notes
//! become 1.4.7's log lines and ended flows the stats-mode flow log.

use std::time::{Duration, Instant};

use ct_core::config::{Filter, SyncSection};
use ct_core::ctl::stats::ChannelStats;
use ct_core::flow::{Expect, Flow};
use ct_core::format::{self, EventKind, PlainOpts};
use ct_core::table::KernelTable;
use ct_ring::reactor::{Outbox, Reactor, SockId};
use ct_transport::replicator::{Io, Note};
use ct_transport::wire::Op;

use super::inject::Inject;
use super::kernel::NetlinkTable;
use super::lanes::Lane;
use super::log::{FlowLog, Logger};
use super::sync::{SyncLink, TcpLink};
use crate::ct::env::SysEnv;
use crate::nl::Session;

/// The daemon's side of one replicator call.
pub struct World<'a, O: Outbox> {
    pub o: &'a mut O,
    pub link: Option<&'a mut SyncLink>,
    pub inject: Option<&'a mut Inject>,
    pub exp_inject: Option<&'a mut Session>,
    pub sync: Option<&'a SyncSection>,
    pub filter: Option<&'a Filter>,
    pub lane: Lane,
    pub log: &'a mut Logger,
    pub flowlog: Option<&'a mut FlowLog>,
    pub line: &'a mut Vec<u8>,
    /// The lane's request socket for reading entries back (opened on
    /// first use, dropped after an error other than ENOENT).
    pub getter: &'a mut Option<Session>,
}

impl<O: Outbox> Io for World<'_, O> {
    fn send(&mut self, d: &[u8]) {
        if let Some(l) = self.link.as_deref_mut() {
            link_send(self.o, l, d);
        }
    }

    fn inject(&mut self, op: Op, f: &Flow) {
        if let (Some(i), Some(sync)) = (self.inject.as_deref_mut(), self.sync) {
            let log = &mut *self.log;
            i.queue(op, f, sync, &mut |e| log.warning(&e));
        }
    }

    fn inject_flush(&mut self) {
        if let Some(i) = self.inject.as_deref_mut() {
            let log = &mut *self.log;
            i.flush(&mut |e| log.warning(&e));
        }
    }

    fn inject_exp(&mut self, op: Op, e: &Expect) {
        // an expectation needs its master in the kernel first
        self.inject_flush();
        if let Some(s) = self.exp_inject.as_deref_mut() {
            if let Err(e) = super::expect::inject(s, op, e) {
                self.log.warning(&e);
            }
        }
    }

    fn dump(&mut self, out: &mut dyn FnMut(&Flow, bool)) -> Result<(), i32> {
        let mut table = NetlinkTable::open(self.filter.cloned())
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        let lane = self.lane;
        table.dump(&mut |f| out(f, lane.owns(f.orig.as_ref())))
    }

    fn dump_exp(&mut self, out: &mut dyn FnMut(&Expect)) -> Result<(), i32> {
        let mut sess = Session::open().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        let lane = self.lane;
        super::expect::kernel_dump(&mut sess, &mut |e| {
            if lane.owns(e.master.as_ref()) {
                out(e)
            }
        })
    }

    fn seq_adj(&mut self, f: &mut Flow) {
        // gone already, or no netlink socket: the entry goes without
        if self.getter.is_none() {
            *self.getter = Session::open().ok();
        }
        let Some(s) = self.getter.as_mut() else {
            return;
        };
        if let Err(e) = super::kernel::read_seq_adj(s, f) {
            if e != libc::ENOENT {
                *self.getter = None;
            }
        }
    }

    fn flow_ended(&mut self, f: &Flow) {
        if let Some(fl) = self.flowlog.as_deref_mut() {
            self.line.clear();
            let env = SysEnv { labels: None };
            format::write_plain(self.line, f, EventKind::None, &PlainOpts::default(), &env);
            fl.write(self.line);
        }
    }

    fn note(&mut self, n: Note) {
        match n {
            Note::ResyncRequested => self.log.notice("resync requested by other node"),
            Note::NeedBulk => self
                .log
                .notice("peer lost messages no longer in the resend queue, sending a bulk update"),
            Note::SendingBulk => self.log.notice("sending bulk update"),
            Note::DumpFailed(e) => self.log.error(&format!(
                "can't dump kernel table: {}",
                crate::cli::labels::errno_text(e)
            )),
        }
    }
}

/// Sends one datagram on the link's current channel.
pub fn link_send<O: Outbox>(o: &mut O, link: &mut SyncLink, d: &[u8]) {
    let SyncLink {
        chan,
        sock,
        peer,
        tcp,
        auth,
        send_stalled,
        ..
    } = link;
    let d = match auth {
        Some(a) => a.sealer.seal(d),
        None => d,
    };
    send_datagram(o, *sock, peer, tcp.as_mut(), chan, send_stalled, d)
}

/// How long a datagram waits for a free send slot before it counts as a
/// send error (FT-FW then resends it; NOTRACK and ALARM lose it). After
/// such a time-out the link counts as stalled and datagrams fail at once
/// for a second, so a stuck TCP peer cannot hold the event loop.
pub const SEND_WAIT: Duration = Duration::from_millis(100);

/// Queues one datagram on the sync link, waiting for a send slot when
/// they are all busy.
fn send_datagram<O: Outbox>(
    o: &mut O,
    sock: SockId,
    peer: &std::net::SocketAddr,
    mut tcp: Option<&mut TcpLink>,
    chan: &mut ChannelStats,
    stalled: &mut Option<Instant>,
    d: &[u8],
) {
    // TCP: earlier datagrams that could not be sent go first, in order;
    // while some remain, or while the client is down, this one joins them
    // (the error queue, as 1.4.7's).
    if let Some(t) = tcp.as_deref_mut() {
        flush_error_queue(o, t, chan);
        if t.client.is_none() || !t.errq.is_empty() {
            t.enqueue_error(d);
            chan.record_send(d.len(), false);
            return;
        }
    }
    let client = tcp.as_deref().and_then(|t| t.client);
    let once = |o: &mut O| match client {
        Some(c) => o.queue_to(c, d, None),
        None => o.queue_to(sock, d, Some(peer)),
    };
    // Every send slot busy (a bulk update outruns the link): wait for
    // slots to come back rather than drop the datagram, up to SEND_WAIT
    // (not inside a poll callback, where nothing can be waited for).
    let mut res = once(o);
    let calm = stalled.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
    if calm && matches!(res, Err(ct_ring::SendError::QueueFull)) {
        let t0 = Instant::now();
        while matches!(res, Err(ct_ring::SendError::QueueFull)) {
            let left = SEND_WAIT.saturating_sub(t0.elapsed());
            let freed = if left.is_zero() {
                Some(Ok(0))
            } else {
                o.wait_for_slot(left)
            };
            match freed {
                None => break,
                Some(Ok(n)) if n > 0 => res = once(o),
                Some(_) => {
                    *stalled = Some(Instant::now());
                    break;
                }
            }
        }
    }
    if res.is_err() {
        if let Some(t) = tcp {
            t.enqueue_error(d);
        }
    }
    chan.record_send(d.len(), res.is_ok());
}

/// Sends what waits in a TCP channel's error queue while its client is
/// up, oldest first, stopping at the first failure.
pub fn flush_error_queue<O: Outbox>(o: &mut O, t: &mut TcpLink, chan: &mut ChannelStats) {
    let Some(c) = t.client else { return };
    while let Some(d) = t.errq.front() {
        if o.queue_to(c, d, None).is_err() {
            break;
        }
        chan.record_send(d.len(), true);
        t.errq.pop_front();
    }
}

/// Datagrams a slice of a bulk update may send now: the free send slots
/// but one (for the datagram being filled), at least one.
pub fn slice_budget(r: &Reactor) -> usize {
    r.free_send_slots().saturating_sub(1).max(1)
}

/// Before the next slice of a bulk update: when (nearly) every send slot
/// is taken, waits at most SEND_WAIT for one to come back (the other
/// completions are kept for the next poll).
pub fn await_send_slot(r: &mut Reactor) {
    if r.free_send_slots() <= 1 {
        let _ = r.reap_sends(SEND_WAIT);
    }
}
