//! The floor of event ingestion: receive N conntrack events through the
//! reactor (the daemon's socket options and wake-up moderation) and only
//! count them — no parsing, no cache — then print the CPU this process
//! spent. Compare with the daemon's CPU for the same burst to see what is
//! the kernel's delivery and what is ours.
//!
//!     ip netns exec NS cargo run --release --example evfloor -- N [off]

use std::time::Duration;

use ct_ring::netlink::{NlSocket, NETLINK_NETFILTER};
use ct_ring::reactor::{Config, Reactor};
use ct_ring::{Event, SockOpts};

fn cpu() -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    (t(u.ru_utime), t(u.ru_stime))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let moderation = match args.next().as_deref() {
        Some("off") => None,
        _ => Some((32, Duration::from_micros(200))),
    };
    let mut r = Reactor::new(Config {
        moderation,
        ..Config::default()
    })
    .expect("reactor");
    let s = NlSocket::open(NETLINK_NETFILTER, 7).expect("netlink");
    s.set_rcvbuf(8 << 20).expect("rcvbuf");
    r.register(s, SockOpts::netlink()).expect("register");
    eprintln!("evfloor: {} waiting for {n} events", r.describe());
    let mut seen = 0u64;
    let mut t0 = None;
    while seen < n {
        r.poll(Some(Duration::from_secs(1)), |_, ev| {
            if let Event::Recv { .. } = ev {
                seen += 1;
            }
        })
        .expect("poll");
        if seen > 0 && t0.is_none() {
            t0 = Some(cpu());
        }
    }
    let (u0, s0) = t0.unwrap_or_default();
    let (u1, s1) = cpu();
    println!(
        "{{\"events\":{seen},\"user_s\":{:.3},\"sys_s\":{:.3},\"us_per_event\":{:.3}}}",
        u1 - u0,
        s1 - s0,
        1e6 * (u1 - u0 + s1 - s0) / seen as f64
    );
}
