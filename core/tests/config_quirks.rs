//! Upstream behaviours that an obvious implementation would get wrong.
//! What is accepted, rejected and printed is checked against conntrackd
//! 1.4.7 by tools/tests/config_oracle.rs; the values follow upstream's
//! parser actions.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ct_core::config::*;

fn ok(text: &str) -> Config {
    let sys = StaticLookup::debian(&["lo"]);
    parse(text.as_bytes(), "c", &sys)
        .result
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn rejected_at(text: &str) -> String {
    let sys = StaticLookup::debian(&["lo"]);
    let e = parse(text.as_bytes(), "c", &sys).result.expect_err(text);
    e.c_message()
}

#[test]
fn booleans_are_case_insensitive_and_accept_pipes() {
    for v in ["on", "ON", "yes", "Yes", "||", "o|", "|||"] {
        assert!(
            ok(&format!("General {{ Systemd off Systemd {v} }}"))
                .general
                .systemd,
            "{v}"
        );
    }
    for v in ["off", "OFF", "no", "No"] {
        assert!(
            !ok(&format!("General {{ Systemd {v} }}")).general.systemd,
            "{v}"
        );
    }
}

#[test]
fn log_file_off_does_not_undo() {
    let c = ok("General { LogFile on LogFile off }");
    assert_eq!(c.general.log_file, Some(PathBuf::from(DEFAULT_LOGFILE)));
    let c = ok("General { Syslog on Syslog off }");
    assert_eq!(c.general.syslog, None);
}

#[test]
fn paths_swallow_tabs_hashes_and_braces() {
    let c = ok("General { LockFile /a\t#x }");
    assert_eq!(c.general.lock_file, PathBuf::from("/a\t#x"));
    let c = ok("General { LockFile /a{}\n}");
    assert_eq!(c.general.lock_file, PathBuf::from("/a{}"));
    assert_eq!(
        rejected_at("General { LockFile /a}"),
        "parsing config file in line (1), symbol '': syntax error"
    );
}

#[test]
fn hex_words_are_addresses_not_names() {
    assert_eq!(
        rejected_at("General { Syslog add }"),
        "parsing config file in line (1), symbol 'add': syntax error"
    );
    assert_eq!(
        rejected_at("Sync { UDP { Interface beef } }"),
        "parsing config file in line (1), symbol 'beef': syntax error"
    );
    assert_eq!(
        rejected_at("General { HashSize 1abc }"),
        "parsing config file in line (1), symbol '1abc': syntax error"
    );
}

#[test]
fn numbers_wrap_like_atoi() {
    assert_eq!(
        ok("General { HashSize 99999999999 }").general.hash_size,
        1_215_752_191
    );
    assert_eq!(
        ok("General { HashSize 4294967296 }").general.hash_size,
        DEFAULT_HASHSIZE
    );
    assert_eq!(
        ok("General { NetlinkOverrunResync 4294967295 }")
            .general
            .overrun_resync_secs(),
        None
    );
    assert_eq!(
        ok("Sync { UDP { Port 70000 } }").sync.unwrap().channels[0].port,
        4464
    );
}

#[test]
fn carriage_returns_are_blanks_but_not_lines() {
    assert_eq!(
        rejected_at("General {\r HashSize\r5 }\r\nFoo\r"),
        "parsing config file in line (2), symbol 'Foo': syntax error"
    );
}

#[test]
fn fifth_empty_channel_and_default() {
    let c = ok("Sync { UDP { } UDP Default { } UDP { } UDP { } UDP { } }");
    let s = c.sync.unwrap();
    assert_eq!(s.channels.len(), 5);
    assert_eq!(s.default_channel, 1);
    assert!(s.channels[1].default);
    let c = ok("Sync { UDP Default { } UDP Default { } }");
    assert_eq!(c.sync.unwrap().default_channel, 1);
}

#[test]
fn multicast_v4_after_v6_overwrites_the_group() {
    let c = ok("Sync { Multicast { IPv6_address ff02::1 IPv4_address 1.2.3.4 } }");
    let ch = &c.sync.unwrap().channels[0];
    assert_eq!(ch.family, Some(Family::Ipv6));
    assert_eq!(ch.address, Some("102:304::1".parse::<IpAddr>().unwrap()));
}

#[test]
fn expectation_sync_off_keeps_it_enabled() {
    let c = ok("Sync { Options { ExpectationSync { ftp sip ftp } ExpectationSync off } }");
    let e = c.sync.unwrap().expectation_sync;
    assert!(e.enabled);
    assert!(!e.expect_events);
    assert_eq!(e.helpers, vec!["ftp".to_string(), "sip".to_string()]);
}

#[test]
fn filter_blocks_merge() {
    let c = ok(
        "General {\n Filter From Kernelspace { Protocol Ignore { UDP } }\n \
                Filter { Protocol Accept { TCP UDP } Address Accept { IPv4_address 1.2.3.4 \
                IPv4_address 1.2.3.4/32 } } }",
    );
    let f = c.general.filter.unwrap();
    assert_eq!(f.source, FilterSource::Userspace);
    let p = f.protocol.unwrap();
    assert_eq!(p.policy, FilterPolicy::Accept);
    assert_eq!(p.kernel_policy, FilterPolicy::Ignore);
    assert_eq!(p.items, vec![17, 6]);
    let a = f.address.unwrap();
    assert_eq!(a.addresses.ipv4, vec![Ipv4Addr::new(1, 2, 3, 4)]);
    assert!(f.state.is_none());
}

/// 1.4.7 makes its filter only at the end of a Protocol, Address or State
/// block: `Filter { }` filters nothing and logs no "using ... event
/// filtering" notice.
#[test]
fn a_filter_without_blocks_is_no_filter() {
    for text in [
        "General { Filter { } }",
        "General { Filter From Kernelspace { } }",
        "General { Filter From Userspace { } Filter { } }",
    ] {
        assert_eq!(ok(text).general.filter, None, "{text}");
    }
    let c = ok("General { Filter { } Filter From Kernelspace { Protocol Accept { } } }");
    let f = c.general.filter.expect("an empty block is a filter");
    assert_eq!(f.source, FilterSource::Kernelspace);
    assert!(f.protocol.unwrap().items.is_empty());
}

/// `getprotobyname` gives `mptcp` as 262: 1.4.7 takes it without a
/// warning, and its filter then matches no flow (the bit is outside its
/// 256-bit map).
#[test]
fn a_protocol_above_255_is_kept_and_matches_nothing() {
    let mut sys = StaticLookup::debian(&["lo"]);
    sys.protocols.push(("mptcp".into(), 262));
    let text = "General { Filter From Kernelspace { Protocol Accept { mptcp TCP } } }";
    let r = parse(text.as_bytes(), "c", &sys);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let f = r.result.unwrap().general.filter.unwrap();
    assert_eq!(f.protocol.as_ref().unwrap().items, vec![262, 6]);
    let flow = |proto: u8| ct_core::flow::Flow {
        family: ct_core::flow::AF_INET,
        orig: Some(ct_core::flow::Tuple {
            src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            dst: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
            l4proto: Some(proto),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(ct_core::filter::accept(&f, &flow(6)));
    assert!(!ct_core::filter::accept(&f, &flow(17)));
    // 262 as a byte would be 6: nothing but TCP itself passes
    let only = |items| ct_core::config::Filter {
        protocol: Some(Rule {
            policy: FilterPolicy::Accept,
            kernel_policy: FilterPolicy::Accept,
            items,
        }),
        ..f.clone()
    };
    assert!(!ct_core::filter::accept(&only(vec![262]), &flow(6)));
}

#[test]
fn state_lists() {
    let c = ok("General { Filter { State Ignore { for TCP LISTEN CLOSED CLOSE for TCP } } }");
    let s = c.general.filter.unwrap().state.unwrap();
    assert_eq!(s.items, vec![TcpState::Listen, TcpState::Close]);
    assert_eq!(s.policy, FilterPolicy::Ignore);
}

#[test]
fn helper_stack_order() {
    // the settings stack is emptied newest first: the first QueueNum wins,
    // and top-level items belong to the next Type block
    let c = ok("Helper { QueueNum 3 Type ftp inet tcp { QueueNum 1 QueueNum 2 } }");
    assert_eq!(c.helper.unwrap().helpers[0].queue_num, 3);
    let c = ok("Helper { Type ftp inet tcp { Type tftp inet udp { QueueNum 7 } } }");
    let h = c.helper.unwrap().helpers;
    assert_eq!((h[0].name.as_str(), h[0].queue_num), ("tftp", 7));
    assert_eq!((h[1].name.as_str(), h[1].queue_num), ("ftp", 0));
}

#[test]
fn sections_repeat_and_merge() {
    let c = ok(
        "General { HashSize 5 }\nGeneral { HashLimit 6 }\nSync { Mode ALARM { } }\n\
                Sync { RefreshTime 9 }\n",
    );
    assert_eq!((c.general.hash_size, c.general.hash_limit), (5, 6));
    let s = c.sync.unwrap();
    assert_eq!((s.mode(), s.refresh_time), (SyncMode::Alarm, 9));
}

#[test]
fn modes_are_ored_ftfw_wins() {
    let c = ok("Sync { Mode NOTRACK { } Mode ALARM { } Mode FTFW { } }");
    let s = c.sync.unwrap();
    assert_eq!(s.modes.selected(), Some(SyncMode::Ftfw));
    let c = ok("Sync { Mode NOTRACK { } Mode ALARM { } }");
    assert_eq!(c.sync.unwrap().mode(), SyncMode::Alarm);
}
