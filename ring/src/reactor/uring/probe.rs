//! Opening an io_uring and proving it does what the reactor needs, so
//! that `Auto` can fall back cleanly: the ring must open (EPERM from the
//! `kernel.io_uring_disabled` sysctl or a seccomp filter, ENOSYS on old
//! or stripped kernels), offer EXT_ARG waits, support the opcodes we
//! submit, and a multishot RECV from a registered provided-buffer ring
//! must really deliver a datagram on an AF_UNIX socketpair.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, register::Probe, types, IoUring};

use super::bufring::BufRing;
use crate::reactor::config::Config;
use crate::reactor::sys::cvt;

/// The buffer group used only by the probe.
pub(crate) const PROBE_BGID: u16 = u16::MAX;
const PROBE_RECV: u64 = u64::MAX - 1;
const PROBE_CANCEL: u64 = u64::MAX - 2;

/// An opened, verified ring and the setup flags it got.
pub(crate) struct Opened {
    pub ring: IoUring,
    pub setup: &'static str,
}

fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            format!(
                "io_uring_setup: EPERM (kernel.io_uring_disabled={sysctl}, or a seccomp filter)"
            )
        }
        Some(libc::ENOSYS) => "io_uring_setup: ENOSYS (kernel without io_uring)".into(),
        _ => format!("io_uring_setup: {e}"),
    }
}

fn build(cfg: &Config) -> Result<(IoUring, &'static str), String> {
    let cq = cfg.cq_entries.max(cfg.sq_entries * 2).next_power_of_two();
    let sq = cfg.sq_entries.max(8).next_power_of_two();
    let mut last = None;
    for variant in 0..3 {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq);
        let name = match variant {
            0 => {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag();
                "single_issuer+defer_taskrun"
            }
            1 => {
                b.setup_coop_taskrun();
                "coop_taskrun"
            }
            _ => "plain",
        };
        match b.build(sq) {
            Ok(r) => return Ok((r, name)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(describe(&e)),
        }
    }
    Err(describe(&last.expect("tried")))
}

/// Opens a ring for `cfg` and checks it, or says why not.
pub(crate) fn open(cfg: &Config) -> Result<Opened, String> {
    let (mut ring, setup) = build(cfg)?;
    if !ring.params().is_feature_ext_arg() {
        return Err("io_uring lacks IORING_FEAT_EXT_ARG (kernel < 5.11)".into());
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("IORING_REGISTER_PROBE: {e}"))?;
    let ops = [
        ("RECV", opcode::Recv::CODE),
        ("RECVMSG", opcode::RecvMsg::CODE),
        ("SEND", opcode::Send::CODE),
        ("SENDMSG", opcode::SendMsg::CODE),
        ("READ", opcode::Read::CODE),
        ("ASYNC_CANCEL", opcode::AsyncCancel::CODE),
        ("TIMEOUT", opcode::Timeout::CODE),
        ("PROVIDE_BUFFERS", opcode::ProvideBuffers::CODE),
    ];
    for (name, code) in ops {
        if !probe.is_supported(code) {
            return Err(format!("io_uring opcode {name} not supported"));
        }
    }
    multishot_check(&mut ring).map_err(|e| format!("multishot recv + buffer ring check: {e}"))?;
    Ok(Opened { ring, setup })
}

fn wait(ring: &mut IoUring, ms: u64) -> io::Result<()> {
    let ts = types::Timespec::from(Duration::from_millis(ms));
    let args = types::SubmitArgs::new().timespec(&ts);
    match ring.submitter().submit_with_args(1, &args) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn multishot_check(ring: &mut IoUring) -> io::Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a live [i32; 2].
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both fds are fresh and ours.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut br = BufRing::new(2, 64, PROBE_BGID)?;
    br.register(&ring.submitter())?;
    let recv = opcode::RecvMulti::new(types::Fd(a.as_raw_fd()), PROBE_BGID)
        .build()
        .user_data(PROBE_RECV);
    // SAFETY: the request reads no memory of ours besides the buffer
    // ring, which stays registered until the request has ended below.
    unsafe { ring.submission().push(&recv) }.map_err(|_| io::Error::other("SQ full"))?;
    ring.submit()?;
    // SAFETY: writes one byte from a live buffer.
    cvt(unsafe { libc::write(b.as_raw_fd(), b"x".as_ptr() as *const libc::c_void, 1) } as i32)?;
    let mut result: io::Result<()> = Err(io::Error::other("no completion within 1 s"));
    let mut recv_done = false;
    let mut cancel_done = false;
    let mut cancelled = false;
    for round in 0..40 {
        wait(ring, 50)?;
        let cqes: Vec<cqueue::Entry> = ring.completion().collect();
        for c in cqes {
            match c.user_data() {
                PROBE_RECV => {
                    if let Some(bid) = cqueue::buffer_select(c.flags()) {
                        br.recycle(bid);
                    }
                    if c.result() == 1 && cqueue::more(c.flags()) {
                        result = Ok(());
                    } else if !cancelled {
                        result = Err(io::Error::other(format!(
                            "first completion res={} flags={:#x}",
                            c.result(),
                            c.flags()
                        )));
                    }
                    recv_done |= !cqueue::more(c.flags());
                }
                PROBE_CANCEL => cancel_done = true,
                _ => {}
            }
        }
        if !recv_done && !cancelled && (result.is_ok() || round >= 20) {
            let cancel = opcode::AsyncCancel::new(PROBE_RECV)
                .build()
                .user_data(PROBE_CANCEL);
            // SAFETY: a cancel request reads no memory of ours.
            unsafe { ring.submission().push(&cancel) }.map_err(|_| io::Error::other("SQ full"))?;
            cancelled = true;
        }
        if recv_done && (cancel_done || !cancelled) {
            br.unregister(&ring.submitter());
            return result;
        }
    }
    // The kernel still holds the request: never free its buffers.
    br.leak();
    std::mem::forget(br);
    Err(io::Error::other("probe request did not finish"))
}
