#!/usr/bin/env bash
# The eight standard models through the Core ML backend (Runtime v2) with --fix-dims (N=1, S=128): placement
# (Core ML partitions, nodes converted) and the outputs of `orchard run --backend coreml` (off Apple: the
# verification executor, fp16 programs) against `--backend cpu` on the same seeded inputs (bench/RESULTS.md).
#   bench/coreml_backend.sh [BUILD_DIR] [MODELS_DIR]     (defaults build/release, bench/models)
set -euo pipefail
build=${1:-build/release}
models=${2:-bench/models}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| model | Core ML partitions | nodes converted | max abs error (max |ref|) |"
echo "|---|---|---|---|"
for m in resnet50 mobilenet_v2 efficientnet_b0 convnext_tiny vit_b_16 bert_base gpt2 whisper_tiny_encoder; do
  f=$models/$m.onnx
  placement=$(nice -n 10 "$build/orchard" inspect "$f" --placement --backend coreml --fix-dims --dim N=1 --dim S=128 | sed -n '/^placement/,$p')
  parts=$(grep -c '^  #[0-9]* coreml' <<<"$placement" || true)
  on=$(grep '^  #[0-9]* coreml' <<<"$placement" | awk '{s+=$3} END {print s+0}')
  all=$(grep '^  #[0-9]* ' <<<"$placement" | awk '{s+=$3} END {print s+0}')
  for b in coreml cpu; do
    nice -n 10 "$build/orchard" run "$f" --backend $b --fix-dims --dim N=1 --dim S=128 --output-dir "$out/$m.$b" >/dev/null
  done
  err=$(/usr/bin/python3 - "$out/$m.coreml" "$out/$m.cpu" <<'PY'
import sys, os, onnx.numpy_helper as nh, onnx, numpy as np
worst, ref = 0.0, 0.0
for f in sorted(os.listdir(sys.argv[2])):
    t = onnx.TensorProto(); t.ParseFromString(open(os.path.join(sys.argv[1], f), 'rb').read()); a = nh.to_array(t).astype(np.float64)
    t = onnx.TensorProto(); t.ParseFromString(open(os.path.join(sys.argv[2], f), 'rb').read()); b = nh.to_array(t).astype(np.float64)
    worst = max(worst, float(np.abs(a - b).max())); ref = max(ref, float(np.abs(b).max()))
print(f"{worst:.2g} ({ref:.3g})")
PY
)
  echo "| $m | $parts | $on / $all | $err |"
done
