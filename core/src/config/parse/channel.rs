//! Channel blocks: `Multicast [Default] { }`, `UDP [Default] { }`,
//! `TCP [Default] { }`.
//!
//! Upstream fills `conf.channel[conf.channel_num]` while a block is read and
//! counts the block when it closes. Every option (except multicast
//! `IPv6_interface`) first checks that fewer than four blocks were
//! counted, so a fifth block is only an error if it has an option. The
//! multicast address and interface fields are C unions; the warnings that
//! fire when IPv4 and IPv6 are mixed are reproduced, and so is the memory
//! they leave behind where it is visible.

use std::net::{IpAddr, Ipv6Addr};

use super::{text, PResult, Parser};
use crate::config::channel::{Channel, ChannelType, Family};
use crate::config::cstd::{inet_aton, inet_pton6};
use crate::config::error::{ErrorKind, Expected};
use crate::config::model::MAX_CHANNELS;
use crate::config::span::Span;
use crate::config::token::{Keyword as K, Token, TokenKind};
use crate::config::warning::WarningKind;

/// Channel state kept across blocks.
#[derive(Default)]
pub(crate) struct ChannelState {
    /// Type of the first block that closed.
    global: Option<ChannelType>,
    /// Closed blocks.
    pub(crate) channels: Vec<Channel>,
    /// Their keywords' positions.
    pub(crate) spans: Vec<Span>,
    /// Index of the last `Default` block.
    pub(crate) default_channel: usize,
}

/// The block being read, with the bits of upstream's unions that matter.
struct Open {
    ch: Channel,
    /// Multicast `ifa` union is non-zero (an `IPv4_interface` other than
    /// 0.0.0.0, or an IPv6 interface index).
    ifa_set: bool,
}

/// glibc's `if_nametoindex` refuses names of IFNAMSIZ (16) bytes or more.
const IFNAMSIZ: usize = 16;

impl<'a> Parser<'a, '_> {
    pub(super) fn channel(&mut self, kind: ChannelType, kw: Token<'a>) -> PResult<()> {
        let t = self.bump();
        let default = match t.kind {
            TokenKind::Keyword(K::Default) => {
                self.expect_open()?;
                true
            }
            TokenKind::Char(b'{') => false,
            _ => return Err(self.syntax(t, Expected::DefaultOrBrace)),
        };
        let mut open = Open {
            ch: Channel::new(kind),
            ifa_set: false,
        };
        let expected = match kind {
            ChannelType::Multicast => Expected::MulticastKeyword,
            ChannelType::Udp => Expected::UdpKeyword,
            ChannelType::Tcp => Expected::TcpKeyword,
        };
        loop {
            let t = self.bump();
            let TokenKind::Keyword(k) = t.kind else {
                if t.is_char(b'}') {
                    break;
                }
                return Err(self.syntax(t, expected));
            };
            let known = match kind {
                ChannelType::Multicast => self.multicast_option(&mut open, k, t)?,
                _ => self.unicast_option(&mut open, k, t)?,
            };
            if !known {
                return Err(self.syntax(t, expected));
            }
        }
        let st = &mut self.channels;
        if st.global.is_some_and(|g| g != kind) {
            return Err(self.err(kw.span, ErrorKind::MixedChannels { kind }));
        }
        st.global = Some(kind);
        open.ch.default = default;
        if default {
            st.default_channel = st.channels.len();
        }
        st.channels.push(open.ch);
        st.spans.push(kw.span);
        Ok(())
    }

    fn check_max_links(&self, t: &Token<'_>) -> PResult<()> {
        if self.channels.channels.len() >= MAX_CHANNELS {
            return Err(self.err(t.span, ErrorKind::TooManyChannels));
        }
        Ok(())
    }

    /// Options common to all channel types. Returns `Ok(false)` if `k` is
    /// not one of them.
    fn common_option(&mut self, open: &mut Open, k: K, t: Token<'a>) -> PResult<bool> {
        match k {
            K::SndSocketBuffer | K::RcvSocketBuffer => {
                let n = self.number()? as u32;
                self.check_max_links(&t)?;
                if k == K::SndSocketBuffer {
                    open.ch.sndbuf = n;
                } else {
                    open.ch.rcvbuf = n;
                }
            }
            K::Checksum => {
                let on = self.on_off()?;
                self.check_max_links(&t)?;
                open.ch.checksum = on;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn interface_exists(&self, name: &str) -> bool {
        name.len() < IFNAMSIZ && self.sys.interface_exists(name)
    }

    fn multicast_option(&mut self, open: &mut Open, k: K, t: Token<'a>) -> PResult<bool> {
        match k {
            K::Ipv4Address => {
                let v = self.ip()?;
                self.check_max_links(&t)?;
                let Some(a) = inet_aton(v.text) else {
                    let addr = text(&v);
                    self.warn(v.span, WarningKind::InvalidIpv4Address { addr });
                    return Ok(true);
                };
                if open.ch.family == Some(Family::Ipv6) {
                    // inet_aton already wrote over the first bytes of the
                    // IPv6 group
                    if let Some(IpAddr::V6(g)) = open.ch.address {
                        let mut o = g.octets();
                        o[..4].copy_from_slice(&a.octets());
                        open.ch.address = Some(IpAddr::V6(Ipv6Addr::from(o)));
                    }
                    self.warn(v.span, WarningKind::MulticastV4AddressOnV6);
                    return Ok(true);
                }
                open.ch.address = Some(IpAddr::V4(a));
                open.ch.family = Some(Family::Ipv4);
            }
            K::Ipv6Address => {
                let v = self.ip()?;
                self.check_max_links(&t)?;
                let Some(a) = inet_pton6(v.text) else {
                    let addr = text(&v);
                    self.warn(v.span, WarningKind::InvalidIpv6Address { addr });
                    return Ok(true);
                };
                open.ch.address = Some(IpAddr::V6(a));
                if open.ch.family == Some(Family::Ipv4) {
                    self.warn(v.span, WarningKind::MulticastV6AddressOnV4);
                    return Ok(true);
                }
                open.ch.family = Some(Family::Ipv6);
                if open.ch.interface.is_some() && !open.ifa_set {
                    // upstream looks the ADDRESS up as an interface name
                    let name = text(&v);
                    if !self.interface_exists(&name) {
                        self.warn(v.span, WarningKind::InvalidInterface { name });
                        return Ok(true);
                    }
                    open.ifa_set = true;
                    open.ch.v6_group_index = true;
                }
            }
            K::Ipv4Interface => {
                let v = self.ip()?;
                self.check_max_links(&t)?;
                let Some(a) = inet_aton(v.text) else {
                    let addr = text(&v);
                    self.warn(v.span, WarningKind::InvalidIpv4Address { addr });
                    return Ok(true);
                };
                open.ch.interface_address = Some(a);
                open.ifa_set = !a.is_unspecified();
                if open.ch.family == Some(Family::Ipv6) {
                    self.warn(v.span, WarningKind::MulticastV4InterfaceOnV6);
                    return Ok(true);
                }
                open.ch.family = Some(Family::Ipv4);
            }
            K::Ipv6Interface => {
                self.ip()?;
                self.warn(t.span, WarningKind::Ipv6InterfaceIgnored);
            }
            K::Interface => {
                let v = self.name()?;
                self.check_max_links(&t)?;
                let name = text(&v);
                open.ch.interface = Some(name.clone());
                if !self.interface_exists(&name) {
                    self.warn(v.span, WarningKind::InvalidInterface { name });
                    return Ok(true);
                }
                if open.ch.family == Some(Family::Ipv6) {
                    open.ifa_set = true;
                    open.ch.v6_group_index = true;
                }
            }
            K::Group => {
                let n = self.number()?;
                self.check_max_links(&t)?;
                open.ch.port = n as u16;
            }
            _ => return self.common_option(open, k, t),
        }
        Ok(true)
    }

    fn unicast_option(&mut self, open: &mut Open, k: K, t: Token<'a>) -> PResult<bool> {
        match k {
            K::Ipv4Address | K::Ipv4DestinationAddress => {
                let v = self.ip()?;
                self.check_max_links(&t)?;
                let Some(a) = inet_aton(v.text) else {
                    let addr = text(&v);
                    self.warn(v.span, WarningKind::InvalidIpv4Address { addr });
                    return Ok(true);
                };
                if k == K::Ipv4Address {
                    open.ch.address = Some(IpAddr::V4(a));
                } else {
                    open.ch.destination = Some(IpAddr::V4(a));
                }
                open.ch.family = Some(Family::Ipv4);
            }
            K::Ipv6Address | K::Ipv6DestinationAddress => {
                let v = self.ip()?;
                self.check_max_links(&t)?;
                let Some(a) = inet_pton6(v.text) else {
                    let addr = text(&v);
                    self.warn(v.span, WarningKind::InvalidIpv6Address { addr });
                    return Ok(true);
                };
                if k == K::Ipv6Address {
                    open.ch.address = Some(IpAddr::V6(a));
                } else {
                    open.ch.destination = Some(IpAddr::V6(a));
                }
                open.ch.family = Some(Family::Ipv6);
            }
            K::Interface => {
                let v = self.name()?;
                self.check_max_links(&t)?;
                let name = text(&v);
                open.ch.interface = Some(name.clone());
                if !self.interface_exists(&name) {
                    self.warn(v.span, WarningKind::InvalidInterface { name });
                }
            }
            K::Port => {
                let n = self.number()?;
                self.check_max_links(&t)?;
                open.ch.port = n as u16;
            }
            K::ErrorQueueLength if open.ch.kind == ChannelType::Tcp => {
                let n = self.number()?;
                self.check_max_links(&t)?;
                self.sync.error_queue_length = n as u32;
            }
            _ => return self.common_option(open, k, t),
        }
        Ok(true)
    }
}
