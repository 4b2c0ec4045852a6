#!/bin/bash
# The CUDA backend's checks and first benchmark on the GPU machine, from a folder holding the binaries built
# on the development machine (orchard, orchard_tests), their libraries (lib/), the ONNX test data
# (testdata.tar.xz), tests/conformance, tests/models, the standard model skeletons and the tools.
# Writes logs and a summary to $OUT. Usage: bench/cuda_gpu_run.sh [phases...] (default: all). A call of the
# device tool runs at most 10 minutes: run the phases in three calls (see notes/issue-8.md), e.g.
#   run.sh info unit placement memcheck;  run.sh conformance real standard;  run.sh bench torch
# (BENCH_FLAGS="--fix-dims" benches with static shapes, as torch.compile specializes.)
cd "$(dirname "$0")" || exit 1
R=$PWD
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# cuDNN 9.19 (what the build used) lives in the torch venv there; /usr/lib has 9.14.
export LD_LIBRARY_PATH=$R/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib:${LD_LIBRARY_PATH:-}
S=$OUT/summary.txt
log() { echo "$*" | tee -a "$S"; }
PHASES=${*:-"info unit placement conformance real standard memcheck bench torch"}
has() { [[ " $PHASES " == *" $1 "* ]]; }
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s]"; }

if has info; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$S"
fi
if has unit; then
  timeout ${UNIT_S:-150} ./orchard_tests --gtest_brief=1 > "$OUT/unit.log" 2>&1
  log "$(el) unit rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/unit.log" | head -3 | tr '\n' ' ')"
fi
if has memcheck; then
  timeout ${MEMCHECK_S:-150} /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 9 \
    ./orchard_tests --gtest_brief=1 --gtest_filter="${MEMCHECK_FILTER:-Cuda*:CrossBackend*:MaskCases*:PoolCases*:NormCases*:FillCases*:-CudaBackend.DriverErrorsBecomeStatus:CudaPlacement.*}" > "$OUT/memcheck.log" 2>&1
  log "$(el) memcheck rc=$? $(grep -E 'ERROR SUMMARY|PASSED|FAILED' "$OUT/memcheck.log" | head -3 | tr '\n' ' ')"
fi
if has conformance; then
  mkdir -p /tmp/td && tar xJf testdata.tar.xz -C /tmp/td
  for b in ${CONF_BACKENDS:-cuda,cpu}; do
    timeout ${CONF_S:-150} python3 conformance/run_conformance.py --orchard ./orchard --data /tmp/td/data --backend $b \
      --expected conformance/expected_failures.txt --jobs 12 --report "/tmp/conformance_${b%%,*}.txt" \
      > "$OUT/conformance_${b%%,*}.log" 2>&1
    log "$(el) conformance --backend $b rc=$? $(tail -1 "$OUT/conformance_${b%%,*}.log")"
  done
fi
if has real; then
  timeout 120 ./orchard check --backend cuda,cpu --rtol 1e-3 --atol 1e-5 models/*/ > "$OUT/real_models.log" 2>&1
  log "$(el) real_models cuda,cpu rc=$? $(grep -c '^PASS' "$OUT/real_models.log") pass, $(grep -vc '^PASS' "$OUT/real_models.log") other lines"
fi
MODELS=${MODELS:-"resnet50 mobilenet_v2 bert_base gpt2 efficientnet_b0 convnext_tiny vit_b_16 whisper_tiny_encoder"}
if has standard || has bench || has placement; then
  mkdir -p /tmp/m
  for m in $MODELS; do
    [ -f /tmp/m/$m.onnx ] || python3 tools/fill_weights.py models_std/$m.skeleton.onnx /tmp/m/$m.onnx >> "$OUT/fill.log" 2>&1
  done
fi
if has standard; then
  for m in $MODELS; do
    rm -rf /tmp/o/$m && mkdir -p /tmp/o/$m/cuda /tmp/o/$m/cpu
    timeout 60 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cuda,cpu --output-dir /tmp/o/$m/cuda > /tmp/std_$m.log 2>&1
    timeout 60 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cpu --output-dir /tmp/o/$m/cpu >> /tmp/std_$m.log 2>&1
    python3 tools/compare_outputs.py /tmp/o/$m/cuda /tmp/o/$m/cpu --tol 1e-4 >> /tmp/std_$m.log 2>&1
    (echo "== $m"; cat /tmp/std_$m.log) >> "$OUT/standard.log"
    log "$(el) standard $m fp32: $(tail -1 /tmp/std_$m.log)"
    # float16 session option: float32 at the edges, compared with the CPU's float32 at the fp16 tolerance.
    mkdir -p /tmp/o/$m/half
    timeout 60 ./orchard run /tmp/m/$m.onnx --dim N=1 --dim S=128 --backend cuda,cpu --precision fp16 --output-dir /tmp/o/$m/half > /tmp/std16_$m.log 2>&1
    python3 tools/compare_outputs.py /tmp/o/$m/half /tmp/o/$m/cpu --tol 1e-2 >> /tmp/std16_$m.log 2>&1
    (echo "== $m fp16"; cat /tmp/std16_$m.log) >> "$OUT/standard.log"
    log "$(el) standard $m fp16: $(tail -1 /tmp/std16_$m.log)"
  done
fi
if has placement; then
  # Partitions and host waits per model with this CUDA kernel table and with the first session's (no GPU needed).
  ORCHARD_STD_MODELS=/tmp/m timeout 300 ./orchard_tests --gtest_filter='CudaPlacement.*' > "$OUT/placement_counts.log" 2>&1
  grep -E '^(resnet50|mobilenet|efficientnet|convnext|bert|gpt2|vit|whisper|attention)' "$OUT/placement_counts.log" | tee -a "$S"
  for m in $MODELS; do
    (echo "== $m"; timeout 60 ./orchard inspect /tmp/m/$m.onnx --placement --backend cuda,cpu 2>&1 | head -${PLACEMENT_LINES:-60}) >> "$OUT/placement.log"
  done
  log "$(el) placement written"
fi
if has bench; then
  for m in ${BENCH_MODELS:-resnet50 mobilenet_v2 bert_base gpt2}; do
    for n in 1 32; do
      for p in ${PRECISIONS:-fp32 fp16}; do
        # GRAPHS="on off": with CUDA graphs (the default) and with --no-cuda-graphs.
        for g in ${GRAPHS:-on}; do
          flag=$([ "$g" = off ] && echo --no-cuda-graphs)
          r=$(timeout 150 ./orchard bench /tmp/m/$m.onnx --dim N=$n --dim S=128 --backend cuda,cpu --precision $p $flag ${BENCH_FLAGS:-} --warmup ${WARMUP:-10} --runs ${RUNS:-50} 2>&1 | tail -4 | tr '\n' ' ')
          log "$(el) bench $m N=$n $p graphs=$g cuda,cpu: $r"
        done
      done
    done
  done
fi
if has torch; then
  BUDGET_S=${TORCH_BUDGET_S:-30} timeout ${TORCH_S:-400} python3 tools/torch_anchor.py > /tmp/torch_anchor.log 2>&1
  log "$(el) torch_anchor rc=$?"
  tail -25 /tmp/torch_anchor.log >> "$S"
fi
log "$(el) done"
