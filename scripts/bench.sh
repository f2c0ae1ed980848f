#!/usr/bin/env bash
# Benchmarks twsleuth against the tools people would otherwise use, on one large capture of a
# balancer cycling its SNAT ports (~5.45 M packets, ~480 MB, made by gen_load_capture.py).
#
#   scripts/bench.sh [--skip-tshark] [CAPTURE]
#   SCALE_DIR=/work/scale scripts/bench.sh --skip-tshark   # also the scale table below
#
# Reports wall time and peak RSS of: twsleuth stats, capinfos (reads every record), dd (the
# page-cache read limit), twsleuth analyze with 1 thread and with all threads, twsleuth report
# (the full report, exports and charts included), and
# tshark -Y tcp.analysis.reused_ports; then the ratios the issues set targets for. Last, a
# hostile capture (gen_flood_capture.py: 1 M SYN flood + 20 k-port scan mixed into the HAProxy
# lab capture): analyze's peak RSS against --max-memory 256MiB, its evictions,
# and whether the lab's 700 collisions are all still found. Then `watch` fed the bench capture
# through a pipe at 10,000 and 100,000 packets/s: its CPU, and whether it kept up.
# With SCALE_DIR set, last: analyze and report on every $SCALE_DIR/load-N.pcap (generated
# captures of N connections, with load-N.truth.json), one run each: wall time and peak RSS,
# report against analyze, and whether the collisions found equal the generator's count
# (issue 13's table for 0.5 / 2 / 5 / 10 M connections).
# Needs GNU time, capinfos and tshark (apt-get install time tshark).
set -euo pipefail
cd "$(dirname "$0")/.."

skip_tshark=false
if [[ "${1:-}" == "--skip-tshark" ]]; then skip_tshark=true; shift; fi
capture="${1:-bench-data/load.pcap}"

for tool in /usr/bin/time capinfos tshark python3; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is needed (apt-get install time tshark)" >&2; exit 2; }
done

if [[ ! -f "$capture" ]]; then
  mkdir -p "$(dirname "$capture")"
  echo "Generating $capture (deterministic, seed 1)..." >&2
  python3 scripts/gen_load_capture.py -o "$capture" --truth "${capture%.pcap}.truth.json"
fi
cargo build --release --quiet
bin=target/release/twsleuth
threads=$(nproc)

# Warm the page cache so that every tool reads from memory, as dd does.
cat "$capture" > /dev/null

results=$(mktemp)
timing=$(mktemp)
report_dir=$(mktemp -d)
trap 'rm -rf "$results" "$timing" "$report_dir"' EXIT

# run NAME COMMAND...: best wall time of 3 runs (1 for tshark), with its peak RSS.
run() {
  local name=$1; shift
  local runs=3
  [[ "$name" == tshark* ]] && runs=1
  local best="" best_rss=""
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$timing" -f "%e %M" "$@" > /dev/null 2>&1 || true
    local out wall rss
    out=$(tail -1 "$timing")
    wall=${out% *}
    rss=${out#* }
    if [[ -z "$best" ]] || awk "BEGIN{exit !($wall < $best)}"; then best=$wall; best_rss=$rss; fi
  done
  printf '%s %s %s\n' "$name" "$best" "$best_rss" >> "$results"
  printf '%-28s %8.3f s  %8.1f MiB\n' "$name" "$best" "$(awk "BEGIN{print $best_rss/1024}")"
}

frames=$(capinfos -c -M "$capture" | awk -F': *' '/Number of packets/{print $2}')
size=$(stat -L -c %s "$capture")
echo "Capture: $capture ($frames frames, $((size / 1048576)) MiB), $threads cores"
echo
run "dd bs=1M" dd if="$capture" of=/dev/null bs=1M
run "capinfos" capinfos "$capture"
run "twsleuth stats" "$bin" stats --quiet "$capture"
# analyze exits 1 when it finds collisions: that is its success here.
run "twsleuth analyze 1 thread" sh -c "$bin analyze --quiet --threads 1 '$capture'; [ \$? -le 1 ]"
run "twsleuth analyze $threads threads" sh -c "$bin analyze --quiet --threads $threads '$capture'; [ \$? -le 1 ]"
run "twsleuth report" sh -c "$bin report --quiet '$capture' -o '$report_dir' > /dev/null"
if ! $skip_tshark; then
  run "tshark reused_ports" tshark -r "$capture" -Y tcp.analysis.reused_ports
fi

wall() { grep "^$1 " "$results" | awk '{print $(NF-1)}' | head -1; }
dd_s=$(wall "dd"); cap_s=$(wall "capinfos"); stats_s=$(wall "twsleuth stats")
a1=$(grep "^twsleuth analyze 1 " "$results" | awk '{print $(NF-1)}')
an=$(grep "^twsleuth analyze $threads " "$results" | awk '{print $(NF-1)}')
echo
echo "stats vs capinfos:        $(awk "BEGIN{printf \"%.1fx faster (target >= 5x)\", $cap_s/$stats_s}")"
echo "stats vs dd:              $(awk "BEGIN{printf \"%.1fx the page-cache read time (target <= 10x)\", $stats_s/$dd_s}")"
echo "analyze packets/s:        $(awk "BEGIN{printf \"%.1f M/s on $threads threads (target >= 10 M/s)\", $frames/$an/1e6}")"
echo "analyze 1 -> $threads threads:   $(awk "BEGIN{printf \"%.2fx (target >= 1.7x)\", $a1/$an}")"
rep=$(wall "twsleuth report")
echo "report vs analyze:        $(awk "BEGIN{printf \"%.2fx the time (target <= 3x)\", $rep/$an}")"
if ! $skip_tshark; then
  ts=$(grep "^tshark " "$results" | awk '{print $(NF-1)}')
  echo "analyze vs tshark:        $(awk "BEGIN{printf \"%.0fx faster (target >= 100x)\", $ts/$an}")"
fi
echo "peak RSS:"
awk '{rss=$NF; NF-=2; printf "  %-28s %6.1f MiB\n", $0, rss/1024}' "$results"

flood=bench-data/flood.pcap
if [[ ! -f "$flood" ]]; then
  echo "Generating $flood (deterministic, seed 1)..." >&2
  python3 scripts/gen_flood_capture.py --base fixtures/lab/haproxy/lb-backend.pcap \
    --syns 1000000 --scan-ports 20000 -o "$flood" 2> /dev/null
fi
cat "$flood" > /dev/null
echo
# The default --max-memory follows the machine (a quarter of it): the cap under test is set.
/usr/bin/time -o "$timing" -f "%e %M" "$bin" analyze --quiet --json --max-memory 256MiB "$flood" > "$results" || true
read -r flood_s flood_kb < <(tail -1 "$timing")
python3 - "$results" "$flood_s" "$flood_kb" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t, mib = d["tracker"], int(sys.argv[3]) / 1024
print(f"SYN flood (1 M SYNs + scan): {float(sys.argv[2]):.2f} s, peak RSS {mib:.0f} MiB "
      f"({'within' if mib <= 256 else 'OVER'} the 256 MiB cap); {t['memory_evictions']:,} evicted, "
      f"{t['failed_attempts']:,} failed attempts; "
      f"collisions found: {d['collisions']['total']} (the lab capture alone: 700)")
PY

# watch during a load test: the bench capture replayed through a pipe at 10,000 and 100,000
# packets/s for WATCH_SECONDS (default 20) each, with watch's standard output on a terminal
# (script(1) gives it one, so the view is redrawn in place as a user would see it). Its CPU
# (user + system) over the replay's seconds is what watching costs (it errs high: watch also
# waits while the replayer loads the capture); the frames it counted against those sent show
# whether it kept up (a pipe never drops: a watch that fell behind would slow the replay, and
# fewer frames would be sent in its seconds).
echo
watch_seconds=${WATCH_SECONDS:-20}
for pps in 10000 100000; do
  script -qec "python3 scripts/pace_capture.py --pps $pps --seconds $watch_seconds '$capture' \
    | /usr/bin/time -o '$timing' -f '%U %S %e %M' '$bin' watch -" "$results" > /dev/null || true
  read -r w_user w_sys _ w_kb < <(tail -1 "$timing")
  # The terminal's transcript ends with analyze's summary.
  w_frames=$(tr -d '\r' < "$results" | sed -n 's/^Frames: \([0-9]*\).*/\1/p' | tail -1)
  awk -v pps="$pps" -v secs="$watch_seconds" -v u="$w_user" -v s="$w_sys" -v kb="$w_kb" -v f="${w_frames:-0}" 'BEGIN{
    printf "watch at %7d packets/s: %5.1f%% of one core (target < 20%%), %d of %d frames sent counted, peak RSS %.0f MiB\n",
      pps, 100*(u+s)/secs, f, pps*secs, kb/1024}'
done

if [[ -n "${SCALE_DIR:-}" ]]; then
  echo
  echo "Scale (one run each): connections, analyze s / MiB, report s / MiB, report/analyze time, collisions vs truth"
  for capture in $(ls "$SCALE_DIR"/load-*.pcap | sort -t- -k2 -n); do
    truth="${capture%.pcap}.truth.json"
    [[ -f "$truth" ]] || continue
    cat "$capture" > /dev/null
    /usr/bin/time -o "$timing" -f "%e %M" "$bin" analyze --quiet --json "$capture" > "$results" || true
    read -r a_s a_kb < <(tail -1 "$timing")
    scale_dir=$(mktemp -d)
    /usr/bin/time -o "$timing" -f "%e %M" "$bin" report --quiet "$capture" -o "$scale_dir" > /dev/null || true
    read -r r_s r_kb < <(tail -1 "$timing")
    rm -rf "$scale_dir"
    python3 - "$results" "$truth" "$a_s" "$a_kb" "$r_s" "$r_kb" <<'PY'
import json, sys
found, truth = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
a_s, a_kb, r_s, r_kb = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
n, c, t = truth["connections"], found["collisions"]["total"], truth["collisions"]["total"]
print(f"  {n:>10,}  analyze {a_s:7.2f} s {a_kb/1024:7.0f} MiB  report {r_s:7.2f} s {r_kb/1024:7.0f} MiB"
      f"  {r_s/a_s:4.2f}x  collisions {c:,} {'=' if c == t else '!='} truth {t:,}")
PY
  done
fi
