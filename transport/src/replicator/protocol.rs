//! One interface over the three sync protocols (NOTRACK, ALARM, FT-FW),
//! so that the replicator has no per-mode branches: a local change is
//! given as its operation, its internal-cache reference and its state
//! (FT-FW queues the reference and encodes the object's state when it
//! sends; NOTRACK and ALARM encode the state at once), and
//! [`Protocol::transmit`] sends what waits, reading FT-FW's objects from
//! the caches.

use std::collections::HashSet;
use std::time::Instant;

use ct_core::config::{SyncMode, SyncSection};
use ct_core::flow::{Expect, Flow};
use ct_core::table::{Cache, ExpCache, ObjRef, ObjState};

use crate::proto::alarm::Alarm;
use crate::proto::ftfw::{self, Ftfw, Object};
use crate::proto::notrack::{Apply, Notrack};
use crate::wire::{EmitOpts, Op, RecvCounters, Transport};

/// What the protocol is built for: the link's MTU (the authentication
/// trailer, when there is one, is taken out of it here) and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParams {
    pub mtu: usize,
    pub transport: Transport,
    /// `Authentication` is on: each datagram leaves room for its trailer.
    pub sealed: bool,
}

/// A random start for FT-FW's numbering (see
/// [`ftfw::Config::seq_offset`]): the standard library's per-process
/// random hash keys.
fn random_seq_offset() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() as u32
}

/// The protocol of a link.
pub enum Protocol {
    Notrack(Notrack),
    Alarm(Alarm),
    Ftfw(Box<Ftfw>),
}

impl Protocol {
    /// The protocol `sync` asks for.
    pub fn new(sync: &SyncSection, link: LinkParams, now: Instant) -> Protocol {
        let mtu = if link.sealed {
            link.mtu - crate::auth::TRAILER_LEN
        } else {
            link.mtu
        };
        let opts = EmitOpts {
            commit_timeout: sync.commit_timeout > 0,
            tcp_window_tracking: sync.tcp_window_tracking,
        };
        let t = link.transport;
        match sync.mode() {
            SyncMode::Alarm => Protocol::Alarm(Alarm::new(mtu, t, opts)),
            SyncMode::Ftfw => Protocol::Ftfw(Box::new(Ftfw::new(
                ftfw::Config {
                    mtu,
                    transport: t,
                    opts,
                    window: sync.ack_window_size,
                    resend_queue_size: sync.resend_queue_size,
                    seq_offset: random_seq_offset(),
                    resend_skipped: true,
                },
                now,
            ))),
            _ => Protocol::Notrack(Notrack::new(mtu, t, opts)),
        }
    }

    /// The FT-FW state machine (its queues, for `-s queue` and `-s
    /// rsqueue`), when this link runs FT-FW.
    pub fn ftfw(&self) -> Option<&Ftfw> {
        match self {
            Protocol::Ftfw(p) => Some(p),
            _ => None,
        }
    }

    /// Whether deleted objects stay in the internal cache (DEAD) until the
    /// peer acknowledged their deletion (FT-FW).
    pub fn keeps_dead(&self) -> bool {
        matches!(self, Protocol::Ftfw(_))
    }

    pub fn is_alarm(&self) -> bool {
        matches!(self, Protocol::Alarm(_))
    }

    /// Whether a bulk update must be sent in slices (the protocol encodes
    /// at once): FT-FW only queues references.
    pub fn encodes_at_once(&self) -> bool {
        !self.keeps_dead()
    }

    /// A local conntrack change: `obj` is its internal-cache reference
    /// (none with DisableInternalCache), `f` its state.
    pub fn local_ct(
        &mut self,
        op: Op,
        obj: Option<ObjRef>,
        f: &Flow,
        now_unix: u32,
        send: &mut dyn FnMut(&[u8]),
    ) {
        match self {
            Protocol::Notrack(p) => p.on_local(op, f, now_unix, send),
            Protocol::Alarm(p) => p.on_local(op, f, now_unix, send),
            Protocol::Ftfw(p) => {
                if let Some(obj) = obj {
                    p.on_local(obj)
                }
            }
        }
    }

    /// A local expectation change (as [`local_ct`](Self::local_ct)).
    pub fn local_exp(
        &mut self,
        op: Op,
        obj: Option<ObjRef>,
        e: &Expect,
        now_unix: u32,
        send: &mut dyn FnMut(&[u8]),
    ) {
        match self {
            Protocol::Notrack(p) => p.on_local_exp(op, e, now_unix, send),
            Protocol::Alarm(p) => p.on_local_exp(op, e, now_unix, send),
            Protocol::Ftfw(p) => {
                if let Some(obj) = obj {
                    p.on_local(obj)
                }
            }
        }
    }

    /// An object left the internal cache without being sent (FT-FW drops
    /// its reference).
    pub fn forget(&mut self, obj: ObjRef) {
        if let Protocol::Ftfw(p) = self {
            p.forget(obj);
        }
    }

    /// FT-FW: queues an object whose state changed without an event (a
    /// resync found it gone: it is sent as DEL); the others encode flows
    /// and are given them instead.
    pub fn local_ref(&mut self, obj: ObjRef) {
        if let Protocol::Ftfw(p) = self {
            p.on_local(obj);
        }
    }

    /// Sends the datagram being filled (NOTRACK and ALARM; FT-FW's go
    /// out with [`transmit`](Self::transmit)).
    pub fn flush(&mut self, send: &mut dyn FnMut(&[u8])) {
        match self {
            Protocol::Notrack(p) => p.flush(send),
            Protocol::Alarm(p) => p.flush(send),
            Protocol::Ftfw(_) => {}
        }
    }

    /// Something waits to be sent.
    pub fn pending(&self) -> bool {
        match self {
            Protocol::Notrack(p) => p.pending(),
            Protocol::Alarm(p) => p.pending(),
            Protocol::Ftfw(p) => p.has_pending(),
        }
    }

    /// When the protocol's own timer (FT-FW's ALIVE/ACK) is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.ftfw().map(Ftfw::next_deadline)
    }

    /// The protocol's timer: FT-FW queues an ALIVE or ACK when due.
    pub fn on_timer(&mut self, now: Instant) {
        if let Protocol::Ftfw(p) = self {
            p.on_timer(now);
        }
    }

    /// The 1-second tick (ALIVE for NOTRACK; ALARM sends what waits).
    pub fn on_tick(&mut self, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        match self {
            Protocol::Notrack(p) => p.on_alive_tick(now_unix, send),
            Protocol::Alarm(p) => p.flush(send),
            Protocol::Ftfw(_) => {}
        }
    }

    /// Datagrams could not be sent: FT-FW sends its unacknowledged objects
    /// again (NOTRACK and ALARM lose them, as 1.4.7).
    pub fn resend_unacked(&mut self) {
        if let Protocol::Ftfw(p) = self {
            p.resend_unacked();
        }
    }

    /// `-n`: asks the peer for a bulk update (ALARM has none).
    pub fn request_resync(&mut self, now_unix: u32, send: &mut dyn FnMut(&[u8])) {
        match self {
            Protocol::Notrack(p) => p.request_resync(now_unix, send),
            Protocol::Ftfw(p) => p.request_resync(),
            Protocol::Alarm(_) => {}
        }
    }

    /// Sends what waits, at most about `budget` datagrams of queued FT-FW
    /// messages (its objects read from `cache` and `exps`), every message
    /// of NOTRACK and ALARM; FT-FW's released DEAD objects then leave the
    /// caches. `released` is a reused buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn transmit(
        &mut self,
        now: Instant,
        now_unix: u32,
        budget: usize,
        cache: &mut Cache,
        mut exps: Option<&mut ExpCache>,
        withdrawn: &mut HashSet<ObjRef, ahash::RandomState>,
        released: &mut Vec<ObjRef>,
        send: &mut dyn FnMut(&[u8]),
    ) {
        let p = match self {
            Protocol::Notrack(p) => return p.flush(send),
            Protocol::Alarm(p) => return p.flush(send),
            Protocol::Ftfw(p) => p,
        };
        if p.has_pending() {
            let view: &Cache = cache;
            let exp_view = exps.as_deref();
            let gone: &HashSet<ObjRef, ahash::RandomState> = withdrawn;
            let op_of = |state| match state {
                ObjState::New => Op::New,
                ObjState::Alive => Op::Update,
                ObjState::Dead => Op::Delete,
            };
            p.transmit_some(
                now,
                now_unix,
                budget,
                &mut |obj, cur| {
                    if obj.is_exp() {
                        let e = exp_view?.get(obj)?;
                        cur.exp = e.exp;
                        if e.state == ObjState::Dead && gone.contains(&obj) {
                            return Some(Object::Exp(Op::Withdraw));
                        }
                        return Some(Object::Exp(op_of(e.state)));
                    }
                    let state = view.by_ref_into(obj, &mut cur.flow)?;
                    if state == ObjState::Dead && gone.contains(&obj) {
                        return Some(Object::Ct(Op::Withdraw));
                    }
                    Some(Object::Ct(op_of(state)))
                },
                send,
            );
        }
        released.clear();
        released.extend(p.drain_released());
        for &obj in released.iter() {
            withdrawn.remove(&obj);
            if obj.is_exp() {
                if let Some(x) = exps.as_deref_mut() {
                    if x.get(obj).is_some_and(|e| e.state == ObjState::Dead) {
                        x.remove_ref(obj);
                    }
                }
            } else if cache.state_of(obj) == Some(ObjState::Dead) {
                cache.remove_ref(obj);
            }
        }
    }

    /// A received datagram: its changes and requests go to `apply`.
    pub fn on_datagram(&mut self, data: &[u8], apply: &mut dyn FnMut(Apply)) -> usize {
        self.on_datagram_from(None, data, apply)
    }

    /// [`on_datagram`](Self::on_datagram) from the sender at `from` (FT-FW
    /// tracks each node of a multicast group on its own; `None`: the
    /// link's only peer).
    pub fn on_datagram_from(
        &mut self,
        from: Option<(std::net::IpAddr, Instant)>,
        data: &[u8],
        apply: &mut dyn FnMut(Apply),
    ) -> usize {
        match self {
            Protocol::Notrack(p) => p.on_datagram(data, apply),
            Protocol::Alarm(p) => p.on_datagram(data, apply),
            Protocol::Ftfw(p) => {
                let (addr, now) = match from {
                    Some((a, t)) => (Some(a), t),
                    None => (None, p.now()),
                };
                p.on_datagram_from(now, addr, data, &mut |a| {
                    apply(match a {
                        ftfw::Apply::Ct(op, f) => Apply::Ct(op, f),
                        ftfw::Apply::Exp(op, x) => Apply::Exp(op, x),
                        ftfw::Apply::Resync => Apply::Resync,
                        ftfw::Apply::NeedBulk { .. } => Apply::NeedBulk,
                    })
                })
            }
        }
    }

    /// The receive side's error counters and sequence statistics (lost,
    /// before) for `-s network`.
    pub fn recv_counters(&self) -> (&RecvCounters, u64, u64) {
        match self {
            Protocol::Notrack(p) => (&p.recv_errors, p.rx.lost, p.rx.before),
            Protocol::Alarm(p) => (&p.recv_errors, 0, 0),
            Protocol::Ftfw(p) => {
                let rx = p.rx();
                (&p.recv_errors, rx.lost, rx.before)
            }
        }
    }
}
