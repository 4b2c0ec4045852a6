#!/bin/bash
# One device call for FusedMatMul through cuBLASLt (cuda_gemm_lt.cpp; each step only while DEADLINE_S, default 300 s,
# allows): the fused-op unit tests on the GPU (the op harness holds FusedMatMul with each activation, bias and
# residual to the CPU reference), compute-sanitizer on them, gpt2 and bert_base against the CPU in float32 and
# float16, then an A/B in one binary: ORCHARD_CUDA_LT=0 (cuBLAS + the epilogue kernel) against the default
# (fp16, fixed dims, device inputs and outputs).
# Pack as for cuda_s8.sh (bash bench/cuda_pack.sh DIR; tar orchard orchard_tests lib into DIR/bin.tar.gz), copy this
# script in; with the device tool, carry [DIR]: OUT=$OUT bash DIR/cuda_s9b.sh.
cd "$(dirname "$0")" && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
T0=$(date +%s); D=${DEADLINE_S:-300}
left() { echo $(( D - ($(date +%s) - T0) )); }
el() { echo "[$(( $(date +%s) - T0 ))s]"; }
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/m
(for m in gpt2 bert_base; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
echo "$(el) == unit"
timeout 100 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Fused*:UnflattenGemm*:Float16*' > $OUT/unit.log 2>&1; echo rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|Failure' $OUT/unit.log | head -12
timeout 60 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 --gtest_filter='FusedMatMul*:CudaModes*:CudaGraphs*' > $OUT/memcheck.log 2>&1; echo memcheck rc=$?
grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -4
while [ ! -f /tmp/m/done ]; do sleep 1; done
echo "$(el) == against the CPU (fixed dims)"
for m in gpt2 bert_base; do
  F="/tmp/m/$m.onnx --dim N=1 --dim S=128 --fix-dims"
  rm -rf /tmp/o && mkdir -p /tmp/o/cpu /tmp/o/cuda /tmp/o/half
  timeout 60 ./orchard run $F --backend cpu --output-dir /tmp/o/cpu > /dev/null 2>&1
  timeout 60 ./orchard run $F --backend cuda,cpu --output-dir /tmp/o/cuda > /dev/null 2>&1
  timeout 60 ./orchard run $F --backend cuda,cpu --precision fp16 --output-dir /tmp/o/half > /dev/null 2>&1
  echo "$m fp32: $(python3 tools/compare_outputs.py /tmp/o/cuda /tmp/o/cpu --tol 1e-4 2>&1 | tail -1)"
  echo "$m fp16: $(python3 tools/compare_outputs.py /tmp/o/half /tmp/o/cpu --tol 1e-2 2>&1 | tail -1)"
done
echo "$(el) == A/B: ORCHARD_CUDA_LT=0 vs cuBLASLt, fp16, fixed dims, device I/O"
for m in gpt2 bert_base; do for n in 1 32; do
  [ $(left) -lt 40 ] && break 2
  F="--dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs"
  for r in 1 2; do for lt in 0 1; do
    echo "-- $m N=$n LT=$lt: $(ORCHARD_CUDA_LT=$lt timeout 40 ./orchard bench /tmp/m/$m.onnx $F --warmup 10 --runs 50 2>&1 | grep -E 'median' | tr '\n' ' ')"
  done; done
done; done
echo "$(el) done"
