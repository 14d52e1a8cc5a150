//! Backend selection: `CT_RING_BACKEND` under `BackendChoice::Auto`, and
//! the automatic fallback when io_uring is refused. The refusal is real:
//! a seccomp filter on one thread makes `io_uring_setup` fail with EPERM
//! (as a container runtime's profile would), and `Auto` must then run on
//! the syscall backend and say why. (Own test binary: it sets env vars.)

use std::time::Duration;

use ct_ring::{Backend, BackendChoice, Config, Event, Reactor, BACKEND_ENV};

#[test]
fn env_var_and_fallback() {
    // No other thread of this test binary reads the environment.
    std::env::set_var(BACKEND_ENV, "syscall");
    let r = Reactor::new(Config::default()).unwrap();
    assert_eq!(r.backend(), Backend::Syscall);
    assert!(r.describe().contains(BACKEND_ENV), "{}", r.describe());
    // An explicit choice wins over the variable.
    if let Ok(r) = Reactor::with_backend(BackendChoice::Uring) {
        assert_eq!(r.backend(), Backend::Uring);
    }
    std::env::set_var(BACKEND_ENV, "bogus");
    let err = Reactor::new(Config::default())
        .err()
        .expect("bogus accepted");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    std::env::remove_var(BACKEND_ENV);
    let r = Reactor::new(Config::default()).unwrap();
    println!("auto: {}", r.describe());

    // io_uring refused by seccomp, on a thread of its own.
    std::thread::spawn(|| {
        forbid_io_uring_setup();
        let mut r = Reactor::new(Config::default()).unwrap();
        println!("auto under seccomp: {}", r.describe());
        assert_eq!(r.backend(), Backend::Syscall);
        assert!(r.describe().contains("EPERM"), "{}", r.describe());
        let e = Reactor::with_backend(BackendChoice::Uring)
            .err()
            .expect("uring under seccomp");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        // The fallback works.
        let w = r.waker();
        w.wake().unwrap();
        let mut woke = false;
        r.poll(Some(Duration::from_secs(1)), |_, e| {
            woke = matches!(e, Event::Wake)
        })
        .unwrap();
        assert!(woke);
    })
    .join()
    .unwrap();
}

/// Installs (on the calling thread only) a seccomp filter that fails
/// `io_uring_setup` with EPERM and allows everything else.
fn forbid_io_uring_setup() {
    const NR_IO_URING_SETUP: u32 = 425; // the same on every architecture
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut prog = [
        libc::sock_filter {
            code: ld,
            jt: 0,
            jf: 0,
            k: 0,
        }, // seccomp_data.nr
        libc::sock_filter {
            code: jeq,
            jt: 0,
            jf: 1,
            k: NR_IO_URING_SETUP,
        },
        libc::sock_filter {
            code: ret,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: ret,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with a valid, live filter program; without
    // SECCOMP_FILTER_FLAG_TSYNC it binds only this thread.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}
