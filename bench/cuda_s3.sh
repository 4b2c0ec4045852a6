#!/bin/bash
# Session 3 helper's GPU steps (cuda3): phases a (checks) and b (bench + torch).
cd "$(dirname "$0")" || exit 1
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
S=$OUT/summary.txt
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
if [[ " $* " == *" a "* ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a $S
  timeout 150 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:Float16*:VecKernels*:CrossBackend*:MaskCases*:PoolCases*:NormCases*:FillCases*:Conv*:Partitioner*:SessionConcurrency*' > $OUT/unit.log 2>&1
  echo "$(el) unit rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $OUT/unit.log | head -3 | tr '\n' ' ')" | tee -a $S
  grep -E '^\[  FAILED' $OUT/unit.log | head -20 | tee -a $S
  timeout 120 /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 ./orchard_tests --gtest_brief=1 --gtest_filter='CudaGraphs.*:CudaModes.*:CudaOps.*:CudaBackend.*:-CudaBackend.DriverErrorsBecomeStatus' > $OUT/memcheck.log 2>&1
  echo "$(el) memcheck rc=$? $(grep -E 'ERROR SUMMARY|PASSED|FAILED' $OUT/memcheck.log | head -3 | tr '\n' ' ')" | tee -a $S
  MODELS="resnet50 mobilenet_v2 bert_base gpt2" OUT=$OUT ./run.sh standard > /dev/null 2>&1
  grep standard $S | tail -8
  for m in resnet50 bert_base; do
    ORCHARD_LOG_LEVEL=debug timeout 60 ./orchard bench /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cuda,cpu --warmup 3 --runs 5 > /tmp/dbg_$m.log 2>&1
    echo "$(el) $m graphs captured $(grep -c 'captured a CUDA' /tmp/dbg_$m.log) refused $(grep -c 'no CUDA graph' /tmp/dbg_$m.log)" | tee -a $S
    grep 'no CUDA graph' /tmp/dbg_$m.log | head -3 | cut -c1-300 | tee -a $S
  done
fi
if [[ " $* " == *" b "* ]]; then
  GRAPHS="on off" WARMUP=10 RUNS=50 OUT=$OUT ./run.sh bench > /dev/null 2>&1
  TORCH_BUDGET_S=${TORCH_BUDGET_S:-150} TORCH_S=${TORCH_S:-260} OUT=$OUT ./run.sh torch > /dev/null 2>&1
  cat $S
fi
if [[ " $* " == *" c "* ]]; then
  for m in resnet50 mobilenet_v2 bert_base gpt2; do for p in fp32 fp16; do
    r=$(timeout 60 ./orchard bench /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision $p --warmup 10 --runs 50 2>&1 | tail -1)
    echo "$(el) bench $m N=1 $p graphs=on: $r" | tee -a $S
  done; done
fi
