#!/usr/bin/env python3
"""Snapshot the server namespace's TIME_WAIT set every --period seconds
(from /proc/<server-pid>/net/tcp, i.e. what `ss -tan state time-wait` shows),
keeping the peer ports of TIME_WAITs on --local ip:port from --peer-ip.
With --ss-src IP instead (run inside the namespace): `ss -Htan state time-wait
src IP` itself, keeping the local ports (a balancer's own TIME_WAITs).
Bounded by --max-seconds and --stop-file."""
import argparse
import os
import subprocess
import time

from twlab import JsonlWriter, time_wait_set


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int)
    ap.add_argument("--local")
    ap.add_argument("--peer-ip")
    ap.add_argument("--ss-src", help="sample `ss -Htan state time-wait src IP` in this namespace instead")
    ap.add_argument("--period", type=float, default=0.1)
    ap.add_argument("--max-seconds", type=float, default=70)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.ss_src:
        return watch_ss(a)
    lip, lport = a.local.rsplit(":", 1)
    lport = int(lport)
    out = JsonlWriter(a.out)
    path = "/proc/%d/net/tcp" % a.pid
    end = time.monotonic() + a.max_seconds
    nxt = time.monotonic()
    while time.monotonic() < end and not os.path.exists(a.stop_file):
        t = time.time()
        try:
            tw = time_wait_set(path)
        except OSError:
            break
        ports = sorted(k[3] for k in tw if k[0] == lip and k[1] == lport and k[2] == a.peer_ip)
        out.write({"t": t, "t_end": time.time(), "tw_ports": ports})
        nxt += a.period
        time.sleep(max(0, nxt - time.monotonic()))
    out.close()


def watch_ss(a):
    out = JsonlWriter(a.out)
    cmd = ["ss", "-Htan", "state", "time-wait", "src", a.ss_src]
    end = time.monotonic() + a.max_seconds
    nxt = time.monotonic()
    while time.monotonic() < end and not os.path.exists(a.stop_file):
        t = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        ports = []
        for line in r.stdout.splitlines():
            f = line.split()
            # Recv-Q Send-Q Local:Port Peer:Port (state column omitted with a state filter)
            if len(f) >= 4:
                ports.append(int(f[2].rsplit(":", 1)[1]))
        out.write({"t": t, "t_end": time.time(), "tw_local_ports": sorted(ports), "n": len(ports)})
        nxt += a.period
        time.sleep(max(0, nxt - time.monotonic()))
    out.close()


if __name__ == "__main__":
    main()
