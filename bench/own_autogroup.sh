#!/usr/bin/env bash
# Runs a command (a benchmark) in a session of its own whose scheduler autogroup has nice -10.
#
# Why: with CONFIG_SCHED_AUTOGROUP (on in this VM: /proc/sys/kernel/sched_autogroup_enabled is 1), the CPU is
# shared fairly between sessions first, and a process's nice value counts only inside its own session. A fuzz
# campaign started in another session at nice 10 therefore still takes one of the two cores from a benchmark:
# measured with two threads spinning on floating-point work, 2 threads took as long as 1 thread's two loops
# one after the other. Nicing the benchmark's own autogroup to -10 gives it the share that nice 0 against
# nice 10 was meant to give (weights 9548 : 1024), without touching the other session's processes.
# Needs root (lowering a nice value); falls back to running the command as is, with a warning.
#
# Usage: bench/own_autogroup.sh COMMAND [ARGS...]   e.g. bench/own_autogroup.sh bench/compare.sh resnet50
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
exec setsid --wait bash -c '
  if ! echo -10 > /proc/self/autogroup 2> /dev/null; then
    echo "own_autogroup.sh: could not set the autogroup nice (not root, or no autogroups); running as is" >&2
  fi
  exec "$@"' own_autogroup "$@"
