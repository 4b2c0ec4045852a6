#!/usr/bin/python3
"""Checks that deploy/*.yaml parse as YAML and carry what KServe needs from Orchard: the runtime's probes
on the v2 health endpoints, the args orchard serve accepts, and an InferenceService naming the runtime.
(The manifests cannot be applied here: no cluster.) Usage: manifests_test.py REPO_ROOT ORCHARD_BINARY"""
import subprocess
import sys

import yaml

root, orchard = sys.argv[1], sys.argv[2]
runtime = yaml.safe_load(open(root + "/deploy/serving-runtime.yaml"))
service = yaml.safe_load(open(root + "/deploy/inference-service.yaml"))
assert runtime["kind"] in ("ServingRuntime", "ClusterServingRuntime"), runtime["kind"]
c = runtime["spec"]["containers"][0]
assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
assert c["readinessProbe"]["httpGet"]["port"] == c["ports"][0]["containerPort"]
assert "v2" in runtime["spec"]["protocolVersions"]
assert service["kind"] == "InferenceService"
assert service["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
assert service["spec"]["predictor"]["model"]["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
# Every flag the runtime passes must be one orchard serve knows.
help_text = subprocess.run([orchard, "serve", "--help"], capture_output=True, text=True).stdout
for arg in c["args"]:
    if arg.startswith("--"):
        assert arg in help_text, "orchard serve has no option " + arg
dockerfile = open(root + "/Dockerfile").read()
assert "FROM debian:12" in dockerfile and "scripts/setup.sh" in dockerfile
print("manifests ok")
