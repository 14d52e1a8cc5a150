//! Network interfaces by name, for the sync channels: whether one exists,
//! its MTU, and its link state (`IFF_UP`, `IFF_RUNNING`), through the
//! `SIOC*` ioctls on a throw-away socket.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Whether an interface of that name exists (`if_nametoindex`).
pub fn exists(dev: &str) -> bool {
    index(dev).is_some()
}

/// The interface's index.
pub fn index(dev: &str) -> Option<u32> {
    let c = std::ffi::CString::new(dev).ok()?;
    // SAFETY: a NUL-terminated name, read only.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Runs a `SIOCGIF*` ioctl for `dev`; `None` when it fails.
fn ioctl(dev: &str, req: libc::c_ulong) -> Option<libc::ifreq> {
    if dev.len() >= libc::IFNAMSIZ || dev.contains('\0') {
        return None;
    }
    // SAFETY: a plain socket(2), owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned by socket(2).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid; the name is shorter than
    // IFNAMSIZ, so it stays NUL-terminated.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in dev.bytes().enumerate() {
        ifr.ifr_name[i] = b as libc::c_char;
    }
    // SAFETY: ifr is a live ifreq, as these requests take.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut ifr) };
    (rc == 0).then_some(ifr)
}

/// The MTU (`SIOCGIFMTU`).
pub fn mtu(dev: &str) -> Option<usize> {
    // SAFETY: SIOCGIFMTU filled the ifru_mtu member.
    ioctl(dev, libc::SIOCGIFMTU).map(|r| unsafe { r.ifr_ifru.ifru_mtu } as usize)
}

/// (IFF_UP, IFF_RUNNING) (`SIOCGIFFLAGS`, which includes the computed
/// IFF_RUNNING); both false when the interface is unknown.
pub fn flags(dev: &str) -> (bool, bool) {
    // SAFETY: SIOCGIFFLAGS filled the ifru_flags member.
    let f = ioctl(dev, libc::SIOCGIFFLAGS)
        .map(|r| unsafe { r.ifr_ifru.ifru_flags } as i32)
        .unwrap_or(0);
    (f & libc::IFF_UP != 0, f & libc::IFF_RUNNING != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        assert!(exists("lo"));
        assert_eq!(index("lo"), Some(1));
        assert!(mtu("lo").is_some_and(|m| m >= 1500));
        assert!(flags("lo").0, "lo is up");
        assert!(!exists("nosuchif0"));
        assert_eq!(mtu("nosuchif0"), None);
        assert_eq!(flags("nosuchif0"), (false, false));
        assert_eq!(mtu("a-name-much-too-long-for-ifnamsiz"), None);
    }
}
