#!/usr/bin/env bash
# Installs what Orchard needs to build and test, and nothing more. Idempotent: a second run does no work.
# Debian/Ubuntu: apt-get when root, else prints the command. macOS: Homebrew (untested here).
#   scripts/setup.sh          host toolchain and libraries
#   scripts/setup.sh --arm64  also the aarch64 cross toolchain, Debian arm64 libraries and qemu-user
set -euo pipefail

want_arm64=0
for arg in "$@"; do
  case "$arg" in
    --arm64) want_arm64=1 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

if [[ "$(uname -s)" == "Darwin" ]]; then
  # Homebrew equivalents of the Debian packages below. Not exercised on these Linux machines.
  pkgs=(cmake ninja onnx protobuf googletest google-benchmark)
  missing=()
  for p in "${pkgs[@]}"; do brew list --versions "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then brew install "${missing[@]}"; fi
  exit 0
fi

host_pkgs=(cmake ninja-build g++ clang make pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-testdata python3-onnx python3-numpy python3-sklearn
  libdnnl-dev  # oneDNN: the CPU's NHWC convolutions (src/backends/cpu/opt/conv_dnnl.cpp)
  prometheus  # promtool checks the metrics exposition format in a test
  # orchard serve (src/server/): Beast/Asio, JSON, the protocol tests' clients and bench/serve.sh's peers.
  # The server is not built in the arm64 cross build (ORCHARD_BUILD_SERVER is OFF there), so no :arm64 libs.
  libboost-dev nlohmann-json3-dev libsimdjson-dev libgrpc++-dev protobuf-compiler-grpc python3-grpcio python3-yaml curl
  libclang-rt-14-dev wrk nginx-light)
arm64_host_pkgs=(g++-aarch64-linux-gnu qemu-user)
arm64_pkgs=(libonnx-dev:arm64 libprotobuf-dev:arm64 libgtest-dev:arm64)

missing_from() {  # prints the packages of "$@" that dpkg does not report installed
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

sudo_prefix=""
if [[ $EUID -ne 0 ]]; then sudo_prefix="sudo "; fi

missing=($(missing_from "${host_pkgs[@]}"))
arm_missing=()
if ((want_arm64)); then
  missing+=($(missing_from "${arm64_host_pkgs[@]}"))
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    arm_missing=("${arm64_pkgs[@]}")
  else
    arm_missing=($(missing_from "${arm64_pkgs[@]}"))
  fi
fi

if ((${#missing[@]} == 0 && ${#arm_missing[@]} == 0)); then
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  echo "setup.sh: missing packages. Run as root:" >&2
  ((${#missing[@]})) && echo "  ${sudo_prefix}apt-get install -y ${missing[*]}" >&2
  if ((${#arm_missing[@]})); then
    echo "  ${sudo_prefix}dpkg --add-architecture arm64 && ${sudo_prefix}apt-get update" >&2
    echo "  ${sudo_prefix}apt-get install -y -o Dpkg::Options::=--force-overwrite ${arm_missing[*]}" >&2
  fi
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ((${#arm_missing[@]})) && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
fi
apt-get update -qq
if ((${#missing[@]})); then
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ((${#arm_missing[@]})); then
  # libonnx-dev:arm64 pulls libonnxifi:arm64, whose /usr/lib/libonnxifi.so clashes with the amd64 copy.
  # Orchard does not use ONNXIFI, so either copy will do.
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-overwrite "${arm_missing[@]}"
fi
