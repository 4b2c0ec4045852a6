#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>

#include "orchard/thread_pool.hpp"
#include "onnx/importer.hpp"
#include "orchard/session.hpp"
#include "runtime/executor.hpp"
#include "runtime/graph_optimizer.hpp"
#include "runtime/memory_planner.hpp"

namespace orchard {

std::string ValueInfo::description() const {
  std::string s;
  if (kind == Value::Kind::sequence) s = "seq<";
  if (kind == Value::Kind::optional) s = "optional<";
  s += dtype_name(dtype);
  if (has_shape) {
    s += "[";
    for (size_t i = 0; i < shape.size(); ++i) {
      if (i) s += ",";
      s += shape[i].fixed() ? std::to_string(shape[i].value) : (shape[i].symbol.empty() ? "?" : shape[i].symbol);
    }
    s += "]";
  }
  if (kind != Value::Kind::tensor) s += ">";
  return s;
}

struct Session::Impl {
  SessionOptions options;
  graph::Model model;
  std::vector<std::shared_ptr<runtime::Backend>> chain;
  std::shared_ptr<runtime::CompiledGraph> compiled;
  std::shared_ptr<ThreadPool> pool;
  Allocator* allocator = nullptr;
  ModelInfo info;
  mutable std::atomic<int64_t> bytes_copied{0};
  std::unique_ptr<runtime::ArenaPlanner> arena;  // null when ORCHARD_MEMORY_PLAN=0
  std::unique_ptr<runtime::MemoryEstimator> estimator;

  Status check_input(const ValueInfo& info, const Value& v, std::map<std::string, std::pair<int64_t, std::string>>& symbols) const;
};

namespace {

Result<std::vector<std::shared_ptr<runtime::Backend>>> backend_chain(const SessionOptions& options) {
  auto all = runtime::available_backends(options);
  if (options.backend_preference.empty()) return all;
  std::vector<std::shared_ptr<runtime::Backend>> chain;
  for (const auto& want : options.backend_preference) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& b) { return b->device().name == want; });
    if (it == all.end()) {
      std::string names;
      for (const auto& b : all) names += (names.empty() ? "" : ", ") + b->device().name;
      return unavailable("[session] backend '", want, "' is not available on this machine (available: ", names, ")");
    }
    if (std::find(chain.begin(), chain.end(), *it) == chain.end()) chain.push_back(*it);
  }
  // The CPU takes whatever the preferred backends leave (with disable_fallback, compile refuses instead).
  if (std::none_of(chain.begin(), chain.end(), [](const auto& b) { return b->device().name == "cpu"; })) {
    chain.push_back(all.back());
  }
  return chain;
}

void count_graph(const graph::Graph& g, std::map<std::string, int>& ops, ModelInfo& info) {
  for (const auto& [name, t] : g.initializers) {
    info.parameter_count += t.numel();
    info.parameter_bytes += static_cast<int64_t>(t.nbytes());
  }
  for (const auto& n : g.nodes) {
    ++ops[n.op_type];
    for (const auto& [key, a] : n.attributes) {
      if (a.g) count_graph(*a.g, ops, info);
      for (const auto& sub : a.graphs) count_graph(*sub, ops, info);
    }
  }
}

void fill_model_info(const graph::Model& model, ModelInfo& info) {
  info.ir_version = model.ir_version;
  info.producer = model.producer;
  for (const auto& [domain, version] : model.opsets) info.opsets.emplace_back(domain, version);
  std::map<std::string, int> ops;
  count_graph(*model.graph, ops, info);
  info.op_counts.assign(ops.begin(), ops.end());
}

using Loader = std::function<Result<graph::Model>(const onnx_import::ImportOptions&)>;

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

static Result<std::unique_ptr<Session::Impl>> build_session(const SessionOptions& options, const Loader& load) {
  auto impl = std::make_unique<Session::Impl>();
  impl->options = options;
  ORCHARD_ASSIGN_OR_RETURN(impl->chain, backend_chain(options));
  onnx_import::ImportOptions import_options;
  import_options.max_model_bytes = options.max_model_bytes;
  import_options.max_external_data_bytes = options.max_external_data_bytes;
  const auto* chain = &impl->chain;
  import_options.has_kernel = [chain](const std::string& domain, const std::string& op, int opset) {
    for (const auto& b : *chain) {
      if (b->has_op(domain, op, opset)) return true;
    }
    return false;
  };
  ORCHARD_ASSIGN_OR_RETURN(impl->model, load(import_options));
  fill_model_info(impl->model, impl->info);  // before optimization: describes the model as written
  if (options.optimization != OptimizationLevel::none) {
    ORCHARD_ASSIGN_OR_RETURN(auto stats, runtime::optimize_graph(*impl->model.graph, impl->chain, options.optimization));
    impl->info.optimization_steps = {{"fold_constants", stats.folded}};
    for (const auto& p : stats.passes) impl->info.optimization_steps.push_back(p);
    impl->info.optimization_steps.emplace_back("remove_dead_nodes", stats.removed);
  }
  impl->info.optimized_node_count = static_cast<int64_t>(impl->model.graph->nodes.size());
  // Packed weights are freed from the graph as they are packed (ORCHARD_RELEASE_PACKED=0 keeps them).
  const char* release = std::getenv("ORCHARD_RELEASE_PACKED");
  graph::Graph* release_into = release != nullptr && std::string(release) == "0" ? nullptr : impl->model.graph.get();
  ORCHARD_ASSIGN_OR_RETURN(impl->compiled,
                           runtime::CompiledGraph::compile(impl->model.graph, impl->chain, nullptr, options.disable_fallback,
                                                           release_into, &impl->info.released_weight_bytes));
  impl->estimator = std::make_unique<runtime::MemoryEstimator>(*impl->compiled);
  impl->pool = options.thread_pool ? options.thread_pool : std::make_shared<ThreadPool>(options.intra_op_threads);
  impl->allocator = options.allocator ? options.allocator : &default_allocator();
  const char* plan = std::getenv("ORCHARD_MEMORY_PLAN");
  if (plan == nullptr || std::string(plan) != "0") impl->arena = std::make_unique<runtime::ArenaPlanner>(*impl->compiled);
  return impl;
}

Result<std::unique_ptr<Session>> Session::load(const std::filesystem::path& path, const SessionOptions& options) {
  ORCHARD_ASSIGN_OR_RETURN(auto impl, build_session(options, [&](const onnx_import::ImportOptions& o) {
                             return onnx_import::import_model_file(path, o);
                           }));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

Result<std::unique_ptr<Session>> Session::load_from_bytes(std::span<const std::byte> bytes, const SessionOptions& options,
                                                          const std::filesystem::path& base_dir) {
  ORCHARD_ASSIGN_OR_RETURN(auto impl, build_session(options, [&](const onnx_import::ImportOptions& o) {
                             return onnx_import::import_model_bytes(bytes, base_dir, o);
                           }));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

const ModelInfo& Session::model_info() const { return impl_->info; }
const std::vector<ValueInfo>& Session::inputs() const { return impl_->model.graph->inputs; }
const std::vector<ValueInfo>& Session::outputs() const { return impl_->model.graph->outputs; }

std::vector<std::string> Session::backends() const {
  std::vector<std::string> names;
  const auto& parts = impl_->compiled->partitions();
  for (size_t b = 0; b < impl_->chain.size(); ++b) {
    if (std::any_of(parts.begin(), parts.end(), [&](const auto& p) { return p.backend == static_cast<int>(b); })) {
      names.push_back(impl_->chain[b]->device().name);
    }
  }
  return names;
}

PlacementInfo Session::placement() const {
  const auto& cg = *impl_->compiled;
  const graph::Graph& g = cg.graph();
  PlacementInfo info;
  for (const auto& r : cg.report()) {
    PartitionInfo p;
    p.backend = r.backend;
    std::map<std::string, int> ops;
    for (int n : r.nodes) {
      p.nodes.push_back(g.nodes[static_cast<size_t>(n)].name);
      ++ops[g.nodes[static_cast<size_t>(n)].op_type];
    }
    p.op_counts.assign(ops.begin(), ops.end());
    p.copied_bytes = r.copied_bytes;
    p.device_units = r.device_units;
    info.partitions.push_back(std::move(p));
  }
  const auto& placement = cg.placement();
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (placement.node_backend[n] <= 0) continue;
    NodeFallback f;
    f.node = g.nodes[n].name;
    f.op = g.nodes[n].op_type;
    f.backend = impl_->chain[static_cast<size_t>(placement.node_backend[n])]->device().name;
    for (const auto& d : placement.declined[n]) f.declined.emplace_back(impl_->chain[static_cast<size_t>(d.backend)]->device().name, d.reason);
    info.fallbacks.push_back(std::move(f));
  }
  info.moved_nodes = placement.moved_nodes;
  return info;
}

int64_t Session::bytes_copied() const { return impl_->bytes_copied.load(std::memory_order_relaxed); }

MemoryEstimate Session::estimate_memory(const NamedValues& inputs) const {
  const auto& infos = impl_->model.graph->inputs;
  std::vector<const Tensor*> ordered(infos.size(), nullptr);
  for (const auto& [name, value] : inputs) {
    for (size_t k = 0; k < infos.size(); ++k) {
      if (infos[k].name == name && value.is_tensor()) ordered[k] = &value.tensor();
    }
  }
  return impl_->estimator->estimate(ordered);
}

int64_t Session::failover_count() const { return impl_->compiled->failover_count(); }

Status Session::Impl::check_input(const ValueInfo& info, const Value& v,
                                  std::map<std::string, std::pair<int64_t, std::string>>& symbols) const {
  const std::string where = "[session] input '" + info.name + "' (" + info.description() + "): ";
  if (v.kind() != info.kind) return invalid_argument(where, "got ", v.description());
  if (!v.is_tensor()) return Status::OK();
  const Tensor& t = v.tensor();
  if (info.dtype != DType::undefined && t.dtype() != info.dtype) {
    return invalid_argument(where, "dtype is ", dtype_name(t.dtype()), ", expected ", dtype_name(info.dtype));
  }
  if (!info.has_shape) return Status::OK();
  if (t.rank() != info.shape.size()) {
    return invalid_argument(where, "rank is ", t.rank(), " (shape ", t.shape().to_string(), "), expected ", info.shape.size());
  }
  for (size_t d = 0; d < t.rank(); ++d) {
    const Dim& dim = info.shape[d];
    if (dim.fixed() && t.dim(d) != dim.value) {
      return invalid_argument(where, "dim ", d, " is ", t.dim(d), ", expected ", dim.value, " (shape ", t.shape().to_string(), ")");
    }
    if (!dim.symbol.empty()) {
      auto [it, inserted] = symbols.emplace(dim.symbol, std::make_pair(t.dim(d), info.name));
      if (!inserted && it->second.first != t.dim(d)) {
        return invalid_argument(where, "dim ", d, " ('", dim.symbol, "') is ", t.dim(d), ", but input '", it->second.second,
                                "' set '", dim.symbol, "' to ", it->second.first);
      }
    }
  }
  return Status::OK();
}

Result<NamedValues> Session::run(const NamedValues& inputs, const RunOptions& options) const {
  const auto& infos = impl_->model.graph->inputs;
  std::vector<Value> ordered(infos.size());
  std::vector<bool> given(infos.size(), false);
  std::map<std::string, std::pair<int64_t, std::string>> symbols;
  for (const auto& named : inputs) {
    const std::string& name = named.first;  // (clang 14 cannot capture structured bindings)
    const Value& value = named.second;
    auto it = std::find_if(infos.begin(), infos.end(), [&](const ValueInfo& i) { return i.name == name; });
    if (it == infos.end()) {
      std::string names;
      for (const auto& i : infos) names += (names.empty() ? "'" : ", '") + i.name + "'";
      return invalid_argument("[session] unknown input '", name, "'; the model's inputs are ", names.empty() ? "(none)" : names);
    }
    const size_t k = static_cast<size_t>(it - infos.begin());
    if (given[k]) return invalid_argument("[session] input '", name, "' is given twice");
    ORCHARD_RETURN_IF_ERROR(impl_->check_input(*it, value, symbols));
    ordered[k] = value;
    given[k] = true;
  }
  for (size_t k = 0; k < infos.size(); ++k) {
    if (!given[k]) return invalid_argument("[session] missing input '", infos[k].name, "' (", infos[k].description(), ")");
  }
  // Intermediates go to the arena planned for these input shapes (the first run of a shape records the plan);
  // a planned run that meets an alias the plan did not foresee is done again without it.
  auto run_once = [&](bool planned) -> std::pair<Result<std::vector<Value>>, bool> {
    runtime::RunEnv env;
    env.pool = impl_->pool.get();
    env.allocator = impl_->allocator;
    env.shared_allocator = options.allocator;
    env.abort = options.abort;
    env.deadline = options.deadline;
    env.profile = impl_->options.profiling ? options.profile : nullptr;
    env.device_outputs = options.device_outputs;
    std::unique_ptr<runtime::RunArena> arena = planned && impl_->arena ? impl_->arena->begin(ordered, options.allocator) : nullptr;
    env.arena = arena.get();
    auto result = impl_->compiled->run(ordered, env, nullptr);
    if (env.bytes_copied) impl_->bytes_copied.fetch_add(env.bytes_copied, std::memory_order_relaxed);
    const bool broken = arena && arena->broken();
    if (arena) impl_->arena->end(std::move(arena), result.ok());
    return {std::move(result), broken};
  };
  auto [result, broken] = run_once(true);
  if (broken) result = run_once(false).first;
  ORCHARD_ASSIGN_OR_RETURN(auto outs, std::move(result));
  NamedValues named;
  named.reserve(outs.size());
  const auto& out_infos = impl_->model.graph->outputs;
  for (size_t i = 0; i < outs.size(); ++i) named.emplace_back(out_infos[i].name, std::move(outs[i]));
  return named;
}

}  // namespace orchard
