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

// What one node's kernel sees while it runs. Input and output indices follow the node's ONNX signature.
class OpContext {
 public:
  OpContext(const graph::Node& node, std::span<const Value* const> inputs, std::span<Value> outputs, RunEnv& env,
            const Frame& frame)
      : node_(node), inputs_(inputs), outputs_(outputs), env_(env), frame_(frame) {}

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
  // Allocates output i from the session allocator and returns a handle sharing its storage.
  // Unused outputs still get a tensor (so kernels need not check has_output before writing).
  Result<Tensor> make_output(size_t i, DType dtype, const Shape& shape);
  // Sets output i to `v` (for aliases such as Reshape, and for sequences and optionals).
  void set_output(size_t i, Value v) {
    if (i < outputs_.size()) outputs_[i] = std::move(v);
  }

  ThreadPool& pool() const;
  Allocator& allocator() const;
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
};

// A compiled node. run() is const: concurrent Session::run calls share one kernel.
class OpKernel {
 public:
  virtual ~OpKernel() = default;
  // Computes every output of the node from its inputs. Errors describe the bad value; the executor
  // prefixes the backend and node label.
  virtual Status run(OpContext& ctx) const = 0;
};

// What a kernel factory is given when a node is compiled.
struct KernelCreateContext {
  const graph::Node& node;
  // Returns input i when it is a constant (an initializer of the node's graph), else nullptr.
  std::function<const Tensor*(size_t)> constant_input;
  // Compiles a subgraph (an attribute of the node) for OpContext::run_subgraph.
  std::function<Result<std::shared_ptr<const CompiledGraph>>(const graph::Graph&)> compile_subgraph;
};

}  // namespace orchard::runtime
