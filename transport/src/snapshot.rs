//! The external-cache snapshot of a warm restart (an extension:
//! `Sync { Snapshot { Path … Interval … } }`), as an emit/parse pair over
//! caller-owned bytes (the daemon maps the file with memmap2).
//!
//! ```text
//!  0        8            16        24            32    40     44      48                               80
//!  | magic  | written at | entries | payload len | seq | lane | lanes | SHA-256(bytes 0..48 ‖ payload) |
//!  payload: one sync message per entry (the 1.4.x wire codec, NEW, with
//!           the timeout and the TCP window scales), back to back
//! ```
//!
//! Integers are big-endian; the magic is `CTSNAP\0` and the format
//! version 2. The hash makes a torn or damaged file detectable; the
//! daemon also writes to a temporary file, syncs it and renames it, so a
//! crash leaves the previous snapshot whole.
//!
//! [`Stamp`]: which flows the file speaks for. A daemon with lanes writes
//! one file per lane, each with that lane's share of the flows (lane
//! `lane` of `lanes` by `ct_core::netlink::lanes::lane_of`), and `seq`
//! orders the files of all runs: for a flow in a lane's share, the file
//! with the highest `seq` whose share holds it says whether the flow is
//! there, and in which state. Version 1 files (a 64-byte header, bytes
//! 32..64 the hash) are still read: they speak only for the flows they
//! hold, with `seq` 0.

use ct_core::flow::Flow;
use sha2::{Digest, Sha256};

use crate::wire::{emit_ct, Data, Datagram, Decoded, EmitOpts, Flags, Op};

/// Magic and format version.
pub const MAGIC: [u8; 8] = *b"CTSNAP\x00\x02";
/// The magic of version 1 (read, not written).
pub const MAGIC_V1: [u8; 8] = *b"CTSNAP\x00\x01";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 80;
/// Bytes before the payload in version 1.
pub const HEADER_LEN_V1: usize = 64;

/// Which flows a snapshot speaks for, and its place among snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Orders snapshots: higher is newer (0: unknown).
    pub seq: u64,
    /// The writer's lane.
    pub lane: u32,
    /// The lanes sharing the flows when it was written; 0 when the file
    /// speaks only for the flows it holds.
    pub lanes: u32,
}
/// Largest message one entry takes (the writer's room check).
pub const MAX_ENTRY_LEN: usize = 512;

/// Everything is kept: the timeout and the TCP window scales.
const OPTS: EmitOpts = EmitOpts {
    commit_timeout: false,
    tcp_window_tracking: true,
};

/// Why a snapshot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("shorter than its header")]
    TooShort,
    #[error("not a snapshot (bad magic or version)")]
    BadMagic,
    #[error("payload length {claimed} does not match the file ({actual} bytes)")]
    BadLength { claimed: u64, actual: u64 },
    #[error("checksum mismatch (torn or damaged file)")]
    BadHash,
    #[error("entry {0} does not decode")]
    BadEntry(u64),
}

/// Builds a snapshot in a growing buffer: entries first, then
/// [`SnapshotWriter::finish`] fills the header and the hash. It is
/// `Send`: the daemon encodes in its loop and finishes and writes the
/// file in another thread.
pub struct SnapshotWriter {
    buf: Vec<u8>,
    entries: u64,
}

impl Default for SnapshotWriter {
    fn default() -> Self {
        SnapshotWriter::with_capacity(0)
    }
}

impl SnapshotWriter {
    /// An empty snapshot with room for about `entries` entries.
    pub fn with_capacity(entries: usize) -> SnapshotWriter {
        let mut buf = Vec::with_capacity(HEADER_LEN + entries * 80);
        buf.resize(HEADER_LEN, 0);
        SnapshotWriter { buf, entries: 0 }
    }

    /// Appends one flow; false (and nothing written) when its message
    /// would exceed [`MAX_ENTRY_LEN`].
    pub fn push(&mut self, f: &Flow) -> bool {
        let at = self.buf.len();
        self.buf.resize(at + MAX_ENTRY_LEN, 0);
        let r = emit_ct(
            &mut self.buf[at..],
            Op::New,
            Flags::default(),
            self.entries as u32,
            f,
            &OPTS,
        );
        match r {
            Ok(n) => {
                self.buf.truncate(at + n);
                self.entries += 1;
                true
            }
            Err(_) => {
                self.buf.truncate(at);
                false
            }
        }
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Fills the header; returns the whole snapshot.
    pub fn finish(mut self, written_at: u64, stamp: Stamp) -> Vec<u8> {
        fill_header(&mut self.buf, self.entries, written_at, stamp);
        self.buf
    }
}

/// SHA-256 over the header's fields (all but the hash) and the payload;
/// `hash_at` is where the hash starts (48, or 32 in version 1), the
/// payload `header` bytes in.
fn digest(file: &[u8], hash_at: usize, header: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&file[..hash_at]);
    h.update(&file[header..]);
    h.finalize().into()
}

/// Fills the header of `file` (HEADER_LEN bytes, then the payload).
fn fill_header(file: &mut [u8], entries: u64, written_at: u64, stamp: Stamp) {
    let payload_len = (file.len() - HEADER_LEN) as u64;
    file[..8].copy_from_slice(&MAGIC);
    file[8..16].copy_from_slice(&written_at.to_be_bytes());
    file[16..24].copy_from_slice(&entries.to_be_bytes());
    file[24..32].copy_from_slice(&payload_len.to_be_bytes());
    file[32..40].copy_from_slice(&stamp.seq.to_be_bytes());
    file[40..44].copy_from_slice(&stamp.lane.to_be_bytes());
    file[44..48].copy_from_slice(&stamp.lanes.to_be_bytes());
    let d = digest(file, 48, HEADER_LEN);
    file[48..80].copy_from_slice(&d);
}

/// A snapshot around `payload` as it is (messages already encoded): the
/// header with `entries`, `stamp` and a valid hash. For tests and fuzzing.
pub fn wrap(payload: &[u8], entries: u64, written_at: u64, stamp: Stamp) -> Vec<u8> {
    let mut file = vec![0u8; HEADER_LEN];
    file.extend_from_slice(payload);
    fill_header(&mut file, entries, written_at, stamp);
    file
}

/// A version 1 snapshot around `payload` (what the daemon wrote before
/// [`Stamp`]s). For tests and fuzzing.
pub fn wrap_v1(payload: &[u8], entries: u64, written_at: u64) -> Vec<u8> {
    let mut file = vec![0u8; HEADER_LEN_V1];
    file.extend_from_slice(payload);
    file[..8].copy_from_slice(&MAGIC_V1);
    file[8..16].copy_from_slice(&written_at.to_be_bytes());
    file[16..24].copy_from_slice(&entries.to_be_bytes());
    file[24..32].copy_from_slice(&(payload.len() as u64).to_be_bytes());
    let d = digest(&file, 32, HEADER_LEN_V1);
    file[32..64].copy_from_slice(&d);
    file
}

/// A checked view of a snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    buf: &'a [u8],
    /// Bytes before the payload (version 2 or 1).
    header: usize,
}

impl<'a> Snapshot<'a> {
    /// Checks magic, length and hash.
    pub fn new_checked(buf: &'a [u8]) -> Result<Snapshot<'a>, SnapshotError> {
        if buf.len() < 8 {
            return Err(SnapshotError::TooShort);
        }
        let (header, hash_at) = if buf[..8] == MAGIC {
            (HEADER_LEN, 48)
        } else if buf[..8] == MAGIC_V1 {
            (HEADER_LEN_V1, 32)
        } else {
            return Err(SnapshotError::BadMagic);
        };
        if buf.len() < header {
            return Err(SnapshotError::TooShort);
        }
        let s = Snapshot { buf, header };
        let claimed = s.u64_at(24);
        let actual = (buf.len() - header) as u64;
        if claimed != actual {
            return Err(SnapshotError::BadLength { claimed, actual });
        }
        if digest(buf, hash_at, header) != buf[hash_at..hash_at + 32] {
            return Err(SnapshotError::BadHash);
        }
        Ok(s)
    }

    /// The file's [`Stamp`] (version 1: all zero).
    pub fn stamp(&self) -> Stamp {
        if self.header == HEADER_LEN_V1 {
            return Stamp::default();
        }
        let u32_at =
            |at: usize| u32::from_be_bytes(self.buf[at..at + 4].try_into().expect("4 bytes"));
        Stamp {
            seq: self.u64_at(32),
            lane: u32_at(40),
            lanes: u32_at(44),
        }
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_be_bytes(self.buf[at..at + 8].try_into().expect("8 bytes"))
    }

    /// When it was written (Unix seconds).
    pub fn written_at(&self) -> u64 {
        self.u64_at(8)
    }

    /// How many entries it holds.
    pub fn entries(&self) -> u64 {
        self.u64_at(16)
    }

    /// Calls `f` with each flow, in the order written; stops at the first
    /// entry that does not decode.
    pub fn for_each(&self, mut f: impl FnMut(Flow)) -> Result<u64, SnapshotError> {
        let mut n = 0;
        for m in Datagram::stream(&self.buf[self.header..]) {
            match m.map(|m| m.decode()) {
                Ok(Ok(Decoded::Data(Data::Ct(_, flow)))) => f(flow),
                _ => return Err(SnapshotError::BadEntry(n)),
            }
            n += 1;
        }
        if n != self.entries() {
            return Err(SnapshotError::BadEntry(n));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_core::flow::{Tuple, AF_INET};
    use std::net::{IpAddr, Ipv4Addr};

    fn flow(i: u32) -> Flow {
        let ip = |a: u32| Some(IpAddr::V4(Ipv4Addr::from(a)));
        Flow {
            family: AF_INET,
            orig: Some(Tuple {
                src: ip(0x0a00_0000 + i),
                dst: ip(0x0aff_fffe),
                l4proto: Some(17),
                src_port: Some(1000 + i as u16),
                dst_port: Some(53),
                ..Tuple::default()
            }),
            status: Some(0xe),
            timeout: Some(120 + i),
            ..Flow::default()
        }
    }

    fn snapshot(n: u32) -> Vec<u8> {
        let mut w = SnapshotWriter::with_capacity(n as usize);
        for i in 0..n {
            assert!(w.push(&flow(i)));
        }
        w.finish(1_800_000_000, STAMP)
    }

    const STAMP: Stamp = Stamp {
        seq: 7,
        lane: 1,
        lanes: 3,
    };

    #[test]
    fn round_trip() {
        let buf = snapshot(100);
        let s = Snapshot::new_checked(&buf).unwrap();
        assert_eq!((s.entries(), s.written_at()), (100, 1_800_000_000));
        assert_eq!(s.stamp(), STAMP);
        let mut got = Vec::new();
        assert_eq!(s.for_each(|f| got.push(f)), Ok(100));
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.orig, flow(i as u32).orig);
            assert_eq!(f.timeout, Some(120 + i as u32));
        }
        assert_eq!(Snapshot::new_checked(&snapshot(0)).unwrap().entries(), 0);
    }

    #[test]
    fn version_1_is_read_without_a_stamp() {
        let v2 = snapshot(5);
        let v1 = wrap_v1(&v2[HEADER_LEN..], 5, 1_700_000_000);
        let s = Snapshot::new_checked(&v1).unwrap();
        assert_eq!(
            (s.entries(), s.written_at(), s.stamp()),
            (5, 1_700_000_000, Stamp::default())
        );
        assert_eq!(s.for_each(|_| {}), Ok(5));
        let mut b = v1.clone();
        b[40] ^= 1;
        assert_eq!(
            Snapshot::new_checked(&b).unwrap_err(),
            SnapshotError::BadHash
        );
    }

    #[test]
    fn damage_is_detected() {
        let buf = snapshot(10);
        assert_eq!(
            Snapshot::new_checked(&buf[..30]).unwrap_err(),
            SnapshotError::TooShort
        );
        // Torn: the tail is missing.
        assert!(matches!(
            Snapshot::new_checked(&buf[..buf.len() - 7]).unwrap_err(),
            SnapshotError::BadLength { .. }
        ));
        for at in [0usize, 9, 20, 33, 42, 46, 60, HEADER_LEN + 3, buf.len() - 1] {
            let mut b = buf.clone();
            b[at] ^= 0x10;
            assert!(Snapshot::new_checked(&b).is_err(), "byte {at}");
        }
    }
}
