//! `DisableExternalCache on` ("external inject"): states received from the
//! peer go straight into the kernel through a dedicated netlink handle
//! instead of the external cache, as 1.4.7's `external_inject` does
//! (upstream-facts §5): NEW → create (EEXIST → destroy and create once),
//! UPD → create, on EEXIST update in place (other errors → destroy and
//! create), DEL → destroy (ENOENT ignored). The entry is prepared like a
//! committed one (timeout from the message, BE_LIBERAL unless
//! TCPWindowTracking, reply tuple regenerated). The handle's portid lets
//! the engine ignore the events of these changes.
//!
//! The states of one datagram go out in one batch: every first attempt
//! in one `sendmsg`, the ACKs read together. Only a failed attempt takes
//! the slow path (1.4.7's fallbacks, one request at a time); the later
//! states of the same flow in that batch are then applied again in order,
//! so the kernel ends as if each state had been applied alone.

use ct_core::config::SyncSection;
use ct_core::ctl::stats::InjectStats;
use ct_core::flow::Flow;
use ct_core::netlink::msg::{NLM_F_CREATE, NLM_F_EXCL};
use ct_transport::wire::Op;

use ct_core::netlink::msg::{NLM_F_ACK, NLM_F_REQUEST};
use ct_core::netlink::request;
use ct_core::netlink::writer::Writer;

use crate::nl::Session;
use ct_transport::replicator::commit_object;

/// The most states of one batch (a datagram holds fewer).
const BATCH: usize = 128;

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

/// The inject handle and its counters (`external inject:` of `-s`).
pub struct Inject {
    sess: Session,
    pub stats: InjectStats,
    /// States whose first attempt is in `req`: (op, prepared flow, seq).
    batch: Vec<(Op, Flow, u32)>,
    req: Vec<u8>,
    /// The first attempts' results, by position in `batch`.
    results: Vec<i32>,
    /// Which states of `batch` were applied again after a failure.
    redone: Vec<bool>,
}

impl Inject {
    pub fn open() -> std::io::Result<Inject> {
        Ok(Inject {
            sess: Session::open()?,
            stats: InjectStats::default(),
            batch: Vec::with_capacity(BATCH),
            req: Vec::with_capacity(BATCH * 256),
            results: Vec::with_capacity(BATCH),
            redone: Vec::with_capacity(BATCH),
        })
    }

    /// The handle's netlink portid (events it causes carry it).
    pub fn portid(&self) -> u32 {
        self.sess.sock.portid()
    }

    fn send(&mut self, f: &Flow, flags: u16) -> Result<(), i32> {
        super::kernel::ct_new(&mut self.sess, f, flags)
    }

    fn destroy(&mut self, f: &Flow) -> Result<(), i32> {
        super::kernel::destroy(&mut self.sess, f)
    }

    /// The object a state is applied as: the committed form of a NEW or
    /// UPDATE, the flow itself for a DELETE.
    fn prepare(op: Op, f: &Flow, sync: &SyncSection) -> Flow {
        match op {
            Op::Delete => *f,
            _ => commit_object(f, sync, 0),
        }
    }

    /// Queues one received state; the batch goes out with [`flush`]
    /// (called after each datagram), or now when it is full.
    /// A withdrawal changes nothing in the kernel (the flow is alive at
    /// the sender; another channel carries it).
    pub fn queue(&mut self, op: Op, f: &Flow, sync: &SyncSection, warn: &mut dyn FnMut(String)) {
        if op == Op::Withdraw {
            return;
        }
        let o = Self::prepare(op, f, sync);
        let seq = self.sess.next_seq();
        let mut w = Writer::new(&mut self.req);
        match op {
            Op::Delete => {
                let t = o.orig.unwrap_or_default();
                request::ct_delete_tuple(
                    &mut w,
                    seq,
                    NLM_F_REQUEST | NLM_F_ACK,
                    o.l3_family(),
                    &t,
                    o.zone,
                )
            }
            _ => request::ct_new(
                &mut w,
                seq,
                NLM_F_CREATE | NLM_F_EXCL | NLM_F_REQUEST | NLM_F_ACK,
                o.l3_family(),
                &o,
            ),
        }
        self.batch.push((op, o, seq));
        if self.batch.len() >= BATCH {
            self.flush(warn);
        }
    }

    /// Sends the queued states and finishes each: counted, or through the
    /// slow path when its first attempt failed.
    pub fn flush(&mut self, warn: &mut dyn FnMut(String)) {
        if self.batch.is_empty() {
            return;
        }
        let first_seq = self.batch[0].2;
        let n = self.batch.len();
        self.results.clear();
        self.results.resize(n, 0);
        let results = &mut self.results;
        let sent = self.sess.run_acks(&self.req, n, |seq, e| {
            if let Some(r) = results.get_mut(seq.wrapping_sub(first_seq) as usize) {
                *r = e;
            }
        });
        self.req.clear();
        let batch = std::mem::take(&mut self.batch);
        if sent.is_err() {
            // nothing is known of the batch: each state alone
            for (op, o, _) in &batch {
                let r = self.first(*op, o);
                if let Err(m) = self.finish(*op, o, r) {
                    warn(m);
                }
            }
        } else {
            let mut redone = std::mem::take(&mut self.redone);
            redone.clear();
            redone.resize(n, false);
            for i in 0..n {
                if redone[i] {
                    continue;
                }
                let (op, o, _) = &batch[i];
                let r = match self.results[i] {
                    0 => Ok(()),
                    e => Err(e),
                };
                let failed = r.is_err();
                if let Err(m) = self.finish(*op, o, r) {
                    warn(m);
                }
                if failed {
                    // the slow path ran after the later states of the
                    // same flow: apply those again, in order
                    for j in i + 1..n {
                        let (op2, o2, _) = &batch[j];
                        if !redone[j] && o2.orig == o.orig && o2.zone == o.zone {
                            redone[j] = true;
                            let r2 = self.first(*op2, o2);
                            if let Err(m) = self.finish(*op2, o2, r2) {
                                warn(m);
                            }
                        }
                    }
                }
            }
            self.redone = redone;
        }
        self.batch = batch;
        self.batch.clear();
    }

    /// The first attempt: a DELETE, or a create (NLM_F_EXCL).
    fn first(&mut self, op: Op, o: &Flow) -> Result<(), i32> {
        match op {
            Op::Delete => self.destroy(o),
            _ => self.send(o, NLM_F_CREATE | NLM_F_EXCL),
        }
    }

    /// What follows the first attempt's result `r`, as 1.4.7 does it.
    fn finish(&mut self, op: Op, o: &Flow, r: Result<(), i32>) -> Result<(), String> {
        let errno = |e: i32| std::io::Error::from_raw_os_error(e).to_string();
        let create = NLM_F_CREATE | NLM_F_EXCL;
        let o = *o;
        match op {
            Op::New => {
                let r = match r {
                    Err(EEXIST) => {
                        let _ = self.destroy(&o);
                        self.send(&o, create).map_err(|e| {
                            format!(
                                "could not add new ct entry, even when deleting it first: {}",
                                errno(e)
                            )
                        })
                    }
                    r => r.map_err(|e| format!("could not add new ct entry: {}", errno(e))),
                };
                count(&mut self.stats.created, &mut self.stats.create_failed, r)
            }
            Op::Update => {
                let r = match r {
                    Err(EEXIST) => {
                        // In place: no NAT to re-apply, no CREATE; a
                        // related flow without its master tuple (the
                        // kernel changes no master: EOPNOTSUPP) and with
                        // the EXPECTED bit the kernel gave it (a change
                        // of it is EBUSY), as 1.4.7's nl_update_conntrack
                        let mut u = o;
                        u.nat_src = None;
                        u.nat_dst = None;
                        u.helper = None;
                        if u.master.take().is_some() {
                            u.status = u.status.map(|s| s | ct_core::proto::status::EXPECTED);
                        }
                        match self.send(&u, 0) {
                            Err(e) if e != ENOENT => {
                                let _ = self.destroy(&o);
                                self.send(&o, create).map_err(|e| {
                                    format!(
                                        "could not update ct entry, even when deleting it first: {}",
                                        errno(e)
                                    )
                                })
                            }
                            r => r.map_err(|e| format!("could not update ct entry: {}", errno(e))),
                        }
                    }
                    r => r.map_err(|e| {
                        format!(
                            "could not update ct entry, even if creating it instead: {}",
                            errno(e)
                        )
                    }),
                };
                count(&mut self.stats.updated, &mut self.stats.update_failed, r)
            }
            Op::Delete => {
                let r = match r {
                    Err(ENOENT) => Ok(()),
                    r => r.map_err(|e| format!("could not destroy ct entry: {}", errno(e))),
                };
                count(&mut self.stats.destroyed, &mut self.stats.destroy_failed, r)
            }
            // (never queued)
            Op::Withdraw => Ok(()),
        }
    }
}

fn count(ok: &mut u64, failed: &mut u64, r: Result<(), String>) -> Result<(), String> {
    match &r {
        Ok(()) => *ok += 1,
        Err(_) => *failed += 1,
    }
    r
}
