//! `conntrackd`'s command line, parsed as 1.4.7 parses it: only the second
//! character of each word is looked at (`xd` acts as `-d`), option
//! arguments are the next word unless it starts with `-`, sub-arguments
//! match by prefix, and the last client option decides the request.

use ct_core::ctl::Request;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/conntrackd/conntrackd.conf";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the daemon (`detach` = `-d`).
    Daemon { detach: bool },
    /// Send one request to a running daemon.
    Client(Request),
    /// `-v`.
    Version,
    /// `-h`.
    Help,
}

/// How a message of the command line is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// As is, on stdout (the usage text).
    Out,
    /// A log line at error level.
    Error,
    /// A log line at warning level.
    Warning,
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub action: Action,
    pub config: String,
    /// Messages to print before acting.
    pub notes: Vec<(Note, String)>,
    /// Exit status after printing the notes, when the command line itself
    /// ends the program (usage errors).
    pub exit: Option<i32>,
}

const USAGE: &str = "Connection tracking userspace daemon v1.4.7\n\
Usage: conntrackd [commands] [options]\n\
\n\
General commands:\n\
\x20 -d, run in daemon mode\n\
\x20 -C [configfile], configuration file path\n\
\x20 -v, display conntrackd version\n\
\x20 -h, display this help information\n\
\n\
Client mode commands:\n\
\x20 -c [ct|expect], commit external cache to conntrack table\n\
\x20 -f [internal|external], flush internal and external cache\n\
\x20 -F [ct|expect], flush kernel conntrack table\n\
\x20 -i [ct|expect], display content of the internal cache\n\
\x20 -e [ct|expect], display the content of the external cache\n\
\x20 -k, kill conntrack daemon\n\
\x20 -s  [network|cache|runtime|link|rsqueue|queue|ct|expect], dump statistics\n\
\x20 -R [ct|expect], resync with kernel conntrack table\n\
\x20 -n, request resync with other node (only FT-FW and NOTRACK modes)\n\
\x20 -B, force a bulk send to other replica firewalls\n\
\x20 -x, dump cache in XML format (requires -i or -e)\n\
\x20 -t, reset the kernel timeout (see PurgeTimeout clause)\n\
\n";

pub const VERSION: &str = "Connection tracking userspace daemon v1.4.7. Licensed under GPLv2.\n(C) 2006-2009 Pablo Neira Ayuso <pablo@netfilter.org>\n";

/// The usage text, naming the program as it was started (`argv[0]`),
/// as 1.4.7 does.
pub fn usage(prog: &str) -> String {
    USAGE.replacen("Usage: conntrackd ", &format!("Usage: {prog} "), 1)
}

fn is_prefix(word: &str, keyword: &str) -> bool {
    keyword.starts_with(word)
}

/// Parses `argv` (program name included).
pub fn parse(argv: &[String]) -> Args {
    let mut a = Args {
        action: Action::Daemon { detach: false },
        config: DEFAULT_CONFIG.to_string(),
        notes: Vec::new(),
        exit: None,
    };
    let prog = argv.first().map(String::as_str).unwrap_or("conntrackd");
    let mut daemon = false;
    let mut client: Option<Request> = None;
    let mut i = 1;
    let next_word =
        |i: usize| -> Option<&String> { argv.get(i + 1).filter(|w| !w.starts_with('-')) };
    while i < argv.len() {
        let w = &argv[i];
        let c = w.as_bytes().get(1).copied().unwrap_or(0) as char;
        match c {
            'd' => daemon = true,
            'C' => match next_word(i) {
                Some(p) => {
                    a.config = p.clone();
                    i += 1;
                }
                None => {
                    a.notes.push((Note::Out, usage(prog)));
                    a.notes
                        .push((Note::Error, "Missing config filename".to_string()));
                }
            },
            'c' | 'i' | 'e' | 'F' | 'R' => {
                let sub = next_word(i);
                let (ct, exp) = match sub {
                    Some(s) if is_prefix(s, "ct") => (true, false),
                    Some(s) if is_prefix(s, "expect") => (false, true),
                    _ => (false, false),
                };
                if ct || exp {
                    i += 1;
                }
                use Request::*;
                client = Some(match (c, ct, exp) {
                    ('c', true, _) => CtCommit,
                    ('c', _, true) => ExpCommit,
                    ('c', _, _) => AllCommit,
                    ('i', _, true) => ExpDumpInternal,
                    ('i', _, _) => CtDumpInternal,
                    ('e', _, true) => ExpDumpExternal,
                    ('e', _, _) => CtDumpExternal,
                    ('F', true, _) => CtFlushMaster,
                    ('F', _, true) => ExpFlushMaster,
                    ('F', _, _) => AllFlushMaster,
                    ('R', true, _) => CtResyncMaster,
                    ('R', _, true) => ExpResyncMaster,
                    _ => AllResyncMaster,
                });
            }
            'f' => {
                let r = match next_word(i) {
                    None => Request::AllFlushCache,
                    Some(s) => {
                        i += 1;
                        if is_prefix(s, "internal") {
                            Request::CtFlushIntCache
                        } else if is_prefix(s, "external") {
                            Request::CtFlushExtCache
                        } else {
                            a.notes.push((
                                Note::Error,
                                format!("unknown parameter `{s}' for option `-f'"),
                            ));
                            a.exit = Some(1);
                            return a;
                        }
                    }
                };
                client = Some(r);
            }
            'x' => {
                client = Some(match client {
                    Some(Request::CtDumpInternal) => Request::CtDumpIntXml,
                    Some(Request::CtDumpExternal) => Request::CtDumpExtXml,
                    Some(Request::ExpDumpInternal) => Request::ExpDumpIntXml,
                    Some(Request::ExpDumpExternal) => Request::ExpDumpExtXml,
                    _ => {
                        a.notes.push((Note::Out, usage(prog)));
                        a.notes
                            .push((Note::Error, "Invalid parameters".to_string()));
                        a.exit = Some(1);
                        return a;
                    }
                });
            }
            'B' => client = Some(Request::SendBulk),
            't' => client = Some(Request::ResetTimers),
            'k' => client = Some(Request::Kill),
            'n' => client = Some(Request::RequestDump),
            's' => {
                let r = match next_word(i) {
                    None => Request::Stats,
                    Some(s) => {
                        i += 1;
                        let s = s.as_str();
                        if is_prefix(s, "network") {
                            Request::StatsNetwork
                        } else if is_prefix(s, "cache") {
                            Request::StatsCache
                        } else if is_prefix(s, "runtime") {
                            Request::StatsRuntime
                        } else if is_prefix(s, "multicast") {
                            a.notes.push((
                                Note::Warning,
                                "use `link' instead of `multicast' as parameter.".into(),
                            ));
                            Request::StatsLink
                        } else if is_prefix(s, "link") {
                            Request::StatsLink
                        } else if is_prefix(s, "rsqueue") {
                            Request::StatsRsqueue
                        } else if is_prefix(s, "process") {
                            Request::StatsProcess
                        } else if is_prefix(s, "queue") {
                            Request::StatsQueue
                        } else if is_prefix(s, "ct") {
                            Request::Stats
                        } else if is_prefix(s, "expect") {
                            Request::ExpStats
                        } else if is_prefix(s, "peers") {
                            // ours: what 1.4.7's `-s network` has no room for
                            Request::StatsPeers
                        } else {
                            a.notes.push((
                                Note::Error,
                                format!("unknown parameter `{s}' for option `-s'"),
                            ));
                            a.exit = Some(1);
                            return a;
                        }
                    }
                };
                client = Some(r);
            }
            'v' => {
                a.action = Action::Version;
                return a;
            }
            'h' => {
                a.action = Action::Help;
                return a;
            }
            _ => {
                a.notes.push((Note::Out, usage(prog)));
                a.notes.push((Note::Error, format!("Unknown option: {w}")));
                a.exit = Some(0);
                return a;
            }
        }
        i += 1;
    }
    if daemon && client.is_some() {
        a.notes.push((Note::Out, usage(prog)));
        a.notes
            .push((Note::Error, "Invalid parameters".to_string()));
        a.exit = Some(1);
        return a;
    }
    a.action = match client {
        Some(r) => Action::Client(r),
        None => Action::Daemon { detach: daemon },
    };
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Args {
        let mut a = vec!["conntrackd".to_string()];
        a.extend(v.iter().map(|s| s.to_string()));
        parse(&a)
    }

    #[test]
    fn usage_names_the_program_and_multicast_warns() {
        let a = parse(&["/opt/x/conntrackd".to_string(), "-z".to_string()]);
        assert_eq!(a.exit, Some(0));
        assert!(
            a.notes[0]
                .1
                .contains("\nUsage: /opt/x/conntrackd [commands] [options]\n"),
            "{:?}",
            a.notes
        );
        assert_eq!(a.notes[1], (Note::Error, "Unknown option: -z".to_string()));
        let a = p(&["-s", "multicast"]);
        assert_eq!(a.action, Action::Client(Request::StatsLink));
        // a log line on stderr (1.4.7's dlog), not text on stdout
        assert_eq!(
            a.notes,
            [(
                Note::Warning,
                "use `link' instead of `multicast' as parameter.".to_string()
            )]
        );
    }

    #[test]
    fn requests() {
        assert_eq!(
            p(&["-s", "n"]).action,
            Action::Client(Request::StatsNetwork)
        );
        assert_eq!(p(&["-s", "c"]).action, Action::Client(Request::StatsCache));
        assert_eq!(
            p(&["-s", "p"]).action,
            Action::Client(Request::StatsProcess)
        );
        assert_eq!(p(&["-s", "pe"]).action, Action::Client(Request::StatsPeers));
        assert_eq!(
            p(&["-i", "-x"]).action,
            Action::Client(Request::CtDumpIntXml)
        );
        assert_eq!(p(&["-c"]).action, Action::Client(Request::AllCommit));
        assert_eq!(p(&["-c", "ct"]).action, Action::Client(Request::CtCommit));
        assert_eq!(
            p(&["-f", "i"]).action,
            Action::Client(Request::CtFlushIntCache)
        );
        assert_eq!(p(&["xd"]).action, Action::Daemon { detach: true });
        assert_eq!(p(&["-C", "/x", "-k"]).config, "/x");
        assert_eq!(p(&["-d", "-c"]).exit, Some(1));
        assert_eq!(p(&["-x"]).exit, Some(1));
        assert_eq!(p(&["--help"]).exit, Some(0));
        assert_eq!(p(&["-s", "bogus"]).exit, Some(1));
    }
}
