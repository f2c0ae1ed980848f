#!/usr/bin/env python3
"""Builds the fuzz targets' seed corpora from the repository's fixtures (stdlib only).

    python3 fuzz/make_seeds.py [OUT_DIR]        (default fuzz/seeds)

- reader/, end_to_end/: the small captures of fixtures/capture and fixtures/lab as they are
  (plain, gzip, zstd, pcapng, damaged ones), larger ones cut at a record boundary to at most
  64 KiB and 8 KiB (and a gzip copy of some cuts).
- decode/: single frames taken from those captures, in the decode target's layout:
  1 byte link-type selector, 4 bytes orig_len - len (i32 LE), the frame.
- flows/: the lab captures' TCP segments, in the flows target's `arbitrary` layout (see
  fuzz_targets/flows.rs), with the capture's endpoints mapped onto the target's few endpoints and
  sequence numbers / TSvals shifted per endpoint (their differences are kept exactly).

Deterministic: the same fixtures give the same seeds.
"""

import gzip
import hashlib
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIG = 64 * 1024
SMALL = 8 * 1024

# Must match LINK_TYPES in fuzz_targets/decode.rs.
DECODE_LINK_TYPES = [0, 1, 101, 108, 113, 228, 229, 276, 105, 9, 10, 12, 14, 50, 104]


def write(out_dir: Path, name: str, data: bytes) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / name).write_bytes(data)


def content_name(prefix: str, data: bytes) -> str:
    return f"{prefix}-{hashlib.sha1(data).hexdigest()[:12]}"


# --- capture parsing -------------------------------------------------------------------------


def pcap_records(data: bytes):
    """(header_bytes, [(offset, end, ts_ns, linktype, orig_len, frame)]) of a classic pcap; stops
    at damage."""
    if len(data) < 24:
        return None
    magic = data[:4]
    table = {
        b"\xd4\xc3\xb2\xa1": ("<", 1000),
        b"\xa1\xb2\xc3\xd4": (">", 1000),
        b"\x4d\x3c\xb2\xa1": ("<", 1),
        b"\xa1\xb2\x3c\x4d": (">", 1),
    }
    if magic not in table:
        return None
    endian, ns_per_unit = table[magic]
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF
    records = []
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[offset : offset + 16])
        end = offset + 16 + incl
        if incl > 262144 or end > len(data):
            break
        records.append(
            (offset, end, sec * 10**9 + frac * ns_per_unit, linktype, orig, data[offset + 16 : end])
        )
        offset = end
    return data[:24], records


def pcapng_blocks(data: bytes):
    """[(offset, end, type)] of a pcapng file's blocks, and its frames
    [(ts_ns, linktype, orig_len, frame)] (EPBs, µs or ns resolution assumed µs); stops at damage."""
    blocks, frames = [], []
    endian = "<"
    linktypes = []
    offset = 0
    while offset + 12 <= len(data):
        btype = struct.unpack("<I", data[offset : offset + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[offset + 8 : offset + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        else:
            btype = struct.unpack(endian + "I", data[offset : offset + 4])[0]
        length = struct.unpack(endian + "I", data[offset + 4 : offset + 8])[0]
        if length < 12 or length % 4 or offset + length > len(data):
            break
        body = data[offset + 8 : offset + length - 4]
        if btype == 1 and len(body) >= 8:
            linktypes.append(struct.unpack(endian + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:
            if_id, ts_hi, ts_lo, caplen, orig = struct.unpack(endian + "IIIII", body[:20])
            if if_id < len(linktypes) and 20 + caplen <= len(body):
                frames.append(((ts_hi << 32 | ts_lo) * 1000, linktypes[if_id], orig, body[20 : 20 + caplen]))
        blocks.append((offset, offset + length, btype))
        offset += length
    return blocks, frames


def cut_capture(data: bytes, limit: int):
    """The capture cut at the last record/block boundary at or below `limit` bytes."""
    parsed = pcap_records(data)
    if parsed:
        header, records = parsed
        end = 24
        for _, rec_end, *_ in records:
            if rec_end > limit:
                break
            end = rec_end
        return data[:end] if end > 24 else None
    blocks, _ = pcapng_blocks(data)
    end = 0
    for _, block_end, _ in blocks:
        if block_end > limit:
            break
        end = block_end
    return data[:end] if end else None


def frames_of(data: bytes):
    """[(ts_ns, linktype, orig_len, frame)] of a plain or gzip capture."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except Exception:
            return []
    parsed = pcap_records(data)
    if parsed:
        return [(ts, lt, orig, frame) for _, _, ts, lt, orig, frame in parsed[1]]
    return pcapng_blocks(data)[1]


def capture_files():
    files = sorted((ROOT / "fixtures/capture").glob("*.pcap*"))
    files += sorted((ROOT / "fixtures/capture").glob("*.bin"))
    # Tunnels and the other link layers (GRE, ERSPAN, VXLAN, Geneve, GTP-U, MPLS, PPPoE, PPP,
    # C_HDLC, FDDI, raw IP 12/14, split fragments): the decode target's paths into them.
    files += sorted((ROOT / "fixtures/capture/tunnels").glob("*.pcap"))
    # F5 BIG-IP trailers (both formats, every noise level), the fileinfo frame, an FCS.
    files += sorted((ROOT / "fixtures/capture/f5").glob("*.pcap"))
    files += sorted((ROOT / "fixtures/lab").glob("*/*.pcap"))
    return files


# --- reader / end_to_end ---------------------------------------------------------------------


def capture_seeds():
    seeds = {}
    for path in capture_files():
        data = path.read_bytes()
        name = path.relative_to(ROOT / "fixtures").as_posix().replace("/", "_")
        if len(data) <= BIG:
            seeds[name] = data
        plain = data
        if data[:2] == b"\x1f\x8b":
            plain = gzip.decompress(data) if len(data) < 4 << 20 else b""
            name += ".unzipped"
        for limit, tag in ((BIG, "64k"), (SMALL, "8k")):
            if len(plain) <= limit:
                continue
            cut = cut_capture(plain, limit)
            if cut:
                seeds[f"{name}.{tag}"] = cut
    synthetic = ROOT / "fixtures/synthetic/lb-cycle.pcap.gz"
    if synthetic.exists():
        with gzip.open(synthetic) as f:
            head = f.read(4 * BIG)
        for limit, tag in ((BIG, "64k"), (SMALL, "8k")):
            cut = cut_capture(head, limit)
            if cut:
                seeds[f"synthetic_lb-cycle.{tag}"] = cut
                seeds[f"synthetic_lb-cycle.{tag}.gz"] = gzip.compress(cut, mtime=0)
    return seeds


# --- decode ----------------------------------------------------------------------------------


def decode_seeds(per_file: int = 24):
    seeds = {}
    for path in capture_files():
        frames = frames_of(path.read_bytes())
        if not frames:
            continue
        # The first frames (handshakes) and a spread over the rest.
        picks = frames[: per_file // 2]
        step = max(1, len(frames) // (per_file // 2))
        picks += frames[per_file // 2 :: step][: per_file // 2]
        for _, linktype, orig, frame in picks:
            if linktype not in DECODE_LINK_TYPES or len(frame) > 16384:
                continue
            selector = DECODE_LINK_TYPES.index(linktype)
            delta = max(-(2**31), min(2**31 - 1, orig - len(frame)))
            seed = bytes([selector]) + struct.pack("<i", delta) + frame
            seeds[content_name(path.stem, seed)] = seed
    return seeds


# --- flows -----------------------------------------------------------------------------------


def tcp_segments(frames):
    """[(ts_ns, (src_ip, sport), (dst_ip, dport), seq, ack, flags, payload_len, ts_opt)] of
    Ethernet/IPv4/IPv6 TCP frames."""
    out = []
    for ts, linktype, _, frame in frames:
        if linktype != 1 or len(frame) < 14:
            continue
        ethertype = struct.unpack(">H", frame[12:14])[0]
        ip = frame[14:]
        if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == 6:
            ihl = (ip[0] & 15) * 4
            total = struct.unpack(">H", ip[2:4])[0] or len(ip)
            src, dst = ip[12:16], ip[16:20]
            tcp, tcp_len = ip[ihl:], total - ihl
        elif ethertype == 0x86DD and len(ip) >= 40 and ip[6] == 6:
            src, dst = ip[8:24], ip[24:40]
            tcp, tcp_len = ip[40:], struct.unpack(">H", ip[4:6])[0]
        else:
            continue
        if len(tcp) < 20:
            continue
        sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
        hlen = (tcp[12] >> 4) * 4
        flags = tcp[13]
        ts_opt = None
        options = tcp[20 : min(hlen, len(tcp))]
        i = 0
        while i < len(options):
            kind = options[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= len(options) or options[i + 1] < 2:
                break
            length = options[i + 1]
            if kind == 8 and length == 10 and i + 10 <= len(options):
                ts_opt = struct.unpack(">II", options[i + 2 : i + 10])
            i += length
        out.append((ts, (src, sport), (dst, dport), seq, ack, flags, max(0, tcp_len - hlen), ts_opt))
    return out


def flows_base(table_ep, salt):
    """fuzz_targets/flows.rs `base()` for one of its endpoints."""
    (family, ip_last, ip_bits), port = table_ep
    if port == 40002:
        return (2**32 - 1 - 100 - salt) % 2**32
    mixed = (ip_bits ^ ((port << 16 | port >> 16) & 0xFFFFFFFF)) & 0xFFFFFFFF
    return (mixed * 0x9E3779B9 + salt) % 2**32


def v4bits(a, b, c, d):
    return a << 24 | b << 16 | c << 8 | d


# Endpoint tables of fuzz_targets/flows.rs, IPv4: clients 0-2 and servers 0-2 used here.
CLIENTS = [((4, 0, v4bits(10, 0, 0, 1)), 40000), ((4, 0, v4bits(10, 0, 0, 1)), 40002), ((4, 0, v4bits(10, 0, 0, 2)), 40000)]
SERVERS = [((4, 0, v4bits(10, 1, 0, 10)), 80), ((4, 0, v4bits(10, 1, 0, 10)), 8080), ((4, 0, v4bits(10, 1, 0, 11)), 80)]


def num(value_offset: int, base: int) -> bytes:
    """`Num` as arbitrary reads it: a u32 discriminant (< 2^31 Rel, else Raw), then the value."""
    if value_offset < 65536:
        return struct.pack("<IH", 0, value_offset)
    return struct.pack("<II", 0x80000000, (base + value_offset) % 2**32)


def flows_seed(segments, max_segments: int = 110, max_flows: int = 15, timing: int = 0) -> bytes:
    clients, servers = {}, {}
    first_seq, first_ts = {}, {}
    out = bytearray()
    prev_ts = None
    count = 0
    for ts, src, dst, seq, ack, flags, payload, ts_opt in segments:
        # The side sending a SYN-only, or the one with the higher port, is the client.
        if src in clients or dst in servers:
            client, server, from_server = src, dst, False
        elif dst in clients or src in servers:
            client, server, from_server = dst, src, True
        elif (flags & 0x12) == 0x02 or src[1] > dst[1]:
            client, server, from_server = src, dst, False
        else:
            client, server, from_server = dst, src, True
        if client not in clients and len(clients) < len(CLIENTS):
            clients[client] = len(clients)
        if server not in servers and len(servers) < len(SERVERS):
            servers[server] = len(servers)
        if client not in clients or server not in servers:
            continue
        ci, si = clients[client], servers[server]
        src_table, dst_table = (SERVERS[si], CLIENTS[ci]) if from_server else (CLIENTS[ci], SERVERS[si])
        real_src, real_dst = (server, client) if from_server else (client, server)
        if prev_ts is None:
            out += struct.pack("<BBI", max_flows, timing, ts // 10**9)
            prev_ts = ts // 10**9 * 10**9
        dt = max(-(2**31), min(2**31 - 1, (ts - prev_ts) // 10_000))
        prev_ts += dt * 10_000
        first_seq.setdefault(real_src, seq)
        first_seq.setdefault(real_dst, ack)
        rec = bytearray([1, ci | si << 2 | (0x20 if from_server else 0), flags])
        rec += num((seq - first_seq[real_src]) % 2**32, flows_base(src_table, 0))
        rec += num((ack - first_seq[real_dst]) % 2**32, flows_base(dst_table, 0))
        rec += struct.pack("<iH", dt, min(payload, 65535))
        if ts_opt:
            first_ts.setdefault(real_src, ts_opt[0])
            first_ts.setdefault(real_dst, ts_opt[1])
            rec += b"\x01"
            rec += num((ts_opt[0] - first_ts[real_src]) % 2**32, flows_base(src_table, 7))
            rec += num((ts_opt[1] - first_ts[real_dst]) % 2**32, flows_base(dst_table, 7))
        else:
            rec += b"\x00"
        out += rec
        count += 1
        if count >= max_segments:
            break
    return bytes(out)


def flows_seeds():
    seeds = {}
    for path in sorted((ROOT / "fixtures/lab").glob("*/*.pcap")) + [
        ROOT / "fixtures/capture/en10mb.pcap",
        ROOT / "fixtures/capture/ipv4-fragments.pcap",
    ]:
        segments = tcp_segments(frames_of(path.read_bytes()))
        if not segments:
            continue
        tag = path.relative_to(ROOT / "fixtures").as_posix().replace("/", "_")
        seeds[f"{tag}.head"] = flows_seed(segments)
        # All the incarnations of the busiest tuple: port reuse, TIME_WAIT, collisions.
        by_tuple = {}
        for seg in segments:
            key = tuple(sorted([seg[1], seg[2]]))
            by_tuple.setdefault(key, []).append(seg)
        busiest = max(by_tuple.values(), key=len)
        seeds[f"{tag}.tuple"] = flows_seed(busiest)
        seeds[f"{tag}.tuple.tiny-cap"] = flows_seed(busiest, max_flows=0, timing=0x2E)
    # A hand-written collision: handshake, data, the server closes first, the client reuses
    # the tuple 1 s later with a higher sequence number (accepted by Linux).
    c, s = ((b"c", 40000)), ((b"s", 80))
    base_ts = 1_700_000_000 * 10**9
    script = [
        (0, c, s, 1000, 0, 0x02), (100, s, c, 5000, 1001, 0x12), (200, c, s, 1001, 5001, 0x10),
        (300, c, s, 1001, 5001, 0x18), (400, s, c, 5001, 1101, 0x11), (500, c, s, 1101, 5002, 0x11),
        (600, s, c, 5002, 1102, 0x10), (1_000_600, c, s, 9000, 0, 0x02), (1_000_700, s, c, 70000, 9001, 0x12),
        (1_000_800, c, s, 9001, 70001, 0x10),
    ]
    segments = [
        (base_ts + us * 1000, src, dst, seq, ack, flags, 100 if flags == 0x18 else 0, (us, us))
        for us, src, dst, seq, ack, flags in script
    ]
    seeds["handmade-collision"] = flows_seed(segments)
    return seeds


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz/seeds"
    captures = capture_seeds()
    counts = {}
    for target, seeds in (
        ("reader", captures),
        ("end_to_end", captures),
        ("decode", decode_seeds()),
        ("flows", flows_seeds()),
    ):
        target_dir = out / target
        if target_dir.exists():
            for old in target_dir.iterdir():
                old.unlink()
        seen = set()
        for name, data in list(seeds.items()):
            digest = hashlib.sha1(data).digest()
            if digest in seen:
                del seeds[name]
                continue
            seen.add(digest)
            write(target_dir, name, data)
        counts[target] = (len(seeds), sum(len(d) for d in seeds.values()))
    for target, (n, size) in counts.items():
        print(f"seeds {target}: {n} files, {size // 1024} KiB")


if __name__ == "__main__":
    main()
