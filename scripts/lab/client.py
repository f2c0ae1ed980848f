#!/usr/bin/env python3
"""Lab client, run inside the client namespace.

One connection attempt at a time, on a fixed schedule (bounded count and
time). Before each connect() it snapshots the TIME_WAIT sets of the server
namespace (/proc/<server-pid>/net/tcp) and of its own namespace
(/proc/self/net/tcp); after connect() it looks its tuple up in both, and
records connect() duration, errno and TCP_INFO (SYN retransmissions).
"""
import argparse
import socket
import time

from twlab import JsonlWriter, errname, read_netstat, tcp_info, tcp_tsval, time_wait_set

SERVER_MIB = ["TcpExt.PAWSTimewait", "TcpExt.TCPACKSkippedTimeWait", "TcpExt.TW"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="ip:port")
    ap.add_argument("--src-ip", required=True)
    ap.add_argument("--ports", help="START:COUNT explicit source-port pool (bind + SO_REUSEADDR)")
    ap.add_argument("--per-port", type=int, default=1,
                    help="consecutive connections on one pool port before moving on")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between connection starts")
    ap.add_argument("--gap", type=float, default=None,
                    help="instead of a fixed schedule: pause this long after each close")
    ap.add_argument("--upload", type=int, default=0)
    ap.add_argument("--proto", choices=["lab", "http"], default="lab")
    ap.add_argument("--close", choices=["server", "client"], default="server",
                    help="who closes first")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--max-seconds", type=float, default=55)
    ap.add_argument("--connect-timeout", type=float, default=5)
    ap.add_argument("--tsval", action="store_true",
                    help="record the socket's TSval offset and the TSval at close (TCP_TIMESTAMP getsockopt)")
    ap.add_argument("--ts-switch", metavar="I:VALUE",
                    help="before attempt I, set this namespace's net.ipv4.tcp_timestamps to VALUE")
    ap.add_argument("--server-mib", action="store_true",
                    help="read the server namespace's /proc/<pid>/net/netstat before and after each connect()")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ts_switch = tuple(int(x) for x in a.ts_switch.split(":")) if a.ts_switch else None

    dip, dport = a.server.rsplit(":", 1)
    dport = int(dport)
    pool = None
    if a.ports:
        s0, n = a.ports.split(":")
        pool = [int(s0) + i for i in range(int(n))]
    srv_tcp = "/proc/%d/net/tcp" % a.server_pid if a.server_pid else None
    out = JsonlWriter(a.out)
    payload = b"z" * a.upload
    t0 = time.time()
    deadline = time.monotonic() + a.max_seconds

    for i in range(a.count):
        if time.monotonic() > deadline:
            break
        if a.gap is None:
            delay = t0 + i * a.interval - time.time()
            if delay > 0:
                time.sleep(delay)
        rec = {"i": i, "src_ip": a.src_ip, "dst_ip": dip, "dst_port": dport, "error": None}
        if ts_switch and i == ts_switch[0]:
            with open("/proc/sys/net/ipv4/tcp_timestamps") as f:
                old = f.read().strip()
            with open("/proc/sys/net/ipv4/tcp_timestamps", "w") as f:
                f.write("%d\n" % ts_switch[1])
            with open("/proc/sys/net/ipv4/tcp_timestamps") as f:
                rec["ts_switch"] = {"sysctl": "net.ipv4.tcp_timestamps", "from": old, "to": f.read().strip(),
                                    "t": time.time()}
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if pool:
                port = pool[(i // a.per_port) % len(pool)]
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((a.src_ip, port))
            # else: no bind(); connect() picks the ephemeral port (parity rule applies)
            s.settimeout(a.connect_timeout)
            mib0 = read_netstat("/proc/%d/net/netstat" % a.server_pid, SERVER_MIB) if a.server_mib else None
            srv_tw = time_wait_set(srv_tcp) if srv_tcp else None
            cli_tw = time_wait_set("/proc/self/net/tcp")
            rec["start"] = time.time()
            m0 = time.monotonic()
            try:
                s.connect((dip, dport))
            finally:
                rec["connect_ms"] = round((time.monotonic() - m0) * 1000, 3)
                if mib0 is not None:
                    mib1 = read_netstat("/proc/%d/net/netstat" % a.server_pid, SERVER_MIB)
                    rec["server_mib_delta"] = {k.split(".", 1)[1]: mib1[k] - mib0[k] for k in SERVER_MIB}
                try:
                    rec["src_port"] = s.getsockname()[1]
                except OSError:
                    rec["src_port"] = pool[(i // a.per_port) % len(pool)] if pool else None
                sp = rec["src_port"]
                if srv_tw is not None:
                    k = (dip, dport, a.src_ip, sp)
                    rec["server_tw_before_connect"] = k in srv_tw
                    rec["server_tw_left_s"] = srv_tw.get(k)
                k = (a.src_ip, sp, dip, dport)
                rec["client_tw_before_connect"] = k in cli_tw
                rec["client_tw_left_s"] = cli_tw.get(k)
            ti = tcp_info(s)
            rec["syn_retrans"] = ti["total_retrans"]
            if a.tsval and ti["timestamps"]:
                _v, _mono, off = tcp_tsval(s)
                # the first SYN left right after connect() began: TSval = monotonic ms then + offset
                rec["ts_offset"] = off
                rec["syn_tsval"] = (int(m0 * 1000) + off) % (1 << 32)
            rec["timestamps"] = ti["timestamps"]
            rec["rtt_us"] = ti["rtt_us"]
            s.settimeout(20)
            if a.proto == "lab":
                s.sendall(b"UP %d\n" % a.upload + payload)
            else:
                s.sendall(b"GET /r%d HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n" % i)
            got = 0
            if a.close == "server":
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    got += len(d)
            elif a.proto == "http":
                # read the whole answer (head + Content-Length body), then close first
                buf = b""
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        raise ConnectionError("EOF before answer")
                    buf += d
                head, body = buf.split(b"\r\n\r\n", 1)
                rec["status"] = head.split(b"\r\n", 1)[0].decode("latin1")
                clen = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        clen = int(v)
                while len(body) < clen:
                    d = s.recv(65536)
                    if not d:
                        raise ConnectionError("EOF in body")
                    body += d
                got = len(head) + 4 + len(body)
            else:
                buf = b""
                while buf.count(b"\n") < 2:
                    d = s.recv(65536)
                    if not d:
                        raise ConnectionError("EOF before answer")
                    buf += d
                got = len(buf)
            rec["bytes_in"] = got
            if a.tsval and rec.get("timestamps"):
                # the FIN that close() sends below carries this TSval (or 1 ms more): the server's
                # ts_recent for this tuple once it is in TIME_WAIT
                rec["close_tsval"] = tcp_tsval(s)[0]
        except Exception as e:  # noqa: BLE001 - every failure goes into the record
            if rec["error"] is None:
                rec["error"] = errname(e)
                rec["error_phase"] = "connect" if "syn_retrans" not in rec else "transfer"
        finally:
            s.close()
            rec["end"] = time.time()
            out.write(rec)
        if a.gap is not None:
            time.sleep(a.gap)
    out.close()


if __name__ == "__main__":
    main()
