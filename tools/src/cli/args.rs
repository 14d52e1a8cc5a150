//! `conntrack`'s command line: the option table, the parse loop and the
//! checks that follow it, in the order conntrack 1.4.7 makes them, so that
//! the same invocation gets the same error (text and exit status).

use std::io::Write;
use std::net::IpAddr;

use ct_core::flow::{Labels, AF_INET, AF_INET6, AF_UNSPEC};
use ct_core::proto::*;

use super::cparse::{atoi, atol, parse_inetaddr, strtol, strtoul};
use super::getopt::{Getopt, Got, HasArg, LongOpt};
use super::labels::LabelMap;
use super::protos::{self, cmd, Kind, POpt, ProtoDef};
use super::template::{TTuple, Template};

/// Option bits (`enum ct_options`).
pub mod opt {
    pub const ORIG_SRC: u32 = 1 << 0;
    pub const ORIG_DST: u32 = 1 << 1;
    pub const ORIG: u32 = ORIG_SRC | ORIG_DST;
    pub const REPL_SRC: u32 = 1 << 2;
    pub const REPL_DST: u32 = 1 << 3;
    pub const REPL: u32 = REPL_SRC | REPL_DST;
    pub const PROTO: u32 = 1 << 4;
    pub const TUPLE_ORIG: u32 = ORIG | PROTO;
    pub const TUPLE_REPL: u32 = REPL | PROTO;
    pub const TIMEOUT: u32 = 1 << 5;
    pub const STATUS: u32 = 1 << 6;
    pub const ZERO: u32 = 1 << 7;
    pub const EVENT_MASK: u32 = 1 << 8;
    pub const EXP_SRC: u32 = 1 << 9;
    pub const EXP_DST: u32 = 1 << 10;
    pub const MASK_SRC: u32 = 1 << 11;
    pub const MASK_DST: u32 = 1 << 12;
    pub const NATRANGE: u32 = 1 << 13;
    pub const MARK: u32 = 1 << 14;
    pub const ID: u32 = 1 << 15;
    pub const FAMILY: u32 = 1 << 16;
    pub const SRC_NAT: u32 = 1 << 17;
    pub const DST_NAT: u32 = 1 << 18;
    pub const OUTPUT: u32 = 1 << 19;
    pub const SECMARK: u32 = 1 << 20;
    pub const BUFFERSIZE: u32 = 1 << 21;
    pub const ANY_NAT: u32 = 1 << 22;
    pub const ZONE: u32 = 1 << 23;
    pub const LABEL: u32 = 1 << 24;
    pub const ADD_LABEL: u32 = 1 << 25;
    pub const DEL_LABEL: u32 = 1 << 26;
    pub const ORIG_ZONE: u32 = 1 << 27;
    pub const REPL_ZONE: u32 = 1 << 28;
    pub const NUMBER: usize = 29;
    /// Options that make `-L`/`-D`/`-E` compare entries with the template.
    pub const COMPARISON: u32 =
        PROTO | ORIG | REPL | MARK | SECMARK | STATUS | ID | ZONE | LABEL | ORIG_ZONE | REPL_ZONE;
}

/// Output format bits (`-o`).
pub mod out {
    pub const XML: u32 = 1 << 0;
    pub const EXT: u32 = 1 << 1;
    pub const TMS: u32 = 1 << 2;
    pub const ID: u32 = 1 << 3;
    pub const KTMS: u32 = 1 << 4;
    pub const CL: u32 = 1 << 5;
    pub const SAVE: u32 = 1 << 6;
    /// `-o json`: our extension (one JSON object per line).
    pub const JSON: u32 = 1 << 7;
}

/// Event mask bits (`-e`).
pub mod ev {
    pub const NEW: u32 = 1;
    pub const UPD: u32 = 2;
    pub const DEL: u32 = 4;
    pub const ALL: u32 = 7;
}

const OPTFLAGS: [&str; opt::NUMBER] = [
    "src",
    "dst",
    "reply-src",
    "reply-dst",
    "protonum",
    "timeout",
    "status",
    "zero",
    "event-mask",
    "tuple-src",
    "tuple-dst",
    "mask-src",
    "mask-dst",
    "nat-range",
    "mark",
    "id",
    "family",
    "src-nat",
    "dst-nat",
    "output",
    "secmark",
    "buffer-size",
    "any-nat",
    "zone",
    "label",
    "label-add",
    "label-del",
    "orig-zone",
    "reply-zone",
];

/// `commands_v_options`: 0 illegal, 1 required, 2 optional, 3 coupled.
#[rustfmt::skip]
const COMMANDS_V_OPTIONS: [[u8; opt::NUMBER]; cmd::NUMBER] = [
    /* s d r q p t u z e [ ] { } a m i f n g o c b j w l < > ( ) */
    [2,2,2,2,2,0,2,2,0,0,0,2,2,0,2,0,2,2,2,2,2,0,2,2,2,0,0,2,2], // CT_LIST
    [3,3,3,3,1,1,2,0,0,0,0,0,0,2,2,0,0,2,2,0,0,0,0,2,0,2,0,2,2], // CT_CREATE
    [2,2,2,2,2,2,2,0,0,0,0,2,2,0,2,2,2,2,2,2,0,0,0,0,2,2,2,0,0], // CT_UPDATE
    [2,2,2,2,2,2,2,0,0,0,0,2,2,0,2,2,2,2,2,2,0,0,0,2,2,0,0,2,2], // CT_DELETE
    [3,3,3,3,1,0,0,0,0,0,0,0,0,0,0,2,0,0,0,2,0,0,0,0,2,0,0,0,0], // CT_GET
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0], // CT_FLUSH
    [2,2,2,2,2,0,0,0,2,0,0,2,2,0,2,0,2,2,2,2,2,2,2,2,2,0,0,2,2], // CT_EVENT
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // CT_VERSION
    [0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // CT_HELP
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,2,0,0,0,0,0,0,0,0,0], // EXP_LIST
    [1,1,2,2,1,1,2,0,0,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // EXP_CREATE
    [1,1,2,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // EXP_DELETE
    [1,1,2,2,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // EXP_GET
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // EXP_FLUSH
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0], // EXP_EVENT
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // CT_COUNT
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // EXP_COUNT
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // CT_STATS
    [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], // EXP_STATS
    [3,3,3,3,1,1,2,0,0,0,0,0,0,2,2,0,0,2,2,0,0,0,0,2,0,2,0,2,2], // CT_ADD
];

const fn lo(name: &'static str, has_arg: HasArg, val: char) -> LongOpt {
    LongOpt {
        name,
        has_arg,
        val: val as i32,
    }
}

const ORIGINAL_OPTS: &[LongOpt] = &[
    lo("dump", HasArg::Optional, 'L'),
    lo("create", HasArg::Optional, 'I'),
    lo("add", HasArg::Optional, 'A'),
    lo("delete", HasArg::Optional, 'D'),
    lo("update", HasArg::Optional, 'U'),
    lo("get", HasArg::Optional, 'G'),
    lo("flush", HasArg::Optional, 'F'),
    lo("event", HasArg::Optional, 'E'),
    lo("counter", HasArg::Optional, 'C'),
    lo("stats", HasArg::No, 'S'),
    lo("version", HasArg::No, 'V'),
    lo("help", HasArg::No, 'h'),
    lo("orig-src", HasArg::Required, 's'),
    lo("src", HasArg::Required, 's'),
    lo("orig-dst", HasArg::Required, 'd'),
    lo("dst", HasArg::Required, 'd'),
    lo("reply-src", HasArg::Required, 'r'),
    lo("reply-dst", HasArg::Required, 'q'),
    lo("protonum", HasArg::Required, 'p'),
    lo("timeout", HasArg::Required, 't'),
    lo("status", HasArg::Required, 'u'),
    lo("zero", HasArg::No, 'z'),
    lo("event-mask", HasArg::Required, 'e'),
    lo("tuple-src", HasArg::Required, '['),
    lo("tuple-dst", HasArg::Required, ']'),
    lo("mask-src", HasArg::Required, '{'),
    lo("mask-dst", HasArg::Required, '}'),
    lo("nat-range", HasArg::Required, 'a'),
    lo("mark", HasArg::Required, 'm'),
    lo("secmark", HasArg::Required, 'c'),
    lo("id", HasArg::Optional, 'i'),
    lo("family", HasArg::Required, 'f'),
    lo("src-nat", HasArg::Optional, 'n'),
    lo("dst-nat", HasArg::Optional, 'g'),
    lo("output", HasArg::Required, 'o'),
    lo("buffer-size", HasArg::Required, 'b'),
    lo("any-nat", HasArg::Optional, 'j'),
    lo("zone", HasArg::Required, 'w'),
    lo("label", HasArg::Required, 'l'),
    lo("label-add", HasArg::Required, '<'),
    lo("label-del", HasArg::Optional, '>'),
    lo("orig-zone", HasArg::Required, '('),
    lo("reply-zone", HasArg::Required, ')'),
];

/// conntrack 1.4.7's short option string.
const GETOPT_STR: &str =
    ":L::I::U::D::G::E::F::A::hVs:d:r:q:p:t:u:e:a:z[:]:{:}:m:i:f:o:n::g::c:b:C::Sj::w:l:<:>::(:):";

/// Protocol option values start here (`val = PROTO_BASE * k + bit`).
const PROTO_BASE: i32 = 256;

/// Which table a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Conntrack,
    Expect,
    Dying,
    Unconfirmed,
}

/// Exit status classes of the C tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `OTHER_PROBLEM` (1).
    Other = 1,
    /// `PARAMETER_PROBLEM` (2): also prints the "Try" line.
    Parameter = 2,
}

/// An error that ends the program (`exit_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub exit: Exit,
    pub msg: String,
}

impl CliError {
    pub fn param(msg: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Parameter,
            msg: msg.into(),
        }
    }
    pub fn other(msg: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Other,
            msg: msg.into(),
        }
    }
}

/// A parsed command line (`struct ct_cmd`).
#[derive(Debug, Clone)]
pub struct Cmd {
    /// Command bitmask (0 = none).
    pub command: u32,
    /// Command index (`bit2cmd`).
    pub cmd: usize,
    pub table: Table,
    pub options: u32,
    pub family: u8,
    pub protonum: u8,
    pub proto: Option<&'static ProtoDef>,
    pub event_mask: u32,
    pub bufsize: usize,
    pub output: u32,
    pub tmpl: Template,
    /// Expectation tuple (`--tuple-src/dst`, `--tuple-port-*`).
    pub exptuple: TTuple,
    /// Mask object (`--mask-*`, CIDR, `--mask-port-*`).
    pub mask: TTuple,
    /// `-m` value/mask for userspace filtering and updates.
    pub mark: (u32, u32),
    pub filter_mark_kernel: Option<(u32, u32)>,
    pub filter_status_kernel: Option<(u32, u32)>,
    pub label: Option<Labels>,
    pub label_modify: Option<Labels>,
    pub labelmap: Option<LabelMap>,
    /// argv[0], printed in the usage text.
    pub progname: String,
}

impl Cmd {
    pub fn has(&self, o: u32) -> bool {
        self.options & o != 0
    }
    pub fn is(&self, c: usize) -> bool {
        self.command == 1 << c
    }
}

fn tolower_eq_prefix(word: &str, param: &str) -> bool {
    // strncasecmp(word, param, strlen(word)) == 0
    let w = word.as_bytes();
    let p = param.as_bytes();
    for (i, &c) in w.iter().enumerate() {
        match p.get(i) {
            Some(&pc) if pc.eq_ignore_ascii_case(&c) => {}
            _ => return false,
        }
    }
    true
}

const STATUS_PARAMS: &[(&str, u32)] = &[
    ("ASSURED", status::ASSURED),
    ("SEEN_REPLY", status::SEEN_REPLY),
    ("UNSET", 0),
    ("FIXED_TIMEOUT", status::FIXED_TIMEOUT),
    ("EXPECTED", status::EXPECTED),
    ("OFFLOAD", status::OFFLOAD),
    ("HW_OFFLOAD", status::HW_OFFLOAD),
];
const EVENT_PARAMS: &[(&str, u32)] = &[
    ("ALL", ev::ALL),
    ("NEW", ev::NEW),
    ("UPDATES", ev::UPD),
    ("DESTROY", ev::DEL),
];
const OUTPUT_PARAMS: &[(&str, u32)] = &[
    ("xml", out::XML),
    ("extended", out::EXT),
    ("timestamp", out::TMS),
    ("id", out::ID),
    ("ktimestamp", out::KTMS),
    ("labels", out::CL),
    ("userspace", 0),
    ("save", out::SAVE),
    ("json", out::JSON),
];

/// `do_parse_parameter`: one word (of `len` bytes) against a table.
fn parse_word(word: &str, table: &[(&str, u32)], value: &mut u32, err: &mut dyn Write) -> bool {
    if tolower_eq_prefix(word, "SRC_NAT") {
        let _ = writeln!(err, "WARNING: ignoring SRC_NAT, use --src-nat instead");
        return true;
    }
    if tolower_eq_prefix(word, "DST_NAT") {
        let _ = writeln!(err, "WARNING: ignoring DST_NAT, use --dst-nat instead");
        return true;
    }
    for (name, v) in table {
        if tolower_eq_prefix(word, name) {
            *value |= v;
            return true;
        }
    }
    false
}

fn bad_param(rest: &str) -> CliError {
    CliError::param(format!("Bad parameter `{rest}'"))
}

/// `parse_parameter`: a comma list.
fn parse_list(
    arg: &str,
    table: &[(&str, u32)],
    value: &mut u32,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let mut rest = arg;
    while let Some(i) = rest.find(',') {
        if i == 0 || !parse_word(&rest[..i], table, value, err) {
            return Err(bad_param(rest));
        }
        rest = &rest[i + 1..];
    }
    if rest.is_empty() || !parse_word(rest, table, value, err) {
        return Err(bad_param(rest));
    }
    Ok(())
}

/// `parse_parameter_mask`: the `-u` list with `!NAME` and `UNREPLIED`.
fn parse_status(
    arg: &str,
    status: &mut u32,
    mask: &mut u32,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let mut rest = arg;
    loop {
        let comma = rest.find(',');
        if comma == Some(0) {
            return Err(bad_param(rest));
        }
        let negated = rest.starts_with('!');
        if negated {
            rest = &rest[1..];
        }
        let end = comma.map(|c| c - negated as usize);
        if end == Some(0) {
            return Err(bad_param(rest));
        }
        let word = match end {
            Some(e) => &rest[..e],
            None => rest,
        };
        if !negated && rest.starts_with("UNREPLIED") {
            *mask |= status::SEEN_REPLY;
        } else {
            let target = if negated { &mut *mask } else { &mut *status };
            if word.is_empty() || !parse_word(word, STATUS_PARAMS, target, err) {
                return Err(bad_param(rest));
            }
        }
        match end {
            Some(e) => rest = &rest[e + 1..],
            None => return Ok(()),
        }
    }
}

/// Parses an address option argument (`parse_addr`): address family,
/// value and the prefix length (-1 none, -2 invalid).
fn parse_addr(arg: &str) -> Option<(IpAddr, i64)> {
    // Copied into a 46-byte buffer (INET6_ADDRSTRLEN) and truncated.
    let mut buf: &str = arg;
    if buf.len() > 45 {
        let mut n = 45;
        while !buf.is_char_boundary(n) {
            n -= 1;
        }
        buf = &buf[..n];
    }
    let mut mask = -1i64;
    let mut addr_part = buf;
    if let Some(slash) = buf.find('/') {
        let tail = &buf[slash + 1..];
        let (v, end) = strtol(tail, 10);
        mask = if v < 0 || end != tail.len() { -2 } else { v };
        addr_part = &buf[..slash];
    }
    let a = parse_inetaddr(addr_part)?;
    match a {
        IpAddr::V4(_) if mask > 32 => mask = -2,
        IpAddr::V6(_) if mask > 128 => mask = -2,
        _ => {}
    }
    Some((a, mask))
}

fn netmask(a: IpAddr, bits: i64) -> IpAddr {
    match a {
        IpAddr::V4(_) => {
            let m = if bits <= 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            IpAddr::V4(m.into())
        }
        IpAddr::V6(_) => {
            let m = if bits <= 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            IpAddr::V6(m.into())
        }
    }
}

fn family_of(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn set_family(family: &mut u8, new: u8) -> Result<(), CliError> {
    if *family == AF_UNSPEC {
        *family = new;
        Ok(())
    } else if *family != new {
        Err(CliError::param("mismatched address family"))
    } else {
        Ok(())
    }
}

/// `split_address_and_port` for `-n/-g/-j`.
fn split_address_and_port(arg: &str) -> Result<(String, Option<String>), CliError> {
    let mut port_at: Option<usize> = None;
    let mut address: Option<String> = None;
    if let Some(lb) = arg.find('[') {
        let start = lb + 1;
        let Some(rb_rel) = arg[start..].find(']') else {
            return Err(CliError::param("No closing ']' around IPv6 address"));
        };
        if rb_rel == 0 {
            return Err(CliError::param("No IPv6 address specified"));
        }
        let rb = start + rb_rel;
        if let Some(c) = arg[rb..].find(':') {
            address = Some(arg[start..rb].to_string());
            port_at = Some(rb + c);
        }
    } else if let Some(c) = arg.find(':') {
        if !arg[c + 1..].contains(':') {
            address = Some(arg[..c].to_string());
            port_at = Some(c);
        }
    }
    match port_at {
        Some(c) => {
            let port = &arg[c + 1..];
            if port.is_empty() {
                return Err(CliError::param("No port specified after `:'"));
            }
            let valid = port.bytes().all(|b| b.is_ascii_digit())
                && port.trim_start_matches('0').len() <= 5
                && port.parse::<u32>().map(|v| v <= 65535).unwrap_or(false);
            if !valid {
                return Err(CliError::param(format!("Invalid port `{port}'")));
            }
            Ok((address.unwrap_or_default(), Some(port.to_string())))
        }
        None => Ok((arg.to_string(), None)),
    }
}

fn get_long_opt(c: char) -> &'static str {
    ORIGINAL_OPTS
        .iter()
        .find(|o| o.val == c as i32)
        .map(|o| o.name)
        .unwrap_or("unknown")
}

/// `getprotobyname` / `getprotobynumber` over /etc/protocols.
pub fn protocols_lookup(by_name: Option<&str>, by_num: Option<u8>) -> Option<(String, u8)> {
    let text = std::fs::read_to_string("/etc/protocols").ok()?;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut it = line.split_whitespace();
        let (Some(name), Some(num)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(num) = num.parse::<u8>() else { continue };
        let aliases: Vec<&str> = it.collect();
        if let Some(n) = by_name {
            if name == n || aliases.contains(&n) {
                return Some((name.to_string(), num));
            }
        }
        if by_num == Some(num) {
            return Some((name.to_string(), num));
        }
    }
    None
}

/// `findproto`.
fn findproto(name: &str) -> Option<(&'static ProtoDef, u8)> {
    for h in protos::BUILTIN {
        if h.name.eq_ignore_ascii_case(name) {
            return Some((h, h.num));
        }
    }
    if let Some((_, n)) = protocols_lookup(Some(name), None) {
        return Some((&protos::UNKNOWN, n));
    }
    let (v, end) = strtoul(name, 0);
    if end == 0 || end != name.len() || v > 255 {
        return None;
    }
    let n = v as u8;
    Some((protos::by_number(n).unwrap_or(&protos::UNKNOWN), n))
}

/// `generic_opt_check`: Ok(true) when fine, Ok(false) with `partial`
/// when a coupled pair is incomplete.
fn generic_opt_check(
    options: u32,
    row: &[u8],
    names: &[&str],
    coupled: &[u32; 2],
) -> Result<Result<(), i32>, CliError> {
    let mut special = false;
    for (i, &v) in row.iter().enumerate() {
        let set = options & (1 << i) != 0;
        if !set && v == 1 {
            return Err(CliError::param(format!(
                "You need to supply the `--{}' option for this command",
                names[i]
            )));
        }
        if set && v == 0 {
            return Err(CliError::param(format!(
                "Illegal option `--{}' with this command",
                names[i]
            )));
        }
        if v == 3 {
            special = true;
        }
    }
    // Options beyond the row (no row at all) are illegal too.
    for i in row.len()..32 {
        if options & (1 << i) != 0 && i < names.len() {
            return Err(CliError::param(format!(
                "Illegal option `--{}' with this command",
                names[i]
            )));
        }
    }
    if !special {
        return Ok(Ok(()));
    }
    let mut partial = -1;
    for (i, &c) in coupled.iter().enumerate() {
        if options & c == c {
            return Ok(Ok(()));
        }
        if options & c != 0 && partial < 0 {
            partial = i as i32;
        }
    }
    Ok(Err(partial))
}

struct State<'e> {
    err: &'e mut dyn Write,
    c: Cmd,
    /// Protocol handler option tables merged so far: (handler, base value).
    merged: Vec<(&'static ProtoDef, i32)>,
    cur_base: i32,
    l4flags: u32,
    status: u32,
    status_mask: u32,
}

/// The value a protocol handler's C option table gives option `bit`:
/// SCTP and DCCP number their options 1, 2, ...; the others use the
/// characters '1', '2', ...
fn option_code(h: &ProtoDef, bit: usize) -> i32 {
    match h.kind {
        Kind::Sctp | Kind::Dccp => bit as i32 + 1,
        _ => '1' as i32 + bit as i32,
    }
}

/// Parses a command line (`argv[0]` included) as `do_parse` does.
/// Warnings are written to `err` as they occur.
pub fn parse(argv: Vec<String>, err: &mut dyn Write) -> Result<Cmd, CliError> {
    let progname = argv.first().cloned().unwrap_or_else(|| "conntrack".into());
    let mut st = State {
        err,
        c: Cmd {
            command: 0,
            cmd: cmd::NUMBER,
            table: Table::Conntrack,
            options: 0,
            family: AF_UNSPEC,
            protonum: 0,
            proto: None,
            event_mask: 0,
            bufsize: 0,
            output: 0,
            tmpl: Template::default(),
            exptuple: TTuple::default(),
            mask: TTuple::default(),
            mark: (0, 0),
            filter_mark_kernel: None,
            filter_status_kernel: None,
            label: None,
            label_modify: None,
            labelmap: None,
            progname,
        },
        merged: Vec::new(),
        cur_base: 0,
        l4flags: 0,
        status: 0,
        status_mask: 0,
    };
    let mut g = Getopt::new(argv, GETOPT_STR);
    let mut longopts: Vec<LongOpt> = ORIGINAL_OPTS.to_vec();
    while let Some(got) = g.next(&longopts) {
        match got {
            Got::MissingArg => {
                return Err(CliError::param(format!(
                    "option `{}' requires an argument",
                    g.argv[g.optind - 1]
                )))
            }
            Got::Unknown => {
                return Err(CliError::param(format!(
                    "unknown option `{}'",
                    g.argv[g.optind - 1]
                )))
            }
            Got::Opt(v, arg) => st.option(v, arg, &mut g, &mut longopts)?,
        }
    }
    st.finish()
}

/// `get_optional_arg`: the next argv word, unless getopt gave an attached
/// argument (then nothing: that text is discarded).
fn optional_arg(g: &mut Getopt, attached: &Option<String>) -> Option<String> {
    if attached.is_some() {
        return None;
    }
    let w = g.argv.get(g.optind)?;
    if w.starts_with('-') || w.starts_with('!') {
        return None;
    }
    let w = w.clone();
    g.optind += 1;
    Some(w)
}

impl<'e> State<'e> {
    /// `labelmap_init`: loads `connlabel.conf` unless it is loaded,
    /// reporting a failure as `perror` does (so again at each call while
    /// it fails, as 1.4.7).
    fn load_labelmap(&mut self) {
        if self.c.labelmap.is_some() {
            return;
        }
        match LabelMap::load_default() {
            Ok(m) => self.c.labelmap = Some(m),
            Err(e) => {
                let _ = writeln!(self.err, "nfct_labelmap_new: {e}");
            }
        }
    }

    /// Resolves a comma list of label names into the filter (`-l`) or the
    /// modification (`--label-add/--label-del`) bitmap.
    fn add_labels(&mut self, names: &str, modify: bool) -> Result<(), CliError> {
        let mut bits = Vec::new();
        for n in names.split(',') {
            match self.c.labelmap.as_ref().and_then(|m| m.bit(n)) {
                Some(b) => bits.push(b),
                None => return Err(CliError::param(format!("unknown label '{n}'"))),
            }
        }
        let max = bits.iter().copied().max().unwrap_or(0) as usize;
        let mut l = Labels::zeroed((max / 32 + 1) * 4);
        for b in bits {
            l.set(b as usize, true);
        }
        let slot = if modify {
            &mut self.c.label_modify
        } else {
            &mut self.c.label
        };
        *slot = Some(match slot.take() {
            None => l,
            Some(old) => merge_labels(old, l),
        });
        Ok(())
    }

    fn add_command(&mut self, bit: usize) -> Result<(), CliError> {
        if self.c.command != 0 {
            return Err(CliError::param("Invalid commands combination"));
        }
        self.c.command = 1 << bit;
        Ok(())
    }

    fn check_type(&mut self, g: &mut Getopt, attached: &Option<String>) -> Result<Table, CliError> {
        let Some(t) = optional_arg(g, attached) else {
            return Ok(Table::Conntrack);
        };
        let is = |full: &str| full.starts_with(t.as_str());
        if is("expect") {
            Ok(Table::Expect)
        } else if is("conntrack") {
            Ok(Table::Conntrack)
        } else if is("dying") {
            Ok(Table::Dying)
        } else if is("unconfirmed") {
            Ok(Table::Unconfirmed)
        } else {
            Err(CliError::param(format!("unknown type `{t}'")))
        }
    }

    /// `nfct_parse_addr_from_opt`.
    fn addr_opt(&mut self, c: char, arg: &str) -> Result<IpAddr, CliError> {
        let Some((a, mask)) = parse_addr(arg) else {
            return Err(CliError::param(format!("Invalid IP address `{arg}'")));
        };
        let fam = family_of(a);
        set_family(&mut self.c.family, fam)?;
        let maskopt = match c {
            's' | '[' => Some('{'),
            'd' | ']' => Some('}'),
            _ => None,
        };
        if mask != -1 && maskopt.is_none() {
            return Err(CliError::param(format!(
                "CIDR notation unavailable for `--{}'",
                get_long_opt(c)
            )));
        } else if mask == -2 {
            return Err(CliError::param("Invalid netmask"));
        }
        self.set_addr(c, a, fam);
        let full = if fam == AF_INET { 32 } else { 128 };
        if mask != -1 && mask != full {
            if let Some(m) = maskopt {
                self.set_addr(m, netmask(a, mask), fam);
            }
        }
        Ok(a)
    }

    fn set_addr(&mut self, c: char, a: IpAddr, fam: u8) {
        let c2 = &mut self.c;
        match c {
            's' => {
                c2.options |= opt::ORIG_SRC;
                c2.tmpl.orig.src = Some(a);
                c2.tmpl.orig.l3 = Some(fam);
            }
            'd' => {
                c2.options |= opt::ORIG_DST;
                c2.tmpl.orig.dst = Some(a);
                c2.tmpl.orig.l3 = Some(fam);
            }
            'r' => {
                c2.options |= opt::REPL_SRC;
                c2.tmpl.repl.src = Some(a);
                c2.tmpl.repl.l3 = Some(fam);
            }
            'q' => {
                c2.options |= opt::REPL_DST;
                c2.tmpl.repl.dst = Some(a);
                c2.tmpl.repl.l3 = Some(fam);
            }
            '[' => {
                c2.options |= opt::EXP_SRC;
                c2.exptuple.src = Some(a);
                c2.exptuple.l3 = Some(fam);
            }
            ']' => {
                c2.options |= opt::EXP_DST;
                c2.exptuple.dst = Some(a);
                c2.exptuple.l3 = Some(fam);
            }
            '{' => {
                c2.options |= opt::MASK_SRC;
                c2.mask.src = Some(a);
                c2.mask.l3 = Some(fam);
            }
            '}' => {
                c2.options |= opt::MASK_DST;
                c2.mask.dst = Some(a);
                c2.mask.l3 = Some(fam);
            }
            'n' => {
                c2.options |= opt::SRC_NAT;
                c2.tmpl.snat_ip = Some(a);
                c2.tmpl.orig.l3 = Some(fam);
            }
            'g' => {
                c2.options |= opt::DST_NAT;
                c2.tmpl.dnat_ip = Some(a);
                c2.tmpl.orig.l3 = Some(fam);
            }
            'j' => {
                c2.options |= opt::ANY_NAT;
                c2.tmpl.orig.l3 = Some(fam);
            }
            _ => {}
        }
    }

    fn option(
        &mut self,
        v: i32,
        arg: Option<String>,
        g: &mut Getopt,
        longopts: &mut Vec<LongOpt>,
    ) -> Result<(), CliError> {
        if v >= PROTO_BASE {
            return self.proto_option(v, arg.unwrap_or_default());
        }
        let c = char::from_u32(v as u32).unwrap_or('\0');
        let a = || arg.clone().unwrap_or_default();
        match c {
            'L' => {
                let t = self.check_type(g, &arg)?;
                self.c.table = t;
                let bit = if t == Table::Expect {
                    cmd::EXP_LIST
                } else {
                    cmd::CT_LIST
                };
                self.add_command(bit)?;
            }
            'I' | 'D' | 'G' | 'F' | 'E' | 'V' | 'h' | 'C' | 'S' | 'U' | 'A' => {
                let t = self.check_type(g, &arg)?;
                if matches!(t, Table::Dying | Table::Unconfirmed) {
                    return Err(CliError::param(
                        "Can't do that command with tables `dying' and `unconfirmed'",
                    ));
                }
                self.c.table = t;
                let exp = t == Table::Expect;
                let bit = match (c, exp) {
                    ('I', false) => cmd::CT_CREATE,
                    ('I', true) => cmd::EXP_CREATE,
                    ('D', false) => cmd::CT_DELETE,
                    ('D', true) => cmd::EXP_DELETE,
                    ('G', false) => cmd::CT_GET,
                    ('G', true) => cmd::EXP_GET,
                    ('F', false) => cmd::CT_FLUSH,
                    ('F', true) => cmd::EXP_FLUSH,
                    ('E', false) => cmd::CT_EVENT,
                    ('E', true) => cmd::EXP_EVENT,
                    ('V', _) => cmd::CT_VERSION,
                    ('h', _) => cmd::CT_HELP,
                    ('C', false) => cmd::CT_COUNT,
                    ('C', true) => cmd::EXP_COUNT,
                    ('S', false) => cmd::CT_STATS,
                    ('S', true) => cmd::EXP_STATS,
                    ('U', false) => cmd::CT_UPDATE,
                    ('A', false) => cmd::CT_ADD,
                    _ => {
                        return Err(CliError::param(format!(
                            "Can't do --{} on expectations",
                            get_long_opt(c)
                        )))
                    }
                };
                self.add_command(bit)?;
            }
            's' | 'd' | 'r' | 'q' | '[' | ']' | '{' | '}' => {
                self.addr_opt(c, &a())?;
            }
            'p' => {
                self.c.options |= opt::PROTO;
                let name = a();
                let Some((h, num)) = findproto(&name) else {
                    return Err(CliError::param(format!("`{name}' unsupported protocol")));
                };
                self.c.proto = Some(h);
                self.c.protonum = num;
                self.cur_base = PROTO_BASE * (self.merged.len() as i32 + 1);
                self.merged.push((h, self.cur_base));
                for (oname, bit) in h.opts {
                    longopts.push(LongOpt {
                        name: oname,
                        has_arg: HasArg::Required,
                        val: self.cur_base + *bit as i32,
                    });
                }
                self.c.tmpl.orig.l4 = Some(num);
            }
            't' => {
                self.c.options |= opt::TIMEOUT;
                self.c.tmpl.timeout = Some(atol(&a()) as u32);
            }
            'u' => {
                self.c.options |= opt::STATUS;
                let (mut s, mut m) = (self.status, self.status_mask);
                parse_status(&a(), &mut s, &mut m, self.err)?;
                self.status = s;
                self.status_mask = m;
                self.c.tmpl.status = Some(s);
                let mask = if m == 0 { s } else { m };
                self.status_mask = mask;
                self.c.filter_status_kernel = Some((s, mask));
                // 1.4.7 also overwrote the userspace mark filter value.
                self.c.mark.0 = s;
            }
            'e' => {
                self.c.options |= opt::EVENT_MASK;
                let mut m = self.c.event_mask;
                parse_list(&a(), EVENT_PARAMS, &mut m, self.err)?;
                self.c.event_mask = m;
            }
            'o' => {
                self.c.options |= opt::OUTPUT;
                let mut m = self.c.output;
                parse_list(&a(), OUTPUT_PARAMS, &mut m, self.err)?;
                self.c.output = m;
                // (the mask so far: every later `-o` loads it too)
                if m & out::CL != 0 {
                    self.load_labelmap();
                }
                if m & out::SAVE != 0 && m & !out::SAVE != 0 {
                    return Err(CliError::other(
                        "cannot combine save output with any other output type, use -o save only",
                    ));
                }
            }
            'z' => self.c.options |= opt::ZERO,
            'n' | 'g' | 'j' => {
                self.c.options |= match c {
                    'n' => opt::SRC_NAT,
                    'g' => opt::DST_NAT,
                    _ => opt::ANY_NAT,
                };
                if let Some(oa) = optional_arg(g, &arg) {
                    let (address, port) = split_address_and_port(&oa)?;
                    let ip = self.addr_opt(c, &address)?;
                    let port = port.map(|p| atoi(&p) as u16);
                    let t = &mut self.c.tmpl;
                    if c == 'n' || c == 'j' {
                        t.snat_ip = Some(ip);
                        if port.is_some() {
                            t.snat_port = port;
                        }
                    }
                    if c == 'g' || c == 'j' {
                        t.dnat_ip = Some(ip);
                        if port.is_some() {
                            t.dnat_port = port;
                        }
                    }
                }
            }
            'w' | '(' | ')' => {
                let v = strtoul(&a(), 0).0 as u16;
                match c {
                    'w' => {
                        self.c.options |= opt::ZONE;
                        self.c.tmpl.zone = Some(v);
                    }
                    '(' => {
                        self.c.options |= opt::ORIG_ZONE;
                        self.c.tmpl.orig.zone = Some(v);
                    }
                    _ => {
                        self.c.options |= opt::REPL_ZONE;
                        self.c.tmpl.repl.zone = Some(v);
                    }
                }
            }
            'i' => {
                self.c.options |= opt::ID;
                // `strtoul(optarg)`: `-i N` and `--id=N` set the id. A bare
                // `--id` (`--id N` too: the argument is optional) crashes
                // 1.4.7 (NULL optarg) before anything is done; without an
                // id, `-D` and `-U` would act on every entry, so it is
                // refused.
                let Some(s) = &arg else {
                    return Err(CliError::param("--id needs an id: -i N or --id=N"));
                };
                self.c.tmpl.id = Some(strtoul(s, 0).0 as u32);
            }
            'c' => {
                self.c.options |= opt::SECMARK;
                self.c.tmpl.secmark = Some(strtoul(&a(), 0).0 as u32);
            }
            'm' => {
                self.c.options |= opt::MARK;
                let s = a();
                let (v, end) = strtoul(&s, 0);
                let mask = if s[end..].starts_with('/') {
                    strtoul(&s[end + 1..], 0).0 as u32
                } else {
                    u32::MAX
                };
                self.c.mark = (v as u32, mask);
                self.c.filter_mark_kernel = Some((v as u32, mask));
            }
            'l' | '<' | '>' => {
                self.c.options |= match c {
                    'l' => opt::LABEL,
                    '<' => opt::ADD_LABEL,
                    _ => opt::DEL_LABEL,
                };
                // 1.4.7 loads the map first, then checks, and resolves the
                // names right here, so an unknown label is reported before
                // any later check.
                self.load_labelmap();
                if self.c.options & (opt::ADD_LABEL | opt::DEL_LABEL)
                    == opt::ADD_LABEL | opt::DEL_LABEL
                {
                    return Err(CliError::other(
                        "cannot use --label-add and --label-del at the same time",
                    ));
                }
                let name = if c == '>' {
                    match optional_arg(g, &arg) {
                        Some(t) => t,
                        None => return Ok(()),
                    }
                } else {
                    a()
                };
                self.add_labels(&name, c != 'l')?;
            }
            'a' => {
                let _ = writeln!(self.err, "WARNING: ignoring -a, deprecated option.");
            }
            'f' => {
                self.c.options |= opt::FAMILY;
                let s = a();
                if s.starts_with("ipv4") {
                    set_family(&mut self.c.family, AF_INET)?;
                } else if s.starts_with("ipv6") {
                    set_family(&mut self.c.family, AF_INET6)?;
                } else {
                    return Err(CliError::param(format!("`{s}' unsupported protocol")));
                }
            }
            'b' => {
                self.c.bufsize = atol(&a()) as usize;
                self.c.options |= opt::BUFFERSIZE;
            }
            _ => {}
        }
        Ok(())
    }

    fn proto_option(&mut self, v: i32, arg: String) -> Result<(), CliError> {
        let base = (v / PROTO_BASE) * PROTO_BASE;
        let Some(h) = self.c.proto else { return Ok(()) };
        let mut bit = (v - base) as usize;
        if base != self.cur_base {
            // An option of a handler merged by an earlier -p: the C tool
            // hands its option character (the value minus the *current*
            // handler's offset, truncated to a char) to the current
            // handler, which interprets it as one of its own.
            let Some(&(old, _)) = self.merged.iter().find(|(_, b)| *b == base) else {
                return Ok(());
            };
            let code = option_code(old, bit);
            match (0..h.bits.len()).find(|&b| option_code(h, b) == code) {
                Some(b) => bit = b,
                None => return Ok(()),
            }
        }
        let Some(&what) = h.bits.get(bit) else {
            return Ok(());
        };
        self.l4flags |= 1 << bit;
        let num = h.num;
        let t = &mut self.c.tmpl;
        let port = || -> u16 {
            if h.kind == Kind::Gre {
                strtoul(&arg, 0).0 as u16
            } else {
                atoi(&arg) as u16
            }
        };
        match what {
            POpt::OrigSport => {
                t.orig.sport = Some(port());
                t.orig.l4 = Some(num);
            }
            POpt::OrigDport => {
                t.orig.dport = Some(port());
                t.orig.l4 = Some(num);
            }
            POpt::ReplSport => {
                t.repl.sport = Some(port());
                t.repl.l4 = Some(num);
            }
            POpt::ReplDport => {
                t.repl.dport = Some(port());
                t.repl.l4 = Some(num);
            }
            POpt::MaskSport => {
                self.c.mask.sport = Some(port());
                self.c.mask.l4 = Some(num);
            }
            POpt::MaskDport => {
                self.c.mask.dport = Some(port());
                self.c.mask.l4 = Some(num);
            }
            POpt::TupleSport | POpt::TupleDport => {
                let p = port();
                if what == POpt::TupleSport {
                    self.c.exptuple.sport = Some(p);
                } else {
                    self.c.exptuple.dport = Some(p);
                }
                // conntrack 1.4.7 stores the (byte-swapped) port as the
                // expected tuple's protocol number.
                self.c.exptuple.l4 = Some(if h.kind == Kind::Gre {
                    num
                } else {
                    p.to_be() as u8
                });
            }
            POpt::State => match h.kind {
                Kind::Tcp => {
                    let s = if arg == "LISTEN" {
                        Some(9)
                    } else {
                        TCP_STATES.iter().position(|n| *n == arg)
                    };
                    match s {
                        Some(s) => t.tcp_state = Some(s as u8),
                        None => return Err(CliError::param(format!("unknown TCP state `{arg}'"))),
                    }
                }
                Kind::Sctp => match SCTP_STATES[..SCTP_STATES_CLI]
                    .iter()
                    .position(|n| *n == arg)
                {
                    Some(s) => t.sctp_state = Some(s as u8),
                    None => return Err(CliError::param(format!("unknown SCTP state `{arg}'"))),
                },
                Kind::Dccp => match DCCP_STATES.iter().position(|n| *n == arg) {
                    Some(s) => t.dccp_state = Some(s as u8),
                    None => return Err(CliError::param(format!("Unknown DCCP state `{arg}'"))),
                },
                _ => {}
            },
            // The C tool applies htonl() before the library does it again.
            POpt::OrigVtag => t.sctp_vtag_orig = Some((atoi(&arg) as u32).to_be()),
            POpt::ReplVtag => t.sctp_vtag_repl = Some((atoi(&arg) as u32).to_be()),
            POpt::Role => {
                if tolower_eq_prefix(&arg, "client") {
                    t.dccp_role = Some(0);
                } else if tolower_eq_prefix(&arg, "server") {
                    t.dccp_role = Some(1);
                } else {
                    return Err(CliError::param(format!("Unknown DCCP role `{arg}'")));
                }
            }
            POpt::IcmpType | POpt::IcmpCode | POpt::IcmpId => {
                match what {
                    POpt::IcmpType => {
                        let ty = atoi(&arg) as u8;
                        t.orig.icmp_type = Some(ty);
                        t.repl_icmp_type = Some(match t.orig.l3 {
                            Some(AF_INET) => icmp_reply_type(false, ty),
                            Some(AF_INET6) => icmp_reply_type(true, ty),
                            _ => 255,
                        });
                    }
                    POpt::IcmpCode => {
                        let code = atoi(&arg) as u8;
                        t.orig.icmp_code = Some(code);
                        t.repl_icmp_code = Some(code);
                    }
                    _ => {
                        let id = atoi(&arg) as u16;
                        t.orig.icmp_id = Some(id);
                        t.repl_icmp_id = Some(id);
                    }
                }
                t.orig.l4 = Some(num);
                if t.repl.l3.is_some() {
                    t.repl.l4 = Some(num);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Cmd, CliError> {
        let command = self.c.command;
        if self.c.family == AF_UNSPEC {
            let keep = [
                cmd::CT_LIST,
                cmd::CT_UPDATE,
                cmd::CT_DELETE,
                cmd::CT_GET,
                cmd::CT_FLUSH,
                cmd::CT_EVENT,
            ]
            .iter()
            .any(|&b| command == 1 << b);
            if !keep {
                self.c.family = AF_INET;
            }
        }
        if self.c.options & opt::ANY_NAT != 0 && self.c.options & (opt::SRC_NAT | opt::DST_NAT) != 0
        {
            return Err(CliError::param(
                "cannot specify `--src-nat' or `--dst-nat' with `--any-nat'",
            ));
        }
        let cmdi = (0..cmd::NUMBER)
            .find(|&i| command & (1 << i) != 0)
            .unwrap_or(cmd::NUMBER);
        self.c.cmd = cmdi;
        let row: &[u8] = if cmdi < cmd::NUMBER {
            &COMMANDS_V_OPTIONS[cmdi]
        } else {
            &[0; opt::NUMBER]
        };
        if let Err(partial) =
            generic_opt_check(self.c.options, row, &OPTFLAGS, &[opt::ORIG, opt::REPL])?
        {
            return Err(CliError::param(if partial == 1 {
                "you have to specify `--reply-src' and `--reply-dst'"
            } else {
                "you have to specify `--src' and `--dst'"
            }));
        }
        if command != 1 << cmd::CT_HELP {
            if let Some(h) = self.c.proto {
                if h.kind != Kind::Unknown {
                    let prow = (h.matrix)(cmdi.min(cmd::NUMBER - 1));
                    let prow: &[u8] = if cmdi >= cmd::NUMBER { &[] } else { prow };
                    let coupled = [0b0011, 0b1100];
                    if let Err(partial) =
                        generic_opt_check(self.l4flags, prow, h.optflags, &coupled)?
                    {
                        let (a, b) = h.coupled.unwrap_or(("", ""));
                        return Err(CliError::param(if partial == 1 { b } else { a }));
                    }
                    if h.kind == Kind::Tcp {
                        let mut f = TCP_FLAG_BE_LIBERAL | TCP_FLAG_SACK_PERM;
                        if self.c.tmpl.tcp_state.unwrap_or(0) >= TCP_STATE_TIME_WAIT {
                            f |= TCP_FLAG_CLOSE_INIT;
                        }
                        self.c.tmpl.tcp_flags = Some(f);
                    }
                } else if self.c.tmpl.repl.l3.is_some() && self.c.tmpl.repl.l4.is_none() {
                    self.c.tmpl.repl.l4 = self.c.tmpl.orig.l4;
                }
            }
        }
        Ok(self.c)
    }
}

fn merge_labels(a: Labels, b: Labels) -> Labels {
    let (mut big, small) = if b.bits() > a.bits() { (b, a) } else { (a, b) };
    for i in 0..small.bits() {
        if small.get(i) {
            big.set(i, true);
        }
    }
    big
}

const USAGE_LINES: &[&str] = &[
    "",
    "Commands:",
    "  -L [table] [options]\t\tList conntrack or expectation table",
    "  -G [table] parameters\t\tGet conntrack or expectation",
    "  -D [table] parameters\t\tDelete conntrack or expectation",
    "  -I [table] parameters\t\tCreate a conntrack or expectation",
    "  -U [table] parameters\t\tUpdate a conntrack",
    "  -E [table] [options]\t\tShow events",
    "  -F [table]\t\t\tFlush table",
    "  -C [table]\t\t\tShow counter",
    "  -S\t\t\t\tShow statistics",
    "",
    "Tables: conntrack, expect, dying, unconfirmed",
    "",
    "Conntrack parameters and options:",
    "  -n, --src-nat ip\t\t\tsource NAT ip",
    "  -g, --dst-nat ip\t\t\tdestination NAT ip",
    "  -j, --any-nat ip\t\t\tsource or destination NAT ip",
    "  -m, --mark mark\t\t\tSet mark",
    "  -c, --secmark secmark\t\t\tSet selinux secmark",
    "  -e, --event-mask eventmask\t\tEvent mask, eg. NEW,DESTROY",
    "  -z, --zero \t\t\t\tZero counters while listing",
    "  -o, --output type[,...]\t\tOutput format, eg. xml",
    "  -l, --label label[,...]\t\tconntrack labels",
    "",
    "Expectation parameters and options:",
    "  --tuple-src ip\tSource address in expect tuple",
    "  --tuple-dst ip\tDestination address in expect tuple",
    "",
    "Updating parameters and options:",
    "  --label-add label\tAdd label",
    "  --label-del label\tDelete label",
    "",
    "Common parameters and options:",
    "  -s, --src, --orig-src ip\t\tSource address from original direction",
    "  -d, --dst, --orig-dst ip\t\tDestination address from original direction",
    "  -r, --reply-src ip\t\tSource addres from reply direction",
    "  -q, --reply-dst ip\t\tDestination address from reply direction",
    "  -p, --protonum proto\t\tLayer 4 Protocol, eg. 'tcp'",
    "  -f, --family proto\t\tLayer 3 Protocol, eg. 'ipv6'",
    "  -t, --timeout timeout\t\tSet timeout",
    "  -u, --status status\t\tSet status, eg. ASSURED",
    "  -w, --zone value\t\tSet conntrack zone",
    "  --orig-zone value\t\tSet zone for original direction",
    "  --reply-zone value\t\tSet zone for reply direction",
    "  -b, --buffer-size\t\tNetlink socket buffer size",
    "  --mask-src ip\t\t\tSource mask address",
    "  --mask-dst ip\t\t\tDestination mask address",
    "",
];

/// The usage text (`usage()`), with `prog` as typed.
pub fn usage(prog: &str) -> String {
    let mut s = format!(
        "Command line interface for the connection tracking system. Version 1.4.7\nUsage: {prog} [commands] [options]\n"
    );
    for l in USAGE_LINES {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// The protocol help appended to the usage by `-h -p P`.
pub fn proto_help(c: &Cmd) -> String {
    let Some(h) = c.proto else {
        return String::new();
    };
    let name = if h.kind == Kind::Unknown {
        protocols_lookup(None, Some(c.protonum))
            .map(|(n, _)| n)
            .unwrap_or_else(|| h.name.to_string())
    } else {
        h.name.to_string()
    };
    format!("Proto `{name}' help:\n{}", h.help)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cmd, CliError> {
        let mut v = vec!["conntrack".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        parse(v, &mut Vec::new())
    }

    #[test]
    fn list_defaults() {
        let c = p(&["-L"]).unwrap();
        assert!(c.is(cmd::CT_LIST));
        assert_eq!(c.family, AF_UNSPEC);
    }

    /// `--id` without an id would leave `-D` and `-U` without a filter
    /// (every entry): refused (1.4.7 crashes); with one, the filter.
    #[test]
    fn an_id_option_needs_its_id() {
        for argv in [
            &["-D", "--id"][..],
            &["-D", "--id", "5"],
            &["-U", "--id", "-m", "1"],
        ] {
            assert_eq!(
                p(argv).unwrap_err().msg,
                "--id needs an id: -i N or --id=N",
                "{argv:?}"
            );
        }
        for argv in [&["-D", "-i", "5"][..], &["-D", "-i5"], &["-D", "--id=5"]] {
            assert_eq!(p(argv).unwrap().tmpl.id, Some(5), "{argv:?}");
        }
    }

    #[test]
    fn errors_in_c_order() {
        assert_eq!(
            p(&["-I", "-s", "1.1.1.1", "-p", "tcp"]).unwrap_err().msg,
            "You need to supply the `--timeout' option for this command"
        );
        assert_eq!(
            p(&["-L", "-D"]).unwrap_err().msg,
            "Invalid commands combination"
        );
        assert_eq!(
            p(&["-L", "-r", "1.1.1.1/24"]).unwrap_err().msg,
            "CIDR notation unavailable for `--reply-src'"
        );
        assert_eq!(
            p(&[
                "-I", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "tcp", "-t", "1", "--state", "LISTEN"
            ])
            .unwrap_err()
            .msg,
            "you have to specify `--sport' and `--dport'"
        );
        assert_eq!(
            p(&["-L", "-u", ",ASSURED"]).unwrap_err().msg,
            "Bad parameter `,ASSURED'"
        );
        assert_eq!(
            p(&["-L", "-o", "xml,"]).unwrap_err().msg,
            "Bad parameter `'"
        );
        assert_eq!(
            p(&["-L", "expectx"]).unwrap_err().msg,
            "unknown type `expectx'"
        );
        assert_eq!(
            p(&["-L", "--sport", "1"]).unwrap_err().msg,
            "unknown option `--sport'"
        );
    }

    #[test]
    fn status_filter_masks() {
        let c = p(&["-L", "-u", "ASSURED,!SEEN_REPLY"]).unwrap();
        assert_eq!(
            c.filter_status_kernel,
            Some((status::ASSURED, status::SEEN_REPLY))
        );
        let c = p(&["-L", "-u", "UNREPLIED"]).unwrap();
        assert_eq!(c.filter_status_kernel, Some((0, status::SEEN_REPLY)));
    }

    #[test]
    fn cidr_sets_mask() {
        let c = p(&["-L", "-s", "10.0.0.0/8"]).unwrap();
        assert!(c.has(opt::MASK_SRC));
        assert_eq!(c.mask.src, Some("255.0.0.0".parse().unwrap()));
    }
}
