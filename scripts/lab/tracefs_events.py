"""Parse a tracefs text dump (trace_clock=mono) into event dicts.

Used only by truth.py; the events come from the kernel, not from a capture.
"""
import re
import socket
import struct

LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S+\s+(?P<ts>\d+\.\d+):\s+(?P<ev>\w+):\s+(?P<rest>.*)$")


FIELD = re.compile(r"(\w+)=(\S+)(?: \((-?\d+)\))?")
STATE_NAMES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
               6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
               11: "CLOSING", 12: "NEW_SYN_RECV"}


def _fields(rest):
    """The "fields" trace option: key=0xHEX (DEC) for every field, raw values."""
    out = {}
    for k, v, dec in FIELD.findall(rest):
        out[k] = int(dec) if dec else v
    return out


def _ip_u8x4(v):
    return socket.inet_ntoa(struct.pack("<I", v & 0xFFFFFFFF))


def _kv(rest):
    out = {}
    for tok in rest.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def _split_ipport(s):
    ip, port = s.rsplit(":", 1)
    return ip, int(port)


def parse(paths, mono_offset, ns_of_ip):
    """Events sorted by time. Each: {t (unix s), ev, ns, laddr, lport, raddr, rport, ...}.

    ns_of_ip maps each lab address to its namespace name; events on other
    addresses (other users of the machine) are dropped.
    """
    events = []
    lines = []
    for path in paths:
        with open(path, errors="replace") as f:
            lines += f.readlines()
    if True:
        for line in lines:
            if line.startswith("#"):
                continue
            m = LINE.match(line)
            if not m:
                continue
            ev = m.group("ev")
            rest = m.group("rest")
            e = {"t": float(m.group("ts")) + mono_offset, "ev": ev}
            if ev == "inet_sock_set_state" and rest.startswith("skaddr=0x"):
                f = _fields(rest)
                if f.get("family") != 2 or f.get("protocol") != 6:
                    continue
                e.update(laddr=_ip_u8x4(f["saddr"]), lport=f["sport"], raddr=_ip_u8x4(f["daddr"]),
                         rport=f["dport"], old=STATE_NAMES.get(f["oldstate"], str(f["oldstate"])),
                         new=STATE_NAMES.get(f["newstate"], str(f["newstate"])), sk=str(f["skaddr"]))
                ns = ns_of_ip.get(e["laddr"])
                if ns is not None:
                    e["ns"] = ns
                    events.append(e)
                continue
            kv = _kv(rest)
            if ev in ("inet_sock_set_state", "tcp_receive_reset", "tcp_retransmit_skb",
                      "tcp_destroy_sock", "tcp_retransmit_synack"):
                if kv.get("family") != "AF_INET":
                    continue
                e.update(laddr=kv["saddr"], lport=int(kv["sport"]),
                         raddr=kv["daddr"], rport=int(kv["dport"]))
                if ev == "inet_sock_set_state":
                    if kv.get("protocol") != "IPPROTO_TCP":
                        continue
                    e["old"] = kv["oldstate"].replace("TCP_", "")
                    e["new"] = kv["newstate"].replace("TCP_", "")
                if "state" in kv:
                    e["state"] = kv["state"].replace("TCP_", "")
                if "skaddr" in kv:
                    e["sk"] = kv["skaddr"]
            elif ev == "tcp_send_reset":
                try:
                    la, lp = _split_ipport(kv["src"])
                    ra, rp = _split_ipport(kv["dest"])
                except (KeyError, ValueError):
                    continue
                e.update(laddr=la, lport=lp, raddr=ra, rport=rp,
                         state=kv.get("state", "").replace("TCP_", ""),
                         reason=kv.get("reason"), sk=kv.get("skaddr"))
            else:
                continue
            ns = ns_of_ip.get(e["laddr"])
            if ns is None:
                continue
            e["ns"] = ns
            events.append(e)
    events.sort(key=lambda x: x["t"])
    return events


def tuple_key(e):
    return (e["laddr"], e["lport"], e["raddr"], e["rport"])
