//! Fail-over end to end (`scripts/failover.py` on the lab of
//! `scripts/lab/lab.sh`): keepalived drives our conntrackd through
//! `dist/keepalived/primary-backup.sh`; a TCP stream and 8 UDP flows go
//! through fw1 under a stateful ruleset (INVALID and state-less mid-stream
//! packets dropped, nf_conntrack_tcp_loose=0). fw1 fails gracefully, then
//! hard (links cut, keepalived and conntrackd killed -9), each time with a
//! fail-back to fw1; every stream must live on. Without state sync, the
//! same TCP stream must die (the control that shows the setting is
//! stateful). With three firewalls (one VRRP instance, priorities
//! 150/100/50, FT-FW over one multicast group) the streams live through
//! two fail-overs in a row, and the second firewall's commit has the
//! third's flows. Skips without root, keepalived, nft or python3.

mod common;

use common::netns::skip_unless_root_and;
use serde_json::Value;

const OURS: &str = env!("CARGO_BIN_EXE_conntrackd");

fn run(tag: &str, args: &[&str]) -> (bool, Vec<Value>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let json = std::env::temp_dir().join(format!("failover-{tag}-{}.json", std::process::id()));
    let prefix = format!("fo{}{tag}-", std::process::id() % 10000);
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/failover.py"))
        .args(["--conntrackd", OURS, "--secs", "12", "--prefix", &prefix])
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .expect("failover.py");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    let body = std::fs::read_to_string(&json).unwrap_or_default();
    let _ = std::fs::remove_file(&json);
    let list = match serde_json::from_str(&body) {
        Ok(Value::Array(v)) => v,
        _ => Vec::new(),
    };
    (out.status.success(), list)
}

#[test]
fn connections_survive_the_death_of_the_active_firewall() {
    if !skip_unless_root_and(&["ip", "nft", "keepalived", "python3"]) {
        return;
    }
    let (ok, res) = run("s", &["--failure", "graceful,kill", "--failback"]);
    assert_eq!(res.len(), 2, "two scenarios");
    for r in &res {
        let label = r["label"].as_str().unwrap_or("?");
        for stream in ["tcp", "udp"] {
            assert_eq!(
                r[stream]["survived"].as_bool(),
                Some(true),
                "{label}: the {stream} flows died"
            );
        }
        assert!(r["fw2_master_after_s"].is_number(), "{label}: fw2 master");
        assert!(
            r["fw2_primary_done_after_s"].is_number(),
            "{label}: fw2 committed"
        );
        assert!(
            r["fw2_external_before"].as_u64().unwrap_or(0) >= 1,
            "{label}: replicated before the failure"
        );
        assert!(
            r["fw1_external_after_resync"].as_u64().unwrap_or(0) >= 1,
            "{label}: the returning fw1 resynchronised from fw2"
        );
        assert!(
            r["fw1_primary_done_after_s"].is_number(),
            "{label}: fail-back commit"
        );
    }
    assert!(ok, "failover.py reported a failure");
}

#[test]
fn without_state_sync_the_stream_dies() {
    if !skip_unless_root_and(&["ip", "nft", "keepalived", "python3"]) {
        return;
    }
    let (ok, res) = run("c", &["--failure", "graceful", "--only-control"]);
    assert_eq!(res.len(), 1);
    assert_eq!(
        res[0]["tcp"]["survived"].as_bool(),
        Some(false),
        "without conntrackd the TCP stream should not survive"
    );
    assert!(ok, "failover.py reported a failure");
}

#[test]
fn three_firewalls_survive_two_fail_overs() {
    if !skip_unless_root_and(&["ip", "nft", "keepalived", "python3"]) {
        return;
    }
    let (ok, res) = run("t", &["--firewalls", "3", "--secs", "22"]);
    assert_eq!(res.len(), 1, "one scenario");
    let r = &res[0];
    for stream in ["tcp", "udp"] {
        assert_eq!(
            r[stream]["survived"].as_bool(),
            Some(true),
            "the {stream} flows died: {r}"
        );
    }
    assert_eq!(r["fw3_own_flows"].as_u64(), Some(200), "{r}");
    assert_eq!(
        r["fw2_external_fw3_flows"].as_u64(),
        Some(200),
        "fw3's flows reached fw2: {r}"
    );
    assert_eq!(
        r["fw2_kernel_fw3_flows"].as_u64(),
        Some(200),
        "fw2's commit has fw3's flows: {r}"
    );
    assert_eq!(r["fw3_stayed_backup"].as_bool(), Some(true), "{r}");
    assert!(r["fw3_master_after_s"].is_number(), "fw3 master: {r}");
    assert!(
        r["fw3_primary_done_after_s"].is_number(),
        "fw3 committed: {r}"
    );
    assert!(
        r["fw3_external_streams_before_second"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "fw2's state reached fw3: {r}"
    );
    assert!(ok, "failover.py reported a failure");
}
