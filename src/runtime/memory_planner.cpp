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
  std::vector<int64_t> size(static_cast<size_t>(cg.num_slots()), 0);
  int64_t live = 0, peak = 0;
  for (const auto& cn : cg.nodes()) {
    for (int s : cn.outputs) {
      if (s < 0) continue;
      const ValueInfo* info = cg.slot_info(s);
      int64_t bytes = info == nullptr ? -1 : declared_bytes(*info, symbols);
      if (bytes < 0) {
        ++est.unknown_values;
        bytes = largest_input;
      }
      size[static_cast<size_t>(s)] = bytes;
      live += bytes;
    }
    peak = std::max(peak, live);
    for (int s : cn.release) live -= size[static_cast<size_t>(s)];
  }
  est.activation_bytes = peak;
  return est;
}

}  // namespace orchard::runtime
