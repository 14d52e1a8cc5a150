#!/usr/bin/env python3
"""Repeated fail-overs with many flows and loss on the sync link (chaos test).

On the lab (scripts/lab/lab.sh: fw1/fw2 with keepalived driving conntrackd
through dist/keepalived/primary-backup.sh, a stateful ruleset that drops
INVALID and mid-stream packets without state, nf_conntrack_tcp_loose=0):

  * a fleet of long-lived TCP connections (echoed probe every --interval s
    on each), a set of long-lived UDP flows (echoed probe every --interval
    s), and churn: new UDP flows (--churn-udp per second, unanswered) and
    short TCP connections (--churn-tcp per second) for the whole run;
  * LOSS % random drop on the sync link, both directions (lab.sh netem
    LOSS engine nft);
  * --flips fail-overs in a row, alternating graceful (keepalived of the
    master stopped) and kill (links of the master cut by nftables, its
    keepalived and conntrackd killed -9; then -- a reboot -- its kernel
    table flushed, its virtual IPs removed, links restored and keepalived
    started again, which starts conntrackd through primary-backup.sh
    backup: the node comes back as backup and asks for a resync);
  * after each flip: how many of the long-lived flows (alive just before
    the flip) are in the new master's kernel table once primary-backup.sh
    primary is done (UDP entries the traffic re-created on the new master
    are told apart by a ct mark set per flip on new connections there),
    whether they were in its external cache before the flip, how many TCP
    connections stall / die end to end and the longest gaps, the new
    master's `conntrackd -s`, and the daemons' log lines.

Usage (root; one lab per run, torn down at the end):

  python3 scripts/chaos_failover.py --binaries ours,ref \\
      --scenarios ftfw:udp:1,ftfw:udp:5,notrack:udp:1 --flips 10
  python3 scripts/chaos_failover.py --binaries ours --scenarios ftfw:udp:5 --quick

A scenario is MODE:TRANSPORT:LOSS[:PURGE] (PURGE: PurgeTimeout in s, default
the daemon's own). Results: one JSON file per run and copies of the daemons'
logs under --out (default /tmp/chaos/results), and a table at the end.

Internal worker modes (run inside the lab's namespaces by the controller):
  _server  epoll TCP/UDP echo server (in the server namespace)
  _fleet   the client side (in the client namespace)
"""
import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
SELF = os.path.abspath(__file__)
SV_IP = "10.77.20.100"
CL_IP = "10.77.10.100"
VIP_LAN = "10.77.10.254"
VIP_WAN = "10.77.20.254"
TPORT, UPORT, CPORT = 5001, 5002, 5003   # fleet TCP, UDP probes, TCP churn


def lab_addr(ip):
    if not ip.startswith("10.77."):
        sys.exit("refusing to send outside the lab (10.77.0.0/16): %s" % ip)
    return ip


# ----------------------------------------------------------------- workers
def raise_nofile():
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        pass


def w_server(a):
    """Echo: TCP on --tport and --cport, UDP on --uport; until --time s."""
    import selectors
    raise_nofile()
    bind = lab_addr(a.bind)
    sel = selectors.EpollSelector()
    for port in (a.tport, a.cport):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((bind, port))
        ls.listen(4096)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, "L")
    us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    us.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    us.bind((bind, a.uport))
    us.setblocking(False)
    sel.register(us, selectors.EVENT_READ, "U")
    end = time.time() + a.time
    while time.time() < end:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            if key.data == "L":
                try:
                    while True:
                        c, _ = s.accept()
                        c.setblocking(False)
                        sel.register(c, selectors.EVENT_READ, "C")
                except (BlockingIOError, OSError):
                    pass
            elif key.data == "U":
                try:
                    while True:
                        d, peer = s.recvfrom(2048)
                        try:
                            s.sendto(d, peer)
                        except OSError:
                            pass
                except BlockingIOError:
                    pass
            else:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                if not d:
                    sel.unregister(s)
                    s.close()
                    continue
                try:
                    s.send(d)
                except OSError:
                    pass


def w_fleet(a):
    """The client: --tcp long-lived TCP connections and --udp UDP flows to
    the server, an 8-byte probe on each every --interval s (echoed), plus
    churn. Writes its state to --status every second (atomic rename) and a
    last time at the end (or on SIGTERM)."""
    import selectors
    import signal
    raise_nofile()
    dst = lab_addr(a.dst)
    sel = selectors.EpollSelector()
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    t_sport, t_last, t_dead, t_socks = [], [], [], []
    gaps = []       # [kind, index, start, end] for gaps > --gap-min
    open_fail = 0
    for i in range(a.tcp):
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(5)
        try:
            s.connect((dst, a.tport))
        except OSError:
            open_fail += 1
            s.close()
            continue
        s.setblocking(False)
        idx = len(t_socks)
        t_socks.append(s)
        t_sport.append(s.getsockname()[1])
        t_last.append(time.time())
        t_dead.append(None)
        sel.register(s, selectors.EVENT_READ, ("t", idx))
        if i % 50 == 49:
            time.sleep(0.02)
    u_sport, u_last, u_socks = [], [], []
    for i in range(a.udp):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((dst, a.uport))
        s.setblocking(False)
        idx = len(u_socks)
        u_socks.append(s)
        u_sport.append(s.getsockname()[1])
        u_last.append(time.time())
        sel.register(s, selectors.EVENT_READ, ("u", idx))
    # churn state
    cu_sock = None
    cu_dport = 65536
    cu_sent = 0
    ct_pending = {}   # id -> (sock, start)
    ct_ok = ct_fail = ct_started = 0
    ct_fail_times = []
    ct_next_id = 0
    tick = 0.05
    slots = max(1, int(round(a.interval / tick)))
    t0 = time.time()
    next_tick = t0
    next_status = t0
    k = 0
    payload = b"c"
    t_answered = u_answered = 0

    def write_status(final=False):
        st = {"t": time.time(), "t0": t0, "final": final, "tcp_open_fail": open_fail,
              "tcp_sport": t_sport, "tcp_last": t_last, "tcp_dead": t_dead,
              "udp_sport": u_sport, "udp_last": u_last, "gaps": gaps,
              "tcp_answered": t_answered, "udp_answered": u_answered,
              "churn_udp_sent": cu_sent, "churn_tcp_started": ct_started,
              "churn_tcp_ok": ct_ok, "churn_tcp_fail": ct_fail,
              "churn_tcp_fail_times": ct_fail_times[-5000:]}
        tmp = a.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.rename(tmp, a.status)

    def tcp_dead(i, why):
        if t_dead[i] is None:
            t_dead[i] = [time.time(), why]
            try:
                sel.unregister(t_socks[i])
            except (KeyError, ValueError):
                pass

    while not stop[0] and time.time() - t0 < a.secs:
        now = time.time()
        for key, ev in sel.select(max(0.0, next_tick - now)):
            kind, i = key.data
            s = key.fileobj
            now = time.time()
            if kind == "t":
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    tcp_dead(i, "recv: %s" % e)
                    continue
                if not d:
                    tcp_dead(i, "closed by peer")
                    continue
                t_answered += len(d) // 8
                if now - t_last[i] > a.gap_min:
                    gaps.append(["t", i, t_last[i], now])
                t_last[i] = now
            elif kind == "u":
                got = False
                try:
                    while True:
                        s.recv(2048)
                        got = True
                except (BlockingIOError, ConnectionRefusedError):
                    pass
                except OSError:
                    pass
                if got:
                    u_answered += 1
                    if now - u_last[i] > a.gap_min:
                        gaps.append(["u", i, u_last[i], now])
                    u_last[i] = now
            elif kind == "cw":   # churn TCP connect done
                sock, start = ct_pending[i]
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    sel.unregister(sock)
                    sock.close()
                    del ct_pending[i]
                    ct_fail += 1
                    ct_fail_times.append(now)
                    continue
                try:
                    sock.send(payload)
                except OSError:
                    pass
                sel.modify(sock, selectors.EVENT_READ, ("cr", i))
            elif kind == "cr":
                sock, start = ct_pending[i]
                try:
                    d = sock.recv(64)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                sel.unregister(sock)
                sock.close()
                del ct_pending[i]
                if d:
                    ct_ok += 1
                else:
                    ct_fail += 1
                    ct_fail_times.append(now)
        now = time.time()
        if now >= next_tick:
            slot = k % slots
            k += 1
            next_tick += tick
            if next_tick < now:          # fell behind: do not burst
                next_tick = now + tick
            probe = struct.pack("!Q", k)
            for i in range(slot, len(t_socks), slots):
                if t_dead[i] is None:
                    try:
                        t_socks[i].send(probe)
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        tcp_dead(i, "send: %s" % e)
            for i in range(slot, len(u_socks), slots):
                try:
                    u_socks[i].send(probe)
                except OSError:
                    pass
            # churn: new UDP flows (unanswered: the server drops them)
            want = a.churn_udp * (now - t0)
            n = int(want - cu_sent)
            for _ in range(max(0, min(n, 200))):
                if cu_dport > 65535:
                    if cu_sock is not None:
                        cu_sock.close()
                    cu_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    cu_sock.bind(("", 0))
                    cu_sock.setblocking(False)
                    cu_dport = 20000
                try:
                    cu_sock.sendto(b"x" * 16, (dst, cu_dport))
                except OSError:
                    pass
                cu_dport += 1
                cu_sent += 1
            # churn: short TCP connections
            want = a.churn_tcp * (now - t0)
            while ct_started < want:
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex((dst, a.cport))
                ct_next_id += 1
                ct_pending[ct_next_id] = (sock, now)
                sel.register(sock, selectors.EVENT_WRITE, ("cw", ct_next_id))
                ct_started += 1
            for cid in [c for c, (_, st) in ct_pending.items() if now - st > 5]:
                sock, _ = ct_pending.pop(cid)
                try:
                    sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
                sock.close()
                ct_fail += 1
                ct_fail_times.append(now)
        if now >= next_status:
            write_status()
            next_status = now + 1.0
    write_status(final=True)
    for s in t_socks + u_socks:
        s.close()


# -------------------------------------------------------------- controller
LINE_RE = re.compile(r"^(\w+)\s.*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")
MARK_RE = re.compile(r"\bmark=(\d+)")
STATE_RE = re.compile(r"\b(SYN_SENT|SYN_RECV|ESTABLISHED|FIN_WAIT|CLOSE_WAIT|LAST_ACK|TIME_WAIT|CLOSE|SYN_SENT2)\b")


def parse_table(text):
    """{'tcp': {sport: (state, mark)}, 'udp': {sport: mark}, totals} of the
    fleet's flows (client -> server, TPORT / UPORT) in a conntrack -L or
    conntrackd -i/-e listing."""
    tcp, udp = {}, {}
    n = churn_udp = churn_tcp = 0
    for line in text.splitlines():
        m = LINE_RE.match(line.strip())
        if not m:
            continue
        n += 1
        proto, src, dst, sport, dport = m.group(1), m.group(2), m.group(3), int(m.group(4)), int(m.group(5))
        if src != CL_IP or dst != SV_IP:
            continue
        mk = MARK_RE.search(line)
        mark = int(mk.group(1)) if mk else None
        if proto == "tcp" and dport == TPORT:
            st = STATE_RE.search(line)
            tcp[sport] = (st.group(1) if st else "?", mark)
        elif proto == "udp" and dport == UPORT:
            udp[sport] = mark
        elif proto == "udp" and dport >= 20000:
            churn_udp += 1
        elif proto == "tcp" and dport == CPORT:
            churn_tcp += 1
    return {"tcp": tcp, "udp": udp, "n": n, "churn_udp": churn_udp, "churn_tcp": churn_tcp}


def parse_stats(text):
    """A few numbers of `conntrackd -s`."""
    out = {}
    sec = None
    for line in text.splitlines():
        l = line.strip()
        if l.startswith("cache internal"):
            sec = "int"
        elif l.startswith("cache external"):
            sec = "ext"
        m = re.match(r"current active connections:\s+(\d+)", l)
        if m and sec:
            out[sec + "_active"] = int(m.group(1))
        m = re.match(r"connections (created|updated|destroyed):\s+(\d+)\s+failed:\s+(\d+)", l)
        if m and sec:
            out["%s_%s" % (sec, m.group(1))] = int(m.group(2))
            out["%s_%s_failed" % (sec, m.group(1))] = int(m.group(3))
        m = re.match(r"(\d+) Malformed msgs\s+(\d+) Lost msgs", l)
        if m:
            out["malformed"] = int(m.group(1))
            out["lost_msgs"] = int(m.group(2))
        m = re.match(r"(\d+) Error send\s+(\d+) Error recv", l)
        if m:
            out["err_send"] = int(m.group(1))
            out["err_recv"] = int(m.group(2))
    return out


ALARM_RE = re.compile(r"(?i)(error|warn|fail|lost|overrun|cannot|can't|unable|full|malformed|"
                      r"too many|no space|enobufs|refused|denied|panic|abort|timeout|timed out)")


class Run:
    def __init__(self, fo, a, label, binary, mode, transport, loss, purge):
        self.fo = fo
        self.a = a
        self.label = label
        self.binary = binary
        self.mode, self.transport, self.loss, self.purge = mode, transport, loss, purge
        self.prefix = a.prefix
        self.state = "/tmp/chaos/state-%s" % self.prefix.rstrip("-")
        self.lab = fo.Lab(self.prefix, self.state, a.verbose)
        self.env = {"LAB_CONNTRACKD": binary, "LAB_FWS": "2"}
        if purge:
            self.env["LAB_EXTRA_SYNC"] = "\tPurgeTimeout %d" % purge
        self.status_file = "/tmp/chaos/fleet-%s.json" % self.prefix.rstrip("-")
        self.procs = []
        self.ka_procs = []
        self.log_off = {}
        self.res = {"label": label, "conntrackd": binary, "mode": mode, "transport": transport,
                    "loss_pct": loss, "purge_timeout": purge or "default", "flips": [],
                    "params": {k: getattr(a, k) for k in ("tcp", "udp", "interval", "churn_udp",
                                                          "churn_tcp", "flips", "window")}}
        self.t_start = time.time()

    # -- helpers
    def log(self, msg):
        line = "[%s %6.1fs] %s" % (self.label, time.time() - self.t_start, msg)
        print(line, file=sys.stderr, flush=True)
        with open(os.path.join(self.a.out, self.label + ".log"), "a") as f:
            f.write(line + "\n")

    def ctl(self, fw, *args, timeout=60):
        conf = os.path.join(self.state, fw, "conntrackd.conf")
        try:
            r = subprocess.run(["ip", "netns", "exec", self.lab.ns(fw), self.binary, "-C", conf, *args],
                               capture_output=True, text=True, timeout=timeout)
            return r.stdout + (("\n[stderr] " + r.stderr) if r.stderr.strip() else "")
        except subprocess.TimeoutExpired:
            return "[timeout after %ss]" % timeout

    def kernel(self, fw):
        r = self.lab.run(fw, "conntrack", "-L")
        return parse_table(r.stdout)

    def fleet_status(self):
        for _ in range(20):
            try:
                with open(self.status_file) as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.1)
        return None

    def new_log_lines(self, fw):
        """New lines of fw's conntrackd.log since the last call."""
        p = os.path.join(self.state, fw, "conntrackd.log")
        try:
            with open(p, errors="replace") as f:
                f.seek(self.log_off.get(fw, 0))
                data = f.read()
                self.log_off[fw] = f.tell()
        except OSError:
            return []
        return data.splitlines()

    def set_mark(self, fw, mark):
        """ct mark MARK on new connections forwarded by fw: entries a
        commit brings in carry an older mark (or none)."""
        self.lab.run(fw, "nft", "delete", "table", "inet", "chaos")
        rules = ("table inet chaos {\n chain markfw {\n  type filter hook forward priority -5; policy accept;\n"
                 "  ct state new ct mark set %d\n }\n}\n" % mark)
        subprocess.run(["ip", "netns", "exec", self.lab.ns(fw), "nft", "-f", "-"], input=rules,
                       text=True, check=True)

    def start_ka(self, fw):
        """keepalived on fw again (after a stop or a kill), with the files
        lab.sh's ka start generated (not regenerated, and the process kept
        for the end of the run); only fw's own VIPs are removed first."""
        d = os.path.join(self.state, fw)
        for f in ("keepalived.pid", "ka.pid", "vrrp.pid", "checkers.pid"):
            try:
                os.remove(os.path.join(d, f))
            except OSError:
                pass
        for vip, dev in ((VIP_LAN, "lan0"), (VIP_WAN, "wan0")):
            subprocess.run(["ip", "-n", self.lab.ns(fw), "addr", "del", vip + "/24", "dev", dev],
                           capture_output=True)
        out = open(os.path.join(d, "keepalived.out"), "a")
        p = subprocess.Popen(["ip", "netns", "exec", self.lab.ns(fw), "keepalived", "-f",
                              os.path.join(d, "keepalived.conf"), "-p", os.path.join(d, "keepalived.pid"),
                              "-r", os.path.join(d, "vrrp.pid"), "-c", os.path.join(d, "checkers.pid"),
                              "-D", "-l", "-n", "--vrrp"], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.ka_procs.append(p)
        for _ in range(50):
            if os.path.exists(os.path.join(d, "keepalived.pid")) and \
                    os.path.getsize(os.path.join(d, "keepalived.pid")) > 0:
                break
            time.sleep(0.1)
        shutil.copy(os.path.join(d, "keepalived.pid"), os.path.join(d, "ka.pid"))

    # -- the run
    def setup(self):
        a = self.a
        lab = self.lab
        os.makedirs(self.state, exist_ok=True)
        lab.sh("up", env=self.env)
        for fw in ("fw1", "fw2"):
            lab.run(fw, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0", check=True)
            self.set_mark(fw, 100)
        lab.sh("sync", self.mode, self.transport, env=self.env)
        if self.loss:
            self.res["netem"] = lab.sh("netem", str(self.loss), "engine", "nft", env=self.env).strip()
        t0 = time.time()
        lab.sh("ka", "start", env=dict(self.env, LAB_KA_CONNTRACKD="1"))
        if lab.wait_notify("fw1", "primary-backup.sh-primary-done", t0, 30) is None:
            raise RuntimeError("fw1 never became master / primary-backup.sh primary did not finish")
        if lab.wait_notify("fw2", "primary-backup.sh-backup-done", t0, 30) is None:
            raise RuntimeError("fw2 primary-backup.sh backup did not finish")
        self.log("fw1 master, fw2 backup (%s/%s, loss %s%%, binary %s)" % (
            self.mode, self.transport, self.loss, self.binary))
        total = a.flips * (a.window + 25) + 120
        self.procs.append(lab.spawn("ctsv", "python3", SELF, "_server", "--bind", SV_IP,
                                    "--time", str(total + 30)))
        time.sleep(0.5)
        try:
            os.remove(self.status_file)
        except OSError:
            pass
        self.procs.append(lab.spawn("ctcl", "python3", SELF, "_fleet", "--dst", SV_IP,
                                    "--tcp", str(a.tcp), "--udp", str(a.udp),
                                    "--interval", str(a.interval), "--churn-udp", str(a.churn_udp),
                                    "--churn-tcp", str(a.churn_tcp), "--secs", str(total),
                                    "--status", self.status_file))
        end = time.time() + 60
        st = None
        while time.time() < end:
            time.sleep(1)
            try:
                with open(self.status_file) as f:
                    st = json.load(f)
                break
            except (OSError, ValueError):
                continue
        if st is None:
            raise RuntimeError("fleet did not start: %s" % self.procs[-1].stderr.read()[-2000:]
                               if self.procs[-1].poll() is not None else "fleet did not start")
        self.res["tcp_opened"] = len(st["tcp_sport"])
        self.res["tcp_open_fail"] = st["tcp_open_fail"]
        self.log("fleet: %d TCP connections open (%d failed), %d UDP flows; warm-up %ss" % (
            len(st["tcp_sport"]), st["tcp_open_fail"], len(st["udp_sport"]), a.warmup))
        time.sleep(a.warmup)
        for fw in ("fw1", "fw2"):
            self.new_log_lines(fw)   # skip the start-up lines (kept in the copy)

    def alive(self, st, age=2.5):
        now = st["t"]
        tcp = {st["tcp_sport"][i] for i in range(len(st["tcp_sport"]))
               if st["tcp_dead"][i] is None and now - st["tcp_last"][i] < age + self.a.interval}
        udp = {st["udp_sport"][i] for i in range(len(st["udp_sport"]))
               if now - st["udp_last"][i] < age + self.a.interval}
        return tcp, udp

    def flip(self, k, kind, old, new):
        a, lab = self.a, self.lab
        rec = {"flip": k, "kind": kind, "from": old, "to": new}
        # before
        st = self.fleet_status()
        tcp_alive, udp_alive = self.alive(st)
        rec["tcp_alive_before"] = len(tcp_alive)
        rec["udp_alive_before"] = len(udp_alive)
        rec["tcp_dead_before"] = sum(1 for d in st["tcp_dead"] if d is not None)
        ko = self.kernel(old)
        rec["old_master_kernel_tcp"] = len(tcp_alive & set(ko["tcp"]))
        rec["old_master_kernel_udp"] = len(udp_alive & set(ko["udp"]))
        rec["old_master_kernel_total"] = ko["n"]
        ext = parse_table(self.ctl(new, "-e"))
        rec["new_ext_before_tcp"] = len(tcp_alive & set(ext["tcp"]))
        rec["new_ext_before_udp"] = len(udp_alive & set(ext["udp"]))
        rec["new_ext_before_total"] = ext["n"]
        kn = self.kernel(new)
        rec["new_kernel_before_tcp"] = len(tcp_alive & set(kn["tcp"]))
        rec["new_kernel_before_total"] = kn["n"]
        mark = 100 + k
        self.set_mark(new, mark)
        # fail
        t_fail = time.time()
        rec["t_fail"] = t_fail
        if kind == "graceful":
            lab.sh("ka", "stop", old, env=self.env)
        else:
            self.fo.kill_fw(lab, old)
        t_m = lab.wait_notify(new, "INSTANCE LAB MASTER", t_fail, 20)
        rec["master_after_s"] = round(t_m - t_fail, 2) if t_m else None
        t_p = lab.wait_notify(new, "primary-backup.sh-primary-done", t_fail, 90)
        rec["primary_done_after_s"] = round(t_p - t_fail, 2) if t_p else None
        kp = self.kernel(new)
        synced_tcp = {p for p, (s, m) in kp["tcp"].items() if m != mark}
        synced_udp = {p for p, m in kp["udp"].items() if m != mark}
        local_udp = {p for p, m in kp["udp"].items() if m == mark}
        rec["new_kernel_after_tcp"] = len(tcp_alive & synced_tcp)
        rec["new_kernel_after_udp_synced"] = len(udp_alive & synced_udp)
        rec["new_kernel_after_udp_recreated"] = len(udp_alive & local_udp)
        rec["new_kernel_after_total"] = kp["n"]
        rec["new_kernel_after_churn_udp"] = kp["churn_udp"]
        states = {}
        for p in tcp_alive & synced_tcp:
            states[kp["tcp"][p][0]] = states.get(kp["tcp"][p][0], 0) + 1
        rec["new_kernel_after_tcp_states"] = states
        miss_t = sorted(tcp_alive - synced_tcp)
        miss_u = sorted(udp_alive - synced_udp)
        rec["missing_tcp"] = len(miss_t)
        rec["missing_udp"] = len(miss_u)
        rec["missing_tcp_sample"] = miss_t[:10]
        rec["missing_tcp_in_ext_before"] = len(set(miss_t) & set(ext["tcp"]))
        rec["missing_tcp_in_new_kernel_before"] = len(set(miss_t) & set(kn["tcp"]))
        rec["missing_udp_in_ext_before"] = len(set(miss_u) & set(ext["udp"]))
        rec["stats_new_master"] = self.ctl(new, "-s")
        rec["stats"] = parse_stats(rec["stats_new_master"])
        rec["stats_runtime_new_master"] = self.ctl(new, "-s", "runtime")
        self.log("flip %d %s %s->%s: master +%ss, primary done +%ss; new master kernel: TCP %d/%d, "
                 "UDP synced %d/%d (re-created by traffic %d); missing TCP %d (%d were in its ext cache "
                 "before), states %s" % (
                     k, kind, old, new, rec["master_after_s"], rec["primary_done_after_s"],
                     rec["new_kernel_after_tcp"], len(tcp_alive), rec["new_kernel_after_udp_synced"],
                     len(udp_alive), rec["new_kernel_after_udp_recreated"], len(miss_t),
                     rec["missing_tcp_in_ext_before"], states))
        # bring the old master back as backup
        time.sleep(1)
        t_back = time.time()
        if kind == "kill":
            # a reboot: the kernel table is gone
            lab.run(old, "conntrack", "-F")
            self.fo.cut_links(lab, False, old)
        self.start_ka(old)
        t_b = lab.wait_notify(old, "primary-backup.sh-backup-done", t_back, 40)
        rec["old_back_as_backup_after_s"] = round(t_b - t_back, 2) if t_b else None
        # steady traffic until the end of the window
        rest = t_fail + a.window - time.time()
        if rest > 0:
            time.sleep(rest)
        ext_old = parse_table(self.ctl(old, "-e"))
        rec["old_ext_after_resync_tcp"] = len(tcp_alive & set(ext_old["tcp"]))
        rec["old_ext_after_resync_total"] = ext_old["n"]
        st2 = self.fleet_status()
        now = st2["t"]
        idx = {p: i for i, p in enumerate(st2["tcp_sport"])}
        stalled = [p for p in tcp_alive if st2["tcp_dead"][idx[p]] is None
                   and now - st2["tcp_last"][idx[p]] > a.stall]
        died = [p for p in tcp_alive if st2["tcp_dead"][idx[p]] is not None]
        rec["tcp_stalled_at_check"] = len(stalled)
        rec["tcp_died_at_check"] = len(died)
        rec["tcp_died_reasons"] = sorted({st2["tcp_dead"][idx[p]][1] for p in died})[:5]
        rec["stalled_tcp_missing_from_commit"] = len(set(stalled) & set(miss_t))
        uidx = {p: i for i, p in enumerate(st2["udp_sport"])}
        rec["udp_stalled_at_check"] = sum(1 for p in udp_alive if now - st2["udp_last"][uidx[p]] > a.stall)
        # gaps that began around this flip
        tg = [g for g in st2["gaps"] if g[3] >= t_fail - 1 and g[0] == "t"]
        ug = [g for g in st2["gaps"] if g[3] >= t_fail - 1 and g[0] == "u"]
        rec["tcp_conns_with_gap"] = len({g[1] for g in tg})
        rec["tcp_max_gap_s"] = round(max([g[3] - g[2] for g in tg] + [now - st2["tcp_last"][idx[p]] for p in stalled] + [0]), 2)
        rec["udp_flows_with_gap"] = len({g[1] for g in ug})
        rec["udp_max_gap_s"] = round(max([g[3] - g[2] for g in ug] + [0]), 2)
        ft = [t for t in st2["churn_tcp_fail_times"] if t >= t_fail]
        rec["churn_tcp_fail_in_window"] = len(ft)
        rec["churn_udp_sent_total"] = st2["churn_udp_sent"]
        kc = self.kernel(new)
        rec["new_kernel_at_check_tcp"] = len(tcp_alive & set(kc["tcp"]))
        rec["new_kernel_at_check_total"] = kc["n"]
        rec["stats_at_check"] = parse_stats(self.ctl(new, "-s"))
        if rec["stats"].get("int_active", 0) < 0.9 * kp["n"]:
            self.log("  !! new master's internal cache after primary-backup.sh: %s entries, its kernel: %d"
                     % (rec["stats"].get("int_active"), kp["n"]))
        logs = {}
        for fw in ("fw1", "fw2"):
            lines = self.new_log_lines(fw)
            logs[fw] = {"lines": len(lines), "alarming": [l for l in lines if ALARM_RE.search(l)][:40],
                        "commits": [l.split("] ", 2)[-1] for l in lines
                                    if "ommit" in l or "flushing conntrack table" in l
                                    or "flushing kernel" in l][:20]}
        rec["logs"] = logs
        self.log("  +%ds: %s back as backup after %ss (its ext cache: %d/%d fleet TCP, %d total); "
                 "TCP stalled %d (of which missing from commit %d), died %d, conns with gap %d, max gap %ss; "
                 "UDP stalled %d, max gap %ss; churn TCP fails %d; alarming log lines fw1 %d fw2 %d" % (
                     a.window, old, rec["old_back_as_backup_after_s"], rec["old_ext_after_resync_tcp"],
                     len(tcp_alive), rec["old_ext_after_resync_total"], len(stalled),
                     rec["stalled_tcp_missing_from_commit"], len(died), rec["tcp_conns_with_gap"],
                     rec["tcp_max_gap_s"], rec["udp_stalled_at_check"], rec["udp_max_gap_s"],
                     len(ft), len(logs["fw1"]["alarming"]), len(logs["fw2"]["alarming"])))
        for fw in ("fw1", "fw2"):
            for l in logs[fw]["alarming"][:6]:
                self.log("    %s log: %s" % (fw, l))
        self.log("  new master stats: %s; %s log: %s" % (
            rec["stats"], new, "; ".join(logs[new]["commits"])))
        return rec

    def execute(self):
        a = self.a
        try:
            self.setup()
            master, backup = "fw1", "fw2"
            for k in range(1, a.flips + 1):
                kind = a.pattern[(k - 1) % len(a.pattern)]
                rec = self.flip(k, kind, master, backup)
                self.res["flips"].append(rec)
                master, backup = backup, master
                self.save()
            time.sleep(2)
            st = self.fleet_status()
            now = st["t"]
            n = len(st["tcp_sport"])
            self.res["final_tcp_dead"] = sum(1 for d in st["tcp_dead"] if d is not None)
            self.res["final_tcp_stalled"] = sum(1 for i in range(n) if st["tcp_dead"][i] is None
                                                and now - st["tcp_last"][i] > a.stall)
            self.res["final_tcp_ok"] = n - self.res["final_tcp_dead"] - self.res["final_tcp_stalled"]
            self.res["final_udp_stalled"] = sum(1 for t in st["udp_last"] if now - t > a.stall)
            self.res["tcp_answered"] = st["tcp_answered"]
            self.res["udp_answered"] = st["udp_answered"]
            self.res["churn"] = {k: st[k] for k in ("churn_udp_sent", "churn_tcp_started",
                                                    "churn_tcp_ok", "churn_tcp_fail")}
            self.res["final_stats"] = {fw: self.ctl(fw, "-s") for fw in ("fw1", "fw2")}
            self.log("end: TCP ok %d, stalled %d, dead %d of %d; churn TCP %d ok %d failed" % (
                self.res["final_tcp_ok"], self.res["final_tcp_stalled"], self.res["final_tcp_dead"], n,
                st["churn_tcp_ok"], st["churn_tcp_fail"]))
        except Exception as e:  # noqa: BLE001 - recorded
            import traceback
            self.res["error"] = "%s\n%s" % (e, traceback.format_exc())
            self.log("ERROR: %s" % e)
        finally:
            self.teardown()
            self.save()
        return self.res

    def save(self):
        with open(os.path.join(self.a.out, self.label + ".json"), "w") as f:
            json.dump(self.res, f, indent=1)

    def teardown(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # copy the daemons' logs before lab.sh down removes the state dir
        dest = os.path.join(self.a.out, self.label + "-logs")
        os.makedirs(dest, exist_ok=True)
        for fw in ("fw1", "fw2"):
            for f in ("conntrackd.log", "conntrackd.out", "notify.log", "keepalived.out", "conntrackd.conf"):
                src = os.path.join(self.state, fw, f)
                if os.path.exists(src):
                    shutil.copy(src, os.path.join(dest, "%s-%s" % (fw, f)))
        self.lab.sh("ka", "stop", check=False, env=self.env)
        for p in self.ka_procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.lab.sh("down", check=False, env=self.env)
        # anything of ours still alive in our namespaces' names? (down kills by pid)
        left = [l.split()[0] for l in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                     text=True).stdout.splitlines()
                if l.startswith(self.prefix)]
        for ns in left:
            subprocess.run(["ip", "netns", "del", ns])
        try:
            os.remove(self.status_file)
        except OSError:
            pass


def summary(results):
    rows = []
    hdr = ("| run | flips ok | new master TCP after commit (per flip, missing/alive) | "
           "UDP synced missing (per flip) | TCP stalled@check (per flip) | max TCP gap s | "
           "final TCP ok/stalled/dead | churn TCP fail | alarming log lines |")
    rows.append(hdr)
    rows.append("|" + "---|" * 9)
    for r in results:
        fl = r.get("flips", [])
        mt = " ".join("%s%d" % ("g" if f["kind"] == "graceful" else "k", f["missing_tcp"]) for f in fl)
        mu = " ".join(str(f["missing_udp"]) for f in fl)
        stl = " ".join(str(f["tcp_stalled_at_check"]) for f in fl)
        gap = max([f["tcp_max_gap_s"] for f in fl] + [0])
        alarm = sum(len(f["logs"][fw]["alarming"]) for f in fl for fw in ("fw1", "fw2"))
        ok = sum(1 for f in fl if f.get("primary_done_after_s") is not None)
        rows.append("| %s | %d/%d | %s | %s | %s | %s | %s/%s/%s of %s | %s | %d |" % (
            r["label"], ok, r["params"]["flips"], mt or "-", mu or "-", stl or "-", gap,
            r.get("final_tcp_ok"), r.get("final_tcp_stalled"), r.get("final_tcp_dead"),
            r.get("tcp_opened"), (r.get("churn") or {}).get("churn_tcp_fail"), alarm)
                    + (" ERROR: %s" % r["error"].splitlines()[0] if r.get("error") else ""))
    return "\n".join(rows)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("_server", "_fleet"):
        ap = argparse.ArgumentParser()
        sp = ap.add_subparsers(dest="cmd")
        p = sp.add_parser("_server")
        p.add_argument("--bind", required=True)
        p.add_argument("--tport", type=int, default=TPORT)
        p.add_argument("--uport", type=int, default=UPORT)
        p.add_argument("--cport", type=int, default=CPORT)
        p.add_argument("--time", type=float, default=600)
        p = sp.add_parser("_fleet")
        p.add_argument("--dst", required=True)
        p.add_argument("--tport", type=int, default=TPORT)
        p.add_argument("--uport", type=int, default=UPORT)
        p.add_argument("--cport", type=int, default=CPORT)
        p.add_argument("--tcp", type=int, default=1000)
        p.add_argument("--udp", type=int, default=300)
        p.add_argument("--interval", type=float, default=1.0)
        p.add_argument("--churn-udp", type=float, default=200)
        p.add_argument("--churn-tcp", type=float, default=10)
        p.add_argument("--gap-min", type=float, default=2.0)
        p.add_argument("--secs", type=float, default=300)
        p.add_argument("--status", required=True)
        a = ap.parse_args()
        (w_server if a.cmd == "_server" else w_fleet)(a)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", default=os.path.join(ROOT, "target/release/conntrackd"))
    ap.add_argument("--ref", default="/usr/sbin/conntrackd")
    ap.add_argument("--binaries", default="ours,ref", help="ours, ref or both (comma list)")
    ap.add_argument("--scenarios", default="ftfw:udp:1,ftfw:udp:5",
                    help="MODE:TRANSPORT:LOSS[:PURGE], comma list")
    ap.add_argument("--flips", type=int, default=10)
    ap.add_argument("--pattern", default="graceful,kill", help="fail-over kinds, cycled")
    ap.add_argument("--window", type=float, default=16, help="s from a failure to the check (and next flip)")
    ap.add_argument("--warmup", type=float, default=8)
    ap.add_argument("--tcp", type=int, default=1000)
    ap.add_argument("--udp", type=int, default=300)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--churn-udp", type=float, default=200)
    ap.add_argument("--churn-tcp", type=float, default=10)
    ap.add_argument("--stall", type=float, default=4.0, help="no echo for this long at a check = stalled")
    ap.add_argument("--quick", action="store_true", help="small: 100 TCP, 30 UDP, 2 flips")
    ap.add_argument("--prefix", default="ch%d-" % os.getpid())
    ap.add_argument("--out", default="/tmp/chaos/results")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("chaos_failover.py: must run as root (network namespaces)")
    if a.quick:
        a.tcp, a.udp, a.flips, a.churn_udp, a.churn_tcp = 100, 30, 2, 50, 5
    a.pattern = a.pattern.split(",")
    os.makedirs(a.out, exist_ok=True)
    import failover as fo
    bins = {"ours": a.ours, "ref": a.ref}
    results = []
    for sc in a.scenarios.split(","):
        parts = sc.split(":")
        mode, tr, loss = parts[0], parts[1], float(parts[2])
        purge = int(parts[3]) if len(parts) > 3 else 0
        for b in a.binaries.split(","):
            label = "%s-%s-%s-loss%g%s-%s" % (b, mode, tr, loss, "-purge%d" % purge if purge else "",
                                              time.strftime("%H%M%S"))
            os.environ["LAB_FWS"] = "2"
            r = Run(fo, a, label, bins[b], mode, tr, loss, purge).execute()
            results.append(r)
            print(summary([r]), flush=True)
    print("\n" + summary(results))
    with open(os.path.join(a.out, "summary-%s.md" % time.strftime("%H%M%S")), "w") as f:
        f.write(summary(results) + "\n")


if __name__ == "__main__":
    main()
