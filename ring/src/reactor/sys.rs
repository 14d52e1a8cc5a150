//! Thin wrappers over the few raw syscalls the reactor needs outside
//! io_uring: `cvt` for `-1`/errno returns, an anonymous `mmap` region for
//! memory the kernel writes into, integer socket options, the socket drop
//! counter (`SO_MEMINFO`) and an eventfd.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// `SO_MEMINFO` (not exported by the `libc` crate for every target).
const SO_MEMINFO: i32 = 55;
/// Number of `u32` slots `SO_MEMINFO` fills (`SK_MEMINFO_VARS`).
const SK_MEMINFO_VARS: usize = 9;

/// Turns a `-1`-and-errno return into an `io::Result`.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The calling thread's errno after a failed call.
pub(crate) fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// An anonymous, private, read-write mapping. The kernel may write into it
/// asynchronously (provided buffers), so it is only ever reached through
/// raw pointers, never through a Rust reference to the whole region.
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
    leak: bool,
}

impl Mmap {
    /// Maps `len` zeroed bytes (page aligned, as buffer rings require).
    pub(crate) fn new(len: usize) -> io::Result<Mmap> {
        let len = len.max(1);
        // SAFETY: an anonymous private mapping touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(p as *mut u8).expect("mmap returned null"),
            len,
            leak: false,
        })
    }

    /// Never unmap: for memory the kernel might still write into because
    /// an io_uring request could not be confirmed finished.
    pub(crate) fn leak(&mut self) {
        self.leak = true;
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if self.leak {
            return;
        }
        // SAFETY: ptr/len come from our own successful mmap; owners make
        // sure the kernel no longer uses the region (see uring::Uring::drop).
        unsafe {
            libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len);
        }
    }
}

/// Sets an `int` socket option.
pub(crate) fn setsockopt_int(fd: RawFd, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: the option value is a live i32 of the size passed.
    cvt(unsafe { libc::setsockopt(fd, level, name, &v as *const i32 as *const libc::c_void, 4) })
        .map(|_| ())
}

/// Reads an `int` socket option.
pub(crate) fn getsockopt_int(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len: libc::socklen_t = 4;
    // SAFETY: v and len are live and sized for an int option.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            &mut v as *mut i32 as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(v)
}

/// The socket's drop counter (`sk_drops`, via `SO_MEMINFO`): netlink
/// counts every message it could not queue for this socket, UDP every
/// datagram dropped for a full receive buffer. 0 when unavailable.
pub(crate) fn sock_drops(fd: RawFd) -> u32 {
    sock_meminfo(fd).0
}

/// (`sk_drops`, bytes queued for receive) from SO_MEMINFO; (0, 0) when
/// unavailable.
pub(crate) fn sock_meminfo(fd: RawFd) -> (u32, u32) {
    let mut m = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&m) as libc::socklen_t;
    // SAFETY: m and len are live; the kernel writes at most len bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_MEMINFO,
            m.as_mut_ptr() as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return (0, 0);
    }
    (
        m[libc::SK_MEMINFO_DROPS as usize],
        m[libc::SK_MEMINFO_RMEM_ALLOC as usize],
    )
}

/// Creates a blocking, close-on-exec eventfd (blocking so that an
/// io_uring READ on it waits instead of completing with EAGAIN).
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is wrapped at once.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd's counter.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64.
    let r = unsafe { libc::write(fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EAGAIN) {
            return Ok(()); // counter saturated: a wake is pending anyway
        }
        return Err(e);
    }
    Ok(())
}

/// Reads (and so resets) an eventfd's counter. Only called when it is
/// known to be readable.
pub(crate) fn eventfd_drain(fd: RawFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64.
    unsafe {
        libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8);
    }
}
