#!/usr/bin/env bash
# twsleuth kernel lab: real Linux TCP stacks in network namespaces, captures
# with tcpdump, ground truth from the programs and the kernel (never from
# the captures).
#
#   sudo scripts/lab.sh [SCENARIO...]      (default: all)
#   scenarios: accepted rejected haproxy haproxy-busy clean client-reuse paws lb-exhaustion
#
# Writes fixtures/lab/<scenario>/{*.pcap,truth.json}. Uses only namespaces
# named tws5* and addresses in 10.245.0.0/16; everything it creates is torn
# down on exit. Set TWS5_KEEP_WORK=1 to keep the raw logs (printed path),
# TWS5_NO_TRACE=1 to exercise the no-tracefs fallback.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$ROOT/scripts/lab
OUTBASE=$ROOT/fixtures/lab
ALL="accepted rejected haproxy haproxy-busy clean client-reuse paws lb-exhaustion"
SNAPLEN=128
SRV_PORT=18080
FE_PORT=18000
TRACE_ROOT=/sys/kernel/tracing
TRACE=$TRACE_ROOT/instances/tws5lab        # tcp:* events, default text format
TRACE_ST=$TRACE_ROOT/instances/tws5labst   # sock:inet_sock_set_state with the "fields" option (skaddr)
NSS="tws5cli tws5srv tws5lb"

[ "$(id -u)" = 0 ] || { echo "lab.sh: must run as root" >&2; exit 1; }
for t in ip tcpdump nstat python3 sysctl; do
    command -v $t >/dev/null || { echo "lab.sh: $t missing" >&2; exit 1; }
done

export PYTHONDONTWRITEBYTECODE=1
WORKROOT=$(mktemp -d /tmp/tws5lab.XXXXXX)
PIDS=()

log() { printf '[lab %s] %s\n' "$(date +%T)" "$*" >&2; }

stop_pid() {  # stop one process we started, politely then firmly (bounded)
    local pid=$1 sig=${2:-TERM} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

trace_off() {
    local d
    for d in "$TRACE" "$TRACE_ST"; do
        [ -d "$d" ] || continue
        echo 0 > "$d/tracing_on" 2>/dev/null || true
        echo 0 > "$d/events/enable" 2>/dev/null || true
        for e in sock/inet_sock_set_state tcp/tcp_receive_reset tcp/tcp_retransmit_skb syscalls/sys_exit_connect; do
            echo 0 > "$d/events/$e/filter" 2>/dev/null || true
        done
    done
}

teardown_ns() {
    local ns l
    for ns in $NSS; do ip netns del "$ns" 2>/dev/null || true; done
    for l in tws5c0 tws5s0 tws5lf0 tws5lb0; do ip link del "$l" 2>/dev/null || true; done  # half-made pairs
}

cleanup() {
    local rc=$? p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    PIDS=()
    teardown_ns
    trace_off
    for p in "$TRACE" "$TRACE_ST"; do [ -d "$p" ] && rmdir "$p" 2>/dev/null || true; done
    if [ "${TWS5_KEEP_WORK:-0}" = 1 ]; then log "raw logs kept in $WORKROOT"; else rm -rf "$WORKROOT"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tracefs
TRACEFS=0
trace_setup() {
    if [ ! -e "$TRACE_ROOT/events" ]; then
        mount -t tracefs nodev "$TRACE_ROOT" 2>/dev/null || true
    fi
    if [ "${TWS5_NO_TRACE:-0}" != 1 ] && [ -d "$TRACE_ROOT/events/sock/inet_sock_set_state" ] && [ -d "$TRACE_ROOT/events/tcp/tcp_send_reset" ] \
        && { [ -d "$TRACE" ] || mkdir "$TRACE" 2>/dev/null; } \
        && { [ -d "$TRACE_ST" ] || mkdir "$TRACE_ST" 2>/dev/null; } \
        && echo fields > "$TRACE_ST/trace_options" 2>/dev/null; then
        TRACEFS=1
    else
        TRACEFS=0
        log "tracefs not available: truth without tracepoints"
    fi
}

trace_start() {
    [ $TRACEFS = 1 ] || return 0
    local f="sport == $SRV_PORT || dport == $SRV_PORT || sport == $FE_PORT || dport == $FE_PORT" d e
    for d in "$TRACE" "$TRACE_ST"; do
        echo 0 > "$d/tracing_on"
        echo 0 > "$d/events/enable"
        echo mono > "$d/trace_clock"
        echo 8192 > "$d/buffer_size_kb"
        echo > "$d/trace"
    done
    echo fields > "$TRACE_ST/trace_options"
    echo "$f" > "$TRACE_ST/events/sock/inet_sock_set_state/filter"
    echo 1 > "$TRACE_ST/events/sock/inet_sock_set_state/enable"
    for e in tcp/tcp_receive_reset tcp/tcp_retransmit_skb; do
        echo "$f" > "$TRACE/events/$e/filter"
        echo 1 > "$TRACE/events/$e/enable"
    done
    echo 1 > "$TRACE/events/tcp/tcp_send_reset/enable"   # no port fields to filter on
    echo 1 > "$TRACE/tracing_on"
    echo 1 > "$TRACE_ST/tracing_on"
}

trace_stop() {  # $1 = work dir
    local W=$1
    [ $TRACEFS = 1 ] || { echo "tracefs=0" >> "$W/meta.txt"; return 0; }
    echo 0 > "$TRACE/tracing_on"; echo 0 > "$TRACE_ST/tracing_on"
    cat "$TRACE/trace" > "$W/trace.txt"
    cat "$TRACE_ST/trace" > "$W/trace_state.txt"
    local over
    over=$(cat "$TRACE"/per_cpu/cpu*/stats "$TRACE_ST"/per_cpu/cpu*/stats | awk '/^overrun:/ {s+=$2} END {print s+0}')
    trace_off
    {
        echo "tracefs=1"
        echo "trace_overruns=$over"
        echo "trace_mono_offset=$(cd "$LAB" && python3 -c 'import twlab; print(repr(twlab.mono_to_real_offset()))')"
    } >> "$W/meta.txt"
}

# ---------------------------------------------------------------- namespaces
mkns() { ip netns add "$1"; ip -n "$1" link set lo up; }

link() {  # link NS_A IF_A ADDR_A NS_B IF_B ADDR_B
    ip link add "$2" type veth peer name "$5"
    ip link set "$2" netns "$1"; ip link set "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"; ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up; ip -n "$4" link set "$5" up
}

SYSCTL_KEYS="net.ipv4.tcp_timestamps net.ipv4.tcp_tw_reuse net.ipv4.tcp_tw_reuse_delay net.ipv4.tcp_rfc1337
net.ipv4.ip_local_port_range net.ipv4.tcp_max_tw_buckets net.ipv4.tcp_syn_retries
net.ipv4.tcp_invalid_ratelimit net.ipv4.tcp_fin_timeout net.ipv4.ip_forward"

dump_sysctls() {  # ns work
    local k
    for k in $SYSCTL_KEYS; do
        ip netns exec "$1" sysctl "$k" 2>/dev/null | sed 's/\t/ /g' || true
    done > "$2/sysctl.$1.txt"
}

setsys() {  # ns key value work: set a namespace-local sysctl and remember it for the truth
    ip netns exec "$1" sysctl -qw "$2=$3"
    echo "$2 = $3" >> "$4/sysctl_set.$1.txt"
}

nstat_snap() {  # ns work tag
    ip netns exec "$1" env NSTAT_HISTORY="$2/nstat.hist.$1" nstat -asz --json > "$2/nstat.$1.$3.json"
}

# ---------------------------------------------------------------- processes
start_bg() {  # start_bg OUTFILE cmd...   (pid -> LAST_PID, remembered for cleanup)
    local out=$1; shift
    "$@" > "$out" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

start_bg2() {  # start_bg2 OUTFILE ERRFILE cmd...   (stdout and stderr apart)
    local out=$1 err=$2; shift 2
    "$@" > "$out" 2> "$err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

trace_connect_exits() {  # pid work: every connect() return value of that process (lb-exhaustion)
    if [ $TRACEFS = 1 ] && [ -d "$TRACE/events/syscalls/sys_exit_connect" ]; then
        echo "common_pid == $1" > "$TRACE/events/syscalls/sys_exit_connect/filter"
        echo 1 > "$TRACE/events/syscalls/sys_exit_connect/enable"
        echo "connect_trace=1" >> "$2/meta.txt"
    else
        echo "connect_trace=0" >> "$2/meta.txt"
    fi
    echo "haproxy_pid=$1" >> "$2/meta.txt"
}

forget_pid() { local p keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }

wait_file() {  # file, max 10 s
    local i
    for i in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
    echo "lab.sh: timed out waiting for $1" >&2; return 1
}

wait_grep() {  # pattern file, max 10 s
    local i
    for i in $(seq 100); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
    echo "lab.sh: timed out waiting for '$1' in $2" >&2; return 1
}

declare -A CAP_PID
capture_start() {  # ns iface file vantage work outdir
    local W=$5
    start_bg "$W/tcpdump.$4.err" ip netns exec "$1" tcpdump -i "$2" -s $SNAPLEN -Z root --immediate-mode -U -n -w "$6/$3"
    CAP_PID[$4]=$LAST_PID
    echo "$3 $4 $2" >> "$W/captures.txt"
    wait_grep "listening on" "$W/tcpdump.$4.err"
}

capture_stop_all() {  # work
    local W=$1 v
    for v in "${!CAP_PID[@]}"; do
        stop_pid "${CAP_PID[$v]}" INT
        forget_pid "${CAP_PID[$v]}"
        {
            echo "captured=$(awk '/packets captured/ {print $1}' "$W/tcpdump.$v.err")"
            echo "dropped=$(awk '/dropped by kernel/ {print $1}' "$W/tcpdump.$v.err")"
        } > "$W/tcpdump.$v.info"
    done
    CAP_PID=()
}

start_server() {  # ns bind proto close work
    local W=$5
    start_bg "$W/server.err" ip netns exec "$1" python3 "$LAB/server.py" --bind "$2" --proto "$3" \
        --close "$4" --log "$W/server.jsonl" --ready-file "$W/server.ready" --stop-file "$W/stop" \
        --max-seconds 110
    SERVER_PID=$LAST_PID
    wait_file "$W/server.ready"
    SERVER_NSPID=$(cat "$W/server.ready")
}

kernel_hz() {
    if [ -r /proc/config.gz ]; then zcat /proc/config.gz | awk -F= '/^CONFIG_HZ=/ {print $2}'
    elif [ -r "/boot/config-$(uname -r)" ]; then awk -F= '/^CONFIG_HZ=/ {print $2}' "/boot/config-$(uname -r)"
    fi
}

# ---------------------------------------------------------------- one scenario
run_scenario() {
    local sc=$1 W=$WORKROOT/$1 OUT=$OUTBASE/$1
    local t_start
    t_start=$(date +%s)
    mkdir -p "$W" "$OUT"
    rm -f "$OUT"/*.pcap "$OUT/truth.json"
    : > "$W/captures.txt"
    teardown_ns
    log "== $sc"

    local cip sip lb=""
    # haproxy-busy: the haproxy scenario with four end users at once (requests overlap at HAProxy)
    local http_proxy=false
    case $sc in haproxy|haproxy-busy) http_proxy=true ;; esac
    if $http_proxy || [ "$sc" = lb-exhaustion ]; then
        cip=10.245.3.1 sip=10.245.4.2
        mkns tws5cli; mkns tws5lb; mkns tws5srv
        link tws5cli tws5c0 $cip/24 tws5lb tws5lf0 10.245.3.2/24
        link tws5lb tws5lb0 10.245.4.1/24 tws5srv tws5s0 $sip/24
        lb=tws5lb
        if $http_proxy; then
            setsys tws5lb net.ipv4.ip_local_port_range "40000 40199" "$W"
        else
            # 20 ports, no reuse of the balancer's own TIME_WAIT tuples
            setsys tws5lb net.ipv4.ip_local_port_range "40000 40019" "$W"
            setsys tws5lb net.ipv4.tcp_tw_reuse 0 "$W"
        fi
    else
        cip=10.245.1.1 sip=10.245.1.2
        mkns tws5cli; mkns tws5srv
        link tws5cli tws5c0 $cip/24 tws5srv tws5s0 $sip/24
    fi
    case $sc in
        rejected)
            setsys tws5cli net.ipv4.tcp_timestamps 0 "$W"
            setsys tws5srv net.ipv4.tcp_timestamps 0 "$W" ;;
        client-reuse)
            setsys tws5cli net.ipv4.tcp_tw_reuse 1 "$W"
            setsys tws5cli net.ipv4.ip_local_port_range "40000 40019" "$W" ;;
        paws)
            # 1 = timestamps with a random offset per 4-tuple; the client switches it to 2 (no offset)
            # before attempt 40 (client.py --ts-switch): the tuples whose offset was positive go back in time
            setsys tws5cli net.ipv4.tcp_timestamps 1 "$W" ;;
    esac
    {
        echo "client_ns=tws5cli"; echo "server_ns=tws5srv"; [ -n "$lb" ] && echo "lb_ns=$lb"
        echo "client_ip=$cip"; echo "server_ip=$sip"; echo "server_port=$SRV_PORT"
        if [ -n "$lb" ]; then echo "lb_front_ip=10.245.3.2"; echo "lb_front_port=$FE_PORT"; echo "lb_back_ip=10.245.4.1"; fi
        echo "kernel=$(uname -r)"; echo "hz=$(kernel_hz)"; echo "snaplen=$SNAPLEN"
    } > "$W/meta.txt"
    local ns
    for ns in tws5cli tws5srv $lb; do dump_sysctls "$ns" "$W"; done

    # server
    case $sc in
        accepted|rejected|paws) start_server tws5srv $sip:$SRV_PORT lab first "$W" ;;
        clean|client-reuse) start_server tws5srv $sip:$SRV_PORT lab client "$W" ;;
        haproxy|haproxy-busy) start_server tws5srv $sip:$SRV_PORT http10 first "$W" ;;
        lb-exhaustion) start_server tws5srv $sip:$SRV_PORT http11 client "$W" ;;   # never closes first
    esac
    local HAPID="" WATCHPID=""
    if $http_proxy; then
        cat > "$W/haproxy.cfg" <<EOF
global
    log stdout format raw local0
    maxconn 4000
    nbthread 1

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    log-format "tws5 ts=%Ts.%ms ci=%ci cp=%cp bi=%bi bp=%bp si=%si sp=%sp TR=%TR Tw=%Tw Tc=%Tc Tr=%Tr Ta=%Ta st=%ST rc=%rc tsc=%tsc B=%B"

frontend fe
    bind 10.245.3.2:$FE_PORT
    default_backend be

backend be
    source 10.245.4.1
    server s1 $sip:$SRV_PORT
EOF
        ip netns exec tws5lb haproxy -c -q -f "$W/haproxy.cfg"
        start_bg "$W/haproxy.log" ip netns exec tws5lb haproxy -db -f "$W/haproxy.cfg"
        HAPID=$LAST_PID
        local i
        for i in $(seq 50); do
            ip netns exec tws5lb ss -ltn "sport = :$FE_PORT" | grep -q LISTEN && break; sleep 0.1
        done
    elif [ "$sc" = lb-exhaustion ]; then
        # mode tcp: in mode http HAProxy 2.6 ends every backend connection with an RST (measured with
        # httpclose, http-server-close and keep-alive), so it never holds a TIME_WAIT there. In mode tcp
        # it relays the client's FIN: the balancer's FIN comes first on the backend leg.
        cat > "$W/haproxy.cfg" <<EOF
global
    log stdout format raw local0
    maxconn 4000
    nbthread 1

defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    log-format "tws5 ts=%Ts.%ms ci=%ci cp=%cp bi=%bi bp=%bp si=%si sp=%sp Tw=%Tw Tc=%Tc Tt=%Tt rc=%rc tsc=%ts B=%B U=%U"

frontend fe
    bind 10.245.3.2:$FE_PORT
    default_backend be

backend be
    source 10.245.4.1
    server s1 $sip:$SRV_PORT
EOF
        ip netns exec tws5lb haproxy -c -q -f "$W/haproxy.cfg"
        start_bg2 "$W/haproxy.log" "$W/haproxy.err" ip netns exec tws5lb haproxy -db -f "$W/haproxy.cfg"
        HAPID=$LAST_PID
        local i
        for i in $(seq 50); do
            ip netns exec tws5lb ss -ltn "sport = :$FE_PORT" | grep -q LISTEN && break; sleep 0.1
        done
    fi

    trace_start
    if [ "$sc" = lb-exhaustion ]; then trace_connect_exits "$HAPID" "$W"; fi
    for ns in tws5cli tws5srv $lb; do nstat_snap "$ns" "$W" before; done
    if [ "$sc" = lb-exhaustion ]; then
        capture_start tws5lb tws5lb0 lb-backend.pcap lb-backend "$W" "$OUT"
        capture_start tws5lb tws5lf0 lb-frontend.pcap lb-frontend "$W" "$OUT"
        start_bg "$W/twwatch.err" ip netns exec tws5lb python3 "$LAB/twwatch.py" --ss-src 10.245.4.1 \
            --stop-file "$W/stop" --max-seconds 70 --out "$W/lbwatch.jsonl"
        WATCHPID=$LAST_PID
    elif $http_proxy; then
        capture_start tws5lb tws5lb0 lb-backend.pcap lb-backend "$W" "$OUT"
        # the frontend leg (client <-> HAProxy) too: HAProxy's log pairs each of its connections
        # with the backend connection opened for it (%ci:%cp with %bi:%bp), the truth for leg pairing
        capture_start tws5lb tws5lf0 lb-frontend.pcap lb-frontend "$W" "$OUT"
        capture_start tws5srv tws5s0 server.pcap server "$W" "$OUT"
        start_bg "$W/twwatch.err" python3 "$LAB/twwatch.py" --pid "$SERVER_NSPID" --local $sip:$SRV_PORT \
            --peer-ip 10.245.4.1 --stop-file "$W/stop" --max-seconds 70 --out "$W/twwatch.jsonl"
        WATCHPID=$LAST_PID
    else
        capture_start tws5cli tws5c0 client.pcap client "$W" "$OUT"
        capture_start tws5srv tws5s0 server.pcap server "$W" "$OUT"
    fi
    sleep 0.3
    echo "capture_start=$(date +%s.%N)" >> "$W/meta.txt"

    local C=(ip netns exec tws5cli python3 "$LAB/client.py" --src-ip $cip --out "$W/client.jsonl" --max-seconds 50)
    case $sc in
        accepted)
            "${C[@]}" --server $sip:$SRV_PORT --server-pid "$SERVER_NSPID" --ports 21000:20 \
                --count 80 --interval 0.25 --close server ;;
        rejected)
            "${C[@]}" --server $sip:$SRV_PORT --server-pid "$SERVER_NSPID" --ports 22000:5 --per-port 3 \
                --count 15 --gap 0.02 --upload 3000000 --close server ;;
        paws)
            "${C[@]}" --server $sip:$SRV_PORT --server-pid "$SERVER_NSPID" --ports 23000:20 \
                --count 80 --interval 0.25 --close server --tsval --ts-switch 40:2 --server-mib ;;
        clean)
            "${C[@]}" --server $sip:$SRV_PORT --server-pid "$SERVER_NSPID" \
                --count 80 --interval 0.25 --close client ;;
        client-reuse)
            "${C[@]}" --server $sip:$SRV_PORT --server-pid "$SERVER_NSPID" \
                --count 80 --interval 0.2 --close client ;;
        haproxy)
            "${C[@]}" --server 10.245.3.2:$FE_PORT --proto http --count 800 --interval 0.04 --close server ;;
        haproxy-busy)
            # four end users, each a request every 20 ms, started 5 ms apart: a request every 5 ms
            # in all, with the clients' jitter, so that two sometimes wait at HAProxy at once (timing
            # alone cannot tell then which request a backend SYN serves)
            local k busy=()
            for k in 0 1 2 3; do
                ip netns exec tws5cli python3 "$LAB/client.py" --src-ip $cip --out "$W/client.$k.jsonl" \
                    --max-seconds 50 --server 10.245.3.2:$FE_PORT --proto http --count 200 --interval 0.02 \
                    --close server &
                busy+=($!)
                sleep 0.005
            done
            wait "${busy[@]}"
            cat "$W"/client.[0-3].jsonl > "$W/client.jsonl" ;;
        lb-exhaustion)
            # 600 distinct client ports (no reuse on the frontend leg, where HAProxy holds TIME_WAIT for the
            # streams it closes first); the TIME_WAIT lookup before each connect() reads HAProxy's namespace
            "${C[@]}" --server 10.245.3.2:$FE_PORT --server-pid "$HAPID" --ports 50000:600 --proto http \
                --count 600 --interval 0.025 --close client ;;
    esac

    sleep 1    # let the last FIN/ACK exchanges finish
    echo "capture_end=$(date +%s.%N)" >> "$W/meta.txt"
    capture_stop_all "$W"
    for ns in tws5cli tws5srv $lb; do nstat_snap "$ns" "$W" after; done
    trace_stop "$W"
    touch "$W/stop"
    [ -n "$WATCHPID" ] && { stop_pid "$WATCHPID"; forget_pid "$WATCHPID"; }
    [ -n "$HAPID" ] && { stop_pid "$HAPID" USR1; forget_pid "$HAPID"; }
    stop_pid "$SERVER_PID"; forget_pid "$SERVER_PID"
    teardown_ns

    (cd "$LAB" && python3 truth.py --scenario "$sc" --work "$W" --out "$OUT/truth.json")
    log "$sc done in $(( $(date +%s) - t_start )) s: $(cd "$OUT" && ls -l --block-size=K *.pcap | awk '{printf "%s %s  ", $NF, $5}')"
}

# ---------------------------------------------------------------- main
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || read -r -a SCENARIOS <<< "$ALL"
for sc in "${SCENARIOS[@]}"; do
    case " $ALL " in *" $sc "*) ;; *) echo "lab.sh: unknown scenario '$sc' (known: $ALL)" >&2; exit 2;; esac
done
trace_setup
for sc in "${SCENARIOS[@]}"; do run_scenario "$sc"; done
