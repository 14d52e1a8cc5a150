//! The inject handle's batches (`DisableExternalCache`), in a namespace
//! of its own: the states of one datagram go out in one send, and when a
//! first attempt fails, its fallback and the later states of the same flow
//! leave the kernel as if each state had been applied alone.

mod common;

use std::time::Duration;

use common::netns::{skip_unless_root_and, NetNs};
use ct_core::config::SyncSection;
use ct_core::flow::{Flow, Tuple, AF_INET};
use ct_tools::daemon::inject::Inject;
use ct_transport::wire::Op;

const CT: &str = env!("CARGO_BIN_EXE_conntrack");
const T: Duration = Duration::from_secs(10);

fn udp(last: u8, mark: u32) -> Flow {
    let a = |x: u8| Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 7, 0, x)));
    Flow {
        family: AF_INET,
        orig: Some(Tuple {
            src: a(last),
            dst: a(200),
            l4proto: Some(17),
            src_port: Some(1000 + last as u16),
            dst_port: Some(53),
            ..Tuple::default()
        }),
        timeout: Some(100),
        mark: Some(mark),
        status: Some(0x8),
        ..Flow::default()
    }
}

#[test]
fn a_batch_ends_as_the_states_applied_one_by_one() {
    if !skip_unless_root_and(&["ip"]) {
        return;
    }
    let ns = NetNs::new("injb").expect("namespace");
    // 10.7.0.1 is already in the kernel: its NEW fails (EEXIST) and takes
    // the slow path, after the DELETE that follows it in the batch ran
    let pre = ns.run(
        &[
            CT,
            "-I",
            "-p",
            "udp",
            "-s",
            "10.7.0.1",
            "-d",
            "10.7.0.200",
            "--sport",
            "1001",
            "--dport",
            "53",
            "-t",
            "100",
        ],
        None,
        T,
    );
    assert!(pre.status.success(), "{}", pre.stderr_str());
    let name = ns.name().to_string();
    let (warnings, stats) = std::thread::spawn(move || {
        ct_tools::perf::netns::enter(&name).expect("enter the namespace");
        let mut inj = Inject::open().expect("inject handle");
        let sync = SyncSection::default();
        let mut warnings = Vec::new();
        let mut w = |m: String| warnings.push(m);
        inj.queue(Op::New, &udp(1, 1), &sync, &mut w);
        inj.queue(Op::New, &udp(2, 2), &sync, &mut w);
        inj.queue(Op::Delete, &udp(1, 1), &sync, &mut w);
        inj.queue(Op::Update, &udp(2, 9), &sync, &mut w);
        inj.queue(Op::Delete, &udp(3, 0), &sync, &mut w);
        inj.flush(&mut w);
        (
            warnings,
            (inj.stats.created, inj.stats.updated, inj.stats.destroyed),
        )
    })
    .join()
    .expect("thread");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(stats, (2, 1, 2), "created, updated, destroyed");
    let l = ns.run(&[CT, "-L", "-p", "udp"], None, T).stdout_str();
    assert!(
        !l.contains("src=10.7.0.1 "),
        "10.7.0.1 was deleted last:\n{l}"
    );
    assert!(
        l.contains("src=10.7.0.2 ") && l.contains("mark=9"),
        "10.7.0.2 updated:\n{l}"
    );
    assert_eq!(l.lines().count(), 1, "{l}");
}

/// An UPDATE of a related flow (one with a master) is applied in place,
/// as 1.4.7's `nl_update_conntrack` does it: without the master tuple
/// (the kernel refuses to change it, EOPNOTSUPP) and with the EXPECTED
/// bit the kernel gave the entry (a change of it is EBUSY). Before, each
/// such update fell back to a delete and a create: the entry's start
/// timestamp (nf_conntrack_timestamp) moved on.
#[test]
fn an_update_of_a_related_flow_is_applied_in_place() {
    if !skip_unless_root_and(&["ip", "sysctl"]) {
        return;
    }
    let ns = NetNs::new("injr").expect("namespace");
    let on = ns.run(
        &["sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=1"],
        None,
        T,
    );
    assert!(on.status.success(), "{}", on.stderr_str());
    let fill = ns.run(
        &[
            env!("CARGO_BIN_EXE_ctperf"),
            "fill",
            "-n",
            "1",
            "--helper",
            "ftp",
        ],
        None,
        T,
    );
    assert!(fill.status.success(), "{}", fill.stderr_str());
    let master = ct_tools::perf::fill::synthetic(0, false, 100).orig;
    let related = |mark| Flow {
        master,
        ..udp(5, mark)
    };
    let name = ns.name().to_string();
    let apply = |op: Op, f: Flow| {
        let name = name.clone();
        std::thread::spawn(move || {
            ct_tools::perf::netns::enter(&name).expect("enter the namespace");
            let mut inj = Inject::open().expect("inject handle");
            let mut warnings = Vec::new();
            inj.queue(op, &f, &SyncSection::default(), &mut |m| warnings.push(m));
            inj.flush(&mut |m| warnings.push(m));
            warnings
        })
        .join()
        .expect("thread")
    };
    assert_eq!(apply(Op::New, related(1)), Vec::<String>::new());
    let start = || {
        let l = ns
            .run(&[CT, "-L", "-p", "udp", "-o", "ktimestamp"], None, T)
            .stdout_str();
        let s = l
            .split("[start=")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .map(str::to_string);
        (s, l)
    };
    let (before, l) = start();
    assert!(before.is_some(), "created:\n{l}");
    // (the timestamp shows seconds)
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(apply(Op::Update, related(9)), Vec::<String>::new());
    let (after, l) = start();
    assert!(l.contains("mark=9"), "updated:\n{l}");
    assert_eq!(before, after, "the same entry, updated in place:\n{l}");
}
