//! `ctperf` end to end, in namespaces of its own: `churn` (steady
//! creations and destructions, nothing left behind), `flows` (real TCP and
//! UDP through a firewall namespace, tracked there), `sync source` into a
//! `sync sink` and into our daemon's receive path (external cache), and
//! `latency` between two of our daemons (every flow measured). Skips
//! without root.

mod common;

use std::time::Duration;

use common::netns::{skip_unless_root_and, Exit, NetNs};
use serde_json::Value;

const PERF: &str = env!("CARGO_BIN_EXE_ctperf");
const OURS: &str = env!("CARGO_BIN_EXE_conntrackd");
const CT: &str = env!("CARGO_BIN_EXE_conntrack");
const T: Duration = Duration::from_secs(60);

fn json(out: &str) -> Value {
    let line = out.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn count(ns: &NetNs) -> u64 {
    ns.run(&[CT, "-C"], None, T)
        .stdout_str()
        .trim()
        .parse()
        .unwrap_or(u64::MAX)
}

/// Two namespaces joined by a veth pair (`<tag>a<n>` / `<tag>b<n>`) with
/// the given /24 addresses; returns the device names.
fn veth(a: &NetNs, b: &NetNs, tag: &str, ipa: &str, ipb: &str) -> (String, String) {
    let n = std::process::id() % 200;
    let (ia, ib) = (format!("{tag}a{n}"), format!("{tag}b{n}"));
    let ip = |args: &[&str]| {
        let ok = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip {args:?}");
    };
    let (na, nb) = (a.name(), b.name());
    ip(&[
        "link", "add", &ia, "netns", na, "type", "veth", "peer", "name", &ib, "netns", nb,
    ]);
    ip(&["-n", na, "addr", "add", &format!("{ipa}/24"), "dev", &ia]);
    ip(&["-n", nb, "addr", "add", &format!("{ipb}/24"), "dev", &ib]);
    ip(&["-n", na, "link", "set", &ia, "up"]);
    ip(&["-n", nb, "link", "set", &ib, "up"]);
    (ia, ib)
}

/// An FT-FW daemon's config in `base/side` (UDP on port 3780); `mode` goes
/// into the Mode block, `general` into General.
fn ftfw_conf(
    base: &std::path::Path,
    side: &str,
    me: &str,
    peer: &str,
    dev: &str,
    mode: &str,
    general: &str,
) -> String {
    let d = base.join(side);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("c.conf");
    std::fs::write(
        &p,
        format!(
            "Sync {{\n Mode FTFW {{ {mode} }}\n UDP {{\n  IPv4_address {me}\n  IPv4_Destination_Address {peer}\n  \
             Port 3780\n  Interface {dev}\n }}\n}}\nGeneral {{\n Systemd off\n LockFile {d}/lock\n \
             UNIX {{ Path {d}/ctl }}\n{general}}}\n",
            d = d.display()
        ),
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn churn_creates_updates_destroys_and_cleans_up() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctp-churn").expect("netns");
    let r = ns.run(
        &[
            PERF,
            "churn",
            "--rate",
            "5000",
            "--secs",
            "1.5",
            "--life",
            "0.5",
            "--update-rate",
            "1000",
        ],
        None,
        T,
    );
    assert_eq!(r.status, Exit::Code(0), "{}", r.stderr_str());
    let j = json(&r.stdout_str());
    let created = j["created"].as_u64().unwrap();
    assert!((6000..=8000).contains(&created), "{j}");
    assert!(j["updated"].as_u64().unwrap() > 500, "{j}");
    assert!(j["destroyed"].as_u64().unwrap() > 3000, "{j}");
    assert_eq!(j["errors"].as_u64(), Some(0), "{j}");
    assert_eq!(count(&ns), 0, "cleanup leaves an empty table");
}

#[test]
fn churn_steps_can_be_shorter_than_a_millisecond() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctp-step").expect("netns");
    let r = ns.run(
        &[
            PERF,
            "churn",
            "--rate",
            "2000",
            "--secs",
            "1",
            "--life",
            "0.3",
            "--step-us",
            "200",
        ],
        None,
        T,
    );
    assert_eq!(r.status, Exit::Code(0), "{}", r.stderr_str());
    let j = json(&r.stdout_str());
    // the rate holds with 5,000 steps a second (0.4 flows each)
    let created = j["created"].as_u64().unwrap();
    assert!((1600..=2400).contains(&created), "{j}");
    assert!(j["destroyed"].as_u64().unwrap() > 1000, "{j}");
    assert_eq!(j["errors"].as_u64(), Some(0), "{j}");
    assert_eq!(count(&ns), 0, "cleanup leaves an empty table");
}

#[test]
fn flows_are_real_and_tracked_by_the_firewall() {
    if !skip_unless_root_and(&["ip", "nft"]) {
        return;
    }
    let prefix = format!("ctpf{}-", std::process::id());
    let o = std::process::Command::new(PERF)
        .args([
            "flows", "--tcp", "5", "--udp", "5", "--hold", "0.2", "--prefix", &prefix,
        ])
        .output()
        .expect("ctperf flows");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j = json(&out);
    assert_eq!(j["tcp_connected"].as_u64(), Some(5), "{j}");
    assert_eq!(j["tcp_echoed"].as_u64(), Some(5), "{j}");
    assert_eq!(j["udp_echoed"].as_u64(), Some(5), "{j}");
    assert!(j["fw_entries"].as_u64().unwrap() >= 10, "{j}");
    let left = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&prefix),
        "namespaces removed"
    );
}

#[test]
fn sync_source_feeds_a_sink_and_a_daemon() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctp-sync").expect("netns");
    // source -> sink
    let sink = ns
        .spawn(
            &[
                PERF,
                "sync",
                "sink",
                "--bind",
                "127.0.0.1:3990",
                "--secs",
                "20",
                "--idle",
                "0.5",
            ],
            None,
        )
        .expect("sink");
    std::thread::sleep(Duration::from_millis(300));
    let src = ns.run(
        &[
            PERF,
            "sync",
            "source",
            "--to",
            "127.0.0.1:3990",
            "-n",
            "3000",
            "--rate",
            "100000",
        ],
        None,
        T,
    );
    assert_eq!(src.status, Exit::Code(0), "{}", src.stderr_str());
    let s = json(&src.stdout_str());
    let heard = json(&sink.finish(T).stdout_str());
    assert_eq!(heard["new"].as_u64(), Some(3000), "{heard}");
    assert_eq!(heard["bad"].as_u64(), Some(0), "{heard}");
    assert_eq!(heard["datagrams"], s["datagrams"], "{heard} {s}");
    // source -> our daemon's receive path (NOTRACK, external cache); the
    // daemon's peer is 127.0.0.2: datagrams from 127.0.0.1 are dropped and
    // counted
    let dir = std::env::temp_dir().join(format!("ctp-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("c.conf");
    std::fs::write(
        &conf,
        format!(
            "Sync {{\n Mode NOTRACK {{ }}\n UDP {{\n  IPv4_address 127.0.0.1\n  IPv4_Destination_Address 127.0.0.2\n  \
             Port 3991\n  Interface lo\n }}\n}}\nGeneral {{\n Systemd off\n LockFile {d}/lock\n UNIX {{ Path {d}/ctl }}\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let c = conf.to_str().unwrap();
    let daemon = ns.spawn(&[OURS, "-C", c], None).expect("daemon");
    std::thread::sleep(Duration::from_millis(500));
    let ask = |args: &[&str]| {
        let o = std::process::Command::new(OURS)
            .args(["-C", c])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let src = |n: &str, bind: &str| {
        let r = ns.run(
            &[
                PERF,
                "sync",
                "source",
                "--to",
                "127.0.0.1:3991",
                "-n",
                n,
                "--rate",
                "50000",
                "--bind",
                bind,
            ],
            None,
            T,
        );
        assert_eq!(r.status, Exit::Code(0), "{}", r.stderr_str());
        json(&r.stdout_str())
    };
    let sent = src("500", "127.0.0.1:0")["datagrams"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let net = ask(&["-s", "peers"]);
    assert!(
        net.contains(&format!("datagrams dropped:\t{sent:>20}")),
        "{sent} datagrams from a stranger counted:\n{net}"
    );
    // ... in `-s peers`: `-s network` keeps 1.4.7's layout
    let network = ask(&["-s", "network"]);
    assert!(network.starts_with("network statistics:\n"), "{network}");
    assert!(!network.contains("unknown peers"), "{network}");
    assert_eq!(
        ask(&["-e"]).lines().count(),
        0,
        "nothing taken from a stranger"
    );
    // hostile datagrams from the peer: each counted under 1.4.7's counter,
    // nothing in the cache, the daemon still fine afterwards
    let h = ns.run(
        &[
            PERF,
            "sync",
            "hostile",
            "--to",
            "127.0.0.1:3991",
            "--bind",
            "127.0.0.2:0",
        ],
        None,
        T,
    );
    assert_eq!(h.status, Exit::Code(0), "{}", h.stderr_str());
    let kinds = json(&h.stdout_str())["kinds"].as_array().unwrap().clone();
    std::thread::sleep(Duration::from_millis(300));
    let net = ask(&["-s", "network"]);
    for k in &kinds {
        let k = k.as_str().unwrap();
        let line = net
            .lines()
            .find(|l| l.contains(k))
            .unwrap_or_else(|| panic!("{k}: {net}"));
        assert!(line.trim_end().ends_with(" 1"), "{k} counted once:\n{net}");
    }
    let malformed = net
        .lines()
        .find(|l| l.contains("Malformed messages"))
        .unwrap();
    assert!(
        malformed.trim_end().ends_with(&format!(" {}", kinds.len())),
        "{net}"
    );
    assert_eq!(
        ask(&["-e"]).lines().count(),
        0,
        "nothing from hostile datagrams"
    );
    src("5000", "127.0.0.2:0");
    let t0 = std::time::Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(10) {
        n = ask(&["-e"]).lines().count();
        if n == 5000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = ask(&["-k"]);
    let _ = daemon.finish(T);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        n, 5000,
        "the daemon's external cache holds every synthesised flow"
    );
}

#[test]
fn latency_is_measured_for_every_flow_between_two_daemons() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let (a, b) = (
        NetNs::new("ctp-la").expect("netns"),
        NetNs::new("ctp-lb").expect("netns"),
    );
    let (ia, ib) = veth(&a, &b, "lt", "10.96.0.1", "10.96.0.2");
    let base = std::env::temp_dir().join(format!("ctp-lat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    // (buffers as a deployment sizes them: under a parallel test run the
    // default 212 KB event buffer can overrun, and a flow that lives and
    // dies between an overrun and its resync never reaches the backup)
    let big = " NetlinkBufferSize 8388608\n NetlinkBufferSizeMaxGrowth 67108864\n";
    let ca = ftfw_conf(&base, "a", "10.96.0.1", "10.96.0.2", &ia, "", big);
    let cb = ftfw_conf(
        &base,
        "b",
        "10.96.0.2",
        "10.96.0.1",
        &ib,
        "DisableExternalCache on",
        big,
    );
    let da = a.spawn(&[OURS, "-C", &ca], None).expect("primary");
    let db = b.spawn(&[OURS, "-C", &cb], None).expect("backup");
    std::thread::sleep(Duration::from_millis(800));
    let svg = base.join("lat.svg");
    let r = std::process::Command::new(PERF)
        .args([
            "latency",
            "--from",
            a.name(),
            "--to",
            b.name(),
            "--rate",
            "2000",
            "--secs",
            "2",
            "--life",
            "1",
        ])
        .args(["--drain", "5", "--svg"])
        .arg(&svg)
        .output()
        .unwrap();
    for (c, p) in [(&ca, da), (&cb, db)] {
        let _ = std::process::Command::new(OURS)
            .args(["-C", c, "-k"])
            .output();
        let _ = p.finish(T);
    }
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(
        r.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let j = json(&out);
    let created = j["created"].as_u64().unwrap();
    assert!(created >= 3500, "{j}");
    assert_eq!(j["missing"].as_u64(), Some(0), "every flow arrived: {j}");
    let p50 = j["latency_us"]["p50"].as_u64().unwrap();
    let p99 = j["latency_us"]["p99"].as_u64().unwrap();
    assert!(p50 > 0 && p99 >= p50, "{j}");
    assert!(j["series"].as_array().is_some_and(|s| !s.is_empty()), "{j}");
    let plot = std::fs::read_to_string(&svg).unwrap_or_default();
    assert_eq!(
        plot.matches("<polyline").count(),
        4,
        "two charts, two series each"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// FT-FW through `ctperf sync relay` with 5 % loss, 5 % duplication and
/// 10 % reordering in both directions: the backup converges to every flow
/// (the namespace link itself neither reorders nor duplicates).
#[test]
fn ftfw_converges_through_a_reordering_duplicating_lossy_relay() {
    relay_run("rl", false);
}

/// The same through an authenticated link (`Authentication { KeyFile }`
/// on both daemons): it converges too, and the relay's duplicates are
/// refused as replays (`-s network`), none as a bad tag.
#[test]
fn authenticated_ftfw_converges_through_the_relay_and_refuses_its_duplicates() {
    relay_run("ra", true);
}

fn relay_run(tag: &str, auth: bool) {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let (a, b) = (
        NetNs::new(&format!("ctp-{tag}a")).expect("netns"),
        NetNs::new(&format!("ctp-{tag}b")).expect("netns"),
    );
    let (ia, _) = veth(&a, &b, tag, "10.95.0.1", "10.95.0.3");
    let base = std::env::temp_dir().join(format!("ctp-relay-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    // (one lane: the relay forwards one channel)
    let big = " NetlinkBufferSize 8388608\n NetlinkBufferSizeMaxGrowth 67108864\n Lanes 1\n";
    // the primary talks to the relay at 10.95.0.3; the backup (on the
    // relay's loopback) to the relay at 127.0.0.4
    let ca = ftfw_conf(&base, "a", "10.95.0.1", "10.95.0.3", &ia, "", big);
    let cb = ftfw_conf(&base, "b", "127.0.0.2", "127.0.0.4", "lo", "", big);
    if auth {
        let key = base.join("sync.key");
        std::fs::write(
            &key,
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .unwrap();
        for c in [&ca, &cb] {
            let text = std::fs::read_to_string(c).unwrap().replacen(
                " UDP {",
                &format!(" Authentication {{ KeyFile {} }}\n UDP {{", key.display()),
                1,
            );
            std::fs::write(c, text).unwrap();
        }
    }
    let relay = b
        .spawn(
            &[
                PERF,
                "sync",
                "relay",
                "--a",
                "10.95.0.3:3780",
                "--peer-a",
                "10.95.0.1:3780",
                "--b",
                "127.0.0.4:3780",
                "--peer-b",
                "127.0.0.2:3780",
                "--loss",
                "5",
                "--dup",
                "5",
                "--reorder",
                "10",
                "--secs",
                "40",
            ],
            None,
        )
        .expect("relay");
    std::thread::sleep(Duration::from_millis(300));
    let da = a.spawn(&[OURS, "-C", &ca], None).expect("primary");
    let db = b.spawn(&[OURS, "-C", &cb], None).expect("backup");
    std::thread::sleep(Duration::from_millis(800));
    let fill = a.run(&[PERF, "fill", "-n", "20000", "--rate", "20000"], None, T);
    assert_eq!(fill.status, Exit::Code(0), "{}", fill.stderr_str());
    let ext = |c: &str| {
        let o = std::process::Command::new(OURS)
            .args(["-C", c, "-e"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let t0 = std::time::Instant::now();
    let mut got = 0;
    while t0.elapsed() < Duration::from_secs(30) {
        got = ext(&cb);
        if got == 20000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let net = std::process::Command::new(OURS)
        .args(["-C", &cb, "-s", "peers"])
        .output()
        .unwrap();
    for (c, p) in [(&ca, da), (&cb, db)] {
        let _ = std::process::Command::new(OURS)
            .args(["-C", c, "-k"])
            .output();
        let _ = p.finish(T);
    }
    eprintln!("converged after {:?}", t0.elapsed());
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(relay.pid(), libc::SIGKILL) };
    let _ = relay.finish(T);
    let _ = std::fs::remove_dir_all(&base);
    let net = String::from_utf8_lossy(&net.stdout);
    assert_eq!(got, 20000, "after {:?}; backup:\n{net}", t0.elapsed());
    if auth {
        let count = |name: &str| common::stat(&net, name);
        println!("{net}");
        assert!(count("datagrams accepted:") > 0, "{net}");
        assert!(
            count("datagrams replayed:") > 0,
            "duplicates not refused:\n{net}"
        );
        assert_eq!(count("datagrams with bad tag:"), 0, "{net}");
        assert_eq!(count("datagrams without tag:"), 0, "{net}");
    }
}

#[test]
fn bench_lists_its_scenarios_and_refuses_unknown_ones() {
    let o = std::process::Command::new(PERF)
        .args(["bench", "list"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let list = String::from_utf8_lossy(&o.stdout);
    for s in [
        "cli",
        "daemon",
        "sync-100k",
        "sync-1m",
        "paced-1m",
        "churn",
        "loss-1",
        "loss-5",
        "loss-20-1m",
        "auth",
        "warm",
        "lanes",
        "lanes-paced",
        "lanes-mixed",
        "backup-rate",
        "soak",
        "soak-mixed",
        "trickle",
        "failover",
        "failover-3fw",
        "chaos",
    ] {
        assert!(
            list.lines().any(|l| l.starts_with(s)),
            "{s} missing:\n{list}"
        );
    }
    let o = std::process::Command::new(PERF)
        .args(["bench", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown scenario `nope'"));
}
