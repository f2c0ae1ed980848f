"""Shared helpers for the twsleuth kernel lab (python3 stdlib only).

Nothing here reads a capture file: the truth comes from the programs, from
/proc/<pid>/net/tcp of a process inside a namespace, from TCP_INFO and from
the kernel's tracepoints.
"""
import errno
import json
import socket
import struct
import time

TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
    5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT",
    9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
}
USER_HZ = 100  # /proc/net/tcp reports timers in clock_t (USER_HZ) ticks


def _hexaddr(h):
    """'0201F50A:1F90' (host byte order address on little-endian) -> ('10.245.1.2', 8080)."""
    a, p = h.split(":")
    ip = socket.inet_ntoa(struct.pack("<I", int(a, 16)))
    return ip, int(p, 16)


def read_tcp_table(path):
    """Parse /proc/<pid>/net/tcp. Returns a list of dicts."""
    out = []
    with open(path, "r") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) < 6:
                continue
            lip, lport = _hexaddr(parts[1])
            rip, rport = _hexaddr(parts[2])
            st = int(parts[3], 16)
            tr, when = parts[5].split(":")
            out.append({
                "local": (lip, lport), "remote": (rip, rport),
                "state": st, "timer": int(tr, 16), "when": int(when, 16),
            })
    return out


def time_wait_set(path):
    """{(lip, lport, rip, rport): seconds of TIME_WAIT left} from /proc/<pid>/net/tcp."""
    res = {}
    for e in read_tcp_table(path):
        if e["state"] == 6:
            res[e["local"] + e["remote"]] = e["when"] / USER_HZ
    return res


def tcp_info(sock):
    """Selected struct tcp_info fields (linux/tcp.h)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    state, ca_state, retransmits, probes, backoff, options = struct.unpack_from("6B", raw, 0)
    (total_retrans,) = struct.unpack_from("I", raw, 100)
    (rtt_us,) = struct.unpack_from("I", raw, 68)
    return {
        "state": state, "retransmits": retransmits, "backoff": backoff,
        "timestamps": bool(options & 1), "total_retrans": total_retrans,
        "rtt_us": rtt_us,
    }


TCP_TIMESTAMP = 24   # linux/tcp.h: getsockopt gives the TSval the socket would send now


def tcp_tsval(sock):
    """(TSval now, CLOCK_MONOTONIC ms now, offset) for a connected socket.

    Linux: TCP_TIMESTAMP = tcp_clock_ts() + tp->tsoffset, tcp_clock_ts() being CLOCK_MONOTONIC in ms
    (without usec timestamps), so offset = TSval - monotonic ms (mod 2^32, +-1 ms: the kernel TCP clock and CLOCK_MONOTONIC as read from user space).
    """
    m0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    v = sock.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP) & 0xFFFFFFFF
    mono_ms = int(m0 * 1000)   # the kernel reads its clock just after (+-1 ms)
    return v, mono_ms, (v - mono_ms) % (1 << 32)


def read_netstat(path, keys):
    """Selected counters ("TcpExt.PAWSTimewait", ...) from /proc/<pid>/net/netstat or .../snmp."""
    vals = {}
    with open(path) as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[0::2], lines[1::2]):
        pfx = names.split(":", 1)[0]
        for k, v in zip(names.split()[1:], values.split()[1:]):
            vals["%s.%s" % (pfx, k)] = int(v)
    return {k: vals.get(k) for k in keys}


def errname(exc):
    if isinstance(exc, socket.timeout):
        return "TIMEOUT"
    en = getattr(exc, "errno", None)
    if en is not None and en in errno.errorcode:
        return errno.errorcode[en]
    return type(exc).__name__


def mono_to_real_offset():
    """CLOCK_REALTIME - CLOCK_MONOTONIC in seconds, sampled tightly."""
    best = None
    for _ in range(5):
        a = time.clock_gettime(time.CLOCK_MONOTONIC)
        r = time.clock_gettime(time.CLOCK_REALTIME)
        b = time.clock_gettime(time.CLOCK_MONOTONIC)
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) / 2)
    return best[1]


class JsonlWriter:
    def __init__(self, path):
        self.f = open(path, "w", buffering=1)

    def write(self, obj):
        self.f.write(json.dumps(obj, sort_keys=True) + "\n")

    def close(self):
        self.f.close()


def read_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out
