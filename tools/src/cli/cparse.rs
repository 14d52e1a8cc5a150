//! The C library's number and address parsers, reproduced because the
//! tool's accepted inputs are defined by them: `atoi`/`atol`, `strtoul`
//! and `strtol` with base detection, `inet_aton` (which accepts `1`,
//! `1.2`, `0x01020304`, octal parts and trailing blanks) and `inet_pton`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `strtoul`/`strtol` core: returns (value clamped, negative?, bytes
/// consumed; 0 when no digits). `base` 0 detects 0x/0 prefixes.
fn strto(s: &[u8], base: u32) -> (u64, bool, usize, bool) {
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut base = base;
    if (base == 0 || base == 16)
        && i + 1 < s.len()
        && s[i] == b'0'
        && (s[i + 1] | 0x20) == b'x'
        && s.get(i + 2).map(|c| c.is_ascii_hexdigit()).unwrap_or(false)
    {
        i += 2;
        base = 16;
    } else if base == 0 {
        base = if i < s.len() && s[i] == b'0' { 8 } else { 10 };
    }
    let start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while i < s.len() {
        let d = match s[i] {
            c @ b'0'..=b'9' => (c - b'0') as u32,
            c @ b'a'..=b'z' => (c - b'a') as u32 + 10,
            c @ b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => break,
        };
        if d >= base {
            break;
        }
        match v
            .checked_mul(base as u64)
            .and_then(|x| x.checked_add(d as u64))
        {
            Some(x) => v = x,
            None => {
                overflow = true;
                v = u64::MAX;
            }
        }
        i += 1;
    }
    if i == start {
        return (0, false, 0, false);
    }
    (v, neg, i, overflow)
}

/// `strtoul(s, &end, base)`: (value, end offset). Negative input wraps
/// as in C.
pub fn strtoul(s: &str, base: u32) -> (u64, usize) {
    let (v, neg, end, _) = strto(s.as_bytes(), base);
    (if neg { v.wrapping_neg() } else { v }, end)
}

/// `strtol(s, &end, base)` clamped to i64.
pub fn strtol(s: &str, base: u32) -> (i64, usize) {
    let (v, neg, end, ov) = strto(s.as_bytes(), base);
    let v = if ov || v > i64::MAX as u64 {
        if neg {
            i64::MIN
        } else {
            i64::MAX
        }
    } else if neg {
        -(v as i64)
    } else {
        v as i64
    };
    (v, end)
}

/// `atoi`: `(int) strtol(s, NULL, 10)`.
pub fn atoi(s: &str) -> i32 {
    strtol(s, 10).0 as i32
}

/// `atol`.
pub fn atol(s: &str) -> i64 {
    strtol(s, 10).0
}

/// glibc `inet_aton`.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u32> = Vec::with_capacity(4);
    let mut i = 0;
    let mut val: u64;
    loop {
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        val = 0;
        let mut base = 10;
        if b[i] == b'0' {
            i += 1;
            if i < b.len() && (b[i] | 0x20) == b'x' {
                base = 16;
                i += 1;
            } else {
                base = 8;
            }
        }
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_digit() {
                if base == 8 && (c == b'8' || c == b'9') {
                    return None;
                }
                val = val * base + (c - b'0') as u64;
            } else if base == 16 && c.is_ascii_hexdigit() {
                val = (val << 4) | ((c | 0x20) - b'a' + 10) as u64;
            } else {
                break;
            }
            if val > 0xffff_ffff {
                return None;
            }
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            if parts.len() > 2 || val > 0xff {
                return None;
            }
            parts.push(val as u32);
            i += 1;
        } else {
            break;
        }
    }
    if i < b.len() && !is_space(b[i]) {
        return None;
    }
    let val = val as u32;
    let addr = match parts.len() {
        0 => val,
        1 => {
            if val > 0xff_ffff {
                return None;
            }
            (parts[0] << 24) | val
        }
        2 => {
            if val > 0xffff {
                return None;
            }
            (parts[0] << 24) | (parts[1] << 16) | val
        }
        _ => {
            if val > 0xff {
                return None;
            }
            (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | val
        }
    };
    Some(Ipv4Addr::from(addr))
}

/// `inet_aton`, else `inet_pton(AF_INET6)`.
pub fn parse_inetaddr(s: &str) -> Option<IpAddr> {
    if let Some(a) = inet_aton(s) {
        return Some(IpAddr::V4(a));
    }
    s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aton_forms() {
        assert_eq!(inet_aton("1"), Some(Ipv4Addr::new(0, 0, 0, 1)));
        assert_eq!(inet_aton("1.2"), Some(Ipv4Addr::new(1, 0, 0, 2)));
        assert_eq!(inet_aton("0x01020304"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.4 junk"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("1.1.1.300"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton(""), None);
        assert_eq!(inet_aton("09"), None);
    }

    #[test]
    fn strtol_forms() {
        assert_eq!(strtol("12x", 10), (12, 2));
        assert_eq!(strtol(" -5", 10), (-5, 3));
        assert_eq!(strtol("", 10), (0, 0));
        assert_eq!(strtoul("0x10", 0), (16, 4));
        assert_eq!(strtoul("010", 0), (8, 3));
        assert_eq!(atoi("70000"), 70000);
    }
}
