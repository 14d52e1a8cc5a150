//! `ct-ring`: the I/O driver. For now it holds the netlink socket on
//! plain syscalls (`recv`, `recvmmsg`, `send`) that the `conntrack` tool
//! uses; the io_uring reactor (multishot receive with provided buffer
//! rings) and the UDP/multicast/TCP channels come with the daemon.
//! It knows nothing of flows or sync messages.

pub mod netlink;
