//! Commits without event building: ctnetlink creates entries one at a
//! time under the nfnetlink subsystem mutex (`NFNL_CB_MUTEX`), so
//! committers in parallel would queue on it (ours take turns at it),
//! and building the NEW event of each created entry for the listeners
//! was 40 % of the time it is held (`perf record -a` of a 100k commit).
//! The kernel builds no event for a group no socket listens to (in any
//! network namespace: it keeps one map of listeners per protocol, so on
//! a lab's shared kernel another namespace's daemon keeps them built;
//! on a firewall of its own after a fail-over, nobody does), and the
//! daemon's own commit's NEW events would only have refreshed its
//! internal cache with what it just wrote. So a lane leaves
//! NFNLGRP_CONNTRACK_NEW for the time of its commit and joins it again
//! after; the NEW events of other changes in that window are lost to it,
//! so its internal cache is resynced from the kernel (as after an
//! overrun) [`RESYNC_AFTER`] later, unless a flush (`-f`) or a resync
//! (`-R`) comes first: primary-backup.sh sends both at once after `-c`.
//! What the commit wrote goes into the internal cache at once, as its
//! events would have put it (after the client has its answer), so `-i`
//! right after `-c` shows it, and a DESTROY event of a committed entry
//! within that second finds it.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use ct_ring::reactor::{Reactor, TimerId};

/// How long after a quiet commit the internal cache is resynced when no
/// `-f` or `-R` came in between.
pub const RESYNC_AFTER: Duration = Duration::from_secs(1);

/// NFNLGRP_CONNTRACK_NEW.
const GROUP_NEW: u32 = 1;

/// A lane's quiet commits and the resync they owe.
#[derive(Debug, Default)]
pub struct QuietCommit {
    /// The event socket (a duplicate of the reactor's descriptor); None
    /// where commits stay as they are (no event socket, no internal
    /// cache).
    fd: Option<OwnedFd>,
    /// The resync to schedule (set by a commit, armed by the loop).
    arm: Option<Instant>,
    /// A flush or resync made the owed resync unnecessary.
    cancel: bool,
    /// What was committed is still to be put into the internal cache
    /// (after the client has its answer).
    mirror: bool,
    /// A resync is owed and has not run yet.
    owed: bool,
    timer: Option<TimerId>,
}

impl QuietCommit {
    /// For the lane whose event socket is `fd`.
    pub fn new(fd: OwnedFd) -> QuietCommit {
        QuietCommit {
            fd: Some(fd),
            ..QuietCommit::default()
        }
    }

    /// Leaves the NEW group before a commit; whether it did (then
    /// [`end`](QuietCommit::end) must follow).
    pub fn begin(&mut self) -> bool {
        self.fd
            .as_ref()
            .is_some_and(|fd| ct_ring::sockopt::netlink_group(fd.as_fd(), GROUP_NEW, false).is_ok())
    }

    /// Joins the NEW group again after a commit that `begin` quieted, and
    /// owes a resync; `committed`: the commit ran (its entries are to be
    /// mirrored; after a socket error nothing is). An error (the socket
    /// cannot join) is returned for the log.
    pub fn end(&mut self, began: bool, committed: bool) -> std::io::Result<()> {
        if !began {
            return Ok(());
        }
        self.arm = Some(Instant::now() + RESYNC_AFTER);
        self.cancel = false;
        self.owed = true;
        self.mirror = committed;
        match &self.fd {
            Some(fd) => ct_ring::sockopt::netlink_group(fd.as_fd(), GROUP_NEW, true),
            None => Ok(()),
        }
    }

    /// A flush of the internal cache or a resync with the kernel: the
    /// owed resync is not needed any more. Returns whether one was owed
    /// (a resync that replaces it must then also sweep: the entries the
    /// kernel refused, or a commit's deletion of another entry, are
    /// still cached).
    pub fn settled(&mut self) -> bool {
        self.arm = None;
        self.cancel = true;
        std::mem::take(&mut self.owed)
    }

    /// The owed resync ran.
    pub fn fired(&mut self) {
        self.owed = false;
    }

    /// Whether what a quiet commit wrote is still to be put into the
    /// internal cache (once: its NEW events would have, at once; the
    /// owed resync then only reconciles).
    pub fn take_mirror(&mut self) -> bool {
        std::mem::take(&mut self.mirror)
    }

    /// Applies what requests asked to the loop's timer.
    pub fn apply(&mut self, r: &mut Reactor) {
        if let Some(at) = self.arm.take() {
            super::engine::rearm(r, &mut self.timer, at);
        } else if std::mem::take(&mut self.cancel) {
            if let Some(t) = self.timer.take() {
                r.timer_remove(t);
            }
        }
    }

    /// The owed resync's timer.
    pub fn timer(&self) -> Option<TimerId> {
        self.timer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_quiet_commit_that_ran_is_mirrored_once() {
        let mut q = QuietCommit::default();
        // not quieted (no event socket): its NEW events fill the cache
        assert!(!q.begin());
        q.end(false, true).unwrap();
        assert!(!q.take_mirror());
        // quieted, and the commit ran: mirrored once
        q.end(true, true).unwrap();
        assert!(q.take_mirror());
        assert!(!q.take_mirror());
        // quieted, but the commit failed on its socket: nothing to mirror
        q.end(true, false).unwrap();
        assert!(!q.take_mirror());
    }
}
