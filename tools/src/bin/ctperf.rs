//! `ctperf`: load generation and measurement for the conntrack tools.
//!
//! Subcommands so far:
//!   ctperf fill [-n N] [--rate R] [--batch B] [--timeout T] [--udp] [--delete] [--start I] [--helper NAME]
//!   ctperf dump        raw dump of the table, parsing nothing (benchmark floor)
//!   ctperf cachemem [-n N]  RSS per flow of the daemon's flow cache (N synthetic TCP flows)
//! Both print one JSON object on stdout.

use ct_tools::perf::fill::{fill, raw_dump, FillSpec};

fn usage() -> ! {
    eprintln!(
        "usage: ctperf fill [-n N] [--rate R] [--batch B] [--timeout T] [--udp] [--delete] [--start I] [--helper NAME]\n       ctperf dump\n       ctperf cachemem [-n N]"
    );
    std::process::exit(2)
}

fn num(v: Option<String>) -> u64 {
    v.and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or_else(|| usage())
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("fill") => {
            let mut spec = FillSpec::default();
            while let Some(a) = args.next() {
                match a.as_str() {
                    "-n" => spec.n = num(args.next()),
                    "--rate" => spec.rate = num(args.next()),
                    "--batch" => spec.batch = num(args.next()).max(1) as usize,
                    "--timeout" => spec.timeout = num(args.next()) as u32,
                    "--start" => spec.start = num(args.next()),
                    "--udp" => spec.udp = true,
                    "--delete" => spec.delete = true,
                    "--helper" => spec.helper = Some(args.next().unwrap_or_else(|| usage())),
                    _ => usage(),
                }
            }
            match fill(&spec, |_| {}) {
                Ok(r) => println!(
                    "{{\"op\":\"{}\",\"n\":{},\"seconds\":{:.6},\"per_second\":{:.0},\"send_errors\":{}}}",
                    if spec.delete { "delete" } else { "fill" },
                    r.sent,
                    r.seconds,
                    r.sent as f64 / r.seconds.max(1e-9),
                    r.send_errors
                ),
                Err(e) => {
                    eprintln!("ctperf: fill failed: {e}");
                    std::process::exit(1)
                }
            }
        }
        Some("cachemem") => {
            let mut n = 1_000_000u64;
            while let Some(a) = args.next() {
                match a.as_str() {
                    "-n" => n = num(args.next()),
                    _ => usage(),
                }
            }
            let (per, total) = ct_tools::perf::fill::cache_memory(n);
            println!("{{\"op\":\"cachemem\",\"n\":{n},\"bytes_per_flow\":{per:.1},\"rss_delta_bytes\":{total}}}");
        }
        Some("dump") => match raw_dump() {
            Ok((m, b, s)) => println!(
                "{{\"op\":\"raw_dump\",\"messages\":{m},\"bytes\":{b},\"seconds\":{s:.6}}}"
            ),
            Err(e) => {
                eprintln!("ctperf: dump failed: {e}");
                std::process::exit(1)
            }
        },
        _ => usage(),
    }
}
