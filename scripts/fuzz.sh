#!/usr/bin/env bash
# Coverage-guided fuzzing of twsleuth with cargo-fuzz (libFuzzer, AddressSanitizer), one target
# at a time, one process (and RAYON_NUM_THREADS=1 so that the sharded tracker stays on one core).
#
#   scripts/fuzz.sh SECONDS [TARGET...]      targets: reader decode flows end_to_end (default all)
#
# Installs cargo-fuzz if missing (needs the nightly toolchain), builds the seed corpora
# fuzz/seeds/<target>/ from fixtures/ (fuzz/make_seeds.py), copies them and the inputs that once
# crashed a target (fixtures/fuzz/<target>-*.bin; the end_to_end ones are captures, so the
# reader gets them too) into fuzz/corpus/<target>/ (kept between runs, not committed), runs each
# target for SECONDS and prints per target: executions, exec/s, corpus size and the
# crash/timeout/OOM artifacts in fuzz/artifacts/<target>/. When a run stops on a crash, the
# target is started again for the rest of its SECONDS (at most FUZZ_MAX_RESTARTS times,
# default 3).
# Exit status: 0 when every run of every target ended without a crash, timeout or OOM; 1 when
# one did (or the build failed); 2 on a usage or setup error. CI relies on it (.ci/run).
# Environment: FUZZ_MAX_RESTARTS; FUZZ_CORPUS (default fuzz/corpus): the corpus root, e.g. an
# empty directory to start from the seeds alone; FUZZ_ARGS: more libFuzzer flags, appended
# (a later flag overrides an earlier one).
# Logs: fuzz/logs/<target>.<run>.log. Reproduce a crash: cargo +nightly fuzz run TARGET ARTIFACT;
# minimise it: cargo +nightly fuzz tmin TARGET ARTIFACT.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/fuzz.sh SECONDS [reader|decode|flows|end_to_end ...]" >&2; exit 2; }
[[ $# -ge 1 && "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] || usage
seconds=$1
shift
all_targets=(reader decode flows end_to_end)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t" >&2; usage; }
done

max_len() {
  case $1 in
    reader | end_to_end) echo 65536 ;;
    decode) echo 16384 ;;
    flows) echo 4096 ;;
  esac
}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is needed: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

corpus_root=${FUZZ_CORPUS:-fuzz/corpus}
read -r -a extra_args <<<"${FUZZ_ARGS:-}"
python3 fuzz/make_seeds.py fuzz/seeds
for t in "${targets[@]}"; do
  mkdir -p "$corpus_root/$t" "fuzz/artifacts/$t"
  # Seeds are named by content or fixture: copying again adds only what is missing.
  cp -n fuzz/seeds/"$t"/* "$corpus_root/$t/" 2>/dev/null || true
  # The inputs that crashed a target once: a regression fails the run at once.
  crashers=(fixtures/fuzz/"$t"-*.bin)
  [[ $t != reader ]] || crashers+=(fixtures/fuzz/end_to_end-*.bin)
  for f in "${crashers[@]}"; do
    [[ ! -f $f ]] || cp -n "$f" "$corpus_root/$t/fixture-$(basename "$f")" 2>/dev/null || true
  done
done

mkdir -p fuzz/logs
echo "Building the fuzz targets (the first build takes a few minutes on 2 cores)..." >&2
if ! cargo +nightly fuzz build >fuzz/logs/build.log 2>&1; then
  tail -n 40 fuzz/logs/build.log >&2
  exit 1
fi

bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
export RAYON_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}
summary=()
failed=()
for t in "${targets[@]}"; do
  rm -f fuzz/logs/"$t".*.log
  stamp="fuzz/logs/.start-$t"
  touch "$stamp"
  start=$(date +%s)
  runs=0
  execs=0
  while :; do
    left=$((seconds - ($(date +%s) - start)))
    ((left > 0)) || break
    runs=$((runs + 1))
    log="fuzz/logs/$t.$runs.log"
    echo "== $t: run $runs for ${left}s (log $log)" >&2
    status=0
    # The binary cargo fuzz built above, run directly (what `cargo +nightly fuzz run` does, but
    # without rebuilding: crates/ may be edited meanwhile).
    cmd=("$bin_dir/$t" -artifact_prefix="fuzz/artifacts/$t/" -max_total_time="$left"
      -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1
      ${extra_args[@]+"${extra_args[@]}"} "$corpus_root/$t")
    echo "RAYON_NUM_THREADS=1 ASAN_OPTIONS=$ASAN_OPTIONS ${cmd[*]}" >"$log"
    "${cmd[@]}" >>"$log" 2>&1 || status=$?
    # Executions: the final stats (printed on a crash too), else the last status line.
    run_execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -n 1 | awk '{print $2}')
    [[ -n "$run_execs" ]] || run_execs=$(grep -a -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    execs=$((execs + ${run_execs:-0}))
    ((status != 0)) || break
    [[ " ${failed[*]} " == *" $t "* ]] || failed+=("$t")
    grep -a -E "panicked at|^==[0-9]+== ERROR|^SUMMARY|Test unit written|Failed to compile" "$log" | head -n 5 >&2 || true
    if ((runs > ${FUZZ_MAX_RESTARTS:-3})); then
      echo "== $t: stopped after $runs runs that each ended on a crash" >&2
      break
    fi
  done
  wall=$(($(date +%s) - start))
  corpus=$(find "$corpus_root/$t" -type f | wc -l)
  new=$(find "fuzz/artifacts/$t" -type f -newer "$stamp" | wc -l)
  summary+=("$(printf '%-11s %6s %12s %9s %8s %6s %5s' "$t" "${wall}s" "$execs" \
    "$((execs / (wall > 0 ? wall : 1)))" "$corpus" "$new" "$runs")")
done

echo
echo "target        wall   executions    exec/s   corpus  crash  runs   (crash = new crash/timeout/OOM artifacts)"
printf '%s\n' "${summary[@]}"
for t in "${targets[@]}"; do
  find "fuzz/artifacts/$t" -type f -newer "fuzz/logs/.start-$t" | sed "s|^|  new artifact: |"
done
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: FAILED: a run of ${failed[*]} ended on a crash, timeout or OOM (see fuzz/logs/)" >&2
  exit 1
fi
