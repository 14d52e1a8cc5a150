//! The authenticated sync link, an extension of this implementation
//! (conntrackd 1.4.x has nothing of the kind, so it is off unless
//! `Sync { Authentication { KeyFile … } }` is configured on both peers).
//!
//! Every datagram the link sends gets a trailer after its messages:
//!
//! ```text
//!  0       4             8                  16                         32
//!  | "CTA\2" | sender id | counter (u64 BE) | tag: HMAC-SHA256(key, messages ‖ bytes 0..16)[..16] |
//! ```
//!
//! * The tag is HMAC-SHA256 truncated to 128 bits (as RFC 4868 does for
//!   IPsec), from the RustCrypto `hmac` and `sha2` crates; it covers the
//!   messages, so also their FT-FW sequence numbers and flags.
//! * The sender id is a random number each daemon draws at start: a
//!   datagram that carries the receiver's own id is one of its own sent
//!   back at it (reflected by someone on the path, with the peer's
//!   address as source) and is refused. Both peers share one key, so
//!   without it the tag alone could not tell the two directions apart.
//! * The counter is the replay protection. The sender starts it at its
//!   start-up time in Unix nanoseconds and adds one per datagram, so it
//!   keeps growing across restarts of the sender (which restart the
//!   FT-FW sequence); the receiver keeps a sliding window of
//!   `ReplayWindow` counters behind the newest one it accepted (RFC 4303
//!   §3.4.3): an older counter, or one already seen, is a replay. The
//!   window moves only for datagrams whose tag verified.
//! * What it does not protect against: a receiver that restarts forgets
//!   its window, so datagrams of the sender's current run captured before
//!   that restart are accepted again until the sender's own traffic moves
//!   the window past them (FT-FW's resync then corrects the states they
//!   carried). Nothing is encrypted: the link stays readable.
//!
//! Sans-IO like the rest of the crate: [`Sealer::seal`] writes a sealed
//! copy into its own reused buffer, [`Opener::open`] returns the
//! messages of an authentic, fresh datagram as a borrowed slice.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// "CTA" and the trailer version 2.
pub const MAGIC: [u8; 4] = *b"CTA\x02";
/// Bytes of the truncated tag.
pub const TAG_LEN: usize = 16;
/// Bytes the trailer adds to each datagram.
pub const TRAILER_LEN: usize = MAGIC.len() + 4 + 8 + TAG_LEN;
/// Shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// Why a received datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Too short for a trailer, or no trailer magic: sent without
    /// authentication (a peer not configured for it, or noise).
    #[error("datagram without an authentication trailer")]
    Missing,
    /// The tag does not match: forged, corrupted, or another key.
    #[error("authentication tag mismatch")]
    BadTag,
    /// Authentic but already seen, or older than the replay window.
    #[error("replayed datagram (counter {0})")]
    Replayed(u64),
    /// Authentic, but one of our own (its sender id is ours): reflected.
    #[error("our own datagram sent back (reflected)")]
    Reflected,
}

/// Why key material was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Fewer than [`MIN_KEY_LEN`] bytes of key.
    #[error("the key has {0} bytes, at least 16 are needed (e.g. 64 hex digits)")]
    TooShort(usize),
}

/// The key from the contents of a key file, surrounding blanks and
/// newlines ignored: hex digits (an even number of them) are decoded; any
/// other content is used as it is.
pub fn parse_key(contents: &[u8]) -> Result<Vec<u8>, KeyError> {
    let t = contents.trim_ascii();
    let key = if !t.is_empty() && t.len() & 1 == 0 && t.iter().all(u8::is_ascii_hexdigit) {
        t.chunks(2).map(|p| (hex(p[0]) << 4) | hex(p[1])).collect()
    } else {
        // Trimmed too: a newline at the end of one node's file only
        // must not make a different key.
        t.to_vec()
    };
    if key.len() < MIN_KEY_LEN {
        return Err(KeyError::TooShort(key.len()));
    }
    Ok(key)
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// A zero-copy view of a datagram's trailer (smoltcp style: checked
/// construction, then accessors).
#[derive(Clone, Copy, Debug)]
pub struct Trailer<'a> {
    buf: &'a [u8],
}

impl<'a> Trailer<'a> {
    /// The trailer at the end of `datagram`, if it is long enough and
    /// carries the magic.
    pub fn new_checked(datagram: &'a [u8]) -> Result<Trailer<'a>, AuthError> {
        if datagram.len() < TRAILER_LEN {
            return Err(AuthError::Missing);
        }
        let t = Trailer { buf: datagram };
        if t.trailer()[..4] != MAGIC {
            return Err(AuthError::Missing);
        }
        Ok(t)
    }

    fn trailer(&self) -> &'a [u8] {
        &self.buf[self.buf.len() - TRAILER_LEN..]
    }

    /// The messages before the trailer.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[..self.buf.len() - TRAILER_LEN]
    }

    /// The bytes the tag covers (messages, magic, counter).
    pub fn signed(&self) -> &'a [u8] {
        &self.buf[..self.buf.len() - TAG_LEN]
    }

    /// The sender's id.
    pub fn sender(&self) -> u32 {
        let t = self.trailer();
        u32::from_be_bytes(t[4..8].try_into().expect("4 bytes"))
    }

    /// The replay counter.
    pub fn counter(&self) -> u64 {
        let t = self.trailer();
        u64::from_be_bytes(t[8..16].try_into().expect("8 bytes"))
    }

    /// The truncated tag.
    pub fn tag(&self) -> &'a [u8] {
        &self.trailer()[16..]
    }
}

/// Writes `payload ‖ trailer` into `out` (which must hold
/// `payload.len() + TRAILER_LEN` bytes) and returns the length.
pub fn emit(
    mac: &HmacSha256Keyed,
    sender: u32,
    counter: u64,
    payload: &[u8],
    out: &mut [u8],
) -> usize {
    let n = payload.len();
    let total = n + TRAILER_LEN;
    out[..n].copy_from_slice(payload);
    out[n..n + 4].copy_from_slice(&MAGIC);
    out[n + 4..n + 8].copy_from_slice(&sender.to_be_bytes());
    out[n + 8..n + 16].copy_from_slice(&counter.to_be_bytes());
    let mut m = mac.0.clone();
    m.update(&out[..n + 16]);
    let tag = m.finalize().into_bytes();
    out[n + 16..total].copy_from_slice(&tag[..TAG_LEN]);
    total
}

/// The HMAC state after the key was absorbed (cloned per datagram, so
/// the key is not hashed again each time).
#[derive(Clone)]
pub struct HmacSha256Keyed(HmacSha256);

impl HmacSha256Keyed {
    /// The state for `key`.
    pub fn new(key: &[u8]) -> HmacSha256Keyed {
        HmacSha256Keyed(keyed(key))
    }
}

/// Counters of the receiving side: the `authentication` block of
/// `conntrackd -s network` (`replayed` counts our own reflected datagrams
/// too).
pub use ct_core::ctl::stats::AuthCounters as AuthStats;

/// The sending side: seals each datagram with the next counter.
pub struct Sealer {
    mac: HmacSha256Keyed,
    sender: u32,
    counter: u64,
    buf: Vec<u8>,
}

impl Sealer {
    /// A sealer whose first counter is `start` (the daemon passes its
    /// start-up time in Unix nanoseconds).
    pub fn new(key: &[u8], start: u64) -> Sealer {
        Sealer {
            mac: HmacSha256Keyed::new(key),
            sender: 0,
            counter: start,
            buf: Vec::new(),
        }
    }

    /// The sender id its datagrams carry (0 unless set).
    pub fn sender(mut self, id: u32) -> Sealer {
        self.sender = id;
        self
    }

    /// The counter the next datagram gets.
    pub fn next_counter(&self) -> u64 {
        self.counter
    }

    /// `datagram` with its trailer, in a buffer reused from call to call.
    pub fn seal(&mut self, datagram: &[u8]) -> &[u8] {
        self.buf.resize(datagram.len() + TRAILER_LEN, 0);
        let n = emit(
            &self.mac,
            self.sender,
            self.counter,
            datagram,
            &mut self.buf,
        );
        self.counter = self.counter.wrapping_add(1);
        &self.buf[..n]
    }
}

/// The receiving side: verifies tags and refuses replays.
pub struct Opener {
    mac: HmacSha256Keyed,
    window: Window,
    /// Our own sender id: datagrams carrying it are reflected ones.
    own: Option<u32>,
    /// What it accepted and refused.
    pub stats: AuthStats,
}

impl Opener {
    /// An opener with a replay window of `window` counters (rounded up to
    /// a multiple of 64).
    pub fn new(key: &[u8], window: u32) -> Opener {
        Opener {
            mac: HmacSha256Keyed::new(key),
            window: Window::new(window),
            own: None,
            stats: AuthStats::default(),
        }
    }

    /// Refuse datagrams that carry `id`, our own sender id.
    pub fn own(mut self, id: u32) -> Opener {
        self.own = Some(id);
        self
    }

    /// The messages of `datagram` if its tag verifies and its counter is
    /// fresh; counts the outcome either way.
    pub fn open<'a>(&mut self, datagram: &'a [u8]) -> Result<&'a [u8], AuthError> {
        let r = self.check(datagram);
        match r {
            Ok(_) => self.stats.ok += 1,
            Err(AuthError::Missing) => self.stats.missing += 1,
            Err(AuthError::BadTag) => self.stats.bad_tag += 1,
            Err(AuthError::Replayed(_) | AuthError::Reflected) => self.stats.replayed += 1,
        }
        r
    }

    fn check<'a>(&mut self, datagram: &'a [u8]) -> Result<&'a [u8], AuthError> {
        let t = Trailer::new_checked(datagram)?;
        let mut m = self.mac.0.clone();
        m.update(t.signed());
        // Constant-time comparison of the leftmost TAG_LEN bytes.
        m.verify_truncated_left(t.tag())
            .map_err(|_| AuthError::BadTag)?;
        if self.own == Some(t.sender()) {
            return Err(AuthError::Reflected);
        }
        let c = t.counter();
        if !self.window.accept(c) {
            return Err(AuthError::Replayed(c));
        }
        Ok(t.payload())
    }
}

/// The sliding anti-replay window: bit `c % size` stands for counter `c`
/// while `top - size < c <= top`.
#[derive(Clone, Debug)]
pub struct Window {
    top: u64,
    started: bool,
    bits: Vec<u64>,
}

impl Window {
    /// A window of `size` counters (rounded up to a multiple of 64, at
    /// least 64).
    pub fn new(size: u32) -> Window {
        let words = (size.max(64) as usize).div_ceil(64);
        Window {
            top: 0,
            started: false,
            bits: vec![0; words],
        }
    }

    fn size(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn bit(&mut self, c: u64) -> (&mut u64, u64) {
        let i = c % self.size();
        (&mut self.bits[(i / 64) as usize], 1u64 << (i % 64))
    }

    /// Accepts `c` (and remembers it) unless it was seen or is older
    /// than the window.
    pub fn accept(&mut self, c: u64) -> bool {
        if !self.started {
            self.started = true;
            self.top = c;
            let (w, b) = self.bit(c);
            *w |= b;
            return true;
        }
        if c > self.top {
            let ahead = c - self.top;
            if ahead >= self.size() {
                self.bits.iter_mut().for_each(|w| *w = 0);
            } else {
                for x in self.top + 1..c {
                    let (w, b) = self.bit(x);
                    *w &= !b;
                }
            }
            self.top = c;
            let (w, b) = self.bit(c);
            *w |= b;
            return true;
        }
        if self.top - c >= self.size() {
            return false;
        }
        let (w, b) = self.bit(c);
        if *w & b != 0 {
            return false;
        }
        *w |= b;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn sealed_datagrams_open_once() {
        let mut s = Sealer::new(KEY, 1000);
        let mut o = Opener::new(KEY, 128);
        let d = s.seal(b"hello sync").to_vec();
        assert_eq!(d.len(), 10 + TRAILER_LEN);
        assert_eq!(o.open(&d), Ok(&b"hello sync"[..]));
        assert_eq!(o.open(&d), Err(AuthError::Replayed(1000)));
        assert_eq!(s.next_counter(), 1001);
        assert_eq!(
            o.stats,
            AuthStats {
                ok: 1,
                replayed: 1,
                ..AuthStats::default()
            }
        );
    }

    #[test]
    fn forged_and_unauthenticated_are_refused() {
        let mut s = Sealer::new(KEY, 7);
        let mut o = Opener::new(KEY, 64);
        let good = s.seal(b"payload").to_vec();
        // Every single-bit flip is caught (payload, magic, counter, tag).
        for i in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let e = o.open(&bad).unwrap_err();
            assert!(
                matches!(e, AuthError::BadTag | AuthError::Missing),
                "bit {i}: {e:?}"
            );
        }
        assert_eq!(o.open(b"short"), Err(AuthError::Missing));
        assert_eq!(o.open(&[0u8; 100]), Err(AuthError::Missing));
        // Another key.
        let mut other = Sealer::new(b"another key, 16+ bytes long", 8);
        assert_eq!(o.open(other.seal(b"payload")), Err(AuthError::BadTag));
        // The forgeries did not move the window: the genuine one opens.
        assert_eq!(o.open(&good), Ok(&b"payload"[..]));
    }

    #[test]
    fn own_datagrams_sent_back_are_refused() {
        let mut a = Sealer::new(KEY, 100).sender(1);
        let mut b = Sealer::new(KEY, 5).sender(2);
        let mut a_in = Opener::new(KEY, 64).own(1);
        let mine = a.seal(b"from a").to_vec();
        assert_eq!(a_in.open(&mine), Err(AuthError::Reflected));
        // the reflection did not move the window: b's low counters pass
        assert_eq!(a_in.open(b.seal(b"from b")), Ok(&b"from b"[..]));
        assert_eq!(a_in.stats.replayed, 1);
    }

    #[test]
    fn window_accepts_reordering_and_refuses_old() {
        let mut w = Window::new(64);
        assert!(w.accept(100));
        assert!(w.accept(102));
        assert!(w.accept(101));
        assert!(!w.accept(101));
        assert!(w.accept(100 + 64));
        // 100 is now out of the window (top 164, size 64: 101..=164 kept).
        assert!(!w.accept(100));
        assert!(!w.accept(102));
        assert!(w.accept(103));
        assert!(w.accept(10_000));
        assert!(!w.accept(164));
        assert!(w.accept(9_990));
    }

    #[test]
    fn keys_from_files() {
        let hexkey = b"00112233445566778899aabbccddeeff\n";
        assert_eq!(parse_key(hexkey).unwrap()[..3], [0x00, 0x11, 0x22]);
        assert_eq!(parse_key(hexkey).unwrap().len(), 16);
        assert_eq!(parse_key(b"abcd"), Err(KeyError::TooShort(2)));
        assert_eq!(parse_key(b"short text"), Err(KeyError::TooShort(10)));
        let raw = b"a passphrase that is not hex at all";
        assert_eq!(parse_key(raw).unwrap(), raw.to_vec());
        let mut nl = raw.to_vec();
        nl.push(b'\n');
        assert_eq!(
            parse_key(&nl).unwrap(),
            raw.to_vec(),
            "a final newline is no key byte"
        );
    }
}
