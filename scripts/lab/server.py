#!/usr/bin/env python3
"""Lab server, run inside the server namespace.

Protocols:
  lab   : the client sends "UP <n>\\n" then n bytes; the server answers
          "OK <n>\\n" + padding.  --close first: close right after the answer
          (the server becomes the active closer and holds TIME_WAIT);
          --close client: wait for the client's FIN, then close.
  http10: read one HTTP request head, answer HTTP/1.0 without Content-Length
          and close (the close delimits the body, so the server always
          closes first).
  http11: keep-alive server that never closes first: answer every request
          head with HTTP/1.1 200 and a Content-Length (whatever its
          Connection header says), close only after the peer's FIN. The peer
          (a balancer) closes first and holds the TIME_WAIT.
Logs one JSON line per connection. Stops after --max-seconds or when the
--stop-file appears.
"""
import argparse
import os
import socket
import threading
import time

from twlab import JsonlWriter, errname

RESP_PAD = 200


def handle_lab(c, close_mode):
    buf = b""
    while b"\n" not in buf:
        d = c.recv(65536)
        if not d:
            return {"error": "EOF_BEFORE_HEADER"}
        buf += d
    head, rest = buf.split(b"\n", 1)
    n = int(head.split()[1])
    got = len(rest)
    while got < n:
        d = c.recv(1 << 20)
        if not d:
            return {"error": "EOF_IN_UPLOAD", "bytes_in": got}
        got += len(d)
    c.sendall(b"OK %d\n" % n + b"x" * RESP_PAD + b"\n")
    if close_mode == "client":
        while c.recv(65536):
            pass
    return {"bytes_in": got}


def handle_http10(c, _close_mode):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return {"error": "EOF_BEFORE_HEADER"}
        buf += d
    line = buf.split(b"\r\n", 1)[0].decode("latin1")
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"y" * RESP_PAD + b"\n")
    return {"request": line}


def handle_http11(c, _close_mode):
    buf = b""
    n = 0
    body = b"y" * RESP_PAD + b"\n"
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return {"requests": n, "peer_closed_first": True}
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        n += 1
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True, help="ip:port")
    ap.add_argument("--proto", choices=["lab", "http10", "http11"], default="lab")
    ap.add_argument("--close", choices=["first", "client"], default="first")
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=120)
    a = ap.parse_args()

    ip, port = a.bind.rsplit(":", 1)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, int(port)))
    ls.listen(1024)
    ls.settimeout(0.2)
    log = JsonlWriter(a.log)
    lock = threading.Lock()
    handler = {"lab": handle_lab, "http10": handle_http10, "http11": handle_http11}[a.proto]

    def serve(c, peer, t_acc):
        rec = {"peer_ip": peer[0], "peer_port": peer[1], "accept": t_acc}
        try:
            c.settimeout(20)
            rec.update(handler(c, a.close))
        except Exception as e:  # noqa: BLE001 - log every failure
            rec["error"] = errname(e)
        finally:
            c.close()
            rec["closed"] = time.time()
            with lock:
                log.write(rec)

    with open(a.ready_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(a.ready_file + ".tmp", a.ready_file)

    deadline = time.monotonic() + a.max_seconds
    threads = []
    while time.monotonic() < deadline and not os.path.exists(a.stop_file):
        try:
            c, peer = ls.accept()
        except socket.timeout:
            continue
        t = threading.Thread(target=serve, args=(c, peer, time.time()), daemon=True)
        t.start()
        threads.append(t)
        threads = [x for x in threads if x.is_alive()]
    ls.close()
    for t in threads:
        t.join(timeout=2)
    log.close()


if __name__ == "__main__":
    main()
