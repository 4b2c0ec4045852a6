// Session: one loaded, compiled model. run() is const and thread-safe: many threads may share a Session.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"
#include "orchard/thread_pool.hpp"

namespace orchard {

namespace runtime {
class Backend;  // src/runtime/backend.hpp: the interface backends implement
}  // namespace runtime

// What load does to the main graph before compiling it (subgraphs of If/Loop/Scan are left as written).
enum class OptimizationLevel : unsigned char {
  none,     // run the graph as imported
  basic,    // constant folding (nodes whose inputs are all constants) and dead-node removal
  // basic, plus: Shape/Gather/Slice of statically known dims folded; Identity, same-shape Reshape and
  // cancelling Transposes removed; BatchNormalization and per-channel Mul/Add folded into Conv weights;
  // layer-norm chains → LayerNormalization; GELU formulas → com.orchard Gelu; Conv/MatMul + bias +
  // residual Add + activation → com.orchard FusedConv/FusedMatMul (docs/fused_ops.md). A fusion happens
  // only where every backend of the chain that takes the original ops takes the fused op.
  extended
};

// The precision float32 work runs in on an accelerator that offers a choice (today: CUDA).
enum class Precision : unsigned char {
  model,    // as the model says
  float16,  // float32 work in float16 (weights converted once at load, float32 accumulation, float32 at the edges)
};

struct SessionOptions {
  int intra_op_threads = 0;                               // 0: one per core
  OptimizationLevel optimization = OptimizationLevel::extended;
  std::vector<std::string> backend_preference;            // e.g. {"cuda", "cpu"}; empty: the platform's chain
  bool disable_fallback = false;                          // load fails if any node would leave the first backend
  Precision precision = Precision::model;                 // float16: CUDA partitions run float32 work in float16
  bool profiling = false;                                 // record per-node timings (see RunOptions::profile)
  Allocator* allocator = nullptr;                         // tensor memory for outputs and activations; null: default
  std::shared_ptr<ThreadPool> thread_pool;                // shared intra-op pool; null: the session makes its own
  uint64_t max_model_bytes = uint64_t{2} << 30;           // larger model files are refused (resource_exhausted)
  uint64_t max_external_data_bytes = uint64_t{64} << 30;  // cap on the external data one model reads, all tensors together
  // Backends built outside the library (tests, plugins), placed ahead of the compiled-in ones and
  // selectable by name in backend_preference.
  std::vector<std::shared_ptr<runtime::Backend>> custom_backends;
};

// One dimension of a declared shape: a fixed size, a named symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;   // >= 0 when fixed
  std::string symbol;   // non-empty for a symbolic dim
  bool fixed() const { return value >= 0; }
};

// The declared type of a model input or output.
struct ValueInfo {
  std::string name;
  Value::Kind kind = Value::Kind::tensor;  // tensor, sequence or optional
  DType dtype = DType::undefined;          // element type (of the tensor, or of the sequence's tensors)
  bool has_shape = false;                  // false: rank unknown
  std::vector<Dim> shape;
  // Returns e.g. "float32[batch,3,224,224]".
  std::string description() const;
};

using NamedValue = std::pair<std::string, Value>;
using NamedValues = std::vector<NamedValue>;

// One timed span of a run, recorded when SessionOptions::profiling is on: a kernel (one node), a
// partition (the nodes one backend ran in one go) or a copy between memories.
struct NodeProfile {
  std::string name, op, backend;
  std::vector<Shape> input_shapes;
  int64_t start_ns = 0, duration_ns = 0;  // start relative to the run's start
  std::string category = "kernel";        // "kernel", "partition" or "copy"
};

// What `orchard inspect` shows about a loaded model.
struct ModelInfo {
  int64_t ir_version = 0;
  std::string producer;
  std::vector<std::pair<std::string, int>> opsets;    // domain ("" default) and version
  std::vector<std::pair<std::string, int>> op_counts;  // op type and number of nodes (subgraphs included)
  int64_t parameter_count = 0;                         // elements of all initializers
  int64_t parameter_bytes = 0;
  int64_t optimized_node_count = 0;  // nodes of the main graph as compiled, after optimization
  // Rewrites of each optimization step in the order they ran ("fold_constants", each pass, "remove_dead_nodes").
  std::vector<std::pair<std::string, int>> optimization_steps;
  // Initializer bytes freed at load because every kernel reading them keeps its own packed copy (packed
  // weights are not held twice; ORCHARD_RELEASE_PACKED=0 keeps the originals).
  int64_t released_weight_bytes = 0;
};

struct RunOptions {
  const std::atomic<bool>* abort = nullptr;  // when set to true, run stops at the next node: cancelled
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::vector<NodeProfile>* profile = nullptr;  // filled when profiling is on
  // Tensor memory of this run (activations and outputs); the tensors keep it alive. Null: the session's.
  std::shared_ptr<Allocator> allocator;
  bool device_outputs = false;  // true: outputs stay in the memory of the backend that computed them
};

// How a loaded model was cut across backends (`orchard inspect --placement`).
struct PartitionInfo {
  std::string backend;
  std::vector<std::string> nodes;                      // node names in execution order
  std::vector<std::pair<std::string, int>> op_counts;  // op type and number of its nodes here
  int64_t copied_bytes = 0;  // bytes copied into it from another memory per run (-1: shapes unknown)
  // Where the device itself says it runs these nodes' operations: (compute unit, operation count), e.g. Core ML's
  // compute plan on macOS 14.4+ ("ane", 120), ("cpu", 3). Empty when the backend does not say.
  std::vector<std::pair<std::string, int>> device_units;
};
// A node that runs on a later backend of the chain than the first, and why the earlier ones declined it.
struct NodeFallback {
  std::string node, op, backend;
  std::vector<std::pair<std::string, std::string>> declined;  // (backend, reason)
};
struct PlacementInfo {
  std::vector<PartitionInfo> partitions;  // in execution order
  std::vector<NodeFallback> fallbacks;
  int moved_nodes = 0;  // cheap nodes moved to their neighbours' backend to save copies
};

// What a run is expected to need, from declared and inferred shapes with symbolic dims bound to inputs.
struct MemoryEstimate {
  int64_t weights_bytes = 0;     // initializers, held while the session lives
  int64_t activation_bytes = 0;  // peak of the intermediate values live at once, outputs included
  int64_t unknown_values = 0;    // values whose size could not be inferred (counted at the largest input's size)
};

class Session {
 public:
  // Loads, validates and compiles the model at `path`; external data is read relative to its folder.
  static Result<std::unique_ptr<Session>> load(const std::filesystem::path& path, const SessionOptions& options = {});
  // Same, from the bytes of a model; external data, if any, is read relative to `base_dir`.
  static Result<std::unique_ptr<Session>> load_from_bytes(std::span<const std::byte> bytes,
                                                          const SessionOptions& options = {},
                                                          const std::filesystem::path& base_dir = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  const ModelInfo& model_info() const;
  // Returns the backends that got at least one node, in chain order, e.g. {"cpu"}.
  std::vector<std::string> backends() const;
  // Returns the partitions of the main graph and the nodes that fell back, with reasons.
  PlacementInfo placement() const;
  // Returns the bytes copied between memories by all runs so far.
  int64_t bytes_copied() const;

  // Estimates the memory of a run on `inputs` (only their shapes and dtypes are read).
  MemoryEstimate estimate_memory(const NamedValues& inputs) const;
  // Returns how many nodes moved to a later backend of the chain after their backend failed to
  // compile or run them (the move is remembered: later runs go straight to the new backend).
  int64_t failover_count() const;

  // Runs the model. Every graph input without a default must be given, by name; outputs come back in
  // the model's output order. Errors name the input and what was wrong with it.
  Result<NamedValues> run(const NamedValues& inputs, const RunOptions& options = {}) const;

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchard
