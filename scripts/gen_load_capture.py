#!/usr/bin/env python3
"""Deterministic generator of a large load-balancer capture with TIME_WAIT collisions.

Models a load balancer (LB) talking HTTP/1.1 with `Connection: close` to backend
servers through SNAT, captured at the balancer's backend side (see
/work/shared/DESIGN.md sections 1-4).  The server closes first, so the *server*
holds each 4-tuple in TIME_WAIT for --time-wait seconds after it sends the ACK
of the balancer's FIN.  The balancer cycles through its source-port pool
sequentially per SNAT IP (skipping ports whose previous connection it has not
finished), picks servers round-robin, and eventually reuses a 4-tuple that the
server still holds in TIME_WAIT.  The server then behaves like Linux
(tcp_timewait_state_process):

* accepted: the SYN carries a newer TSval (one balancer, monotonic per-SNAT-IP
  1000 Hz clock) or an ISN after the old rcv_nxt -> SYN-ACK with
  ISN = old snd_nxt + 65535 + 2, then the normal exchange;
* rejected_recovered (--reject-fraction of collisions): the SYN comes from a
  clock that looks older (another origin host behind the SNAT: TSval older than
  the old ts_recent and ISN before the old rcv_nxt) -> bare ACK with the old
  numbers (seq = old snd_nxt, ack = old rcv_nxt) -> client RST (seq = that ack,
  no ACK flag; kills the TIME_WAIT) -> SYN retransmitted with the same ISN at
  first SYN + 1 s (initial RTO) -> fresh SYN-ACK -> normal exchange;
* unanswered_recovered (--unanswered-fraction of collisions): like rejected,
  but the first SYN gets no answer (rate-limited ACK); the retransmission at
  +1 s gets the bare ACK, the client RSTs, and the next retransmission at +3 s
  (RTO backoff 1 s, 2 s) is accepted.

Output: classic pcap, little-endian, microsecond magic (d4 c3 b2 a1 on disk),
LINKTYPE_ETHERNET, snaplen 96 (longer frames are written with caplen 96 and
their real origlen; the IP total length is always the real length).  Checksums
are left zero.  Same arguments -> same bytes.  An output name ending in .gz is
gzip-compressed; `-o -` writes to stdout.

Truth (stderr summary, and --truth FILE.json):
  collisions counts SYNs arriving at the server while it still holds the tuple
  in TIME_WAIT, by outcome; port reuse interval = time of the new SYN minus the
  time of the last packet of the previous incarnation on the same 4-tuple
  (both capture timestamps).

Only the Python standard library is used.  Speed: ~5 M packets in well under
two minutes on one core (struct.pack_into into one big bytearray, a small heap
of in-flight packets, large writes).
"""

import argparse
import gzip
import heapq
import json
import random
import struct
import sys
import time

M32 = 0xFFFFFFFF
SNAPLEN = 96
FLUSH_AT = 8 << 20          # write out when the buffer holds this many bytes

# TCP flags
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# Packet layouts (header kinds)
K32 = 0   # TCP header 32 bytes: NOP NOP TS            (66-byte frame + payload)
K40 = 1   # TCP header 40 bytes: MSS SACKOK TS NOP WS  (74-byte frame; SYN, SYN-ACK)
K20 = 2   # TCP header 20 bytes, no options            (54-byte frame; RST)

# Frame layout, big-endian, from the Ethernet header on:
#   16s  = Ethernet (14) + IP version/IHL + TOS
#   H H  = IP total length, IP id
#   6s   = flags/fragment (DF), TTL 64, protocol 6, checksum 0
#   I I  = source, destination address
#   H H I I = ports, seq, ack
#   H H  = data offset << 12 | flags, window
#   4x   = TCP checksum 0, urgent pointer 0
HDR = "!16sHH6sIIHHIIHH4x"
P32 = struct.Struct(HDR + "III").pack_into        # + 0x0101080A, TSval, TSecr
P40 = struct.Struct(HDR + "IIIII").pack_into      # + MSS, SACKOK+TS kind, TSval, TSecr, NOP WS
P20 = struct.Struct(HDR).pack_into
REC = struct.Struct("<IIII").pack_into            # pcap record header
IPC = bytes([0x40, 0x00, 64, 6, 0, 0])            # DF, TTL 64, TCP, checksum 0

OPT_TS = 0x0101080A                               # NOP NOP kind 8 len 10
OPT_MSS = 0x020405B4                              # MSS 1460
OPT_SACK_TS = 0x0402080A                          # SACK-permitted, TS kind/len
OPT_WS = 0x01030307                               # NOP, window scale 7

CLIENT_SYN_WIN = 64240
SERVER_SYN_WIN = 65160
CLIENT_WIN = 502                                  # scaled by 2^7
SERVER_WIN = 509

REQUEST_LINES = [
    b"GET /api/v1/items/%d HTTP/1.1\r\nHost: backend.internal\r\nUser-Agent: lb-health\r\n",
    b"GET /static/app.%d.js HTTP/1.1\r\nHost: backend.internal\r\nAccept: */*\r\n",
    b"POST /api/v1/orders/%d HTTP/1.1\r\nHost: backend.internal\r\nContent-Length: 0\r\n",
    b"GET /healthz?n=%d HTTP/1.1\r\nHost: backend.internal\r\nConnection: close\r\n",
]
RESPONSE_LINES = [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nConnection: close\r\n",
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n",
    b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\nServer: nginx\r\n",
]


def ip4(a, b, c, d):
    return (a << 24) | (b << 16) | (c << 8) | d


def ip_str(x):
    return "%d.%d.%d.%d" % (x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255)


def port_range(s):
    try:
        lo, hi = (int(v) for v in s.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected LO-HI, e.g. 32768-60999")
    if not (1 <= lo <= hi <= 65535):
        raise argparse.ArgumentTypeError("port range must satisfy 1 <= LO <= HI <= 65535")
    return lo, hi


def fraction(s):
    v = float(s)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("fraction must be within 0..1")
    return v


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Generate a deterministic LB->backend pcap with TIME_WAIT collisions.")
    ap.add_argument("--connections", type=int, default=500000,
                    help="number of connections (default 500000)")
    ap.add_argument("--snat-ips", type=int, default=1,
                    help="SNAT addresses 10.0.0.1, 10.0.0.2, ... (default 1)")
    ap.add_argument("--servers", type=int, default=2,
                    help="backend servers 10.1.0.10, 10.1.0.11, ... port 80 (default 2)")
    ap.add_argument("--rate", type=float, default=1500.0,
                    help="new connections per second overall, Poisson arrivals (default 1500)")
    ap.add_argument("--port-range", type=port_range, default=(32768, 60999),
                    help="balancer source port range LO-HI (default 32768-60999)")
    ap.add_argument("--start", type=float, default=1764000000.0,
                    help="capture start, epoch seconds (default 1764000000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--reject-fraction", type=fraction, default=0.3,
                    help="fraction of colliding SYNs from an older-looking clock that the "
                         "server rejects with a bare ACK (default 0.3)")
    ap.add_argument("--unanswered-fraction", type=fraction, default=0.01,
                    help="fraction of colliding SYNs that get no answer at first "
                         "(rate-limited ACK) (default 0.01)")
    ap.add_argument("--time-wait", type=float, default=60.0,
                    help="server TIME_WAIT length in seconds (default 60, Linux)")
    ap.add_argument("-o", "--output", required=True,
                    help="output pcap file ('-' = stdout; a .gz name is gzip-compressed)")
    ap.add_argument("--truth", metavar="FILE.json",
                    help="also write the summary (what the generator did) as JSON")
    a = ap.parse_args(argv)
    if a.connections < 0:
        ap.error("--connections must be >= 0")
    if not 1 <= a.snat_ips <= 254 * 254:
        ap.error("--snat-ips must be in 1..64516")
    if not 1 <= a.servers <= 254 * 200:
        ap.error("--servers must be in 1..50800")
    if a.rate <= 0:
        ap.error("--rate must be > 0")
    if a.reject_fraction + a.unanswered_fraction > 1.0:
        ap.error("--reject-fraction + --unanswered-fraction must not exceed 1")
    if a.time_wait < 0:
        ap.error("--time-wait must be >= 0")
    return a


def generate(a, out):
    """Write the capture to the binary stream `out`; return the truth dict."""
    rng = random.Random(a.seed)
    rnd = rng.random
    bits = rng.getrandbits
    heappush = heapq.heappush
    heappop = heapq.heappop

    n_snat = a.snat_ips
    n_srv = a.servers
    lo, hi = a.port_range
    n_ports = hi - lo + 1
    tw_us = int(round(a.time_wait * 1e6))
    start_us = int(round(a.start * 1e6))
    mean_gap_us = 1e6 / a.rate
    rej_frac = a.reject_fraction
    una_frac = a.unanswered_fraction

    # Addresses, MACs, per-host clocks.
    snat_ip = [ip4(10, 0, i // 254, i % 254 + 1) for i in range(n_snat)]
    srv_ip = [ip4(10, 1, i // 200, i % 200 + 10) for i in range(n_srv)]
    lb_mac = bytes.fromhex("020000000001")
    srv_mac = [bytes.fromhex("02000001") + struct.pack("!H", i + 1) for i in range(n_srv)]
    ip_head = b"\x08\x00\x45\x00"                       # EtherType IPv4, IHL 5, TOS 0
    eth_c2s = [srv_mac[i] + lb_mac + ip_head for i in range(n_srv)]
    eth_s2c = [lb_mac + srv_mac[i] + ip_head for i in range(n_srv)]
    snat_ts_base = [bits(32) for _ in range(n_snat)]     # per-SNAT-IP 1000 Hz TSval clock
    # Linux per-(saddr, daddr) timestamp offset on the server side.
    srv_ts_base = [bits(32) for _ in range(n_snat * n_srv)]
    isn_secret = bits(32)

    next_pi = [0] * n_snat                              # next port index per SNAT IP
    busy = [[-1] * n_ports for _ in range(n_snat)]       # port in use until (µs, capture)
    # 4-tuple state of the last incarnation:
    # key -> (end_t, tw_start_t, server snd_nxt, server rcv_nxt, ts_recent)
    state = {}

    heap = []
    seqno = 0

    buf = bytearray(FLUSH_AT + 4096)
    mv = memoryview(buf)
    write = out.write

    # pcap global header: magic, v2.4, thiszone 0, sigfigs 0, snaplen, LINKTYPE_ETHERNET
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1)
    write(hdr)
    total_bytes = len(hdr)
    off = 0
    n_pkts = 0
    first_ts = None
    last_ts = None

    req_tmpl = [((r % (1000 + 37 * i)) + b"X" * 64)[:SNAPLEN - 66]
                for i, r in enumerate(REQUEST_LINES)]
    resp_tmpl = [(l + b"X" * 64)[:SNAPLEN - 66] for l in RESPONSE_LINES]

    n_coll = {"accepted": 0, "rejected_recovered": 0, "unanswered_recovered": 0}
    n_reuse = 0
    n_reuse_no_tw = 0
    min_reuse = None
    max_reuse = None
    n_port_waits = 0
    n_syn = 0
    n_retrans_syn = 0
    n_bare_ack = 0
    n_rst = 0

    t = 0.0              # arrival clock (float µs, relative to start)
    n_conn = a.connections
    for ci in range(n_conn + 1):
        # the extra last iteration only drains the heap
        t0 = int(t) if ci < n_conn else 1 << 62
        t += rng.expovariate(1.0) * mean_gap_us

        # ---- emit everything that happens before this connection starts
        while heap and heap[0][0] <= t0:
            (pt, _, k, eth, cap, orig, ipid, src, dst, sp, dp,
             seq, ack, fl, win, tv, te, pl) = heappop(heap)
            s, us = divmod(start_us + pt, 1000000)
            REC(buf, off, s, us, cap, orig)
            o = off + 16
            if k == K32:
                P32(buf, o, eth, orig - 14, ipid, IPC, src, dst, sp, dp, seq, ack,
                    0x8000 | fl, win, OPT_TS, tv, te)
                if pl is not None:
                    buf[o + 66:o + SNAPLEN] = pl
            elif k == K40:
                P40(buf, o, eth, 60, ipid, IPC, src, dst, sp, dp, seq, ack,
                    0xA000 | fl, win, OPT_MSS, OPT_SACK_TS, tv, te, OPT_WS)
            else:
                P20(buf, o, eth, 40, ipid, IPC, src, dst, sp, dp, seq, ack,
                    0x5000 | fl, win)
            off = o + cap
            n_pkts += 1
            if off >= FLUSH_AT:
                write(mv[:off])
                total_bytes += off
                off = 0
            if first_ts is None:
                first_ts = pt
            last_ts = pt
        if ci == n_conn:
            break

        # ---- choose SNAT IP, source port, server
        si = ci % n_snat
        sv = ci % n_srv
        bl = busy[si]
        pi = next_pi[si]
        for _ in range(n_ports):
            if bl[pi] < t0:
                break
            pi += 1
            if pi == n_ports:
                pi = 0
        else:
            # whole pool in use: wait for the earliest port to free up
            n_port_waits += 1
            pi = min(range(n_ports), key=bl.__getitem__)
            t0 = bl[pi] + 1     # later than the drain limit: file order still holds
        next_pi[si] = pi + 1 if pi + 1 < n_ports else 0
        sport = lo + pi
        cip = snat_ip[si]
        sip = srv_ip[sv]
        ec = eth_c2s[sv]
        es = eth_s2c[sv]
        key = ((si << 16) | sport) * n_srv + sv
        stsb = srv_ts_base[si * n_srv + sv]

        rtt = 170 + int(rnd() * 80)           # ~0.2 ms on the link
        half = rtt >> 1

        # ---- collision check against the last incarnation on this 4-tuple
        outcome = None
        prev = state.get(key)
        if prev is not None:
            p_end, p_tw, o_snd, o_rcv, o_ts = prev
            ri = t0 - p_end
            n_reuse += 1
            if min_reuse is None or ri < min_reuse:
                min_reuse = ri
            if max_reuse is None or ri > max_reuse:
                max_reuse = ri
            if t0 + half < p_tw + tw_us:
                u = rnd()
                if u < una_frac:
                    outcome = 2
                elif u < una_frac + rej_frac:
                    outcome = 1
                else:
                    outcome = 0
            else:
                n_reuse_no_tw += 1

        if outcome == 1 or outcome == 2:
            # another origin host behind the SNAT: older TSval, ISN before old rcv_nxt
            ts0 = (o_ts - 1 - int(rnd() * 0x3FFFFFFF)) & M32
            ctsb = (ts0 - t0 // 1000) & M32
            cisn = (o_rcv - 1 - int(rnd() * 0x3FFFFFFF)) & M32
        else:
            ctsb = snat_ts_base[si]
            # Linux-like ISN: keyed hash of the tuple + clock ticking 15.625 M/s
            cisn = (((key * 2654435761) ^ isn_secret) + (((start_us + t0) * 125) >> 3)) & M32
        if outcome is not None:
            # what Linux decides (tcp_timewait_state_process)
            tsv = (ctsb + t0 // 1000) & M32
            d_ts = (o_ts - tsv) & M32
            paws_reject = 0 < d_ts < 0x80000000
            seq_after = 0 < ((cisn - o_rcv) & M32) < 0x80000000
            newer_ts = d_ts >= 0x80000000
            accept = (not paws_reject) and (seq_after or newer_ts)
            if accept:
                outcome = 0
            elif outcome == 0:
                outcome = 1       # cannot happen with a monotonic clock; keep truth honest
        cid = bits(16)
        sid = bits(16)

        tsyn = t0
        if outcome == 0:
            n_coll["accepted"] += 1
            sisn = (o_snd + 65535 + 2) & M32
        else:
            sisn = bits(32)
            if outcome is not None:
                if outcome == 2:
                    n_coll["unanswered_recovered"] += 1
                    # first SYN, no answer
                    heappush(heap, (tsyn, seqno, K40, ec, 74, 74, cid, cip, sip, sport, 80,
                                    cisn, 0, SYN, CLIENT_SYN_WIN,
                                    (ctsb + tsyn // 1000) & M32, 0, None))
                    seqno += 1
                    cid = (cid + 1) & 0xFFFF
                    n_syn += 1
                    tsyn += 1000000
                    n_retrans_syn += 1
                    retrans_at = tsyn + 2000000      # RTO backoff: 1 s, then 2 s
                else:
                    n_coll["rejected_recovered"] += 1
                    retrans_at = tsyn + 1000000
                # SYN -> bare ACK with the old numbers -> RST(seq = that ack)
                tv0 = (ctsb + tsyn // 1000) & M32
                tb = tsyn + rtt
                tr = tb + 8 + int(rnd() * 30)
                heappush(heap, (tsyn, seqno, K40, ec, 74, 74, cid, cip, sip, sport, 80,
                                cisn, 0, SYN, CLIENT_SYN_WIN, tv0, 0, None))
                heappush(heap, (tb, seqno + 1, K32, es, 66, 66, 0, sip, cip, 80, sport,
                                o_snd, o_rcv, ACK, SERVER_WIN,
                                (stsb + (tb - half) // 1000) & M32, o_ts, None))
                heappush(heap, (tr, seqno + 2, K20, ec, 54, 54, 0, cip, sip, sport, 80,
                                o_rcv, 0, RST, 0, 0, 0, None))
                seqno += 3
                cid = (cid + 1) & 0xFFFF
                n_syn += 1
                n_bare_ack += 1
                n_rst += 1
                tsyn = retrans_at
                n_retrans_syn += 1

        # ---- the normal exchange, starting with the SYN that gets a SYN-ACK
        req = 100 + int(rnd() * 41)               # ~120 bytes
        resp = 200 + int(rnd() * 1201)            # 200..1400 bytes
        think = 1000 + int(rnd() * 4000)          # 1..5 ms
        rq_pl = req_tmpl[ci & 3]
        rs_pl = resp_tmpl[ci & 3]

        t1 = tsyn + rtt                            # SYN-ACK
        t2 = t1 + 5 + int(rnd() * 25)              # ACK
        t3 = t2 + 2 + int(rnd() * 18)              # request
        t4 = t3 + rtt                              # server ACK of the request
        t5 = t4 + think                            # response
        t6 = t5 + 3 + int(rnd() * 27)              # server FIN
        t7 = t6 + 10 + int(rnd() * 40)             # client ACK
        t8 = t7 + 20 + int(rnd() * 280)            # client FIN
        t9 = t8 + rtt                              # server ACK -> server TIME_WAIT

        c1 = (cisn + 1) & M32
        c2 = (c1 + req) & M32
        c3 = (c2 + 1) & M32
        s1 = (sisn + 1) & M32
        s2 = (s1 + resp) & M32
        s3 = (s2 + 1) & M32
        ct0 = (ctsb + tsyn // 1000) & M32
        ct3 = (ctsb + t3 // 1000) & M32
        ct8 = (ctsb + t8 // 1000) & M32
        st1 = (stsb + (t1 - half) // 1000) & M32
        st6 = (stsb + (t6 - half) // 1000) & M32
        n = seqno
        heappush(heap, (tsyn, n, K40, ec, 74, 74, cid, cip, sip, sport, 80,
                        cisn, 0, SYN, CLIENT_SYN_WIN, ct0, 0, None))
        heappush(heap, (t1, n + 1, K40, es, 74, 74, 0, sip, cip, 80, sport,
                        sisn, c1, SYN | ACK, SERVER_SYN_WIN, st1, ct0, None))
        heappush(heap, (t2, n + 2, K32, ec, 66, 66, (cid + 1) & 0xFFFF, cip, sip, sport, 80,
                        c1, s1, ACK, CLIENT_WIN, (ctsb + t2 // 1000) & M32, st1, None))
        heappush(heap, (t3, n + 3, K32, ec, SNAPLEN, 66 + req, (cid + 2) & 0xFFFF, cip, sip,
                        sport, 80, c1, s1, PSH | ACK, CLIENT_WIN, ct3, st1, rq_pl))
        heappush(heap, (t4, n + 4, K32, es, 66, 66, sid, sip, cip, 80, sport,
                        s1, c2, ACK, SERVER_WIN, (stsb + (t4 - half) // 1000) & M32, ct3, None))
        heappush(heap, (t5, n + 5, K32, es, SNAPLEN, 66 + resp, (sid + 1) & 0xFFFF, sip, cip,
                        80, sport, s1, c2, PSH | ACK, SERVER_WIN,
                        (stsb + (t5 - half) // 1000) & M32, ct3, rs_pl))
        heappush(heap, (t6, n + 6, K32, es, 66, 66, (sid + 2) & 0xFFFF, sip, cip, 80, sport,
                        s2, c2, FIN | ACK, SERVER_WIN, st6, ct3, None))
        heappush(heap, (t7, n + 7, K32, ec, 66, 66, (cid + 3) & 0xFFFF, cip, sip, sport, 80,
                        c2, s3, ACK, CLIENT_WIN, (ctsb + t7 // 1000) & M32, st6, None))
        heappush(heap, (t8, n + 8, K32, ec, 66, 66, (cid + 4) & 0xFFFF, cip, sip, sport, 80,
                        c2, s3, FIN | ACK, CLIENT_WIN, ct8, st6, None))
        heappush(heap, (t9, n + 9, K32, es, 66, 66, (sid + 3) & 0xFFFF, sip, cip, 80, sport,
                        s3, c3, ACK, SERVER_WIN, (stsb + (t9 - half) // 1000) & M32, ct8, None))
        seqno = n + 10
        n_syn += 1

        state[key] = (t9, t9 - half, s3, c3, ct8)
        bl[pi] = t9

    if off:
        write(mv[:off])
        total_bytes += off

    coll_total = sum(n_coll.values())
    return {
        "packets": n_pkts,
        "bytes": total_bytes,
        "connections": a.connections,
        "collisions": dict(n_coll, total=coll_total),
        "port_reuses": n_reuse,
        "port_reuses_after_time_wait": n_reuse_no_tw,
        "min_port_reuse_interval_s": None if min_reuse is None else min_reuse / 1e6,
        "max_port_reuse_interval_s": None if max_reuse is None else max_reuse / 1e6,
        "port_reuse_interval_definition":
            "new SYN time minus last packet time of the previous incarnation on the same "
            "4-tuple (capture timestamps)",
        "port_pool_waits": n_port_waits,
        "syn_packets": n_syn,
        "retransmitted_syns": n_retrans_syn,
        "bare_acks_old_numbers": n_bare_ack,
        "client_rsts": n_rst,
        "first_timestamp": None if first_ts is None else (start_us + first_ts) / 1e6,
        "last_timestamp": None if last_ts is None else (start_us + last_ts) / 1e6,
        "parameters": {
            "connections": a.connections,
            "snat_ips": [ip_str(x) for x in snat_ip] if n_snat <= 16 else n_snat,
            "servers": [ip_str(x) + ":80" for x in srv_ip] if n_srv <= 16 else n_srv,
            "rate": a.rate,
            "port_range": "%d-%d" % (lo, hi),
            "start": a.start,
            "seed": a.seed,
            "reject_fraction": a.reject_fraction,
            "unanswered_fraction": a.unanswered_fraction,
            "time_wait_s": a.time_wait,
            "snaplen": SNAPLEN,
        },
    }


def main(argv=None):
    a = parse_args(argv)
    t_start = time.monotonic()
    if a.output == "-":
        truth = generate(a, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    elif a.output.endswith(".gz"):
        with gzip.open(a.output, "wb", compresslevel=1) as f:
            truth = generate(a, f)
    else:
        with open(a.output, "wb", buffering=0) as f:
            truth = generate(a, f)
    wall = time.monotonic() - t_start

    c = truth["collisions"]
    mri = truth["min_port_reuse_interval_s"]
    sys.stderr.write(
        "packets %d, bytes %d, connections %d, %.1f s generated in %.1f s\n"
        "collisions %d: accepted %d, rejected_recovered %d, unanswered_recovered %d\n"
        "port reuses %d (%d after TIME_WAIT ended), min port reuse interval %s\n" % (
            truth["packets"], truth["bytes"], truth["connections"],
            (truth["last_timestamp"] or 0) - (truth["first_timestamp"] or 0), wall,
            c["total"], c["accepted"], c["rejected_recovered"], c["unanswered_recovered"],
            truth["port_reuses"], truth["port_reuses_after_time_wait"],
            "n/a" if mri is None else "%.6f s" % mri))
    if a.truth:
        with open(a.truth, "w") as f:
            json.dump(truth, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
