//! The sync link of the daemon: the UDP channel of the configuration
//! (bound to `IPv4_address:Port`, sending to `IPv4_Destination_Address:
//! Port`, MTU from `Interface`) or the multicast one (group and port,
//! joined on `IPv4_interface`) or the TCP one, driven by the reactor, and
//! what the sync protocol is built for on it (MTU and transport, see
//! `ct_transport::replicator`, which runs the protocol).

use std::net::{IpAddr, SocketAddr, UdpSocket};

use ct_core::config::{Channel, ChannelType, SyncSection};
use ct_core::ctl::stats::{ChannelStats, NetworkStats};
use ct_ring::reactor::{Reactor, SockId, SockOpts};
use ct_ring::tcp::{Connecting, Keepalive, Progress, StreamOpts};
use ct_transport::replicator::{LinkParams, Protocol};
use ct_transport::wire::Transport;

use super::auth::LinkAuth;

/// MTU of an interface, 1500 when unknown.
pub fn interface_mtu(dev: &str) -> usize {
    ct_ring::iface::mtu(dev).unwrap_or(1500)
}

/// How long a bind waits for its port to be released.
const BIND_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds, retrying while the address is in use for up to [`BIND_WAIT`]:
/// after a `kill -9`, the kernel releases the sockets of the dead
/// instance's io_uring asynchronously (the ring is torn down by a
/// workqueue), so a quick restart can find its port still taken for a
/// moment.
fn bind_retry<T>(mut bind: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let t0 = std::time::Instant::now();
    loop {
        match bind() {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && t0.elapsed() < BIND_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// `SndSocketBuffer` / `RcvSocketBuffer` (SO_*BUFFORCE, falling back to
/// the plain options), 0 = leave the system default.
fn set_buffers(fd: std::os::fd::RawFd, snd: u32, rcv: u32) {
    let _ = ct_ring::tcp::set_buffer(fd, true, snd);
    let _ = ct_ring::tcp::set_buffer(fd, false, rcv);
}

/// Largest datagram we send (the reactor's send slot size).
pub const MAX_DATAGRAM: usize = 9216;

/// A running sync link.
pub struct SyncLink {
    /// Where datagrams go: the UDP/multicast socket, or the TCP client
    /// connection (a placeholder until it connects).
    pub sock: SockId,
    pub peer: SocketAddr,
    /// What the protocol is built for (the default channel's).
    pub params: LinkParams,
    pub chan: ChannelStats,
    /// TCP only.
    pub tcp: Option<TcpLink>,
    /// The current channel's `Interface` and its index in the
    /// configuration.
    pub dev: String,
    pub index: usize,
    /// The other (redundant) channels: they receive; one of them becomes
    /// current on failover.
    pub others: Vec<Endpoint>,
    /// Datagrams (and TCP connections) from an address other than the
    /// configured peer, dropped.
    pub foreign: u64,
    /// `Authentication`: seals what we send, opens what we receive.
    pub auth: Option<LinkAuth>,
    /// When a wait for a free send slot last timed out (the link is
    /// stalled: later datagrams fail at once for a second).
    pub send_stalled: Option<std::time::Instant>,
    /// Completions in one wake-up that end a lingering wait (a quarter of
    /// the datagrams the smallest channel socket can hold: its receive
    /// buffer and its provided buffers, at least 1), see [`linger_busy`].
    pub linger_busy: usize,
}

/// How many completions in one lingering wake-up end the lingering for a
/// while: a quarter of what one of the channel's sockets can hold until
/// it is read, so that the next 5 ms, even four times as busy, still fit.
/// A datagram of `mtu` bytes takes about twice that of the receive buffer
/// (the kernel counts each buffer's true size), and one provided buffer.
/// A wake-up hands over at most `limit` receives of a socket
/// (EventIterationLimit, 0 = none), so a lower limit ends it sooner.
pub fn linger_busy(rcvbuf: usize, mtu: usize, buf_count: u16, limit: u32) -> usize {
    let per = 2 * mtu.max(1024) + 512;
    let n = (rcvbuf / per).min(usize::from(buf_count)) / 4;
    match limit {
        0 => n,
        l => n.min(l as usize),
    }
}

/// The most a lingering wake-up may handle with a TCP channel (its
/// flow control holds the peer back; a busy link should not linger).
const LINGER_BUSY_TCP: usize = 16;

/// Provided buffers of a UDP or multicast channel's socket.
const DATAGRAM_BUFS: u16 = 256;

/// A channel that is not the current one.
pub struct Endpoint {
    pub sock: SockId,
    pub peer: SocketAddr,
    pub chan: ChannelStats,
    pub tcp: Option<TcpLink>,
    pub dev: String,
    pub index: usize,
}

/// The two connections of a TCP channel: the server side (the peer's
/// client connects to our `IPv4_address:Port`; we receive on it) and our
/// client (connected to the peer's server; we send on it). Our connect
/// never blocks: it is started and checked later ([`Connecting`]), at
/// most once a second, as 1.4.7 rate-limits it; both connections probe a
/// silent peer with keepalives, so a dead one is dropped and reconnected.
/// What cannot be sent while the client is down waits in the error queue
/// (`ErrorQueueLength`, the oldest dropped when full) and goes first once
/// it is up again.
pub struct TcpLink {
    listener: std::net::TcpListener,
    pub server: Option<SockId>,
    pub client: Option<SockId>,
    connecting: Option<Connecting>,
    last_try: Option<std::time::Instant>,
    opts: StreamOpts,
    /// Bytes of a message split across reads.
    pub pending: Vec<u8>,
    /// EventIterationLimit: reads per wake-up.
    limit: u32,
    /// Connections refused because they did not come from the peer.
    pub refused: u64,
    /// The error queue: whole datagrams, oldest first.
    pub errq: std::collections::VecDeque<Vec<u8>>,
    errq_max: usize,
    /// Datagrams dropped from the error queue because it was full.
    pub errq_full: u64,
    /// Why the last connect failed (reported once per reason).
    last_error: Option<String>,
    report: Option<String>,
}

/// A connect that has not completed within this is abandoned (and
/// retried on a later tick).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// At most one connect attempt this often (1.4.7: once a second).
const CONNECT_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// A peer that answers no keepalive for 5 + 3 x 1 s is dead.
const KEEPALIVE: Keepalive = Keepalive {
    idle: std::time::Duration::from_secs(5),
    interval: std::time::Duration::from_secs(1),
    count: 3,
};

impl TcpLink {
    /// Accepts the peer and (re)connects to it, never waiting: called on
    /// every tick and, while a connect is in progress, on the short
    /// connect timer.
    pub fn maintain(&mut self, r: &mut Reactor, peer: SocketAddr) {
        // Every connection waiting is accepted and the newest from the
        // peer kept, as 1.4.7's tcp_accept does: a peer that connects
        // again (restarted, or its old connection half dead) replaces
        // the connection it had, and one that someone opened from the
        // peer's address and holds idle does not stop replication.
        while let Ok((s, from)) = self.listener.accept() {
            if from.ip() != peer.ip() {
                // not our peer: closed at once, counted by the caller
                self.refused += 1;
                continue;
            }
            let _ = s.set_nonblocking(true);
            let _ = ct_ring::tcp::apply(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                &StreamOpts {
                    keepalive: Some(KEEPALIVE),
                    ..StreamOpts::default()
                },
            );
            if let Some(old) = self.server.take() {
                let _ = r.close(old);
            }
            self.pending.clear();
            self.server = r
                .register(s, SockOpts::stream().max_per_wake(self.limit))
                .ok();
        }
        if self.client.is_some() {
            return;
        }
        let c = match self.connecting.take() {
            Some(c) => c,
            None => {
                if self.last_try.is_some_and(|t| t.elapsed() < CONNECT_RETRY) {
                    return;
                }
                self.last_try = Some(std::time::Instant::now());
                match Connecting::start(peer, &self.opts) {
                    Ok(c) => c,
                    Err(e) => return self.failed(format!("can't connect to {peer}: {e}")),
                }
            }
        };
        match c.poll() {
            (Some(c), Progress::Pending) if c.age() < CONNECT_TIMEOUT => self.connecting = Some(c),
            (_, Progress::Pending) => self.failed(format!("can't connect to {peer}: timed out")),
            (_, Progress::Connected(s)) => {
                match r.register(s, SockOpts::stream().max_per_wake(self.limit)) {
                    Ok(id) => {
                        self.client = Some(id);
                        if self.last_error.take().is_some() {
                            self.report = Some(format!("connected to {peer}"));
                        }
                    }
                    Err(e) => self.failed(format!("can't use the connection to {peer}: {e}")),
                }
            }
            (_, Progress::Failed(e)) => self.failed(format!("can't connect to {peer}: {e}")),
        }
    }

    /// A connect failed: retried on a later tick; reported when the
    /// reason changes (not every second).
    fn failed(&mut self, why: String) {
        if self.last_error.as_deref() != Some(why.as_str()) {
            self.report = Some(why.clone());
            self.last_error = Some(why);
        }
    }

    /// A change of the connection's fate to log (a new reason it cannot
    /// connect, or connected again), once.
    pub fn take_report(&mut self) -> Option<String> {
        self.report.take()
    }

    /// Whether a connect is in progress (checked on the short timer).
    pub fn connecting(&self) -> bool {
        self.connecting.is_some()
    }

    /// Puts a datagram that could not be sent into the error queue,
    /// dropping the oldest one when it is full.
    pub fn enqueue_error(&mut self, d: &[u8]) {
        if self.errq_max == 0 {
            return;
        }
        if self.errq.len() >= self.errq_max {
            self.errq.pop_front();
            self.errq_full += 1;
        }
        self.errq.push_back(d.to_vec());
    }

    /// A connection of ours was closed or failed.
    pub fn closed(&mut self, r: &mut Reactor, sock: SockId) {
        if self.server == Some(sock) {
            self.server = None;
            self.pending.clear();
        }
        if self.client == Some(sock) {
            self.client = None;
        }
        let _ = r.close(sock);
    }

    /// `server=... client=...` of `-s`.
    pub fn state(&self) -> (bool, bool) {
        (self.server.is_some(), self.client.is_some())
    }
}

impl SyncLink {
    /// Opens the default channel (UDP, multicast or TCP) with the protocol
    /// of the mode, and the redundant ones; fails when there is none.
    /// `limit` is EventIterationLimit: receives per wake-up on each
    /// channel socket.
    /// `lane` (`Lanes`) is added to every channel's port: lane i talks
    /// to the peer's lane i. With `lanes` > 1 a multicast channel hears
    /// its own group only: a lane's port can be another's redundant
    /// channel's (1.4.7's example numbers its redundant group's port
    /// 3781), and a socket hears every group the host joined on its port.
    pub fn open(
        sync: &SyncSection,
        limit: u32,
        lane: u16,
        lanes: u16,
        r: &mut Reactor,
    ) -> std::io::Result<SyncLink> {
        let mut shifted = sync.clone();
        for c in &mut shifted.channels {
            c.port = c.port.wrapping_add(lane);
        }
        let sync = &shifted;
        let Some(ch) = sync.channels.get(sync.default_channel) else {
            // 1.4.7 refuses to start without a dedicated link, whatever
            // the mode
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no dedicated link: the Sync section needs a Multicast, UDP or TCP block",
            ));
        };
        let own = lanes > 1;
        let mut link = Self::channel(ch, sync, limit, own, r)?;
        link.index = sync.default_channel;
        // Redundant links: every other channel of the same transport is
        // opened too and receives (TCP: listens and connects); see
        // `failover` and `follow`.
        for (i, c) in sync.channels.iter().enumerate() {
            if i == sync.default_channel || c.kind != ch.kind {
                continue;
            }
            let l = Self::channel(c, sync, limit, own, r)?;
            link.linger_busy = link.linger_busy.min(l.linger_busy);
            link.others.push(Endpoint {
                sock: l.sock,
                peer: l.peer,
                chan: l.chan,
                tcp: l.tcp,
                dev: l.dev,
                index: i,
            });
        }
        Ok(link)
    }

    fn channel(
        ch: &Channel,
        sync: &SyncSection,
        limit: u32,
        many_lanes: bool,
        r: &mut Reactor,
    ) -> std::io::Result<SyncLink> {
        // Interface is required (MTU, link monitoring, IPv6 scope) and
        // must exist: 1.4.7 fails with ENODEV otherwise.
        let dev = ch.interface.as_deref().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("no Interface in the {} block", ch.kind.keyword()),
            )
        })?;
        if !ct_ring::iface::exists(dev) {
            return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
        }
        let mut l = match ch.kind {
            ChannelType::Udp => Self::udp(ch, sync, limit, many_lanes, r)?,
            ChannelType::Multicast => Self::multicast(ch, sync, limit, many_lanes, r)?,
            ChannelType::Tcp => Self::tcp(ch, sync, limit, r)?,
        };
        l.dev = ch.interface.clone().unwrap_or_default();
        Ok(l)
    }

    /// The messages of a datagram from the link: all of it without
    /// `Authentication`; with it, the part before the trailer if the tag
    /// verifies and the counter is fresh, else `None` (counted).
    pub fn open_datagram<'d>(&mut self, data: &'d [u8]) -> Option<&'d [u8]> {
        match &mut self.auth {
            None => Some(data),
            Some(a) => a.opener.open(data).ok(),
        }
    }

    /// Makes the other channel whose socket is `sock` the current one
    /// (1.4.7 follows the channel the peer's messages arrive on).
    pub fn follow(&mut self, sock: SockId) -> bool {
        match self.others.iter().position(|e| e.sock == sock) {
            Some(k) => {
                self.swap(k);
                true
            }
            None => false,
        }
    }

    fn swap(&mut self, k: usize) {
        let o = &mut self.others[k];
        std::mem::swap(&mut self.sock, &mut o.sock);
        std::mem::swap(&mut self.peer, &mut o.peer);
        std::mem::swap(&mut self.chan, &mut o.chan);
        std::mem::swap(&mut self.tcp, &mut o.tcp);
        std::mem::swap(&mut self.dev, &mut o.dev);
        std::mem::swap(&mut self.index, &mut o.index);
        // What waited in the old channel's error queue goes first on the
        // new one (never stranded, to come out late and stale).
        if let (Some(old), Some(new)) = (o.tcp.as_mut(), self.tcp.as_mut()) {
            let mut q = std::mem::take(&mut old.errq);
            q.append(&mut new.errq);
            new.errq = q;
            while new.errq.len() > new.errq_max {
                new.errq.pop_front();
                new.errq_full += 1;
            }
        }
    }

    /// Failover on local link state (on rtnetlink link events, as 1.4.7;
    /// polled every second if those cannot be had): when the current channel's interface is not up and
    /// running, the first other channel in configuration order whose
    /// interface is up or running becomes current. Returns the log line
    /// (notice, or the error when none is available).
    pub fn failover(
        &mut self,
        status: impl Fn(&str) -> (bool, bool),
    ) -> Option<Result<String, String>> {
        if self.others.is_empty() {
            return None;
        }
        let (up, running) = status(&self.dev);
        if up && running {
            return None;
        }
        let k = self
            .others
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                let (u, r) = status(&e.dev);
                u || r
            })
            .min_by_key(|(_, e)| e.index)
            .map(|(k, _)| k);
        match k {
            Some(k) => {
                self.swap(k);
                Some(Ok(format!("device `{}' becomes dedicated link", self.dev)))
            }
            None => Some(Err("no dedicated links available!".to_string())),
        }
    }

    /// Appends the TCP connections of every channel (current first).
    pub fn tcp_socks_into(&self, v: &mut Vec<SockId>) {
        let all = std::iter::once(&self.tcp).chain(self.others.iter().map(|e| &e.tcp));
        for t in all.flatten() {
            v.extend(t.server);
            v.extend(t.client);
        }
    }

    /// Appends the server connections (where the peer's messages arrive)
    /// of the other TCP channels.
    pub fn other_tcp_servers_into(&self, v: &mut Vec<SockId>) {
        v.extend(
            self.others
                .iter()
                .filter_map(|e| e.tcp.as_ref().and_then(|t| t.server)),
        );
    }

    /// Makes the other TCP channel whose server connection is `sock` the
    /// current one (the peer's messages arrive there).
    pub fn follow_tcp(&mut self, sock: SockId) -> bool {
        let k = self
            .others
            .iter()
            .position(|e| e.tcp.as_ref().is_some_and(|t| t.server == Some(sock)));
        match k {
            Some(k) => {
                self.swap(k);
                true
            }
            None => false,
        }
    }

    /// A TCP connection of any channel was closed or failed.
    pub fn tcp_closed(&mut self, r: &mut Reactor, sock: SockId) {
        let all = std::iter::once(&mut self.tcp).chain(self.others.iter_mut().map(|e| &mut e.tcp));
        for t in all.flatten() {
            if t.server == Some(sock) || t.client == Some(sock) {
                t.closed(r, sock);
                return;
            }
        }
    }

    /// Accepts and (re)connects every TCP channel (once per tick).
    pub fn maintain_tcp(&mut self, r: &mut Reactor) {
        if let Some(t) = &mut self.tcp {
            t.maintain(r, self.peer);
        }
        for e in &mut self.others {
            if let Some(t) = &mut e.tcp {
                t.maintain(r, e.peer);
            }
        }
    }

    /// Whether a datagram from `from` on `sock` comes from the configured
    /// peer of that channel (unicast UDP: its `IPv4_Destination_Address`;
    /// multicast: anyone but ourselves, so anything is taken). Others are
    /// counted and must be dropped.
    pub fn from_peer(&mut self, sock: SockId, from: Option<SocketAddr>) -> bool {
        let peer = if sock == self.sock {
            self.peer
        } else {
            match self.others.iter().find(|e| e.sock == sock) {
                Some(e) => e.peer,
                None => return true,
            }
        };
        let ok = peer.ip().is_multicast() || from.is_none_or(|f| f.ip() == peer.ip());
        if !ok {
            self.foreign += 1;
        }
        ok
    }

    /// Whether there are redundant channels.
    pub fn has_others(&self) -> bool {
        !self.others.is_empty()
    }

    /// Whether `sock` belongs to a channel that is not the current one.
    pub fn is_other(&self, sock: SockId) -> bool {
        self.others.iter().any(|e| e.sock == sock)
    }

    /// The TCP connection state (server, client) of the channel with
    /// configuration index `i`.
    pub fn tcp_state_of(&self, i: usize) -> Option<(bool, bool)> {
        if i == self.index {
            return self.tcp.as_ref().map(TcpLink::state);
        }
        self.others
            .iter()
            .find(|e| e.index == i)
            .and_then(|e| e.tcp.as_ref().map(TcpLink::state))
    }

    /// The counters of the channel with configuration index `i`.
    pub fn chan_of(&self, i: usize) -> Option<ChannelStats> {
        if i == self.index {
            return Some(self.chan);
        }
        self.others.iter().find(|e| e.index == i).map(|e| e.chan)
    }

    /// A TCP channel: listens on `IPv4_address:Port` and connects to
    /// `IPv4_Destination_Address:Port`.
    fn tcp(
        ch: &Channel,
        sync: &SyncSection,
        limit: u32,
        r: &mut Reactor,
    ) -> std::io::Result<SyncLink> {
        let local = ch
            .address
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let dest = ch.destination.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no destination address")
        })?;
        let scope = Self::scope(ch);
        let listener = bind_retry(|| {
            std::net::TcpListener::bind(ct_ring::udp::scoped(local, ch.port, scope))
        })?;
        listener.set_nonblocking(true)?;
        // RcvSocketBuffer on the listener (the accepted connection
        // inherits it), SndSocketBuffer and Checksum on our client, as
        // 1.4.7 sets them.
        ct_ring::tcp::set_buffer(std::os::fd::AsRawFd::as_raw_fd(&listener), false, ch.rcvbuf)?;
        // A placeholder send target until the client connects: an unbound
        // UDP socket nobody reads (nothing is sent to it: datagrams wait
        // in the error queue).
        let dummy = UdpSocket::bind(ct_ring::udp::scoped(local, 0, scope))?;
        let sock = r.register(dummy, SockOpts::udp().send_only())?;
        let mut tcp = TcpLink {
            listener,
            server: None,
            client: None,
            connecting: None,
            last_try: None,
            opts: StreamOpts {
                sndbuf: ch.sndbuf,
                no_check: Some(!ch.checksum),
                keepalive: Some(KEEPALIVE),
                user_timeout: Some(std::time::Duration::from_secs(10)),
                nodelay: true,
                ..StreamOpts::default()
            },
            pending: Vec::new(),
            limit,
            refused: 0,
            errq: std::collections::VecDeque::new(),
            errq_max: sync.error_queue_length as usize,
            errq_full: 0,
            last_error: None,
            report: None,
        };
        let peer = ct_ring::udp::scoped(dest, ch.port, scope);
        tcp.maintain(r, peer);
        Ok(SyncLink {
            sock,
            peer,
            params: LinkParams {
                mtu: Self::mtu(ch),
                transport: Transport::Tcp,
                sealed: sync.auth.is_some(),
            },
            chan: ChannelStats::default(),
            tcp: Some(tcp),
            dev: String::new(),
            index: 0,
            others: Vec::new(),
            foreign: 0,
            auth: None,
            send_stalled: None,
            linger_busy: LINGER_BUSY_TCP,
        })
    }

    fn mtu(ch: &Channel) -> usize {
        // Datagrams are capped at the reactor's send slot (9 KiB): loopback's
        // 64 KiB MTU would otherwise make every datagram a jumbo one.
        ch.interface
            .as_deref()
            .map(interface_mtu)
            .unwrap_or(1500)
            .min(MAX_DATAGRAM)
    }

    /// A multicast channel: bound to the group's port (SO_REUSEADDR),
    /// member of the group and sending through the channel's interface
    /// with loopback off and the default TTL or hop limit (1), as 1.4.7.
    /// IPv4: the interface of `IPv4_interface`. IPv6: the index of
    /// `Interface` (0, the routing table's choice, when 1.4.7 would not
    /// have it: see [`Channel::v6_group_index`]).
    fn multicast(
        ch: &Channel,
        sync: &SyncSection,
        limit: u32,
        own_group_only: bool,
        r: &mut Reactor,
    ) -> std::io::Result<SyncLink> {
        use ct_ring::udp;
        let no_group = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no multicast group address",
            )
        };
        let (sock, peer) = match ch.address.ok_or_else(no_group)? {
            IpAddr::V4(group) => {
                let ifaddr = ch
                    .interface_address
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                let any = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), ch.port);
                let sock = udp::bind_multicast(any, !own_group_only, None)?;
                sock.join_multicast_v4(&group, &ifaddr)?;
                sock.set_multicast_loop_v4(false)?;
                udp::set_multicast_if_v4(&sock, ifaddr)?;
                (sock, SocketAddr::new(IpAddr::V4(group), ch.port))
            }
            IpAddr::V6(group) => {
                let index = if ch.v6_group_index {
                    ch.interface
                        .as_deref()
                        .and_then(ct_ring::iface::index)
                        .unwrap_or(0)
                } else {
                    0
                };
                let any = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), ch.port);
                // IPv6 matches a membership by its group alone: with
                // lanes, a channel on the same group over another link
                // and on this port (a lane's port + i) would hear ours.
                // The socket hears the interface it joined on only.
                let device = match (own_group_only, index) {
                    (true, i) if i != 0 => ch.interface.as_deref(),
                    _ => None,
                };
                let sock = udp::bind_multicast(any, !own_group_only, device)?;
                sock.join_multicast_v6(&group, index)?;
                sock.set_multicast_loop_v6(false)?;
                udp::set_multicast_if_v6(&sock, index)?;
                (sock, udp::scoped(IpAddr::V6(group), ch.port, index))
            }
        };
        set_buffers(std::os::fd::AsRawFd::as_raw_fd(&sock), ch.sndbuf, ch.rcvbuf);
        ct_ring::tcp::set_no_check(std::os::fd::AsRawFd::as_raw_fd(&sock), !ch.checksum)?;
        Self::datagram(sock, peer, ch, sync, limit, r)
    }

    /// The IPv6 scope of the channel's addresses: the index of
    /// `Interface`, as 1.4.7 takes it (used for link-local addresses).
    fn scope(ch: &Channel) -> u32 {
        ch.interface
            .as_deref()
            .and_then(ct_ring::iface::index)
            .unwrap_or(0)
    }

    /// A UDP or multicast channel on its bound socket.
    fn datagram(
        sock: UdpSocket,
        peer: SocketAddr,
        ch: &Channel,
        sync: &SyncSection,
        limit: u32,
        r: &mut Reactor,
    ) -> std::io::Result<SyncLink> {
        let opts = SockOpts::udp()
            .buf_size(65536)
            .buf_count(DATAGRAM_BUFS)
            .max_per_wake(limit);
        let rcvbuf = ct_ring::sockopt::rcvbuf(std::os::fd::AsFd::as_fd(&sock)).unwrap_or(212_992);
        Ok(SyncLink {
            linger_busy: linger_busy(rcvbuf, Self::mtu(ch), DATAGRAM_BUFS, limit).max(1),
            sock: r.register(sock, opts)?,
            peer,
            params: LinkParams {
                mtu: Self::mtu(ch),
                transport: Transport::Udp,
                sealed: sync.auth.is_some(),
            },
            chan: ChannelStats::default(),
            tcp: None,
            dev: String::new(),
            index: 0,
            others: Vec::new(),
            foreign: 0,
            auth: None,
            send_stalled: None,
        })
    }

    fn udp(
        ch: &Channel,
        sync: &SyncSection,
        limit: u32,
        many_lanes: bool,
        r: &mut Reactor,
    ) -> std::io::Result<SyncLink> {
        let local = ch
            .address
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let dest = ch.destination.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no destination address")
        })?;
        let scope = Self::scope(ch);
        // SO_REUSEADDR, as 1.4.7's UDP sockets: two channels may bind the
        // same address and port (1.4.7 starts so). Not with lanes: lane i
        // binds Port + i, and a lane's channel on another channel's port
        // would share its datagrams (one socket gets each) without a word.
        let addr = ct_ring::udp::scoped(local, ch.port, scope);
        let sock = bind_retry(|| {
            if many_lanes {
                UdpSocket::bind(addr)
            } else {
                ct_ring::udp::bind_reuse(addr)
            }
        })?;
        set_buffers(std::os::fd::AsRawFd::as_raw_fd(&sock), ch.sndbuf, ch.rcvbuf);
        // `Checksum off`: SO_NO_CHECK on the sending socket, as 1.4.7
        ct_ring::tcp::set_no_check(std::os::fd::AsRawFd::as_raw_fd(&sock), !ch.checksum)?;
        let peer = ct_ring::udp::scoped(dest, ch.port, scope);
        Self::datagram(sock, peer, ch, sync, limit, r)
    }

    /// The TCP error queue (`-s queue`: errorq): (elements, elements
    /// dropped because it was full).
    pub fn error_queue(&self) -> (u64, u64) {
        std::iter::once(&self.tcp)
            .chain(self.others.iter().map(|e| &e.tcp))
            .flatten()
            .fold((0, 0), |(n, f), t| {
                (n + t.errq.len() as u64, f + t.errq_full)
            })
    }

    /// The connection reports of every TCP channel (to log).
    pub fn tcp_reports(&mut self) -> Vec<String> {
        std::iter::once(&mut self.tcp)
            .chain(self.others.iter_mut().map(|e| &mut e.tcp))
            .flatten()
            .filter_map(TcpLink::take_report)
            .collect()
    }

    /// Whether a TCP connect of any channel is in progress.
    pub fn tcp_connecting(&self) -> bool {
        std::iter::once(&self.tcp)
            .chain(self.others.iter().map(|e| &e.tcp))
            .flatten()
            .any(TcpLink::connecting)
    }

    /// The `-s network` counters.
    pub fn network_stats(&self, proto: Option<&Protocol>) -> NetworkStats {
        let none = Default::default();
        let (e, lost, before) = proto.map_or((&none, 0, 0), Protocol::recv_counters);
        let refused: u64 = std::iter::once(&self.tcp)
            .chain(self.others.iter().map(|e| &e.tcp))
            .flatten()
            .map(|t| t.refused)
            .sum();
        NetworkStats {
            auth: self.auth.as_ref().map(LinkAuth::counters),
            foreign: self.foreign + refused,
            malformed: e.malformed,
            wrong_version: e.bad_version as u64,
            bad_header: e.bad_header as u64,
            bad_payload: e.bad_payload as u64,
            bad_type: e.bad_type as u64,
            truncated: e.truncated as u64,
            bad_size: e.bad_size as u64,
            lost,
            before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingering_ends_at_a_quarter_of_what_a_socket_holds() {
        // the system's default receive buffer (208 KiB) and a 1500-byte
        // link: about 60 full datagrams fit, so 15 end the lingering
        assert_eq!(linger_busy(212_992, 1500, DATAGRAM_BUFS, 100), 15);
        // the lab's 24 MB buffers (the kernel reports twice the request):
        // the 256 provided buffers are the limit
        assert_eq!(linger_busy(2 * 24_985_600, 1500, DATAGRAM_BUFS, 100), 64);
        assert_eq!(linger_busy(2 * 24_985_600, 1500, DATAGRAM_BUFS, 0), 64);
        // a wake-up hands over at most EventIterationLimit datagrams of a
        // socket, so a lower limit must end it (else it never would)
        assert_eq!(linger_busy(2 * 24_985_600, 1500, DATAGRAM_BUFS, 10), 10);
        // jumbo frames hold fewer datagrams per byte
        assert_eq!(linger_busy(212_992, 9000, DATAGRAM_BUFS, 100), 2);
        // a tiny buffer never lingers past a single completion
        assert_eq!(linger_busy(4096, 1500, DATAGRAM_BUFS, 100), 0);
    }
}
