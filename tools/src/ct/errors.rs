//! Messages the tool prints: the program banner and `err2str`, the
//! translation of kernel errno values per command.

use crate::cli::labels::errno_text;
use crate::cli::protos::cmd;

/// The prefix of every message, as 1.4.7 prints it (scripts match it).
pub const BANNER: &str = "conntrack v1.4.7 (conntrack-tools)";

/// What `-V` prints: 1.4.7's version, and which implementation this is
/// (the one line that tells them apart).
pub const VERSION_LINE: &str = concat!(
    "conntrack v1.4.7 (ct-tools ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

const ENOTSUPP: i32 = 524;

/// `err2str(err, command)`.
pub fn err2str(err: i32, command: u32) -> String {
    let b = |c: usize| 1u32 << c;
    let table: &[(u32, i32, &str)] = &[
        (b(cmd::CT_LIST), ENOTSUPP, "function not implemented"),
        (0xFFFF, libc::EINVAL, "invalid parameters"),
        (
            b(cmd::CT_CREATE),
            libc::EEXIST,
            "Such conntrack exists, try -U to update",
        ),
        (
            b(cmd::CT_CREATE) | b(cmd::CT_GET) | b(cmd::CT_DELETE) | b(cmd::CT_ADD),
            libc::ENOENT,
            "such conntrack doesn't exist",
        ),
        (
            b(cmd::CT_CREATE) | b(cmd::CT_GET) | b(cmd::CT_ADD),
            libc::ENOMEM,
            "not enough memory",
        ),
        (b(cmd::CT_GET), libc::EAFNOSUPPORT, "protocol not supported"),
        (
            b(cmd::CT_CREATE) | b(cmd::CT_ADD),
            libc::ETIME,
            "conntrack has expired",
        ),
        (
            b(cmd::EXP_CREATE),
            libc::ENOENT,
            "master conntrack not found",
        ),
        (b(cmd::EXP_CREATE), libc::EINVAL, "invalid parameters"),
        (
            !0u32,
            libc::EPERM,
            "sorry, you must be root or get CAP_NET_ADMIN capability to do this",
        ),
    ];
    for (act, e, msg) in table {
        if act & command != 0 && *e == err {
            return msg.to_string();
        }
    }
    if err == ENOTSUPP {
        return "Unknown error 524".to_string();
    }
    errno_text(err)
}
