// The CPU backend: a KernelBackend over the reference kernel table (the oracle for every other backend).
// Optimized variants register in the same table with the CPU features they need and a higher priority;
// the best applicable one is chosen per node at load.
#pragma once

#include "backends/cpu/kernel_registry.hpp"
#include "runtime/kernel_backend.hpp"

namespace orchard::cpu {

class CpuBackend final : public runtime::KernelBackend {
 public:
  explicit CpuBackend(const SessionOptions& options);
};

}  // namespace orchard::cpu
