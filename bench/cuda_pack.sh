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
for l in libonnx.so.1 libonnx_proto.so.1 libprotobuf.so.32 libz.so.1; do cp -L /usr/lib/x86_64-linux-gnu/$l "$DEST/lib/"; done
[ -f /tmp/testdata.tar.xz ] || (cd /usr/share/libonnx-testdata && tar cf - data | xz -T2 -6 > /tmp/testdata.tar.xz)
cp /tmp/testdata.tar.xz "$DEST/"
cp -r "$SRC/tests/conformance" "$DEST/conformance"
cp -r "$SRC/tests/models" "$DEST/models"
cp "$SRC"/../shared/models/*.skeleton.onnx "$DEST/models_std/"
cp "$SRC/../shared/tools/fill_weights.py" "$SRC/../shared/tools/torch_anchor.py" "$SRC/tests/backends/cuda/compare_outputs.py" "$DEST/tools/"
cp "$SRC/bench/cuda_gpu_run.sh" "$DEST/run.sh"
du -sh "$DEST"
