#!/bin/bash
# One device call for session 10's work (each step only while DEADLINE_S, default 420 s, allows): the GPU unit
# tests (FusedAttention in both layouts through the op harness in float32 and against the CPU in float16, the
# tensor-core kernel among them; FusedConv nhwc through the harness; the cuBLASLt plan cache test owed by session 9),
# compute-sanitizer memcheck on the attention, conv and linear-layer tests, six models against the CPU in float32
# and float16 (float16 runs the channels-last convolutions), then an A/B of `orchard` against `orchard_before`
# (session 9's final binary; fp16, fixed dims, device inputs and outputs).
# Pack: bash bench/cuda_pack.sh DIR; extract session 9's `orchard` as DIR/orchard_before; tar orchard orchard_before
# orchard_tests lib into DIR/bin.tar.gz; copy this script in. With the device tool, carry [DIR]:
# OUT=$OUT bash DIR/cuda_s10.sh.
cd "$(dirname "$0")" && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
T0=$(date +%s); D=${DEADLINE_S:-420}
left() { echo $(( D - ($(date +%s) - T0) )); }
el() { echo "[$(( $(date +%s) - T0 ))s]"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p /tmp/m
M="gpt2 bert_base resnet50 mobilenet_v2 whisper_tiny_encoder efficientnet_b0"
[ -n "${QUICK:-}" ] && M="gpt2 bert_base resnet50 mobilenet_v2"
[ "${QUICK:-}" = 2 ] && M="gpt2 resnet50"
(for m in $M; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
echo "$(el) == unit"
UNIT_FILTER='Cuda*:CrossBackend*:Fused*:FuseAttention*:ChannelsLast*:Float16*:DeviceMemory*'
# QUICK=2 (a couple of device minutes): the new paths' tests, then resnet50 and gpt2 at batch 32 only.
[ "${QUICK:-}" = 2 ] && UNIT_FILTER='FusedAttention*:FusedConv*:ChannelsLast*:CudaModes.Float16*:CudaOps.FusedAttention*:CudaBackend.LinearLayer*'
timeout 120 ./orchard_tests --gtest_brief=1 --gtest_filter="$UNIT_FILTER" > $OUT/unit.log 2>&1; echo rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -20
grep -B2 -A8 'Failure' $OUT/unit.log | head -60
# QUICK=1 (little device time left): no memcheck, no fused-call runs, four models, batch 32 only.
if [ -z "${QUICK:-}" ]; then
echo "$(el) == unit, FusedConv as one cuDNN call (ORCHARD_CUDNN_FUSED=1)"
ORCHARD_CUDNN_FUSED=1 timeout 60 ./orchard_tests --gtest_brief=1 --gtest_filter='FusedConv*:ChannelsLast*:CudaModes*' > $OUT/unit_fused.log 2>&1; echo rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit_fused.log | head
echo "$(el) == memcheck"
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 \
  --gtest_filter='FusedAttention*:FusedConv.Nhwc*:CudaOps.FusedAttention*:CudaModes.Float16FusedAttention*:CudaBackend.LinearLayer*' > $OUT/memcheck.log 2>&1
echo "memcheck rc=$?"; grep -E '^\[  (PASSED|FAILED) |ERROR SUMMARY' $OUT/memcheck.log | head
fi
while [ ! -f /tmp/m/done ]; do sleep 1; done
echo "$(el) == against the CPU (fixed dims)"
for m in $M; do
  F="/tmp/m/$m.onnx --dim N=1 --dim S=128 --fix-dims"
  rm -rf /tmp/o && mkdir -p /tmp/o/cpu /tmp/o/cuda /tmp/o/half
  timeout 60 ./orchard run $F --backend cpu --output-dir /tmp/o/cpu > /dev/null 2>&1
  timeout 60 ./orchard run $F --backend cuda,cpu --output-dir /tmp/o/cuda > /dev/null 2>&1
  timeout 60 ./orchard run $F --backend cuda,cpu --precision fp16 --output-dir /tmp/o/half > /dev/null 2>&1
  echo "$m fp32: $(python3 tools/compare_outputs.py /tmp/o/cuda /tmp/o/cpu --tol 1e-4 2>&1 | tail -1)"
  echo "$m fp16: $(python3 tools/compare_outputs.py /tmp/o/half /tmp/o/cpu --tol 1e-2 2>&1 | tail -1)"
done
echo "$(el) == A/B, fp16, fixed dims, device I/O"
NS="32 1"; [ -n "${QUICK:-}" ] && NS="32"
AB="resnet50 mobilenet_v2 gpt2 bert_base"; [ "${QUICK:-}" = 2 ] && AB="resnet50 gpt2"
for m in $AB; do for n in $NS; do
  [ $(left) -lt 30 ] && break 2
  F="--dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs"
  for r in 1; do for b in orchard_before orchard; do
    echo "-- $m N=$n $b: $(timeout 40 ./$b bench /tmp/m/$m.onnx $F --warmup 10 --runs 50 2>&1 | grep -E 'median|created|peak' | tr '\n' ' ')"
  done; done
done; done
[ -n "${QUICK:-}" ] && { echo "$(el) done"; exit 0; }
echo "$(el) == FusedConv as one cuDNN call, fp16 N=32 (same binary)"
for m in resnet50 mobilenet_v2; do for r in 1; do
  [ $(left) -lt 15 ] && break 2
  F="--dim N=32 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs --warmup 10 --runs 50"
  echo "-- $m fused-call: $(ORCHARD_CUDNN_FUSED=1 timeout 40 ./orchard bench /tmp/m/$m.onnx $F 2>&1 | grep -E 'median' | tr '\n' ' ')"
  echo "-- $m epilogue:   $(timeout 40 ./orchard bench /tmp/m/$m.onnx $F 2>&1 | grep -E 'median' | tr '\n' ' ')"
done; done
echo "$(el) done"
