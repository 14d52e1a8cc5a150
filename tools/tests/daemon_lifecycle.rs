//! `conntrackd` as operators and scripts run it, each test in a fresh
//! network namespace: `-d` returns only once the daemon answers (so `-d;
//! -s; -k` back to back never fails and never leaves a daemon behind),
//! fails with exit status 1 and 1.4.7's messages on stderr when start-up
//! fails, SIGTERM ends it at once, `-k` returns once the lock and socket
//! are gone, and the control socket serves any number of clients without
//! letting a stalled or idle one hold the others. Skips without root.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::netns::{skip_unless_root_and, Exit, NetNs};

const OURS: &str = env!("CARGO_BIN_EXE_conntrackd");
const PERF: &str = env!("CARGO_BIN_EXE_ctperf");
const T: Duration = Duration::from_secs(30);

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ctl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A stats-mode config in `dir` with `general` added to `General`.
fn conf(dir: &Path, general: &str, rest: &str) -> PathBuf {
    let p = dir.join("conntrackd.conf");
    std::fs::write(
        &p,
        format!(
            "General {{\n\tSystemd off\n\tHashSize 8192\n\tLockFile {d}/lock\n\tUNIX {{ Path {d}/ctl }}\n\tLogFile {d}/log\n{general}}}\n{rest}",
            d = dir.display()
        ),
    )
    .unwrap();
    p
}

const STATS: &str = "Stats {\n}\n";

fn run(ns: &NetNs, conf: &Path, args: &[&str]) -> common::netns::RunOutput {
    let mut argv = vec![OURS, "-C", conf.to_str().unwrap()];
    argv.extend(args);
    ns.run(&argv, None, T)
}

/// The daemon processes of this test's config still alive in `ns`.
fn daemons(ns: &NetNs, conf: &Path) -> Vec<i32> {
    ns.pids_with_arg(conf.to_str().unwrap())
}

/// `-d; -s; -k`, 30 times in one namespace: every `-s` answers, every
/// `-k` finds the daemon, nothing is left running, lock and socket gone.
#[test]
fn start_ask_kill_back_to_back() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctl-loop").expect("netns");
    let dir = tmpdir("loop");
    let c = conf(&dir, "", STATS);
    for i in 0..30 {
        let d = run(&ns, &c, &["-d"]);
        assert_eq!(d.status, Exit::Code(0), "round {i}: -d: {}", d.stderr_str());
        assert_eq!(d.stdout_str(), "", "-d prints nothing when it works");
        let s = run(&ns, &c, &["-s"]);
        assert_eq!(s.status, Exit::Code(0), "round {i}: -s: {}", s.stderr_str());
        assert!(s.stdout_str().contains("cache stats:"), "round {i}");
        let k = run(&ns, &c, &["-k"]);
        assert_eq!(k.status, Exit::Code(0), "round {i}: -k: {}", k.stderr_str());
        assert!(
            !dir.join("lock").exists(),
            "round {i}: -k returned, lock gone"
        );
        assert!(!dir.join("ctl").exists(), "round {i}: socket gone");
    }
    assert_eq!(daemons(&ns, &c), Vec::<i32>::new(), "no daemon left");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every start-up failure under `-d`: exit status 1, the reason and
/// 1.4.7's closing line on stderr, no lock left behind, no daemon: a
/// channel address that is not ours, a channel Interface that does not
/// exist, a Sync section without a channel, a log file that cannot be
/// opened, a lock file that exists.
#[test]
fn detached_start_up_failures_exit_1_with_the_reason() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctl-fail").expect("netns");
    let dir = tmpdir("fail");
    let d = dir.display().to_string();
    let udp = |addr: &str, dev: &str| {
        format!(
            "Sync {{\n\tMode FTFW {{ }}\n\tUDP {{\n\t\tIPv4_address {addr}\n\t\tIPv4_Destination_Address 10.77.0.2\n\t\tPort 3780\n\t\tInterface {dev}\n\t}}\n}}\n"
        )
    };
    let cases: Vec<(String, String, Vec<&str>)> = vec![
        (
            String::new(),
            udp("10.99.99.99", "lo"),
            vec![
                "can't open channel socket",
                // (1.4.7's line when its sync mode cannot start)
                "initialization failed",
                "conntrackd cannot start, please review your configuration",
            ],
        ),
        (
            String::new(),
            udp("127.0.0.1", "nosuchif0"),
            vec![
                "can't open channel socket: No such device",
                "initialization failed",
                "conntrackd cannot start, please review your configuration",
            ],
        ),
        (
            String::new(),
            "Sync {\n\tMode FTFW { }\n}\n".to_string(),
            vec!["can't open channel socket", "no dedicated link"],
        ),
        (
            format!("\tLogFile {d}/no/such/dir/log\n"),
            STATS.to_string(),
            vec!["can't open logfile"],
        ),
    ];
    for (general, rest, want) in cases {
        // (the LogFile line of `conf` comes first; a second one wins)
        let c = conf(&dir, &general, &rest);
        let r = run(&ns, &c, &["-d"]);
        assert_eq!(
            r.status,
            Exit::Code(1),
            "{general}{rest}: {}",
            r.stderr_str()
        );
        for w in want {
            assert!(r.stderr_str().contains(w), "{w:?} in {}", r.stderr_str());
        }
        assert!(!dir.join("lock").exists(), "lock removed");
        assert_eq!(daemons(&ns, &c), Vec::<i32>::new());
    }
    // a stale lock: 1.4.7's message, exit 1, and the lock is not ours to remove
    let c = conf(&dir, "", STATS);
    std::fs::write(dir.join("lock"), b"").unwrap();
    let r = run(&ns, &c, &["-d"]);
    assert_eq!(r.status, Exit::Code(1));
    assert!(
        r.stderr_str()
            .contains("exists, perhaps conntrackd already running?"),
        "{}",
        r.stderr_str()
    );
    assert!(dir.join("lock").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM is acted on at once (not on the next one-second tick): the
/// lock is gone well within half a second, and a new `-d` starts.
#[test]
fn sigterm_ends_the_daemon_at_once() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctl-term").expect("netns");
    let dir = tmpdir("term");
    let c = conf(&dir, "", STATS);
    for _ in 0..3 {
        assert_eq!(run(&ns, &c, &["-d"]).status, Exit::Code(0));
        let pids = daemons(&ns, &c);
        assert_eq!(pids.len(), 1, "{pids:?}");
        // let the loop settle into its one-second wait
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        // SAFETY: kill(2) on a pid we just read.
        unsafe { libc::kill(pids[0], libc::SIGTERM) };
        while dir.join("lock").exists() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = t0.elapsed();
        assert!(!dir.join("lock").exists());
        assert!(took < Duration::from_millis(500), "SIGTERM took {took:?}");
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert_eq!(log.matches("---- shutdown received ----").count(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `code` on a raw control connection.
fn connect(path: &Path, code: i32) -> UnixStream {
    let mut s = UnixStream::connect(path).expect("connect");
    s.write_all(&code.to_ne_bytes()).unwrap();
    s
}

/// With 100k flows cached: a client stalled on a `-i` dump and one that
/// connected and sent nothing hold nobody: `-s` answers within 0.5 s
/// every time (and within 1 s with every dump slot stalled and 300
/// clients gone while waiting for one), and the stalled reader still gets
/// the whole dump once it reads. The idle client is closed and counted
/// (`local read failed`).
#[test]
fn control_plane_serves_around_stalled_and_idle_clients() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctl-ctl").expect("netns");
    let dir = tmpdir("ctl");
    let c = conf(
        &dir,
        "\tNetlinkBufferSize 16777216\n\tNetlinkBufferSizeMaxGrowth 33554432\n\tNetlinkOverrunResync 1\n",
        STATS,
    );
    assert_eq!(run(&ns, &c, &["-d"]).status, Exit::Code(0));
    let n = 100_000;
    let f = ns.run(&[PERF, "fill", "-n", &n.to_string()], None, T);
    assert!(f.status.success(), "{}", f.stderr_str());
    let active = |out: &str| -> u64 { common::stat(out, "current active connections:") };
    let t0 = Instant::now();
    let mut cached = 0;
    while t0.elapsed() < Duration::from_secs(20) {
        cached = active(&run(&ns, &c, &["-s"]).stdout_str());
        if cached == n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cached, n, "the cache holds the table");
    let sock = dir.join("ctl");
    // 16 = CT_DUMP_INTERNAL; read nothing for now
    let stalled = connect(&sock, 16);
    let idle = UnixStream::connect(&sock).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // `-s` answers, `times` times, each within `ms`
    let answers = |times: usize, ms: u64, why: &str| {
        for _ in 0..times {
            let t = Instant::now();
            let s = run(&ns, &c, &["-s"]);
            let took = t.elapsed();
            assert_eq!(active(&s.stdout_str()), n);
            assert!(took < Duration::from_millis(ms), "-s took {took:?}{why}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    answers(5, 500, "");
    // Every dump slot held by a stalled reader, then 300 clients that ask
    // for a dump and go away at once: those waiting for a dump slot give
    // their client slot back when their client has gone, so `-s` still
    // answers (before, they held all 256 until a dump slot was free).
    let more: Vec<UnixStream> = (1..ct_tools::daemon::control::MAX_DUMPS)
        .map(|_| connect(&sock, 16))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..300 {
        drop(connect(&sock, 16));
    }
    std::thread::sleep(Duration::from_millis(300));
    answers(3, 1000, " behind gone clients");
    drop(more);
    // the stalled reader reads now, slowly at first
    let mut stalled = stalled;
    let mut dump = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        let k = stalled.read(&mut buf).unwrap();
        dump.extend_from_slice(&buf[..k]);
        std::thread::sleep(Duration::from_millis(10));
    }
    stalled.read_to_end(&mut dump).unwrap();
    let text = String::from_utf8(dump).unwrap();
    assert_eq!(text.lines().count() as u64, n, "the whole dump");
    assert!(text.lines().all(|l| l.contains(" [active since ")));
    // the idle client (still connected) is closed after the request
    // timeout, and counted
    let t = Instant::now();
    let mut failed = 0;
    while t.elapsed() < Duration::from_secs(10) && failed == 0 {
        failed = common::stat(
            &run(&ns, &c, &["-s", "runtime"]).stdout_str(),
            "local read failed:",
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(failed, 1, "the idle client is counted");
    let mut idle = idle;
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0, "and closed");
    assert_eq!(run(&ns, &c, &["-k"]).status, Exit::Code(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client the daemon does not serve (not root, not the daemon's user)
/// is told so and exits 1, instead of printing nothing and succeeding.
#[test]
fn a_refused_client_says_so() {
    if !skip_unless_root_and(&["ip", "setpriv", "/usr/bin/python3"]) {
        return;
    }
    let ns = NetNs::new("ctl-perm").expect("netns");
    let dir = tmpdir("perm");
    let c = conf(&dir, "", STATS);
    assert_eq!(run(&ns, &c, &["-d"]).status, Exit::Code(0));
    // let `nobody` reach the files (the socket itself stays refused by
    // credentials, not by its mode)
    for p in [dir.as_path(), &c, &dir.join("ctl")] {
        let mode = if p.is_dir() { 0o755 } else { 0o666 };
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let r = ns.run(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            OURS,
            "-C",
            c.to_str().unwrap(),
            "-s",
        ],
        None,
        T,
    );
    assert_eq!(r.status, Exit::Code(1), "{}", r.stderr_str());
    assert!(
        r.stderr_str().contains("permission denied"),
        "{}",
        r.stderr_str()
    );
    assert_eq!(r.stdout_str(), "");
    // and the daemon itself serves it nothing: a raw request (21 = -s)
    // from `nobody` gets the connection closed without a byte
    let raw = format!(
        "import socket,struct\n\
         s=socket.socket(socket.AF_UNIX);s.connect('{}');s.settimeout(5)\n\
         try:\n s.sendall(struct.pack('i',21));print(len(s.recv(4096)))\n\
         except (BrokenPipeError,ConnectionResetError):\n print(0)",
        dir.join("ctl").display()
    );
    let r = ns.run(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            // (the system's python: a per-user one may not be reachable
            // by `nobody`)
            "/usr/bin/python3",
            "-c",
            &raw,
        ],
        None,
        T,
    );
    assert!(r.status.success(), "{}", r.stderr_str());
    assert_eq!(r.stdout_str().trim(), "0", "served nothing");
    assert_eq!(run(&ns, &c, &["-k"]).status, Exit::Code(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// What conntrack-tools' own daemon suite (tests/conntrackd) checks of a
/// stats-mode daemon started with `-d`: every `-s` view answers with exit
/// status 0 (`cache stats`, `uptime`, `traffic` where it has them); and
/// its `hash_defaults_segfault` case: a NOTRACK daemon on a multicast
/// channel over `lo` with socket buffers and `Checksum on`, `-d`, `-s`
/// (which mentions the cache), `-k`.
#[test]
fn upstream_suite_cases_stats_views_and_multicast_on_lo() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctl-up").expect("netns");
    let dir = tmpdir("up");
    let c = conf(
        &dir,
        "",
        "Stats {\n\tLogFile on\n}\n"
            .replace("on", &format!("{}/flows.log", dir.display()))
            .as_str(),
    );
    assert_eq!(run(&ns, &c, &["-d"]).status, Exit::Code(0));
    for (view, needle) in [
        (vec!["-s"], Some("cache stats")),
        (vec!["-s", "network"], None),
        (vec!["-s", "runtime"], Some("uptime")),
        (vec!["-s", "process"], None),
        (vec!["-s", "queue"], None),
        (vec!["-s", "ct"], Some("traffic")),
        (vec!["-s", "expect"], None),
    ] {
        let r = run(&ns, &c, &view);
        assert_eq!(r.status, Exit::Code(0), "{view:?}: {}", r.stderr_str());
        if let Some(n) = needle {
            assert!(r.stdout_str().contains(n), "{view:?}: {}", r.stdout_str());
        }
    }
    assert_eq!(run(&ns, &c, &["-k"]).status, Exit::Code(0));
    let mc = conf(
        &dir,
        &format!("\tLogFile {}/daemon.log\n\tNetlinkBufferSize 2097152\n\tNetlinkBufferSizeMaxGrowth 8388608\n", dir.display()),
        "Sync {\n\tMode NOTRACK { }\n\tMulticast {\n\t\tIPv4_address 225.0.0.50\n\t\tGroup 3780\n\t\tIPv4_interface 127.0.0.1\n\t\tInterface lo\n\t\tSndSocketBuffer 1249280\n\t\tRcvSocketBuffer 1249280\n\t\tChecksum on\n\t}\n}\n",
    );
    let d = run(&ns, &mc, &["-d"]);
    assert_eq!(d.status, Exit::Code(0), "{}", d.stderr_str());
    assert!(run(&ns, &mc, &["-s"]).stdout_str().contains("cache"));
    assert_eq!(run(&ns, &mc, &["-k"]).status, Exit::Code(0));
    assert!(!dir.join("lock").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bad option with stdout and stderr on one pipe: the error line first,
/// then the usage text, as 1.4.7's fully buffered stdout has it (it
/// exits before the daemon reads its configuration or touches the
/// kernel). On a terminal the usage comes first, in both.
#[test]
fn a_bad_option_into_a_pipe_gives_the_error_then_the_usage() {
    const REF: &str = "/usr/sbin/conntrackd";
    let mut outs = Vec::new();
    for bin in [OURS, REF] {
        if bin == REF && !Path::new(REF).exists() {
            eprintln!("SKIP (1.4.7 part): {REF} not installed");
            continue;
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("'{bin}' -q 2>&1"))
            .output()
            .expect("sh");
        let text = String::from_utf8_lossy(&out.stdout).replace(bin, "BIN");
        // without the `[date] (pid=N) ` prefix
        let text: Vec<String> = text
            .lines()
            .map(|l| match l.find(") [") {
                Some(i) if l.starts_with('[') => l[i + 2..].to_string(),
                _ => l.to_string(),
            })
            .collect();
        assert_eq!(text[0], "[ERROR] Unknown option: -q", "{bin}: {text:?}");
        assert_eq!(text[1], "Connection tracking userspace daemon v1.4.7");
        outs.push(text);
    }
    if outs.len() == 2 {
        assert_eq!(outs[0], outs[1], "ours, then 1.4.7");
    }
}
