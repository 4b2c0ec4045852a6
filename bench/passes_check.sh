#!/usr/bin/env bash
# Checks the graph passes on the standard models (bench/models.sh builds them): per model, the main graph's
# node count at each optimization level and each pass's rewrites (`orchard inspect`), and the outputs of
# `orchard run` with --optimization extended against --optimization none on the same seeded inputs
# (max |diff| / max |reference|). Usage: bench/passes_check.sh [ORCHARD] [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."
orchard="${1:-build/release/orchard}"
shift || true
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
  models=(resnet50 mobilenet_v2 efficientnet_b0 convnext_tiny vit_b_16 bert_base gpt2 whisper_tiny_encoder)
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for m in "${models[@]}"; do
  model="bench/models/$m.onnx"
  [[ -f "$model" ]] || { echo "passes_check.sh: no $model (run bench/models.sh)" >&2; exit 1; }
  for level in none basic extended; do
    "$orchard" inspect "$model" --optimization "$level" > "$out/$m.$level.txt"
  done
  for level in none extended; do
    mkdir -p "$out/$m.$level"
    "$orchard" run "$model" --optimization "$level" --threads 1 --dim S=64 --output-dir "$out/$m.$level" > /dev/null
  done
  /usr/bin/python3 - "$m" "$out" <<'EOF'
import glob, os, re, sys
import numpy as np
from onnx import TensorProto, numpy_helper
m, out = sys.argv[1], sys.argv[2]
def nodes(level):
    text = open(f"{out}/{m}.{level}.txt").read()
    return int(re.search(r"optimized: (\d+) nodes", text).group(1)), text
n_none, _ = nodes("none")
n_basic, _ = nodes("basic")
n_ext, text = nodes("extended")
steps = dict(re.findall(r"^  (\w+)\s+(\d+)$", text.split("optimized:")[1], re.M))
worst = 0.0
for f in sorted(glob.glob(f"{out}/{m}.none/*.pb")):
    a, b = TensorProto(), TensorProto()
    a.ParseFromString(open(f, "rb").read())
    b.ParseFromString(open(f.replace(".none/", ".extended/"), "rb").read())
    x, y = numpy_helper.to_array(a).astype(np.float64), numpy_helper.to_array(b).astype(np.float64)
    assert x.shape == y.shape, (f, x.shape, y.shape)
    worst = max(worst, float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-30)))
print(f"| {m} | {n_none} | {n_basic} | {n_ext} | " + " | ".join(steps.get(k, "0") for k in
      ["fold_shapes", "eliminate_no_ops", "fold_conv_affine", "fuse_layer_norm", "fuse_gelu", "fuse_conv_matmul"]) +
      f" | {worst:.1e} |")
EOF
done
