#!/bin/bash
# Session 11: main with channels-last and cuDNN's fused call on by default in float16. Pack: bash bench/cuda_pack.sh
# DIR; tar orchard orchard_tests lib into DIR/bin.tar.gz (drop testdata.tar.xz and conformance to stay under the
# carry limit: libdnnl is 40 MB); copy this script in; carry [DIR]: OUT=$OUT bash DIR/cuda_s11.sh. The PyTorch peers,
# a second call in the same lease: cd DIR && BUDGET_S=240 python3 tools/torch_anchor.py.
# `cuda_s11.sh flash`: only the tensor-core attention (ORCHARD_CUDA_ATTENTION=flash) on gpt2 and bert_base, against
# the CPU and timed beside the default path.
cd "$(dirname "$0")" && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
if [ "${1:-}" = flash ]; then
  mkdir -p /tmp/m
  for m in gpt2 bert_base; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done
  for m in gpt2 bert_base; do
    F="/tmp/m/$m.onnx --dim N=2 --dim S=128 --fix-dims"
    rm -rf /tmp/o && mkdir -p /tmp/o/cpu /tmp/o/half
    timeout 60 ./orchard run $F --backend cpu --output-dir /tmp/o/cpu > /dev/null 2>&1
    ORCHARD_CUDA_ATTENTION=flash timeout 60 ./orchard run $F --backend cuda,cpu --precision fp16 --output-dir /tmp/o/half > /dev/null 2>&1
    echo "$m fp16 flash: $(python3 tools/compare_outputs.py /tmp/o/half /tmp/o/cpu --tol 1e-2 2>&1 | tail -1)"
    for n in 1 32; do for p in best flash; do
      echo "-- $m N=$n $p: $(ORCHARD_CUDA_ATTENTION=$p timeout 40 ./orchard bench /tmp/m/$m.onnx --dim N=$n --dim S=128 \
        --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs --warmup 10 --runs 50 2>&1 |
        grep -E 'median' | tr '\n' ' ')"
    done; done
  done
  exit 0
fi
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/m
M="resnet50 mobilenet_v2 efficientnet_b0 bert_base gpt2 whisper_tiny_encoder"
(for m in $M; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1; done; touch /tmp/m/done) &
echo "$(el) == unit"
timeout 150 ./orchard_tests --gtest_brief=1 --gtest_filter='Cuda*:CrossBackend*:Fused*:FuseAttention*:ChannelsLast*:Float16*:DeviceMemory*:Release*' > $OUT/unit.log 2>&1; echo rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]' $OUT/unit.log | head -20
while [ ! -f /tmp/m/done ]; do sleep 1; done
echo "$(el) == against the CPU (fixed dims, N=2)"
for m in $M; do
  F="/tmp/m/$m.onnx --dim N=2 --dim S=128 --fix-dims"
  rm -rf /tmp/o && mkdir -p /tmp/o/cpu /tmp/o/cuda /tmp/o/half
  timeout 60 ./orchard run $F --backend cpu --output-dir /tmp/o/cpu > /dev/null 2>&1
  timeout 60 ./orchard run $F --backend cuda,cpu --output-dir /tmp/o/cuda > /dev/null 2>&1
  timeout 60 ./orchard run $F --backend cuda,cpu --precision fp16 --output-dir /tmp/o/half > /dev/null 2>&1
  echo "$m fp32: $(python3 tools/compare_outputs.py /tmp/o/cuda /tmp/o/cpu --tol 1e-4 2>&1 | tail -1)  fp16: $(python3 tools/compare_outputs.py /tmp/o/half /tmp/o/cpu --tol 1e-2 2>&1 | tail -1)"
done
echo "$(el) == fp16, fixed dims, device I/O (default, then ORCHARD_CUDA_CHANNELS_LAST=0)"
for m in resnet50 mobilenet_v2 bert_base gpt2; do for n in 1 32; do
  F="--dim N=$n --dim S=128 --backend cuda,cpu --precision fp16 --fix-dims --device-inputs --device-outputs --warmup 10 --runs 50"
  echo "-- $m N=$n: $(timeout 40 ./orchard bench /tmp/m/$m.onnx $F 2>&1 | grep -E 'median|created|peak' | tr '\n' ' ')"
  case $m in resnet50|mobilenet_v2) echo "-- $m N=$n nchw: $(ORCHARD_CUDA_CHANNELS_LAST=0 timeout 40 ./orchard bench /tmp/m/$m.onnx $F 2>&1 | grep -E 'median' | tr '\n' ' ')";; esac
done; done
echo "$(el) done"
