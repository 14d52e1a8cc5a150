#!/usr/bin/env python3
"""Soak: a long steady churn through two daemon pairs at once (ours ↔ ours
and conntrackd 1.4.7 ↔ 1.4.7, each in its own two namespaces joined by a
veth), FT-FW over UDP with loss on the sync link, to see whether memory
stays flat and whether any state is lost or left over after hours' worth
of creations and destructions.

    sudo python3 perf/bench_soak.py [--secs 600] [--rate 3000] [--update-rate 1000]
                                    [--life 2] [--loss 1] [--static 2000] [--lanes N]
                                    [--only-ours | --mixed]

In each primary: `ctperf fill -n STATIC` first (long-lived flows that must
be on the backup at the end, and only they), then `ctperf churn` for SECS
(RATE creations/s, each destroyed LIFE s later, UPDATE-RATE updates/s).
Every 15 s the daemons' VmRSS and CPU and the caches' sizes are sampled.
After the churn (which destroys what it made) and a 10-s drain, the
backup's external cache must hold exactly the static flows, and the
primary's internal cache too. With --mixed the two pairs are ours → 1.4.7
and 1.4.7 → ours (the 1.4.x wire format over hours). Prints a Markdown table; JSON lines go to
perf/results/bench_soak.jsonl.
"""
import argparse
import re
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))
import bench_sync as bs  # noqa: E402  (shared namespace/daemon helpers)

C = "/usr/sbin/conntrackd"


def rss_kb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
    return -1


def cache_count(bin_, c, which):
    """`current active connections` of the `which` cache in `-s`."""
    out = subprocess.run([bin_, "-C", c, "-s"], capture_output=True, text=True).stdout
    seen = False
    for l in out.splitlines():
        if l.startswith(f"cache {which}:"):
            seen = True
        elif seen and l.startswith("current active connections:"):
            return int(l.split()[-1])
    return -1


def listing(bin_, ns, c, opt):
    out = subprocess.run(["ip", "netns", "exec", ns, bin_, "-C", c, opt], capture_output=True, text=True).stdout
    # the original tuple (-e leaves out a reply that is the inverse)
    return sorted(" ".join(l.split()[:1] + re.findall(r"(?:src|dst|sport|dport)=\S+", l)[:4])
                  for l in out.splitlines() if l.strip())


def pair(name, bins, a_args, out, tag):
    """One pair: `bins` = (primary, backup) daemons."""
    bin_a, bin_b = bins
    ctperf = a_args.ctperf
    a, b = f"csk{tag}a-{os.getpid()}", f"csk{tag}b-{os.getpid()}"
    base = tempfile.mkdtemp(prefix=f"ctsoak{tag}-")
    da, db = os.path.join(base, "a"), os.path.join(base, "b")
    os.makedirs(da), os.makedirs(db)
    try:
        bs.two_namespaces(a, b, "10.96.0", "bsa", "bsb")
        lanes = a_args.lanes if C not in bins else None
        ca = bs.conf(da, "10.96.0.1", "10.96.0.2", "bsa", "FTFW", "udp", None, lanes)
        cb = bs.conf(db, "10.96.0.2", "10.96.0.1", "bsb", "FTFW", "udp", None, lanes)
        pa = subprocess.Popen(["ip", "netns", "exec", a, bin_a, "-C", ca], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pb = subprocess.Popen(["ip", "netns", "exec", b, bin_b, "-C", cb], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        bs.impair(a, "bsa", a_args.loss, 0)
        bs.impair(b, "bsb", a_args.loss, 0)
        ia, ib = bs.pid_of(a, ca), bs.pid_of(b, cb)
        bs.sh(f"ip netns exec {a} {ctperf} fill -n {a_args.static} --timeout 86400 --start 50000000")
        time.sleep(2)
        c0a, c0b = bs.cpu(ia), bs.cpu(ib)
        churn = subprocess.Popen(["ip", "netns", "exec", a, ctperf, "churn", "--rate", str(a_args.rate),
                                  "--secs", str(a_args.secs), "--life", str(a_args.life), "--long-every", "0",
                                  "--update-rate", str(a_args.update_rate)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        t0 = time.time()
        samples = []
        while churn.poll() is None:
            samples.append({"t": round(time.time() - t0), "rss_a": rss_kb(ia), "rss_b": rss_kb(ib),
                            "cpu_a": bs.cpu(ia) - c0a, "cpu_b": bs.cpu(ib) - c0b,
                            "internal_a": cache_count(bin_a, ca, "internal"),
                            "external_b": cache_count(bin_b, cb, "external")})
            time.sleep(15)
        gen = json.loads(churn.stdout.read() or "{}")
        time.sleep(10)
        ext = listing(bin_b, b, cb, "-e")
        intl = listing(bin_a, a, ca, "-i")
        kern = int(bs.sh(f"ip netns exec {a} conntrack -C").stdout.strip() or -1)
        r = {"pair": name, "secs": a_args.secs, "rate": a_args.rate, "update_rate": a_args.update_rate,
             "loss": a_args.loss, "static": a_args.static, "lanes": lanes or 1, "churn": gen, "samples": samples,
             "end_kernel_a": kern, "end_internal_a": len(intl), "end_external_b": len(ext),
             "end_same": ext == intl, "cpu_a": bs.cpu(ia) - c0a, "cpu_b": bs.cpu(ib) - c0b,
             "rss_a_end": rss_kb(ia), "rss_b_end": rss_kb(ib)}
        bs.stop(bin_a, (ca,), (pa,))
        bs.stop(bin_b, (cb,), (pb,))
        out[name] = r
    finally:
        bs.cleanup((a, b), base)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=int, default=600)
    ap.add_argument("--rate", type=int, default=3000)
    ap.add_argument("--update-rate", type=int, default=1000)
    ap.add_argument("--life", type=float, default=2.0)
    ap.add_argument("--loss", type=float, default=1.0)
    ap.add_argument("--static", type=int, default=2000)
    ap.add_argument("--lanes", type=int, default=0)
    ap.add_argument("--only-ours", action="store_true")
    ap.add_argument("--mixed", action="store_true", help="ours → 1.4.7 and 1.4.7 → ours instead")
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if bs.skip_without_root():
        return 0
    print(f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}: FT-FW over UDP, {a.secs} s of churn at {a.rate}/s "
          f"(life {a.life} s, {a.update_rate} updates/s), {a.loss} % loss each way, {a.static} static flows, "
          "both pairs at once\n", flush=True)
    pairs = [("ours ↔ ours" + (f", Lanes {a.lanes}" if a.lanes else ""), (a.ours, a.ours))]
    if a.mixed:
        pairs = [("ours → 1.4.7", (a.ours, C)), ("1.4.7 → ours", (C, a.ours))]
    elif not a.only_ours:
        pairs.append(("1.4.7 ↔ 1.4.7", (C, C)))
    out = {}
    ts = [threading.Thread(target=pair, args=(n, b, a, out, i)) for i, (n, b) in enumerate(pairs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    with open(os.path.join(ROOT, "perf/results/bench_soak.jsonl"), "a") as jl:
        for r in out.values():
            jl.write(json.dumps(r) + "\n")
    print("| daemons | created | destroyed | RSS primary KB (1st min → end) | RSS backup KB (1st min → end) "
          "| CPU primary s | CPU backup s | end: kernel / internal / external | internal = external |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, r in out.items():
        s = r["samples"]
        first = next((x for x in s if x["t"] >= 60), s[-1] if s else {"rss_a": -1, "rss_b": -1})
        c = r["churn"]
        print(f"| {n} | {c.get('created', '?')} | {c.get('destroyed', '?')} | {first['rss_a']} → {r['rss_a_end']} "
              f"| {first['rss_b']} → {r['rss_b_end']} | {r['cpu_a']:.1f} | {r['cpu_b']:.1f} "
              f"| {r['end_kernel_a']} / {r['end_internal_a']} / {r['end_external_b']} | {r['end_same']} |")
    if len(out) == 2 and not a.mixed:
        o, c = out[pairs[0][0]], out["1.4.7 ↔ 1.4.7"]
        print(f"| ours / 1.4.7 | | | | | {o['cpu_a'] / c['cpu_a']:.2f}x | {o['cpu_b'] / c['cpu_b']:.2f}x | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
