//! An optional Prometheus endpoint: with `CONNTRACKD_METRICS=ADDR:PORT`
//! in the environment (not a conntrackd.conf keyword, so that the file
//! stays one 1.4.7 accepts), a thread serves `GET /metrics` over HTTP. It
//! asks the daemon over its own control socket for the `-s` views (the
//! same numbers a script reads) and turns every `label: number` line into
//! a gauge `conntrackd_<view>_<section>_<label>`; in sync mode it adds the
//! replication latency histograms and lag (`daemon::latency`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use ct_core::ctl::Request;

/// Starts the endpoint when `CONNTRACKD_METRICS` is set; returns the
/// bound address.
pub fn start(control: &Path) -> Option<std::io::Result<SocketAddr>> {
    let addr = std::env::var("CONNTRACKD_METRICS").ok()?;
    Some(serve(&addr, control.to_path_buf()))
}

fn serve(addr: &str, control: PathBuf) -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind(addr)?;
    let bound = l.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut req = [0u8; 2048];
                let n = s.read(&mut req).unwrap_or(0);
                let head = String::from_utf8_lossy(&req[..n]);
                let (status, body) = if head.starts_with("GET /metrics") {
                    ("200 OK", render(&control))
                } else {
                    ("404 Not Found", String::from("try /metrics\n"))
                };
                let _ = write!(
                    s,
                    "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(bound)
}

/// One `-s` view as text, over the control socket.
fn ask(control: &Path, req: Request) -> String {
    let Ok(mut s) = UnixStream::connect(control) else {
        return String::new();
    };
    if s.write_all(&req.to_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn clean(s: &str) -> String {
    let mut o = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_alphanumeric() {
            o.push(c.to_ascii_lowercase());
        } else if !o.ends_with('_') && !o.is_empty() {
            o.push('_');
        }
    }
    o.trim_end_matches('_').to_string()
}

/// Prometheus text for the `-s` views.
fn render(control: &Path) -> String {
    let mut out = String::new();
    for (view, req) in [
        ("stats", Request::Stats),
        ("runtime", Request::StatsRuntime),
        ("network", Request::StatsNetwork),
        ("queue", Request::StatsQueue),
    ] {
        to_metrics(&mut out, view, &ask(control, req));
    }
    // Replication latency histograms and lag: already Prometheus text.
    out.push_str(&ask(control, Request::SyncMetrics));
    out
}

/// Appends a gauge per `label: number` line of `text` (the section is the
/// last line that ended with `:`).
pub fn to_metrics(out: &mut String, view: &str, text: &str) {
    let mut section = String::new();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(h) = t.strip_suffix(':') {
            section = clean(h);
            continue;
        }
        // `label:<tabs>number` (possibly followed by `failed: number`)
        let mut rest = t;
        let mut row = String::new();
        while let Some(i) = rest.find(':') {
            // a second pair on the row (`failed: n`) is named after the row
            let label = if row.is_empty() {
                row = clean(&rest[..i]);
                row.clone()
            } else {
                format!("{row}_{}", clean(&rest[..i]))
            };
            let after = rest[i + 1..].trim_start();
            let num: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
            if num.is_empty() {
                break;
            }
            let mut name = format!("conntrackd_{view}");
            for part in [section.as_str(), label.as_str()] {
                if !part.is_empty() {
                    name.push('_');
                    name.push_str(part);
                }
            }
            if seen.insert(name.clone()) {
                out.push_str(&format!("{name} {num}\n"));
            }
            rest = after[num.len()..].trim_start();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_text_becomes_gauges() {
        let text = "cache internal:\ncurrent active connections:\t          12\n\
                    connections created:\t\t          15\tfailed:\t           1\n\n\
                    traffic processed:\n                   0 Bytes                         0 Pckts\n";
        let mut out = String::new();
        to_metrics(&mut out, "stats", text);
        assert!(
            out.contains("conntrackd_stats_cache_internal_current_active_connections 12\n"),
            "{out}"
        );
        assert!(
            out.contains("conntrackd_stats_cache_internal_connections_created 15\n"),
            "{out}"
        );
        assert!(
            out.contains("conntrackd_stats_cache_internal_connections_created_failed 1\n"),
            "{out}"
        );
    }
}
