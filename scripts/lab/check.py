#!/usr/bin/env python3
"""Check lab captures with tshark against truth.json (a verification aid;
the truth itself never comes from the captures).

  python3 scripts/lab/check.py [fixtures/lab/<scenario> ...]

Per capture: SYNs, tshark's tcp.analysis.reused_ports count, and the wire
signatures of DESIGN.md section 3 found by a simple per-tuple walk:
  accepted  = SYN on a tuple seen before, answered by SYN-ACK whose ISN is
              the previous incarnation's server snd_nxt + 65537
  rejected  = SYN -> bare ACK from the server -> RST from the client ->
              SYN again -> SYN-ACK
"""
import json
import os
import subprocess
import sys

FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
          "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.len", "tcp.analysis.reused_ports"]


def rows(pcap):
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "tcp", "-T", "fields"] + sum([["-e", f] for f in FIELDS], [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        p = line.split("\t")
        if len(p) < len(FIELDS) or not p[7]:
            continue
        yield {"n": int(p[0]), "t": float(p[1]), "src": (p[2], int(p[3])), "dst": (p[4], int(p[5])),
               "flags": int(p[6], 16), "seq": int(p[7]), "ack": int(p[8] or 0), "len": int(p[9] or 0),
               "reused": bool(p[10])}


SYN, ACK, RST, FIN = 0x02, 0x10, 0x04, 0x01


def analyse(pcap, server):
    syns = reused = 0
    acc_sig = rej_sig = 0
    last_srv_nxt = {}   # tuple -> server's snd_nxt at the end of the last incarnation (client's last ack)
    seen = set()
    st = {}             # tuple -> state of the rejected-signature walk
    rej_delays = []
    for r in rows(pcap):
        if r["reused"]:
            reused += 1
        from_client = r["dst"] == server
        tup = (r["src"], r["dst"]) if from_client else (r["dst"], r["src"])
        f = r["flags"]
        if from_client and f & SYN and not f & ACK:
            syns += 1
            s = st.get(tup)
            if s and s[0] == "rst":
                st[tup] = ("syn2", s[1])
            elif tup in seen:
                st[tup] = ("syn", r["t"])
            seen.add(tup)
        elif not from_client and f & SYN and f & ACK:
            s = st.pop(tup, None)
            if s and s[0] == "syn2":
                rej_sig += 1
                rej_delays.append(r["t"] - s[1])
            elif s and s[0] == "syn" and tup in last_srv_nxt and \
                    r["seq"] == (last_srv_nxt[tup] + 65537) % (1 << 32):
                acc_sig += 1
        elif not from_client and f == ACK and r["len"] == 0 and st.get(tup, ("",))[0] == "syn":
            st[tup] = ("ack", st[tup][1])
        elif from_client and f & RST and st.get(tup, ("",))[0] == "ack":
            st[tup] = ("rst", st[tup][1])
        if from_client and f & ACK and not f & SYN and not f & RST:
            last_srv_nxt[tup] = r["ack"]
    return {"syns": syns, "reused_ports": reused, "accepted_signature": acc_sig,
            "rejected_signature": rej_sig,
            "rejected_cost_ms": [round(x * 1000, 1) for x in rej_delays][:20]}


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "lab")
    dirs = sys.argv[1:] or [os.path.join(root, d) for d in sorted(os.listdir(root))
                            if os.path.exists(os.path.join(root, d, "truth.json"))]
    for d in dirs:
        t = json.load(open(os.path.join(d, "truth.json")))
        ip, port = t["server"].rsplit(":", 1)
        print("== %s  expected=%s" % (t["scenario"], json.dumps(t["expected"])))
        for c in t["captures"]:
            res = analyse(os.path.join(d, c["file"]), (ip, int(port)))
            print("   %-16s %s" % (c["file"], json.dumps(res)))


if __name__ == "__main__":
    main()
