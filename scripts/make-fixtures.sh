#!/usr/bin/env bash
# Build the real-traffic capture fixtures in fixtures/capture/ (Linux, root).
#
# Two network namespaces, tws4a (client) and tws4b (HTTP server), joined by a
# veth pair (tws4a0 <-> tws4b0). All addresses are inside 10.244.0.0/24 and
# fd44::/64 and the namespaces have no default route, so no traffic leaves them.
# tcpdump runs in tws4a and captures the real kernel traffic in several link
# types. Then scripts/make_edge_fixtures.py derives the hand-assembled edge
# cases, scripts/make_tunnel_fixtures.py wraps real captures in tunnels (tunnels/), and
# scripts/fixture-oracle.sh records what capinfos/tshark say.
#
# Kernel notes (this machine's kernel has no 8021q, ipip or sit support):
#  * 802.1Q / QinQ tags are pushed by tiny tcx eBPF programs
#    (bpf_skb_vlan_push on egress, bpf_skb_vlan_pop on ingress) attached to the
#    veth in both namespaces; tcpdump on the veth sees the tagged frames.
#  * the RAW capture is taken on a TUN device pair relayed by a python process
#    (TUN devices have link type RAW, like ipip/sit tunnels).
# Requirements: bash, iproute2, tcpdump (4.99), python3 (stdlib), tshark,
# capinfos, zstd, gzip.
set -euo pipefail

die() { echo "make-fixtures: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (creates network namespaces)"
[ "$(uname -s)" = Linux ] || die "Linux only"
for t in ip tcpdump python3 capinfos tshark zstd gzip; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/fixtures/capture
HELPER=$ROOT/scripts/fixture_netns_helper.py
NSA=tws4a
NSB=tws4b
PORT=8080
WORK=$(mktemp -d /tmp/tws-fixtures.XXXXXX)
PIDS=()

cleanup() {
    local rc=$?
    set +e
    for p in "${PIDS[@]}"; do
        kill -INT "$p" 2>/dev/null
    done
    sleep 0.3
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    ip netns del "$NSA" 2>/dev/null
    ip netns del "$NSB" 2>/dev/null
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ina() { ip netns exec "$NSA" "$@"; }
inb() { ip netns exec "$NSB" "$@"; }

# wait (bounded) until FILE contains PATTERN
wait_for() {
    local file=$1 pat=$2 i
    for i in $(seq 1 100); do
        grep -q "$pat" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    die "timeout waiting for '$pat' in $file: $(cat "$file" 2>/dev/null)"
}

# start_tcpdump NAME ARGS... : capture in tws4a into $WORK/NAME.pcap
declare -A TD
start_tcpdump() {
    local name=$1; shift
    ip netns exec "$NSA" tcpdump -Z root -U --immediate-mode -B 8192 "$@" -w "$WORK/$name.pcap" 2>"$WORK/$name.log" &
    TD[$name]=$!
    PIDS+=($!)
    wait_for "$WORK/$name.log" "listening on"
}

stop_tcpdump() {
    local name p i
    for name in "$@"; do
        p=${TD[$name]}
        kill -INT "$p" 2>/dev/null || true
    done
    for name in "$@"; do
        p=${TD[$name]}
        for i in $(seq 1 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
        echo "  $name: $(grep -E 'packets (captured|received by filter|dropped by kernel)' "$WORK/$name.log" | tr '\n' ' ')"
    done
}

# start a command (not a shell function: $! must be the process itself) in the
# background and wait until its output contains READY
start_bg() {
    local log=$1 ready=$2; shift 2
    "$@" >"$log" 2>&1 &
    PIDS+=($!)
    LAST_BG=$!
    wait_for "$log" "$ready"
}

stop_bg() {
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

flush_neigh() {
    ip -n "$NSA" neigh flush dev tws4a0 2>/dev/null || true
    ip -n "$NSB" neigh flush dev tws4b0 2>/dev/null || true
}

client() { # V4 V6 N4 N6 BIG UDP RST
    ina timeout 60 python3 "$HELPER" client "$1" "$2" "$PORT" "$3" "$4" "$5" "$6" "$7"
}

echo "== namespaces"
ip netns del "$NSA" 2>/dev/null || true
ip netns del "$NSB" 2>/dev/null || true
ip netns add "$NSA"
ip netns add "$NSB"
for ns in "$NSA" "$NSB"; do
    # quieter IPv6: no DAD delay, no router solicitations
    ip netns exec "$ns" sh -c 'for k in accept_dad router_solicitations; do
        echo 0 > /proc/sys/net/ipv6/conf/default/$k; echo 0 > /proc/sys/net/ipv6/conf/all/$k; done'
    ip -n "$ns" link set lo up
done
ip -n "$NSA" link add tws4a0 type veth peer name tws4b0 netns "$NSB"
ina python3 "$HELPER" offload-off tws4a0   # MTU-sized frames, correct checksums
inb python3 "$HELPER" offload-off tws4b0
ip -n "$NSA" addr add 10.244.0.1/28 dev tws4a0
ip -n "$NSB" addr add 10.244.0.2/28 dev tws4b0
ip -n "$NSA" -6 addr add fd44::1:1/112 dev tws4a0 nodad
ip -n "$NSB" -6 addr add fd44::1:2/112 dev tws4b0 nodad
ip -n "$NSA" link set tws4a0 up
ip -n "$NSB" link set tws4b0 up

echo "== HTTP server in $NSB"
mkdir -p "$WORK/www"
python3 - "$WORK/www" <<'EOF'
import sys, os
d = sys.argv[1]
sizes = [20, 600, 1500, 3000]
for i, n in enumerate(sizes):
    line = b"twsleuth small file %d\n" % i
    open(os.path.join(d, f"small{i}.txt"), "wb").write((line * (n // len(line) + 1))[:n])
with open(os.path.join(d, "big.bin"), "wb") as f:
    f.write(b"".join(b"twsleuth bulk transfer line %06d\n" % i for i in range(6250))[:200000])
EOF
start_bg "$WORK/server.log" "Serving HTTP" \
    ip netns exec "$NSB" timeout 120 python3 -u -m http.server --bind :: --directory "$WORK/www" "$PORT"
SERVER_PID=$LAST_BG
sleep 1.5   # let link-local DAD/MLD settle

echo "== phase 1: plain veth (EN10MB us/ns, LINUX_SLL, LINUX_SLL2, snaplen 54/40)"
flush_neigh
start_tcpdump en10mb     -i tws4a0
start_tcpdump en10mb-ns  -i tws4a0 --time-stamp-precision=nano
start_tcpdump linux-sll  -i any -y LINUX_SLL
start_tcpdump linux-sll2 -i any -y LINUX_SLL2
start_tcpdump snaplen-54 -i tws4a0 -s 54
start_tcpdump snaplen-40 -i tws4a0 -s 40
client 10.244.0.2 fd44::1:2 20 5 0 2 1
sleep 0.3
stop_tcpdump en10mb-ns linux-sll linux-sll2
echo "   bulk transfer (EN10MB and snaplen captures only, to keep the others small)"
client 10.244.0.2 fd44::1:2 0 0 1 0 0
sleep 0.3
stop_tcpdump en10mb snaplen-54 snaplen-40

echo "== phase 2: 802.1Q (eBPF-tagged veth, VID 100)"
start_bg "$WORK/tag-a.log" attached ip netns exec "$NSA" timeout 60 python3 "$HELPER" tagger vlan tws4a0 50
TAG_A=$LAST_BG
start_bg "$WORK/tag-b.log" attached ip netns exec "$NSB" timeout 60 python3 "$HELPER" tagger vlan tws4b0 50
TAG_B=$LAST_BG
flush_neigh
start_tcpdump vlan-8021q -i tws4a0
client 10.244.0.2 fd44::1:2 6 2 0 1 0
sleep 0.3
stop_tcpdump vlan-8021q
stop_bg "$TAG_A"; stop_bg "$TAG_B"

echo "== phase 3: QinQ (802.1ad S-VID 200 outer, 802.1Q C-VID 100 inner)"
start_bg "$WORK/tag-a.log" attached ip netns exec "$NSA" timeout 60 python3 "$HELPER" tagger qinq tws4a0 50
TAG_A=$LAST_BG
start_bg "$WORK/tag-b.log" attached ip netns exec "$NSB" timeout 60 python3 "$HELPER" tagger qinq tws4b0 50
TAG_B=$LAST_BG
flush_neigh
start_tcpdump qinq -i tws4a0
client 10.244.0.2 fd44::1:2 6 2 0 1 0
sleep 0.3
stop_tcpdump qinq
stop_bg "$TAG_A"; stop_bg "$TAG_B"

echo "== phase 4: RAW (TUN pair tws4t0 <-> tws4t1 relayed in userspace)"
start_bg "$WORK/tun.log" "tunrelay ready" timeout 60 python3 "$HELPER" tunrelay 50
TUN=$LAST_BG
ip -n "$NSA" addr add 10.244.0.33/30 dev tws4t0
ip -n "$NSB" addr add 10.244.0.34/30 dev tws4t1
ip -n "$NSA" -6 addr add fd44::2:1/126 dev tws4t0 nodad
ip -n "$NSB" -6 addr add fd44::2:2/126 dev tws4t1 nodad
ip -n "$NSA" link set tws4t0 up
ip -n "$NSB" link set tws4t1 up
sleep 0.5
start_tcpdump raw-ipip -i tws4t0
client 10.244.0.34 fd44::2:2 6 2 0 1 1
sleep 0.3
stop_tcpdump raw-ipip
stop_bg "$TUN"
stop_bg "$SERVER_PID"

echo "== copy captures"
mkdir -p "$OUT"
for f in en10mb en10mb-ns linux-sll linux-sll2 vlan-8021q qinq raw-ipip snaplen-54 snaplen-40; do
    [ -s "$WORK/$f.pcap" ] || die "capture $f is empty"
    cp "$WORK/$f.pcap" "$OUT/$f.pcap"
done
magic=$(od -An -tx1 -N4 "$OUT/en10mb-ns.pcap" | tr -d ' ')
[ "$magic" = 4d3cb2a1 ] || die "en10mb-ns.pcap magic is $magic, want a1b23c4d (little-endian 4d3cb2a1)"

echo "== edge fixtures"
python3 "$ROOT/scripts/make_edge_fixtures.py" "$OUT"

echo "== tunnel fixtures (fixtures/lab and ipv6.pcap re-framed)"
python3 "$ROOT/scripts/make_tunnel_fixtures.py" "$OUT/tunnels"

echo "== oracle"
bash "$ROOT/scripts/fixture-oracle.sh" "$OUT"
ls -l "$OUT"
