// The partitioner: asks each backend of the fallback chain which nodes it will run, gives each node to
// the first backend that claims it, moves cheap isolated nodes to their neighbours' backend, and cuts the
// graph into partitions in an execution order that keeps each backend's nodes together.
// Layer: runtime.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/backend.hpp"

namespace orchard::runtime {

// One partition of a placement: a backend and the nodes it runs.
struct PlacedPartition {
  int backend = -1;  // index in the chain
  PartitionSpec spec;
};

// Why a node is not on an earlier backend of the chain.
struct Declined {
  int backend = -1;  // index in the chain
  std::string reason;
};

struct Placement {
  std::vector<PlacedPartition> partitions;    // in execution order; their dependencies form a DAG
  std::vector<int> node_backend;              // per node: index in the chain
  std::vector<std::vector<Declined>> declined;  // per node: the earlier backends that declined it, and why
  int moved_nodes = 0;                        // cheap nodes moved to their neighbours' backend
};

// excluded[b][n]: node n may not go to backend b (its compile failed there); may be empty.
// Errors when a node has no backend at all (naming the node and every backend's reason).
Result<Placement> place_graph(const graph::Graph& g, const std::vector<std::shared_ptr<Backend>>& chain,
                              const std::vector<std::vector<std::string>>& excluded_reasons);

// Returns a node's inputs as the partitioner sees them: its inputs and the outer names its subgraphs read.
std::vector<std::string> node_reads(const graph::Node& n);

// Groups `nodes` (all claimable by one backend) into connected, convex sets: the partitions a compiling
// backend may report from get_capability. Sets come out in topological order.
std::vector<std::vector<int>> convex_groups(const GraphView& view, const std::vector<int>& nodes);

}  // namespace orchard::runtime
