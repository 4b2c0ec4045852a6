#!/bin/bash
# Session 12: FusedAttention version 2 (bshd, bs3hd) on CUDA through cuBLAS (strided over the heads of one sequence,
# pointer arrays across sequences). Pack: bash bench/cuda_pack.sh DIR; put `orchard_before` (the previous main's
# binary) beside orchard; tar orchard orchard_before orchard_tests lib into DIR/bin.tar.gz and drop testdata.tar.xz
# and conformance (the 64 MiB carry limit); copy this script in; carry [DIR]: OUT=$OUT bash DIR/cuda_s12.sh. The
# PyTorch peers, a second call in the same lease: cd DIR && BUDGET_S=240 python3 tools/torch_anchor.py.
cd "$(dirname "$0")" && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
against_cpu() {  # each model's outputs on CUDA in fp32 and fp16 against the CPU's (fixed dims, N=2)
  for m in "$@"; do
    local F="/tmp/m/$m.onnx --dim N=2 --dim S=128 --fix-dims"
    rm -rf /tmp/o && mkdir -p /tmp/o/cpu /tmp/o/cuda /tmp/o/half
    timeout 60 ./orchard run $F --backend cpu --output-dir /tmp/o/cpu > /dev/null 2>&1
    timeout 60 ./orchard run $F --backend cuda,cpu --output-dir /tmp/o/cuda > /dev/null 2>&1
    timeout 60 ./orchard run $F --backend cuda,cpu --precision fp16 --output-dir /tmp/o/half > /dev/null 2>&1
    echo "$(el) $m fp32: $(python3 tools/compare_outputs.py /tmp/o/cuda /tmp/o/cpu --tol 1e-4 2>&1 | tail -1)" \
      " fp16: $(python3 tools/compare_outputs.py /tmp/o/half /tmp/o/cpu --tol 1e-2 2>&1 | tail -1)"
  done
}
if [ "${1:-}" = lean ]; then  # `cuda_s12.sh lean`: attention checks, the four models' timings and the PyTorch peers
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  mkdir -p /tmp/m
  (for m in gpt2 bert_base resnet50 mobilenet_v2; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
  timeout 60 ./orchard_tests --gtest_brief=1 --gtest_filter='CudaOps.FusedAttention*:CudaModes.Float16FusedAttention*:FusedAttention.*:FuseAttention*' > $OUT/unit.log 2>&1; echo "$(el) unit rc=$?"
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -10
  timeout 60 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 \
    --gtest_filter='CudaModes.Float16FusedAttentionLayouts*:FusedAttention.Bs3hd*' > $OUT/memcheck.log 2>&1; echo "$(el) memcheck rc=$?"
  grep -E 'ERROR SUMMARY' $OUT/memcheck.log | head -2
  while [ ! -f /tmp/m/done ]; do sleep 1; done
  against_cpu gpt2 bert_base
  for m in gpt2 bert_base resnet50 mobilenet_v2; do for n in 1 32; do
    F="/tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs --warmup 10 --runs 50"
    case $m in gpt2|bert_base) echo "-- $m N=$n before: $(timeout 40 ./orchard_before bench $F 2>&1 | grep -E 'median' | tr '\n' ' ')";; esac
    echo "-- $m N=$n now: $(timeout 40 ./orchard bench $F 2>&1 | grep -E 'median|peak|created' | tr '\n' ' ')"
  done; done
  echo "$(el) == PyTorch peers"
  BUDGET_S=${PEER_BUDGET_S:-200} timeout $(( ${PEER_BUDGET_S:-200} + 60 )) python3 tools/torch_anchor.py 2>&1 | tail -25
  echo "$(el) done"
  exit 0
fi
if [ "${1:-}" = profile ]; then  # `cuda_s12.sh profile`: per-kernel GPU time of one gpt2 batch-1 run (ncu)
  mkdir -p /tmp/m && python3 tools/fill_weights.py models_std/gpt2.skeleton.onnx /tmp/m/gpt2.onnx > /dev/null 2>&1
  ORCHARD_CUDA_GRAPHS=0 timeout 200 /usr/local/cuda/bin/ncu --csv --metrics gpu__time_duration.sum ./orchard bench \
    /tmp/m/gpt2.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs \
    --device-outputs --warmup 0 --runs 1 > $OUT/ncu.csv 2> $OUT/ncu.err; echo rc=$?
  python3 - $OUT/ncu.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
name, unit, val = head.index("Kernel Name"), head.index("Metric Unit"), head.index("Metric Value")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    v = float(r[val].replace(",", "")) * (1e-3 if r[unit] == "nsecond" else 1.0 if r[unit] == "usecond" else 1e3)
    k = r[name][:90]; tot[k] += v; cnt[k] += 1
print("kernels", sum(cnt.values()), "total us %.1f" % sum(tot.values()))
for k, v in sorted(tot.items(), key=lambda x: -x[1])[:25]: print("%8.1f us %4d  %s" % (v, cnt[k], k))
PY
  exit 0
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
mkdir -p /tmp/m
M="gpt2 bert_base whisper_tiny_encoder resnet50 mobilenet_v2"
(for m in $M; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
echo "$(el) == unit"
timeout 150 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Fused*:FuseAttention*:Float16*:ChannelsLast*' > $OUT/unit.log 2>&1; echo rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -20
grep -B2 -A12 'Failure' $OUT/unit.log | head -40
echo "$(el) == memcheck, attention"
timeout 90 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 \
  --gtest_filter='CudaOps.FusedAttention*:CudaModes.Float16FusedAttention*:FusedAttention.Bs3hd*:FusedAttention.Bshd*' > $OUT/memcheck.log 2>&1; echo rc=$?
grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -5
while [ ! -f /tmp/m/done ]; do sleep 1; done
echo "$(el) == against the CPU (fixed dims, N=2)"
against_cpu gpt2 bert_base whisper_tiny_encoder
echo "$(el) == fp16, fixed dims, device I/O: before (session 11's main) / now"
for m in gpt2 bert_base resnet50 mobilenet_v2; do for n in 1 32; do
  F="/tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs --warmup 10 --runs 50"
  for r in 1 2; do
    case $m in resnet50|mobilenet_v2) [ $r = 2 ] && continue;;  # unchanged since session 11
      *) echo "-- $m N=$n before: $(timeout 40 ./orchard_before bench $F 2>&1 | grep -E 'median' | tr '\n' ' ')";; esac
    echo "-- $m N=$n now: $(timeout 40 ./orchard bench $F 2>&1 | grep -E 'median|peak|created' | tr '\n' ' ')"
  done
done; done
echo "$(el) done"
