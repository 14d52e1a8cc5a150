//! The files in dist/ that ship with the daemon: the systemd unit removes
//! the daemon's real default lock file (not another one), passes
//! `systemd-analyze verify`, and is hardened (`systemd-analyze security`
//! rates it OK, exposure at most 3.0, while leaving what the daemon needs:
//! netlink, IP and UNIX sockets, CAP_NET_ADMIN, real-time scheduling,
//! io_uring), and its system-call filter allows every call the daemon
//! makes (traced with strace through start, events, every control
//! request, a commit, a snapshot, SIGHUP and `-k`). Skips the systemd
//! checks without systemd-analyze.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::netns::{skip_unless_root_and, Exit, NetNs};

const OURS: &str = env!("CARGO_BIN_EXE_conntrackd");
const PERF: &str = env!("CARGO_BIN_EXE_ctperf");

fn unit() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd/conntrackd.service");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn systemd_unit_removes_the_daemons_own_lock() {
    let u = unit();
    let pre: Vec<&str> = u
        .lines()
        .filter(|l| l.starts_with("ExecStartPre="))
        .collect();
    assert_eq!(
        pre,
        [format!(
            "ExecStartPre=/bin/rm -f {}",
            ct_core::config::DEFAULT_LOCKFILE
        )
        .as_str()]
    );
    for needed in [
        "CAP_NET_ADMIN",
        "CAP_SYS_NICE",
        "AF_NETLINK",
        "AF_INET6",
        "AF_UNIX",
        "io_uring_setup",
        "@resources",
        "Type=notify",
    ] {
        assert!(u.contains(needed), "{needed} missing");
    }
    assert!(
        !u.contains("RestrictRealtime=yes"),
        "the daemon runs SCHED_RR"
    );
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd/conntrackd.service");
    let Ok(v) = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&p)
        .output()
    else {
        eprintln!("SKIP: systemd-analyze is not installed");
        return;
    };
    let err = String::from_utf8_lossy(&v.stderr);
    // (it may complain that /usr/sbin/conntrackd is missing on a machine
    // without the package; nothing else)
    let other: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("/usr/sbin/conntrackd") && !l.trim().is_empty())
        .collect();
    assert!(other.is_empty(), "{err}");
    let s = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&p)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&s.stdout);
    let level: f64 = out
        .lines()
        .find_map(|l| l.split("exposure level for conntrackd.service: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    assert!(level <= 3.0, "exposure {level}:\n{out}");
}

/// The system calls of a `SystemCallFilter` group, nested groups
/// expanded (`systemd-analyze syscall-filter GROUP`).
fn syscall_group(g: &str, seen: &mut BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if !seen.insert(g.to_string()) {
        return out;
    }
    let o = std::process::Command::new("systemd-analyze")
        .args(["syscall-filter", g])
        .output()
        .expect("systemd-analyze");
    for l in String::from_utf8_lossy(&o.stdout).lines().skip(1) {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with('@') {
            out.extend(syscall_group(l, seen));
        } else {
            out.insert(l.to_string());
        }
    }
    out
}

/// What the unit's `SystemCallFilter=` lines let through: the union of
/// the allow lists less the union of the `~` deny lists.
fn unit_allowed_syscalls(unit: &str) -> BTreeSet<String> {
    let (mut allow, mut deny) = (BTreeSet::new(), BTreeSet::new());
    for l in unit.lines() {
        let Some(v) = l.strip_prefix("SystemCallFilter=") else {
            continue;
        };
        let (set, v) = match v.strip_prefix('~') {
            Some(rest) => (&mut deny, rest),
            None => (&mut allow, v),
        };
        for item in v.split_whitespace() {
            if item.starts_with('@') {
                set.extend(syscall_group(item, &mut BTreeSet::new()));
            } else {
                set.insert(item.to_string());
            }
        }
    }
    allow.difference(&deny).cloned().collect()
}

/// `setpriv` arguments for the unit's `CapabilityBoundingSet=` and
/// `NoNewPrivileges=yes`: root keeps only the listed capabilities.
fn unit_privileges(unit: &str) -> Vec<String> {
    let caps: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .flat_map(|v| v.split_whitespace())
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    assert!(!caps.is_empty(), "the unit bounds the capabilities");
    assert!(unit.contains("NoNewPrivileges=yes"));
    vec![
        "setpriv".into(),
        "--no-new-privs".into(),
        "--bounding-set".into(),
        format!("-all,{}", caps.join(",")),
    ]
}

/// The hardened unit, emulated where systemd is not the init: a sync
/// daemon (FT-FW over UDP on loopback with forced socket buffers, a
/// snapshot) runs in a namespace of its own with only the unit's
/// capabilities and no new privileges (`setpriv`), under `strace -f`,
/// through events, every control request, a commit, a flush, a resync,
/// SIGHUP and `-k`. It must run SCHED_RR (CAP_SYS_NICE), log no warning
/// (forced buffers: CAP_NET_ADMIN), and every call it made must be one
/// the unit's seccomp filter allows (a call outside it would fail with
/// EPERM under systemd).
#[test]
fn systemd_unit_allows_every_system_call_the_daemon_makes() {
    if !skip_unless_root_and(&["ip", "strace", "systemd-analyze", "setpriv"]) {
        return;
    }
    let allowed = unit_allowed_syscalls(&unit());
    assert!(
        allowed.contains("io_uring_enter") && allowed.contains("sendmsg"),
        "the filter was read: {} calls",
        allowed.len()
    );
    let ns = NetNs::new("ctd-seccomp").expect("netns");
    let dir = std::env::temp_dir().join(format!("ctd-seccomp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let conf = dir.join("c.conf");
    std::fs::write(
        &conf,
        format!(
            "Sync {{\n Mode FTFW {{ }}\n Snapshot {{ Path {d}/ext.snap Interval 1 }}\n \
             UDP {{ IPv4_address 127.0.0.1 IPv4_Destination_Address 127.0.0.2 Port 3780 \
             Interface lo SndSocketBuffer 24985600 RcvSocketBuffer 24985600 }}\n}}\n\
             General {{\n Systemd off\n HashSize 8192\n LockFile {d}/lock\n \
             UNIX {{ Path {d}/ctl }}\n LogFile {d}/log\n NetlinkBufferSize 8388608\n NetlinkBufferSizeMaxGrowth 33554432\n}}\n"
        ),
    )
    .unwrap();
    let c = conf.to_str().unwrap();
    let trace = dir.join("trace");
    let t = trace.to_str().unwrap();
    let privs = unit_privileges(&unit());
    let mut argv: Vec<&str> = privs.iter().map(String::as_str).collect();
    argv.extend(["strace", "-f", "-qq", "-o", t, OURS, "-C", c]);
    let daemon = ns.spawn(&argv, None).expect("spawn");
    let ask = |args: &[&str]| {
        let mut argv = vec![OURS, "-C", c];
        argv.extend(args);
        ns.run(&argv, None, Duration::from_secs(30))
    };
    let up = std::time::Instant::now();
    while ask(&["-s"]).status != Exit::Code(0) {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "the daemon never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let fill = ns.run(&[PERF, "fill", "-n", "500"], None, Duration::from_secs(30));
    assert!(fill.status.success(), "{}", fill.stderr_str());
    // (a snapshot is written every second)
    std::thread::sleep(Duration::from_millis(1500));
    for args in [
        &["-s"][..],
        &["-i"],
        &["-e"],
        &["-i", "-x"],
        &["-s", "network"],
        &["-s", "runtime"],
        &["-n"],
        &["-B"],
        &["-t"],
        &["-c"],
        &["-f"],
        &["-R"],
    ] {
        let r = ask(args);
        assert_eq!(r.status, Exit::Code(0), "{args:?}: {}", r.stderr_str());
    }
    let del = ns.run(
        &[PERF, "fill", "-n", "500", "--delete"],
        None,
        Duration::from_secs(30),
    );
    assert!(del.status.success(), "{}", del.stderr_str());
    std::thread::sleep(Duration::from_millis(500));
    // (the daemon under strace: of the processes whose arguments name
    // this configuration, the one called conntrackd)
    let pid = ns
        .pids_with_arg(c)
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|comm| comm.trim() == "conntrackd")
        })
        .expect("the daemon's pid");
    // SCHED_RR (policy 2): CAP_SYS_NICE was kept
    let sched = common::sched_of(pid);
    assert_eq!(sched.0, 2, "scheduling (policy, priority): {sched:?}");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(hup.success(), "SIGHUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ask(&["-k"]).status, Exit::Code(0));
    let out = daemon.finish(Duration::from_secs(20));
    assert_eq!(out.status, Exit::Code(0), "{}", out.stderr_str());
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(log.contains("initialization completed"), "{log}");
    assert!(
        !log.contains("[warning]") && !log.contains("[ERROR]"),
        "with the unit's privileges: {log}"
    );
    let mut used = BTreeSet::new();
    for l in std::fs::read_to_string(&trace).unwrap().lines() {
        // "PID name(args...) = ..." (also "<... name resumed>")
        let Some(rest) = l.split_once(' ').map(|(_, r)| r.trim_start()) else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && rest[name.len()..].starts_with('(') {
            used.insert(name);
        }
    }
    assert!(
        used.contains("io_uring_enter") && used.len() > 20,
        "the trace holds the daemon's calls: {used:?}"
    );
    let outside: Vec<&String> = used.difference(&allowed).collect();
    assert!(
        outside.is_empty(),
        "calls the unit's SystemCallFilter refuses: {outside:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
