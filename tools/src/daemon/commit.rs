//! Committing the external cache into the kernel (`conntrackd -c`): the
//! replicator says what to create (`ct_transport::replicator::commit`:
//! 1.4.7's objects, masters before related entries); here committers send
//! them side by side, each its netlink socket and slice of the cache,
//! hundreds of requests per `sendmsg` with one ack per batch, one of them
//! in the kernel at a time ([`super::kernel::write_turn`]) while the
//! others build their next batch; EEXIST is answered by deleting the
//! entry and creating it once more.

use ct_core::config::SyncSection;
use ct_core::flow::{Flow, Tuple};
use ct_core::netlink::msg::*;
use ct_core::netlink::request;
use ct_core::netlink::writer::Writer;
use ct_core::table::Cache;
use ct_ring::netlink::{NlSocket, RecvError, NETLINK_NETFILTER};
use ct_transport::replicator::{commit_objects, recreated_key};

/// Requests per batch.
const BATCH: usize = 256;

/// Sends a batch of requests, one writer in the kernel at a time
/// ([`super::kernel::write_turn`]).
fn send_gated(sock: &NlSocket, buf: &[u8]) -> std::io::Result<usize> {
    let _turn = super::kernel::write_turn();
    sock.send(buf)
}

/// Outcome of a commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    pub ok: u64,
    pub failed: u64,
    /// Portids of the netlink handles that created the entries (their
    /// events carry them); 0 = unused.
    pub portids: [u32; MAX_PORTIDS],
    /// The entries deleted and created again (EEXIST), by original tuple
    /// and zone: their DESTROY events are the commit's own doing.
    pub recreated: Vec<(Tuple, Option<u16>)>,
}

/// Sends one batch and collects the failures as (index, errno). Only the
/// last request asks for an ACK: the kernel processes a batch in order
/// within the `sendmsg`, reports failures on its own, and the last ACK
/// says the batch is done (one ACK skb per batch instead of per entry).
fn send_batch(
    sock: &NlSocket,
    flows: &[Flow],
    seq0: u32,
    buf: &mut Vec<u8>,
    rx: &mut [u8],
    errs: &mut Vec<(usize, i32)>,
) -> std::io::Result<()> {
    errs.clear();
    if flows.is_empty() {
        return Ok(());
    }
    buf.clear();
    let mut w = Writer::new(buf);
    let last = flows.len() - 1;
    for (i, f) in flows.iter().enumerate() {
        let mut flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
        if i == last {
            flags |= NLM_F_ACK;
        }
        request::ct_new(&mut w, seq0.wrapping_add(i as u32), flags, f.l3_family(), f);
    }
    send_gated(sock, buf)?;
    let last_seq = seq0.wrapping_add(last as u32);
    loop {
        let n = match sock.recv(rx, false) {
            Ok(n) => n,
            Err(RecvError::Interrupted) => continue,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        let mut done = false;
        for m in Messages::new(&rx[..n]).flatten() {
            if m.ty == NLMSG_ERROR {
                let e = m.error_code().unwrap_or(libc::EIO);
                if e != 0 {
                    errs.push((m.seq.wrapping_sub(seq0) as usize, e));
                }
                done |= m.seq == last_seq;
            }
        }
        if done {
            return Ok(());
        }
    }
}

/// Committers for one of `lanes` lanes committing at once (each its own
/// socket and slice of the cache): the kernel's create work runs in the
/// sender's system call, so it spreads over the cores, shared out
/// between the lanes, at least one committer each.
pub fn workers(lanes: u32) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores / lanes.max(1) as usize).clamp(1, MAX_PORTIDS)
}

/// Most committers (and port ids in a report).
pub const MAX_PORTIDS: usize = 4;

/// Commits every live entry of `cache`; `now` is the daemon clock used
/// for the cache's update times. Masters go first (every worker finishes
/// them before any related entry is sent).
/// `n` committers (each its netlink socket and thread) share the work.
pub fn commit(
    cache: &Cache,
    sync: &SyncSection,
    now: u32,
    n: usize,
) -> std::io::Result<CommitReport> {
    let n = n.clamp(1, MAX_PORTIDS);
    let mut committers = Vec::with_capacity(n);
    for _ in 0..n {
        committers.push(Committer::open()?);
    }
    for related in [false, true] {
        std::thread::scope(|s| {
            for (k, c) in committers.iter_mut().enumerate() {
                s.spawn(move || c.run(cache, sync, now, related, k, n));
            }
        });
    }
    let mut report = CommitReport::default();
    for (k, c) in committers.into_iter().enumerate() {
        if let Some(e) = c.error {
            return Err(e);
        }
        report.ok += c.report.ok;
        report.failed += c.report.failed;
        report.portids[k] = c.sock.portid();
        report.recreated.extend(c.report.recreated);
    }
    Ok(report)
}

/// The commit handle with its reused buffers.
struct Committer {
    sock: NlSocket,
    buf: Vec<u8>,
    rx: Vec<u8>,
    seq: u32,
    report: CommitReport,
    chunk: Vec<Flow>,
    errs: Vec<(usize, i32)>,
    /// The first socket error; nothing more is sent after it.
    error: Option<std::io::Error>,
}

impl Committer {
    fn open() -> std::io::Result<Committer> {
        let sock = NlSocket::open(NETLINK_NETFILTER, 0)?;
        let _ = sock.set_rcvbuf(8 << 20);
        Ok(Committer {
            sock,
            buf: Vec::with_capacity(BATCH * 200),
            rx: vec![0u8; 1 << 16],
            seq: 1,
            report: CommitReport::default(),
            chunk: Vec::with_capacity(BATCH),
            errs: Vec::new(),
            error: None,
        })
    }

    /// Commits the masters (or, with `related`, the entries with a
    /// master) of slice `k` of `n` of the cache, streamed in batches.
    fn run(
        &mut self,
        cache: &Cache,
        sync: &SyncSection,
        now: u32,
        related: bool,
        k: usize,
        n: usize,
    ) {
        commit_objects(cache, sync, now, Some(related), (k, n), &mut |f| {
            self.push(f)
        });
        self.flush();
    }

    fn push(&mut self, f: Flow) {
        self.chunk.push(f);
        if self.chunk.len() >= BATCH {
            self.flush();
        }
    }

    /// Creates the pending batch; EEXIST → delete and create once more.
    fn flush(&mut self) {
        if self.error.is_some() || self.chunk.is_empty() {
            self.chunk.clear();
            return;
        }
        let chunk = std::mem::take(&mut self.chunk);
        if let Err(e) = self.create(&chunk) {
            self.error = Some(e);
        }
        self.chunk = chunk;
        self.chunk.clear();
    }

    fn create(&mut self, chunk: &[Flow]) -> std::io::Result<()> {
        let mut errs = std::mem::take(&mut self.errs);
        send_batch(
            &self.sock,
            chunk,
            self.seq,
            &mut self.buf,
            &mut self.rx,
            &mut errs,
        )?;
        self.seq = self.seq.wrapping_add(chunk.len() as u32);
        self.report.ok += (chunk.len() - errs.len()) as u64;
        let mut again = Vec::new();
        for &(i, e) in &errs {
            let Some(f) = chunk.get(i) else { continue };
            if e == libc::EEXIST {
                let t = f.orig.unwrap_or_default();
                self.buf.clear();
                request::ct_delete_tuple(
                    &mut Writer::new(&mut self.buf),
                    self.seq,
                    NLM_F_REQUEST | NLM_F_ACK,
                    f.l3_family(),
                    &t,
                    f.zone,
                );
                if send_gated(&self.sock, &self.buf).is_ok() {
                    let _ = self.sock.recv(&mut self.rx, false);
                }
                self.seq = self.seq.wrapping_add(1);
                send_batch(
                    &self.sock,
                    std::slice::from_ref(f),
                    self.seq,
                    &mut self.buf,
                    &mut self.rx,
                    &mut again,
                )?;
                self.seq = self.seq.wrapping_add(1);
                if again.is_empty() {
                    self.report.ok += 1;
                    self.report.recreated.push(recreated_key(t, f.zone));
                    continue;
                }
            }
            self.report.failed += 1;
        }
        self.errs = errs;
        Ok(())
    }
}
