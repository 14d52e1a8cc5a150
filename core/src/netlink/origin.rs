//! The events our own netlink sockets caused, dropped by the kernel: a
//! classic-BPF prefix for the ctnetlink event socket that rejects the
//! messages whose `nlmsg_pid` is one of ours and hands every other one to
//! the `Filter` and lane programs (or accepts it).
//!
//! A backup that injects (`DisableExternalCache`) writes every state it
//! receives into the kernel, and the kernel sends each write back to the
//! daemon's own event socket as an event carrying the inject handle's
//! port id, which the daemon then ignores (`Own::inject`, as 1.4.7's
//! origin check). Dropped before they are queued, those events cost no
//! copy, no completion and no wake-up.

use super::bpf::{self, stmt, Insn, LD_W_ABS};

/// Offset of `nlmsg_pid` in `struct nlmsghdr`.
const NLMSG_PID: u32 = 12;

/// Most port ids one prefix checks (a jump over them must fit in 8 bits).
pub const MAX_OWN: usize = 64;

/// The program: messages sent by one of `pids` are dropped, the others go
/// through `rest` (accepted when `None`). `pids` empty: `rest` itself.
pub fn skip_own(pids: &[u32], rest: Option<&[Insn]>) -> Result<Vec<Insn>, bpf::BpfError> {
    let pids = &pids[..pids.len().min(MAX_OWN)];
    let accept = [stmt(bpf::RET_K, u32::MAX)];
    let rest = rest.unwrap_or(&accept);
    if pids.is_empty() {
        return Ok(rest.to_vec());
    }
    let n = pids.len();
    let mut p = Vec::with_capacity(n + 2 + rest.len());
    p.push(stmt(LD_W_ABS, NLMSG_PID));
    for (i, pid) in pids.iter().enumerate() {
        // the header is in host order; the load reads network order. A
        // match jumps to the drop; the last miss jumps over it.
        p.push(Insn {
            code: bpf::JEQ_K,
            jt: (n - 1 - i) as u8,
            jf: u8::from(i == n - 1),
            k: u32::from_be_bytes(pid.to_ne_bytes()),
        });
    }
    p.push(stmt(bpf::RET_K, 0));
    p.extend_from_slice(rest);
    if p.len() > bpf::MAX_INSNS {
        return Err(bpf::BpfError::TooLong(p.len()));
    }
    Ok(p)
}
