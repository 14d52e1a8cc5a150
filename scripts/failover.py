#!/usr/bin/env python3
"""Fail-over, end to end, on the lab (scripts/lab/lab.sh): two firewalls with
keepalived (VRRP on ha0) driving conntrackd through
dist/keepalived/primary-backup.sh, a client and a server routed through the
firewalls' virtual IPs, a stateful ruleset that drops INVALID and mid-stream
packets without state, and nf_conntrack_tcp_loose=0.

A long-lived TCP stream and a set of UDP flows run through fw1; then fw1
fails:
  graceful  fw1's keepalived is stopped (it hands over at once);
  kill      fw1's keepalived and conntrackd are killed -9 and all its links
            cut (nftables drops everything on them; fw2 notices after 3
            missed adverts);
fw2 becomes master and commits its external cache; the streams must go on.
With --failback, fw1 comes back (links restored, keepalived started: its
conntrackd is started by primary-backup.sh and asks fw2 for a resync), fw2's
keepalived is stopped, and fw1 takes the traffic back.

Prints one JSON object per scenario and a summary table; exit status 0 when
every scenario met its expectation (streams survive with sync, and die
without it when --no-sync is given).

  sudo python3 scripts/failover.py                      # ours, graceful + kill
  sudo python3 scripts/failover.py --compare            # ours and 1.4.7
  sudo python3 scripts/failover.py --failure kill --failback --no-sync-control
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.path.join(ROOT, "scripts", "lab", "lab.sh")
FLOWGEN = os.path.join(ROOT, "scripts", "lab", "flowgen.py")
SV_IP = "10.77.20.100"
NARRATE = False


def say(msg):
    if NARRATE:
        print("==> " + msg, file=sys.stderr, flush=True)


class Lab:
    def __init__(self, prefix, state, verbose):
        self.prefix = prefix
        self.state = state
        self.verbose = verbose
        self.env = dict(os.environ, LAB_PREFIX=prefix, LAB_STATE=state)

    def ns(self, role):
        return self.prefix + role

    def sh(self, *args, env=None, check=True):
        e = dict(self.env)
        e.update(env or {})
        r = subprocess.run([LAB, *args], env=e, capture_output=True, text=True)
        if self.verbose:
            sys.stderr.write(r.stdout + r.stderr)
        if check and r.returncode != 0:
            raise RuntimeError("lab.sh %s failed: %s" % (" ".join(args), r.stderr[-2000:]))
        return r.stdout

    def run(self, role, *cmd, check=False):
        return subprocess.run(["ip", "netns", "exec", self.ns(role), *cmd],
                              capture_output=True, text=True, check=check)

    def spawn(self, role, *cmd):
        return subprocess.Popen(["ip", "netns", "exec", self.ns(role), *cmd],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def notify_log(self, fw):
        try:
            with open(os.path.join(self.state, fw, "notify.log")) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def wait_notify(self, fw, word, since, timeout):
        """Timestamp of the first notify.log line of fw containing word,
        written after `since`."""
        end = time.time() + timeout
        while time.time() < end:
            for line in self.notify_log(fw):
                parts = line.split()
                if len(parts) > 1 and word in line:
                    try:
                        t = float(parts[0])
                    except ValueError:
                        continue
                    if t >= since:
                        return t
            time.sleep(0.05)
        return None

    def ctl(self, fw, binary, *args):
        conf = os.path.join(self.state, fw, "conntrackd.conf")
        return self.run(fw, binary, "-C", conf, *args).stdout


DEVS = ("lan0", "wan0", "ha0", "sync0")


def cut_links(lab, cut, fw="fw1"):
    """Cuts (or restores) every link of fw (fw1): all packets dropped at
    netdev ingress and egress. Taking the veths down instead would also take
    the carrier off their peers (fw2's ha0 and sync0), which a switched
    network does not do, and keepalived on fw2 would go to FAULT."""
    lab.run(fw, "nft", "delete", "table", "netdev", "cut")
    if not cut:
        return
    rules = ["table netdev cut {"]
    for dev in DEVS:
        for hook in ("ingress", "egress"):
            rules.append('  chain %s_%s { type filter hook %s device "%s" priority -500; policy drop; }'
                         % (hook, dev, hook, dev))
    rules.append("}")
    subprocess.run(["ip", "netns", "exec", lab.ns(fw), "nft", "-f", "-"],
                   input="\n".join(rules), text=True, check=True)


def kill_fw(lab, fw):
    """A hard failure of fw: it goes silent first (links cut: no last
    advert, no goodbye), then its keepalived and conntrackd die (-9)."""
    cut_links(lab, True, fw)
    for pidfile in ("keepalived.pid", "ka.pid", "conntrackd.pid"):
        try:
            with open(os.path.join(lab.state, fw, pidfile)) as f:
                os.kill(int(f.read().strip()), 9)
        except (OSError, ValueError):
            pass
    for p in subprocess.run(["ip", "netns", "pids", lab.ns(fw)], capture_output=True,
                            text=True).stdout.split():
        try:
            with open("/proc/%s/comm" % p) as f:
                if f.read().strip() in ("keepalived", "conntrackd"):
                    os.kill(int(p), 9)
        except OSError:
            pass


def start_streams(lab, secs):
    """The echo servers, a TCP stream and 8 UDP flows from the client to
    the server through the active firewall (a probe every 0.1 s)."""
    servers = [
        lab.spawn("ctsv", "python3", FLOWGEN, "echo-server", "--bind", SV_IP, "--port", "7",
                  "--time", str(secs + 10)),
        lab.spawn("ctsv", "python3", FLOWGEN, "udp-echo-server", "--bind", SV_IP, "--port", "7",
                  "--time", str(secs + 10)),
    ]
    time.sleep(0.5)
    tcp = lab.spawn("ctcl", "python3", FLOWGEN, "tcp-stream", "--dst", SV_IP, "--port", "7",
                    "--secs", str(secs), "--interval", "0.1")
    udp = lab.spawn("ctcl", "python3", FLOWGEN, "udp-stream", "--dst", SV_IP, "--port", "7",
                    "--flows", "8", "--secs", str(secs), "--interval", "0.1")
    return servers, tcp, udp


def end_streams(res, servers, tcp, udp, secs):
    """Waits for the streams' verdicts (into res["tcp"], res["udp"]) and
    stops the servers."""
    for name, p in (("tcp", tcp), ("udp", udp)):
        try:
            out, _ = p.communicate(timeout=secs + 30)
            res[name] = json.loads(out.strip().splitlines()[-1])
        except Exception as e:  # noqa: BLE001 - reported in the result
            res[name] = {"error": str(e)}
    for s in servers:
        s.kill()
        s.wait()


CTPERF = os.path.join(ROOT, "target", "release", "ctperf")
THIRD = "dst=10.255.255.254 "


def scenario3(lab, binary, secs, label):
    """Three firewalls (LAB_FWS=3), FT-FW over one multicast group, one
    VRRP instance with priorities 150/100/50. fw3 has flows of its own in
    its table; a TCP stream and UDP flows go through fw1. fw1 dies (-9,
    links cut): fw2 takes over and commits a state that includes fw3's
    flows; then fw2 dies the same way: fw3 takes over. The streams must
    live through both fail-overs."""
    res = {"label": label, "conntrackd": binary, "firewalls": 3, "failure": "kill, kill"}
    env = {"LAB_CONNTRACKD": binary}
    fws = ("fw1", "fw2", "fw3")
    lab.sh("ka", "stop", check=False)
    for fw in fws:
        try:
            os.remove(os.path.join(lab.state, fw, "notify.log"))
        except OSError:
            pass
        lab.run(fw, "conntrack", "-F")
        cut_links(lab, False, fw)
    lab.sh("sync", "ftfw", "mcast", env=env)
    t0 = time.time()
    lab.sh("ka", "start", env=dict(env, LAB_KA_CONNTRACKD="1"))
    if lab.wait_notify("fw1", "INSTANCE LAB MASTER", t0, 20) is None:
        res["error"] = "fw1 never became MASTER"
        return res
    if lab.wait_notify("fw1", "primary-backup.sh-primary-done", t0, 20) is None:
        res["error"] = "fw1's primary-backup.sh primary did not finish"
        return res
    # the third node's own flows
    fill = lab.run("fw3", CTPERF, "fill", "-n", "200", "--start", "700000")
    res["fw3_own_flows"] = 200 if fill.returncode == 0 else ("fill failed: " + fill.stderr[-300:])
    say("%s: fw1 is master; fw3 has 200 flows of its own; conntrackd on all three" % label)
    servers, tcp, udp = start_streams(lab, secs)
    time.sleep(3)
    for fw in ("fw2", "fw3"):
        ext = lab.ctl(fw, binary, "-e")
        res[fw + "_external_streams"] = sum(1 for l in ext.splitlines() if "dport=7 " in l)
    res["fw2_external_fw3_flows"] = sum(1 for l in lab.ctl("fw2", binary, "-e").splitlines()
                                        if THIRD in l)
    # first fail-over
    t1 = time.time()
    kill_fw(lab, "fw1")
    say("fw1 dies (links cut, keepalived and conntrackd killed -9)")
    t = lab.wait_notify("fw2", "INSTANCE LAB MASTER", t1, 15)
    res["fw2_master_after_s"] = round(t - t1, 3) if t else None
    t = lab.wait_notify("fw2", "primary-backup.sh-primary-done", t1, 30)
    res["fw2_primary_done_after_s"] = round(t - t1, 3) if t else None
    k = lab.run("fw2", "conntrack", "-L").stdout
    res["fw2_kernel_fw3_flows"] = sum(1 for l in k.splitlines() if THIRD in l)
    res["fw3_stayed_backup"] = lab.wait_notify("fw3", "INSTANCE LAB MASTER", t1, 0.1) is None
    say("fw2 took over %ss after, committed %s of fw3's flows" % (
        res["fw2_master_after_s"], res["fw2_kernel_fw3_flows"]))
    time.sleep(3)
    ext = lab.ctl("fw3", binary, "-e")
    res["fw3_external_streams_before_second"] = sum(1 for l in ext.splitlines() if "dport=7 " in l)
    # second fail-over
    t2 = time.time()
    kill_fw(lab, "fw2")
    say("fw2 dies the same way")
    t = lab.wait_notify("fw3", "INSTANCE LAB MASTER", t2, 15)
    res["fw3_master_after_s"] = round(t - t2, 3) if t else None
    t = lab.wait_notify("fw3", "primary-backup.sh-primary-done", t2, 30)
    res["fw3_primary_done_after_s"] = round(t - t2, 3) if t else None
    end_streams(res, servers, tcp, udp, secs)
    k = lab.run("fw3", "conntrack", "-L", "-p", "tcp", "--dport", "7").stdout
    res["stream_entry_on_fw3"] = k.strip().splitlines()[0] if k.strip() else None
    for name in ("tcp", "udp"):
        r = res.get(name, {})
        say("%s: %s/%s probes answered, longest gap %ss, %s" % (
            name.upper(), r.get("answered"), r.get("probes"), r.get("max_gap_s"),
            "lived through both fail-overs" if r.get("survived") else "DIED (%s)" % r.get("died")))
    lab.sh("ka", "stop", check=False)
    for fw in fws:
        cut_links(lab, False, fw)
    return res


def scenario(lab, binary, failure, sync, failback, secs, label):
    res = {"label": label, "conntrackd": binary, "failure": failure, "sync": sync,
           "failback": failback}
    env = {"LAB_CONNTRACKD": binary}
    lab.sh("ka", "stop", check=False)
    for fw in ("fw1", "fw2"):
        try:
            os.remove(os.path.join(lab.state, fw, "notify.log"))
        except OSError:
            pass
        lab.run(fw, "conntrack", "-F")
    cut_links(lab, False)
    if sync:
        lab.sh("sync", "ftfw", "udp", env=env)
    else:
        lab.sh("stop", check=False)
    t0 = time.time()
    lab.sh("ka", "start", env=dict(env, LAB_KA_CONNTRACKD="1" if sync else "0"))
    if lab.wait_notify("fw1", "INSTANCE LAB MASTER", t0, 20) is None:
        res["error"] = "fw1 never became MASTER"
        return res
    if sync and lab.wait_notify("fw1", "primary-backup.sh-primary-done", t0, 20) is None:
        res["error"] = "fw1's primary-backup.sh primary did not finish"
        return res
    say("%s: fw1 is VRRP master and holds the virtual IPs; conntrackd %s on both firewalls"
        % (label, "runs" if sync else "does NOT run"))
    servers, tcp, udp = start_streams(lab, secs)
    say("a TCP stream and 8 UDP flows run from the client to the server through fw1 "
        "(a probe every 0.1 s, each must be echoed)")
    time.sleep(3)
    if sync:
        ext = lab.ctl("fw2", binary, "-e")
        res["fw2_external_before"] = sum(1 for l in ext.splitlines() if "dport=7 " in l)
        say("fw2's external cache (conntrackd -e) holds the flows replicated from fw1:")
        for l in ext.splitlines():
            if "dport=7 " in l:
                say("    " + l)
    t_fail = time.time()
    if failure == "graceful":
        lab.sh("ka", "stop", "fw1")
    else:
        kill_fw(lab, "fw1")
    say("fw1 fails (%s)" % ("keepalived stopped" if failure == "graceful" else
                             "links cut, keepalived and conntrackd killed -9"))
    t_m2 = lab.wait_notify("fw2", "INSTANCE LAB MASTER", t_fail, 15)
    res["fw2_master_after_s"] = round(t_m2 - t_fail, 3) if t_m2 else None
    if sync:
        t_c = lab.wait_notify("fw2", "primary-backup.sh-primary-done", t_fail, 30)
        res["fw2_primary_done_after_s"] = round(t_c - t_fail, 3) if t_c else None
    say("fw2 became master %ss after the failure%s" % (
        res["fw2_master_after_s"],
        ", committed its external cache into its kernel %ss after it" % res.get("fw2_primary_done_after_s")
        if sync else ""))
    if failback and t_m2:
        time.sleep(3)
        t_back = time.time()
        cut_links(lab, False)
        say("fw1 comes back: links restored, keepalived started (primary-backup.sh backup "
            "starts its conntrackd and asks fw2 for a resync)")
        # fw1's keepalived starts as BACKUP: primary-backup.sh backup starts
        # its conntrackd (stale lock removed) and requests a resync from fw2
        lab.sh("ka", "start", "fw1", env=dict(env, LAB_KA_CONNTRACKD="1" if sync else "0"))
        t_b = lab.wait_notify("fw1", "primary-backup.sh-backup-done" if sync else "BACKUP",
                              t_back, 15)
        res["fw1_backup_ready_after_s"] = round(t_b - t_back, 3) if t_b else None
        if sync:
            # the resync (fw2's bulk send) fills fw1's external cache
            end = time.time() + 5
            n = 0
            while time.time() < end and n == 0:
                ext = lab.ctl("fw1", binary, "-e")
                n = sum(1 for l in ext.splitlines() if "dport=7 " in l)
                time.sleep(0.1)
            res["fw1_external_after_resync"] = n
        # let fw1's VRRP instance settle as BACKUP (it has heard fw2's
        # adverts) so that it takes over on fw2's goodbye, not 3 adverts later
        time.sleep(2)
        t_fb = time.time()
        lab.sh("ka", "stop", "fw2")
        t_m1 = lab.wait_notify("fw1", "INSTANCE LAB MASTER", t_fb, 15)
        res["fw1_master_again_after_s"] = round(t_m1 - t_fb, 3) if t_m1 else None
        if sync:
            t_c1 = lab.wait_notify("fw1", "primary-backup.sh-primary-done", t_fb, 30)
            res["fw1_primary_done_after_s"] = round(t_c1 - t_fb, 3) if t_c1 else None
        say("fail-back: fw1 held %s of the flows again after the resync; fw2's keepalived "
            "stopped, fw1 master %ss later" % (res.get("fw1_external_after_resync"),
                                                res["fw1_master_again_after_s"]))
    end_streams(res, servers, tcp, udp, secs)
    for name in ("tcp", "udp"):
        r = res.get(name, {})
        say("%s: %s/%s probes answered, longest gap %ss, %s" % (
            name.upper(), r.get("answered"), r.get("probes"), r.get("max_gap_s"),
            "the connection lived on" if r.get("survived") else "the connection DIED (%s)" % r.get("died")))
    k = lab.run("fw1" if failback else "fw2", "conntrack", "-L", "-p", "tcp", "--dport", "7").stdout
    res["stream_entry_on_active"] = k.strip().splitlines()[0] if k.strip() else None
    say("the stream's entry in the active firewall's kernel: %s" % res["stream_entry_on_active"])
    lab.sh("ka", "stop", check=False)
    return res


def survived(r):
    return bool(r.get("tcp", {}).get("survived")) and bool(r.get("udp", {}).get("survived"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conntrackd", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--reference", default="/usr/sbin/conntrackd", help="conntrackd 1.4.7 for --compare")
    ap.add_argument("--compare", action="store_true", help="run every scenario with 1.4.7 as well")
    ap.add_argument("--failure", default="graceful,kill", help="graceful, kill or both (comma list)")
    ap.add_argument("--failback", action="store_true", help="bring fw1 back and fail back to it")
    ap.add_argument("--no-sync-control", action="store_true",
                    help="also run without conntrackd (the streams are expected to die)")
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--prefix", default="fo%d-" % os.getpid())
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="leave the lab up")
    ap.add_argument("--only-control", action="store_true",
                    help="run only the scenario without conntrackd")
    ap.add_argument("--narrate", action="store_true", help="say what happens (the demo)")
    ap.add_argument("--firewalls", type=int, default=2, choices=(2, 3),
                    help="3: three firewalls, two fail-overs in a row (FT-FW over multicast)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    global NARRATE
    NARRATE = a.narrate
    if os.geteuid() != 0:
        sys.exit("failover.py: must run as root (network namespaces)")
    for tool in ("keepalived", "nft", "ip"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
            sys.exit("failover.py: %s is not installed" % tool)
    state = "/tmp/ctlab-%s" % a.prefix.rstrip("-")
    os.environ["LAB_FWS"] = str(a.firewalls)
    lab = Lab(a.prefix, state, a.verbose)
    global CTPERF
    if not os.path.exists(CTPERF):
        CTPERF = os.path.join(os.path.dirname(os.path.abspath(a.conntrackd)), "ctperf")
    # nf_conntrack_tcp_loose=0: without state a mid-stream packet is INVALID
    binaries = [("ours", a.conntrackd)]
    if a.compare:
        binaries.append(("1.4.7", a.reference))
    results = []
    ok = True
    try:
        lab.sh("up")
        for fw in ("fw1", "fw2", "fw3")[:a.firewalls]:
            lab.run(fw, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0", check=True)
        if a.firewalls == 3:
            for name, binary in binaries:
                r = scenario3(lab, binary, a.secs, "%s 3 firewalls" % name)
                print(json.dumps(r), flush=True)
                results.append(r)
                ok &= survived(r)
        for failure in ([] if a.firewalls == 3 else a.failure.split(",")):
            for name, binary in ([] if a.only_control else binaries):
                r = scenario(lab, binary, failure, True, a.failback, a.secs, "%s %s" % (name, failure))
                print(json.dumps(r), flush=True)
                results.append(r)
                ok &= survived(r)
            if a.no_sync_control or a.only_control:
                r = scenario(lab, a.conntrackd, failure, False, False, a.secs,
                             "no sync %s" % failure)
                print(json.dumps(r), flush=True)
                results.append(r)
                ok &= not r.get("tcp", {}).get("survived", True)
    finally:
        if not a.keep:
            lab.sh("down", check=False)
    print("\n| scenario | fw2 master after s | primary-backup.sh done after s | TCP survived | TCP max gap s | UDP survived | UDP max gap s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        t, u = r.get("tcp", {}), r.get("udp", {})
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["label"], r.get("fw2_master_after_s"), r.get("fw2_primary_done_after_s", "-"),
            t.get("survived"), t.get("max_gap_s"), u.get("survived"), u.get("max_gap_s")))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
