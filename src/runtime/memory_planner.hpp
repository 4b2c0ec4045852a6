// Memory planning: what a run of a compiled graph will hold at its peak, from the shapes the importer
// inferred, with symbolic dims bound to the actual inputs. The Manager reserves this before a run.
#pragma once

#include <vector>

#include "runtime/executor.hpp"

namespace orchard::runtime {

// One intermediate value's life in execution order (positions index CompiledGraph::node_order()) and
// the memory it lives in. This is where a real planner (offsets in one arena per device, in-place
// reuse) plugs in; today the executor allocates each value separately and the estimate sums lifetimes.
struct ValueLifetime {
  int slot = -1;
  int first = 0;  // position of the producing node
  int last = 0;   // position of the last reader (the producer's own position when nothing reads it)
  bool kept = false;  // a graph output: lives until the run returns
  MemoryPlace place;
};

// Returns the lifetimes of every value produced by a node of `cg` (not inputs or constants).
std::vector<ValueLifetime> value_lifetimes(const CompiledGraph& cg);

// Estimates weights and peak activation bytes of running `cg` on inputs of these shapes (in graph
// input order; a null entry is an input that is not a tensor).
MemoryEstimate estimate_memory(const CompiledGraph& cg, const std::vector<const Tensor*>& inputs);

}  // namespace orchard::runtime
