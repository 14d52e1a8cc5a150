#!/usr/bin/env python3
"""Benchmark `conntrackd` (ours) against /usr/sbin/conntrackd (1.4.7) in the
same run: how fast each daemon ingests kernel events into its cache, the
CPU it spends, and the memory per cached flow.

    sudo python3 perf/bench_daemon.py [--sizes 100000,1000000] [--runs 2]
                                      [--rate 0] [--ours target/release/conntrackd]

Per daemon and size N: a fresh namespace, the daemon in stats mode (its
cache is the same kind of internal cache the sync modes keep) with
NetlinkBufferSize 8 MiB / MaxGrowth 256 MiB / OverrunResync 30 (the lab's
settings), then `ctperf fill -n N --rate R` and a poll of `-s` until the
cache holds N entries (or 120 s). Reported: generation time, time until
the cache is complete, netlink overruns, daemon CPU (utime+stime), and
(RSS after − RSS before) / N. Raises nf_conntrack_max in the host namespace
when needed and restores it. JSON lines go to perf/results/bench_daemon.jsonl.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sync import bench_run, skip_without_root  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True)


def proc_cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def proc_rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) * 1024
    return 0


def daemon_pid(ns, conf):
    for pid in sh(f"ip netns pids {ns}").stdout.split():
        try:
            if conf in open(f"/proc/{pid}/cmdline").read():
                return int(pid)
        except OSError:
            pass
    return None


def cache_count(bin_, conf):
    out = subprocess.run([bin_, "-C", conf, "-s"], capture_output=True, text=True).stdout
    for l in out.splitlines():
        if l.startswith("current active connections:"):
            return int(l.split()[-1])
    return -1


def overruns(bin_, conf):
    out = subprocess.run([bin_, "-C", conf, "-s", "runtime"], capture_output=True, text=True).stdout
    for l in out.splitlines():
        if "netlink overrun:" in l:
            return int(l.split()[-1])
    return -1


def one(bin_, ctperf, n, rate):
    ns = f"ctdbench-{os.getpid()}"
    d = tempfile.mkdtemp(prefix="ctdbench-")
    conf = os.path.join(d, "conntrackd.conf")
    open(conf, "w").write(
        "General {\n Systemd off\n HashSize 65536\n HashLimit 4194304\n"
        f" LockFile {d}/lock\n UNIX {{ Path {d}/ctl }}\n"
        " NetlinkBufferSize 8388608\n NetlinkBufferSizeMaxGrowth 268435456\n"
        " NetlinkOverrunResync 30\n Scheduler { Type FIFO Priority 0 }\n}\n"
        "Stats {\n LogFile off\n}\n"
    )
    sh(f"ip netns add {ns}")
    try:
        sh(f"ip -n {ns} link set lo up")
        p = subprocess.Popen(["ip", "netns", "exec", ns, bin_, "-C", conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while not os.path.exists(f"{d}/ctl") and time.time() - t0 < 10:
            time.sleep(0.05)
        time.sleep(0.5)
        pid = daemon_pid(ns, conf)
        cpu0, rss0 = proc_cpu(pid), proc_rss(pid)
        start = time.time()
        gen = json.loads(sh(f"ip netns exec {ns} {ctperf} fill -n {n} --rate {rate}").stdout)
        complete = None
        while time.time() - start < 120:
            c = cache_count(bin_, conf)
            if c >= n:
                complete = time.time() - start
                break
            time.sleep(0.1)
        cpu, rss = proc_cpu(pid) - cpu0, proc_rss(pid) - rss0
        ovr = overruns(bin_, conf)
        final = cache_count(bin_, conf)
        subprocess.run([bin_, "-C", conf, "-k"], capture_output=True)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
        return {
            "n": n, "rate": rate, "gen_seconds": gen["seconds"], "complete_seconds": complete,
            "cached": final, "overruns": ovr, "cpu_seconds": cpu,
            "rss_bytes_per_flow": rss / n,
        }
    finally:
        subprocess.run(f"ip netns pids {ns} | xargs -r kill -9", shell=True)
        subprocess.run(f"ip netns del {ns}", shell=True)
        subprocess.run(f"rm -rf {d}", shell=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if skip_without_root():
        return 0
    sizes = [int(x) for x in a.sizes.split(",")]
    print(f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}, rate {a.rate or 'flat out'}, median of {a.runs}\n", flush=True)
    print("| daemon | N | generation s | cache complete after s | cached | overruns | CPU s | CPU µs/event | RSS B/flow |", flush=True)
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    with bench_run("bench_daemon", max(sizes) + 10000) as jl:
        for n in sizes:
            for name, b in [("C 1.4.7", "/usr/sbin/conntrackd"), ("ours", a.ours)]:
                rs = [one(b, a.ctperf, n, a.rate) for _ in range(a.runs)]
                for r in rs:
                    jl.write(json.dumps({"daemon": name, **r}) + "\n")
                med = lambda k: statistics.median([r[k] if r[k] is not None else float("inf") for r in rs])
                comp = med("complete_seconds")
                print(f"| {name} | {n} | {med('gen_seconds'):.2f} | {'never' if comp == float('inf') else f'{comp:.2f}'} "
                      f"| {int(med('cached'))} | {int(med('overruns'))} | {med('cpu_seconds'):.2f} "
                      f"| {1e6 * med('cpu_seconds') / n:.1f} | {med('rss_bytes_per_flow'):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
