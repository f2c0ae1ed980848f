#!/usr/bin/env bash
# Regenerates the example reports under reports/ from the bundled fixtures. Reports are
# deterministic (no wall-clock time), so `git diff reports/` after this shows exactly what a
# change did to them; crates/cli/tests/cli.rs compares them with fresh output.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/twsleuth
# scenario name, then its capture(s)
while read -r name captures; do
  rm -rf "reports/$name"
  # shellcheck disable=SC2086  # several captures are separate arguments
  # Exit status 1 (collisions found) and 3 (none found, evidence incomplete) are results.
  status=0
  # A fixed --max-memory: the default follows the machine, and summary.json records it.
  "$bin" report --quiet --max-memory 1GiB $captures -o "reports/$name" > /dev/null || status=$?
  case $status in 0 | 1 | 3) ;; *) exit "$status" ;; esac
  echo "reports/$name"
done <<'LIST'
haproxy-lb-backend fixtures/lab/haproxy/lb-backend.pcap
rejected-server fixtures/lab/rejected/server.pcap
clean-server fixtures/lab/clean/server.pcap
synthetic-lb-cycle fixtures/synthetic/lb-cycle.pcap.gz
LIST
