#!/usr/bin/env python3
"""Mixes hostile traffic into a real capture: a SYN flood (SYNs from random sources and
ports, never answered) and a port scan (one source, SYN to every port, answered by RST),
spread evenly over the real capture's time span, written in timestamp order as one
classic pcap (EN10MB, microseconds). Deterministic for a given seed.

    gen_flood_capture.py --base fixtures/lab/haproxy/lb-backend.pcap --syns 1000000 \
        --scan-ports 20000 -o flood.pcap

twsleuth must keep its memory bounded on the result, count what it evicted, and still find
the base capture's TIME_WAIT collisions.
"""
import argparse
import random
import struct
import sys


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic != 0xA1B2C3D4:
        sys.exit(f"{path}: expected a little-endian microsecond pcap")
    linktype = struct.unpack("<I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"{path}: expected LINKTYPE_ETHERNET")
    records, at = [], 24
    while at + 16 <= len(data):
        sec, usec, caplen, origlen = struct.unpack("<IIII", data[at:at + 16])
        records.append((sec * 1_000_000 + usec, data[at + 16:at + 16 + caplen], origlen))
        at += 16 + caplen
    return records


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(src, dst, sport, dport, seq, ack, flags):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + tcp


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="real capture to mix into (EN10MB µs pcap)")
    p.add_argument("--syns", type=int, default=1_000_000, help="SYN flood packets")
    p.add_argument("--scan-ports", type=int, default=20_000, help="ports the scanner probes")
    p.add_argument("--target", default="10.245.4.2", help="flooded and scanned server")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    rng = random.Random(args.seed)
    base = read_pcap(args.base)
    start, end = base[0][0], base[-1][0]
    span = max(end - start, 1)
    target = bytes(int(x) for x in args.target.split("."))

    extra = []
    for i in range(args.syns):
        src = bytes([198, 18 + rng.randrange(2), rng.randrange(256), rng.randrange(1, 255)])
        frame = tcp_frame(src, target, rng.randrange(1024, 65536), 80, rng.getrandbits(32), 0, 0x02)
        extra.append((start + i * span // max(args.syns, 1), frame))
    scanner = bytes([198, 51, 100, 7])
    for i in range(args.scan_ports):
        ts = start + i * span // max(args.scan_ports, 1)
        port = 1 + i % 65535
        isn = rng.getrandbits(32)
        extra.append((ts, tcp_frame(scanner, target, 45000, port, isn, 0, 0x02)))
        extra.append((ts + 50, tcp_frame(target, scanner, port, 45000, 0, (isn + 1) & 0xFFFFFFFF, 0x14)))
    extra.sort(key=lambda r: r[0])

    out = open(args.output, "wb") if args.output != "-" else sys.stdout.buffer
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    i = j = 0
    while i < len(base) or j < len(extra):
        if j >= len(extra) or (i < len(base) and base[i][0] <= extra[j][0]):
            ts, frame, origlen = base[i]
            i += 1
        else:
            ts, frame = extra[j]
            origlen = len(frame)
            j += 1
        out.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), origlen))
        out.write(frame)
    out.close()
    print(f"{len(base)} real frames, {args.syns} flood SYNs, {args.scan_ports} scan probes "
          f"(+ RSTs): {len(base) + len(extra)} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
