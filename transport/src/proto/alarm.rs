//! ALARM as 1.4.7 runs it: no control traffic at all (no ALIVE, HELLO,
//! ACK or RESYNC); local changes are sent as they happen and every cached
//! entry is re-sent periodically (the caller decides which entries a tick
//! refreshes); received messages with any flag set are control and are
//! ignored, the rest is data for the external cache, whose entries the
//! caller expires `CacheTimeout` seconds after their last update. ALARM
//! keeps no sequence state on receive (its lost/before counters stay 0).

use ct_core::flow::{Expect, Flow};

use super::notrack::Apply;
use super::seq::SeqGen;
use crate::wire::{
    DataKind, Datagram, DatagramWriter, EmitOpts, Flags, Op, PushError, RecvCounters, RecvError,
    Transport,
};

/// The ALARM state of one daemon.
pub struct Alarm {
    seq: SeqGen,
    pub recv_errors: RecvCounters,
    opts: EmitOpts,
    out: DatagramWriter<Vec<u8>>,
    /// Received messages are decoded here.
    rx_buf: Box<(Flow, Expect)>,
}

impl Alarm {
    pub fn new(mtu: usize, transport: Transport, opts: EmitOpts) -> Alarm {
        Alarm {
            seq: SeqGen::default(),
            recv_errors: RecvCounters::default(),
            opts,
            out: DatagramWriter::with_mtu(vec![0u8; mtu.max(128)], mtu, transport),
            rx_buf: Box::default(),
        }
    }

    /// Appends a message with `f`; a full datagram is sent first.
    fn push(
        &mut self,
        send: &mut dyn FnMut(&[u8]),
        mut f: impl FnMut(&mut DatagramWriter<Vec<u8>>) -> Result<usize, PushError>,
    ) {
        if let Err(PushError::Full) = f(&mut self.out) {
            self.flush(send);
            let _ = f(&mut self.out);
        }
    }

    /// A local change, or a periodic refresh of an entry.
    pub fn on_local(&mut self, op: Op, flow: &Flow, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        let seq = self.seq.next(now_unix);
        let opts = self.opts;
        self.push(send, |w| w.push_ct(op, Flags::default(), seq, flow, &opts));
    }

    /// A local expectation change (sent as it happens; not refreshed).
    pub fn on_local_exp(&mut self, op: Op, e: &Expect, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        let seq = self.seq.next(now_unix);
        let opts = self.opts;
        self.push(send, |w| w.push_exp(op, Flags::default(), seq, e, &opts));
    }

    /// Whether messages wait in the datagram being filled.
    pub fn pending(&self) -> bool {
        !self.out.is_empty()
    }

    /// Sends what is buffered.
    pub fn flush(&mut self, send: &mut dyn FnMut(&[u8])) {
        if !self.out.is_empty() {
            send(self.out.as_bytes());
            self.out.clear();
        }
    }

    /// Processes a received datagram.
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
            if m.flags().0 != 0 {
                continue; // control: ignored in this mode
            }
            match m.data_into(&mut self.rx_buf.0, &mut self.rx_buf.1) {
                Ok(DataKind::Ct(op)) => apply(Apply::Ct(op, &self.rx_buf.0)),
                Ok(DataKind::Exp(op)) => apply(Apply::Exp(op, &self.rx_buf.1)),
                Err(e) => {
                    let e: RecvError = e;
                    self.recv_errors.record(&e);
                    errors += 1;
                }
            }
        }
        errors
    }
}
