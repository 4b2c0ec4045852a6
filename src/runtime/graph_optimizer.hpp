// Load-time graph optimization (SessionOptions::optimization >= basic): constant folding and dead-node
// removal. It lives in the runtime, not in src/graph/passes/, because folding executes kernels.
#pragma once

#include <memory>
#include <vector>

#include "graph/graph.hpp"
#include "runtime/backend.hpp"

namespace orchard::runtime {

struct OptimizeStats {
  int folded = 0;   // nodes replaced by initializers
  int removed = 0;  // nodes whose outputs nothing reads
};

// Folds nodes whose inputs are all initializers into initializers (using the first backend of `chain`
// that runs them), then drops nodes that no graph output depends on. Subgraphs are left as they are.
Result<OptimizeStats> optimize_graph(graph::Graph& g, const std::vector<std::shared_ptr<Backend>>& chain);

}  // namespace orchard::runtime
