// Helpers shared by the graph passes: who reads a value, constants, removing and renaming nodes.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "graph/graph.hpp"

namespace orchard::graph::passes {

// Who reads each value of a graph, counted once per reading input slot, plus one for each graph output
// and each subgraph that reads it implicitly. It views the graph's strings: rebuild it after any change.
class GraphUses {
 public:
  explicit GraphUses(const Graph& g);
  // Returns how many readers `value` has (node input slots, implicit reads, graph outputs).
  int count(std::string_view value) const;
  // Returns the index of the node that produces `value`, or -1 (graph input, initializer, unknown).
  int producer(std::string_view value) const;
  // Returns the index of the only node reading `value` when it has exactly one reader in one input slot,
  // and is not a graph output or implicitly read; else -1.
  int sole_consumer(std::string_view value) const;
  // Returns the indices of the nodes reading `value` as an input (once per node).
  std::vector<int> consumers(std::string_view value) const;
  // Returns true when `value` is a graph output or read implicitly by a subgraph.
  bool read_outside(std::string_view value) const { return outside_.count(value) > 0; }

 private:
  std::unordered_map<std::string_view, int> count_;
  std::unordered_map<std::string_view, int> producer_;
  std::unordered_map<std::string_view, std::vector<int>> consumers_;
  std::unordered_map<std::string_view, int> outside_;  // graph outputs and implicit reads
};

// Returns the initializer `name`, or nullptr.
const Tensor* constant(const Graph& g, std::string_view name);
// Returns the value of a float32 initializer holding a single element (any shape), if it is one.
std::optional<float> scalar_constant(const Graph& g, std::string_view name);
// Returns the elements of an int64 initializer, if `name` is one.
std::optional<std::vector<int64_t>> int_constant(const Graph& g, std::string_view name);
// Returns the static shape of `value` (graph input, value_info or initializer) when its rank and every
// dim are known.
std::optional<std::vector<int64_t>> static_shape(const Graph& g, std::string_view value);
// Returns the declared shape of `value` (dims may be unknown: -1), when its rank is known.
std::optional<std::vector<Dim>> declared_shape(const Graph& g, std::string_view value);
// Returns true when two declared dims are known to be equal: the same value, or the same (non-empty) symbol.
bool same_dim(const Dim& a, const Dim& b);
// Returns the element type of `value` when known.
DType value_dtype(const Graph& g, std::string_view value);

// Returns `base` + a suffix that names no node output, initializer or graph input of `g`.
std::string unique_name(const Graph& g, const std::string& base);

// Fresh names for a pass that adds many nodes: the graph's names are collected once and every name made is
// taken too (unique_name rescans the graph on each call, and does not see nodes not yet in g.nodes).
class NameSource {
 public:
  explicit NameSource(const Graph& g);
  // Returns `base`, or `base_k` with the smallest k >= 1 not taken, and takes it.
  std::string make(const std::string& base);

 private:
  std::set<std::string, std::less<>> taken_;
};

// Marks node i removed (its op_type becomes empty); compact() drops marked nodes.
void mark_removed(Graph& g, size_t i);
// Drops the marked nodes and the value_info of values no node produces any more.
void compact(Graph& g);
// Replaces every node input `from` by `to`. `from` must be neither a graph output nor read implicitly by a
// subgraph (their bodies name it).
void replace_uses(Graph& g, const std::string& from, const std::string& to);

// Runs `try_at` on every live node in order, rebuilding the uses after each rewrite (try_at returns true
// when it rewrote the graph; it then runs again at the same index), then compacts. Returns the rewrites.
int rewrite_each(Graph& g, const std::function<bool(Graph&, const GraphUses&, size_t)>& try_at);

// Removes `nodes` (a chain whose result `out` equals its source `in`) and makes `out`'s readers read `in`.
// When `out` is a graph output or read by a subgraph, `in`'s producer is renamed to produce `out` instead,
// which needs `in` to be read only by `nodes`. Returns false, changing nothing, when neither is possible.
bool bypass(Graph& g, const GraphUses& uses, const std::vector<size_t>& nodes, const std::string& in,
            const std::string& out);

// For a node with two inputs reading `value`, returns the other input ("" when it reads `value` twice or not
// at all, or has another input count).
std::string other_input(const Node& n, const std::string& value);

// Returns true when node `n` is of `op` in the default ONNX domain.
inline bool is_op(const Node& n, std::string_view op) { return n.domain.empty() && n.op_type == op; }

}  // namespace orchard::graph::passes
