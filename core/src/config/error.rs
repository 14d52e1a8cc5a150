//! Errors of the configuration parser: where, what was expected, and the
//! exact text conntrackd 1.4.7 prints for the same file.

use std::fmt;

use thiserror::Error;

use super::channel::ChannelType;
use super::span::Span;

/// A configuration file was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{file}:{}:{}: {kind}", span.line, span.column)]
pub struct ConfigError {
    /// The file name as given to the parser.
    pub file: String,
    /// Where: the offending token, or the statement that failed a check.
    pub span: Span,
    /// What.
    pub kind: ErrorKind,
}

impl ConfigError {
    /// The message conntrackd 1.4.7 logs (at level ERROR) for this error,
    /// without the `[time] (pid=N) [ERROR] ` prefix. Bytes that are not
    /// UTF-8 are replaced; see [`ConfigError::c_message_bytes`].
    pub fn c_message(&self) -> String {
        String::from_utf8_lossy(&self.c_message_bytes()).into_owned()
    }

    /// [`ConfigError::c_message`] byte for byte.
    pub fn c_message_bytes(&self) -> Vec<u8> {
        match &self.kind {
            ErrorKind::Syntax { symbol, .. } | ErrorKind::ParserStackExhausted { symbol } => {
                let mut v = format!("parsing config file in line ({}), symbol '", self.span.line)
                    .into_bytes();
                v.extend_from_slice(symbol.c_text());
                v.extend_from_slice(b"': ");
                v.extend_from_slice(self.kind.c_text().as_bytes());
                v
            }
            ErrorKind::Open { .. } => {
                format!("can't open config file `{}'", self.file).into_bytes()
            }
            other => other.c_text().into_bytes(),
        }
    }
}

/// The token at which a syntax error was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Symbol {
    /// The end of the input (upstream prints an empty symbol).
    EndOfInput,
    /// A NUL byte or a byte >= 0x80, which upstream's parser takes as the
    /// end of input; upstream prints the byte.
    EndByte(u8),
    /// Any other token, with its bytes.
    Token(Vec<u8>),
}

impl Symbol {
    /// The bytes upstream prints between the quotes.
    pub fn c_text(&self) -> &[u8] {
        match self {
            Symbol::EndOfInput | Symbol::EndByte(0) => b"",
            Symbol::EndByte(b) => std::slice::from_ref(b),
            Symbol::Token(t) => t,
        }
    }
}

/// The most bytes of a token a message shows.
const SHOWN: usize = 64;

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Symbol::EndOfInput => f.write_str("end of input"),
            Symbol::EndByte(b) => write!(f, "byte 0x{b:02x} (taken as end of input)"),
            // (a token of megabytes is shown by its start and length)
            Symbol::Token(t) if t.len() > SHOWN => write!(
                f,
                "'{}...' ({} bytes)",
                String::from_utf8_lossy(&t[..SHOWN]).escape_debug(),
                t.len()
            ),
            Symbol::Token(t) => {
                write!(f, "'{}'", String::from_utf8_lossy(t).escape_debug())
            }
        }
    }
}

/// What the parser was looking for when it met an unexpected token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A top-level section or the end of the file.
    Section,
    /// `{`.
    OpenBrace,
    /// A keyword of `General { }` or `}`.
    GeneralKeyword,
    /// A keyword of `UNIX { }` or `}`.
    UnixKeyword,
    /// A keyword of `Scheduler { }` or `}`.
    SchedulerKeyword,
    /// `From` or `{` after `Filter`.
    FilterFromOrBrace,
    /// `Userspace` or `Kernelspace`.
    FilterSpace,
    /// A filter item keyword or `}`.
    FilterItem,
    /// `Accept` or `Ignore`.
    AcceptIgnore,
    /// A protocol name or `}`.
    ProtocolName,
    /// `IPv4_address`, `IPv6_address` or `}`.
    AddressItem,
    /// A TCP state, `for` or `}`.
    StateItem,
    /// `TCP` after `for`.
    TcpAfterFor,
    /// A keyword of `Sync { }` or `}`.
    SyncKeyword,
    /// `FTFW`, `ALARM` or `NOTRACK`.
    ModeName,
    /// A keyword of `Mode FTFW { }` or `}`.
    FtfwKeyword,
    /// A keyword of `Mode ALARM { }` or `}`.
    AlarmKeyword,
    /// A keyword of `Mode NOTRACK { }` or `}`.
    NotrackKeyword,
    /// `Default` or `{` after a channel keyword.
    DefaultOrBrace,
    /// A keyword of `Multicast { }` or `}`.
    MulticastKeyword,
    /// A keyword of `UDP { }` or `}`.
    UdpKeyword,
    /// A keyword of `TCP { }` or `}`.
    TcpKeyword,
    /// A keyword of `Options { }` or `}`.
    OptionsKeyword,
    /// Inside `Authentication { }`.
    AuthKeyword,
    /// Inside `Snapshot { }`.
    SnapshotKeyword,
    /// `on`, `off` or `{` after `ExpectationSync`.
    ExpectationValue,
    /// A helper name or `}`.
    HelperName,
    /// A keyword of `Stats { }` or `}`.
    StatsKeyword,
    /// A keyword of `Helper { }` or `}`.
    HelperKeyword,
    /// A keyword of `Type ... { }` or `}`.
    HelperTypeKeyword,
    /// A keyword of `Policy ... { }` or `}`.
    PolicyKeyword,
    /// An unsigned number.
    Number,
    /// A signed number (`-1`, `+5`).
    SignedNumber,
    /// `on` or `off` (also `yes`/`no`).
    OnOff,
    /// `on`, `off` or an absolute path.
    OnOffPath,
    /// `on`, `off` or a syslog facility.
    OnOffFacility,
    /// `on`, `off` or a number.
    OnOffNumber,
    /// An absolute path.
    Path,
    /// An IP address.
    Ip,
    /// A name (letters, digits, `.`, `-`, `_`, starting with a letter).
    Name,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Expected::*;
        let s = match self {
            Section => "a section (General, Sync, Stats, Helper) or the end of the file",
            OpenBrace => "'{'",
            GeneralKeyword => {
                "a General keyword (HashSize, HashLimit, LogFile, Syslog, LockFile, UNIX, \
                 NetlinkBufferSize, NetlinkBufferSizeMaxGrowth, NetlinkOverrunResync, \
                 NetlinkEventsReliable, EventIterationLimit, PollSecs, Filter, Nice, Scheduler, \
                 Systemd, Lanes) or '}'"
            }
            UnixKeyword => "a UNIX keyword (Path, Backlog) or '}'",
            SchedulerKeyword => "a Scheduler keyword (Type, Priority) or '}'",
            FilterFromOrBrace => "'From' or '{'",
            FilterSpace => "'Userspace' or 'Kernelspace'",
            FilterItem => "a Filter keyword (Protocol, Address, State) or '}'",
            AcceptIgnore => "'Accept' or 'Ignore'",
            ProtocolName => "a protocol name (TCP, UDP, or a name of /etc/protocols) or '}'",
            AddressItem => "'IPv4_address', 'IPv6_address' or '}'",
            StateItem => {
                "a TCP state (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, \
                 TIME_WAIT, CLOSE, CLOSED, LISTEN), 'for' or '}'"
            }
            TcpAfterFor => "'TCP'",
            SyncKeyword => {
                "a Sync keyword (Mode, Multicast, UDP, TCP, Options, Authentication, \
                 Snapshot, RefreshTime, CacheTimeout, CommitTimeout, PurgeTimeout) or '}'"
            }
            ModeName => "a sync mode (FTFW, ALARM, NOTRACK)",
            FtfwKeyword => {
                "a Mode FTFW keyword (ResendQueueSize, ACKWindowSize, CommitTimeout, \
                 PurgeTimeout, DisableExternalCache, StartupResync) or '}'"
            }
            AlarmKeyword => {
                "a Mode ALARM keyword (RefreshTime, CacheTimeout, CommitTimeout, PurgeTimeout) \
                 or '}'"
            }
            NotrackKeyword => {
                "a Mode NOTRACK keyword (CommitTimeout, PurgeTimeout, DisableInternalCache, \
                 DisableExternalCache, StartupResync) or '}'"
            }
            DefaultOrBrace => "'Default' or '{'",
            MulticastKeyword => {
                "a Multicast keyword (IPv4_address, IPv6_address, IPv4_interface, \
                 IPv6_interface, Interface, Group, SndSocketBuffer, RcvSocketBuffer, Checksum) \
                 or '}'"
            }
            UdpKeyword => {
                "a UDP keyword (IPv4_address, IPv6_address, IPv4_Destination_Address, \
                 IPv6_Destination_Address, Interface, Port, SndSocketBuffer, RcvSocketBuffer, \
                 Checksum) or '}'"
            }
            TcpKeyword => {
                "a TCP keyword (IPv4_address, IPv6_address, IPv4_Destination_Address, \
                 IPv6_Destination_Address, Interface, Port, SndSocketBuffer, RcvSocketBuffer, \
                 Checksum, ErrorQueueLength) or '}'"
            }
            AuthKeyword => "an Authentication keyword (KeyFile, ReplayWindow) or '}'",
            SnapshotKeyword => "a Snapshot keyword (Path, Interval) or '}'",
            OptionsKeyword => "an Options keyword (TCPWindowTracking, ExpectationSync) or '}'",
            ExpectationValue => "'on', 'off' or '{'",
            HelperName => "a helper name or '}'",
            StatsKeyword => "a Stats keyword (LogFile, Syslog) or '}'",
            HelperKeyword => "a Helper keyword (Type, Setup, QueueNum, QueueLen, Policy) or '}'",
            HelperTypeKeyword => "a helper keyword (QueueNum, QueueLen, Policy, Type) or '}'",
            PolicyKeyword => "a Policy keyword (ExpectMax, ExpectTimeout) or '}'",
            Number => "an unsigned number",
            SignedNumber => "a signed number such as -1 or +5",
            OnOff => "'on' or 'off'",
            OnOffPath => "'on', 'off' or an absolute path",
            OnOffFacility => "'on', 'off' or a syslog facility (daemon, local0..local7)",
            OnOffNumber => "'on', 'off' or a number",
            Path => "an absolute path",
            Ip => "an IP address",
            Name => "a name",
        };
        f.write_str(s)
    }
}

/// Why a configuration was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ErrorKind {
    /// The file could not be read (upstream: ``can't open config file `%s'``).
    #[error("cannot read the file: {reason}")]
    Open {
        /// The OS error.
        reason: String,
    },
    /// A token that the grammar does not allow here.
    #[error("syntax error at {symbol}: expected {expected}")]
    Syntax {
        /// The offending token.
        symbol: Symbol,
        /// What would have been accepted.
        expected: Expected,
    },
    /// Blocks nested so deep that upstream's parser stack (10000 states)
    /// overflows: about 1666 nested helper `Type` blocks.
    #[error("blocks nested too deeply at {symbol} (upstream's parser stack holds 10000 states)")]
    ParserStackExhausted {
        /// The token being handled.
        symbol: Symbol,
    },
    /// `Stats` and `Sync` sections in the same file.
    #[error("cannot use both `Stats' and `Sync' clauses")]
    StatsAndSync,
    /// `Scheduler { Type }` other than RR or FIFO.
    #[error("unknown scheduler `{name}' (expected RR or FIFO)")]
    UnknownScheduler {
        /// The name given.
        name: String,
    },
    /// `Scheduler { Priority }` outside 0..=99.
    #[error("`Priority' must be [0, 99], got {value}")]
    PriorityOutOfRange {
        /// The value as upstream reads it.
        value: i32,
    },
    /// `PollSecs 0`.
    #[error("`PollSecs' clause must be > 0")]
    PollSecsZero,
    /// Channel blocks of different types.
    #[error("cannot use `{kind}' with other dedicated link protocols", kind = kind.keyword())]
    MixedChannels {
        /// The type of the block that closed last.
        kind: ChannelType,
    },
    /// An option in a fifth channel block.
    #[error("too many dedicated links (maximum: 4)")]
    TooManyChannels,
    /// General `LogFile` path longer than 256 bytes.
    #[error("LogFile path is longer than 256 characters")]
    LogFileTooLong,
    /// Stats `LogFile` path longer than 256 bytes.
    #[error("Stats LogFile path is longer than 256 characters")]
    StatsLogFileTooLong,
    /// `LockFile` path longer than 256 bytes.
    #[error("LockFile path is longer than 256 characters")]
    LockFileTooLong,
    /// UNIX `Path` longer than 107 bytes.
    #[error("UNIX Path is longer than 107 characters")]
    UnixPathTooLong,
    /// Helper `Type` with a layer 3 other than inet/inet6.
    #[error("unknown layer 3 protocol `{name}' (expected inet or inet6)")]
    UnknownL3Protocol {
        /// The name given.
        name: String,
    },
    /// Helper `Type` with a layer 4 other than tcp/udp.
    #[error("unknown layer 4 protocol `{name}' (expected tcp or udp)")]
    UnknownL4Protocol {
        /// The name given.
        name: String,
    },
    /// No such helper for that layer-4 protocol.
    #[error("unknown helper `{name}'")]
    UnknownHelper {
        /// The helper name.
        name: String,
    },
    /// A `Policy` name the helper does not have.
    #[error("unknown policy `{name}' in helper configuration")]
    UnknownHelperPolicy {
        /// The policy name.
        name: String,
    },
    /// `Authentication { }` without `KeyFile`.
    #[error("Authentication needs a KeyFile")]
    AuthWithoutKeyFile,
    /// `Authentication` with a TCP channel (a MAC per datagram needs
    /// datagram channels).
    #[error("Authentication works over UDP and Multicast channels only, not TCP")]
    AuthOverTcp,
    /// `ReplayWindow` outside 64..=8192.
    #[error("`ReplayWindow' must be [64, 8192], got {value}")]
    ReplayWindowOutOfRange {
        /// The value given.
        value: i32,
    },
    /// `Lanes` outside 1..=64.
    #[error("`Lanes' must be [1, 64], got {value}")]
    LanesOutOfRange {
        /// The value given.
        value: i32,
    },
    /// `Snapshot { }` without `Path`.
    #[error("Snapshot needs a Path")]
    SnapshotWithoutPath,
    /// `Snapshot { Interval 0 }`.
    #[error("`Interval' must be > 0")]
    SnapshotIntervalZero,
    /// `Policy NAME { }` without ExpectMax/ExpectTimeout.
    #[error("helper policy configuration is empty")]
    HelperPolicyEmpty,
    /// `Policy` name longer than 16 bytes.
    #[error("helper policy name is longer than 16 characters")]
    HelperPolicyNameTooLong,
}

impl ErrorKind {
    /// The text upstream logs for a non-syntax error.
    fn c_text(&self) -> String {
        use ErrorKind::*;
        match self {
            Open { .. } => "can't open config file".to_string(), // with the name, see above
            Syntax { .. } => "syntax error".to_string(),
            ParserStackExhausted { .. } => "memory exhausted".to_string(),
            StatsAndSync => {
                "cannot use both `Stats' and `Sync' clauses in conntrackd.conf".to_string()
            }
            UnknownScheduler { name } => format!("unknown scheduler `{name}'"),
            PriorityOutOfRange { .. } => "`Priority' must be [0, 99]\n".to_string(),
            PollSecsZero => "`PollSecs' clause must be > 0".to_string(),
            MixedChannels { kind } => format!(
                "cannot use `{}' with other dedicated link protocols!",
                kind.keyword()
            ),
            TooManyChannels => {
                "too many dedicated links in the configuration file (Maximum: 4)".to_string()
            }
            LogFileTooLong => "LogFile path is longer than 256 characters".to_string(),
            StatsLogFileTooLong => "stats LogFile path is longer than 256 characters".to_string(),
            LockFileTooLong => "LockFile path is longer than 256 characters".to_string(),
            UnixPathTooLong => "Path is longer than 107 characters".to_string(),
            UnknownL3Protocol { .. } => "unknown layer 3 protocol".to_string(),
            UnknownL4Protocol { .. } => "unknown layer 4 protocol".to_string(),
            UnknownHelper { name } => format!("Unknown `{name}' helper"),
            UnknownHelperPolicy { name } => {
                format!("Unknown policy `{name}' in helper configuration")
            }
            HelperPolicyEmpty => {
                "Helper policy configuration empty, fix your configuration file, please".to_string()
            }
            HelperPolicyNameTooLong => "Helper Policy is longer than 16 characters".to_string(),
            // Extensions: no upstream text.
            AuthWithoutKeyFile
            | AuthOverTcp
            | ReplayWindowOutOfRange { .. }
            | LanesOutOfRange { .. }
            | SnapshotWithoutPath
            | SnapshotIntervalZero => self.to_string(),
        }
    }
}
