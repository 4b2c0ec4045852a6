#!/usr/bin/env bash
# Builds the eight standard models (../shared/models skeletons with seeded random weights) into bench/models/
# (ignored by git). Existing files are kept; pass --force to rebuild. Needs Debian's python3-onnx
# (/usr/bin/python3). Usage: bench/models.sh [--force] [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${SHARED_DIR:-../shared}"
force=0
if [[ "${1:-}" == --force ]]; then force=1; shift; fi
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
  models=(resnet50 mobilenet_v2 efficientnet_b0 convnext_tiny vit_b_16 bert_base gpt2 whisper_tiny_encoder)
fi
mkdir -p bench/models
for m in "${models[@]}"; do
  out="bench/models/$m.onnx"
  skeleton="$shared/models/$m.skeleton.onnx"
  [[ -f "$skeleton" ]] || { echo "models.sh: no skeleton $skeleton" >&2; exit 1; }
  if [[ -f "$out" && $force -eq 0 ]]; then echo "have $out"; continue; fi
  /usr/bin/python3 "$shared/tools/fill_weights.py" "$skeleton" "$out.tmp"
  mv "$out.tmp" "$out"
  echo "built $out ($(du -h "$out" | cut -f1))"
done
