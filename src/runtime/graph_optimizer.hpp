// Load-time graph optimization (SessionOptions::optimization): constant folding and dead-node removal
// (basic), plus the rewrite passes of src/graph/passes/ (extended). Folding lives in the runtime, not in
// src/graph/passes/, because it executes kernels.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/graph.hpp"
#include "runtime/backend.hpp"

namespace orchard::runtime {

struct OptimizeStats {
  int folded = 0;   // nodes replaced by initializers
  int removed = 0;  // nodes whose outputs nothing reads
  // Extended only: rewrites made by each pass of src/graph/passes/, by pass name, in the order they ran.
  std::vector<std::pair<std::string, int>> passes;
};

// basic: folds nodes whose inputs are all initializers into initializers (using the first backend of
// `chain` that runs them), then drops nodes that no graph output depends on. extended: also folds
// statically known shapes (folding again after), then runs graph::passes::rewrite_passes(), fusing only
// into ops that every backend of `chain` taking the original ops also takes. none: nothing.
// Subgraphs are left as they are.
Result<OptimizeStats> optimize_graph(graph::Graph& g, const std::vector<std::shared_ptr<Backend>>& chain,
                                     OptimizationLevel level = OptimizationLevel::basic);

}  // namespace orchard::runtime
