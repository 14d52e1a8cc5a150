//! The tools as Unix processes, against 1.4.7 as the oracle: a reader
//! that goes away (`conntrack -L | head -1`, `conntrack -E | head -1`)
//! ends them with SIGPIPE, and an unprivileged user gets 1.4.7's lines
//! and exit status (`-C` and `-S` fall back to /proc and then fail;
//! `-E` says which libmnl call failed). Each case runs both tools in a
//! fresh network namespace; skips without root, `setpriv` or 1.4.7.

mod common;

use std::time::Duration;

use common::netns::{find_tool, skip_unless_root_and, NetNs, RunOutput};

const CT: &str = env!("CARGO_BIN_EXE_conntrack");
const T: Duration = Duration::from_secs(30);

fn setup(prefix: &str, tools: &[&str]) -> Option<(NetNs, String)> {
    let mut need = vec!["conntrack"];
    need.extend_from_slice(tools);
    if !skip_unless_root_and(&need) {
        return None;
    }
    let c = find_tool("conntrack")?.to_string_lossy().into_owned();
    Some((NetNs::new(prefix).expect("netns"), c))
}

fn sh(ns: &NetNs, script: &str) -> RunOutput {
    let r = ns.sh(script, &[], T);
    assert!(r.status.success(), "{script}: {}", r.stderr_str());
    r
}

/// 3000 entries: more than a pipe holds, so a dump meets the closed pipe.
fn fill(ns: &NetNs) {
    let mut load = String::new();
    for i in 0..3000u32 {
        load.push_str(&format!(
            "-I -p udp -s 10.0.{}.{} -d 10.1.0.1 --sport 1 --dport 2 -t 200\n",
            i / 250,
            i % 250
        ));
    }
    let r = ns.run(&[CT, "-R", "-"], Some(load.as_bytes()), T);
    assert!(r.status.success(), "load: {}", r.stderr_str());
}

#[test]
fn a_reader_that_goes_away_ends_a_dump_with_sigpipe() {
    let Some((ns, c147)) = setup("ctux-pipe", &["bash", "head"]) else {
        return;
    };
    fill(&ns);
    for bin in [CT, c147.as_str()] {
        // stdout alone in the pipe; then stderr too (where the summary
        // went: before, ours panicked on it and aborted)
        for redir in ["2>/dev/null", "2>&1"] {
            let r = sh(
                &ns,
                &format!("{bin} -L {redir} | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}"),
            );
            assert_eq!(r.stdout_str().trim(), "141", "{bin} -L {redir} | head -1");
        }
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_event_listener() {
    let Some((ns, c147)) = setup("ctux-ev", &["bash", "head", "timeout"]) else {
        return;
    };
    for (k, bin) in [CT, c147.as_str()].into_iter().enumerate() {
        // the listener must end at the event after `head` left, long
        // before `timeout` (exit 124) would end it
        let script = format!(
            "( timeout 10 {bin} -E 2>/dev/null | head -1 >/dev/null; echo ${{PIPESTATUS[0]}} ) & \
             sleep 0.5; \
             for i in 1 2 3 4 5; do {CT} -I -p tcp -s 10.5.{k}.$i -d 10.1.0.1 --sport 1 --dport 2 \
               --state ESTABLISHED -t 100 2>/dev/null; sleep 0.2; done; wait"
        );
        let t0 = std::time::Instant::now();
        let r = sh(&ns, &script);
        assert_eq!(r.stdout_str().trim(), "141", "{bin} -E | head -1");
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{bin}: {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn an_unprivileged_user_gets_what_1_4_7_says() {
    let Some((ns, c147)) = setup("ctux-user", &["setpriv"]) else {
        return;
    };
    let user = "setpriv --reuid=65534 --regid=65534 --clear-groups";
    for args in [
        "-C",
        "-S",
        "-S expect",
        "-E",
        "-E expect",
        "-L",
        "-C expect",
    ] {
        let ours = ns.sh(&format!("{user} {CT} {args}"), &[], T);
        let c = ns.sh(&format!("{user} {c147} {args}"), &[], T);
        assert_eq!(ours.status, c.status, "{args}: exit status");
        assert_eq!(ours.stderr_str(), c.stderr_str(), "{args}: stderr");
        // (/proc's counters move between the two runs: same lines)
        let shape = |r: &RunOutput| {
            r.stdout_str()
                .lines()
                .map(|l| l.split('=').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&ours), shape(&c), "{args}: stdout");
    }
}
