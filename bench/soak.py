#!/usr/bin/python3
"""Soak test of `orchard serve` (driven by bench/soak.sh): mixed valid, invalid and oversized requests,
client-side cancellations (connections dropped mid-request and mid-wait), and a model reload every 30 s,
for a bounded time. Every request that is not dropped on purpose must end with a 2xx or an explicit
4xx/5xx with an error body; RSS must stay under the memory budget plus a stated margin; the server must
not crash and must exit 0 on SIGTERM. Prints a summary and exits non-zero when any of that fails."""
import collections
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

orchard, digits, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
BUDGET_MB, MARGIN_MB, BODY_MB, WORKERS = 256, 256, 2, 8

repo = tempfile.mkdtemp(prefix="orchard_soak_")
for name, cfg in (("digits", None), ("digits_batch", {"max_batch_size": 8,
                                                      "dynamic_batching": {"max_queue_delay_microseconds": 2000}})):
    os.makedirs(os.path.join(repo, name, "1"))
    shutil.copy(digits, os.path.join(repo, name, "1", "model.onnx"))
    if cfg:
        json.dump(cfg, open(os.path.join(repo, name, "config.json"), "w"))
port_file = os.path.join(repo, "port")
log = open(os.path.join(repo, "server.log"), "w+")
proc = subprocess.Popen([orchard, "serve", "--model-repository", repo, "--port", "0", "--grpc-port", "0",
                         "--port-file", port_file, "--memory-mb", str(BUDGET_MB), "--max-body-mb", str(BODY_MB),
                         "--max-queue", "256", "--poll-secs", "5"], stdout=log, stderr=subprocess.STDOUT)
while not os.path.exists(port_file):
    if proc.poll() is not None:
        sys.exit("server did not start")
    time.sleep(0.05)
port = int(open(port_file).read().split()[0])

counts = collections.Counter()
lock = threading.Lock()
stop = threading.Event()
problems = []


def tally(key):
    with lock:
        counts[key] += 1


def image(n=1):
    return np.random.rand(n, 1, 8, 8).astype(np.float32)


def request(conn, method, path, body=b"", headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheaders(), r.read()


KINDS = ["json", "json_batch", "binary", "bad_json", "bad_shape", "oversized", "unknown", "timeout", "health",
         "cancel_mid_body", "cancel_waiting"]


def one(conn, rng, kind):
    model = "digits_batch" if kind == "json_batch" else "digits"
    if kind in ("json", "json_batch"):
        x = image(rng.randint(1, 3))
        body = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": list(x.shape),
                                       "data": x.ravel().tolist()}]}).encode()
        return kind, request(conn, "POST", "/v2/models/%s/infer" % model, body), {200}
    if kind == "binary":
        x = image(2)
        h = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 1, 8, 8],
                                    "parameters": {"binary_data_size": x.nbytes}}]}).encode()
        return kind, request(conn, "POST", "/v2/models/digits/infer", h + x.tobytes(),
                             {"Inference-Header-Content-Length": str(len(h))}), {200}
    if kind == "bad_json":
        return kind, request(conn, "POST", "/v2/models/digits/infer", b'{"inputs": [}'), {400}
    if kind == "bad_shape":
        body = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8], "data": [1]}]})
        return kind, request(conn, "POST", "/v2/models/digits/infer", body.encode()), {400}
    if kind == "oversized":  # headers announce 2x the cap; the server answers 413 before the body comes
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (BODY_MB * 2 << 20)
                  + b" " * 65536)
        r = http.client.HTTPResponse(s)
        r.begin()
        result = (r.status, r.getheaders(), r.read())
        s.close()
        return kind, result, {413}
    if kind == "unknown":
        return kind, request(conn, "GET", "/v2/models/nosuch%d/ready" % rng.randint(0, 9)), {404}
    if kind == "timeout":
        x = image()
        body = json.dumps({"parameters": {"timeout": 1}, "inputs": [{"name": "image", "datatype": "FP32",
                                                                     "shape": [1, 1, 8, 8], "data": x.ravel().tolist()}]})
        return kind, request(conn, "POST", "/v2/models/digits_batch/infer", body.encode()), {200, 504}
    if kind == "health":
        return kind, request(conn, "GET", "/v2/health/live"), {200}
    # Cancellations: the client goes away; the server must carry on (no reply expected).
    s = socket.create_connection(("127.0.0.1", port))
    x = image()
    body = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                   "data": x.ravel().tolist()}]}).encode()
    head = b"POST /v2/models/digits_batch/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    s.sendall(head + (body[: len(body) // 2] if kind == "cancel_mid_body" else body))
    s.close()
    return kind, None, None


def worker(seed):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        kind = rng.choice(KINDS)
        try:
            kind, result, want = one(conn, rng, kind)
        except (OSError, http.client.HTTPException) as e:
            tally("client_error:%s:%s" % (kind, type(e).__name__))
            problems.append("%s: %r" % (kind, e))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        if result is None:
            tally(kind)
            continue
        status, headers, body = result
        tally("%s:%d" % (kind, status))
        if status not in want and not (status in (429, 503) and kind != "oversized"):
            problems.append("%s answered %d: %r" % (kind, status, body[:200]))
        if status >= 400:
            try:
                assert "error" in json.loads(body)
            except Exception:
                problems.append("%s %d without an error object: %r" % (kind, status, body[:200]))
        if dict((k.lower(), v) for k, v in headers).get("connection") == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def reloader():
    n = 0
    while not stop.wait(30):
        n += 1
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        if n % 2:
            status, _, body = request(c, "POST", "/v2/repository/models/digits/load", b"{}")
        else:  # a new version appears and the poller picks it up
            d = os.path.join(repo, "digits_batch", str(n + 1))
            os.makedirs(d)
            shutil.copy(digits, os.path.join(d, "model.onnx"))
            status = 200
        tally("reload:%d" % status)
        if status != 200:
            problems.append("reload answered %d" % status)
        c.close()


max_rss = [0]


def sampler():
    while not stop.wait(0.5):
        try:
            for line in open("/proc/%d/status" % proc.pid):
                if line.startswith("VmRSS:"):
                    max_rss[0] = max(max_rss[0], int(line.split()[1]) // 1024)
        except OSError:
            return


threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
threads += [threading.Thread(target=reloader), threading.Thread(target=sampler)]
t0 = time.time()
for t in threads:
    t.start()
while time.time() - t0 < seconds and proc.poll() is None:
    time.sleep(1)
stop.set()
for t in threads:
    t.join()
crashed = proc.poll() is not None
metrics = b""
if not crashed:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    _, _, metrics = request(c, "GET", "/metrics")
    proc.send_signal(signal.SIGTERM)
rc = proc.wait(60)
log.seek(0)
server_log = log.read()
shutil.rmtree(repo, ignore_errors=True)

answered = sum(v for k, v in counts.items() if ":" in k and not k.startswith(("client_error", "reload")))
print("soak: %.0f s, %d answered requests, %d dropped on purpose, max RSS %d MB (budget %d MB + margin %d MB), "
      "server exit %d" % (time.time() - t0, answered, counts["cancel_mid_body"] + counts["cancel_waiting"], max_rss[0],
                          BUDGET_MB, MARGIN_MB, rc))
for k in sorted(counts):
    print("  %-28s %d" % (k, counts[k]))
for line in metrics.decode().splitlines():
    if line.startswith(("orchard_server_rejections_total", "orchard_requests_total{model=\"_all\"")):
        print("  " + line)
bad = problems[:10]
if crashed:
    bad.append("server exited during the soak: " + server_log[-2000:])
if rc != 0:
    bad.append("server exit code %d on SIGTERM" % rc)
if max_rss[0] > BUDGET_MB + MARGIN_MB:
    bad.append("RSS %d MB above budget + margin" % max_rss[0])
for b in bad:
    print("FAIL: " + b)
sys.exit(1 if bad else 0)
