#include "runtime/executor.hpp"

#include <algorithm>

namespace orchard::runtime {

// ---- OpContext ----

Result<const Tensor*> OpContext::input_tensor(size_t i) const {
  if (!has_input(i)) return invalid_argument("input ", i, " is missing");
  if (!inputs_[i]->is_tensor()) {
    return invalid_argument("input ", i, " ('", node_.inputs[i], "') must be a tensor, got ", inputs_[i]->description());
  }
  return &inputs_[i]->tensor();
}

Result<Tensor> OpContext::make_output(size_t i, DType dtype, const Shape& shape) {
  if (i >= outputs_.size()) return internal_error("output index ", i, " out of range (", outputs_.size(), " outputs)");
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, env_.shared_allocator ? Tensor::create(dtype, shape, env_.shared_allocator)
                                                           : Tensor::create(dtype, shape, *env_.allocator));
  outputs_[i] = Value(t);
  return t;
}

ThreadPool& OpContext::pool() const { return *env_.pool; }
Allocator& OpContext::allocator() const { return env_.shared_allocator ? *env_.shared_allocator : *env_.allocator; }

Status OpContext::check_abort() const {
  if (env_.abort && env_.abort->load(std::memory_order_relaxed)) return cancelled("run cancelled");
  if (env_.deadline != std::chrono::steady_clock::time_point::max() && std::chrono::steady_clock::now() > env_.deadline) {
    return deadline_exceeded("run passed its deadline");
  }
  return Status::OK();
}

Result<std::vector<Value>> OpContext::run_subgraph(const CompiledGraph& graph, std::span<const Value> inputs) const {
  return graph.run(inputs, env_, &frame_);
}

// ---- CompiledGraph ----

int CompiledGraph::slot_of(const std::string& name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? -1 : it->second;
}

Result<std::shared_ptr<CompiledGraph>> CompiledGraph::compile(std::shared_ptr<const graph::Graph> g,
                                                              const std::vector<std::shared_ptr<Backend>>& chain,
                                                              const CompiledGraph* parent) {
  auto cg = std::make_shared<CompiledGraph>();
  cg->graph_ = g;
  cg->failovers_ = parent ? parent->failovers_ : std::make_shared<std::atomic<int64_t>>(0);
  auto new_slot = [&](const std::string& name) {
    auto [it, inserted] = cg->slots_.emplace(name, cg->num_slots_);
    if (inserted) {
      ++cg->num_slots_;
      cg->slot_names_.push_back(name);
    }
    return it->second;
  };
  std::vector<bool> defined;
  auto define = [&](const std::string& name) {
    int s = new_slot(name);
    if (defined.size() <= static_cast<size_t>(s)) defined.resize(s + 1, false);
    defined[s] = true;
    return s;
  };
  for (const auto& [name, t] : g->initializers) cg->constants_.emplace_back(define(name), t);
  for (const auto& in : g->inputs) cg->input_slots_.push_back(define(in.name));

  // Resolves a name read by a node: defined here, or (for subgraphs) an outer-scope name.
  auto resolve = [&](const std::string& name, const graph::Node* reader) -> Result<int> {
    auto it = cg->slots_.find(name);
    if (it != cg->slots_.end() && it->second < static_cast<int>(defined.size()) && defined[it->second]) return it->second;
    const int outer = parent ? parent->slot_of(name) : -1;
    if (outer < 0) {
      if (reader) return invalid_argument("[runtime] ", reader->label(), ": input '", name, "' is not produced by any earlier node, input or initializer");
      return invalid_argument("[runtime] graph output '", name, "' is not produced by any node, input or initializer");
    }
    const int s = define(name);
    cg->outer_refs_.emplace_back(outer, s);
    return s;
  };

  std::vector<int> last_use;
  auto use = [&](int slot, int node_index) {
    if (last_use.size() <= static_cast<size_t>(slot)) last_use.resize(slot + 1, -1);
    last_use[slot] = std::max(last_use[slot], node_index);
  };

  for (size_t ni = 0; ni < g->nodes.size(); ++ni) {
    const graph::Node& node = g->nodes[ni];
    CompiledNode cn;
    cn.node = &node;
    for (const auto& in : node.inputs) {
      if (in.empty()) {
        cn.inputs.push_back(-1);
        continue;
      }
      ORCHARD_ASSIGN_OR_RETURN(int s, resolve(in, &node));
      cn.inputs.push_back(s);
      use(s, static_cast<int>(ni));
    }
    for (const auto& in : node.implicit_inputs) {
      ORCHARD_ASSIGN_OR_RETURN(int s, resolve(in, &node));
      use(s, static_cast<int>(ni));
    }
    for (const auto& out : node.outputs) cn.outputs.push_back(out.empty() ? -1 : define(out));
    cg->nodes_.push_back(std::move(cn));
  }
  for (const auto& out : g->outputs) {
    ORCHARD_ASSIGN_OR_RETURN(int s, resolve(out.name, nullptr));
    cg->output_slots_.push_back(s);
  }

  // Slots are released after their last reader, except graph outputs, inputs and constants (not owned).
  std::vector<bool> keep(cg->num_slots_, false);
  for (int s : cg->output_slots_) keep[s] = true;
  for (int s : cg->input_slots_) keep[s] = true;
  for (const auto& [s, t] : cg->constants_) keep[s] = true;
  for (const auto& [outer, s] : cg->outer_refs_) keep[s] = true;
  last_use.resize(cg->num_slots_, -1);
  for (int s = 0; s < cg->num_slots_; ++s) {
    if (!keep[s] && last_use[s] >= 0) cg->nodes_[last_use[s]].release.push_back(s);
  }

  cg->slot_info_.assign(static_cast<size_t>(cg->num_slots_), nullptr);
  for (int s = 0; s < cg->num_slots_; ++s) {
    const std::string& name = cg->slot_names_[static_cast<size_t>(s)];
    auto vi = g->value_info.find(name);
    if (vi != g->value_info.end()) cg->slot_info_[static_cast<size_t>(s)] = &vi->second;
  }
  for (const auto& out : g->outputs) cg->slot_info_[static_cast<size_t>(cg->slots_.at(out.name))] = &out;

  // Kernels are created last: subgraph compilation reads this graph's complete slot map.
  for (auto& cn : cg->nodes_) {
    const graph::Node& node = *cn.node;
    const CompiledGraph* self = cg.get();
    KernelCreateContext kctx{
        node,
        [self, &node](size_t i) -> const Tensor* {
          if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
          auto it = self->graph_->initializers.find(node.inputs[i]);
          return it == self->graph_->initializers.end() ? nullptr : &it->second;
        },
        [self, &chain](const graph::Graph& sub) -> Result<std::shared_ptr<const CompiledGraph>> {
          // Subgraphs are owned by their node's attribute, which the parent graph keeps alive.
          std::shared_ptr<const graph::Graph> alias(self->graph_, &sub);
          ORCHARD_ASSIGN_OR_RETURN(auto compiled, compile(alias, chain, self));
          return std::shared_ptr<const CompiledGraph>(std::move(compiled));
        }};
    // The first backend of the chain that claims the node and compiles it runs it; a backend that
    // claims it but fails to compile it hands it on down the chain (a compile-time failover).
    Status last_error;
    for (const auto& b : chain) {
      if (!b->supports(node)) continue;
      auto kernel = b->create_kernel(kctx);
      if (!kernel.ok()) {
        if (last_error.ok()) last_error = kernel.status().with_prefix("[" + b->device().name + "] " + node.label() + ": ");
        if (cn.backend == nullptr) cg->failovers_->fetch_add(1);
        continue;
      }
      if (cn.backend == nullptr) {
        cn.backend = b.get();
        cn.kernel = std::move(kernel).value();
      } else {
        cn.fallback_backend = b.get();
        cn.fallback_kernel = std::move(kernel).value();
        break;
      }
    }
    if (cn.backend == nullptr) {
      if (!last_error.ok()) return last_error;
      return unsupported("[runtime] ", node.label(), ": no backend implements ", node.op_type, " (domain '",
                         node.domain.empty() ? "ai.onnx" : node.domain, "', opset ", node.opset, ")");
    }
  }
  return cg;
}

namespace {
// Errors that say a backend could not do its job (as opposed to bad input or a stopped run): the node
// moves to the next backend of the chain.
bool is_backend_fault(StatusCode code) {
  return code == StatusCode::internal || code == StatusCode::unavailable || code == StatusCode::unsupported ||
         code == StatusCode::out_of_memory;
}
}  // namespace

Status CompiledGraph::run_node(const CompiledNode& cn, OpContext& ctx, std::vector<Value>& outs) const {
  const bool use_fallback = cn.failed_over->load(std::memory_order_relaxed);
  const Backend* backend = use_fallback ? cn.fallback_backend : cn.backend;
  Status st = (use_fallback ? cn.fallback_kernel : cn.kernel)->run(ctx);
  if (st.ok() || st.code() == StatusCode::cancelled || st.code() == StatusCode::deadline_exceeded) return st;
  if (!use_fallback && cn.fallback_kernel && is_backend_fault(st.code())) {
    // Remembered: later runs go straight to the fallback backend.
    if (!cn.failed_over->exchange(true)) failovers_->fetch_add(1);
    std::fill(outs.begin(), outs.end(), Value());
    backend = cn.fallback_backend;
    st = cn.fallback_kernel->run(ctx);
    if (st.ok()) return st;
  }
  return st.with_prefix("[" + backend->device().name + "] " + cn.node->label() + ": ");
}

Result<std::vector<Value>> CompiledGraph::run(std::span<const Value> inputs, RunEnv& env, const Frame* outer) const {
  Frame frame;
  frame.graph = this;
  frame.slots.resize(num_slots_);
  for (const auto& [s, t] : constants_) frame.slots[s] = Value(t);
  for (size_t i = 0; i < input_slots_.size() && i < inputs.size(); ++i) {
    if (inputs[i].kind() != Value::Kind::none) frame.slots[input_slots_[i]] = inputs[i];
  }
  if (!outer_refs_.empty()) {
    if (outer == nullptr) return internal_error("[runtime] subgraph run without its enclosing frame");
    for (const auto& [o, s] : outer_refs_) frame.slots[s] = outer->slots[o];
  }

  std::vector<const Value*> in_ptrs;
  std::vector<Value> outs;
  const bool check_deadline = env.deadline != std::chrono::steady_clock::time_point::max();
  for (const CompiledNode& cn : nodes_) {
    if (env.abort && env.abort->load(std::memory_order_relaxed)) return cancelled("run cancelled");
    if (check_deadline && std::chrono::steady_clock::now() > env.deadline) return deadline_exceeded("run passed its deadline");
    in_ptrs.clear();
    for (int s : cn.inputs) {
      const Value* v = s >= 0 ? &frame.slots[s] : nullptr;
      in_ptrs.push_back(v && v->kind() != Value::Kind::none ? v : nullptr);
    }
    outs.assign(cn.outputs.size(), Value());
    OpContext ctx(*cn.node, in_ptrs, outs, env, frame);
    const auto t0 = env.profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    Status st = run_node(cn, ctx, outs);
    if (!st.ok()) return st;
    if (env.profile) {
      const auto t1 = std::chrono::steady_clock::now();
      NodeProfile p;
      p.name = cn.node->name;
      p.op = cn.node->op_type;
      p.backend = (cn.failed_over->load() ? cn.fallback_backend : cn.backend)->device().name;
      for (const Value* v : in_ptrs) p.input_shapes.push_back(v && v->is_tensor() ? v->tensor().shape() : Shape{});
      p.start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t0 - env.start).count();
      p.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
      env.profile->push_back(std::move(p));
    }
    for (size_t k = 0; k < cn.outputs.size(); ++k) {
      if (cn.outputs[k] < 0) continue;
      if (outs[k].kind() == Value::Kind::none) {
        return internal_error("[runtime] ", cn.node->label(), ": kernel did not produce output ", k,
                              " ('", cn.node->outputs[k], "')");
      }
      frame.slots[cn.outputs[k]] = std::move(outs[k]);
    }
    for (int s : cn.release) frame.slots[s] = Value();
  }
  std::vector<Value> result;
  result.reserve(output_slots_.size());
  for (size_t i = 0; i < output_slots_.size(); ++i) {
    const Value& v = frame.slots[output_slots_[i]];
    if (v.kind() == Value::Kind::none) {
      return invalid_argument("[runtime] output '", graph_->outputs[i].name, "' has no value (an input it depends on was not given?)");
    }
    result.push_back(v);
  }
  return result;
}

}  // namespace orchard::runtime
