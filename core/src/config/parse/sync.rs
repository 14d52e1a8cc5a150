//! `Sync { }`: timers, `Mode` blocks and `Options { }` (channels are in
//! `channel.rs`).

use super::{path_bytes, to_path, PResult, Parser};
use crate::config::channel::ChannelType;
use crate::config::error::{ErrorKind, Expected};
use crate::config::model::{
    SyncAuth, SyncSnapshot, DEFAULT_REPLAY_WINDOW, DEFAULT_SNAPSHOT_INTERVAL,
};
use crate::config::token::{Keyword as K, ModeName, Token, TokenKind};

/// Statements allowed in a `Mode` block.
fn allowed(mode: ModeName, k: K) -> bool {
    match mode {
        ModeName::Alarm => matches!(
            k,
            K::RefreshTime | K::CacheTimeout | K::CommitTimeout | K::PurgeTimeout
        ),
        ModeName::Ftfw => matches!(
            k,
            K::ResendQueueSize
                | K::CommitTimeout
                | K::PurgeTimeout
                | K::AckWindowSize
                | K::DisableExternalCache
                | K::StartupResync
        ),
        ModeName::Notrack => matches!(
            k,
            K::CommitTimeout
                | K::PurgeTimeout
                | K::DisableInternalCache
                | K::DisableExternalCache
                | K::StartupResync
        ),
    }
}

impl<'a> Parser<'a, '_> {
    pub(super) fn sync_section(&mut self, kw: Token<'a>) -> PResult<()> {
        self.expect_open()?;
        let mut auth_span = None;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => break,
                TokenKind::Keyword(
                    k @ (K::RefreshTime | K::CacheTimeout | K::CommitTimeout | K::PurgeTimeout),
                ) => self.sync_setting(k, t)?,
                TokenKind::Keyword(K::Multicast) => self.channel(ChannelType::Multicast, t)?,
                TokenKind::Keyword(K::Udp) => self.channel(ChannelType::Udp, t)?,
                TokenKind::Keyword(K::Tcp) => self.channel(ChannelType::Tcp, t)?,
                TokenKind::Keyword(K::Mode) => self.mode_block()?,
                TokenKind::Keyword(K::Options) => self.options()?,
                TokenKind::Keyword(K::Snapshot) => self.snapshot(t)?,
                TokenKind::Keyword(K::Authentication) => {
                    self.authentication(t)?;
                    auth_span = Some(t.span);
                }
                _ => return Err(self.syntax(t, Expected::SyncKeyword)),
            }
        }
        if let Some(span) = auth_span {
            if self
                .channels
                .channels
                .iter()
                .any(|c| c.kind == ChannelType::Tcp)
            {
                return Err(self.err(span, ErrorKind::AuthOverTcp));
            }
        }
        if self.stats_seen {
            return Err(self.err(kw.span, ErrorKind::StatsAndSync));
        }
        self.sync_seen = true;
        Ok(())
    }

    /// One statement of `Sync` or of a `Mode` block (keyword already read).
    fn sync_setting(&mut self, k: K, t: Token<'a>) -> PResult<()> {
        match k {
            K::DisableExternalCache => self.sync.disable_external_cache = self.on_off()?,
            K::DisableInternalCache => self.sync.disable_internal_cache = self.on_off()?,
            K::StartupResync => self.sync.startup_resync = self.on_off()?,
            _ => {
                let n = self.number()? as u32;
                let s = &mut self.sync;
                match k {
                    K::RefreshTime => s.refresh_time = n,
                    K::CacheTimeout => s.cache_timeout = n,
                    K::CommitTimeout => {
                        s.commit_timeout = n;
                        self.cfg.spans.commit_timeout = Some(t.span);
                    }
                    K::PurgeTimeout => s.purge_timeout = n,
                    K::ResendQueueSize => s.resend_queue_size = n,
                    K::AckWindowSize => s.ack_window_size = n,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn mode_block(&mut self) -> PResult<()> {
        let m = self.bump();
        let TokenKind::Mode { mode, .. } = m.kind else {
            return Err(self.syntax(m, Expected::ModeName));
        };
        let expected = match mode {
            ModeName::Ftfw => Expected::FtfwKeyword,
            ModeName::Alarm => Expected::AlarmKeyword,
            ModeName::Notrack => Expected::NotrackKeyword,
        };
        self.expect_open()?;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => break,
                TokenKind::Keyword(k) if allowed(mode, k) => self.sync_setting(k, t)?,
                _ => return Err(self.syntax(t, expected)),
            }
        }
        let modes = &mut self.sync.modes;
        match mode {
            ModeName::Ftfw => modes.ftfw = true,
            ModeName::Alarm => modes.alarm = true,
            ModeName::Notrack => modes.notrack = true,
        }
        Ok(())
    }

    fn options(&mut self) -> PResult<()> {
        self.expect_open()?;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => return Ok(()),
                TokenKind::Keyword(K::TcpWindowTracking) => {
                    self.sync.tcp_window_tracking = self.on_off()?;
                }
                TokenKind::Keyword(K::ExpectationSync) => {
                    let v = self.bump();
                    let e = &mut self.sync.expectation_sync;
                    match v.kind {
                        TokenKind::On => {
                            e.enabled = true;
                            e.expect_events = true;
                        }
                        // upstream does not clear the "enabled" flag here
                        TokenKind::Off => e.expect_events = false,
                        TokenKind::Char(b'{') => {
                            self.expect_list()?;
                            let e = &mut self.sync.expectation_sync;
                            e.enabled = true;
                            e.expect_events = true;
                        }
                        _ => return Err(self.syntax(v, Expected::ExpectationValue)),
                    }
                }
                _ => return Err(self.syntax(t, Expected::OptionsKeyword)),
            }
        }
    }

    /// `Authentication { KeyFile /path  ReplayWindow N }` (an extension).
    fn authentication(&mut self, kw: Token<'a>) -> PResult<()> {
        self.expect_open()?;
        let mut key_file = None;
        let mut replay_window = DEFAULT_REPLAY_WINDOW;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => break,
                TokenKind::Keyword(K::KeyFile) => {
                    let v = self.bump();
                    if v.kind != TokenKind::Path {
                        return Err(self.syntax(v, Expected::Path));
                    }
                    key_file = Some(to_path(path_bytes(v.text)));
                }
                TokenKind::Keyword(K::ReplayWindow) => {
                    let v = self.number()?;
                    if !(64..=8192).contains(&v) {
                        return Err(
                            self.err(t.span, ErrorKind::ReplayWindowOutOfRange { value: v })
                        );
                    }
                    replay_window = v as u32;
                }
                _ => return Err(self.syntax(t, Expected::AuthKeyword)),
            }
        }
        let Some(key_file) = key_file else {
            return Err(self.err(kw.span, ErrorKind::AuthWithoutKeyFile));
        };
        self.sync.auth = Some(SyncAuth {
            key_file,
            replay_window,
        });
        Ok(())
    }

    /// `Snapshot { Path /file  Interval N }` (an extension).
    fn snapshot(&mut self, kw: Token<'a>) -> PResult<()> {
        self.expect_open()?;
        let mut path = None;
        let mut interval = DEFAULT_SNAPSHOT_INTERVAL;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => break,
                TokenKind::Keyword(K::Path) => {
                    let v = self.bump();
                    if v.kind != TokenKind::Path {
                        return Err(self.syntax(v, Expected::Path));
                    }
                    path = Some(to_path(path_bytes(v.text)));
                }
                TokenKind::Keyword(K::Interval) => {
                    let v = self.number()?;
                    if v == 0 {
                        return Err(self.err(t.span, ErrorKind::SnapshotIntervalZero));
                    }
                    interval = v as u32;
                }
                _ => return Err(self.syntax(t, Expected::SnapshotKeyword)),
            }
        }
        let Some(path) = path else {
            return Err(self.err(kw.span, ErrorKind::SnapshotWithoutPath));
        };
        self.sync.snapshot = Some(SyncSnapshot { path, interval });
        Ok(())
    }

    fn expect_list(&mut self) -> PResult<()> {
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => return Ok(()),
                TokenKind::String => {
                    let name = t.text_lossy();
                    let helpers = &mut self.sync.expectation_sync.helpers;
                    if !helpers.contains(&name) {
                        helpers.push(name);
                    }
                }
                _ => return Err(self.syntax(t, Expected::HelperName)),
            }
        }
    }
}
