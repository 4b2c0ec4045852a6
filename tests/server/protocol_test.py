#!/usr/bin/python3
"""KServe v2 REST protocol tests for `orchard serve`, through curl over loopback.

Each test class starts its own server (port 0, model repository in a temp folder), drives it with curl
and stops it with SIGTERM, checking the exit code. Run: protocol_test.py --orchard build/release/orchard
--digits examples/digits/digits_cnn.onnx [unittest args]. Needs /usr/bin/python3 (onnx, numpy), curl,
promtool.
"""
import argparse
import concurrent.futures
import json
import re
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import numpy as np
import onnx
from onnx import TensorProto, helper

ORCHARD = None
DIGITS = None
pb = None        # grpc_service_pb2, generated at build time from src/server/proto/grpc_service.proto
pb_grpc = None   # grpc_service_pb2_grpc

# KServe datatype -> (ONNX element type, numpy dtype, sample values of 2x3)
TYPES = {
    "BOOL": (TensorProto.BOOL, np.bool_, [[True, False, True], [False, False, True]]),
    "INT8": (TensorProto.INT8, np.int8, [[-128, 0, 127], [1, -1, 5]]),
    "INT16": (TensorProto.INT16, np.int16, [[-32768, 0, 32767], [1, -1, 5]]),
    "INT32": (TensorProto.INT32, np.int32, [[-2**31, 0, 2**31 - 1], [1, -1, 5]]),
    "INT64": (TensorProto.INT64, np.int64, [[-2**63, 0, 2**63 - 1], [1, -1, 5]]),
    "UINT8": (TensorProto.UINT8, np.uint8, [[0, 255, 7], [1, 2, 3]]),
    "UINT16": (TensorProto.UINT16, np.uint16, [[0, 65535, 7], [1, 2, 3]]),
    "UINT32": (TensorProto.UINT32, np.uint32, [[0, 2**32 - 1, 7], [1, 2, 3]]),
    "UINT64": (TensorProto.UINT64, np.uint64, [[0, 2**64 - 1, 7], [1, 2, 3]]),
    "FP16": (TensorProto.FLOAT16, np.float16, [[0.5, -2.0, 65504.0], [1.0, 0.25, -0.125]]),
    "BF16": (TensorProto.BFLOAT16, None, [[0.5, -2.0, 3.0], [1.0, 0.25, -0.125]]),
    "FP32": (TensorProto.FLOAT, np.float32, [[0.5, -2.5, 1e30], [1.0, 0.1, -0.125]]),
    "FP64": (TensorProto.DOUBLE, np.float64, [[0.5, -2.5, 1e300], [1.0, 0.1, -0.125]]),
    "BYTES": (TensorProto.STRING, None, [["a", "", "hello"], ["\u00e9t\u00e9", "x y", "z"]]),
}


def identity_model(path):
    """One input and one Identity output per datatype, shape [N, 3]."""
    inputs, outputs, nodes = [], [], []
    for name, (elem, _, _) in TYPES.items():
        inputs.append(helper.make_tensor_value_info("in_" + name, elem, ["N", 3]))
        outputs.append(helper.make_tensor_value_info("out_" + name, elem, ["N", 3]))
        nodes.append(helper.make_node("Identity", ["in_" + name], ["out_" + name]))
    graph = helper.make_graph(nodes, "types", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, path)


def binary_bytes(datatype, values):
    """Little-endian row-major bytes of `values` as the binary extension lays them out."""
    flat = [v for row in values for v in row]
    if datatype == "BYTES":
        out = b""
        for s in flat:
            b = s.encode()
            out += struct.pack("<I", len(b)) + b
        return out
    if datatype == "BF16":
        return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in flat)
    return np.array(flat, dtype=np.dtype(TYPES[datatype][1]).newbyteorder("<")).tobytes()


class Server:
    """`orchard serve` in a subprocess; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, args, env=None):
        self.dir = tempfile.mkdtemp(prefix="orchard_srv_")
        self.port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([ORCHARD, "serve", "--port", "0", "--grpc-port", "0", "--port-file", self.port_file] + args,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("server did not start: " + self.logs())
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port, self.grpc_port = [int(x) for x in f.read().split()]

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc

    def curl(self, method, path, body=None, headers=None, json_body=None):
        """Returns (status, headers dict with lower-case names, body bytes)."""
        hdr = os.path.join(self.dir, "hdr")
        out = os.path.join(self.dir, "out")
        args = ["curl", "-s", "-S", "-X", method, "-D", hdr, "-o", out, "-w", "%{http_code}", "-H", "Expect:",
                "http://127.0.0.1:%d%s" % (self.port, path)]
        for k, v in (headers or {}).items():
            args += ["-H", "%s: %s" % (k, v)]
        if json_body is not None:
            body = json.dumps(json_body).encode()
        if body is not None:
            bf = os.path.join(self.dir, "body")
            with open(bf, "wb") as f:
                f.write(body)
            args += ["--data-binary", "@" + bf]
        r = subprocess.run(args, capture_output=True, timeout=60)
        code = int(r.stdout.decode() or "0")
        headers_out = {}
        if os.path.exists(hdr):
            with open(hdr, "rb") as f:
                lines = f.read().decode("latin1").split("\r\n")[1:]
            for line in lines:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers_out[k.strip().lower()] = v.strip()
        data = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                data = f.read()
        return code, headers_out, data

    def get_json(self, path):
        code, _, data = self.curl("GET", path)
        return code, json.loads(data) if data else None

    def post_json(self, path, obj, headers=None):  # noqa: also used unbound from the gRPC tests
        code, h, data = self.curl("POST", path, json_body=obj, headers=headers)
        return code, json.loads(data) if data else None


def make_repository(root):
    os.makedirs(os.path.join(root, "types", "1"))
    identity_model(os.path.join(root, "types", "1", "model.onnx"))
    os.makedirs(os.path.join(root, "digits", "1"))
    shutil.copy(DIGITS, os.path.join(root, "digits", "1", "model.onnx"))
    # A batching copy of digits whose partial batches wait 1 s: a 1 ms timeout expires in the queue.
    os.makedirs(os.path.join(root, "digits_slowbatch", "1"))
    shutil.copy(DIGITS, os.path.join(root, "digits_slowbatch", "1", "model.onnx"))
    with open(os.path.join(root, "digits_slowbatch", "config.json"), "w") as f:
        json.dump({"max_batch_size": 8, "dynamic_batching": {"max_queue_delay_microseconds": 1000000}}, f)


def digits_input(n=1, nested=False, seed=0):
    x = np.random.RandomState(seed).rand(n, 1, 8, 8).astype(np.float32)
    return x, {"name": "image", "datatype": "FP32", "shape": [n, 1, 8, 8],
               "data": x.tolist() if nested else x.ravel().tolist()}


def split_binary(headers, data):
    n = int(headers["inference-header-content-length"])
    return json.loads(data[:n]), data[n:]


class RestProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.repo = tempfile.mkdtemp(prefix="orchard_repo_")
        make_repository(cls.repo)
        cls.srv = Server(["--model-repository", cls.repo, "--max-body-mb", "1", "--http-threads", "2"])

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.repo, ignore_errors=True)
        assert rc == 0, "server exit code %d" % rc

    def test_health_and_metadata(self):
        code, h, body = self.srv.curl("GET", "/v2/health/live")
        self.assertEqual(code, 200)
        self.assertEqual(self.srv.get_json("/v2/health/ready"), (200, {"ready": True}))
        code, meta = self.srv.get_json("/v2")
        self.assertEqual(code, 200)
        self.assertEqual(meta["name"], "orchard")
        self.assertIn("binary_tensor_data", meta["extensions"])
        code, m = self.srv.get_json("/v2/models/digits")
        self.assertEqual(code, 200)
        self.assertEqual(m["name"], "digits")
        self.assertEqual(m["versions"], ["1"])
        self.assertEqual(m["inputs"], [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}])
        self.assertEqual(m["outputs"], [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}])
        self.assertEqual(self.srv.get_json("/v2/models/digits/versions/1")[0], 200)
        self.assertEqual(self.srv.get_json("/v2/models/digits/ready"), (200, {"name": "digits", "ready": True}))
        self.assertEqual(self.srv.get_json("/v2/models/digits/versions/1/ready")[0], 200)

    def test_statistics_count_requests_and_batches(self):
        def stats(model):
            code, body = self.srv.get_json("/v2/models/%s/stats" % model)
            self.assertEqual(code, 200, body)
            self.assertEqual(len(body["model_stats"]), 1)
            return body["model_stats"][0]
        before, slow_before = stats("digits"), stats("digits_slowbatch")
        for seed in range(3):
            self.assertEqual(self.srv.post_json("/v2/models/digits/infer", {"inputs": [digits_input(2, seed=seed)[1]]})[0], 200)
        self.assertEqual(self.srv.post_json("/v2/models/digits/infer", {"inputs": [{"name": "x"}]})[0], 400)  # not run
        after = stats("digits")
        self.assertEqual((after["name"], after["version"]), ("digits", "1"))
        ok, fail = after["inference_stats"]["success"], after["inference_stats"]["fail"]
        self.assertEqual(ok["count"] - before["inference_stats"]["success"]["count"], 3)
        self.assertGreater(ok["ns"], before["inference_stats"]["success"]["ns"])
        self.assertEqual(fail["count"], before["inference_stats"]["fail"]["count"])
        self.assertEqual(after["execution_count"] - before["execution_count"], 3)
        self.assertEqual(after["inference_count"] - before["inference_count"], 3)
        for phase in ("queue", "compute_infer"):  # the Manager's time queued and running, per run
            self.assertEqual(after["inference_stats"][phase]["count"] - before["inference_stats"][phase]["count"], 3)
        self.assertGreater(after["inference_stats"]["compute_infer"]["ns"], before["inference_stats"]["compute_infer"]["ns"])
        self.assertLessEqual(after["inference_stats"]["compute_infer"]["ns"], ok["ns"])
        self.assertGreater(after["last_inference"], 1.7e12)  # ms since the epoch
        # The batching model: a request that times out in the queue fails; one of 2 rows runs as one batch.
        code, _ = self.srv.post_json("/v2/models/digits_slowbatch/infer",
                                     {"inputs": [digits_input(1)[1]], "parameters": {"timeout": 1000}})
        self.assertEqual(code, 504)
        self.assertEqual(self.srv.post_json("/v2/models/digits_slowbatch/infer", {"inputs": [digits_input(2)[1]]})[0], 200)
        slow = stats("digits_slowbatch")
        self.assertEqual(slow["inference_stats"]["fail"]["count"] - slow_before["inference_stats"]["fail"]["count"], 1)
        self.assertEqual(slow["inference_stats"]["success"]["count"] - slow_before["inference_stats"]["success"]["count"], 1)
        self.assertEqual(slow["execution_count"] - slow_before["execution_count"], 1)
        self.assertEqual(slow["inference_count"] - slow_before["inference_count"], 2)
        code, every = self.srv.get_json("/v2/models/stats")
        self.assertEqual(code, 200)
        self.assertEqual(sorted(m["name"] for m in every["model_stats"]), ["digits", "digits_slowbatch", "types"])
        self.assertEqual(self.srv.get_json("/v2/models/digits/versions/1/stats")[0], 200)
        self.assertEqual(self.srv.get_json("/v2/models/digits/versions/7/stats")[0], 404)
        self.assertEqual(self.srv.get_json("/v2/models/nosuch/stats")[0], 404)
        self.assertEqual(self.srv.curl("POST", "/v2/models/digits/stats", body=b"")[0], 405)

    def test_model_config(self):
        code, c = self.srv.get_json("/v2/models/digits/config")
        self.assertEqual(code, 200, c)
        self.assertEqual((c["name"], c["platform"], c["max_batch_size"]), ("digits", "onnx", 0))
        self.assertEqual(c["input"], [{"name": "image", "data_type": "TYPE_FP32", "dims": [-1, 1, 8, 8]}])
        self.assertEqual(c["output"], [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": [-1, 10]}])
        self.assertNotIn("dynamic_batching", c)
        code, c = self.srv.get_json("/v2/models/digits_slowbatch/versions/1/config")
        self.assertEqual(code, 200, c)
        self.assertEqual(c["max_batch_size"], 8)
        self.assertEqual(c["input"][0]["dims"], [1, 8, 8])  # the batch dim is left out, as in Triton
        self.assertEqual(c["dynamic_batching"], {"max_queue_delay_microseconds": 1000000, "preferred_batch_size": []})
        self.assertEqual(self.srv.get_json("/v2/models/nosuch/config")[0], 404)
        self.assertIn("statistics", self.srv.get_json("/v2")[1]["extensions"])

    def test_route_errors(self):
        code, body = self.srv.get_json("/v2/models/nosuch")
        self.assertEqual(code, 404)
        self.assertIn("nosuch", body["error"])
        self.assertEqual(self.srv.get_json("/v2/models/digits/versions/7")[0], 404)
        self.assertEqual(self.srv.get_json("/v2/models/..%2Fetc")[0], 400)
        self.assertEqual(self.srv.get_json("/v2/models/digits/versions/01")[0], 400)
        self.assertEqual(self.srv.get_json("/nope")[0], 404)
        code, _, data = self.srv.curl("POST", "/v2/health/live", body=b"")
        self.assertEqual(code, 405)
        self.assertIn("error", json.loads(data))
        self.assertEqual(self.srv.curl("GET", "/v2/models/digits/infer")[0], 405)

    def test_infer_json_flat_nested_and_id(self):
        x, flat = digits_input(2)
        _, nested = digits_input(2, nested=True)
        code, r1 = self.srv.post_json("/v2/models/digits/infer", {"id": "req-42", "inputs": [flat]})
        self.assertEqual(code, 200, r1)
        self.assertEqual(r1["id"], "req-42")
        self.assertEqual(r1["model_name"], "digits")
        self.assertEqual(r1["model_version"], "1")
        out = r1["outputs"][0]
        self.assertEqual((out["name"], out["datatype"], out["shape"]), ("probabilities", "FP32", [2, 10]))
        p = np.array(out["data"], dtype=np.float32).reshape(2, 10)
        np.testing.assert_allclose(p.sum(axis=1), [1, 1], rtol=1e-5)
        code, r2 = self.srv.post_json("/v2/models/digits/versions/1/infer", {"inputs": [nested]})
        self.assertEqual(code, 200, r2)
        self.assertEqual(r2["outputs"][0]["data"], out["data"])
        self.assertEqual(r2["id"], "")

    def test_infer_binary_in_and_out_matches_json(self):
        x, flat = digits_input(3, seed=5)
        _, jr = self.srv.post_json("/v2/models/digits/infer", {"inputs": [flat]})
        header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [3, 1, 8, 8],
                                         "parameters": {"binary_data_size": x.nbytes}}],
                             "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
        code, h, data = self.srv.curl("POST", "/v2/models/digits/infer", body=header + x.tobytes(),
                                      headers={"Inference-Header-Content-Length": str(len(header)),
                                               "Content-Type": "application/octet-stream"})
        self.assertEqual(code, 200, data[:200])
        meta, raw = split_binary(h, data)
        out = meta["outputs"][0]
        self.assertEqual(out["parameters"]["binary_data_size"], 3 * 10 * 4)
        self.assertNotIn("data", out)
        got = np.frombuffer(raw, dtype="<f4")
        np.testing.assert_array_equal(got, np.array(jr["outputs"][0]["data"], dtype=np.float32))
        # binary_data_output at the top level.
        code, h, data = self.srv.curl("POST", "/v2/models/digits/infer",
                                      json_body={"inputs": [flat], "parameters": {"binary_data_output": True}})
        self.assertEqual(code, 200)
        meta, raw = split_binary(h, data)
        self.assertEqual(len(raw), 3 * 10 * 4)

    def test_every_datatype_json_and_binary(self):
        inputs_json, inputs_bin, blobs = [], [], b""
        for dt, (_, _, values) in TYPES.items():
            blob = binary_bytes(dt, values)
            inputs_bin.append({"name": "in_" + dt, "datatype": dt, "shape": [2, 3],
                               "parameters": {"binary_data_size": len(blob)}})
            blobs += blob
            if dt not in ("FP16", "BF16"):
                inputs_json.append({"name": "in_" + dt, "datatype": dt, "shape": [2, 3], "data": values})
        # All binary in, all binary out: bytes round-trip exactly, in the order of `outputs`.
        order = list(TYPES)[::-1]
        header = json.dumps({"inputs": inputs_bin, "outputs": [
            {"name": "out_" + dt, "parameters": {"binary_data": True}} for dt in order]}).encode()
        code, h, data = self.srv.curl("POST", "/v2/models/types/infer", body=header + blobs,
                                      headers={"Inference-Header-Content-Length": str(len(header))})
        self.assertEqual(code, 200, data[:300])
        meta, raw = split_binary(h, data)
        self.assertEqual([o["name"] for o in meta["outputs"]], ["out_" + dt for dt in order])
        pos = 0
        for o in meta["outputs"]:
            dt = o["name"][4:]
            self.assertEqual(o["datatype"], dt)
            self.assertEqual(o["shape"], [2, 3])
            n = o["parameters"]["binary_data_size"]
            self.assertEqual(raw[pos:pos + n], binary_bytes(dt, TYPES[dt][2]), dt)
            pos += n
        self.assertEqual(pos, len(raw))
        # JSON in (FP16/BF16 binary), JSON out for the JSON-able types.
        fp = [i for i in inputs_bin if i["datatype"] in ("FP16", "BF16")]
        header = json.dumps({"inputs": inputs_json + fp,
                             "outputs": [{"name": "out_" + dt} for dt in TYPES if dt not in ("FP16", "BF16")]}).encode()
        fp_blobs = binary_bytes("FP16", TYPES["FP16"][2]) + binary_bytes("BF16", TYPES["BF16"][2])
        code, h, data = self.srv.curl("POST", "/v2/models/types/infer", body=header + fp_blobs,
                                      headers={"Inference-Header-Content-Length": str(len(header))})
        self.assertEqual(code, 200, data[:300])
        self.assertNotIn("inference-header-content-length", h)
        for o in json.loads(data)["outputs"]:
            dt = o["name"][4:]
            want = TYPES[dt][2]
            flat = [v for row in want for v in row]
            if dt == "FP32":
                np.testing.assert_array_equal(np.array(o["data"], dtype=np.float32), np.array(flat, dtype=np.float32))
            else:
                self.assertEqual(o["data"], flat, dt)
        # FP16 data sent as JSON is refused, naming the input.
        code, body = self.srv.post_json("/v2/models/types/infer", {"inputs": inputs_json + [
            {"name": "in_FP16", "datatype": "FP16", "shape": [1, 1], "data": [1.0]}]})
        self.assertEqual(code, 400)
        self.assertIn("in_FP16", body["error"])

    def test_infer_errors(self):
        _, flat = digits_input(1)
        cases = [
            (b"{not json", 400, "not valid JSON"),
            (json.dumps({"inputs": [dict(flat, shape=[1, 1, 8, 7])]}).encode(), 400, "64 elements"),
            (json.dumps({"inputs": [dict(flat, datatype="FP99")]}).encode(), 400, "FP99"),
            (json.dumps({"inputs": [dict(flat, datatype="INT32", data=[1] * 64)]}).encode(), 400, "FP32"),
            (json.dumps({"inputs": [dict(flat, name="nope")]}).encode(), 400, "nope"),
            (json.dumps({"inputs": [flat], "outputs": [{"name": "nope"}]}).encode(), 400, "nope"),
            (json.dumps({"inputs": [dict(flat, data=["x"] * 64)]}).encode(), 400, "not a number"),
            (json.dumps({"inputs": [flat], "parameters": {"priority": -1}}).encode(), 400, "priority"),
            (json.dumps({"inputs": []}).encode(), 400, "image"),
        ]
        for body, status, fragment in cases:
            code, _, data = self.srv.curl("POST", "/v2/models/digits/infer", body=body)
            self.assertEqual(code, status, (body[:80], data))
            self.assertIn(fragment, json.loads(data)["error"], body[:80])
        # binary_data_size larger than the bytes sent
        header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                                         "parameters": {"binary_data_size": 256}}]}).encode()
        code, _, data = self.srv.curl("POST", "/v2/models/digits/infer", body=header + b"\0" * 100,
                                      headers={"Inference-Header-Content-Length": str(len(header))})
        self.assertEqual(code, 400)
        self.assertIn("binary_data_size", json.loads(data)["error"])
        code, _, data = self.srv.curl("POST", "/v2/models/digits/infer", body=header,
                                      headers={"Inference-Header-Content-Length": "abc"})
        self.assertEqual(code, 400)

    def test_timeout_and_priority_parameters(self):
        _, flat = digits_input(1)
        code, body = self.srv.post_json("/v2/models/digits_slowbatch/infer",
                                        {"inputs": [flat], "parameters": {"timeout": 1000}})
        self.assertEqual(code, 504, body)
        self.assertIn("deadline", body["error"])
        code, body = self.srv.post_json("/v2/models/digits/infer",
                                        {"inputs": [flat], "parameters": {"timeout": 10000000, "priority": 2}})
        self.assertEqual(code, 200, body)

    def test_size_limits(self):
        code, _, data = self.srv.curl("POST", "/v2/models/digits/infer", body=b" " * (1 << 20 + 1))
        self.assertEqual(code, 413)
        self.assertIn("limit", json.loads(data)["error"])
        code, _, _ = self.srv.curl("GET", "/v2/models/" + "a" * 9000)
        self.assertEqual(code, 414)
        code, _, _ = self.srv.curl("GET", "/v2/health/live", headers={"X-Big": "b" * 20000})
        self.assertEqual(code, 431)
        _, metrics = self.srv.curl("GET", "/metrics")[::2]
        text = metrics.decode()
        for reason in ("body_too_large", "url_too_long", "header_too_large"):
            line = [l for l in text.splitlines() if l.startswith('orchard_server_rejections_total{reason="%s"}' % reason)]
            self.assertTrue(line and float(line[0].split()[-1]) >= 1, reason)

    def test_metrics_valid_for_promtool(self):
        self.srv.post_json("/v2/models/digits/infer", {"inputs": [digits_input(1)[1]]})
        code, h, data = self.srv.curl("GET", "/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(h["content-type"].startswith("text/plain"))
        r = subprocess.run(["promtool", "check", "metrics"], input=data, capture_output=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        text = data.decode()
        self.assertIn('orchard_server_requests_total{code="2xx",endpoint="infer"}', text)
        self.assertIn('orchard_requests_total{model="digits"', text)

    def test_pipelining_answers_in_order(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        body = json.dumps({"id": "p2", "inputs": [digits_input(1)[1]]}).encode()
        reqs = (b"GET /v2/models/nosuch HTTP/1.1\r\nHost: x\r\n\r\n" +
                b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body +
                b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.sendall(reqs)
        data = b""
        s.settimeout(30)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
        self.assertEqual(statuses, [b"404", b"200", b"200"])
        self.assertIn(b'"id":"p2"', data)


    def test_one_connection_reuses_buffers_across_sizes_and_pipelining(self):
        # Each connection keeps its request body and response buffers between requests: answers on one
        # connection must not depend on the size of the request or answer before them, sent one by one or
        # pipelined. Bodies go from ~1 KB to ~400 KB (past the 64 KiB a connection keeps) and back.
        sizes = [300, 1, 20, 1, 300, 2]
        bodies, expected = [], []
        for i, n in enumerate(sizes):
            req = {"id": "r%d" % i, "inputs": [digits_input(n, seed=i)[1]]}
            if i == 2:
                req["parameters"] = {"binary_data_output": True}
            bodies.append(json.dumps(req).encode())
            code, h, data = self.srv.curl("POST", "/v2/models/digits/infer", body=bodies[-1])
            self.assertEqual(code, 200)
            expected.append((h.get("inference-header-content-length"), data))
        bad = b'{"inputs": [{"name": '

        def request(body, last=False):
            return (b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                    (b"Connection: close\r\n" if last else b"") + b"Content-Length: %d\r\n\r\n" % len(body) + body)

        def read_answer(f):
            status = int(f.readline().split()[1])
            headers = {}
            while True:
                line = f.readline().decode("latin1").strip()
                if not line:
                    break
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            return status, headers, f.read(int(headers["content-length"]))

        s = socket.create_connection(("127.0.0.1", self.srv.port))
        s.settimeout(60)
        f = s.makefile("rb")
        for i, body in enumerate(bodies):  # one at a time
            s.sendall(request(body))
            status, h, data = read_answer(f)
            self.assertEqual((status, h.get("inference-header-content-length"), data), (200,) + expected[i], i)
            s.sendall(request(bad))  # an error answer between them, same connection
            status, _, data = read_answer(f)
            self.assertEqual(status, 400)
            self.assertIn("JSON", json.loads(data)["error"])
        # Pipelined: every request in one write, answers in order; the last one closes the connection.
        s.sendall(b"".join(request(b, last=(i == len(bodies) - 1)) for i, b in enumerate(bodies)))
        for i in range(len(bodies)):
            status, h, data = read_answer(f)
            self.assertEqual((status, h.get("inference-header-content-length"), data), (200,) + expected[i], i)
        self.assertEqual(f.read(), b"")
        s.close()


class Repository(unittest.TestCase):
    def test_load_unload_index_poll_and_bad_version(self):
        repo = tempfile.mkdtemp(prefix="orchard_repo_")
        make_repository(repo)
        srv = Server(["--model-repository", repo, "--poll-secs", "1"])
        try:
            code, index = srv.post_json("/v2/repository/index", {})
            self.assertEqual(code, 200)
            self.assertEqual({e["name"]: e["state"] for e in index},
                             {"types": "READY", "digits": "READY", "digits_slowbatch": "READY"})
            self.assertEqual(srv.post_json("/v2/repository/models/digits/unload", {})[0], 200)
            self.assertEqual(srv.get_json("/v2/models/digits/ready")[0], 503)
            code, index = srv.post_json("/v2/repository/index", {"ready": True})
            self.assertNotIn("digits", [e["name"] for e in index])
            self.assertEqual(srv.post_json("/v2/repository/models/digits/load", {})[0], 200)
            self.assertEqual(srv.get_json("/v2/models/digits/ready")[0], 200)
            self.assertEqual(srv.post_json("/v2/repository/models/nosuch/load", {})[0], 404)
            self.assertEqual(srv.curl("POST", "/v2/repository/models/..%2F..%2Fetc/load")[0], 400)
            # A corrupt version 2 appears: version 1 keeps serving, the index says why.
            os.makedirs(os.path.join(repo, "digits", "2"))
            with open(os.path.join(repo, "digits", "2", "model.onnx"), "wb") as f:
                f.write(b"\x08\x07garbage-not-a-model")
            deadline = time.time() + 30
            while time.time() < deadline:
                _, index = srv.post_json("/v2/repository/index", {})
                row = [e for e in index if e["name"] == "digits"][0]
                if "version 2" in row["reason"]:
                    break
                time.sleep(0.2)
            self.assertEqual(row["state"], "READY", row)
            self.assertIn("still serving version 1", row["reason"])
            code, r = srv.post_json("/v2/models/digits/infer", {"inputs": [digits_input(1)[1]]})
            self.assertEqual((code, r["model_version"]), (200, "1"))
            # A good version 3: served after the next poll.
            os.makedirs(os.path.join(repo, "digits", "3"))
            shutil.copy(DIGITS, os.path.join(repo, "digits", "3", "model.onnx"))
            deadline = time.time() + 30
            while time.time() < deadline and srv.get_json("/v2/models/digits/versions/3/ready")[0] != 200:
                time.sleep(0.2)
            code, r = srv.post_json("/v2/models/digits/infer", {"inputs": [digits_input(1)[1]]})
            self.assertEqual((code, r["model_version"]), (200, "3"))
            self.assertEqual(srv.get_json("/v2/models/digits/versions/1/ready")[0], 404)
        finally:
            self.assertEqual(srv.stop(), 0)
            shutil.rmtree(repo, ignore_errors=True)

    def test_single_model_and_bad_config(self):
        srv = Server([DIGITS])
        try:
            code, m = srv.get_json("/v2/models/digits_cnn")
            self.assertEqual((code, m["versions"]), (200, ["1"]))
            self.assertFalse(srv.get_json("/v2/models/digits_cnn/config")[1]["inline_execution"])
        finally:
            self.assertEqual(srv.stop(), 0)
        # --inline-execution: requests run on the I/O threads when a slot is free; answers are the same.
        srv = Server([DIGITS, "--inline-execution", "--max-concurrent", "1"])
        try:
            self.assertTrue(srv.get_json("/v2/models/digits_cnn/config")[1]["inline_execution"])
            x, flat = digits_input(3, seed=9)
            code, r = srv.post_json("/v2/models/digits_cnn/infer", {"inputs": [flat]})
            self.assertEqual(code, 200, r)
            p = np.array(r["outputs"][0]["data"], dtype=np.float32).reshape(3, 10)
            np.testing.assert_allclose(p.sum(axis=1), [1, 1, 1], rtol=1e-5)
            code, s = srv.get_json("/v2/models/digits_cnn/stats")
            self.assertEqual(s["model_stats"][0]["inference_stats"]["success"]["count"], 1)
        finally:
            self.assertEqual(srv.stop(), 0)
        repo = tempfile.mkdtemp(prefix="orchard_repo_")
        make_repository(repo)
        with open(os.path.join(repo, "types", "config.json"), "w") as f:
            f.write('{"max_batch_size": 4, "dynamic_batchin": {}}')
        srv = Server(["--model-repository", repo])
        try:
            self.assertEqual(srv.get_json("/v2/health/ready")[0], 503)  # not every model loaded
            _, index = srv.post_json("/v2/repository/index", {})
            row = [e for e in index if e["name"] == "types"][0]
            self.assertEqual(row["state"], "UNAVAILABLE")
            self.assertIn("dynamic_batchin", row["reason"])
            self.assertEqual(srv.get_json("/v2/models/digits/ready")[0], 200)
        finally:
            self.assertEqual(srv.stop(), 0)
            shutil.rmtree(repo, ignore_errors=True)


    def test_enumerated_shapes_and_instance_group(self):
        repo = tempfile.mkdtemp(prefix="orchard_repo_")
        for name, config in [("shapes", {"max_batch_size": 4, "dynamic_batching": {},
                                         "instance_group": [{"count": 3, "kind": "KIND_CPU"}],
                                         "input_shapes": {"image": [[1, 1, 8, 8], [4, 1, 8, 8]]}}),
                             ("single", {"instance_group": [{"count": 1}], "memory_share_mb": 8}),
                             ("badshapes", {"input_shapes": {"nosuch": [[1]]}})]:
            os.makedirs(os.path.join(repo, name, "1"))
            shutil.copy(DIGITS, os.path.join(repo, name, "1", "model.onnx"))
            with open(os.path.join(repo, name, "config.json"), "w") as f:
                json.dump(config, f)
        srv = Server(["--model-repository", repo])
        try:
            for n, want in [(1, 200), (4, 200), (2, 400)]:
                code, r = srv.post_json("/v2/models/shapes/infer", {"inputs": [digits_input(n)[1]]})
                self.assertEqual(code, want, r)
            self.assertIn("allows [1,1,8,8], [4,1,8,8]", r["error"])
            code, c = srv.get_json("/v2/models/shapes/config")
            self.assertEqual(c["instance_group"], [{"count": 3, "kind": "KIND_CPU"}])
            self.assertEqual(c["input_shapes"], {"image": [[1, 1, 8, 8], [4, 1, 8, 8]]})
            # An unbatched model with one instance and its own memory share: concurrent requests all answer.
            code, c = srv.get_json("/v2/models/single/config")
            self.assertEqual((c["instance_group"], c["memory_share_mb"]), ([{"count": 1, "kind": "KIND_CPU"}], 8))
            def infer(seed):  # its own connection (Server.curl shares files between calls)
                body = json.dumps({"inputs": [digits_input(1, seed=seed)[1]]}).encode()
                req = urllib.request.Request("http://127.0.0.1:%d/v2/models/single/infer" % srv.port, data=body,
                                             headers={"Content-Type": "application/json"}, method="POST")
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(infer, range(8)))
            self.assertEqual(codes, [200] * 8)
            _, index = srv.post_json("/v2/repository/index", {})
            row = [e for e in index if e["name"] == "badshapes"][0]
            self.assertEqual(row["state"], "UNAVAILABLE")
            self.assertIn("nosuch", row["reason"])
        finally:
            self.assertEqual(srv.stop(), 0)
            shutil.rmtree(repo, ignore_errors=True)


class Connections(unittest.TestCase):
    def test_connection_cap_and_idle_timeout(self):
        srv = Server([DIGITS, "--max-connections", "2", "--idle-timeout-s", "1", "--http-threads", "1"])
        try:
            a = socket.create_connection(("127.0.0.1", srv.port))
            b = socket.create_connection(("127.0.0.1", srv.port))
            time.sleep(0.3)
            c = socket.create_connection(("127.0.0.1", srv.port))
            c.settimeout(10)
            self.assertIn(b"503", c.recv(4096))
            c.close()
            # Idle connections are closed after 1 s.
            a.settimeout(10)
            t0 = time.time()
            self.assertEqual(a.recv(4096), b"")
            self.assertLess(time.time() - t0, 5)
            a.close()
            b.close()
            time.sleep(0.2)
            code, _, data = srv.curl("GET", "/metrics")
            text = data.decode()
            self.assertRegex(text, r'orchard_server_rejections_total\{reason="connection_limit"\} [1-9]')
            self.assertRegex(text, r'orchard_server_rejections_total\{reason="idle_timeout"\} [1-9]')
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_sigterm_drains_inflight_request(self):
        repo = tempfile.mkdtemp(prefix="orchard_repo_")
        make_repository(repo)
        srv = Server(["--model-repository", repo])
        try:
            # A request parked 1 s in the batcher is still answered after SIGTERM.
            body = json.dumps({"inputs": [digits_input(1)[1]]}).encode()
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"POST /v2/models/digits_slowbatch/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            deadline = time.time() + 10
            while time.time() < deadline:  # until the request waits in the batcher (1 s delay)
                text = srv.curl("GET", "/metrics")[2].decode()
                if 'orchard_batch_pending_requests{model="digits_slowbatch"} 1' in text:
                    break
                time.sleep(0.01)
            srv.proc.send_signal(signal.SIGTERM)
            s.settimeout(30)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
            self.assertIn(b"Connection: close", data)
            self.assertEqual(srv.proc.wait(30), 0)
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
            srv.log.close()
            shutil.rmtree(repo, ignore_errors=True)


class GrpcProtocol(unittest.TestCase):
    """inference.GRPCInferenceService through python3-grpcio."""

    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.repo = tempfile.mkdtemp(prefix="orchard_repo_")
        make_repository(cls.repo)
        cls.srv = Server(["--model-repository", cls.repo])
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.srv.grpc_port)
        cls.stub = pb_grpc.GRPCInferenceServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.srv.stop()
        shutil.rmtree(cls.repo, ignore_errors=True)
        assert rc == 0, "server exit code %d" % rc

    def code_of(self, fn, req):
        try:
            fn(req, timeout=30)
        except self.grpc.RpcError as e:
            return e.code(), e.details()
        return self.grpc.StatusCode.OK, ""

    def test_health_and_metadata(self):
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest()).live)
        self.assertTrue(self.stub.ServerReady(pb.ServerReadyRequest()).ready)
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="digits")).ready)
        meta = self.stub.ServerMetadata(pb.ServerMetadataRequest())
        self.assertEqual(meta.name, "orchard")
        self.assertIn("model_repository", meta.extensions)
        m = self.stub.ModelMetadata(pb.ModelMetadataRequest(name="digits", version="1"))
        self.assertEqual((m.name, list(m.versions), m.platform), ("digits", ["1"], "onnx"))
        self.assertEqual((m.inputs[0].name, m.inputs[0].datatype, list(m.inputs[0].shape)), ("image", "FP32", [-1, 1, 8, 8]))
        code, msg = self.code_of(self.stub.ModelMetadata, pb.ModelMetadataRequest(name="nosuch"))
        self.assertEqual(code, self.grpc.StatusCode.NOT_FOUND)
        self.assertIn("nosuch", msg)

    def test_infer_raw_and_typed_contents_match_rest(self):
        x, flat = digits_input(2, seed=3)
        code, rest = Server.post_json(self.srv, "/v2/models/digits/infer", {"inputs": [flat]})
        self.assertEqual(code, 200)
        want = np.array(rest["outputs"][0]["data"], dtype=np.float32)
        req = pb.ModelInferRequest(model_name="digits", id="g1")
        t = req.inputs.add(name="image", datatype="FP32", shape=[2, 1, 8, 8])
        req.raw_input_contents.append(x.tobytes())
        r = self.stub.ModelInfer(req, timeout=30)
        self.assertEqual((r.model_name, r.model_version, r.id), ("digits", "1", "g1"))
        self.assertEqual((r.outputs[0].name, r.outputs[0].datatype, list(r.outputs[0].shape)), ("probabilities", "FP32", [2, 10]))
        np.testing.assert_array_equal(np.frombuffer(r.raw_output_contents[0], dtype="<f4"), want)
        req = pb.ModelInferRequest(model_name="digits")
        t = req.inputs.add(name="image", datatype="FP32", shape=[2, 1, 8, 8])
        t.contents.fp32_contents.extend(x.ravel().tolist())
        r = self.stub.ModelInfer(req, timeout=30)
        np.testing.assert_array_equal(np.frombuffer(r.raw_output_contents[0], dtype="<f4"), want)

    def test_every_datatype_raw(self):
        req = pb.ModelInferRequest(model_name="types")
        for dt, (_, _, values) in TYPES.items():
            req.inputs.add(name="in_" + dt, datatype=dt, shape=[2, 3])
            req.raw_input_contents.append(binary_bytes(dt, values))
        for dt in TYPES:
            req.outputs.add(name="out_" + dt)
        r = self.stub.ModelInfer(req, timeout=30)
        self.assertEqual(len(r.outputs), len(TYPES))
        for o, raw in zip(r.outputs, r.raw_output_contents):
            dt = o.name[4:]
            self.assertEqual((o.datatype, list(o.shape)), (dt, [2, 3]))
            self.assertEqual(raw, binary_bytes(dt, TYPES[dt][2]), dt)

    def test_errors(self):
        x, _ = digits_input(1)
        def infer(**kw):
            req = pb.ModelInferRequest(model_name=kw.get("model", "digits"))
            req.inputs.add(name=kw.get("name", "image"), datatype=kw.get("dt", "FP32"), shape=kw.get("shape", [1, 1, 8, 8]))
            req.raw_input_contents.append(kw.get("raw", x.tobytes()))
            for k, v in kw.get("params", {}).items():
                req.parameters[k].int64_param = v
            return self.code_of(self.stub.ModelInfer, req)
        C = self.grpc.StatusCode
        self.assertEqual(infer(model="nosuch")[0], C.NOT_FOUND)
        self.assertEqual(infer(raw=b"\0" * 7)[0], C.INVALID_ARGUMENT)
        self.assertEqual(infer(dt="INT32")[0], C.INVALID_ARGUMENT)
        code, msg = infer(name="nope")
        self.assertEqual(code, C.INVALID_ARGUMENT)
        self.assertIn("nope", msg)
        self.assertEqual(infer(model="digits_slowbatch", params={"timeout": 1000})[0], C.DEADLINE_EXCEEDED)
        self.assertEqual(infer(params={"priority": -3})[0], C.INVALID_ARGUMENT)

    def test_statistics_and_config_rpcs(self):
        x, _ = digits_input(1)
        before = self.stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits"), timeout=30).model_stats[0]
        req = pb.ModelInferRequest(model_name="digits")
        req.inputs.add(name="image", datatype="FP32", shape=[1, 1, 8, 8])
        req.raw_input_contents.append(x.tobytes())
        self.stub.ModelInfer(req, timeout=30)
        s = self.stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits", version="1"), timeout=30).model_stats[0]
        self.assertEqual((s.name, s.version), ("digits", "1"))
        self.assertEqual(s.inference_stats.success.count - before.inference_stats.success.count, 1)
        self.assertGreater(s.inference_stats.success.ns, before.inference_stats.success.ns)
        self.assertEqual(s.execution_count - before.execution_count, 1)
        self.assertEqual(s.inference_stats.compute_infer.count - before.inference_stats.compute_infer.count, 1)
        self.assertEqual(s.inference_stats.queue.count - before.inference_stats.queue.count, 1)
        self.assertGreater(s.inference_stats.compute_infer.ns, before.inference_stats.compute_infer.ns)
        every = self.stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=30)
        self.assertIn("digits_slowbatch", [m.name for m in every.model_stats])
        code, _ = self.code_of(self.stub.ModelStatistics, pb.ModelStatisticsRequest(name="nosuch"))
        self.assertEqual(code, self.grpc.StatusCode.NOT_FOUND)
        c = self.stub.ModelConfig(pb.ModelConfigRequest(name="digits_slowbatch"), timeout=30).config
        self.assertEqual((c.name, c.platform, c.max_batch_size), ("digits_slowbatch", "onnx", 8))
        self.assertEqual((c.input[0].name, c.input[0].data_type, list(c.input[0].dims)), ("image", pb.TYPE_FP32, [1, 8, 8]))
        self.assertEqual(c.dynamic_batching.max_queue_delay_microseconds, 1000000)
        c = self.stub.ModelConfig(pb.ModelConfigRequest(name="digits"), timeout=30).config
        self.assertEqual((c.max_batch_size, list(c.output[0].dims)), (0, [-1, 10]))
        code, _ = self.code_of(self.stub.ModelConfig, pb.ModelConfigRequest(name="nosuch"))
        self.assertEqual(code, self.grpc.StatusCode.NOT_FOUND)

    def test_repository_rpcs(self):
        idx = self.stub.RepositoryIndex(pb.RepositoryIndexRequest())
        self.assertEqual({m.name: m.state for m in idx.models},
                         {"types": "READY", "digits": "READY", "digits_slowbatch": "READY"})
        self.stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="types"), timeout=30)
        self.assertFalse(self.stub.ModelReady(pb.ModelReadyRequest(name="types")).ready)
        self.stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="types"), timeout=30)
        self.assertTrue(self.stub.ModelReady(pb.ModelReadyRequest(name="types")).ready)
        code, _ = self.code_of(self.stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="../x"))
        self.assertEqual(code, self.grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--orchard", required=True)
    ap.add_argument("--digits", required=True)
    ap.add_argument("--grpc-stubs", required=True, help="folder of grpc_service_pb2*.py")
    args, rest = ap.parse_known_args()
    ORCHARD, DIGITS = os.path.abspath(args.orchard), os.path.abspath(args.digits)
    sys.path.insert(0, os.path.abspath(args.grpc_stubs))
    import grpc_service_pb2 as pb
    import grpc_service_pb2_grpc as pb_grpc
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
