#!/usr/bin/env python3
"""A steady trickle through a daemon pair: what a wake-up costs.

    sudo python3 perf/bench_trickle.py [--rates 300,3000] [--secs 20] [--runs 1]
                                       [--ours BIN] [--base BIN] [--lanes 2]
                                       [--step-us T]

For each daemon (ours, ours with --lanes N, conntrackd 1.4.7, and --base,
an older build of ours, if given): two namespaces joined by a veth, FT-FW
over UDP, the backup keeping an external cache (the usual active/backup
pair), then `ctperf churn --rate R` in the primary for SECS (each flow
destroyed 2 s later, R/3 updates a second; sent in steps of T µs,
default 1000: a few flows per step; with T below 1e6/R one at a time, as
real traffic brings them). Per side: CPU (utime +
stime of every thread), wake-ups (voluntary context switches of every
thread) and, for the link, the primary's packets. At a trickle the cost is
the wake-ups (finish_task_switch is 40 % of the backup's profile), so the
wake-ups column is what to read. Prints a Markdown table; JSON lines go to
perf/results/bench_trickle.jsonl.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))
import bench_sync as bs  # noqa: E402

C = "/usr/sbin/conntrackd"


def threads(pid):
    """(CPU s, voluntary context switches) summed over the threads."""
    cpu, vol = 0.0, 0
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            st = open(t + "/stat").read().rsplit(")", 1)[1].split()
            cpu += (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
            vol += int(next(l for l in open(t + "/status") if l.startswith("voluntary_ctxt_switches")).split()[1])
        except (OSError, StopIteration):
            pass
    return cpu, vol


def one(bin_, lanes, rate, secs, ctperf, step_us=1000):
    a, b = f"btr{os.getpid()}a", f"btr{os.getpid()}b"
    base = tempfile.mkdtemp(prefix="ctrickle-")
    da, db = os.path.join(base, "a"), os.path.join(base, "b")
    os.makedirs(da), os.makedirs(db)
    try:
        bs.two_namespaces(a, b, "10.97.0", "bta", "btb")
        ca = bs.conf(da, "10.97.0.1", "10.97.0.2", "bta", "FTFW", "udp", None, lanes)
        cb = bs.conf(db, "10.97.0.2", "10.97.0.1", "btb", "FTFW", "udp", None, lanes)
        pa = subprocess.Popen(["ip", "netns", "exec", a, bin_, "-C", ca],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pb = subprocess.Popen(["ip", "netns", "exec", b, bin_, "-C", cb],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        ia, ib = bs.pid_of(a, ca), bs.pid_of(b, cb)
        ta, tb = threads(ia), threads(ib)
        _, p0 = bs.link_bytes(a, "bta")
        churn = subprocess.run(["ip", "netns", "exec", a, ctperf, "churn", "--rate", str(rate), "--secs", str(secs),
                                "--life", "2", "--long-every", "0", "--update-rate", str(rate // 3),
                                "--step-us", str(step_us)],
                               capture_output=True, text=True)
        time.sleep(3)
        ta2, tb2 = threads(ia), threads(ib)
        _, p1 = bs.link_bytes(a, "bta")
        ext = bs.external(bin_, cb)
        r = {"daemon": bin_, "lanes": lanes or 1, "rate": rate, "secs": secs, "step_us": step_us,
             "churn": json.loads(churn.stdout or "{}"),
             "cpu_a": round(ta2[0] - ta[0], 2), "cpu_b": round(tb2[0] - tb[0], 2),
             "wakes_a": ta2[1] - ta[1], "wakes_b": tb2[1] - tb[1], "packets_a": p1 - p0,
             "external_b_end": ext}
        bs.stop(bin_, (ca,), (pa,))
        bs.stop(bin_, (cb,), (pb,))
        return r
    finally:
        bs.cleanup((a, b), base)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="300,3000")
    ap.add_argument("--secs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--lanes", type=int, default=0)
    ap.add_argument("--step-us", type=int, default=1000, help="ctperf churn's step (µs)")
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--base", help="an older build of ours, side by side")
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if bs.skip_without_root():
        return 0
    daemons = [("ours", a.ours, None)]
    if a.base:
        daemons.insert(0, ("ours (base)", a.base, None))
    if a.lanes:
        daemons.append((f"ours, Lanes {a.lanes}", a.ours, a.lanes))
    daemons.append(("1.4.7", C, None))
    print(f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}: FT-FW over UDP, backup with an external cache, "
          f"{a.secs} s of churn per rate in steps of {a.step_us} µs, median of {a.runs}\n")
    print("| daemon | rate/s | CPU primary s | CPU backup s | wake-ups primary | wake-ups backup | packets from the primary |")
    print("|---|---|---|---|---|---|---|")
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    for rate in [int(x) for x in a.rates.split(",")]:
        for name, bin_, lanes in daemons:
            rs = []
            for _ in range(a.runs):
                r = one(bin_, lanes, rate, a.secs, a.ctperf, a.step_us)
                r["name"] = name
                rs.append(r)
                with open(os.path.join(ROOT, "perf/results/bench_trickle.jsonl"), "a") as jl:
                    jl.write(json.dumps(r) + "\n")
            med = lambda k: sorted(x[k] for x in rs)[len(rs) // 2]  # noqa: E731
            print(f"| {name} | {rate} | {med('cpu_a'):.2f} | {med('cpu_b'):.2f} | {med('wakes_a')} "
                  f"| {med('wakes_b')} | {med('packets_a')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
