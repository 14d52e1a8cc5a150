//! `conntrackd`: the daemon's composition. The command line and client
//! mode (`cli`, `control::client`), start-up as 1.4.7 does it (config,
//! log, lock file, optional fork, netlink, control socket), the engine
//! that owns caches and sockets (`engine`), the control server thread
//! (`control`), the kernel commit (`commit`), the config filter
//! (`filter`) and logging (`log`).

pub mod auth;
pub mod cli;
pub mod commit;
pub mod control;
pub mod engine;
pub mod expect;
pub mod filter;
pub mod inject;
pub mod kernel;
pub mod latency;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod sync;
pub mod warm;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use ct_core::config::{self, OsLookup, Phase};
use ct_ring::reactor::{BackendChoice, Reactor};

use cli::Action;
use engine::{Engine, Mode};
use log::{FlowLog, Logger};

static STOP: AtomicBool = AtomicBool::new(false);

/// SIGHUP seen: reopen the log files (after a rotation).
pub(crate) static REOPEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_hup(_: libc::c_int) {
    REOPEN.store(true, Ordering::SeqCst);
}

fn install_signals() {
    // SAFETY: the handlers only store to atomics; SIGPIPE is ignored.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        sa.sa_sigaction = on_hup as *const () as usize;
        libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Wake-up moderation of the reactor: `CT_RING_MODERATION=N,MICROS`
/// (`0` turns it off), else [`MODERATION`].
fn moderation() -> Option<(u32, std::time::Duration)> {
    let v = std::env::var("CT_RING_MODERATION").ok();
    let parsed = v.as_deref().map(|v| {
        let mut it = v.split(',').map(|x| x.trim().parse::<u64>().ok());
        match (it.next().flatten(), it.next().flatten()) {
            (Some(n), Some(us)) if n > 0 => Some((n as u32, std::time::Duration::from_micros(us))),
            _ => None,
        }
    });
    parsed.unwrap_or(MODERATION)
}

/// Default wake-up moderation: handle events in batches of 32, waiting at
/// most 200 µs for them (see perf/RESULTS.md, latency under churn).
const MODERATION: Option<(u32, std::time::Duration)> =
    Some((32, std::time::Duration::from_micros(200)));

fn syslog_facility(f: Option<config::SyslogFacility>) -> Option<libc::c_int> {
    f.map(|f| match f {
        config::SyslogFacility::Daemon => libc::LOG_DAEMON,
        config::SyslogFacility::Local(n) => libc::LOG_LOCAL0 + ((n as libc::c_int) << 3),
    })
}

/// Entry point; returns the exit status.
pub fn main_with_args(argv: Vec<String>) -> i32 {
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o177) };
    let args = cli::parse(&argv);
    let mut con = Logger::console();
    for (err, text) in &args.notes {
        if *err {
            con.error(text);
        } else {
            print!("{text}");
        }
    }
    if let Some(code) = args.exit {
        return code;
    }
    match args.action {
        Action::Version => {
            print!("{}", cli::VERSION);
            return 0;
        }
        Action::Help => {
            print!("{}", cli::USAGE);
            return 0;
        }
        _ => {}
    }
    let outcome = config::load(Path::new(&args.config), &OsLookup::new());
    for w in &outcome.warnings {
        con.warning(&w.c_message());
    }
    let mut cfg = match outcome.result {
        Ok(c) => c,
        Err(e) => {
            con.error(&e.c_message());
            return 1;
        }
    };
    let daemon = matches!(args.action, Action::Daemon { .. });
    for w in config::evaluate(&mut cfg) {
        if daemon || w.phase != Phase::Init {
            con.warning(&w.c_message());
        }
    }
    match args.action {
        Action::Client(req) => {
            let ok = cfg
                .general
                .unix_path
                .as_deref()
                .is_some_and(|p| control::client(p, req));
            if !ok {
                con.error("can't connect: is conntrackd running? appropriate permissions?");
                return 1;
            }
            0
        }
        Action::Daemon { detach } => run_daemon(cfg, detach, con),
        _ => 0,
    }
}

fn run_daemon(cfg: config::Config, detach: bool, mut con: Logger) -> i32 {
    let g = &cfg.general;
    let mut log = match Logger::open(g.log_file.as_deref(), syslog_facility(g.syslog)) {
        Ok(l) => l,
        Err(e) => {
            let path = g
                .log_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            con.error(&format!("can't open logfile `{path}': {e}"));
            return 1;
        }
    };
    let lock = g.lock_file.clone();
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lock)
        .is_err()
    {
        log.error(&format!(
            "lockfile `{}' exists, perhaps conntrackd already running?",
            lock.display()
        ));
        return 1;
    }
    let unlock = || {
        let _ = std::fs::remove_file(&lock);
    };
    let Some(unix_path) = g.unix_path.clone() else {
        log.error("can't open unix socket!");
        log.error("conntrackd cannot start, please review your configuration");
        unlock();
        return 1;
    };
    if detach {
        // SAFETY: no threads exist yet; the parent exits at once.
        match unsafe { libc::fork() } {
            -1 => {
                log.error("fork failed");
                unlock();
                return 1;
            }
            0 => {
                // SAFETY: plain syscalls in the child.
                unsafe {
                    libc::setsid();
                    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                    if null >= 0 {
                        libc::dup2(null, 0);
                        libc::dup2(null, 1);
                        libc::dup2(null, 2);
                    }
                }
                log.detach();
            }
            _ => return 0,
        }
    }
    let code = match serve(cfg, log, &unix_path, detach) {
        Ok(()) => 0,
        Err(e) => {
            con.error(&e);
            1
        }
    };
    let _ = std::fs::remove_file(&unix_path);
    unlock();
    code
}

/// 1.4.7 switches itself to SCHED_RR at the highest priority unless the
/// `Scheduler` clause says otherwise; a failure only warns.
fn set_scheduler(s: &config::Scheduler, log: &mut Logger) {
    let policy = match s.policy {
        Some(config::SchedPolicy::Fifo) => libc::SCHED_FIFO,
        _ => libc::SCHED_RR,
    };
    // SAFETY: plain syscalls on this process.
    let prio = s
        .priority
        .map(|p| p as i32)
        .unwrap_or_else(|| unsafe { libc::sched_get_priority_max(policy) });
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: param is a live sched_param.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } < 0 {
        let e = std::io::Error::last_os_error();
        log.warning(&format!(
            "scheduler configuration failed: {}. Likely a bug in conntrackd, please report it. Continuing with system default scheduler.",
            crate::cli::labels::strerror(&e)
        ));
    }
}

fn serve(
    cfg: config::Config,
    mut log: Logger,
    unix_path: &Path,
    detach: bool,
) -> Result<(), String> {
    set_scheduler(&cfg.general.scheduler, &mut log);
    let mut r = Reactor::new(ct_ring::reactor::Config {
        send_slot_size: sync::MAX_DATAGRAM as u32,
        moderation: moderation(),
        ..ct_ring::reactor::Config::with_backend(BackendChoice::Auto)
    })
    .map_err(|e| e.to_string())?;
    let stats_log = cfg.stats.as_ref().and_then(|s| s.log_file.clone());
    let stats_syslog = cfg.stats.as_ref().is_some_and(|s| s.syslog.is_some());
    let mut eng = Engine::new(cfg, log);
    eng.log.notice(&format!("I/O backend: {}", r.describe()));
    match eng.cfg.general.filter.as_ref().map(|f| f.source) {
        Some(config::FilterSource::Kernelspace) => {
            eng.log.notice("using kernel-space event filtering")
        }
        Some(_) => eng.log.notice("using user-space event filtering"),
        None => {}
    }
    if eng.mode == Mode::Stats {
        eng.flowlog =
            Some(FlowLog::open(stats_log.as_deref(), stats_syslog).map_err(|e| e.to_string())?);
    }
    if let Some(secs) = eng.cfg.general.poll_secs {
        // Polling mode: no event socket; the table is re-read every
        // PollSecs seconds (purge of vanished entries included).
        eng.log.notice("running in polling mode");
        eng.start_polling(&mut r, secs);
    } else {
        eng.open_events(&mut r).map_err(|e| {
            eng.log.error(&format!("can't open netlink handler: {e}"));
            eng.log.error("no ctnetlink kernel support?");
            "initialization failed".to_string()
        })?;
    }
    if eng.mode == Mode::Sync {
        if let Err(e) = eng.open_link(&mut r) {
            eng.log.error(&format!("can't open channel socket: {e}"));
            return Err("conntrackd cannot start, please review your configuration".into());
        }
    }
    if let Err(e) = eng.resync(false) {
        eng.log.error(&e);
        return Err("conntrackd cannot start, please review your configuration".into());
    }
    let (tx, rx) = mpsc::channel();
    let ctl = control::ControlServer::start(unix_path, tx, r.waker()).map_err(|_| {
        eng.log.error("can't open unix socket!");
        "conntrackd cannot start, please review your configuration".to_string()
    })?;
    install_signals();
    match metrics::start(unix_path) {
        Some(Ok(addr)) => eng.log.notice(&format!("metrics on http://{addr}/metrics")),
        Some(Err(e)) => eng
            .log
            .error(&format!("can't open the metrics endpoint: {e}")),
        None => {}
    }
    eng.log.notice("initialization completed");
    eng.log.notice(if detach {
        "-- starting in daemon mode --"
    } else {
        "-- starting in console mode --"
    });
    // StartupResync (FTFW, NOTRACK): ask the peer for its states at once,
    // as a restarted backup must.
    if eng.mode == Mode::Sync
        && eng.link.is_some()
        && eng.cfg.sync.as_ref().is_some_and(|s| s.startup_resync)
    {
        eng.log.notice("resync requested");
        eng.request_resync();
    }
    let systemd = eng.cfg.general.systemd;
    if systemd {
        notify::notify(&format!("READY=1\nMAINPID={}", std::process::id()));
        if let Some(every) = notify::watchdog_interval() {
            eng.watchdog = Some(r.timer_add(Some(std::time::Instant::now() + every), Some(every)));
        }
    }
    let res = eng.run(&mut r, &rx, &STOP);
    eng.log.notice("---- shutdown received ----");
    if systemd {
        notify::notify("STOPPING=1");
    }
    ctl.remove();
    res.map_err(|e| e.to_string())
}
