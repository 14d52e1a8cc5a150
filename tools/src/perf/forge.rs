//! `ctperf sync forge`: attacks on an authenticated sync link
//! (`Sync { Authentication { } }`), to check a daemon's set-up and for the
//! tests. Each datagram carries one NEW message for a synthetic flow of
//! its own; only the one marked `accepted` may reach the receiver's
//! cache, each of the others must land in the counter it names
//! (`conntrackd -s network`, block `authentication`).

use std::net::SocketAddr;

use ct_transport::auth::Sealer;
use ct_transport::wire::{DatagramWriter, EmitOpts, Flags, Op, Transport};

use super::fill::synthetic;

/// First synthetic flow index of the forged datagrams (far from what
/// `fill` and `sync source` use by default).
pub const FORGE_BASE: u64 = 9_999_900;

/// One NEW message for synthetic flow `id`, as a datagram.
fn new_message(id: u64) -> Vec<u8> {
    let mut w = DatagramWriter::with_mtu(vec![0u8; 1500], 1500, Transport::Udp);
    let _ = w.push_ct(
        Op::New,
        Flags::default(),
        id as u32,
        &synthetic(id, false, 600),
        &EmitOpts::default(),
    );
    w.as_bytes().to_vec()
}

/// The forged datagrams, in the order they are sent, with the counter
/// each must be refused under (or `accepted`): flows `FORGE_BASE + i`.
pub fn forged_datagrams(key: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let msg = |i: u64| new_message(FORGE_BASE + i);
    let mut right = Sealer::new(key, now);
    let mut wrong = Sealer::new(b"not the key of this link, surely", now);
    let mut v = vec![
        ("without tag", msg(0)),
        ("bad tag", wrong.seal(&msg(1)).to_vec()),
    ];
    let mut tampered = right.seal(&msg(2)).to_vec();
    tampered[12] ^= 0x40; // inside the first message's payload
    v.push(("bad tag", tampered));
    let good = right.seal(&msg(3)).to_vec();
    v.push(("accepted", good.clone()));
    v.push(("replayed", good));
    // One second of counters behind: older than any replay window.
    let mut old = Sealer::new(key, now.saturating_sub(1_000_000_000));
    v.push(("replayed", old.seal(&msg(4)).to_vec()));
    v
}

/// Sends the forged datagrams to `to` (from `bind`, which must be the
/// receiver's configured peer address to get past its peer check), 2 ms
/// apart to keep their order on the receiver's side; returns the kinds.
pub fn forge(
    to: SocketAddr,
    bind: Option<SocketAddr>,
    key: &[u8],
) -> std::io::Result<Vec<&'static str>> {
    let gap = std::time::Duration::from_millis(2);
    super::sync::send_each(to, bind, &forged_datagrams(key), gap)
}
