#!/usr/bin/env python3
"""Measure what a one-direction capture still shows (DESIGN.md section 10).

  python3 scripts/lab/one_sided.py [--json] fixtures/lab/<scenario> ...

Reads one-sided-server.pcap (server -> client only) and one-sided-client.pcap
(client -> server only) made by scripts/make-one-sided.sh, with tshark, and
counts the section-10 facts per file. This is a check of the fixtures (the
numbers in fixtures/lab/one-sided.md come from it); the truth stays in
truth.json, made from the kernel, not from captures.

Server-only view (segments from server ip:port):
  syn_acks, tuples_reused (SYN-ACK on a tuple seen before)
  close order per incarnation: server FIN followed by a server pure ACK whose
    ack is one more (it acked a FIN after its own) = server closed first;
    server FIN that is its last segment and whose ack is one more than the ack
    before it = client closed first; else unknown
  takeover_isn: SYN-ACK on a reused tuple whose ISN = previous incarnation's
    FIN seq + 1 + 65537 (Linux accepted the SYN over its TIME_WAIT)
  tw_acks: after the close, a bare ACK repeating the last ACK's numbers
    (seq = old snd_nxt, ack = old rcv_nxt) on that tuple; split into those
    followed by a SYN-ACK with a new ISN within 50 ms (rejected, recovered)
    and those not (unknown)
  paws_visible: of those, how many have the SYN-ACK's TSecr (= the retried
    SYN's TSval) older than the bare ACK's TSecr (= old ts_recent)
Client-only view (segments to server ip:port):
  syns (distinct ISNs), syn_retransmissions (same ISN again), rsts
  close order: the client's FIN followed by a pure ACK adding +1 = client
    closed first; the client's FIN as its last segment = server closed first
  rejected_recovered: SYN, then RST with seq = previous incarnation's FIN + 1,
    then the same SYN (same ISN) again; cost = first SYN -> handshake ACK
  takeover_isn: handshake ACK with ack - 1 = previous incarnation's last
    ack + 65537 (the server's ISN, Linux TIME_WAIT takeover)
"""
import argparse
import json
import os
import statistics
import subprocess

FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
          "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.len",
          "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr"]
SYN, ACK, RST, FIN = 0x02, 0x10, 0x04, 0x01
M32 = 1 << 32
WITHIN = 0.050   # s: SYN-ACK after a TIME_WAIT's bare ACK (client retries ~10 ms later on 6.x)


def rows(pcap):
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "tcp", "-T", "fields"] + sum([["-e", f] for f in FIELDS], [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        p = line.split("\t")
        if len(p) < len(FIELDS) or not p[7]:
            continue
        yield {"n": int(p[0]), "t": float(p[1]), "src": (p[2], int(p[3])), "dst": (p[4], int(p[5])),
               "flags": int(p[6], 16), "seq": int(p[7]), "ack": int(p[8] or 0), "len": int(p[9] or 0),
               "tsval": int(p[10]) if p[10] else None, "tsecr": int(p[11]) if p[11] else None}


def s32(x):
    x %= M32
    return x - M32 if x >= M32 // 2 else x


def packets(pcap):
    out = subprocess.run(["capinfos", "-c", "-M", pcap], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "Number of packets" in line:
            return int(line.split(":")[1].strip())
    return None


def server_view(pcap):
    inc = {}        # tuple -> list of incarnations (dicts)
    res = {"frames_tcp": 0, "syn_acks": 0, "syn_ack_retransmissions": 0, "tuples": 0, "tuples_reused": 0,
           "close_server_first": 0, "close_client_first": 0, "close_unknown": 0,
           "takeover_isn": 0, "reused_other_isn": 0,
           "tw_acks": 0, "tw_acks_then_synack_50ms": 0, "tw_acks_unknown": 0,
           "tw_ack_to_synack_ms": [], "paws_visible": 0, "rsts": 0,
           "implied_syn_isn_after_old_rcv_nxt": 0, "implied_syn_isn_not_after_old_rcv_nxt": 0,
           "synack_tsecr_older_than_old_ts_recent": 0}
    for r in rows(pcap):
        res["frames_tcp"] += 1
        tup = (r["dst"], r["src"])         # (client, server)
        f = r["flags"]
        lst = inc.setdefault(tup, [])
        cur = lst[-1] if lst else None
        if f & RST:
            res["rsts"] += 1
            continue
        if f & SYN and f & ACK:
            if cur and cur["isn"] == r["seq"]:
                res["syn_ack_retransmissions"] += 1
                continue
            res["syn_acks"] += 1
            new = {"isn": r["seq"], "t": r["t"], "fin_seq": None, "fin_ack": None, "ack_before_fin": None,
                   "after_fin": [], "tsecr": r["tsecr"], "last_ack": r["ack"]}
            if cur is not None:
                # a bare ACK repeating the close's numbers shortly before this SYN-ACK?
                if cur.get("tw_ack_pending"):
                    ta = cur["tw_ack_pending"]
                    if r["t"] - ta["t"] <= WITHIN:
                        res["tw_acks_then_synack_50ms"] += 1
                        res["tw_ack_to_synack_ms"].append(round((r["t"] - ta["t"]) * 1000, 3))
                        if ta["tsecr"] is not None and r["tsecr"] is not None and s32(r["tsecr"] - ta["tsecr"]) < 0:
                            res["paws_visible"] += 1
                    else:
                        res["tw_acks_unknown"] += 1
                    cur["tw_ack_pending"] = None
                # the invisible SYN's ISN (= ack - 1) against the old rcv_nxt (the close's last ack)
                old_rcv_nxt = (cur.get("final") or (None, cur.get("fin_ack")))[1]
                if old_rcv_nxt is not None:
                    if s32((r["ack"] - 1) - old_rcv_nxt) > 0:
                        res["implied_syn_isn_after_old_rcv_nxt"] += 1
                    else:
                        res["implied_syn_isn_not_after_old_rcv_nxt"] += 1
                if cur.get("last_tsecr") is not None and r["tsecr"] is not None \
                        and s32(r["tsecr"] - cur["last_tsecr"]) < 0:
                    res["synack_tsecr_older_than_old_ts_recent"] += 1
                if cur["fin_seq"] is not None and r["seq"] == (cur["fin_seq"] + 1 + 65537) % M32:
                    res["takeover_isn"] += 1
                else:
                    res["reused_other_isn"] += 1
            lst.append(new)
            continue
        if cur is None:
            continue
        if r["tsecr"] is not None and not cur.get("tw_ack_pending"):
            cur["last_tsecr"] = r["tsecr"]
        if f & FIN and cur["fin_seq"] is None:
            cur["fin_seq"] = r["seq"] + r["len"]
            cur["fin_ack"] = r["ack"]
            # the ack value the server had sent before its last ack change
            cur["ack_before_fin"] = cur.get("prev_ack") if cur.get("last_ack") == r["ack"] else cur.get("last_ack")
            continue
        if cur["fin_seq"] is not None and f == ACK and r["len"] == 0:
            # pure ACK after our FIN
            if cur.get("final") is None:
                cur["final"] = (r["seq"], r["ack"])
            elif (r["seq"], r["ack"]) == cur["final"]:
                if cur.get("tw_ack_pending"):
                    res["tw_acks_unknown"] += 1   # a second repeat before any SYN-ACK
                res["tw_acks"] += 1
                cur["tw_ack_pending"] = {"t": r["t"], "tsecr": r["tsecr"], "n": r["n"]}
            continue
        if f & ACK and r["ack"] != cur.get("last_ack"):
            cur["prev_ack"] = cur.get("last_ack")
            cur["last_ack"] = r["ack"]
    for tup, lst in inc.items():
        res["tuples"] += 1
        if len(lst) > 1:
            res["tuples_reused"] += 1
        for cur in lst:
            if cur.get("tw_ack_pending"):
                res["tw_acks_unknown"] += 1
            if cur["fin_seq"] is None:
                res["close_unknown"] += 1
            elif cur.get("final") and (cur["final"][1] - cur["fin_ack"]) % M32 == 1:
                res["close_server_first"] += 1
            elif cur.get("final") is None and cur["ack_before_fin"] is not None \
                    and (cur["fin_ack"] - cur["ack_before_fin"]) % M32 == 1:
                res["close_client_first"] += 1
            else:
                res["close_unknown"] += 1
    d = res.pop("tw_ack_to_synack_ms")
    res["tw_ack_to_synack_ms"] = {"min": min(d), "median": statistics.median(d), "max": max(d)} if d else None
    return res


def client_view(pcap):
    inc = {}
    res = {"frames_tcp": 0, "syns": 0, "syn_retransmissions": 0, "rsts": 0, "handshake_acks": 0,
           "tuples": 0, "tuples_reused": 0,
           "close_server_first": 0, "close_client_first": 0, "close_unknown": 0,
           "rejected_recovered": 0, "rejected_cost_ms": [], "rst_other": 0,
           "takeover_isn": 0, "reused_other_isn": 0, "syn_tsval_older_than_prev_fin": 0,
           "syn_isn_after_prev_fin": 0, "syn_isn_not_after_prev_fin": 0}
    for r in rows(pcap):
        res["frames_tcp"] += 1
        tup = (r["src"], r["dst"])
        f = r["flags"]
        lst = inc.setdefault(tup, [])
        cur = lst[-1] if lst else None
        prev = lst[-2] if len(lst) > 1 else None
        if f & SYN and not f & ACK:
            if cur and cur["isn"] == r["seq"] and not cur.get("established"):
                res["syn_retransmissions"] += 1
                cur["syns"] += 1
                if cur.get("rst_seen"):
                    cur["retry_after_rst"] = True
                continue
            res["syns"] += 1
            new = {"isn": r["seq"], "t": r["t"], "syns": 1, "fin_seq": None, "fin_ack": None,
                   "after_fin_ack": None, "last_ack": None, "tsval": r["tsval"]}
            if cur is not None:
                if cur["fin_seq"] is not None:
                    # old rcv_nxt of the server = the previous FIN + 1
                    if s32(r["seq"] - (cur["fin_seq"] + 1)) > 0:
                        res["syn_isn_after_prev_fin"] += 1
                    else:
                        res["syn_isn_not_after_prev_fin"] += 1
                if cur.get("fin_tsval") is not None and r["tsval"] is not None \
                        and s32(r["tsval"] - cur["fin_tsval"]) < 0:
                    res["syn_tsval_older_than_prev_fin"] += 1
            lst.append(new)
            continue
        if cur is None:
            continue
        if f & RST:
            res["rsts"] += 1
            if not cur.get("established") and prev is not None and prev["fin_seq"] is not None \
                    and r["seq"] == (prev["fin_seq"] + 1) % M32:
                cur["rst_seen"] = True
            else:
                res["rst_other"] += 1
            continue
        if not cur.get("established") and f & ACK:
            cur["established"] = True
            res["handshake_acks"] += 1
            if cur.get("retry_after_rst"):
                res["rejected_recovered"] += 1
                res["rejected_cost_ms"].append(round((r["t"] - cur["t"]) * 1000, 3))
            if prev is not None and prev["last_ack"] is not None:
                if (r["ack"] - 1) % M32 == (prev["last_ack"] + 65537) % M32:
                    res["takeover_isn"] += 1
                else:
                    res["reused_other_isn"] += 1
            cur["last_ack"] = r["ack"]
            continue
        if f & FIN and cur["fin_seq"] is None:
            cur["fin_seq"] = r["seq"] + r["len"]
            cur["fin_ack"] = r["ack"]
            cur["fin_tsval"] = r["tsval"]
            cur["last_ack"] = r["ack"]
            continue
        if f & ACK:
            if cur["fin_seq"] is not None and r["len"] == 0 and cur["after_fin_ack"] is None:
                cur["after_fin_ack"] = r["ack"]
            cur["last_ack"] = r["ack"]
    for tup, lst in inc.items():
        res["tuples"] += 1
        if len(lst) > 1:
            res["tuples_reused"] += 1
        for cur in lst:
            if cur["fin_seq"] is None:
                res["close_unknown"] += 1
            elif cur["after_fin_ack"] is not None and (cur["after_fin_ack"] - cur["fin_ack"]) % M32 == 1:
                res["close_client_first"] += 1
            elif cur["after_fin_ack"] is None:
                res["close_server_first"] += 1
            else:
                res["close_unknown"] += 1
    d = res.pop("rejected_cost_ms")
    res["rejected_cost_ms"] = {"min": min(d), "median": statistics.median(d), "max": max(d)} if d else None
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "lab")
    dirs = a.dirs or [os.path.join(root, d) for d in sorted(os.listdir(root))
                      if os.path.exists(os.path.join(root, d, "one-sided-server.pcap"))]
    out = {}
    for d in dirs:
        t = json.load(open(os.path.join(d, "truth.json")))
        sc = t["scenario"]
        out[sc] = {"expected": t["expected"]}
        for name, fn in (("one-sided-server.pcap", server_view), ("one-sided-client.pcap", client_view)):
            p = os.path.join(d, name)
            if os.path.exists(p):
                r = fn(p)
                r = {"packets": packets(p), **r}
                out[sc][name] = r
        if not a.json:
            print("== %s  expected=%s" % (sc, json.dumps(t["expected"])))
            for name in ("one-sided-server.pcap", "one-sided-client.pcap"):
                if name in out[sc]:
                    print("   %-22s %s" % (name, json.dumps(out[sc][name])))
    if a.json:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
