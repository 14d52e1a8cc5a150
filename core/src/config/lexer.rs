//! The scanner: a faithful re-implementation of upstream's flex rules.
//!
//! flex picks, at each position, the rule that matches the MOST bytes; ties
//! go to the rule listed first. The rules, in upstream's order, are: the
//! keywords, `on|yes`, `off|no`, integer, signed integer, IPv4, IPv6, path,
//! the mode names `alarm`, `persistent`, `ftfw`, `nack`, `notrack`, string,
//! comment (`#.*$`, which needs a following `\n`), blanks, newline, and
//! "any other byte". The character classes of the case-insensitive words
//! are written `[o|O]` upstream, so they also accept `|` — kept here.
//!
//! Consequences that are easy to miss and reproduced on purpose:
//! * a comment on the last line without a final newline is NOT a comment:
//!   the `#` comes out as a single-character token (a syntax error);
//! * a path swallows TABs, `#`, braces, up to a space, newline or `"`;
//! * words of one to four hex digits (`add`, `beef`) scan as IPv6
//!   addresses, not strings; `1abc` is an address too;
//! * a NUL byte or a byte >= 0x80 on its own is taken by the parser as the
//!   end of the input.

use super::cstd::atoi;
use super::span::Span;
use super::token::{keyword, Keyword, ModeName, Token, TokenKind, KEYWORDS};

/// Streams tokens out of a configuration file. Blanks, newlines and
/// comments are skipped.
#[derive(Clone, Debug)]
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
    /// Position of the next `\n` at or after `pos` (cache for comments).
    next_nl: Option<usize>,
}

/// Rule numbers in upstream's order (a lower number wins a tie).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    Keyword,
    True,
    False,
    Integer,
    Signed,
    Ip4,
    Ip6,
    Path,
    Alarm,
    Persistent,
    Ftfw,
    Nack,
    Notrack,
    String,
    Comment,
    Blank,
    Newline,
    Any,
}

impl<'a> Lexer<'a> {
    /// A scanner over `src`.
    pub fn new(src: &'a [u8]) -> Lexer<'a> {
        Lexer {
            src,
            pos: 0,
            line: 1,
            line_start: 0,
            next_nl: None,
        }
    }

    /// The next token; at the end of the input, [`TokenKind::Eof`] forever.
    pub fn next_token(&mut self) -> Token<'a> {
        loop {
            let span = Span::at(self.line, (self.pos - self.line_start + 1) as u32);
            if self.pos >= self.src.len() {
                return Token {
                    kind: TokenKind::Eof,
                    text: &[],
                    span,
                };
            }
            let (rule, len) = self.longest_match();
            let start = self.pos;
            // A comment's trailing newline is context, not text.
            let consumed = if rule == Rule::Comment { len - 1 } else { len };
            let text = &self.src[start..start + consumed];
            self.pos += consumed;
            let kind = match rule {
                Rule::Comment | Rule::Blank => continue,
                Rule::Newline => {
                    if text[0] == b'\n' {
                        self.line += 1;
                        self.line_start = self.pos;
                    }
                    continue;
                }
                Rule::Keyword => TokenKind::Keyword(keyword(text).unwrap_or(Keyword::Unix)),
                Rule::True => TokenKind::On,
                Rule::False => TokenKind::Off,
                Rule::Integer | Rule::Signed => {
                    let v = atoi(text);
                    if rule == Rule::Integer {
                        TokenKind::Number(v)
                    } else {
                        TokenKind::SignedNumber(v)
                    }
                }
                Rule::Ip4 | Rule::Ip6 => TokenKind::Ip,
                Rule::Path => TokenKind::Path,
                Rule::Alarm => TokenKind::Mode {
                    mode: ModeName::Alarm,
                    deprecated: false,
                },
                Rule::Persistent => TokenKind::Mode {
                    mode: ModeName::Alarm,
                    deprecated: true,
                },
                Rule::Ftfw => TokenKind::Mode {
                    mode: ModeName::Ftfw,
                    deprecated: false,
                },
                Rule::Nack => TokenKind::Mode {
                    mode: ModeName::Ftfw,
                    deprecated: true,
                },
                Rule::Notrack => TokenKind::Mode {
                    mode: ModeName::Notrack,
                    deprecated: false,
                },
                Rule::String => TokenKind::String,
                Rule::Any => {
                    let b = text[0];
                    if b == 0 || b >= 0x80 {
                        TokenKind::Eof
                    } else {
                        TokenKind::Char(b)
                    }
                }
            };
            return Token { kind, text, span };
        }
    }

    /// The winning rule at the current position and the length it matches
    /// (for a comment, including the newline that must follow it).
    fn longest_match(&mut self) -> (Rule, usize) {
        let s = &self.src[self.pos..];
        let candidates = [
            (Rule::Keyword, keyword_len(s)),
            (Rule::True, bool_len(s, &[b"on", b"yes"])),
            (Rule::False, bool_len(s, &[b"off", b"no"])),
            (Rule::Integer, digits(s)),
            (Rule::Signed, signed_len(s)),
            (Rule::Ip4, ip4_len(s)),
            (Rule::Ip6, ip6_len(s)),
            (Rule::Path, path_len(s)),
            (Rule::Alarm, word_len(s, b"alarm", b"alarm")),
            (Rule::Persistent, word_len(s, b"persistent", b"persistenT")),
            (Rule::Ftfw, word_len(s, b"ftfw", b"ftfw")),
            (Rule::Nack, word_len(s, b"nack", b"nack")),
            (Rule::Notrack, word_len(s, b"notrack", b"notrack")),
            (Rule::String, string_len(s)),
            (Rule::Comment, self.comment_len()),
            (
                Rule::Blank,
                s.iter().take_while(|&&b| b == b' ' || b == b'\t').count(),
            ),
            (Rule::Newline, usize::from(s[0] == b'\n' || s[0] == b'\r')),
            (Rule::Any, usize::from(s[0] != b'\n')),
        ];
        let mut best = (Rule::Any, 0);
        for (rule, len) in candidates {
            if len > best.1 {
                best = (rule, len);
            }
        }
        best
    }

    fn comment_len(&mut self) -> usize {
        if self.src[self.pos] != b'#' {
            return 0;
        }
        let nl = match self.next_nl {
            Some(n) if n >= self.pos => Some(n),
            _ => {
                let found = self.src[self.pos..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|i| i + self.pos);
                self.next_nl = found.or(Some(usize::MAX));
                found
            }
        };
        match nl {
            Some(n) if n != usize::MAX => n - self.pos + 1,
            _ => 0,
        }
    }
}

/// Longest keyword that `s` starts with.
fn keyword_len(s: &[u8]) -> usize {
    KEYWORDS
        .iter()
        .filter(|(k, _)| s.starts_with(k.as_bytes()))
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0)
}

/// Upstream writes case-insensitive letters as `[o|O]`: the class also
/// holds `|`.
fn class_eq(b: u8, lower: u8) -> bool {
    b == b'|' || b.to_ascii_lowercase() == lower
}

/// Length of the longest of `words` (lowercase) at the start of `s`,
/// compared with [`class_eq`].
fn bool_len(s: &[u8], words: &[&[u8]]) -> usize {
    words
        .iter()
        .filter(|w| s.len() >= w.len() && w.iter().zip(s).all(|(&l, &b)| class_eq(b, l)))
        .map(|w| w.len())
        .max()
        .unwrap_or(0)
}

/// `word` matched with [`class_eq`], except that the last byte uses
/// `last` verbatim (upstream's `persistent` pattern ends in `[T|T]`, an
/// upper-case T or a pipe only).
fn word_len(s: &[u8], word: &[u8], last: &[u8]) -> usize {
    if s.len() < word.len() {
        return 0;
    }
    let n = word.len();
    let body = word[..n - 1].iter().zip(s).all(|(&l, &b)| class_eq(b, l));
    let tail = last[n - 1];
    let end = s[n - 1];
    let end_ok = if tail == word[n - 1] {
        class_eq(end, tail)
    } else {
        end == tail || end == b'|'
    };
    if body && end_ok {
        n
    } else {
        0
    }
}

fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

fn signed_len(s: &[u8]) -> usize {
    match s.first() {
        Some(b'+') | Some(b'-') => match digits(&s[1..]) {
            0 => 0,
            n => n + 1,
        },
        _ => 0,
    }
}

/// `D+\.D+\.D+\.D+(/D+)?` (upstream's patterns reduce to this).
fn ip4_len(s: &[u8]) -> usize {
    let mut i = 0;
    for part in 0..4 {
        let n = digits(&s[i..]);
        if n == 0 {
            return 0;
        }
        i += n;
        if part < 3 {
            if s.get(i) != Some(&b'.') {
                return 0;
            }
            i += 1;
        }
    }
    i + cidr_len(&s[i..])
}

/// `/D+` or nothing.
fn cidr_len(s: &[u8]) -> usize {
    if s.first() == Some(&b'/') {
        match digits(&s[1..]) {
            0 => 0,
            n => n + 1,
        }
    } else {
        0
    }
}

/// Positions reachable from `from` by one to four hex digits.
fn hex_ends(s: &[u8], from: usize, out: &mut Vec<usize>) {
    for k in 1..=4 {
        match s.get(from + k - 1) {
            Some(b) if b.is_ascii_hexdigit() => out.push(from + k),
            _ => break,
        }
    }
}

fn dedup(v: &mut Vec<usize>) {
    v.sort_unstable();
    v.dedup();
}

/// All positions reachable from `starts` by `hex{1,4} ":"?` repeated zero
/// to seven times.
fn parts_0_7(s: &[u8], starts: &[usize]) -> Vec<usize> {
    let mut all = starts.to_vec();
    let mut cur = starts.to_vec();
    for _ in 0..7 {
        let mut next = Vec::new();
        for &p in &cur {
            let mut ends = Vec::new();
            hex_ends(s, p, &mut ends);
            for e in ends {
                next.push(e);
                if s.get(e) == Some(&b':') {
                    next.push(e + 1);
                }
            }
        }
        dedup(&mut next);
        if next.is_empty() {
            break;
        }
        all.extend_from_slice(&next);
        cur = next;
    }
    dedup(&mut all);
    all
}

/// Upstream's IPv6 pattern: `part{0,7} "::" part{0,7}` or
/// `(hex{1,4} ":"){0,7} hex{1,4}`, each with an optional `/D+`.
fn ip6_len(s: &[u8]) -> usize {
    let mut ends = Vec::new();
    // form 1
    let before = parts_0_7(s, &[0]);
    let after_colons: Vec<usize> = before
        .iter()
        .filter(|&&p| s.get(p..p + 2) == Some(b"::"))
        .map(|&p| p + 2)
        .collect();
    if !after_colons.is_empty() {
        ends.extend(parts_0_7(s, &after_colons));
    }
    // form 2
    let mut groups = vec![0usize];
    let mut cur = vec![0usize];
    for _ in 0..7 {
        let mut next = Vec::new();
        for &p in &cur {
            let mut he = Vec::new();
            hex_ends(s, p, &mut he);
            next.extend(
                he.into_iter()
                    .filter(|&e| s.get(e) == Some(&b':'))
                    .map(|e| e + 1),
            );
        }
        dedup(&mut next);
        if next.is_empty() {
            break;
        }
        groups.extend_from_slice(&next);
        cur = next;
    }
    for &g in &groups {
        hex_ends(s, g, &mut ends);
    }
    ends.into_iter()
        .map(|e| e + cidr_len(&s[e..]))
        .max()
        .unwrap_or(0)
}

/// `/[^"\n ]*`.
fn path_len(s: &[u8]) -> usize {
    if s[0] != b'/' {
        return 0;
    }
    1 + s[1..]
        .iter()
        .take_while(|&&b| b != b'"' && b != b'\n' && b != b' ')
        .count()
}

/// `[a-zA-Z][a-zA-Z0-9._-]*`.
fn string_len(s: &[u8]) -> usize {
    if !s[0].is_ascii_alphabetic() {
        return 0;
    }
    1 + s[1..]
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokenKind, String)> {
        let mut lx = Lexer::new(src.as_bytes());
        let mut out = Vec::new();
        loop {
            let t = lx.next_token();
            if t.kind == TokenKind::Eof {
                return out;
            }
            out.push((t.kind, t.text_lossy()));
        }
    }

    #[test]
    fn words_numbers_and_addresses() {
        use TokenKind::*;
        let k = kinds("HashSize 12 HashSizeX on OFF Yes nO -5 +7 1.2.3.4/24 ::1 add 1abc beef0");
        let got: Vec<_> = k.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            got,
            vec![
                Keyword(super::Keyword::HashSize),
                Number(12),
                String,
                On,
                Off,
                On,
                Off,
                SignedNumber(-5),
                SignedNumber(7),
                Ip,
                Ip,
                Ip,
                Ip,
                String,
            ]
        );
    }

    #[test]
    fn pipes_in_classes() {
        let k = kinds("|| ||| ||||| |||| ||||||||||");
        assert_eq!(k[0].0, TokenKind::On);
        assert_eq!(k[1].0, TokenKind::On); // `yes` beats `off` (same length, earlier rule)
        assert!(matches!(
            k[2].0,
            TokenKind::Mode {
                mode: ModeName::Alarm,
                deprecated: false
            }
        ));
        assert!(matches!(
            k[3].0,
            TokenKind::Mode {
                mode: ModeName::Ftfw,
                deprecated: false
            }
        ));
        assert!(matches!(
            k[4].0,
            TokenKind::Mode {
                mode: ModeName::Alarm,
                deprecated: true
            }
        ));
    }

    #[test]
    fn modes() {
        let k = kinds("FtFw alarm NOTRACK nack PERSISTENT persistenT persistent");
        assert!(matches!(
            k[0].0,
            TokenKind::Mode {
                mode: ModeName::Ftfw,
                deprecated: false
            }
        ));
        assert!(matches!(
            k[1].0,
            TokenKind::Mode {
                mode: ModeName::Alarm,
                ..
            }
        ));
        assert!(matches!(
            k[2].0,
            TokenKind::Mode {
                mode: ModeName::Notrack,
                ..
            }
        ));
        assert!(matches!(
            k[3].0,
            TokenKind::Mode {
                mode: ModeName::Ftfw,
                deprecated: true
            }
        ));
        assert!(matches!(
            k[4].0,
            TokenKind::Mode {
                mode: ModeName::Alarm,
                deprecated: true
            }
        ));
        assert!(matches!(
            k[5].0,
            TokenKind::Mode {
                mode: ModeName::Alarm,
                deprecated: true
            }
        ));
        assert_eq!(k[6].0, TokenKind::String);
    }

    #[test]
    fn paths_and_comments() {
        let k = kinds("LockFile /a\t#x}\n# c\n/b\"x # end");
        assert_eq!(k[1], (TokenKind::Path, "/a\t#x}".to_string()));
        assert_eq!(k[2], (TokenKind::Path, "/b".to_string()));
        assert_eq!(k[3], (TokenKind::Char(b'"'), "\"".to_string()));
        assert_eq!(k[4], (TokenKind::String, "x".to_string()));
        // no newline after the last comment: `#` is a token of its own
        assert_eq!(k[5], (TokenKind::Char(b'#'), "#".to_string()));
    }

    #[test]
    fn ipv6_forms() {
        let k = kinds("1::2::3 fe80::1/64 1:2:3:4:5:6:7:8:9");
        assert_eq!(k[0], (TokenKind::Ip, "1::2:".to_string()));
        assert_eq!(k[1], (TokenKind::Char(b':'), ":".to_string()));
        assert_eq!(k[2], (TokenKind::Number(3), "3".to_string()));
        assert_eq!(k[3], (TokenKind::Ip, "fe80::1/64".to_string()));
        assert_eq!(k[4], (TokenKind::Ip, "1:2:3:4:5:6:7:8".to_string()));
    }

    #[test]
    fn spans_count_newlines_only() {
        let mut lx = Lexer::new(b"a\r b\n  c");
        assert_eq!(lx.next_token().span, Span::at(1, 1));
        assert_eq!(lx.next_token().span, Span::at(1, 4));
        assert_eq!(lx.next_token().span, Span::at(2, 3));
        assert_eq!(lx.next_token().span, Span::at(2, 4));
    }

    #[test]
    fn nul_and_high_bytes_end_the_input() {
        let k = kinds("a \u{0} b");
        assert_eq!(k.len(), 1);
        let mut lx = Lexer::new(b"\xff");
        let t = lx.next_token();
        assert_eq!((t.kind, t.text), (TokenKind::Eof, &b"\xff"[..]));
    }
}
