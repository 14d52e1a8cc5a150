//! A netlink request/response session over a [`NlSocket`]: send one or a
//! batch of requests, then read replies until the dump ends, every
//! requested ack arrived, or (for a plain GET) the first reply datagram
//! was processed. Data messages are handed to a callback as zero-copy
//! [`Message`] views; kernel errors come back as errno values.

use std::io;

use ct_core::netlink::msg::{
    Message, Messages, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
};
use ct_core::netlink::writer::Writer;
use ct_ring::netlink::{NlSocket, RecvError, NETLINK_NETFILTER};

/// How a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `NLM_F_DUMP`: messages until `NLMSG_DONE`.
    Dump,
    /// `NLM_F_ACK` on each of `n` messages: read until `n` acks/errors.
    Acks(usize),
    /// No ack requested: process one datagram.
    Single,
}

/// A failed request: the kernel's errno (positive), or a local I/O error.
#[derive(Debug)]
pub enum NlFail {
    Kernel(i32),
    Io(io::Error),
}

impl NlFail {
    /// The errno value to report.
    pub fn errno(&self) -> i32 {
        match self {
            NlFail::Kernel(e) => *e,
            NlFail::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// One netlink socket plus reusable buffers.
pub struct Session {
    pub sock: NlSocket,
    req: Vec<u8>,
    rx: Vec<u8>,
    seq: u32,
}

impl Session {
    /// Opens a request socket (no multicast groups).
    pub fn open() -> io::Result<Session> {
        let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(Session {
            sock,
            req: Vec::with_capacity(8192),
            rx: vec![0u8; 1 << 17],
            seq,
        })
    }

    /// Builds a request with `build` (given a writer and the sequence
    /// number to use) and runs it.
    pub fn request(
        &mut self,
        reply: Reply,
        build: impl FnOnce(&mut Writer, u32),
        cb: impl FnMut(&Message) -> bool,
    ) -> Result<(), NlFail> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut req = std::mem::take(&mut self.req);
        req.clear();
        build(&mut Writer::new(&mut req), seq);
        let r = self.run(&req, seq, reply, cb);
        self.req = req;
        r
    }

    /// A fresh sequence number, for requests built by the caller.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `req`, `n` messages that each asked for an ACK, and hands
    /// every answer to `each` as (the request's sequence number, errno or
    /// 0), until `n` arrived.
    pub fn run_acks(
        &mut self,
        req: &[u8],
        n: usize,
        mut each: impl FnMut(u32, i32),
    ) -> Result<(), NlFail> {
        self.sock.send(req).map_err(NlFail::Io)?;
        let portid = self.sock.portid();
        let mut left = n;
        while left > 0 {
            let got = match self.sock.recv(&mut self.rx, false) {
                Ok(got) => got,
                Err(RecvError::Interrupted) | Err(RecvError::WouldBlock) => continue,
                Err(RecvError::Overrun) => return Err(NlFail::Kernel(libc::ENOBUFS)),
                Err(RecvError::Io(e)) => return Err(NlFail::Io(e)),
            };
            for m in Messages::new(&self.rx[..got]) {
                let Ok(m) = m else { break };
                if m.ty != NLMSG_ERROR || (m.pid != 0 && m.pid != portid) {
                    continue;
                }
                each(m.seq, m.error_code().unwrap_or(libc::EIO));
                left = left.saturating_sub(1);
            }
        }
        Ok(())
    }

    /// Sends `req` (already built with sequence numbers starting at `seq`)
    /// and processes replies. The callback returns false to stop early.
    pub fn run(
        &mut self,
        req: &[u8],
        seq: u32,
        reply: Reply,
        mut cb: impl FnMut(&Message) -> bool,
    ) -> Result<(), NlFail> {
        self.sock.send(req).map_err(NlFail::Io)?;
        let portid = self.sock.portid();
        let mut acks_left = match reply {
            Reply::Acks(n) => n,
            _ => 0,
        };
        let mut first_err: Option<i32> = None;
        loop {
            let n = match self.sock.recv(&mut self.rx, false) {
                Ok(n) => n,
                Err(RecvError::Interrupted) => continue,
                Err(RecvError::Overrun) => return Err(NlFail::Kernel(libc::ENOBUFS)),
                Err(RecvError::WouldBlock) => continue,
                Err(RecvError::Io(e)) => return Err(NlFail::Io(e)),
            };
            let mut done = false;
            for m in Messages::new(&self.rx[..n]) {
                let Ok(m) = m else { break };
                if m.pid != 0 && m.pid != portid {
                    continue;
                }
                let _ = seq;
                match m.ty {
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        let e = m.error_code().unwrap_or(libc::EIO);
                        if e != 0 && first_err.is_none() {
                            first_err = Some(e);
                        }
                        if reply == Reply::Dump && e != 0 {
                            done = true;
                        }
                        if acks_left > 0 {
                            acks_left -= 1;
                            if acks_left == 0 {
                                done = true;
                            }
                        }
                    }
                    _ => {
                        if !cb(&m) {
                            // Keep draining a dump so the socket stays usable.
                        }
                    }
                }
            }
            if done || reply == Reply::Single {
                break;
            }
        }
        match first_err {
            Some(e) => Err(NlFail::Kernel(e)),
            None => Ok(()),
        }
    }
}
