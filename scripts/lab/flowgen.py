#!/usr/bin/env python3
"""Real traffic generator for the lab (runs inside cl / sv namespaces).

  tcp-server --bind IP --port P --count N --time S   accept N conns, hold, close
  tcp-client --dst IP --port P --count N --hold S    open N conns, send, hold, close
  udp --dst IP --count N [--rate R] [--sport-base B]  one datagram per distinct flow
  echo-server --bind IP --port P --time S            TCP echo server
  tcp-stream --dst IP --port P --secs S              one long TCP stream, probe gaps
  udp-echo-server --bind IP --port P --time S        UDP echo server
  udp-stream --dst IP --port P --flows N --secs S    N UDP flows, probe gaps per flow

(Copied from ../shared/lab/tools/flowgen.py; the UDP echo modes are ours.)

Every traffic target is an address inside the lab namespaces (10.77.x.x).
"""
import argparse
import struct
import json
import socket
import sys
import time


def lab_addr(ip):
    if not ip.startswith("10.77."):
        sys.exit("refusing to send outside the lab (10.77.0.0/16): %s" % ip)
    return ip


def tcp_server(a):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(4096)
    s.settimeout(a.time + 10)
    conns = []
    try:
        while len(conns) < a.count:
            c, _ = s.accept()
            conns.append(c)
    except socket.timeout:
        pass
    time.sleep(a.time)
    for c in conns:
        c.close()
    s.close()
    print(json.dumps({"tcp_server_accepted": len(conns)}), flush=True)


def tcp_client(a):
    dst = lab_addr(a.dst)
    conns = []
    t0 = time.perf_counter()
    for _ in range(a.count):
        c = socket.create_connection((dst, a.port), timeout=5)
        c.sendall(b"hello lab\n")
        conns.append(c)
    t1 = time.perf_counter()
    time.sleep(a.hold)
    for c in conns:
        c.close()
    print(json.dumps({"tcp_client_connected": len(conns), "connect_seconds": round(t1 - t0, 3)}), flush=True)


def echo_server(a):
    """TCP echo server (threads), runs until --time seconds elapsed."""
    import threading
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(64)
    s.settimeout(0.5)
    end = time.time() + a.time

    def serve(c):
        c.settimeout(1)
        while time.time() < end:
            try:
                d = c.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                break
            try:
                c.sendall(d)
            except OSError:
                break
        c.close()
    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    s.close()


def tcp_stream(a):
    """One long-lived TCP connection; send a 8-byte probe every --interval and
    wait for the echo.  Reports the largest gap between answered probes and
    whether the connection survived (RST/timeout = died)."""
    dst = lab_addr(a.dst)
    c = socket.create_connection((dst, a.port), timeout=5)
    c.settimeout(a.interval)
    t0 = time.time()
    last_ok = t0
    max_gap = 0.0
    ok = lost = 0
    died = None
    seq = 0
    pending = b""
    while time.time() - t0 < a.secs:
        seq += 1
        try:
            c.sendall(struct.pack("!Q", seq))
        except OSError as e:
            died = "send: %s" % e
            break
        deadline = time.time() + a.interval
        got = False
        while time.time() < deadline:
            try:
                d = c.recv(4096)
            except socket.timeout:
                break
            except OSError as e:
                died = "recv: %s" % e
                break
            if not d:
                died = "closed by peer"
                break
            pending += d
            while len(pending) >= 8:
                pending = pending[8:]
                got = True
        if died:
            break
        now = time.time()
        if got:
            ok += 1
            max_gap = max(max_gap, now - last_ok)
            last_ok = now
        else:
            lost += 1
        rest = deadline - time.time()
        if rest > 0:
            time.sleep(rest)
    tail_gap = time.time() - last_ok
    print(json.dumps({"probes": seq, "answered": ok, "unanswered": lost,
                      "max_gap_s": round(max(max_gap, tail_gap if died or lost else 0), 3),
                      "final_silence_s": round(tail_gap, 3), "died": died,
                      "survived": died is None and tail_gap < 2 * a.interval + 0.5}), flush=True)
    c.close()


def udp(a):
    dst = lab_addr(a.dst)
    dports = list(range(20000, 65536))
    per_sock = len(dports)
    nsock = (a.count + per_sock - 1) // per_sock
    socks = []
    for k in range(nsock):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("", a.sport_base + k if a.sport_base else 0))
        socks.append(s)
    payload = b"x" * a.size
    t0 = time.perf_counter()
    sent = 0
    for k, s in enumerate(socks):
        for dp in dports:
            if sent >= a.count:
                break
            try:
                s.sendto(payload, (dst, dp))
            except (BlockingIOError, ConnectionRefusedError):
                pass
            sent += 1
            if a.rate and sent % 256 == 0:
                d = t0 + sent / a.rate - time.perf_counter()
                if d > 0:
                    time.sleep(d)
    t1 = time.perf_counter()
    print(json.dumps({"udp_flows_sent": sent, "seconds": round(t1 - t0, 3),
                      "rate_per_s": round(sent / (t1 - t0)) if t1 > t0 else None}), flush=True)


def udp_echo_server(a):
    """UDP echo server, runs until --time seconds elapsed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.settimeout(0.5)
    end = time.time() + a.time
    while time.time() < end:
        try:
            d, peer = s.recvfrom(4096)
        except socket.timeout:
            continue
        try:
            s.sendto(d, peer)
        except OSError:
            pass
    s.close()


def udp_stream(a):
    """--flows UDP flows (one socket each, distinct source ports); every
    --interval each sends a probe and waits for its echo. Reports, per run,
    the largest gap between answered probes over all flows."""
    import select
    dst = lab_addr(a.dst)
    socks = []
    for _ in range(a.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((dst, a.port))
        s.setblocking(False)
        socks.append(s)
    t0 = time.time()
    last_ok = [t0] * a.flows
    max_gap = 0.0
    ok = lost = 0
    seq = 0
    while time.time() - t0 < a.secs:
        seq += 1
        for s in socks:
            try:
                s.send(struct.pack("!Q", seq))
            except OSError:
                pass
        deadline = time.time() + a.interval
        got = [False] * a.flows
        while time.time() < deadline and not all(got):
            r, _, _ = select.select(socks, [], [], max(0.0, deadline - time.time()))
            for s in r:
                i = socks.index(s)
                try:
                    while True:
                        s.recv(4096)
                        got[i] = True
                except (BlockingIOError, ConnectionRefusedError):
                    pass
        now = time.time()
        for i in range(a.flows):
            if got[i]:
                ok += 1
                max_gap = max(max_gap, now - last_ok[i])
                last_ok[i] = now
            else:
                lost += 1
        rest = deadline - time.time()
        if rest > 0:
            time.sleep(rest)
    tail = max(time.time() - t for t in last_ok)
    print(json.dumps({"flows": a.flows, "probes": seq * a.flows, "answered": ok,
                      "unanswered": lost, "max_gap_s": round(max(max_gap, tail), 3),
                      "final_silence_s": round(tail, 3),
                      "survived": tail < 2 * a.interval + 0.5}), flush=True)
    for s in socks:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("tcp-server"); p.add_argument("--bind", required=True); p.add_argument("--port", type=int, default=8080)
    p.add_argument("--count", type=int, default=10); p.add_argument("--time", type=float, default=5)
    p = sp.add_parser("tcp-client"); p.add_argument("--dst", required=True); p.add_argument("--port", type=int, default=8080)
    p.add_argument("--count", type=int, default=10); p.add_argument("--hold", type=float, default=5)
    p = sp.add_parser("echo-server"); p.add_argument("--bind", required=True); p.add_argument("--port", type=int, default=7)
    p.add_argument("--time", type=float, default=30)
    p = sp.add_parser("tcp-stream"); p.add_argument("--dst", required=True); p.add_argument("--port", type=int, default=7)
    p.add_argument("--secs", type=float, default=20); p.add_argument("--interval", type=float, default=0.1)
    p = sp.add_parser("udp-echo-server"); p.add_argument("--bind", required=True); p.add_argument("--port", type=int, default=7)
    p.add_argument("--time", type=float, default=30)
    p = sp.add_parser("udp-stream"); p.add_argument("--dst", required=True); p.add_argument("--port", type=int, default=7)
    p.add_argument("--flows", type=int, default=8); p.add_argument("--secs", type=float, default=20)
    p.add_argument("--interval", type=float, default=0.1)
    p = sp.add_parser("udp"); p.add_argument("--dst", required=True); p.add_argument("--count", type=int, default=1000)
    p.add_argument("--rate", type=float, default=0); p.add_argument("--size", type=int, default=16)
    p.add_argument("--sport-base", type=int, default=0)
    a = ap.parse_args()
    {"tcp-server": tcp_server, "tcp-client": tcp_client, "udp": udp, "echo-server": echo_server,
     "tcp-stream": tcp_stream, "udp-echo-server": udp_echo_server, "udp-stream": udp_stream}[a.cmd](a)


if __name__ == "__main__":
    main()
