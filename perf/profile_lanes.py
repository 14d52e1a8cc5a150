#!/usr/bin/env python3
"""Where the primary's CPU goes during a flat-out FT-FW burst, with
`Lanes 1` and with `Lanes N`: `perf record -a -g` around one run of
bench_sync.py's pair (ours on both sides), then the primary's samples
during the burst (while `ctperf fill` runs) sorted into kernel receive
(netlink recvmsg, io_uring receive), kernel send, scheduling and
wake-ups, other kernel work and user space; per thread, and the leaf
functions that differ most.

    sudo python3 perf/profile_lanes.py [-n 200000] [--lanes 2]

Needs `perf`. The samples are cpu-clock at perf's default rate (4 kHz:
0.25 ms each).
"""
import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))
import bench_sync as bs  # noqa: E402

HDR = re.compile(r"^\s*(\S.*?)\s+(\d+)/(\d+)\s+(\d+\.\d+):")
SCHED = ("finish_task_switch", "__schedule", "_raw_spin_unlock_irqrestore", "try_to_wake_up")


def record(n, lanes, out):
    p = subprocess.Popen(["perf", "record", "-a", "-g", "-o", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    r = bs.one(os.path.join(ROOT, "target/release/conntrackd"),
               os.path.join(ROOT, "target/release/ctperf"), n, "FTFW", "udp", lanes=lanes)
    p.send_signal(signal.SIGINT)
    p.wait()
    return r


def samples(path):
    """(comm, pid, tid, time, [frames]) of every sample."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,pid,tid,time,ip,sym,dso"],
                         capture_output=True, text=True).stdout.split("\n")
    i = 0
    while i < len(out):
        m = HDR.match(out[i])
        i += 1
        if not m:
            continue
        frames = []
        while i < len(out) and out[i].strip():
            frames.append(out[i].strip())
            i += 1
        yield m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), frames


def kind(frames):
    leaf = frames[0] if frames else ""
    whole = " ".join(frames)
    if "kernel.kallsyms" not in leaf:
        return "user space"
    if "netlink_recvmsg" in whole or "io_recv" in whole:
        return "kernel: receive"
    if "sendmsg" in whole or "udp_send" in whole or "ip_finish_output" in whole:
        return "kernel: send"
    if any(s in leaf for s in SCHED) or "schedule" in whole:
        return "kernel: scheduling, wake-ups"
    return "kernel: other"


def analyse(path):
    all_ = list(samples(path))
    gen = [s[3] for s in all_ if s[0] == "ctperf"]
    t0, t1 = min(gen), max(gen)
    by_pid = collections.Counter(s[1] for s in all_ if s[0] in ("conntrackd", "lane1", "lane2", "lane3")
                                 and t0 <= s[3] <= t1)
    primary = by_pid.most_common(1)[0][0]
    cats, threads, leaves = collections.Counter(), collections.Counter(), collections.Counter()
    for comm, pid, tid, t, frames in all_:
        if pid == primary and t0 <= t <= t1:
            cats[kind(frames)] += 1
            threads[f"{comm}/{tid}"] += 1
            leaves[frames[0].split(None, 1)[-1] if frames else "?"] += 1
    return cats, threads, leaves


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200000)
    ap.add_argument("--lanes", type=int, default=2)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="ctproflanes-")
    res = {}
    for lanes in (1, a.lanes):
        path = os.path.join(d, f"lanes{lanes}.data")
        r = record(a.n, lanes, path)
        res[lanes] = (r, *analyse(path))
    names = ["kernel: receive", "kernel: send", "user space", "kernel: scheduling, wake-ups", "kernel: other"]
    print(f"\n{a.n} flows, FT-FW over UDP, flat out; the primary's samples while `ctperf fill` runs (ms)\n")
    print("| primary | " + " | ".join(names) + " | total | threads (samples) | datagrams |")
    print("|---" * (len(names) + 4) + "|")
    for lanes, (r, cats, threads, _) in res.items():
        tot = sum(cats.values())
        print(f"| Lanes {lanes} | " + " | ".join(f"{cats[k] * 0.25:.0f}" for k in names)
              + f" | {tot * 0.25:.0f} | " + ", ".join(f"{k} {v}" for k, v in threads.most_common())
              + f" | {r['datagrams_primary']} |")
    (_, _, _, l1), (_, _, _, ln) = res[1], res[a.lanes]
    print(f"\nLeaf functions, samples with Lanes 1 and Lanes {a.lanes} (largest differences):\n")
    for k in sorted(set(l1) | set(ln), key=lambda k: -abs(ln[k] - l1[k]))[:15]:
        print(f"    {l1[k]:6d} {ln[k]:6d} {ln[k] - l1[k]:+6d}  {k}")


if __name__ == "__main__":
    main()
