//! `Filter [From Userspace|Kernelspace] { Protocol ...; Address ...;
//! State ... }`.

use super::{text, PResult, Parser};
use crate::config::cstd::{atoi, inet_aton, inet_pton6};
use crate::config::error::Expected;
use crate::config::filter::{
    AddressRule, Addresses, Filter, FilterPolicy, FilterSource, Ipv4Net, Ipv6Net, Rule, TcpState,
};
use crate::config::token::{Keyword as K, Token, TokenKind};
use crate::config::warning::WarningKind;

/// Logic and items of one kind of rule while parsing.
struct Acc<T> {
    /// Logic of the last block of this kind, if any closed.
    policy: Option<FilterPolicy>,
    /// An Ignore block of this kind closed.
    kernel_ignore: bool,
    items: Vec<T>,
}

impl<T> Default for Acc<T> {
    fn default() -> Self {
        Acc {
            policy: None,
            kernel_ignore: false,
            items: Vec::new(),
        }
    }
}

impl<T: PartialEq> Acc<T> {
    fn add(&mut self, item: T) {
        if !self.items.contains(&item) {
            self.items.push(item);
        }
    }

    fn close(&mut self, policy: FilterPolicy) {
        self.policy = Some(policy);
        if policy == FilterPolicy::Ignore {
            self.kernel_ignore = true;
        }
    }

    fn kernel_policy(&self) -> FilterPolicy {
        if self.kernel_ignore {
            FilterPolicy::Ignore
        } else {
            FilterPolicy::Accept
        }
    }

    fn finish(self) -> Option<Rule<T>> {
        let kernel_policy = self.kernel_policy();
        self.policy.map(|policy| Rule {
            policy,
            kernel_policy,
            items: self.items,
        })
    }
}

/// The filter as upstream accumulates it across `Filter` blocks.
#[derive(Default)]
pub(crate) struct FilterState {
    source: FilterSource,
    protocol: Acc<u32>,
    address: Acc<()>,
    addresses: Addresses,
    state: Acc<TcpState>,
}

impl FilterState {
    /// The filter, if any `Protocol`, `Address` or `State` block was
    /// given: 1.4.7 makes its filter (and logs "using ... event filtering")
    /// only at the end of such a block, so `Filter { }` is no filter.
    pub(crate) fn finish(self) -> Option<Filter> {
        let blocks = [self.protocol.policy, self.address.policy, self.state.policy];
        if blocks.iter().all(Option::is_none) {
            return None;
        }
        let kernel_policy = self.address.kernel_policy();
        let address = self.address.policy.map(|policy| AddressRule {
            policy,
            kernel_policy,
            addresses: self.addresses,
        });
        Some(Filter {
            source: self.source,
            protocol: self.protocol.finish(),
            address,
            state: self.state.finish(),
        })
    }
}

fn tcp_state(k: K) -> Option<TcpState> {
    Some(match k {
        K::SynSent => TcpState::SynSent,
        K::SynRecv => TcpState::SynRecv,
        K::Established => TcpState::Established,
        K::FinWait => TcpState::FinWait,
        K::CloseWait => TcpState::CloseWait,
        K::LastAck => TcpState::LastAck,
        K::TimeWait => TcpState::TimeWait,
        K::Close => TcpState::Close,
        K::Listen => TcpState::Listen,
        _ => return None,
    })
}

impl<'a> Parser<'a, '_> {
    pub(super) fn filter_block(&mut self) -> PResult<()> {
        let t = self.bump();
        let source = match t.kind {
            TokenKind::Char(b'{') => FilterSource::Userspace,
            TokenKind::Keyword(K::From) => {
                let s = self.bump();
                let source = match s.kind {
                    TokenKind::Keyword(K::Userspace) => FilterSource::Userspace,
                    TokenKind::Keyword(K::Kernelspace) => FilterSource::Kernelspace,
                    _ => return Err(self.syntax(s, Expected::FilterSpace)),
                };
                self.expect_open()?;
                source
            }
            _ => return Err(self.syntax(t, Expected::FilterFromOrBrace)),
        };
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => break,
                TokenKind::Keyword(K::Protocol) => {
                    let policy = self.accept_ignore()?;
                    self.protocol_list()?;
                    self.filter.protocol.close(policy);
                }
                TokenKind::Keyword(K::Address) => {
                    let policy = self.accept_ignore()?;
                    self.address_list()?;
                    self.filter.address.close(policy);
                }
                TokenKind::Keyword(K::State) => {
                    let policy = self.accept_ignore()?;
                    self.state_list()?;
                    self.filter.state.close(policy);
                }
                _ => return Err(self.syntax(t, Expected::FilterItem)),
            }
        }
        self.filter.source = source;
        Ok(())
    }

    fn accept_ignore(&mut self) -> PResult<FilterPolicy> {
        let t = self.bump();
        let p = match t.kind {
            TokenKind::Keyword(K::Accept) => FilterPolicy::Accept,
            TokenKind::Keyword(K::Ignore) => FilterPolicy::Ignore,
            _ => return Err(self.syntax(t, Expected::AcceptIgnore)),
        };
        self.expect_open()?;
        Ok(p)
    }

    fn protocol_list(&mut self) -> PResult<()> {
        loop {
            let t = self.bump();
            let name = match t.kind {
                TokenKind::Char(b'}') => return Ok(()),
                TokenKind::String => text(&t),
                TokenKind::Keyword(K::Tcp) => "tcp".to_string(),
                TokenKind::Keyword(K::Udp) => "udp".to_string(),
                _ => return Err(self.syntax(t, Expected::ProtocolName)),
            };
            match self.sys.protocol_by_name(&name) {
                Some(p) => self.filter.protocol.add(p),
                None => self.warn(t.span, WarningKind::UnknownProtocol { name }),
            }
        }
    }

    fn address_list(&mut self) -> PResult<()> {
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => return Ok(()),
                TokenKind::Keyword(K::Ipv4Address) => {
                    let v = self.ip()?;
                    self.filter_ipv4(v);
                }
                TokenKind::Keyword(K::Ipv6Address) => {
                    let v = self.ip()?;
                    self.filter_ipv6(v);
                }
                _ => return Err(self.syntax(t, Expected::AddressItem)),
            }
        }
    }

    fn filter_ipv4(&mut self, v: Token<'a>) {
        let (addr, prefix) = split_prefix(v.text);
        let addr_s = String::from_utf8_lossy(addr).into_owned();
        let cidr: u32 = prefix.map_or(32, |p| atoi(p) as u32);
        if cidr > 32 {
            let prefix = cidr as i32;
            self.warn(
                v.span,
                WarningKind::InvalidNetwork {
                    addr: addr_s,
                    prefix,
                },
            );
            return;
        }
        let Some(ip) = inet_aton(addr) else {
            self.warn(v.span, WarningKind::InvalidFilterIpv4 { addr: addr_s });
            return;
        };
        let a = &mut self.filter.addresses;
        if prefix.is_some() && cidr < 32 {
            let net = Ipv4Net {
                addr: ip,
                prefix: cidr as u8,
            };
            if a.ipv4_nets.contains(&net) {
                self.warn(v.span, WarningKind::NetmaskRepeated { addr: addr_s });
            } else {
                a.ipv4_nets.push(net);
            }
        } else if !a.ipv4.contains(&ip) {
            // upstream's "IP %s is repeated" depends on a stale errno and
            // is in practice never printed for a duplicate
            a.ipv4.push(ip);
        }
    }

    fn filter_ipv6(&mut self, v: Token<'a>) {
        let (addr, prefix) = split_prefix(v.text);
        let addr_s = String::from_utf8_lossy(addr).into_owned();
        let cidr: i32 = prefix.map_or(128, atoi);
        if cidr > 128 {
            self.warn(
                v.span,
                WarningKind::InvalidNetwork {
                    addr: addr_s,
                    prefix: cidr,
                },
            );
            return;
        }
        let Some(ip) = inet_pton6(addr) else {
            self.warn(v.span, WarningKind::InvalidFilterIpv6 { addr: addr_s });
            return;
        };
        let a = &mut self.filter.addresses;
        if prefix.is_some() && cidr < 128 {
            // a negative length (from a wrapped atoi) makes upstream build
            // a full mask; its duplicate check for IPv6 networks is broken
            let prefix = if cidr < 0 { 128 } else { cidr as u8 };
            a.ipv6_nets.push(Ipv6Net { addr: ip, prefix });
        } else if !a.ipv6.contains(&ip) {
            a.ipv6.push(ip);
        }
    }

    fn state_list(&mut self) -> PResult<()> {
        let mut pending = false;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') if !pending => return Ok(()),
                TokenKind::Keyword(K::For) => {
                    let p = self.bump();
                    if !p.is_keyword(K::Tcp) {
                        return Err(self.syntax(p, Expected::TcpAfterFor));
                    }
                    pending = false;
                }
                TokenKind::Keyword(k) if tcp_state(k).is_some() => {
                    if let Some(s) = tcp_state(k) {
                        self.filter.state.add(s);
                    }
                    pending = true;
                }
                _ => return Err(self.syntax(t, Expected::StateItem)),
            }
        }
    }
}

/// `addr/prefix` → (`addr`, `Some(prefix)`).
fn split_prefix(text: &[u8]) -> (&[u8], Option<&[u8]>) {
    match text.iter().position(|&b| b == b'/') {
        Some(n) => (&text[..n], Some(&text[n + 1..])),
        None => (text, None),
    }
}
