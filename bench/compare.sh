#!/usr/bin/env bash
# Orchard vs ONNX Runtime on the standard models, side by side on this machine (issue 9's table).
# Per model and thread count, runs `orchard bench` and ORT (../shared/tools/ort_bench.mjs) alternately for
# ROUNDS rounds (order swapped each round) with the same thread count and input sizes; each side's latency
# is the median of its per-round medians. Then a load-only run of each under /usr/bin/time -v gives
# session-creation time and peak RSS. Prints a markdown table with ratios and their geometric means.
#
# Usage: bench/compare.sh [MODEL...]     (default: the eight models of bench/models.sh)
# Env: ORCHARD (binary, default build/release/orchard), THREADS ("1 2"), ROUNDS (2),
#      RUNS (timed runs per round, 10), WARMUP (3), ORT_OPT (ORT optimization level, all),
#      ORCHARD_ARGS (extra `orchard bench` flags), PEERS_DIR (.peers).
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${SHARED_DIR:-../shared}"
orchard="${ORCHARD:-build/release/orchard}"
threads="${THREADS:-1 2}"
rounds="${ROUNDS:-2}"
runs="${RUNS:-10}"
warmup="${WARMUP:-3}"
ort_opt="${ORT_OPT:-all}"
export PEERS_DIR="${PEERS_DIR:-$PWD/.peers}"
[[ -x "$orchard" ]] || { echo "compare.sh: no orchard binary at $orchard (build the release preset)" >&2; exit 1; }
[[ -d "$PEERS_DIR/node_modules/onnxruntime-node" ]] || {
  echo "compare.sh: ONNX Runtime is not installed in $PEERS_DIR (see ../shared/tools/README.md)" >&2; exit 1; }
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(resnet50 mobilenet_v2 efficientnet_b0 convnext_tiny vit_b_16 bert_base gpt2 whisper_tiny_encoder)

# Input sizes per model: Orchard's --dim flags and ORT's flags (batch 1, sequence 128 for the text models).
orchard_dims() {
  case "$1" in
    bert_base|gpt2) echo "--dim N=1 --dim S=128" ;;
    *) echo "--dim N=1" ;;
  esac
}
ort_dims() {
  case "$1" in
    bert_base) echo "--dim N=1 --dim S=128 --int-range input_ids=0:30522 --fill attention_mask=1" ;;
    gpt2) echo "--dim N=1 --dim S=128 --int-range input_ids=0:50257" ;;
    *) echo "--dim N=1" ;;
  esac
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

orchard_run() {  # model threads -> median ms
  # shellcheck disable=SC2046
  "$orchard" bench "bench/models/$1.onnx" --threads "$2" --warmup "$warmup" --runs "$runs" $(orchard_dims "$1") \
    ${ORCHARD_ARGS:-} | awk '/^median/ {print $2}'
}
ort_run() {  # model threads -> median ms
  # shellcheck disable=SC2046
  node "$shared/tools/ort_bench.mjs" "bench/models/$1.onnx" --threads "$2" --warmup "$warmup" --iters "$runs" \
    --opt "$ort_opt" $(ort_dims "$1") | sed -n 's/.*"median_ms":\([0-9.]*\).*/\1/p'
}
# Peak RSS (MB) and session-creation time (ms) of a load-only run.
orchard_load() {
  /usr/bin/time -v "$orchard" bench "bench/models/$1.onnx" --threads 1 --load-only 2> "$tmp/time" |
    awk '/session created/ {print $4}'
  awk '/Maximum resident/ {printf "%.0f\n", $6/1024}' "$tmp/time"
}
ort_load() {
  /usr/bin/time -v node "$shared/tools/ort_load.mjs" "bench/models/$1.onnx" --opt "$ort_opt" 2> "$tmp/time" |
    sed -n 's/.*"create_ms":\[\([0-9.]*\).*/\1/p'
  awk '/Maximum resident/ {printf "%.0f\n", $6/1024}' "$tmp/time"
}

header="| model |"; sep="|---|"
for t in $threads; do header+=" ORT ${t}t ms | Orchard ${t}t ms | ratio |"; sep+="---|---|---|"; done
header+=" ORT load ms | Orchard load ms | ORT load RSS MB | Orchard load RSS MB |"; sep+="---|---|---|---|"
rows=()
declare -A logsum count
for m in "${models[@]}"; do
  [[ -f "bench/models/$m.onnx" ]] || { echo "compare.sh: bench/models/$m.onnx missing (run bench/models.sh)" >&2; exit 1; }
  row="| $m |"
  for t in $threads; do
    : > "$tmp/o"; : > "$tmp/r"
    for ((r = 0; r < rounds; r++)); do
      if ((r % 2 == 0)); then orchard_run "$m" "$t" >> "$tmp/o"; ort_run "$m" "$t" >> "$tmp/r"
      else ort_run "$m" "$t" >> "$tmp/r"; orchard_run "$m" "$t" >> "$tmp/o"; fi
    done
    o=$(median < "$tmp/o"); r=$(median < "$tmp/r")
    ratio=$(awk -v a="$o" -v b="$r" 'BEGIN {printf "%.2f", a / b}')
    logsum[$t]=$(awk -v s="${logsum[$t]:-0}" -v x="$ratio" 'BEGIN {print s + log(x)}')
    count[$t]=$(( ${count[$t]:-0} + 1 ))
    row+=" $r | $o | $ratio |"
    echo "$m threads=$t orchard=$o ort=$r ratio=$ratio" >&2
  done
  mapfile -t ol < <(orchard_load "$m"); mapfile -t rl < <(ort_load "$m")
  row+=" ${rl[0]} | ${ol[0]} | ${rl[1]} | ${ol[1]} |"
  rows+=("$row")
done
echo "$header"; echo "$sep"
printf '%s\n' "${rows[@]}"
geo="| **geomean ratio** |"
for t in $threads; do geo+=" | | **$(awk -v s="${logsum[$t]}" -v n="${count[$t]}" 'BEGIN {printf "%.2f", exp(s / n)}')** |"; done
echo "$geo"
