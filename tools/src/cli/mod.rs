//! The `conntrack` command line: a GNU getopt port, C-compatible number
//! and address parsing, the protocol handlers, the command template and
//! the parser that ties them together.

pub mod args;
pub mod cparse;
pub mod getopt;
pub mod labels;
pub mod protos;
pub mod sigpipe;
pub mod template;
