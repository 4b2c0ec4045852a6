#!/bin/bash
# One device call for the CUDA backend's checks and first figures, each step only while the call's time allows
# (DEADLINE_S, default 570 s): GPU unit tests (the DeviceCap test first, alone and under throwtrace), an A/B of
# `orchard` against `orchard_before` (fp16, fixed dims, device inputs and outputs; gpt2, bert_base, resnet50,
# mobilenet_v2 at batch 32 and 1), compute-sanitizer memcheck, then op profiles at batch 32.
# Pack on the dev machine: bash bench/cuda_pack.sh DIR; put a previous build's stripped `orchard` in as
# orchard_before and scripts/throwtrace.c built as throwtrace.so (gcc -O1 -shared -fPIC ... -ldl); tar orchard
# orchard_before orchard_tests lib throwtrace.so into DIR/bin.tar.gz (the carry is capped at 64 MiB); copy this
# script in; then with the device tool, carry [DIR]: OUT=$OUT bash DIR/cuda_s8.sh. The tree is copied afresh for
# each call, so every call unpacks again. `cuda_s8.sh torch` (a second call in the same lease): torch_anchor.py.
cd "$(dirname "$0")" && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
T0=$(date +%s); D=${DEADLINE_S:-570}
left() { echo $(( D - ($(date +%s) - T0) )); }
el() { echo "[$(( $(date +%s) - T0 ))s]"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ "${1:-}" = torch ]; then  # a second call, right after the first (same lease): the PyTorch peers
  BUDGET_S=$(( D - 100 )) timeout $(( D - 10 )) python3 tools/torch_anchor.py > $OUT/torch_anchor.log 2>&1
  echo "torch_anchor rc=$?"
  grep ROW $OUT/torch_anchor.log | sed -E 's/ (out_absmax|out_nonfinite_frac|p10_ms|p90_ms|rel_err_vs_eager|graph_warm_s)=[^ ]*//g'
  exit 0
fi
mkdir -p /tmp/m
(for m in bert_base gpt2 resnet50 mobilenet_v2; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
echo "$(el) == regression alone"
./orchard_tests --gtest_filter='CudaBackend.DeviceCapFailsTheRunNotTheProcess' 2>&1 | grep -E "OK|FAILED|Failure|exception|Expected|Which|actual" | head -8
LD_PRELOAD=$PWD/throwtrace.so ./orchard_tests --gtest_filter='CudaBackend.DeviceCapFailsTheRunNotTheProcess' > $OUT/trace.log 2>&1
grep -c THROWTRACE $OUT/trace.log
echo "$(el) == cuda unit"
timeout 150 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:MaskCases*:PoolCases*:NormCases*:FillCases*:Float16*:Fused*:Attention*:FastDiv*' > $OUT/unit.log 2>&1; echo rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -20
while [ ! -f /tmp/m/done ]; do sleep 1; done
echo "$(el) == A/B (before = session-7 binary), fp16, fixed dims, device I/O"
for m in gpt2 bert_base resnet50 mobilenet_v2; do for n in 32 1; do
  [ $(left) -lt 170 ] && break 2
  F="--dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs"
  for b in orchard_before orchard; do
    echo "-- $m N=$n $b: $(timeout 40 ./$b bench /tmp/m/$m.onnx $F --warmup 10 --runs 50 2>&1 | grep -E 'median|created|peak' | tr '\n' ' ')"
  done
done; done
echo "$(el) == memcheck"
MT=$(( $(left) - 90 )); [ $MT -lt 10 ] && MT=10; timeout $MT /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:MaskCases*:PoolCases*:NormCases*:FillCases*:-CudaBackend.DriverErrorsBecomeStatus:CudaPlacement.*' > $OUT/memcheck.log 2>&1; echo rc=$?
grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -5
echo "$(el) == profiles"
for m in gpt2 resnet50 bert_base mobilenet_v2; do
  [ $(left) -lt 20 ] && break
  timeout 30 ./orchard bench /tmp/m/$m.onnx --dim N=32 --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs --warmup 3 --runs 10 --op-summary > $OUT/prof_${m}_32.txt 2>&1
done
echo "$(el) done"
