#!/bin/bash
# Session 4 helper's GPU steps (cuda4), one call: OUT=$OUT bash .cuda4_run/s4.sh f
# Checks first (GPU-relevant unit tests, two standard models on CUDA vs the CPU), then the fp16 bench (with and without
# --fix-dims for the transformers, cuDNN timed vs heuristic algorithms for the CNNs at batch 32) with device
# memory peaks, the torch peers, op summaries, memcheck. Everything lands in $OUT/summary.txt as it is measured.
cd "$(dirname "$0")" || exit 1
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
S=$OUT/summary.txt
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
log() { echo "$(el) $*" | tee -a $S; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a $S
mkdir -p /tmp/m
(for m in resnet50 mobilenet_v2 bert_base gpt2; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx >> $OUT/fill.log 2>&1; done) &
FILL=$!
timeout 100 ./orchard_tests --gtest_brief=1 --gtest_filter='Manager*:Cuda*:Float16*:CrossBackend*:MemoryBound*:Partitioner*:Session*' > $OUT/unit.log 2>&1
log "unit rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $OUT/unit.log | head -3 | tr '\n' ' ')"
grep -E '^\[  FAILED' $OUT/unit.log | head -20 | tee -a $S
wait $FILL
cmp() {  # model precision flags...
  local m=$1 p=$2; shift 2
  rm -rf /tmp/o/$m.$p && mkdir -p /tmp/o/$m.$p /tmp/o/$m.cpu
  [ -f /tmp/o/$m.cpu/done ] || { timeout 60 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cpu --output-dir /tmp/o/$m.cpu > /dev/null 2>&1; touch /tmp/o/$m.cpu/done; }
  timeout 60 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision $p "$@" --output-dir /tmp/o/$m.$p > /tmp/cmp.log 2>&1
  local tol=1e-4; [ $p = fp16 ] && tol=1e-2
  log "standard $m $p $*: $(python3 tools/compare_outputs.py /tmp/o/$m.$p /tmp/o/$m.cpu --tol $tol 2>&1 | tail -1) $(grep -i error /tmp/cmp.log | head -1)"
}
cmp resnet50 fp16; cmp bert_base fp16 --fix-dims
b() {  # model N flags...
  local m=$1 n=$2; shift 2
  r=$(timeout 100 ./orchard bench /tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu "$@" --warmup 10 --runs 30 2>&1 | tail -4 | tr '\n' ' ')
  log "bench $m N=$n $*: $r"
}
for m in resnet50 mobilenet_v2; do for n in 1 32; do b $m $n --precision fp16; done; done
for m in bert_base gpt2; do for n in 1 32; do b $m $n --precision fp16 --fix-dims; done; done
ORCHARD_CUDNN_FIND=0 b resnet50 32 --precision fp16
b bert_base 1 --precision fp16; b gpt2 1 --precision fp16
BUDGET_S=${TORCH_BUDGET_S:-90} MIN_LEFT_S=20 timeout ${TORCH_S:-200} python3 tools/torch_anchor.py > $OUT/torch_anchor.log 2>&1
log "torch_anchor rc=$?"; grep -E "^ROW" $OUT/torch_anchor.log | cut -c1-200 >> $S
for mn in "gpt2 1" "bert_base 32" "resnet50 32"; do set -- $mn
  (echo "== $1 N=$2 fp16 --fix-dims"; timeout 60 ./orchard bench /tmp/m/$1.onnx --dim N=$2 --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --warmup 2 --runs 3 --op-summary 2>&1 | tail -25) >> $OUT/opsum.log
  log "opsum $1 $2 written"
done
timeout 120 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 --gtest_filter='CudaBackend.*:CudaGraphs.*:CudaModes.*:-CudaBackend.DriverErrorsBecomeStatus' > $OUT/memcheck.log 2>&1
log "memcheck rc=$? $(grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -3 | tr '\n' ' ')"
