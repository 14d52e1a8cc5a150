//! Throw-away network namespaces for tests that talk to the kernel's conntrack table.
//!
//! Every test that runs `conntrack` (ours or the reference) must do so through a [`NetNs`]
//! so that the host's own conntrack table is never read or modified:
//!
//! ```ignore
//! if !common::netns::skip_unless_root_and(&["/usr/sbin/conntrack"]) { return; }
//! let ns = NetNs::new("ct-mytest").unwrap();
//! ns.set_sysctl("net.netfilter.nf_conntrack_acct", "1").unwrap();
//! let out = ns.run(&["/usr/sbin/conntrack", "-L"], None, DEFAULT_TIMEOUT);
//! assert_eq!(out.status, Exit::Code(0));
//! ```
//!
//! * names are unique (`prefix` + pid + process-wide counter + random), so tests may run in
//!   parallel, in one or several processes;
//! * `lo` is brought up right after creation;
//! * commands run with `ip netns exec NAME argv...` (optionally inside a private mount namespace
//!   that overlays extra files on `/etc`, see [`NetNs::set_etc_overlay`]);
//! * on drop, every process still living in the namespace (`ip netns pids`) is killed and the
//!   namespace is deleted.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default limit for one command run inside a namespace.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// Normal exit with this status code.
    Code(i32),
    /// Killed by this signal (e.g. 11 for a segfault).
    Signal(i32),
    /// Did not finish within the time limit; it was killed with SIGKILL.
    TimedOut,
    /// Could not be started at all.
    SpawnFailed,
}

impl Exit {
    fn from_status(st: ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (st.code(), st.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            _ => Exit::Code(-1),
        }
    }

    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
            Exit::TimedOut => write!(f, "timed out"),
            Exit::SpawnFailed => write!(f, "spawn failed"),
        }
    }
}

/// Captured result of one command.
#[derive(Clone, Debug)]
pub struct RunOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Exit,
}

impl RunOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn spawn_error(msg: String) -> RunOutput {
        RunOutput {
            stdout: Vec::new(),
            stderr: msg.into_bytes(),
            status: Exit::SpawnFailed,
        }
    }
}

/// Is `tool` runnable? An absolute/relative path must be an executable file; a bare name is
/// searched in `$PATH` (plus the sbin directories, which a non-login root shell may lack).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return executable(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| executable(p));
    found
}

fn ip_bin() -> PathBuf {
    find_tool("ip").unwrap_or_else(|| PathBuf::from("ip"))
}

/// Returns true when the test can run: we are root, `ip netns` works and every tool exists.
/// Otherwise prints `SKIP: <reason>` to stderr and returns false (the caller should `return`).
pub fn skip_unless_root_and(tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("SKIP: not running as root (euid {euid}); network namespaces need root");
        return false;
    }
    if find_tool("ip").is_none() {
        eprintln!("SKIP: `ip' (iproute2) not found");
        return false;
    }
    for t in tools {
        if find_tool(t).is_none() {
            eprintln!("SKIP: required tool `{t}' not found");
            return false;
        }
    }
    match NetNs::new("ct-probe") {
        Ok(ns) => {
            let out = ns.run(&["true"], None, DEFAULT_TIMEOUT);
            if !out.status.success() {
                eprintln!(
                    "SKIP: `ip netns exec' does not work: {} {}",
                    out.status,
                    out.stderr_str().trim()
                );
                return false;
            }
            true
        }
        Err(e) => {
            eprintln!("SKIP: cannot create a network namespace: {e}");
            false
        }
    }
}

fn random_u32() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_usize(COUNTER.load(Ordering::Relaxed));
    h.finish() as u32
}

/// A network namespace that lives as long as this value.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    etc_overlay: Option<PathBuf>,
}

impl NetNs {
    /// Creates `PREFIX-<pid>-<counter>-<random>` and brings `lo` up.
    pub fn new(prefix: &str) -> Result<NetNs, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}-{:08x}", std::process::id(), random_u32());
        let out = Command::new(ip_bin())
            .args(["netns", "add", &name])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `ip netns add': {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`ip netns add {name}' failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let ns = NetNs {
            name,
            etc_overlay: None,
        };
        let lo = ns.run(&["ip", "link", "set", "lo", "up"], None, DEFAULT_TIMEOUT);
        if !lo.status.success() {
            return Err(format!(
                "`ip link set lo up' in {} failed: {} {}",
                ns.name,
                lo.status,
                lo.stderr_str().trim()
            ));
        }
        Ok(ns)
    }

    /// Creates the namespace and applies `key=value` sysctls (e.g.
    /// `("net.netfilter.nf_conntrack_acct", "1")`).
    pub fn with_sysctls(prefix: &str, sysctls: &[(&str, &str)]) -> Result<NetNs, String> {
        let ns = NetNs::new(prefix)?;
        for (k, v) in sysctls {
            ns.set_sysctl(k, v)?;
        }
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes a per-namespace sysctl through `/proc/sys` from inside the namespace.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<(), String> {
        if key.contains("..") || key.starts_with('/') {
            return Err(format!("bad sysctl name `{key}'"));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let out = self.run(
            &[
                "sh",
                "-c",
                "printf '%s\\n' \"$2\" > \"$1\"",
                "sh",
                &path,
                value,
            ],
            None,
            DEFAULT_TIMEOUT,
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "sysctl {key}={value} in {} failed: {} {}",
                self.name,
                out.status,
                out.stderr_str().trim()
            ))
        }
    }

    /// Every later command runs in a private mount namespace in which `dir` is overlaid on top
    /// of `/etc` (read-only overlayfs, the host's `/etc` is not modified). Used to provide e.g.
    /// `/etc/xtables/connlabel.conf` to the tools under test.
    pub fn set_etc_overlay(&mut self, dir: Option<PathBuf>) {
        self.etc_overlay = dir;
    }

    /// The `Command` that runs `argv` inside the namespace (not started).
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new(ip_bin());
        c.args(["netns", "exec", &self.name]);
        if let Some(dir) = &self.etc_overlay {
            let lower = format!("lowerdir={}:/etc", dir.display());
            c.args([
                "unshare",
                "-m",
                "sh",
                "-c",
                "mount -t overlay ct-test-etc -o \"$0\" /etc && shift && exec \"$@\"",
                &lower,
                "--",
            ]);
        }
        c.args(argv);
        c
    }

    /// Runs `argv` inside the namespace, feeding `stdin` (or /dev/null), capturing everything.
    /// The process is killed after `timeout`.
    pub fn run(&self, argv: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> RunOutput {
        match self.spawn(argv, stdin) {
            Ok(s) => s.finish(timeout),
            Err(e) => RunOutput::spawn_error(e),
        }
    }

    /// Like [`NetNs::run`] with extra environment variables for the command (e.g. a `PATH` that
    /// makes `argv[0]` resolve to a particular binary).
    pub fn run_env(
        &self,
        argv: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
        envs: &[(&str, &str)],
    ) -> RunOutput {
        match self.spawn_env(argv, stdin, envs) {
            Ok(s) => s.finish(timeout),
            Err(e) => RunOutput::spawn_error(e),
        }
    }

    /// Runs a shell script (`bash -c`) inside the namespace.
    pub fn sh(&self, script: &str, envs: &[(&str, &str)], timeout: Duration) -> RunOutput {
        let mut c = self.command(&["bash", "-c", script]);
        for (k, v) in envs {
            c.env(k, v);
        }
        match Spawned::start(c, None) {
            Ok(s) => s.finish(timeout),
            Err(e) => RunOutput::spawn_error(e),
        }
    }

    /// Starts `argv` in the background (e.g. `conntrack -E`); see [`Spawned`].
    pub fn spawn(&self, argv: &[&str], stdin: Option<&[u8]>) -> Result<Spawned, String> {
        Spawned::start(self.command(argv), stdin)
    }

    /// [`NetNs::spawn`] with extra environment variables.
    pub fn spawn_env(
        &self,
        argv: &[&str],
        stdin: Option<&[u8]>,
        envs: &[(&str, &str)],
    ) -> Result<Spawned, String> {
        let mut c = self.command(argv);
        for (k, v) in envs {
            c.env(k, v);
        }
        Spawned::start(c, stdin)
    }

    /// Pids of the processes inside the namespace that have `arg` among
    /// their arguments (a daemon by its configuration file).
    pub fn pids_with_arg(&self, arg: &str) -> Vec<i32> {
        self.pids()
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).split('\0').any(|a| a == arg))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Pids of the processes currently inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        Command::new(ip_bin())
            .args(["netns", "pids", &self.name])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for _ in 0..3 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                if pid > 1 {
                    // SAFETY: plain kill(2) on a pid that `ip netns pids` reported for our ns.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new(ip_bin())
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A running process with captured output.
pub struct Spawned {
    pid: i32,
    waiter: mpsc::Receiver<Exit>,
    out: mpsc::Receiver<Vec<u8>>,
    err: mpsc::Receiver<Vec<u8>>,
    input: Option<JoinHandle<()>>,
}

/// Reads a pipe to EOF on a thread. A channel (not a join handle) so that a stray background
/// process that inherited the pipe cannot block the caller forever.
fn reader<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

impl Spawned {
    fn start(mut c: Command, stdin: Option<&[u8]>) -> Result<Spawned, String> {
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child: Child = c.spawn().map_err(|e| format!("spawn {c:?}: {e}"))?;
        let pid = child.id() as i32;
        let input = match (stdin, child.stdin.take()) {
            (Some(data), Some(mut w)) => {
                let data = data.to_vec();
                Some(thread::spawn(move || {
                    let _ = w.write_all(&data);
                }))
            }
            _ => None,
        };
        let out = reader(child.stdout.take().expect("stdout piped"));
        let err = reader(child.stderr.take().expect("stderr piped"));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let st = child
                .wait()
                .map(Exit::from_status)
                .unwrap_or(Exit::Code(-1));
            let _ = tx.send(st);
        });
        Ok(Spawned {
            pid,
            waiter: rx,
            out,
            err,
            input,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` (e.g. `libc::SIGINT`) to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own, not yet reaped, child.
        unsafe {
            libc::kill(self.pid, sig);
        }
    }

    /// Waits for the end (killing it after `timeout`) and collects the output.
    pub fn finish(self, timeout: Duration) -> RunOutput {
        let status = match self.waiter.recv_timeout(timeout) {
            Ok(st) => st,
            Err(_) => {
                self.signal(libc::SIGKILL);
                let _ = self.waiter.recv();
                Exit::TimedOut
            }
        };
        if let Some(i) = self.input {
            let _ = i.join();
        }
        let grace = Duration::from_secs(2);
        let mut stderr = self.err.recv_timeout(grace).unwrap_or_default();
        let stdout = self.out.recv_timeout(grace).unwrap_or_else(|_| {
            stderr.extend_from_slice(b"\n[harness: stdout still open after exit]\n");
            Vec::new()
        });
        RunOutput {
            stdout,
            stderr,
            status,
        }
    }
}
