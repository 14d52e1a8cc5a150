//! UDP on loopback through both backends: receiving with the sender's
//! address, batched sending (and the send-slot limit), truncation, and an
//! io_uring buffer ring too small for the burst (ENOBUFS from an empty
//! ring must not be reported as an overrun, and nothing may be lost).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use common::{poll_until, reactors};
use ct_ring::{Backend, Event, SendError, SockError, SockOpts};

fn bound() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

#[test]
fn recv_all_with_source() {
    const N: u32 = 5000;
    for mut r in reactors("recv_all_with_source") {
        let backend = r.backend();
        let (rx, rx_addr) = bound();
        ct_ring::sockopt::set_rcvbuf(rx.as_fd(), 4 << 20).unwrap();
        let (tx, tx_addr) = bound();
        let id = r.register(rx, SockOpts::udp()).unwrap();
        // (seen, count)
        let mut st = (vec![false; N as usize], 0u32);
        let on_event = |st: &mut (Vec<bool>, u32), _: &mut ct_ring::Ctx<'_>, ev: Event<'_>| match ev
        {
            Event::Recv {
                sock,
                data,
                from,
                truncated,
            } => {
                assert_eq!(sock, id);
                assert_eq!(from, Some(tx_addr), "{backend}");
                assert!(!truncated);
                assert_eq!(data.len(), 100);
                let i = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
                assert!(!st.0[i], "duplicate {i}");
                st.0[i] = true;
                st.1 += 1;
            }
            other => panic!("{backend}: unexpected {other:?}"),
        };
        let mut sent = 0u32;
        while sent < N {
            for _ in 0..250 {
                let mut d = [0u8; 100];
                d[..4].copy_from_slice(&sent.to_be_bytes());
                tx.send_to(&d, rx_addr).unwrap();
                sent += 1;
            }
            r.poll(Some(Duration::ZERO), |c, e| on_event(&mut st, c, e))
                .unwrap();
        }
        let ok = poll_until(&mut r, Duration::from_secs(5), &mut st, on_event, |s| {
            s.1 == N
        });
        let stats = r.stats(id).unwrap();
        println!("{backend}: received {}/{N}, stats {stats:?}", st.1);
        assert!(ok, "{backend}: only {} of {N}", st.1);
        assert_eq!(stats.rx_datagrams, N as u64);
        assert_eq!(stats.overruns, 0);
    }
}

#[test]
fn batched_send_and_slot_limit() {
    for mut r in reactors("batched_send_and_slot_limit") {
        let backend = r.backend();
        let (a, a_addr) = bound();
        let (b, b_addr) = bound();
        ct_ring::sockopt::set_rcvbuf(b.as_fd(), 4 << 20).unwrap();
        let ida = r.register(a, SockOpts::udp().send_only()).unwrap();
        let idb = r.register(b, SockOpts::udp()).unwrap();
        // Default config: 256 send slots; the 257th datagram must wait.
        let mut queued = 0u32;
        loop {
            let res = r.send_with(ida, Some(&b_addr), |buf| {
                buf[..4].copy_from_slice(&queued.to_be_bytes());
                buf[4..64].fill(0xab);
                64
            });
            match res {
                Ok(64) => queued += 1,
                Err(SendError::QueueFull) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(queued, 256);
        assert_eq!(r.stats(ida).unwrap().tx_queue_full, 1);
        assert_eq!(r.send_to(ida, &[0; 4096], &b_addr), Err(SendError::TooBig));
        r.flush().unwrap(); // one submission for all 256
        let mut next = 0u32;
        let ok = poll_until(
            &mut r,
            Duration::from_secs(5),
            &mut next,
            |next, ctx, ev| match ev {
                Event::Recv {
                    sock, data, from, ..
                } => {
                    assert_eq!(sock, idb);
                    assert_eq!(from, Some(a_addr));
                    assert_eq!(data.len(), 64);
                    // Datagrams on loopback keep their order.
                    assert_eq!(u32::from_be_bytes(data[..4].try_into().unwrap()), *next);
                    *next += 1;
                    if *next == 256 {
                        // Slots are free again once the sends completed;
                        // send more from inside the callback.
                        for i in 256..300u32 {
                            let mut d = [0u8; 64];
                            d[..4].copy_from_slice(&i.to_be_bytes());
                            ctx.send_to(ida, &d, &b_addr).unwrap();
                        }
                    }
                }
                other => panic!("{backend}: unexpected {other:?}"),
            },
            |next| *next == 300,
        );
        assert!(ok, "{backend}: got {next} of 300");
        let st = r.stats(ida).unwrap();
        assert_eq!(st.tx_datagrams, 300);
        assert_eq!(st.tx_bytes, 300 * 64);
        assert_eq!(st.tx_errors, 0);
    }
}

/// A sender that outruns its send slots waits for them with
/// `reap_sends` instead of dropping datagrams: 3000 datagrams through 256
/// slots all arrive, in order, and the receive completions that came in
/// while it waited are delivered by the next polls (none lost).
#[test]
fn reap_sends_frees_slots_and_keeps_other_completions() {
    const N: u32 = 3000;
    for mut r in reactors("reap_sends_frees_slots_and_keeps_other_completions") {
        let backend = r.backend();
        let (a, _) = bound();
        let (b, b_addr) = bound();
        ct_ring::sockopt::set_rcvbuf(b.as_fd(), 8 << 20).unwrap();
        let ida = r.register(a, SockOpts::udp().send_only()).unwrap();
        let idb = r.register(b, SockOpts::udp().buf_count(4096)).unwrap();
        let mut waits = 0;
        for i in 0..N {
            let d = i.to_be_bytes();
            loop {
                match r.send_to(ida, &d, &b_addr) {
                    Ok(()) => break,
                    Err(SendError::QueueFull) => {
                        waits += 1;
                        let n = r.reap_sends(Duration::from_secs(1)).unwrap();
                        assert!(n > 0, "{backend}: no slot came back");
                    }
                    Err(e) => panic!("{backend}: {e:?}"),
                }
            }
        }
        assert!(waits > 0, "{backend}: the slots never ran out");
        let mut next = 0u32;
        let ok = poll_until(
            &mut r,
            Duration::from_secs(5),
            &mut next,
            |next, _, ev| match ev {
                Event::Recv { sock, data, .. } => {
                    assert_eq!(sock, idb);
                    assert_eq!(u32::from_be_bytes(data[..4].try_into().unwrap()), *next);
                    *next += 1;
                }
                other => panic!("{backend}: unexpected {other:?}"),
            },
            |next| *next == N,
        );
        println!("{backend}: {next} of {N} received, {waits} waits for a slot");
        assert!(ok, "{backend}: got {next} of {N}");
        assert_eq!(r.stats(ida).unwrap().tx_errors, 0);
    }
}

/// `work_pending` tells whether a poll now would find something: after
/// datagrams arrived (not yet polled) it is true, after the poll that
/// handled them false. Backends that cannot tell answer `None`.
#[test]
fn work_pending_sees_unpolled_datagrams() {
    for mut r in reactors("work_pending_sees_unpolled_datagrams") {
        let backend = r.backend();
        let (rx, rx_addr) = bound();
        let (tx, _) = bound();
        r.register(rx, SockOpts::udp()).unwrap();
        // settle: arm the receive, nothing pending
        r.poll(Some(Duration::from_millis(20)), |_, _| {}).unwrap();
        let Some(idle) = r.work_pending() else {
            println!("{backend}: cannot tell");
            continue;
        };
        assert!(!idle, "{backend}: pending while idle");
        for _ in 0..3 {
            tx.send_to(&[1, 2, 3], rx_addr).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(r.work_pending(), Some(true), "{backend}: datagrams arrived");
        let mut got = 0;
        while got < 3 {
            r.poll(Some(Duration::from_secs(1)), |_, ev| {
                if let Event::Recv { .. } = ev {
                    got += 1;
                }
            })
            .unwrap();
        }
        assert_eq!(r.work_pending(), Some(false), "{backend}: all handled");
    }
}

#[test]
fn truncated_datagrams() {
    for mut r in reactors("truncated_datagrams") {
        let backend = r.backend();
        let (tx, _) = bound();
        for want_addr in [false, true] {
            let (rx, rx_addr) = bound();
            let id = r
                .register(rx, SockOpts::udp().want_addr(want_addr).buf_size(64))
                .unwrap();
            tx.send_to(&[7u8; 100], rx_addr).unwrap();
            tx.send_to(&[8u8; 10], rx_addr).unwrap();
            let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
            poll_until(
                &mut r,
                Duration::from_secs(5),
                &mut got,
                |got, _, ev| {
                    if let Event::Recv {
                        data, truncated, ..
                    } = ev
                    {
                        got.push((data.to_vec(), truncated));
                    }
                },
                |got| got.len() == 2,
            );
            assert_eq!(got.len(), 2, "{backend}");
            let tag = format!("{backend} want_addr={want_addr}");
            assert_eq!(got[0], (vec![7u8; 64], true), "{tag}");
            assert_eq!(got[1], (vec![8u8; 10], false), "{tag}");
            assert_eq!(r.stats(id).unwrap().rx_truncated, 1);
            r.close(id).unwrap();
            assert!(r.stats(id).is_none());
        }
    }
}

#[test]
fn tiny_buffer_ring_loses_nothing() {
    const N: u32 = 2000;
    for mut r in reactors("tiny_buffer_ring_loses_nothing") {
        let backend = r.backend();
        let (rx, rx_addr) = bound();
        ct_ring::sockopt::set_rcvbuf(rx.as_fd(), 8 << 20).unwrap();
        let (tx, _) = bound();
        let opts = SockOpts::udp().want_addr(false).buf_count(4).batch(4);
        let id = r.register(rx, opts).unwrap();
        // (received, overruns)
        let mut st = (0u32, 0u32);
        let mut sent = 0;
        while sent < N {
            for _ in 0..400 {
                tx.send_to(&sent.to_be_bytes(), rx_addr).unwrap();
                sent += 1;
            }
            poll_until(
                &mut r,
                Duration::from_secs(5),
                &mut st,
                |st, _, ev| match ev {
                    Event::Recv { data, .. } => {
                        assert_eq!(u32::from_be_bytes(data.try_into().unwrap()), st.0);
                        st.0 += 1;
                    }
                    Event::Error {
                        error: SockError::Overrun { .. },
                        ..
                    } => st.1 += 1,
                    other => panic!("{other:?}"),
                },
                |st| st.0 == sent,
            );
        }
        let stats = r.stats(id).unwrap();
        println!("{backend}: {}/{N}, stats {stats:?}", st.0);
        assert_eq!(st.0, N, "{backend}");
        assert_eq!(st.1, 0, "{backend}: an empty buffer ring is not an overrun");
        if backend == Backend::Uring {
            assert!(stats.ring_empty > 0, "the 4-buffer ring never ran dry?");
            assert!(stats.rearms >= stats.ring_empty);
        }
    }
}

#[test]
fn full_peer_fails_datagrams_without_blocking() {
    // Loopback UDP never pushes back on the sender (the receiver drops
    // instead), so use an AF_UNIX datagram pair: its datagrams count
    // against the sender's SO_SNDBUF until the peer reads them.
    for mut r in reactors("full_peer_fails_datagrams_without_blocking") {
        let backend = r.backend();
        let (a, peer) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let small: i32 = 4096;
        // SAFETY: small is a live i32 of the size passed.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&a),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                &small as *const i32 as *const libc::c_void,
                4,
            );
        }
        let ida = r.register(a, SockOpts::netlink().send_only()).unwrap();
        for _ in 0..200 {
            r.send(ida, &[1u8; 100]).unwrap();
        }
        r.flush().unwrap();
        let mut failed = 0u32;
        poll_until(
            &mut r,
            Duration::from_millis(500),
            &mut failed,
            |failed, _, ev| match ev {
                Event::Error {
                    error: SockError::Send { errno, count },
                    ..
                } => {
                    assert_eq!(errno.0, libc::EAGAIN, "{errno}");
                    *failed += count;
                }
                other => panic!("{other:?}"),
            },
            |_| false,
        );
        let s = r.stats(ida).unwrap();
        println!(
            "{backend}: {} sent, {failed} failed with EAGAIN; {s:?}",
            s.tx_datagrams
        );
        // Every send completed one way or the other: none is parked.
        assert_eq!(s.tx_datagrams + s.tx_errors, 200, "{backend}");
        assert!(s.tx_datagrams > 0 && failed > 0, "{backend}");
        assert_eq!(failed as u64, s.tx_errors);
        drop(peer);
    }
}

/// `max_per_wake` (conntrackd's EventIterationLimit): a flooded socket
/// hands over at most that many datagrams per poll, a quiet one behind it
/// gets its turn at once, and the held-back ones follow in order.
#[test]
fn max_per_wake_lets_other_sockets_in() {
    const N: u32 = 100;
    const CAP: u32 = 4;
    for mut r in reactors("max_per_wake_lets_other_sockets_in") {
        let backend = r.backend();
        let (busy, busy_addr) = bound();
        ct_ring::sockopt::set_rcvbuf(busy.as_fd(), 1 << 20).unwrap();
        let (quiet, quiet_addr) = bound();
        let (tx, _) = bound();
        let busy_id = r.register(busy, SockOpts::udp().max_per_wake(CAP)).unwrap();
        let quiet_id = r.register(quiet, SockOpts::udp()).unwrap();
        for i in 0..N {
            tx.send_to(&i.to_be_bytes(), busy_addr).unwrap();
        }
        tx.send_to(b"quiet", quiet_addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // (busy sequence seen, position of the quiet datagram, events)
        let mut got: Vec<u32> = Vec::new();
        let mut quiet_at = None;
        let mut polls = 0;
        while (got.len() as u32) < N || quiet_at.is_none() {
            polls += 1;
            assert!(polls < 1000, "{backend}: stuck at {}", got.len());
            let mut this_poll = 0u32;
            r.poll(Some(Duration::from_millis(100)), |_, ev| match ev {
                Event::Recv { sock, data, .. } if sock == busy_id => {
                    this_poll += 1;
                    got.push(u32::from_be_bytes(data.try_into().unwrap()));
                }
                Event::Recv { sock, .. } if sock == quiet_id => {
                    quiet_at = Some(got.len());
                }
                other => panic!("{backend}: unexpected {other:?}"),
            })
            .unwrap();
            assert!(this_poll <= CAP, "{backend}: {this_poll} in one poll");
        }
        assert_eq!(got, (0..N).collect::<Vec<_>>(), "{backend}: order");
        let at = quiet_at.unwrap();
        assert!(
            at <= CAP as usize,
            "{backend}: quiet socket waited for {at}"
        );
        assert!(polls >= N / CAP, "{backend}: {polls} polls");
    }
}

/// Wake-up moderation (io_uring): a poll waits for the configured number
/// of completions or the configured time, whichever first, and never past
/// the caller's timeout; nothing is held back or lost.
#[test]
fn moderation_batches_but_delivers_everything() {
    use std::time::Instant;
    let cfg = ct_ring::reactor::Config {
        moderation: Some((8, Duration::from_millis(30))),
        ..ct_ring::reactor::Config::with_backend(ct_ring::BackendChoice::Uring)
    };
    let mut r = match ct_ring::Reactor::new(cfg) {
        Ok(r) => r,
        Err(e) => {
            println!("SKIP: moderation needs io_uring: {e}");
            return;
        }
    };
    let (rx, rx_addr) = bound();
    let (tx, _) = bound();
    let id = r.register(rx, SockOpts::udp()).unwrap();
    let mut got = 0u32;
    // fewer than 8: delivered once the 30 ms pass, well before the 5 s
    for i in 0..3u32 {
        tx.send_to(&i.to_be_bytes(), rx_addr).unwrap();
    }
    let t0 = Instant::now();
    while got < 3 && t0.elapsed() < Duration::from_secs(5) {
        r.poll(Some(Duration::from_secs(5)), |_, ev| {
            if let Event::Recv { sock, .. } = ev {
                assert_eq!(sock, id);
                got += 1;
            }
        })
        .unwrap();
    }
    assert_eq!(got, 3);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // many: all of them, in batches
    for i in 0..100u32 {
        tx.send_to(&i.to_be_bytes(), rx_addr).unwrap();
    }
    let mut polls = 0;
    while got < 103 && polls < 1000 {
        polls += 1;
        r.poll(Some(Duration::from_secs(1)), |_, ev| {
            if let Event::Recv { .. } = ev {
                got += 1;
            }
        })
        .unwrap();
    }
    assert_eq!(got, 103);
    // idle: the caller's short timeout still holds
    let t1 = Instant::now();
    let n = r.poll(Some(Duration::from_millis(10)), |_, _| {}).unwrap();
    assert_eq!(n, 0);
    assert!(t1.elapsed() < Duration::from_secs(1));
}

/// `set_linger`: a trickle (a datagram every 2 ms) is handled in one
/// wake-up while the reactor lingers (it waits for `want` completions or
/// `max`), one wake-up each without; once `max` has passed with nothing,
/// the first datagram wakes the poll at once.
#[test]
fn lingering_handles_a_trickle_in_one_wake_up() {
    let Ok(mut r) = ct_ring::Reactor::with_backend(ct_ring::reactor::BackendChoice::Uring) else {
        eprintln!("SKIP: io_uring unavailable (lingering is io_uring only)");
        return;
    };
    let (rx, rx_addr) = bound();
    let (tx, _) = bound();
    r.register(rx, SockOpts::udp()).unwrap();
    let trickle = |tx: &UdpSocket| {
        let tx = tx.try_clone().unwrap();
        std::thread::spawn(move || {
            for i in 0..4u8 {
                std::thread::sleep(Duration::from_millis(2));
                tx.send_to(&[i], rx_addr).unwrap();
            }
        })
    };
    // (datagrams handled by the first poll of a trickle)
    let first_poll = |r: &mut ct_ring::Reactor| {
        let t = trickle(&tx);
        let mut got = 0;
        r.poll(Some(Duration::from_secs(2)), |_, e| {
            if matches!(e, Event::Recv { .. }) {
                got += 1;
            }
        })
        .unwrap();
        t.join().unwrap();
        // the rest, for the next round
        let mut rest = 0;
        poll_until(
            &mut *r,
            Duration::from_secs(2),
            &mut rest,
            |n: &mut u32, _, e| {
                if matches!(e, Event::Recv { .. }) {
                    *n += 1;
                }
            },
            |n| got + *n == 4,
        );
        got
    };
    let unlingered = first_poll(&mut r);
    assert!(
        unlingered < 4,
        "without lingering, the first datagram wakes the poll"
    );
    r.set_linger(Some((2, Duration::from_millis(500))));
    assert_eq!(
        first_poll(&mut r),
        4,
        "lingering: the trickle in one wake-up"
    );
    // idle for longer than `max`, then one datagram: handled at once
    r.set_linger(Some((2, Duration::from_millis(200))));
    let late = {
        let tx = tx.try_clone().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            tx.send_to(&[9], rx_addr).unwrap();
            std::time::Instant::now()
        })
    };
    let mut got = 0;
    r.poll(Some(Duration::from_secs(2)), |_, e| {
        if matches!(e, Event::Recv { .. }) {
            got += 1;
        }
    })
    .unwrap();
    let woke = std::time::Instant::now();
    let sent = late.join().unwrap();
    assert_eq!(got, 1);
    let after = woke.saturating_duration_since(sent);
    assert!(
        after < Duration::from_millis(100),
        "an idle lingering ring handled a datagram {after:?} after it came"
    );
    // an urgent socket ends a lingering wait at once, alone (one pending
    // socket does not end a wait for two completions: its doorbell does)
    // and while another socket's datagram waits to be handled
    let (urx, urx_addr) = bound();
    let urgent = r.register(urx, SockOpts::udp().urgent()).unwrap();
    r.set_linger(Some((2, Duration::from_millis(1000))));
    for other_first in [false, true] {
        let sender = {
            let tx = tx.try_clone().unwrap();
            std::thread::spawn(move || {
                if other_first {
                    tx.send_to(&[1], rx_addr).unwrap();
                }
                std::thread::sleep(Duration::from_millis(100));
                tx.send_to(&[2], urx_addr).unwrap();
                std::time::Instant::now()
            })
        };
        let mut socks = Vec::new();
        r.poll(Some(Duration::from_secs(3)), |_, e| {
            if let Event::Recv { sock, .. } = e {
                socks.push(sock);
            }
        })
        .unwrap();
        let woke = std::time::Instant::now();
        let sent = sender.join().unwrap();
        assert!(socks.contains(&urgent), "{socks:?}");
        assert_eq!(
            socks.len(),
            1 + other_first as usize,
            "all in one wake-up: {socks:?}"
        );
        let after = woke.saturating_duration_since(sent);
        assert!(
            after < Duration::from_millis(300),
            "the urgent socket's datagram waited {after:?} for a 1-s linger (other first: {other_first})"
        );
    }
    // closing an urgent socket with its doorbell pending
    r.close(urgent).unwrap();
    let mut none = 0;
    r.poll(Some(Duration::from_millis(50)), |_, _| none += 1)
        .unwrap();
}
