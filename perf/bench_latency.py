#!/usr/bin/env python3
"""Replication latency under churn, ours against conntrackd 1.4.7 in the
same run: two namespaces joined by a veth, FT-FW over UDP, the backup with
DisableExternalCache (each replicated flow is injected into its kernel, so
its arrival is an event `ctperf` can timestamp). `ctperf latency` runs a
churn in the primary (creations at RATE/s, short flows destroyed after
LIFE s, every 10th flow long-lived) and listens to the backup's kernel; the
latency of each flow is the time from the batch that created it in the
primary to its NEW event in the backup, on one monotonic clock.

    sudo python3 perf/bench_latency.py [--rates 5000,20000,50000] [--secs 10]
                                       [--life 2] [--runs 1] [--lanes N] [--step-us T] [--out DIR]

Prints a Markdown table (percentiles from hdrhistogram, missing flows, CPU
of both daemons, ratios ours/1.4.7); writes each run's JSON (with the
per-second series) and an SVG plot of throughput and latency over time to
DIR (default perf/results), and JSON lines to perf/results/bench_latency.jsonl.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))
import bench_sync as bs  # noqa: E402  (shared namespace/daemon helpers)


def one(bin_, ctperf, rate, secs, life, out_dir, tag, lanes=None, step_us=1000):
    pid = os.getpid()
    a, b = f"cbla-{pid}", f"cblb-{pid}"
    base = tempfile.mkdtemp(prefix="ctblat-")
    da, db = os.path.join(base, "a"), os.path.join(base, "b")
    os.makedirs(da), os.makedirs(db)
    try:
        bs.two_namespaces(a, b, "10.97.0", "bla", "blb")
        ca = bs.conf(da, "10.97.0.1", "10.97.0.2", "bla", "FTFW", "udp", lanes=lanes)
        cb = bs.conf(db, "10.97.0.2", "10.97.0.1", "blb", "FTFW", "udp", lanes=lanes)
        txt = open(cb).read().replace("ACKWindowSize 300 }", "ACKWindowSize 300 DisableExternalCache on }")
        open(cb, "w").write(txt)
        pa = subprocess.Popen(["ip", "netns", "exec", a, bin_, "-C", ca], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pb = subprocess.Popen(["ip", "netns", "exec", b, bin_, "-C", cb], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        ia, ib = bs.pid_of(a, ca), bs.pid_of(b, cb)
        c0a, c0b = bs.cpu(ia), bs.cpu(ib)
        js = os.path.join(out_dir, f"latency-{tag}.json")
        sv = os.path.join(out_dir, f"latency-{tag}.svg")
        r = subprocess.run([ctperf, "latency", "--from", a, "--to", b, "--rate", str(rate),
                            "--secs", str(secs), "--life", str(life), "--drain", "10", "--step-us", str(step_us),
                            "--json", js, "--svg", sv], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("ctperf latency: " + r.stderr)
        res = json.loads(r.stdout)
        res["cpu_primary"] = bs.cpu(ia) - c0a
        res["cpu_backup"] = bs.cpu(ib) - c0b
        res["daemon"] = bin_
        res["svg"] = sv
        bs.stop(bin_, (ca, cb), (pa, pb))
        return res
    finally:
        bs.cleanup((a, b), base)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="5000,20000,50000")
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--life", type=float, default=2)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only-ours", action="store_true")
    ap.add_argument("--lanes", type=int, default=0, help="also ours ↔ ours with General { Lanes N } on both sides")
    ap.add_argument("--step-us", type=int, default=1000,
                    help="ctperf's step (µs): 1000 sends a few flows at once, below 1e6/rate one by one")
    ap.add_argument("--out", default=os.path.join(ROOT, "perf/results"))
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/conntrackd"):
        print("SKIP: needs root and /usr/sbin/conntrackd", file=sys.stderr)
        return 0
    os.makedirs(a.out, exist_ok=True)
    jl = open(os.path.join(ROOT, "perf/results/bench_latency.jsonl"), "a")
    print(f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}, FTFW over udp, backup injects (DisableExternalCache), "
          f"churn {a.secs:g} s in steps of {a.step_us} µs, short flows live {a.life:g} s, every 10th flow long, "
          f"median of {a.runs}\n", flush=True)
    print("| daemons | rate/s | created | missing | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | CPU primary s | CPU backup s |", flush=True)
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    pairs = [("1.4.7 ↔ 1.4.7", "/usr/sbin/conntrackd", None), ("ours ↔ ours", a.ours, None)]
    if a.lanes:
        pairs.append((f"ours ↔ ours, Lanes {a.lanes}", a.ours, a.lanes))
    for rate in [int(x) for x in a.rates.split(",")]:
        meds = {}
        for name, b, lanes in (pairs[1:] if a.only_ours else pairs):
            tag = ("ours" if b == a.ours else "147") + (f"-lanes{lanes}" if lanes else "") + f"-{rate}"
            rs = [one(b, a.ctperf, rate, a.secs, a.life, a.out, f"{tag}-{k}", lanes, a.step_us) for k in range(a.runs)]
            for r in rs:
                jl.write(json.dumps({"pair": name, **{k: v for k, v in r.items() if k != "series"}}) + "\n")
            med = lambda f: statistics.median([f(r) for r in rs])
            row = {q: med(lambda r: r["latency_us"][q]) for q in ("p50", "p90", "p99", "p999", "max")}
            row["missing"] = max(r["missing"] for r in rs)
            row["cpu_a"], row["cpu_b"] = med(lambda r: r["cpu_primary"]), med(lambda r: r["cpu_backup"])
            meds[name] = row
            print(f"| {name} | {rate} | {rs[0]['created']} | {row['missing']} | {row['p50']} | {row['p90']} | {row['p99']} "
                  f"| {row['p999']} | {row['max']} | {row['cpu_a']:.2f} | {row['cpu_b']:.2f} |", flush=True)
        for name in [p[0] for p in pairs[1:]]:
            if name not in meds or "1.4.7 ↔ 1.4.7" not in meds:
                continue
            o, c = meds[name], meds["1.4.7 ↔ 1.4.7"]
            ratio = lambda k: f"{o[k] / c[k]:.2f}x" if c[k] else "-"
            label = "ratio ours/1.4.7" + name[len("ours ↔ ours"):]
            print(f"| {label} | {rate} | | | {ratio('p50')} | {ratio('p90')} | {ratio('p99')} | {ratio('p999')} "
                  f"| {ratio('max')} | {ratio('cpu_a')} | {ratio('cpu_b')} |", flush=True)
    print(f"\nPer-run JSON (with per-second series) and SVG plots: {a.out}/latency-*.json, latency-*.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
