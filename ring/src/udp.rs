//! UDP sockets of the sync channels: a multicast member socket bound with
//! SO_REUSEADDR (IPv4 or IPv6), the outgoing multicast interface
//! (IP_MULTICAST_IF by address, IPV6_MULTICAST_IF by index), and socket
//! addresses carrying an IPv6 scope (a link-local address means nothing
//! without the interface it is on).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `ip:port`, with `scope` as the IPv6 scope id when the address needs
/// one (link-local unicast, or multicast of interface- or link-local
/// scope); other addresses ignore it, as the kernel would.
pub fn scoped(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            let link_local = (seg0 & 0xffc0) == 0xfe80;
            let mcast_local = a.is_multicast() && matches!(seg0 & 0x000f, 1 | 2);
            let s = if link_local || mcast_local { scope } else { 0 };
            SocketAddr::V6(SocketAddrV6::new(a, port, 0, s))
        }
        v4 => SocketAddr::new(v4, port),
    }
}

/// A UDP socket of `addr`'s family with SO_REUSEADDR, bound to `addr`
/// (a multicast member binds the wildcard address and the group's port).
pub fn bind_reuse(addr: SocketAddr) -> io::Result<UdpSocket> {
    bind_reuse_then(addr, |_| Ok(()))
}

/// [`bind_reuse`] for a multicast member; with `all` false it hears only
/// the groups it joins (IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off), and
/// with a `device` only what arrives on that interface
/// (SO_BINDTODEVICE): IPv6 matches a membership by group, not by
/// interface. Both are set before the bind, so they hold from the first
/// datagram on.
pub fn bind_multicast(addr: SocketAddr, all: bool, device: Option<&str>) -> io::Result<UdpSocket> {
    bind_reuse_then(addr, |s| {
        if !all {
            set_multicast_all(s, addr.is_ipv6(), false)?;
        }
        match device {
            Some(d) => bind_to_device(s, d),
            None => Ok(()),
        }
    })
}

/// SO_BINDTODEVICE: the socket receives (and sends) on interface `name`
/// only.
fn bind_to_device(sock: &UdpSocket, name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: a live socket and a buffer of the length passed (the kernel
    // copies at most IFNAMSIZ - 1 bytes and terminates the name itself).
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr() as *const libc::c_void,
            name.len() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// [`bind_reuse`], `before_bind` given the socket just before the bind.
fn bind_reuse_then(
    addr: SocketAddr,
    before_bind: impl FnOnce(&UdpSocket) -> io::Result<()>,
) -> io::Result<UdpSocket> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscalls; the fd is owned by the UdpSocket at once.
    let sock = unsafe {
        let fd = cvt(libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        UdpSocket::from_raw_fd(fd)
    };
    let one: libc::c_int = 1;
    // SAFETY: a live socket and an int of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    })?;
    before_bind(&sock)?;
    let (sa, len) = sockaddr(addr);
    // SAFETY: sa is a sockaddr_storage holding a sockaddr of `len` bytes.
    cvt(unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sa as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
        )
    })?;
    Ok(sock)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than sockaddr_in and aligned for it.
            let sin =
                unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and aligned for it.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6)
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// IPv4 multicast goes out through the interface of `ifaddr`
/// (IP_MULTICAST_IF; 0.0.0.0 = the routing table's choice).
pub fn set_multicast_if_v4(sock: &UdpSocket, ifaddr: Ipv4Addr) -> io::Result<()> {
    let a = libc::in_addr {
        s_addr: u32::from_ne_bytes(ifaddr.octets()),
    };
    // SAFETY: a live socket and an in_addr of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &a as *const libc::in_addr as *const libc::c_void,
            std::mem::size_of::<libc::in_addr>() as u32,
        )
    })?;
    Ok(())
}

/// IPv6 multicast goes out through interface `index` (IPV6_MULTICAST_IF;
/// 0 = the routing table's choice).
pub fn set_multicast_if_v6(sock: &UdpSocket, index: u32) -> io::Result<()> {
    let i = index as libc::c_int;
    // SAFETY: a live socket and an int of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            &i as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    })?;
    Ok(())
}

/// Whether the socket hears the multicast groups other sockets of the
/// host joined on its port (IP_MULTICAST_ALL / IPV6_MULTICAST_ALL, on by
/// default), or only the groups it joined itself.
fn set_multicast_all(sock: &UdpSocket, v6: bool, all: bool) -> io::Result<()> {
    let on = all as libc::c_int;
    let (level, opt) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL)
    } else {
        (libc::IPPROTO_IP, libc::IP_MULTICAST_ALL)
    };
    // SAFETY: a live socket and an int of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn only_addresses_that_need_a_scope_get_it() {
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let g: Ipv6Addr = "fd00::1".parse().unwrap();
        let m: Ipv6Addr = "ff02::90".parse().unwrap();
        let mg: Ipv6Addr = "ff0e::90".parse().unwrap();
        let scope = |a: Ipv6Addr| match scoped(IpAddr::V6(a), 1, 7) {
            SocketAddr::V6(s) => s.scope_id(),
            _ => unreachable!(),
        };
        assert_eq!((scope(ll), scope(g), scope(m), scope(mg)), (7, 0, 7, 0));
        assert_eq!(scoped(IpAddr::V4(Ipv4Addr::LOCALHOST), 5, 7).port(), 5);
    }

    #[test]
    fn multicast_all_turns_off_in_both_families() {
        let get = |s: &UdpSocket, level, opt| {
            let mut v: libc::c_int = -1;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: a live socket and an int of the size given.
            let r = unsafe {
                libc::getsockopt(
                    s.as_raw_fd(),
                    level,
                    opt,
                    &mut v as *mut libc::c_int as *mut libc::c_void,
                    &mut len,
                )
            };
            assert_eq!(r, 0, "{}", io::Error::last_os_error());
            v
        };
        let v4 = bind_reuse(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)).unwrap();
        assert_eq!(get(&v4, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL), 1);
        set_multicast_all(&v4, false, false).unwrap();
        assert_eq!(get(&v4, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL), 0);
        let v6 = bind_reuse(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)).unwrap();
        set_multicast_all(&v6, true, false).unwrap();
        assert_eq!(get(&v6, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL), 0);
        // bind_multicast sets it before the bind (or leaves it on)
        for (any, v6) in [
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), false),
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), true),
        ] {
            let (level, opt) = match v6 {
                true => (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL),
                false => (libc::IPPROTO_IP, libc::IP_MULTICAST_ALL),
            };
            let own = bind_multicast(SocketAddr::new(any, 0), false, None).unwrap();
            assert_eq!(get(&own, level, opt), 0);
            let all = bind_multicast(SocketAddr::new(any, 0), true, None).unwrap();
            assert_eq!(get(&all, level, opt), 1);
        }
    }

    /// The device is set before the bind (kernels before 5.7 want
    /// CAP_NET_RAW: skipped without it); a name no interface can have is
    /// refused.
    #[test]
    fn a_multicast_socket_binds_to_its_device() {
        let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0);
        let long = "x".repeat(libc::IFNAMSIZ);
        for bad in ["", long.as_str(), "l\0o"] {
            let e = bind_multicast(any, false, Some(bad)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{bad:?}");
        }
        let s = match bind_multicast(any, false, Some("lo")) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("SKIP: SO_BINDTODEVICE needs CAP_NET_RAW on this kernel");
                return;
            }
            r => r.unwrap(),
        };
        let mut name = [0u8; libc::IFNAMSIZ];
        let mut len = name.len() as libc::socklen_t;
        // SAFETY: a live socket and a buffer of the length passed.
        let rc = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_mut_ptr() as *mut libc::c_void,
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(&name[..2], b"lo");
        assert_eq!(name[2], 0);
    }

    #[test]
    fn reuse_sockets_bind_both_families_twice() {
        for any in [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ] {
            let a = bind_reuse(SocketAddr::new(any, 0)).unwrap();
            let port = a.local_addr().unwrap().port();
            let b = bind_reuse(SocketAddr::new(any, port)).unwrap();
            assert_eq!(b.local_addr().unwrap().port(), port);
            set_multicast_if_v4(&a, Ipv4Addr::UNSPECIFIED).ok();
        }
    }
}
