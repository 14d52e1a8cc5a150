#!/usr/bin/env python3
"""What a backup's CPU per replicated flow depends on: the same N flows
(synthetic TCP, the same bytes on the link), sent by `ctperf sync source`
at several rates to one backup (NOTRACK over UDP, external cache), ours
and conntrackd 1.4.7 in the same run. Before each rate the backup's
external cache is flushed (`-f external`), so every rate inserts N new
objects; its CPU is read from /proc from the first datagram until its
`-s` shows all N.

    sudo python3 perf/bench_backup_rate.py [-n 200000] [--rates 0,150000,50000] [--runs 3]

Prints a Markdown table: rate, datagrams, CPU and µs per flow of each
daemon (medians of the runs), and ours/1.4.7. JSON lines go to
perf/results/bench_backup_rate.jsonl.
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


def one(bin_, ctperf, n, rates):
    """One backup, fed at each rate in turn: {rate: (cpu s, datagrams, reached)}."""
    tag = os.getpid()
    a, b = f"cbra-{tag}", f"cbrb-{tag}"
    base = tempfile.mkdtemp(prefix="ctbrate-")
    db = os.path.join(base, "b")
    os.makedirs(db)
    out = {}
    try:
        bs.two_namespaces(a, b, "10.97.0", "bra", "brb")
        cb = bs.conf(db, "10.97.0.2", "10.97.0.1", "brb", "NOTRACK", "udp")
        pb = subprocess.Popen(["ip", "netns", "exec", b, bin_, "-C", cb],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        pid = bs.pid_of(b, cb)
        for rate in rates:
            subprocess.run([bin_, "-C", cb, "-f", "external"], capture_output=True)
            time.sleep(0.3)
            c0, t0 = bs.cpu(pid), time.time()
            src = json.loads(bs.sh(f"ip netns exec {a} {ctperf} sync source --to 10.97.0.2:3780 "
                                   f"--bind 10.97.0.1:3780 -n {n} --rate {rate}").stdout)
            got = 0
            while time.time() - t0 < 60:
                got = bs.external(bin_, cb)
                if got >= n:
                    break
                time.sleep(0.1)
            out[rate] = (bs.cpu(pid) - c0, src["datagrams"], got)
        bs.stop(bin_, (cb,), (pb,))
    finally:
        bs.cleanup((a, b), base)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200000)
    ap.add_argument("--rates", default="0,150000,50000", help="flows/s, 0 = flat out")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if bs.skip_without_root():
        return 0
    rates = [int(x) for x in a.rates.split(",")]
    res = {}
    with bs.bench_run("bench_backup_rate", a.n + 10000) as jl:
        for name, bin_ in (("1.4.7", "/usr/sbin/conntrackd"), ("ours", a.ours)):
            runs = [one(bin_, a.ctperf, a.n, rates) for _ in range(a.runs)]
            for r in runs:
                for rate, (c, d, got) in r.items():
                    jl.write(json.dumps({"daemon": name, "n": a.n, "rate": rate, "cpu": c,
                                         "datagrams": d, "reached": got}) + "\n")
            res[name] = {rate: (statistics.median(r[rate][0] for r in runs),
                                int(statistics.median(r[rate][1] for r in runs)),
                                min(r[rate][2] for r in runs)) for rate in rates}
    print(f"Backup fed by `ctperf sync source`, NOTRACK over UDP, {a.n} flows, median of {a.runs}\n")
    print("| rate flows/s | datagrams | 1.4.7 CPU s | 1.4.7 µs/flow | ours CPU s | ours µs/flow | ours/1.4.7 | reached (1.4.7, ours) |")
    print("|---|---|---|---|---|---|---|---|")
    for rate in rates:
        c, d, g = res["1.4.7"][rate]
        o, _, go = res["ours"][rate]
        print(f"| {rate or 'flat out'} | {d} | {c:.2f} | {c / a.n * 1e6:.2f} | {o:.2f} | {o / a.n * 1e6:.2f} "
              f"| {o / c:.2f}x | {g}, {go} |" if c else f"| {rate} | {d} | - | - | {o:.2f} | - | - | {g}, {go} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
