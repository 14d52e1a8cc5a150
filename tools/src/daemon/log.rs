//! The daemon's log (`dlog` of conntrackd 1.4.7): lines
//! `[<ctime>] (pid=N) [LEVEL] message`, to the console when not
//! daemonised (info/notice on stdout, warning/ERROR on stderr), to the
//! LogFile (opened `a+`, flushed per line), and to syslog when configured.
//! Also the stats-mode flow log (`<ctime>\t<entry>`).
//!
//! Rotation: both files are opened O_APPEND, so `copytruncate` works (the
//! next line lands at the new end), and SIGHUP reopens them by path (an
//! addition: 1.4.7 has no handler and dies; Debian's logrotate restarts it).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::ct::env::local_tm;
use ct_core::format::write_ctime;
use ct_ring::os::syslog;

/// Message levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Notice,
    Warning,
    Error,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "ERROR",
        }
    }
    fn syslog(self) -> libc::c_int {
        match self {
            Level::Info => libc::LOG_INFO,
            Level::Notice => libc::LOG_NOTICE,
            Level::Warning => libc::LOG_WARNING,
            Level::Error => libc::LOG_ERR,
        }
    }
}

/// `ctime(time())` without the newline.
pub fn ctime_now() -> String {
    let mut v = Vec::new();
    write_ctime(&mut v, &local_tm(crate::ct::env::now().0 as i64));
    String::from_utf8(v).unwrap_or_default()
}

/// Opens a log file for appending, created mode 0600.
fn open_append(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(p)
}

/// Reopens `file` at `path` (after a rotation); keeps the old one when
/// the new one cannot be opened, and says why.
fn reopen(file: &mut Option<File>, path: Option<&Path>) -> Result<(), String> {
    let Some(p) = path else { return Ok(()) };
    match open_append(p) {
        Ok(f) => {
            *file = Some(f);
            Ok(())
        }
        Err(e) => Err(format!("can't reopen log file `{}': {e}", p.display())),
    }
}

/// Opens syslog as 1.4.7 does: ident `conntrack-tools`, with the pid.
pub use ct_ring::os::syslog::open as open_syslog;

/// The log sink.
pub struct Logger {
    file: Option<File>,
    path: Option<std::path::PathBuf>,
    console: bool,
    /// Only warnings and errors go to the console (`-d` while starting).
    quiet: bool,
    syslog: bool,
    /// The last write to the log file failed (disk full, file system
    /// gone read-only): reported once on the console and to syslog,
    /// again after it worked in between.
    failing: bool,
    /// Put before every message (`[lane N] ` for lanes after the first).
    prefix: String,
}

impl Logger {
    /// Console only (client mode, and the daemon before `init_log`).
    pub fn console() -> Logger {
        Logger {
            file: None,
            path: None,
            console: true,
            quiet: false,
            syslog: false,
            failing: false,
            prefix: String::new(),
        }
    }

    /// Opens the log file (created mode 0600) and syslog as configured.
    pub fn open(
        path: Option<&Path>,
        syslog_facility: Option<libc::c_int>,
    ) -> std::io::Result<Logger> {
        let file = path.map(open_append).transpose()?;
        if let Some(f) = syslog_facility {
            open_syslog(f);
        }
        Ok(Logger {
            file,
            path: path.map(Path::to_path_buf),
            console: true,
            quiet: false,
            syslog: syslog_facility.is_some(),
            failing: false,
            prefix: String::new(),
        })
    }

    /// Reopens the log file by its path (SIGHUP, after a rotation).
    pub fn reopen(&mut self) -> Result<(), String> {
        reopen(&mut self.file, self.path.as_deref())
    }

    /// The same sinks for another lane: its messages start with
    /// `[lane N] ` (the file is shared, each line one append).
    pub fn for_lane(&self, lane: u32) -> Logger {
        Logger {
            file: self.file.as_ref().and_then(|f| f.try_clone().ok()),
            path: self.path.clone(),
            console: self.console,
            quiet: self.quiet,
            syslog: self.syslog,
            failing: false,
            prefix: if lane == 0 {
                String::new()
            } else {
                format!("[lane {lane}] ")
            },
        }
    }

    /// Copies only warnings and errors to the console (`-d` while
    /// starting: the caller sees why start-up failed, and nothing else).
    pub fn quiet_console(&mut self) {
        self.quiet = true;
    }

    /// Stops copying to the console (after daemonising).
    pub fn detach(&mut self) {
        self.console = false;
    }

    /// Writes one message.
    pub fn log(&mut self, level: Level, msg: &str) {
        let line = format!(
            "[{}] (pid={}) [{}] {}{}\n",
            ctime_now(),
            std::process::id(),
            level.word(),
            self.prefix,
            msg
        );
        if self.console {
            if matches!(level, Level::Info | Level::Notice) {
                if self.quiet {
                    // not on the console
                } else {
                    let mut o = std::io::stdout();
                    let _ = o.write_all(line.as_bytes());
                    let _ = o.flush();
                }
            } else {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
        let mut failed = None;
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|_| f.flush()) {
                failed = Some(e);
            }
        }
        if self.syslog {
            syslog::send(level.syslog(), msg.as_bytes());
        }
        match failed {
            Some(e) if !self.failing => {
                self.failing = true;
                let path = self.path.as_deref().unwrap_or(Path::new("?")).display();
                let msg = format!(
                    "can't write to LogFile `{path}': {e} (not reported again until it works)"
                );
                let _ = writeln!(std::io::stderr(), "{msg}");
                if self.syslog {
                    syslog::send(libc::LOG_ERR, msg.as_bytes());
                }
            }
            Some(_) => {}
            None => self.failing = false,
        }
    }

    /// Whether the last write to the log file failed.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// An error that must not go unseen when the log file itself is the
    /// problem (a failed reopen after a rotation): logged as usual and,
    /// when syslog is not configured, to syslog as daemon.err too.
    pub fn error_loud(&mut self, msg: &str) {
        self.log(Level::Error, msg);
        if !self.syslog {
            syslog::send(libc::LOG_DAEMON | libc::LOG_ERR, msg.as_bytes());
        }
    }

    pub fn notice(&mut self, msg: &str) {
        self.log(Level::Notice, msg)
    }
    pub fn warning(&mut self, msg: &str) {
        self.log(Level::Warning, msg)
    }
    pub fn error(&mut self, msg: &str) {
        self.log(Level::Error, msg)
    }
}

/// The stats-mode flow log (`Stats { LogFile ... }`).
pub struct FlowLog {
    file: Option<File>,
    path: Option<std::path::PathBuf>,
    /// `Stats { Syslog ... }`: the facility each line goes to.
    syslog: Option<libc::c_int>,
    /// The line being written (reused).
    line: Vec<u8>,
}

impl FlowLog {
    /// Opens the flow log file and/or sends its lines to syslog with
    /// `facility` (`Stats { Syslog }`; either may be absent).
    pub fn open(path: Option<&Path>, facility: Option<libc::c_int>) -> std::io::Result<FlowLog> {
        let syslog = facility;
        Ok(FlowLog {
            file: path.map(open_append).transpose()?,
            path: path.map(Path::to_path_buf),
            syslog,
            line: Vec::with_capacity(512),
        })
    }

    /// Reopens the flow log by its path (SIGHUP, after a rotation).
    pub fn reopen(&mut self) -> Result<(), String> {
        reopen(&mut self.file, self.path.as_deref())
    }

    /// Logs one destroyed flow: `entry` is the default-format line
    /// (with its newline).
    pub fn write(&mut self, entry: &[u8]) {
        if let Some(f) = &mut self.file {
            let line = &mut self.line;
            line.clear();
            write_ctime(line, &local_tm(crate::ct::env::now().0 as i64));
            line.push(b'\t');
            line.extend_from_slice(entry);
            let _ = f.write_all(line);
        }
        if let Some(facility) = self.syslog {
            let text = entry.strip_suffix(b"\n").unwrap_or(entry);
            syslog::send(facility | libc::LOG_INFO, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_file_is_reported_not_fatal() {
        let mut full = Logger::open(Some(Path::new("/dev/full")), None).expect("open /dev/full");
        full.detach();
        full.notice("first");
        assert!(full.failing(), "ENOSPC seen");
        full.notice("second"); // reported once; no panic either way
        assert!(full.failing());
        let p = std::env::temp_dir().join(format!("ctlog-{}.log", std::process::id()));
        let mut ok = Logger::open(Some(&p), None).unwrap();
        ok.detach();
        ok.notice("fine");
        assert!(!ok.failing());
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .contains("[notice] fine"));
        let _ = std::fs::remove_file(p);
    }
}
