#!/usr/bin/env python3
"""Derive hand-assembled edge-case capture fixtures from the real captures.

Usage: make_edge_fixtures.py [DIR]      (DIR defaults to fixtures/capture)

Reads en10mb.pcap, en10mb-ns.pcap, linux-sll.pcap (written by
scripts/make-fixtures.sh) from DIR and writes the derived fixtures next to
them. Python 3 stdlib only (zstd via the `zstd` CLI). Deterministic: the same
inputs give the same output bytes (no wall-clock time, fixed seeds, gzip
mtime 0). Prints the byte offsets of every deliberate corruption; they are
also written to DIR/edge-offsets.txt.
"""
import gzip
import hashlib
import os
import random
import struct
import subprocess
import sys

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "capture")

OFFSETS = []  # lines for edge-offsets.txt


def note(line):
    OFFSETS.append(line)
    print(line)


# ------------------------------------------------------------------ pcap I/O
class Rec:
    __slots__ = ("ts", "data", "orig")

    def __init__(self, ts, data, orig=None):
        self.ts = ts          # nanoseconds since the epoch
        self.data = data      # captured bytes
        self.orig = len(data) if orig is None else orig


def read_pcap(path):
    b = open(path, "rb").read()
    magic = b[:4]
    table = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
             b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}
    e, mult = table[magic]
    _, _, _, _, _, snaplen, linktype = struct.unpack(e + "IHHiIII", b[:24])
    recs, off = [], 24
    while off + 16 <= len(b):
        s, frac, incl, orig = struct.unpack(e + "IIII", b[off:off + 16])
        recs.append(Rec(s * 1_000_000_000 + frac * mult, b[off + 16:off + 16 + incl], orig))
        off += 16 + incl
    assert off == len(b), path
    return linktype & 0xFFFF, snaplen, recs


def pcap_bytes(linktype, recs, endian="<", nano=False, snaplen=262144, modified=False):
    """modified: Alexey Kuznetzov's "modified" pcap (magic a1b2cd34, libpcap's
    sf-pcap.c): each record header has 8 more bytes (ifindex, protocol, pkt_type, pad)."""
    magic = 0xA1B2CD34 if modified else 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for r in recs:
        sec, ns = divmod(r.ts, 1_000_000_000)
        frac = ns if nano else ns // 1000
        out.append(struct.pack(endian + "IIII", sec, frac, len(r.data), r.orig))
        if modified:
            out.append(struct.pack(endian + "IHBB", 2, 0x0800, 0, 0))
        out.append(r.data)
    return b"".join(out)


def record_offsets(linktype, recs, endian="<"):
    """Byte offset of each record header in pcap_bytes(...)"""
    offs, off = [], 24
    for r in recs:
        offs.append(off)
        off += 16 + len(r.data)
    return offs


def write(name, data):
    with open(os.path.join(DIR, name), "wb") as f:
        f.write(data)
    print(f"wrote {name} ({len(data)} bytes)")


# ------------------------------------------------------------------ decoding
def l2_ethernet(frame):
    """(ethertype, l3 offset) skipping 802.1Q/802.1ad tags"""
    if len(frame) < 14:
        return None, None
    et, off = struct.unpack(">H", frame[12:14])[0], 14
    while et in (0x8100, 0x88A8) and len(frame) >= off + 4:
        et, off = struct.unpack(">H", frame[off + 2:off + 4])[0], off + 4
    return et, off


def tcp_info(ip):
    """for an IP packet: (version, flow key, tcp header offset, payload len) or None"""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20 and ip[9] == 6:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        src, dst = ip[12:16], ip[16:20]
        nh_off, end = ihl, total
    elif v == 6 and len(ip) >= 40 and ip[6] == 6:
        src, dst = ip[8:24], ip[24:40]
        nh_off, end = 40, 40 + struct.unpack(">H", ip[4:6])[0]
    else:
        return None
    if len(ip) < nh_off + 20:
        return None
    sp, dp = struct.unpack(">HH", ip[nh_off:nh_off + 4])
    doff = (ip[nh_off + 12] >> 4) * 4
    key = tuple(sorted([(src, sp), (dst, dp)]))
    return v, key, nh_off, end - nh_off - doff


def ip_of_eth(frame):
    et, off = l2_ethernet(frame)
    if et in (0x0800, 0x86DD):
        return et, frame[off:]
    return et, None


def csum16(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# ------------------------------------------------------------------ pcapng
def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def ng_opt(e, code, val):
    return struct.pack(e + "HH", code, len(val)) + pad4(val)


def ng_opts(e, opts):
    if not opts:
        return b""
    return b"".join(ng_opt(e, c, v) for c, v in opts) + struct.pack(e + "HH", 0, 0)


def ng_block(e, btype, body):
    body = pad4(body)
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def ng_shb(e, section_len, opts):
    return ng_block(e, 0x0A0D0D0A,
                    struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, section_len) + ng_opts(e, opts))


def ng_idb(e, linktype, snaplen, opts):
    return ng_block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + ng_opts(e, opts))


def ng_epb(e, ifid, ts_units, data, orig, opts=()):
    return ng_block(e, 6, struct.pack(e + "IIIII", ifid, ts_units >> 32, ts_units & 0xFFFFFFFF,
                                      len(data), orig) + pad4(data) + ng_opts(e, list(opts)))


def ng_spb(e, orig, data):
    return ng_block(e, 3, struct.pack(e + "I", orig) + pad4(data))


def ng_nrb(e, entries):
    body = b""
    for addr, names in entries:
        rtype = 1 if len(addr) == 4 else 2
        val = addr + b"".join(n.encode() + b"\0" for n in names)
        body += struct.pack(e + "HH", rtype, len(val)) + pad4(val)
    body += struct.pack(e + "HH", 0, 0)
    return ng_block(e, 4, body)


def ng_isb(e, ifid, ts_units, start_units, recv, drop):
    u64 = lambda v: struct.pack(e + "II", v >> 32, v & 0xFFFFFFFF)  # noqa: E731
    opts = [(2, u64(start_units)), (3, u64(ts_units)),
            (4, struct.pack(e + "Q", recv)), (5, struct.pack(e + "Q", drop))]
    return ng_block(e, 5, struct.pack(e + "III", ifid, ts_units >> 32, ts_units & 0xFFFFFFFF)
                    + ng_opts(e, opts))


def ng_custom(e, btype, pen, data):
    return ng_block(e, btype, struct.pack(e + "I", pen) + data)


# ------------------------------------------------------------------ helpers
def u32(e, v):
    return struct.pack(e + "I", v)


def eth_direction(frame, local_mac):
    return 2 if frame[6:12] == local_mac else 1  # epb_flags: 1 inbound, 2 outbound


def main():
    lt, _, en = read_pcap(os.path.join(DIR, "en10mb.pcap"))
    assert lt == 1
    lt_ns, _, en_ns = read_pcap(os.path.join(DIR, "en10mb-ns.pcap"))
    lt_sll, _, sll = read_pcap(os.path.join(DIR, "linux-sll.pcap"))
    assert lt_ns == 1 and lt_sll == 113

    # the client MAC = source of the first ARP request (sent by tws4a0)
    local_mac = next(r.data[6:12] for r in en if l2_ethernet(r.data)[0] == 0x0806)

    # bulk connection: the TCP flow carrying > 100 kB (kept out of the
    # per-link-type copies to keep the fixture directory small)
    payload = {}
    for r in en:
        et, ip = ip_of_eth(r.data)
        ti = tcp_info(ip)
        if ti:
            payload[ti[1]] = payload.get(ti[1], 0) + max(ti[3], 0)
    bulk = {k for k, v in payload.items() if v > 100_000}
    assert len(bulk) == 1, payload

    def in_bulk(r):
        ti = tcp_info(ip_of_eth(r.data)[1])
        return ti is not None and ti[1] in bulk

    small = [r for r in en if not in_bulk(r)]

    # ---------------------------------------------------------- big-endian
    write("be-usec.pcap", pcap_bytes(1, en, endian=">"))
    write("modified.pcap", pcap_bytes(1, en, modified=True))

    # ---------------------------------------------------------- L3 link types
    ip_recs = []  # (ethertype, Rec with the IP packet only)
    for r in small:
        et, off = l2_ethernet(r.data)
        if et in (0x0800, 0x86DD):
            ip_recs.append((et, Rec(r.ts, r.data[off:], r.orig - off)))
    v6_families = [30, 30, 24, 28]  # 30 macOS/FreeBSD... 24 NetBSD/OpenBSD, 28 FreeBSD

    def fam_recs(endian):
        out, i6 = [], 0
        for et, r in ip_recs:
            if et == 0x0800:
                fam = 2
            else:
                fam = v6_families[i6 % 4]
                i6 += 1
            out.append(Rec(r.ts, struct.pack(endian + "I", fam) + r.data, r.orig + 4))
        return out

    write("null-le.pcap", pcap_bytes(0, fam_recs("<")))
    write("loop.pcap", pcap_bytes(108, fam_recs(">")))
    write("ipv4.pcap", pcap_bytes(228, [r for et, r in ip_recs if et == 0x0800]))
    write("ipv6.pcap", pcap_bytes(229, [r for et, r in ip_recs if et == 0x86DD]))
    write("raw101.pcap", pcap_bytes(101, [r for et, r in ip_recs]))

    # ---------------------------------------------------------- multi.pcapng
    multi = build_multi(en, en_ns, sll, local_mac)
    write("multi.pcapng", multi)

    # ---------------------------------------------------------- compressed
    en_bytes = open(os.path.join(DIR, "en10mb.pcap"), "rb").read()
    write("en10mb.pcap.gz", gzip.compress(en_bytes, compresslevel=9, mtime=0))
    write("multi.pcapng.gz", gzip.compress(multi, compresslevel=9, mtime=0))
    zst = subprocess.run(["zstd", "-19", "-q", "-c", "--no-progress"], input=en_bytes,
                         stdout=subprocess.PIPE, check=True).stdout
    write("en10mb.pcap.zst", zst)

    # ---------------------------------------------------------- truncation / corruption
    offs = record_offsets(1, en)
    n = len(en)
    last = offs[-1]
    cut = last + 16 + len(en[-1].data) // 2
    write("truncated-last.pcap", en_bytes[:cut])
    note(f"truncated-last.pcap: {n - 1} complete records; record {n} header at byte {last}, "
         f"its data (caplen {len(en[-1].data)}) starts at {last + 16} and the file ends at "
         f"byte {cut} ({cut - last - 16} of {len(en[-1].data)} data bytes present)")
    cut = last + 8
    write("truncated-header.pcap", en_bytes[:cut])
    note(f"truncated-header.pcap: {n - 1} complete records; record {n} header at byte {last} "
         f"is cut after 8 of 16 bytes (file size {cut})")
    k = n // 2
    bad = bytearray(en_bytes)
    struct.pack_into("<I", bad, offs[k] + 8, 0x7FFFFFFF)
    write("corrupt-caplen.pcap", bytes(bad))
    note(f"corrupt-caplen.pcap: records 1..{k} valid; record {k + 1} header at byte {offs[k]} "
         f"has caplen field (byte {offs[k] + 8}) = 0x7fffffff (snaplen 262144, file size {len(bad)})")
    write("corrupt.pcapng", build_corrupt_ng(en))

    # ---------------------------------------------------------- trivial files
    write("empty.pcap", pcap_bytes(1, []))
    write("zero-length.pcap", b"")
    write("not-a-capture.txt", b"This is not a packet capture.\n"
          b"twsleuth must refuse it with a clear error naming the file,\n"
          b"not panic and not report zero connections.\n")
    rnd = random.Random(0x7E55_1E07)
    garbage = bytearray(rnd.getrandbits(8) for _ in range(1024))
    garbage[0:4] = b"\x5c\x17\x9e\x03"  # make sure it is no capture magic
    write("header-only-garbage.bin", bytes(garbage))

    # ---------------------------------------------------------- F5 trailer
    f5 = []
    for i, r in enumerate(small):
        trailer = (b"\x01\x22" + hashlib.sha256(b"f5-trailer-%d" % i).digest()
                   + b"\x00\x00\x00\x00\x00\x00")  # 40 bytes
        f5.append(Rec(r.ts, r.data + trailer, r.orig + len(trailer)))
    write("f5-trailer.pcap", pcap_bytes(1, f5))

    # ---------------------------------------------------------- IPv4 fragments
    write("ipv4-fragments.pcap", build_fragments(small))

    # ---------------------------------------------------------- IPv6 ext headers
    ext = []
    for r in small:
        et, off = l2_ethernet(r.data)
        ip = r.data[off:]
        ti = tcp_info(ip) if et == 0x86DD else None
        if not ti:
            continue
        hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0])    # next: DestOpts, PadN(4)
        dst = bytes([6, 0, 1, 4, 0, 0, 0, 0])     # next: TCP, PadN(4)
        plen = struct.unpack(">H", ip[4:6])[0] + 16
        new = ip[:4] + struct.pack(">H", plen) + bytes([0]) + ip[7:40] + hbh + dst + ip[40:]
        ext.append(Rec(r.ts, r.data[:off] + new, r.orig + 16))
    write("ipv6-exthdr.pcap", pcap_bytes(1, ext))

    # ---------------------------------------------------------- VLAN fallback
    if not os.path.exists(os.path.join(DIR, "vlan-8021q.pcap")):
        vl = [Rec(r.ts, r.data[:12] + b"\x81\x00\x00\x64" + r.data[12:], r.orig + 4)
              for r in small]
        write("vlan-synthetic.pcap", pcap_bytes(1, vl))

    # ---------------------------------------------------------- pcapng details
    write("obsolete-pb.pcapng", build_obsolete_pb(en))
    build_comments(os.path.join(DIR, "en10mb.pcap"), os.path.join(DIR, "comments.pcapng"))

    # ---------------------------------------------------------- formats twsleuth does not read
    build_foreign(en, os.path.join(DIR, "foreign"))

    with open(os.path.join(DIR, "edge-offsets.txt"), "w") as f:
        f.write("\n".join(OFFSETS) + "\n")


def build_multi(en, en_ns, sll, local_mac):
    out = []
    # ---- section 1: little-endian, IF0 EN10MB (µs, if_tsresol omitted),
    #      IF1 LINUX_SLL (ns, if_tsresol 9)
    e = "<"
    body = [
        ng_idb(e, 1, 262144, [(2, b"tws4a0"),
                              (1, b"EN10MB from en10mb.pcap; if_tsresol omitted = 10^-6 s")]),
        ng_idb(e, 113, 262144, [(2, b"any"), (9, b"\x09"),
                                (1, b"LINUX_SLL from linux-sll.pcap; if_tsresol 9 = 10^-9 s")]),
        ng_nrb(e, [(bytes([10, 244, 0, 1]), ["tws4a.fixture.invalid"]),
                   (bytes([10, 244, 0, 2]), ["tws4b.fixture.invalid", "server.fixture.invalid"]),
                   (bytes.fromhex("fd440000000000000000000000010002"), ["tws4b6.fixture.invalid"])]),
    ]
    pkts = [(r.ts, 0, r) for r in en[:40]] + [(r.ts, 1, r) for r in sll[:40]]
    pkts.sort(key=lambda t: (t[0], t[1]))
    for i, (ts, ifid, r) in enumerate(pkts):
        if ifid == 0:
            units = ts // 1000
            opts = [(2, u32(e, eth_direction(r.data, local_mac)))]
        else:
            units = ts
            pkttype = struct.unpack(">H", r.data[0:2])[0]
            opts = [(2, u32(e, 2 if pkttype == 4 else 1))]
        if i == 0:
            opts.append((1, b"first packet of section 1"))
        body.append(ng_epb(e, ifid, units, r.data, r.orig, opts))
        if i == 9:
            body.append(ng_custom(e, 0x00000BAD, 32473,
                                  b"twsleuth custom block (copyable); readers skip it"))
    end_ts = pkts[-1][0]
    body.append(ng_isb(e, 0, end_ts // 1000, pkts[0][0] // 1000, 40, 0))
    sec1 = b"".join(body)
    out.append(ng_shb(e, len(sec1), [(4, b"twsleuth make_edge_fixtures.py"),
                                     (1, b"section 1: little-endian, 2 interfaces")]))
    out.append(sec1)

    # ---- section 2: big-endian, IF0 EN10MB, if_tsresol 0x94 (2^-20 s),
    #      snaplen 96, EPBs + SPBs
    e = ">"
    snap = 96
    body = [ng_idb(e, 1, snap, [(2, b"tws4a0"), (9, b"\x94"),
                                (1, b"EN10MB from en10mb-ns.pcap; if_tsresol 0x94 = 2^-20 s; "
                                    b"snaplen 96")])]
    src = en_ns[:40]
    spb_idx = {next(i for i, r in enumerate(src) if l2_ethernet(r.data)[0] == 0x0806),
               next(i for i, r in enumerate(src) if len(r.data) > snap)}
    for i, r in enumerate(src):
        if i in spb_idx:
            body.append(ng_spb(e, r.orig, r.data[:snap]))
        else:
            units = r.ts * (1 << 20) // 1_000_000_000
            body.append(ng_epb(e, 0, units, r.data[:snap], r.orig,
                               [(2, u32(e, eth_direction(r.data, local_mac)))]))
        if i == 4:
            body.append(ng_custom(e, 0x40000BAD, 32473,
                                  b"twsleuth custom block (do not copy); readers skip it"))
    out.append(ng_shb(e, -1, [(4, b"twsleuth make_edge_fixtures.py"),
                              (1, b"section 2: big-endian, if_tsresol 0x94, SPBs")]))
    out.extend(body)
    multi = b"".join(out)
    note(f"multi.pcapng: section 1 = {len(pkts)} EPBs (IF0 EN10MB {sum(1 for p in pkts if p[1] == 0)}, "
         f"IF1 LINUX_SLL {sum(1 for p in pkts if p[1] == 1)}); section 2 starts at byte "
         f"{len(out[0]) + len(out[1])}, {len(src) - len(spb_idx)} EPBs + {len(spb_idx)} SPBs "
         f"(SPB = source frames {sorted(i + 1 for i in spb_idx)} of en10mb-ns.pcap)")
    return multi


def build_obsolete_pb(en):
    """The first 40 frames of en10mb.pcap in pcapng's obsolete Packet Block (type 2: 16-bit
    interface id, 16-bit drops count, then as an EPB), as early ntar-based writers made them;
    the 3rd carries an opt_comment."""
    e = "<"
    blocks = [ng_shb(e, -1, [(4, b"twsleuth make_edge_fixtures.py (obsolete Packet Blocks)")]),
              ng_idb(e, 1, 262144, [(2, b"tws4a0")])]
    for i, r in enumerate(en[:40]):
        ts = r.ts // 1000
        opts = [(1, b"third frame, in an obsolete Packet Block")] if i == 2 else []
        body = (struct.pack(e + "HHIIII", 0, 0, ts >> 32, ts & 0xFFFFFFFF, len(r.data), r.orig)
                + pad4(r.data) + ng_opts(e, opts))
        blocks.append(ng_block(e, 2, body))
    note("obsolete-pb.pcapng: SHB, IDB (EN10MB, µs), 40 obsolete Packet Blocks (type 2) = "
         "frames 1-40 of en10mb.pcap; frame 3 has the comment "
         "'third frame, in an obsolete Packet Block'")
    return b"".join(blocks)


COMMENTS = {2: "second frame's note", 5: '<b>bold</b> & "quoted"',
            7: "r\u00e9sum\u00e9 \u2713 line one\nline two"}
CAPTURE_COMMENT = "capture comment: made by make_edge_fixtures.py with editcap -a"


def build_comments(src, out):
    """Frames 1-12 of en10mb.pcap as pcapng with packet comments and a section comment, written
    by Wireshark's own editcap (-a, --capture-comment)."""
    args = ["editcap", "-r", "--capture-comment", CAPTURE_COMMENT]
    for frame, text in COMMENTS.items():
        args += ["-a", f"{frame}:{text}"]
    subprocess.run(args + [src, out, "1-12"], check=True)
    print(f"wrote {os.path.basename(out)} (editcap)")
    note(f"comments.pcapng: frames 1-12 of en10mb.pcap; packet comments on frames "
         f"{sorted(COMMENTS)}; section comment {CAPTURE_COMMENT!r}")


def build_foreign(en, out_dir):
    """Captures in formats twsleuth does not read: written by editcap where it writes the
    format, else laid out as Wireshark's wiretap reads them (each checked with capinfos, which
    names the format)."""
    os.makedirs(out_dir, exist_ok=True)
    small = os.path.join(out_dir, ".small.pcap")
    open(small, "wb").write(pcap_bytes(1, en[:6]))
    for fmt, name in [("ngsniffer", "sniffer-dos.cap"), ("ngwsniffer_2_0", "sniffer-windows.cap"),
                      ("snoop", "solaris.snoop"), ("netmon2", "netmon2.cap"),
                      ("k12text", "k12.txt")]:
        subprocess.run(["editcap", "-F", fmt, small, os.path.join(out_dir, name)], check=True)
        print(f"wrote foreign/{name} (editcap -F {fmt})")
    os.remove(small)

    def put(name, data):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        print(f"wrote foreign/{name} ({len(data)} bytes)")

    # ERF (wiretap/erf.c): 16-byte record header, little-endian 32.32 fixed-point timestamp,
    # type 2 (Ethernet), flags 0x04 (varying length), rlen/lctr/wlen big-endian; an Ethernet
    # record has 2 bytes (offset, pad) before the frame; records padded to 8 bytes.
    erf = []
    for r in en[:6]:
        sec, ns = divmod(r.ts, 1_000_000_000)
        body = b"\0\0" + r.data
        rlen = 16 + len(body)
        pad = -rlen % 8
        erf.append(struct.pack("<Q", (sec << 32) | ((ns << 32) // 1_000_000_000))
                   + struct.pack(">BBHHH", 2, 0x04, rlen + pad, 0, r.orig + 4) + body + b"\0" * pad)
    put("ethernet.erf", b"".join(erf))
    # btsnoop (wiretap/btsnoop.c): "btsnoop\0", version 1, datalink 1002 (HCI UART); records
    # with big-endian lengths, flags, drops and µs since year 0: an HCI Reset and its Command
    # Complete.
    delta = 0x00DCDDB30F2F8000
    t0 = en[0].ts // 1000

    def bts(ts_us, flags, data):
        return struct.pack(">IIIIq", len(data), len(data), flags, 0, ts_us + delta) + data
    put("hci.btsnoop", b"btsnoop\0" + struct.pack(">II", 1, 1002)
        + bts(t0, 2, bytes.fromhex("01030c00")) + bts(t0 + 1500, 3, bytes.fromhex("040e0401030c00")))
    # AIX iptrace: the 11-byte magic alone (no packet).
    put("iptrace-1.0.bin", b"iptrace 1.0")
    put("iptrace-2.0.bin", b"iptrace 2.0")
    # NetScaler nstrace (wiretap/netscaler.c): the signature record that opens a trace; 1.0 has
    # a 2-byte type 0x0101 and the text at byte 8, later versions a 1-byte type 0x01 and the
    # text at byte 3. 64 bytes: the rest of the page is unused (zero).
    sig10 = struct.pack("<HH", 0x0101, 64) + b"\0" * 4 + b"NetScaler Performance Data"
    put("nstrace-1.0.cap", sig10.ljust(64, b"\0"))
    for version, text in [("2.0", b"NetScaler V20 Performance Data"),
                          ("3.0", b"Netscaler V30 Performance Data"),
                          ("3.5", b"Netscaler V35 Performance Data")]:
        put(f"nstrace-{version}.cap", (struct.pack("<BBB", 1, 34, 0) + text.ljust(31, b"\0")).ljust(64, b"\0"))
    # Text traces: Lucent/Ascend (wiretap/ascend_parser.y) and NetScreen snoop
    # (wiretap/netscreen.c), the IPv4 frames of a handshake.
    ipv4 = [r for r in en if r.data[12:14] == b"\x08\x00"][:3]
    lines = []
    for i, r in enumerate(ipv4):
        ip = r.data[14:]
        lines.append(f"{'RECV' if i % 2 else 'XMIT'}-iguana:241:(task: B02614C0, time: "
                     f"{r.ts // 10_000_000 / 100:.2f}) {len(ip)} octets @ 8003BD94")
        lines += [f"  [{o:04x}]: " + " ".join(f"{b:02X}" for b in ip[o:o + 16])
                  for o in range(0, len(ip), 16)]
        lines.append("")
    put("ascend.txt", ("\n".join(lines) + "\n").encode())
    lines = []
    for i, r in enumerate(ipv4):
        d = r.data
        lines.append(f"{r.ts // 1_000_000_000}.0: ethernet1/1({'io'[i % 2]}) len={len(d)}:"
                     f"{d[6:12].hex()}->{d[0:6].hex()}/0800")
        for o in range(0, len(d), 16):
            chunk = d[o:o + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append("               " + f"{' '.join(f'{b:02x}' for b in chunk):<48s}  {text}")
        lines.append("")
    put("netscreen.txt", ("\n".join(lines) + "\n").encode())


def build_corrupt_ng(en):
    e = "<"
    blocks = [ng_shb(e, -1, [(4, b"twsleuth make_edge_fixtures.py")]),
              ng_idb(e, 1, 262144, [(2, b"tws4a0")])]
    for r in en[:8]:
        blocks.append(ng_epb(e, 0, r.ts // 1000, r.data, r.orig))
    off5 = sum(len(b) for b in blocks[:4])
    b5 = bytearray(blocks[4])
    total = len(b5)
    struct.pack_into(e + "I", b5, total - 4, total + 8)
    blocks[4] = bytes(b5)
    data = b"".join(blocks)
    note(f"corrupt.pcapng: blocks SHB, IDB, EPB, EPB, EPB, ... ; block 5 (3rd EPB, would be "
         f"frame 3) starts at byte {off5}, leading block_total_length {total}, trailing copy at "
         f"byte {off5 + total - 4} says {total + 8}; frames 1-2 are valid; file size {len(data)}")
    return data


def build_fragments(small):
    # first IPv4 TCP segment carrying 1000..1448 bytes of payload
    pick = None
    for i, r in enumerate(small):
        et, off = l2_ethernet(r.data)
        ti = tcp_info(r.data[off:]) if et == 0x0800 else None
        if ti and 1000 <= ti[3] <= 1460:
            pick = i
            break
    assert pick is not None
    key = tcp_info(small[pick].data[14:])[1]
    # keep the picked connection plus the connection before it, plus the first ARP pair
    keys = []
    for r in small:
        ti = tcp_info(r.data[14:]) if l2_ethernet(r.data)[0] == 0x0800 else None
        if ti and ti[1] not in keys:
            keys.append(ti[1])
    keep = {key, keys[max(0, keys.index(key) - 1)]}
    out, arp = [], 0
    for i, r in enumerate(small):
        et, off = l2_ethernet(r.data)
        if et == 0x0806 and arp < 2:
            out.append(r)
            arp += 1
            continue
        ti = tcp_info(r.data[off:]) if et == 0x0800 else None
        if not ti or ti[1] not in keep:
            continue
        if i != pick:
            out.append(r)
            continue
        eth, ip = r.data[:off], r.data[off:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        hdr, l4 = bytearray(ip[:ihl]), ip[ihl:total]
        ident = struct.unpack(">H", hdr[4:6])[0] or 0x1F2E
        sizes = [512, 512, len(l4) - 1024]
        pos = 0
        for j, sz in enumerate(sizes):
            h = bytearray(hdr)
            struct.pack_into(">HHH", h, 2, ihl + sz, ident, (pos // 8) | (0x2000 if j < 2 else 0))
            struct.pack_into(">H", h, 10, 0)
            struct.pack_into(">H", h, 10, csum16(bytes(h)))
            out.append(Rec(r.ts, eth + bytes(h) + l4[pos:pos + sz]))
            pos += sz
        note(f"ipv4-fragments.pcap: frames {len(out) - 2}..{len(out)} are 3 fragments "
             f"(IP ID 0x{ident:04x}, offsets 0/512/1024, MF 1/1/0, DF cleared) of one TCP segment "
             f"with {len(l4) - (l4[12] >> 4) * 4} payload bytes; frame {len(out) - 2} holds the TCP header")
    return pcap_bytes(1, out)


if __name__ == "__main__":
    main()
