// The kernel interface shared by kernel backends (CPU, CUDA, Metal): what a kernel is given when it is
// created for a node, and what it sees while running it.
// Layer: runtime. Backends implement OpKernel; the runtime never includes a backend header.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "orchard/thread_pool.hpp"
#include "graph/graph.hpp"
#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard::runtime {

class CompiledGraph;
struct Frame;
struct RunEnv;
struct ValueType;

// Shape-dependent state a kernel computes in reshape() (geometry, workspace sizes, a chosen algorithm).
class KernelState {
 public:
  virtual ~KernelState() = default;
};

// What one node's kernel sees while it runs. Input and output indices follow the node's ONNX signature.
class OpContext {
 public:
  OpContext(const graph::Node& node, std::span<const Value* const> inputs, std::span<Value> outputs, RunEnv& env,
            const Frame& frame, Allocator& allocator, const KernelState* state = nullptr)
      : node_(node), inputs_(inputs), outputs_(outputs), env_(env), frame_(frame), allocator_(allocator), state_(state) {}

  const graph::Node& node() const { return node_; }
  size_t num_inputs() const { return inputs_.size(); }
  // True when input i was given (not omitted, not past the end).
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  // Returns input i; requires has_input(i).
  const Value& value(size_t i) const { return *inputs_[i]; }
  // Returns input i as a tensor; requires has_input(i) and a tensor value (checked by input_tensor()).
  const Tensor& input(size_t i) const { return inputs_[i]->tensor(); }
  // Returns input i when it is a present tensor, else invalid_argument naming the input.
  Result<const Tensor*> input_tensor(size_t i) const;

  size_t num_outputs() const { return outputs_.size(); }
  // True when the model uses output i.
  bool has_output(size_t i) const { return i < outputs_.size() && !node_.outputs[i].empty(); }
  // Allocates output i from the run's allocator for this backend and returns a handle sharing its storage.
  // Unused outputs still get a tensor (so kernels need not check has_output before writing).
  Result<Tensor> make_output(size_t i, DType dtype, const Shape& shape);
  // Sets output i to `v` (for aliases such as Reshape, and for sequences and optionals).
  void set_output(size_t i, Value v) {
    if (i < outputs_.size()) outputs_[i] = std::move(v);
  }

  ThreadPool& pool() const;
  // Returns the allocator outputs and workspaces of this run come from (the request's arena on the host).
  Allocator& allocator() const { return allocator_; }
  // Returns what the kernel's reshape() computed for the current input shapes (null if it has none).
  template <class S>
  const S* state() const {
    return static_cast<const S*>(state_);
  }
  // Returns cancelled / deadline_exceeded once the run must stop (for long kernels such as Loop).
  Status check_abort() const;
  // Runs a compiled subgraph with `inputs` bound to its graph inputs in order; returns its outputs in order.
  // The subgraph reads names of enclosing scopes from this node's frame.
  Result<std::vector<Value>> run_subgraph(const CompiledGraph& graph, std::span<const Value> inputs) const;

 private:
  const graph::Node& node_;
  std::span<const Value* const> inputs_;
  std::span<Value> outputs_;
  RunEnv& env_;
  const Frame& frame_;
  Allocator& allocator_;
  const KernelState* state_;
};

// A compiled node. Lifecycle: created once per node at load (attributes parsed, weights pre-packed),
// reshape() when its input shapes change, run() per request. run() is const: concurrent runs share it.
class OpKernel {
 public:
  virtual ~OpKernel() = default;
  // Returns whether the kernel implements reshape() (the executor skips the shape check otherwise).
  virtual bool has_reshape() const { return false; }
  // (optional) Computes shape-dependent state for inputs of these shapes (absent inputs: empty shapes);
  // the executor caches it per node and passes it to run() through OpContext::state().
  virtual Result<std::shared_ptr<const KernelState>> reshape(std::span<const Shape> input_shapes) const {
    (void)input_shapes;
    return std::shared_ptr<const KernelState>();
  }
  // Computes every output of the node from its inputs. Errors describe the bad value; the executor
  // prefixes the backend and node label.
  virtual Status run(OpContext& ctx) const = 0;
  // Inputs (bit i: input i) that were constants the kernel copied at create into a form of its own (packed
  // weights) and whose data run() never reads, only their shape and dtype. The runtime may then free the
  // original's data (CompiledGraph::release_packed_constants) and hand run() a tensor without data.
  virtual uint32_t packed_inputs() const { return 0; }
};

// What a kernel factory is given when a node is compiled.
struct KernelCreateContext {
  const graph::Node& node;
  // The backend the kernel is made for (kernels of stateful backends reach their handles through it).
  const class Backend* backend = nullptr;
  // Returns input i when it is a constant (an initializer of the node's graph), else nullptr.
  std::function<const Tensor*(size_t)> constant_input;
  // Returns what is known of input i before running (dtype, shape when inferred).
  std::function<const ValueType&(size_t)> input_type;
  // Compiles a subgraph (an attribute of the node) for OpContext::run_subgraph.
  std::function<Result<std::shared_ptr<const CompiledGraph>>(const graph::Graph&)> compile_subgraph;
};

}  // namespace orchard::runtime
