//! `conntrackd` in stats mode against the real kernel, in fresh network
//! namespaces: the stats cache mirrors the table through events, the flow
//! log gets one line per destroyed flow, `-s`/`-s cache`/`-i` answer in
//! the 1.4.7 layouts (compared with conntrackd 1.4.7 side by side when it
//! is installed), a sync-section config runs too, and an overrun (tiny
//! buffer, large burst) is counted, grows the buffer and is repaired by the
//! resync so that cache == kernel afterwards. Skips without root.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::netns::{find_tool, skip_unless_root_and, Exit, NetNs, Spawned};

const OURS: &str = env!("CARGO_BIN_EXE_conntrackd");
const CT: &str = env!("CARGO_BIN_EXE_conntrack");
const PERF: &str = env!("CARGO_BIN_EXE_ctperf");
const T: Duration = Duration::from_secs(30);

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ctd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stats_conf(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("conntrackd.conf");
    std::fs::write(
        &p,
        format!(
            "General {{\n\tSystemd off\n\tHashSize 8192\n\tLockFile {d}/lock\n\tUNIX {{ Path {d}/ctl }}\n{extra}}}\nStats {{\n\tLogFile {d}/flows.log\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    p
}

struct Daemon {
    bin: String,
    conf: PathBuf,
    proc: Option<Spawned>,
}

impl Daemon {
    fn start(ns: &NetNs, bin: &str, conf: &Path) -> Daemon {
        let sock = conf.parent().unwrap().join("ctl");
        let p = ns
            .spawn(&[bin, "-C", conf.to_str().unwrap()], None)
            .expect("spawn daemon");
        let t0 = Instant::now();
        while !sock.exists() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        Daemon {
            bin: bin.to_string(),
            conf: conf.to_path_buf(),
            proc: Some(p),
        }
    }

    fn ask(&self, args: &[&str]) -> String {
        let mut argv = vec![self.bin.as_str(), "-C", self.conf.to_str().unwrap()];
        argv.extend(args);
        let o = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .expect("client");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn stop(&mut self) -> String {
        let _ = self.ask(&["-k"]);
        let p = self.proc.take().unwrap();
        let o = p.finish(T);
        assert!(o.status.success(), "daemon exit: {}", o.status);
        o.stdout_str() + &o.stderr_str()
    }
}

fn ct(ns: &NetNs, args: &str) {
    let mut argv = vec![CT];
    argv.extend(args.split_whitespace());
    let r = ns.run(&argv, None, T);
    assert_eq!(
        r.status,
        Exit::Code(0),
        "conntrack {args}: {}",
        r.stderr_str()
    );
}

fn count(ns: &NetNs) -> usize {
    ns.run(&[CT, "-C"], None, T)
        .stdout_str()
        .trim()
        .parse()
        .unwrap()
}

/// Normalises what legitimately differs between two runs.
fn norm(s: &str) -> String {
    let mut out: Vec<String> = s
        .lines()
        .map(|l| {
            let mut l = l.to_string();
            if let Some(i) = l.find(" [active since") {
                l.truncate(i);
            }
            if let Some(i) = l.find('\t') {
                // flow log: drop the date
                if l.starts_with(char::is_alphabetic) && l[..i].contains(':') {
                    l = l[i + 1..].to_string();
                }
            }
            l
        })
        .collect();
    out.sort();
    out.join("\n")
}

/// `-i -x` with the kernel's ids masked (each run has its own entries):
/// whether an `<id>` is there is compared, not its value.
fn mask_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("<id>") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let end = rest.find('<').unwrap_or(rest.len());
        out.push('#');
        rest = &rest[end..];
    }
    out.push_str(rest);
    norm(&out.replace("<flow>", "\n<flow>"))
}

type Views = (String, String, String, String, String);

fn scenario(bin: &str, tag: &str) -> Option<Views> {
    let ns = NetNs::new(&format!("ctd-{tag}")).ok()?;
    let dir = tmpdir(tag);
    let conf = stats_conf(&dir, "");
    ct(&ns, "-I -p tcp -s 10.5.0.1 -d 10.5.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 300 -u SEEN_REPLY,ASSURED");
    let mut d = Daemon::start(&ns, bin, &conf);
    ct(
        &ns,
        "-I -p udp -s 10.5.0.3 -d 10.5.0.4 --sport 53 --dport 53 -t 300",
    );
    ct(
        &ns,
        "-I -p icmp -s 10.5.0.5 -d 10.5.0.6 --icmp-type 8 --icmp-code 0 --icmp-id 9 -t 300",
    );
    ct(&ns, "-U -s 10.5.0.3 -m 5");
    ct(&ns, "-D -p icmp");
    std::thread::sleep(Duration::from_millis(300));
    let s = d.ask(&["-s"]);
    let cache = d.ask(&["-s", "cache"]);
    let dump = d.ask(&["-i"]);
    let xml = d.ask(&["-i", "-x"]);
    d.stop();
    let flows = std::fs::read_to_string(dir.join("flows.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Some((s, cache, dump, flows, xml))
}

#[test]
fn stats_mode_mirrors_the_table() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let (s, cache, dump, flows, xml) = scenario(OURS, "ours").expect("netns");
    assert!(
        s.starts_with("cache stats:\ncurrent active connections:\t           2\n"),
        "{s}"
    );
    assert!(s.contains("traffic processed:\n"), "{s}");
    assert!(
        cache.starts_with("cache:stats\tactive objects:\t\t           2\n"),
        "{cache}"
    );
    assert_eq!(dump.lines().count(), 2, "{dump}");
    assert!(
        dump.contains("udp      17 src=10.5.0.3") && dump.contains("mark=5"),
        "{dump}"
    );
    assert!(dump
        .lines()
        .all(|l| l.ends_with("s]") && l.contains("[active since ")));
    assert_eq!(flows.lines().count(), 1, "{flows}");
    assert!(flows.contains("\ticmp     1 src=10.5.0.5"), "{flows}");
    // the kernel's id of each entry, as 1.4.7's `-i -x` shows it
    assert_eq!(xml.matches("<id>").count(), 2, "{xml}");

    // Side by side with conntrackd 1.4.7.
    if find_tool("/usr/sbin/conntrackd").is_none() {
        eprintln!("SKIP (comparison part): /usr/sbin/conntrackd not installed");
        return;
    }
    let (cs, ccache, cdump, cflows, cxml) = scenario("/usr/sbin/conntrackd", "ref").expect("netns");
    assert_eq!(s, cs, "-s differs from 1.4.7");
    assert_eq!(cache, ccache, "-s cache differs from 1.4.7");
    assert_eq!(norm(&dump), norm(&cdump), "-i differs from 1.4.7");
    assert_eq!(mask_ids(&xml), mask_ids(&cxml), "-i -x differs from 1.4.7");
    assert_eq!(norm(&flows), norm(&cflows), "flow log differs from 1.4.7");
}

#[test]
fn overrun_is_counted_grown_and_repaired() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctd-ovr").expect("netns");
    let dir = tmpdir("ovr");
    let conf = stats_conf(
        &dir,
        "\tNetlinkBufferSize 65536\n\tNetlinkBufferSizeMaxGrowth 262144\n\tNetlinkOverrunResync 1\n",
    );
    let mut d = Daemon::start(&ns, OURS, &conf);
    let fill = ns.run(&[PERF, "fill", "-n", "40000"], None, T);
    assert!(fill.status.success(), "{}", fill.stderr_str());
    // Destroy half of them too, so that lost DESTROY events must be swept.
    let del = ns.run(&[PERF, "fill", "-n", "20000", "--delete"], None, T);
    assert!(del.status.success(), "{}", del.stderr_str());
    let kernel = count(&ns);
    assert_eq!(kernel, 20000);
    // Wait for the resync (1 s after the last overrun).
    let t0 = Instant::now();
    let mut cached = 0;
    while t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(500));
        let s = d.ask(&["-s"]);
        cached = s
            .lines()
            .next()
            .and_then(|_| s.lines().nth(1))
            .and_then(|l| l.split('\t').next_back())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        // equal counts are not enough: lost NEW and DESTROY events can
        // cancel out; the resync must have run too
        let resynced = d
            .ask(&["-s", "runtime"])
            .lines()
            .find(|l| l.contains("resync with kernel table:"))
            .and_then(|l| l.split('\t').next_back())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
            > 0;
        if cached == kernel && resynced {
            break;
        }
    }
    let rt = d.ask(&["-s", "runtime"]);
    let log = d.stop();
    let field = |name: &str| -> u64 {
        rt.lines()
            .find(|l| l.contains(name))
            .and_then(|l| l.split('\t').next_back())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(field("netlink overrun:") > 0, "{rt}");
    assert!(field("resync with kernel table:") > 0, "{rt}");
    assert!(field("current buffer size") > 65536, "buffer grew: {rt}");
    assert!(log.contains("has been doubled to"), "{log}");
    // at most once a second in each lane (a burst is several congestion
    // episodes: doubling on each took a buffer to its maximum within a
    // second)
    let mut per_second = std::collections::HashMap::new();
    for l in log.lines().filter(|l| l.contains("has been doubled to")) {
        let second = l.split(']').next().unwrap_or("");
        let lane = l.split("[lane ").nth(1).and_then(|r| r.split(']').next());
        *per_second.entry((second, lane)).or_insert(0) += 1;
    }
    assert!(per_second.values().all(|&n| n == 1), "{log}");
    assert_eq!(cached, kernel, "cache == kernel after the resync\n{rt}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn mask_channel(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("control ->") && !l.starts_with("object ->"))
        .map(|l| {
            if l.starts_with("resent queue") {
                "resent queue (len=#)".to_string()
            } else if l.contains(" sent ")
                || l.contains(" send ")
                || l.starts_with("current elements")
            {
                l.split_whitespace()
                    .map(|w| {
                        if w.bytes().all(|b| b.is_ascii_digit()) {
                            "#"
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sync_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("conntrackd.conf");
    std::fs::write(
        &conf,
        format!(
            "Sync {{\n\tMode FTFW {{ }}\n\tUDP {{ IPv4_address 127.0.0.1\n\t IPv4_Destination_Address 127.0.0.2\n\t Port 3780\n\t Interface lo }}\n}}\nGeneral {{\n\tSystemd off\n\tLockFile {d}/lock\n\tUNIX {{ Path {d}/ctl }}\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    conf
}

/// Runs a sync-mode daemon with two flows and returns its answers to the
/// `-s` family, plus the number of `-i` lines, `-e` and the log.
fn sync_scenario(bin: &str, tag: &str) -> (Vec<String>, usize, String, String) {
    let ns = NetNs::new(&format!("ctd-{tag}")).expect("netns");
    let dir = tmpdir(tag);
    let conf = sync_conf(&dir);
    ct(
        &ns,
        "-I -p tcp -s 10.6.0.1 -d 10.6.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 300",
    );
    let mut d = Daemon::start(&ns, bin, &conf);
    ct(
        &ns,
        "-I -p udp -s 10.6.0.3 -d 10.6.0.4 --sport 5 --dport 6 -t 300",
    );
    std::thread::sleep(Duration::from_millis(300));
    let views: Vec<String> = ["", "network", "link", "queue", "rsqueue", "process"]
        .iter()
        .map(|v| {
            if v.is_empty() {
                d.ask(&["-s"])
            } else {
                d.ask(&["-s", v])
            }
        })
        .collect();
    let internal = d.ask(&["-i"]).lines().count();
    let external = d.ask(&["-e"]);
    let _ = d.ask(&["-c"]);
    let log = d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    (views, internal, external, log)
}

#[test]
fn sync_section_runs_and_answers() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let (views, internal, external, log) = sync_scenario(OURS, "sync");
    let s = &views[0];
    assert!(
        s.starts_with("cache internal:\ncurrent active connections:\t           2\n"),
        "{s}"
    );
    assert!(
        s.contains("cache external:\ncurrent active connections:\t           0\n"),
        "{s}"
    );
    assert!(s.contains("UDP traffic (active device=lo):\n"), "{s}");
    assert!(s.contains("message tracking:\n"), "{s}");
    assert_eq!(internal, 2);
    assert_eq!(external, "");
    assert!(log.contains("Committed 0 new entries"), "{log}");
    if find_tool("/usr/sbin/conntrackd").is_none() {
        eprintln!("SKIP (comparison part): /usr/sbin/conntrackd not installed");
        return;
    }
    let (cviews, cinternal, cexternal, _) = sync_scenario("/usr/sbin/conntrackd", "syncref");
    for (i, name) in [
        "-s",
        "-s network",
        "-s link",
        "-s queue",
        "-s rsqueue",
        "-s process",
    ]
    .iter()
    .enumerate()
    {
        // The sync channel itself is the next issue's work: our stub sends
        // nothing yet, so the channel's counters are masked.
        assert_eq!(
            mask_channel(&views[i]),
            mask_channel(&cviews[i]),
            "`conntrackd {name}` differs from 1.4.7"
        );
    }
    assert_eq!(internal, cinternal);
    assert_eq!(external, cexternal);
}

#[test]
fn reset_timers_flushes_the_kernel_after_purge_timeout() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctd-purge").expect("netns");
    let dir = tmpdir("purge");
    let conf = sync_conf(&dir);
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("\tMode FTFW { }\n", "\tMode FTFW { }\n\tPurgeTimeout 1\n");
    std::fs::write(&conf, text).unwrap();
    let mut d = Daemon::start(&ns, OURS, &conf);
    ct(
        &ns,
        "-I -p udp -s 10.7.0.1 -d 10.7.0.2 --sport 5 --dport 6 -t 300",
    );
    ct(
        &ns,
        "-I -p udp -s 10.7.0.3 -d 10.7.0.2 --sport 5 --dport 6 -t 300",
    );
    assert_eq!(count(&ns), 2);
    let _ = d.ask(&["-t"]);
    let t0 = Instant::now();
    while count(&ns) != 0 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(&ns), 0, "kernel flushed after PurgeTimeout");
    let log = d.stop();
    assert!(log.contains("flushing conntrack table in 1 secs"), "{log}");
    assert!(
        log.contains("flushing kernel conntrack table (scheduled)"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn polling_mode_follows_the_table() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctd-poll").expect("netns");
    let dir = tmpdir("poll");
    let conf = stats_conf(&dir, "\tPollSecs 1\n");
    let mut d = Daemon::start(&ns, OURS, &conf);
    ct(
        &ns,
        "-I -p udp -s 10.8.0.1 -d 10.8.0.2 --sport 5 --dport 6 -t 300",
    );
    ct(
        &ns,
        "-I -p udp -s 10.8.0.3 -d 10.8.0.2 --sport 5 --dport 6 -t 300",
    );
    let cached = |d: &Daemon| d.ask(&["-i"]).lines().count();
    let t0 = Instant::now();
    while cached(&d) != 2 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(cached(&d), 2, "picked up by the periodic dump");
    ct(&ns, "-D -s 10.8.0.1");
    let t0 = Instant::now();
    while cached(&d) != 1 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(cached(&d), 1, "vanished entry purged");
    let log = d.stop();
    assert!(log.contains("running in polling mode"), "{log}");
    let flows = std::fs::read_to_string(dir.join("flows.log")).unwrap_or_default();
    assert!(flows.contains("src=10.8.0.1"), "{flows}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the filter scenario with `Filter From <space>` and returns the
/// cached entries (sorted), the `events filtered` counter and the log.
fn filter_scenario(space: &str, tag: &str) -> (Vec<String>, u64, String) {
    let ns = NetNs::new(&format!("ctd-{tag}")).expect("netns");
    let dir = tmpdir(tag);
    let filter = format!(
        "\tEventIterationLimit 1\n\tNetlinkBufferSize 8388608\n\tNetlinkBufferSizeMaxGrowth 16777216\n\tFilter From {space} {{\n\t\tProtocol Ignore {{ UDP }}\n\t\t\
         Address Ignore {{\n\t\t\tIPv4_address 10.9.9.0/24\n\t\t\tIPv6_address fd00:9::/64\n\t\t}}\n\t\t\
         State Accept {{ ESTABLISHED for TCP }}\n\t}}\n"
    );
    let conf = stats_conf(&dir, &filter);
    let mut d = Daemon::start(&ns, OURS, &conf);
    let est = "--state ESTABLISHED -t 300 -u SEEN_REPLY,ASSURED";
    // passes
    ct(
        &ns,
        &format!("-I -p tcp -s 10.5.0.1 -d 10.5.0.2 --sport 1 --dport 2 {est}"),
    );
    ct(
        &ns,
        &format!("-I -p tcp -s fd00:1::1 -d fd00:1::2 --sport 1 --dport 2 {est}"),
    );
    // ignored: protocol, source network, destination network (the kernel
    // checks orig.dst; user space reply.src, the same address here),
    // IPv6 network, state
    ct(
        &ns,
        "-I -p udp -s 10.5.0.3 -d 10.5.0.4 --sport 53 --dport 53 -t 300",
    );
    ct(
        &ns,
        &format!("-I -p tcp -s 10.9.9.5 -d 10.5.0.2 --sport 1 --dport 2 {est}"),
    );
    ct(
        &ns,
        &format!("-I -p tcp -s 10.5.0.7 -d 10.9.9.8 --sport 1 --dport 2 {est}"),
    );
    ct(
        &ns,
        &format!("-I -p tcp -s fd00:9::5 -d fd00:1::2 --sport 1 --dport 2 {est}"),
    );
    ct(
        &ns,
        "-I -p tcp -s 10.5.0.9 -d 10.5.0.2 --sport 1 --dport 2 --state SYN_SENT -t 300",
    );
    // a burst through EventIterationLimit 1: all of it must arrive
    let fill = ns.run(&[PERF, "fill", "-n", "3000", "--start", "1000000"], None, T);
    assert_eq!(fill.status, Exit::Code(0), "{}", fill.stderr_str());
    let t0 = Instant::now();
    let mut lines: Vec<String> = Vec::new();
    while t0.elapsed() < Duration::from_secs(10) {
        lines = d.ask(&["-i"]).lines().map(|l| l.to_string()).collect();
        if lines.len() >= 3002 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let rt = d.ask(&["-s", "runtime"]);
    let filtered = rt
        .lines()
        .find(|l| l.contains("events filtered:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no filtered counter in {rt}"));
    let log = d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let mut mine: Vec<String> = lines
        .into_iter()
        .map(|l| l[..l.find(" [active").unwrap_or(l.len())].to_string())
        .collect();
    mine.sort();
    (mine, filtered, log)
}

/// `Filter From Kernelspace` compiles the filter into BPF on the event
/// socket: the ignored flows never reach the daemon (0 filtered in user
/// space), and the cache equals that of the user-space filter, which
/// counts them. Both run with EventIterationLimit 1 and lose nothing.
#[test]
fn kernel_space_filter_matches_user_space() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let (kern, kern_filtered, kern_log) = filter_scenario("Kernelspace", "kfilt");
    let (user, user_filtered, user_log) = filter_scenario("Userspace", "ufilt");
    assert!(
        kern_log.contains("using kernel-space event filtering"),
        "{kern_log}"
    );
    assert!(
        !kern_log.contains("cannot set event filtering"),
        "{kern_log}"
    );
    assert!(
        user_log.contains("using user-space event filtering"),
        "{user_log}"
    );
    let passed: Vec<&String> = kern
        .iter()
        .filter(|l| l.contains("src=10.5.") || l.contains("fd00"))
        .collect();
    assert_eq!(passed.len(), 2, "{kern:#?}");
    assert!(passed[0].contains("src=10.5.0.1"), "{passed:?}");
    assert!(passed[1].contains("src=fd00:1::1"), "{passed:?}");
    assert_eq!(kern.len(), 3002, "burst through EventIterationLimit 1");
    assert_eq!(kern, user, "same cache either way");
    assert_eq!(kern_filtered, 0, "the kernel dropped them");
    assert_eq!(user_filtered, 5, "user space saw and dropped them");
}

/// Log rotation: both log files are appended to, so `copytruncate`
/// leaves no hole, and SIGHUP reopens them by path after a rename.
#[test]
fn log_files_survive_rotation() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctd-rot").expect("netns");
    let dir = tmpdir("rot");
    let conf = stats_conf(&dir, &format!("\tLogFile {}/daemon.log\n", dir.display()));
    let mut d = Daemon::start(&ns, OURS, &conf);
    let flows = dir.join("flows.log");
    let wait_for = |p: &Path, what: &str| {
        let t0 = Instant::now();
        loop {
            let s = std::fs::read_to_string(p).unwrap_or_default();
            if s.contains(what) || t0.elapsed() > Duration::from_secs(5) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let flow = |n: u8| {
        ct(
            &ns,
            &format!("-I -p udp -s 10.6.0.{n} -d 10.6.0.254 --sport 5 --dport 6 -t 300"),
        );
        ct(&ns, &format!("-D -s 10.6.0.{n}"));
    };
    flow(1);
    assert!(wait_for(&flows, "src=10.6.0.1 ").contains("src=10.6.0.1 "));
    // copytruncate: the next line starts the file, no NUL hole before it
    std::fs::OpenOptions::new()
        .write(true)
        .open(&flows)
        .unwrap()
        .set_len(0)
        .unwrap();
    flow(2);
    let s = wait_for(&flows, "src=10.6.0.2 ");
    assert!(!s.contains('\0') && s.lines().count() == 1, "{s:?}");
    // rename + SIGHUP: a new file by the same path
    std::fs::rename(&flows, dir.join("flows.log.1")).unwrap();
    std::fs::rename(dir.join("daemon.log"), dir.join("daemon.log.1")).unwrap();
    unsafe { libc::kill(d.proc.as_ref().unwrap().pid(), libc::SIGHUP) };
    let dlog = wait_for(&dir.join("daemon.log"), "log files reopened");
    assert!(dlog.contains("log files reopened"), "{dlog}");
    flow(3);
    let s = wait_for(&flows, "src=10.6.0.3 ");
    assert!(
        s.contains("src=10.6.0.3 ") && !s.contains("src=10.6.0.2 "),
        "{s}"
    );
    let old = std::fs::read_to_string(dir.join("flows.log.1")).unwrap();
    assert!(
        old.contains("src=10.6.0.2 ") && !old.contains("src=10.6.0.3 "),
        "{old}"
    );
    // still alive and answering after the signal
    assert!(d.ask(&["-s", "cache"]).contains("active objects"));
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Operational faults give clear errors and no crash: a log file that
/// cannot be opened (exit 1, the path named), a stale lock file (exit 1,
/// 1.4.7's message), a control socket path left behind by a killed daemon
/// (taken over: the daemon starts and answers).
#[test]
fn faults_at_start_give_clear_errors() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctd-flt").expect("netns");
    let dir = tmpdir("flt");
    let bad = stats_conf(&dir, "\tLogFile /nonexistent-ctd-dir/conntrackd.log\n");
    let r = ns.run(&[OURS, "-C", bad.to_str().unwrap()], None, T);
    assert_eq!(r.status, Exit::Code(1));
    assert!(
        r.stderr_str()
            .contains("can't open logfile `/nonexistent-ctd-dir/conntrackd.log'"),
        "{}",
        r.stderr_str()
    );
    // Stats' LogFile, and General's: 1.4.7's line as it prints it (no
    // log line: the log is what failed), before the lock is taken
    for (general, path) in [
        ("", "/nonexistent-ctd-dir/flows.log"),
        (
            "\tLogFile /nonexistent-ctd-dir/x.log\n",
            "/nonexistent-ctd-dir/x.log",
        ),
    ] {
        let c = stats_conf(&dir, general);
        let text = std::fs::read_to_string(&c).unwrap().replace(
            &format!("{}/flows.log", dir.display()),
            "/nonexistent-ctd-dir/flows.log",
        );
        std::fs::write(&c, text).unwrap();
        let r = ns.run(&[OURS, "-C", c.to_str().unwrap()], None, T);
        assert_eq!(r.status, Exit::Code(1));
        assert_eq!(
            r.stderr_str(),
            format!("ERROR: can't open logfile `{path}'.Reason: No such file or directory\n")
        );
        assert!(!dir.join("lock").exists());
    }
    let conf = stats_conf(&dir, "");
    std::fs::write(dir.join("lock"), b"").unwrap();
    let r = ns.run(&[OURS, "-C", conf.to_str().unwrap()], None, T);
    assert_eq!(r.status, Exit::Code(1));
    assert!(
        r.stderr_str()
            .contains("exists, perhaps conntrackd already running?"),
        "{}",
        r.stderr_str()
    );
    std::fs::remove_file(dir.join("lock")).unwrap();
    // a socket file left behind (bound, nobody listening any more)
    drop(std::os::unix::net::UnixListener::bind(dir.join("ctl")).unwrap());
    assert!(dir.join("ctl").exists());
    let mut d = Daemon::start(&ns, OURS, &conf);
    assert!(
        d.ask(&["-s", "cache"]).contains("active objects"),
        "answers"
    );
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `Systemd on` under a service manager: READY=1 once initialised,
/// WATCHDOG=1 every half WATCHDOG_USEC, STOPPING=1 on shutdown, all on
/// $NOTIFY_SOCKET.
#[test]
fn systemd_readiness_and_watchdog() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("ctd-sd").expect("netns");
    let dir = tmpdir("sd");
    let conf = stats_conf(&dir, "");
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("Systemd off", "Systemd on");
    std::fs::write(&conf, text).unwrap();
    let sock_path = dir.join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // (a stop and continue of the test process interrupts a timed wait:
    // that is no answer either way)
    let recv = |buf: &mut [u8]| loop {
        match sock.recv(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    };
    let p = ns
        .spawn_env(
            &[OURS, "-C", conf.to_str().unwrap()],
            None,
            &[
                ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
                ("WATCHDOG_USEC", "200000"),
            ],
        )
        .expect("daemon");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got
        .iter()
        .filter(|m: &&String| m.as_str() == "WATCHDOG=1")
        .count()
        < 3
    {
        match recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) => panic!("nothing more from the daemon ({e}): {got:?}"),
        }
    }
    assert!(got[0].starts_with("READY=1\nMAINPID="), "{got:?}");
    let o = std::process::Command::new(OURS)
        .args(["-C", conf.to_str().unwrap(), "-k"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let _ = p.finish(T);
    let mut last = String::new();
    while let Ok(n) = recv(&mut buf) {
        last = String::from_utf8_lossy(&buf[..n]).into_owned();
        if last == "STOPPING=1" {
            break;
        }
    }
    assert_eq!(last, "STOPPING=1");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Scrapes the endpoint from inside the namespace with the Prometheus
/// project's own parser (python3 prometheus_client): while 200 other
/// scrapes run and 10 connections sit idle, one scrape is timed; every
/// family must carry a type; bad requests get 400/404/405.
const SCRAPE_CHECK: &str = r#"
import json, socket, sys, threading, time
from prometheus_client.parser import text_string_to_metric_families
port = int(sys.argv[1])
def http(req):
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    s.sendall(req)
    d = b''
    while True:
        c = s.recv(65536)
        if not c:
            break
        d += c
    head, _, body = d.partition(b'\r\n\r\n')
    return head.decode().split('\r\n')[0], body.decode()
# bare LF line ends (printf 'GET /metrics HTTP/1.0\n\n' | nc): answered at once
t2 = time.time()
lf_status = http(b'GET /metrics HTTP/1.0\n\n')[0]
lf_took = time.time() - t2
get = b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
idle = [socket.create_connection(('127.0.0.1', port)) for _ in range(10)]
busy = [threading.Thread(target=http, args=(get,)) for _ in range(200)]
for t in busy:
    t.start()
t0 = time.time()
status, body = http(get)
took = time.time() - t0
for t in busy:
    t.join()
fams = list(text_string_to_metric_families(body))
samples = {s.name: s.value for f in fams for s in f.samples if not s.labels}
labelled = {s.name + json.dumps(s.labels, sort_keys=True): s.value for f in fams for s in f.samples if s.labels}
# OpenMetrics, as Prometheus asks for it: histograms need their +Inf
om = http(b'GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n')[1]
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
om_fams = [f.name for f in om_families(om)]
# a slow client (a byte a second) is cut off after the request deadline
slow = socket.create_connection(('127.0.0.1', port))
t1 = time.time()
cut = None
for c in b'GET /metrics HTTP/1.1':
    try:
        slow.send(bytes([c]))
    except OSError:
        cut = time.time() - t1
        break
    slow.settimeout(1)
    try:
        if slow.recv(100) == b'':
            cut = time.time() - t1
            break
    except socket.timeout:
        pass
print(json.dumps({
    'om_families': len(om_fams), 'om_eof': om.endswith('# EOF\n'), 'slow_cut': cut,
    'status': status, 'took': took, 'lf_status': lf_status, 'lf_took': lf_took,
    'untyped': [f.name for f in fams if f.type == 'unknown'],
    'families': len(fams),
    'samples': samples, 'labelled': labelled,
    'bad': [http(r)[0] for r in (b'POST /metrics HTTP/1.1\r\n\r\n', b'GET /nope HTTP/1.1\r\n\r\n', b'hello\r\n\r\n')],
}))
"#;

/// CONNTRACKD_METRICS=ADDR:PORT: a Prometheus endpoint whose counters
/// follow the table, every family typed (checked with a real exposition
/// parser), uptime in seconds, served around 200 concurrent and 10 idle
/// connections within half a second; an empty variable means off.
#[test]
fn metrics_endpoint_serves_the_counters() {
    if !skip_unless_root_and(&["ip", "python3"]) {
        return;
    }
    let parser = std::process::Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .output();
    if !parser.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: python3 prometheus_client missing (pip install prometheus-client; .ci/run installs it)");
        return;
    }
    let ns = NetNs::new("ctd-met").expect("netns");
    let dir = tmpdir("met");
    let conf = stats_conf(&dir, "");
    let p = ns
        .spawn_env(
            &[OURS, "-C", conf.to_str().unwrap()],
            None,
            &[("CONNTRACKD_METRICS", "127.0.0.1:9477")],
        )
        .expect("daemon");
    let t0 = Instant::now();
    while !dir.join("ctl").exists() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    ct(
        &ns,
        "-I -p udp -s 10.4.0.1 -d 10.4.0.2 --sport 5 --dport 6 -t 300",
    );
    ct(
        &ns,
        "-I -p udp -s 10.4.0.3 -d 10.4.0.2 --sport 5 --dport 6 -t 300",
    );
    std::thread::sleep(Duration::from_millis(300));
    // the endpoint lives in the daemon's namespace: scrape from inside it
    let r = ns.run(&["python3", "-c", SCRAPE_CHECK, "9477"], None, T);
    let _ = std::process::Command::new(OURS)
        .args(["-C", conf.to_str().unwrap(), "-k"])
        .output();
    let _ = p.finish(T);
    assert!(r.status.success(), "{}", r.stderr_str());
    let v: serde_json::Value = serde_json::from_str(r.stdout_str().trim()).expect("json");
    println!("{v}");
    assert!(v["status"].as_str().unwrap().contains("200 OK"), "{v}");
    assert!(
        v["took"].as_f64().unwrap() < 0.5,
        "scrape took {}",
        v["took"]
    );
    assert_eq!(v["untyped"], serde_json::json!([]), "every family typed");
    assert!(v["families"].as_u64().unwrap() > 12);
    let s = &v["samples"];
    assert_eq!(s["conntrackd_netlink_events_received_total"], 2.0, "{v}");
    assert!(s["conntrackd_uptime_seconds"].as_f64().unwrap() < 60.0);
    assert_eq!(
        v["labelled"]["conntrackd_cache_entries{\"cache\": \"stats\"}"], 2.0,
        "{v}"
    );
    let bad: Vec<&str> = v["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(bad[0].contains(" 405 "), "{bad:?}");
    assert!(bad[1].contains(" 404 "), "{bad:?}");
    assert!(bad[2].contains(" 400 "), "{bad:?}");
    assert!(v["om_eof"].as_bool().unwrap(), "{v}");
    assert_eq!(
        v["om_families"], v["families"],
        "OpenMetrics parses whole: {v}"
    );
    let cut = v["slow_cut"].as_f64().expect("a slow client is cut off");
    assert!(cut < 5.0, "cut after {cut} s");
    // empty CONNTRACKD_METRICS: off, and nothing in the log about it
    let p = ns
        .spawn_env(
            &[OURS, "-C", conf.to_str().unwrap()],
            None,
            &[("CONNTRACKD_METRICS", "")],
        )
        .expect("daemon");
    let t0 = Instant::now();
    while !dir.join("ctl").exists() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::process::Command::new(OURS)
        .args(["-C", conf.to_str().unwrap(), "-k"])
        .output();
    let o = p.finish(T);
    let out = o.stdout_str() + &o.stderr_str();
    assert!(!out.contains("metrics"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-i` (and `-i -x`) lists the cache in 1.4.7's order: its hash table's
/// buckets in turn (jhash2 of the original tuple, scaled to HashSize),
/// each newest entry first. With HashSize 4 most entries share a bucket.
/// Compared line for line with 1.4.7's, `[active since]` and ids aside.
#[test]
fn the_cache_is_listed_in_1_4_7_order() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    if find_tool("/usr/sbin/conntrackd").is_none() {
        eprintln!("SKIP: /usr/sbin/conntrackd not installed (the order is 1.4.7's)");
        return;
    }
    let listing = |bin: &str, tag: &str, buckets: u32| {
        let ns = NetNs::new(&format!("ctd-{tag}")).expect("netns");
        let dir = tmpdir(tag);
        let conf = dir.join("conntrackd.conf");
        std::fs::write(
            &conf,
            format!(
                "General {{\n\tSystemd off\n\tHashSize {buckets}\n\tLockFile {d}/lock\n\t\
                 UNIX {{ Path {d}/ctl }}\n{lanes}}}\nStats {{\n\tLogFile {d}/flows.log\n}}\n",
                d = dir.display(),
                // (one lane: with more, the lanes' lists follow each other)
                lanes = if bin == OURS { "\tLanes 1\n" } else { "" },
            ),
        )
        .unwrap();
        let mut d = Daemon::start(&ns, bin, &conf);
        for i in 1..=12 {
            ct(&ns, &format!("-I -p tcp -s 10.1.1.{i} -d 10.1.1.200 --sport {} --dport 80 --state ESTABLISHED -t 300", 1000 + i));
        }
        ct(
            &ns,
            "-I -p udp -s 2001:db8::1 -d 2001:db8::2 --sport 5 --dport 6 -t 300",
        );
        ct(
            &ns,
            "-I -p udp -s 2001:db8::3 -d 2001:db8::2 --sport 5 --dport 6 -t 300",
        );
        ct(
            &ns,
            "-I -p icmp -s 10.2.2.2 -d 10.3.3.3 --icmp-type 8 --icmp-code 0 --icmp-id 7 -t 300",
        );
        ct(
            &ns,
            "-I -p udp -s 10.4.4.4 -d 10.5.5.5 --sport 53 --dport 53 -t 300 -w 3",
        );
        let t0 = Instant::now();
        while d.ask(&["-i"]).lines().count() < 16 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let plain: Vec<String> = d
            .ask(&["-i"])
            .lines()
            .map(|l| l.split(" [active since").next().unwrap_or("").to_string())
            .collect();
        let xml = d.ask(&["-i", "-x"]);
        d.stop();
        let _ = std::fs::remove_dir_all(&dir);
        // (each run has its own kernel ids)
        let xml: Vec<String> = xml
            .split("<flow>")
            .map(|f| match (f.find("<id>"), f.find("</id>")) {
                (Some(a), Some(b)) => format!("{}{}", &f[..a], &f[b..]),
                _ => f.to_string(),
            })
            .collect();
        (plain, xml)
    };
    for buckets in [4, 65536] {
        let (ours, ours_xml) = listing(OURS, &format!("ord{buckets}"), buckets);
        let (theirs, theirs_xml) =
            listing("/usr/sbin/conntrackd", &format!("rord{buckets}"), buckets);
        assert_eq!(ours.len(), 16, "{ours:#?}");
        assert_eq!(ours, theirs, "HashSize {buckets}: -i");
        assert_eq!(ours_xml, theirs_xml, "HashSize {buckets}: -i -x");
    }
}

/// Two Filter corners where 1.4.7's parser decides, run side by side with
/// 1.4.7: `Filter { }` (no block) is no filter and logs no "using ...
/// event filtering" notice; `Protocol Accept { mptcp }` (262 in
/// /etc/protocols, outside the 256-bit map) is taken without a warning
/// and keeps no flow, in the kernel's filter as in user space.
#[test]
fn filter_corners_as_1_4_7() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let mptcp = std::fs::read_to_string("/etc/protocols")
        .map(|t| ct_core::config::protocol_in(&t, "mptcp") == Some(262))
        .unwrap_or(false);
    let mut bins = vec![OURS];
    if find_tool("/usr/sbin/conntrackd").is_some() {
        bins.push("/usr/sbin/conntrackd");
    } else {
        eprintln!("SKIP (comparison part): /usr/sbin/conntrackd not installed");
    }
    let mut filters = vec![("empty", "\tFilter { }\n")];
    if mptcp {
        filters.push((
            "mptcp-k",
            "\tFilter From Kernelspace { Protocol Accept { mptcp } }\n",
        ));
        filters.push((
            "mptcp-u",
            "\tFilter From Userspace { Protocol Accept { mptcp } }\n",
        ));
    } else {
        eprintln!("SKIP (mptcp part): /etc/protocols has no `mptcp 262'");
    }
    for bin in bins {
        for (i, (what, filter)) in filters.iter().enumerate() {
            let tag = format!("fc{i}{}", if bin == OURS { "o" } else { "c" });
            let ns = NetNs::new(&format!("ctd-{tag}")).expect("netns");
            let dir = tmpdir(&tag);
            let conf = stats_conf(&dir, filter);
            let mut d = Daemon::start(&ns, bin, &conf);
            ct(
                &ns,
                "-I -p tcp -s 10.5.0.1 -d 10.5.0.2 --sport 1 --dport 2 --state ESTABLISHED -t 300 -u SEEN_REPLY,ASSURED",
            );
            ct(
                &ns,
                "-I -p udp -s 10.5.0.3 -d 10.5.0.4 --sport 53 --dport 53 -t 300",
            );
            std::thread::sleep(Duration::from_millis(300));
            let cached = d.ask(&["-i"]).lines().count();
            let log = d.stop();
            let _ = std::fs::remove_dir_all(&dir);
            assert!(!log.contains("[warning]"), "{bin} {what}: {log}");
            if *what == "empty" {
                assert!(!log.contains("event filtering"), "{bin} {what}: {log}");
                assert_eq!(cached, 2, "{bin} {what}");
            } else {
                assert!(log.contains("event filtering"), "{bin} {what}: {log}");
                assert_eq!(cached, 0, "{bin} {what}: kept a flow");
            }
        }
    }
}
