//! Receive completions of the io_uring backend: hand the datagram in
//! the provided buffer to the caller and recycle the buffer, classify
//! `-ENOBUFS` (netlink overrun or empty buffer ring, told apart by the
//! socket's drop counter, see the `reactor` module doc), report other
//! errors, and arm the multishot receive again whenever it ended.

use std::io;

use io_uring::{cqueue, types};

use super::{fatal, UringBackend, MAX_ERRORS_IN_A_ROW};
use crate::reactor::addr;
use crate::reactor::config::SockKind;
use crate::reactor::ctx::Ctx;
use crate::reactor::event::{Errno, Event, SockError, SockId};
use crate::reactor::shared::{Shared, SockEntry, State};

impl UringBackend {
    pub(super) fn on_recv<F>(
        &mut self,
        sh: &mut Shared,
        idx: u32,
        gen: u32,
        res: i32,
        flags: u32,
        handler: &mut F,
    ) -> io::Result<usize>
    where
        F: FnMut(&mut Ctx<'_>, Event<'_>),
    {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        if self.trace && (res <= 0 || !more) {
            eprintln!(
                "ct-ring: recv cqe sock={idx} res={res} flags={flags:#x} buffer={bid:?} more={more}"
            );
        }
        let Some(s) = self.socks.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return Ok(0);
        };
        let live = !s.closing
            && !self.shutting_down
            && sh
                .entry_gen(idx, gen)
                .is_some_and(|e| e.state == State::Open);
        let id = SockId {
            idx,
            gen: sh.socks[idx as usize].gen,
        };
        let (kind, want_addr) = {
            let o = &sh.socks[idx as usize].opts;
            (o.kind, o.want_addr)
        };
        let mut n = 0;
        let eof = kind == SockKind::Stream && res == 0;
        if let (Some(bid), Some(ring)) = (bid, s.ring.as_mut()) {
            if live && res >= 0 && !eof {
                s.errors_in_a_row = 0;
                let len = res as usize;
                let (data, from, truncated) = if kind == SockKind::Datagram && want_addr {
                    // SAFETY: the CQE hands us buffer bid until we recycle
                    // it; res counts header, address and payload bytes.
                    let buf = unsafe { ring.buf(bid, len) };
                    match types::RecvMsgOut::parse(buf, &s.msg) {
                        Ok(out) => {
                            let truncated = out.is_payload_truncated();
                            let from = addr::decode(out.name_data());
                            let p = out.payload_data();
                            let off = p.as_ptr() as usize - buf.as_ptr() as usize;
                            (&buf[off..off + p.len()], from, truncated)
                        }
                        Err(()) => (&buf[..0], None, true),
                    }
                } else {
                    // SAFETY: as above; len is clamped to the buffer size.
                    let data = unsafe { ring.buf(bid, len) };
                    let truncated = kind == SockKind::Datagram && len > data.len();
                    (data, None, truncated)
                };
                let st = &mut sh.socks[idx as usize].stats;
                st.rx_datagrams += 1;
                st.rx_bytes += data.len() as u64;
                st.rx_truncated += truncated as u64;
                let ev = Event::Recv {
                    sock: id,
                    data,
                    from,
                    truncated,
                };
                handler(&mut Ctx { sh }, ev);
                n += 1;
            }
            ring.recycle(bid);
        }
        if res < 0 && live {
            let errno = -res;
            let e = &mut sh.socks[idx as usize];
            if errno == libc::ENOBUFS {
                // Either the netlink socket overran (the kernel dropped
                // messages: its drop counter grew) or our buffer ring ran
                // dry (nothing lost; the data waits in the socket).
                if sys_drops_grew(e) {
                    let error = sh.report_overrun(idx);
                    handler(&mut Ctx { sh }, Event::Error { sock: id, error });
                    n += 1;
                } else {
                    e.stats.ring_empty += 1;
                }
            } else if errno != libc::ECANCELED {
                s.errors_in_a_row += 1;
                let stop = kind == SockKind::Stream
                    || fatal(errno)
                    || s.errors_in_a_row >= MAX_ERRORS_IN_A_ROW;
                e.stats.recv_errors += 1;
                if stop {
                    e.recv_stopped = true;
                }
                let error = SockError::Recv {
                    errno: Errno(errno),
                    stopped: stop,
                };
                handler(&mut Ctx { sh }, Event::Error { sock: id, error });
                n += 1;
            }
        }
        if eof && live {
            sh.socks[idx as usize].recv_stopped = true;
            handler(&mut Ctx { sh }, Event::Closed { sock: id });
            n += 1;
        }
        if !more {
            self.inflight -= 1;
            let s = self.socks[idx as usize].as_mut().expect("registered");
            s.armed = false;
            if s.closing {
                self.finalize(sh, idx);
            } else if live && !sh.socks[idx as usize].recv_stopped {
                sh.socks[idx as usize].stats.rearms += 1;
                self.arm(sh, idx)?;
            }
        }
        Ok(n)
    }
}

fn sys_drops_grew(e: &mut SockEntry) -> bool {
    // Peek without consuming: `report_overrun` takes the delta.
    crate::reactor::sys::sock_drops(e.raw_fd()) != e.drops_seen
}
