#!/bin/bash
# Session 13: the CUDA Gather reads its indices on the device (token ids stay on the GPU; one graph serves every
# prompt; an index out of range fails its run through a fault record), run streams pooled, bfloat16 kernels.
# Pack: bash bench/cuda_pack.sh DIR; tar orchard orchard_tests lib into DIR/bin.tar.gz and drop testdata.tar.xz and
# conformance (the 64 MiB carry limit); copy this script in; carry [DIR]: OUT=$OUT bash DIR/cuda_s13.sh (a gpt2 kernel profile:
# bench/cuda_s12.sh profile, packed the same way).
# The default run: unit tests with the GPU, memcheck on the new tests, gpt2/bert_base against the CPU, the four
# models' fp16 timings (fixed dims, device I/O) and the PyTorch peers (PEER_BUDGET_S) in the same lease.
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
if [ "${1:-}" = short ]; then  # `cuda_s13.sh short`: the new tests, gpt2 against the CPU, gpt2/bert timings, peers
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  mkdir -p /tmp/m
  (for m in gpt2 bert_base; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
  timeout 100 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Fused*:Float16*' > $OUT/unit.log 2>&1; echo "$(el) unit rc=$?"
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -20
  timeout 60 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 \
    --gtest_filter='CudaGraphs.*' > $OUT/memcheck.log 2>&1; echo "$(el) memcheck rc=$?"
  grep -E 'ERROR SUMMARY' $OUT/memcheck.log | head -2
  while [ ! -f /tmp/m/done ]; do sleep 1; done
  against_cpu gpt2
  for c in "gpt2 1" "gpt2 32" "bert_base 1"; do set -- $c
    F="/tmp/m/$1.onnx --dim N=$2 --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --warmup 10 --runs 50"
    echo "-- $1 N=$2: $(timeout 40 ./orchard bench $F --device-inputs --device-outputs 2>&1 | grep -E 'median|peak|created' | tr '\n' ' ')"
  done
  echo "-- gpt2 N=1 host I/O: $(timeout 40 ./orchard bench /tmp/m/gpt2.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --warmup 10 --runs 50 2>&1 | grep median)"
  echo "$(el) == PyTorch peers"
  SKIP=resnet50:compile_ro_fp16:1,resnet50:compile_ro_fp16:32,mobilenet_v2:compile_ro_fp16:1,mobilenet_v2:compile_ro_fp16:32,bert_base_s128:compile_ro_fp16:32 \
    BUDGET_S=${PEER_BUDGET_S:-60} timeout $(( ${PEER_BUDGET_S:-60} + 40 )) python3 tools/torch_anchor.py 2>&1 | tail -12
  echo "$(el) done"
  exit 0
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
mkdir -p /tmp/m
(for m in gpt2 bert_base resnet50 mobilenet_v2; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
timeout 150 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Fused*:FuseAttention*:Float16*:ChannelsLast*' > $OUT/unit.log 2>&1; echo "$(el) unit rc=$?"
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -20
grep -B2 -A12 'Failure' $OUT/unit.log | head -40
timeout 120 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 \
  --gtest_filter='CudaGraphs.*:CudaBf16*' > $OUT/memcheck.log 2>&1; echo "$(el) memcheck rc=$?"
grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -5
while [ ! -f /tmp/m/done ]; do sleep 1; done
against_cpu gpt2 bert_base
for m in gpt2 bert_base resnet50 mobilenet_v2; do for n in 1 32; do
  F="/tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --warmup 10 --runs 50"
  echo "-- $m N=$n: $(timeout 40 ./orchard bench $F --device-inputs --device-outputs 2>&1 | grep -E 'median|peak|created' | tr '\n' ' ')"
  case $m in gpt2|bert_base) [ $n = 1 ] && echo "-- $m N=$n host I/O: $(timeout 40 ./orchard bench $F 2>&1 | grep -E 'median' | tr '\n' ' ')";; esac
done; done
echo "$(el) == PyTorch peers"
BUDGET_S=${PEER_BUDGET_S:-200} timeout $(( ${PEER_BUDGET_S:-200} + 60 )) python3 tools/torch_anchor.py 2>&1 | tail -25
echo "$(el) done"
