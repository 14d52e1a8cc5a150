//! The few C library conversions whose exact behaviour shows through the
//! configuration: `atoi`, `inet_aton` and `inet_pton` as glibc does them.

use std::net::{Ipv4Addr, Ipv6Addr};

/// glibc `atoi`: `(int) strtol(s, NULL, 10)`. Leading blanks and a sign are
/// accepted, parsing stops at the first non-digit, an out-of-range value
/// saturates to the 64-bit limit and is then truncated to 32 bits (so
/// `4294967296` is 0 and `99999999999` is 1215752191).
pub fn atoi(s: &[u8]) -> i32 {
    let mut i = s
        .iter()
        .take_while(|&&b| b == b' ' || (b'\t'..=b'\r').contains(&b))
        .count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i128 = 0;
    for &b in s[i..].iter().take_while(|b| b.is_ascii_digit()) {
        v = (v * 10 + i128::from(b - b'0')).min(i128::from(i64::MAX) + 1);
    }
    let v = if neg { -v } else { v };
    let v = v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    v as i32
}

/// `strtoul(s, &end, 0)` on a string that starts with a digit: the value
/// (saturated) and the number of bytes used.
fn strtoul0(s: &[u8]) -> (u128, usize) {
    let (base, mut i) = if s.first() == Some(&b'0') {
        if matches!(s.get(1), Some(b'x') | Some(b'X'))
            && s.get(2).is_some_and(|b| b.is_ascii_hexdigit())
        {
            (16, 2)
        } else {
            (8, 0)
        }
    } else {
        (10, 0)
    };
    let mut v: u128 = 0;
    while let Some(d) = s.get(i).and_then(|&b| (b as char).to_digit(base)) {
        v = (v * u128::from(base) + u128::from(d)).min(u128::from(u64::MAX) + 1);
        i += 1;
    }
    (v, i)
}

/// glibc `inet_aton`: one to four parts, each decimal, octal (leading `0`)
/// or hex (`0x`); the last part fills the remaining bytes. Trailing blanks
/// are allowed, anything else after the number is not.
pub fn inet_aton(s: &[u8]) -> Option<Ipv4Addr> {
    const MAX: [u128; 4] = [0xffff_ffff, 0x00ff_ffff, 0xffff, 0xff];
    let mut parts: Vec<u8> = Vec::with_capacity(3);
    let mut i = 0;
    let val = loop {
        if !s.get(i).is_some_and(|b| b.is_ascii_digit()) {
            return None;
        }
        let (val, n) = strtoul0(&s[i..]);
        if val > 0xffff_ffff {
            return None;
        }
        i += n;
        if s.get(i) == Some(&b'.') {
            if parts.len() > 2 || val > 0xff {
                return None;
            }
            parts.push(val as u8);
            i += 1;
        } else {
            break val;
        }
    };
    match s.get(i) {
        None | Some(0) => {}
        Some(b) if b.is_ascii_whitespace() || *b == 0x0b => {}
        Some(_) => return None,
    }
    if val > MAX[parts.len()] {
        return None;
    }
    let mut word = val as u32;
    for (k, p) in parts.iter().enumerate() {
        word |= u32::from(*p) << (24 - 8 * k);
    }
    Some(Ipv4Addr::from(word))
}

/// glibc `inet_pton(AF_INET, ...)`: exactly four decimal parts, no leading
/// zeros, each at most 255.
pub fn inet_pton4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut octets = 0;
    let mut saw_digit = false;
    let mut cur: u32 = 0;
    for &b in s {
        if b.is_ascii_digit() {
            if saw_digit && cur == 0 {
                return None;
            }
            cur = cur * 10 + u32::from(b - b'0');
            if cur > 255 {
                return None;
            }
            if !saw_digit {
                octets += 1;
                if octets > 4 {
                    return None;
                }
                saw_digit = true;
            }
        } else if b == b'.' && saw_digit {
            if octets == 4 {
                return None;
            }
            out[octets - 1] = cur as u8;
            cur = 0;
            saw_digit = false;
        } else {
            return None;
        }
    }
    if octets < 4 || !saw_digit {
        return None;
    }
    out[3] = cur as u8;
    Some(Ipv4Addr::from(out))
}

/// glibc `inet_pton(AF_INET6, ...)`.
pub fn inet_pton6(s: &[u8]) -> Option<Ipv6Addr> {
    let s = match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    };
    let mut tmp = [0u8; 16];
    let mut tp = 0usize;
    let mut colonp: Option<usize> = None;
    let mut i = 0usize;
    if s.is_empty() {
        return None;
    }
    if s[0] == b':' {
        i = 1;
        if s.get(1) != Some(&b':') {
            return None;
        }
    }
    let mut curtok = i;
    let mut xdigits = 0;
    let mut val: u32 = 0;
    while i < s.len() {
        let ch = s[i];
        i += 1;
        if let Some(d) = (ch as char).to_digit(16) {
            if xdigits == 4 {
                return None;
            }
            val = (val << 4) | d;
            xdigits += 1;
            continue;
        }
        if ch == b':' {
            curtok = i;
            if xdigits == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            } else if i == s.len() {
                return None;
            }
            if tp + 2 > 16 {
                return None;
            }
            tmp[tp] = (val >> 8) as u8;
            tmp[tp + 1] = val as u8;
            tp += 2;
            xdigits = 0;
            val = 0;
            continue;
        }
        if ch == b'.' && tp + 4 <= 16 {
            if let Some(v4) = inet_pton4(&s[curtok..]) {
                tmp[tp..tp + 4].copy_from_slice(&v4.octets());
                tp += 4;
                xdigits = 0;
                break;
            }
        }
        return None;
    }
    if xdigits > 0 {
        if tp + 2 > 16 {
            return None;
        }
        tmp[tp] = (val >> 8) as u8;
        tmp[tp + 1] = val as u8;
        tp += 2;
    }
    if let Some(c) = colonp {
        if tp == 16 {
            return None;
        }
        let n = tp - c;
        tmp.copy_within(c..tp, 16 - n);
        for b in &mut tmp[c..16 - n] {
            *b = 0;
        }
        tp = 16;
    }
    if tp != 16 {
        return None;
    }
    Some(Ipv6Addr::from(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_wraps_like_c() {
        assert_eq!(atoi(b"42"), 42);
        assert_eq!(atoi(b"-1"), -1);
        assert_eq!(atoi(b"+5"), 5);
        assert_eq!(atoi(b"4294967295"), -1);
        assert_eq!(atoi(b"4294967296"), 0);
        assert_eq!(atoi(b"99999999999"), 1_215_752_191);
        assert_eq!(atoi(b"99999999999999999999999"), -1);
        assert_eq!(atoi(b"-99999999999999999999999"), 0);
        assert_eq!(atoi(b"12abc"), 12);
    }

    #[test]
    fn aton_forms() {
        assert_eq!(inet_aton(b"1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton(b"010.1.1.1"), Some(Ipv4Addr::new(8, 1, 1, 1)));
        assert_eq!(inet_aton(b"08.1.1.1"), None);
        assert_eq!(inet_aton(b"300.1.1.1"), None);
        assert_eq!(inet_aton(b"1.2.3.4/24"), None);
        assert_eq!(inet_aton(b"1.2.3.256"), None);
        assert_eq!(inet_aton(b"1"), Some(Ipv4Addr::new(0, 0, 0, 1)));
        assert_eq!(inet_aton(b"1.2.3"), Some(Ipv4Addr::new(1, 2, 0, 3)));
        assert_eq!(inet_aton(b"0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton(b"1.2.3.4.5"), None);
        assert_eq!(inet_aton(b""), None);
    }

    #[test]
    fn pton6_forms() {
        let ok = |s: &str| inet_pton6(s.as_bytes()).map(|a| a.to_string());
        assert_eq!(ok("::1").as_deref(), Some("::1"));
        assert_eq!(ok("ff02::1").as_deref(), Some("ff02::1"));
        assert_eq!(ok("1:2:3:4:5:6:7::").as_deref(), Some("1:2:3:4:5:6:7:0"));
        assert_eq!(ok("::ffff:1.2.3.4").as_deref(), Some("::ffff:1.2.3.4"));
        assert_eq!(ok("1::2:"), None);
        assert_eq!(ok("1:2:3:4:5:6:7:8::"), None);
        assert_eq!(ok(":1"), None);
        assert_eq!(ok("12345::"), None);
        assert_eq!(ok("::1/64"), None);
        assert_eq!(ok("1:2:3:4:5:6:7"), None);
        assert_eq!(ok("1:2:3:4:5:6:7:8"), Some("1:2:3:4:5:6:7:8".into()));
    }
}
