#!/usr/bin/env bash
# Converts the eight standard models to fp16 Core ML ML Programs and round-trips them (bench/RESULTS.md,
# "Core ML converter"). Filled models come from ../shared/tools/fill_weights.py into bench/models/ (ignored).
#   bench/coreml_round_trip.sh [BUILD_DIR]     (default build/release)
set -euo pipefail
build=${1:-build/release}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for m in resnet50 mobilenet_v2 efficientnet_b0 convnext_tiny vit_b_16 bert_base gpt2 whisper_tiny_encoder; do
  if [[ ! -f bench/models/$m.onnx ]]; then
    /usr/bin/python3 ../shared/tools/fill_weights.py ../shared/models/$m.skeleton.onnx bench/models/$m.onnx
  fi
done
run() { m=$1; shift; echo "== $m $*"; nice -n 10 "$build/orchard" convert bench/models/$m.onnx "$out/$m.mlpackage" --dim N=1 --dim S=128 --verify "$@" | grep -v "^  $out"; }
run resnet50
run mobilenet_v2 --output /features/features.8/Add_output_0            # final outputs vanish with random weights
run efficientnet_b0 --output /features/features.2/features.2.1/Add_output_0
run convnext_tiny
run vit_b_16 --output /encoder/ln/LayerNormalization_output_0           # zero-initialized head: outputs are 0
run bert_base
run gpt2
run whisper_tiny_encoder
run resnet50 --precision fp32
run resnet50 --dim N=1,4                                                # enumerated batch
