#!/usr/bin/env python3
"""Extract the conntrackd sync payloads of pcap captures into sync-payloads.txt.

    python3 extract.py ../../../../shared/captures/*.pcap > sync-payloads.txt

One line per UDP datagram or TCP segment that carries a payload, in capture
order:

    <capture> <udp|tcp> <frame> <src-ip:port>><dst-ip:port> <payload hex>

For TCP the payloads of one direction concatenate into the byte stream the
receiver parses (messages may straddle segments). Classic pcap (not pcapng),
Ethernet / Linux cooked / raw IPv4 link types. Standard library only, so the
golden tests need no pcap parser and no access to the capture directory.
"""
import os
import socket
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
    else:
        raise SystemExit("%s: not a classic pcap file" % path)
    linktype = struct.unpack_from(e + "I", data, 20)[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(e + "IIII", data, off)
        off += 16
        yield linktype, data[off:off + incl]
        off += incl


def ipv4(linktype, pkt):
    if linktype == 1:
        et, p = struct.unpack_from("!H", pkt, 12)[0], 14
        if et == 0x8100:
            et, p = struct.unpack_from("!H", pkt, 16)[0], 18
        if et != 0x0800:
            return None
        ip = pkt[p:]
    elif linktype == 113:
        ip = pkt[16:]
    elif linktype == 276:
        ip = pkt[20:]
    elif linktype in (101, 12, 14):
        ip = pkt
    else:
        return None
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0xF) * 4
    tot = struct.unpack_from("!H", ip, 2)[0]
    return ip[9], socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), ip[ihl:tot]


def main():
    print("# conntrackd 1.4.7 sync payloads, extracted by extract.py from the lab captures")
    for path in sys.argv[1:]:
        name = os.path.basename(path)
        for frame, (lt, pkt) in enumerate(packets(path), 1):
            r = ipv4(lt, pkt)
            if r is None:
                continue
            proto, src, dst, l4 = r
            if proto == 17:
                kind, payload = "udp", l4[8:]
            elif proto == 6:
                kind, payload = "tcp", l4[(l4[12] >> 4) * 4:]
            else:
                continue
            if not payload:
                continue
            sp, dp = struct.unpack_from("!HH", l4, 0)
            print("%s %s %d %s:%d>%s:%d %s" % (name, kind, frame, src, sp, dst, dp, payload.hex()))


if __name__ == "__main__":
    main()
