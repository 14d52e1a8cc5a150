//! `DisableExternalCache on` ("external inject"): states received from the
//! peer go straight into the kernel through a dedicated netlink handle
//! instead of the external cache, as 1.4.7's `external_inject` does
//! (upstream-facts §5): NEW → create (EEXIST → destroy and create once),
//! UPD → create, on EEXIST update in place (other errors → destroy and
//! create), DEL → destroy (ENOENT ignored). The entry is prepared like a
//! committed one (timeout from the message, BE_LIBERAL unless
//! TCPWindowTracking, reply tuple regenerated). The handle's portid lets
//! the engine ignore the events of these changes.

use ct_core::config::SyncSection;
use ct_core::ctl::stats::InjectStats;
use ct_core::flow::Flow;
use ct_core::netlink::msg::{NLM_F_CREATE, NLM_F_EXCL};
use ct_transport::wire::Op;

use crate::nl::Session;
use ct_transport::replicator::commit_object;

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

/// The inject handle and its counters (`external inject:` of `-s`).
pub struct Inject {
    sess: Session,
    pub stats: InjectStats,
}

impl Inject {
    pub fn open() -> std::io::Result<Inject> {
        Ok(Inject {
            sess: Session::open()?,
            stats: InjectStats::default(),
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

    /// Applies one received state; a failure is returned as the warning
    /// 1.4.7 logs.
    pub fn apply(&mut self, op: Op, f: &Flow, sync: &SyncSection) -> Result<(), String> {
        let errno = |e: i32| std::io::Error::from_raw_os_error(e).to_string();
        let create = NLM_F_CREATE | NLM_F_EXCL;
        match op {
            Op::New => {
                let o = commit_object(f, sync, 0);
                let r = match self.send(&o, create) {
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
                let o = commit_object(f, sync, 0);
                let r = match self.send(&o, create) {
                    Err(EEXIST) => {
                        // In place: no NAT to re-apply, no CREATE.
                        let mut u = o;
                        u.nat_src = None;
                        u.nat_dst = None;
                        u.helper = None;
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
                let r = match self.destroy(f) {
                    Err(ENOENT) => Ok(()),
                    r => r.map_err(|e| format!("could not destroy ct entry: {}", errno(e))),
                };
                count(&mut self.stats.destroyed, &mut self.stats.destroy_failed, r)
            }
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
