//! `conntrack -E`: the event listener. It reads many datagrams per
//! syscall (`recvmmsg`) from a socket with a large receive buffer, writes
//! through a buffered stdout that is flushed whenever the socket runs dry
//! (so an idle listener still shows each event at once), reports kernel
//! overruns (ENOBUFS) like conntrack 1.4.7 and keeps going, and prints the
//! summary on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use ct_core::flow::{Flow, AF_UNSPEC};
use ct_core::format::EventKind;
use ct_core::netlink::ct::parse_flow_into;
use ct_core::netlink::msg::*;
use ct_ring::netlink::{NlSocket, RecvBatch, RecvError, NETLINK_NETFILTER};

use super::env::{now, SysEnv};
use super::errors::BANNER;
use super::filter::{self, Filter};
use super::output::{Printer, Site};
use crate::cli::args::{ev, opt, out, CliError, Cmd};
use crate::nl::Session;

/// Receive buffer we ask for on the event socket (the kernel doubles it).
pub const EVENT_RCVBUF: usize = 64 << 20;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs SIGINT/SIGTERM handlers without SA_RESTART so that a blocked
/// receive returns EINTR (the handler only stores to an atomic).
pub fn install_signals() {
    // SAFETY: the handler only stores to an atomic.
    #[allow(unsafe_code)]
    unsafe {
        ct_ring::os::signals::handle(&[libc::SIGINT, libc::SIGTERM], on_signal)
    };
}

pub fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// `-b`: the C tool sets the size on its request socket (not the event
/// socket) and reports what that socket reads back.
pub fn buffer_notice(c: &Cmd) {
    if !c.has(opt::BUFFERSIZE) {
        return;
    }
    let size = Session::open()
        .ok()
        .map(|s| s.sock.set_rcvbuf_size_t(c.bufsize as u64))
        .unwrap_or(0);
    eprintln!("NOTICE: Netlink socket buffer size has been set to {size} bytes.");
}

/// Finds the program owning netlink port `portid` (`get_progname`). The
/// C tool re-reads `/proc/net/netlink` for every event; we remember a
/// port's answer for a second, which keeps a busy listener cheap.
pub struct ProgNames {
    cache: HashMap<u32, (Option<String>, std::time::Instant)>,
}

impl ProgNames {
    pub fn new() -> ProgNames {
        ProgNames {
            cache: HashMap::new(),
        }
    }

    pub fn lookup(&mut self, portid: u32) -> Option<String> {
        let now = std::time::Instant::now();
        if let Some((v, t)) = self.cache.get(&portid) {
            if now.duration_since(*t) < std::time::Duration::from_secs(1) {
                return v.clone();
            }
        }
        let name = netlink_inode(portid).and_then(|inode| name_by_inode(portid, inode));
        if self.cache.len() > 4096 {
            self.cache.clear();
        }
        self.cache.insert(portid, (name.clone(), now));
        name
    }
}

impl Default for ProgNames {
    fn default() -> Self {
        Self::new()
    }
}

fn netlink_inode(portid: u32) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netlink").ok()?;
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        if f[1] == "12" && f[2].parse::<u32>().ok() == Some(portid) {
            return f[9].parse().ok();
        }
    }
    None
}

fn comm(pid: u64) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let a = s.find('(')?;
    let b = s[a + 1..].find(')')?;
    Some(s[a + 1..a + 1 + b].to_string())
}

fn owns(pid: u64, inode: u64) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let want = format!("socket:[{inode}]");
    dir.flatten().any(|e| {
        std::fs::read_link(e.path())
            .map(|t| t.to_string_lossy() == want)
            .unwrap_or(false)
    })
}

fn name_by_inode(portid: u32, inode: u64) -> Option<String> {
    if owns(portid as u64, inode) {
        return comm(portid as u64);
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        if pid <= 1 || pid == portid as u64 {
            continue;
        }
        if owns(pid, inode) {
            return comm(pid);
        }
    }
    None
}

/// The ENOBUFS warning, word for word.
pub const ENOBUFS_WARNING: &str = "WARNING: We have hit ENOBUFS! We are losing events.\nThis message means that the current netlink socket buffer size is too small.\nPlease, check --buffer-size in conntrack(8) manpage.\n";

/// Runs `conntrack -E` until a signal; never returns normally on success.
pub fn ct_events(c: &mut Cmd, p: &mut Printer, env: &SysEnv) -> Result<u64, CliError> {
    let groups = if c.has(opt::EVENT_MASK) {
        let mut g = 0;
        if c.event_mask & ev::NEW != 0 {
            g |= 1;
        }
        if c.event_mask & ev::UPD != 0 {
            g |= 2;
        }
        if c.event_mask & ev::DEL != 0 {
            g |= 4;
        }
        g
    } else {
        7
    };
    let sock = NlSocket::open_steps(NETLINK_NETFILTER, groups).map_err(|(step, e)| {
        // 1.4.7's perror() of the libmnl call that failed
        eprintln!("{step}: {}", crate::cli::labels::strerror(&e));
        CliError::other("Can't open netlink socket")
    })?;
    let _ = sock.set_rcvbuf(EVENT_RCVBUF.max(c.bufsize));
    buffer_notice(c);
    let f = Filter::init(c)?;
    install_signals();
    let mut batch = RecvBatch::new(64, 16 << 10);
    let mut flow = Flow::default();
    let mut names = ProgNames::new();
    let mut counter: u64 = 0;
    let mut err = std::io::stderr();
    loop {
        if stopped() {
            break;
        }
        let n = match sock.recv_batch(&mut batch, false) {
            Ok(n) => n,
            Err(RecvError::Interrupted) | Err(RecvError::WouldBlock) => continue,
            Err(RecvError::Overrun) => {
                let _ = p.out.flush();
                let _ = err.write_all(ENOBUFS_WARNING.as_bytes());
                continue;
            }
            Err(RecvError::Io(e)) => {
                let _ = p.out.flush();
                return Err(CliError::other(format!(
                    "failed to received netlink event: {}",
                    crate::cli::labels::strerror(&e)
                )));
            }
        };
        for i in 0..n {
            for m in Messages::new(batch.get(i)) {
                let Ok(m) = m else { break };
                if handle(c, &f, p, env, &mut names, &mut flow, &m) {
                    counter += 1;
                }
            }
        }
        if n < batch.slots() {
            let _ = p.out.flush();
        }
    }
    finish(p, counter, "flow events")
}

/// Prints the footer and summary and exits 0 (the signal handler's job in
/// the C tool).
pub fn finish(p: &mut Printer, counter: u64, what: &str) -> ! {
    let _ = p.xml_footer();
    let _ = p.out.flush();
    eprintln!("{BANNER}: {counter} {what} have been shown.");
    std::process::exit(0)
}

fn handle(
    c: &Cmd,
    f: &Filter,
    p: &mut Printer,
    env: &SysEnv,
    names: &mut ProgNames,
    flow: &mut Flow,
    m: &Message,
) -> bool {
    let kind = match m.msg() {
        IPCTNL_MSG_CT_NEW if m.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => EventKind::New,
        IPCTNL_MSG_CT_NEW => EventKind::Update,
        IPCTNL_MSG_CT_DELETE => EventKind::Destroy,
        _ => EventKind::None,
    };
    if m.subsys() != NFNL_SUBSYS_CTNETLINK {
        return false;
    }
    let Ok((g, attrs)) = m.nfgen() else {
        return false;
    };
    if parse_flow_into(flow, g.family, attrs).is_err() {
        return false;
    }
    if (c.family != AF_UNSPEC && c.family != g.family) || !filter::accept(c, f, flow) {
        return false;
    }
    let save = c.output & (out::SAVE | out::JSON) != 0;
    let xml = c.output & out::XML != 0;
    if !save {
        let _ = p.xml_header(c, Site::Event);
        if c.output & out::TMS != 0 && !xml {
            let (s, us) = now();
            let _ = write!(p.out, "[{s:08}.{us:06}]\t");
        }
    }
    p.render(c, Site::Event, flow, kind, env);
    if m.pid != 0 && c.output & out::JSON == 0 {
        if p.line.last() == Some(&b'\n') {
            p.line.pop();
        }
        let _ = write!(p.line, " [USERSPACE] portid={}", m.pid);
        if let Some(name) = names.lookup(m.pid) {
            let _ = write!(p.line, " progname={name}");
        }
        p.line.push(b'\n');
    }
    let _ = p.out.write_all(&p.line);
    true
}
