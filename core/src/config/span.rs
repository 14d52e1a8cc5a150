//! Source positions of configuration tokens.

use std::fmt;

/// Where a token starts: 1-based line (counted like flex's `yylineno`, i.e.
/// by `\n` only; a lone `\r` does not start a line) and 1-based column in
/// bytes from the last `\n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, in bytes.
    pub column: u32,
}

impl Span {
    /// A span at `line`:`column`.
    pub const fn at(line: u32, column: u32) -> Span {
        Span { line, column }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}
