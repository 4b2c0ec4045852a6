#!/bin/bash
# One device call for issue 8's table with the current code (DEADLINE_S, default 300 s): per model, batch and
# precision, `orchard bench` with static shapes and device inputs/outputs (median ms, device memory peak, session
# creation time). The PyTorch peers come from cuda_s8.sh torch (same card type, same session).
# Pack as for cuda_s9b.sh; with the device tool, carry [DIR]: OUT=$OUT bash DIR/cuda_s9c.sh.
cd "$(dirname "$0")" && tar xzf bin.tar.gz
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
T0=$(date +%s); D=${DEADLINE_S:-300}
left() { echo $(( D - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/m
M="resnet50 mobilenet_v2 bert_base gpt2 efficientnet_b0 convnext_tiny vit_b_16 whisper_tiny_encoder"
for m in $M; do python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx > /dev/null 2>&1 & done; wait
for m in $M; do for p in fp16 fp32; do for n in 1 32; do
  [ $(left) -lt 25 ] && break 3
  case $m in resnet50|mobilenet_v2|bert_base|gpt2) ;; *) [ $p = fp32 ] && continue ;; esac
  r=$(timeout 60 ./orchard bench /tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision $p --fix-dims \
      --device-inputs --device-outputs --warmup 10 --runs 50 2>&1 | grep -E 'created|median|peak' | tr '\n' ' ')
  echo "ROW $m $p N=$n $r"
done; done; done
echo "[$(( $(date +%s) - T0 ))s] done"
