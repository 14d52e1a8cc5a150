//! Every parser/evaluation message of upstream-facts §3.5 (and the other
//! messages of the parser): the typed error or warning, its position, our
//! own text and the exact text of conntrackd 1.4.7.

use ct_core::config::*;

fn sys() -> StaticLookup {
    StaticLookup::debian(&["lo", "eth0"])
}

/// Parses `text`, expects an error, returns it with the warnings before it.
fn error(text: &str) -> (ConfigError, Vec<Warning>) {
    let out = parse(text.as_bytes(), "conntrackd.conf", &sys());
    match out.result {
        Err(e) => (e, out.warnings),
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
    }
}

/// Parses and evaluates `text`, expects success, returns all warnings
/// (also those only the daemon prints).
fn all_warnings(text: &str) -> Vec<Warning> {
    let out = parse(text.as_bytes(), "conntrackd.conf", &sys());
    let mut w = out.warnings;
    let mut cfg = out
        .result
        .unwrap_or_else(|e| panic!("rejected {text:?}: {e}"));
    w.extend(evaluate(&mut cfg));
    w
}

/// The warnings `conntrackd -C FILE <client option>` prints.
fn warnings(text: &str) -> Vec<Warning> {
    let mut w = all_warnings(text);
    w.retain(|w| w.phase != Phase::Init);
    w
}

fn c_warnings(text: &str) -> Vec<String> {
    warnings(text).iter().map(Warning::c_message).collect()
}

fn syntax(text: &str, line: u32, col: u32, symbol: &str, c: &str) {
    let (e, _) = error(text);
    assert_eq!(e.span, Span::at(line, col), "{text:?}");
    assert!(
        matches!(&e.kind, ErrorKind::Syntax { symbol: Symbol::Token(t), .. } if t == symbol.as_bytes()),
        "{text:?}: {e:?}"
    );
    assert_eq!(e.c_message(), c, "{text:?}");
}

#[test]
fn unknown_general_keyword() {
    let (e, _) = error("General {\n    Foo 1\n}\n");
    assert_eq!(
        e.c_message(),
        "parsing config file in line (2), symbol 'Foo': syntax error"
    );
    assert_eq!(
        e.kind,
        ErrorKind::Syntax {
            symbol: Symbol::Token(b"Foo".to_vec()),
            expected: Expected::GeneralKeyword
        }
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(
            "conntrackd.conf:2:5: syntax error at 'Foo': expected a General keyword (HashSize, \
             HashLimit, "
        ),
        "{shown}"
    );
}

#[test]
fn syntax_error_rows() {
    syntax(
        "General {\n HashSize abc\n}\n",
        2,
        11,
        "abc",
        "parsing config file in line (2), symbol 'abc': syntax error",
    );
    syntax(
        "Stats {\n NetlinkEventsReliable no\n}\n",
        2,
        2,
        "NetlinkEventsReliable",
        "parsing config file in line (2), symbol 'NetlinkEventsReliable': syntax error",
    );
    syntax(
        "general {\n}\n",
        1,
        1,
        "general",
        "parsing config file in line (1), symbol 'general': syntax error",
    );
    syntax(
        "Sync {\n Mode FTFW {\n  RefreshTime 5\n }\n}\n",
        3,
        3,
        "RefreshTime",
        "parsing config file in line (3), symbol 'RefreshTime': syntax error",
    );
    syntax(
        "General {\n UNIX {\n  Path relative/path\n }\n}\n",
        3,
        8,
        "relative",
        "parsing config file in line (3), symbol 'relative': syntax error",
    );
}

#[test]
fn expected_descriptions() {
    let exp = |t: &str| match error(t).0.kind {
        ErrorKind::Syntax { expected, .. } => expected,
        k => panic!("{k:?}"),
    };
    assert_eq!(exp("}"), Expected::Section);
    assert_eq!(exp("General HashSize"), Expected::OpenBrace);
    assert_eq!(exp("General { HashSize on }"), Expected::Number);
    assert_eq!(exp("General { Nice 5 }"), Expected::SignedNumber);
    assert_eq!(exp("General { LockFile foo }"), Expected::Path);
    assert_eq!(exp("General { LogFile foo }"), Expected::OnOffPath);
    assert_eq!(exp("General { Syslog 5 }"), Expected::OnOffFacility);
    assert_eq!(exp("General { Systemd 1 }"), Expected::OnOff);
    assert_eq!(exp("General { Filter From x"), Expected::FilterSpace);
    assert_eq!(exp("General { Filter { Port"), Expected::FilterItem);
    assert_eq!(
        exp("General { Filter { State Accept { LISTEN } } }"),
        Expected::StateItem
    );
    assert_eq!(exp("Sync { Mode FAST { } }"), Expected::ModeName);
    assert_eq!(
        exp("Sync { Mode ALARM { ResendQueueSize 1 } }"),
        Expected::AlarmKeyword
    );
    assert_eq!(
        exp("Sync { Mode NOTRACK { ACKWindowSize 1 } }"),
        Expected::NotrackKeyword
    );
    assert_eq!(
        exp("Sync { UDP { ErrorQueueLength 1 } }"),
        Expected::UdpKeyword
    );
    assert_eq!(
        exp("Sync { Multicast { Port 1 } }"),
        Expected::MulticastKeyword
    );
    assert_eq!(exp("Sync { TCP { Group 1 } }"), Expected::TcpKeyword);
    assert_eq!(
        exp("Sync { Options { ExpectationSync 5 } }"),
        Expected::ExpectationValue
    );
    assert_eq!(
        exp("Helper { Type ftp inet tcp { Setup on } }"),
        Expected::HelperTypeKeyword
    );
    assert_eq!(exp("Stats { HashSize 1 }"), Expected::StatsKeyword);
    let shown = error("Sync { Mode FAST { } }").0.to_string();
    assert_eq!(
        shown,
        "conntrackd.conf:1:13: syntax error at 'FAST': expected a sync mode (FTFW, ALARM, NOTRACK)"
    );
}

#[test]
fn end_of_input_symbols() {
    let (e, _) = error("General {");
    assert_eq!(e.span, Span::at(1, 10));
    assert!(matches!(
        e.kind,
        ErrorKind::Syntax {
            symbol: Symbol::EndOfInput,
            ..
        }
    ));
    assert_eq!(
        e.c_message(),
        "parsing config file in line (1), symbol '': syntax error"
    );
    assert!(e.to_string().contains("syntax error at end of input"));
    let (e, _) = error("General {\n");
    assert_eq!(
        e.c_message(),
        "parsing config file in line (2), symbol '': syntax error"
    );
    // a comment needs a newline after it
    let (e, _) = error("# c");
    assert_eq!(
        e.c_message(),
        "parsing config file in line (1), symbol '#': syntax error"
    );
    // NUL and bytes >= 0x80 end the input: fine between sections...
    assert!(warnings("General { }\0 garbage\n").is_empty());
    assert!(warnings("General { }\n\u{e9} garbage\n").is_empty());
    // ...and a syntax error inside one, printed raw
    let out = parse(b"General { \xff }\n", "c", &sys());
    let e = out.result.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Syntax {
            symbol: Symbol::EndByte(0xff),
            expected: Expected::GeneralKeyword
        }
    );
    assert_eq!(
        e.c_message_bytes(),
        b"parsing config file in line (1), symbol '\xff': syntax error".to_vec()
    );
}

#[test]
fn stats_and_sync() {
    for text in ["Sync {}\nStats {}\n", "Stats {} Sync {}\n"] {
        let (e, _) = error(text);
        assert_eq!(e.kind, ErrorKind::StatsAndSync);
        assert_eq!(
            e.c_message(),
            "cannot use both `Stats' and `Sync' clauses in conntrackd.conf"
        );
    }
    let (e, _) = error("Sync {}\nStats {}\n");
    assert_eq!(e.span, Span::at(2, 1));
}

#[test]
fn scheduler_errors() {
    let (e, _) = error("General { Scheduler { Type FOO } }");
    assert_eq!(e.kind, ErrorKind::UnknownScheduler { name: "FOO".into() });
    assert_eq!(e.c_message(), "unknown scheduler `FOO'");
    let (e, _) = error("General { Scheduler { Priority 100 } }");
    assert_eq!(e.kind, ErrorKind::PriorityOutOfRange { value: 100 });
    assert_eq!(e.c_message(), "`Priority' must be [0, 99]\n");
    // atoi wraps: 4294967295 is -1
    let (e, _) = error("General { Scheduler { Priority 4294967295 } }");
    assert_eq!(e.kind, ErrorKind::PriorityOutOfRange { value: -1 });
    assert!(warnings("General { Scheduler { Type rr Priority 99 } }").is_empty());
}

#[test]
fn poll_secs_zero() {
    let (e, _) = error("General { PollSecs 0 }");
    assert_eq!(e.kind, ErrorKind::PollSecsZero);
    assert_eq!(e.c_message(), "`PollSecs' clause must be > 0");
    let (e, _) = error("General { PollSecs 4294967296 }");
    assert_eq!(e.kind, ErrorKind::PollSecsZero);
}

#[test]
fn nice_is_deprecated() {
    let w = warnings("General {\n Nice -1\n}\n");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].kind, WarningKind::NiceDeprecated);
    assert_eq!(w[0].span, Span::at(2, 2));
    assert_eq!(
        w[0].c_message(),
        "deprecated nice configuration, ignoring. The nice value can be set externally with \
         nice(1) and renice(1)."
    );
}

#[test]
fn syslog_facilities() {
    assert_eq!(
        c_warnings("General { Syslog local9 }"),
        vec!["'local9' is not a known syslog facility, ignoring"]
    );
    // Stats' variant ends with a period
    assert_eq!(
        c_warnings("Stats { Syslog local9 }"),
        vec!["'local9' is not a known syslog facility, ignoring."]
    );
    assert_eq!(
        c_warnings("General { Syslog local1 }\nStats { Syslog local2 }"),
        vec!["conflicting Syslog facility values, defaulting to General"]
    );
    assert_eq!(
        c_warnings("Stats { Syslog local2 }\nGeneral { Syslog local1 }"),
        vec!["conflicting Syslog facility values, defaulting to General"]
    );
    assert!(c_warnings("Stats { Syslog local2 }\nGeneral { Syslog on }").is_empty());
}

#[test]
fn renamed_modes() {
    let w = warnings("Sync { Mode PERSISTENT { } }");
    assert_eq!(w[0].kind, WarningKind::PersistentRenamed);
    assert_eq!(
        w[0].c_message(),
        "Now `persistent' mode is called `alarm'. Please, update your conntrackd.conf file."
    );
    let w = warnings("Sync { Mode nack { } }");
    assert_eq!(w[0].kind, WarningKind::NackRenamed);
    assert_eq!(
        w[0].c_message(),
        "Now `nack' mode is called `ftfw'. Please, update your conntrackd.conf file.\n"
    );
    // the last letter of upstream's pattern is [T|T]: lower-case fails
    let (e, _) = error("Sync { Mode persistent { } }");
    assert_eq!(
        e.c_message(),
        "parsing config file in line (1), symbol 'persistent': syntax error"
    );
}

#[test]
fn channel_errors() {
    let (e, _) = error("Sync { Multicast { }\nUDP { Port 1 }\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::MixedChannels {
            kind: ChannelType::Udp
        }
    );
    assert_eq!(
        e.c_message(),
        "cannot use `UDP' with other dedicated link protocols!"
    );
    assert_eq!(e.span, Span::at(2, 1));
    let (e, _) = error("Sync {\nUDP { }\nUDP { }\nUDP { }\nUDP { }\nUDP { Port 1 }\n}\n");
    assert_eq!(e.kind, ErrorKind::TooManyChannels);
    assert_eq!(
        e.c_message(),
        "too many dedicated links in the configuration file (Maximum: 4)"
    );
    assert_eq!(e.span, Span::at(6, 7));
    // a fifth block without options is accepted by 1.4.7
    let out = parse(
        b"Sync { UDP { } UDP { } UDP { } UDP { } UDP { } }",
        "c",
        &sys(),
    );
    assert_eq!(out.result.unwrap().sync.unwrap().channels.len(), 5);
}

#[test]
fn channel_warnings() {
    let w = warnings("Sync { UDP {\n Interface nosuchif0\n} }");
    assert_eq!(
        w[0].kind,
        WarningKind::InvalidInterface {
            name: "nosuchif0".into()
        }
    );
    assert_eq!(w[0].c_message(), "nosuchif0 is an invalid interface");
    assert_eq!(w[0].span, Span::at(2, 12));
    assert_eq!(
        c_warnings("Sync { UDP { IPv4_address 300.1.1.1 } }"),
        vec!["300.1.1.1 is not a valid IPv4 address"]
    );
    assert_eq!(
        c_warnings("Sync { UDP { IPv6_address fe80::1/64 } }"),
        vec!["fe80::1/64 is not a valid IPv6 address"]
    );
    assert_eq!(
        c_warnings("Sync { Multicast { IPv6_interface ::1 } }"),
        vec!["`IPv6_interface' not required, ignoring"]
    );
    assert_eq!(
        c_warnings(
            "Sync { Multicast { IPv6_address ff02::1 Interface lo IPv4_address 1.2.3.4 \
             IPv4_interface 1.1.1.1 } }"
        ),
        vec![
            "your multicast address is IPv4 but is binded to an IPv6 interface? Surely, this is \
             not what you want",
            "your multicast interface is IPv4 but is binded to an IPv6 interface? Surely, this \
             is not what you want",
        ]
    );
    assert_eq!(
        c_warnings("Sync { Multicast { IPv4_address 1.2.3.4 IPv6_address ff02::1 } }"),
        vec![
            "your multicast address is IPv6 but is binded to an IPv4 interface? Surely this is \
             not what you want"
        ]
    );
    // upstream looks the IPv6 group up as an interface name
    assert_eq!(
        c_warnings("Sync { Multicast { Interface lo IPv6_address ff02::1 } }"),
        vec!["ff02::1 is an invalid interface"]
    );
}

#[test]
fn commit_timeout_with_disabled_external_cache() {
    let text = "Sync {\n Mode FTFW {\n  DisableExternalCache on\n  CommitTimeout 10\n }\n}\n";
    let out = parse(text.as_bytes(), "c", &sys());
    assert!(out.warnings.is_empty());
    let mut cfg = out.result.unwrap();
    assert_eq!(cfg.sync.as_ref().unwrap().commit_timeout, 10);
    let w = evaluate(&mut cfg);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].kind, WarningKind::CommitTimeoutIgnored);
    assert_eq!(w[0].phase, Phase::Evaluate);
    assert_eq!(w[0].span, Span::at(4, 3));
    assert_eq!(
        w[0].c_message(),
        "`CommitTimeout' can't be combined with `DisableExternalCache', ignoring this option. \
         Fix your configuration file."
    );
    assert_eq!(cfg.sync.unwrap().commit_timeout, 0);
}

#[test]
fn no_sync_mode_is_an_init_warning() {
    assert!(warnings("Sync {\n}\n").is_empty());
    let w = all_warnings("Sync {\n}\n");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].kind, WarningKind::NoSyncMode);
    assert_eq!(w[0].phase, Phase::Init);
    assert_eq!(
        w[0].c_message(),
        "No synchronization mode specified. Defaulting to FT-FW mode."
    );
    let cfg = parse(b"Sync { }", "c", &sys()).result.unwrap();
    assert_eq!(cfg.sync.unwrap().mode(), SyncMode::Ftfw);
    // neither Sync nor Stats: 1.4.7 prints nothing
    assert!(warnings("General { }").is_empty());
}

#[test]
fn filter_warnings() {
    let w = warnings("General { Filter { Address Ignore { IPv4_address 1.2.3.4/33 } } }");
    assert_eq!(
        w[0].kind,
        WarningKind::InvalidNetwork {
            addr: "1.2.3.4".into(),
            prefix: 33
        }
    );
    assert_eq!(
        w[0].c_message(),
        "1.2.3.4/33 is not a valid network, ignoring"
    );
    assert_eq!(
        c_warnings(
            "General { Filter { Address Ignore { IPv4_address 1.2.3.4/4294967295 \
             IPv4_address 300.1.1.1 IPv4_address 08.1.1.1 IPv6_address ::1/129 \
             IPv4_address 1.2.3.0/24 IPv4_address 1.2.3.0/24 IPv4_address 9.9.9.9 \
             IPv4_address 9.9.9.9 } } }"
        ),
        vec![
            "1.2.3.4/-1 is not a valid network, ignoring",
            "300.1.1.1 is not a valid IPv4, ignoring",
            "08.1.1.1 is not a valid IPv4, ignoring",
            "::1/129 is not a valid network, ignoring",
            "netmask 1.2.3.0 is repeated in the ignore pool",
        ]
    );
    let w = warnings("General { Filter { Protocol Accept { FOO } } }");
    assert_eq!(
        w[0].kind,
        WarningKind::UnknownProtocol { name: "FOO".into() }
    );
    assert_eq!(
        w[0].c_message(),
        "getprotobyname() cannot find protocol `FOO' in /etc/protocols"
    );
    // names and aliases are case-sensitive
    assert_eq!(
        c_warnings("General { Filter { Protocol Accept { tcp TCP Tcp } } }"),
        vec!["getprotobyname() cannot find protocol `Tcp' in /etc/protocols"]
    );
}

#[test]
fn unix_backlog_and_path_lengths() {
    assert_eq!(
        c_warnings("General { UNIX { Path /x Backlog 5 } }"),
        vec!["deprecated unix backlog configuration, ignoring."]
    );
    let p = |n: usize| format!("/{}", "a".repeat(n - 1));
    assert!(warnings(&format!("General {{ UNIX {{ Path {} }} }}", p(107))).is_empty());
    let (e, _) = error(&format!("General {{ UNIX {{ Path {} }} }}", p(108)));
    assert_eq!(e.kind, ErrorKind::UnixPathTooLong);
    assert_eq!(e.c_message(), "Path is longer than 107 characters");
    assert!(warnings(&format!("General {{ LockFile {} }}", p(256))).is_empty());
    let (e, _) = error(&format!("General {{ LockFile {} }}", p(257)));
    assert_eq!(e.c_message(), "LockFile path is longer than 256 characters");
    let (e, _) = error(&format!("General {{ LogFile {} }}", p(257)));
    assert_eq!(e.c_message(), "LogFile path is longer than 256 characters");
    let (e, _) = error(&format!("Stats {{ LogFile {} }}", p(257)));
    assert_eq!(
        e.c_message(),
        "stats LogFile path is longer than 256 characters"
    );
}

#[test]
fn helper_errors() {
    let rows: &[(&str, ErrorKind, &str)] = &[
        (
            "Helper { Type ftp inet udp { } }",
            ErrorKind::UnknownHelper { name: "ftp".into() },
            "Unknown `ftp' helper",
        ),
        (
            "Helper { Type ftp ipx tcp { } }",
            ErrorKind::UnknownL3Protocol { name: "ipx".into() },
            "unknown layer 3 protocol",
        ),
        (
            "Helper { Type ftp inet sctp { } }",
            ErrorKind::UnknownL4Protocol {
                name: "sctp".into(),
            },
            "unknown layer 4 protocol",
        ),
        (
            "Helper { Type ftp inet tcp { Policy ftp { } } }",
            ErrorKind::HelperPolicyEmpty,
            "Helper policy configuration empty, fix your configuration file, please",
        ),
        (
            "Helper { Type ftp inet tcp { Policy xx { ExpectMax 1 } } }",
            ErrorKind::UnknownHelperPolicy { name: "xx".into() },
            "Unknown policy `xx' in helper configuration",
        ),
        (
            "Helper { Type ftp inet tcp { Policy abcdefghijklmnopq { ExpectMax 1 } } }",
            ErrorKind::HelperPolicyNameTooLong,
            "Helper Policy is longer than 16 characters",
        ),
    ];
    for (text, kind, c) in rows {
        let (e, _) = error(text);
        assert_eq!(&e.kind, kind, "{text}");
        assert_eq!(e.c_message(), *c, "{text}");
    }
}

#[test]
fn warnings_come_before_the_error() {
    let (e, w) = error("General { Nice -1\n Syslog local9\n Foo }");
    assert_eq!(w.len(), 2);
    assert_eq!(e.span, Span::at(3, 2));
}

fn nested(pre: &str, n: usize, inner: &str) -> String {
    format!(
        "{pre}\nHelper {{{}{inner}{} }}\n",
        " Type ftp inet tcp {".repeat(n),
        " }".repeat(n)
    )
}

#[test]
fn parser_stack_limit_of_upstream() {
    // runs in a test thread (2 MiB stack): the recursion must fit
    assert!(warnings(&nested("", 1665, "")).is_empty());
    for pre in ["", "General { }"] {
        let (e, _) = error(&nested(pre, 1666, ""));
        assert_eq!(
            e.kind,
            ErrorKind::ParserStackExhausted {
                symbol: Symbol::Token(b"{".to_vec())
            }
        );
        assert_eq!(
            e.c_message(),
            "parsing config file in line (2), symbol '{': memory exhausted"
        );
    }
    let (e, _) = error(&nested("", 1665, " Policy ftp { ExpectMax 1 } QueueNum 5"));
    assert_eq!(
        e.c_message(),
        "parsing config file in line (2), symbol '1': memory exhausted"
    );
}

/// `Sync { Authentication { } }` (an extension): accepted with its
/// values, and each mistake is an error at the right place.
#[test]
fn authentication_block() {
    let udp = "\tUDP {\n\t\tIPv4_address 10.0.0.1\n\t\tIPv4_Destination_Address 10.0.0.2\n\t\tPort 3780\n\t\tInterface eth0\n\t}\n";
    let ok = format!(
        "Sync {{\n\tMode FTFW {{ }}\n\tAuthentication {{\n\t\tKeyFile /etc/conntrackd/sync.key\n\t\tReplayWindow 2048\n\t}}\n{udp}}}\n"
    );
    let out = parse(ok.as_bytes(), "conntrackd.conf", &sys());
    let cfg = out.result.expect("accepted");
    let a = cfg.sync.as_ref().unwrap().auth.as_ref().expect("auth");
    assert_eq!(a.key_file, std::path::Path::new("/etc/conntrackd/sync.key"));
    assert_eq!(a.replay_window, 2048);
    // Defaults: off; window 1024.
    let plain = format!("Sync {{\n\tMode FTFW {{ }}\n{udp}}}\n");
    let cfg = parse(plain.as_bytes(), "f", &sys()).result.unwrap();
    assert!(cfg.sync.unwrap().auth.is_none());
    let dflt = format!("Sync {{\n\tAuthentication {{ KeyFile /k }}\n{udp}}}\n");
    let cfg = parse(dflt.as_bytes(), "f", &sys()).result.unwrap();
    assert_eq!(cfg.sync.unwrap().auth.unwrap().replay_window, 1024);

    let (e, _) = error(&format!("Sync {{\n\tAuthentication {{ }}\n{udp}}}\n"));
    assert_eq!(
        (e.kind, e.span),
        (ErrorKind::AuthWithoutKeyFile, Span::at(2, 2))
    );
    let (e, _) = error(&format!(
        "Sync {{\n\tAuthentication {{\n\t\tKeyFile /k\n\t\tReplayWindow 10\n\t}}\n{udp}}}\n"
    ));
    assert_eq!(
        (e.kind, e.span),
        (
            ErrorKind::ReplayWindowOutOfRange { value: 10 },
            Span::at(4, 3)
        )
    );
    let (e, _) = error(&format!(
        "Sync {{\n\tAuthentication {{\n\t\tKey /k\n\t}}\n{udp}}}\n"
    ));
    assert_eq!(e.span, Span::at(3, 3));
    assert!(
        e.to_string()
            .contains("an Authentication keyword (KeyFile, ReplayWindow)"),
        "{e}"
    );
    let (e, _) = error(&format!(
        "Sync {{\n\tAuthentication {{ KeyFile relative/k }}\n{udp}}}\n"
    ));
    assert_eq!(e.span.line, 2);
    let tcp = udp.replace("UDP", "TCP");
    let (e, _) = error(&format!(
        "Sync {{\n\tAuthentication {{ KeyFile /k }}\n{tcp}}}\n"
    ));
    assert_eq!((e.kind, e.span), (ErrorKind::AuthOverTcp, Span::at(2, 2)));
}

/// `Sync { Snapshot { } }` (an extension): values, default interval, errors.
#[test]
fn snapshot_block() {
    let ok =
        "Sync {\n\tSnapshot {\n\t\tPath /var/lib/conntrackd/ext.snap\n\t\tInterval 5\n\t}\n}\n";
    let cfg = parse(ok.as_bytes(), "f", &sys()).result.expect("accepted");
    let s = cfg.sync.unwrap().snapshot.expect("snapshot");
    assert_eq!(s.path, std::path::Path::new("/var/lib/conntrackd/ext.snap"));
    assert_eq!(s.interval, 5);
    let dflt = "Sync {\n\tSnapshot { Path /s }\n}\n";
    let cfg = parse(dflt.as_bytes(), "f", &sys()).result.unwrap();
    assert_eq!(cfg.sync.unwrap().snapshot.unwrap().interval, 10);
    let (e, _) = error("Sync {\n\tSnapshot { Interval 5 }\n}\n");
    assert_eq!(
        (e.kind, e.span),
        (ErrorKind::SnapshotWithoutPath, Span::at(2, 2))
    );
    let (e, _) = error("Sync {\n\tSnapshot {\n\t\tPath /s\n\t\tInterval 0\n\t}\n}\n");
    assert_eq!(
        (e.kind, e.span),
        (ErrorKind::SnapshotIntervalZero, Span::at(4, 3))
    );
    let (e, _) = error("Sync {\n\tSnapshot { File /s }\n}\n");
    assert_eq!(e.span, Span::at(2, 13));
    assert!(
        e.to_string()
            .contains("a Snapshot keyword (Path, Interval)"),
        "{e}"
    );
}
