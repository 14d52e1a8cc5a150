//! The ctnetlink codec: netlink framing (`msg`), attribute views (`attr`),
//! a batching message writer (`writer`), conntrack and expectation
//! parse/emit (`ct`, `exp`), statistics replies (`stats`) and the request
//! builders the tools need (`request`), and the event socket's BPF filter
//! (`bpf`).

pub mod attr;
pub mod bpf;
pub mod ct;
pub mod cthelper;
pub mod exp;
pub mod lanes;
pub mod msg;
pub mod origin;
pub mod request;
pub mod stats;
pub mod timeout;
pub mod writer;

/// Why a netlink message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NlError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("netlink message length {len} invalid ({left} bytes left)")]
    BadMsgLen { len: usize, left: usize },
    #[error("attribute {ty} length {len} invalid ({left} bytes left)")]
    BadAttrLen { ty: u16, len: usize, left: usize },
    #[error("attribute {ty} payload is {len} bytes, need {want}")]
    AttrTooShort { ty: u16, len: usize, want: usize },
    #[error("attribute nesting too deep")]
    TooDeep,
}
