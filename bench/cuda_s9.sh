#!/bin/bash
# One device call for session 9's CUDA checks (each step only while the call's time allows, DEADLINE_S, default
# 420 s): the fused-op and pass unit tests on the GPU (FusedMatMul's activations, GeluTanh among them, are checked
# against the CPU reference by the op harness), gpt2 through the new unflatten_gemm pass compared with the CPU in
# float32 and float16, an A/B of `orchard` against `orchard_before` (fp16, fixed dims, device inputs and outputs),
# and where gpt2's batch-1 time goes (--op-summary, --node-summary).
# Pack as for cuda_s8.sh (bash bench/cuda_pack.sh DIR; the previous build's stripped `orchard` as orchard_before;
# tar orchard orchard_before orchard_tests lib into DIR/bin.tar.gz), copy this script in; with the device tool,
# carry [DIR]: OUT=$OUT bash DIR/cuda_s9.sh.
cd "$(dirname "$0")" && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
T0=$(date +%s); D=${DEADLINE_S:-420}
left() { echo $(( D - ($(date +%s) - T0) )); }
el() { echo "[$(( $(date +%s) - T0 ))s]"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p /tmp/m
(for m in gpt2 bert_base; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
echo "$(el) == unit"
timeout 120 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Fused*:UnflattenGemm*:FuseConvMatMul*:FuseGelu*:Float16*:FastDiv*:DeviceMemory*' > $OUT/unit.log 2>&1; echo rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -20
while [ ! -f /tmp/m/done ]; do sleep 1; done
echo "$(el) == gpt2 on CUDA vs the CPU (fixed dims: the Gemms unflattened and fused)"
F="/tmp/m/gpt2.onnx --dim N=1 --dim S=128 --fix-dims"
rm -rf /tmp/o && mkdir -p /tmp/o/cpu /tmp/o/cuda /tmp/o/half
timeout 60 ./orchard run $F --backend cpu --output-dir /tmp/o/cpu > /dev/null 2>&1
timeout 60 ./orchard run $F --backend cuda,cpu --output-dir /tmp/o/cuda > /dev/null 2>&1
timeout 60 ./orchard run $F --backend cuda,cpu --precision fp16 --output-dir /tmp/o/half > /dev/null 2>&1
echo "fp32: $(python3 tools/compare_outputs.py /tmp/o/cuda /tmp/o/cpu --tol 1e-4 2>&1 | tail -1)"
echo "fp16: $(python3 tools/compare_outputs.py /tmp/o/half /tmp/o/cpu --tol 1e-2 2>&1 | tail -1)"
echo "$(el) == A/B, fp16, fixed dims, device I/O"
for m in gpt2 bert_base; do for n in 1 32; do
  [ $(left) -lt 90 ] && break 2
  F="--dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs"
  for r in 1 2; do for b in orchard_before orchard; do
    echo "-- $m N=$n $b: $(timeout 40 ./$b bench /tmp/m/$m.onnx $F --warmup 10 --runs 50 2>&1 | grep -E 'median|created' | tr '\n' ' ')"
  done; done
done; done
echo "$(el) == gpt2 batch 1 profile"
timeout 40 ./orchard bench /tmp/m/gpt2.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs --warmup 5 --runs 20 --op-summary --node-summary 25 > $OUT/prof_gpt2_1.txt 2>&1
head -40 $OUT/prof_gpt2_1.txt
echo "$(el) done"
