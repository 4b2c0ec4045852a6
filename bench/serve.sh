#!/usr/bin/env bash
# Load test of `orchard serve` with wrk on loopback, next to a peer in the same run (bounded in time).
#   bench/serve.sh http      GET /v2/health/ready and POST digits infer (JSON) at 16/64/256 connections,
#                            orchard vs nginx returning a fixed body (nginx started and stopped here); infer
#                            also against a second orchard with --inline-execution (rows "infer inline")
#   bench/serve.sh batching  mobilenet_v2 binary infer at 16 connections, orchard without vs with dynamic
#                            batching (needs bench/models/mobilenet_v2.onnx, see bench/RESULTS.md)
# Environment: ORCHARD (default build/release/orchard), DUR seconds per point (default 10; batching 30),
# CONNS (default "16 64 256"). Prints markdown table rows. Client and server share this machine's cores.
set -euo pipefail
mode=${1:-http}
ORCHARD=${ORCHARD:-build/release/orchard}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/orchard_serve_bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_orchard() {  # args: orchard serve arguments; sets OPORT
  rm -f "$work/port"
  "$ORCHARD" serve --port 0 --no-grpc --port-file "$work/port" "$@" >>"$work/orchard.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do [[ -s "$work/port" ]] && break; sleep 0.1; done
  OPORT=$(head -1 "$work/port")
}
stop_last() {
  local p=${pids[-1]}
  kill -TERM "$p"; wait "$p" || true
  unset 'pids[-1]'
}

start_nginx() {  # sets NPORT
  NPORT=$(free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NPORT reuseport backlog=4096;
    location / { default_type application/json; return 200 '{"ready":true}'; }
  }
}
EOF
  nginx -c "$work/nginx.conf" -p "$work/nginx" &
  pids+=($!)
  sleep 0.5
}

# wrk_point NAME URL CONNS [LUA]: prints "req/s p50 p99 timeouts non2xx"
wrk_point() {
  local url=$1 conns=$2 lua=${3:-} out
  out=$(wrk -t2 -c"$conns" -d"${DUR}s" --timeout "${WRK_TIMEOUT:-2s}" --latency ${lua:+-s "$lua"} "$url")
  echo "$out" >>"$work/wrk.log"
  local rps p50 p99 to non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  to=$(awk '/Socket errors/ {for (i=1;i<=NF;i++) if ($i=="timeout") print $(i+1)+0}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "$rps ${p50:-?} ${p99:-?} ${to:-0} ${non2xx:-0}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

if [[ $mode == http ]]; then
  DUR=${DUR:-10}
  CONNS=${CONNS:-"16 64 256"}
  /usr/bin/python3 - "$work/infer.json" <<'EOF'
import json, sys
x = [((i * 37) % 17) / 16.0 for i in range(64)]
json.dump({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8], "data": x}]}, open(sys.argv[1], "w"))
EOF
  cat >"$work/post.lua" <<EOF
local f = io.open("$work/infer.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF
  start_nginx
  serve_args=("$here/examples/digits/digits_cnn.onnx" --http-threads 2 --max-concurrent 2 --threads 1 --max-queue 1024)
  start_orchard "${serve_args[@]}" --inline-execution
  IPORT=$OPORT
  start_orchard "${serve_args[@]}"
  for p in $OPORT $IPORT; do
    curl -sf -X POST --data-binary @"$work/infer.json" "http://127.0.0.1:$p/v2/models/digits_cnn/infer" >/dev/null
  done
  echo "| endpoint | conns | nginx req/s | orchard req/s | orchard/nginx | orchard p50 / p99 | nginx p50 / p99 | timeouts nginx / orchard | orchard non-2xx |"
  echo "|---|---:|---:|---:|---:|---|---|---|---:|"
  for ep in health infer "infer inline"; do
    for c in $CONNS; do
      if [[ $ep == health ]]; then
        n=($(wrk_point "http://127.0.0.1:$NPORT/v2/health/ready" "$c"))
        o=($(wrk_point "http://127.0.0.1:$OPORT/v2/health/ready" "$c"))
      else
        port=$OPORT
        [[ $ep == infer ]] || port=$IPORT
        n=($(wrk_point "http://127.0.0.1:$NPORT/v2/models/digits_cnn/infer" "$c" "$work/post.lua"))
        o=($(wrk_point "http://127.0.0.1:$port/v2/models/digits_cnn/infer" "$c" "$work/post.lua"))
      fi
      echo "| $ep | $c | ${n[0]} | ${o[0]} | $(ratio "${o[0]}" "${n[0]}") | ${o[1]} / ${o[2]} | ${n[1]} / ${n[2]} | ${n[3]} / ${o[3]} | ${o[4]} |"
    done
  done
elif [[ $mode == batching ]]; then
  DUR=${DUR:-30}
  WRK_TIMEOUT=60s
  model=${MODEL:-$here/bench/models/mobilenet_v2.onnx}
  [[ -f $model ]] || { echo "serve.sh: $model missing (see bench/RESULTS.md)" >&2; exit 1; }
  /usr/bin/python3 - "$work/body.bin" "$work/hlen" <<'EOF'
import json, sys
import numpy as np
x = np.random.RandomState(0).rand(1, 3, 224, 224).astype("<f4")
h = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
                            "parameters": {"binary_data_size": x.nbytes}}],
                "outputs": [{"name": "536", "parameters": {"binary_data": True}}]}).encode()
open(sys.argv[1], "wb").write(h + x.tobytes())
open(sys.argv[2], "w").write(str(len(h)))
EOF
  cat >"$work/post.lua" <<EOF
local f = io.open("$work/body.bin", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "$(cat "$work/hlen")"
EOF
  common=(--http-threads 2 --max-concurrent 2 --threads 1 --max-queue 256)
  echo "| mode | conns | req/s | p50 | p99 | timeouts | non-2xx | avg batch |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for variant in off on; do
    if [[ $variant == off ]]; then
      start_orchard "$model" "${common[@]}"
    else
      start_orchard "$model" "${common[@]}" --max-batch-size "${BATCH:-8}" --batch-delay-us "${DELAY_US:-20000}"
    fi
    curl -sf -X POST -H "Inference-Header-Content-Length: $(cat "$work/hlen")" --data-binary @"$work/body.bin" \
      "http://127.0.0.1:$OPORT/v2/models/$(basename "$model" .onnx)/infer" >/dev/null
    r=($(wrk_point "http://127.0.0.1:$OPORT/v2/models/$(basename "$model" .onnx)/infer" 16 "$work/post.lua"))
    avg="-"
    if [[ $variant == on ]]; then
      avg=$(curl -s "http://127.0.0.1:$OPORT/metrics" | awk '/^orchard_batch_inference_count_total/ {i=$2} /^orchard_batch_exec_count_total/ {e=$2} END {if (e > 0) printf "%.2f", i / e}')
    fi
    echo "| batching $variant | 16 | ${r[0]} | ${r[1]} | ${r[2]} | ${r[3]} | ${r[4]} | $avg |"
    stop_last
  done
else
  echo "usage: bench/serve.sh http|batching" >&2
  exit 2
fi
