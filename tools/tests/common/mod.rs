//! Helpers shared by the integration tests (`mod common;`).
#![allow(dead_code)]

pub mod netns;

/// The number at the end of the first line of a `conntrackd -s` text
/// that starts (after blanks) with `label`; `u64::MAX` when absent.
pub fn stat(text: &str, label: &str) -> u64 {
    text.lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A process's scheduling (policy, real-time priority) from
/// `/proc/PID/stat`: fields 41 and 40, counted from 1 with pid and comm
/// as 1 and 2.
pub fn sched_of(pid: i32) -> (u32, u32) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    (f[38].parse().unwrap(), f[37].parse().unwrap())
}

/// `BIN -C CONF ARGS...` (a conntrackd client request), its standard
/// output.
pub fn ctl(bin: &str, conf: &str, args: &[&str]) -> String {
    let o = std::process::Command::new(bin)
        .arg("-C")
        .arg(conf)
        .args(args)
        .output()
        .expect("conntrackd client");
    String::from_utf8_lossy(&o.stdout).into_owned()
}
