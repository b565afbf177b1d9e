#!/usr/bin/env python3
"""Rewrites a little-endian microsecond pcap of Ethernet/IPv4 frames (the
generated benchmark captures) to IPv6: each IPv4 header becomes an IPv6
one (addresses 2001:db8::a.b.c.d, the same protocol, hop limit 64), the
rest of every frame is kept. The same packets and connections over IPv6,
to measure the IPv6 side of the connection table (docs/performance.md,
IPv6). TCP checksums are left as they were: timewait does not check them.

    python3 benches/to_ipv6.py IN.pcap OUT.pcap
"""
import struct
import sys


def v6(a):
    return b"\x20\x01\x0d\xb8" + b"\0" * 8 + a


def main(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as o:
        header = f.read(24)
        if header[:4] != b"\xd4\xc3\xb2\xa1":
            sys.exit("only little-endian microsecond pcap")
        o.write(header)
        n = 0
        while True:
            h = f.read(16)
            if len(h) < 16:
                break
            ts, us, incl, orig = struct.unpack("<IIII", h)
            d = f.read(incl)
            if len(d) >= 34 and d[12:14] == b"\x08\x00" and d[14] >> 4 == 4:
                ihl = (d[14] & 15) * 4
                total = struct.unpack(">H", d[16:18])[0]
                ip6 = struct.pack(">IHBB", 0x60000000, total - ihl, d[23], 64)
                ip6 += v6(d[26:30]) + v6(d[30:34])
                d = d[:12] + b"\x86\xdd" + ip6 + d[14 + ihl:]
                orig += 40 - ihl
                incl = len(d)
            o.write(struct.pack("<IIII", ts, us, incl, orig))
            o.write(d)
            n += 1
        print(f"{n} frames", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
