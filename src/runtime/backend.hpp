// The backend interface: a backend answers four small questions (docs/architecture.md).
//   device      what it runs on (DeviceInfo), its memory (allocator) and how bytes reach it (DataTransfer)
//   capability  which nodes of a graph it will run, as partitions (connected, convex node sets)
//   compile     turn one partition into an Executable whose run() is const and shared by concurrent runs
//   streams     (optional, DeviceCaps::async_copies) where its work is queued
// Kernel backends (CPU, CUDA, Metal) get capability and compile from a kernel table through
// KernelBackend (kernel_backend.hpp); compiling backends (Core ML, MPSGraph) implement them directly.
// Layer: runtime. The compiled-in backends are listed in src/backends/registry.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "graph/graph.hpp"
#include "orchard/session.hpp"
#include "runtime/device.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::runtime {

struct Frame;
struct RunEnv;

// What is known of a value before running: its kind, dtype and (when inferred) shape.
struct ValueType {
  Value::Kind kind = Value::Kind::tensor;
  DType dtype = DType::undefined;  // undefined when the model does not say
  bool has_shape = false;
  std::vector<Dim> shape;
};

// The graph as a capability query sees it: nodes, their value types, constants, and which nodes the
// backend is asked about (earlier backends of the chain may have taken the others).
class GraphView {
 public:
  GraphView(const graph::Graph& g, std::vector<int> candidates);

  const graph::Graph& graph() const { return graph_; }
  const graph::Node& node(int i) const { return graph_.nodes[static_cast<size_t>(i)]; }
  int num_nodes() const { return static_cast<int>(graph_.nodes.size()); }
  // Returns the nodes the backend may claim, in topological order.
  const std::vector<int>& candidates() const { return candidates_; }
  // Returns whether node i is among the candidates.
  bool is_candidate(int i) const { return candidate_[static_cast<size_t>(i)]; }
  // Returns the type of value `name` (an unknown type when the model gives none).
  const ValueType& type_of(const std::string& name) const;
  // Returns the initializer named `name`, or null when the value is not a constant.
  const Tensor* constant(const std::string& name) const;
  // Returns the node producing `name`, or -1 for graph inputs, initializers and outer-scope names.
  int producer(const std::string& name) const;
  // Returns the nodes reading `name` (graph outputs are not nodes: see is_graph_output).
  const std::vector<int>& consumers(const std::string& name) const;
  bool is_graph_output(const std::string& name) const;

 private:
  const graph::Graph& graph_;
  std::vector<int> candidates_;
  std::vector<bool> candidate_;
  std::map<std::string, ValueType, std::less<>> types_;
  std::map<std::string, int, std::less<>> producer_;
  std::map<std::string, std::vector<int>, std::less<>> consumers_;
  std::vector<std::string> outputs_;
};

// A node a backend declined, and why ("op Foo has no kernel", "dtype float64 not supported", ...).
struct NodeRejection {
  int node = -1;
  std::string reason;
};

// A backend's answer to get_capability.
struct Capability {
  // Node sets the backend will run, each connected and convex (no path leaves the set and re-enters
  // it). Kernel backends answer one node per set; the partitioner groups them.
  std::vector<std::vector<int>> partitions;
  std::vector<NodeRejection> rejected;  // candidates not claimed, with the reason
};

// One partition as handed to compile: its nodes (topological order) and the values crossing its edge.
struct PartitionSpec {
  const graph::Graph* graph = nullptr;
  std::vector<int> nodes;
  std::vector<std::string> inputs;   // values read by the nodes and produced outside the partition
  std::vector<std::string> outputs;  // values produced here and read outside (or graph outputs)
};

class CompiledGraph;

// What compile() is given besides the partition.
struct CompileContext {
  const PartitionSpec& partition;
  // Returns the slot of a value name in the enclosing CompiledGraph's frame (kernel executables store
  // intermediate values there, where subgraphs can read them), or -1.
  std::function<int(const std::string&)> slot_of;
  // Compiles a subgraph (an attribute of a node) for OpContext::run_subgraph.
  std::function<Result<std::shared_ptr<const CompiledGraph>>(const graph::Graph&)> compile_subgraph;
  // Set by a backend whose compile failed because of particular nodes: only those leave the backend.
  std::vector<int>* failed_nodes = nullptr;
  // Called by a backend once a node's kernel has copied graph constant `name` into a form of its own and will not
  // read the original's data again (OpKernel::packed_inputs). The runtime frees the original's data when no
  // other reader, fallback or recompile can need it; unset when it never does.
  std::function<void(const std::string&)> constant_packed;
};

// What an Executable sees while running one partition.
struct ExecContext {
  std::span<const Value* const> inputs;  // PartitionSpec::inputs in order, in memory this backend reads; null: absent
  std::span<Value> outputs;              // PartitionSpec::outputs in order, to be set
  Frame& frame;                          // the graph's values (for kernel executables and subgraphs)
  RunEnv& env;                           // pool, abort flag, deadline, profile
  Allocator& allocator;                  // where outputs go: the backend's memory, or the request's arena on host
  Stream* stream = nullptr;              // the run's stream on this backend (null for synchronous backends)
};

// A compiled partition. run() is const: concurrent Session::run calls share one executable.
class Executable {
 public:
  virtual ~Executable() = default;
  // Computes the partition's outputs from its inputs; may enqueue work on ctx.stream and return before it
  // finishes (the executor synchronizes before the host reads the results).
  virtual Status run(ExecContext& ctx) const = 0;
  // Returns whether partition input `i` is read only on the host (a kernel's host input, or by a kernel that
  // reads only shapes): the executor then hands over a host tensor as it is instead of copying it here.
  virtual bool reads_on_host(size_t i) const {
    (void)i;
    return false;
  }
  // Returns where the device itself says it runs this partition's operations, as (compute unit, operation
  // count) pairs, e.g. Core ML's compute plan ("ane", 120), ("cpu", 3); empty when the backend does not say.
  virtual std::vector<std::pair<std::string, int>> device_units() const { return {}; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Returns what this backend runs on.
  virtual const DeviceInfo& device() const = 0;
  // Returns the allocator for tensors this backend computes on (its place says where they live).
  virtual Allocator& allocator() const { return default_allocator(); }
  // Returns the object that copies bytes between host memory and this backend's memory.
  virtual const DataTransfer& transfer() const;
  // Returns a new stream for one run, or null when the backend runs synchronously (the default).
  virtual Result<std::unique_ptr<Stream>> new_stream() const { return std::unique_ptr<Stream>(); }
  // Returns the nodes among view.candidates() this backend will run, grouped into partitions, and the
  // reason for each candidate it declines.
  virtual Capability get_capability(const GraphView& view) const = 0;
  // Compiles one partition this backend claimed. Errors move the partition down the fallback chain.
  virtual Result<std::unique_ptr<Executable>> compile(const CompileContext& ctx) const = 0;
  // Returns whether partitions of this backend may be merged by the partitioner into larger ones (true
  // for kernel backends, whose executables run any set of claimed nodes).
  virtual bool merges_partitions() const { return false; }
  // Returns whether the backend has any implementation of (domain, op) at `opset` (for the importer,
  // which expands function ops that no backend implements).
  virtual bool has_op(const std::string& domain, const std::string& op, int opset) const = 0;
  // Returns whether the backend's convolutions run fastest on channels-last (NHWC) activations: the optimizer
  // then rewrites the 2-D convolutions this backend is first to take into FusedConv with layout nhwc
  // (src/graph/passes/layout.cpp).
  virtual bool prefers_channels_last() const { return false; }
  // The convolution work (multiply-adds per image, over all the convolutions it would run in NHWC) below which
  // channels last does not pay for this backend: per-call overheads and the Transposes at the edges outweigh
  // faster kernels on tiny CNNs. Models below it keep NCHW.
  virtual int64_t channels_last_min_macs() const { return 0; }
};

// Returns the backends available on this machine, in fallback-chain order (CPU last): the options'
// custom backends first, then the compiled-in ones. Defined by src/backends/registry.cpp.
std::vector<std::shared_ptr<Backend>> available_backends(const SessionOptions& options);

}  // namespace orchard::runtime
