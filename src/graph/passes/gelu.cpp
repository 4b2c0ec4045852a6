// GELU pattern fusion → com.orchard Gelu (docs/fused_ops.md).
//   erf form:  x·0.5·(1 + erf(x/√2)), the division written as Div by √2 or Mul by 1/√2;
//   tanh form: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GPT-2's gelu_new) → approximate = "tanh".
// The final 0.5·x·(...) product is matched in the orders exporters write it: (x·a)·0.5, (0.5·x)·a,
// (a·0.5)·x, with either operand order of each Mul and Add.
#include <cmath>
#include <numbers>

#include <algorithm>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

bool near(std::optional<float> v, double want, double rel) {
  return v && std::fabs(static_cast<double>(*v) - want) <= rel * std::fabs(want);
}

// Returns the producer of `value` when it is `op` and `value` is read only by `reader`.
int sole_producer(const Graph& g, const GraphUses& uses, const std::string& value, std::string_view op, size_t reader) {
  const int p = uses.producer(value);
  if (p < 0 || !is_op(g.nodes[static_cast<size_t>(p)], op) || uses.sole_consumer(value) != static_cast<int>(reader)) {
    return -1;
  }
  return p;
}

struct Match {
  std::string x;              // the GELU's input
  std::vector<size_t> nodes;  // every node of the pattern; the last is the one producing the result
};

// Matches the shared tail `t` (erf(...) or tanh(...), produced by node `core`) → Add 1 → the 0.5·x
// products, appending its nodes; `x` is the GELU's input.
bool match_tail(const Graph& g, const GraphUses& uses, size_t core, const std::string& x, Match& m) {
  const std::string& t = g.nodes[core].outputs[0];
  const int add = uses.sole_consumer(t);
  if (add < 0 || !is_op(g.nodes[static_cast<size_t>(add)], "Add")) return false;
  const Node& an = g.nodes[static_cast<size_t>(add)];
  if (!near(scalar_constant(g, other_input(an, t)), 1.0, 1e-6)) return false;
  const std::string& a = an.outputs[0];
  const int m1 = uses.sole_consumer(a);
  if (m1 < 0 || !is_op(g.nodes[static_cast<size_t>(m1)], "Mul")) return false;
  const Node& mn = g.nodes[static_cast<size_t>(m1)];
  const std::string other = other_input(mn, a);
  if (other.empty()) return false;
  m.nodes.push_back(static_cast<size_t>(add));
  if (other == x || near(scalar_constant(g, other), 0.5, 1e-6)) {
    // (x·a)·0.5 or (a·0.5)·x: one more Mul, by what the first one did not take.
    const int m2 = uses.sole_consumer(mn.outputs[0]);
    if (m2 < 0 || !is_op(g.nodes[static_cast<size_t>(m2)], "Mul")) return false;
    const std::string last = other_input(g.nodes[static_cast<size_t>(m2)], mn.outputs[0]);
    const bool ok = other == x ? near(scalar_constant(g, last), 0.5, 1e-6) : last == x;
    if (!ok) return false;
    m.nodes.push_back(static_cast<size_t>(m1));
    m.nodes.push_back(static_cast<size_t>(m2));
    return true;
  }
  // (0.5·x)·a: `other` is Mul(x, 0.5) read only here.
  const int h = sole_producer(g, uses, other, "Mul", static_cast<size_t>(m1));
  if (h < 0 || other_input(g.nodes[static_cast<size_t>(h)], x).empty() ||
      !near(scalar_constant(g, other_input(g.nodes[static_cast<size_t>(h)], x)), 0.5, 1e-6)) {
    return false;
  }
  m.nodes.push_back(static_cast<size_t>(h));
  m.nodes.push_back(static_cast<size_t>(m1));
  return true;
}

// Erf anchored at node i: its input is x/√2 (Div) or x·(1/√2) (Mul).
bool match_erf(const Graph& g, const GraphUses& uses, size_t i, Match& m) {
  const Node& erf = g.nodes[i];
  if (erf.inputs.size() != 1 || erf.outputs.size() != 1) return false;
  const int s = uses.producer(erf.inputs[0]);
  if (s < 0 || uses.sole_consumer(erf.inputs[0]) != static_cast<int>(i)) return false;
  const Node& sn = g.nodes[static_cast<size_t>(s)];
  if (is_op(sn, "Div") && sn.num_inputs() == 2 && near(scalar_constant(g, sn.inputs[1]), std::sqrt(2.0), 1e-4)) {
    m.x = sn.inputs[0];
  } else if (is_op(sn, "Mul") && sn.num_inputs() == 2) {
    if (near(scalar_constant(g, sn.inputs[1]), std::sqrt(0.5), 1e-4)) m.x = sn.inputs[0];
    else if (near(scalar_constant(g, sn.inputs[0]), std::sqrt(0.5), 1e-4)) m.x = sn.inputs[1];
    else return false;
  } else {
    return false;
  }
  m.nodes = {static_cast<size_t>(s), i};
  return match_tail(g, uses, i, m.x, m);
}

// Tanh anchored at node i: its input is √(2/π)·(x + 0.044715·x³), x³ written as Pow(x, 3).
bool match_tanh(const Graph& g, const GraphUses& uses, size_t i, Match& m) {
  const Node& tanh = g.nodes[i];
  if (tanh.inputs.size() != 1 || tanh.outputs.size() != 1) return false;
  const int s = sole_producer(g, uses, tanh.inputs[0], "Mul", i);
  if (s < 0) return false;
  const Node& sn = g.nodes[static_cast<size_t>(s)];
  const double k = std::sqrt(2.0 / std::numbers::pi);
  std::string r;
  if (near(scalar_constant(g, sn.inputs[1]), k, 1e-4)) r = sn.inputs[0];
  else if (near(scalar_constant(g, sn.inputs[0]), k, 1e-4)) r = sn.inputs[1];
  else return false;
  const int add = sole_producer(g, uses, r, "Add", static_cast<size_t>(s));
  if (add < 0 || g.nodes[static_cast<size_t>(add)].num_inputs() != 2) return false;
  const Node& an = g.nodes[static_cast<size_t>(add)];
  // One addend is 0.044715·Pow(x, 3), the other x.
  for (int side = 0; side < 2; ++side) {
    const std::string& q = an.inputs[static_cast<size_t>(side)];
    const std::string& x = an.inputs[static_cast<size_t>(1 - side)];
    const int qm = sole_producer(g, uses, q, "Mul", static_cast<size_t>(add));
    if (qm < 0 || g.nodes[static_cast<size_t>(qm)].num_inputs() != 2) continue;
    const Node& qn = g.nodes[static_cast<size_t>(qm)];
    const bool c1 = near(scalar_constant(g, qn.inputs[1]), 0.044715, 1e-4);
    const bool c0 = near(scalar_constant(g, qn.inputs[0]), 0.044715, 1e-4);
    if (!c0 && !c1) continue;
    const std::string& cube = c1 ? qn.inputs[0] : qn.inputs[1];
    const int pw = sole_producer(g, uses, cube, "Pow", static_cast<size_t>(qm));
    if (pw < 0) continue;
    const Node& pn = g.nodes[static_cast<size_t>(pw)];
    if (pn.num_inputs() != 2 || pn.inputs[0] != x || !near(scalar_constant(g, pn.inputs[1]), 3.0, 0)) continue;
    m.x = x;
    m.nodes = {static_cast<size_t>(pw), static_cast<size_t>(qm), static_cast<size_t>(add), static_cast<size_t>(s), i};
    return match_tail(g, uses, i, m.x, m);
  }
  return false;
}

bool try_fuse(Graph& g, const GraphUses& uses, size_t i, const PassContext& ctx) {
  const Node& n = g.nodes[i];
  const bool erf = is_op(n, "Erf");
  if (!erf && !is_op(n, "Tanh")) return false;
  Match m;
  if (!(erf ? match_erf(g, uses, i, m) : match_tanh(g, uses, i, m))) return false;
  if (value_dtype(g, m.x) != DType::float32) return false;
  std::vector<const Node*> originals;
  size_t last = 0;
  for (size_t k : m.nodes) {
    originals.push_back(&g.nodes[k]);
    last = std::max(last, k);
  }
  if (!ctx.allows(originals, kOrchardDomain, "Gelu", 1)) return false;
  Node gelu;
  gelu.name = unique_name(g, g.nodes[last].name + "_gelu");
  gelu.op_type = "Gelu";
  gelu.domain = std::string(kOrchardDomain);
  gelu.opset = 1;
  gelu.inputs = {m.x};
  gelu.outputs = {g.nodes[last].outputs[0]};
  Attribute approx;
  approx.type = Attribute::Type::s;
  approx.s = erf ? "none" : "tanh";
  gelu.attributes["approximate"] = std::move(approx);
  for (size_t k : m.nodes) mark_removed(g, k);
  g.nodes[last] = std::move(gelu);
  return true;
}

}  // namespace

Result<int> fuse_gelu(Graph& g, const PassContext& ctx) {
  return rewrite_each(g, [&ctx](Graph& g, const GraphUses& uses, size_t i) { return try_fuse(g, uses, i, ctx); });
}

}  // namespace orchard::graph::passes
