//! The recursive-descent parser: upstream's bison grammar, its semantic
//! actions, their order, and the defaults applied afterwards.
//!
//! Everything happens in source order, as upstream's actions run as soon as
//! a rule is complete: a warning is recorded when its statement ends, and
//! the first error (syntax or semantic) ends the parse. A syntax error is
//! reported at the first token that cannot continue the input, which is
//! also where bison stops.

mod channel;
mod filter;
mod general;
mod helper;
mod sync;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::error::{ConfigError, ErrorKind, Expected, Symbol};
use super::lexer::Lexer;
use super::model;
use super::model::{Config, StatsSection, SyncSection, DEFAULT_LOCKFILE};
use super::span::Span;
use super::system::SystemLookup;
use super::token::{Keyword, ModeName, Token, TokenKind};
use super::warning::{Phase, Warning, WarningKind};

pub(crate) type PResult<T> = Result<T, ConfigError>;

/// Parser state: the input, the configuration being built and the state
/// upstream keeps in globals while parsing.
pub(crate) struct Parser<'a, 'l> {
    lexer: Lexer<'a>,
    file: &'a str,
    sys: &'l dyn SystemLookup,
    pub(crate) warnings: Vec<Warning>,
    cfg: Config,
    sync: SyncSection,
    sync_seen: bool,
    stats: StatsSection,
    stats_seen: bool,
    helper_seen: bool,
    channels: channel::ChannelState,
    filter: filter::FilterState,
    helpers: helper::HelperState,
    /// States on bison's stack (tracked where it can grow: `Helper`).
    depth: usize,
}

impl<'a, 'l> Parser<'a, 'l> {
    pub(crate) fn new(src: &'a [u8], file: &'a str, sys: &'l dyn SystemLookup) -> Self {
        Parser {
            lexer: Lexer::new(src),
            file,
            sys,
            warnings: Vec::new(),
            cfg: Config::default(),
            sync: SyncSection::default(),
            sync_seen: false,
            stats: StatsSection::default(),
            stats_seen: false,
            helper_seen: false,
            channels: channel::ChannelState::default(),
            filter: filter::FilterState::default(),
            helpers: helper::HelperState::default(),
            depth: 0,
        }
    }

    /// Parse the whole input.
    pub(crate) fn run(mut self) -> (PResult<Config>, Vec<Warning>) {
        let r = self.file_body();
        let warnings = std::mem::take(&mut self.warnings);
        match r {
            Ok(()) => (Ok(self.finish()), warnings),
            Err(e) => (Err(e), warnings),
        }
    }

    fn file_body(&mut self) -> PResult<()> {
        // bison's stack holds its initial state, then also `lines`
        let mut base = 1;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Eof => return Ok(()),
                TokenKind::Keyword(Keyword::General) => {
                    self.cfg.spans.general.get_or_insert(t.span);
                    self.general()?
                }
                TokenKind::Keyword(Keyword::Sync) => {
                    self.cfg.spans.sync.get_or_insert(t.span);
                    self.sync_section(t)?
                }
                TokenKind::Keyword(Keyword::Stats) => {
                    self.cfg.spans.stats.get_or_insert(t.span);
                    self.stats_section(t)?
                }
                TokenKind::Keyword(Keyword::Helper) => {
                    self.cfg.spans.helper.get_or_insert(t.span);
                    self.helper_section(t, base)?
                }
                _ => return Err(self.syntax(t, Expected::Section)),
            }
            base = 2;
        }
    }

    /// Upstream's `init_config` defaults: 0 means "use the default".
    fn finish(mut self) -> Config {
        let g = &mut self.cfg.general;
        if g.lock_file.as_os_str().is_empty() {
            g.lock_file = PathBuf::from(DEFAULT_LOCKFILE);
        }
        default_u32(&mut g.hash_size, model::DEFAULT_HASHSIZE);
        default_u32(&mut g.hash_limit, model::DEFAULT_HASHLIMIT);
        default_u32(
            &mut g.event_iteration_limit,
            model::DEFAULT_EVENT_ITERATION_LIMIT,
        );
        if g.netlink_overrun_resync == 0 {
            g.netlink_overrun_resync = model::DEFAULT_OVERRUN_RESYNC;
        }
        g.filter = self.filter.finish();
        if self.sync_seen {
            let mut s = self.sync;
            default_u32(&mut s.cache_timeout, model::DEFAULT_CACHE_TIMEOUT);
            default_u32(&mut s.purge_timeout, model::DEFAULT_PURGE_TIMEOUT);
            default_u32(&mut s.refresh_time, model::DEFAULT_REFRESH);
            default_u32(&mut s.resend_queue_size, model::DEFAULT_RESEND_QUEUE_SIZE);
            default_u32(&mut s.ack_window_size, model::DEFAULT_WINDOW_SIZE);
            default_u32(&mut s.error_queue_length, model::DEFAULT_ERROR_QUEUE_LENGTH);
            s.channels = std::mem::take(&mut self.channels.channels);
            s.default_channel = self.channels.default_channel;
            self.cfg.spans.channels = std::mem::take(&mut self.channels.spans);
            self.cfg.sync = Some(s);
        }
        if self.stats_seen {
            self.cfg.stats = Some(self.stats);
        }
        if self.helper_seen {
            self.cfg.helper = Some(self.helpers.section);
            self.cfg.spans.helpers = self.helpers.spans;
        }
        self.cfg
    }

    // ---- token cursor -------------------------------------------------

    fn lex(&mut self) -> Token<'a> {
        let t = self.lexer.next_token();
        if let TokenKind::Mode {
            mode,
            deprecated: true,
        } = t.kind
        {
            let kind = match mode {
                ModeName::Alarm => WarningKind::PersistentRenamed,
                _ => WarningKind::NackRenamed,
            };
            self.warn(t.span, kind);
        }
        t
    }

    /// The next token, consumed. Tokens are scanned only when the parser
    /// needs them, as bison does, so the scanner's warnings come in order.
    pub(crate) fn bump(&mut self) -> Token<'a> {
        self.lex()
    }

    // ---- errors and warnings ------------------------------------------

    pub(crate) fn err(&self, span: Span, kind: ErrorKind) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            span,
            kind,
        }
    }

    pub(crate) fn syntax(&self, t: Token<'_>, expected: Expected) -> ConfigError {
        let symbol = match t.kind {
            TokenKind::Eof => match t.text.first() {
                Some(&b) => Symbol::EndByte(b),
                None => Symbol::EndOfInput,
            },
            _ => Symbol::Token(t.text.to_vec()),
        };
        self.err(t.span, ErrorKind::Syntax { symbol, expected })
    }

    pub(crate) fn warn(&mut self, span: Span, kind: WarningKind) {
        self.warnings.push(Warning {
            span,
            phase: Phase::Parse,
            kind,
        });
    }

    // ---- values ---------------------------------------------------------

    pub(crate) fn expect_open(&mut self) -> PResult<()> {
        self.open_token().map(|_| ())
    }

    /// `{`, returned.
    pub(crate) fn open_token(&mut self) -> PResult<Token<'a>> {
        let t = self.bump();
        if t.is_char(b'{') {
            Ok(t)
        } else {
            Err(self.syntax(t, Expected::OpenBrace))
        }
    }

    /// An unsigned number (`atoi` value).
    pub(crate) fn number(&mut self) -> PResult<i32> {
        let t = self.bump();
        match t.kind {
            TokenKind::Number(n) => Ok(n),
            _ => Err(self.syntax(t, Expected::Number)),
        }
    }

    /// `on`/`off`.
    pub(crate) fn on_off(&mut self) -> PResult<bool> {
        let t = self.bump();
        match t.kind {
            TokenKind::On => Ok(true),
            TokenKind::Off => Ok(false),
            _ => Err(self.syntax(t, Expected::OnOff)),
        }
    }

    /// A token of class [`TokenKind::String`].
    pub(crate) fn name(&mut self) -> PResult<Token<'a>> {
        let t = self.bump();
        match t.kind {
            TokenKind::String => Ok(t),
            _ => Err(self.syntax(t, Expected::Name)),
        }
    }

    /// A token of class [`TokenKind::Ip`].
    pub(crate) fn ip(&mut self) -> PResult<Token<'a>> {
        let t = self.bump();
        match t.kind {
            TokenKind::Ip => Ok(t),
            _ => Err(self.syntax(t, Expected::Ip)),
        }
    }
}

fn default_u32(v: &mut u32, d: u32) {
    if *v == 0 {
        *v = d;
    }
}

/// The value of a path token as upstream keeps it (`strdup` stops at a NUL
/// byte).
pub(crate) fn path_bytes(text: &[u8]) -> &[u8] {
    match text.iter().position(|&b| b == 0) {
        Some(n) => &text[..n],
        None => text,
    }
}

pub(crate) fn to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

/// Token text as a `String` (tokens that reach this are ASCII).
pub(crate) fn text(t: &Token<'_>) -> String {
    t.text_lossy()
}
