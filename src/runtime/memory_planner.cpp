#include "runtime/memory_planner.hpp"

#include <algorithm>
#include <map>

namespace orchard::runtime {

namespace {

// Returns the bytes of a value declared as `info`, or -1 when a dim or the dtype is unknown.
int64_t declared_bytes(const ValueInfo& info, const std::map<std::string, int64_t>& symbols) {
  if (info.kind != Value::Kind::tensor || info.dtype == DType::undefined || !info.has_shape) return -1;
  int64_t n = static_cast<int64_t>(dtype_size(info.dtype));
  for (const Dim& d : info.shape) {
    int64_t v = d.value;
    if (!d.fixed()) {
      auto it = symbols.find(d.symbol);
      if (d.symbol.empty() || it == symbols.end()) return -1;
      v = it->second;
    }
    n *= v;
  }
  return n;
}

}  // namespace

std::vector<ValueLifetime> value_lifetimes(const CompiledGraph& cg) {
  const graph::Graph& g = cg.graph();
  const auto& order = cg.node_order();
  std::vector<int> position(g.nodes.size(), 0);
  for (size_t i = 0; i < order.size(); ++i) position[static_cast<size_t>(order[i])] = static_cast<int>(i);
  std::vector<int> partition_of(g.nodes.size(), 0);
  for (size_t p = 0; p < cg.partitions().size(); ++p) {
    for (int n : cg.partitions()[p].spec.nodes) partition_of[static_cast<size_t>(n)] = static_cast<int>(p);
  }
  std::vector<ValueLifetime> out;
  std::map<int, size_t> index;  // slot -> entry in out
  for (int n : order) {
    const graph::Node& node = g.nodes[static_cast<size_t>(n)];
    const auto& part = cg.partitions()[static_cast<size_t>(partition_of[static_cast<size_t>(n)])];
    for (const auto& name : node.outputs) {
      if (name.empty()) continue;
      ValueLifetime v;
      v.slot = cg.slot_of(name);
      v.first = v.last = position[static_cast<size_t>(n)];
      v.place = cg.chain()[static_cast<size_t>(part.backend)]->allocator().place();
      index[v.slot] = out.size();
      out.push_back(v);
    }
    for (const auto& name : node_reads(node)) {
      auto it = index.find(cg.slot_of(name));
      if (it != index.end()) out[it->second].last = std::max(out[it->second].last, position[static_cast<size_t>(n)]);
    }
  }
  for (const auto& o : g.outputs) {
    auto it = index.find(cg.slot_of(o.name));
    if (it != index.end()) out[it->second].kept = true;
  }
  return out;
}

MemoryEstimate estimate_memory(const CompiledGraph& cg, const std::vector<const Tensor*>& inputs) {
  const graph::Graph& g = cg.graph();
  MemoryEstimate est;
  for (const auto& [slot, t] : cg.constants()) est.weights_bytes += static_cast<int64_t>(t.nbytes());

  std::map<std::string, int64_t> symbols;
  int64_t largest_input = 0;
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i) {
    const Tensor* t = inputs[i];
    if (t == nullptr) continue;
    largest_input = std::max<int64_t>(largest_input, static_cast<int64_t>(t->nbytes()));
    const ValueInfo& info = g.inputs[i];
    if (!info.has_shape || info.shape.size() != t->rank()) continue;
    for (size_t d = 0; d < t->rank(); ++d) {
      if (!info.shape[d].symbol.empty()) symbols.emplace(info.shape[d].symbol, t->dim(d));
    }
  }
  const auto lifetimes = value_lifetimes(cg);
  const size_t steps = cg.node_order().size();
  std::vector<int64_t> born(steps + 1, 0), dies(steps + 1, 0);
  for (const ValueLifetime& v : lifetimes) {
    const ValueInfo* info = cg.slot_info(v.slot);
    int64_t bytes = info == nullptr ? -1 : declared_bytes(*info, symbols);
    if (bytes < 0) {
      ++est.unknown_values;
      bytes = largest_input;
    }
    born[static_cast<size_t>(v.first)] += bytes;
    if (!v.kept) dies[static_cast<size_t>(v.last)] += bytes;
  }
  int64_t live = 0, peak = 0;
  for (size_t i = 0; i < steps; ++i) {
    live += born[i];
    peak = std::max(peak, live);
    live -= dies[i];
  }
  est.activation_bytes = peak;
  return est;
}

}  // namespace orchard::runtime
