#include "runtime/graph_optimizer.hpp"

#include <algorithm>
#include <set>
#include <string_view>

#include "core/capped_allocator.hpp"
#include "graph/passes/pass.hpp"
#include "runtime/executor.hpp"

namespace orchard::runtime {

namespace {

// Outputs larger than this stay computed at run time: folding would trade model size for nothing.
constexpr size_t kMaxFoldedBytes = size_t{64} << 20;

bool foldable(const graph::Node& n, const graph::Graph& g) {
  static const std::set<std::string_view> kNondeterministic = {
      "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Bernoulli", "Multinomial", "Dropout"};
  if (!n.domain.empty() || kNondeterministic.count(n.op_type)) return false;
  if (!n.implicit_inputs.empty()) return false;
  for (const auto& [key, a] : n.attributes) {
    if (a.g || !a.graphs.empty()) return false;
  }
  bool any_input = false;
  for (const auto& in : n.inputs) {
    if (in.empty()) continue;
    if (!g.initializers.count(in)) return false;
    any_input = true;
  }
  return any_input;
}

// Runs one node on constant inputs; returns its outputs.
Result<std::vector<Value>> run_constant_node(const graph::Node& n, const graph::Graph& g,
                                             const std::vector<std::shared_ptr<Backend>>& chain) {
  auto single = std::make_shared<graph::Graph>();
  single->nodes.push_back(n);
  for (const auto& in : n.inputs) {
    if (!in.empty()) single->initializers[in] = g.initializers.find(in)->second;
  }
  for (const auto& out : n.outputs) {
    if (out.empty()) continue;
    ValueInfo info;
    info.name = out;
    single->outputs.push_back(info);
  }
  ORCHARD_ASSIGN_OR_RETURN(auto compiled, CompiledGraph::compile(single, chain, nullptr));
  ThreadPool pool(1);
  RunEnv env;
  env.pool = &pool;
  // Host memory for folding one node, capped: a constant that would be huge (a ConstantOfShape of 8 GB in a
  // hostile model) is refused while it is computed, not after; the node then stays in the graph and runs under
  // the request's memory budget. Room for the outputs kept (kMaxFoldedBytes) and the kernel's own scratch;
  // folded tensors keep the allocator alive.
  env.shared_allocator = std::make_shared<CappedAllocator>(4 * kMaxFoldedBytes);
  env.allocator = env.shared_allocator.get();
  return compiled->run({}, env, nullptr);
}

// Replaces the nodes whose inputs are all initializers by initializers; returns how many.
int fold_constants(graph::Graph& g, const std::vector<std::shared_ptr<Backend>>& chain) {
  int folded = 0;
  std::vector<graph::Node> kept;
  for (auto& n : g.nodes) {
    if (foldable(n, g)) {
      auto outs = run_constant_node(n, g, chain);
      // A node that cannot run on its constants keeps its place: the error then surfaces at run time
      // with the run's context, and the model still loads if the node turns out to be unused.
      bool ok = outs.ok();
      size_t bytes = 0;
      if (ok) {
        for (const auto& v : *outs) {
          ok = ok && v.is_tensor();
          if (v.is_tensor()) bytes += v.tensor().nbytes();
        }
      }
      if (ok && bytes <= kMaxFoldedBytes) {
        size_t k = 0;
        for (const auto& out : n.outputs) {
          if (out.empty()) continue;
          g.initializers[out] = (*outs)[k++].tensor();
        }
        ++folded;
        continue;
      }
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  return folded;
}

// A pass may put `op` of `domain` in place of `original` when every backend that takes the original takes it.
bool may_replace(const std::vector<std::shared_ptr<Backend>>& chain, const graph::Node& original, std::string_view domain,
                 std::string_view op, int opset) {
  const std::string d(domain), o(op);
  return std::all_of(chain.begin(), chain.end(), [&](const auto& b) {
    return !b->has_op(original.domain, original.op_type, original.opset) || b->has_op(d, o, opset);
  });
}

}  // namespace

Result<OptimizeStats> optimize_graph(graph::Graph& g, const std::vector<std::shared_ptr<Backend>>& chain,
                                     OptimizationLevel level) {
  OptimizeStats stats;
  if (level == OptimizationLevel::none) return stats;
  stats.folded = fold_constants(g, chain);
  if (level == OptimizationLevel::extended) {
    graph::passes::PassContext ctx;
    ctx.may_replace = [&chain](const graph::Node& original, std::string_view domain, std::string_view op, int opset) {
      return may_replace(chain, original, domain, op, opset);
    };
    ctx.channels_last = [&chain](const graph::Node& n) {
      for (const auto& b : chain) {
        if (b->has_op(n.domain, n.op_type, n.opset)) return b->prefers_channels_last();
      }
      return false;
    };
    for (const auto& b : chain) {  // the first backend asking for channels last sets the bar
      if (b->prefers_channels_last()) {
        ctx.channels_last_min_macs = b->channels_last_min_macs();
        break;
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(int shapes, graph::passes::fold_shapes(g, ctx));
    stats.passes.emplace_back("fold_shapes", shapes);
    if (shapes > 0) stats.passes.emplace_back("fold_constants_again", fold_constants(g, chain));
    for (const auto& pass : graph::passes::rewrite_passes()) {
      ORCHARD_ASSIGN_OR_RETURN(int n, pass.fn(g, ctx));
      stats.passes.emplace_back(pass.name, n);
    }
  }
  std::set<std::string> graph_outputs;
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
  std::vector<graph::Node> kept = std::move(g.nodes);

  // Dead-node removal: walk back from the graph outputs.
  std::set<std::string> needed(graph_outputs.begin(), graph_outputs.end());
  std::vector<bool> live(kept.size(), false);
  for (size_t i = kept.size(); i-- > 0;) {
    const auto& n = kept[i];
    bool used = false;
    for (const auto& out : n.outputs) used = used || (!out.empty() && needed.count(out));
    if (!used) continue;
    live[i] = true;
    for (const auto& in : n.inputs) needed.insert(in);
    for (const auto& in : n.implicit_inputs) needed.insert(in);
  }
  g.nodes.clear();
  for (size_t i = 0; i < kept.size(); ++i) {
    if (live[i]) g.nodes.push_back(std::move(kept[i]));
    else ++stats.removed;
  }
  // Initializers nothing reads any more (inputs of folded or dead nodes) are dropped.
  for (auto it = g.initializers.begin(); it != g.initializers.end();) {
    if (!needed.count(it->first)) it = g.initializers.erase(it);
    else ++it;
  }
  return stats;
}

}  // namespace orchard::runtime
