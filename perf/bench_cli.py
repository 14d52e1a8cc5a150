#!/usr/bin/env python3
"""Benchmark `conntrack` (ours) against /usr/sbin/conntrack (1.4.7) in the
same run, in a throw-away network namespace.

    sudo python3 perf/bench_cli.py [--sizes 100000,1000000] [--runs 3]
                                   [--event-rates 25000,50000,100000,200000,0]
                                   [--ours target/release/conntrack]
                                   [--ctperf target/release/ctperf]

Measures, for each table size N: `-L`, `-L -o xml`, `-C` (wall, user, sys,
max RSS), a raw dump that parses nothing (`ctperf dump`, the floor), and
`-F`. Then `-E -e NEW` while `ctperf fill` creates 100k entries at each
rate (0 = flat out): events printed vs generated. Prints a Markdown report
(medians, min/max) and writes JSON lines to perf/results/bench_cli.jsonl.

Raises net.netfilter.nf_conntrack_max in the host namespace when N needs
it (it is read-only inside a namespace on this kernel) and restores it.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX = "/proc/sys/net/netfilter/nf_conntrack_max"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw)


class Netns:
    def __init__(self):
        self.name = f"ctbench-{os.getpid()}"
        sh(f"ip netns add {self.name}")
        sh(f"ip -n {self.name} link set lo up")

    def prefix(self):
        return f"ip netns exec {self.name} "

    def close(self):
        subprocess.run(f"ip netns pids {self.name} | xargs -r kill -9", shell=True)
        subprocess.run(f"ip netns del {self.name}", shell=True)


def timed(ns, cmd):
    """Runs cmd in the namespace with stdout to /dev/null; returns
    (wall, user, sys, maxrss_kb)."""
    out = sh(f"{ns.prefix()}/usr/bin/time -f '%e %U %S %M' {cmd} >/dev/null 2>/tmp/ctbench.time; tail -1 /tmp/ctbench.time")
    w, u, s, m = out.stdout.split()
    return float(w), float(u), float(s), int(m)


def stats(vals):
    return min(vals), statistics.median(vals), max(vals)


def fill(ns, ctperf, n, rate=0):
    r = sh(f"{ns.prefix()}{ctperf} fill -n {n} --rate {rate}")
    return json.loads(r.stdout)


def flush(ns):
    subprocess.run(f"{ns.prefix()}/usr/sbin/conntrack -F", shell=True, capture_output=True)


def count(ns):
    return int(sh(f"{ns.prefix()}/usr/sbin/conntrack -C").stdout.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--event-rates", default="25000,50000,100000,200000,0")
    ap.add_argument("--event-n", type=int, default=100000)
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrack"))
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/conntrack"):
        print("SKIP: needs root and /usr/sbin/conntrack", file=sys.stderr)
        return 0
    tools = {"C 1.4.7": "/usr/sbin/conntrack", "ours": a.ours}
    sizes = [int(x) for x in a.sizes.split(",")]
    old_max = open(MAX).read().strip()
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    jl = open(os.path.join(ROOT, "perf/results/bench_cli.jsonl"), "a")
    ns = Netns()
    report = []

    def emit(line):
        report.append(line)
        print(line, flush=True)
    try:
        need = max(sizes + [a.event_n]) + 10000
        if int(old_max) < need:
            open(MAX, "w").write(str(need))
        emit(f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}, load {open('/proc/loadavg').read().split()[0]}, {a.runs} runs each, median (min–max)\n")
        emit("| command | N | tool | wall s | user s | sys s | max RSS KB | ratio ours/C |")
        emit("|---|---|---|---|---|---|---|---|")
        for n in sizes:
            flush(ns)
            fill(ns, a.ctperf, n)
            assert count(ns) == n, "fill incomplete"
            raw = [json.loads(sh(f"{ns.prefix()}{a.ctperf} dump").stdout)["seconds"] for _ in range(a.runs)]
            for args in ["-L", "-L -o xml", "-C"]:
                med = {}
                for name, path in tools.items():
                    rs = [timed(ns, f"{path} {args}") for _ in range(a.runs)]
                    w = stats([r[0] for r in rs])
                    med[name] = w[1]
                    u = statistics.median([r[1] for r in rs])
                    s = statistics.median([r[2] for r in rs])
                    m = max(r[3] for r in rs)
                    ratio = f"{w[1] / med['C 1.4.7']:.2f}" if name == "ours" and med["C 1.4.7"] > 0 else ""
                    emit(f"| `conntrack {args}` | {n} | {name} | {w[1]:.3f} ({w[0]:.3f}–{w[2]:.3f}) | {u:.2f} | {s:.2f} | {m} | {ratio} |")
                    jl.write(json.dumps({"bench": "cli", "args": args, "n": n, "tool": name, "wall": w, "user": u, "sys": s, "maxrss_kb": m}) + "\n")
                if args == "-L":
                    r = stats(raw)
                    emit(f"| raw dump, no parsing (`ctperf dump`) | {n} | floor | {r[1]:.3f} ({r[0]:.3f}–{r[2]:.3f}) | | | | ours/raw {med['ours'] / r[1]:.2f} |")
                    jl.write(json.dumps({"bench": "raw_dump", "n": n, "wall": r}) + "\n")
            # Flush: once per tool per run, refilling in between.
            fl = {}
            for name, path in tools.items():
                ws = []
                for _ in range(a.runs):
                    flush(ns)
                    fill(ns, a.ctperf, n)
                    ws.append(timed(ns, f"{path} -F")[0])
                fl[name] = stats(ws)
                ratio = f"{fl[name][1] / fl['C 1.4.7'][1]:.2f}" if name == "ours" else ""
                emit(f"| `conntrack -F` | {n} | {name} | {fl[name][1]:.3f} ({fl[name][0]:.3f}–{fl[name][2]:.3f}) | | | | {ratio} |")
                jl.write(json.dumps({"bench": "flush", "n": n, "tool": name, "wall": fl[name]}) + "\n")
        emit("")
        emit(f"`conntrack -E -e NEW > file` while `ctperf fill -n {a.event_n} --rate R` runs (R=0: flat out)\n")
        emit("| tool | rate/s asked | generator achieved/s | events printed (min / median / max) | loss median | ENOBUFS warnings | listener CPU s |")
        emit("|---|---|---|---|---|---|---|")
        for rate in [int(x) for x in a.event_rates.split(",")]:
            for name, path in tools.items():
                got, warn, cpu, ach = [], [], [], []
                for _ in range(a.runs):
                    flush(ns)
                    outf = f"/tmp/ctbench-ev-{os.getpid()}.out"
                    errf = outf + ".err"
                    p = subprocess.Popen(
                        f"exec {ns.prefix()}/usr/bin/time -f '%U %S' {path} -E -e NEW >{outf} 2>{errf}",
                        shell=True, start_new_session=True)
                    time.sleep(0.5)
                    ach.append(fill(ns, a.ctperf, a.event_n, rate)["per_second"])
                    time.sleep(2)
                    # SIGINT to the listener's process group (time ignores it
                    # while it waits; the listener prints its summary).
                    os.killpg(p.pid, signal.SIGINT)
                    try:
                        p.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
                    got.append(sum(1 for _ in open(outf)))
                    err = open(errf).read()
                    warn.append(err.count("ENOBUFS"))
                    u, s = err.strip().splitlines()[-1].split()
                    cpu.append(float(u) + float(s))
                    os.unlink(outf)
                    os.unlink(errf)
                g = stats(got)
                loss = 100.0 * (a.event_n - g[1]) / a.event_n
                emit(f"| {name} | {rate or 'flat out'} | {statistics.median(ach):.0f} | {g[0]} / {g[1]} / {g[2]} | {loss:.1f} % | {statistics.median(warn)} | {statistics.median(cpu):.2f} |")
                jl.write(json.dumps({"bench": "events", "tool": name, "rate": rate, "achieved": ach, "printed": got, "enobufs": warn, "cpu": cpu}) + "\n")
    finally:
        ns.close()
        open(MAX, "w").write(old_max)
    return 0


if __name__ == "__main__":
    sys.exit(main())
