#!/usr/bin/env bash
# The fuzz campaign of issue 12: each libFuzzer target of build/fuzz for FUZZ_RUNS executions, FUZZ_JOBS
# targets at a time (default one), at nice 10 (the machine is shared). The working corpus lives in
# build/fuzz/campaign/<target> (seeded from tests/fuzz/corpus/<target>), so running this again resumes from
# what was found. A crash leaves its input in build/fuzz/campaign/ (crash-*, leak-*, timeout-*, oom-*) and
# fails that target's run (with FUZZ_JOBS=1 it also stops the campaign). libFuzzer's fork mode (one worker) runs
# the executions in a series of child processes merging into the corpus: over millions of executions one ASan
# process grows by ~150 MB per million (allocator caches, stack depot) and would pass the 2 GB RSS limit
# without any input at fault. Crashes, leaks, timeouts and out-of-memory still end the run.
#   FUZZ_RUNS=10000000 FUZZ_TARGETS="fuzz_load fuzz_run" FUZZ_JOBS=2 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${FUZZ_RUNS:-10000000}
targets=${FUZZ_TARGETS:-fuzz_npy fuzz_tensor_pb fuzz_load fuzz_run}
jobs=${FUZZ_JOBS:-1}
out=build/fuzz/campaign
mkdir -p "$out"
# One target's run; its summary goes to stdout when it ends.
run_target() {
  local t=$1 bin=build/fuzz/tests/fuzz/$1
  mkdir -p "$out/$t"
  echo "== $t: $runs executions, log $out/$t.log"
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 10 "$bin" -fork=1 -ignore_crashes=0 -ignore_timeouts=0 -ignore_ooms=0 -runs="$runs" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$out/" "$out/$t" "tests/fuzz/corpus/$t" >"$out/$t.log" 2>&1; then
    echo "fuzz.sh: $t failed; see $out/$t.log" >&2
    return 1
  fi
  echo "== $t done:"
  grep -E "^#[0-9]+: cov" "$out/$t.log" | tail -1
  grep -E "^INFO: fuzzed for|^INFO: exiting" "$out/$t.log"
  echo "corpus: $(ls "$out/$t" | wc -l) files"
}

for t in $targets; do
  [[ -x build/fuzz/tests/fuzz/$t ]] || { echo "fuzz.sh: build/fuzz/tests/fuzz/$t is not built (make fuzz builds it)" >&2; exit 1; }
done
# FUZZ_JOBS targets run at once (default 1: one after another, stopping at the first failure).
status=0
running=0
for t in $targets; do
  if (( jobs <= 1 )); then
    run_target "$t" || exit 1
    continue
  fi
  run_target "$t" &
  running=$((running + 1))
  if (( running >= jobs )); then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while (( running > 0 )); do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
