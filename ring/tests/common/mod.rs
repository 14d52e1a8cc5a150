//! Shared test helpers: both backends (skipping io_uring with a `SKIP:`
//! line where it is unusable), polling until a condition holds, scratch
//! network namespaces, and a minimal ctnetlink CT_NEW encoder (after
//! ../shared/lab/tools/ctfill.py; no other crate of ours is used).

#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ct_ring::{BackendChoice, Ctx, Event, Reactor};

/// Both backends, in order; io_uring is left out (with a SKIP line) when
/// it cannot run here.
pub fn reactors(test: &str) -> Vec<Reactor> {
    let mut v = Vec::new();
    for c in [BackendChoice::Syscall, BackendChoice::Uring] {
        match Reactor::with_backend(c) {
            Ok(r) => v.push(r),
            Err(e) if c == BackendChoice::Uring => {
                println!("SKIP: {test} on io_uring: {e}");
            }
            Err(e) => panic!("syscall backend: {e}"),
        }
    }
    v
}

/// Polls until `done(state)` or `limit` passes; returns whether it held.
/// The handler gets the state too, so both can look at the same counters.
pub fn poll_until<S, F, D>(
    r: &mut Reactor,
    limit: Duration,
    state: &mut S,
    mut handler: F,
    done: D,
) -> bool
where
    F: FnMut(&mut S, &mut Ctx<'_>, Event<'_>),
    D: Fn(&S) -> bool,
{
    let end = Instant::now() + limit;
    loop {
        if done(state) {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        r.poll(Some((end - now).min(Duration::from_millis(50))), |c, e| {
            handler(state, c, e)
        })
        .expect("poll");
    }
}

static NS_SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace created for one test and deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `ctring-<pid>-<n>`; `None` (after a `SKIP:` line) when not
    /// root or when `ip netns add` fails.
    pub fn new(test: &str) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIP: {test}: needs root to create a network namespace");
            return None;
        }
        let name = format!(
            "ctring-{}-{}",
            std::process::id(),
            NS_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        match std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
        {
            Ok(s) if s.success() => Some(Netns { name }),
            other => {
                println!("SKIP: {test}: ip netns add {name} failed: {other:?}");
                None
            }
        }
    }

    /// Runs `f` on a fresh thread that has entered the namespace (sockets
    /// it creates belong to the namespace for good).
    pub fn run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).expect("open netns");
                // SAFETY: setns on a valid namespace fd affects only this thread.
                let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// `(NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW`
pub const CT_NEW: u16 = 0x100;
pub const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

fn nla(b: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    b.extend_from_slice(&(len as u16).to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(payload);
    b.resize(b.len() + (4 - len % 4) % 4, 0);
}

fn nest(b: &mut Vec<u8>, ty: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let start = b.len();
    b.extend_from_slice(&[0; 4]);
    f(b);
    let len = (b.len() - start) as u16;
    b[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    b[start + 2..start + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
}

fn tuple(b: &mut Vec<u8>, ty: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) {
    nest(b, ty, |b| {
        nest(b, 1, |b| {
            nla(b, 1, &src);
            nla(b, 2, &dst);
        });
        nest(b, 2, |b| {
            nla(b, 1, &[17]);
            nla(b, 2, &sport.to_be_bytes());
            nla(b, 3, &dport.to_be_bytes());
        });
    });
}

/// Appends an IPCTNL_MSG_CT_NEW for the UDP flow `src:sport -> dst:dport`
/// (timeout 30 s, status IPS_CONFIRMED: without it 6.18 answers EBUSY).
pub fn ct_new(
    b: &mut Vec<u8>,
    seq: u32,
    ack: bool,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
) {
    let start = b.len();
    let mut flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
    if ack {
        flags |= NLM_F_ACK;
    }
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&CT_NEW.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
    tuple(b, 1, src, dst, sport, dport);
    tuple(b, 2, dst, src, dport, sport);
    nla(b, 7, &30u32.to_be_bytes());
    nla(b, 3, &8u32.to_be_bytes());
    let len = (b.len() - start) as u32;
    b[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Walks the netlink messages of one datagram: (type, payload).
pub fn nlmsgs(mut d: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if d.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(d[0..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(d[4..6].try_into().unwrap());
        if len < 16 || len > d.len() {
            return None;
        }
        let payload = &d[16..len];
        d = &d[((len + 3) & !3).min(d.len())..];
        Some((ty, payload))
    })
}

/// The error code of an NLMSG_ERROR payload (0 for an ACK).
pub fn nl_error(payload: &[u8]) -> i32 {
    i32::from_ne_bytes(payload[0..4].try_into().unwrap())
}
