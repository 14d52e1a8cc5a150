#!/usr/bin/env python3
"""Warm restart benchmark: how long a backup killed -9 needs after its
restart to hold its peer's N flows again — from its snapshot (ours, `Sync {
Snapshot { } }`) against a cold resync over the link (ours without a
snapshot, and conntrackd 1.4.7, both with `StartupResync on`), in the same
run.

    sudo python3 perf/bench_warm.py [--sizes 1000000] [--runs 1] [--rate 100000]

Per case: two namespaces joined by a veth (FT-FW over UDP, the lab's
buffers), `ctperf fill -n N` in the primary, wait until the backup holds N
(and, warm, until its snapshot holds N), `kill -9` the backup, restart it,
and poll `-s` until its external cache holds N again ("ready"; or 120 s).
Warm also reports when the reconciliation with the peer's resync ended
(from the log). The "primary down too" cases kill the primary as well
before the restart (both firewalls failed): nothing can come over the
link, so only a snapshot brings the states back (polled for 10 s). Reported: ready after s, the backup's CPU until ready, and
the snapshot's size. JSON lines go to perf/results/bench_warm.jsonl.
Raises nf_conntrack_max in the host namespace when needed and restores it.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sync import (ROOT, bench_run, cleanup, cpu, external, pid_of, sh, two_namespaces,  # noqa: E402
                        skip_without_root, stop)


def conf(d, me, peer, dev, snapshot):
    p = os.path.join(d, "c.conf")
    snap = f" Snapshot {{ Path {d}/ext.snap\n Interval 2 }}\n" if snapshot else ""
    open(p, "w").write(
        "Sync {\n Mode FTFW { ResendQueueSize 131072 ACKWindowSize 300 StartupResync on }\n"
        f" UDP {{ IPv4_address {me}\n IPv4_Destination_Address {peer}\n Port 3780\n Interface {dev}\n"
        " SndSocketBuffer 24985600\n RcvSocketBuffer 24985600 }\n" + snap + "}\n"
        f"General {{\n Systemd off\n HashSize 65536\n HashLimit 4194304\n LockFile {d}/lock\n UNIX {{ Path {d}/ctl }}\n"
        f" LogFile {d}/log\n NetlinkBufferSize 8388608\n NetlinkBufferSizeMaxGrowth 268435456\n NetlinkOverrunResync 30\n}}\n")
    return p


def snapshot_entries(path):
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        # format 1 or 2 (2 adds the lanes' stamp; entries at the same place)
        if head[:7] != b"CTSNAP\x00" or head[7] not in (1, 2):
            return -1
        return int.from_bytes(head[16:24], "big")
    except OSError:
        return -1


def wait(pred, secs):
    t0 = time.time()
    while time.time() - t0 < secs:
        if pred():
            return time.time() - t0
        time.sleep(0.05)
    return None


def one(bin_, ctperf, n, warm, rate=0, peer_down=False):
    tag = os.getpid()
    a, b = f"cbwa-{tag}", f"cbwb-{tag}"
    base = tempfile.mkdtemp(prefix="ctbwarm-")
    da, db = os.path.join(base, "a"), os.path.join(base, "b")
    os.makedirs(da), os.makedirs(db)
    procs = []
    try:
        two_namespaces(a, b, "10.97.0", "bwa", "bwb")
        ca = conf(da, "10.97.0.1", "10.97.0.2", "bwa", False)
        cb = conf(db, "10.97.0.2", "10.97.0.1", "bwb", warm)
        spawn = lambda ns, c: subprocess.Popen(["ip", "netns", "exec", ns, bin_, "-C", c],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs = [spawn(a, ca), spawn(b, cb)]
        time.sleep(1.0)
        sh(f"ip netns exec {a} {ctperf} fill -n {n}" + (f" --rate {rate}" if rate else ""))
        synced = wait(lambda: external(bin_, cb) >= n, 120)
        if synced is None:
            return {"daemon": bin_, "n": n, "warm": warm, "error": "backup never synced"}
        snap = os.path.join(db, "ext.snap")
        if warm and wait(lambda: snapshot_entries(snap) >= n, 60) is None:
            return {"daemon": bin_, "n": n, "warm": warm, "error": "no snapshot"}
        time.sleep(1.0)
        os.kill(pid_of(b, cb), signal.SIGKILL)
        procs[1].wait()
        if peer_down:
            # the primary fails too: nothing can come over the link
            os.kill(pid_of(a, ca), signal.SIGKILL)
            procs[0].wait()
        for f in ("lock", "ctl"):
            try:
                os.unlink(os.path.join(db, f))
            except OSError:
                pass
        t0 = time.time()
        procs[1] = spawn(b, cb)
        wait(lambda: os.path.exists(os.path.join(db, "ctl")), 30)
        pid = pid_of(b, cb)
        ready = wait(lambda: external(bin_, cb) >= n, 10 if peer_down else 120)
        ready = None if ready is None else time.time() - t0
        cpu_ready = cpu(pid)
        reconciled = None
        if warm and not peer_down:
            r = wait(lambda: "reconciled with the peer" in open(os.path.join(db, "log")).read(), 60)
            reconciled = None if r is None else time.time() - t0
        return {"daemon": bin_, "n": n, "warm": warm, "peer_down": peer_down, "ready_seconds": ready,
                "reconciled_seconds": reconciled, "cpu_until_ready": cpu_ready,
                "final": external(bin_, cb),
                "snapshot_bytes": os.path.getsize(snap) if warm and os.path.exists(snap) else 0}
    finally:
        stop(bin_, (ca, cb), procs)
        cleanup((a, b), base)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--rate", type=int, default=0, help="pace the fill (flows/s), so that 1.4.7 keeps up at 1M")
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if skip_without_root():
        return 0
    sizes = [int(x) for x in a.sizes.split(",")]
    print(f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}, FT-FW over UDP, backup killed -9 and restarted, median of {a.runs}\n", flush=True)
    print("| backup | N | ready after restart s | reconciled s | CPU until ready s | snapshot MB |", flush=True)
    print("|---|---|---|---|---|---|", flush=True)
    with bench_run("bench_warm", max(sizes) + 10000) as jl:
        for n in sizes:
            cases = [("1.4.7, cold (StartupResync)", "/usr/sbin/conntrackd", False, False),
                     ("ours, cold (StartupResync)", a.ours, False, False),
                     ("ours, warm (Snapshot)", a.ours, True, False),
                     ("1.4.7, cold, primary down too", "/usr/sbin/conntrackd", False, True),
                     ("ours, warm, primary down too", a.ours, True, True)]
            for name, b, warm, down in cases:
                rs = [one(b, a.ctperf, n, warm, a.rate, down) for _ in range(a.runs)]
                for r in rs:
                    jl.write(json.dumps({"case": name, **r}) + "\n")
                ok = [r for r in rs if "error" not in r]
                if not ok:
                    print(f"| {name} | {n} | error: {rs[0]['error']} | | | |", flush=True)
                    continue
                med = lambda k: statistics.median([r[k] if r[k] is not None else float("inf") for r in ok])
                fmt = lambda v: "never" if v == float("inf") else f"{v:.2f}"
                print(f"| {name} | {n} | {fmt(med('ready_seconds'))} | "
                      f"{fmt(med('reconciled_seconds')) if warm and not down else '-'} | {med('cpu_until_ready'):.2f} | "
                      f"{med('snapshot_bytes') / 1e6:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
