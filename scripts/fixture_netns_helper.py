#!/usr/bin/env python3
"""Helpers for scripts/make-fixtures.sh (python3 stdlib only, Linux, root).

Subcommands (each bounded in time; all traffic stays inside the tws4a/tws4b
network namespaces created by make-fixtures.sh):

  offload-off IFACE...      disable tx-checksum/TSO/GSO/GRO (legacy ethtool
                            ioctls) so captured frames are MTU-sized and carry
                            correct checksums (no ethtool binary needed)
  client ...                bounded HTTP/UDP client loop
  tagger MODE IFACE SECS    attach tcx eBPF programs to IFACE: egress pushes
                            802.1Q (MODE=vlan) or 802.1Q+802.1ad (MODE=qinq)
                            tags, ingress pops them. Used because this kernel
                            has no 8021q module (no `type vlan` links).
  tunrelay SECS             create TUN devices tws4t0 (in tws4a) and tws4t1
                            (in tws4b) and relay IP packets between them, so a
                            capture on tws4t0 has link type RAW (no ipip/sit
                            module on this kernel).
"""
import ctypes
import errno
import fcntl
import os
import select
import socket
import struct
import sys
import time
import http.client

libc = ctypes.CDLL(None, use_errno=True)


# ---------------------------------------------------------------- offloads
SIOCETHTOOL = 0x8946
ETHTOOL_SRXCSUM = 0x15
ETHTOOL_STXCSUM = 0x17
ETHTOOL_SSG = 0x19
ETHTOOL_STSO = 0x1F
ETHTOOL_SGSO = 0x24
ETHTOOL_SGRO = 0x2C


def offload_off(ifaces):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for ifname in ifaces:
        for name, cmd in (("tso", ETHTOOL_STSO), ("gso", ETHTOOL_SGSO),
                          ("gro", ETHTOOL_SGRO), ("tx-csum", ETHTOOL_STXCSUM)):
            val = ctypes.create_string_buffer(struct.pack("=II", cmd, 0))
            ifr = struct.pack("16sP", ifname.encode(), ctypes.addressof(val)) + b"\0" * 16
            try:
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
            except OSError as e:
                print(f"offload-off {ifname} {name}: {e}", file=sys.stderr)
    s.close()


# ---------------------------------------------------------------- client
def http_get(host, port, path, family, timeout=5.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, len(body)
    except OSError as e:
        print(f"client: GET http://{host}:{port}{path} failed: {e}", file=sys.stderr)
        return 0, 0
    finally:
        conn.close()


def client(argv):
    """client V4HOST V6HOST PORT N4 N6 BIG(0/1) UDP(n) RST(0/1)"""
    v4, v6, port, n4, n6, big, nudp, rst = argv
    port, n4, n6, big, nudp, rst = int(port), int(n4), int(n6), int(big), int(nudp), int(rst)
    deadline = time.monotonic() + 30
    ok = 0
    for i in range(n4):
        if time.monotonic() > deadline:
            break
        st, n = http_get(v4, port, f"/small{i % 4}.txt", socket.AF_INET)
        ok += st == 200
        time.sleep(0.02)
    for i in range(n6):
        if time.monotonic() > deadline:
            break
        st, n = http_get(v6, port, f"/small{i % 4}.txt", socket.AF_INET6)
        ok += st == 200
        time.sleep(0.02)
    for i in range(nudp):
        fam = socket.AF_INET if i % 2 == 0 else socket.AF_INET6
        host = v4 if fam == socket.AF_INET else v6
        with socket.socket(fam, socket.SOCK_DGRAM) as u:
            u.sendto(b"twsleuth fixture datagram %d\n" % i, (host, 9999))
        time.sleep(0.05)
    if rst:
        # connect to a closed port: SYN answered by RST
        for host, fam in ((v4, socket.AF_INET),):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect((host, port + 1))
            except OSError:
                pass
            finally:
                s.close()
    if big:
        st, n = http_get(v4, port, "/big.bin", socket.AF_INET, timeout=10)
        ok += st == 200
        print(f"big transfer: status {st}, {n} bytes", file=sys.stderr)
    print(f"client: {ok} successful HTTP requests", file=sys.stderr)


# ---------------------------------------------------------------- eBPF
SYS_bpf = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(SYS_bpf), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bpf cmd {cmd}: {os.strerror(e)}")
    return r


def insn(op, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def load_prog(insns, name):
    code = b"".join(insns)
    code_buf = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = bytearray(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_SCHED_CLS, len(insns),
                     ctypes.addressof(code_buf), ctypes.addressof(lic), 1, len(log),
                     ctypes.addressof(log))
    attr[48:48 + len(name)] = name.encode()
    try:
        return bpf(BPF_PROG_LOAD, attr)
    except OSError:
        print(log.value.decode(errors="replace"), file=sys.stderr)
        raise


def tagger(mode, ifname, secs):
    MOV64_REG, MOV64_IMM, CALL, EXIT = 0xBF, 0xB7, 0x85, 0x95
    PUSH, POP = 18, 19  # bpf_skb_vlan_push / bpf_skb_vlan_pop
    tags = [(0x8100, 100)] if mode == "vlan" else [(0x8100, 100), (0x88A8, 200)]
    egress = [insn(MOV64_REG, 6, 1)]
    for proto, vid in tags:  # last push becomes the outer tag
        be_proto = struct.unpack("<H", struct.pack(">H", proto))[0]
        egress += [insn(MOV64_REG, 1, 6), insn(MOV64_IMM, 2, imm=be_proto),
                   insn(MOV64_IMM, 3, imm=vid), insn(CALL, imm=PUSH)]
    egress += [insn(MOV64_IMM, 0, imm=0), insn(EXIT)]
    ingress = [insn(MOV64_REG, 6, 1)]
    for _ in tags:
        ingress += [insn(MOV64_REG, 1, 6), insn(CALL, imm=POP)]
    ingress += [insn(MOV64_IMM, 0, imm=0), insn(EXIT)]
    ifindex = socket.if_nametoindex(ifname)
    links = []
    for prog, at, nm in ((egress, BPF_TCX_EGRESS, "tws_push"), (ingress, BPF_TCX_INGRESS, "tws_pop")):
        fd = load_prog(prog, nm)
        attr = bytearray(64)
        struct.pack_into("<IIII", attr, 0, fd, ifindex, at, 0)
        links.append(bpf(BPF_LINK_CREATE, attr))
    print(f"tagger {mode} attached to {ifname}", flush=True)
    # links live as long as this process; bounded lifetime
    try:
        time.sleep(secs)
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------- TUN relay
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI) + b"\0" * 22)
    return fd


def setns(path):
    nfd = os.open(path, os.O_RDONLY)
    if libc.setns(nfd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns " + path)
    os.close(nfd)


def tunrelay(secs):
    setns("/run/netns/tws4a")
    a = open_tun("tws4t0")
    setns("/run/netns/tws4b")
    b = open_tun("tws4t1")
    print("tunrelay ready", flush=True)
    peer = {a: b, b: a}
    end = time.monotonic() + secs
    while time.monotonic() < end:
        r, _, _ = select.select([a, b], [], [], 0.2)
        for fd in r:
            try:
                pkt = os.read(fd, 65536)
                os.write(peer[fd], pkt)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EIO, errno.EINVAL):
                    raise


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "offload-off":
        offload_off(args)
    elif cmd == "client":
        client(args)
    elif cmd == "tagger":
        tagger(args[0], args[1], float(args[2]))
    elif cmd == "tunrelay":
        tunrelay(float(args[0]))
    else:
        sys.exit("unknown subcommand " + cmd)


if __name__ == "__main__":
    main()
