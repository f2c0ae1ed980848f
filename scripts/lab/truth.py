#!/usr/bin/env python3
"""Build fixtures/lab/<scenario>/truth.json from what the programs and the
kernel recorded during one lab run. It never opens a capture's packets (the
pcap header is read only to name the link type).
"""
import argparse
import bisect
import json
import os
import re
import statistics
import struct

import tracefs_events as tr
from twlab import read_jsonl

TW_LEN = 60.0      # TCP_TIMEWAIT_LEN
TW_SLACK = 3.0     # timer-wheel rounding: an older TIME_WAIT may still be alive up to here

DESCRIPTIONS = {
    "accepted": "Server closes first (it closes right after its answer) and holds TIME_WAIT; the client "
                "binds each socket to the next port of a 20-port pool (SO_REUSEADDR, like SNAT cycling) "
                "and comes back to a port every few seconds. Timestamps on: every colliding SYN carries "
                "a newer TSval, the server's TIME_WAIT accepts it (SYN-ACK ISN = old snd_nxt + 65537).",
    "rejected": "tcp_timestamps=0 in both namespaces. The client uploads several MB, the server answers "
                "and closes first, the client reconnects at once from the same port. The new ISN is "
                "below the old rcv_nxt, so the server's TIME_WAIT answers the SYN with a bare ACK "
                "carrying the old numbers, the client's kernel sends RST (which kills the TIME_WAIT) "
                "and retransmits the SYN, which is accepted.",
    "haproxy": "Client -> HAProxy (mode http, one backend source IP, ip_local_port_range narrowed in the "
               "balancer's namespace) -> HTTP/1.0 server that closes first. The balancer's ports come "
               "round within seconds and its SYNs land on tuples the server holds in TIME_WAIT: the seed "
               "incident in miniature.",
    "haproxy-busy": "As haproxy, with four end users at once (each a request every 20 ms, started 5 ms "
                    "apart): requests overlap at HAProxy, so that pairing its two legs by timing is "
                    "sometimes ambiguous; HAProxy's log gives the true pairing.",
    "clean": "Client closes first (it holds TIME_WAIT), wide default ephemeral range, no port reuse: "
             "no collision at the server.",
    "paws": "Server closes first and holds TIME_WAIT; the client cycles a 20-port pool (SO_REUSEADDR bind, a "
            "connection every 0.25 s, each port back every 5 s), timestamps on. Before attempt 40 the client "
            "namespace's net.ipv4.tcp_timestamps goes from 1 (a random TSval offset per 4-tuple) to 2 (no "
            "offset): on the tuples whose offset was positive the client's TSval jumps back, the next SYN is "
            "older than the server's TIME_WAIT ts_recent and is rejected by PAWS (bare ACK with the old "
            "numbers, client RST kills the TIME_WAIT, SYN retried ~10 ms later and accepted); on the others "
            "it jumps forward and the SYN is accepted as usual.",
    "lb-exhaustion": "Client -> HAProxy (mode tcp, backend source 10.245.4.1, ip_local_port_range of 20 ports "
                     "and tcp_tw_reuse=0 in the balancer's namespace) -> HTTP/1.1 keep-alive server that never "
                     "closes first. The client closes after each answer, HAProxy relays its FIN, so the "
                     "BALANCER closes first on the backend leg and holds the TIME_WAIT (the server holds none). "
                     "40 requests/s: after 20 connections every port is in the balancer's own TIME_WAIT and "
                     "connect() fails with EADDRNOTAVAIL (HAProxy: 'no free ports', 3 retries, termination "
                     "state SC); the client gets its connection closed without an answer. No SYN reaches the "
                     "server for those: port exhaustion on the balancer, no collision on the wire.",
    "client-reuse": "Client closes first, tcp_tw_reuse=1 and a narrow ip_local_port_range in the client "
                    "namespace, timestamps on: the client's connect() reuses its OWN TIME_WAIT tuples. "
                    "The server holds nothing: client-side reuse, not a collision.",
}

NSTAT_KEYS = [
    "TcpExtTW", "TcpExtTWRecycled", "TcpExtTWKilled", "TcpExtPAWSTimewait", "TcpExtPAWSActive",
    "TcpExtPAWSEstab", "TcpExtTCPTimeWaitOverflow", "TcpExtTCPACKSkippedTimeWait",
    "TcpExtTCPACKSkippedPAWS", "TcpOutRsts", "TcpExtTCPSynRetrans", "TcpPassiveOpens",
    "TcpActiveOpens", "TcpAttemptFails", "TcpEstabResets", "TcpExtTCPAbortOnData",
    "TcpExtTCPAbortOnClose", "TcpExtListenDrops", "TcpExtListenOverflows", "TcpExtTCPChallengeACK",
    "TcpExtTCPTimeouts",
]

LINKTYPES = {0: "NULL", 1: "EN10MB", 101: "RAW", 108: "LOOP", 113: "LINUX_SLL", 228: "IPV4",
             276: "LINUX_SLL2"}


def read_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if "=" in line:
                    k, v = line.split("=", 1)
                    out[k.strip()] = v.strip()
    return out


def pcap_linktype(path):
    with open(path, "rb") as f:
        h = f.read(24)
    if len(h) < 24:
        return None
    magic_le = struct.unpack("<I", h[:4])[0]
    endian = "<" if magic_le in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    lt = struct.unpack(endian + "I", h[20:24])[0] & 0xFFFF
    return LINKTYPES.get(lt, str(lt))


def nstat_delta(work, ns):
    def load(p):
        try:
            with open(p) as f:
                return json.load(f).get("kernel", {})
        except (FileNotFoundError, ValueError):
            return None
    b = load(os.path.join(work, "nstat.%s.before.json" % ns))
    a = load(os.path.join(work, "nstat.%s.after.json" % ns))
    if a is None or b is None:
        return None
    d = {k: a.get(k, 0) - b.get(k, 0) for k in a}
    out = {k: d.get(k, 0) for k in NSTAT_KEYS if k in a}
    for k, v in sorted(d.items()):
        if v and (k.startswith("Tcp") or "TW" in k or "TimeWait" in k) and k not in out:
            out[k] = v
    return out


# ---------------------------------------------------------------- trace model
class TraceModel:
    """TIME_WAIT intervals and per-tuple events per namespace, from tracepoints."""

    def __init__(self, events):
        self.events = events
        self.tw = {}            # (ns, tuple) -> sorted list of TIME_WAIT start times
        self.rst_sent = {}      # (ns, tuple) -> list of (t, state, reason)
        self.rst_rcvd = {}      # (ns, tuple) -> list of t
        self.synretrans = {}    # (ns, tuple) -> list of t (retransmit in SYN_SENT)
        self.states = {}        # (ns, tuple) -> list of (t, old, new)
        for e in events:
            if e["ev"] == "tcp_receive_reset":
                self.rst_rcvd.setdefault((e["ns"], tr.tuple_key(e)), []).append(e["t"])
        for e in events:
            k = (e["ns"], tr.tuple_key(e))
            if e["ev"] == "inet_sock_set_state":
                self.states.setdefault(k, []).append((e["t"], e["old"], e["new"]))
                # the active closer enters TIME_WAIT as FIN_WAIT2 (or CLOSING) -> CLOSE;
                # a reset received on that tuple just then means no TIME_WAIT.
                if e["new"] == "CLOSE" and e["old"] in ("FIN_WAIT2", "CLOSING") and not any(
                        abs(x - e["t"]) < 0.001 for x in self.rst_rcvd.get(k, [])):
                    self.tw.setdefault(k, []).append(e["t"])
            elif e["ev"] == "tcp_send_reset":
                self.rst_sent.setdefault(k, []).append((e["t"], e["state"], e["reason"]))
            elif e["ev"] == "tcp_retransmit_skb" and e.get("state") == "SYN_SENT":
                self.synretrans.setdefault(k, []).append(e["t"])

    def tw_state_at(self, ns, tup, t, peer_ns=None):
        """(held, age_s, edge) for tuple tup (local side first) in ns at time t.

        A TIME_WAIT ends early when the peer's RST hits it (peer tcp_send_reset on the
        reversed tuple) or when a new connection takes the tuple over (SYN_RECV on it).
        """
        starts = self.tw.get((ns, tup), [])
        i = bisect.bisect_left(starts, t) - 1
        if i < 0:
            return False, None, False
        t0 = starts[i]
        age = t - t0
        if age > TW_LEN + TW_SLACK:
            return False, age, False
        rev = (tup[2], tup[3], tup[0], tup[1])
        if peer_ns:
            for (tr_, st, _r) in self.rst_sent.get((peer_ns, rev), []):
                if t0 < tr_ < t and st == "SYN_SENT":
                    return False, age, False
        for (ts, old, new) in self.states.get((ns, tup), []):
            if t0 < ts < t and old in ("LISTEN", "CLOSE") and new in ("SYN_RECV", "SYN_SENT"):
                return False, age, False
        return True, age, age > TW_LEN

    def window(self, d, ns, tup, t0, t1):
        return [x for x in d.get((ns, tup), []) if t0 <= (x[0] if isinstance(x, tuple) else x) <= t1]


def trace_summary(model, server_ip, server_port, ns_names):
    s = {"events": {}, "server_time_wait_entries": [], "resets_sent": [], "resets_received": [],
         "syn_retransmits": []}
    for e in model.events:
        key = "%s/%s" % (e["ns"], e["ev"])
        s["events"][key] = s["events"].get(key, 0) + 1
    for (ns, tup), starts in sorted(model.tw.items(), key=lambda x: x[1][0]):
        if tup[0] == server_ip and tup[1] == server_port:
            for t in starts:
                s["server_time_wait_entries"].append(
                    {"t": round(t, 6), "local": "%s:%d" % tup[:2], "remote": "%s:%d" % tup[2:]})
    s["server_time_wait_entries"].sort(key=lambda x: x["t"])
    for (ns, tup), lst in model.rst_sent.items():
        for (t, st, reason) in lst:
            s["resets_sent"].append({"t": round(t, 6), "ns": ns, "local": "%s:%d" % tup[:2],
                                     "remote": "%s:%d" % tup[2:], "state": st, "reason": reason})
    for (ns, tup), lst in model.rst_rcvd.items():
        for t in lst:
            s["resets_received"].append({"t": round(t, 6), "ns": ns, "local": "%s:%d" % tup[:2],
                                         "remote": "%s:%d" % tup[2:]})
    for (ns, tup), lst in model.synretrans.items():
        for t in lst:
            s["syn_retransmits"].append({"t": round(t, 6), "ns": ns, "local": "%s:%d" % tup[:2],
                                         "remote": "%s:%d" % tup[2:]})
    for k in ("resets_sent", "resets_received", "syn_retransmits"):
        s[k].sort(key=lambda x: x["t"])
    tw_counts = {}
    for (ns, _tup), starts in model.tw.items():
        tw_counts[ns] = tw_counts.get(ns, 0) + len(starts)
    s["time_wait_entries_by_ns"] = tw_counts
    return s


def classify(att, model, cli_ns, srv_ns, have_trace):
    """Outcome of one attempt as the client and its kernel saw it."""
    if att.get("error") and att.get("error_phase", "connect") == "connect":
        return "reset" if att["error"] == "ECONNREFUSED" else "failed"
    tup = (att["src_ip"], att["src_port"], att["dst_ip"], att["dst_port"])
    if have_trace:
        t0, t1 = att["start"] - 0.001, att["start"] + att["connect_ms"] / 1000 + 0.005
        rsts = [x for x in model.rst_sent.get((cli_ns, tup), []) if t0 <= x[0] <= t1 and x[1] == "SYN_SENT"]
        rtx = [x for x in model.synretrans.get((cli_ns, tup), []) if t0 <= x <= t1]
        att["client_rst_during_connect"] = len(rsts)
        att["client_syn_retrans_during_connect"] = len(rtx)
        if rsts:
            return "rejected_recovered"
        if rtx:
            return "unanswered"
        return "accepted"
    # no tracefs: TCP_INFO's retransmission count and the connect() time
    if att.get("syn_retrans", 0) > 0:
        return "rejected_recovered" if att["connect_ms"] < 900 else "unanswered"
    return "accepted"


def s32(x):
    x %= 1 << 32
    return x - (1 << 32) if x >= 1 << 31 else x


def paws_reasons(atts, expected, checks, truth):
    """Per attempt: the server namespace's PAWSTimewait delta around its connect() (client.py
    --server-mib), the SYN's TSval and the tuple's previous ts_recent (client.py --tsval, from
    getsockopt TCP_TIMESTAMP, not from the capture); reason "paws" for a rejected collision the
    server's counter attributes to PAWS."""
    prev_close = {}
    n_paws = n_other = mism = older_not_rejected = 0
    for att in sorted(atts, key=lambda x: x["i"]):
        if "ts_switch" in att:
            truth["ts_switch"] = dict(att["ts_switch"], before_attempt=att["i"])
        d = att.get("server_mib_delta") or {}
        att["server_paws_timewait"] = d.get("PAWSTimewait")
        port = att.get("src_port")
        prev = prev_close.get(port)
        att["prev_ts_recent"] = prev
        older = None
        if prev is not None and att.get("syn_tsval") is not None:
            older = s32(att["syn_tsval"] - prev) < 0
        att["syn_tsval_older_than_prev"] = older
        if att.get("outcome") in ("rejected_recovered", "unanswered", "failed") and att.get("server_tw_before_connect"):
            if (att["server_paws_timewait"] or 0) > 0:
                att["reason"] = "paws"
                n_paws += 1
            else:
                att["reason"] = "sequence"
                n_other += 1
            if (att["reason"] == "paws") != bool(older):
                mism += 1
        elif older and att.get("server_tw_before_connect"):
            older_not_rejected += 1
        if att.get("close_tsval") is not None:
            prev_close[port] = att["close_tsval"]
    expected["paws_rejections"] = n_paws
    checks["rejections_not_paws"] = n_other
    checks["paws_reason_vs_tsval_comparison_mismatches"] = mism
    checks["older_tsval_collisions_not_rejected"] = older_not_rejected
    checks["sum_per_attempt_server_PAWSTimewait"] = sum(a.get("server_paws_timewait") or 0 for a in atts)
    offs = {}
    sw = truth.get("ts_switch", {}).get("before_attempt")
    for a in atts:
        if a.get("ts_offset") is not None and (sw is None or a["i"] < sw):
            offs[a["src_port"]] = a["ts_offset"]
    truth["ts_offsets_before_switch"] = {
        "note": "TSval offset per source port (getsockopt TCP_TIMESTAMP - CLOCK_MONOTONIC ms, +-1: 4294967295 is -1) while "
                "tcp_timestamps=1; 0 after the switch to 2. A positive offset (as signed 32-bit) means the "
                "switch moves that tuple's TSval back in time",
        "by_port": {str(k): v for k, v in sorted(offs.items())},
        "positive": sum(1 for v in offs.values() if 0 < s32(v)),
        "negative": sum(1 for v in offs.values() if s32(v) < 0)}


CONNECT_EXIT = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[\d+\]\s+\S+\s+(?P<ts>\d+\.\d+):\s+"
                          r"sys_connect -> (?P<ret>0x[0-9a-f]+)")
ERRNO = {0: "OK", -115: "EINPROGRESS", -99: "EADDRNOTAVAIL", -98: "EADDRINUSE", -111: "ECONNREFUSED",
         -110: "ETIMEDOUT", -11: "EAGAIN"}


def connect_exits(path, mono_offset, pid):
    """(unix time, ret) of every connect() the process returned from (syscalls:sys_exit_connect)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            m = CONNECT_EXIT.match(line)
            if not m or int(m.group("pid")) != pid:
                continue
            ret = int(m.group("ret"), 16)
            if ret >= 1 << 63:
                ret -= 1 << 64
            out.append((float(m.group("ts")) + mono_offset, ret))
    out.sort()
    return out


def parse_haproxy_tcplog(path):
    """HAProxy mode-tcp log lines (lb-exhaustion's log-format) and the count of 'no free ports' lines."""
    reqs, nofree = [], 0
    if not os.path.exists(path):
        return reqs, nofree
    with open(path, errors="replace") as f:
        for line in f:
            if "no free ports" in line:
                nofree += 1
                continue
            m = HALOG.search(line)
            if not m:
                continue
            kv = dict(tok.split("=", 1) for tok in m.group(1).split() if "=" in tok)

            def num(k):
                try:
                    return int(kv.get(k, "-"))
                except ValueError:
                    return None
            reqs.append({"accept": float(kv["ts"]), "client_port": num("cp"),
                         "backend_src_port": num("bp"), "Tw": num("Tw"), "Tc": num("Tc"), "Tt": num("Tt"),
                         "retries": num("rc"), "term": kv.get("tsc"), "bytes_down": num("B"),
                         "bytes_up": num("U")})
    return reqs, nofree


def lb_exhaustion(truth, expected, checks, meta, model, events, W, have_trace, out_path):
    """Truth of the balancer's port exhaustion: backend connect() attempts from the balancer kernel's
    tracepoints (sock:inet_sock_set_state, syscalls:sys_exit_connect of the HAProxy process), its
    TIME_WAIT sockets from `ss` every 100 ms, HAProxy's log. Nothing from the captures."""
    lb_ns, srv_ns = meta["lb_ns"], meta["server_ns"]
    lb_ip = meta["lb_back_ip"]
    server_ip, server_port = meta["server_ip"], int(meta["server_port"])
    srv = (server_ip, server_port)
    reqs, nofree = parse_haproxy_tcplog(os.path.join(W, "haproxy.log"))
    _r2, nofree_err = parse_haproxy_tcplog(os.path.join(W, "haproxy.err"))
    hpid = int(meta.get("haproxy_pid", 0) or 0)
    exits = connect_exits(os.path.join(W, "trace.txt"), float(meta.get("trace_mono_offset", 0)), hpid) \
        if have_trace and meta.get("connect_trace") == "1" else []
    rng = truth["namespaces"]["lb"]["sysctls"].get("net.ipv4.ip_local_port_range")
    lo, hi = (int(x) for x in rng.split()) if rng else (None, None)

    # backend connect() attempts: CLOSE -> SYN_SENT on the balancer's backend address, paired with the
    # socket's next transition (SYN_SENT -> ESTABLISHED, or -> CLOSE with sport 0 when no port was free)
    atts, pending = [], {}
    for e in events:
        if e["ev"] != "inet_sock_set_state" or e["ns"] != lb_ns or e["laddr"] != lb_ip \
                or (e["raddr"], e["rport"]) != srv:
            continue
        if e["new"] == "SYN_SENT":
            pending[e["sk"]] = e["t"]
        elif e["old"] == "SYN_SENT" and e["sk"] in pending:
            t0 = pending.pop(e["sk"])
            ok = e["new"] == "ESTABLISHED"
            att = {"src_ip": lb_ip, "src_port": e["lport"] or None, "dst_ip": server_ip,
                   "dst_port": server_port, "start": t0, "end": e["t"],
                   "error": None if ok else "FAILED_%s" % e["new"]}
            if ok:
                att["connect_ms"] = round((e["t"] - t0) * 1000, 3)
            atts.append(att)
    for sk, t0 in pending.items():
        atts.append({"src_ip": lb_ip, "src_port": None, "dst_ip": server_ip, "dst_port": server_port,
                     "start": t0, "error": "NO_ANSWER_BY_END"})
    atts.sort(key=lambda x: x["start"])
    # errno of each failed attempt: the HAProxy process's connect() return just after it
    fail_exits = [x for x in exits if x[1] not in (0, -115)]
    used = set()
    et = [x[0] for x in fail_exits]
    for att in atts:
        if att["error"] and att.get("end"):
            j = bisect.bisect_left(et, att["end"])
            if j < len(et) and j not in used and et[j] - att["end"] < 0.002:
                used.add(j)
                att["error"] = ERRNO.get(fail_exits[j][1], str(fail_exits[j][1]))
    # HAProxy log join: success by backend source port; failures to the SC line of the stream they belong
    # to (accepted just before; HAProxy tries 1 + rc times)
    by_port = {}
    for i, r in enumerate(reqs):
        r["i"] = i
        if r["backend_src_port"] is not None:
            by_port.setdefault(r["backend_src_port"], []).append(r)
    sc_lines = sorted((r for r in reqs if r["term"] and r["term"].startswith("SC")), key=lambda r: r["accept"])
    sc_t = [r["accept"] for r in sc_lines]
    for att in atts:
        att.pop("end", None)
        if att["error"] is None:
            c = [r for r in by_port.get(att["src_port"], []) if abs(r["accept"] - att["start"]) < 1.0]
            if c:
                r = min(c, key=lambda r: abs(r["accept"] - att["start"]))
                att["haproxy"] = {"log_line": r["i"], "accept": r["accept"], "bp": r["backend_src_port"],
                                  "Tc": r["Tc"], "Tt": r["Tt"], "term": r["term"]}
        else:
            # %Ts.%ms has ms resolution: the stream was accepted at most ~1 ms before (rounded down)
            j = bisect.bisect_right(sc_t, att["start"] + 0.001) - 1
            if j >= 0 and att["start"] - sc_t[j] < 1.0:
                r = sc_lines[j]
                r["_n"] = r.get("_n", 0) + 1
                att["haproxy"] = {"log_line": r["i"]}
    join_bad = sum(1 for r in sc_lines if r.get("_n", 0) != (r["retries"] or 0) + 1)
    for r in reqs:
        r.pop("_n", None)

    # TIME_WAIT of each backend tuple: who entered it (kernel state transitions)
    n_ok = n_fail = n_enoaddr = coll = reuse = 0
    for i, att in enumerate(atts):
        att["i"] = i
        if att["error"] is None:
            n_ok += 1
            tup_s = (server_ip, server_port, lb_ip, att["src_port"])
            held, age, _edge = model.tw_state_at(srv_ns, tup_s, att["start"], peer_ns=lb_ns)
            heldc, _a, _e = model.tw_state_at(lb_ns, (lb_ip, att["src_port"], server_ip, server_port),
                                              att["start"], peer_ns=srv_ns)
            att["server_tw_before_connect"] = held
            att["client_tw_before_connect"] = heldc
            att["outcome"] = "no_collision"
            if held:
                coll += 1
                att["outcome"] = "collision"
            if heldc:
                reuse += 1
        else:
            n_fail += 1
            att["outcome"] = "connect_failed"
            if att["error"] == "EADDRNOTAVAIL":
                n_enoaddr += 1
    backend_tw = {}
    for (ns, tup), starts in model.tw.items():
        if tup[0] == lb_ip and (tup[2], tup[3]) == srv:
            backend_tw.setdefault(ns, 0)
            backend_tw[ns] += len(starts)
        elif tup[0] == server_ip and tup[1] == server_port:
            backend_tw.setdefault(ns, 0)
            backend_tw[ns] += len(starts)
    snaps = read_jsonl(os.path.join(W, "lbwatch.jsonl"))
    tw_max = max((s["n"] for s in snaps), default=None)
    t_full = next((s["t"] for s in snaps if lo is not None and s["n"] >= hi - lo + 1), None)
    first_fail = next((a["start"] for a in atts if a["error"]), None)

    cli = read_jsonl(os.path.join(W, "client.jsonl"))
    fe_conns = sum(1 for x in cli if not (x.get("error") and x.get("error_phase", "connect") == "connect"))
    statuses = {}
    for x in cli:
        k = x.get("status") or x.get("error") or "?"
        statuses[k] = statuses.get(k, 0) + 1

    # frontend leg: the client program looked its tuple up in HAProxy's namespace (/proc/<haproxy-pid>/net/tcp)
    # and in its own before each connect()
    fe_coll = sum(1 for x in cli if x.get("server_tw_before_connect"))
    fe_reuse = sum(1 for x in cli if x.get("client_tw_before_connect") and not x.get("server_tw_before_connect"))
    checks["backend_collisions"] = coll
    checks["frontend_collisions_balancer_tw_before_connect"] = fe_coll
    checks["frontend_client_side_reuse"] = fe_reuse
    checks["frontend_lookups"] = sum(1 for x in cli if x.get("server_tw_before_connect") is not None)
    expected["connections"] = n_ok
    expected["collisions"] = coll + fe_coll
    expected["client_side_reuse"] = reuse + fe_reuse
    expected["connect_failures"] = n_enoaddr
    expected["balancer_time_wait_max"] = tw_max
    expected["ports_in_pool"] = (hi - lo + 1) if lo is not None else None
    expected["connections_by_capture"] = {"lb-backend.pcap": n_ok, "lb-frontend.pcap": fe_conns}

    truth["method"] = (
        "backend connect() attempts from the balancer namespace's sock:inet_sock_set_state (CLOSE->SYN_SENT "
        "on 10.245.4.1 towards the server, paired with the socket's next transition: ESTABLISHED = a "
        "connection, CLOSE with sport 0 = connect() found no free port); the errno of each failure from "
        "syscalls:sys_exit_connect of the HAProxy process (ret -99 = EADDRNOTAVAIL) within 2 ms; "
        "connect_failures = failed attempts with EADDRNOTAVAIL, cross-checked with HAProxy's 'Connect() "
        "failed for backend be: no free ports.' lines and its log (SC lines, 1 + rc tries each). "
        "TIME_WAIT: entries from FIN_WAIT2|CLOSING->CLOSE per namespace (who closed first); "
        "balancer_time_wait_max = the most TIME_WAIT sockets on 10.245.4.1 in `ss -Htan state time-wait src "
        "10.245.4.1` run in the balancer namespace every 100 ms. collisions / client_side_reuse: backend leg "
        "from the TIME_WAIT entries (server / balancer held the tuple before connect()), frontend leg from the "
        "client program's lookups of /proc/<haproxy-pid>/net/tcp and /proc/self/net/tcp before each connect() "
        "(both legs counted; 0 by construction: distinct client ports, no backend port comes back within 60 s); "
        "frontend connections from the client program's log")
    checks["connect_exits_by_errno"] = {}
    for _t, ret in exits:
        k = ERRNO.get(ret, str(ret))
        checks["connect_exits_by_errno"][k] = checks["connect_exits_by_errno"].get(k, 0) + 1
    checks["failed_attempts_without_errno_match"] = sum(1 for a in atts if a["error"] and not a["error"].startswith("E"))
    checks["haproxy_no_free_ports_log_lines"] = nofree
    checks["haproxy_no_free_ports_stderr_alerts"] = nofree_err
    checks["haproxy_SC_lines"] = len(sc_lines)
    checks["haproxy_SC_tries_sum"] = sum((r["retries"] or 0) + 1 for r in sc_lines)
    checks["haproxy_SC_lines_with_unmatched_tries"] = join_bad
    checks["haproxy_log_lines"] = len(reqs)
    checks["time_wait_entries_backend_by_ns"] = backend_tw
    checks["balancer_tw_snapshots"] = {"count": len(snaps), "period_s": 0.1,
                                       "first_full_pool": t_full, "first_connect_failure": first_fail}
    checks["client_answers"] = statuses
    checks["server_connections_logged"] = len(read_jsonl(os.path.join(W, "server.jsonl")))
    truth["attempts"] = atts
    truth["haproxy_log"] = {
        "format": "tws5 ts=%Ts.%ms ci=%ci cp=%cp bi=%bi bp=%bp si=%si sp=%sp Tw=%Tw Tc=%Tc Tt=%Tt rc=%rc "
                  "tsc=%ts B=%B U=%U (mode tcp)",
        "requests": len(reqs),
        "note": "one line per frontend connection; a failed attempt's 'haproxy.log_line' is the index of its "
                "stream's line (the stream tries 1 + rc times)",
        "lines": [{k: v for k, v in r.items() if v is not None and k != "i"} for r in reqs],
    }
    truth["client_requests"] = {"sent": len(cli), "frontend_connections": fe_conns, "answers": statuses}
    truth["balancer_tw_samples"] = [{"t": s["t"], "n": s["n"]} for s in snaps]


def port_summary(atts):
    by_port = {}
    for a in atts:
        if a.get("src_port") is not None and a.get("start") is not None:
            by_port.setdefault(a["src_port"], []).append(a["start"])
    gaps = []
    for ts in by_port.values():
        ts.sort()
        gaps += [b - a for a, b in zip(ts, ts[1:])]
    ports = sorted(by_port)
    return {
        "distinct_src_ports": len(ports),
        "even": sum(1 for p in ports if p % 2 == 0), "odd": sum(1 for p in ports if p % 2),
        "min": ports[0] if ports else None, "max": ports[-1] if ports else None,
        "reuses": len(gaps),
        "reuse_interval_s": {"min": round(min(gaps), 3), "median": round(statistics.median(gaps), 3),
                             "max": round(max(gaps), 3)} if gaps else None,
    }


HALOG = re.compile(r"tws5 (.*)$")


def parse_haproxy_log(path):
    reqs = []
    if not os.path.exists(path):
        return reqs
    with open(path, errors="replace") as f:
        for line in f:
            m = HALOG.search(line)
            if not m:
                continue
            kv = dict(tok.split("=", 1) for tok in m.group(1).split() if "=" in tok)

            def num(k):
                v = kv.get(k, "-")
                try:
                    return int(v)
                except ValueError:
                    return None
            reqs.append({
                "accept": float(kv["ts"]) if kv.get("ts", "-") != "-" else None,
                "client_ip": kv.get("ci"), "client_port": num("cp"), "backend_src_ip": kv.get("bi"), "backend_src_port": num("bp"),
                "server": "%s:%s" % (kv.get("si"), kv.get("sp")),
                "TR": num("TR"), "Tw": num("Tw"), "Tc": num("Tc"), "Tr": num("Tr"), "Ta": num("Ta"),
                "status": num("st"), "retries": kv.get("rc"), "term": kv.get("tsc"),
            })
    return reqs


def _round(o):
    if isinstance(o, float):
        return round(o, 6)
    if isinstance(o, dict):
        return {k: _round(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_round(v) for v in o]
    return o


def compact_json(obj, ind=0):
    """Indented JSON, but each element of a list of objects on one line (diff-friendly, small)."""
    obj = _round(obj)
    pad, pad1 = " " * ind, " " * (ind + 1)
    if isinstance(obj, dict) and obj:
        items = ["%s%s: %s" % (pad1, json.dumps(k), compact_json(v, ind + 1)) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        return "[\n" + ",\n".join(pad1 + json.dumps(x) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    W = a.work
    meta = read_kv(os.path.join(W, "meta.txt"))
    sc = a.scenario
    cli_ns, srv_ns, lb_ns = meta["client_ns"], meta["server_ns"], meta.get("lb_ns")
    server_ip, server_port = meta["server_ip"], int(meta["server_port"])
    ns_of_ip = {meta["client_ip"]: cli_ns, server_ip: srv_ns}
    if lb_ns:
        ns_of_ip[meta["lb_front_ip"]] = lb_ns
        ns_of_ip[meta["lb_back_ip"]] = lb_ns
    have_trace = meta.get("tracefs") == "1" and os.path.exists(os.path.join(W, "trace.txt"))
    events = tr.parse([os.path.join(W, "trace.txt"), os.path.join(W, "trace_state.txt")], float(meta["trace_mono_offset"]), ns_of_ip) if have_trace else []
    model = TraceModel(events)

    truth = {
        "scenario": sc,
        "description": DESCRIPTIONS[sc],
        "kernel": meta.get("kernel"),
        "hz": int(meta["hz"]) if meta.get("hz") else None,
        "tracefs": have_trace,
        "namespaces": {},
        "captures": [],
        "capture_start": float(meta["capture_start"]),
        "capture_end": float(meta["capture_end"]),
        "clock": "unix seconds, CLOCK_REALTIME (the clock tcpdump stamps packets with); "
                 "tracepoints recorded with trace_clock=mono and shifted by the measured "
                 "REALTIME-MONOTONIC offset",
    }
    roles = [("client", cli_ns), ("server", srv_ns)] + ([("lb", lb_ns)] if lb_ns else [])
    for role, ns in roles:
        sysctls = read_kv(os.path.join(W, "sysctl.%s.txt" % ns))
        addrs = {"client": [meta["client_ip"]], "server": [server_ip],
                 "lb": [meta.get("lb_front_ip"), meta.get("lb_back_ip")]}[role]
        truth["namespaces"][role] = {"name": ns, "addresses": addrs,
                                     "sysctls_set": read_kv(os.path.join(W, "sysctl_set.%s.txt" % ns)),
                                     "sysctls": sysctls,
                                     "nstat_delta": nstat_delta(W, ns)}
    truth["server"] = "%s:%d" % (server_ip, server_port)
    if lb_ns:
        truth["lb_frontend"] = "%s:%s" % (meta["lb_front_ip"], meta["lb_front_port"])
    for line in open(os.path.join(W, "captures.txt")):
        f, vantage, iface = line.split()
        info = read_kv(os.path.join(W, "tcpdump.%s.info" % vantage))
        path = os.path.join(os.path.dirname(a.out), f)
        truth["captures"].append({
            "file": f, "vantage": vantage, "interface": iface, "link_type": pcap_linktype(path),
            "snaplen": int(meta.get("snaplen", 0)) or None, "bytes": os.path.getsize(path),
            "tcpdump_packets_captured": int(info["captured"]) if info.get("captured") else None,
            "tcpdump_packets_dropped_by_kernel": int(info["dropped"]) if info.get("dropped") else None,
        })

    expected = {"connections": 0, "collisions": 0,
                "collisions_by_outcome": {"accepted": 0, "rejected_recovered": 0, "reset": 0,
                                          "unanswered": 0, "failed": 0},
                "client_side_reuse": 0}
    checks = {}

    if sc == "lb-exhaustion":
        lb_exhaustion(truth, expected, checks, meta, model, events, W, have_trace, a.out)
    elif sc not in ("haproxy", "haproxy-busy"):
        atts = read_jsonl(os.path.join(W, "client.jsonl"))
        mism = []
        for att in atts:
            att.setdefault("server_tw_before_connect", None)
            if att.get("src_port") is None:
                att["outcome"] = "failed"
                continue
            ok = not (att.get("error") and att.get("error_phase", "connect") == "connect")
            if ok:
                expected["connections"] += 1
            tup_c = (att["src_ip"], att["src_port"], att["dst_ip"], att["dst_port"])
            tup_s = (att["dst_ip"], att["dst_port"], att["src_ip"], att["src_port"])
            if have_trace:
                held, age, edge = model.tw_state_at(srv_ns, tup_s, att["start"], peer_ns=cli_ns)
                att["trace_server_tw_before_connect"] = held
                att["server_tw_age_s"] = round(age, 3) if held else None
                if held != bool(att["server_tw_before_connect"]):
                    mism.append(att["i"])
            if att["server_tw_before_connect"]:
                expected["collisions"] += 1
                att["outcome"] = classify(att, model, cli_ns, srv_ns, have_trace)
                expected["collisions_by_outcome"][att["outcome"]] += 1
            else:
                att["outcome"] = "no_collision" if ok else classify(att, model, cli_ns, srv_ns, have_trace)
                if att.get("client_tw_before_connect") and ok:
                    expected["client_side_reuse"] += 1
        truth["method"] = (
            "per attempt, the client program snapshots /proc/<server-pid>/net/tcp (server namespace) and "
            "/proc/self/net/tcp (client namespace) right before connect() and looks its tuple up in both "
            "afterwards; outcome of a collision from the client kernel's tracepoints inside the connect() "
            "window (tcp_send_reset in SYN_SENT = rejected_recovered; SYN retransmit without RST = "
            "unanswered; neither = accepted; connect() error = failed / ECONNREFUSED = reset), "
            "cross-checked against TIME_WAIT entries rebuilt from sock:inet_sock_set_state "
            "(FIN_WAIT2|CLOSING -> CLOSE on the server's side) and against nstat deltas"
            if have_trace else
            "per attempt /proc/<pid>/net/tcp lookups right before connect() in both namespaces; outcome from "
            "TCP_INFO total_retrans and connect() duration (tracefs unavailable), cross-checked with nstat")
        checks["lookup_vs_tracepoints_mismatches"] = mism if have_trace else None
        if any("server_mib_delta" in x for x in atts):
            paws_reasons(atts, expected, checks, truth)
        truth["attempts"] = atts
        truth["server_log"] = {"connections": len(read_jsonl(os.path.join(W, "server.jsonl")))}
    else:
        reqs = parse_haproxy_log(os.path.join(W, "haproxy.log"))
        lb_ip, srv = meta["lb_back_ip"], (server_ip, server_port)
        # backend connection attempts from the balancer's kernel: CLOSE -> SYN_SENT on its backend address
        # (CLOSE->SYN_SENT is traced before the port is chosen: sport=0; pair it with the
        # next transition of the same socket, which carries the port)
        atts, pending = [], {}
        for e in model.events:
            if e["ev"] != "inet_sock_set_state" or e["ns"] != lb_ns or e["laddr"] != lb_ip \
                    or (e["raddr"], e["rport"]) != srv:
                continue
            if e["new"] == "SYN_SENT":
                pending[e["sk"]] = e["t"]
            elif e["old"] == "SYN_SENT" and e["sk"] in pending:
                t0 = pending.pop(e["sk"])
                atts.append({"src_ip": lb_ip, "src_port": e["lport"], "dst_ip": server_ip,
                             "dst_port": server_port, "start": t0,
                             "connect_ms": round((e["t"] - t0) * 1000, 3),
                             "error": None if e["new"] == "ESTABLISHED" else "FAILED_%s" % e["new"]})
        for sk, t0 in pending.items():
            atts.append({"src_ip": lb_ip, "src_port": None, "dst_ip": server_ip, "dst_port": server_port,
                         "start": t0, "error": "NO_ANSWER_BY_END"})
        if not have_trace:
            # fallback: one attempt per HAProxy log line (accept time has ms resolution)
            for r in reqs:
                if r["backend_src_port"] is None:
                    continue
                atts.append({"src_ip": lb_ip, "src_port": r["backend_src_port"], "dst_ip": server_ip,
                             "dst_port": server_port, "start": r["accept"] + (r["TR"] or 0) / 1000,
                             "connect_ms": r["Tc"], "error": None if (r["Tc"] or 0) >= 0 else "FAILED"})
        atts.sort(key=lambda x: x["start"])
        # join HAProxy's log (backend source port, Tc, status)
        by_port = {}
        for r in reqs:
            by_port.setdefault(r["backend_src_port"], []).append(r)
        for att in atts:
            cands = [r for r in by_port.get(att["src_port"], [])
                     if r["accept"] is not None and r["accept"] - 0.05 <= att["start"] <= r["accept"] + 1 + (r["Ta"] or 0) / 1000
                     and "_used" not in r]
            if cands:
                r = min(cands, key=lambda r: abs(att["start"] - r["accept"]))
                r["_used"] = True
                att["haproxy"] = {"accept": r["accept"], "bp": r["backend_src_port"], "Tc": r["Tc"],
                                  "Ta": r["Ta"], "status": r["status"], "term": r["term"]}
                r["_attempt"] = att
        unjoined = [r for r in reqs if "_used" not in r]
        for r in reqs:
            r.pop("_used", None)
        snaps = read_jsonl(os.path.join(W, "twwatch.jsonl"))
        # a snapshot counts only if its read of /proc finished before the connect()
        snap_t = [s.get("t_end", s["t"]) for s in snaps]
        agree = disagree_missing = 0
        for i, att in enumerate(atts):
            att["i"] = i
            tup_s = (server_ip, server_port, att["src_ip"], att["src_port"])
            held, age, edge = model.tw_state_at(srv_ns, tup_s, att["start"], peer_ns=lb_ns)
            j = bisect.bisect_right(snap_t, att["start"]) - 1
            in_snap = j >= 0 and att["src_port"] in set(snaps[j]["tw_ports"])
            if not have_trace:
                held, age, edge = in_snap, None, False
            att["server_tw_before_connect"] = held
            att["server_tw_age_s"] = round(age, 3) if held and age is not None else None
            att["server_tw_edge"] = edge
            heldc, _agec, _ = model.tw_state_at(lb_ns, (att["src_ip"], att["src_port"], server_ip, server_port),
                                                att["start"], peer_ns=srv_ns)
            att["client_tw_before_connect"] = heldc
            # cross-check: last snapshot of the server's TIME_WAIT set before connect()
            att["snapshot_server_tw"] = in_snap
            if held:
                if in_snap:
                    agree += 1
                else:
                    disagree_missing += 1
            ok = att["error"] is None and "connect_ms" in att
            if ok:
                expected["connections"] += 1
            if held:
                expected["collisions"] += 1
                if not ok:
                    att["outcome"] = "failed"
                else:
                    tup = (att["src_ip"], att["src_port"], server_ip, server_port)
                    if not have_trace:
                        # Tc: this kernel retries ~10 ms after the RST; an unanswered SYN waits >= 1 s
                        att["outcome"] = ("accepted" if att["connect_ms"] < 5 else
                                          "rejected_recovered" if att["connect_ms"] < 900 else "unanswered")
                        expected["collisions_by_outcome"][att["outcome"]] += 1
                        continue
                    t0, t1 = att["start"] - 0.0005, att["start"] + att["connect_ms"] / 1000 + 0.002
                    rsts = [x for x in model.rst_sent.get((lb_ns, tup), []) if t0 <= x[0] <= t1 and x[1] == "SYN_SENT"]
                    rtx = [x for x in model.synretrans.get((lb_ns, tup), []) if t0 <= x <= t1]
                    att["client_rst_during_connect"] = len(rsts)
                    att["client_syn_retrans_during_connect"] = len(rtx)
                    att["outcome"] = "rejected_recovered" if rsts else ("unanswered" if rtx else "accepted")
                expected["collisions_by_outcome"][att["outcome"]] += 1
            else:
                att["outcome"] = "no_collision" if ok else "failed"
                if heldc and ok:
                    expected["client_side_reuse"] += 1
        # the true pairing of the proxy's legs: each HAProxy log line names the frontend connection
        # (%ci:%cp) and the backend connection opened for it (%bi:%bp); whether that backend connection
        # collided comes from the kernel's record joined above (the attempt), never from a capture
        legs = []
        for r in reqs:
            att = r.pop("_attempt", None)
            legs.append({"frontend": "%s:%s" % (r["client_ip"], r["client_port"]),
                         "backend": "%s:%s" % (r["backend_src_ip"], r["backend_src_port"]),
                         "accept": r["accept"],
                         "backend_start": att["start"] if att else None,
                         "backend_collided": bool(att and att["server_tw_before_connect"]),
                         "backend_outcome": att["outcome"] if att else None})
        if have_trace:
            # the frontend leg (lb-frontend.pcap) has TIME_WAIT collisions of its own: HAProxy closes
            # first there and the client's ephemeral ports come round; each from the kernel's record
            # (the balancer namespace's TIME_WAIT on 10.245.3.2:18000, the client's tracepoints)
            fe = {"connections": 0, "collisions": 0,
                  "collisions_by_outcome": {"accepted": 0, "rejected_recovered": 0, "reset": 0,
                                            "unanswered": 0, "failed": 0},
                  "client_side_reuse": 0}
            front = (meta["lb_front_ip"], int(meta["lb_front_port"]))
            fe_atts = []
            for x in read_jsonl(os.path.join(W, "client.jsonl")):
                if x.get("src_port") is None:
                    continue
                ok = not (x.get("error") and x.get("error_phase", "connect") == "connect")
                fe["connections"] += int(ok)
                held, age, _edge = model.tw_state_at(lb_ns, front + (x["src_ip"], x["src_port"]),
                                                     x["start"], peer_ns=cli_ns)
                outcome = "no_collision" if ok else "failed"
                if held:
                    outcome = classify(x, model, cli_ns, lb_ns, have_trace)
                    fe["collisions"] += 1
                    fe["collisions_by_outcome"][outcome] += 1
                elif ok and model.tw_state_at(cli_ns, (x["src_ip"], x["src_port"]) + front, x["start"],
                                              peer_ns=lb_ns)[0]:
                    fe["client_side_reuse"] += 1
                fe_atts.append({"src_port": x["src_port"], "start": x["start"], "outcome": outcome,
                                "server_tw_age_s": round(age, 3) if held else None})
            expected["by_capture"] = {"lb-frontend.pcap": fe}
            truth["frontend_attempts"] = fe_atts
        truth["legs"] = {
            "source": "HAProxy's log: one line per frontend connection with its client %ci:%cp and the "
                      "backend connection's source %bi:%bp; backend_collided and backend_outcome from the "
                      "kernel's record of that backend connection (the joined attempt)",
            "frontend_capture": "lb-frontend.pcap",
            "backend_capture": "lb-backend.pcap",
            "pairs": len(legs),
            "requests_whose_backend_collided": sum(1 for x in legs if x["backend_collided"]),
            "pairing": legs,
        }
        truth["method"] = (
            "no tracefs: one attempt per HAProxy log line (backend source port %bp, start = accept time "
            "%Ts.%ms + %TR, connect_ms = %Tc, 1 ms resolution); server_tw_before_connect = the port was in "
            "the server's TIME_WAIT set in the last 100 ms snapshot of /proc/<pid>/net/tcp whose read ended "
            "before that start (misses TIME_WAITs younger than ~100 ms and, with ms log resolution, may "
            "misplace an attempt against a snapshot taken in the same ms); outcome from Tc (< 5 ms accepted, "
            "< 900 ms rejected_recovered, else unanswered), cross-checked with nstat TcpOutRsts"
        ) if not have_trace else (
            "tracepoints: each backend connect() is the balancer-namespace sock:inet_sock_set_state "
            "CLOSE->SYN_SENT on the balancer's backend address (its time is the attempt's start; "
            "SYN_SENT->ESTABLISHED gives connect_ms); the server held the tuple in TIME_WAIT if the server "
            "namespace had a FIN_WAIT2|CLOSING->CLOSE transition on it earlier, not ended by a balancer RST "
            "in SYN_SENT, a newer connection on the tuple, or 60 s (+3 s timer slack, flagged server_tw_edge). "
            "Outcome from the balancer kernel's tcp_send_reset / tcp_retransmit_skb inside the connect window. "
            "HAProxy's log (bp, Tc, status) is joined by source port and time. Uncertainty: event times are "
            "kernel times (us), a TIME_WAIT started less than ~1 ms before a connect() could be misordered; "
            "cross-check: the server's TIME_WAIT set snapshotted every 100 ms from /proc/<pid>/net/tcp "
            "(snapshot_server_tw; a TIME_WAIT younger than the snapshot period is legitimately missing)")
        checks["collisions_confirmed_by_100ms_snapshots"] = agree
        checks["collisions_not_in_last_snapshot"] = disagree_missing
        st = {}
        for r in reqs:
            st[str(r["status"])] = st.get(str(r["status"]), 0) + 1
        checks["haproxy_status_counts"] = st
        tcs = [r["Tc"] for r in reqs if r["Tc"] is not None]
        if tcs:
            checks["haproxy_Tc_ms"] = {"min": min(tcs), "median": statistics.median(tcs), "max": max(tcs),
                                       "over_5ms": sum(1 for x in tcs if x > 5)}
        truth["attempts"] = atts
        truth["haproxy_log"] = {
            "format": "tws5 ts=%Ts.%ms ci=%ci cp=%cp bi=%bi bp=%bp si=%si sp=%sp TR=%TR Tw=%Tw Tc=%Tc "
                      "Tr=%Tr Ta=%Ta st=%ST rc=%rc tsc=%tsc B=%B",
            "requests": len(reqs),
            "joined_to_attempts": len(reqs) - len(unjoined),
            "note": "each attempt's 'haproxy' object is its log line (accept time, backend source port bp, "
                    "connect time Tc ms, total time Ta ms, HTTP status, termination state)",
            "unjoined_requests": unjoined,
        }
        truth["server_log"] = {"connections": len(read_jsonl(os.path.join(W, "server.jsonl")))}
        truth["client_requests"] = {
            "sent": len(read_jsonl(os.path.join(W, "client.jsonl"))),
            "errors": sum(1 for x in read_jsonl(os.path.join(W, "client.jsonl")) if x.get("error"))}
        if snaps:
            truth["server_tw_snapshots"] = {"count": len(snaps), "period_s": 0.1,
                                            "max_time_wait": max(len(s["tw_ports"]) for s in snaps)}

    truth["ports"] = port_summary(truth["attempts"])
    if have_trace:
        truth["trace"] = trace_summary(model, server_ip, server_port, [r[1] for r in roles])
        truth["trace"]["overruns"] = meta.get("trace_overruns")
    # counters that should agree with the outcomes
    cd = truth["namespaces"]["lb" if lb_ns else "client"]["nstat_delta"] or {}
    checks["connector_TcpOutRsts"] = cd.get("TcpOutRsts")
    checks["connector_TcpExtTCPSynRetrans"] = cd.get("TcpExtTCPSynRetrans")
    checks["connector_TcpExtTWRecycled"] = cd.get("TcpExtTWRecycled")
    sd = truth["namespaces"]["server"]["nstat_delta"] or {}
    checks["server_TcpExtPAWSTimewait"] = sd.get("TcpExtPAWSTimewait")
    checks["server_TcpPassiveOpens"] = sd.get("TcpPassiveOpens")
    truth["checks"] = checks
    truth["expected"] = expected
    with open(a.out, "w") as f:
        f.write(compact_json(truth))
        f.write("\n")
    print("%s: expected=%s" % (sc, json.dumps(expected)))


if __name__ == "__main__":
    main()
