#!/usr/bin/env python3
"""Writes decode-target seeds: one file per frame, the first byte the index
of the frame's link type in fuzz_targets/decode.rs LINKS (or the raw link
type if it is not listed), then the frame bytes. Reads pcap and pcapng.
Usage: make-decode-seeds.py OUT_DIR CAPTURE..."""
import os, struct, sys

LINKS = [0, 1, 101, 108, 113, 228, 229, 276, 12, 14, 7, 9, 10, 50, 104, 105, 127, 129, 192, 239, 242]

def frames(data):
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        off, end, ifaces = 0, "<", []
        while off + 12 <= len(data):
            btype = struct.unpack(end + "I", data[off:off + 4])[0]
            if btype == 0x0A0D0D0A:
                end = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            blen = struct.unpack(end + "I", data[off + 4:off + 8])[0]
            if blen < 12 or off + blen > len(data):
                return
            body = data[off + 8:off + blen - 4]
            if btype == 1:
                ifaces.append(struct.unpack(end + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                ifid, _, _, cap, _ = struct.unpack(end + "IIIII", body[:20])
                if ifid < len(ifaces):
                    yield ifaces[ifid], body[20:20 + cap]
            off += blen
        return
    for end in "<>":
        m = struct.unpack(end + "I", magic)[0]
        if m in (0xA1B2C3D4, 0xA1B23C4D):
            link = struct.unpack(end + "I", data[20:24])[0] & 0xFFFF
            off = 24
            while off + 16 <= len(data):
                cap = struct.unpack(end + "I", data[off + 8:off + 12])[0]
                yield link, data[off + 16:off + 16 + cap]
                off += 16 + cap
            return

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for path in sys.argv[2:]:
    try:
        data = open(path, "rb").read()
    except OSError:
        continue
    seen = 0
    for i, (link, frame) in enumerate(frames(data)):
        sel = LINKS.index(link) if link in LINKS else (link & 0xFF if link & 0xFF >= len(LINKS) else 0xFF)
        name = os.path.join(out, "%s-%d" % (os.path.basename(path), i))
        open(name, "wb").write(bytes([sel]) + frame)
        seen += 1
        if seen >= 4:
            break
