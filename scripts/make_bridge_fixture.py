#!/usr/bin/env python3
"""A SPAN of both legs of a bridge-mode balancer, made from a real lab capture.

Usage: make_bridge_fixture.py [OUT]   (default fixtures/capture/bridge/haproxy-vlan10-20.pcap.gz)

A balancer in bridge mode forwards each frame from one VLAN to the other unchanged; a SPAN
port mirroring both VLANs shows every frame twice, once per VLAN, a few microseconds apart:
the same 4-tuple, the same IP identification, the same sequence numbers. This writes every
frame of fixtures/lab/haproxy/lb-backend.pcap (8012 frames: 800 backend connections of the
HAProxy scenario, 700 TIME_WAIT collisions per the kernel, fixtures/lab/haproxy/truth.json)
twice, with an 802.1Q tag inserted after the MAC addresses. The source was captured at the
balancer, which is on the VLAN 10 side of the bridge, so its timestamps are VLAN 10's:
  - frames from the balancer (10.245.4.1), and frames that are not IPv4 (ARP, ICMPv6), on
    VLAN 10 at their own time, then on VLAN 20 BRIDGE_DELAY_US later;
  - frames from the server on VLAN 20 BRIDGE_DELAY_US before their own time, then on VLAN 10
    at it.
The delay is short enough that each VLAN still sees every answer after its question (the
lab's SYN-ACKs follow their SYNs by 10 µs or more on the balancer's veth).
Frames are written in time order (the copies interleave with the next frames where those
come within the delay), as the SPAN would. The inner bytes, original lengths and the source's
timestamps are the source's; each frame grows by the tag's 4 bytes.

Python 3 stdlib only; deterministic (gzip mtime 0).
"""
import gzip
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCE = os.path.join(ROOT, "fixtures", "lab", "haproxy", "lb-backend.pcap")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    ROOT, "fixtures", "capture", "bridge", "haproxy-vlan10-20.pcap.gz")
BALANCER = bytes([10, 245, 4, 1])
BRIDGE_DELAY_US = 2
VLAN_BALANCER_SIDE, VLAN_SERVER_SIDE = 10, 20


def read_pcap(path):
    b = open(path, "rb").read()
    assert b[:4] == b"\xd4\xc3\xb2\xa1", "little-endian microsecond pcap expected"
    snaplen, linktype = struct.unpack("<II", b[16:24])
    assert linktype == 1, "Ethernet expected"
    frames, off = [], 24
    while off + 16 <= len(b):
        sec, usec, incl, orig = struct.unpack("<IIII", b[off:off + 16])
        frames.append((sec * 1_000_000 + usec, b[off + 16:off + 16 + incl], orig))
        off += 16 + incl
    assert off == len(b)
    return snaplen, frames


def tagged(data, vlan):
    """The frame with an 802.1Q tag (priority 0) after the destination and source MACs."""
    return data[:12] + struct.pack(">HH", 0x8100, vlan) + data[12:]


def main():
    snaplen, frames = read_pcap(SOURCE)
    out = []
    for order, (ts_us, data, orig) in enumerate(frames):
        from_server = (len(data) >= 30 and data[12:14] == b"\x08\x00"
                       and data[26:30] != BALANCER)
        if from_server:
            copies = [(ts_us - BRIDGE_DELAY_US, VLAN_SERVER_SIDE), (ts_us, VLAN_BALANCER_SIDE)]
        else:
            copies = [(ts_us, VLAN_BALANCER_SIDE), (ts_us + BRIDGE_DELAY_US, VLAN_SERVER_SIDE)]
        for copy, (ts, vlan) in enumerate(copies):
            out.append((ts, order, copy, tagged(data, vlan), orig + 4))
    out.sort(key=lambda f: (f[0], f[1], f[2]))
    body = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen + 4, 1)]
    for ts_us, _, _, data, orig in out:
        body.append(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(data), orig))
        body.append(data)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(gzip.compress(b"".join(body), compresslevel=9, mtime=0))
    print(f"{os.path.relpath(OUT, ROOT)}: {len(out)} frames ({len(frames)} twice)")


if __name__ == "__main__":
    main()
