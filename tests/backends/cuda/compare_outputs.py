#!/usr/bin/env python3
"""Compares two `orchard run --output-dir` folders (an accelerator's and the CPU's) output by output:
max |a - b| relative to the CPU output's scale (largest |value|, at least 1). Exit 1 above --tol."""
import argparse, glob, os, sys

import numpy as np
from onnx import TensorProto, numpy_helper

ap = argparse.ArgumentParser()
ap.add_argument("got")
ap.add_argument("want")
ap.add_argument("--tol", type=float, default=1e-4)
args = ap.parse_args()
worst, bad = 0.0, 0
files = sorted(glob.glob(os.path.join(args.want, "*.pb")))
if not files:
    sys.exit(f"no outputs in {args.want}")
for path in files:
    name = os.path.basename(path)
    t = TensorProto(); t.ParseFromString(open(path, "rb").read()); w = numpy_helper.to_array(t).astype(np.float64)
    t = TensorProto(); t.ParseFromString(open(os.path.join(args.got, name), "rb").read()); g = numpy_helper.to_array(t).astype(np.float64)
    if g.shape != w.shape:
        print(f"{name}: shape {g.shape} vs {w.shape}"); bad += 1; continue
    scale = max(1.0, float(np.max(np.abs(w[np.isfinite(w)]))) if w.size else 1.0)
    err = float(np.max(np.abs(g - w))) / scale if w.size else 0.0
    worst = max(worst, err)
    ok = err <= args.tol and np.array_equal(np.isnan(g), np.isnan(w))
    bad += 0 if ok else 1
    print(f"{name}: shape {list(w.shape)} max_rel_err {err:.3g} (scale {scale:.3g}) {'OK' if ok else 'FAIL'}")
print(f"worst {worst:.3g} tol {args.tol}: {'PASS' if bad == 0 else 'FAIL'}")
sys.exit(1 if bad else 0)
