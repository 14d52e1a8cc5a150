//! The daemon's log (`dlog` of conntrackd 1.4.7): lines
//! `[<ctime>] (pid=N) [LEVEL] message`, to the console when not
//! daemonised (info/notice on stdout, warning/ERROR on stderr), to the
//! LogFile (opened `a+`, flushed per line), and to syslog when configured.
//! Also the stats-mode flow log (`<ctime>\t<entry>`).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::ct::env::local_tm;
use ct_core::format::write_ctime;

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

/// The log sink.
pub struct Logger {
    file: Option<File>,
    console: bool,
    syslog: bool,
}

impl Logger {
    /// Console only (client mode, and the daemon before `init_log`).
    pub fn console() -> Logger {
        Logger {
            file: None,
            console: true,
            syslog: false,
        }
    }

    /// Opens the log file (created mode 0600) and syslog as configured.
    pub fn open(
        path: Option<&Path>,
        syslog_facility: Option<libc::c_int>,
    ) -> std::io::Result<Logger> {
        let file = match path {
            Some(p) => {
                use std::os::unix::fs::OpenOptionsExt;
                Some(
                    OpenOptions::new()
                        .append(true)
                        .create(true)
                        .mode(0o600)
                        .open(p)?,
                )
            }
            None => None,
        };
        if let Some(f) = syslog_facility {
            // SAFETY: the ident is a static NUL-terminated string.
            unsafe {
                libc::openlog(c"conntrack-tools".as_ptr(), libc::LOG_PID, f);
            }
        }
        Ok(Logger {
            file,
            console: true,
            syslog: syslog_facility.is_some(),
        })
    }

    /// Stops copying to the console (after daemonising).
    pub fn detach(&mut self) {
        self.console = false;
    }

    /// Writes one message.
    pub fn log(&mut self, level: Level, msg: &str) {
        let line = format!(
            "[{}] (pid={}) [{}] {}\n",
            ctime_now(),
            std::process::id(),
            level.word(),
            msg
        );
        if self.console {
            if matches!(level, Level::Info | Level::Notice) {
                let mut o = std::io::stdout();
                let _ = o.write_all(line.as_bytes());
                let _ = o.flush();
            } else {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
        if let Some(f) = &mut self.file {
            let _ = f.write_all(line.as_bytes());
            let _ = f.flush();
        }
        if self.syslog {
            if let Ok(c) = CString::new(msg.replace('%', "%%")) {
                // SAFETY: format and message are NUL-terminated C strings.
                unsafe { libc::syslog(level.syslog(), c"%s".as_ptr(), c.as_ptr()) };
            }
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
    syslog: bool,
}

impl FlowLog {
    pub fn open(path: Option<&Path>, syslog: bool) -> std::io::Result<FlowLog> {
        let file = match path {
            Some(p) => {
                use std::os::unix::fs::OpenOptionsExt;
                Some(
                    OpenOptions::new()
                        .append(true)
                        .create(true)
                        .mode(0o600)
                        .open(p)?,
                )
            }
            None => None,
        };
        Ok(FlowLog { file, syslog })
    }

    /// Logs one destroyed flow: `entry` is the default-format line
    /// (with its newline).
    pub fn write(&mut self, entry: &[u8]) {
        if let Some(f) = &mut self.file {
            let mut line = Vec::with_capacity(entry.len() + 32);
            line.extend_from_slice(ctime_now().as_bytes());
            line.push(b'\t');
            line.extend_from_slice(entry);
            let _ = f.write_all(&line);
            if self.syslog {
                let text = String::from_utf8_lossy(entry.strip_suffix(b"\n").unwrap_or(entry));
                if let Ok(c) = CString::new(text.as_bytes()) {
                    // SAFETY: format and message are NUL-terminated C strings.
                    unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), c.as_ptr()) };
                }
            }
        }
    }
}
