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
mod engine_open;
mod engine_requests;
mod engine_warm;
pub mod expect;
pub mod helper;
pub mod inject;
pub mod kernel;
pub mod lane_peer;
pub mod lanes;
pub mod latency;
pub mod log;
pub mod metrics;
pub mod notify;
mod quiet_commit;
pub mod stats;
pub mod sync;
pub mod warm;
mod world;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;

use ct_core::config::{self, OsLookup, Phase};
use ct_ring::reactor::{BackendChoice, Reactor};
use std::io::IsTerminal;

use cli::Action;
use ct_ring::os::{detach, process};
use engine::{Engine, Mode};
use log::{FlowLog, Logger};

static STOP: AtomicBool = AtomicBool::new(false);

/// SIGHUPs seen: each lane reopens its log files (after a rotation) when
/// the count moved since it last looked.
pub(crate) static REOPEN: AtomicU64 = AtomicU64::new(0);

/// Each lane's reactor eventfd while its loop runs (-1 otherwise): the
/// signal handlers write to them so that the loops act at once.
static WAKE_FDS: [AtomicI32; ct_core::netlink::lanes::MAX_LANES as usize] =
    [const { AtomicI32::new(-1) }; ct_core::netlink::lanes::MAX_LANES as usize];

fn wake_loop() {
    for slot in &WAKE_FDS {
        let fd = slot.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: the fd stays open while it is published: `run_lane`
            // unpublishes it before its reactor goes, and the control and
            // metrics threads hold Waker clones of it.
            #[allow(unsafe_code)]
            unsafe {
                ct_ring::os::signals::wake_eventfd(fd)
            };
        }
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    wake_loop();
}

extern "C" fn on_hup(_: libc::c_int) {
    REOPEN.fetch_add(1, Ordering::SeqCst);
    wake_loop();
}

fn install_signals() {
    use ct_ring::os::signals;
    // SAFETY: the handlers only store to atomics and write(2) to the
    // published eventfds (wake_loop).
    #[allow(unsafe_code)]
    unsafe {
        signals::handle(&[libc::SIGINT, libc::SIGTERM], on_signal);
        signals::handle(&[libc::SIGHUP], on_hup);
    }
    signals::ignore(libc::SIGPIPE);
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

/// The longest a lane's moderated wait grows to with lanes.
const MODERATION_MAX: std::time::Duration = std::time::Duration::from_millis(1);

/// The rate of completions from which a lane's moderation may engage:
/// the daemon's rate decides, not each lane's (lanes that each woke per
/// event at a rate one lane would moderate would multiply the wake-ups).
fn lane_moderation_rate(lanes: u32) -> u64 {
    (ct_ring::reactor::MODERATION_RATE / lanes.max(1) as u64).max(1)
}

/// A lane's moderation with `lanes` lanes: each lane sees its share of
/// the events, so under load it waits `lanes` times as long (at most
/// [`MODERATION_MAX`]) to handle as many per wake-up as one lane would.
/// It only applies while traffic is steady; a trickle still wakes at
/// once. (Lanes 2 at 200k flows flat out, back to back: primary 0.99 s
/// and 10848 datagrams with 400 µs, 1.18 s and 29388 with 200 µs;
/// perf/RESULTS.md, "Lanes wait longer for their share".)
fn lane_moderation(
    m: Option<(u32, std::time::Duration)>,
    lanes: u32,
) -> Option<(u32, std::time::Duration)> {
    m.map(|(n, d)| (n, (d * lanes.max(1)).min(MODERATION_MAX.max(d))))
}

fn syslog_facility(f: Option<config::SyslogFacility>) -> Option<libc::c_int> {
    f.map(|f| match f {
        config::SyslogFacility::Daemon => libc::LOG_DAEMON,
        config::SyslogFacility::Local(n) => libc::LOG_LOCAL0 + ((n as libc::c_int) << 3),
    })
}

/// A message cut to a sane length (1.4.7 echoes a token of megabytes
/// whole).
fn clip(msg: &str) -> String {
    const MAX: usize = 256;
    if msg.len() <= MAX {
        return msg.to_string();
    }
    let mut end = MAX;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &msg[..end], msg.len())
}

/// Entry point; returns the exit status.
pub fn main_with_args(argv: Vec<String>) -> i32 {
    process::umask(0o177);
    // fds 0, 1 and 2 open (on /dev/null when whoever started us closed
    // them), so that no log file or socket lands on them and is later
    // replaced by the redirection of `-d`
    process::std_fds_open();
    let args = cli::parse(&argv);
    let mut con = Logger::console();
    // 1.4.7's stdout is fully buffered unless it is a terminal: when it
    // exits at once (a bad option), its usage text comes out at exit,
    // after the error lines on stderr.
    let defer = args.exit.is_some() && !std::io::stdout().is_terminal();
    let mut deferred = String::new();
    for (note, text) in &args.notes {
        match note {
            cli::Note::Out if defer => deferred.push_str(text),
            cli::Note::Out => print!("{text}"),
            cli::Note::Error => con.error(text),
            cli::Note::Warning => con.warning(text),
        }
    }
    if let Some(code) = args.exit {
        print!("{deferred}");
        return code;
    }
    match args.action {
        Action::Version => {
            print!("{}", cli::VERSION);
            return 0;
        }
        Action::Help => {
            print!(
                "{}",
                cli::usage(argv.first().map(String::as_str).unwrap_or("conntrackd"))
            );
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
            // 1.4.7's line (scripts grep it), then where and what exactly
            con.error(&clip(&e.c_message()));
            con.error(&e.to_string());
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
            let res = match cfg.general.unix_path.as_deref() {
                Some(p) => control::client(p, req),
                None => Err(control::ClientError::Connect),
            };
            match res {
                Ok(()) => 0,
                Err(e) => {
                    con.error(&e.to_string());
                    1
                }
            }
        }
        Action::Daemon { detach } => run_daemon(cfg, &args.config, detach),
        _ => 0,
    }
}

fn run_daemon(cfg: config::Config, file: &str, detach: bool) -> i32 {
    let g = &cfg.general;
    let mut log = match Logger::open(g.log_file.as_deref(), syslog_facility(g.syslog)) {
        Ok(l) => l,
        Err(e) => {
            let path = g
                .log_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            // (1.4.7's line, as is: no log line, the log is what failed)
            eprintln!(
                "ERROR: can't open logfile `{path}'.Reason: {}",
                crate::cli::labels::strerror(&e)
            );
            return 1;
        }
    };
    // Stats' LogFile too, as 1.4.7's init_log: before the lock, with the
    // same line (the lanes open it again for their flow logs)
    if let Some(p) = cfg.stats.as_ref().and_then(|s| s.log_file.as_deref()) {
        if let Err(e) = FlowLog::open(Some(p), None) {
            eprintln!(
                "ERROR: can't open logfile `{}'.Reason: {}",
                p.display(),
                crate::cli::labels::strerror(&e)
            );
            return 1;
        }
    }
    if g.syslog.is_none() {
        // `Stats { Syslog }` alone: the flow log goes to syslog too
        if let Some(f) = syslog_facility(cfg.stats.as_ref().and_then(|s| s.syslog)) {
            log::open_syslog(f);
        }
    }
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
        // 1.4.7 runs on with a socket nobody can reach (it binds an empty
        // path); a daemon that no `-c`, `-s` or `-k` can reach is refused
        log.error("can't open unix socket!");
        log.error(
            "no control socket: General has no UNIX { Path ... } (conntrackd -c, -s and -k reach the daemon through it)",
        );
        log.error("conntrackd cannot start, please review your configuration");
        unlock();
        return 1;
    };
    // `-d`: fork now, before any thread exists; the caller's process
    // waits until the daemon is ready (or has failed) and exits then.
    let ready = if detach {
        // (no thread has been started yet)
        match detach::fork() {
            Ok(detach::Forked::Parent(code)) => return code,
            Ok(detach::Forked::Child(ready)) => Some(ready),
            Err(e) => {
                log.error(&format!("fork has failed: {e}"));
                unlock();
                return 1;
            }
        }
    } else {
        None
    };
    let (res, held) = serve(cfg, file, log, &unix_path, ready);
    // (serve has logged why it failed)
    let code = if res.is_ok() { 0 } else { 1 };
    let _ = std::fs::remove_file(&unix_path);
    unlock();
    // `-k` clients: their connection closes now that the daemon is gone.
    drop(held);
    code
}

/// The scheduling 1.4.7 ends up with: without `Scheduler { Type }` it
/// switches itself to SCHED_RR at the highest priority (a `Priority`
/// alone is ignored); with a `Type`, that policy at the configured
/// `Priority`, 0 when none is given (which the kernel refuses for RR and
/// FIFO: a warning, and the default scheduler stays).
fn scheduling(s: &config::Scheduler) -> (libc::c_int, libc::c_int) {
    match s.policy {
        None => (libc::SCHED_RR, process::priority_max(libc::SCHED_RR)),
        Some(p) => (
            match p {
                config::SchedPolicy::Fifo => libc::SCHED_FIFO,
                config::SchedPolicy::RoundRobin => libc::SCHED_RR,
            },
            s.priority.map(|p| p as libc::c_int).unwrap_or(0),
        ),
    }
}

fn set_scheduler(s: &config::Scheduler, log: &mut Logger) {
    let (policy, prio) = scheduling(s);
    if let Err(e) = process::set_scheduler(policy, prio) {
        log.warning(&format!(
            "scheduler configuration failed: {}. Likely a bug in conntrackd, please report it. Continuing with system default scheduler.",
            crate::cli::labels::strerror(&e)
        ));
    }
}

/// What `serve` hands back: how the daemon ended, and the `-k` clients
/// to release once the lock and the socket are gone.
type Served = (Result<(), String>, Vec<control::ReplyTx>);

/// The largest `HashSize` taken: 2^28 buckets, 4 GiB of bucket heads in
/// 1.4.7, which fails to allocate (or crashes) well before 2^31.
const MAX_HASH_SIZE: u32 = 1 << 28;

const CANNOT_START: &str = "conntrackd cannot start, please review your configuration";

/// Start-up, then the main loop. With `-d` (`ready` set), messages of
/// level warning and above still reach the caller's stderr until
/// start-up has succeeded; then the console is dropped and the waiting
/// parent released.
fn serve(
    cfg: config::Config,
    file: &str,
    mut log: Logger,
    unix_path: &Path,
    ready: Option<detach::Ready>,
) -> Served {
    let detach = ready.is_some();
    if detach {
        log.quiet_console();
    }
    // From here on SIGTERM/SIGINT end the daemon cleanly (lock removed),
    // also during start-up.
    install_signals();
    // control and metrics clients, each a socket, come on top of the
    // daemon's own files
    process::raise_nofile();
    // (the lanes' threads, started after this, inherit it)
    set_scheduler(&cfg.general.scheduler, &mut log);
    if cfg.general.hash_size > MAX_HASH_SIZE {
        // 1.4.7 fails to allocate its buckets (16 bytes each) for such
        // sizes, or crashes; say which number was read (atoi wraps).
        // (Checked before the caches are made.)
        log.error(&format!(
            "HashSize {} is larger than {MAX_HASH_SIZE} buckets",
            cfg.general.hash_size
        ));
        log.error(&format!(
            "can't allocate memory for the {} cache",
            if cfg.run_mode() == config::RunMode::Sync {
                "internal"
            } else {
                "external"
            }
        ));
        log.error(CANNOT_START);
        return (Err(String::new()), Vec::new());
    }
    let n = match lanes::count(&cfg) {
        Ok(n) => n,
        Err(e) => {
            log.error(&e);
            log.error(CANNOT_START);
            return (Err(String::new()), Vec::new());
        }
    };
    // ALARM: an idle peer sends nothing, so the lanes cannot follow a peer
    // with fewer (a 1.4.x peer would never get the other lanes' flows)
    let alarm = cfg
        .sync
        .as_ref()
        .is_some_and(|s| s.mode() == config::SyncMode::Alarm);
    let n = if n > 1 && alarm {
        log.warning(&format!(
            "Lanes {n}: ALARM runs one lane (an idle ALARM peer sends nothing, so the lanes \
             cannot tell a peer with fewer lanes, which would miss their flows)"
        ));
        1
    } else {
        n
    };
    if let Some((span, ch)) = lanes::port_past_end(&cfg, n) {
        log.error(&format!(
            "{file}:{span}: the {} block's port {} + {} passes 65535: with Lanes {n}, lane i \
             binds every channel's port + i",
            ch.kind.keyword(),
            ch.port,
            n - 1
        ));
        log.error(CANNOT_START);
        return (Err(String::new()), Vec::new());
    }
    // Lanes 1.. on threads of their own; lane 0 on this one.
    let (init_tx, init_rx) = mpsc::channel();
    let gate = Gate::new();
    let mut threads = Vec::new();
    for i in 1..n {
        let (cfg, lane_log, tx, g) = (cfg.clone(), log.for_lane(i), init_tx.clone(), gate.clone());
        let lane = lanes::Lane::new(i, n);
        match std::thread::Builder::new()
            .name(format!("lane{i}"))
            .spawn(move || lane_main(cfg, lane_log, lane, tx, g))
        {
            Ok(h) => threads.push(h),
            Err(e) => {
                let _ = init_tx.send((i, Err(format!("can't start lane {i}: {e}"))));
            }
        }
    }
    drop(init_tx);
    let lane0 = lanes::Lane::new(0, n);
    let mut r = match reactor(n) {
        Ok(r) => r,
        Err(e) => {
            log.error(&format!("can't set up the I/O reactor: {e}"));
            log.error(CANNOT_START);
            gate.open(false);
            let held = join_lanes(threads);
            return (Err(String::new()), held);
        }
    };
    let systemd = cfg.general.systemd;
    let helpers = cfg.helper.clone().filter(|h| !h.helpers.is_empty());
    let mut eng = Engine::new(cfg, log, lane0);
    let (tx0, rx0) = mpsc::channel();
    let mut txs = vec![(
        0,
        control::LaneTx {
            tx: tx0,
            waker: r.waker(),
        },
    )];
    let mut failed = start_lane(&mut eng, &mut r).err();
    for (i, res) in init_rx.iter() {
        match res {
            Ok(t) => txs.push((i, t)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    if failed.is_none() {
        if let Some(h) = &helpers {
            failed = helper::setup(h, &mut eng.log).err();
        }
    }
    txs.sort_by_key(|(i, _)| *i);
    let txs: Vec<control::LaneTx> = txs.into_iter().map(|(_, t)| t).collect();
    let ctl = match failed {
        Some(e) => Err(e),
        None => control::ControlServer::start(unix_path, txs.clone())
            .map_err(|_| "can't open unix socket!".to_string()),
    };
    let ctl = match ctl {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eng.log.error(&e);
            }
            eng.log.error(CANNOT_START);
            gate.open(false);
            let mut held = std::mem::take(&mut eng.held);
            held.extend(join_lanes(threads));
            return (Err(String::new()), held);
        }
    };
    match metrics::start(metrics::Source::new(txs)) {
        Some(Ok(addr)) => eng.log.notice(&format!("metrics on http://{addr}/metrics")),
        Some(Err(e)) => eng
            .log
            .error(&format!("can't open the metrics endpoint: {e}")),
        None => {}
    }
    if n > 1 {
        eng.log.notice(&format!("running {n} lanes"));
    }
    eng.log.notice("initialization completed");
    if let Some(ready) = ready {
        eng.log.detach();
        ready.done();
    }
    eng.log.notice(if detach {
        "-- starting in daemon mode --"
    } else {
        "-- starting in console mode --"
    });
    if systemd {
        notify::notify(&format!("READY=1\nMAINPID={}", std::process::id()));
        if let Some(every) = notify::watchdog_interval() {
            eng.watchdog = Some(r.timer_add(Some(std::time::Instant::now() + every), Some(every)));
        }
    }
    gate.open(true);
    let res = run_lane(&mut eng, &mut r, &rx0);
    // the other lanes stop with this one
    stop_all();
    let mut held = std::mem::take(&mut eng.held);
    held.extend(join_lanes(threads));
    // every lane wrote its last snapshot: the files of another lane count
    // can go now
    eng.remove_stale_snapshots();
    eng.log.notice("---- shutdown received ----");
    if systemd {
        notify::notify("STOPPING=1");
    }
    ctl.remove();
    (res, held)
}

fn reactor(lanes: u32) -> std::io::Result<Reactor> {
    Reactor::new(ct_ring::reactor::Config {
        send_slot_size: sync::MAX_DATAGRAM as u32,
        moderation: lane_moderation(moderation(), lanes),
        moderation_rate: lane_moderation_rate(lanes),
        ..ct_ring::reactor::Config::with_backend(BackendChoice::Auto)
    })
}

/// Lanes wait here after their start-up until every lane has started
/// (`true`: run) or one failed (`false`: stop).
#[derive(Clone)]
struct Gate(std::sync::Arc<(std::sync::Mutex<Option<bool>>, std::sync::Condvar)>);

impl Gate {
    fn new() -> Gate {
        Gate(Default::default())
    }

    fn open(&self, run: bool) {
        let (m, c) = &*self.0;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = Some(run);
        c.notify_all();
    }

    fn wait(&self) -> bool {
        let (m, c) = &*self.0;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(run) = *g {
                return run;
            }
            g = c.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

type LaneInit = (u32, Result<control::LaneTx, String>);

/// A lane after the first: starts, reports, waits for the others, runs.
/// Returns its held `-k` clients.
fn lane_main(
    cfg: config::Config,
    log: Logger,
    lane: lanes::Lane,
    init: mpsc::Sender<LaneInit>,
    gate: Gate,
) -> Vec<control::ReplyTx> {
    let mut r = match reactor(lane.count) {
        Ok(r) => r,
        Err(e) => {
            let _ = init.send((
                lane.index,
                Err(format!("can't set up the I/O reactor: {e}")),
            ));
            return Vec::new();
        }
    };
    let mut eng = Engine::new(cfg, log, lane);
    let (tx, rx) = mpsc::channel();
    match start_lane(&mut eng, &mut r) {
        Ok(()) => {
            let t = control::LaneTx {
                tx,
                waker: r.waker(),
            };
            let _ = init.send((lane.index, Ok(t)));
        }
        Err(e) => {
            let _ = init.send((lane.index, Err(e)));
            return std::mem::take(&mut eng.held);
        }
    }
    drop(init);
    if gate.wait() {
        if let Err(e) = run_lane(&mut eng, &mut r, &rx) {
            eng.log.error(&e);
        }
        stop_all();
    }
    std::mem::take(&mut eng.held)
}

/// A lane's loop, its reactor reachable by the signal handlers meanwhile.
fn run_lane(
    eng: &mut Engine,
    r: &mut Reactor,
    rx: &mpsc::Receiver<control::ControlMsg>,
) -> Result<(), String> {
    let slot = &WAKE_FDS[eng.lane.index as usize];
    slot.store(
        std::os::fd::AsRawFd::as_raw_fd(&r.waker()),
        Ordering::SeqCst,
    );
    // StartupResync (FTFW, NOTRACK): ask the peer for its states at once,
    // as a restarted backup must.
    if eng.mode == Mode::Sync
        && eng.link.is_some()
        && eng.cfg.sync.as_ref().is_some_and(|s| s.startup_resync)
    {
        eng.log.notice("resync requested");
        eng.request_resync();
    }
    let res = eng.run(r, rx, &STOP);
    slot.store(-1, Ordering::SeqCst);
    res.map_err(|e| {
        let m = format!("the main loop failed: {e}");
        eng.log.error(&m);
        m
    })
}

/// Stops every lane (one ended: the daemon ends).
fn stop_all() {
    STOP.store(true, Ordering::SeqCst);
    wake_loop();
}

fn join_lanes(
    threads: Vec<std::thread::JoinHandle<Vec<control::ReplyTx>>>,
) -> Vec<control::ReplyTx> {
    threads
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect()
}

/// One lane's part of 1.4.7's `init()`: the kernel subscription, the sync
/// channels, the first dump. An `Err` carries the message to log before
/// "cannot start".
fn start_lane(eng: &mut Engine, r: &mut Reactor) -> Result<(), String> {
    if eng.rep.bypass().is_some() {
        eng.log.notice("disabling internal cache");
    }
    eng.log.notice(&format!("I/O backend: {}", r.describe()));
    // 1.4.7's order: the sync mode's own start-up ("disabling external
    // cache", the channels; "initialization failed" when it fails), then
    // the kernel's side (the filter, the event socket)
    if eng.mode == Mode::Sync {
        if let Err(e) = eng.open_link(r) {
            eng.log.error(&format!(
                "can't open channel socket: {}",
                crate::cli::labels::strerror(&e)
            ));
            return Err("initialization failed".to_string());
        }
    }
    if eng.mode == Mode::Stats {
        let stats = eng.cfg.stats.clone().unwrap_or_default();
        let facility = syslog_facility(stats.syslog);
        eng.flowlog = Some(
            FlowLog::open(stats.log_file.as_deref(), facility).map_err(|e| {
                let path = stats.log_file.as_deref().unwrap_or(Path::new("")).display();
                format!("can't open logfile `{path}': {e}")
            })?,
        );
    }
    if eng.mode == Mode::None {
        // General (and maybe Helper) only: as 1.4.7, no mode runs; the
        // control socket answers `-s runtime` and `-k`.
    } else if let Some(secs) = eng.cfg.general.poll_secs {
        // Polling mode: no event socket; the table is re-read every
        // PollSecs seconds (purge of vanished entries included).
        eng.log.notice("running in polling mode");
        eng.start_polling(r, secs);
    } else {
        eng.open_events(r).map_err(|e| {
            eng.log.error(&format!("can't open netlink handler: {e}"));
            "no ctnetlink kernel support?".to_string()
        })?;
    }
    if eng.mode != Mode::None {
        eng.resync(false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_wait_longer_for_their_share_up_to_a_bound() {
        use std::time::Duration;
        let us = Duration::from_micros;
        let m = Some((32, us(200)));
        assert_eq!(lane_moderation(m, 1), m);
        assert_eq!(lane_moderation(m, 0), m);
        assert_eq!(lane_moderation(m, 2), Some((32, us(400))));
        assert_eq!(lane_moderation(m, 16), Some((32, us(1000))));
        assert_eq!(lane_moderation(None, 4), None);
        let r = ct_ring::reactor::MODERATION_RATE;
        assert_eq!(lane_moderation_rate(1), r);
        assert_eq!(lane_moderation_rate(0), r);
        assert_eq!(lane_moderation_rate(4), r / 4);
        // a longer wait set by CT_RING_MODERATION stays as it is
        assert_eq!(lane_moderation(Some((8, us(3000))), 2), Some((8, us(3000))));
    }

    /// 1.4.7's decisions: no Type → RR at the top priority whatever
    /// Priority says; a Type without Priority → priority 0.
    #[test]
    fn scheduling_follows_1_4_7() {
        use config::{SchedPolicy, Scheduler};
        let max = process::priority_max(libc::SCHED_RR);
        let s = |policy, priority| scheduling(&Scheduler { policy, priority });
        assert_eq!(s(None, None), (libc::SCHED_RR, max));
        assert_eq!(s(None, Some(5)), (libc::SCHED_RR, max));
        assert_eq!(s(Some(SchedPolicy::Fifo), None), (libc::SCHED_FIFO, 0));
        assert_eq!(s(Some(SchedPolicy::RoundRobin), None), (libc::SCHED_RR, 0));
        assert_eq!(s(Some(SchedPolicy::Fifo), Some(10)), (libc::SCHED_FIFO, 10));
        assert_eq!(
            s(Some(SchedPolicy::RoundRobin), Some(7)),
            (libc::SCHED_RR, 7)
        );
    }
}
