#!/usr/bin/env python3
"""Replication benchmark: two namespaces joined by a veth pair, a daemon in
each (ours-ours, then conntrackd 1.4.7 on both sides, in the same run);
`ctperf fill -n N` creates N flows flat out in the primary's kernel and the
backup's `-s` is polled until its external cache holds N.

    sudo python3 perf/bench_sync.py [--sizes 100000] [--runs 3]
                                    [--mode NOTRACK|ALARM|FTFW] [--transport udp|mcast|tcp]
                                    [--rate R] [--loss PCT] [--corrupt PCT] [--auth] [--lanes N]

Reported per daemon pair: generation time, time until the backup holds all
N (or "never" within 60 s, with the count reached), CPU seconds of each
daemon, bytes on the sync link per flow (both directions, from the veth
counters), datagrams sent by the primary, and the time `-c` takes to
commit the backup's external cache into its kernel (with the entries the
kernel then holds), after the primary was killed as in a fail-over. JSON lines go to
perf/results/bench_sync.jsonl. Raises nf_conntrack_max in the host
namespace when needed and restores it.

With --auth a third pair runs: ours ↔ ours with `Sync { Authentication {
KeyFile } }` (HMAC-SHA256 trailer on every datagram), and a last row gives
its cost against the plain ours ↔ ours pair of the same run.

With BENCH_COMMIT_WRAP="CMD ..." in the environment each commit runs
under that command, `{tag}` replaced by the backup's path and the time (for instance
BENCH_COMMIT_WRAP="perf record -a -g -o /tmp/commit.{tag}").
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX = "/proc/sys/net/netfilter/nf_conntrack_max"
TICK = os.sysconf("SC_CLK_TCK")


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True)


def skip_without_root():
    """True (and a SKIP line) without root or conntrackd 1.4.7."""
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/conntrackd"):
        print("SKIP: needs root and /usr/sbin/conntrackd", file=sys.stderr)
        return True
    return False


@contextlib.contextmanager
def bench_run(name, need):
    """perf/results/NAME.jsonl opened for appending, with nf_conntrack_max
    raised to at least `need` in the host namespace (restored after)."""
    old = open(MAX).read().strip()
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    with open(os.path.join(ROOT, f"perf/results/{name}.jsonl"), "a") as jl:
        try:
            if int(old) < need:
                open(MAX, "w").write(str(need))
            yield jl
        finally:
            open(MAX, "w").write(old)


def cpu(pid, children=False):
    """CPU seconds (utime + stime) of `pid`; with `children`, of the
    children it waited for too."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15 if children else 13]) / TICK


def threads_cpu(pid):
    """CPU seconds of each thread of `pid` (tid → seconds)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[tid] = cpu(f"{pid}/task/{tid}")
        except OSError:
            pass
    return out


def busiest(before, after):
    """The most CPU one thread used between two `threads_cpu` readings."""
    return max((after[t] - before.get(t, 0.0) for t in after), default=0.0)


def conf(d, me, peer, dev, mode, tr, auth=None, lanes=None):
    ch = {
        "udp": f"UDP {{ IPv4_address {me}\n IPv4_Destination_Address {peer}\n Port 3780\n Interface {dev}\n SndSocketBuffer 24985600\n RcvSocketBuffer 24985600 }}",
        "tcp": f"TCP {{ IPv4_address {me}\n IPv4_Destination_Address {peer}\n Port 3780\n Interface {dev} }}",
        "mcast": f"Multicast {{ IPv4_address 225.0.0.50\n Group 3780\n IPv4_interface {me}\n Interface {dev}\n SndSocketBuffer 24985600\n RcvSocketBuffer 24985600 }}",
    }[tr]
    body = {"NOTRACK": "NOTRACK { }", "ALARM": "ALARM { RefreshTime 15 CacheTimeout 180 }",
            "FTFW": "FTFW { ResendQueueSize 131072 ACKWindowSize 300 }"}[mode]
    p = os.path.join(d, "c.conf")
    open(p, "w").write(
        f"Sync {{\n Mode {body}\n {ch}\n"
        + (f" Authentication {{ KeyFile {auth} }}\n" if auth else "")
        + "}\n"
        f"General {{\n Systemd off\n HashSize 65536\n HashLimit 4194304\n LockFile {d}/lock\n UNIX {{ Path {d}/ctl }}\n"
        " NetlinkBufferSize 8388608\n NetlinkBufferSizeMaxGrowth 268435456\n NetlinkOverrunResync 30\n"
        " Scheduler { Type FIFO Priority 0 }\n"
        + (f" Lanes {lanes}\n" if lanes else "")
        + "}\n")
    return p


def two_namespaces(a, b, net, dev_a, dev_b):
    """Namespaces `a` and `b` (loopback up) joined by a veth: `dev_a` in
    `a` at NET.1/24, `dev_b` in `b` at NET.2/24. Call it inside the `try`
    whose `finally` runs `cleanup`."""
    for ns in (a, b):
        sh(f"ip netns add {ns}")
        sh(f"ip -n {ns} link set lo up")
    sh(f"ip link add {dev_a} netns {a} type veth peer name {dev_b} netns {b}")
    for ns, dev, host in ((a, dev_a, 1), (b, dev_b, 2)):
        sh(f"ip -n {ns} addr add {net}.{host}/24 dev {dev}")
        sh(f"ip -n {ns} link set {dev} up")


def external(bin_, c):
    out = subprocess.run([bin_, "-C", c, "-s"], capture_output=True, text=True).stdout
    seen = False
    for l in out.splitlines():
        if l.startswith("cache external:"):
            seen = True
        elif seen and l.startswith("current active connections:"):
            return int(l.split()[-1])
    return -1


def pid_of(ns, c):
    for pid in sh(f"ip netns pids {ns}").stdout.split():
        try:
            if c in open(f"/proc/{pid}/cmdline").read():
                return int(pid)
        except OSError:
            pass
    return None


def link_bytes(ns, dev):
    s = lambda k: int(sh(f"ip netns exec {ns} cat /sys/class/net/{dev}/statistics/{k}").stdout)
    return s("tx_bytes") + s("rx_bytes"), s("tx_packets")


def impair(ns, dev, loss, corrupt):
    """The lab's `netem` without sch_netem: nftables at netdev ingress,
    drop `loss` % and overwrite the first message's seq in `corrupt` %."""
    if not loss and not corrupt:
        return
    rules = (f"table netdev loss {{\n chain in {{\n  type filter hook ingress device \"{dev}\" priority -500; policy accept;\n"
             f"  numgen random mod 1000000 < {int(loss * 10000)} drop\n"
             f"  ip protocol udp numgen random mod 1000000 < {int(corrupt * 10000)} @ih,32,32 set 0xdeadbeef\n }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True)


def one(bin_, ctperf, n, mode, tr, rate=0, loss=0.0, corrupt=0.0, auth=False, lanes=None, backup=None):
    """One burst of `n` flows from `bin_` (with `lanes`) to `backup` (the
    same binary and lanes unless given: a 1.4.7 backup runs one lane)."""
    bin_b = backup or bin_
    lanes_b = None if backup else lanes
    tag = os.getpid()
    a, b = f"cbsa-{tag}", f"cbsb-{tag}"
    base = tempfile.mkdtemp(prefix="ctbsync-")
    da, db = os.path.join(base, "a"), os.path.join(base, "b")
    os.makedirs(da), os.makedirs(db)
    try:
        two_namespaces(a, b, "10.98.0", "bsa", "bsb")
        key = None
        if auth:
            key = os.path.join(base, "sync.key")
            open(key, "w").write(os.urandom(32).hex() + "\n")
            os.chmod(key, 0o600)
        ca = conf(da, "10.98.0.1", "10.98.0.2", "bsa", mode, tr, key, lanes)
        cb = conf(db, "10.98.0.2", "10.98.0.1", "bsb", mode, tr, key, lanes_b)
        pa = subprocess.Popen(["ip", "netns", "exec", a, bin_, "-C", ca], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pb = subprocess.Popen(["ip", "netns", "exec", b, bin_b, "-C", cb], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.5 if tr == "tcp" else 1.0)
        impair(a, "bsa", loss, corrupt)
        impair(b, "bsb", loss, corrupt)
        ia, ib = pid_of(a, ca), pid_of(b, cb)
        c0a, c0b = cpu(ia), cpu(ib)
        t0a, t0b = threads_cpu(ia), threads_cpu(ib)
        bytes0, pk0 = link_bytes(a, "bsa")
        t0 = time.time()
        pace = f" --rate {rate}" if rate else ""
        gen = json.loads(sh(f"ip netns exec {a} {ctperf} fill -n {n}{pace}").stdout)
        done, got = None, 0
        while time.time() - t0 < 60:
            got = external(bin_b, cb)
            if got >= n:
                done = time.time() - t0
                break
            time.sleep(0.1)
        bytes1, pk1 = link_bytes(a, "bsa")
        cpu_a, cpu_b = cpu(ia) - c0a, cpu(ib) - c0b
        busy_a, busy_b = busiest(t0a, threads_cpu(ia)), busiest(t0b, threads_cpu(ib))
        # Fail-over: the primary is gone (killed, as when its firewall
        # dies), then the backup commits its external cache into its
        # kernel.
        commit, committed, commit_cpu = None, 0, None
        if done is not None:
            os.kill(ia, 9)
            time.sleep(0.5)
            t1 = time.time()
            c1b = cpu(ib, children=True)
            wrap = os.environ.get("BENCH_COMMIT_WRAP", "").replace("{tag}", f"{bin_b.strip('/').replace('/', '_')}-{time.time_ns()}")
            prof = wrap.split()
            subprocess.run(prof + ["ip", "netns", "exec", b, bin_b, "-C", cb, "-c"], capture_output=True)
            commit = time.time() - t1
            # the backup's CPU for the commit (its committers' time
            # waiting on the kernel's nfnetlink mutex included)
            commit_cpu = cpu(ib, children=True) - c1b
            out = subprocess.run(["ip", "netns", "exec", b, "conntrack", "-C"], capture_output=True, text=True).stdout
            committed = int(out.strip() or 0)
        r = {"daemon": bin_, "n": n, "mode": mode, "transport": tr, "rate": rate, "loss": loss, "corrupt": corrupt, "gen_seconds": gen["seconds"],
             "complete_seconds": done, "reached": got, "cpu_primary": cpu_a,
             "cpu_backup": cpu_b, "busiest_primary": busy_a, "busiest_backup": busy_b, "lanes": lanes or 1,
             "commit_seconds": commit, "committed": committed, "commit_cpu": commit_cpu, "bytes_per_flow": (bytes1 - bytes0) / n,
             "datagrams_primary": pk1 - pk0}
        stop(bin_, (ca,), (pa,))
        stop(bin_b, (cb,), (pb,))
        return r
    finally:
        cleanup((a, b), base)


def stop(bin_, confs, procs):
    """Stops the daemons (`-k`), killing what does not exit in 20 s."""
    for c in confs:
        subprocess.run([bin_, "-C", c, "-k"], capture_output=True)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def cleanup(namespaces, base):
    """Kills what is left in the namespaces, deletes them and `base`."""
    for ns in namespaces:
        subprocess.run(f"ip netns pids {ns} | xargs -r kill -9", shell=True)
        subprocess.run(f"ip netns del {ns}", shell=True)
    subprocess.run(f"rm -rf {base}", shell=True)


def commit_text(rs):
    cs = [r["commit_seconds"] for r in rs if r["commit_seconds"] is not None]
    if not cs:
        return "-"
    cc = [r["commit_cpu"] for r in rs if r.get("commit_cpu") is not None]
    cpu_s = f", CPU {statistics.median(cc):.2f}" if cc else ""
    return f"{statistics.median(cs):.2f}{cpu_s} ({min(r['committed'] for r in rs)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", default="NOTRACK")
    ap.add_argument("--transport", default="udp")
    ap.add_argument("--only-ours", action="store_true", help="skip the 1.4.7 pair")
    ap.add_argument("--rate", type=int, default=0, help="pace the creations (flows/s; 0 = flat out)")
    ap.add_argument("--loss", type=float, default=0.0, help="%% of sync datagrams dropped, each direction")
    ap.add_argument("--corrupt", type=float, default=0.0, help="%% with a corrupted sequence number")
    ap.add_argument("--auth", action="store_true", help="also ours ↔ ours with an authenticated link")
    ap.add_argument("--lanes", type=int, default=0, help="also ours ↔ ours with General { Lanes N }")
    ap.add_argument("--mixed", action="store_true",
                    help="with --lanes: also ours (Lanes 1, Lanes N) toward a 1.4.7 backup (the lanes follow its one)")
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--ctperf", default=os.path.join(ROOT, "target/release/ctperf"))
    a = ap.parse_args()
    if skip_without_root():
        return 0
    sizes = [int(x) for x in a.sizes.split(",")]
    print(f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}, {a.mode} over {a.transport}, rate {a.rate or 'flat out'}, loss {a.loss}%, corrupt {a.corrupt}%, median of {a.runs}\n", flush=True)
    print("| daemons | N | generation s | backup complete after s | CPU primary s | CPU backup s | link bytes/flow | datagrams | commit s, CPU s (entries) |", flush=True)
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    with bench_run("bench_sync", max(sizes) + 10000) as jl:
        for n in sizes:
            ref = "/usr/sbin/conntrackd"
            pairs = [("1.4.7 ↔ 1.4.7", ref, False, None, None), ("ours ↔ ours", a.ours, False, None, None)]
            if a.auth:
                pairs.append(("ours ↔ ours, authenticated", a.ours, True, None, None))
            if a.lanes:
                pairs.append((f"ours ↔ ours, Lanes {a.lanes}", a.ours, False, a.lanes, None))
            if a.lanes and a.mixed:
                pairs.append(("ours → 1.4.7", a.ours, False, None, ref))
                pairs.append((f"ours, Lanes {a.lanes} → 1.4.7", a.ours, False, a.lanes, ref))
            meds = {}
            busy = {}
            for name, b, auth, lanes, backup in pairs[1:] if a.only_ours else pairs:
                rs = [one(b, a.ctperf, n, a.mode, a.transport, a.rate, a.loss, a.corrupt, auth, lanes, backup)
                      for _ in range(a.runs)]
                for r in rs:
                    jl.write(json.dumps({"pair": name, **r}) + "\n")
                med = lambda k: statistics.median([r[k] for r in rs])
                comps = [r["complete_seconds"] for r in rs]
                comp = "never (%s)" % ",".join(str(r["reached"]) for r in rs) if None in comps else f"{statistics.median(comps):.2f}"
                print(f"| {name} | {n} | {med('gen_seconds'):.2f} | {comp} | {med('cpu_primary'):.2f} | {med('cpu_backup'):.2f} "
                      f"| {med('bytes_per_flow'):.1f} | {int(med('datagrams_primary'))} | {commit_text(rs)} |", flush=True)
                busy[name] = (med("busiest_primary"), med("busiest_backup"), med("cpu_primary") + med("cpu_backup"))
                cs = [r["commit_seconds"] for r in rs if r["commit_seconds"] is not None]
                meds[name] = {"cpu_a": med("cpu_primary"), "cpu_b": med("cpu_backup"),
                              "bytes": med("bytes_per_flow"), "dgrams": med("datagrams_primary"),
                              "commit": statistics.median(cs) if cs else None,
                              "complete": None if None in comps else statistics.median(comps)}
            for label, x, y in [("ratio ours/1.4.7", "ours ↔ ours", "1.4.7 ↔ 1.4.7"),
                                (f"ratio Lanes {a.lanes}/1.4.7", f"ours ↔ ours, Lanes {a.lanes}", "1.4.7 ↔ 1.4.7"),
                                (f"ratio Lanes {a.lanes}/Lanes 1", f"ours ↔ ours, Lanes {a.lanes}", "ours ↔ ours"),
                                ("ratio authenticated/plain", "ours ↔ ours, authenticated", "ours ↔ ours")]:
                if x not in meds or y not in meds:
                    continue
                o, c = meds[x], meds[y]
                rt = lambda k: f"{o[k] / c[k]:.2f}x" if o[k] is not None and c[k] else "-"
                print(f"| {label} | {n} | | {rt('complete')} | {rt('cpu_a')} | {rt('cpu_b')} | {rt('bytes')} "
                      f"| {rt('dgrams')} | {rt('commit')} |", flush=True)
            print(f"\n| daemons | N | busiest thread, primary s | busiest thread, backup s | CPU both sides s |", flush=True)
            print("|---|---|---|---|---|", flush=True)
            for name, (bp, bb, tot) in busy.items():
                print(f"| {name} | {n} | {bp:.2f} | {bb:.2f} | {tot:.2f} |", flush=True)
            if a.lanes and "ours ↔ ours" in busy and f"ours ↔ ours, Lanes {a.lanes}" in busy:
                one_, many = busy["ours ↔ ours"], busy[f"ours ↔ ours, Lanes {a.lanes}"]
                print(f"| ratio Lanes {a.lanes}/Lanes 1 | {n} | {many[0] / one_[0]:.2f}x | {many[1] / one_[1]:.2f}x | {many[2] / one_[2]:.2f}x |", flush=True)
            if "1.4.7 ↔ 1.4.7" in busy:
                ref = busy["1.4.7 ↔ 1.4.7"][2]
                for name, (_, _, tot) in busy.items():
                    if name != "1.4.7 ↔ 1.4.7":
                        print(f"| {name} / 1.4.7, CPU both sides | {n} | | | {tot / ref:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
