// CompiledGraph: a graph whose nodes are bound to kernels and whose values are numbered slots, and the
// executor that walks it. Shared read-only by concurrent runs; each run owns a Frame of slots.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "graph/graph.hpp"
#include "runtime/backend.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::runtime {

// Per-run state shared by a graph and its subgraphs.
struct RunEnv {
  ThreadPool* pool = nullptr;
  Allocator* allocator = nullptr;
  std::shared_ptr<Allocator> shared_allocator;  // when set, used instead of `allocator` and kept alive by tensors
  const std::atomic<bool>* abort = nullptr;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::vector<NodeProfile>* profile = nullptr;  // non-null: record per-node timings
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

// The values of one run of one graph.
struct Frame {
  const CompiledGraph* graph = nullptr;
  std::vector<Value> slots;
};

class CompiledGraph {
 public:
  struct CompiledNode {
    const graph::Node* node = nullptr;
    const Backend* backend = nullptr;
    std::unique_ptr<OpKernel> kernel;
    // The next backend of the chain that runs this node, used once `backend` fails at run time.
    const Backend* fallback_backend = nullptr;
    std::unique_ptr<OpKernel> fallback_kernel;
    std::unique_ptr<std::atomic<bool>> failed_over = std::make_unique<std::atomic<bool>>(false);
    std::vector<int> inputs;   // slot per input, -1 when omitted
    std::vector<int> outputs;  // slot per output, -1 when unused
    std::vector<int> release;  // slots whose last reader is this node
  };

  // Compiles `g`, choosing for each node the first backend of `chain` that supports it. `parent` is the
  // enclosing graph for subgraphs (names not defined in `g` are read from it), null at top level.
  static Result<std::shared_ptr<CompiledGraph>> compile(std::shared_ptr<const graph::Graph> g,
                                                        const std::vector<std::shared_ptr<Backend>>& chain,
                                                        const CompiledGraph* parent);

  // Runs with `inputs` bound to the graph inputs in order (a none Value leaves an input unset) and
  // returns the outputs in order. `outer` is the enclosing frame for subgraphs.
  Result<std::vector<Value>> run(std::span<const Value> inputs, RunEnv& env, const Frame* outer) const;

  const graph::Graph& graph() const { return *graph_; }
  const std::vector<CompiledNode>& nodes() const { return nodes_; }
  // Returns the slot of `name`, or -1.
  int slot_of(const std::string& name) const;
  // Returns the name of `slot`.
  const std::string& slot_name(int slot) const { return slot_names_[static_cast<size_t>(slot)]; }
  int num_slots() const { return num_slots_; }
  // Returns the declared or inferred type of `slot`'s value, or null when the model gives none.
  const ValueInfo* slot_info(int slot) const { return slot_info_[static_cast<size_t>(slot)]; }
  const std::vector<int>& input_slots() const { return input_slots_; }
  const std::vector<std::pair<int, Tensor>>& constants() const { return constants_; }
  // Returns the number of failovers (compile and run time) in this graph and its subgraphs.
  int64_t failover_count() const { return failovers_->load(); }

 private:
  std::shared_ptr<const graph::Graph> graph_;
  std::vector<CompiledNode> nodes_;
  std::unordered_map<std::string, int> slots_;
  int num_slots_ = 0;
  std::vector<int> input_slots_;
  std::vector<int> output_slots_;
  std::vector<std::pair<int, Tensor>> constants_;
  std::vector<std::pair<int, int>> outer_refs_;  // (slot in parent frame, slot here)
  std::vector<std::string> slot_names_;
  std::vector<const ValueInfo*> slot_info_;
  std::shared_ptr<std::atomic<int64_t>> failovers_;  // shared with subgraphs

  Status run_node(const CompiledNode& cn, OpContext& ctx, std::vector<Value>& outs) const;
};

}  // namespace orchard::runtime
