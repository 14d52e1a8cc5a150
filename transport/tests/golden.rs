//! Golden tests against real conntrackd 1.4.7 traffic: every UDP datagram
//! and every TCP stream of the lab captures (tests/data/sync-payloads.txt,
//! extracted by tests/data/extract.py) decodes without error, every
//! message re-encodes to the same bytes (CT messages from the decoded
//! `Flow` with the senders' settings, control messages from the decoded
//! header / from / to), every UDP datagram is rebuilt byte for byte by the
//! `DatagramWriter` at MTU 1500, and the 1.4.7 batching rule holds.

use std::collections::BTreeMap;

use ct_transport::wire::*;

const FIXTURE: &str = include_str!("data/sync-payloads.txt");

/// The lab daemons ran without CommitTimeout and without TCPWindowTracking
/// (every CT message carries NTA_TIMEOUT, none carries a window scale).
const SENDER: EmitOpts = EmitOpts {
    commit_timeout: false,
    tcp_window_tracking: false,
};

/// Messages per capture, as `syncdecode.py --summary` counts them.
const EXPECTED: [(&str, usize); 11] = [
    ("alarm-mcast.pcap", 42),
    ("alarm-tcp.pcap", 43),
    ("alarm-udp.pcap", 42),
    ("ftfw-mcast.pcap", 52),
    ("ftfw-tcp.pcap", 52),
    ("ftfw-udp-idle.pcap", 15),
    ("ftfw-udp-loss30.pcap", 600),
    ("ftfw-udp.pcap", 52),
    ("notrack-mcast.pcap", 51),
    ("notrack-tcp.pcap", 53),
    ("notrack-udp.pcap", 52),
];

struct Line<'a> {
    capture: &'a str,
    tcp: bool,
    frame: u32,
    flow: &'a str,
    payload: Vec<u8>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn lines() -> Vec<Line<'static>> {
    FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 5, "bad fixture line {l}");
            Line {
                capture: f[0],
                tcp: f[1] == "tcp",
                frame: f[2].parse().unwrap(),
                flow: f[3],
                payload: unhex(f[4]),
            }
        })
        .collect()
}

#[derive(Default, Debug)]
struct Count {
    units: usize,
    messages: usize,
    ct: usize,
    control: usize,
}

/// Decodes one framed message and checks that re-encoding reproduces it.
fn verify(m: &Message, what: &str, c: &mut Count) {
    let decoded = m
        .decode()
        .unwrap_or_else(|e| panic!("{what}: {e} in {:02x?}", m.as_bytes()));
    let mut out = [0u8; 4096];
    let n = match &decoded {
        Decoded::Data(Data::Ct(op, flow)) => {
            c.ct += 1;
            emit_ct(&mut out, *op, m.flags(), m.seq(), flow, &SENDER)
        }
        Decoded::Data(Data::Exp(op, exp)) => {
            emit_exp(&mut out, *op, m.flags(), m.seq(), exp, &SENDER)
        }
        Decoded::Control(ctl) => {
            c.control += 1;
            assert_eq!(ctl.flags, m.flags());
            ctl.emit(&mut out)
        }
    }
    .unwrap();
    assert_eq!(
        &out[..n],
        m.as_bytes(),
        "{what}: re-encoding differs, decoded {decoded:?}"
    );
    c.messages += 1;
}

#[test]
fn every_capture_message_roundtrips_byte_for_byte() {
    let mut counts: BTreeMap<&str, Count> = BTreeMap::new();
    let mut streams: BTreeMap<(&str, &str), Vec<u8>> = BTreeMap::new();
    for l in lines() {
        let c = counts.entry(l.capture).or_default();
        let what = format!("{} frame {}", l.capture, l.frame);
        if l.tcp {
            // Reassemble the stream of this direction and take every
            // complete message, keeping a partial one for the next segment.
            let buf = streams.entry((l.capture, l.flow)).or_default();
            buf.extend_from_slice(&l.payload);
            let mut d = Datagram::stream(buf);
            for m in d.by_ref() {
                verify(&m.unwrap_or_else(|e| panic!("{what}: {e}")), &what, c);
            }
            let used = d.consumed();
            buf.drain(..used);
            c.units += 1;
            assert!(l.payload.len() < datagram_limit(1500, Transport::Tcp) + 1);
            continue;
        }
        // UDP: the datagram is a whole number of valid messages...
        let mut w = DatagramWriter::with_mtu(vec![0u8; 2048], 1500, Transport::Udp);
        for m in Datagram::new(&l.payload) {
            let m = m.unwrap_or_else(|e| panic!("{what}: {e}"));
            verify(&m, &what, c);
            // ...and the writer batches the re-encoded messages into the
            // same datagram (nothing overflows at MTU 1500).
            let pushed = match m.decode().unwrap() {
                Decoded::Data(Data::Ct(op, f)) => w.push_ct(op, m.flags(), m.seq(), &f, &SENDER),
                Decoded::Data(Data::Exp(op, e)) => w.push_exp(op, m.flags(), m.seq(), &e, &SENDER),
                Decoded::Control(ctl) => w.push_control(&ctl),
            };
            assert!(pushed.is_ok(), "{what}: writer refused {pushed:?}");
        }
        assert_eq!(w.as_bytes(), &l.payload[..], "{what}: datagram differs");
        c.units += 1;
    }
    for ((cap, dir), rest) in &streams {
        assert!(rest.is_empty(), "{cap} {dir}: {} stray bytes", rest.len());
    }
    for (cap, want) in EXPECTED {
        let c = counts.get(cap).unwrap_or_else(|| panic!("{cap} missing"));
        eprintln!(
            "{cap:24} {:3} {} {:4} messages ({} ct, {} control) re-encoded byte for byte",
            c.units,
            if cap.contains("tcp") {
                "segments "
            } else {
                "datagrams"
            },
            c.messages,
            c.ct,
            c.control
        );
        assert_eq!(c.messages, want, "{cap}");
        assert_eq!(c.ct + c.control, c.messages);
    }
    assert_eq!(counts.len(), EXPECTED.len());
}

/// The batching rule of 1.4.7 (trap 12) in the bulk transfer of the
/// loss30 capture: a datagram was closed exactly when the next message of
/// the same sender would have reached the limit, or at the end of a
/// transmit run (then the next datagram starts with a message that would
/// have fitted — allowed, not checked). Every closed-because-full datagram
/// must be refused the next message by the writer, and there are some.
#[test]
fn batching_follows_the_mtu_rule() {
    let limit = datagram_limit(1500, Transport::Udp);
    let mut last: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut full = 0;
    for l in lines()
        .into_iter()
        .filter(|l| l.capture == "ftfw-udp-loss30.pcap")
    {
        assert!(l.payload.len() < limit);
        let first = Message::parse(&l.payload).unwrap().as_bytes().to_vec();
        if let Some(prev) = last.get(l.flow) {
            if prev.len() + first.len() >= limit {
                let mut w = DatagramWriter::new(vec![0u8; 2048], limit);
                w.push_raw(prev).unwrap();
                assert_eq!(w.push_raw(&first), Err(PushError::Full));
                full += 1;
            }
        }
        last.insert(l.flow, l.payload);
    }
    assert!(full >= 20, "only {full} full datagrams");
}

/// No captured TCP segment ends inside a message, so cut every captured
/// TCP stream into odd-sized pieces and check that the stream reader
/// keeps partial messages and yields the same messages.
#[test]
fn tcp_streams_survive_arbitrary_segmentation() {
    let mut streams: BTreeMap<(&str, &str), Vec<u8>> = BTreeMap::new();
    for l in lines().into_iter().filter(|l| l.tcp) {
        streams
            .entry((l.capture, l.flow))
            .or_default()
            .extend_from_slice(&l.payload);
    }
    for (key, stream) in &streams {
        let whole: Vec<Vec<u8>> = Datagram::stream(stream)
            .map(|m| m.unwrap().as_bytes().to_vec())
            .collect();
        for piece in [1usize, 3, 7, 13, 100] {
            let mut pending = Vec::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(piece) {
                pending.extend_from_slice(chunk);
                let mut d = Datagram::stream(&pending);
                for m in d.by_ref() {
                    got.push(m.unwrap().as_bytes().to_vec());
                }
                let used = d.consumed();
                pending.drain(..used);
            }
            assert!(pending.is_empty(), "{key:?}");
            assert_eq!(got, whole, "{key:?} in pieces of {piece}");
        }
    }
}
