//! Tokens of `conntrackd.conf` and the table of keywords.
//!
//! The token classes are those of upstream's flex scanner: keywords (exact,
//! case-sensitive words), booleans, unsigned and signed integers, IP
//! addresses, absolute paths, sync-mode names, strings and single
//! characters. Aliases map to the same [`Keyword`] (e.g. `SocketBufferSize`
//! is [`Keyword::NetlinkBufferSize`]); the spelling used stays available in
//! [`Token::text`].

use super::span::Span;

/// A keyword of the configuration grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Keyword {
    Unix,
    Ipv4Address,
    Ipv6Address,
    Ipv4DestinationAddress,
    Ipv6DestinationAddress,
    Ipv4Interface,
    Ipv6Interface,
    Interface,
    Multicast,
    Udp,
    Tcp,
    HashSize,
    RefreshTime,
    CacheTimeout,
    CommitTimeout,
    HashLimit,
    Path,
    Backlog,
    Group,
    Port,
    LogFile,
    Syslog,
    LockFile,
    General,
    Sync,
    Stats,
    NetlinkBufferSize,
    NetlinkBufferSizeMaxGrowth,
    Mode,
    ResendQueueSize,
    Checksum,
    AckWindowSize,
    For,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    Listen,
    SndSocketBuffer,
    RcvSocketBuffer,
    Filter,
    Protocol,
    Address,
    State,
    Accept,
    Ignore,
    PurgeTimeout,
    From,
    Userspace,
    Kernelspace,
    EventIterationLimit,
    Default,
    PollSecs,
    NetlinkOverrunResync,
    Nice,
    Scheduler,
    Type,
    Priority,
    NetlinkEventsReliable,
    DisableInternalCache,
    DisableExternalCache,
    Options,
    TcpWindowTracking,
    ExpectationSync,
    ErrorQueueLength,
    Helper,
    QueueNum,
    QueueLen,
    Policy,
    ExpectMax,
    ExpectTimeout,
    Systemd,
    StartupResync,
    Setup,
    /// Extension (not in 1.4.7): `General { Lanes N }`.
    Lanes,
    /// Extension (not in 1.4.7): `Sync { Authentication { } }`.
    Authentication,
    /// Extension: `Authentication { KeyFile /path }`.
    KeyFile,
    /// Extension: `Authentication { ReplayWindow N }`.
    ReplayWindow,
    /// Extension: `Sync { Snapshot { Path /file  Interval N } }`.
    Snapshot,
    /// Extension: `Snapshot { Interval N }`.
    Interval,
}

/// Every keyword spelling accepted by conntrackd 1.4.7, with its keyword,
/// and the few extensions at the end.
/// Matching is exact and case-sensitive.
pub const KEYWORDS: &[(&str, Keyword)] = &[
    ("UNIX", Keyword::Unix),
    ("IPv4_address", Keyword::Ipv4Address),
    ("IPv6_address", Keyword::Ipv6Address),
    ("IPv4_Destination_Address", Keyword::Ipv4DestinationAddress),
    ("IPv6_Destination_Address", Keyword::Ipv6DestinationAddress),
    ("IPv4_interface", Keyword::Ipv4Interface),
    ("IPv6_interface", Keyword::Ipv6Interface),
    ("Interface", Keyword::Interface),
    ("Multicast", Keyword::Multicast),
    ("UDP", Keyword::Udp),
    ("TCP", Keyword::Tcp),
    ("HashSize", Keyword::HashSize),
    ("RefreshTime", Keyword::RefreshTime),
    ("CacheTimeout", Keyword::CacheTimeout),
    ("CommitTimeout", Keyword::CommitTimeout),
    ("HashLimit", Keyword::HashLimit),
    ("Path", Keyword::Path),
    ("Backlog", Keyword::Backlog),
    ("Group", Keyword::Group),
    ("Port", Keyword::Port),
    ("LogFile", Keyword::LogFile),
    ("Syslog", Keyword::Syslog),
    ("LockFile", Keyword::LockFile),
    ("General", Keyword::General),
    ("Sync", Keyword::Sync),
    ("Stats", Keyword::Stats),
    ("SocketBufferSize", Keyword::NetlinkBufferSize),
    (
        "SocketBufferSizeMaxGrown",
        Keyword::NetlinkBufferSizeMaxGrowth,
    ),
    (
        "SocketBufferSizeMaxGrowth",
        Keyword::NetlinkBufferSizeMaxGrowth,
    ),
    ("NetlinkBufferSize", Keyword::NetlinkBufferSize),
    (
        "NetlinkBufferSizeMaxGrowth",
        Keyword::NetlinkBufferSizeMaxGrowth,
    ),
    ("Mode", Keyword::Mode),
    ("ResendQueueSize", Keyword::ResendQueueSize),
    ("Checksum", Keyword::Checksum),
    ("ACKWindowSize", Keyword::AckWindowSize),
    ("for", Keyword::For),
    ("SYN_SENT", Keyword::SynSent),
    ("SYN_RECV", Keyword::SynRecv),
    ("ESTABLISHED", Keyword::Established),
    ("FIN_WAIT", Keyword::FinWait),
    ("CLOSE_WAIT", Keyword::CloseWait),
    ("LAST_ACK", Keyword::LastAck),
    ("TIME_WAIT", Keyword::TimeWait),
    ("CLOSE", Keyword::Close),
    ("CLOSED", Keyword::Close),
    ("LISTEN", Keyword::Listen),
    ("SndSocketBuffer", Keyword::SndSocketBuffer),
    ("RcvSocketBuffer", Keyword::RcvSocketBuffer),
    ("Filter", Keyword::Filter),
    ("Protocol", Keyword::Protocol),
    ("Address", Keyword::Address),
    ("State", Keyword::State),
    ("Accept", Keyword::Accept),
    ("Ignore", Keyword::Ignore),
    ("PurgeTimeout", Keyword::PurgeTimeout),
    ("From", Keyword::From),
    ("Userspace", Keyword::Userspace),
    ("Kernelspace", Keyword::Kernelspace),
    ("EventIterationLimit", Keyword::EventIterationLimit),
    ("Default", Keyword::Default),
    ("PollSecs", Keyword::PollSecs),
    ("NetlinkOverrunResync", Keyword::NetlinkOverrunResync),
    ("Nice", Keyword::Nice),
    ("Scheduler", Keyword::Scheduler),
    ("Type", Keyword::Type),
    ("Priority", Keyword::Priority),
    ("NetlinkEventsReliable", Keyword::NetlinkEventsReliable),
    ("DisableInternalCache", Keyword::DisableInternalCache),
    ("DisableExternalCache", Keyword::DisableExternalCache),
    ("Options", Keyword::Options),
    ("TCPWindowTracking", Keyword::TcpWindowTracking),
    ("ExpectationSync", Keyword::ExpectationSync),
    ("ErrorQueueLength", Keyword::ErrorQueueLength),
    ("Helper", Keyword::Helper),
    ("QueueNum", Keyword::QueueNum),
    ("QueueLen", Keyword::QueueLen),
    ("Policy", Keyword::Policy),
    ("ExpectMax", Keyword::ExpectMax),
    ("ExpectTimeout", Keyword::ExpectTimeout),
    ("Systemd", Keyword::Systemd),
    ("StartupResync", Keyword::StartupResync),
    ("Setup", Keyword::Setup),
    // Extensions of this implementation (1.4.7 rejects them as unknown
    // words); they do not change how any 1.4.7 configuration scans.
    ("Authentication", Keyword::Authentication),
    ("Lanes", Keyword::Lanes),
    ("KeyFile", Keyword::KeyFile),
    ("ReplayWindow", Keyword::ReplayWindow),
    ("Snapshot", Keyword::Snapshot),
    ("Interval", Keyword::Interval),
];

/// The keyword spelled exactly `word`, if any.
pub fn keyword(word: &[u8]) -> Option<Keyword> {
    KEYWORDS
        .iter()
        .find(|(s, _)| s.as_bytes() == word)
        .map(|&(_, k)| k)
}

/// A sync-mode name (matched case-insensitively by the scanner).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModeName {
    /// `FTFW`, or the deprecated `NACK`.
    Ftfw,
    /// `ALARM`, or the deprecated `PERSISTENT`.
    Alarm,
    /// `NOTRACK`.
    Notrack,
}

/// The class of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A keyword.
    Keyword(Keyword),
    /// `on`/`yes` (case-insensitive).
    On,
    /// `off`/`no` (case-insensitive).
    Off,
    /// `[0-9]+`, valued with C `atoi`.
    Number(i32),
    /// `[+-][0-9]+`, valued with C `atoi`.
    SignedNumber(i32),
    /// An IPv4 or IPv6 address, maybe with `/prefix` (the text is kept).
    Ip,
    /// An absolute path (`/` up to the next space, newline or `"`).
    Path,
    /// A sync-mode name; `deprecated` for the old spellings `NACK` and
    /// `PERSISTENT`, whose scanning makes upstream print a warning.
    Mode {
        /// The mode.
        mode: ModeName,
        /// Spelled `NACK` or `PERSISTENT`.
        deprecated: bool,
    },
    /// `[a-zA-Z][a-zA-Z0-9._-]*` that is no keyword.
    String,
    /// Any other single byte (`{`, `}`, ...).
    Char(u8),
    /// End of input; also a NUL byte or a byte >= 0x80 outside a path or
    /// comment, which upstream's parser takes as the end of input.
    Eof,
}

/// A token with its text and position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    /// The class.
    pub kind: TokenKind,
    /// The bytes that made the token (empty at the real end of input).
    pub text: &'a [u8],
    /// Where it starts.
    pub span: Span,
}

impl Token<'_> {
    /// True if this token is the single character `c`.
    pub fn is_char(&self, c: u8) -> bool {
        self.kind == TokenKind::Char(c)
    }

    /// True if this token is the keyword `k`.
    pub fn is_keyword(&self, k: Keyword) -> bool {
        self.kind == TokenKind::Keyword(k)
    }

    /// The text as a `String` (lossy for bytes that are not UTF-8).
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(self.text).into_owned()
    }
}
