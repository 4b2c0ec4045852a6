// Memory planning: what a run of a compiled graph will hold at its peak, from the shapes the importer
// inferred, with symbolic dims bound to the actual inputs. The Manager reserves this before a run.
#pragma once

#include <vector>

#include "runtime/executor.hpp"

namespace orchard::runtime {

// Estimates weights and peak activation bytes of running `cg` on inputs of these shapes (in graph
// input order; a null entry is an input that is not a tensor).
MemoryEstimate estimate_memory(const CompiledGraph& cg, const std::vector<const Tensor*>& inputs);

}  // namespace orchard::runtime
