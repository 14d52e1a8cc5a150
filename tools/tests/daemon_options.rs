//! conntrackd.conf options that decide whether and how the daemon runs,
//! each against the real kernel in a fresh network namespace, with
//! 1.4.7's decision: a `Helper` section (this kernel has no
//! nfnetlink_cthelper: start-up fails as 1.4.7's does), a config with
//! `General` only (no mode runs), an impossible `HashSize`, the
//! `Scheduler` cases, `HashLimit` over both address families,
//! `Stats { Syslog }` without a log file, and `-R`/`-F` with
//! `ExpectationSync`. Skips without root.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::netns::{skip_unless_root_and, Exit, NetNs};
use common::sched_of;

const OURS: &str = env!("CARGO_BIN_EXE_conntrackd");
const CT: &str = env!("CARGO_BIN_EXE_conntrack");
const REF: &str = "/usr/sbin/conntrackd";
const T: Duration = Duration::from_secs(30);

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cto-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn conf(dir: &Path, general: &str, rest: &str) -> PathBuf {
    let p = dir.join("conntrackd.conf");
    std::fs::write(
        &p,
        format!(
            "General {{\n\tSystemd off\n\tLockFile {d}/lock\n\tUNIX {{ Path {d}/ctl }}\n{general}}}\n{rest}",
            d = dir.display()
        ),
    )
    .unwrap();
    p
}

fn run(ns: &NetNs, bin: &str, conf: &Path, args: &[&str]) -> common::netns::RunOutput {
    let mut argv = vec![bin, "-C", conf.to_str().unwrap()];
    argv.extend(args);
    ns.run(&argv, None, T)
}

/// Log lines without their `[date] (pid=N) ` prefix.
fn bare(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.find(") [") {
            Some(i) if l.starts_with('[') => l[i + 2..].to_string(),
            _ => l.to_string(),
        })
        .collect()
}

const HELPER: &str = "Helper {\n\tType ftp inet tcp {\n\t\tQueueNum 0\n\t\tQueueLen 10\n\t\tPolicy ftp {\n\t\t\tExpectMax 1\n\t\t\tExpectTimeout 300\n\t\t}\n\t}\n}\n";

/// A `Helper` section: the helper is registered with the kernel as 1.4.7
/// does; this kernel has no nfnetlink_cthelper, so start-up fails with
/// 1.4.7's messages (compared with 1.4.7's own in the same namespace),
/// alone or beside Stats — never a stats mirror instead.
#[test]
fn a_helper_section_fails_as_1_4_7_does_without_cthelper() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-helper").expect("netns");
    let dir = tmpdir("helper");
    for rest in [HELPER.to_string(), format!("Stats {{\n}}\n{HELPER}")] {
        let c = conf(&dir, "", &rest);
        let ours = run(&ns, OURS, &c, &[]);
        assert_eq!(ours.status, Exit::Code(1), "{}", ours.stderr_str());
        let err = bare(&ours.stderr_str());
        // Without nfnetlink_cthelper (this project's kernel) the kernel
        // refuses the helper as it refuses 1.4.7's; with it, the daemon
        // withdraws the helper and refuses to start all the same.
        let refused = "[ERROR] trying to configure cthelper `ftp': Invalid argument";
        let withdrawn = "[ERROR] user-space helpers are not implemented by this conntrackd: `ftp' was withdrawn; remove the Helper section";
        assert!(
            err.len() == 2 && (err[0] == refused || err[0] == withdrawn),
            "{rest}: {err:?}"
        );
        assert_eq!(
            err[1], "[ERROR] conntrackd cannot start, please review your configuration",
            "{rest}"
        );
        let out = bare(&ours.stdout_str());
        assert!(
            out.contains(
                &"[notice] configuring helper `ftp' with queuenum=0 and queuelen=10".to_string()
            ),
            "{out:?}"
        );
        assert!(
            out.contains(&"[notice] policy name=ftp expect_timeout=300 expect_max=1".to_string()),
            "{out:?}"
        );
        assert!(!dir.join("lock").exists());
        if Path::new(REF).exists() && err[0] == refused {
            let theirs = run(&ns, REF, &c, &[]);
            assert_eq!(theirs.status, Exit::Code(1));
            assert_eq!(bare(&theirs.stderr_str()), err, "stderr as 1.4.7's");
            let _ = std::fs::remove_file(dir.join("lock"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Neither Sync nor Stats: as 1.4.7, no mode runs (the kernel table is
/// not mirrored); `-s runtime` answers, `-s` and `-i` print nothing.
#[test]
fn general_only_runs_no_mode() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-gen").expect("netns");
    let dir = tmpdir("gen");
    let c = conf(&dir, "", "");
    assert_eq!(run(&ns, OURS, &c, &["-d"]).status, Exit::Code(0));
    let r = ns.run(
        &[
            CT, "-I", "-p", "udp", "-s", "10.3.0.1", "-d", "10.3.0.2", "--sport", "1", "--dport",
            "2", "-t", "100",
        ],
        None,
        T,
    );
    assert!(r.status.success());
    std::thread::sleep(Duration::from_millis(200));
    let rt = run(&ns, OURS, &c, &["-s", "runtime"]).stdout_str();
    assert!(rt.starts_with("daemon uptime: "), "{rt}");
    assert_eq!(common::stat(&rt, "events received:"), 0, "no event socket");
    assert_eq!(run(&ns, OURS, &c, &["-s"]).stdout_str(), "");
    assert_eq!(run(&ns, OURS, &c, &["-i"]).stdout_str(), "");
    assert_eq!(run(&ns, OURS, &c, &["-k"]).status, Exit::Code(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `HashSize 99999999999` (read by atoi as 1215752191): 1.4.7 fails to
/// allocate its buckets and so do we, with its message and the number.
#[test]
fn an_impossible_hash_size_is_refused() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-hs").expect("netns");
    let dir = tmpdir("hs");
    let c = conf(&dir, "\tHashSize 99999999999\n", "Stats {\n}\n");
    let r = run(&ns, OURS, &c, &[]);
    assert_eq!(r.status, Exit::Code(1));
    let err = bare(&r.stderr_str());
    assert!(
        err.contains(&"[ERROR] HashSize 1215752191 is larger than 268435456 buckets".to_string()),
        "{err:?}"
    );
    assert!(
        err.contains(&"[ERROR] can't allocate memory for the external cache".to_string()),
        "{err:?}"
    );
    if Path::new(REF).exists() {
        let theirs = run(&ns, REF, &c, &[]);
        assert_eq!(theirs.status, Exit::Code(1));
        assert!(theirs
            .stderr_str()
            .contains("can't allocate memory for the external cache"));
        let _ = std::fs::remove_file(dir.join("lock"));
    }
    // 4294967296 wraps to 0: the default, and the daemon runs
    let c = conf(&dir, "\tHashSize 4294967296\n", "Stats {\n}\n");
    assert_eq!(run(&ns, OURS, &c, &["-d"]).status, Exit::Code(0));
    assert_eq!(run(&ns, OURS, &c, &["-k"]).status, Exit::Code(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `Scheduler` cases as 1.4.7 decides them: none → SCHED_RR 99;
/// `Priority` alone → the same; a `Type` without `Priority` → refused by
/// the kernel (priority 0), a warning, the default scheduler; `Type` and
/// `Priority` → as asked.
#[test]
fn scheduler_cases_follow_1_4_7() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-sch").expect("netns");
    let dir = tmpdir("sch");
    let cases = [
        ("", (libc::SCHED_RR as u32, 99), false),
        (
            "\tScheduler { Priority 5 }\n",
            (libc::SCHED_RR as u32, 99),
            false,
        ),
        (
            "\tScheduler { Type FIFO }\n",
            (libc::SCHED_OTHER as u32, 0),
            true,
        ),
        (
            "\tScheduler { Type RR Priority 7 }\n",
            (libc::SCHED_RR as u32, 7),
            false,
        ),
        (
            "\tScheduler { Type FIFO Priority 10 }\n",
            (libc::SCHED_FIFO as u32, 10),
            false,
        ),
    ];
    for (general, want, warned) in cases {
        let c = conf(
            &dir,
            &format!("{general}\tLogFile {}/log\n", dir.display()),
            "Stats {\n}\n",
        );
        let _ = std::fs::remove_file(dir.join("log"));
        assert_eq!(run(&ns, OURS, &c, &["-d"]).status, Exit::Code(0));
        let pids: Vec<i32> = ns
            .pids()
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(c_str(&dir)))
            })
            .collect();
        assert_eq!(pids.len(), 1, "{general}");
        assert_eq!(sched_of(pids[0]), want, "{general}");
        let log = std::fs::read_to_string(dir.join("log")).unwrap();
        assert_eq!(
            log.contains("[warning] scheduler configuration failed: Invalid argument."),
            warned,
            "{general}: {log}"
        );
        assert_eq!(run(&ns, OURS, &c, &["-k"]).status, Exit::Code(0));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn c_str(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// `HashLimit` bounds the cache as a whole (IPv4 and IPv6 together), as
/// 1.4.7's one table: with 5, three IPv4 and three IPv6 flows leave 5
/// cached and one refused ("no space left in cache").
#[test]
fn hash_limit_counts_both_families() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-hl").expect("netns");
    let dir = tmpdir("hl");
    // (one lane: with N lanes each takes HashLimit/N)
    let c = conf(&dir, "\tHashLimit 5\n\tLanes 1\n", "Stats {\n}\n");
    assert_eq!(run(&ns, OURS, &c, &["-d"]).status, Exit::Code(0));
    for i in 1..=3 {
        for (s, d) in [
            (format!("10.3.0.{i}"), "10.3.1.1".to_string()),
            (format!("fd00::{i}"), "fd00::ff".to_string()),
        ] {
            let r = ns.run(
                &[
                    CT, "-I", "-p", "udp", "-s", &s, "-d", &d, "--sport", "1", "--dport", "2",
                    "-t", "100",
                ],
                None,
                T,
            );
            assert!(r.status.success(), "{}", r.stderr_str());
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let cache = run(&ns, OURS, &c, &["-s", "cache"]).stdout_str();
    assert_eq!(
        common::stat(&cache, "cache:stats\tactive objects:"),
        5,
        "{cache}"
    );
    assert_eq!(
        common::stat(&cache, "no space left in cache:"),
        1,
        "{cache}"
    );
    assert_eq!(run(&ns, OURS, &c, &["-k"]).status, Exit::Code(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `Stats { Syslog local3 }` with no stats log file: each destroyed flow
/// goes to syslog (ident conntrack-tools, facility local3, priority
/// info); a LogFile that cannot be reopened on SIGHUP is reported to
/// syslog (daemon.err), not lost in the old file.
/// The daemon runs in a private mount namespace whose /dev/log is a
/// socket of the test's.
#[test]
fn stats_syslog_logs_flows_without_a_log_file() {
    if !skip_unless_root_and(&["ip", "unshare", "mount"]) {
        return;
    }
    let ns = NetNs::new("cto-sl").expect("netns");
    let dir = tmpdir("sl");
    let sock_path = dir.join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let c = conf(
        &dir,
        &format!("\tLogFile {}/logs/daemon.log\n", dir.display()),
        "Stats {\n\tSyslog local3\n}\n",
    );
    // /dev of the daemon: a tmpfs with /dev/null (bound from the real
    // one) and /dev/log pointing at our socket
    let script = format!(
        "set -e; mkdir -p {d}/realdev; mount --bind /dev {d}/realdev; mount -t tmpfs devtmp /dev; \
         touch /dev/null; mount --bind {d}/realdev/null /dev/null; ln -s {s} /dev/log; \
         exec {OURS} -C {c}",
        d = dir.display(),
        s = sock_path.display(),
        c = c.display()
    );
    let p = ns
        .spawn(
            &[
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ],
            None,
        )
        .unwrap();
    let t0 = Instant::now();
    while !dir.join("ctl").exists() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let ct = |args: &[&str]| {
        let mut argv = vec![CT];
        argv.extend(args);
        assert!(ns.run(&argv, None, T).status.success());
    };
    ct(&[
        "-I", "-p", "udp", "-s", "10.3.0.1", "-d", "10.3.0.2", "--sport", "1", "--dport", "2",
        "-t", "100",
    ]);
    ct(&["-D", "-p", "udp"]);
    let mut got = String::new();
    let mut buf = [0u8; 2048];
    // (a stop and continue of the test process interrupts a timed wait)
    let recv = |buf: &mut [u8]| loop {
        match sock.recv(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    };
    while !got.contains("src=10.3.0.1") {
        let n = recv(&mut buf).expect("a syslog message");
        got = String::from_utf8_lossy(&buf[..n]).into_owned();
    }
    // the log file's directory vanishes, then SIGHUP: the failed reopen
    // is not silent (daemon.err in syslog: <27>)
    std::fs::remove_dir_all(dir.join("logs")).unwrap();
    let pid = ns
        .pids()
        .into_iter()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with(OURS.as_bytes()))
        })
        .expect("daemon pid");
    // SAFETY: kill(2) on the daemon's pid.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let mut reopen = String::new();
    while !reopen.contains("can't reopen log file") {
        let n = recv(&mut buf).expect("the reopen error in syslog");
        reopen = String::from_utf8_lossy(&buf[..n]).into_owned();
    }
    assert!(reopen.starts_with("<27>"), "{reopen}");
    let _ = std::process::Command::new(OURS)
        .args(["-C", c.to_str().unwrap(), "-k"])
        .output();
    let _ = p.finish(T);
    // <PRI> = facility local3 (19) * 8 + info (6) = 158
    assert!(got.starts_with("<158>"), "{got}");
    assert!(got.contains("conntrack-tools["), "{got}");
    assert!(
        got.contains("udp      17 src=10.3.0.1 dst=10.3.0.2 sport=1 dport=2"),
        "{got}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-R` and `-F` alone ask for both tables: with `ExpectationSync` the
/// expectation table is resynced and flushed too, logged and counted as
/// 1.4.7 does (whose log is the oracle when it is installed).
#[test]
fn resync_and_flush_cover_expectations() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let mut bins = vec![OURS];
    if Path::new(REF).exists() {
        bins.push(REF);
    }
    let mut logs = Vec::new();
    for (k, bin) in bins.iter().enumerate() {
        let ns = NetNs::new("cto-expsync").expect("netns");
        let dir = tmpdir(&format!("expsync{k}"));
        let sync = "Sync {\n\tMode NOTRACK { }\n\tUDP {\n\t\tIPv4_address 127.0.0.1\n\t\t\
             IPv4_Destination_Address 127.0.0.1\n\t\tPort 3790\n\t\tInterface lo\n\t}\n\t\
             Options { ExpectationSync On }\n}\n";
        let log = dir.join("log");
        let c = conf(&dir, &format!("\tLogFile {}\n", log.display()), sync);
        assert_eq!(run(&ns, bin, &c, &["-d"]).status, Exit::Code(0), "{bin}");
        for req in ["-R", "-F"] {
            assert!(run(&ns, bin, &c, &[req]).status.success(), "{bin} {req}");
        }
        std::thread::sleep(Duration::from_millis(200));
        let rt = run(&ns, bin, &c, &["-s", "runtime"]).stdout_str();
        assert_eq!(common::stat(&rt, "flush kernel table:"), 2, "{bin}: {rt}");
        assert_eq!(
            common::stat(&rt, "resync with kernel table:"),
            2,
            "{bin}: {rt}"
        );
        let _ = run(&ns, bin, &c, &["-k"]);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = bare(&text)
            .into_iter()
            // (with lanes, the other lanes' lines name their lane)
            .filter(|l| !l.contains("[lane "))
            .filter(|l| l.contains("resync with master") || l.contains("flushing kernel"))
            .collect();
        logs.push(lines);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(
        logs[0],
        [
            "[notice] resync with master conntrack table",
            "[notice] resync with master expect table",
            "[notice] flushing kernel conntrack table",
            "[notice] flushing kernel expect table",
        ]
    );
    if let Some(oracle) = logs.get(1) {
        assert_eq!(&logs[0], oracle, "ours, then 1.4.7");
    }
}

/// ALARM runs one lane whatever `Lanes` says, and says so: an idle ALARM
/// peer sends nothing, so the lanes could not follow a peer with fewer
/// (a 1.4.x peer lost a third of the flows for good with `Lanes 2`).
#[test]
fn alarm_runs_one_lane_and_ignores_resync_and_bulk_requests() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-alarm").expect("netns");
    let dir = tmpdir("alarm");
    let log = dir.join("log");
    let sync = "Sync {\n\tMode ALARM { RefreshTime 5 CacheTimeout 30 }\n\tUDP {\n\t\t\
                IPv4_address 127.0.0.1\n\t\tIPv4_Destination_Address 127.0.0.1\n\t\t\
                Port 3791\n\t\tInterface lo\n\t}\n}\n";
    let c = conf(
        &dir,
        &format!("\tLanes 2\n\tLogFile {}\n", log.display()),
        sync,
    );
    let d = run(&ns, OURS, &c, &["-d"]);
    assert_eq!(d.status, Exit::Code(0), "{}", d.stderr_str());
    // `-n` and `-B` do nothing in ALARM (1.4.7 has no handler for them
    // there), and say nothing
    for req in ["-n", "-B"] {
        assert_eq!(run(&ns, OURS, &c, &[req]).status, Exit::Code(0), "{req}");
    }
    let _ = run(&ns, OURS, &c, &["-k"]);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("[warning] Lanes 2: ALARM runs one lane"),
        "{text}"
    );
    assert!(!text.contains("[lane 1]"), "one lane: {text}");
    for line in ["resync requested", "sending bulk update"] {
        assert!(!text.contains(line), "ALARM: {line}\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lane i binds every channel's port + i: a port that would pass 65535
/// (and wrap to another) is refused with the file and the block's line
/// and column; the same port with one lane runs.
#[test]
fn a_channel_port_that_lanes_would_wrap_is_refused() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-lport").expect("netns");
    let dir = tmpdir("lport");
    let sync = "Sync {\n\tMode FTFW {\n\t}\n\tUDP {\n\t\t\
                IPv4_address 127.0.0.1\n\t\tIPv4_Destination_Address 127.0.0.1\n\t\t\
                Port 65535\n\t\tInterface lo\n\t}\n}\n";
    let c = conf(&dir, "\tLanes 2\n", sync);
    let r = run(&ns, OURS, &c, &[]);
    assert_eq!(r.status, Exit::Code(1));
    let err = bare(&r.stderr_str());
    // General (6 lines), Sync, Mode FTFW { }, then the UDP block
    let want = format!(
        "[ERROR] {}:10:2: the UDP block's port 65535 + 1 passes 65535: with Lanes 2, lane i \
         binds every channel's port + i",
        c.display()
    );
    assert!(err.contains(&want), "{err:?}");
    assert!(
        err.contains(&"[ERROR] conntrackd cannot start, please review your configuration".into()),
        "{err:?}"
    );
    let c = conf(&dir, "\tLanes 1\n", sync);
    let d = run(&ns, OURS, &c, &["-d"]);
    assert_eq!(d.status, Exit::Code(0), "{}", d.stderr_str());
    assert_eq!(run(&ns, OURS, &c, &["-k"]).status, Exit::Code(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// UDP channel sockets bind with SO_REUSEADDR, as 1.4.7's: two channels
/// on one address and port start (1.4.7 starts too), where the second
/// bind failed with EADDRINUSE after retrying for 10 s.
#[test]
fn udp_channels_on_one_port_start_as_with_1_4_7() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("cto-udp2").expect("netns");
    let dir = tmpdir("udp2");
    let udp = "\tUDP {\n\t\tIPv4_address 127.0.0.1\n\t\tIPv4_Destination_Address 127.0.0.2\n\t\t\
               Port 3780\n\t\tInterface lo\n\t}\n";
    let sync = format!("Sync {{\n\tMode FTFW {{\n\t}}\n{udp}{udp}}}\n");
    let mut bins = vec![OURS];
    if Path::new(REF).exists() {
        bins.push(REF);
    }
    for bin in bins {
        // (ours with one lane: with more, a lane's port may be another
        // channel's, and the ports are not shared)
        let general = if bin == OURS { "\tLanes 1\n" } else { "" };
        let c = conf(&dir, general, &sync);
        let t0 = Instant::now();
        let d = run(&ns, bin, &c, &["-d"]);
        assert_eq!(d.status, Exit::Code(0), "{bin}: {}", d.stderr_str());
        assert!(t0.elapsed() < Duration::from_secs(5), "{bin}");
        assert_eq!(run(&ns, bin, &c, &["-k"]).status, Exit::Code(0), "{bin}");
        let _ = std::fs::remove_file(dir.join("lock"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-i expect` lists the expectation cache in 1.4.7's order: its hash
/// table's buckets in turn (jhash2 of the master tuple, scaled to
/// HashSize), each newest first. Ten FTP masters with an expectation
/// each, HashSize 64; compared line for line with 1.4.7's listing.
#[test]
fn expectations_are_listed_in_1_4_7_order() {
    const PERF: &str = env!("CARGO_BIN_EXE_ctperf");
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    if !Path::new(REF).exists() {
        eprintln!("SKIP: {REF} not installed (the order is 1.4.7's)");
        return;
    }
    let mut lists = Vec::new();
    for (k, bin) in [OURS, REF].into_iter().enumerate() {
        let ns = NetNs::new("cto-exporder").expect("netns");
        let dir = tmpdir(&format!("exporder{k}"));
        let sync = "Sync {\n\tMode FTFW { }\n\tUDP {\n\t\tIPv4_address 127.0.0.1\n\t\t\
             IPv4_Destination_Address 127.0.0.2\n\t\tPort 3792\n\t\tInterface lo\n\t}\n\t\
             Options { ExpectationSync { ftp } }\n}\n";
        // (ours with one lane: with more, the lanes' lists follow each other)
        let general = match bin == OURS {
            true => "\tHashSize 64\n\tLanes 1\n",
            false => "\tHashSize 64\n",
        };
        let c = conf(&dir, general, sync);
        assert_eq!(run(&ns, bin, &c, &["-d"]).status, Exit::Code(0), "{bin}");
        let f = ns.run(&[PERF, "fill", "-n", "10", "--helper", "ftp"], None, T);
        assert_eq!(f.status, Exit::Code(0), "{}", f.stderr_str());
        let wait = |args: &[&str], n: usize| {
            let t0 = Instant::now();
            loop {
                let out = run(&ns, bin, &c, args).stdout_str();
                if out.lines().count() >= n || t0.elapsed() > Duration::from_secs(10) {
                    return out;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        assert_eq!(wait(&["-i"], 10).lines().count(), 10, "{bin}: masters");
        // ctperf's masters: 10.0.0.0:10000+i -> 10.255.255.254:80
        for i in 0..10 {
            let e = format!(
                "-I expect -s 10.0.0.0 -d 10.255.255.254 -p tcp --sport {} --dport 80 -t 200 \
                 --tuple-src 10.9.{i}.1 --tuple-dst 10.8.{i}.2 --mask-src 255.255.255.255 \
                 --mask-dst 255.255.255.255 --tuple-port-src 0 --tuple-port-dst {} \
                 --mask-port-src 0 --mask-port-dst 65535",
                10000 + i,
                5000 + i
            );
            let mut argv = vec![CT];
            argv.extend(e.split_whitespace());
            assert_eq!(ns.run(&argv, None, T).status, Exit::Code(0), "{e}");
        }
        let listed: Vec<String> = wait(&["-i", "expect"], 10)
            .lines()
            .map(|l| l.split(" [active since").next().unwrap_or("").to_string())
            .collect();
        let _ = run(&ns, bin, &c, &["-k"]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(listed.len(), 10, "{bin}: {listed:#?}");
        lists.push(listed);
    }
    assert_eq!(lists[0], lists[1], "ours, then 1.4.7");
}
