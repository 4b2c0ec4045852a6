#include "runtime/partitioner.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <set>

namespace orchard::runtime {

// ---- GraphView ----

GraphView::GraphView(const graph::Graph& g, std::vector<int> candidates)
    : graph_(g), candidates_(std::move(candidates)), candidate_(g.nodes.size(), false) {
  for (int i : candidates_) candidate_[static_cast<size_t>(i)] = true;
  auto set_type = [&](const ValueInfo& info) {
    ValueType t;
    t.kind = info.kind;
    t.dtype = info.dtype;
    t.has_shape = info.has_shape;
    t.shape = info.shape;
    types_[info.name] = std::move(t);
  };
  for (const auto& [name, info] : g.value_info) set_type(info);
  for (const auto& info : g.inputs) set_type(info);
  for (const auto& info : g.outputs) {
    if (info.dtype != DType::undefined || !types_.count(info.name)) set_type(info);
  }
  for (const auto& [name, t] : g.initializers) {
    ValueType vt;
    vt.dtype = t.dtype();
    vt.has_shape = true;
    for (int64_t d : t.shape()) vt.shape.push_back(Dim{d, {}});
    types_[name] = std::move(vt);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& out : g.nodes[i].outputs) {
      if (!out.empty()) producer_[out] = static_cast<int>(i);
    }
    for (const auto& in : node_reads(g.nodes[i])) {
      auto& c = consumers_[in];
      if (c.empty() || c.back() != static_cast<int>(i)) c.push_back(static_cast<int>(i));
    }
  }
  for (const auto& o : g.outputs) outputs_.push_back(o.name);
}

const ValueType& GraphView::type_of(const std::string& name) const {
  static const ValueType unknown;
  auto it = types_.find(name);
  return it == types_.end() ? unknown : it->second;
}

const Tensor* GraphView::constant(const std::string& name) const {
  auto it = graph_.initializers.find(name);
  if (it == graph_.initializers.end()) return nullptr;
  // An initializer that is also a graph input is only a default: the caller may feed another value.
  for (const auto& in : graph_.inputs) {
    if (in.name == name) return nullptr;
  }
  return &it->second;
}

int GraphView::producer(const std::string& name) const {
  auto it = producer_.find(name);
  return it == producer_.end() ? -1 : it->second;
}

const std::vector<int>& GraphView::consumers(const std::string& name) const {
  static const std::vector<int> none;
  auto it = consumers_.find(name);
  return it == consumers_.end() ? none : it->second;
}

bool GraphView::is_graph_output(const std::string& name) const {
  return std::find(outputs_.begin(), outputs_.end(), name) != outputs_.end();
}

std::vector<std::string> node_reads(const graph::Node& n) {
  std::vector<std::string> reads;
  for (const auto& in : n.inputs) {
    if (!in.empty()) reads.push_back(in);
  }
  for (const auto& in : n.implicit_inputs) reads.push_back(in);
  return reads;
}

namespace {

// Reachability between nodes (bit sets), for convexity checks.
class Reach {
 public:
  explicit Reach(const GraphView& view) : n_(static_cast<size_t>(view.num_nodes())), words_((n_ + 63) / 64) {
    desc_.assign(n_ * words_, 0);
    for (size_t i = n_; i-- > 0;) {
      for (const auto& out : view.node(static_cast<int>(i)).outputs) {
        if (out.empty()) continue;
        for (int c : view.consumers(out)) {
          if (static_cast<size_t>(c) <= i) continue;  // (a malformed graph: ignore back edges)
          set(row(i), static_cast<size_t>(c));
          for (size_t w = 0; w < words_; ++w) row(i)[w] |= row(static_cast<size_t>(c))[w];
        }
      }
    }
  }

  // Returns whether the node set `members` (a bit set) is convex: no node outside it is both reachable
  // from it and reaching into it.
  bool convex(const std::vector<uint64_t>& members) const {
    std::vector<uint64_t> below(words_, 0);
    for (size_t i = 0; i < n_; ++i) {
      if (!test(members.data(), i)) continue;
      for (size_t w = 0; w < words_; ++w) below[w] |= row(i)[w];
    }
    for (size_t i = 0; i < n_; ++i) {
      if (!test(below.data(), i) || test(members.data(), i)) continue;
      for (size_t w = 0; w < words_; ++w) {
        if (row(i)[w] & members[w]) return false;
      }
    }
    return true;
  }

  size_t words() const { return words_; }
  static void set(uint64_t* bits, size_t i) { bits[i / 64] |= uint64_t{1} << (i % 64); }
  static bool test(const uint64_t* bits, size_t i) { return (bits[i / 64] >> (i % 64)) & 1u; }

 private:
  size_t n_, words_;
  std::vector<uint64_t> desc_;
  uint64_t* row(size_t i) { return desc_.data() + i * words_; }
  const uint64_t* row(size_t i) const { return desc_.data() + i * words_; }
};

// Ops that cost next to nothing to run anywhere: moving one to its neighbours' backend saves two copies.
bool is_shape_op(const std::string& op) {
  static const std::set<std::string, std::less<>> ops = {
      "Shape", "Size", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "Constant",
      "ConstantOfShape", "Gather", "Slice", "Concat", "Range", "Expand", "Equal", "Where", "Unsqueeze"};
  return ops.count(op) > 0;
}

// A node is cheap when it is a shape op or every output is known to be small. Declared shapes come from
// the model file and may be absurd: the count stops as soon as it passes the bound, so it cannot overflow.
bool is_cheap(const GraphView& view, const graph::Node& n) {
  if (is_shape_op(n.op_type)) return true;
  constexpr int64_t kCheapElements = 4096;
  int64_t elements = 0;
  for (const auto& out : n.outputs) {
    if (out.empty()) continue;
    const ValueType& t = view.type_of(out);
    if (!t.has_shape) return false;
    int64_t e = 1;
    for (const Dim& d : t.shape) {
      if (!d.fixed() || d.value < 0) return false;
      if (d.value > 0 && e > kCheapElements / d.value) return false;
      e *= d.value;
    }
    elements += e;
    if (elements > kCheapElements) return false;
  }
  return true;
}

std::vector<int> all_nodes(const graph::Graph& g) {
  std::vector<int> v(g.nodes.size());
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

std::vector<std::vector<int>> convex_groups(const GraphView& view, const std::vector<int>& nodes) {
  if (nodes.empty()) return {};
  Reach reach(view);
  const size_t n = static_cast<size_t>(view.num_nodes());
  std::vector<int> parent(n, -1);
  for (int v : nodes) parent[static_cast<size_t>(v)] = v;
  auto find = [&](int v) {
    while (parent[static_cast<size_t>(v)] != v) v = parent[static_cast<size_t>(v)] = parent[static_cast<size_t>(parent[static_cast<size_t>(v)])];
    return v;
  };
  std::vector<std::vector<int>> members(n);
  for (int v : nodes) members[static_cast<size_t>(v)] = {v};
  std::vector<int> sorted = nodes;
  std::sort(sorted.begin(), sorted.end());
  for (int c : sorted) {
    for (const auto& in : node_reads(view.node(c))) {
      const int p = view.producer(in);
      if (p < 0 || parent[static_cast<size_t>(p)] < 0) continue;
      const int a = find(p), b = find(c);
      if (a == b) continue;
      std::vector<uint64_t> bits(reach.words(), 0);
      for (int v : members[static_cast<size_t>(a)]) Reach::set(bits.data(), static_cast<size_t>(v));
      for (int v : members[static_cast<size_t>(b)]) Reach::set(bits.data(), static_cast<size_t>(v));
      if (!reach.convex(bits)) continue;
      parent[static_cast<size_t>(b)] = a;
      auto& ma = members[static_cast<size_t>(a)];
      auto& mb = members[static_cast<size_t>(b)];
      ma.insert(ma.end(), mb.begin(), mb.end());
      mb.clear();
    }
  }
  std::vector<std::vector<int>> groups;
  for (int v : sorted) {
    if (find(v) != v) continue;
    auto g = members[static_cast<size_t>(v)];
    std::sort(g.begin(), g.end());
    groups.push_back(std::move(g));
  }
  std::sort(groups.begin(), groups.end(), [](const auto& x, const auto& y) { return x.front() < y.front(); });
  return groups;
}

Result<Placement> place_graph(const graph::Graph& g, const std::vector<std::shared_ptr<Backend>>& chain,
                              const std::vector<std::vector<std::string>>& excluded_reasons) {
  const int num_nodes = static_cast<int>(g.nodes.size());
  const int num_backends = static_cast<int>(chain.size());
  Placement placement;
  placement.node_backend.assign(static_cast<size_t>(num_nodes), -1);
  placement.declined.resize(static_cast<size_t>(num_nodes));
  auto excluded = [&](int b, int n) -> const std::string* {
    if (static_cast<size_t>(b) >= excluded_reasons.size()) return nullptr;
    const auto& r = excluded_reasons[static_cast<size_t>(b)];
    return static_cast<size_t>(n) < r.size() && !r[static_cast<size_t>(n)].empty() ? &r[static_cast<size_t>(n)] : nullptr;
  };

  // 1. Claims, in chain order. Kernel backends are asked about every node (so cheap nodes can move to
  //    them later); compiling backends only about the nodes still free, and their sets stay whole.
  std::vector<std::vector<bool>> can_run(static_cast<size_t>(num_backends), std::vector<bool>(static_cast<size_t>(num_nodes)));
  std::vector<int> unit_of(static_cast<size_t>(num_nodes), -1);  // compiling backends' sets, by id
  std::vector<std::vector<int>> atoms;
  const GraphView full(g, all_nodes(g));
  for (int b = 0; b < num_backends; ++b) {
    const Backend& backend = *chain[static_cast<size_t>(b)];
    std::vector<int> candidates;
    for (int n = 0; n < num_nodes; ++n) {
      if (excluded(b, n)) continue;
      if (backend.merges_partitions() || placement.node_backend[static_cast<size_t>(n)] < 0) candidates.push_back(n);
    }
    const GraphView view(g, candidates);
    Capability cap = backend.get_capability(view);
    for (const auto& r : cap.rejected) {
      if (r.node >= 0 && r.node < num_nodes && placement.node_backend[static_cast<size_t>(r.node)] < 0) {
        placement.declined[static_cast<size_t>(r.node)].push_back({b, r.reason});
      }
    }
    for (int n = 0; n < num_nodes; ++n) {
      if (const std::string* why = excluded(b, n); why && placement.node_backend[static_cast<size_t>(n)] < 0) {
        placement.declined[static_cast<size_t>(n)].push_back({b, *why});
      }
    }
    for (auto& set : cap.partitions) {
      bool valid = !set.empty();
      for (int n : set) valid = valid && n >= 0 && n < num_nodes && view.is_candidate(n);
      if (!valid) continue;  // a backend claiming what it was not offered is ignored
      for (int n : set) can_run[static_cast<size_t>(b)][static_cast<size_t>(n)] = true;
      bool all_free = true;
      for (int n : set) all_free = all_free && placement.node_backend[static_cast<size_t>(n)] < 0;
      if (!all_free) continue;
      for (int n : set) placement.node_backend[static_cast<size_t>(n)] = b;
      if (!backend.merges_partitions()) {
        for (int n : set) unit_of[static_cast<size_t>(n)] = static_cast<int>(atoms.size());
        std::sort(set.begin(), set.end());
        atoms.push_back(set);
      }
    }
  }
  for (int n = 0; n < num_nodes; ++n) {
    if (placement.node_backend[static_cast<size_t>(n)] >= 0) continue;
    const graph::Node& node = g.nodes[static_cast<size_t>(n)];
    std::string reasons;
    for (const auto& d : placement.declined[static_cast<size_t>(n)]) {
      reasons += "; " + chain[static_cast<size_t>(d.backend)]->device().name + ": " + d.reason;
    }
    return unsupported("[runtime] ", node.label(), ": no backend runs it (domain '",
                       node.domain.empty() ? "ai.onnx" : node.domain, "', opset ", node.opset, ")", reasons);
  }

  // 2. A cheap node whose neighbours all sit on one other kernel backend that can run it moves there.
  for (int n = 0; n < num_nodes; ++n) {
    const int mine = placement.node_backend[static_cast<size_t>(n)];
    if (unit_of[static_cast<size_t>(n)] >= 0 || !is_cheap(full, g.nodes[static_cast<size_t>(n)])) continue;
    int other = -1;
    bool single = true;
    auto visit = [&](int m) {
      const int b = placement.node_backend[static_cast<size_t>(m)];
      if (other < 0) other = b;
      single = single && b == other;
    };
    for (const auto& in : node_reads(g.nodes[static_cast<size_t>(n)])) {
      if (int p = full.producer(in); p >= 0) visit(p);
    }
    for (const auto& out : g.nodes[static_cast<size_t>(n)].outputs) {
      if (out.empty()) continue;
      for (int c : full.consumers(out)) visit(c);
    }
    if (!single || other < 0 || other == mine || !chain[static_cast<size_t>(other)]->merges_partitions()) continue;
    if (!can_run[static_cast<size_t>(other)][static_cast<size_t>(n)]) continue;
    placement.node_backend[static_cast<size_t>(n)] = other;
    ++placement.moved_nodes;
  }

  // 3. Units (a compiling backend's set, or one node of a kernel backend) and their dependencies.
  std::vector<std::vector<int>> units = atoms;
  for (int n = 0; n < num_nodes; ++n) {
    if (unit_of[static_cast<size_t>(n)] < 0) {
      unit_of[static_cast<size_t>(n)] = static_cast<int>(units.size());
      units.push_back({n});
    }
  }
  const size_t num_units = units.size();
  std::vector<std::set<int>> succ(num_units);
  std::vector<int> indegree(num_units, 0);
  for (int n = 0; n < num_nodes; ++n) {
    const int u = unit_of[static_cast<size_t>(n)];
    for (const auto& in : node_reads(g.nodes[static_cast<size_t>(n)])) {
      const int p = full.producer(in);
      if (p < 0) continue;
      const int pu = unit_of[static_cast<size_t>(p)];
      if (pu != u && succ[static_cast<size_t>(pu)].insert(u).second) ++indegree[static_cast<size_t>(u)];
    }
  }

  // 4. Schedule units, preferring to stay on the backend of the last one, and cut where it changes.
  std::set<int> ready_by_first_node;  // (units keyed by their first node, so the model's order breaks ties)
  std::vector<int> unit_by_first(static_cast<size_t>(num_nodes), -1);
  for (size_t u = 0; u < num_units; ++u) {
    unit_by_first[static_cast<size_t>(units[u].front())] = static_cast<int>(u);
    if (indegree[u] == 0) ready_by_first_node.insert(units[u].front());
  }
  int last_backend = -1;
  bool last_merges = false;
  std::vector<std::vector<int>> partition_nodes;
  std::vector<int> partition_backend;
  size_t scheduled = 0;
  while (!ready_by_first_node.empty()) {
    auto pick = ready_by_first_node.begin();
    for (auto it = ready_by_first_node.begin(); it != ready_by_first_node.end(); ++it) {
      if (placement.node_backend[static_cast<size_t>(*it)] == last_backend) {
        pick = it;
        break;
      }
    }
    const int u = unit_by_first[static_cast<size_t>(*pick)];
    ready_by_first_node.erase(pick);
    ++scheduled;
    const auto& nodes = units[static_cast<size_t>(u)];
    const int b = placement.node_backend[static_cast<size_t>(nodes.front())];
    const bool merges = chain[static_cast<size_t>(b)]->merges_partitions();
    if (b != last_backend || !merges || !last_merges) {
      partition_nodes.emplace_back();
      partition_backend.push_back(b);
    }
    partition_nodes.back().insert(partition_nodes.back().end(), nodes.begin(), nodes.end());
    last_backend = b;
    last_merges = merges;
    for (int s : succ[static_cast<size_t>(u)]) {
      if (--indegree[static_cast<size_t>(s)] == 0) ready_by_first_node.insert(units[static_cast<size_t>(s)].front());
    }
  }
  if (scheduled != num_units) {
    return internal_error("[runtime] partitioning produced a cycle between partitions (a backend claimed a non-convex node set)");
  }

  // 5. Each partition's edge: values read from outside it, and values read after it.
  std::vector<int> partition_of(static_cast<size_t>(num_nodes), -1);
  for (size_t p = 0; p < partition_nodes.size(); ++p) {
    for (int n : partition_nodes[p]) partition_of[static_cast<size_t>(n)] = static_cast<int>(p);
  }
  for (size_t p = 0; p < partition_nodes.size(); ++p) {
    PlacedPartition pp;
    pp.backend = partition_backend[p];
    pp.spec.graph = &g;
    pp.spec.nodes = partition_nodes[p];
    std::set<std::string> seen_in, seen_out;
    for (int n : pp.spec.nodes) {
      for (const auto& in : node_reads(g.nodes[static_cast<size_t>(n)])) {
        const int prod = full.producer(in);
        if (prod >= 0 && partition_of[static_cast<size_t>(prod)] == static_cast<int>(p)) continue;
        if (prod < 0 && full.constant(in)) continue;  // initializers are the executable's to bind
        if (seen_in.insert(in).second) pp.spec.inputs.push_back(in);
      }
      for (const auto& out : g.nodes[static_cast<size_t>(n)].outputs) {
        if (out.empty()) continue;
        bool outside = full.is_graph_output(out);
        for (int c : full.consumers(out)) outside = outside || partition_of[static_cast<size_t>(c)] != static_cast<int>(p);
        if (outside && seen_out.insert(out).second) pp.spec.outputs.push_back(out);
      }
    }
    placement.partitions.push_back(std::move(pp));
  }
  return placement;
}

}  // namespace orchard::runtime
