//! The io_uring backend. Each receiving socket gets its own provided
//! buffer ring (group id = socket slot) and one multishot receive:
//! `RECV` (netlink, TCP; datagrams with MSG_TRUNC so a cut datagram is
//! seen) or, for UDP with `want_addr`, `RECVMSG` whose buffers start with
//! an `io_uring_recvmsg_out` header and the sender's address. Sends are
//! `SENDMSG` from the shared send slots (MSG_DONTWAIT for datagrams, so a
//! full socket buffer fails the datagram instead of parking it; for a
//! stream, one chain of up to 64 IO_LINK-ed MSG_WAITALL sends at a time,
//! so writes keep their order). The eventfd of the
//! [`Waker`](crate::reactor::Waker) is read by a `READ` that is re-armed
//! after each wake. Timers need no SQE: the wait itself carries the
//! timeout (EXT_ARG).
//!
//! Invariants that make the unsafe parts sound: every buffer the kernel
//! may touch (buffer rings, send slots, the wake counter, msghdrs) is a
//! mapping or box owned by the reactor that does not move and is not
//! freed before the request using it has posted its final completion
//! (closing a socket cancels its receive and frees the ring only on the
//! final CQE; dropping the reactor cancels everything and waits, and
//! leaks the memory if the kernel does not confirm in time).

mod bufring;
pub(crate) mod probe;
mod recv;

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use self::bufring::BufRing;
use super::addr;
use super::config::{Config, SockKind};
use super::ctx::Ctx;
use super::event::{Event, SockId};
use super::shared::{Shared, State, GEN_MASK};

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_WAKE: u64 = 3;
const OP_CANCEL: u64 = 4;
/// A one-shot exclusive poll on an urgent socket while the ring lingers:
/// an exclusive poll's completion is not lazy (the kernel wakes the
/// waiter at once, whatever it waits for), so data on that socket ends
/// the lingering wait.
const OP_DOORBELL: u64 = 5;

/// Room before the payload of a RECVMSG buffer: the 16-byte
/// `io_uring_recvmsg_out` header and a `sockaddr_in6`.
const RECVMSG_HEAD: usize = 16 + std::mem::size_of::<addr::RawAddr>();
/// Receive errors in a row (without data) after which a datagram socket
/// stops re-arming.
const MAX_ERRORS_IN_A_ROW: u32 = 64;
/// CQEs copied out per batch.
const CQE_BATCH: usize = 256;
/// Linked sends per stream chain.
const STREAM_CHAIN: usize = 64;

fn ud(op: u64, gen: u32, idx: u32) -> u64 {
    (op << 56) | (((gen & GEN_MASK) as u64) << 32) | idx as u64
}

fn ud_split(u: u64) -> (u64, u32, u32) {
    (u >> 56, ((u >> 32) as u32) & GEN_MASK, u as u32)
}

struct USock {
    ring: Option<BufRing>,
    /// The msghdr template of a RECVMSG multishot (only its name and
    /// control lengths matter; the kernel reads it when the SQE is issued).
    msg: Box<libc::msghdr>,
    armed: bool,
    /// An [`OP_DOORBELL`] poll is pending.
    doorbell: bool,
    closing: bool,
    errors_in_a_row: u32,
}

pub(crate) struct UringBackend {
    ring: IoUring,
    socks: Vec<Option<USock>>,
    wake_fd: RawFd,
    wake_buf: Box<UnsafeCell<u64>>,
    /// Requests whose final completion has not arrived.
    inflight: usize,
    cqes: Vec<cqueue::Entry>,
    /// Receive completions held back by a socket's `max_per_wake`, in
    /// arrival order; handled first at the next `process`.
    deferred: Vec<cqueue::Entry>,
    /// Receives delivered per socket in the current `process`.
    woken: Vec<u32>,
    shutting_down: bool,
    /// See [`Config::moderation`] and [`Config::moderation_rate`].
    moderation: Option<(u32, Duration)>,
    moderation_rate: u64,
    /// See [`Reactor::set_linger`](crate::reactor::Reactor::set_linger).
    pub(crate) linger: Option<(u32, Duration)>,
    /// Completions handled per `process`, a moving average (weight 1/4,
    /// in eighths): moderation engages only while traffic is heavy and
    /// steady ([`engages`]). (On the last round alone, a cluster of a few
    /// events at 5k flows/s engaged it, and the next events then waited up
    /// to its delay: perf/RESULTS.md, session 11.)
    batch_avg8: usize,
    /// Completions a second ([`engages`]).
    rate: Rate,
    /// `CT_RING_TRACE` set: print every receive completion that carries
    /// no data (errors, ends of multishot) to stderr.
    trace: bool,
    pub(crate) setup: &'static str,
    /// Set up with DEFER_TASKRUN and TASKRUN_FLAG (see `work_pending`).
    taskrun_flag: bool,
}

/// Whether moderation (wait for `want` completions) engages: while the
/// average round (in eighths) has `want / 8` completions or more, and the
/// ring handles `busy` completions a second or more
/// ([`Config::moderation_rate`](crate::reactor::Config::moderation_rate)).
fn engages(avg8: usize, want: u32, rate: u64, busy: u64) -> bool {
    avg8 >= 8 * (want as usize / 8).max(2) && rate >= busy
}

/// The window over which the rate of completions is measured.
const RATE_WINDOW: Duration = Duration::from_millis(10);

/// The rate of completions, over windows of [`RATE_WINDOW`].
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    start: Option<Instant>,
    count: usize,
    /// Completions a second in the last whole window.
    per_sec: u64,
}

impl Rate {
    fn add(&mut self, now: Instant, got: usize) {
        let start = *self.start.get_or_insert(now);
        self.count += got;
        let el = now.saturating_duration_since(start);
        if el >= RATE_WINDOW {
            let us = el.as_micros().max(1);
            self.per_sec = (self.count as u128 * 1_000_000 / us).min(u64::MAX as u128) as u64;
            self.start = Some(now);
            self.count = 0;
        }
    }
}

/// The moving average of completions per round (in eighths) after a
/// round of `got`: avg + (got - avg) / 4.
fn batch_avg8(avg8: usize, got: usize) -> usize {
    let x = got.min(1 << 16) * 8;
    (avg8 * 3 + x) / 4
}

fn fatal(errno: i32) -> bool {
    matches!(
        errno,
        libc::EBADF
            | libc::ENOTSOCK
            | libc::EINVAL
            | libc::EFAULT
            | libc::EOPNOTSUPP
            | libc::ENOTCONN
    )
}

impl UringBackend {
    /// Opens and probes io_uring; the error says why it is unusable.
    pub(crate) fn new(cfg: &Config, wake_fd: RawFd) -> Result<UringBackend, String> {
        let opened = probe::open(cfg)?;
        let mut b = UringBackend {
            ring: opened.ring,
            socks: Vec::new(),
            wake_fd,
            wake_buf: Box::new(UnsafeCell::new(0)),
            inflight: 0,
            cqes: Vec::with_capacity(CQE_BATCH),
            deferred: Vec::new(),
            woken: Vec::new(),
            shutting_down: false,
            moderation: cfg.moderation,
            moderation_rate: cfg.moderation_rate,
            linger: None,
            batch_avg8: 0,
            rate: Rate::default(),
            trace: std::env::var_os("CT_RING_TRACE").is_some(),
            setup: opened.setup,
            taskrun_flag: opened.setup.contains("defer_taskrun"),
        };
        b.arm_wake()
            .map_err(|e| format!("arming the wake read: {e}"))?;
        b.ring
            .submit()
            .map_err(|e| format!("io_uring_enter: {e}"))?;
        Ok(b)
    }

    fn push(&mut self, e: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry built here points only at memory that
            // outlives the request (see the module invariants).
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                self.inflight += 1;
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let e = opcode::Read::new(types::Fd(self.wake_fd), self.wake_buf.get() as *mut u8, 8)
            .build()
            .user_data(ud(OP_WAKE, 0, 0));
        self.push(&e)
    }

    pub(crate) fn register(&mut self, sh: &mut Shared, id: SockId) -> io::Result<()> {
        let opts = sh.socks[id.idx as usize].opts;
        if id.idx >= probe::PROBE_BGID as u32 {
            return Err(io::Error::other(
                "too many sockets for io_uring buffer groups",
            ));
        }
        let mut msg: Box<libc::msghdr> = Box::new(
            // SAFETY: msghdr is a plain C struct; all-zero is valid.
            unsafe { std::mem::zeroed() },
        );
        let ring = if opts.recv {
            let recvmsg = opts.kind == SockKind::Datagram && opts.want_addr;
            let size = opts.buf_size as usize + if recvmsg { RECVMSG_HEAD } else { 0 };
            if recvmsg {
                msg.msg_namelen = std::mem::size_of::<addr::RawAddr>() as libc::socklen_t;
            }
            let mut r = BufRing::new(opts.buf_count, size, id.idx as u16)?;
            r.register(&self.ring.submitter())?;
            Some(r)
        } else {
            None
        };
        let i = id.idx as usize;
        if self.socks.len() <= i {
            self.socks.resize_with(i + 1, || None);
        }
        self.socks[i] = Some(USock {
            ring,
            msg,
            armed: false,
            doorbell: false,
            closing: false,
            errors_in_a_row: 0,
        });
        if opts.recv {
            if let Err(e) = self.arm(sh, id.idx).and_then(|_| self.ring.submit()) {
                // Only when io_uring_enter itself fails (the SQ could not
                // be flushed): undo the registration.
                if let Some(mut s) = self.socks[i].take() {
                    if let Some(r) = s.ring.as_mut() {
                        r.unregister(&self.ring.submitter());
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn arm(&mut self, sh: &Shared, idx: u32) -> io::Result<()> {
        let e = &sh.socks[idx as usize];
        let fd = types::Fd(e.raw_fd());
        let s = self.socks[idx as usize].as_mut().expect("registered");
        let bgid = s.ring.as_ref().expect("receiving socket").bgid;
        let entry = if e.opts.kind == SockKind::Datagram && e.opts.want_addr {
            opcode::RecvMsgMulti::new(fd, &*s.msg, bgid).build()
        } else {
            let flags = if e.opts.kind == SockKind::Datagram {
                libc::MSG_TRUNC
            } else {
                0
            };
            opcode::RecvMulti::new(fd, bgid).flags(flags).build()
        };
        s.armed = true;
        let entry = entry.user_data(ud(OP_RECV, e.gen, idx));
        self.push(&entry)
    }

    /// Arms an [`OP_DOORBELL`] on every urgent socket that receives and
    /// has none pending.
    fn ring_doorbells(&mut self, sh: &Shared) -> io::Result<()> {
        for idx in 0..self.socks.len() {
            let Some(e) = sh.socks.get(idx) else { break };
            let due = e.opts.urgent
                && e.state == State::Open
                && self.socks[idx]
                    .as_ref()
                    .is_some_and(|s| s.armed && !s.doorbell && !s.closing);
            if !due {
                continue;
            }
            let events = (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32;
            let entry = opcode::PollAdd::new(types::Fd(e.raw_fd()), events)
                .build()
                .user_data(ud(OP_DOORBELL, e.gen, idx as u32));
            if let Some(s) = self.socks[idx].as_mut() {
                s.doorbell = true;
            }
            self.push(&entry)?;
        }
        Ok(())
    }

    pub(crate) fn close(&mut self, sh: &mut Shared, id: SockId) -> io::Result<()> {
        sh.begin_close(id.idx);
        let fd = types::Fd(sh.socks[id.idx as usize].raw_fd());
        let sending = sh.socks[id.idx as usize].tx_inflight > 0;
        let s = self.socks[id.idx as usize].as_mut().expect("registered");
        let armed = s.armed;
        s.closing = armed;
        if armed || sending || s.doorbell {
            // Everything on the fd: the receive, and stream sends that wait
            // for room (each holds the file open until it ends).
            let e = opcode::AsyncCancel2::new(types::CancelBuilder::fd(fd).all())
                .build()
                .user_data(ud(OP_CANCEL, id.gen, id.idx));
            self.push(&e)?;
            self.ring.submit()?;
        }
        if !armed {
            // Nothing of ours left for the kernel to fill: free it now.
            self.finalize(sh, id.idx);
        }
        Ok(())
    }

    /// The kernel is done with the socket's receive: free everything.
    fn finalize(&mut self, sh: &mut Shared, idx: u32) {
        if let Some(mut s) = self.socks[idx as usize].take() {
            if let Some(r) = s.ring.as_mut() {
                r.unregister(&self.ring.submitter());
            }
        }
        sh.free_sock(idx);
    }

    /// Hands queued sends to the kernel (pushes SQEs; submits).
    pub(crate) fn flush(&mut self, sh: &mut Shared) -> io::Result<()> {
        if sh.dirty.is_empty() {
            return Ok(());
        }
        let mut dirty = std::mem::take(&mut sh.dirty);
        for &idx in &dirty {
            let i = idx as usize;
            sh.socks[i].dirty = false;
            if sh.socks[i].state != State::Open {
                continue;
            }
            let fd = types::Fd(sh.socks[i].raw_fd());
            if sh.socks[i].opts.kind == SockKind::Datagram {
                while let Some(slot) = sh.socks[i].txq.pop_front() {
                    sh.socks[i].tx_inflight += 1;
                    self.submit_send(sh, fd, slot, false, false)?;
                }
            } else if sh.socks[i].tx_inflight == 0 {
                // One chain of linked sends per stream at a time: links
                // run in order, and a failed or short link cancels the
                // rest (which `requeue` puts back in order).
                let n = sh.socks[i].txq.len().min(STREAM_CHAIN);
                sh.socks[i].requeue_at = 0;
                for k in 0..n {
                    let slot = sh.socks[i].txq.pop_front().expect("counted");
                    sh.socks[i].tx_inflight += 1;
                    self.submit_send(sh, fd, slot, true, k + 1 < n)?;
                }
            }
        }
        dirty.clear();
        sh.dirty = dirty;
        self.ring.submit()?;
        Ok(())
    }

    fn submit_send(
        &mut self,
        sh: &mut Shared,
        fd: types::Fd,
        slot: u32,
        stream: bool,
        link: bool,
    ) -> io::Result<()> {
        let msg = sh.prepare_msg(slot);
        let flags = if stream {
            libc::MSG_WAITALL | libc::MSG_NOSIGNAL
        } else {
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL
        };
        let mut e = opcode::SendMsg::new(fd, msg)
            .flags(flags as u32)
            .build()
            .user_data(ud(OP_SEND, 0, slot));
        if link {
            e = e.flags(squeue::Flags::IO_LINK);
        }
        self.push(&e)
    }

    pub(crate) fn poll<F>(
        &mut self,
        sh: &mut Shared,
        wait: Option<Duration>,
        handler: &mut F,
    ) -> io::Result<usize>
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        self.flush(sh)?;
        let deadline = wait.map(|d| Instant::now() + d);
        let mut n = 0;
        loop {
            let t = if sh.has_pending() || !self.deferred.is_empty() {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_duration_since(Instant::now()))
            };
            if self.linger.is_some() && t != Some(Duration::ZERO) {
                self.ring_doorbells(sh)?;
            }
            // Lingering (set by the caller, whatever the rate) or
            // moderated (while traffic is heavy and steady).
            let hold = match (self.linger, self.moderation) {
                // (completions already there, as sends that completed
                // when flushed, do not count toward `want`)
                (Some((want, max)), _) => Some((want + self.ring.completion().len() as u32, max)),
                (None, Some((want, max)))
                    if engages(
                        self.batch_avg8,
                        want,
                        self.rate.per_sec,
                        self.moderation_rate,
                    ) =>
                {
                    Some((want, max))
                }
                _ => None,
            };
            match hold {
                // Wait for `want` completions, at most `max` (never past
                // the caller's deadline); an idle ring then falls through
                // to the plain wait below.
                Some((want, max)) if t != Some(Duration::ZERO) => {
                    let m = t.map_or(max, |t| t.min(max));
                    self.enter_n(want, Some(m))?;
                    if self.ring.completion().is_empty() {
                        let t = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                        if t != Some(Duration::ZERO) {
                            self.enter(t)?;
                        }
                    }
                }
                _ => self.enter(t)?,
            }
            sh.now = Instant::now();
            let got = self.process(sh, handler)?;
            self.batch_avg8 = batch_avg8(self.batch_avg8, got);
            self.rate.add(sh.now, got);
            n += got;
            self.flush(sh)?;
            let expired = deadline.is_some_and(|d| sh.now >= d);
            if n > 0 || sh.has_pending() || expired {
                return Ok(n);
            }
        }
    }

    /// Whether completions wait to be handled: some in the completion
    /// queue, held back, or task work the kernel queued for this ring
    /// (`IORING_SQ_TASKRUN`, with `DEFER_TASKRUN`: data arrived on a
    /// socket since the last wait). `None` when the ring was set up
    /// without the task-run flag (it cannot tell).
    pub(crate) fn work_pending(&mut self) -> Option<bool> {
        if !self.taskrun_flag {
            return None;
        }
        Some(
            !self.deferred.is_empty()
                || !self.ring.completion().is_empty()
                || self.ring.submission().taskrun(),
        )
    }

    /// Submits the queued sends and waits, at most `wait`, until at least
    /// one send has completed (its slot is free again). Send completions
    /// are handled here; every other completion is held, in order, for
    /// the next `poll`. Returns the sends completed.
    pub(crate) fn reap_sends(&mut self, sh: &mut Shared, wait: Duration) -> io::Result<usize> {
        self.flush(sh)?;
        let deadline = Instant::now() + wait;
        let mut sent = 0;
        loop {
            if self.ring.completion().is_empty() {
                self.enter(Some(deadline.saturating_duration_since(Instant::now())))?;
            }
            self.cqes.clear();
            self.cqes.extend(self.ring.completion());
            for k in 0..self.cqes.len() {
                let c = self.cqes[k].clone();
                if ud_split(c.user_data()).0 == OP_SEND {
                    self.on_cqe(sh, &c, &mut |_: &mut Ctx<'_>, _: Event<'_>| {})?;
                    sent += 1;
                } else {
                    self.deferred.push(c);
                }
            }
            if sent > 0 || Instant::now() >= deadline {
                return Ok(sent);
            }
        }
    }

    /// Submits and waits for one completion, at most `t`.
    fn enter(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.enter_n(1, t)
    }

    /// Submits and waits for `want` completions, at most `t`.
    fn enter_n(&mut self, want: u32, t: Option<Duration>) -> io::Result<()> {
        let want = want as usize;
        let r = match t {
            None => self.ring.submitter().submit_and_wait(want),
            Some(d) => {
                let ts = types::Timespec::from(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
        };
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Handles every completion there is; returns the events delivered.
    fn process<F>(&mut self, sh: &mut Shared, handler: &mut F) -> io::Result<usize>
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let mut n = 0;
        self.woken.iter_mut().for_each(|w| *w = 0);
        let held = std::mem::take(&mut self.deferred);
        for c in &held {
            n += self.dispatch(sh, c, handler)?;
        }
        loop {
            self.cqes.clear();
            self.cqes.extend(self.ring.completion().take(CQE_BATCH));
            if self.cqes.is_empty() {
                return Ok(n);
            }
            for k in 0..self.cqes.len() {
                let c = self.cqes[k].clone();
                n += self.dispatch(sh, &c, handler)?;
            }
        }
    }

    /// Hands a completion on, or holds a receive back when its socket
    /// had its `max_per_wake` in this round (later ones of that socket
    /// queue behind it, so the order is kept).
    fn dispatch<F>(
        &mut self,
        sh: &mut Shared,
        c: &cqueue::Entry,
        handler: &mut F,
    ) -> io::Result<usize>
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let (op, _, idx) = ud_split(c.user_data());
        if op == OP_RECV {
            let cap = sh
                .socks
                .get(idx as usize)
                .map_or(0, |e| e.opts.max_per_wake);
            if cap > 0 {
                let i = idx as usize;
                if self.woken.len() <= i {
                    self.woken.resize(i + 1, 0);
                }
                if self.woken[i] >= cap {
                    self.deferred.push(c.clone());
                    return Ok(0);
                }
                self.woken[i] += 1;
            }
        }
        self.on_cqe(sh, c, handler)
    }

    fn on_cqe<F>(
        &mut self,
        sh: &mut Shared,
        c: &cqueue::Entry,
        handler: &mut F,
    ) -> io::Result<usize>
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let (op, gen, idx) = ud_split(c.user_data());
        match op {
            OP_RECV => self.on_recv(sh, idx, gen, c.result(), c.flags(), handler),
            OP_SEND => {
                self.inflight -= 1;
                let (sock, sgen) = {
                    let s = &sh.slots[idx as usize];
                    (s.sock, s.gen)
                };
                let mut stream_fd = None;
                if let Some(e) = sh.entry_gen(sock, sgen).filter(|e| e.gen == sgen) {
                    e.tx_inflight -= 1;
                    if e.opts.kind == SockKind::Stream && e.state == State::Open {
                        stream_fd = Some(types::Fd(e.raw_fd()));
                    }
                }
                if stream_fd.is_some() && c.result() == -libc::ECANCELED && !self.shutting_down {
                    sh.requeue(idx);
                    return Ok(0);
                }
                let again = sh.send_done(idx, c.result());
                if let (true, Some(fd)) = (again && !self.shutting_down, stream_fd) {
                    // A short write: the rest goes before anything else.
                    sh.socks[sock as usize].tx_inflight += 1;
                    self.submit_send(sh, fd, idx, true, false)?;
                } else if stream_fd.is_some() && !sh.socks[sock as usize].txq.is_empty() {
                    let e = &mut sh.socks[sock as usize];
                    if !e.dirty {
                        e.dirty = true;
                        sh.dirty.push(sock);
                    }
                }
                Ok(0)
            }
            OP_WAKE => {
                self.inflight -= 1;
                if self.shutting_down {
                    return Ok(0);
                }
                self.arm_wake()?;
                if c.result() > 0 {
                    handler(&mut Ctx { sh }, Event::Wake);
                    return Ok(1);
                }
                Ok(0)
            }
            OP_CANCEL => {
                self.inflight -= 1;
                Ok(0)
            }
            // (the data it rang for comes with the socket's receive)
            OP_DOORBELL => {
                self.inflight -= 1;
                let current = sh.socks.get(idx as usize).is_some_and(|e| e.gen == gen);
                if let Some(s) = self.socks.get_mut(idx as usize).and_then(|s| s.as_mut()) {
                    if current {
                        s.doorbell = false;
                    }
                }
                Ok(0)
            }
            _ => Ok(0),
        }
    }

    /// Cancels every request and waits (up to about a second) for the
    /// kernel to confirm; if it does not, leaks the memory it could touch.
    pub(crate) fn shutdown(&mut self, sh: &mut Shared) {
        self.shutting_down = true;
        if self.inflight > 0 {
            // Every request: receives, the wake read, and stream sends
            // that wait for room.
            let e = opcode::AsyncCancel2::new(types::CancelBuilder::any())
                .build()
                .user_data(ud(OP_CANCEL, 0, 0));
            let _ = self.push(&e).and_then(|_| self.ring.submit());
        }
        let mut sink = |_: &mut Ctx<'_>, _: Event<'_>| {};
        for _ in 0..100 {
            if self.inflight == 0 {
                break;
            }
            if self.enter(Some(Duration::from_millis(10))).is_err() {
                break;
            }
            if self.process(sh, &mut sink).is_err() {
                break;
            }
        }
        if self.inflight > 0 {
            for s in self.socks.iter_mut().flatten() {
                if let Some(r) = s.ring.as_mut() {
                    r.leak();
                }
            }
            sh.leak_send_slots();
            std::mem::forget(std::mem::replace(
                &mut self.wake_buf,
                Box::new(UnsafeCell::new(0)),
            ));
            std::mem::forget(std::mem::take(&mut self.socks));
        } else {
            for s in self.socks.iter_mut().flatten() {
                if let Some(r) = s.ring.as_mut() {
                    r.unregister(&self.ring.submitter());
                }
            }
        }
    }
}

#[cfg(test)]
mod moderation_tests {
    use super::{batch_avg8, engages, Rate, RATE_WINDOW};
    use crate::reactor::MODERATION_RATE as BUSY_RATE;
    use std::time::{Duration, Instant};

    /// The steady rounds of a busy socket engage moderation (an average
    /// of 4 or more, at a rate of completions worth saving wake-ups for),
    /// an occasional cluster in a trickle does not, nor steady rounds at
    /// a moderate rate.
    #[test]
    fn moderation_follows_the_average_round_not_the_last() {
        let run = |rounds: &[usize]| rounds.iter().fold(0, |a, &g| batch_avg8(a, g));
        let engaged = |avg8: usize| engages(avg8, 32, BUSY_RATE, BUSY_RATE);
        assert!(engaged(run(&[5, 6, 4, 7, 5, 6])));
        assert!(!engaged(run(&[1, 2, 1, 1, 4])), "one cluster of 4");
        assert!(!engaged(run(&[1, 1, 2, 1, 6, 1])));
        // idle again: it disengages within a few rounds
        assert!(!engaged(run(&[8, 8, 8, 8, 1, 1, 1])));
        assert!(
            !engages(run(&[5, 6, 4, 7, 5, 6]), 32, BUSY_RATE - 1, BUSY_RATE),
            "a moderate rate"
        );
        assert_eq!(batch_avg8(0, usize::MAX), (1 << 16) * 8 / 4);
    }

    /// The rate is that of the last whole window; a window after a long
    /// idle time counts the idle time in.
    #[test]
    fn rate_is_measured_over_whole_windows() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        // 20k completions a second: 5 every 250 µs
        for i in 0..=80u32 {
            r.add(t0 + Duration::from_micros(250) * i, 5);
        }
        assert!((19_000..=21_000).contains(&r.per_sec), "{}", r.per_sec);
        // then 100k a second
        let t1 = t0 + Duration::from_millis(20);
        for i in 1..=200u32 {
            r.add(t1 + Duration::from_micros(100) * i, 10);
        }
        assert!(r.per_sec >= BUSY_RATE, "{}", r.per_sec);
        // a round after a second of silence: a low rate at once
        r.add(t1 + Duration::from_secs(1) + 2 * RATE_WINDOW, 3);
        assert!(r.per_sec < BUSY_RATE / 10, "{}", r.per_sec);
    }
}
