#!/usr/bin/env bash
# Soak test of `orchard serve` (bench/soak.py): bench/soak.sh [SECONDS] (default 600). Run with nice on a
# shared machine; prints the summary bench/RESULTS.md quotes and fails on any lost request, crash or RSS
# above the budget plus margin.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec /usr/bin/python3 "$here/bench/soak.py" "${ORCHARD:-$here/build/release/orchard}" \
  "$here/examples/digits/digits_cnn.onnx" "${1:-600}"
