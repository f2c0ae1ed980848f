#!/usr/bin/env bash
# One-direction views of the lab captures (DESIGN.md section 10).
#
#   scripts/make-one-sided.sh [SCENARIO...]   (default: accepted rejected haproxy clean client-reuse paws)
#
# Filters fixtures/lab/<scenario>/server.pcap with tcpdump's BPF into
#   one-sided-server.pcap  packets sent by the server:   src host <server ip> and src port <server port>
#   one-sided-client.pcap  packets sent to the server:   dst host <server ip> and dst port <server port>
# (the second is what the balancer or client sent, as the server's interface saw it).
# The server's address and port come from truth.json (namespaces.server.addresses, server);
# truth.json itself is left as the lab made it. Then prints capinfos' packet counts and,
# if tshark is there, the section-10 facts measured by scripts/lab/one_sided.py.
# No root needed: tcpdump only reads and writes files here.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=$ROOT/fixtures/lab
DEFAULT="accepted rejected haproxy clean client-reuse paws"
for t in tcpdump capinfos python3; do
    command -v $t >/dev/null || { echo "make-one-sided.sh: $t missing" >&2; exit 1; }
done

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || read -r -a SCENARIOS <<< "$DEFAULT"

DIRS=()
for sc in "${SCENARIOS[@]}"; do
    D=$BASE/$sc
    [ -f "$D/server.pcap" ] && [ -f "$D/truth.json" ] || { echo "make-one-sided.sh: $D has no server.pcap/truth.json" >&2; exit 2; }
    read -r SIP SPORT < <(python3 - "$D/truth.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
addrs = t["namespaces"]["server"]["addresses"]
assert len(addrs) == 1, addrs
print(addrs[0], t["server"].rsplit(":", 1)[1])
PY
)
    # -Z root: tcpdump would otherwise switch to its own user before writing the file
    tcpdump -Z root -n -r "$D/server.pcap" -w "$D/one-sided-server.pcap" "src host $SIP and src port $SPORT" 2>/dev/null
    tcpdump -Z root -n -r "$D/server.pcap" -w "$D/one-sided-client.pcap" "dst host $SIP and dst port $SPORT" 2>/dev/null
    printf '%-13s server %s:%s  server.pcap %s  one-sided-server.pcap %s  one-sided-client.pcap %s\n' "$sc" "$SIP" "$SPORT" \
        "$(capinfos -c -M "$D/server.pcap" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')" \
        "$(capinfos -c -M "$D/one-sided-server.pcap" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')" \
        "$(capinfos -c -M "$D/one-sided-client.pcap" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')"
    DIRS+=("$D")
done
if command -v tshark >/dev/null; then
    python3 "$ROOT/scripts/lab/one_sided.py" "${DIRS[@]}"
fi
