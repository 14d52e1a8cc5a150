//! State both backends share: the socket table (fd, options, counters,
//! per-socket send FIFO, pending send errors), the send slots (a fixed
//! arena of `send_slots` x `send_slot_size` bytes, filled in place by the
//! caller and lent to the kernel until the send completes) and the
//! timers. [`Ctx`] is the view of it that `poll` callbacks get.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::addr::{self, RawAddr};
use super::config::{Config, SockKind, SockOpts};
use super::event::{Errno, Event, SendError, SockError, SockId, SockStats};
use super::sys::{self, Mmap};
use super::timers::Timers;

use super::ctx::Ctx;

/// Socket ids carry a 24-bit generation (it travels in io_uring user data).
pub(crate) const GEN_MASK: u32 = 0x00ff_ffff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Free,
    Open,
    /// Closed by the caller; the backend still waits for the kernel to
    /// let go of it (io_uring cancellation).
    Closing,
}

pub(crate) struct SockEntry {
    pub gen: u32,
    pub state: State,
    pub fd: Option<OwnedFd>,
    pub opts: SockOpts,
    pub stats: SockStats,
    /// Queued send slots not yet handed to the kernel, in order.
    pub txq: VecDeque<u32>,
    /// Sends handed to the kernel and not completed (stream: 0 or 1).
    pub tx_inflight: u32,
    /// In `Shared::dirty`.
    pub dirty: bool,
    /// Aggregated send failures not yet reported.
    pub send_err: Option<(Errno, u32)>,
    /// The socket drop counter at the last overrun check.
    pub drops_seen: u32,
    /// Receiving has stopped (EOF or fatal error).
    pub recv_stopped: bool,
    /// In `Shared::watch`: the drop counter is re-checked after each poll.
    watching: bool,
    /// `stats.rx_datagrams` at the last re-check.
    watch_rx: u64,
    /// A stream send failed: the byte stream has a hole, sends are refused.
    pub tx_broken: bool,
    /// io_uring streams: where the next cancelled link of the chain in
    /// flight goes back into `txq` (so that order is kept).
    pub requeue_at: usize,
}

impl SockEntry {
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// How much the socket's drop counter grew since the last call.
    pub(crate) fn take_drops(&mut self) -> u32 {
        self.take_drops_and_queued().0
    }

    /// Growth of the drop counter, and whether data is still queued.
    pub(crate) fn take_drops_and_queued(&mut self) -> (u32, bool) {
        let (d, rmem) = sys::sock_meminfo(self.raw_fd());
        let delta = d.wrapping_sub(self.drops_seen);
        self.drops_seen = d;
        (delta, rmem > 0)
    }

    /// Counts an overrun of `dropped` messages and builds its value.
    fn overrun(&mut self, dropped: u32, first: bool) -> SockError {
        self.stats.overruns += 1;
        self.stats.dropped += dropped as u64;
        SockError::Overrun { dropped, first }
    }
}

/// One send slot: where its bytes go and the kernel structures that
/// point at them (set just before submission; slots never move because
/// `Shared::slots` is never resized).
pub(crate) struct SendSlot {
    pub sock: u32,
    pub gen: u32,
    pub len: u32,
    /// Stream: bytes already written.
    pub off: u32,
    pub addr: RawAddr,
    pub addrlen: libc::socklen_t,
    pub iov: libc::iovec,
    pub msg: libc::msghdr,
}

pub(crate) struct Shared {
    pub socks: Vec<SockEntry>,
    free_socks: Vec<u32>,
    pub slots: Vec<SendSlot>,
    arena: Mmap,
    slot_size: usize,
    free_slots: Vec<u32>,
    /// Sockets with queued sends.
    pub dirty: Vec<u32>,
    /// Sockets with a pending `send_err`.
    err_socks: Vec<u32>,
    /// Sockets whose drop counter is re-checked after each poll.
    watch: Vec<u32>,
    pub timers: Timers,
    /// The time of the current poll round.
    pub now: Instant,
}

impl Shared {
    pub(crate) fn new(cfg: &Config) -> std::io::Result<Shared> {
        let n = cfg.send_slots.max(1) as usize;
        let size = cfg.send_slot_size.max(1) as usize;
        let mut slots = Vec::with_capacity(n);
        for _ in 0..n {
            slots.push(SendSlot {
                sock: 0,
                gen: 0,
                len: 0,
                off: 0,
                addr: addr::zeroed(),
                addrlen: 0,
                // SAFETY: iovec and msghdr are plain C structs; all-zero is valid.
                iov: unsafe { std::mem::zeroed() },
                msg: unsafe { std::mem::zeroed() },
            });
        }
        Ok(Shared {
            socks: Vec::new(),
            free_socks: Vec::new(),
            slots,
            arena: Mmap::new(n * size)?,
            slot_size: size,
            free_slots: (0..n as u32).rev().collect(),
            dirty: Vec::with_capacity(16),
            err_socks: Vec::with_capacity(16),
            watch: Vec::with_capacity(16),
            timers: Timers::new(),
            now: Instant::now(),
        })
    }

    /// The entry of an open socket.
    pub(crate) fn open_entry(&mut self, id: SockId) -> Option<&mut SockEntry> {
        self.socks
            .get_mut(id.idx as usize)
            .filter(|e| e.state == State::Open && e.gen == id.gen)
    }

    /// The entry at `idx` if it is open with generation `gen` (24 bits).
    pub(crate) fn entry_gen(&mut self, idx: u32, gen: u32) -> Option<&mut SockEntry> {
        self.socks
            .get_mut(idx as usize)
            .filter(|e| e.state != State::Free && e.gen & GEN_MASK == gen & GEN_MASK)
    }

    pub(crate) fn id_of(&self, idx: u32) -> SockId {
        SockId {
            idx,
            gen: self.socks[idx as usize].gen,
        }
    }

    pub(crate) fn alloc_sock(&mut self, fd: OwnedFd, opts: SockOpts) -> SockId {
        let slots = self.slots.len();
        let drops = sys::sock_drops(fd.as_raw_fd());
        let idx = match self.free_socks.pop() {
            Some(i) => i,
            None => {
                self.socks.push(SockEntry {
                    gen: 0,
                    state: State::Free,
                    fd: None,
                    opts,
                    stats: SockStats::default(),
                    txq: VecDeque::with_capacity(slots),
                    tx_inflight: 0,
                    dirty: false,
                    send_err: None,
                    drops_seen: 0,
                    recv_stopped: false,
                    watching: false,
                    watch_rx: 0,
                    tx_broken: false,
                    requeue_at: 0,
                });
                (self.socks.len() - 1) as u32
            }
        };
        let e = &mut self.socks[idx as usize];
        e.gen = (e.gen + 1) & GEN_MASK;
        if e.gen == 0 {
            e.gen = 1;
        }
        e.state = State::Open;
        e.fd = Some(fd);
        e.opts = opts;
        e.stats = SockStats::default();
        e.txq.clear();
        e.tx_inflight = 0;
        e.dirty = false;
        e.send_err = None;
        e.drops_seen = drops;
        e.recv_stopped = !opts.recv;
        e.tx_broken = false;
        e.requeue_at = 0;
        e.watching = false;
        SockId { idx, gen: e.gen }
    }

    /// Stops sends on a socket: drops its queue and pending errors.
    pub(crate) fn begin_close(&mut self, idx: u32) {
        let e = &mut self.socks[idx as usize];
        e.state = State::Closing;
        e.send_err = None;
        while let Some(s) = e.txq.pop_front() {
            self.free_slots.push(s);
        }
    }

    /// Frees the socket (closing its fd) once the kernel is done with it.
    pub(crate) fn free_sock(&mut self, idx: u32) {
        self.begin_close(idx);
        let e = &mut self.socks[idx as usize];
        e.state = State::Free;
        e.fd = None;
        self.free_socks.push(idx);
    }

    // ---- send slots -------------------------------------------------

    /// The bytes of slot `i`.
    ///
    /// Only for a slot that is not in flight: the caller filling it, or a
    /// backend handing its bytes to a synchronous syscall.
    pub(crate) fn slot_bytes(&mut self, i: u32) -> &mut [u8] {
        assert!((i as usize) < self.slots.len());
        // SAFETY: slot i lies inside the arena (i < slots, arena = slots *
        // slot_size); slots never overlap; &mut self makes this the only
        // Rust view, and callers only ask for slots the kernel is not using.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.arena.as_ptr().add(i as usize * self.slot_size),
                self.slot_size,
            )
        }
    }

    /// Points slot `i`'s iovec/msghdr at its unsent bytes and address and
    /// returns the msghdr, for `sendmsg`/`sendmmsg`/io_uring SENDMSG.
    pub(crate) fn prepare_msg(&mut self, i: u32) -> *mut libc::msghdr {
        let base = self.arena.as_ptr();
        let size = self.slot_size;
        let s = &mut self.slots[i as usize];
        // SAFETY: off <= len <= slot_size, so the pointer stays inside slot i.
        s.iov.iov_base = unsafe { base.add(i as usize * size + s.off as usize) } as *mut _;
        s.iov.iov_len = (s.len - s.off) as usize;
        s.msg.msg_iov = &mut s.iov;
        s.msg.msg_iovlen = 1;
        s.msg.msg_name = if s.addrlen > 0 {
            &mut s.addr as *mut RawAddr as *mut libc::c_void
        } else {
            std::ptr::null_mut()
        };
        s.msg.msg_namelen = s.addrlen;
        s.msg.msg_control = std::ptr::null_mut();
        s.msg.msg_controllen = 0;
        s.msg.msg_flags = 0;
        &mut s.msg
    }

    /// Never unmap the send slots (the kernel might still read them).
    pub(crate) fn leak_send_slots(&mut self) {
        self.arena.leak();
    }

    /// Send slots neither queued nor in flight.
    pub(crate) fn free_slots(&self) -> usize {
        self.free_slots.len()
    }

    pub(crate) fn release_slot(&mut self, i: u32) {
        self.free_slots.push(i);
    }

    /// Queues one datagram on `id`, written in place by `fill` (which gets
    /// a whole slot and returns how many bytes it wrote).
    pub(crate) fn queue<F: FnOnce(&mut [u8]) -> usize>(
        &mut self,
        id: SockId,
        to: Option<&SocketAddr>,
        fill: F,
    ) -> Result<usize, SendError> {
        match self.open_entry(id) {
            None => return Err(SendError::BadSocket),
            Some(e) if e.tx_broken => return Err(SendError::Broken),
            Some(_) => {}
        }
        let Some(slot) = self.free_slots.pop() else {
            self.socks[id.idx as usize].stats.tx_queue_full += 1;
            return Err(SendError::QueueFull);
        };
        let size = self.slot_size;
        let n = fill(self.slot_bytes(slot)).min(size);
        let s = &mut self.slots[slot as usize];
        s.sock = id.idx;
        s.gen = id.gen;
        s.len = n as u32;
        s.off = 0;
        s.addrlen = match to {
            Some(a) => addr::encode(a, &mut s.addr),
            None => 0,
        };
        let e = &mut self.socks[id.idx as usize];
        e.txq.push_back(slot);
        if !e.dirty {
            e.dirty = true;
            self.dirty.push(id.idx);
        }
        Ok(n)
    }

    pub(crate) fn send_to(
        &mut self,
        id: SockId,
        data: &[u8],
        to: Option<&SocketAddr>,
    ) -> Result<(), SendError> {
        if data.len() > self.slot_size {
            return Err(SendError::TooBig);
        }
        self.queue(id, to, |b| {
            b[..data.len()].copy_from_slice(data);
            data.len()
        })
        .map(|_| ())
    }

    /// A send of slot `i` finished with `res` (bytes or -errno) and the
    /// slot is no longer the kernel's. Returns true when a stream slot
    /// still has bytes to write (the caller resubmits it).
    pub(crate) fn send_done(&mut self, i: u32, res: i32) -> bool {
        let (sock, gen, len, off) = {
            let s = &self.slots[i as usize];
            (s.sock, s.gen, s.len, s.off)
        };
        let Some(kind) = self
            .entry_gen(sock, gen)
            .filter(|e| e.gen == gen)
            .map(|e| e.opts.kind)
        else {
            self.free_slots.push(i);
            return false;
        };
        if res < 0 {
            self.send_failed(sock, Errno(-res));
            let e = &mut self.socks[sock as usize];
            if kind == SockKind::Stream {
                // A broken stream: what is queued behind can't follow.
                e.tx_broken = true;
                while let Some(s) = e.txq.pop_front() {
                    e.stats.tx_errors += 1;
                    self.free_slots.push(s);
                }
            }
            self.free_slots.push(i);
            return false;
        }
        let done = off + res as u32;
        if kind == SockKind::Stream && done < len {
            self.slots[i as usize].off = done;
            return true;
        }
        let e = &mut self.socks[sock as usize];
        e.stats.tx_datagrams += 1;
        e.stats.tx_bytes += len as u64;
        self.free_slots.push(i);
        false
    }

    /// Records a failed send on socket `idx` (reported at the end of poll).
    pub(crate) fn send_failed(&mut self, idx: u32, errno: Errno) {
        let e = &mut self.socks[idx as usize];
        if e.state != State::Open {
            return;
        }
        e.stats.tx_errors += 1;
        match &mut e.send_err {
            Some((last, count)) => {
                *last = errno;
                *count += 1;
            }
            None => {
                e.send_err = Some((errno, 1));
                self.err_socks.push(idx);
            }
        }
    }

    /// Puts slot `i` (a cancelled link of a stream's send chain) back
    /// into its socket's queue, in chain order; false when the stream is
    /// closed or broken (then the slot is freed).
    pub(crate) fn requeue(&mut self, i: u32) -> bool {
        let (sock, gen) = {
            let s = &self.slots[i as usize];
            (s.sock, s.gen)
        };
        match self.entry_gen(sock, gen) {
            Some(e) if e.gen == gen && e.state == State::Open && !e.tx_broken => {
                let at = e.requeue_at.min(e.txq.len());
                e.txq.insert(at, i);
                e.requeue_at = at + 1;
                if !e.dirty {
                    e.dirty = true;
                    self.dirty.push(sock);
                }
                true
            }
            _ => {
                self.free_slots.push(i);
                false
            }
        }
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.err_socks.is_empty()
    }

    /// ENOBUFS on socket `idx`: counts the overrun with the growth of the
    /// drop counter and watches the counter from now on.
    ///
    /// Netlink raises ENOBUFS once per congestion episode: messages it
    /// drops after that, until the queue has drained, only bump the
    /// counter. So after each poll the counter is read again and any
    /// growth reported as a further overrun, until a round with neither
    /// growth nor data (the queue was empty, the episode over).
    pub(crate) fn report_overrun(&mut self, idx: u32) -> SockError {
        let e = &mut self.socks[idx as usize];
        let dropped = e.take_drops();
        e.watch_rx = e.stats.rx_datagrams;
        if !e.watching {
            e.watching = true;
            self.watch.push(idx);
        }
        self.socks[idx as usize].overrun(dropped, true)
    }

    /// Reports drops that came without an ENOBUFS (see `report_overrun`).
    fn recheck_drops<F>(&mut self, handler: &mut F) -> usize
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let mut n = 0;
        let mut k = 0;
        while k < self.watch.len() {
            let idx = self.watch[k];
            let e = &mut self.socks[idx as usize];
            if e.state != State::Open {
                e.watching = false;
                self.watch.swap_remove(k);
                continue;
            }
            // Idle: nothing received this round and nothing queued (a
            // receive waiting to be re-armed while the queue is full is
            // not idle: the kernel may still be dropping silently).
            let (dropped, queued) = e.take_drops_and_queued();
            let idle = e.stats.rx_datagrams == e.watch_rx && !queued;
            e.watch_rx = e.stats.rx_datagrams;
            if dropped > 0 {
                let error = e.overrun(dropped, false);
                let sock = SockId { idx, gen: e.gen };
                handler(&mut Ctx { sh: self }, Event::Error { sock, error });
                n += 1;
            } else if idle {
                e.watching = false;
                self.watch.swap_remove(k);
                continue;
            }
            k += 1;
        }
        n
    }

    /// Hands pending send errors, drops found by the re-check, and due
    /// timers to `handler`.
    pub(crate) fn deliver_errors_and_timers<F>(&mut self, handler: &mut F) -> usize
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let mut n = self.recheck_drops(handler);
        while let Some(idx) = self.err_socks.pop() {
            let e = &mut self.socks[idx as usize];
            if let Some((errno, count)) = e.send_err.take() {
                if e.state == State::Open {
                    let sock = SockId { idx, gen: e.gen };
                    let error = SockError::Send { errno, count };
                    handler(&mut Ctx { sh: self }, Event::Error { sock, error });
                    n += 1;
                }
            }
        }
        self.now = Instant::now();
        while let Some(t) = self.timers.pop_expired(self.now) {
            handler(&mut Ctx { sh: self }, Event::Timer(t));
            n += 1;
        }
        n
    }
}
