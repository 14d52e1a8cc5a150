//! `ctperf latency`: replication latency measured by timestamps this
//! process controls. One thread runs a churn ([`super::churn`]) in the
//! primary's namespace and notes when each flow is created; another
//! listens to conntrack NEW events in the backup's namespace (where the
//! backup daemon runs with `DisableExternalCache`, so that every replicated
//! flow is injected into its kernel) and notes when each flow arrives.
//! Both use the same monotonic clock. The latencies go to an
//! hdrhistogram; a per-second series (created, arrived, p50, p99) is kept
//! for the JSON report and the SVG plot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use ct_core::flow::Flow;
use ct_core::netlink::ct::parse_flow_into;
use ct_core::netlink::msg::*;
use ct_ring::netlink::{NlSocket, RecvError, NETLINK_NETFILTER};

use super::churn::{churn, ChurnReport, ChurnSpec};
use super::netns;

/// What to run.
#[derive(Debug, Clone)]
pub struct LatencySpec {
    pub from: String,
    pub to: String,
    pub churn: ChurnSpec,
    /// Seconds to wait for stragglers after the churn ends.
    pub drain: f64,
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Second {
    pub created: u64,
    pub arrived: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// The result.
pub struct LatencyReport {
    pub churn: ChurnReport,
    pub arrived: u64,
    pub hist: Histogram<u64>,
    pub series: Vec<Second>,
}

/// The index of a synthetic flow from its original tuple (the inverse of
/// [`super::fill::synthetic`]).
pub fn synthetic_index(f: &Flow) -> Option<u64> {
    let o = f.orig?;
    let std::net::IpAddr::V4(src) = o.src? else {
        return None;
    };
    let port = o.src_port?;
    if port < 10_000 {
        return None;
    }
    Some((u32::from(src) & 0x00ff_ffff) as u64 * 50_000 + (port - 10_000) as u64)
}

/// What the listener heard: arrivals, all latencies, latencies per second.
type Heard = (u64, Histogram<u64>, Vec<Histogram<u64>>);

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

/// Runs the measurement.
pub fn run(spec: &LatencySpec) -> Result<LatencyReport, String> {
    let slots = (spec.churn.rate as f64 * spec.churn.secs) as usize + 1024;
    // creation time of flow `start + k`, in ns since `t0` (+1; 0 = none)
    let created: Arc<Vec<AtomicU64>> = Arc::new((0..slots).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let secs = spec.churn.secs.ceil() as usize + spec.drain.ceil() as usize + 2;

    // The listener, in the backup's namespace.
    let (to, created_l, stop_l, start) = (
        spec.to.clone(),
        created.clone(),
        stop.clone(),
        spec.churn.start,
    );
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let listener = std::thread::spawn(move || -> Result<Heard, String> {
        let sock = netns::enter(&to)
            .and_then(|_| NlSocket::open(NETLINK_NETFILTER, 1))
            .map_err(|e| format!("listener in {to}: {e}"));
        let sock = match sock {
            Ok(s) => s,
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let _ = sock.set_rcvbuf(64 << 20);
        // wait in the kernel (an event is timestamped when it wakes us,
        // not after a polling sleep); look at the stop flag every 20 ms
        let _ = sock.set_recv_timeout(Duration::from_millis(20));
        let _ = ready_tx.send(Ok(()));
        let mut hist = new_hist();
        let mut per: Vec<Histogram<u64>> = (0..secs).map(|_| new_hist()).collect();
        let mut arrived = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        let mut flow = Flow::default();
        loop {
            let n = match sock.recv(&mut buf, false) {
                Ok(n) => n,
                Err(RecvError::WouldBlock) => {
                    if stop_l.load(Ordering::Relaxed) {
                        break;
                    }
                    continue;
                }
                Err(RecvError::Interrupted) => continue,
                // an overrun: some arrivals are lost to the count
                Err(_) => continue,
            };
            let now = t0.elapsed();
            for m in Messages::new(&buf[..n]).flatten() {
                if m.subsys() != NFNL_SUBSYS_CTNETLINK || m.msg() != IPCTNL_MSG_CT_NEW {
                    continue;
                }
                let Ok((g, attrs)) = m.nfgen() else { continue };
                if parse_flow_into(&mut flow, g.family, attrs).is_err() {
                    continue;
                }
                let Some(i) = synthetic_index(&flow).and_then(|i| i.checked_sub(start)) else {
                    continue;
                };
                let Some(c) = created_l.get(i as usize) else {
                    continue;
                };
                // first arrival only
                let at = c.swap(u64::MAX, Ordering::Relaxed);
                if at == 0 || at == u64::MAX {
                    if at == 0 {
                        c.store(0, Ordering::Relaxed);
                    }
                    continue;
                }
                let lat_us = (now.as_nanos() as u64).saturating_sub(at - 1) / 1000;
                let _ = hist.record(lat_us.max(1));
                if let Some(h) = per.get_mut(now.as_secs() as usize) {
                    let _ = h.record(lat_us.max(1));
                }
                arrived += 1;
            }
        }
        Ok((arrived, hist, per))
    });
    ready_rx
        .recv()
        .map_err(|_| "listener thread died".to_string())??;

    // The creator, in the primary's namespace (its own thread, so that
    // this one keeps its namespace).
    let (from, churn_spec, created_c) = (spec.from.clone(), spec.churn.clone(), created.clone());
    let creator = std::thread::spawn(move || -> Result<(ChurnReport, Vec<u64>), String> {
        netns::enter(&from).map_err(|e| format!("creator in {from}: {e}"))?;
        let mut per_sec = vec![0u64; secs];
        let start = churn_spec.start;
        let r = churn(
            &churn_spec,
            |i, at| {
                let ns = at.duration_since(t0);
                if let Some(c) = created_c.get((i - start) as usize) {
                    c.store(ns.as_nanos() as u64 + 1, Ordering::Relaxed);
                }
                if let Some(s) = per_sec.get_mut(ns.as_secs() as usize) {
                    *s += 1;
                }
            },
            |_| {},
        )
        .map_err(|e| format!("churn: {e}"))?;
        Ok((r, per_sec))
    });
    let creator = creator
        .join()
        .map_err(|_| "creator thread panicked".to_string())?;
    // wait for the stragglers: until everything arrived or `drain` passed
    let (churn_report, per_created) = match creator {
        Ok(x) => x,
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            let _ = listener.join();
            return Err(e);
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(spec.drain);
    while Instant::now() < deadline {
        let pending = created
            .iter()
            .take(churn_report.created as usize)
            .any(|c| c.load(Ordering::Relaxed) != u64::MAX);
        if !pending {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let (arrived, hist, per) = listener
        .join()
        .map_err(|_| "listener thread panicked".to_string())??;
    let series = (0..secs)
        .map(|k| Second {
            created: per_created.get(k).copied().unwrap_or(0),
            arrived: per[k].len(),
            p50_us: if per[k].is_empty() {
                0
            } else {
                per[k].value_at_quantile(0.5)
            },
            p99_us: if per[k].is_empty() {
                0
            } else {
                per[k].value_at_quantile(0.99)
            },
        })
        .collect();
    Ok(LatencyReport {
        churn: churn_report,
        arrived,
        hist,
        series,
    })
}

impl LatencyReport {
    /// The machine-readable report.
    pub fn json(&self, spec: &LatencySpec) -> String {
        let h = &self.hist;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        let series: Vec<String> = self
            .series
            .iter()
            .enumerate()
            .map(|(t, s)| {
                format!(
                    "{{\"t\":{t},\"created\":{},\"arrived\":{},\"p50_us\":{},\"p99_us\":{}}}",
                    s.created, s.arrived, s.p50_us, s.p99_us
                )
            })
            .collect();
        format!(
            "{{\"op\":\"latency\",\"from\":\"{}\",\"to\":\"{}\",\"rate\":{},\"secs\":{},\"life\":{},\
             \"update_rate\":{},\"created\":{},\"updated\":{},\"destroyed\":{},\"errors\":{},\
             \"arrived\":{},\"missing\":{},\"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\
             \"p999\":{},\"max\":{},\"mean\":{:.1}}},\"series\":[{}]}}",
            spec.from,
            spec.to,
            spec.churn.rate,
            spec.churn.secs,
            spec.churn.life,
            spec.churn.update_rate,
            self.churn.created,
            self.churn.updated,
            self.churn.destroyed,
            self.churn.errors,
            self.arrived,
            self.churn.created.saturating_sub(self.arrived),
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            if h.is_empty() { 0 } else { h.max() },
            if h.is_empty() { 0.0 } else { h.mean() },
            series.join(",")
        )
    }
}
