//! The order in which conntrackd 1.4.7 lists a cache (`-i`, `-e`): its
//! hash table's buckets in turn, each newest entry first (`list_add` at
//! the head). A bucket is `jhash2` (the kernel's old Jenkins hash, initval
//! 0) of the original tuple and the zone, scaled to `HashSize` by a
//! multiply (`cache_hash4_ct` / `cache_hash6_ct`).

use crate::flow::{Flow, Tuple, AF_INET6};

/// The kernel's old `__jhash_mix`.
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 13);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 8);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 13);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 12);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 16);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 5);
    *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> 3);
    *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << 10);
    *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> 15);
}

/// 1.4.7's `jhash2` (include/jhash.h).
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    const GOLDEN: u32 = 0x9e37_79b9;
    let (mut a, mut b, mut c) = (GOLDEN, GOLDEN, initval);
    let mut rest = k;
    while rest.len() >= 3 {
        a = a.wrapping_add(rest[0]);
        b = b.wrapping_add(rest[1]);
        c = c.wrapping_add(rest[2]);
        mix(&mut a, &mut b, &mut c);
        rest = &rest[3..];
    }
    c = c.wrapping_add((k.len() as u32).wrapping_mul(4));
    if rest.len() == 2 {
        b = b.wrapping_add(rest[1]);
    }
    if !rest.is_empty() {
        a = a.wrapping_add(rest[0]);
    }
    mix(&mut a, &mut b, &mut c);
    c
}

/// Sorts a listing, each entry as (bucket, created, seq, what): buckets
/// in turn, the newest entry first (created later, then made later).
pub fn sort_listing<T>(v: &mut [(u32, u32, u32, T)]) {
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
}

/// The bucket of `f` in 1.4.7's cache of `hashsize` buckets: the words of
/// `cache_hash4_ct` / `cache_hash6_ct` (addresses and ports as they lie
/// in memory, in network order, 0 for an entry without ports such as
/// ICMP's; the family and the protocol; the zone), hashed and scaled.
pub fn bucket(f: &Flow, hashsize: u32) -> u32 {
    let o = f.orig.unwrap_or_default();
    tuple_bucket(f.family, &o, Some(f.zone.unwrap_or(0)), hashsize)
}

/// The bucket of expectation `e` in 1.4.7's expectation cache of
/// `hashsize` buckets: its master's words, as `cache_hash4_exp` /
/// `cache_hash6_exp` (no zone).
pub fn exp_bucket(e: &crate::flow::Expect, hashsize: u32) -> u32 {
    let m = e.master.unwrap_or_default();
    tuple_bucket(m.family(), &m, None, hashsize)
}

/// The words both hashes share (source, destination, family and
/// protocol, ports), then the zone when there is one, hashed with initval
/// 0 and scaled to `hashsize` by a multiply.
fn tuple_bucket(family: u8, t: &Tuple, zone: Option<u16>, hashsize: u32) -> u32 {
    let word = |b: &[u8]| u32::from_ne_bytes(b.try_into().unwrap_or_default());
    let be16 = |v: Option<u16>| u16::from_ne_bytes(v.unwrap_or(0).to_be_bytes());
    // (libnetfilter_conntrack reads an attribute that is not set, as
    // the ports of an ICMP entry, as 0)
    let proto = u32::from(family) << 16 | u32::from(t.l4proto.unwrap_or(0));
    let ports = u32::from(be16(t.src_port)) << 16 | u32::from(be16(t.dst_port));
    let mut a = [0u32; 11];
    let mut n = 0;
    let mut push = |w: u32| {
        a[n] = w;
        n += 1;
    };
    if family == AF_INET6 {
        for addr in [addr16(t.src), addr16(t.dst)] {
            for c in addr.chunks(4) {
                push(word(c));
            }
        }
    } else {
        push(word(&addr4(t.src)));
        push(word(&addr4(t.dst)));
    }
    push(proto);
    push(ports);
    if let Some(z) = zone {
        push(u32::from(z));
    }
    ((u64::from(jhash2(&a[..n], 0)) * u64::from(hashsize)) >> 32) as u32
}

fn addr4(a: Option<std::net::IpAddr>) -> [u8; 4] {
    match a {
        Some(std::net::IpAddr::V4(v)) => v.octets(),
        _ => [0; 4],
    }
}

fn addr16(a: Option<std::net::IpAddr>) -> [u8; 16] {
    match a {
        Some(std::net::IpAddr::V6(v)) => v.octets(),
        _ => [0; 16],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Tuple, AF_INET};
    use crate::table::Mirror;

    fn flow(i: u32, six: bool) -> Flow {
        let (src, dst): (std::net::IpAddr, std::net::IpAddr) = if six {
            (
                format!("2001:db8::{i:x}").parse().unwrap(),
                "2001:db8::ffff".parse().unwrap(),
            )
        } else {
            (
                format!("10.0.{}.{}", i >> 8, i & 255).parse().unwrap(),
                "10.9.9.9".parse().unwrap(),
            )
        };
        Flow {
            family: if six { AF_INET6 } else { AF_INET },
            orig: Some(Tuple {
                src: Some(src),
                dst: Some(dst),
                l4proto: Some(17),
                src_port: Some(1000 + i as u16),
                dst_port: Some(53),
                ..Tuple::default()
            }),
            ..Flow::default()
        }
    }

    /// A cache is listed bucket by bucket, each newest first (records
    /// made in one second: in the order they were made, both families
    /// mixed), and the swept flows of a resync come in that order too.
    #[test]
    fn buckets_in_turn_newest_first() {
        let mut m = Mirror::new(64, 1 << 10);
        let flows: Vec<Flow> = (0..40).map(|i| flow(i, i % 3 == 0)).collect();
        for f in &flows {
            m.cache.upsert(f, 7, 0);
        }
        let made = |f: &Flow| flows.iter().position(|g| g.orig == f.orig).unwrap();
        let mut listed = Vec::new();
        m.cache
            .snapshot()
            .for_each_c_order(4, |f, _, _| listed.push((bucket(&f, 4), made(&f))));
        assert_eq!(listed.len(), 40);
        for w in listed.windows(2) {
            assert!(
                w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 > w[1].1),
                "{w:?}"
            );
        }
        m.begin_resync();
        let swept: Vec<usize> = m.end_resync_in_c_order(4).iter().map(made).collect();
        assert_eq!(swept, listed.iter().map(|x| x.1).collect::<Vec<_>>());
    }

    /// Values of 1.4.7's jhash2 (include/jhash.h, the kernel's old
    /// lookup2 Jenkins hash), computed with the C function.
    #[test]
    fn jhash2_as_the_c_function() {
        assert_eq!(jhash2(&[], 0), 3_175_731_469);
        assert_eq!(jhash2(&[1], 0), 4_203_467_432);
        assert_eq!(jhash2(&[1, 2, 3, 4, 5], 0), 4_196_703_621);
    }
}
