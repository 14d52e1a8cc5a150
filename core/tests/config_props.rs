//! Property tests of the configuration parser: no input makes it panic,
//! and the scanner walks forward through any input.

use ct_core::config::*;
use proptest::prelude::*;

/// Fragments that make random inputs look like configurations.
const WORDS: &[&str] = &[
    "General",
    "Sync",
    "Stats",
    "Helper",
    "{",
    "}",
    "{",
    "}",
    "Mode",
    "FTFW",
    "NACK",
    "PERSISTENT",
    "ALARM",
    "NOTRACK",
    "UDP",
    "TCP",
    "Multicast",
    "Default",
    "Filter",
    "From",
    "Kernelspace",
    "Protocol",
    "Address",
    "State",
    "Accept",
    "Ignore",
    "for",
    "LISTEN",
    "IPv4_address",
    "IPv6_address",
    "IPv4_interface",
    "Interface",
    "lo",
    "Port",
    "Group",
    "Type",
    "ftp",
    "inet",
    "tcp",
    "Policy",
    "ExpectMax",
    "QueueNum",
    "Setup",
    "Options",
    "ExpectationSync",
    "Scheduler",
    "Priority",
    "UNIX",
    "Path",
    "LockFile",
    "LogFile",
    "Syslog",
    "HashSize",
    "Nice",
    "PollSecs",
    "CommitTimeout",
    "DisableExternalCache",
    "on",
    "off",
    "|||",
    "0",
    "1",
    "99999999999",
    "-1",
    "+5",
    "1.2.3.4/33",
    "::1",
    "fe80::1/64",
    "1::2::3",
    "/x",
    "/a\t#b",
    "\"",
    "#c\n",
    "#",
    "\n",
    "\r",
    " ",
    "\t",
    "\0",
    "\u{ff}",
    "beef",
    "local9",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(WORDS), 0..60).prop_map(|ws| {
        let mut v = Vec::new();
        for w in ws {
            v.extend_from_slice(w.as_bytes());
            v.push(b' ');
        }
        v
    })
}

fn check(input: &[u8]) {
    let sys = StaticLookup::debian(&["lo"]);
    let out = parse(input, "fuzz.conf", &sys);
    for w in &out.warnings {
        let _ = w.c_message();
        let _ = w.to_string();
    }
    match out.result {
        Ok(mut cfg) => {
            for w in evaluate(&mut cfg) {
                let _ = w.c_message();
            }
        }
        Err(e) => {
            let _ = e.c_message_bytes();
            let _ = e.to_string();
            assert!(e.span.line >= 1 && e.span.column >= 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&input);
    }

    #[test]
    fn token_soup_never_panics(input in soup()) {
        check(&input);
    }

    #[test]
    fn scanner_moves_forward(input in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut lx = Lexer::new(&input);
        let mut last = Span::at(1, 0);
        for _ in 0..=input.len() {
            let t = lx.next_token();
            prop_assert!(t.span > last || (t.kind == TokenKind::Eof && t.text.is_empty()));
            if t.kind == TokenKind::Eof && t.text.is_empty() {
                return Ok(());
            }
            last = t.span;
        }
        prop_assert!(false, "scanner did not reach the end");
    }
}

#[test]
fn pathological_inputs_are_fast() {
    // long runs that could make a naive scanner quadratic
    let big = |s: &str, n: usize| s.repeat(n).into_bytes();
    for input in [
        big("#", 200_000),
        big("1", 200_000),
        big("a", 200_000),
        big("1:", 100_000),
        big("/", 200_000),
        big("{", 100_000),
        big("|", 200_000),
    ] {
        let t0 = std::time::Instant::now();
        check(&input);
        assert!(t0.elapsed().as_secs() < 10, "{:?}", &input[..4]);
    }
}
