//! `ctperf`: load generation and measurement for the conntrack tools.
//!
//!   ctperf fill [-n N] [--rate R] [--batch B] [--timeout T] [--udp] [--delete] [--start I] [--helper NAME]
//!   ctperf churn [--rate R] [--secs S] [--life L] [--long-every K] [--update-rate U] [--step-us T] [--start I] [--keep]
//!   ctperf latency --from NS --to NS [churn options] [--drain S] [--json FILE] [--svg FILE]
//!   ctperf flows [--tcp N] [--udp N] [--hold S] [--prefix P]
//!   ctperf sync source --to IP:PORT [-n N] [--rate R] [--mtu M] [--bind IP:PORT] [--start I]
//!   ctperf sync sink --bind IP:PORT [--secs S] [--idle S]
//!   ctperf sync hostile --to IP:PORT [--bind IP:PORT]   (one datagram per kind of damage)
//!   ctperf sync forge --to IP:PORT --key FILE [--bind IP:PORT]   (attacks on an authenticated link)
//!   ctperf sync relay --a IP:PORT --peer-a IP:PORT --b IP:PORT --peer-b IP:PORT
//!                     [--loss P] [--dup P] [--reorder P] [--secs S] [--seed N]
//!   ctperf bench SCENARIO [--out DIR]    (ctperf bench list: the scenarios)
//!   ctperf dump        raw dump of the table, parsing nothing (benchmark floor)
//!   ctperf cachemem [-n N]  RSS per flow of the daemon's flow cache
//!
//! Every command prints one JSON object on stdout (bench: one per step);
//! progress goes to stderr when it is a terminal.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use ct_tools::perf::churn::{churn, ChurnSpec};
use ct_tools::perf::fill::{fill, raw_dump, FillSpec};
use ct_tools::perf::{bench, flows, forge, latency, svg, sync};

const USAGE: &str = "usage: ctperf fill [-n N] [--rate R] [--batch B] [--timeout T] [--udp] [--delete] [--start I] [--helper NAME]
       ctperf churn [--rate R] [--secs S] [--life L] [--long-every K] [--update-rate U] [--step-us T] [--start I] [--keep]
       ctperf latency --from NS --to NS [--rate R] [--secs S] [--life L] [--long-every K] [--update-rate U]
                      [--step-us T] [--start I] [--drain S] [--json FILE] [--svg FILE]
       ctperf flows [--tcp N] [--udp N] [--hold S] [--prefix P]
       ctperf sync source --to IP:PORT [-n N] [--rate R] [--mtu M] [--bind IP:PORT] [--start I]
       ctperf sync sink --bind IP:PORT [--secs S] [--idle S]
       ctperf sync hostile --to IP:PORT [--bind IP:PORT]
       ctperf sync forge --to IP:PORT --key FILE [--bind IP:PORT]
       ctperf sync relay --a IP:PORT --peer-a IP:PORT --b IP:PORT --peer-b IP:PORT [--loss P] [--dup P] [--reorder P] [--secs S]
       ctperf bench SCENARIO [--out DIR] [--runs N]   (ctperf bench list)
       ctperf dump
       ctperf cachemem [-n N]";

/// A JSON array of plain strings (the kind names have no quotes or
/// backslashes).
fn json_strings(v: &[&str]) -> String {
    let items: Vec<String> = v.iter().map(|k| format!("\"{k}\"")).collect();
    format!("[{}]", items.join(","))
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}

fn fail(msg: &str) -> ! {
    eprintln!("ctperf: {msg}");
    std::process::exit(1)
}

/// `--key value` options and `--flag`s of one subcommand.
struct Opts {
    vals: HashMap<String, String>,
    flags: Vec<String>,
}

impl Opts {
    fn parse(args: impl Iterator<Item = String>, keys: &[&str], flags: &[&str]) -> Opts {
        let mut o = Opts {
            vals: HashMap::new(),
            flags: Vec::new(),
        };
        let mut args = args;
        while let Some(a) = args.next() {
            if flags.contains(&a.as_str()) {
                o.flags.push(a);
            } else if keys.contains(&a.as_str()) {
                let v = args.next().unwrap_or_else(|| usage());
                o.vals.insert(a, v);
            } else {
                eprintln!("ctperf: unknown option `{a}'");
                usage();
            }
        }
        o
    }

    fn num(&self, k: &str, default: u64) -> u64 {
        match self.vals.get(k) {
            Some(v) => v.replace('_', "").parse().unwrap_or_else(|_| usage()),
            None => default,
        }
    }

    fn float(&self, k: &str, default: f64) -> f64 {
        match self.vals.get(k) {
            Some(v) => v.parse().unwrap_or_else(|_| usage()),
            None => default,
        }
    }

    fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.vals.get(k).map(String::as_str)
    }
}

const CHURN_KEYS: [&str; 7] = [
    "--rate",
    "--step-us",
    "--secs",
    "--life",
    "--long-every",
    "--update-rate",
    "--start",
];

fn churn_spec(o: &Opts) -> ChurnSpec {
    let d = ChurnSpec::default();
    ChurnSpec {
        rate: o.num("--rate", d.rate),
        secs: o.float("--secs", d.secs),
        life: o.float("--life", d.life),
        long_every: o.num("--long-every", d.long_every),
        update_rate: o.num("--update-rate", d.update_rate),
        start: o.num("--start", d.start),
        cleanup: !o.flag("--keep"),
        step: std::time::Duration::from_micros(
            o.num("--step-us", d.step.as_micros() as u64).max(1),
        ),
    }
}

/// A one-line progress bar on stderr (only on a terminal).
fn bar(done: u64, total: u64) {
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    let _ = write!(
        std::io::stderr(),
        "\r[{}{}] {:>3}% {done}/{total}",
        "#".repeat(filled),
        " ".repeat(width as usize - filled),
        done * 100 / total.max(1)
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tty = std::io::stderr().is_terminal();
    match args.next().as_deref() {
        Some("fill") => {
            let o = Opts::parse(
                args,
                &[
                    "-n",
                    "--rate",
                    "--batch",
                    "--timeout",
                    "--start",
                    "--helper",
                ],
                &["--udp", "--delete"],
            );
            let d = FillSpec::default();
            let spec = FillSpec {
                n: o.num("-n", d.n),
                rate: o.num("--rate", d.rate),
                batch: o.num("--batch", d.batch as u64).max(1) as usize,
                timeout: o.num("--timeout", d.timeout as u64) as u32,
                start: o.num("--start", d.start),
                udp: o.flag("--udp"),
                delete: o.flag("--delete"),
                helper: o.str("--helper").map(str::to_string),
            };
            let mut last = 0u64;
            let r = fill(&spec, |sent| {
                if tty && (sent - last >= spec.n / 100 || sent == spec.n) {
                    last = sent;
                    bar(sent, spec.n);
                }
            })
            .unwrap_or_else(|e| fail(&format!("fill failed: {e}")));
            if tty {
                eprintln!();
            }
            println!(
                "{{\"op\":\"{}\",\"n\":{},\"seconds\":{:.6},\"per_second\":{:.0},\"send_errors\":{}}}",
                if spec.delete { "delete" } else { "fill" },
                r.sent,
                r.seconds,
                r.sent as f64 / r.seconds.max(1e-9),
                r.send_errors
            );
        }
        Some("churn") => {
            let o = Opts::parse(args, &CHURN_KEYS, &["--keep"]);
            let spec = churn_spec(&o);
            let r = churn(
                &spec,
                |_, _| {},
                |p| {
                    if tty {
                        let _ = write!(
                            std::io::stderr(),
                            "\r{:>5.1}s created {} updated {} destroyed {} live {} errors {}   ",
                            p.seconds,
                            p.created,
                            p.updated,
                            p.destroyed,
                            p.live,
                            p.errors
                        );
                    }
                },
            )
            .unwrap_or_else(|e| fail(&format!("churn failed: {e}")));
            if tty {
                eprintln!();
            }
            println!(
                "{{\"op\":\"churn\",\"rate\":{},\"secs\":{},\"life\":{},\"created\":{},\"updated\":{},\
                 \"destroyed\":{},\"live_at_end\":{},\"errors\":{},\"seconds\":{:.3},\"per_second\":{:.0}}}",
                spec.rate,
                spec.secs,
                spec.life,
                r.created,
                r.updated,
                r.destroyed,
                r.live,
                r.errors,
                r.seconds,
                r.created as f64 / r.seconds.max(1e-9)
            );
        }
        Some("latency") => {
            let mut keys = CHURN_KEYS.to_vec();
            keys.extend(["--from", "--to", "--drain", "--json", "--svg"]);
            let o = Opts::parse(args, &keys, &["--keep"]);
            let (Some(from), Some(to)) = (o.str("--from"), o.str("--to")) else {
                usage()
            };
            let spec = latency::LatencySpec {
                from: from.to_string(),
                to: to.to_string(),
                churn: churn_spec(&o),
                drain: o.float("--drain", 5.0),
            };
            let r = latency::run(&spec).unwrap_or_else(|e| fail(&e));
            let json = r.json(&spec);
            if let Some(p) = o.str("--json") {
                std::fs::write(p, format!("{json}\n"))
                    .unwrap_or_else(|e| fail(&format!("{p}: {e}")));
            }
            if let Some(p) = o.str("--svg") {
                std::fs::write(p, latency_svg(&r)).unwrap_or_else(|e| fail(&format!("{p}: {e}")));
            }
            println!("{json}");
        }
        Some("flows") => {
            let o = Opts::parse(args, &["--tcp", "--udp", "--hold", "--prefix"], &[]);
            let spec = flows::FlowsSpec {
                tcp: o.num("--tcp", 10) as u32,
                udp: o.num("--udp", 10) as u32,
                hold: o.float("--hold", 1.0),
                prefix: o
                    .str("--prefix")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("ctpf{}-", std::process::id())),
            };
            let r = flows::run(&spec, |fw| {
                eprintln!("ctperf: flows open; the firewall's namespace is {fw}")
            })
            .unwrap_or_else(|e| fail(&e));
            println!(
                "{{\"op\":\"flows\",\"fw_namespace\":\"{}\",\"tcp\":{},\"tcp_connected\":{},\"tcp_echoed\":{},\"udp\":{},\"udp_echoed\":{},\"fw_entries\":{},\"seconds\":{:.3}}}",
                r.fw_namespace,
                spec.tcp,
                r.tcp_connected,
                r.tcp_echoed,
                spec.udp,
                r.udp_echoed,
                r.fw_entries,
                r.seconds
            );
        }
        Some("sync") => {
            let addr = |v: Option<&str>| -> Option<std::net::SocketAddr> {
                v.map(|s| s.parse().unwrap_or_else(|_| usage()))
            };
            match args.next().as_deref() {
                Some("source") => {
                    let o = Opts::parse(
                        args,
                        &["--to", "-n", "--rate", "--mtu", "--bind", "--start"],
                        &[],
                    );
                    let spec = sync::SourceSpec {
                        to: addr(o.str("--to")).unwrap_or_else(|| usage()),
                        bind: addr(o.str("--bind")),
                        n: o.num("-n", 100_000),
                        rate: o.num("--rate", 0),
                        mtu: o.num("--mtu", 1500) as usize,
                        start: o.num("--start", 0),
                    };
                    let r =
                        sync::source(&spec).unwrap_or_else(|e| fail(&format!("sync source: {e}")));
                    println!(
                        "{{\"op\":\"sync_source\",\"messages\":{},\"datagrams\":{},\"bytes\":{},\"send_errors\":{},\"seconds\":{:.3},\"per_second\":{:.0}}}",
                        r.messages,
                        r.datagrams,
                        r.bytes,
                        r.send_errors,
                        r.seconds,
                        r.messages as f64 / r.seconds.max(1e-9)
                    );
                }
                Some("relay") => {
                    let o = Opts::parse(
                        args,
                        &[
                            "--a",
                            "--peer-a",
                            "--b",
                            "--peer-b",
                            "--loss",
                            "--dup",
                            "--reorder",
                            "--secs",
                            "--seed",
                        ],
                        &[],
                    );
                    let need = |k: &str| addr(o.str(k)).unwrap_or_else(|| usage());
                    let spec = sync::RelaySpec {
                        a: need("--a"),
                        peer_a: need("--peer-a"),
                        b: need("--b"),
                        peer_b: need("--peer-b"),
                        loss: o.float("--loss", 0.0),
                        dup: o.float("--dup", 0.0),
                        reorder: o.float("--reorder", 0.0),
                        secs: o.float("--secs", 30.0),
                        seed: o.num("--seed", 42),
                    };
                    let r =
                        sync::relay(&spec).unwrap_or_else(|e| fail(&format!("sync relay: {e}")));
                    println!(
                        "{{\"op\":\"sync_relay\",\"forwarded\":{},\"dropped\":{},\"duplicated\":{},\"reordered\":{}}}",
                        r.forwarded, r.dropped, r.duplicated, r.reordered
                    );
                }
                Some("hostile") => {
                    let o = Opts::parse(args, &["--to", "--bind"], &[]);
                    let to = addr(o.str("--to")).unwrap_or_else(|| usage());
                    let kinds = sync::hostile(to, addr(o.str("--bind")))
                        .unwrap_or_else(|e| fail(&format!("sync hostile: {e}")));
                    println!(
                        "{{\"op\":\"sync_hostile\",\"datagrams\":{},\"kinds\":{}}}",
                        kinds.len(),
                        json_strings(&kinds)
                    );
                }
                Some("forge") => {
                    let o = Opts::parse(args, &["--to", "--bind", "--key"], &[]);
                    let to = addr(o.str("--to")).unwrap_or_else(|| usage());
                    let path = o.str("--key").unwrap_or_else(|| usage());
                    let key = std::fs::read(path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| ct_transport::auth::parse_key(&b).map_err(|e| e.to_string()))
                        .unwrap_or_else(|e| fail(&format!("sync forge: {path}: {e}")));
                    let kinds = forge::forge(to, addr(o.str("--bind")), &key)
                        .unwrap_or_else(|e| fail(&format!("sync forge: {e}")));
                    println!(
                        "{{\"op\":\"sync_forge\",\"datagrams\":{},\"first_flow\":{},\"kinds\":{}}}",
                        kinds.len(),
                        forge::FORGE_BASE,
                        json_strings(&kinds)
                    );
                }
                Some("sink") => {
                    let o = Opts::parse(args, &["--bind", "--secs", "--idle"], &[]);
                    let bind = addr(o.str("--bind")).unwrap_or_else(|| usage());
                    let r = sync::sink(bind, o.float("--secs", 30.0), o.float("--idle", 2.0))
                        .unwrap_or_else(|e| fail(&format!("sync sink: {e}")));
                    println!(
                        "{{\"op\":\"sync_sink\",\"datagrams\":{},\"bytes\":{},\"new\":{},\"update\":{},\"delete\":{},\"expectations\":{},\"control\":{},\"bad\":{},\"seconds\":{:.3}}}",
                        r.datagrams,
                        r.bytes,
                        r.new,
                        r.update,
                        r.delete,
                        r.expectations,
                        r.control,
                        r.bad,
                        r.seconds
                    );
                }
                _ => usage(),
            }
        }
        Some("bench") => {
            let scenario = args.next().unwrap_or_else(|| usage());
            let o = Opts::parse(args, &["--out", "--runs"], &[]);
            if scenario == "list" {
                for s in bench::SCENARIOS {
                    println!("{:<14} {}", s.name, s.what);
                }
                return;
            }
            let out = o.str("--out").map(str::to_string);
            if let Err(e) = bench::run(&scenario, out.as_deref(), o.num("--runs", 1) as u32) {
                fail(&e)
            }
        }
        Some("cachemem") => {
            let o = Opts::parse(args, &["-n"], &[]);
            let n = o.num("-n", 1_000_000);
            let (per, total) = ct_tools::perf::fill::cache_memory(n);
            println!("{{\"op\":\"cachemem\",\"n\":{n},\"bytes_per_flow\":{per:.1},\"rss_delta_bytes\":{total}}}");
        }
        Some("dump") => match raw_dump() {
            Ok((m, b, s)) => println!(
                "{{\"op\":\"raw_dump\",\"messages\":{m},\"bytes\":{b},\"seconds\":{s:.6}}}"
            ),
            Err(e) => fail(&format!("dump failed: {e}")),
        },
        _ => usage(),
    }
}

/// Throughput and latency over time.
fn latency_svg(r: &latency::LatencyReport) -> String {
    let pts = |f: &dyn Fn(&latency::Second) -> f64| -> Vec<(f64, f64)> {
        r.series
            .iter()
            .enumerate()
            .map(|(t, s)| (t as f64, f(s)))
            .collect()
    };
    svg::render(&[
        svg::Chart {
            title: "throughput: flows created on the primary, arrived on the backup",
            x_label: "seconds",
            y_label: "flows per second",
            series: vec![
                svg::Series {
                    name: "created",
                    color: "#1f77b4",
                    points: pts(&|s| s.created as f64),
                },
                svg::Series {
                    name: "arrived",
                    color: "#d62728",
                    points: pts(&|s| s.arrived as f64),
                },
            ],
        },
        svg::Chart {
            title: "replication latency (primary's kernel -> backup's kernel)",
            x_label: "seconds",
            y_label: "microseconds",
            series: vec![
                svg::Series {
                    name: "p50",
                    color: "#2ca02c",
                    points: pts(&|s| s.p50_us as f64),
                },
                svg::Series {
                    name: "p99",
                    color: "#ff7f0e",
                    points: pts(&|s| s.p99_us as f64),
                },
            ],
        },
    ])
}
