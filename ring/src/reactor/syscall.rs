//! The fallback backend on plain syscalls: level-triggered epoll for
//! readiness, `recvmmsg` batches (with source addresses and MSG_TRUNC
//! flags) into per-socket buffers, `sendmmsg` batches for datagrams,
//! `sendmsg` with partial-write tracking and EPOLLOUT for streams, epoll
//! timeouts (rounded up to the millisecond) for timers. Every call passes
//! MSG_DONTWAIT, so the fds' own O_NONBLOCK flags do not matter.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::addr::{self, RawAddr};
use super::config::{SockKind, SockOpts};
use super::ctx::Ctx;
use super::event::{Errno, Event, SockError, SockId};
use super::shared::{Shared, State};
use super::sys::{self, cvt};

const WAKE_TOKEN: u64 = u64::MAX;
/// Datagrams per `sendmmsg`.
const SEND_BATCH: usize = 64;
/// Receive calls per socket per readiness report (then the next socket
/// gets its turn; level-triggered epoll reports the rest again).
const RECV_ROUNDS: usize = 16;

/// Receives allowed per wake-up for a socket (`max_per_wake`, 0 = any).
fn per_wake(o: &SockOpts) -> usize {
    match o.max_per_wake {
        0 => usize::MAX,
        n => n as usize,
    }
}
const MAX_EVENTS: usize = 64;

/// Per-socket receive buffers: `batch` slots of `buf_size` bytes with
/// their iovecs, addresses and mmsghdrs.
struct SockBufs {
    bufs: Vec<u8>,
    size: usize,
    names: Vec<RawAddr>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// The epoll events this fd is registered for (0: not registered).
    interest: u32,
    want_write: bool,
}

// SAFETY: the raw pointers in iovs/hdrs only ever point into the same
// value's own vectors and are rewritten before each use.
unsafe impl Send for SockBufs {}

impl SockBufs {
    fn new(batch: usize, size: usize, recv: bool) -> SockBufs {
        let batch = if recv { batch.max(1) } else { 0 };
        SockBufs {
            bufs: vec![0u8; batch * size],
            size,
            names: vec![addr::zeroed(); batch],
            // SAFETY: iovec and mmsghdr are plain C structs; all-zero is valid.
            iovs: vec![unsafe { std::mem::zeroed() }; batch],
            hdrs: vec![unsafe { std::mem::zeroed() }; batch],
            interest: 0,
            want_write: false,
        }
    }

    fn prepare(&mut self, want_addr: bool) {
        let base = self.bufs.as_mut_ptr();
        for i in 0..self.hdrs.len() {
            // SAFETY: i * size is inside bufs (batch * size bytes).
            self.iovs[i].iov_base = unsafe { base.add(i * self.size) } as *mut libc::c_void;
            self.iovs[i].iov_len = self.size;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            if want_addr {
                h.msg_name = &mut self.names[i] as *mut RawAddr as *mut libc::c_void;
                h.msg_namelen = std::mem::size_of::<RawAddr>() as libc::socklen_t;
            } else {
                h.msg_name = std::ptr::null_mut();
                h.msg_namelen = 0;
            }
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
    }
}

pub(crate) struct SyscallBackend {
    epfd: OwnedFd,
    wake_fd: RawFd,
    events: Vec<libc::epoll_event>,
    socks: Vec<Option<SockBufs>>,
    tx: Vec<libc::mmsghdr>,
    tx_slots: Vec<u32>,
}

impl SyscallBackend {
    pub(crate) fn new(wake_fd: RawFd) -> io::Result<SyscallBackend> {
        // SAFETY: plain syscall; the fd is wrapped at once.
        let epfd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let b = SyscallBackend {
            epfd,
            wake_fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
            socks: Vec::new(),
            tx: Vec::with_capacity(SEND_BATCH),
            tx_slots: Vec::with_capacity(SEND_BATCH),
        };
        b.ctl(
            libc::EPOLL_CTL_ADD,
            wake_fd,
            libc::EPOLLIN as u32,
            WAKE_TOKEN,
        )?;
        Ok(b)
    }

    fn ctl(&self, op: i32, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is a live epoll_event.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    /// Brings the epoll registration of socket `idx` in line with what it
    /// needs: EPOLLIN while receiving, EPOLLOUT while a stream waits to write.
    fn set_interest(&mut self, sh: &Shared, idx: u32) -> io::Result<()> {
        let e = &sh.socks[idx as usize];
        let Some(b) = self.socks[idx as usize].as_mut() else {
            return Ok(());
        };
        let mut want = 0u32;
        if !e.recv_stopped && e.state == State::Open {
            want |= libc::EPOLLIN as u32;
        }
        if b.want_write && e.state == State::Open {
            want |= libc::EPOLLOUT as u32;
        }
        let have = b.interest;
        if want == have {
            return Ok(());
        }
        b.interest = want;
        let op = match (have, want) {
            (0, _) => libc::EPOLL_CTL_ADD,
            (_, 0) => libc::EPOLL_CTL_DEL,
            _ => libc::EPOLL_CTL_MOD,
        };
        self.ctl(op, e.raw_fd(), want, idx as u64)
    }

    pub(crate) fn register(&mut self, sh: &mut Shared, id: SockId) -> io::Result<()> {
        let opts = sh.socks[id.idx as usize].opts;
        let batch = match opts.kind {
            SockKind::Datagram => opts.batch as usize,
            SockKind::Stream => 1,
        };
        let i = id.idx as usize;
        if self.socks.len() <= i {
            self.socks.resize_with(i + 1, || None);
        }
        self.socks[i] = Some(SockBufs::new(batch, opts.buf_size as usize, opts.recv));
        if let Err(e) = self.set_interest(sh, id.idx) {
            self.socks[i] = None;
            return Err(e);
        }
        Ok(())
    }

    pub(crate) fn close(&mut self, sh: &mut Shared, id: SockId) {
        let i = id.idx as usize;
        if let Some(b) = self.socks[i].take() {
            if b.interest != 0 {
                let _ = self.ctl(libc::EPOLL_CTL_DEL, sh.socks[i].raw_fd(), 0, 0);
            }
        }
        sh.free_sock(id.idx);
    }

    /// Hands every queued send to the kernel.
    /// Sends are synchronous here: handing them to the kernel frees
    /// their slots at once. Streams whose socket is full wait (at most
    /// `wait`) until one can take more, then are flushed again.
    pub(crate) fn reap_sends(&mut self, sh: &mut Shared, wait: Duration) -> io::Result<usize> {
        let before = sh.free_slots();
        self.flush(sh)?;
        let freed = sh.free_slots().saturating_sub(before);
        if freed > 0 {
            return Ok(freed);
        }
        let mut fds: Vec<(u32, libc::pollfd)> = Vec::new();
        for (i, b) in self.socks.iter().enumerate() {
            if b.as_ref().is_some_and(|b| b.want_write)
                && sh.socks.get(i).is_some_and(|e| e.state == State::Open)
            {
                let fd = sh.socks[i].raw_fd();
                fds.push((
                    i as u32,
                    libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    },
                ));
            }
        }
        if fds.is_empty() {
            return Ok(0);
        }
        let mut pfds: Vec<libc::pollfd> = fds.iter().map(|(_, p)| *p).collect();
        let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: pfds is a valid array of pollfd of the length passed.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            return Ok(0);
        }
        for ((idx, _), p) in fds.iter().zip(&pfds) {
            let e = &mut sh.socks[*idx as usize];
            if p.revents != 0 && !e.dirty {
                e.dirty = true;
                sh.dirty.push(*idx);
            }
        }
        let before = sh.free_slots();
        self.flush(sh)?;
        Ok(sh.free_slots().saturating_sub(before))
    }

    pub(crate) fn flush(&mut self, sh: &mut Shared) -> io::Result<()> {
        let mut dirty = std::mem::take(&mut sh.dirty);
        for &idx in &dirty {
            sh.socks[idx as usize].dirty = false;
            if sh.socks[idx as usize].state != State::Open {
                continue;
            }
            match sh.socks[idx as usize].opts.kind {
                SockKind::Datagram => self.flush_dgram(sh, idx),
                SockKind::Stream => self.flush_stream(sh, idx)?,
            }
        }
        dirty.clear();
        sh.dirty = dirty;
        Ok(())
    }

    fn flush_dgram(&mut self, sh: &mut Shared, idx: u32) {
        let fd = sh.socks[idx as usize].raw_fd();
        loop {
            self.tx_slots.clear();
            self.tx.clear();
            while self.tx_slots.len() < SEND_BATCH {
                match sh.socks[idx as usize].txq.pop_front() {
                    Some(s) => self.tx_slots.push(s),
                    None => break,
                }
            }
            if self.tx_slots.is_empty() {
                return;
            }
            for &s in &self.tx_slots {
                let m = sh.prepare_msg(s);
                // SAFETY: m points at slot s's msghdr, just prepared.
                let msg_hdr = unsafe { *m };
                self.tx.push(libc::mmsghdr {
                    msg_hdr,
                    msg_len: 0,
                });
            }
            let n = self.tx.len();
            let mut done = 0;
            while done < n {
                // SAFETY: tx[done..n] are prepared headers whose buffers
                // (send slots) stay untouched during the call.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        self.tx.as_mut_ptr().add(done),
                        (n - done) as u32,
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                if r < 0 {
                    let err = sys::errno();
                    if err == libc::EINTR {
                        continue;
                    }
                    // Datagram semantics: this one is lost; on a full
                    // socket buffer so is the rest of the batch.
                    let upto = if err == libc::EAGAIN { n } else { done + 1 };
                    for k in done..upto {
                        sh.send_failed(idx, Errno(err));
                        sh.release_slot(self.tx_slots[k]);
                    }
                    done = upto;
                    continue;
                }
                for k in done..done + r as usize {
                    sh.send_done(self.tx_slots[k], self.tx[k].msg_len as i32);
                }
                done += r as usize;
            }
        }
    }

    fn flush_stream(&mut self, sh: &mut Shared, idx: u32) -> io::Result<()> {
        let fd = sh.socks[idx as usize].raw_fd();
        let mut want_write = false;
        while let Some(s) = sh.socks[idx as usize].txq.pop_front() {
            let m = sh.prepare_msg(s);
            // SAFETY: m is slot s's prepared msghdr; the slot is ours.
            let r = unsafe { libc::sendmsg(fd, m, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            if r < 0 {
                let err = sys::errno();
                if err == libc::EINTR || err == libc::EAGAIN {
                    sh.socks[idx as usize].txq.push_front(s);
                    want_write = err == libc::EAGAIN;
                    if want_write {
                        break;
                    }
                    continue;
                }
                sh.send_done(s, -err);
                break;
            }
            if sh.send_done(s, r as i32) {
                sh.socks[idx as usize].txq.push_front(s);
            }
        }
        if let Some(b) = self.socks[idx as usize].as_mut() {
            b.want_write = want_write;
        }
        self.set_interest(sh, idx)
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
        let timeout = if sh.has_pending() {
            0
        } else {
            match wait {
                None => -1,
                Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
            }
        };
        // SAFETY: events is a live buffer of MAX_EVENTS entries.
        let r = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                MAX_EVENTS as i32,
                timeout,
            )
        };
        let ready = if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
            0
        } else {
            r as usize
        };
        sh.now = std::time::Instant::now();
        let mut n = 0;
        for k in 0..ready {
            let ev = self.events[k];
            let (token, bits) = (ev.u64, ev.events);
            if token == WAKE_TOKEN {
                sys::eventfd_drain(self.wake_fd);
                handler(&mut Ctx { sh }, Event::Wake);
                n += 1;
                continue;
            }
            let idx = token as u32;
            if !matches!(self.socks.get(idx as usize), Some(Some(_)))
                || sh.socks[idx as usize].state != State::Open
            {
                continue;
            }
            if bits & libc::EPOLLOUT as u32 != 0 {
                self.flush_stream(sh, idx)?;
            }
            let rd = (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32;
            if bits & rd != 0 && !sh.socks[idx as usize].recv_stopped {
                n += match sh.socks[idx as usize].opts.kind {
                    SockKind::Datagram => self.recv_dgram(sh, idx, handler),
                    SockKind::Stream => self.recv_stream(sh, idx, handler)?,
                };
            }
        }
        self.flush(sh)?;
        Ok(n)
    }

    fn recv_dgram<F>(&mut self, sh: &mut Shared, idx: u32, handler: &mut F) -> usize
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let id = sh.id_of(idx);
        let (fd, want_addr, cap) = {
            let e = &sh.socks[idx as usize];
            (e.raw_fd(), e.opts.want_addr, per_wake(&e.opts))
        };
        let b = self.socks[idx as usize].as_mut().expect("registered");
        let mut n = 0;
        for _ in 0..RECV_ROUNDS {
            if n >= cap {
                // Level-triggered: the rest comes at the next wake-up,
                // after the other sockets and the timers.
                break;
            }
            b.prepare(want_addr);
            let slots = b.hdrs.len().min(cap - n);
            // SAFETY: the headers point into b's own buffers, which stay
            // in place for the call.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    b.hdrs.as_mut_ptr(),
                    slots as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                let err = sys::errno();
                let e = &mut sh.socks[idx as usize];
                match err {
                    libc::EAGAIN => break,
                    libc::EINTR => continue,
                    libc::ENOBUFS => {
                        let error = sh.report_overrun(idx);
                        handler(&mut Ctx { sh }, Event::Error { sock: id, error });
                        n += 1;
                        continue;
                    }
                    _ => {
                        e.stats.recv_errors += 1;
                        let error = SockError::Recv {
                            errno: Errno(err),
                            stopped: false,
                        };
                        handler(&mut Ctx { sh }, Event::Error { sock: id, error });
                        n += 1;
                        break;
                    }
                }
            }
            let got = r as usize;
            for k in 0..got {
                let h = &b.hdrs[k];
                let len = (h.msg_len as usize).min(b.size);
                let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                let from = if want_addr {
                    addr::decode_raw(&b.names[k], h.msg_hdr.msg_namelen)
                } else {
                    None
                };
                let st = &mut sh.socks[idx as usize].stats;
                st.rx_datagrams += 1;
                st.rx_bytes += len as u64;
                st.rx_truncated += truncated as u64;
                let data = &b.bufs[k * b.size..k * b.size + len];
                handler(
                    &mut Ctx { sh },
                    Event::Recv {
                        sock: id,
                        data,
                        from,
                        truncated,
                    },
                );
                n += 1;
            }
            if got < slots {
                break;
            }
        }
        n
    }

    fn recv_stream<F>(&mut self, sh: &mut Shared, idx: u32, handler: &mut F) -> io::Result<usize>
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let id = sh.id_of(idx);
        let fd = sh.socks[idx as usize].raw_fd();
        let cap = per_wake(&sh.socks[idx as usize].opts);
        let b = self.socks[idx as usize].as_mut().expect("registered");
        let mut n = 0;
        for _ in 0..RECV_ROUNDS.min(cap) {
            // SAFETY: bufs is a live, writable buffer of the given length.
            let r = unsafe {
                libc::recv(
                    fd,
                    b.bufs.as_mut_ptr() as *mut libc::c_void,
                    b.bufs.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                let st = &mut sh.socks[idx as usize].stats;
                st.rx_datagrams += 1;
                st.rx_bytes += r as u64;
                let data = &b.bufs[..r as usize];
                let ev = Event::Recv {
                    sock: id,
                    data,
                    from: None,
                    truncated: false,
                };
                handler(&mut Ctx { sh }, ev);
                n += 1;
                continue;
            }
            let err = if r == 0 { 0 } else { sys::errno() };
            match err {
                libc::EAGAIN => break,
                libc::EINTR => continue,
                _ => {}
            }
            sh.socks[idx as usize].recv_stopped = true;
            let ev = if r == 0 {
                Event::Closed { sock: id }
            } else {
                sh.socks[idx as usize].stats.recv_errors += 1;
                let error = SockError::Recv {
                    errno: Errno(err),
                    stopped: true,
                };
                Event::Error { sock: id, error }
            };
            handler(&mut Ctx { sh }, ev);
            n += 1;
            self.set_interest(sh, idx)?;
            break;
        }
        Ok(n)
    }
}
