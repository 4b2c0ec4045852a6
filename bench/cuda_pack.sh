#!/bin/bash
# Packs what bench/cuda_gpu_run.sh needs on the GPU machine into DEST (default /work/main/.cuda_run):
# stripped binaries of build/release, the shared libraries they need that the GPU machine lacks, the ONNX
# test data, the conformance runner, the real and standard models and the tools.
set -e
SRC=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-/work/main/.cuda_run}
rm -rf "$DEST" && mkdir -p "$DEST/lib" "$DEST/tools" "$DEST/models_std"
strip -o "$DEST/orchard" "$SRC/build/release/orchard"
strip -o "$DEST/orchard_tests" "$SRC/build/release/tests/orchard_tests"
# Every Debian library the binaries link (ONNX, protobuf, gRPC, absl, ssl, ...), but not the C/C++ runtime, which
# the GPU machine has newer, nor CUDA's, which it has itself.
for b in "$DEST"/orchard "$DEST"/orchard_tests; do
  ldd "$b" | awk '/=> \/lib\/x86_64-linux-gnu\// {print $1, $3}' |
    grep -vE '^(libc|libm|libgcc_s|libstdc\+\+|libdl|librt|libpthread)\.so' |
    while read -r name path; do [ -f "$DEST/lib/$name" ] || cp -L "$path" "$DEST/lib/"; done
done
[ -f /tmp/testdata.tar.xz ] || (cd /usr/share/libonnx-testdata && tar cf - data | xz -T2 -6 > /tmp/testdata.tar.xz)
cp /tmp/testdata.tar.xz "$DEST/"
cp -r "$SRC/tests/conformance" "$DEST/conformance"
cp -r "$SRC/tests/models" "$DEST/models"
cp "$SRC"/../shared/models/*.skeleton.onnx "$DEST/models_std/"
# onnx.mapping may be gone from the GPU machine's newer onnx: fall back to helper.tensor_dtype_to_np_dtype.
/usr/bin/python3 - "$SRC/../shared/tools/fill_weights.py" "$DEST/tools/fill_weights.py" <<'PY'
import sys
s = open(sys.argv[1]).read()
s = s.replace("from onnx import numpy_helper, mapping",
              "from onnx import numpy_helper, helper\ntry:\n    from onnx.mapping import TENSOR_TYPE_TO_NP_TYPE as _NP\n"
              "except ImportError:\n    _NP = None")
s = s.replace('mapping.TENSOR_TYPE_TO_NP_TYPE[s["dtype"]]',
              '(_NP[s["dtype"]] if _NP else helper.tensor_dtype_to_np_dtype(s["dtype"]))')
open(sys.argv[2], "w").write(s)
PY
cp "$SRC/../shared/tools/torch_anchor.py" "$SRC/tests/backends/cuda/compare_outputs.py" "$DEST/tools/"
cp "$SRC/bench/cuda_gpu_run.sh" "$DEST/run.sh"
du -sh "$DEST"
