//! Informal loopback throughput of both backends (ignored by default;
//! numbers go to the module doc of `ct_ring::reactor`). Run:
//! `cargo test -p ct-ring --release --test throughput -- --ignored --nocapture`
//!
//! * recv: a thread blasts 64-byte UDP datagrams with `sendmmsg` (64 per
//!   call); the reactor counts what it receives (8 MiB receive buffer).
//! * send: the reactor queues 64-byte datagrams (256 slots, refilled after
//!   each poll) to a socket that a thread drains with `recvmmsg`.

mod common;

use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::reactors;
use ct_ring::{Event, SendError, SockOpts};

const N: u64 = 2_000_000;

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: ru is a live rusage the kernel fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn per(cpu: Duration, n: u64) -> String {
    format!(
        "reactor thread CPU {:.3} s = {:.2} us each",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / n.max(1) as f64
    )
}

fn blast(fd: i32, to: std::net::SocketAddr, n: u64) {
    let std::net::SocketAddr::V4(v4) = to else {
        unreachable!()
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let payload = [0x5au8; 64];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: 64,
    };
    // SAFETY: plain C structs; all-zero is valid.
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; 64];
    for h in &mut hdrs {
        h.msg_hdr.msg_iov = &mut iov;
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_name = &sin as *const _ as *mut libc::c_void;
        h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
    }
    let mut sent = 0;
    while sent < n {
        // SAFETY: the headers point at live locals for the call.
        let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), 64, 0) };
        if r > 0 {
            sent += r as u64;
        }
    }
}

#[test]
#[ignore]
fn udp_loopback_throughput() {
    for mut r in reactors("udp_loopback_throughput") {
        let b = r.backend();
        // recv
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        ct_ring::sockopt::set_rcvbuf(rx.as_fd(), 8 << 20).unwrap();
        let rx_addr = rx.local_addr().unwrap();
        let id = r.register(rx, SockOpts::udp()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let t0 = Instant::now();
        let c0 = thread_cpu();
        let h = std::thread::spawn(move || {
            blast(tx.as_raw_fd(), rx_addr, N);
            d2.store(true, Ordering::Release);
        });
        let mut got = 0u64;
        let mut last = Instant::now();
        loop {
            let n = r
                .poll(Some(Duration::from_millis(20)), |_, e| {
                    if let Event::Recv { data, .. } = e {
                        got += (data.len() == 64) as u64;
                    }
                })
                .unwrap();
            if n > 0 {
                last = Instant::now();
            }
            if done.load(Ordering::Acquire) && last.elapsed() > Duration::from_millis(100) {
                break;
            }
        }
        let cpu = thread_cpu() - c0;
        h.join().unwrap();
        let secs = (last - t0).as_secs_f64();
        println!(
            "{b}: recv {got} of {N} in {secs:.3} s = {:.0} datagrams/s ({:.1} % lost); {}",
            got as f64 / secs,
            100.0 * (N - got) as f64 / N as f64,
            per(cpu, got)
        );
        r.close(id).unwrap();

        // send
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        ct_ring::sockopt::set_rcvbuf(sink.as_fd(), 8 << 20).unwrap();
        let sink_addr = sink.local_addr().unwrap();
        let counted = Arc::new(AtomicU64::new(0));
        let c2 = counted.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let h = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 2048];
            sink.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            while !s2.load(Ordering::Acquire) {
                if let Ok(n) = sink.recv(&mut buf[..2048]) {
                    let _ = n;
                    c2.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let out = UdpSocket::bind("127.0.0.1:0").unwrap();
        let oid = r.register(out, SockOpts::udp().send_only()).unwrap();
        let t0 = Instant::now();
        let c0 = thread_cpu();
        let mut queued = 0u64;
        while queued < N {
            loop {
                match r.send_with(oid, Some(&sink_addr), |buf| {
                    buf[..64].fill(0xa5);
                    64
                }) {
                    Ok(_) => queued += 1,
                    Err(SendError::QueueFull) => break,
                    Err(e) => panic!("{e}"),
                }
                if queued == N {
                    break;
                }
            }
            r.poll(Some(Duration::ZERO), |_, _| {}).unwrap();
        }
        r.flush().unwrap();
        r.poll(Some(Duration::from_millis(10)), |_, _| {}).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let cpu = thread_cpu() - c0;
        let st = r.stats(oid).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Release);
        h.join().unwrap();
        println!(
            "{b}: send {} ok + {} failed of {N} in {secs:.3} s = {:.0} datagrams/s handed to the kernel (sink thread read {}); {}",
            st.tx_datagrams,
            st.tx_errors,
            (st.tx_datagrams + st.tx_errors) as f64 / secs,
            counted.load(Ordering::Relaxed),
            per(cpu, st.tx_datagrams)
        );
    }
}

/// Conntrack NEW events, flat out: a thread creates 100k UDP entries in a
/// scratch namespace (200 CT_NEW per send); the reactor counts events on
/// a 32 MiB socket.
#[test]
#[ignore]
fn netlink_event_throughput() {
    use common::{ct_new, nlmsgs, Netns};
    use ct_ring::netlink::{NlSocket, NETLINK_NETFILTER};
    const M: u32 = 100_000;
    for mut r in reactors("netlink_event_throughput") {
        let b = r.backend();
        let Some(ns) = Netns::new("netlink_event_throughput") else {
            return;
        };
        let (l, sender) = ns.run(|| {
            let l = NlSocket::open(NETLINK_NETFILTER, 1).unwrap();
            l.set_rcvbuf(32 << 20).unwrap();
            (l, NlSocket::open(NETLINK_NETFILTER, 0).unwrap())
        });
        r.register(l, SockOpts::netlink()).unwrap();
        let t0 = Instant::now();
        let h = std::thread::spawn(move || {
            let mut msg = Vec::new();
            for chunk in 0..M / 200 {
                msg.clear();
                for k in 0..200 {
                    let i = chunk * 200 + k;
                    let src = [10, 2, (i >> 16) as u8, (i >> 8) as u8];
                    ct_new(
                        &mut msg,
                        i + 1,
                        false,
                        src,
                        [10, 0, 0, 2],
                        1000 + (i & 0xff) as u16,
                        5,
                    );
                }
                sender.send(&msg).unwrap();
            }
            t0.elapsed()
        });
        let (mut got, mut dropped) = (0u64, 0u64);
        let mut last = Instant::now();
        let c0 = thread_cpu();
        while got + dropped < M as u64 && t0.elapsed() < Duration::from_secs(20) {
            r.poll(Some(Duration::from_millis(50)), |_, e| match e {
                Event::Recv { data, .. } => {
                    got += nlmsgs(data).count() as u64;
                    last = Instant::now();
                }
                Event::Error {
                    error: ct_ring::SockError::Overrun { dropped: d, .. },
                    ..
                } => dropped += d as u64,
                _ => {}
            })
            .unwrap();
        }
        let cpu = thread_cpu() - c0;
        let insert = h.join().unwrap();
        let secs = (last - t0).as_secs_f64();
        println!(
            "{b}: {got} of {M} events ({dropped} dropped) in {secs:.3} s = {:.0} events/s (insertion took {:.3} s); {}",
            got as f64 / secs,
            insert.as_secs_f64(),
            per(cpu, got)
        );
    }
}
