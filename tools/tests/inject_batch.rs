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
