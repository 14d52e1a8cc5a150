//! FT-FW against conntrackd 1.4.7: replay the lab captures (UDP and
//! multicast; tests/data/sync-payloads.txt) with our state machine playing
//! one of the two daemons, and require it to send BYTE FOR BYTE the
//! datagrams that daemon sent: same messages in the same order, same
//! sequence numbers (our counter is seeded with the daemon's first
//! number), same HELLO / HELLO_BACK flags, same ACK / NACK ranges, same
//! retransmissions, same batching.
//!
//! How the replay drives our instance (it only supplies what is outside
//! the protocol — local events, the clock and `conntrackd -n`):
//! * a datagram of the other daemon is fed to `on_datagram` if the played
//!   daemon received it. The lab lost packets at the receiver's ingress
//!   (nftables), so the capture holds every datagram sent; which ones were
//!   received is read from the played daemon's own ACKs (acked = received,
//!   NACKed = lost; datagrams never acked or nacked count as received);
//! * before the played daemon's next datagram, every data message in it
//!   whose object is not already in our tx queue becomes a local event
//!   (`on_local`), a RESYNC becomes `request_resync`, and if the datagram
//!   holds more ACK / ALIVE messages than our tx queue, the alive timer is
//!   fired (simulated time jumps to `next_deadline`). Then `transmit` runs
//!   and its datagrams must equal the captured ones. What the state
//!   machine decides itself — window / gap ACKs, NACKs, which objects a
//!   NACK resends, ACK vs ALIVE on the timer, HELLO flags, sequence
//!   numbers, batching — is therefore checked, not supplied.
//! * the current state of an object (`current`) is its content in the
//!   next captured message for it.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use ct_core::table::{ObjRef, Table};
use ct_transport::proto::ftfw::{Apply, Config, Ftfw, Object, TxEntry};
use ct_transport::wire::*;

const FIXTURE: &str = include_str!("data/sync-payloads.txt");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Msg {
    Data { op: Op, flow: ct_core::flow::Flow },
    Ctl(ControlRepr),
}

struct Frame {
    no: u32,
    sender: String,
    payload: Vec<u8>,
    msgs: Vec<Msg>,
}

fn frames(capture: &str) -> Vec<Frame> {
    FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f[0] != capture {
                return None;
            }
            assert_eq!(f[1], "udp");
            let payload = unhex(f[4]);
            let msgs = Datagram::new(&payload)
                .map(|m| match m.unwrap().decode().unwrap() {
                    Decoded::Data(Data::Ct(op, flow)) => Msg::Data { op, flow },
                    Decoded::Data(Data::Exp(..)) => panic!("no expectations expected"),
                    Decoded::Control(c) => Msg::Ctl(c),
                })
                .collect();
            Some(Frame {
                no: f[2].parse().unwrap(),
                sender: f[3].split(':').next().unwrap().to_string(),
                payload,
                msgs,
            })
        })
        .collect()
}

fn key(f: &ct_core::flow::Flow) -> String {
    format!("{:?}/{:?}", f.orig, f.zone)
}

fn first_seq(f: &Frame) -> u32 {
    Message::parse(&f.payload).unwrap().seq()
}

fn seqs(f: &Frame) -> Vec<u32> {
    Datagram::new(&f.payload)
        .map(|m| m.unwrap().seq())
        .collect()
}

fn within(s: u32, from: u32, to: u32) -> bool {
    s.wrapping_sub(from) <= to.wrapping_sub(from)
}

#[derive(Debug, Default)]
struct Outcome {
    compared: usize,
    fed: usize,
    skipped_lost: usize,
    applied: usize,
    /// Distinct flows in the external cache at the end.
    external: usize,
    resync_requests: usize,
    timer_fired: usize,
}

/// Feeds a datagram of the peer; data goes to `external`.
fn feed(
    ft: &mut Ftfw,
    payload: &[u8],
    out: &mut Outcome,
    external: &mut HashMap<String, ct_core::flow::Flow>,
) {
    let errs = ft.on_datagram(payload, &mut |a| match a {
        Apply::Ct(op, flow) => {
            out.applied += 1;
            if op == Op::Delete {
                external.remove(&key(flow));
            } else {
                external.insert(key(flow), *flow);
            }
        }
        Apply::Exp(..) => out.applied += 1,
        Apply::Resync => out.resync_requests += 1,
        Apply::NeedBulk { .. } => panic!("NeedBulk"),
    });
    assert_eq!(errs, 0);
    out.fed += 1;
}

/// How a datagram of the peer is handled in a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defer {
    /// Fed after the next datagram of `me` was compared.
    PastNext,
    /// Fed after the alive timer fired, within the same tx run.
    AfterTimer,
}

/// Replays `capture` with our instance as the daemon at `me`. The order
/// of a capture does not always say in which order a daemon handled a
/// datagram and its own alive timer: when they race (the peer's datagram
/// is already on the wire when the timer fires), the replay is retried
/// with that datagram deferred, first past our next datagram, then to
/// just after the timer within the same tx run. Returns the outcome and
/// the deferrals that were needed.
fn replay(capture: &str, me: &str) -> (Outcome, Vec<(u32, Defer)>) {
    let mut deferred: Vec<(u32, Defer)> = Vec::new();
    loop {
        match replay_once(capture, me, &deferred) {
            Ok(o) => {
                eprintln!("{capture} as {me}: {o:?}, deferred {deferred:?}");
                return (o, deferred);
            }
            Err((msg, Some(c))) if deferred.len() < 8 => {
                match deferred.iter_mut().find(|(n, _)| *n == c) {
                    None => deferred.push((c, Defer::PastNext)),
                    Some((_, d)) if *d == Defer::PastNext => *d = Defer::AfterTimer,
                    Some(_) => panic!("{msg}"),
                }
                eprintln!("{capture} as {me}: retry with {deferred:?} after: {msg}");
            }
            Err((msg, _)) => panic!("{msg}"),
        }
    }
}

/// One replay; on a mismatch, the message and the last peer frame seen
/// since the previous datagram of `me` (if any).
fn replay_once(
    capture: &str,
    me: &str,
    defer: &[(u32, Defer)],
) -> Result<Outcome, (String, Option<u32>)> {
    let frames = frames(capture);
    assert!(!frames.is_empty(), "{capture}");
    // What the played daemon acknowledged / negatively acknowledged.
    let mut acked = Vec::new();
    let mut nacked = Vec::new();
    for f in frames.iter().filter(|f| f.sender == me) {
        for m in &f.msgs {
            if let Msg::Ctl(c) = m {
                if c.flags.contains(Flags::ACK) {
                    acked.push((c.from, c.to));
                } else if c.flags.contains(Flags::NACK) {
                    nacked.push((c.from, c.to));
                }
            }
        }
    }
    let received = |f: &Frame| {
        let ss = seqs(f);
        let hit = |r: &Vec<(u32, u32)>| ss.iter().any(|&s| r.iter().any(|&(a, b)| within(s, a, b)));
        let (a, n) = (hit(&acked), hit(&nacked));
        assert!(!(a && n), "{capture} frame {}: both acked and nacked", f.no);
        !n
    };
    // Object ids and, per object, its content in each frame of `me`.
    let mut ids: HashMap<String, ObjRef> = HashMap::new();
    let mut seen: HashMap<ObjRef, Vec<(usize, Op, ct_core::flow::Flow)>> = HashMap::new();
    for (i, f) in frames.iter().enumerate().filter(|(_, f)| f.sender == me) {
        for m in &f.msgs {
            if let Msg::Data { op, flow } = m {
                let n = ObjRef::new(Table::V4, ids.len() as u32, 0);
                let id = *ids.entry(key(flow)).or_insert(n);
                seen.entry(id).or_default().push((i, *op, *flow));
            }
        }
    }
    let my_first = frames.iter().find(|f| f.sender == me).map(first_seq);
    let unix = my_first.expect("the played side sent something");

    let t0 = Instant::now();
    let mut now = t0;
    // 1.4.7 does not send again what its peer acknowledged past (a lost
    // NACK leaves a hole); ours does, every second: off here, so that the
    // rest of the wire can be compared with 1.4.7's.
    let mut ft = Ftfw::new(
        Config {
            resend_skipped: false,
            ..Config::default()
        },
        t0,
    );
    let mut produced: VecDeque<Vec<u8>> = VecDeque::new();
    let mut out = Outcome::default();
    let mut external: HashMap<String, ct_core::flow::Flow> = HashMap::new();
    let mut held: Vec<&Frame> = Vec::new();
    let mut held_timer: Vec<&Frame> = Vec::new();
    let mut fed_since: Option<u32> = None;
    for (i, f) in frames.iter().enumerate() {
        match defer.iter().find(|(n, _)| *n == f.no) {
            Some((_, Defer::PastNext)) => {
                fed_since = Some(f.no);
                held.push(f);
                continue;
            }
            Some((_, Defer::AfterTimer)) => {
                fed_since = Some(f.no);
                held_timer.push(f);
                continue;
            }
            None => {}
        }
        if f.sender != me {
            if received(f) {
                fed_since = Some(f.no);
                feed(&mut ft, &f.payload, &mut out, &mut external);
            } else {
                out.skipped_lost += 1;
            }
            continue;
        }
        if produced.is_empty() {
            // Supply the local stimuli this datagram needs.
            let queued: Vec<TxEntry> = ft.tx_entries().collect();
            let queued_ctl = queued
                .iter()
                .filter(|e| matches!(e, TxEntry::Control { flags, .. } if !flags.contains(Flags::RESYNC)))
                .count();
            let mut ctl = 0;
            for m in &f.msgs {
                match m {
                    Msg::Data { flow, .. } => {
                        let id = ids[&key(flow)];
                        if !queued.contains(&TxEntry::Object(id)) {
                            ft.on_local(id);
                        }
                    }
                    Msg::Ctl(c) if c.flags.contains(Flags::RESYNC) => {
                        let q = queued.iter().any(|e| {
                            matches!(e, TxEntry::Control { flags, .. } if flags.contains(Flags::RESYNC))
                        });
                        if !q {
                            ft.request_resync();
                        }
                    }
                    Msg::Ctl(_) => ctl += 1,
                }
            }
            if ctl > queued_ctl {
                now = now.max(ft.next_deadline());
                ft.on_timer(now);
                out.timer_fired += 1;
            }
            for h in held_timer.drain(..) {
                if received(h) {
                    feed(&mut ft, &h.payload, &mut out, &mut external);
                }
            }
            let cursor = i;
            ft.transmit(
                now,
                unix,
                &mut |obj, cur| {
                    let (_, op, flow) = seen
                        .get(&obj)
                        .and_then(|v| v.iter().find(|(j, _, _)| *j >= cursor))?;
                    cur.flow = *flow;
                    Some(Object::Ct(*op))
                },
                &mut |d| produced.push_back(d.to_vec()),
            );
            // Released objects are only reported; the replay keeps none.
            ft.drain_released().for_each(drop);
        }
        let Some(got) = produced.pop_front() else {
            return Err((
                format!("{capture} frame {}: we sent nothing", f.no),
                fed_since,
            ));
        };
        if got != f.payload {
            let ours: Vec<String> = Datagram::new(&got)
                .map(|m| {
                    let m = m.unwrap();
                    format!("{:?}", (m.msg_type().0, m.flags().0, m.seq(), m.control()))
                })
                .collect();
            return Err((
                format!(
                    "{capture} frame {} ({me}): ours {:?}\n captured {:?}\n{:?}",
                    f.no, ours, f.msgs, ft
                ),
                fed_since,
            ));
        }
        out.compared += 1;
        fed_since = None;
        for h in held.drain(..) {
            if received(h) {
                feed(&mut ft, &h.payload, &mut out, &mut external);
            }
        }
    }
    out.external = external.len();
    if !produced.is_empty() {
        return Err((
            format!("{capture}: {} extra datagrams", produced.len()),
            None,
        ));
    }
    Ok(out)
}

#[test]
fn replay_ftfw_udp_idle_both_sides() {
    let (a, da) = replay("ftfw-udp-idle.pcap", "10.77.1.1");
    let (b, db) = replay("ftfw-udp-idle.pcap", "10.77.1.2");
    assert!(da.is_empty() && db.is_empty());
    assert_eq!(a.compared + b.compared, 15);
}

#[test]
fn replay_ftfw_udp_both_sides() {
    let (a, da) = replay("ftfw-udp.pcap", "10.77.1.1");
    let (b, db) = replay("ftfw-udp.pcap", "10.77.1.2");
    assert!(da.is_empty() && db.is_empty());
    assert_eq!(a.resync_requests, 1);
    assert!(b.applied >= 36);
    assert_eq!(a.compared + b.compared, frames("ftfw-udp.pcap").len());
}

#[test]
fn replay_ftfw_mcast_both_sides() {
    let (a, da) = replay("ftfw-mcast.pcap", "10.77.1.1");
    let (b, db) = replay("ftfw-mcast.pcap", "10.77.1.2");
    assert!(da.is_empty() && db.is_empty());
    assert_eq!(a.compared + b.compared, frames("ftfw-mcast.pcap").len());
}

#[test]
fn replay_ftfw_udp_loss30_both_sides() {
    let (a, da) = replay("ftfw-udp-loss30.pcap", "10.77.1.1");
    let (b, db) = replay("ftfw-udp-loss30.pcap", "10.77.1.2");
    // Arrival-vs-timer races of the real daemons (see `replay`).
    assert!(da.len() + db.len() <= 4, "{da:?} {db:?}");
    assert!(a.skipped_lost > 0 && b.skipped_lost > 0);
    // fw2 got all 300 entries despite 30 % loss each way, as 1.4.7 did.
    assert_eq!(b.external, 300);
    assert_eq!(
        a.compared + b.compared,
        frames("ftfw-udp-loss30.pcap").len()
    );
}
