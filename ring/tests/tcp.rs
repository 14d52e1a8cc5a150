//! A TCP stream through both backends: 4 MiB written through the send
//! slots (far more than the socket buffers hold, so writes go partial or
//! wait for space), read back in order, then end of file after `close`.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::{poll_until, reactors};
use ct_ring::{Event, SendError, SockOpts};

/// A connected TCP pair on loopback whose client has a 16 KiB send
/// buffer (writes soon find it full).
fn small_sndbuf_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let small: i32 = 16384;
    // SAFETY: small is a live i32 of the size passed.
    unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &small as *const i32 as *const libc::c_void,
            4,
        );
    }
    (c, s)
}

fn pattern(off: u64) -> u8 {
    (off % 251) as u8
}

#[test]
fn stream_in_order_then_eof() {
    const TOTAL: u64 = 4 << 20;
    for mut r in reactors("stream_in_order_then_eof") {
        let b = r.backend();
        let (c, s) = small_sndbuf_pair();
        let cid = r.register(c, SockOpts::stream()).unwrap();
        let sid = r.register(s, SockOpts::stream()).unwrap();
        let mut produced = 0u64;
        // (received, closed)
        let mut st = (0u64, false);
        let handler = |st: &mut (u64, bool), _: &mut ct_ring::Ctx<'_>, ev: Event<'_>| match ev {
            Event::Recv { sock, data, .. } => {
                assert_eq!(sock, sid);
                for (k, &x) in data.iter().enumerate() {
                    assert_eq!(x, pattern(st.0 + k as u64), "{b}: at {}", st.0 + k as u64);
                }
                st.0 += data.len() as u64;
            }
            Event::Closed { sock } => {
                assert_eq!(sock, sid);
                st.1 = true;
            }
            other => panic!("{b}: unexpected {other:?}"),
        };
        let mut rounds = 0;
        while st.0 < TOTAL {
            rounds += 1;
            assert!(rounds < 100_000, "{b}: stuck at {} of {TOTAL}", st.0);
            while produced < TOTAL {
                let res = r.send_with(cid, None, |buf| {
                    let n = (buf.len() as u64).min(TOTAL - produced) as usize;
                    for (k, x) in buf[..n].iter_mut().enumerate() {
                        *x = pattern(produced + k as u64);
                    }
                    n
                });
                match res {
                    Ok(n) => produced += n as u64,
                    Err(SendError::QueueFull) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            r.poll(Some(Duration::from_millis(100)), |c, e| {
                handler(&mut st, c, e)
            })
            .unwrap();
        }
        assert_eq!(st.0, TOTAL);
        let cs = r.stats(cid).unwrap();
        assert_eq!(cs.tx_bytes, TOTAL, "{b}: {cs:?}");
        assert_eq!(cs.tx_errors, 0);
        println!("{b}: {TOTAL} bytes in {rounds} polls; client {cs:?}");
        r.close(cid).unwrap();
        assert!(poll_until(
            &mut r,
            Duration::from_secs(5),
            &mut st,
            handler,
            |st| st.1
        ));
        assert_eq!(r.stats(sid).unwrap().rx_bytes, TOTAL);

        // Writing to the closed peer fails (RST, then EPIPE): reported
        // once as a value, after which the stream refuses sends.
        let mut err = None;
        for _ in 0..200 {
            match r.send(sid, b"hello?") {
                Ok(()) => {}
                Err(SendError::Broken) => break,
                Err(e) => panic!("{b}: {e}"),
            }
            r.poll(Some(Duration::from_millis(5)), |_, e| match e {
                Event::Error {
                    sock,
                    error: ct_ring::SockError::Send { errno, .. },
                } => {
                    assert_eq!(sock, sid);
                    err = Some(errno);
                }
                other => panic!("{b}: unexpected {other:?}"),
            })
            .unwrap();
        }
        let errno = err.expect("no send error reported");
        println!("{b}: write to a closed peer: {errno}");
        assert!(
            matches!(errno.0, libc::EPIPE | libc::ECONNRESET),
            "{errno:?}"
        );
        assert_eq!(r.send(sid, b"x"), Err(SendError::Broken));
    }
}

#[test]
fn drop_with_a_blocked_stream_send_is_prompt() {
    for mut r in reactors("drop_with_a_blocked_stream_send_is_prompt") {
        let b = r.backend();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap(); // never reads
        let cid = r.register(c, SockOpts::stream()).unwrap();
        let mut queued = 0;
        for _ in 0..50 {
            while r.send(cid, &[0u8; 2048]).is_ok() {
                queued += 2048;
            }
            r.poll(Some(Duration::from_millis(2)), |_, e| panic!("{e:?}"))
                .unwrap();
        }
        let t0 = std::time::Instant::now();
        drop(r);
        let took = t0.elapsed();
        println!("{b}: {queued} bytes queued, drop took {took:?}");
        assert!(took < Duration::from_millis(500), "{b}: {took:?}");
    }
}

#[test]
fn close_with_a_blocked_stream_send_closes_the_socket() {
    use std::io::Read;
    for mut r in reactors("close_with_a_blocked_stream_send_closes_the_socket") {
        let b = r.backend();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap(); // does not read for now
        let cid = r.register(c, SockOpts::stream().send_only()).unwrap();
        for _ in 0..20 {
            while r.send(cid, &[0u8; 2048]).is_ok() {}
            r.poll(Some(Duration::from_millis(2)), |_, e| panic!("{e:?}"))
                .unwrap();
        }
        r.close(cid).unwrap();
        r.poll(Some(Duration::from_millis(20)), |_, _| {}).unwrap();
        // The peer sees the connection end (EOF or reset) once it reads.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        let end = loop {
            match s.read(&mut buf) {
                Ok(0) => break "eof",
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
                Err(e) => panic!("{b}: after {total} bytes: {e}"),
            }
        };
        println!("{b}: peer read {total} bytes, then {end}");
    }
}

/// A stream writer that outruns a slow reader waits in `reap_sends` for
/// the socket to take more (both backends), and everything arrives in
/// order: 2 MiB through a 16 KiB send buffer, read by a thread that
/// starts late.
#[test]
fn reap_sends_waits_for_a_slow_stream() {
    use std::io::Read;
    const TOTAL: usize = 2 << 20;
    for mut r in reactors("reap_sends_waits_for_a_slow_stream") {
        let b = r.backend();
        let (c, mut s) = small_sndbuf_pair();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut got = Vec::with_capacity(TOTAL);
            let mut buf = [0u8; 65536];
            while got.len() < TOTAL {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "early EOF");
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        let cid = r.register(c, SockOpts::stream().send_only()).unwrap();
        let mut sent = 0usize;
        let mut waits = 0;
        while sent < TOTAL {
            let chunk: Vec<u8> = (sent..sent + 1024).map(|o| pattern(o as u64)).collect();
            match r.send(cid, &chunk) {
                Ok(()) => sent += 1024,
                Err(SendError::QueueFull) => {
                    waits += 1;
                    assert!(waits < 100_000, "{b}: stuck at {sent}");
                    r.reap_sends(Duration::from_secs(2)).unwrap();
                }
                Err(e) => panic!("{b}: {e:?}"),
            }
        }
        while r.stats(cid).unwrap().tx_bytes < TOTAL as u64 {
            r.reap_sends(Duration::from_millis(100)).unwrap();
            r.poll(Some(Duration::from_millis(1)), |_, _| {}).unwrap();
        }
        let got = reader.join().unwrap();
        println!("{b}: {TOTAL} bytes, {waits} waits for a slot");
        assert!(waits > 0, "{b}: never waited");
        assert!(
            got.iter().enumerate().all(|(o, &x)| x == pattern(o as u64)),
            "{b}: out of order"
        );
    }
}
