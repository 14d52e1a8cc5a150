//! What the replicator asks of the world: the outputs of its state
//! machine (datagrams for the peer, changes for the kernel table, lines
//! for the log) and the kernel dumps a resync reads. The daemon's driver
//! implements it over the reactor's sockets and netlink; the in-process
//! tests over a simulated link and [`FakeTable`](ct_core::table::FakeTable).

use ct_core::flow::{Expect, Flow};

use crate::wire::Op;

/// The replicator's outputs and kernel reads.
pub trait Io {
    /// A datagram for the peer (at most the link's MTU).
    fn send(&mut self, datagram: &[u8]);

    /// DisableExternalCache: a peer's change, for the kernel table. The
    /// changes of one datagram may be held back until
    /// [`inject_flush`](Self::inject_flush), in their order.
    fn inject(&mut self, _op: Op, _f: &Flow) {}

    /// The datagram's injections are all given: they must reach the
    /// kernel now.
    fn inject_flush(&mut self) {}

    /// DisableExternalCache with ExpectationSync: a peer's expectation
    /// change, for the kernel.
    fn inject_exp(&mut self, _op: Op, _e: &Expect) {}

    /// Reads the kernel's conntrack table through the configured Filter:
    /// each flow with whether it is the lane's share (`false`: another
    /// lane's; a lane that held it hands it over with a withdrawal, not a
    /// DEL, since the lane that owns it now sends its state). `Err(errno)`
    /// when it cannot.
    fn dump(&mut self, _out: &mut dyn FnMut(&Flow, bool)) -> Result<(), i32> {
        Ok(())
    }

    /// Reads the kernel's expectation table (the lane's share).
    fn dump_exp(&mut self, _out: &mut dyn FnMut(&Expect)) -> Result<(), i32> {
        Ok(())
    }

    /// Fills in `f`'s NAT sequence adjustment (`seq_adj_orig`,
    /// `seq_adj_reply`) from the kernel's entry of its tuple (a GET):
    /// ctnetlink's events never carry it, though the status bit
    /// SEQ_ADJUST says it is there. Nothing when it cannot.
    fn seq_adj(&mut self, _f: &mut Flow) {}

    /// Stats mode: a flow ended (destroyed, or gone from the table at a
    /// resync), for the flow log.
    fn flow_ended(&mut self, _f: &Flow) {}

    /// Something for the log.
    fn note(&mut self, _n: Note) {}
}

/// The log lines of the replicator (the driver words them as 1.4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// The peer asked for a bulk update (RESYNC).
    ResyncRequested,
    /// The peer NACKed messages the full resend queue no longer holds.
    NeedBulk,
    /// A bulk update starts (announced: after the peer's request or
    /// `-B`; not after an overrun resync, nor with DisableInternalCache).
    SendingBulk,
    /// A bulk update with DisableInternalCache could not read the
    /// kernel's table (errno).
    DumpFailed(i32),
}
