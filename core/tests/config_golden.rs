//! Golden tests: the example configurations under `fixtures/config/` (our
//! own equivalents of upstream's doc/sync/{ftfw,notrack,alarm},
//! doc/stats and Debian's default file) parse to the expected values.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ct_core::config::*;

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Parses a fixture with eth2 and lo present; returns the evaluated
/// configuration and all warnings.
fn parse_fixture(name: &str) -> (Config, Vec<Warning>) {
    let sys = StaticLookup::debian(&["lo", "eth2"]);
    let out = parse(&fixture(name), name, &sys);
    let (mut cfg, mut warnings) = out.into_result().unwrap_or_else(|e| panic!("{e}"));
    warnings.extend(evaluate(&mut cfg));
    (cfg, warnings)
}

/// The General section shared by the three sync examples.
fn sync_example_general() -> General {
    General {
        hash_size: 32768,
        hash_limit: 131_072,
        log_file: Some(PathBuf::from("/var/log/conntrackd.log")),
        lock_file: PathBuf::from("/var/lock/conntrack.lock"),
        unix_path: Some(PathBuf::from("/var/run/conntrackd.ctl")),
        netlink_buffer_size: 2_097_152,
        netlink_buffer_size_max_growth: 8_388_608,
        filter: Some(Filter {
            source: FilterSource::Userspace,
            protocol: Some(Rule {
                policy: FilterPolicy::Accept,
                kernel_policy: FilterPolicy::Accept,
                items: vec![6, 132, 33],
            }),
            address: Some(AddressRule {
                policy: FilterPolicy::Ignore,
                kernel_policy: FilterPolicy::Ignore,
                addresses: Addresses {
                    ipv4: [
                        [127, 0, 0, 1],
                        [192, 168, 0, 100],
                        [192, 168, 1, 100],
                        [192, 168, 0, 1],
                        [192, 168, 1, 1],
                        [192, 168, 100, 100],
                    ]
                    .into_iter()
                    .map(Ipv4Addr::from)
                    .collect(),
                    ..Addresses::default()
                },
            }),
            state: None,
        }),
        ..General::default()
    }
}

/// The multicast link shared by the three sync examples.
fn example_link() -> Channel {
    Channel {
        interface: Some("eth2".into()),
        family: Some(Family::Ipv4),
        address: Some(IpAddr::V4(Ipv4Addr::new(225, 0, 0, 50))),
        interface_address: Some(Ipv4Addr::new(192, 168, 100, 100)),
        port: 3780,
        sndbuf: 1_249_280,
        rcvbuf: 1_249_280,
        checksum: true,
        ..Channel::new(ChannelType::Multicast)
    }
}

fn sync_example(modes: SyncModes) -> Config {
    Config {
        general: sync_example_general(),
        sync: Some(SyncSection {
            modes,
            channels: vec![example_link()],
            ..SyncSection::default()
        }),
        ..Config::default()
    }
}

#[test]
fn ftfw_example() {
    let (cfg, warnings) = parse_fixture("sync-ftfw.conf");
    assert_eq!(warnings, vec![]);
    let expected = sync_example(SyncModes {
        ftfw: true,
        ..SyncModes::default()
    });
    assert_eq!(cfg, expected);
    let sync = cfg.sync.as_ref().unwrap();
    assert_eq!(sync.mode(), SyncMode::Ftfw);
    assert_eq!(sync.resend_queue_size, 131_072);
    assert_eq!(sync.ack_window_size, 300);
    assert_eq!(sync.purge_timeout, 60);
    assert_eq!(sync.commit_timeout, 0);
    assert_eq!(cfg.run_mode(), RunMode::Sync);
    assert_eq!(cfg.general.overrun_resync_secs(), Some(30));
    assert_eq!(cfg.spans.sync, Some(Span::at(5, 1)));
    assert_eq!(cfg.spans.channels, vec![Span::at(12, 2)]);
}

#[test]
fn notrack_example() {
    let (cfg, warnings) = parse_fixture("sync-notrack.conf");
    assert_eq!(warnings, vec![]);
    let expected = sync_example(SyncModes {
        notrack: true,
        ..SyncModes::default()
    });
    assert_eq!(cfg, expected);
    assert_eq!(cfg.sync.unwrap().mode(), SyncMode::Notrack);
}

#[test]
fn alarm_example() {
    let (cfg, warnings) = parse_fixture("sync-alarm.conf");
    assert_eq!(warnings, vec![]);
    let mut expected = sync_example(SyncModes {
        alarm: true,
        ..SyncModes::default()
    });
    let s = expected.sync.as_mut().unwrap();
    s.refresh_time = 15;
    s.cache_timeout = 180;
    assert_eq!(cfg, expected);
    assert_eq!(cfg.sync.unwrap().mode(), SyncMode::Alarm);
}

#[test]
fn sync_examples_without_eth2_warn() {
    let sys = StaticLookup::debian(&["lo"]);
    let out = parse(&fixture("sync-ftfw.conf"), "sync-ftfw.conf", &sys);
    assert!(out.result.is_ok());
    assert_eq!(out.warnings.len(), 1);
    let w = &out.warnings[0];
    assert_eq!(w.c_message(), "eth2 is an invalid interface");
    assert_eq!(w.span, Span::at(16, 13));
    assert_eq!(w.phase, Phase::Parse);
}

#[test]
fn stats_example() {
    let (cfg, warnings) = parse_fixture("stats.conf");
    assert_eq!(warnings, vec![]);
    let expected = Config {
        general: General {
            hash_size: 8192,
            hash_limit: 65535,
            lock_file: PathBuf::from("/var/lock/conntrack.lock"),
            unix_path: Some(PathBuf::from("/var/run/conntrackd.ctl")),
            netlink_buffer_size: 262_142,
            netlink_buffer_size_max_growth: 655_355,
            filter: Some(Filter {
                source: FilterSource::Userspace,
                protocol: Some(Rule {
                    policy: FilterPolicy::Accept,
                    kernel_policy: FilterPolicy::Accept,
                    items: vec![6],
                }),
                address: Some(AddressRule {
                    policy: FilterPolicy::Ignore,
                    kernel_policy: FilterPolicy::Ignore,
                    addresses: Addresses {
                        ipv4: vec![Ipv4Addr::LOCALHOST],
                        ..Addresses::default()
                    },
                }),
                state: None,
            }),
            ..General::default()
        },
        stats: Some(StatsSection {
            log_file: Some(PathBuf::from("/var/log/conntrackd-stats.log")),
            syslog: None,
        }),
        ..Config::default()
    };
    assert_eq!(cfg, expected);
    assert_eq!(cfg.run_mode(), RunMode::Stats);
}

#[test]
fn debian_default() {
    let (cfg, warnings) = parse_fixture("debian.conf");
    assert_eq!(
        warnings.iter().map(Warning::c_message).collect::<Vec<_>>(),
        vec!["deprecated unix backlog configuration, ignoring."]
    );
    assert_eq!(warnings[0].span, Span::at(13, 3));
    let expected = Config {
        general: General {
            hash_size: 8192,
            hash_limit: 65535,
            syslog: Some(SyslogFacility::Daemon),
            lock_file: PathBuf::from("/var/lock/conntrackd.lock"),
            unix_path: Some(PathBuf::from("/var/run/conntrackd.sock")),
            netlink_buffer_size: 262_142,
            netlink_buffer_size_max_growth: 655_355,
            systemd: true,
            ..General::default()
        },
        stats: Some(StatsSection {
            log_file: Some(PathBuf::from("/var/log/conntrackd-stats.log")),
            syslog: None,
        }),
        ..Config::default()
    };
    assert_eq!(cfg, expected);
}

#[test]
fn udp_multichannel_example() {
    let (cfg, warnings) = parse_fixture("sync-udp-multi.conf");
    assert_eq!(warnings, vec![]);
    let g = &cfg.general;
    assert_eq!(g.lock_file, PathBuf::from("/run/ct/lock"));
    assert_eq!(g.log_file, Some(PathBuf::from("/var/log/ct-sync.log")));
    assert_eq!(g.syslog, Some(SyslogFacility::Local(3)));
    assert_eq!(g.netlink_overrun_resync, -1);
    assert_eq!(g.overrun_resync_secs(), None);
    assert!(g.netlink_events_reliable);
    assert_eq!(g.event_iteration_limit, 250);
    assert_eq!(
        g.scheduler,
        Scheduler {
            policy: Some(SchedPolicy::Fifo),
            priority: Some(50)
        }
    );
    assert!(!g.systemd);
    assert_eq!(
        g.filter,
        Some(Filter {
            source: FilterSource::Kernelspace,
            protocol: Some(Rule {
                policy: FilterPolicy::Ignore,
                kernel_policy: FilterPolicy::Ignore,
                items: vec![17, 1],
            }),
            address: Some(AddressRule {
                policy: FilterPolicy::Accept,
                kernel_policy: FilterPolicy::Accept,
                addresses: Addresses {
                    ipv4: vec![],
                    ipv6: vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()],
                    ipv4_nets: vec![Ipv4Net {
                        addr: Ipv4Addr::new(10, 0, 0, 0),
                        prefix: 8
                    }],
                    ipv6_nets: vec![Ipv6Net {
                        addr: "fd00::".parse().unwrap(),
                        prefix: 8
                    }],
                },
            }),
            state: Some(Rule {
                policy: FilterPolicy::Accept,
                kernel_policy: FilterPolicy::Accept,
                items: vec![TcpState::Established, TcpState::SynSent],
            }),
        })
    );
    let expected_sync = SyncSection {
        modes: SyncModes {
            ftfw: true,
            ..SyncModes::default()
        },
        resend_queue_size: 65536,
        ack_window_size: 50,
        startup_resync: true,
        purge_timeout: 5,
        channels: vec![
            Channel {
                interface: Some("lo".into()),
                family: Some(Family::Ipv4),
                address: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))),
                destination: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))),
                port: 3780,
                checksum: false,
                ..Channel::new(ChannelType::Udp)
            },
            Channel {
                default: true,
                interface: Some("lo".into()),
                family: Some(Family::Ipv6),
                address: Some("fd01::1".parse().unwrap()),
                destination: Some("fd01::2".parse().unwrap()),
                port: 3781,
                rcvbuf: 4_194_304,
                ..Channel::new(ChannelType::Udp)
            },
        ],
        default_channel: 1,
        tcp_window_tracking: true,
        expectation_sync: ExpectationSync {
            enabled: true,
            expect_events: true,
            helpers: vec!["ftp".into(), "sip".into()],
        },
        ..SyncSection::default()
    };
    assert_eq!(cfg.sync, Some(expected_sync));
}

#[test]
fn helper_example() {
    let (cfg, warnings) = parse_fixture("helper.conf");
    assert_eq!(warnings, vec![]);
    assert_eq!(cfg.run_mode(), RunMode::None);
    assert_eq!(
        cfg.general.unix_path,
        Some(PathBuf::from("/run/ct/helper.ctl"))
    );
    assert_eq!(
        cfg.helper,
        Some(HelperSection {
            setup: true,
            helpers: vec![
                HelperInstance {
                    name: "ftp".into(),
                    l3: HelperL3::Inet,
                    l4: HelperL4::Tcp,
                    queue_num: 0,
                    queue_len: 10240,
                    policies: vec![HelperPolicy {
                        name: "ftp".into(),
                        expect_max: 1,
                        expect_timeout: 300
                    }],
                },
                HelperInstance {
                    name: "tftp".into(),
                    l3: HelperL3::Inet6,
                    l4: HelperL4::Udp,
                    queue_num: 1,
                    queue_len: 0,
                    policies: vec![HelperPolicy {
                        name: "tftp".into(),
                        expect_max: 1,
                        expect_timeout: 60
                    }],
                },
            ],
        })
    );
    assert_eq!(cfg.spans.helpers.len(), 2);
}

#[test]
fn empty_file_is_all_defaults() {
    let out = parse(b"", "empty.conf", &StaticLookup::default());
    let cfg = out.result.unwrap();
    assert_eq!(cfg, Config::default());
    assert_eq!(cfg.general.lock_file, PathBuf::from(DEFAULT_LOCKFILE));
    assert_eq!(cfg.general.hash_size, DEFAULT_HASHSIZE);
    assert_eq!(cfg.general.hash_limit, DEFAULT_HASHLIMIT);
    assert_eq!(cfg.run_mode(), RunMode::None);
}

#[test]
fn zero_means_default() {
    let text = b"General { HashSize 0 HashLimit 0 EventIterationLimit 0 NetlinkOverrunResync 0 }\n\
Sync { RefreshTime 0 CacheTimeout 0 PurgeTimeout 0 CommitTimeout 0\n\
Mode FTFW { ResendQueueSize 0 ACKWindowSize 0 }\nTCP { ErrorQueueLength 0 } }\n";
    let cfg = parse(text, "z.conf", &StaticLookup::default())
        .result
        .unwrap();
    assert_eq!(cfg.general, General::default());
    let s = cfg.sync.unwrap();
    assert_eq!(
        (
            s.refresh_time,
            s.cache_timeout,
            s.purge_timeout,
            s.commit_timeout
        ),
        (60, 180, 60, 0)
    );
    assert_eq!((s.resend_queue_size, s.ack_window_size), (131_072, 300));
    assert_eq!(s.error_queue_length, 128);
}

#[test]
fn load_reads_files_and_reports_missing_ones() {
    let sys = StaticLookup::debian(&["eth2"]);
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/stats.conf");
    assert!(load(&p, &sys).result.is_ok());
    let missing = Path::new("/nonexistent/x.conf");
    let e = load(missing, &sys).result.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Open { .. }));
    assert_eq!(
        e.c_message(),
        "can't open config file `/nonexistent/x.conf'"
    );
}

#[test]
fn os_lookup_reads_the_system() {
    let os = OsLookup::new();
    if Path::new("/etc/protocols").exists() {
        assert_eq!(os.protocol_by_name("tcp"), Some(6));
        assert_eq!(os.protocol_by_name("no-such-protocol"), None);
    }
    if Path::new("/sys/class/net/lo").exists() {
        assert!(os.interface_exists("lo"));
    }
    assert!(!os.interface_exists(".."));
    assert!(!os.interface_exists("a/b"));
    assert!(!os.interface_exists("abcdefghijklmnop"));
    // a stand-in protocols file
    let dir = std::env::temp_dir().join(format!("ct-core-proto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("protocols");
    std::fs::write(&f, "tcp 6 TCP\nfoo 200 FOO # test\n").unwrap();
    let os = OsLookup::with_paths(&f, &dir);
    assert_eq!(os.protocol_by_name("FOO"), Some(200));
    assert!(os.interface_exists("protocols"));
    std::fs::remove_dir_all(&dir).unwrap();
}
