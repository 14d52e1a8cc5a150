//! Opening the engine's kernel and link sides: the ctnetlink event
//! socket (its buffer sized as 1.4.7 does, the Filter and the lane's share
//! as BPF), the sync link with its protocol, timers and link watch, and
//! polling mode.

use std::time::{Duration, Instant};

use ct_core::config::FilterSource;
use ct_core::netlink::bpf;
use ct_ring::netlink::{NlSocket, NETLINK_NETFILTER};
use ct_ring::reactor::{Reactor, SockOpts};

use super::engine::Engine;
use super::inject::Inject;
use super::sync::SyncLink;

impl Engine {
    /// Opens the event socket, sizes its buffer as 1.4.7 does, and
    /// registers it with the reactor.
    pub fn open_events(&mut self, r: &mut Reactor) -> std::io::Result<()> {
        // Groups are joined once the kernel filter (if any) is in place.
        let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
        use std::os::fd::AsFd;
        // DisableExternalCache: the inject handle opens first, so that the
        // kernel drops its events from the start (`attach_kernel_filter`)
        self.open_inject()?;
        // (1.4.7's order of notices: reliable delivery, the Filter, the
        // buffer size)
        if self.cfg.general.netlink_events_reliable {
            sock.set_reliable()?;
            self.log
                .notice("reliable ctnetlink event delivery is ENABLED.");
        }
        self.attach_kernel_filter(sock.as_fd())?;
        match self.cfg.general.filter.as_ref().map(|f| f.source) {
            Some(FilterSource::Kernelspace) => {
                self.log.notice("using kernel-space event filtering")
            }
            Some(_) => self.log.notice("using user-space event filtering"),
            None => {}
        }
        if self.lane.count > 1 {
            self.ev_fd = Some(sock.as_fd().try_clone_to_owned()?);
        }
        // NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY (+ EXP_NEW, _UPDATE,
        // _DESTROY with ExpectationSync)
        let groups = if self.rep.exp().is_some() { 6 } else { 3 };
        for group in 1..=groups {
            sock.join_group(group)?;
        }
        let g = &self.cfg.general;
        if g.netlink_buffer_size > 0 && g.netlink_buffer_size_max_growth >= g.netlink_buffer_size {
            sock.set_rcvbuf(g.netlink_buffer_size as usize / 2)?;
        } else {
            self.log.notice("NetlinkBufferSize is either not set or is greater than NetlinkBufferSizeMaxGrowth. Using current system buffer size");
        }
        let size = sock.rcvbuf()? as u64;
        self.rt.buffer_size = size;
        self.log.notice(&format!(
            "netlink event socket buffer size has been set to {size} bytes"
        ));
        // (urgent: a lingering backup still wakes for the first event)
        let opts = SockOpts::netlink()
            .buf_size(2048)
            .buf_count(1024)
            .max_per_wake(g.event_iteration_limit)
            .urgent();
        // Quiet commits (`quiet_commit`): where NEW events feed an
        // internal cache that a resync can refill.
        if self.mode == super::engine::Mode::Sync && self.rep.bypass().is_none() {
            self.quiet = super::quiet_commit::QuietCommit::new(sock.as_fd().try_clone_to_owned()?);
        }
        let id = r.register(sock, opts)?;
        self.ev_sock = Some(id);
        Ok(())
    }

    /// `Filter From Kernelspace`: the filter as BPF on the event socket,
    /// which then makes the user-space check of events unnecessary
    /// (dumps and resyncs still use it). On failure 1.4.7 logs and runs
    /// unfiltered; we log the same error and filter events in user space.
    /// With lanes, the lane's program follows (the kernel gives each lane
    /// its share of the lanes that sync); a lane whose program cannot be
    /// attached cannot run.
    fn attach_kernel_filter(&mut self, sock: std::os::fd::BorrowedFd) -> std::io::Result<()> {
        let flt = self
            .cfg
            .general
            .filter
            .as_ref()
            .filter(|f| f.source == FilterSource::Kernelspace);
        let filter_prog = match flt.map(bpf::compile) {
            None => None,
            Some(Ok(None)) => {
                self.rep.set_kernel_filtered(true);
                None
            }
            Some(Ok(Some(p))) => Some(p),
            Some(Err(e)) => {
                self.log.error(&format!("cannot set event filtering: {e}"));
                None
            }
        };
        let lane_prog = (self.lane.count > 1)
            .then(|| ct_core::netlink::lanes::program(self.lane.index, self.lane.active));
        let (prog, with_filter) = match (filter_prog, lane_prog) {
            (None, None) => (None, false),
            (Some(f), None) => (Some(f), true),
            (None, Some(l)) => (Some(l), false),
            (Some(f), Some(l)) => match ct_core::netlink::lanes::compose(&f, &l) {
                Ok(p) => (Some(p), true),
                Err(e) => {
                    // the lane's share first; the filter then in user space
                    self.log.error(&format!("cannot set event filtering: {e}"));
                    (Some(l), false)
                }
            },
        };
        // The events of our own inject handles (this lane's, and the other
        // lanes' known by now: a lane that injects flows of another
        // lane's share) are dropped by the kernel, as they are ignored
        // anyway: a prefix before the rest, when it fits.
        let own: Vec<u32> = std::iter::once(self.rep.own.inject)
            .chain(self.rep.own.inject_lanes.iter().copied())
            .filter(|&p| p != 0)
            .collect();
        let only_origin = prog.is_none();
        let prog = if own.is_empty() {
            prog
        } else {
            // (too long with the prefix: the rest alone)
            ct_core::netlink::origin::skip_own(&own, prog.as_deref())
                .ok()
                .or(prog)
        };
        let Some(prog) = prog else { return Ok(()) };
        let raw: Vec<libc::sock_filter> = prog
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        match ct_ring::sockopt::attach_filter(sock, &raw) {
            Ok(()) => {
                if with_filter {
                    self.rep.set_kernel_filtered(true);
                }
                Ok(())
            }
            Err(e) if self.lane.count > 1 => Err(std::io::Error::new(
                e.kind(),
                format!("cannot give lane {} its events (BPF): {e}", self.lane.index),
            )),
            // no Filter: the daemon ignores its own writes' events in user
            // space, as 1.4.7 does, and says nothing
            Err(_) if only_origin => Ok(()),
            Err(e) => {
                self.log.error(&format!("cannot set event filtering: {e}"));
                Ok(())
            }
        }
    }

    /// The lanes follow the peer (`lane_peer`): this lane syncs as one of
    /// `active` lanes, with the share of the kernel's events that goes
    /// with it (the caller resyncs from the kernel).
    pub(super) fn follow_peer_lanes(&mut self, active: u32) {
        let was = self.lane.active;
        self.lane.active = active;
        // events queued under the old share are checked in user space
        self.rep.set_share(self.lane.index, active);
        // the flows it takes over go to the peer as updates (it has them)
        self.rep.take_over_next_resync();
        // the lane's part of HashLimit follows its part of the flows
        let limit = self.cfg.general.hash_limit as usize;
        self.rep.set_limit(limit.div_ceil(active.max(1) as usize));
        if self.lane.index >= active && self.lane.index < was {
            // the lane stops syncing: what its peer lane sent is stale (the
            // peer's flows now come over the lanes that sync, and lane 0
            // asks the peer for all of them); its flows are the lanes'
            // that take them over (their resync): not counted twice
            self.rep.flush_external();
            self.rep.flush_internal();
            // nothing of this lane's is left to reconcile, and its peer
            // lane is not there to answer
            if let Some(w) = self.warm.as_mut() {
                w.reconcile = None;
            }
        }
        // the shares changed: the peer's flows come over again, and the
        // file on disk speaks for the old share
        if let Some(w) = self.warm.as_mut() {
            w.settle_at = std::time::Instant::now() + super::warm::SETTLE;
            w.forget_covering();
        }
        if self.lane.first() && active < was {
            self.rep.request_resync();
        }
        self.reattach_events(true);
    }

    /// Once every lane has opened its inject handle (the lanes run behind
    /// a gate): the lane learns the others' port ids, whose events it does
    /// not send back, and the kernel drops them too. A lane that receives
    /// flows of another lane's share (from a peer with fewer lanes, before
    /// the lanes follow it) writes them, and the events went to the lane
    /// whose share they are, which ignored them. The new program replaces
    /// the old in one step (the share stays the kernel's); should it not
    /// fit, the old one stays and the events are still ignored in user
    /// space.
    pub(super) fn filter_other_injects(&mut self) {
        if self.lane.count <= 1 || self.inject.is_none() {
            return;
        }
        let mut v = std::mem::take(&mut self.rep.own.inject_lanes);
        super::lanes::other_inject_pids(self.lane, &mut v);
        self.rep.own.inject_lanes = v;
        if !self.rep.own.inject_lanes.is_empty() {
            self.reattach_events(false);
        }
    }

    /// Puts a new program on the event socket. `detach_first`: the old
    /// program goes first (the kernel charges a new one before it frees
    /// the old: a long Filter may not fit twice), and meanwhile every
    /// event comes, the share and the Filter checked in user space until
    /// the new program is in; failures are logged. Otherwise the new one
    /// replaces the old at once, or the old one stays.
    fn reattach_events(&mut self, detach_first: bool) {
        let Some(fd) = self.ev_fd.take() else { return };
        use std::os::fd::AsFd;
        if detach_first {
            self.rep.set_kernel_filtered(false);
            if let Err(e) = ct_ring::sockopt::detach_filter(fd.as_fd()) {
                self.log.error(&format!(
                    "lane {}: cannot remove its event filter: {e}",
                    self.lane.index
                ));
            }
        }
        match self.attach_kernel_filter(fd.as_fd()) {
            // every event, the share and the Filter checked in user space
            Err(e) if detach_first => self.log.error(&e.to_string()),
            _ => {}
        }
        self.ev_fd = Some(fd);
    }

    /// DisableExternalCache's inject handle, once (the other lanes learn
    /// its port id from `INJECT_PIDS`).
    fn open_inject(&mut self) -> std::io::Result<()> {
        let injects = self.mode == super::engine::Mode::Sync
            && self
                .cfg
                .sync
                .as_ref()
                .is_some_and(|s| s.disable_external_cache);
        if !injects || self.inject.is_some() {
            return Ok(());
        }
        // (1.4.7's order: this notice, then the event socket's)
        self.log.notice("disabling external cache");
        let inject = Inject::open()?;
        self.rep.own.inject = inject.portid();
        super::lanes::INJECT_PIDS[self.lane.index as usize]
            .store(inject.portid(), std::sync::atomic::Ordering::Relaxed);
        self.inject = Some(inject);
        Ok(())
    }

    /// Opens the sync link, starts its protocol and the 1-second alive
    /// timer.
    pub fn open_link(&mut self, r: &mut Reactor) -> std::io::Result<()> {
        let Some(sync) = self.cfg.sync.clone() else {
            return Ok(());
        };
        if sync.disable_external_cache {
            self.open_inject()?;
            if self.rep.exp().is_some() {
                let s = super::expect::open_inject(&mut self.rep.own.exp)?;
                // (the other lanes learn it: see `filter_other_injects`)
                super::lanes::EXP_INJECT_PIDS[self.lane.index as usize]
                    .store(s.sock.portid(), std::sync::atomic::Ordering::Relaxed);
                self.exp_inject = Some(s);
            }
        }
        let auth = match sync.auth.as_ref().map(super::auth::LinkAuth::load) {
            None => None,
            Some(Ok((a, warning))) => {
                if let Some(w) = warning {
                    self.log.warning(&w);
                }
                self.log.notice("sync link authentication: HMAC-SHA256");
                Some(a)
            }
            Some(Err(e)) => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e));
            }
        };
        let mut link = SyncLink::open(
            &sync,
            self.cfg.general.event_iteration_limit,
            self.lane.index as u16,
            self.lane.count as u16,
            r,
        )?;
        link.auth = auth;
        self.rep.attach(link.params, Instant::now());
        self.open_snapshot(&sync);
        let period = Duration::from_secs(1);
        self.alive_timer = Some(r.timer_add(Some(Instant::now() + period), Some(period)));
        if link.has_others() {
            // RTMGRP_LINK of NETLINK_ROUTE, as 1.4.7 watches links.
            match NlSocket::open(libc::NETLINK_ROUTE, libc::RTMGRP_LINK as u32)
                .and_then(|s| r.register(s, SockOpts::netlink()))
            {
                Ok(id) => self.rtnl = Some(id),
                Err(e) => self.log.warning(&format!(
                    "can't watch link events ({e}), polling link state every second"
                )),
            }
        }
        self.link = Some(link);
        self.arm_connect_timer(r);
        Ok(())
    }

    /// Polling mode: a periodic timer instead of the event socket.
    pub fn start_polling(&mut self, r: &mut Reactor, secs: u32) {
        let period = Duration::from_secs(secs.max(1) as u64);
        self.poll_timer = Some(r.timer_add(Some(Instant::now() + period), Some(period)));
    }
}
