// CompiledGraph: a graph cut into partitions, each compiled by its backend, with values in numbered
// slots; and the executor that walks the partitions, moving values between memories at their edges.
// Shared read-only by concurrent runs; each run owns a Frame of slots.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "graph/graph.hpp"
#include "runtime/backend.hpp"
#include "runtime/op_kernel.hpp"
#include "runtime/partitioner.hpp"

namespace orchard::runtime {

class RunArena;

// A place in a run's arena planned for one output: `capacity` bytes at `data`, kept alive by `arena`.
struct PlannedOutput {
  void* data = nullptr;
  int64_t capacity = 0;
  const std::shared_ptr<void>* arena = nullptr;
};

// Per-run state shared by a graph and its subgraphs.
struct RunEnv {
  ThreadPool* pool = nullptr;
  Allocator* allocator = nullptr;
  std::shared_ptr<Allocator> shared_allocator;  // when set, used instead of `allocator` and kept alive by tensors
  const std::atomic<bool>* abort = nullptr;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::vector<NodeProfile>* profile = nullptr;  // non-null: record partitions, copies and kernels
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  bool device_outputs = false;  // leave top-level outputs where they were computed
  int64_t bytes_copied = 0;     // bytes moved between memories during this run
  RunArena* arena = nullptr;    // the top-level graph's memory plan for this run (memory_planner.hpp), or null
  // Set by the kernel executable around each node the plan covers: OpContext::make_output of that node puts
  // output i at planned_outputs[i] (when it has a place and fits) and sets bit i of made_outputs.
  const graph::Node* planned_node = nullptr;
  std::span<const PlannedOutput> planned_outputs;
  uint64_t made_outputs = 0;

  // Returns the host allocator of this run (the request's arena when there is one).
  Allocator& host_allocator() const { return shared_allocator ? *shared_allocator : *allocator; }
  // Returns a new tensor from `alloc`; when that is the shared allocator, the storage keeps it alive (a request's
  // arena must outlive every tensor it charged, outputs handed to the client included).
  Result<Tensor> create_tensor(DType dtype, const Shape& shape, Allocator& alloc) const;
  // Returns this run's stream on `backend`, made on first use (null for synchronous backends).
  Result<Stream*> stream_for(const Backend* backend);
  // Waits for every stream of this run; returns the first error.
  Status synchronize_all();
  // Keeps a value alive until the run's streams are synchronized (sources of asynchronous copies).
  void keep_alive(Value v) { keep_alive_.push_back(std::move(v)); }
  // Returns cancelled / deadline_exceeded once the run must stop.
  Status check_abort() const;

 private:
  std::vector<std::pair<const Backend*, std::unique_ptr<Stream>>> streams_;
  std::vector<Value> keep_alive_;
};

// The values of one run of one graph.
struct Frame {
  const CompiledGraph* graph = nullptr;
  std::vector<Value> slots;
};

// What Session, metrics and `orchard inspect --placement` report about one partition.
struct PartitionReport {
  std::string backend;
  std::vector<int> nodes;              // node indices in the graph
  std::vector<std::string> inputs, outputs;
  int64_t copied_bytes = 0;            // bytes copied into it from another memory per run (-1: shapes unknown)
  std::vector<std::pair<std::string, int>> device_units;  // Executable::device_units()
};

class CompiledGraph {
 public:
  struct CompiledPartition {
    int backend = -1;  // index in the chain
    PartitionSpec spec;
    std::unique_ptr<Executable> executable;
    std::vector<int> input_slots, output_slots;
    std::vector<int> release;  // slots whose last reader is this partition
    // The next backend of the chain able to run every node here; used once `backend` fails at run time.
    int fallback_backend = -1;
    struct Fallback {
      std::once_flag once;
      std::unique_ptr<Executable> executable;  // compiled on the first failure
      Status status;                           // why compiling it failed, if it did
    };
    std::unique_ptr<Fallback> fallback = std::make_unique<Fallback>();
    std::unique_ptr<std::atomic<bool>> failed_over = std::make_unique<std::atomic<bool>>(false);
  };

  // Partitions `g` over `chain` and compiles each partition. `parent` is the enclosing graph for
  // subgraphs (names not defined in `g` are read from it), null at top level. With `require_first`,
  // a node that would leave chain[0] fails the compile with the nodes and reasons.
  // `release_packed` (top level only: the caller's own mutable `g`) frees each constant's data as soon as its
  // one reader's kernel has packed it (CompileContext::constant_packed), where that reader runs on the chain's
  // last backend (so no fallback or compile-time failover can need the original): the constant becomes a tensor
  // of the same dtype and shape without data, in `g` and here, and packed weights are not held twice at any
  // point of the load. Returns the bytes freed in `released_bytes` when set.
  static Result<std::shared_ptr<CompiledGraph>> compile(std::shared_ptr<const graph::Graph> g,
                                                        const std::vector<std::shared_ptr<Backend>>& chain,
                                                        const CompiledGraph* parent, bool require_first = false,
                                                        graph::Graph* release_packed = nullptr,
                                                        int64_t* released_bytes = nullptr);

  // Runs with `inputs` bound to the graph inputs in order (a none Value leaves an input unset) and
  // returns the outputs in order. `outer` is the enclosing frame for subgraphs.
  Result<std::vector<Value>> run(std::span<const Value> inputs, RunEnv& env, const Frame* outer) const;

  const graph::Graph& graph() const { return *graph_; }
  const std::vector<CompiledPartition>& partitions() const { return partitions_; }
  const std::vector<std::shared_ptr<Backend>>& chain() const { return chain_; }
  const Placement& placement() const { return placement_; }
  // Returns the partitions with their backends and edges, sized from the inferred shapes.
  std::vector<PartitionReport> report() const;
  // Returns the nodes in execution order.
  const std::vector<int>& node_order() const { return node_order_; }
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
  std::vector<std::shared_ptr<Backend>> chain_;
  Placement placement_;
  std::vector<CompiledPartition> partitions_;
  std::vector<int> node_order_;
  std::unordered_map<std::string, int> slots_;
  int num_slots_ = 0;
  std::vector<int> input_slots_;
  std::vector<int> output_slots_;
  std::vector<std::pair<int, Tensor>> constants_;
  std::vector<std::pair<int, int>> outer_refs_;  // (slot in parent frame, slot here)
  std::vector<std::string> slot_names_;
  std::vector<const ValueInfo*> slot_info_;
  std::shared_ptr<std::atomic<int64_t>> failovers_;  // shared with subgraphs

  CompileContext compile_context(const PartitionSpec& spec, std::vector<int>* failed) const;
  Status run_partition(const CompiledPartition& p, Frame& frame, RunEnv& env) const;
  // Returns the partition's fallback executable, compiling it on first use (null when that failed).
  const Executable* fallback_of(const CompiledPartition& p) const;
};

// Copies `v` into memory `backend` reads (a no-op when it can read it already), with the transfer of
// `backend` or of the chain's backend owning v's memory; counts the bytes in env.
Result<Value> move_to(const Value& v, const Backend& backend, const std::vector<std::shared_ptr<Backend>>& chain,
                      RunEnv& env, Stream* stream);
// Copies `v` into host memory (a no-op when the host can read it); counts the bytes in env.
Result<Value> move_to_host(const Value& v, const std::vector<std::shared_ptr<Backend>>& chain, RunEnv& env);

}  // namespace orchard::runtime
