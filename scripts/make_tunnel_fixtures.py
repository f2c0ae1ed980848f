#!/usr/bin/env python3
"""Wrap real lab captures in the tunnels and link layers twsleuth decodes.

Usage: make_tunnel_fixtures.py [OUT_DIR]      (default fixtures/capture/tunnels)

Every fixture is a real capture of Linux TCP traffic (fixtures/lab, fixtures/capture) with its
frames re-framed: the inner packets, their captured bytes, original lengths and timestamps are
the source's, byte for byte; only the headers around them are written here. The frame order is
the source's, and so are the frame numbers except where a table row below says otherwise.

Sources:
  A  fixtures/lab/accepted/server.pcap   813 frames: 800 TCP over IPv4 (80 connections, 60
                                         TIME_WAIT collisions, all accepted), 2 ARP, 11 ICMPv6;
                                         snaplen 128, so the 80 responses of 206 bytes are cut
  V6 fixtures/capture/ipv6.pcap          71 raw IPv6 frames, 66 TCP (5 HTTP connections)
  R  fixtures/lab/rejected/server.pcap   first 120 frames: a 3 MB upload in segments of up to
                                         64 KB (GRO), snaplen 128

Python 3 stdlib only. Deterministic: the same sources give the same bytes (no clock, no
randomness). Prints one line per file with its frame counts; fixtures/capture/README.md has the
table.
"""
import os
import struct
import sys
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fixtures", "capture", "tunnels")

# Documentation addresses (RFC 5737, RFC 3849) and locally administered MACs for the outer
# headers.
OUTER_V4 = (bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
OUTER_V6 = (bytes.fromhex("20010db8000000000000000000000001"),
            bytes.fromhex("20010db8000000000000000000000002"))
OUTER_MAC = (bytes.fromhex("02000000e001"), bytes.fromhex("02000000e002"))

ETH_IPV4, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD


# ------------------------------------------------------------------ pcap I/O
class Rec:
    """One frame: timestamp (ns), captured bytes, original length."""
    __slots__ = ("ts", "data", "orig")

    def __init__(self, ts, data, orig):
        self.ts, self.data, self.orig = ts, data, orig


def read_pcap(path):
    b = open(path, "rb").read()
    table = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\x4d\x3c\xb2\xa1": ("<", 1)}
    e, mult = table[b[:4]]
    linktype = struct.unpack(e + "I", b[20:24])[0] & 0xFFFF
    recs, off = [], 24
    while off + 16 <= len(b):
        s, frac, incl, orig = struct.unpack(e + "IIII", b[off:off + 16])
        recs.append(Rec(s * 1_000_000_000 + frac * mult, b[off + 16:off + 16 + incl], orig))
        off += 16 + incl
    assert off == len(b), path
    return linktype, recs


def pcap_bytes(linktype, recs):
    """Little-endian microsecond pcap (the sources' timestamps are whole microseconds)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for r in recs:
        sec, ns = divmod(r.ts, 1_000_000_000)
        assert ns % 1000 == 0
        assert len(r.data) <= r.orig, "captured bytes beyond the original length"
        out.append(struct.pack("<IIII", sec, ns // 1000, len(r.data), r.orig))
        out.append(r.data)
    return b"".join(out)


# ------------------------------------------------------------------ packets
class Pkt:
    """Captured bytes and the length they had on the wire (more when the snaplen cut them)."""
    __slots__ = ("cap", "orig")

    def __init__(self, cap, orig):
        assert len(cap) <= orig
        self.cap, self.orig = cap, orig

    def under(self, header):
        """This packet behind `header`."""
        return Pkt(header + self.cap, len(header) + self.orig)

    @property
    def whole(self):
        return len(self.cap) == self.orig


def csum16(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ethernet_parts(rec):
    """(dst MAC, src MAC, ethertype, payload Pkt) of an untagged Ethernet frame."""
    d = rec.data
    assert len(d) >= 14
    ethertype = struct.unpack(">H", d[12:14])[0]
    assert ethertype not in (0x8100, 0x88A8), "the sources are untagged"
    return d[0:6], d[6:12], ethertype, Pkt(d[14:], rec.orig - 14)


def ethernet(dst, src, ethertype, p):
    return p.under(dst + src + struct.pack(">H", ethertype))


def ipv4(protocol, p, src, dst, ident):
    total = 20 + p.orig
    assert total <= 0xFFFF, "an IPv4 packet cannot hold this payload"
    h = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0x4000, 64,
                              protocol, 0, src, dst))
    struct.pack_into(">H", h, 10, csum16(bytes(h)))
    return p.under(bytes(h))


def ipv6(next_header, p, src, dst):
    assert p.orig <= 0xFFFF
    return p.under(struct.pack(">IHBB16s16s", 6 << 28, p.orig, next_header, 64, src, dst))


def udp(sport, dport, p):
    # Checksum 0: allowed over IPv4 (RFC 768) and what VXLAN asks for (RFC 7348 section 5).
    return p.under(struct.pack(">HHHH", sport, dport, 8 + p.orig, 0))


def inner_ip_addresses(p):
    """(src, dst) of an IP packet, to tell its direction."""
    if p.cap[0] >> 4 == 4:
        return p.cap[12:16], p.cap[16:20]
    return p.cap[8:24], p.cap[24:40]


def entropy_port(p):
    """A source port derived from the inner addresses, as VTEPs do for ECMP (RFC 7348 sec. 5)."""
    src, dst = inner_ip_addresses(p) if p.cap[:1] and p.cap[0] >> 4 in (4, 6) else (p.cap, b"")
    return 49152 + zlib.crc32(src + dst) % 16384


class Outer:
    """Outer IPv4 (or IPv6) headers with a running identification, one per fixture."""

    def __init__(self):
        self.ident = 0x1000

    def v4(self, protocol, p, reverse=False):
        self.ident += 1
        src, dst = OUTER_V4[::-1] if reverse else OUTER_V4
        return ipv4(protocol, p, src, dst, self.ident)

    def v6(self, next_header, p, reverse=False):
        src, dst = OUTER_V6[::-1] if reverse else OUTER_V6
        return ipv6(next_header, p, src, dst)


def eth_outer(ethertype, p, reverse=False):
    dst, src = OUTER_MAC[::-1] if reverse else OUTER_MAC
    return ethernet(dst, src, ethertype, p)


def upstream(ip_pkt):
    """True for packets from the lower address: the direction of the outer headers."""
    src, dst = inner_ip_addresses(ip_pkt)
    return src < dst


def gre(proto, p, checksum=False, key=None, seq=None):
    """GRE (RFC 2784, key and sequence number RFC 2890). The checksum covers the GRE header and
    payload; a payload cut by the snaplen cannot be summed, so its checksum is left 0."""
    flags = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0) \
        | (0x1000 if seq is not None else 0)
    header = bytearray(struct.pack(">HH", flags, proto))
    if checksum:
        header += b"\0\0\0\0"  # checksum, reserved1
    if key is not None:
        header += struct.pack(">I", key)
    if seq is not None:
        header += struct.pack(">I", seq & 0xFFFFFFFF)
    if checksum and p.whole:
        struct.pack_into(">H", header, 4, csum16(bytes(header) + p.cap))
    return p.under(bytes(header))


# ------------------------------------------------------------------ encapsulations
# Each takes (index, source record) and returns (captured bytes, original length), or None to
# leave the frame out. Sources A and V6 give Ethernet frames and raw IPv6 packets.

def l3_of(rec):
    """(ethertype, IP-or-ARP Pkt) of an A frame."""
    _, _, ethertype, payload = ethernet_parts(rec)
    return ethertype, payload


def keep_plain(rec):
    return Pkt(rec.data, rec.orig)


def wrap_gre_plain(i, rec, outer):
    # Every frame's network-layer packet behind a plain GRE header, the GRE protocol type being
    # the frame's ethertype: ARP too (0x0806), which twsleuth must count as an unknown
    # encapsulation (it reads IPv4, IPv6, Ethernet, ERSPAN, MPLS and PPP inside GRE).
    ethertype, payload = l3_of(rec)
    reverse = ethertype in (ETH_IPV4, ETH_IPV6) and not upstream(payload)
    return eth_outer(ETH_IPV4, outer.v4(47, gre(ethertype, payload), reverse), reverse)


def wrap_gre_key_seq(i, rec, outer):
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return keep_plain(rec)
    reverse = not upstream(payload)
    key = 0x0000BEEF if not reverse else 0x0000CAFE  # one key per direction (ikey/okey)
    tunnel = gre(ethertype, payload, checksum=True, key=key, seq=i)
    return eth_outer(ETH_IPV4, outer.v4(47, tunnel, reverse), reverse)


def wrap_gre_teb(i, rec, outer):
    # Transparent Ethernet Bridging (0x6558): Linux gretap carries whole Ethernet frames.
    frame = Pkt(rec.data, rec.orig)
    return eth_outer(ETH_IPV4, outer.v4(47, gre(0x6558, frame, key=42)))


def erspan_outer(outer, erspan_payload):
    return eth_outer(ETH_IPV4, outer.v4(47, erspan_payload))


def wrap_erspan1(i, rec, outer):
    # Type I: a bare 4-byte GRE header (all flags 0), protocol 0x88BE, then the mirrored frame
    # (Linux erspan_ver 0; Wireshark's packet-erspan.c: "no extra gre header bytes").
    return erspan_outer(outer, gre(0x88BE, Pkt(rec.data, rec.orig)))


def wrap_erspan2(i, rec, outer):
    # Type II: GRE with a sequence number, protocol 0x88BE, 8-byte ERSPAN header:
    # Ver 1 | VLAN 0 ; COS 0 | En 0 (originally untagged) | T 0 | Session ID 42 ; Reserved | Index.
    header = struct.pack(">HHI", 1 << 12 | 0, 42, 0x00007)
    frame = Pkt(rec.data, rec.orig).under(header)
    return erspan_outer(outer, gre(0x88BE, frame, seq=i))


def wrap_erspan3(i, rec, outer):
    # Type III: GRE with a sequence number, protocol 0x22EB, 12-byte ERSPAN header:
    # Ver 2 | VLAN 0 ; COS | BSO | T | Session ID 77 ; Timestamp (100 us units, Gra 0) ;
    # SGT 0 ; P 0 | FT 0 (Ethernet) | HW ID 5 | D | Gra 0 | O.
    # Every other frame has O set and the 8-byte platform subheader (Platform ID 7: source
    # index, upper timestamp), which Wireshark's packet-erspan.c reads too.
    with_subheader = i % 2 == 1
    timestamp = (rec.ts // 100_000) & 0xFFFFFFFF
    last = 0 << 15 | 0 << 10 | 5 << 4 | (i % 4 // 2) << 3 | 0 << 1 | int(with_subheader)
    header = struct.pack(">HHIHH", 2 << 12 | 0, 77, timestamp, 0, last)
    if with_subheader:
        header += struct.pack(">II", 7 << 26 | 0x00123, (rec.ts // 10**9) & 0xFFFFFFFF)
    frame = Pkt(rec.data, rec.orig).under(header)
    return erspan_outer(outer, gre(0x22EB, frame, seq=i))


def wrap_vxlan(i, rec, outer):
    # RFC 7348: UDP to 4789, flags 0x08 (I: VNI valid), VNI 5001, the whole Ethernet frame.
    frame = Pkt(rec.data, rec.orig)
    _, payload = l3_of(rec)
    ethertype = struct.unpack(">H", rec.data[12:14])[0]
    reverse = ethertype in (ETH_IPV4, ETH_IPV6) and not upstream(payload)
    sport = entropy_port(payload) if ethertype in (ETH_IPV4, ETH_IPV6) else 49152
    vxlan = frame.under(struct.pack(">II", 0x08 << 24, 5001 << 8))
    return eth_outer(ETH_IPV4, outer.v4(17, udp(sport, 4789, vxlan), reverse), reverse)


def wrap_geneve(i, rec, outer):
    # RFC 8926: UDP to 6081, Ver 0, Opt Len 2 (one 8-byte option), O 0, C 0, protocol 0x6558
    # (Ethernet), VNI 0x00ABCD, then one option TLV: class 0x0103, type 0x01, length 1 (4 bytes
    # of data).
    frame = Pkt(rec.data, rec.orig)
    _, payload = l3_of(rec)
    ethertype = struct.unpack(">H", rec.data[12:14])[0]
    reverse = ethertype in (ETH_IPV4, ETH_IPV6) and not upstream(payload)
    sport = entropy_port(payload) if ethertype in (ETH_IPV4, ETH_IPV6) else 49152
    option = struct.pack(">HBB", 0x0103, 0x01, 1) + struct.pack(">I", 0x5EED0000 | i & 0xFFFF)
    header = struct.pack(">BBHI", 0 << 6 | len(option) // 4, 0, 0x6558, 0xABCD << 8) + option
    return eth_outer(ETH_IPV4, outer.v4(17, udp(sport, 6081, frame.under(header)), reverse),
                     reverse)


def wrap_gtpu(i, rec, outer):
    # 3GPP TS 29.281: UDP 2152 both ways, G-PDU (type 0xFF), flags 0x34 (version 1, PT 1, E 1),
    # sequence number 0, N-PDU 0, next extension header 0x85 (PDU Session Container, TS 38.415):
    # length 1 (4 bytes), PDU type 1 (UL) or 0 (DL), QFI 9, next type 0. The TEID differs by
    # direction, as in a real session: 0x00001000 uplink, 0x00002000 downlink.
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return keep_plain(rec)
    up = upstream(payload)
    teid = 0x1000 if up else 0x2000
    extension = struct.pack(">BBBB", 1, 0x10 if up else 0x00, 9, 0)
    optional = struct.pack(">HBB", 0, 0, 0x85)
    body_len = len(optional) + len(extension) + payload.orig
    header = struct.pack(">BBHI", 0x34, 0xFF, body_len, teid) + optional + extension
    return eth_outer(ETH_IPV4, outer.v4(17, udp(2152, 2152, payload.under(header)), not up),
                     not up)


def mpls_entry(label, bottom, ttl=64):
    return struct.pack(">I", label << 12 | 0 << 9 | int(bottom) << 8 | ttl)


def wrap_mpls(i, rec, outer):
    # RFC 3032: a transport label 100 above a bottom (service) label 200; the payload's
    # version nibble says IPv4 or IPv6, as Wireshark guesses it.
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return keep_plain(rec)
    stack = mpls_entry(100, False) + mpls_entry(200, True)
    return eth_outer(0x8847, payload.under(stack), not upstream(payload))


def wrap_mpls_pw(i, rec, outer):
    # An Ethernet pseudowire (RFC 4448) with the control word (RFC 4385: first nibble 0): label
    # 300 (bottom of stack), a zero control word, then the whole frame.
    frame = Pkt(rec.data, rec.orig)
    return eth_outer(0x8847, frame.under(mpls_entry(300, True) + b"\0\0\0\0"))


def ppp_protocol(ethertype):
    return {ETH_IPV4: 0x0021, ETH_IPV6: 0x0057}[ethertype]


def wrap_pppoe(i, rec, outer):
    # RFC 2516 session stage: ethertype 0x8864, ver 1 type 1, code 0, session 0x1234, length
    # (PPP protocol + payload), then PPP protocol 0x0021 / 0x0057 (RFC 1332, RFC 5072).
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return keep_plain(rec)
    ppp = payload.under(struct.pack(">H", ppp_protocol(ethertype)))
    session = ppp.under(struct.pack(">BBHH", 0x11, 0x00, 0x1234, ppp.orig))
    return eth_outer(0x8864, session, not upstream(payload))


def wrap_ipip(i, rec, outer):
    # IPv4 in IPv4 (protocol 4, RFC 2003); the ICMPv6 frames as 6in4 (protocol 41, RFC 4213).
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return keep_plain(rec)
    reverse = not upstream(payload)
    protocol = 4 if ethertype == ETH_IPV4 else 41
    return eth_outer(ETH_IPV4, outer.v4(protocol, payload, reverse), reverse)


def wrap_ip6tnl(i, rec, outer):
    # IPv4 in IPv6 (next header 4) and IPv6 in IPv6 (41), RFC 2473, as Linux ip6tnl sends them.
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return keep_plain(rec)
    reverse = not upstream(payload)
    next_header = 4 if ethertype == ETH_IPV4 else 41
    return eth_outer(ETH_IPV6, outer.v6(next_header, payload, reverse), reverse)


def wrap_6in4(i, rec, outer):
    # V6 (raw IPv6 packets) in IPv4, protocol 41 (RFC 4213).
    payload = Pkt(rec.data, rec.orig)
    reverse = not upstream(payload)
    return eth_outer(ETH_IPV4, outer.v4(41, payload, reverse), reverse)


def wrap_qinq3(i, rec, outer):
    # Three tags after the source MACs: 802.1ad S-tag VID 300, then 802.1Q VID 200 and VID 100.
    d = rec.data
    tags = struct.pack(">HHHHHH", 0x88A8, 300, 0x8100, 200, 0x8100, 100)
    return Pkt(d[:12] + tags + d[12:], rec.orig + len(tags))


def lcp_echo_request(i):
    # RFC 1661 section 5.8: code 9, identifier, length 8, magic number.
    return struct.pack(">HBBHI", 0xC021, 9, i & 0xFF, 8, 0x7753E1F0)


def wrap_ppp(i, rec, outer):
    # LINKTYPE_PPP (9): HDLC-like framing (RFC 1662: address 0xFF, control 0x03), protocol.
    # Frames that are not IP (ARP does not exist on PPP) become LCP Echo-Requests.
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        echo = lcp_echo_request(i)
        return Pkt(b"\xff\x03" + echo, 2 + len(echo))
    return payload.under(b"\xff\x03" + struct.pack(">H", ppp_protocol(ethertype)))


def wrap_ppp_hdlc(i, rec, outer):
    # LINKTYPE_PPP_HDLC (50): the same bytes (RFC 1662 framing without flags or FCS); odd frames
    # with the address and control fields compressed away (ACFC, RFC 1661 section 6.6), which
    # LINKTYPE_PPP allows and a decoder must read.
    p = wrap_ppp(i, rec, outer)
    if i % 2 == 1:
        return Pkt(p.cap[2:], p.orig - 2)
    return p


def wrap_c_hdlc(i, rec, outer):
    # LINKTYPE_C_HDLC (104): address 0x0F (unicast), control 0x00, then an ethertype. Frames
    # that are not IP become SLARP keepalives (address 0x8F, protocol 0x8035: code 2, my and
    # your sequence numbers, reliability 0xFFFF), what a Cisco serial line carries besides IP.
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        slarp = struct.pack(">BBHIIIH", 0x8F, 0x00, 0x8035, 2, i, i - 1, 0xFFFF)
        return Pkt(slarp, len(slarp))
    return payload.under(struct.pack(">BBH", 0x0F, 0x00, ethertype))


def wrap_fddi(i, rec, outer):
    # LINKTYPE_FDDI (10): frame control 0x50 (asynchronous LLC frame), destination, source,
    # then 802.2 LLC (DSAP 0xAA, SSAP 0xAA, UI 0x03) with SNAP (OUI 00-00-00, ethertype), as
    # RFC 1390 carries IP and ARP over FDDI. Every frame, ARP included.
    dst, src, ethertype, payload = ethernet_parts(rec)
    header = b"\x50" + dst + src + b"\xaa\xaa\x03\x00\x00\x00" + struct.pack(">H", ethertype)
    return payload.under(header)


def wrap_raw_ip(i, rec, outer):
    # Link types 12 and 14: the IP packet alone. ARP has no place there: those 2 frames are
    # left out (frame numbers after them are 2 lower than the source's).
    ethertype, payload = l3_of(rec)
    if ethertype not in (ETH_IPV4, ETH_IPV6):
        return None
    return payload


# ------------------------------------------------------------------ fragments
def fragment_ipv4(rec, splits, ident, order=None, drop=None):
    """The Ethernet/IPv4 frame `rec` (wholly captured) as fragments whose payloads end at the
    byte offsets `splits` (multiples of 8) of the IP payload. DF cleared, the header checksum
    recomputed. `order` lists the fragments' indexes in the order they are written; `drop` one
    index to leave out (a fragment the capture lost)."""
    assert rec.orig == len(rec.data)
    eth, ip = rec.data[:14], rec.data[14:]
    ihl = (ip[0] & 15) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    header, payload = ip[:ihl], ip[ihl:total]
    bounds = [0] + list(splits) + [len(payload)]
    frags = []
    for j in range(len(bounds) - 1):
        start, end = bounds[j], bounds[j + 1]
        assert start % 8 == 0 and start < end
        more = j < len(bounds) - 2
        h = bytearray(header)
        struct.pack_into(">HHH", h, 2, ihl + end - start, ident, start // 8 | (0x2000 if more else 0))
        struct.pack_into(">H", h, 10, 0)
        struct.pack_into(">H", h, 10, csum16(bytes(h)))
        data = eth + bytes(h) + payload[start:end]
        frags.append(Rec(rec.ts, data, len(data)))
    order = order or list(range(len(frags)))
    return [frags[j] for j in order if j != drop]


def tcp_shape(rec):
    """(flags, TCP header length, payload length) of an Ethernet/IPv4/TCP frame, else None."""
    d = rec.data
    if struct.unpack(">H", d[12:14])[0] != ETH_IPV4 or d[23] != 6:
        return None
    ip = d[14:]
    ihl = (ip[0] & 15) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    tcp_len = (ip[ihl + 12] >> 4) * 4
    return ip[ihl + 13], tcp_len, total - ihl - tcp_len


def split_header_fixture(recs):
    """The first 4 connections of A (the frames before the 5th SYN), with every wholly captured
    TCP segment sent as IPv4 fragments. The split points cycle per kind of segment so that the
    TCP header is split after 8 or 16 bytes, over three fragments, with the fragments in reverse
    order, or kept whole in the first fragment (the data segments); one data segment's last
    fragment is left out (lost). Returns the frames and one note per fragmented segment."""
    syns = [i for i, r in enumerate(recs) if (tcp_shape(r) or (0,))[0] == 0x02]
    end = syns[4]
    variants = {
        "syn": ["split16", "three", "reversed", "split8"],
        "syn-ack": ["split8", "reversed", "split16", "three"],
        "data": ["whole-header", "split16", "whole-header-last-lost", "reversed"],
        "other": ["split8", "three", "split16", "reversed"],
    }
    used = {kind: 0 for kind in variants}
    out, notes = [], []
    ident = 0x5A00
    for r in recs[:end]:
        shape = tcp_shape(r)
        if shape is None or r.orig != len(r.data):
            out.append(r)
            continue
        flags, tcp_len, payload_len = shape
        kind = ("syn" if flags == 0x02 else "syn-ack" if flags == 0x12
                else "data" if payload_len > 0 else "other")
        variant = variants[kind][used[kind] % len(variants[kind])]
        used[kind] += 1
        ident += 1
        first = len(out) + 1
        if variant == "split16":
            frags = fragment_ipv4(r, [16], ident)
        elif variant == "split8":
            frags = fragment_ipv4(r, [8], ident)
        elif variant == "three":
            frags = fragment_ipv4(r, [8, 24], ident)
        elif variant == "reversed":
            frags = fragment_ipv4(r, [16], ident, order=[1, 0])
        elif variant == "whole-header":
            frags = fragment_ipv4(r, [tcp_len], ident)
        else:  # whole-header-last-lost
            frags = fragment_ipv4(r, [tcp_len], ident, drop=1)
        out.extend(frags)
        notes.append(f"frames {first}-{len(out)}: {variant} (IP ID 0x{ident:04x}, TCP flags "
                     f"0x{flags:02x}, {tcp_len}-byte header, {payload_len} payload bytes)")
    return out, notes


# ------------------------------------------------------------------ main
def build(name, linktype, source, wrap):
    outer = Outer()
    out = []
    for i, rec in enumerate(source):
        p = wrap(i, rec, outer)
        if p is None:
            continue
        out.append(Rec(rec.ts, p.cap, p.orig))
    write(name, pcap_bytes(linktype, out), len(out))


def write(name, data, frames, extra=""):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    print(f"{name:28s} {frames:5d} frames {len(data):8d} bytes {extra}")


def main():
    lt_a, a = read_pcap(os.path.join(ROOT, "fixtures/lab/accepted/server.pcap"))
    lt_v6, v6 = read_pcap(os.path.join(ROOT, "fixtures/capture/ipv6.pcap"))
    lt_r, r = read_pcap(os.path.join(ROOT, "fixtures/lab/rejected/server.pcap"))
    assert (lt_a, lt_v6, lt_r) == (1, 229, 1)

    ethernet_fixtures = [
        ("gre.pcap", wrap_gre_plain),
        ("gre-key-seq.pcap", wrap_gre_key_seq),
        ("gre-teb.pcap", wrap_gre_teb),
        ("erspan1.pcap", wrap_erspan1),
        ("erspan2.pcap", wrap_erspan2),
        ("erspan3.pcap", wrap_erspan3),
        ("vxlan.pcap", wrap_vxlan),
        ("geneve.pcap", wrap_geneve),
        ("gtpu.pcap", wrap_gtpu),
        ("mpls.pcap", wrap_mpls),
        ("mpls-pw.pcap", wrap_mpls_pw),
        ("pppoe.pcap", wrap_pppoe),
        ("ipip.pcap", wrap_ipip),
        ("ip6tnl.pcap", wrap_ip6tnl),
        ("qinq3.pcap", wrap_qinq3),
    ]
    for name, wrap in ethernet_fixtures:
        build(name, 1, a, wrap)
    build("6in4.pcap", 1, v6, wrap_6in4)
    build("ppp.pcap", 9, a, wrap_ppp)
    build("ppp-hdlc.pcap", 50, a, wrap_ppp_hdlc)
    build("c-hdlc.pcap", 104, a, wrap_c_hdlc)
    build("fddi.pcap", 10, a, wrap_fddi)
    build("raw12.pcap", 12, a, wrap_raw_ip)
    build("raw14.pcap", 14, a, wrap_raw_ip)

    frags, notes = split_header_fixture(a)
    write("ipv4-split-header.pcap", pcap_bytes(1, frags), len(frags))
    for line in notes:
        print("    " + line)

    # A capture device that cut each frame but recorded the cut length as the frame's length
    # (a mirror port or ERSPAN session with truncation): the IP total length exceeds the frame
    # although the capture says nothing was cut.
    head = [Rec(x.ts, x.data, len(x.data)) for x in r[:120]]
    longer = sum(1 for x in r[:120] if x.orig > len(x.data))
    write("ip-longer-than-frame.pcap", pcap_bytes(1, head), len(head),
          f"({longer} frames whose IP length exceeds the frame)")


if __name__ == "__main__":
    main()
