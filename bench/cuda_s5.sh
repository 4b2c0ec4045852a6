#!/bin/bash
# Session 5 helper's GPU steps (cuda5): OUT=$OUT bash .cuda5_run/s5.sh PHASE...   (files packed by bench/cuda_pack.sh,
# plus this script as s5.sh and, optionally, the build before this branch as orchard_before)
#   a  checks and a first bench: GPU unit tests, the four standard models fp16 vs the CPU, the fp16 bench at batch
#      32 of orchard_before and orchard (same lease A/B) and of orchard at batch 1, memcheck, fp32 vs the CPU,
#      op summaries
#   c  a and b in one call, shortened (the unit tests of the CUDA code, fp16 checks, A/B and batch-1 bench, torch
#      with an 80 s budget, memcheck of the new kernels' tests)
#   b  figures: the fp16 bench of the four models at batch 1 and 32, then tools/torch_anchor.py (eager, compiled)
# Everything lands in $OUT/summary.txt as it is measured (logs beside it).
cd "$(dirname "$0")" || exit 1
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
S=$OUT/summary.txt
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
log() { echo "$(el) $*" | tee -a $S; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a $S
mkdir -p /tmp/m
(for m in resnet50 mobilenet_v2 bert_base gpt2; do
  [ -f /tmp/m/$m.onnx ] || python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx >> $OUT/fill.log 2>&1
done) &
FILL=$!
fixdims() { case $1 in bert_base|gpt2) echo --fix-dims;; esac; }
cmp() {  # model precision
  local m=$1 p=$2
  rm -rf /tmp/o/$m.$p && mkdir -p /tmp/o/$m.$p /tmp/o/$m.cpu
  [ -f /tmp/o/$m.cpu/done ] || { timeout 90 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cpu --output-dir /tmp/o/$m.cpu > /dev/null 2>&1; touch /tmp/o/$m.cpu/done; }
  timeout 60 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision $p $(fixdims $m) --output-dir /tmp/o/$m.$p > /tmp/cmp.log 2>&1
  local tol=1e-4; [ $p = fp16 ] && tol=1e-2
  log "standard $m $p: $(python3 tools/compare_outputs.py /tmp/o/$m.$p /tmp/o/$m.cpu --tol $tol 2>&1 | tail -1) $(grep -i error /tmp/cmp.log | head -1)"
}
b() {  # binary model N [flags]
  local bin=$1 m=$2 n=$3; shift 3
  r=$(timeout 100 ./$bin bench /tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 $(fixdims $m) "$@" --warmup 10 --runs 30 2>&1 | tail -4 | tr '\n' ' ')
  log "bench $bin $m N=$n fp16 $(fixdims $m) $*: $r"
}
for phase in "$@"; do case $phase in
a)
  timeout 170 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Float16*:Manager*:FusedAttention*:FusedMatMul*:FusedConv*:Gelu*:VecKernels*:MaskCases*:Partitioner*:Session*' > $OUT/unit.log 2>&1
  log "unit rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $OUT/unit.log | head -3 | tr '\n' ' ')"
  grep -E '^\[  FAILED|Failure|error:' $OUT/unit.log | head -30 | tee -a $S
  wait $FILL
  for m in resnet50 mobilenet_v2 bert_base gpt2; do cmp $m fp16; done
  for m in bert_base resnet50 gpt2 mobilenet_v2; do
    [ -x ./orchard_before ] && b orchard_before $m 32
    b orchard $m 32
  done
  for m in resnet50 mobilenet_v2 bert_base gpt2; do b orchard $m 1; done
  timeout 150 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 --gtest_filter='CudaBackend.*:CudaGraphs.*:CudaModes.*:CudaOps.*:CrossBackend.BinaryFast*:CrossBackend.Transpose*:FusedAttention.*:FusedMatMul.*:FusedConv.*:-CudaBackend.DriverErrorsBecomeStatus' > $OUT/memcheck.log 2>&1
  log "memcheck rc=$? $(grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -3 | tr '\n' ' ')"
  for m in resnet50 mobilenet_v2 bert_base gpt2; do cmp $m fp32; done
  for mn in "bert_base 32" "resnet50 32"; do set -- $mn
    (echo "== $1 N=$2 fp16"; timeout 60 ./orchard bench /tmp/m/$1.onnx --dim N=$2 --dim S=128 --backend cuda,cpu --precision fp16 $(fixdims $1) --warmup 2 --runs 3 --op-summary 2>&1 | tail -25) >> $OUT/opsum.log
    log "opsum $1 $2 written"
  done
  ;;
b)
  wait $FILL
  for m in resnet50 mobilenet_v2 bert_base gpt2; do for n in 1 32; do b orchard $m $n; done; b orchard $m 32 --device-outputs; done
  BUDGET_S=${TORCH_BUDGET_S:-280} MIN_LEFT_S=20 timeout ${TORCH_S:-360} python3 tools/torch_anchor.py > $OUT/torch_anchor.log 2>&1
  log "torch_anchor rc=$?"; grep -E "^(resnet50|mobilenet_v2|bert_base|gpt2)" $OUT/torch_anchor.log | cut -c1-160 >> $S
  ;;
c)  # everything in one call, most important first (the device time of this session allowed one call)
  timeout 100 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Float16*:FusedAttention*:FusedMatMul*:FusedConv*:Gelu*:VecKernels*' > $OUT/unit.log 2>&1
  log "unit rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $OUT/unit.log | head -3 | tr '\n' ' ')"
  grep -E '^\[  FAILED|Failure|error:' $OUT/unit.log | head -30 | tee -a $S
  wait $FILL
  for m in resnet50 bert_base mobilenet_v2 gpt2; do cmp $m fp16; done
  for m in bert_base resnet50 gpt2 mobilenet_v2; do
    case $m in bert_base|resnet50) [ -x ./orchard_before ] && b orchard_before $m 32;; esac
    b orchard $m 32
    b orchard $m 1
  done
  b orchard bert_base 32 --device-outputs
  BUDGET_S=${TORCH_BUDGET_S:-80} MIN_LEFT_S=20 timeout ${TORCH_S:-120} python3 tools/torch_anchor.py > $OUT/torch_anchor.log 2>&1
  log "torch_anchor rc=$?"; grep -E "^(resnet50|mobilenet_v2|bert_base|gpt2)" $OUT/torch_anchor.log | cut -c1-160 >> $S
  timeout 60 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 --gtest_filter='CudaModes.Float16Fused*:CudaOps.*:CrossBackend.BinaryFast*:CrossBackend.Transpose*:FusedAttention.*:FusedMatMul.*:FusedConv.*' > $OUT/memcheck.log 2>&1
  log "memcheck rc=$? $(grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -3 | tr '\n' ' ')"
  ;;
esac; done
log "done"
