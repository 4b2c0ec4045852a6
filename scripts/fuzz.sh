#!/usr/bin/env bash
# The fuzz campaign of issue 12: each libFuzzer target of build/fuzz for FUZZ_RUNS executions, one target
# at a time, at nice 10 (the machine is shared). The working corpus lives in build/fuzz/campaign/<target>
# (seeded from tests/fuzz/corpus/<target>), so running this again resumes from what was found. A crash
# leaves its input in build/fuzz/campaign/ (crash-*, leak-*, timeout-*, oom-*) and stops the campaign.
#   FUZZ_RUNS=10000000 FUZZ_TARGETS="fuzz_npy fuzz_tensor_pb" scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${FUZZ_RUNS:-10000000}
targets=${FUZZ_TARGETS:-fuzz_npy fuzz_tensor_pb fuzz_load fuzz_run}
out=build/fuzz/campaign
mkdir -p "$out"
for t in $targets; do
  bin=build/fuzz/tests/fuzz/$t
  [[ -x $bin ]] || { echo "fuzz.sh: $bin is not built (make fuzz builds it)" >&2; exit 1; }
  mkdir -p "$out/$t"
  echo "== $t: $runs executions, log $out/$t.log"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 10 "$bin" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$out/" "$out/$t" "tests/fuzz/corpus/$t" >"$out/$t.log" 2>&1 || {
    echo "fuzz.sh: $t failed; see $out/$t.log" >&2
    exit 1
  }
  grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$out/$t.log"
  echo "corpus: $(ls "$out/$t" | wc -l) files"
done
