#!/usr/bin/env python3
"""`orchard run --output-dir` keeps every output file inside the folder whatever the model names its outputs:
tests/onnx/data/hostile_output_names.onnx has outputs "/abs_name", "../escape", "a/b", "a_b" and "ok.1".
Usage: output_dir_test.py ORCHARD MODEL"""
import os
import subprocess
import sys
import tempfile


def main():
    orchard, model = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="orchard_outdir_") as root:
        out = os.path.join(root, "out")
        before = set(os.listdir(root))
        r = subprocess.run([orchard, "run", model, "--output-dir", out], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("orchard run failed: " + r.stderr)
        leaked = set(os.listdir(root)) - before - {"out"}
        if leaked:
            sys.exit("files written outside the output folder: %s" % sorted(leaked))
        files = sorted(os.listdir(out))
        want = ["_._escape.pb", "_abs_name.pb", "a_b.pb", "a_b_2.pb", "ok.1.pb"]
        if files != want:
            sys.exit("output files %s, want %s" % (files, want))
    for stray in ("/abs_name.pb", os.path.join(os.path.dirname(out), "escape.pb")):
        if os.path.exists(stray):
            sys.exit("stray file " + stray)
    print("output files stayed in the folder:", files)


if __name__ == "__main__":
    main()
