//! Conversion between `std::net::SocketAddr` and the kernel's
//! `sockaddr_in`/`sockaddr_in6`, without allocation.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Room for any address the reactor passes to or receives from the
/// kernel (IPv4, IPv6, netlink).
pub(crate) type RawAddr = libc::sockaddr_in6;

/// An all-zero [`RawAddr`].
pub(crate) fn zeroed() -> RawAddr {
    // SAFETY: sockaddr_in6 is a plain C struct; all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Encodes `a` into `out`; returns the length to pass to the kernel.
pub(crate) fn encode(a: &SocketAddr, out: &mut RawAddr) -> libc::socklen_t {
    *out = zeroed();
    match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in (16 bytes) fits in sockaddr_in6 (28 bytes);
            // both are plain C structs and the write is unaligned-safe.
            unsafe {
                std::ptr::write_unaligned(out as *mut RawAddr as *mut libc::sockaddr_in, sin)
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = v6.port().to_be();
            out.sin6_flowinfo = v6.flowinfo();
            out.sin6_addr.s6_addr = v6.ip().octets();
            out.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Decodes the first `len` bytes of a kernel address; `None` for
/// families other than IPv4/IPv6 (netlink, unix) or short input.
pub(crate) fn decode(b: &[u8]) -> Option<SocketAddr> {
    if b.len() < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([b[0], b[1]]) as i32;
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    match family {
        libc::AF_INET if b.len() >= 8 => {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port(b))))
        }
        libc::AF_INET6 if b.len() >= 28 => {
            let flow = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(o),
                port(b),
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

/// Decodes a [`RawAddr`] the kernel filled in with `len` valid bytes.
pub(crate) fn decode_raw(a: &RawAddr, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = (len as usize).min(std::mem::size_of::<RawAddr>());
    // SAFETY: a is a live sockaddr_in6; viewing its bytes is always valid.
    let bytes = unsafe { std::slice::from_raw_parts(a as *const RawAddr as *const u8, len) };
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in ["127.0.0.1:4242", "[::1]:7", "[fe80::1%3]:65535"] {
            let a: SocketAddr = s.parse().unwrap();
            let mut raw = zeroed();
            let len = encode(&a, &mut raw);
            assert_eq!(decode_raw(&raw, len), Some(a), "{s}");
        }
        assert_eq!(decode(&[16, 0, 0, 0]), None); // AF_NETLINK
    }
}
