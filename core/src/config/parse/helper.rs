//! `Helper { Setup on|off; Type NAME L3 L4 { QueueNum N; QueueLen N;
//! Policy NAME { ExpectMax N; ExpectTimeout N } } }`.
//!
//! Upstream collects `QueueNum`, `QueueLen` and `Policy` on one global
//! stack that the end of a `Type` block empties (newest first). The
//! grammar lets these statements (and nested `Type` blocks) appear both
//! inside `Type` and directly in `Helper`; whatever is on the stack when a
//! `Type` block ends belongs to it. That is reproduced here.

use super::{text, PResult, Parser};
use crate::config::error::{ErrorKind, Expected, Symbol};
use crate::config::helper::{HelperInstance, HelperL3, HelperL4, HelperPolicy, HelperSection};
use crate::config::span::Span;
use crate::config::token::{Keyword as K, Token, TokenKind};

/// CTD_HELPER_NAME_LEN.
const HELPER_NAME_LEN: usize = 16;

/// bison's YYMAXDEPTH: upstream's parser fails ("memory exhausted") when
/// its stack reaches this many states, which only nested `Type` blocks can
/// do (about 1666 levels).
const YYMAXDEPTH: usize = 10_000;

/// An entry of upstream's symbol stack.
enum Item {
    QueueNum(i32),
    QueueLen(i32),
    /// A complete `Policy` block.
    Policy(HelperPolicy),
    /// `ExpectMax`/`ExpectTimeout` of a `Policy` block being read.
    Leaf {
        expect_max: i32,
        expect_timeout: i32,
    },
}

#[derive(Default)]
pub(crate) struct HelperState {
    /// Top of the stack is the last element.
    stack: Vec<Item>,
    pub(crate) section: HelperSection,
    pub(crate) spans: Vec<Span>,
}

impl HelperState {
    /// Remove and return the topmost leaf.
    fn pop_leaf(&mut self) -> Option<(i32, i32)> {
        let i = self
            .stack
            .iter()
            .rposition(|e| matches!(e, Item::Leaf { .. }))?;
        match self.stack.remove(i) {
            Item::Leaf {
                expect_max,
                expect_timeout,
            } => Some((expect_max, expect_timeout)),
            _ => None,
        }
    }
}

impl<'a> Parser<'a, '_> {
    /// `Helper { ... }`; `kw` is the `Helper` keyword, `base` the number of
    /// states on bison's stack before it (1 for the first section, 2 after).
    pub(super) fn helper_section(&mut self, kw: Token<'a>, base: usize) -> PResult<()> {
        self.depth = base;
        self.push(&kw)?;
        let open = self.open_token()?;
        self.push(&open)?;
        self.push(&open)?; // the empty list, reduced without a look-ahead
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => break,
                TokenKind::Keyword(K::Setup) => {
                    let save = self.depth;
                    self.push(&t)?;
                    let v = self.bump();
                    self.helpers.section.setup = match v.kind {
                        TokenKind::On => true,
                        TokenKind::Off => false,
                        _ => return Err(self.syntax(v, Expected::OnOff)),
                    };
                    self.push(&v)?;
                    self.depth = save;
                }
                TokenKind::Keyword(_) if self.helper_statement(t)? => {}
                _ => return Err(self.syntax(t, Expected::HelperKeyword)),
            }
        }
        self.helper_seen = true;
        Ok(())
    }

    /// One more state on bison's stack, for token `t` (the token shifted,
    /// or the last one read for a reduction without look-ahead).
    fn push(&mut self, t: &Token<'_>) -> PResult<()> {
        self.depth += 1;
        if self.depth >= YYMAXDEPTH {
            let symbol = Symbol::Token(t.text.to_vec());
            return Err(self.err(t.span, ErrorKind::ParserStackExhausted { symbol }));
        }
        Ok(())
    }

    /// A number token, pushed.
    fn pushed_number(&mut self) -> PResult<i32> {
        let v = self.bump();
        let TokenKind::Number(n) = v.kind else {
            return Err(self.syntax(v, Expected::Number));
        };
        self.push(&v)?;
        Ok(n)
    }

    /// A name token, pushed.
    fn pushed_name(&mut self) -> PResult<Token<'a>> {
        let v = self.name()?;
        self.push(&v)?;
        Ok(v)
    }

    /// `Type`, `QueueNum`, `QueueLen` or `Policy`; `Ok(false)` for any
    /// other keyword.
    fn helper_statement(&mut self, t: Token<'a>) -> PResult<bool> {
        let save = self.depth;
        match t.kind {
            TokenKind::Keyword(K::Type) => {
                self.push(&t)?;
                self.helper_type(t)?
            }
            TokenKind::Keyword(K::QueueNum) => {
                self.push(&t)?;
                let n = self.pushed_number()?;
                self.helpers.stack.push(Item::QueueNum(n));
            }
            TokenKind::Keyword(K::QueueLen) => {
                self.push(&t)?;
                let n = self.pushed_number()?;
                self.helpers.stack.push(Item::QueueLen(n));
            }
            TokenKind::Keyword(K::Policy) => {
                self.push(&t)?;
                self.helper_policy()?
            }
            _ => return Ok(false),
        }
        self.depth = save;
        Ok(true)
    }

    fn helper_policy(&mut self) -> PResult<()> {
        let name = self.pushed_name()?;
        let open = self.open_token()?;
        self.push(&open)?;
        self.push(&open)?;
        let list = self.depth;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => {
                    self.push(&t)?;
                    break;
                }
                TokenKind::Keyword(k @ (K::ExpectMax | K::ExpectTimeout)) => {
                    self.push(&t)?;
                    let n = self.pushed_number()?;
                    self.depth = list;
                    let (mut max, mut timeout) = self.helpers.pop_leaf().unwrap_or((0, 0));
                    if k == K::ExpectMax {
                        max = n;
                    } else {
                        timeout = n;
                    }
                    self.helpers.stack.push(Item::Leaf {
                        expect_max: max,
                        expect_timeout: timeout,
                    });
                }
                _ => return Err(self.syntax(t, Expected::PolicyKeyword)),
            }
        }
        let Some((max, timeout)) = self.helpers.pop_leaf() else {
            return Err(self.err(name.span, ErrorKind::HelperPolicyEmpty));
        };
        if name.text.len() > HELPER_NAME_LEN {
            return Err(self.err(name.span, ErrorKind::HelperPolicyNameTooLong));
        }
        // snprintf into a 16-byte buffer keeps 15 characters
        let mut n = text(&name);
        n.truncate(HELPER_NAME_LEN - 1);
        self.helpers.stack.push(Item::Policy(HelperPolicy {
            name: n,
            expect_max: max as u32,
            expect_timeout: timeout as u32,
        }));
        Ok(())
    }

    fn helper_type(&mut self, kw: Token<'a>) -> PResult<()> {
        let name = self.pushed_name()?;
        let l3 = self.pushed_name()?;
        let l4 = self.pushed_name()?;
        let open = self.open_token()?;
        self.push(&open)?;
        self.push(&open)?;
        loop {
            let t = self.bump();
            match t.kind {
                TokenKind::Char(b'}') => {
                    self.push(&t)?;
                    break;
                }
                TokenKind::Keyword(_) if self.helper_statement(t)? => {}
                _ => return Err(self.syntax(t, Expected::HelperTypeKeyword)),
            }
        }
        let l3 = match l3.text {
            b"inet" => HelperL3::Inet,
            b"inet6" => HelperL3::Inet6,
            _ => {
                let name = text(&l3);
                return Err(self.err(l3.span, ErrorKind::UnknownL3Protocol { name }));
            }
        };
        let l4 = match l4.text {
            b"tcp" => HelperL4::Tcp,
            b"udp" => HelperL4::Udp,
            _ => {
                let name = text(&l4);
                return Err(self.err(l4.span, ErrorKind::UnknownL4Protocol { name }));
            }
        };
        let name_s = text(&name);
        let Some(info) = self.sys.helper(&name_s, l4) else {
            return Err(self.err(name.span, ErrorKind::UnknownHelper { name: name_s }));
        };
        let mut inst = HelperInstance {
            name: name_s,
            l3,
            l4,
            queue_num: 0,
            queue_len: 0,
            policies: Vec::new(),
        };
        while let Some(item) = self.helpers.stack.pop() {
            match item {
                Item::QueueNum(n) => inst.queue_num = n as u32,
                Item::QueueLen(n) => inst.queue_len = n as u32,
                Item::Policy(p) => {
                    if !info.policies.contains(&p.name) {
                        let name = p.name;
                        return Err(self.err(kw.span, ErrorKind::UnknownHelperPolicy { name }));
                    }
                    inst.policies.push(p);
                }
                // cannot happen: a leaf becomes a policy when its block ends
                Item::Leaf { .. } => {}
            }
        }
        self.helpers.section.helpers.push(inst);
        self.helpers.spans.push(kw.span);
        Ok(())
    }
}
