//! `conntrackd.conf`: scanner, parser, typed configuration and the checks
//! conntrackd 1.4.7 applies, with its exact messages.
//!
//! ```
//! use ct_core::config::{self, StaticLookup};
//!
//! let text = b"General {\n  HashSize 8192\n}\nStats {\n  LogFile on\n}\n";
//! let out = config::parse(text, "conntrackd.conf", &StaticLookup::debian(&["lo"]));
//! let mut cfg = out.result.unwrap();
//! assert!(out.warnings.is_empty());
//! assert!(config::evaluate(&mut cfg).is_empty());
//! assert_eq!(cfg.general.hash_size, 8192);
//! assert_eq!(cfg.run_mode(), config::RunMode::Stats);
//! ```
//!
//! Errors carry the file, line and column and say what was expected
//! (`conntrackd.conf:2:5: syntax error at 'Foo': expected a General keyword
//! ...`); [`ConfigError::c_message`] gives the line conntrackd prints
//! instead (`parsing config file in line (2), symbol 'Foo': syntax
//! error`). Warnings carry their position, the phase in which upstream
//! prints them and [`Warning::c_message`].
//!
//! The parser does no I/O of its own: protocol names, interface names and
//! user-space helpers are resolved through [`SystemLookup`];
//! [`OsLookup`] reads `/etc/protocols` and `/sys/class/net`.

mod channel;
mod cstd;
mod error;
mod evaluate;
mod filter;
mod helper;
mod lexer;
mod model;
mod parse;
mod span;
mod system;
mod token;
mod warning;

pub use channel::{Channel, ChannelType, Family};
pub use cstd::{atoi, inet_aton, inet_pton4, inet_pton6};
pub use error::{ConfigError, ErrorKind, Expected, Symbol};
pub use evaluate::evaluate;
pub use filter::{
    AddressRule, Addresses, Filter, FilterPolicy, FilterSource, Ipv4Net, Ipv6Net, Rule, TcpState,
};
pub use helper::{HelperInstance, HelperL3, HelperL4, HelperPolicy, HelperSection};
pub use lexer::Lexer;
pub use model::*;
pub use span::Span;
pub use system::{
    builtin_helper, protocol_in, HelperInfo, OsLookup, StaticLookup, SystemLookup, BUILTIN_HELPERS,
};
pub use token::{keyword, Keyword, ModeName, Token, TokenKind, KEYWORDS};
pub use warning::{Phase, Warning, WarningKind};

use std::path::Path;

/// The result of parsing: the configuration or the error that stopped the
/// parse, and in both cases the warnings printed up to that point.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseOutcome {
    /// The configuration (defaults applied, `evaluate` not yet run).
    pub result: Result<Config, ConfigError>,
    /// Parse-time warnings in order.
    pub warnings: Vec<Warning>,
}

impl ParseOutcome {
    /// The configuration and its warnings, or the error.
    pub fn into_result(self) -> Result<(Config, Vec<Warning>), ConfigError> {
        let w = self.warnings;
        self.result.map(|c| (c, w))
    }
}

/// Parse the bytes of a configuration file; `file` names it in errors.
pub fn parse(src: &[u8], file: &str, sys: &dyn SystemLookup) -> ParseOutcome {
    let (result, warnings) = parse::Parser::new(src, file, sys).run();
    ParseOutcome { result, warnings }
}

/// Read and parse the file at `path` (the only function here that does
/// I/O); an unreadable file gives [`ErrorKind::Open`].
pub fn load(path: &Path, sys: &dyn SystemLookup) -> ParseOutcome {
    let name = path.to_string_lossy();
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes, &name, sys),
        Err(e) => ParseOutcome {
            result: Err(ConfigError {
                file: name.into_owned(),
                span: Span::default(),
                kind: ErrorKind::Open {
                    reason: e.to_string(),
                },
            }),
            warnings: Vec::new(),
        },
    }
}
