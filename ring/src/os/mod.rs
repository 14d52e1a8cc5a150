//! Process-level system calls of the binaries, outside the I/O path:
//! detaching from the caller (`-d`), the process set-up (file mode mask,
//! standard descriptors, open-files limit, scheduling, credentials),
//! signal dispositions, syslog, network namespaces and local time. The
//! binaries (`tools`) make no system call of their own; these wrappers
//! hold the `unsafe` and say why each call is sound.

pub mod detach;
pub mod netns;
pub mod process;
pub mod signals;
pub mod syslog;
pub mod time;
