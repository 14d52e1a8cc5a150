//! Allocation-free text primitives shared by the output formats: decimal
//! and hexadecimal integers (`%u`, `%llu`, `%d`, `%x`, `%02d`), padded
//! strings (`%-8s`, `%9s`) and addresses exactly as glibc prints them
//! (`inet_ntoa` for IPv4, `inet_ntop(AF_INET6)` for IPv6, including its
//! embedded-IPv4 forms `::a.b.c.d` and `::ffff:a.b.c.d`).

use std::net::IpAddr;

/// `%llu` / `%u`.
pub fn dec(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// `%ld` / `%d`.
pub fn dec_signed(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    dec(out, v.unsigned_abs());
}

/// `%02d` of a non-negative value.
pub fn dec02(out: &mut Vec<u8>, v: u64) {
    if v < 10 {
        out.push(b'0');
    }
    dec(out, v);
}

/// `%x` (lowercase, no padding).
pub fn hex(out: &mut Vec<u8>, mut v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// `%-Ns`: the string, then spaces up to `width`.
pub fn pad_right(out: &mut Vec<u8>, s: &str, width: usize) {
    out.extend_from_slice(s.as_bytes());
    for _ in s.len()..width {
        out.push(b' ');
    }
}

/// `%Ns`: spaces up to `width`, then the string.
pub fn pad_left(out: &mut Vec<u8>, s: &str, width: usize) {
    for _ in s.len()..width {
        out.push(b' ');
    }
    out.extend_from_slice(s.as_bytes());
}

/// Dotted quad (`inet_ntoa`).
pub fn ipv4(out: &mut Vec<u8>, a: [u8; 4]) {
    for (i, b) in a.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        dec(out, u64::from(*b));
    }
}

/// IPv6 text as glibc's `inet_ntop(AF_INET6)` writes it: lowercase hex
/// without leading zeros, the first longest run (≥ 2) of zero groups
/// compressed to `::`, and the last 32 bits in dotted quad when the first
/// 96 bits are zero (`::a.b.c.d`, unless that leaves a single non-zero
/// group as in `::1`) or the address is IPv4-mapped (`::ffff:a.b.c.d`).
/// Rust's `Ipv6Addr` display differs for `::a.b.c.d` (it prints hex).
pub fn ipv6(out: &mut Vec<u8>, a: [u8; 16]) {
    let mut w = [0u16; 8];
    for (i, g) in w.iter_mut().enumerate() {
        *g = u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
    }
    // Longest run of zero groups (first wins on ties), as in glibc.
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let (mut cur_base, mut cur_len) = (usize::MAX, 0usize);
    for (i, &g) in w.iter().enumerate() {
        if g == 0 {
            if cur_base == usize::MAX {
                cur_base = i;
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base != usize::MAX {
            if best_base == usize::MAX || cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
            cur_base = usize::MAX;
        }
    }
    if cur_base != usize::MAX && (best_base == usize::MAX || cur_len > best_len) {
        best_base = cur_base;
        best_len = cur_len;
    }
    if best_base != usize::MAX && best_len < 2 {
        best_base = usize::MAX;
    }
    let in_best = |i: usize| best_base != usize::MAX && i >= best_base && i < best_base + best_len;
    let mut i = 0;
    while i < 8 {
        if in_best(i) {
            if i == best_base {
                out.push(b':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(b':');
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            ipv4(out, [a[12], a[13], a[14], a[15]]);
            return;
        }
        hex(out, u64::from(w[i]));
        i += 1;
    }
    if best_base != usize::MAX && best_base + best_len == 8 {
        out.push(b':');
    }
}

/// An address in the text form of its own family.
pub fn ip(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => ipv4(out, a.octets()),
        IpAddr::V6(a) => ipv6(out, a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn integers() {
        assert_eq!(s(|o| dec(o, 0)), "0");
        assert_eq!(s(|o| dec(o, u64::MAX)), "18446744073709551615");
        assert_eq!(s(|o| dec_signed(o, -12)), "-12");
        assert_eq!(s(|o| dec_signed(o, i64::MIN)), "-9223372036854775808");
        assert_eq!(s(|o| dec02(o, 7)), "07");
        assert_eq!(s(|o| dec02(o, 42)), "42");
        assert_eq!(s(|o| hex(o, 0)), "0");
        assert_eq!(s(|o| hex(o, 0xbeef)), "beef");
        assert_eq!(s(|o| pad_right(o, "tcp", 8)), "tcp     ");
        assert_eq!(s(|o| pad_right(o, "unknownx9", 8)), "unknownx9");
        assert_eq!(s(|o| pad_left(o, "[NEW]", 9)), "    [NEW]");
        assert_eq!(s(|o| pad_left(o, "[DESTROY]", 9)), "[DESTROY]");
    }

    /// Expected strings were produced by glibc's `inet_ntop` (through
    /// Python's `socket.inet_ntop`).
    #[test]
    fn ipv6_matches_glibc() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("::2", "::2"),
            ("::ffff", "::ffff"),
            ("::1:0", "::0.1.0.0"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("1::", "1::"),
            ("1:0:0:1::", "1:0:0:1::"),
            ("0:0:1::", "0:0:1::"),
            ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
            ("2001:db8::1", "2001:db8::1"),
            ("::0.0.1.0", "::100"),
            ("0:0:0:0:0:ffff::", "::ffff:0.0.0.0"),
            ("fe80::1:0:0:1", "fe80::1:0:0:1"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:0:0:2:0:0:3", "1::2:0:0:3"),
            ("::0.0.0.1", "::1"),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
        ];
        for (input, want) in cases {
            let a: Ipv6Addr = input.parse().unwrap();
            assert_eq!(s(|o| ipv6(o, a.octets())), want, "{input}");
        }
    }
}
