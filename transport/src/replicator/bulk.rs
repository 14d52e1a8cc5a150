//! A bulk update (the peer's RESYNC, `-B`, `-n` on the peer, an overrun
//! resync): every live object of the internal caches goes to the
//! protocol, after the queued flows (entries a resync swept, sent as
//! DEL, or handed over to another lane, as withdrawals; with
//! DisableInternalCache, the kernel's dump, sent as NEW), then
//! the IPv4 and IPv6 conntracks, then the expectations (after their
//! masters). One cursor for every mode: NOTRACK and ALARM encode at once,
//! so their update goes in slices of as many datagrams as the link takes
//! now, events handled between slices; FT-FW only queues references, and
//! its transmit follows the link.

use std::collections::HashSet;

use ct_core::flow::{Flow, Tuple};
use ct_core::table::record::Addr;
use ct_core::table::{Cache, Entry, ExpCache, FlowCache, ObjRef, ObjState, Table};

use super::protocol::Protocol;
use crate::wire::Op;

/// DisableInternalCache: the flows whose events went out while a bulk
/// update (a kernel dump sent in slices) goes on: their dumped state is
/// older and must not follow.
pub type Touched = HashSet<(Tuple, Option<u16>), ahash::RandomState>;

/// Where a bulk update stands.
pub struct Bulk {
    queued: Vec<(Op, Flow)>,
    stage: u8,
    pos: u32,
    /// The caches follow the queued flows (false: only the queued flows,
    /// what a resync swept or handed over when no update is asked for).
    full: bool,
}

/// What a slice reads and drives.
pub struct Slice<'a> {
    pub proto: &'a mut Protocol,
    pub cache: &'a Cache,
    pub exps: Option<&'a ExpCache>,
    pub touched: &'a Touched,
    pub unix: u32,
    /// Datagrams this slice may send (protocols that encode at once).
    pub budget: usize,
}

const QUEUED: u8 = 0;
const V4: u8 = 1;
const V6: u8 = 2;
const EXP: u8 = 3;
const DONE: u8 = 4;

fn op_of(state: ObjState) -> Option<Op> {
    match state {
        ObjState::New => Some(Op::New),
        ObjState::Alive => Some(Op::Update),
        ObjState::Dead => None,
    }
}

impl Bulk {
    /// An update that sends `queued` first, then (`full`) the caches; an
    /// unfinished one it replaces (`old`) keeps its unsent DELs and
    /// withdrawals (they are not in the caches any more), and if it was
    /// full this one is (its pass over the caches starts again).
    pub fn new(mut queued: Vec<(Op, Flow)>, old: Option<Bulk>, full: bool) -> Bulk {
        let mut full = full;
        if let Some(old) = old {
            full |= old.full;
            if old.stage == QUEUED {
                queued.extend(
                    old.queued
                        .into_iter()
                        .skip(old.pos as usize)
                        .filter(|(op, _)| op.removes()),
                );
            }
        }
        Bulk {
            queued,
            stage: QUEUED,
            pos: 0,
            full,
        }
    }

    /// One slice; true when the update is complete (the protocol's
    /// datagram being filled is flushed after each slice).
    pub fn step(&mut self, s: Slice<'_>, send: &mut dyn FnMut(&[u8])) -> bool {
        let Slice {
            proto,
            cache,
            exps,
            touched,
            unix,
            budget,
        } = s;
        let slices = proto.encodes_at_once();
        let sent = std::cell::Cell::new(0usize);
        let mut counted = |d: &[u8]| {
            sent.set(sent.get() + 1);
            send(d)
        };
        let room = || !slices || sent.get() < budget.max(1);
        loop {
            let next = match self.stage {
                QUEUED => {
                    let mut i = self.pos as usize;
                    while i < self.queued.len() && room() {
                        let (op, f) = &self.queued[i];
                        let stale = *op == Op::New
                            && !touched.is_empty()
                            && touched.contains(&(f.orig.unwrap_or_default(), f.zone));
                        if !stale {
                            proto.local_ct(*op, None, f, unix, &mut counted);
                        }
                        i += 1;
                    }
                    (i < self.queued.len()).then_some(i as u32)
                }
                V4 => visit(
                    &cache.v4,
                    Table::V4,
                    self.pos,
                    proto,
                    unix,
                    &mut counted,
                    &room,
                ),
                V6 => visit(
                    &cache.v6,
                    Table::V6,
                    self.pos,
                    proto,
                    unix,
                    &mut counted,
                    &room,
                ),
                EXP => exps.and_then(|x| {
                    x.visit_from_at(self.pos, |r, e| {
                        if let Some(op) = op_of(e.state) {
                            proto.local_exp(op, Some(r), &e.exp, unix, &mut counted);
                        }
                        room()
                    })
                }),
                _ => {
                    proto.flush(&mut counted);
                    return true;
                }
            };
            match next {
                Some(p) => {
                    // out of room: the rest in the next slice
                    self.pos = p;
                    proto.flush(&mut counted);
                    return false;
                }
                None => {
                    self.stage = if self.full { self.stage + 1 } else { DONE };
                    self.pos = 0;
                    if self.stage == DONE {
                        proto.flush(&mut counted);
                        return true;
                    }
                }
            }
        }
    }
}

/// The objects of one family (`table`) from `from` on, while there is
/// room.
fn visit<A: Addr>(
    c: &FlowCache<A>,
    table: Table,
    from: u32,
    proto: &mut Protocol,
    unix: u32,
    send: &mut dyn FnMut(&[u8]),
    room: &dyn Fn() -> bool,
) -> Option<u32> {
    let mut f = Flow::default();
    c.visit_from_at(from, |i, e: &Entry<A>| {
        if let Some(op) = op_of(e.state) {
            e.rec.to_flow_into(&mut f);
            proto.local_ct(op, Some(ObjRef::new(table, i, e.serial)), &f, unix, send);
        }
        room()
    })
}
