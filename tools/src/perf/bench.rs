//! `ctperf bench SCENARIO`: runs a named scenario end to end, ours and
//! conntrack-tools 1.4.7 in the same run, through the scripts of `perf/`
//! and `scripts/` (namespaces, daemons, impairment, keepalived), keeps
//! their report and JSON in an output directory, and prints one JSON
//! object describing the run.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// A named scenario.
pub struct Scenario {
    pub name: &'static str,
    pub what: &'static str,
    /// Script (relative to the repository) and its arguments; `{runs}`
    /// and `{out}` are replaced.
    pub argv: &'static [&'static str],
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "cli",
        what: "conntrack -L/-L xml/-C/-F at 100k and 1M, -E at several rates",
        argv: &["perf/bench_cli.py", "--runs", "{runs}"],
    },
    Scenario {
        name: "daemon",
        what: "conntrackd event ingestion (stats mode), 100k and 1M",
        argv: &["perf/bench_daemon.py", "--runs", "{runs}"],
    },
    Scenario {
        name: "sync-100k",
        what: "FT-FW burst of 100k flows: time to the backup, CPU, link bytes, commit of 100k",
        argv: &["perf/bench_sync.py", "--sizes", "100000", "--runs", "{runs}", "--mode", "FTFW"],
    },
    Scenario {
        name: "sync-1m",
        what: "FT-FW burst of 1M flows, and commit of 1M",
        argv: &["perf/bench_sync.py", "--sizes", "1000000", "--runs", "{runs}", "--mode", "FTFW"],
    },
    Scenario {
        name: "paced-1m",
        what: "FT-FW, 1M flows paced at 50k/s",
        argv: &[
            "perf/bench_sync.py", "--sizes", "1000000", "--runs", "{runs}", "--mode", "FTFW",
            "--rate", "50000",
        ],
    },
    Scenario {
        name: "churn",
        what: "replication latency percentiles under churn at 5k, 20k, 50k flows/s (hdrhistogram, SVG)",
        argv: &["perf/bench_latency.py", "--runs", "{runs}", "--out", "{out}"],
    },
    Scenario {
        name: "lanes",
        what: "FT-FW burst of 200k flat out: Lanes 1 against Lanes 2 (busiest thread, total CPU, complete time), and 1.4.7",
        argv: &[
            "perf/bench_sync.py", "--sizes", "200000", "--runs", "{runs}", "--mode", "FTFW",
            "--lanes", "2",
        ],
    },
    Scenario {
        name: "lanes-paced",
        what: "FT-FW, 200k flows paced at 100k/s: Lanes 1 against Lanes 2, and 1.4.7",
        argv: &[
            "perf/bench_sync.py", "--sizes", "200000", "--runs", "{runs}", "--mode", "FTFW",
            "--lanes", "2", "--rate", "100000",
        ],
    },
    Scenario {
        name: "lanes-mixed",
        what: "FT-FW burst of 50k: ours with Lanes 2 (and Lanes 1) toward a 1.4.7 backup, whose one lane the lanes follow; and the pairs of `lanes`",
        argv: &[
            "perf/bench_sync.py", "--sizes", "50000", "--runs", "{runs}", "--mode", "FTFW",
            "--lanes", "2", "--mixed",
        ],
    },
    Scenario {
        name: "backup-rate",
        what: "one backup fed the same 200k flows by `ctperf sync source` flat out, at 150k/s and 50k/s: its CPU per flow by arrival rate, ours and 1.4.7",
        argv: &["perf/bench_backup_rate.py", "--runs", "{runs}"],
    },
    Scenario {
        name: "loss-1",
        what: "FT-FW burst of 100k with 1% loss on the sync link (each way)",
        argv: &[
            "perf/bench_sync.py", "--sizes", "100000", "--runs", "{runs}", "--mode", "FTFW",
            "--loss", "1",
        ],
    },
    Scenario {
        name: "loss-5",
        what: "FT-FW burst of 100k with 5% loss on the sync link (each way)",
        argv: &[
            "perf/bench_sync.py", "--sizes", "100000", "--runs", "{runs}", "--mode", "FTFW",
            "--loss", "5",
        ],
    },
    Scenario {
        name: "loss-20-1m",
        what: "FT-FW burst of 1M with 20% loss and 20% corruption on the sync link, ours only",
        argv: &[
            "perf/bench_sync.py", "--sizes", "1000000", "--runs", "{runs}", "--mode", "FTFW",
            "--loss", "20", "--corrupt", "20", "--only-ours",
        ],
    },
    Scenario {
        name: "auth",
        what: "FT-FW burst of 100k, ours plain against ours with an authenticated link",
        argv: &[
            "perf/bench_sync.py", "--sizes", "100000", "--runs", "{runs}", "--mode", "FTFW",
            "--only-ours", "--auth",
        ],
    },
    Scenario {
        name: "warm",
        what: "backup killed -9 at 1M flows: warm (Snapshot) against cold restarts, ours and 1.4.7",
        argv: &[
            "perf/bench_warm.py", "--sizes", "1000000", "--runs", "{runs}", "--rate", "100000",
        ],
    },
    Scenario {
        name: "soak",
        what: "10 min of churn at 3k flows/s, 1% loss: ours and 1.4.7 pairs at once, memory over time, nothing lost or left over",
        argv: &["perf/bench_soak.py", "--secs", "600"],
    },
    Scenario {
        name: "soak-mixed",
        what: "the soak through ours -> 1.4.7 and 1.4.7 -> ours (the 1.4.x wire format over 1.8M flows)",
        argv: &["perf/bench_soak.py", "--secs", "600", "--mixed"],
    },
    Scenario {
        name: "trickle",
        what: "a steady 300 and 3,000 flows/s through a pair (backup with an external cache): CPU and wake-ups per side, ours (Lanes 1 and 2) and 1.4.7",
        argv: &[
            "perf/bench_trickle.py", "--rates", "300,3000", "--secs", "20", "--runs", "{runs}",
            "--lanes", "2",
        ],
    },
    Scenario {
        name: "failover",
        what: "keepalived fail-over (graceful and kill -9), streams' gaps, ours/1.4.7/no sync",
        argv: &[
            "scripts/failover.py", "--compare", "--failback", "--no-sync-control", "--json",
            "{out}/failover.json",
        ],
    },
    Scenario {
        name: "failover-3fw",
        what: "three firewalls (FT-FW over multicast, VRRP 150/100/50): two kill -9 fail-overs in a row, streams' gaps, ours/1.4.7",
        argv: &[
            "scripts/failover.py", "--firewalls", "3", "--compare", "--secs", "25", "--json",
            "{out}/failover-3fw.json",
        ],
    },
    Scenario {
        name: "chaos",
        what: "ten keepalived fail-overs in a row (graceful and kill -9 in turn) with 2,000 long-lived TCP and 500 UDP flows, churn and 5%/1% loss on the sync link (FT-FW, NOTRACK): flows missing on each new master, ours/1.4.7",
        argv: &[
            "scripts/chaos_failover.py", "--binaries", "ours,ref", "--scenarios",
            "ftfw:udp:5,notrack:udp:1", "--flips", "10", "--window", "12", "--tcp", "2000",
            "--udp", "500", "--churn-udp", "400", "--churn-tcp", "20", "--out", "{out}",
        ],
    },
];

/// The repository: `CT_ROOT`, else the directory above `target/` of this
/// executable, else the current directory.
fn root() -> PathBuf {
    if let Some(r) = std::env::var_os("CT_ROOT") {
        return PathBuf::from(r);
    }
    let exe = std::env::current_exe().ok();
    let found = exe.as_deref().and_then(|e| {
        e.ancestors()
            .find(|p| p.join("perf/bench_sync.py").exists())
            .map(Path::to_path_buf)
    });
    found.unwrap_or_else(|| PathBuf::from("."))
}

/// Runs `name`; the report goes to stdout and `<out>/<name>.md`.
pub fn run(name: &str, out: Option<&str>, runs: u32) -> Result<(), String> {
    let s = SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("unknown scenario `{name}' (ctperf bench list)"))?;
    let root = root();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let out = out.map(PathBuf::from).unwrap_or_else(|| {
        root.join("perf/results")
            .join(format!("bench-{name}-{stamp}"))
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let args: Vec<String> = s
        .argv
        .iter()
        .map(|a| {
            a.replace("{runs}", &runs.to_string())
                .replace("{out}", &out.to_string_lossy())
        })
        .collect();
    let script = root.join(&args[0]);
    let t0 = Instant::now();
    let o = std::process::Command::new("python3")
        .arg(&script)
        .args(&args[1..])
        .current_dir(&root)
        .output()
        .map_err(|e| format!("python3 {}: {e}", script.display()))?;
    let report = out.join(format!("{name}.md"));
    std::fs::write(&report, &o.stdout).map_err(|e| format!("{}: {e}", report.display()))?;
    let _ = std::fs::write(out.join(format!("{name}.stderr")), &o.stderr);
    print!("{}", String::from_utf8_lossy(&o.stdout));
    println!(
        "{{\"op\":\"bench\",\"scenario\":\"{name}\",\"command\":\"python3 {} {}\",\"exit\":{},\"seconds\":{:.1},\"report\":\"{}\",\"out\":\"{}\"}}",
        args[0],
        args[1..].join(" "),
        o.status.code().unwrap_or(-1),
        t0.elapsed().as_secs_f64(),
        report.display(),
        out.display()
    );
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scenario {name} failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}
