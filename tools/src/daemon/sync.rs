//! The sync link of the daemon: the UDP channel of the configuration
//! (bound to `IPv4_address:Port`, sending to `IPv4_Destination_Address:
//! Port`, MTU from `Interface`) driven by the reactor, and the protocol
//! state machine (NOTRACK today) that turns internal-cache changes into
//! datagrams and received datagrams into external-cache changes.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use ct_core::config::{Channel, ChannelType, SyncMode, SyncSection};
use ct_core::ctl::stats::{ChannelStats, NetworkStats};
use ct_ring::reactor::{Reactor, SockId, SockOpts};
use ct_transport::proto::notrack::Notrack;
use ct_transport::wire::{EmitOpts, Transport};

/// MTU of an interface (`SIOCGIFMTU`), 1500 when unknown.
pub fn interface_mtu(dev: &str) -> usize {
    let mut mtu = 1500;
    // SAFETY: a throw-away socket and a zeroed ifreq whose name is
    // NUL-terminated and shorter than IFNAMSIZ.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd >= 0 {
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (i, b) in dev.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
                ifr.ifr_name[i] = b as libc::c_char;
            }
            if libc::ioctl(fd, libc::SIOCGIFMTU, &mut ifr) == 0 {
                mtu = ifr.ifr_ifru.ifru_mtu as usize;
            }
            libc::close(fd);
        }
    }
    mtu
}

/// Largest datagram we send (the reactor's send slot size).
pub const MAX_DATAGRAM: usize = 9216;

/// A running sync link.
pub struct SyncLink {
    pub sock: SockId,
    pub peer: SocketAddr,
    pub proto: Notrack,
    pub chan: ChannelStats,
}

impl SyncLink {
    /// Opens the default channel when the mode and transport are ones this
    /// build speaks (NOTRACK over UDP); `Ok(None)` otherwise.
    pub fn open(sync: &SyncSection, r: &mut Reactor) -> std::io::Result<Option<SyncLink>> {
        if sync.mode() != SyncMode::Notrack {
            return Ok(None);
        }
        let Some(ch) = sync.channels.get(sync.default_channel) else {
            return Ok(None);
        };
        if ch.kind != ChannelType::Udp {
            return Ok(None);
        }
        let link = Self::udp(ch, sync, r)?;
        Ok(Some(link))
    }

    fn udp(ch: &Channel, sync: &SyncSection, r: &mut Reactor) -> std::io::Result<SyncLink> {
        let local = ch
            .address
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let dest = ch.destination.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no destination address")
        })?;
        let sock = UdpSocket::bind(SocketAddr::new(local, ch.port))?;
        // Datagrams are capped at the reactor's send slot (9 KiB): loopback's
        // 64 KiB MTU would otherwise make every datagram a jumbo one.
        let mtu = ch
            .interface
            .as_deref()
            .map(interface_mtu)
            .unwrap_or(1500)
            .min(MAX_DATAGRAM);
        let opts = EmitOpts {
            commit_timeout: sync.commit_timeout > 0,
            tcp_window_tracking: sync.tcp_window_tracking,
        };
        let id = r.register(sock, SockOpts::udp().buf_size(65536).buf_count(256))?;
        Ok(SyncLink {
            sock: id,
            peer: SocketAddr::new(dest, ch.port),
            proto: Notrack::new(mtu, Transport::Udp, opts),
            chan: ChannelStats::default(),
        })
    }

    /// The `-s network` counters.
    pub fn network_stats(&self) -> NetworkStats {
        let e = &self.proto.recv_errors;
        NetworkStats {
            malformed: e.malformed,
            wrong_version: e.bad_version as u64,
            bad_header: e.bad_header as u64,
            bad_payload: e.bad_payload as u64,
            bad_type: e.bad_type as u64,
            truncated: e.truncated as u64,
            bad_size: e.bad_size as u64,
            lost: self.proto.rx.lost,
            before: self.proto.rx.before,
        }
    }
}
