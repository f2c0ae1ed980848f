#!/usr/bin/env python3
"""F5 BIG-IP captures made from a real lab capture: Ethernet trailers appended, fileinfo first.

Usage: make_f5_fixtures.py [OUT_DIR]      (default fixtures/capture/f5)

Source: fixtures/lab/paws/server.pcap (833 frames of real Linux TCP traffic, Ethernet, snaplen
128: 87 SYNs, 7 PAWS rejections answered by 7 RSTs). Every frame keeps its bytes, timestamp and
order. To each IPv4/IPv6 frame the source captured whole, the trailer a BIG-IP's
`tcpdump -i 0.0:n|nn|nnn` would append is added right after the IP packet (caplen and origlen
grow by its length); a frame the source cut at 128 bytes keeps its bytes and its origlen grows
by the trailer's length (the trailer was cut by the snaplen, as a BIG-IP's tcpdump -s128 cuts
it). ARP frames get none. The pcap header's snaplen is raised to 262144 so that the longer
frames fit. Where a fileinfo pseudo-packet is written it is frame 1, with the first frame's
timestamp, and every source frame's number grows by 1.

The trailer fields are invented but consistent: the BIG-IP is taken to sit in front of the
capture's server (its server-side leg): a packet from the server comes in (ingress), one to it
goes out; each connection (in order of first appearance) gets a TMM, a virtual server (one in
13 none), a flow id and a peer flow id (one in 10 has peer 0: no peer flow), and at high noise
a client-side peer flow (IPv4-mapped, F5's route-domain form for one in 7, IPv6 for one in 11).
RSTs carry an RST cause (medium noise and up). Layouts follow Wireshark's
epan/dissectors/packet-f5ethtrailer.c; tshark (the oracle) must read the same fields back
(crates/decode/tests/decode/f5.rs).

Fixtures:
  legacy-low.pcap      legacy low v0 (BIG-IP 10: 16-byte names), no fileinfo
  legacy-medium.pcap   legacy low v1 + medium v2 (RST cause), Ethernet padding to 60 bytes
                       before the trailer on short frames, fileinfo
  legacy-high.pcap     legacy low v1 + medium v3 + high v0, fileinfo
  new-low.pcap         new format: low v2, fileinfo
  new-medium.pcap      new format: low v3 + medium v4, an FCS before the trailer on every 3rd
                       frame, fileinfo
  new-high.pcap        new format: low v3 + medium v4 + high v1, a TLS provider record (dummy
                       bytes, never read) on the first 5 TCP frames, fileinfo
  fcs.pcap             no trailer: a valid Ethernet FCS after each whole frame
  two-legs.pcap        both legs of a proxy: HAProxy's frontend and backend captures of the lab
                       (fixtures/lab/haproxy/lb-frontend.pcap and lb-backend.pcap) merged by
                       time, their first TWO_LEGS_PAIRS requests; new format low v3 + medium v4
                       on every frame captured whole, each connection its own flow id and, as
                       peer flow id, the flow id of the other leg HAProxy's log pairs it with
                       (truth.json `legs`: %ci:%cp with %bi:%bp); virtual server
                       /Common/vs_haproxy_lab on both legs; fileinfo

Python 3 stdlib only; deterministic.
"""
import json
import os
import struct
import sys
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCE = os.path.join(ROOT, "fixtures", "lab", "paws", "server.pcap")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fixtures", "capture", "f5")

VIRTUAL_SERVERS = [b"/Common/vs_web", b"/Common/vs_api", b"/Partition2/vs_paws_test"]
RST_CAUSES = [b"No flow found for ACK", b"TCP RST from remote system", b"Port denied"]
VIP = bytes([203, 0, 113, 10])
HAPROXY = os.path.join(ROOT, "fixtures", "lab", "haproxy")
TWO_LEGS_PAIRS = 250
TWO_LEGS_VS = b"/Common/vs_haproxy_lab"


def read_pcap(path):
    b = open(path, "rb").read()
    assert b[:4] == b"\xd4\xc3\xb2\xa1", "little-endian microsecond pcap expected"
    linktype = struct.unpack("<I", b[20:24])[0]
    assert linktype == 1
    recs, off = [], 24
    while off + 16 <= len(b):
        s, us, incl, orig = struct.unpack("<IIII", b[off:off + 16])
        recs.append([s, us, b[off + 16:off + 16 + incl], orig])
        off += 16 + incl
    assert off == len(b)
    return recs


def write_pcap(path, recs):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for s, us, data, orig in recs:
        assert len(data) <= orig
        out.append(struct.pack("<IIII", s, us, len(data), orig))
        out.append(data)
    open(path, "wb").write(b"".join(out))


def ip_packet(data):
    """(ip offset, ip end, 4-tuple, tcp flags or None) of an untagged Ethernet IP frame."""
    ethertype = struct.unpack(">H", data[12:14])[0]
    if ethertype == 0x0800:
        ihl = (data[14] & 15) * 4
        end = 14 + struct.unpack(">H", data[16:18])[0]
        proto, src, dst = data[23], data[26:30], data[30:34]
        l4 = 14 + ihl
    elif ethertype == 0x86DD:
        end = 14 + 40 + struct.unpack(">H", data[18:20])[0]
        proto, src, dst = data[20], data[22:38], data[38:54]
        l4 = 54
    else:
        return None
    if proto == 6 and len(data) >= l4 + 14:
        sport, dport = struct.unpack(">HH", data[l4:l4 + 4])
        return end, (src, sport, dst, dport), data[l4 + 13]
    return end, (src, 0, dst, 0), None


class Conn:
    def __init__(self, index, server):
        self.index = index
        self.server = server  # (addr, port)
        self.tmm = index % 4
        self.vs = None if index % 13 == 12 else VIRTUAL_SERVERS[index % 3]
        self.flow = 0x5A00_0000_0000_0000 | (index * 2 + 1) << 8
        self.peer_flow = 0 if index % 10 == 9 else self.flow + 0x100
        self.cause = RST_CAUSES[index % 3]


def conn_of(conns, four):
    """The connection of a segment, keyed by its 4-tuple; the server is the SYN's target."""
    src, sport, dst, dport = four
    key = tuple(sorted([(src, sport), (dst, dport)]))
    if key not in conns:
        conns[key] = Conn(len(conns), (dst, dport))
    return conns[key]


def peer_fields(conn):
    """High noise: the client-side peer flow (protocol, VLAN, remote, local, ports)."""
    i = conn.index
    client = bytes([198, 51, 100, 1 + i % 200])
    if i % 11 == 5:
        remote = bytes.fromhex("20010db8000000000000000000000000")[:12] + client
        local = bytes.fromhex("20010db80000000000000000000000") + bytes([10])
    elif i % 7 == 3:
        rd = bytes.fromhex("262000000c10f5010000") + struct.pack(">H", 2)
        remote, local = rd + client, rd + VIP
    else:
        mapped = bytes(10) + b"\xff\xff"
        remote, local = mapped + client, mapped + VIP
    return bytes([6]) + struct.pack(">H", 4093) + remote + local + struct.pack(
        ">HH", 50000 + i, 443)


def rst_cause(conn, flags):
    if flags is None or not flags & 0x04:
        return b""
    head = bytes([conn.index & 1]) + struct.pack(">Q", (0x2512C60 << 16) | (1000 + conn.index))
    return head + conn.cause


# ---------------------------------------------------------------- legacy records

def legacy(kind, version, body):
    return bytes([kind, len(body) + 1, version]) + body


def legacy_low_v0(ingress, conn):
    name = (conn.vs or b"")[:16].ljust(16, b"\0")
    return legacy(1, 0, bytes([ingress, 0, conn.tmm]) + name)


def legacy_low_v1(ingress, conn):
    name = conn.vs or b""
    return legacy(1, 1, bytes([ingress, 0, conn.tmm, len(name)]) + name)


def legacy_medium(version, conn, flags):
    body = struct.pack(">QQ", conn.flow, conn.peer_flow)
    if version >= 3:
        body += struct.pack(">I", 0)  # connflow flags, high bits
    body += struct.pack(">IBB", 0x0100_0000, 1, 0)  # flags, flow type, HA unit
    body += bytes(4)  # ingress slot and port (reserved)
    if version >= 2:
        body += bytes([0])  # priority
    cause = rst_cause(conn, flags)
    return legacy(2, version, body + bytes([len(cause)]) + cause)


def legacy_high(conn):
    return legacy(3, 0, peer_fields(conn))


# ---------------------------------------------------------------- new-format records

def record(provider, kind, version, body):
    return struct.pack(">HHHH", provider, kind, len(body) + 8, version) + body


def new_low(version, ingress, conn):
    name = conn.vs or b""
    flags = ingress if version == 2 else (ingress | 0x06)  # hardware action "forward"
    return record(1, 1, version, bytes([flags, 0, conn.tmm, len(name)]) + name)


def new_medium(conn, flags):
    body = struct.pack(">QQIIBB", conn.flow, conn.peer_flow, 0, 0x0100_0000, 1, 0)
    body += bytes(4) + bytes([0])  # reserved, priority
    cause = rst_cause(conn, flags)
    return record(1, 2, 4, body + bytes([len(cause)]) + cause)


def new_high(conn):
    return record(1, 3, 1, peer_fields(conn))


def tls_dummy():
    """A TLS provider record (provider 4, type 0, version 0: master secret, client and server
    randoms) holding a fixed pattern, not secrets: twsleuth must skip it and keep none of it."""
    return record(4, 0, 0, bytes(range(0x40, 0x40 + 48)) + bytes(range(0x80, 0x80 + 64)))


def new_trailer(records):
    body = b"".join(records)
    return struct.pack(">IHH", 0xF5DEB0F5, len(body) + 8, 1) + body


# ---------------------------------------------------------------- fixtures

def fileinfo(first, version):
    fields = [
        b"CMD: /usr/sbin/tcpdump -s0 -ni 0.0:nnn -w /var/tmp/paws.pcap",
        b"VER: BIG-IP " + version,
        b"HOST: bigip-lab1.example.com",
        b"PLAT: Z100",
        b"PROD: BIG-IP",
    ]
    data = bytes(12) + b"\x05\xff" + b"F5-Pseudo-pkt\0" + b"\0".join(fields) + b"\0"
    return [first[0], first[1], data, len(data)]


def build(source, extend_for, with_fileinfo=None):
    """The source's frames, each IP frame extended by `extend_for(conn, ingress, tcp flags,
    TCP frames so far)`, a function of the frame's bytes."""
    conns, out, tcp_seen = {}, [], 0
    for s, us, data, orig in source:
        found = ip_packet(data)
        if found is None:
            out.append([s, us, data, orig])
            continue
        end, four, flags = found
        conn = conn_of(conns, four)
        ingress = 1 if (four[0], four[1]) == conn.server else 0
        if flags is not None:
            tcp_seen += 1
        grown = extend_for(conn, ingress, flags, tcp_seen)(data)
        extra = len(grown) - len(data)
        if len(data) == orig:
            assert end == len(data), "bytes after the IP packet in the source"
            out.append([s, us, grown, orig + extra])
        else:
            out.append([s, us, data, orig + extra])
    if with_fileinfo:
        out.insert(0, fileinfo(out[0], with_fileinfo))
    return out


def appended(trailer):
    return lambda data: data + trailer


class Leg:
    """One connection of the proxy, as the trailer gives it: its flow, its peer's flow."""

    def __init__(self, flow, peer_flow, server):
        self.index = flow
        self.server = server
        self.tmm = flow % 4
        self.vs = TWO_LEGS_VS
        self.flow = 0x4C00_0000_0000_0000 | flow
        self.peer_flow = 0x4C00_0000_0000_0000 | peer_flow
        self.cause = RST_CAUSES[flow % 3]


def two_legs():
    """HAProxy's two legs merged, with trailers whose flow ids pair them as its log does."""
    truth = json.load(open(os.path.join(HAPROXY, "truth.json")))
    pairing = sorted(truth["legs"]["pairing"], key=lambda p: p["accept"])[:TWO_LEGS_PAIRS + 1]
    frontend = read_pcap(os.path.join(HAPROXY, "lb-frontend.pcap"))
    backend = read_pcap(os.path.join(HAPROXY, "lb-backend.pcap"))
    merged = sorted(frontend + backend, key=lambda r: (r[0], r[1]))  # stable: frontend first on ties
    # the frames before the next request's frontend SYN: the first TWO_LEGS_PAIRS requests whole
    # (each is over within 20 ms; requests come 25 ms apart at least)
    cut = pairing[TWO_LEGS_PAIRS]["accept"] - 0.004
    merged = [r for r in merged if r[0] + r[1] / 1e6 < cut]

    def endpoint(addr, port):
        return "%d.%d.%d.%d:%d" % (*addr, port)

    out, current = [], {}
    for s, us, data, orig in merged:
        found = ip_packet(data)
        if found is None or found[2] is None:
            continue  # ARP, ICMPv6: not the proxy's traffic
        end, (src, sport, dst, dport), flags = found
        key = tuple(sorted([(src, sport), (dst, dport)]))
        if flags & 0x12 == 0x02:
            # a SYN opens a connection: its pair from the log (the frontend by its client ip:port
            # and HAProxy's accept time, the backend by its source ip:port and connect() time)
            t, origin = s + us / 1e6, endpoint(src, sport)
            i = next(i for i, p in enumerate(pairing[:TWO_LEGS_PAIRS])
                     if (p["frontend"] == origin and abs(p["accept"] - t) < 0.05)
                     or (p["backend"] == origin and abs(p["backend_start"] - t) < 0.05))
            front, back = 2 * i + 1, 2 * i + 2
            flow, peer = (front, back) if pairing[i]["frontend"] == origin else (back, front)
            current[key] = Leg(flow, peer, (dst, dport))
        conn = current[key]
        ingress = 1 if (src, sport) != conn.server else 0
        trailer = new_trailer([new_low(3, ingress, conn), new_medium(conn, flags)])
        if len(data) == orig:
            assert end == len(data), "bytes after the IP packet in the source"
            out.append([s, us, data + trailer, orig + len(trailer)])
        else:
            out.append([s, us, data, orig + len(trailer)])
    out.insert(0, fileinfo(out[0], b"17.1.1 Build 0.0.2"))
    return out


def main():
    source = read_pcap(SOURCE)
    os.makedirs(OUT, exist_ok=True)

    def legacy_low(conn, ingress, flags, n):
        return appended(legacy_low_v0(ingress, conn))

    def legacy_medium_fixture(conn, ingress, flags, n):
        trailer = legacy_low_v1(ingress, conn) + legacy_medium(2, conn, flags)

        def padded(data):
            return data + bytes(max(0, 60 - len(data))) + trailer
        return padded

    def legacy_high_fixture(conn, ingress, flags, n):
        return appended(legacy_low_v1(ingress, conn) + legacy_medium(3, conn, flags)
                        + legacy_high(conn))

    def new_low_fixture(conn, ingress, flags, n):
        return appended(new_trailer([new_low(2, ingress, conn)]))

    def new_medium_fixture(conn, ingress, flags, n):
        trailer = new_trailer([new_low(3, ingress, conn), new_medium(conn, flags)])
        if conn.index % 3 == 0:
            def with_fcs(data):
                return data + struct.pack("<I", zlib.crc32(data)) + trailer
            return with_fcs
        return appended(trailer)

    def new_high_fixture(conn, ingress, flags, n):
        records = [new_low(3, ingress, conn), new_medium(conn, flags), new_high(conn)]
        if flags is not None and n <= 5:
            records.insert(1, tls_dummy())
        return appended(new_trailer(records))

    def fcs_fixture(conn, ingress, flags, n):
        return lambda data: data + struct.pack("<I", zlib.crc32(data))

    fixtures = [
        ("legacy-low.pcap", legacy_low, None),
        ("legacy-medium.pcap", legacy_medium_fixture, b"11.6.5.3 Build 0.0.6"),
        ("legacy-high.pcap", legacy_high_fixture, b"13.1.5 Build 0.0.4"),
        ("new-low.pcap", new_low_fixture, b"14.1.4.6 Build 0.0.8"),
        ("new-medium.pcap", new_medium_fixture, b"15.1.8.2 Build 0.0.3"),
        ("new-high.pcap", new_high_fixture, b"16.1.3.4 Build 0.0.4"),
        ("fcs.pcap", fcs_fixture, None),
    ]
    for name, make, info in fixtures:
        recs = build(source, make, info)
        write_pcap(os.path.join(OUT, name), recs)
        grown = sum(1 for r in recs if len(r[2]) == r[3] and len(r[2]) > 0)
        print(f"{name}: {len(recs)} frames ({grown} captured whole)")
    recs = two_legs()
    write_pcap(os.path.join(OUT, "two-legs.pcap"), recs)
    print(f"two-legs.pcap: {len(recs)} frames, {TWO_LEGS_PAIRS} pairs")


if __name__ == "__main__":
    main()
