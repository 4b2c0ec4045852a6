#!/bin/bash
# Session 6 helper's GPU steps (cuda6): OUT=$OUT bash build_cuda6_run/s6.sh PHASE...  (files packed by
# bench/cuda_pack.sh, binaries in bin.tar.gz, this script as s6.sh; orchard_before = main's build for the A/B)
#   p  where the time goes: the attention tests, op summaries of orchard_before (bert_base, gpt2 at N=1 and 32,
#      resnet50 and mobilenet_v2 at 32) and orchard (the transformers), the fp16 bench A/B, device inputs, then
#      torch_anchor.py with the time left (TORCH_SKIP: keys to skip)
#   f  final: GPU unit tests, fp16 outputs vs the CPU, orchard_before vs orchard alternated at batch 1 and 32,
#      op summaries of the changed models, compute-sanitizer memcheck, then torch_anchor.py with the time left
#   a  p and f in one call, shortened (what one lease of ~9 minutes allows); q: a in ~5 minutes; r: ~3.5
# Everything lands in $OUT/summary.txt as it is measured (logs beside it; at most 8 files come back).
cd "$(dirname "$0")" || exit 1
[ -f bin.tar.gz ] && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
S=$OUT/summary.txt
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
left() { echo $(( ${DEADLINE_S:-570} - ($(date +%s) - T0) )); }
log() { echo "$(el) $*" | tee -a $S; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,temperature.gpu --format=csv,noheader | tee -a $S
ls -l /usr/local/cuda/bin/compute-sanitizer >> $S 2>&1
mkdir -p /tmp/m
for m in resnet50 mobilenet_v2 bert_base gpt2; do
  [ -f /tmp/m/$m.onnx ] || python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx >> $OUT/fill.log 2>&1 &
done
wait
log "filled $(ls /tmp/m)"
fixdims() { case $1 in bert_base|gpt2) echo --fix-dims;; esac; }
b() {  # binary model N [flags]
  local bin=$1 m=$2 n=$3; shift 3
  local runs=${RUNS32:-30}; [ $n = 1 ] && runs=${RUNS1:-100}
  r=$(timeout 100 ./$bin bench /tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 $(fixdims $m) "$@" --warmup 10 --runs $runs 2>&1 | tail -4 | tr '\n' ' ')
  log "bench $bin $m N=$n fp16 $(fixdims $m) $*: $r"
}
opsum() {  # binary model N [flags]
  local bin=$1 m=$2 n=$3; shift 3
  (echo "== $bin $m N=$n fp16 $(fixdims $m) $*"; timeout 90 ./$bin bench /tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 $(fixdims $m) "$@" --warmup 2 --runs 5 --op-summary 2>&1 | tail -45) >> $OUT/opsum.log
  log "opsum $bin $m N=$n $* written"
}
cmp() {  # model
  local m=$1
  mkdir -p /tmp/o/$m.fp16 /tmp/o/$m.cpu
  timeout 90 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cpu --output-dir /tmp/o/$m.cpu > /dev/null 2>&1
  timeout 60 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision fp16 $(fixdims $m) --output-dir /tmp/o/$m.fp16 > /tmp/cmp.log 2>&1
  log "standard $m fp16: $(python3 tools/compare_outputs.py /tmp/o/$m.fp16 /tmp/o/$m.cpu --tol 1e-2 2>&1 | tail -1) $(grep -i error /tmp/cmp.log | head -1)"
}
torch_peers() {
  local t=$(( $(left) - 15 ))
  [ $t -lt 60 ] && { log "torch_anchor skipped: ${t}s left"; return; }
  SKIP=$TORCH_SKIP BUDGET_S=$(( t - 25 )) MIN_LEFT_S=25 timeout $t python3 tools/torch_anchor.py > $OUT/torch_anchor.log 2>&1
  log "torch_anchor rc=$?"
  grep -E "^(resnet50|mobilenet_v2|bert_base|gpt2)" $OUT/torch_anchor.log | cut -c1-150 >> $S
}
unit() {  # timeout filter: GPU unit tests, their result line and failures in the summary
  timeout $1 ./orchard_tests --gtest_brief=1 --gtest_filter="$2" > $OUT/unit.log 2>&1
  log "unit rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $OUT/unit.log | head -3 | tr '\n' ' ')"
  grep -E '^\[  FAILED|Failure|error:' $OUT/unit.log | head -${3:-20} | tee -a $S
}
memcheck() {  # timeout filter: compute-sanitizer memcheck over GPU unit tests
  timeout $1 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 --gtest_filter="$2" > $OUT/memcheck.log 2>&1
  log "memcheck rc=$? $(grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -3 | tr '\n' ' ')"
}
ATTN='CudaOps.FusedAttention*:CudaModes.Float16FusedAttention*:FusedAttention.*'
for phase in "$@"; do case $phase in
p)
  unit 100 'CudaOps.*:CudaModes.*:FusedAttention*:CrossBackend*'
  for mn in "bert_base 1" "bert_base 32" "gpt2 1" "gpt2 32" "resnet50 32" "mobilenet_v2 32"; do opsum orchard_before $mn; done
  for mn in "bert_base 1" "bert_base 32" "gpt2 32"; do opsum orchard $mn; done
  for m in bert_base gpt2; do for n in 1 32; do b orchard_before $m $n; b orchard $m $n; done; done
  for m in resnet50 mobilenet_v2 bert_base; do b orchard $m 32 --device-inputs --device-outputs; done
  for m in resnet50 mobilenet_v2; do b orchard $m 1; b orchard $m 32; done
  torch_peers
  ;;
a)  # everything in one call (the device time of this session allows about one): checks, A/B, profiles, peers
  unit 90 'CudaOps.*:CudaModes.*:FusedAttention*:FusedMatMul*:CrossBackend*:CudaBackend.*:CudaGraphs.*'
  memcheck 80 $ATTN
  for m in bert_base gpt2; do for n in 1 32; do b orchard_before $m $n; b orchard $m $n; done; done
  for m in bert_base gpt2 resnet50 mobilenet_v2; do for n in 32 1; do b orchard $m $n --device-inputs --device-outputs; done; done
  for mn in "bert_base 32" "gpt2 32" "resnet50 32" "bert_base 1"; do opsum orchard $mn --device-inputs --device-outputs; done
  for m in bert_base gpt2; do cmp $m; done
  for m in resnet50 mobilenet_v2; do for n in 1 32; do b orchard_before $m $n; b orchard $m $n; done; done
  opsum orchard_before bert_base 32
  torch_peers
  ;;
q)  # a in about 5 minutes (what the device time left allows): attention checks, A/B, device inputs, two profiles
  unit 60 'CudaOps.*:CudaModes.*:FusedAttention*:FusedMatMul*'
  memcheck 50 $ATTN
  for m in bert_base gpt2; do for n in 1 32; do b orchard_before $m $n; b orchard $m $n; done; done
  for m in bert_base gpt2 resnet50 mobilenet_v2; do for n in 32 1; do b orchard $m $n --device-inputs --device-outputs; done; done
  for mn in "bert_base 32" "gpt2 32"; do opsum orchard $mn --device-inputs --device-outputs; done
  for m in bert_base gpt2; do cmp $m; done
  [ $(left) -gt 40 ] && b orchard_before resnet50 32 && b orchard resnet50 32
  [ $(left) -gt 30 ] && opsum orchard resnet50 32 --device-inputs --device-outputs
  ;;
r)  # q in about 3.5 minutes: the attention tests, the transformers' A/B, device inputs, memcheck
  unit 45 'CudaOps.*:CudaModes.*:FusedAttention*'
  for m in bert_base gpt2; do for n in 1 32; do b orchard_before $m $n; b orchard $m $n; done; done
  cmp bert_base
  log "next two: ORCHARD_CUDA_ATTENTION=kernel (the one-kernel attention in this binary)"
  for n in 1 32; do ORCHARD_CUDA_ATTENTION=kernel b orchard bert_base $n; done
  for m in bert_base gpt2 resnet50 mobilenet_v2; do b orchard $m 32 --device-inputs --device-outputs; done
  memcheck $(( $(left) - 25 )) $ATTN
  [ $(left) -gt 15 ] && opsum orchard bert_base 32 --device-inputs --device-outputs
  ;;
f)
  unit 120 'Cuda*:CrossBackend*:Float16*:Fused*:Gelu*' 30
  for m in bert_base gpt2 resnet50 mobilenet_v2; do cmp $m; done
  for m in bert_base gpt2 resnet50 mobilenet_v2; do for n in 1 32; do
    [ -x ./orchard_before ] && b orchard_before $m $n
    b orchard $m $n
    [ -x ./orchard_before ] && b orchard_before $m $n
    b orchard $m $n
  done; done
  b orchard bert_base 32 ${FINAL_FLAGS:---device-outputs}
  for mn in ${FINAL_OPSUM:-"bert_base 32" "gpt2 32"}; do opsum orchard $mn; done
  memcheck 150 'Cuda*:CrossBackend*:Float16*:Fused*:Gelu*:-CudaBackend.DriverErrorsBecomeStatus:CudaPlacement.*'
  torch_peers
  ;;
esac; done
log "done"
