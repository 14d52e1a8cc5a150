//! Differential test: our `conntrack` against the reference `/usr/sbin/conntrack` (1.4.7).
//!
//! Every invocation of the corpus (`tools/tests/cases/*.cases`) is run once with the reference
//! tool and once with ours, each in its own throw-away network namespace, both namespaces
//! filled identically (by the REFERENCE tool). stdout, stderr and the exit status must be equal
//! byte for byte after a small, fixed normalisation (see below).
//!
//! Run:
//!   cargo test -p ct-tools --test differential                       # ours = cargo-built binary
//!   CT_OURS=/path/to/conntrack cargo test -p ct-tools --test differential
//!   CT_OURS=/usr/sbin/conntrack cargo test -p ct-tools --test differential   # self-check
//! Environment:
//!   CT_OURS=<path>        binary under test (default: the cargo-built `conntrack`)
//!   CT_REF=<path>         reference binary (default /usr/sbin/conntrack)
//!   CT_DIFF_ONLY=<text>   run only cases whose label contains <text>; the label is
//!                         `<file>:<line> [<group>] <command line>`, e.g. `errors.cases:`,
//!                         `[labels]`, `-o xml`
//!   CT_DIFF_JOBS=<n>      groups run on n threads (default 2)
//!   CT_DIFF_REPEAT=<n>    run the whole corpus n times (flakiness check)
//!   CT_DIFF_VERBOSE=1     print every invocation, not only the mismatches (2: and the
//!                         reference's output)
//! Without root, without `ip netns`, or without the reference tool, the test prints
//! `SKIP: ...` and passes.
//!
//! # Case file format (`*.cases`, UTF-8, line based)
//!
//! ```text
//! # comment (only whole lines; leading blanks allowed)
//! [group-name]                 start a group: one table content shared by its cases
//! @sysctl KEY=VALUE            sysctl set inside every namespace of the group
//!                              (e.g. net.netfilter.nf_conntrack_acct=1)
//! @connlabel 0:foo 1:bar       provide /etc/xtables/connlabel.conf (bit:name ...) to every command
//!                              of the group (overlayfs on /etc in a private mount namespace)
//! @setup ARGS                  run `REFERENCE ARGS` in every namespace of the group (must exit 0)
//! @setup? ARGS                 same, exit status ignored
//! @sh SCRIPT                   run `bash -c SCRIPT` in every namespace (must exit 0); env:
//!                              $CT_REF = reference binary, $CASES = the cases directory
//! ARGS                         read-only invocation: compared; all read-only invocations of a
//!                              group share one pair of namespaces, filled once
//! ! ARGS                       invocation that (may) modify the table: runs in a fresh pair of
//!                              namespaces (setup replayed), then the resulting tables are dumped
//!                              with the REFERENCE tool (-L -o extended, -L expect, -L dying)
//!                              and compared too (skipped when both sides exit 2: rejected command
//!                              lines touch nothing). A pair whose tables are still as set up is
//!                              reused by the next `!` / `{ }` unit of the group.
//! {                            a sequence on one fresh pair: each line inside is an invocation
//!   ! ARGS                     (`!` = also compare the table afterwards); the state carries over
//!   ARGS                       from line to line
//! }
//! & ARGS                       event case (fresh pair): start `BIN ARGS` (normally -E ...) in the
//! > ARGS                       background, run every following `> ARGS` line with the REFERENCE
//! >@sh SCRIPT                  tool (or `>@sh` line with bash) in the same namespace, one after
//!                              the other, then SIGINT the listener and compare its output
//! ```
//!
//! Invocation lines: `[!] [%modifier ...] ARGS [<<TAG | <<PREV [SED-SCRIPT]]`
//! * ARGS are split like a shell would (blanks; '...' literal; "..." with \" \\ escapes;
//!   backslash escapes one character; `''` is an empty argument). Both binaries are started as
//!   plain `conntrack` (a PATH entry holding a symlink), so `argv[0]`, which 1.4.7 prints in
//!   its usage text, is the same on both sides.
//! * `<<TAG`: the following lines up to a line equal to TAG are the standard input (each line
//!   ends with \n). If an argument is `@FILE@`, the text is instead written to a temporary file
//!   whose path replaces `@FILE@` (for `-R file`).
//! * `<<PREV [SED]`: standard input = stdout of the previous invocation of the same binary in the
//!   same namespace (inside a `{ }` block), piped through `sed -e SED` when SED is given (like the
//!   upstream runner's `|` lines).
//! * modifiers: `%sorted` / `%ordered` force sorting (or not) of stdout lines; the default sorts
//!   unless the command contains -h/--help/-E/--event/-S/--stats/-V/--version or no argument at
//!   all. `%timeout=S` per-command time limit (default 10 s). `%nonl` drops the final newline of a
//!   heredoc. `%settle=MS` (event cases) waiting time around the triggers (default 300).
//!   `%divergent` marks a deliberate, documented difference (1.4.7 segfaults on unknown SCTP
//!   states, we print ``unknown SCTP state `X'``): it is still run and reported, but does not
//!   fail the test.
//!
//! Setup commands and event triggers run pinned to CPU 0 (`taskset`), so that the per-CPU
//! counters printed by `-S` are the same in both namespaces.
//!
//! # Normalisation (applied identically to both sides, nothing else is forgiven)
//! * the version banner `conntrack v[0-9.]+ \([^)]*\)` → `conntrack vX (X)`;
//! * kernel ids: `id=N` (not the ICMP `id=` after `code=`), `<id>N</id>`; `portid=N`;
//!   ` progname=...` is removed (it is racy);
//! * ticking values compared with a tolerance of ±5 s: the timeout after the protocol number of a
//!   plain line (and the leading timeout of expectation lines), `<timeout>`, `-t N`,
//!   `delta-time=N`, `<deltatime>`;
//! * absolute times are masked: `[start=...]`, `[stop=...]`, `<start>`, `<stop>`, `<when>`,
//!   and the event time-stamp prefix `[sec.usec]\t`;
//! * dump order: stdout lines are sorted (runs between XML header/footer lines stay in place).

mod common;

use common::netns::{find_tool, NetNs, RunOutput, DEFAULT_TIMEOUT};
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const REF_DEFAULT: &str = "/usr/sbin/conntrack";
/// Ticking values (timeouts, delta-time) may differ by this much between the two sides.
const TOLERANCE: i64 = 5;

// ------------------------------------------------------------------------------------------
// Case model and parser
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Auto,
    Sorted,
    Ordered,
}

#[derive(Clone, Debug)]
enum Stdin {
    None,
    Text(Vec<u8>),
    Prev(Option<String>),
}

#[derive(Clone, Debug)]
struct Step {
    line: usize,
    raw: String,
    args: Vec<String>,
    mutating: bool,
    stdin: Stdin,
    order: Order,
    timeout: Duration,
    settle: Duration,
    /// `%divergent`: a documented, deliberate difference (e.g. 1.4.7
    /// crashes where we print an error): reported, not failed.
    divergent: bool,
}

#[derive(Clone, Debug)]
enum SetupStep {
    Ct {
        line: usize,
        args: Vec<String>,
        may_fail: bool,
    },
    Sh {
        line: usize,
        script: String,
    },
}

#[derive(Clone, Debug)]
enum Trigger {
    Ct(Vec<String>),
    Sh(String),
}

#[derive(Clone, Debug)]
struct EventCase {
    listener: Step,
    triggers: Vec<(usize, Trigger)>,
}

#[derive(Clone, Debug)]
enum Unit {
    ReadOnly(Step),
    Fresh(Vec<Step>),
    Event(EventCase),
}

#[derive(Clone, Debug, Default)]
struct Group {
    file: String,
    line: usize,
    name: String,
    sysctls: Vec<(String, String)>,
    connlabel: Option<String>,
    setup: Vec<SetupStep>,
    units: Vec<Unit>,
}

/// Shell-like word splitting. Returns (word, byte offset just after the word, unquoted?).
fn split_words(s: &str) -> Result<Vec<(String, usize, usize, bool)>, String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // byte offsets
    let offs: Vec<usize> = s
        .char_indices()
        .map(|(o, _)| o)
        .chain(std::iter::once(s.len()))
        .collect();
    while i < b.len() {
        while i < b.len() && (b[i] == ' ' || b[i] == '\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut w = String::new();
        let mut plain = true;
        while i < b.len() && b[i] != ' ' && b[i] != '\t' {
            match b[i] {
                '\'' => {
                    plain = false;
                    i += 1;
                    while i < b.len() && b[i] != '\'' {
                        w.push(b[i]);
                        i += 1;
                    }
                    if i >= b.len() {
                        return Err("unterminated '".into());
                    }
                    i += 1;
                }
                '"' => {
                    plain = false;
                    i += 1;
                    while i < b.len() && b[i] != '"' {
                        if b[i] == '\\' && i + 1 < b.len() && (b[i + 1] == '"' || b[i + 1] == '\\')
                        {
                            i += 1;
                        }
                        w.push(b[i]);
                        i += 1;
                    }
                    if i >= b.len() {
                        return Err("unterminated \"".into());
                    }
                    i += 1;
                }
                '\\' if i + 1 < b.len() => {
                    plain = false;
                    w.push(b[i + 1]);
                    i += 2;
                }
                c => {
                    w.push(c);
                    i += 1;
                }
            }
        }
        out.push((w, offs[start], offs[i], plain));
    }
    Ok(out)
}

fn parse_file(path: &Path) -> Result<Vec<Group>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fname = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut i = 0;
    let err = |ln: usize, m: &str| format!("{fname}:{ln}: {m}");
    let mut block: Option<Vec<Step>> = None;
    let mut block_line = 0;

    while i < lines.len() {
        let ln = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') && line.trim_end().ends_with(']') {
            if block.is_some() {
                return Err(err(ln, "group header inside { } block"));
            }
            let name = line.trim_end();
            groups.push(Group {
                file: fname.clone(),
                line: ln,
                name: name[1..name.len() - 1].trim().to_string(),
                ..Group::default()
            });
            continue;
        }
        if groups.is_empty() {
            groups.push(Group {
                file: fname.clone(),
                line: ln,
                name: "default".into(),
                ..Group::default()
            });
        }
        let g = groups.last_mut().unwrap();
        if let Some(rest) = line.strip_prefix('@') {
            if !g.units.is_empty() || block.is_some() {
                return Err(err(ln, "@directives must precede the group's invocations"));
            }
            let (kw, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            let arg = arg.trim();
            match kw {
                "sysctl" => {
                    let (k, v) = arg
                        .split_once('=')
                        .ok_or_else(|| err(ln, "@sysctl needs KEY=VALUE"))?;
                    g.sysctls.push((k.trim().into(), v.trim().into()));
                }
                "connlabel" => {
                    let mut conf = String::new();
                    for w in arg.split_whitespace() {
                        let (bit, name) = w
                            .split_once(':')
                            .ok_or_else(|| err(ln, "@connlabel needs BIT:NAME words"))?;
                        let _ = writeln!(conf, "{bit} {name}");
                    }
                    g.connlabel = Some(conf);
                }
                "setup" | "setup?" => {
                    let args = split_words(arg)
                        .map_err(|e| err(ln, &e))?
                        .into_iter()
                        .map(|w| w.0)
                        .collect();
                    g.setup.push(SetupStep::Ct {
                        line: ln,
                        args,
                        may_fail: kw == "setup?",
                    });
                }
                "sh" => g.setup.push(SetupStep::Sh {
                    line: ln,
                    script: arg.to_string(),
                }),
                _ => return Err(err(ln, &format!("unknown directive @{kw}"))),
            }
            continue;
        }
        if line.trim_end() == "{" {
            if block.is_some() {
                return Err(err(ln, "nested { }"));
            }
            block = Some(Vec::new());
            block_line = ln;
            continue;
        }
        if line.trim_end() == "}" {
            let steps = block.take().ok_or_else(|| err(ln, "} without {"))?;
            if steps.is_empty() {
                return Err(err(ln, "empty { } block"));
            }
            g.units.push(Unit::Fresh(steps));
            continue;
        }
        if let Some(rest) = line.strip_prefix('&') {
            if block.is_some() {
                return Err(err(ln, "event case inside { } block"));
            }
            let (mut listener, consumed) = parse_step(rest, ln, &lines[i..], &fname)?;
            i += consumed;
            listener.order = if listener.order == Order::Sorted {
                Order::Sorted
            } else {
                Order::Ordered
            };
            let mut triggers = Vec::new();
            while i < lines.len() {
                let t = lines[i].trim_start();
                if let Some(script) = t.strip_prefix(">@sh ") {
                    triggers.push((i + 1, Trigger::Sh(script.trim().to_string())));
                    i += 1;
                } else if let Some(targs) = t.strip_prefix('>') {
                    let args = split_words(targs)
                        .map_err(|e| err(i + 1, &e))?
                        .into_iter()
                        .map(|w| w.0)
                        .collect();
                    triggers.push((i + 1, Trigger::Ct(args)));
                    i += 1;
                } else if t.starts_with('#') {
                    i += 1;
                } else {
                    break;
                }
            }
            g.units.push(Unit::Event(EventCase { listener, triggers }));
            continue;
        }
        let (mutating, rest) = match line.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, line),
        };
        let (mut step, consumed) = parse_step(rest, ln, &lines[i..], &fname)?;
        i += consumed;
        step.mutating = mutating;
        match block.as_mut() {
            Some(b) => b.push(step),
            None if mutating => g.units.push(Unit::Fresh(vec![step])),
            None => {
                if matches!(step.stdin, Stdin::Prev(_)) {
                    return Err(err(ln, "<<PREV is only meaningful inside a { } block"));
                }
                g.units.push(Unit::ReadOnly(step))
            }
        }
    }
    if block.is_some() {
        return Err(err(block_line, "unterminated { block"));
    }
    Ok(groups)
}

/// Parses one invocation line (without the leading `!`). `rest` are the lines after it (for
/// heredocs). Returns the step and how many following lines were consumed.
fn parse_step(text: &str, ln: usize, rest: &[&str], fname: &str) -> Result<(Step, usize), String> {
    let err = |m: &str| format!("{fname}:{ln}: {m}");
    let words = split_words(text).map_err(|e| err(&e))?;
    let mut step = Step {
        line: ln,
        raw: String::new(),
        args: Vec::new(),
        mutating: false,
        stdin: Stdin::None,
        order: Order::Auto,
        timeout: DEFAULT_TIMEOUT,
        settle: Duration::from_millis(300),
        divergent: false,
    };
    let mut consumed = 0;
    let mut nonl = false;
    let mut in_mods = true;
    let mut raw_end = text.len();
    let mut heredoc: Option<String> = None;
    let mut first_arg: Option<usize> = None;
    for (w, start, end, plain) in words {
        if in_mods && plain && w.starts_with('%') {
            match w.as_str() {
                "%sorted" => step.order = Order::Sorted,
                "%ordered" => step.order = Order::Ordered,
                "%nonl" => nonl = true,
                "%divergent" => step.divergent = true,
                _ => {
                    if let Some(v) = w.strip_prefix("%timeout=") {
                        step.timeout =
                            Duration::from_secs(v.parse().map_err(|_| err("bad %timeout"))?);
                    } else if let Some(v) = w.strip_prefix("%settle=") {
                        step.settle =
                            Duration::from_millis(v.parse().map_err(|_| err("bad %settle"))?);
                    } else {
                        return Err(err(&format!("unknown modifier {w}")));
                    }
                }
            }
            continue;
        }
        in_mods = false;
        if plain && w.starts_with("<<") {
            raw_end = start;
            let tag = &w[2..];
            if tag == "PREV" {
                let sed = text[end..].trim();
                step.stdin = Stdin::Prev(if sed.is_empty() {
                    None
                } else {
                    Some(sed.to_string())
                });
            } else {
                if tag.is_empty() {
                    return Err(err("empty heredoc tag"));
                }
                heredoc = Some(tag.to_string());
            }
            break;
        }
        if first_arg.is_none() {
            first_arg = Some(start);
        }
        step.args.push(w);
    }
    step.raw = first_arg
        .map(|f| text[f..raw_end.max(f)].trim().to_string())
        .unwrap_or_default();
    if let Some(tag) = heredoc {
        let mut body = String::new();
        let mut found = false;
        for l in rest {
            consumed += 1;
            if *l == tag {
                found = true;
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        if !found {
            return Err(err(&format!("heredoc <<{tag} not terminated")));
        }
        if nonl && body.ends_with('\n') {
            body.pop();
        }
        step.stdin = Stdin::Text(body.into_bytes());
    }
    Ok((step, consumed))
}

// ------------------------------------------------------------------------------------------
// Normalisation and comparison
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct NLine {
    /// original text (for display)
    orig: String,
    /// masked text (compared exactly)
    key: String,
    /// ticking values (compared with tolerance)
    vals: Vec<i64>,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

const L4_NAMES: &[&str] = &[
    "tcp", "udp", "udplite", "icmp", "icmpv6", "sctp", "gre", "dccp", "unknown",
];

/// The line `-V` prints, `conntrack v1.2.3 (anything)` and nothing else,
/// becomes `conntrack vX (X)`: ours names its implementation there. The
/// banner that starts every other message must be 1.4.7's, byte for byte.
fn mask_banner(s: &str) -> String {
    let version = s.strip_prefix("conntrack v").and_then(|after| {
        let vlen = after
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let tail = &after[vlen..];
        (vlen > 0 && tail.starts_with(" (") && tail.find(')') == Some(tail.len() - 1)).then_some(())
    });
    match version {
        Some(()) => "conntrack vX (X)".to_string(),
        None => s.to_string(),
    }
}

/// Replaces the content of every `<tag>...</tag>`; `tolerant` pushes the number to `vals`.
fn mask_xml(s: &str, tag: &str, tolerant: bool, vals: &mut Vec<i64>) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find(&open) {
        let inner_start = p + open.len();
        let Some(q) = rest[inner_start..].find(&close) else {
            break;
        };
        let inner = &rest[inner_start..inner_start + q];
        out.push_str(&rest[..inner_start]);
        if tolerant && is_digits(inner) {
            vals.push(inner.parse().unwrap_or(0));
            out.push('T');
        } else {
            out.push('X');
        }
        out.push_str(&close);
        rest = &rest[inner_start + q + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Masks `[start=...]` / `[stop=...]` (ctime text contains blanks).
fn mask_bracket(s: &str, key: &str) -> String {
    let open = format!("[{key}=");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find(&open) {
        let Some(q) = rest[p..].find(']') else { break };
        out.push_str(&rest[..p]);
        out.push_str(&open);
        out.push_str("X]");
        rest = &rest[p + q + 1..];
    }
    out.push_str(rest);
    out
}

/// `[123.456]\t` or `[123     .45    ]\t` at the start of a line.
fn mask_ts_prefix(s: &str) -> String {
    if let Some(r) = s.strip_prefix('[') {
        if let Some(end) = r.find("]\t") {
            let inner = &r[..end];
            if inner.contains('.')
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b' ')
            {
                return format!("[TS]\t{}", &r[end + 2..]);
            }
        }
    }
    s.to_string()
}

fn normalize_line(line: &str) -> NLine {
    let mut vals = Vec::new();
    let mut s = mask_banner(line);
    s = mask_ts_prefix(&s);
    s = mask_bracket(&s, "start");
    s = mask_bracket(&s, "stop");
    s = mask_xml(&s, "timeout", true, &mut vals);
    s = mask_xml(&s, "deltatime", true, &mut vals);
    s = mask_xml(&s, "id", false, &mut vals);
    s = mask_xml(&s, "start", false, &mut vals);
    s = mask_xml(&s, "stop", false, &mut vals);
    s = mask_xml(&s, "when", false, &mut vals);

    // token level: keep separators as they are
    let mut toks: Vec<(String, String)> = Vec::new(); // (leading separator, token)
    {
        let mut sep = String::new();
        let mut tok = String::new();
        for c in s.chars() {
            if c == ' ' {
                if !tok.is_empty() {
                    toks.push((std::mem::take(&mut sep), std::mem::take(&mut tok)));
                }
                sep.push(c);
            } else {
                tok.push(c);
            }
        }
        toks.push((sep, tok));
    }
    let has_src = s.contains("src=");
    // index of the timeout token of a plain conntrack line: NAME NUM NUM
    let mut timeout_idx = None;
    if has_src {
        for i in 0..toks.len().saturating_sub(2).min(8) {
            if L4_NAMES.contains(&toks[i].1.as_str())
                && is_digits(&toks[i + 1].1)
                && is_digits(&toks[i + 2].1)
            {
                timeout_idx = Some(i + 2);
                break;
            }
        }
        // expectation line: [TAG] NUM proto=N
        if timeout_idx.is_none() {
            for i in 0..toks.len().saturating_sub(1).min(4) {
                if is_digits(&toks[i].1) && toks[i + 1].1.starts_with("proto=") {
                    timeout_idx = Some(i);
                    break;
                }
            }
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut prev = String::new();
    for (i, (sep, tok)) in toks.iter().enumerate() {
        let mut t = tok.clone();
        let mut drop = false;
        if Some(i) == timeout_idx || (prev == "-t" && is_digits(tok)) {
            vals.push(tok.parse().unwrap_or(0));
            t = "T".into();
        } else if let Some(v) = tok.strip_prefix("delta-time=") {
            if is_digits(v) {
                vals.push(v.parse().unwrap_or(0));
                t = "delta-time=T".into();
            }
        } else if let Some(v) = tok.strip_prefix("portid=") {
            if is_digits(v) {
                t = "portid=P".into();
            }
        } else if tok.starts_with("progname=") {
            drop = true;
        } else if let Some(v) = tok.strip_prefix("id=") {
            if is_digits(v) && !prev.starts_with("code=") {
                t = "id=ID".into();
            }
        }
        if !drop {
            out.push_str(sep);
            out.push_str(&t);
        }
        prev = tok.clone();
    }
    NLine {
        orig: line.to_string(),
        key: out,
        vals,
    }
}

fn is_fixed_line(l: &str) -> bool {
    l.starts_with("<?xml")
        || matches!(
            l.trim_end(),
            "<conntrack>" | "</conntrack>" | "<expect>" | "</expect>"
        )
}

/// Splits into normalised lines; a missing final newline is recorded on the last line.
fn normalize(bytes: &[u8], sort: bool) -> Vec<NLine> {
    let text = String::from_utf8_lossy(bytes);
    if text.is_empty() {
        return Vec::new();
    }
    let mut parts: Vec<&str> = text.split('\n').collect();
    let complete = parts.last() == Some(&"");
    if complete {
        parts.pop();
    }
    let mut lines: Vec<NLine> = parts.iter().map(|l| normalize_line(l)).collect();
    if !complete {
        if let Some(last) = lines.last_mut() {
            last.key.push_str(" \u{23ce}(no newline at end)");
            last.orig.push_str(" \u{23ce}(no newline at end)");
        }
    }
    if sort {
        let mut start = 0;
        for i in 0..=lines.len() {
            if i == lines.len() || is_fixed_line(&lines[i].orig) {
                lines[start..i].sort_by(|a, b| a.key.cmp(&b.key).then(a.vals.cmp(&b.vals)));
                start = i + 1;
            }
        }
    }
    lines
}

fn lines_eq(a: &NLine, b: &NLine) -> bool {
    a.key == b.key
        && a.vals.len() == b.vals.len()
        && a.vals
            .iter()
            .zip(&b.vals)
            .all(|(x, y)| (x - y).abs() <= TOLERANCE)
}

fn show(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// Line diff (LCS). Returns None when equal.
fn diff_lines(exp: &[NLine], got: &[NLine]) -> Option<String> {
    if exp.len() == got.len() && exp.iter().zip(got).all(|(a, b)| lines_eq(a, b)) {
        return None;
    }
    let (n, m) = (exp.len(), got.len());
    let mut out = String::new();
    if n * m > 4_000_000 {
        for l in exp {
            let _ = writeln!(out, "    - {}", show(&l.orig));
        }
        for l in got {
            let _ = writeln!(out, "    + {}", show(&l.orig));
        }
        return Some(out);
    }
    let mut t = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if lines_eq(&exp[i], &got[j]) {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut shown = 0;
    while i < n || j < m {
        if shown > 200 {
            out.push_str("    ... (diff truncated)\n");
            break;
        }
        if i < n && j < m && lines_eq(&exp[i], &got[j]) {
            let _ = writeln!(out, "      {}", show(&got[j].orig));
            i += 1;
            j += 1;
        } else if j < m && (i == n || t[i][j + 1] >= t[i + 1][j]) {
            let _ = writeln!(out, "    + {}", show(&got[j].orig));
            j += 1;
        } else {
            let _ = writeln!(out, "    - {}", show(&exp[i].orig));
            i += 1;
        }
        shown += 1;
    }
    Some(out)
}

fn auto_sort(args: &[String]) -> bool {
    if args.is_empty() {
        return false;
    }
    !args.iter().any(|a| {
        matches!(
            a.as_str(),
            "-h" | "--help" | "-E" | "--event" | "-S" | "--stats" | "-V" | "--version"
        )
    })
}

/// Compares two results; returns a readable report of every differing stream.
fn compare(reference: &RunOutput, ours: &RunOutput, sort_stdout: bool) -> Option<String> {
    let mut rep = String::new();
    if let Some(d) = diff_lines(
        &normalize(&reference.stdout, sort_stdout),
        &normalize(&ours.stdout, sort_stdout),
    ) {
        let _ = write!(
            rep,
            "  stdout differs ({}; - reference, + ours):\n{d}",
            if sort_stdout {
                "lines sorted"
            } else {
                "in order"
            }
        );
    }
    if let Some(d) = diff_lines(
        &normalize(&reference.stderr, false),
        &normalize(&ours.stderr, false),
    ) {
        let _ = write!(rep, "  stderr differs (- reference, + ours):\n{d}");
    }
    if reference.status != ours.status {
        let _ = writeln!(
            rep,
            "  status differs: reference {}, ours {}",
            reference.status, ours.status
        );
    }
    (!rep.is_empty()).then_some(rep)
}

// ------------------------------------------------------------------------------------------
// Execution
// ------------------------------------------------------------------------------------------

struct Ctx {
    reference: String,
    /// PATH values that resolve `conntrack` to the reference / our binary
    ref_path: String,
    ours_path: String,
    cases_dir: PathBuf,
    tmp: PathBuf,
    only: Option<String>,
    /// 1: list every comparison; 2: also show the reference's output
    verbose: u8,
}

#[derive(Default)]
struct GroupResult {
    compared: usize,
    mismatches: usize,
    errors: usize,
    report: String,
}

struct Side {
    ns: NetNs,
    /// `PATH` whose first directory holds `conntrack` (a symlink to this side's binary): both
    /// binaries are started as plain `conntrack`, so `argv[0]` (printed in the usage text) is
    /// the same on both sides.
    path: String,
    prev_stdout: Vec<u8>,
}

struct Pair {
    r: Side,
    o: Side,
}

fn label(g: &Group, line: usize, raw: &str) -> String {
    format!("{}:{} [{}] {}", g.file, line, g.name, raw)
}

fn selected(ctx: &Ctx, g: &Group, step: &Step) -> bool {
    match &ctx.only {
        None => true,
        Some(f) => label(g, step.line, &step.raw).contains(f.as_str()),
    }
}

fn unit_selected(ctx: &Ctx, g: &Group, u: &Unit) -> bool {
    match u {
        Unit::ReadOnly(s) => selected(ctx, g, s),
        Unit::Fresh(steps) => steps.iter().any(|s| selected(ctx, g, s)),
        Unit::Event(e) => selected(ctx, g, &e.listener),
    }
}

fn make_ns(ctx: &Ctx, g: &Group, gi: usize) -> Result<NetNs, String> {
    let mut ns = NetNs::new("ctdiff")?;
    for (k, v) in &g.sysctls {
        ns.set_sysctl(k, v)?;
    }
    if let Some(conf) = &g.connlabel {
        let dir = ctx.tmp.join(format!("etc-{gi}"));
        let x = dir.join("xtables");
        std::fs::create_dir_all(&x).map_err(|e| format!("{}: {e}", x.display()))?;
        std::fs::write(x.join("connlabel.conf"), conf).map_err(|e| e.to_string())?;
        ns.set_etc_overlay(Some(dir));
    }
    Ok(ns)
}

fn setup_step(ctx: &Ctx, g: &Group, ns: &NetNs, s: &SetupStep) -> Result<(), String> {
    match s {
        SetupStep::Ct {
            line,
            args,
            may_fail,
        } => {
            // pinned to CPU 0: the per-CPU statistics of -S stay identical in both namespaces
            let mut argv = vec!["taskset", "-c", "0", ctx.reference.as_str()];
            argv.extend(args.iter().map(|a| a.as_str()));
            let out = ns.run(&argv, None, DEFAULT_TIMEOUT);
            if !*may_fail && !out.status.success() {
                return Err(format!(
                    "{}:{line}: setup `{}' failed: {} {}",
                    g.file,
                    args.join(" "),
                    out.status,
                    out.stderr_str().trim()
                ));
            }
        }
        SetupStep::Sh { line, script } => {
            let cases = ctx.cases_dir.to_string_lossy().into_owned();
            let out = ns.sh(
                script,
                &[
                    ("CT_REF", ctx.reference.as_str()),
                    ("CASES", cases.as_str()),
                ],
                Duration::from_secs(20),
            );
            if !out.status.success() {
                return Err(format!(
                    "{}:{line}: @sh `{script}' failed: {} {}{}",
                    g.file,
                    out.status,
                    out.stdout_str().trim(),
                    out.stderr_str().trim()
                ));
            }
        }
    }
    Ok(())
}

fn make_pair(ctx: &Ctx, g: &Group, gi: usize) -> Result<Pair, String> {
    let r = make_ns(ctx, g, gi)?;
    let o = make_ns(ctx, g, gi)?;
    // Setup steps alternate between the two namespaces so that equal entries are created
    // within milliseconds of each other (their timeouts tick in step).
    for s in &g.setup {
        setup_step(ctx, g, &r, s)?;
        setup_step(ctx, g, &o, s)?;
    }
    Ok(Pair {
        r: Side {
            ns: r,
            path: ctx.ref_path.clone(),
            prev_stdout: Vec::new(),
        },
        o: Side {
            ns: o,
            path: ctx.ours_path.clone(),
            prev_stdout: Vec::new(),
        },
    })
}

fn sed(input: &[u8], script: &str) -> Vec<u8> {
    let mut c = Command::new("sed");
    c.args(["-e", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let Ok(mut child) = c.spawn() else {
        return b"[harness: cannot run sed]".to_vec();
    };
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&data);
    });
    let out = child
        .wait_with_output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let _ = w.join();
    out
}

fn run_step(ctx: &Ctx, side: &mut Side, step: &Step, gi: usize) -> RunOutput {
    let mut args = step.args.clone();
    let mut stdin: Option<Vec<u8>> = match &step.stdin {
        Stdin::None => None,
        Stdin::Text(t) => Some(t.clone()),
        Stdin::Prev(None) => Some(side.prev_stdout.clone()),
        Stdin::Prev(Some(script)) => Some(sed(&side.prev_stdout, script)),
    };
    if args.iter().any(|a| a.contains("@FILE@")) {
        let f = ctx.tmp.join(format!("stdin-{gi}-{}.txt", step.line));
        let _ = std::fs::write(&f, stdin.take().unwrap_or_default());
        let fs = f.to_string_lossy().into_owned();
        for a in &mut args {
            *a = a.replace("@FILE@", &fs);
        }
    }
    let mut argv = vec!["conntrack"];
    argv.extend(args.iter().map(|a| a.as_str()));
    let out = side.ns.run_env(
        &argv,
        stdin.as_deref(),
        step.timeout,
        &[("PATH", &side.path)],
    );
    side.prev_stdout = out.stdout.clone();
    out
}

/// Table dump used to compare the two sides after a modifying invocation. Every `-L` of the
/// conntrack table walks the kernel's whole (global) hash table, so only one such walk is
/// done; `-o extended` shows everything but the FIXED_TIMEOUT/EXPECTED status bits (cases
/// that care list with `-o save` themselves).
const STATE_SCRIPT: &str = "for a in '-L -o extended' '-L expect' '-L dying'; do \
     echo \"### conntrack $a\"; \"$0\" $a 2>&1; echo \"### exit $?\"; done";

fn state_dump(ctx: &Ctx, side: &Side, labels: bool) -> RunOutput {
    let script = if labels {
        STATE_SCRIPT.replace("-o extended'", "-o extended,labels'")
    } else {
        STATE_SCRIPT.to_string()
    };
    side.ns.run(
        &["sh", "-c", &script, ctx.reference.as_str()],
        None,
        DEFAULT_TIMEOUT,
    )
}

/// State dumps are sorted per section (between the `###` lines).
fn normalize_state(out: &RunOutput) -> RunOutput {
    let text = String::from_utf8_lossy(&out.stdout);
    let mut res = String::new();
    let mut section: Vec<&str> = Vec::new();
    let flush = |section: &mut Vec<&str>, res: &mut String| {
        // conntrack entries in a section: order-free; compare through normalize() later, so
        // simply sort by the masked key here
        section.sort_by_key(|l| normalize_line(l).key);
        for l in section.drain(..) {
            res.push_str(l);
            res.push('\n');
        }
    };
    for l in text.lines() {
        if l.starts_with("### ") {
            flush(&mut section, &mut res);
            res.push_str(l);
            res.push('\n');
        } else {
            section.push(l);
        }
    }
    flush(&mut section, &mut res);
    RunOutput {
        stdout: res.into_bytes(),
        stderr: out.stderr.clone(),
        status: out.status,
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    ctx: &Ctx,
    res: &mut GroupResult,
    g: &Group,
    step: &Step,
    what: &str,
    reference: &RunOutput,
    ours: &RunOutput,
    sort: bool,
) {
    res.compared += 1;
    let cmd = format!(
        "conntrack {}",
        step.args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    match compare(reference, ours, sort) {
        Some(rep) => {
            let kind = if step.divergent {
                "KNOWN DIVERGENCE (not counted)"
            } else {
                res.mismatches += 1;
                "MISMATCH"
            };
            let _ = writeln!(
                res.report,
                "=== {kind} {}:{} [{}]{what}\n  $ {cmd}",
                g.file, step.line, g.name
            );
            if let Stdin::Text(t) = &step.stdin {
                let _ = writeln!(
                    res.report,
                    "  stdin: {}",
                    show(&String::from_utf8_lossy(t)).replace("\\x0a", "\\n")
                );
            }
            res.report.push_str(&rep);
        }
        None if ctx.verbose > 0 => {
            let _ = writeln!(
                res.report,
                "ok {}:{} [{}]{what} $ {cmd}  ({})",
                g.file, step.line, g.name, reference.status
            );
            if ctx.verbose > 1 {
                for (name, bytes) in [("out", &reference.stdout), ("err", &reference.stderr)] {
                    for l in String::from_utf8_lossy(bytes).lines() {
                        let _ = writeln!(res.report, "   {name}| {}", show(l));
                    }
                }
            }
        }
        None => {}
    }
}

fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:,=@%+[]".contains(&b))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

fn error(res: &mut GroupResult, g: &Group, msg: &str) {
    res.errors += 1;
    let _ = writeln!(
        res.report,
        "=== HARNESS ERROR {}:{} [{}]: {msg}",
        g.file, g.line, g.name
    );
}

/// Normalised, sorted state dump (for "is this pair still as freshly set up?").
fn state_lines(out: &RunOutput) -> Vec<NLine> {
    normalize(&normalize_state(out).stdout, false)
}

fn same_lines(a: &[NLine], b: &[NLine]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| lines_eq(x, y))
}

/// Same entries, ticking values (timeouts) ignored.
fn same_keys(a: &[NLine], b: &[NLine]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.key == y.key)
}

/// A pair of namespaces whose tables are still exactly as the group's setup left them;
/// reused by the next `!`/`{}` unit instead of building a new pair.
struct Spare {
    pair: Pair,
    pristine: Vec<NLine>,
}

fn run_fresh(
    ctx: &Ctx,
    g: &Group,
    gi: usize,
    steps: &[Step],
    res: &mut GroupResult,
    spare: &mut Option<Spare>,
    pristine_cache: &mut Option<Vec<NLine>>,
) {
    let labels = g.connlabel.is_some();
    let (mut pair, pristine) = match spare.take() {
        Some(s) => (s.pair, s.pristine),
        None => match make_pair(ctx, g, gi) {
            Ok(p) => {
                // the table right after the setup is the same for every pair of the group
                // (timeouts aside), so it is dumped once per group
                let pristine = pristine_cache
                    .get_or_insert_with(|| state_lines(&state_dump(ctx, &p.r, labels)))
                    .clone();
                (p, pristine)
            }
            Err(e) => return error(res, g, &e),
        },
    };
    pair.r.prev_stdout.clear();
    pair.o.prev_stdout.clear();
    let mut last_state = None;
    let mut dirty = false;
    for step in steps {
        let r = run_step(ctx, &mut pair.r, step, gi);
        let o = run_step(ctx, &mut pair.o, step, gi);
        let sort = match step.order {
            Order::Auto => auto_sort(&step.args),
            o => o == Order::Sorted,
        };
        record(ctx, res, g, step, "", &r, &o, sort);
        // Both rejected the command line (exit 2, PARAMETER_PROBLEM): nothing reached the kernel,
        // so the (slow: full hash-table walks) table comparison is skipped.
        let both_rejected = r.status == o.status && r.status == common::netns::Exit::Code(2);
        if step.mutating && !both_rejected {
            let rs = state_dump(ctx, &pair.r, labels);
            let os = state_dump(ctx, &pair.o, labels);
            record(
                ctx,
                res,
                g,
                step,
                " (table afterwards)",
                &normalize_state(&rs),
                &normalize_state(&os),
                false,
            );
            last_state = Some((rs, os));
            dirty = true;
        } else if !both_rejected {
            last_state = None;
            dirty = true;
        }
    }
    if !dirty && last_state.is_none() {
        // only rejected command lines: the pair is untouched
        *spare = Some(Spare { pair, pristine });
        return;
    }
    let (rs, os) = match last_state {
        Some(x) => x,
        None => (
            state_dump(ctx, &pair.r, labels),
            state_dump(ctx, &pair.o, labels),
        ),
    };
    let (rl, ol) = (state_lines(&rs), state_lines(&os));
    if same_lines(&rl, &ol) && same_keys(&rl, &pristine) && same_keys(&ol, &pristine) {
        *spare = Some(Spare { pair, pristine });
    }
}

fn run_event(ctx: &Ctx, g: &Group, gi: usize, ev: &EventCase, res: &mut GroupResult) {
    let pair = match make_pair(ctx, g, gi) {
        Ok(p) => p,
        Err(e) => return error(res, g, &e),
    };
    let step = &ev.listener;
    let spawn = |side: &Side| {
        let mut argv = vec!["conntrack"];
        argv.extend(step.args.iter().map(|a| a.as_str()));
        side.ns.spawn_env(&argv, None, &[("PATH", &side.path)])
    };
    let (lr, lo) = match (spawn(&pair.r), spawn(&pair.o)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error(res, g, &e),
    };
    thread::sleep(step.settle);
    let cases = ctx.cases_dir.to_string_lossy().into_owned();
    let envs = [
        ("CT_REF", ctx.reference.as_str()),
        ("CASES", cases.as_str()),
    ];
    for (line, trig) in &ev.triggers {
        let (a, b, what) = match trig {
            Trigger::Ct(args) => {
                let mut argv = vec!["taskset", "-c", "0", ctx.reference.as_str()];
                argv.extend(args.iter().map(|a| a.as_str()));
                (
                    pair.r.ns.run(&argv, None, DEFAULT_TIMEOUT),
                    pair.o.ns.run(&argv, None, DEFAULT_TIMEOUT),
                    args.join(" "),
                )
            }
            Trigger::Sh(script) => (
                pair.r.ns.sh(script, &envs, DEFAULT_TIMEOUT),
                pair.o.ns.sh(script, &envs, DEFAULT_TIMEOUT),
                script.clone(),
            ),
        };
        if a.status != b.status {
            error(
                res,
                g,
                &format!(
                    "line {line}: trigger `{what}' behaved differently in the two namespaces \
                     ({} / {})",
                    a.status, b.status
                ),
            );
        }
    }
    thread::sleep(step.settle);
    lr.signal(libc::SIGINT);
    lo.signal(libc::SIGINT);
    let r = lr.finish(Duration::from_secs(5));
    let o = lo.finish(Duration::from_secs(5));
    record(
        ctx,
        res,
        g,
        step,
        " (events)",
        &r,
        &o,
        step.order == Order::Sorted,
    );
}

fn run_group(ctx: &Ctx, g: &Group, gi: usize) -> GroupResult {
    let mut res = GroupResult::default();
    let mut shared: Option<Pair> = None;
    let mut spare: Option<Spare> = None;
    let mut pristine_cache: Option<Vec<NLine>> = None;
    for u in &g.units {
        if !unit_selected(ctx, g, u) {
            continue;
        }
        match u {
            Unit::ReadOnly(step) => {
                if shared.is_none() {
                    match make_pair(ctx, g, gi) {
                        Ok(p) => shared = Some(p),
                        Err(e) => {
                            error(&mut res, g, &e);
                            return res;
                        }
                    }
                }
                let p = shared.as_mut().unwrap();
                let r = run_step(ctx, &mut p.r, step, gi);
                let o = run_step(ctx, &mut p.o, step, gi);
                let sort = match step.order {
                    Order::Auto => auto_sort(&step.args),
                    o => o == Order::Sorted,
                };
                record(ctx, &mut res, g, step, "", &r, &o, sort);
            }
            Unit::Fresh(steps) => {
                run_fresh(ctx, g, gi, steps, &mut res, &mut spare, &mut pristine_cache)
            }
            Unit::Event(ev) => run_event(ctx, g, gi, ev, &mut res),
        }
    }
    res
}

fn load_corpus(dir: &Path) -> Result<Vec<Group>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    let mut groups = Vec::new();
    for f in files {
        groups.extend(parse_file(&f)?);
    }
    Ok(groups)
}

#[test]
fn corpus_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let groups = load_corpus(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!groups.is_empty(), "no case files in {}", dir.display());
}

#[test]
fn normalisation() {
    let l = normalize_line(
        "ipv4     2 tcp      6 431998 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 \
         src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 [ASSURED] mark=0 delta-time=3 \
         [start=Mon Nov 30 09:36:24 2026] use=1 id=888323381",
    );
    assert_eq!(
        l.key,
        "ipv4     2 tcp      6 T ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 \
         src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 [ASSURED] mark=0 delta-time=T \
         [start=X] use=1 id=ID"
    );
    assert_eq!(l.vals, vec![431998, 3]);
    let l = normalize_line(
        "icmp     1 29 src=1.1.1.1 dst=2.2.2.2 type=8 code=0 id=1226 [UNREPLIED] mark=0 \
         [USERSPACE] portid=5630 progname=conntrack",
    );
    assert_eq!(
        l.key,
        "icmp     1 T src=1.1.1.1 dst=2.2.2.2 type=8 code=0 id=1226 [UNREPLIED] mark=0 \
         [USERSPACE] portid=P"
    );
    let l = normalize_line("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.");
    assert_eq!(
        l.key,
        "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown."
    );
    // (messages keep their banner: ours must print 1.4.7's)
    let l = normalize_line("conntrack v1.4.7 (ct-tools 0.1.0): 3 flow entries have been shown.");
    assert_ne!(
        l.key,
        normalize_line("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.").key
    );
    // the -V line alone is masked
    assert_eq!(
        normalize_line("conntrack v1.4.7 (ct-tools 0.1.0)").key,
        "conntrack vX (X)"
    );
    assert_eq!(
        normalize_line("conntrack v1.4.7 (conntrack-tools)").key,
        "conntrack vX (X)"
    );
    let l = normalize_line("-A -t 95 -u SEEN_REPLY -s 1.1.1.1 -p tcp");
    assert_eq!(l.key, "-A -t T -u SEEN_REPLY -s 1.1.1.1 -p tcp");
    let l = normalize_line("[1796031388.139232]\t    [NEW] 300 proto=6 src=10.9.9.2 dst=10.9.9.1");
    assert_eq!(l.key, "[TS]\t    [NEW] T proto=6 src=10.9.9.2 dst=10.9.9.1");
    let l = normalize_line("<meta><timeout>99</timeout><id>123</id><deltatime>0</deltatime>");
    assert_eq!(
        l.key,
        "<meta><timeout>T</timeout><id>X</id><deltatime>T</deltatime>"
    );
    assert!(lines_eq(
        &normalize_line("tcp      6 99 ESTABLISHED src=1.1.1.1"),
        &normalize_line("tcp      6 98 ESTABLISHED src=1.1.1.1")
    ));
    assert!(!lines_eq(
        &normalize_line("tcp      6 99 ESTABLISHED src=1.1.1.1"),
        &normalize_line("tcp      6 50 ESTABLISHED src=1.1.1.1")
    ));
    let w = split_words(r#"-L 'a b' "c\"d" e\ f '' <<EOF"#).unwrap();
    let words: Vec<&str> = w.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(words, ["-L", "a b", "c\"d", "e f", "", "<<EOF"]);
}

#[test]
fn differential() {
    let reference = std::env::var("CT_REF").unwrap_or_else(|_| REF_DEFAULT.to_string());
    let ours =
        std::env::var("CT_OURS").unwrap_or_else(|_| env!("CARGO_BIN_EXE_conntrack").to_string());
    if find_tool(&reference).is_none() {
        eprintln!("SKIP: reference tool {reference} not found");
        return;
    }
    if !common::netns::skip_unless_root_and(&[
        reference.as_str(),
        "sed",
        "unshare",
        "bash",
        "taskset",
    ]) {
        return;
    }
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let groups = load_corpus(&cases_dir).unwrap_or_else(|e| panic!("{e}"));
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let tmp = std::env::temp_dir().join(format!(
        "ct-differential-{}-{:x}",
        std::process::id(),
        h.finish() as u32
    ));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let path_for = |name: &str, bin: &str| {
        let dir = tmp.join(name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let target = std::fs::canonicalize(bin).unwrap_or_else(|_| PathBuf::from(bin));
        std::os::unix::fs::symlink(&target, dir.join("conntrack")).expect("symlink");
        format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        )
    };
    let ctx = Ctx {
        ref_path: path_for("ref-bin", &reference),
        ours_path: path_for("ours-bin", &ours),
        reference,
        cases_dir,
        tmp: tmp.clone(),
        only: std::env::var("CT_DIFF_ONLY").ok().filter(|s| !s.is_empty()),
        verbose: std::env::var("CT_DIFF_VERBOSE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    let jobs: usize = std::env::var("CT_DIFF_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .max(1);
    let repeat: usize = std::env::var("CT_DIFF_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let started = Instant::now();
    let work: Vec<(usize, &Group)> = (0..repeat)
        .flat_map(|_| groups.iter().enumerate())
        .filter(|(_, g)| g.units.iter().any(|u| unit_selected(&ctx, g, u)))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, GroupResult)>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..jobs.min(work.len().max(1)) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some((gi, g)) = work.get(k) else { break };
                let r = run_group(&ctx, g, *gi);
                results.lock().unwrap().push((k, r));
            });
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let (mut compared, mut mismatches, mut errors) = (0, 0, 0);
    for (_, r) in &results {
        compared += r.compared;
        mismatches += r.mismatches;
        errors += r.errors;
        if !r.report.is_empty() {
            eprint!("{}", r.report);
        }
    }
    eprintln!(
        "differential: reference {} vs ours {}: {} groups, {} comparisons, {} mismatches, \
         {} harness errors, {:.1}s",
        ctx.reference,
        ours,
        work.len(),
        compared,
        mismatches,
        errors,
        started.elapsed().as_secs_f64()
    );
    assert!(
        mismatches == 0 && errors == 0,
        "{mismatches} mismatching comparisons and {errors} harness errors (see above)"
    );
}
