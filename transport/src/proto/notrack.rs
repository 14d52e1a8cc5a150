//! NOTRACK (best effort) as 1.4.7 runs it: every local change is sent
//! once as CT_NEW/CT_UPD/CT_DEL and forgotten; an idle node sends one
//! ALIVE per second; RESYNC asks the peer for a bulk send; received data
//! is applied to the external cache; ACK and NACK are not part of this
//! mode (they count as "Malformed header"). Sequence numbers are tracked
//! for statistics only.

use ct_core::flow::{Expect, Flow};

use super::seq::{SeqClass, SeqGen, SeqTracker};
use crate::wire::{
    ControlRepr, DataKind, Datagram, DatagramWriter, EmitOpts, Flags, Kind, Op, PushError,
    RecvCounters, RecvError, Transport,
};

/// What a received datagram asks the daemon to do (the flow or
/// expectation is lent: it is decoded into a buffer reused for every
/// message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply<'a> {
    /// A conntrack change for the external cache.
    Ct(Op, &'a Flow),
    /// An expectation change for the external expectation cache.
    Exp(Op, &'a Expect),
    /// The peer asked for a bulk send (RESYNC).
    Resync,
    /// FT-FW only: the peer NACKed messages the full resend queue no
    /// longer holds; a bulk send repairs it (see `ftfw::Apply::NeedBulk`).
    NeedBulk,
}

/// The NOTRACK state of one daemon.
pub struct Notrack {
    seq: SeqGen,
    pub rx: SeqTracker,
    pub recv_errors: RecvCounters,
    opts: EmitOpts,
    out: DatagramWriter<Vec<u8>>,
    sent_since_alive: bool,
    /// Received messages are decoded here.
    rx_buf: Box<(Flow, Expect)>,
}

impl Notrack {
    /// `mtu` of the sync interface; `opts` the sender settings
    /// (CommitTimeout, TCPWindowTracking).
    pub fn new(mtu: usize, transport: Transport, opts: EmitOpts) -> Notrack {
        Notrack {
            seq: SeqGen::default(),
            rx: SeqTracker::default(),
            recv_errors: RecvCounters::default(),
            opts,
            out: DatagramWriter::with_mtu(vec![0u8; mtu.max(128)], mtu, transport),
            sent_since_alive: false,
            rx_buf: Box::default(),
        }
    }

    fn push(
        &mut self,
        send: &mut dyn FnMut(&[u8]),
        mut f: impl FnMut(&mut DatagramWriter<Vec<u8>>) -> Result<usize, PushError>,
    ) {
        match f(&mut self.out) {
            Ok(_) => {}
            Err(PushError::Full) => {
                self.flush(send);
                let _ = f(&mut self.out);
            }
            Err(PushError::TooBig) => {}
        }
        self.sent_since_alive = true;
    }

    /// A local conntrack change.
    pub fn on_local(&mut self, op: Op, flow: &Flow, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        let seq = self.seq.next(now_unix);
        let opts = self.opts;
        self.push(send, |w| w.push_ct(op, Flags::default(), seq, flow, &opts));
    }

    /// A local expectation change.
    pub fn on_local_exp(&mut self, op: Op, e: &Expect, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        let seq = self.seq.next(now_unix);
        let opts = self.opts;
        self.push(send, |w| w.push_exp(op, Flags::default(), seq, e, &opts));
    }

    /// Asks the peer for a bulk send (`conntrackd -n`).
    pub fn request_resync(&mut self, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        let seq = self.seq.next(now_unix);
        self.push(send, |w| w.push_control(&ControlRepr::resync(seq)));
    }

    /// The 1-second alive tick: an ALIVE if nothing was sent since the
    /// last tick.
    pub fn on_alive_tick(&mut self, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        if !std::mem::take(&mut self.sent_since_alive) {
            let seq = self.seq.next(now_unix);
            self.push(send, |w| w.push_control(&ControlRepr::alive(seq)));
            self.sent_since_alive = false;
        }
        self.flush(send);
    }

    /// Whether messages wait in the datagram being filled.
    pub fn pending(&self) -> bool {
        !self.out.is_empty()
    }

    /// Sends what is buffered (end of a transmission run).
    pub fn flush(&mut self, send: &mut dyn FnMut(&[u8])) {
        if !self.out.is_empty() {
            send(self.out.as_bytes());
            self.out.clear();
        }
    }

    /// Processes a received datagram; each accepted change goes to
    /// `apply`. Returns the number of errors counted.
    pub fn on_datagram(&mut self, data: &[u8], apply: &mut dyn FnMut(Apply)) -> usize {
        let mut errors = 0;
        for m in Datagram::new(data) {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    self.recv_errors.record(&e);
                    errors += 1;
                    if e.stops_datagram() {
                        break;
                    }
                    continue;
                }
            };
            let kind = m.kind();
            let bad = matches!(kind, Kind::Bad | Kind::Ack | Kind::Nack);
            if bad {
                self.recv_errors.record(&RecvError::MalformedHeader {
                    ty: m.msg_type().0,
                    flags: m.flags().0,
                });
                errors += 1;
                continue;
            }
            // Statistics only: NOTRACK accepts every message.
            let seq = m.seq();
            let _: SeqClass = self.rx.classify(seq);
            self.rx.accept(seq);
            match kind {
                Kind::Data => match m.data_into(&mut self.rx_buf.0, &mut self.rx_buf.1) {
                    Ok(DataKind::Ct(op)) => apply(Apply::Ct(op, &self.rx_buf.0)),
                    Ok(DataKind::Exp(op)) => apply(Apply::Exp(op, &self.rx_buf.1)),
                    Err(e) => {
                        self.recv_errors.record(&e);
                        errors += 1;
                    }
                },
                Kind::Resync => apply(Apply::Resync),
                _ => {}
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_core::flow::{Tuple, AF_INET};
    use std::net::{IpAddr, Ipv4Addr};

    fn flow(port: u16) -> Flow {
        Flow {
            family: AF_INET,
            orig: Some(Tuple {
                src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                dst: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
                l4proto: Some(17),
                src_port: Some(port),
                dst_port: Some(53),
                ..Tuple::default()
            }),
            status: Some(8),
            timeout: Some(30),
            ..Flow::default()
        }
    }

    #[test]
    fn two_peers_over_a_lossless_link() {
        let mut a = Notrack::new(1500, Transport::Udp, EmitOpts::default());
        let mut b = Notrack::new(1500, Transport::Udp, EmitOpts::default());
        let mut wire: Vec<Vec<u8>> = Vec::new();
        for p in 0..100 {
            a.on_local(Op::New, &flow(p), 1000, &mut |d| wire.push(d.to_vec()));
        }
        a.on_local(Op::Delete, &flow(7), 1000, &mut |d| wire.push(d.to_vec()));
        a.flush(&mut |d| wire.push(d.to_vec()));
        assert!(wire.len() > 1, "batched into several MTU-sized datagrams");
        let mut got = Vec::new();
        for d in &wire {
            b.on_datagram(d, &mut |x| {
                if let Apply::Ct(op, f) = x {
                    got.push((op, *f))
                }
            });
        }
        assert_eq!(got.len(), 101);
        assert_eq!(got[0], (Op::New, flow(0)));
        assert_eq!(got[100], (Op::Delete, flow(7)));
        assert_eq!(b.rx.lost, 0);
        // Idle: an ALIVE; a resync request arrives as such.
        let mut w2 = Vec::new();
        a.on_alive_tick(1001, &mut |d| w2.push(d.to_vec()));
        a.request_resync(1001, &mut |d| w2.push(d.to_vec()));
        a.flush(&mut |d| w2.push(d.to_vec()));
        let mut got = Vec::new();
        for d in &w2 {
            b.on_datagram(d, &mut |x| got.push(format!("{x:?}")));
        }
        assert_eq!(got, vec![format!("{:?}", Apply::Resync)]);
    }
}
