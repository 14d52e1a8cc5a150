//! `General { }` (with `UNIX { }` and `Scheduler { }`) and `Stats { }`.

use super::{path_bytes, text, to_path, PResult, Parser};
use crate::config::error::{ErrorKind, Expected};
use crate::config::model::{
    SchedPolicy, SyslogFacility, DEFAULT_LOGFILE, DEFAULT_STATS_LOGFILE, FILENAME_MAXLEN,
    UNIX_PATH_MAX,
};
use crate::config::token::{Keyword as K, Token, TokenKind};
use crate::config::warning::WarningKind;

/// What a `LogFile` statement said.
enum LogValue {
    On,
    Off,
    Path(Vec<u8>),
}

/// What a `Syslog` statement said.
enum SyslogValue {
    On,
    Off,
    Name(String),
}

impl<'a> Parser<'a, '_> {
    pub(super) fn general(&mut self) -> PResult<()> {
        self.expect_open()?;
        loop {
            let t = self.bump();
            let TokenKind::Keyword(k) = t.kind else {
                if t.is_char(b'}') {
                    return Ok(());
                }
                return Err(self.syntax(t, Expected::GeneralKeyword));
            };
            match k {
                K::HashSize => self.cfg.general.hash_size = self.number()? as u32,
                K::HashLimit => self.cfg.general.hash_limit = self.number()? as u32,
                K::LogFile => match self.log_value()? {
                    (LogValue::On, _) => {
                        self.cfg.general.log_file = Some(DEFAULT_LOGFILE.into());
                    }
                    (LogValue::Off, _) => {}
                    (LogValue::Path(p), span) => {
                        if p.len() > FILENAME_MAXLEN {
                            return Err(self.err(span, ErrorKind::LogFileTooLong));
                        }
                        self.cfg.general.log_file = Some(to_path(&p));
                    }
                },
                K::Syslog => {
                    let (v, span) = self.syslog_value()?;
                    match v {
                        SyslogValue::On => self.cfg.general.syslog = Some(SyslogFacility::Daemon),
                        SyslogValue::Off => self.cfg.general.syslog = None,
                        SyslogValue::Name(name) => match SyslogFacility::from_name(name.as_bytes())
                        {
                            None => self.warn(
                                span,
                                WarningKind::UnknownSyslogFacility { name, stats: false },
                            ),
                            Some(f) => {
                                self.cfg.general.syslog = Some(f);
                                if self.stats.syslog.is_some_and(|s| s != f) {
                                    self.warn(span, WarningKind::ConflictingSyslog);
                                }
                            }
                        },
                    }
                }
                K::LockFile => {
                    let v = self.bump();
                    if v.kind != TokenKind::Path {
                        return Err(self.syntax(v, Expected::Path));
                    }
                    let p = path_bytes(v.text);
                    if p.len() > FILENAME_MAXLEN {
                        return Err(self.err(v.span, ErrorKind::LockFileTooLong));
                    }
                    self.cfg.general.lock_file = to_path(p);
                }
                K::Unix => self.unix()?,
                K::NetlinkBufferSize => {
                    self.cfg.general.netlink_buffer_size = self.number()? as u32;
                }
                K::NetlinkBufferSizeMaxGrowth => {
                    self.cfg.general.netlink_buffer_size_max_growth = self.number()? as u32;
                }
                K::EventIterationLimit => {
                    self.cfg.general.event_iteration_limit = self.number()? as u32;
                }
                K::PollSecs => {
                    let n = self.number()?;
                    if n == 0 {
                        return Err(self.err(t.span, ErrorKind::PollSecsZero));
                    }
                    self.cfg.general.poll_secs = Some(n as u32);
                }
                K::Filter => self.filter_block()?,
                K::Lanes => {
                    let n = self.number()?;
                    if !(1..=crate::netlink::lanes::MAX_LANES as i32).contains(&n) {
                        return Err(self.err(t.span, ErrorKind::LanesOutOfRange { value: n }));
                    }
                    self.cfg.general.lanes = Some(n as u32);
                }
                K::NetlinkOverrunResync => {
                    let v = self.bump();
                    self.cfg.general.netlink_overrun_resync = match v.kind {
                        TokenKind::On => 30,
                        TokenKind::Off => -1,
                        TokenKind::Number(n) => n,
                        _ => return Err(self.syntax(v, Expected::OnOffNumber)),
                    };
                }
                K::NetlinkEventsReliable => {
                    self.cfg.general.netlink_events_reliable = self.on_off()?;
                }
                K::Nice => {
                    let v = self.bump();
                    if !matches!(v.kind, TokenKind::SignedNumber(_)) {
                        return Err(self.syntax(v, Expected::SignedNumber));
                    }
                    self.warn(t.span, WarningKind::NiceDeprecated);
                }
                K::Scheduler => self.scheduler()?,
                K::Systemd => self.cfg.general.systemd = self.on_off()?,
                _ => return Err(self.syntax(t, Expected::GeneralKeyword)),
            }
        }
    }

    fn log_value(&mut self) -> PResult<(LogValue, crate::config::Span)> {
        let v = self.bump();
        let val = match v.kind {
            TokenKind::On => LogValue::On,
            TokenKind::Off => LogValue::Off,
            TokenKind::Path => LogValue::Path(path_bytes(v.text).to_vec()),
            _ => return Err(self.syntax(v, Expected::OnOffPath)),
        };
        Ok((val, v.span))
    }

    fn syslog_value(&mut self) -> PResult<(SyslogValue, crate::config::Span)> {
        let v = self.bump();
        let val = match v.kind {
            TokenKind::On => SyslogValue::On,
            TokenKind::Off => SyslogValue::Off,
            TokenKind::String => SyslogValue::Name(text(&v)),
            _ => return Err(self.syntax(v, Expected::OnOffFacility)),
        };
        Ok((val, v.span))
    }

    fn unix(&mut self) -> PResult<()> {
        self.expect_open()?;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => return Ok(()),
                TokenKind::Keyword(K::Path) => {
                    let v = self.bump();
                    if v.kind != TokenKind::Path {
                        return Err(self.syntax(v, Expected::Path));
                    }
                    let p = path_bytes(v.text);
                    if p.len() > UNIX_PATH_MAX {
                        return Err(self.err(v.span, ErrorKind::UnixPathTooLong));
                    }
                    self.cfg.general.unix_path = Some(to_path(p));
                }
                TokenKind::Keyword(K::Backlog) => {
                    self.number()?;
                    self.warn(t.span, WarningKind::UnixBacklogDeprecated);
                }
                _ => return Err(self.syntax(t, Expected::UnixKeyword)),
            }
        }
    }

    fn scheduler(&mut self) -> PResult<()> {
        self.expect_open()?;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => return Ok(()),
                TokenKind::Keyword(K::Type) => {
                    let v = self.name()?;
                    let policy = if v.text.eq_ignore_ascii_case(b"rr") {
                        SchedPolicy::RoundRobin
                    } else if v.text.eq_ignore_ascii_case(b"fifo") {
                        SchedPolicy::Fifo
                    } else {
                        let name = text(&v);
                        return Err(self.err(v.span, ErrorKind::UnknownScheduler { name }));
                    };
                    self.cfg.general.scheduler.policy = Some(policy);
                }
                TokenKind::Keyword(K::Priority) => {
                    let v = self.number()?;
                    if !(0..=99).contains(&v) {
                        return Err(self.err(t.span, ErrorKind::PriorityOutOfRange { value: v }));
                    }
                    self.cfg.general.scheduler.priority = Some(v as u8);
                }
                _ => return Err(self.syntax(t, Expected::SchedulerKeyword)),
            }
        }
    }

    pub(super) fn stats_section(&mut self, kw: Token<'a>) -> PResult<()> {
        self.expect_open()?;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => break,
                TokenKind::Keyword(K::LogFile) => match self.log_value()? {
                    (LogValue::On, _) => self.stats.log_file = Some(DEFAULT_STATS_LOGFILE.into()),
                    (LogValue::Off, _) => {}
                    (LogValue::Path(p), span) => {
                        if p.len() > FILENAME_MAXLEN {
                            return Err(self.err(span, ErrorKind::StatsLogFileTooLong));
                        }
                        self.stats.log_file = Some(to_path(&p));
                    }
                },
                TokenKind::Keyword(K::Syslog) => {
                    let (v, span) = self.syslog_value()?;
                    match v {
                        SyslogValue::On => self.stats.syslog = Some(SyslogFacility::Daemon),
                        SyslogValue::Off => self.stats.syslog = None,
                        SyslogValue::Name(name) => match SyslogFacility::from_name(name.as_bytes())
                        {
                            None => self.warn(
                                span,
                                WarningKind::UnknownSyslogFacility { name, stats: true },
                            ),
                            Some(f) => {
                                self.stats.syslog = Some(f);
                                if self.cfg.general.syslog.is_some_and(|g| g != f) {
                                    self.warn(span, WarningKind::ConflictingSyslog);
                                }
                            }
                        },
                    }
                }
                _ => return Err(self.syntax(t, Expected::StatsKeyword)),
            }
        }
        if self.sync_seen {
            return Err(self.err(kw.span, ErrorKind::StatsAndSync));
        }
        self.stats_seen = true;
        Ok(())
    }
}
