//! Conntrack events through the reactor, in a scratch network namespace
//! per test (`ctring-<pid>-<n>`, deleted afterwards; skipped with a
//! `SKIP:` line when not root). Entries are created with raw ctnetlink
//! CT_NEW messages, through the reactor itself (batched sends with ACKs)
//! or through a plain socket (the overrun burst). The host's conntrack
//! table is never touched.

mod common;

use std::time::{Duration, Instant};

use common::{ct_new, nl_error, nlmsgs, poll_until, reactors, Netns, CT_NEW, NLMSG_ERROR};
use ct_ring::netlink::{NlSocket, NETLINK_NETFILTER};
use ct_ring::{Event, SockError, SockOpts};

/// Legacy group bitmask for NFNLGRP_CONNTRACK_NEW (group 1).
const GROUP_NEW: u32 = 1;

#[test]
fn conntrack_new_events_and_acks() {
    const N: u16 = 50;
    for mut r in reactors("conntrack_new_events_and_acks") {
        let b = r.backend();
        let Some(ns) = Netns::new("conntrack_new_events_and_acks") else {
            return;
        };
        let (listener, req) = ns.run(|| {
            (
                NlSocket::open(NETLINK_NETFILTER, GROUP_NEW).unwrap(),
                NlSocket::open(NETLINK_NETFILTER, 0).unwrap(),
            )
        });
        let lid = r.register(listener, SockOpts::netlink()).unwrap();
        let rid = r.register(req, SockOpts::netlink()).unwrap();
        let mut msg = Vec::new();
        for i in 0..N {
            msg.clear();
            ct_new(
                &mut msg,
                i as u32 + 1,
                true,
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                1000 + i,
                2,
            );
            r.send(rid, &msg).unwrap();
        }
        // (events, acks)
        let mut st = (0u16, 0u16);
        let ok = poll_until(
            &mut r,
            Duration::from_secs(5),
            &mut st,
            |st, _, ev| match ev {
                Event::Recv { sock, data, .. } => {
                    for (ty, payload) in nlmsgs(data) {
                        if sock == lid {
                            assert_eq!(ty, CT_NEW, "{b}: event type");
                            st.0 += 1;
                        } else {
                            assert_eq!(sock, rid);
                            assert_eq!(ty, NLMSG_ERROR);
                            assert_eq!(nl_error(payload), 0, "{b}: CT_NEW refused");
                            st.1 += 1;
                        }
                    }
                }
                other => panic!("{b}: unexpected {other:?}"),
            },
            |st| *st == (N, N),
        );
        println!("{b}: {} events, {} acks", st.0, st.1);
        assert!(ok, "{b}: {st:?}");
        assert_eq!(r.stats(rid).unwrap().tx_datagrams, N as u64);
        r.close(lid).unwrap();
        r.close(rid).unwrap();
        // Let io_uring confirm the cancellations before the netns goes.
        r.poll(Some(Duration::from_millis(10)), |_, _| {}).unwrap();
    }
}

#[test]
fn forced_overrun_is_reported_and_receive_continues() {
    const BURST: u16 = 3000;
    const AFTER: u16 = 20;
    for mut r in reactors("forced_overrun_is_reported_and_receive_continues") {
        let b = r.backend();
        let Some(ns) = Netns::new("forced_overrun") else {
            return;
        };
        let (listener, sender) = ns.run(|| {
            let l = NlSocket::open(NETLINK_NETFILTER, GROUP_NEW).unwrap();
            // A tiny buffer: SO_RCVBUF 4096 (the kernel doubles it).
            let v: i32 = 4096;
            // SAFETY: v is a live i32 of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&l),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &v as *const i32 as *const libc::c_void,
                    4,
                )
            };
            assert_eq!(rc, 0);
            (l, NlSocket::open(NETLINK_NETFILTER, 0).unwrap())
        });
        let rcvbuf = listener.rcvbuf().unwrap();
        let lid = r.register(listener, SockOpts::netlink()).unwrap();

        // Phase 1: a burst of creates, 100 per send, while nobody polls.
        let mut msg = Vec::new();
        for chunk in 0..BURST / 100 {
            msg.clear();
            for k in 0..100 {
                let i = chunk * 100 + k;
                ct_new(
                    &mut msg,
                    i as u32 + 1,
                    false,
                    [10, 0, 0, 1],
                    [10, 0, 0, 2],
                    1000 + i,
                    2,
                );
            }
            sender.send(&msg).unwrap();
        }
        #[derive(Default, Debug)]
        struct St {
            events: u32,
            overruns: u32,
            dropped: u64,
            events_after_overrun: u32,
            last: Option<Instant>,
        }
        let mut st = St::default();
        let handler = |st: &mut St, _: &mut ct_ring::Ctx<'_>, ev: Event<'_>| {
            st.last = Some(Instant::now());
            match ev {
                Event::Recv { sock, data, .. } => {
                    assert_eq!(sock, lid);
                    for (ty, _) in nlmsgs(data) {
                        assert_eq!(ty, CT_NEW);
                        st.events += 1;
                        if st.overruns > 0 {
                            st.events_after_overrun += 1;
                        }
                    }
                }
                Event::Error {
                    sock,
                    error: SockError::Overrun { dropped, .. },
                } => {
                    assert_eq!(sock, lid);
                    st.overruns += 1;
                    st.dropped += dropped as u64;
                }
                other => panic!("unexpected {other:?}"),
            }
        };
        // Drain until 300 ms pass without an event.
        let quiet = |st: &St| {
            st.last
                .is_some_and(|t| t.elapsed() > Duration::from_millis(300))
        };
        st.last = Some(Instant::now());
        poll_until(&mut r, Duration::from_secs(10), &mut st, handler, quiet);
        let phase1 = st.events;
        println!("{b}: rcvbuf {rcvbuf}, burst {BURST}: {st:?}");
        assert!(st.overruns >= 1, "{b}: no overrun reported: {st:?}");
        assert!(st.dropped > 0, "{b}: the drop counter did not grow: {st:?}");
        assert!(phase1 < BURST as u32, "{b}: {st:?}");
        assert!(phase1 as u64 + st.dropped >= BURST as u64, "{b}: {st:?}");

        // Phase 2: one create at a time; every event must arrive.
        for i in 0..AFTER {
            msg.clear();
            ct_new(
                &mut msg,
                9000 + i as u32,
                false,
                [10, 0, 0, 3],
                [10, 0, 0, 2],
                1000 + i,
                3,
            );
            sender.send(&msg).unwrap();
            r.poll(Some(Duration::from_millis(5)), |c, e| {
                handler(&mut st, c, e)
            })
            .unwrap();
        }
        let ok = poll_until(&mut r, Duration::from_secs(5), &mut st, handler, |st| {
            st.events >= phase1 + AFTER as u32
        });
        let stats = r.stats(lid).unwrap();
        println!("{b}: after phase 2: {st:?}\n{b}: {stats:?}");
        assert!(
            ok,
            "{b}: receiving did not continue after the overrun: {st:?}"
        );
        assert!(st.events_after_overrun >= AFTER as u32);
        assert_eq!(stats.overruns, st.overruns as u64);
        if b == ct_ring::Backend::Uring {
            // The overrun CQE ended the multishot receive; it was re-armed.
            assert!(stats.rearms >= 1, "{stats:?}");
        }
    }
}

#[test]
fn overruns_while_receiving_are_all_accounted_for() {
    const BURST: u32 = 20_000;
    for mut r in reactors("overruns_while_receiving_are_all_accounted_for") {
        let b = r.backend();
        let Some(ns) = Netns::new("overruns_while_receiving") else {
            return;
        };
        let (listener, sender) = ns.run(|| {
            let l = NlSocket::open(NETLINK_NETFILTER, GROUP_NEW).unwrap();
            l.set_rcvbuf(65536).unwrap();
            (l, NlSocket::open(NETLINK_NETFILTER, 0).unwrap())
        });
        let lid = r.register(listener, SockOpts::netlink()).unwrap();
        // The sender runs while the reactor receives: overruns happen
        // in the middle of a live multishot receive.
        let h = std::thread::spawn(move || {
            let mut msg = Vec::new();
            for chunk in 0..BURST / 200 {
                msg.clear();
                for k in 0..200 {
                    let i = chunk * 200 + k;
                    let src = [10, 1, (i >> 16) as u8, (i >> 8) as u8];
                    ct_new(
                        &mut msg,
                        i + 1,
                        false,
                        src,
                        [10, 0, 0, 2],
                        1000 + (i & 0xff) as u16,
                        4,
                    );
                }
                sender.send(&msg).unwrap();
            }
        });
        // (events, overruns, dropped)
        let mut st = (0u64, 0u64, 0u64);
        let ok = poll_until(
            &mut r,
            Duration::from_secs(20),
            &mut st,
            |st, _, ev| match ev {
                Event::Recv { data, .. } => st.0 += nlmsgs(data).count() as u64,
                Event::Error {
                    error: SockError::Overrun { dropped, .. },
                    ..
                } => {
                    st.1 += 1;
                    st.2 += dropped as u64;
                }
                other => panic!("{b}: unexpected {other:?}"),
            },
            |st| st.0 + st.2 >= BURST as u64,
        );
        h.join().unwrap();
        let stats = r.stats(lid).unwrap();
        println!(
            "{b}: events {}, overruns {}, dropped {}; {stats:?}",
            st.0, st.1, st.2
        );
        assert!(ok, "{b}: {st:?}");
        // Every event was either delivered or counted as dropped.
        assert_eq!(st.0 + st.2, BURST as u64, "{b}");
    }
}
