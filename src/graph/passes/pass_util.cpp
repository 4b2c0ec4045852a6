#include "graph/passes/pass_util.hpp"

#include <algorithm>
#include <memory>
#include <set>

#include "graph/passes/pass.hpp"

namespace orchard::graph::passes {

bool PassContext::allows(const std::vector<const Node*>& originals, std::string_view domain, std::string_view op_type,
                         int opset) const {
  if (!may_replace) return true;
  return std::all_of(originals.begin(), originals.end(),
                     [&](const Node* n) { return may_replace(*n, domain, op_type, opset); });
}

GraphUses::GraphUses(const Graph& g) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op_type.empty()) continue;
    for (const auto& out : n.outputs) {
      if (!out.empty()) producer_[out] = static_cast<int>(i);
    }
    std::set<std::string_view> seen;
    for (const auto& in : n.inputs) {
      if (in.empty()) continue;
      ++count_[in];
      if (seen.insert(in).second) consumers_[in].push_back(static_cast<int>(i));
    }
    for (const auto& in : n.implicit_inputs) {
      ++count_[in];
      ++outside_[in];
    }
  }
  for (const auto& o : g.outputs) {
    ++count_[o.name];
    ++outside_[o.name];
  }
}

int GraphUses::count(std::string_view value) const {
  auto it = count_.find(value);
  return it == count_.end() ? 0 : it->second;
}

int GraphUses::producer(std::string_view value) const {
  auto it = producer_.find(value);
  return it == producer_.end() ? -1 : it->second;
}

int GraphUses::sole_consumer(std::string_view value) const {
  if (count(value) != 1 || outside_.count(value)) return -1;
  auto it = consumers_.find(value);
  return it == consumers_.end() || it->second.size() != 1 ? -1 : it->second[0];
}

std::vector<int> GraphUses::consumers(std::string_view value) const {
  auto it = consumers_.find(value);
  return it == consumers_.end() ? std::vector<int>{} : it->second;
}

const Tensor* constant(const Graph& g, std::string_view name) {
  if (name.empty()) return nullptr;
  auto it = g.initializers.find(name);
  return it == g.initializers.end() ? nullptr : &it->second;
}

std::optional<float> scalar_constant(const Graph& g, std::string_view name) {
  const Tensor* t = constant(g, name);
  if (!t || t->dtype() != DType::float32 || t->numel() != 1) return std::nullopt;
  return t->data<float>()[0];
}

std::optional<std::vector<int64_t>> int_constant(const Graph& g, std::string_view name) {
  const Tensor* t = constant(g, name);
  if (!t || t->dtype() != DType::int64) return std::nullopt;
  return std::vector<int64_t>(t->data<int64_t>(), t->data<int64_t>() + t->numel());
}

namespace {

const ValueInfo* find_info(const Graph& g, std::string_view value) {
  for (const auto& i : g.inputs) {
    if (i.name == value) return &i;
  }
  auto it = g.value_info.find(value);
  if (it != g.value_info.end()) return &it->second;
  for (const auto& o : g.outputs) {
    if (o.name == value) return &o;
  }
  return nullptr;
}

}  // namespace

std::optional<std::vector<Dim>> declared_shape(const Graph& g, std::string_view value) {
  if (const Tensor* t = constant(g, value)) {
    std::vector<Dim> dims;
    for (int64_t d : t->shape()) dims.push_back(Dim{d, {}});
    return dims;
  }
  const ValueInfo* info = find_info(g, value);
  if (!info || info->kind != Value::Kind::tensor || !info->has_shape) return std::nullopt;
  return info->shape;
}

std::optional<std::vector<int64_t>> static_shape(const Graph& g, std::string_view value) {
  auto dims = declared_shape(g, value);
  if (!dims) return std::nullopt;
  std::vector<int64_t> out;
  for (const Dim& d : *dims) {
    if (!d.fixed()) return std::nullopt;
    out.push_back(d.value);
  }
  return out;
}

bool same_dim(const Dim& a, const Dim& b) {
  return a.fixed() ? b.fixed() && a.value == b.value : !a.symbol.empty() && a.symbol == b.symbol;
}

DType value_dtype(const Graph& g, std::string_view value) {
  if (const Tensor* t = constant(g, value)) return t->dtype();
  const ValueInfo* info = find_info(g, value);
  return info && info->kind == Value::Kind::tensor ? info->dtype : DType::undefined;
}

std::string unique_name(const Graph& g, const std::string& base) {
  std::set<std::string_view> taken;
  for (const auto& n : g.nodes) {
    for (const auto& o : n.outputs) taken.insert(o);
    taken.insert(n.name);
  }
  for (const auto& i : g.inputs) taken.insert(i.name);
  for (const auto& [name, t] : g.initializers) taken.insert(name);
  if (!taken.count(base)) return base;
  for (int k = 1;; ++k) {
    std::string candidate = base + "_" + std::to_string(k);
    if (!taken.count(candidate)) return candidate;
  }
}

NameSource::NameSource(const Graph& g) {
  for (const auto& n : g.nodes) {
    taken_.insert(n.outputs.begin(), n.outputs.end());
    taken_.insert(n.name);
  }
  for (const auto& i : g.inputs) taken_.insert(i.name);
  for (const auto& [name, t] : g.initializers) taken_.insert(name);
  for (const auto& [name, info] : g.value_info) taken_.insert(name);
}

std::string NameSource::make(const std::string& base) {
  std::string name = base;
  for (int k = 1; taken_.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
  taken_.insert(name);
  return name;
}

int rewrite_each(Graph& g, const std::function<bool(Graph&, const GraphUses&, size_t)>& try_at) {
  int rewrites = 0;
  // Every rewrite removes at least one node, so this bound is never reached by a correct pass.
  const size_t max_rewrites = 2 * g.nodes.size() + 8;
  auto uses = std::make_unique<GraphUses>(g);
  for (size_t i = 0; i < g.nodes.size();) {
    if (!g.nodes[i].op_type.empty() && static_cast<size_t>(rewrites) < max_rewrites && try_at(g, *uses, i)) {
      ++rewrites;
      uses = std::make_unique<GraphUses>(g);
      continue;
    }
    ++i;
  }
  compact(g);
  return rewrites;
}

bool bypass(Graph& g, const GraphUses& uses, const std::vector<size_t>& nodes, const std::string& in,
            const std::string& out) {
  if (!uses.read_outside(out)) {
    const std::string source = in;  // `in` may view a string that the rewiring changes
    for (size_t i : nodes) mark_removed(g, i);
    replace_uses(g, out, source);
    return true;
  }
  const int p = uses.producer(in);
  if (p < 0 || uses.read_outside(in)) return false;
  for (int reader : uses.consumers(in)) {
    if (std::find(nodes.begin(), nodes.end(), static_cast<size_t>(reader)) == nodes.end()) return false;
  }
  const std::string source = in;
  for (size_t i : nodes) mark_removed(g, i);
  for (auto& o : g.nodes[static_cast<size_t>(p)].outputs) {
    if (o == source) o = out;
  }
  g.value_info.erase(source);
  return true;
}

std::string other_input(const Node& n, const std::string& value) {
  if (n.num_inputs() != 2 || n.inputs.size() != 2) return "";
  if (n.inputs[0] == value && n.inputs[1] != value) return n.inputs[1];
  if (n.inputs[1] == value && n.inputs[0] != value) return n.inputs[0];
  return "";
}

void mark_removed(Graph& g, size_t i) { g.nodes[i].op_type.clear(); }

void compact(Graph& g) {
  std::set<std::string> dropped;
  std::set<std::string> produced;
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (auto& n : g.nodes) {
    if (n.op_type.empty()) {
      for (const auto& o : n.outputs) dropped.insert(o);
      continue;
    }
    for (const auto& o : n.outputs) produced.insert(o);
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  for (const auto& name : dropped) {
    if (!produced.count(name)) g.value_info.erase(name);
  }
}

void replace_uses(Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes) {
    for (auto& in : n.inputs) {
      if (in == from) in = to;
    }
  }
}

}  // namespace orchard::graph::passes
