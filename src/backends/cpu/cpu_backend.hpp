// The CPU backend: a KernelBackend over the reference kernel table (the oracle for every other backend).
// Optimized variants register in the same table with the CPU features they need and a higher priority;
// the best applicable one is chosen per node at load.
#pragma once

#include "backends/cpu/kernel_registry.hpp"
#include "runtime/kernel_backend.hpp"

namespace orchard::cpu {

class CpuBackend final : public runtime::KernelBackend {
 public:
  // The CPU backend with the best variant of each kernel this CPU can run.
  explicit CpuBackend(const SessionOptions& options);

  // Returns a backend named "cpu-reference" that runs only the reference kernels (priority 0): the oracle
  // the op harness holds every optimized variant to.
  static std::shared_ptr<CpuBackend> reference_only(const SessionOptions& options);

  // True where oneDNN's NHWC convolutions are built in and this CPU runs them (AVX2 or AVX-512): the graph optimizer
  // then gives the CPU its 2-D convolutions as FusedConv layout nhwc (graph/passes/layout.cpp).
  bool prefers_channels_last() const override { return channels_last_; }
  // oneDNN's per-call costs (a few microseconds per convolution) and the Transposes at the edges: the digits
  // example (0.1 M multiply-adds) ran 2.5x slower in NHWC; mobilenet_v2 (300 M) 1.25x faster.
  int64_t channels_last_min_macs() const override { return 10'000'000; }

 private:
  CpuBackend(runtime::DeviceInfo info, std::span<const KernelDef> table, uint32_t features, bool static_table);

  bool channels_last_ = false;
};

}  // namespace orchard::cpu
