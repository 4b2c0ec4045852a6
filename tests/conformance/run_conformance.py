#!/usr/bin/python3
"""Runs the ONNX backend test suite through `orchard check` and holds it to expected_failures.txt.

Fails when a test that is not listed fails, and when a listed test passes (the list only shrinks),
except for tests whose reason starts with [random]: their unseeded random output may match by chance.
Prints the pass count; `--report FILE` writes every test's line for inspection.
"""
import argparse
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

SUITES = ["node", "pytorch-converted", "pytorch-operator", "simple"]


def read_expected(path):
    expected = {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(" ")
            if not reason.strip():
                sys.exit(f"{path}: entry '{name}' has no reason")
            expected[name] = reason.strip()
    return expected


def run_chunk(cmd, dirs, extra):
    proc = subprocess.run(cmd + ["check"] + extra + dirs, capture_output=True, text=True)
    results = {}
    for line in proc.stdout.splitlines():
        for tag in ("PASS ", "FAIL ", "ERROR ", "SKIP "):
            if line.startswith(tag):
                rest = line[len(tag):]
                name = rest.split(":", 1)[0].strip()
                results[name] = (tag.strip(), line)
    missing = [d for d in dirs if os.path.basename(d) not in results]
    for d in missing:  # a crash ends the process: report what did not run
        results[os.path.basename(d)] = ("ERROR", f"ERROR {os.path.basename(d)}: orchard exited with {proc.returncode} "
                                        f"before reporting ({proc.stderr.strip()[-300:]})")
    return results, missing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orchard", required=True)
    ap.add_argument("--emulator", default="")
    ap.add_argument("--data", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--report")
    ap.add_argument("--filter", default="", help="only tests whose name contains this")
    ap.add_argument("--backend", default="", help="backend preference passed to `orchard check` (e.g. simdev,cpu)")
    args = ap.parse_args()

    cmd = shlex.split(args.emulator) + [args.orchard]
    dirs = []
    for suite in SUITES:
        root = os.path.join(args.data, suite)
        for name in sorted(os.listdir(root)):
            if args.filter in name:
                dirs.append(os.path.join(root, name))
    expected = read_expected(args.expected)
    extra = ["--backend", args.backend] if args.backend else []

    results = {}
    pending = list(dirs)
    chunks = [pending[i::args.jobs] for i in range(args.jobs)]
    while chunks:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outs = list(pool.map(lambda c: run_chunk(cmd, c, extra), [c for c in chunks if c]))
        chunks = []
        for res, missing in outs:
            results.update(res)
            # After a crash, rerun the tests after the one that crashed.
            if missing:
                rest = missing[1:]
                if rest:
                    chunks.append(rest)

    passed = sum(1 for s, _ in results.values() if s == "PASS")
    unexpected_fail, unexpected_pass = [], []
    for d in dirs:
        name = os.path.basename(d)
        status, line = results[name]
        if status != "PASS" and name not in expected:
            unexpected_fail.append(line)
        if status == "PASS" and name in expected and not expected[name].startswith("[random]"):
            unexpected_pass.append(name)
    if args.report:
        with open(args.report, "w") as f:
            for d in dirs:
                f.write(results[os.path.basename(d)][1] + "\n")
    for line in unexpected_fail:
        print("UNEXPECTED " + line)
    for name in unexpected_pass:
        print(f"UNEXPECTED PASS {name}: remove it from {os.path.basename(args.expected)}")
    print(f"conformance: {passed} passed, {len(dirs) - passed} failed of {len(dirs)} "
          f"({len(expected)} listed as expected failures)")
    return 1 if unexpected_fail or unexpected_pass else 0


if __name__ == "__main__":
    sys.exit(main())
