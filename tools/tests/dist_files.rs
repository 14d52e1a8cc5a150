//! The files in dist/ that ship with the daemon: the systemd unit removes
//! the daemon's real default lock file (not another one), passes
//! `systemd-analyze verify`, and is hardened (`systemd-analyze security`
//! rates it OK, exposure at most 3.0, while leaving what the daemon needs:
//! netlink, IP and UNIX sockets, CAP_NET_ADMIN, real-time scheduling,
//! io_uring). Skips the systemd checks without systemd-analyze.

use std::path::Path;

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
