// No-op elimination: Identity, Concat of one input, Reshape to the input's own shape, Transpose by the identity
// permutation, and Transpose pairs (cancelled, or merged into one Transpose).
#include <cstdint>
#include <numeric>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

// Returns the permutation of Transpose `n`, whose input has `rank` dims (-1: unknown); empty when unknown.
std::vector<int64_t> transpose_perm(const Node& n, int64_t rank) {
  std::vector<int64_t> perm = n.attr_ints("perm");
  if (perm.empty() && rank >= 0) {
    perm.resize(static_cast<size_t>(rank));
    for (int64_t k = 0; k < rank; ++k) perm[static_cast<size_t>(k)] = rank - 1 - k;  // default: reverse
  }
  if (rank >= 0 && static_cast<int64_t>(perm.size()) != rank) return {};
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(perm.size()) || seen[static_cast<size_t>(p)]) return {};
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

int64_t rank_of(const Graph& g, const std::string& value) {
  auto dims = declared_shape(g, value);
  return dims ? static_cast<int64_t>(dims->size()) : -1;
}

bool is_identity_perm(const std::vector<int64_t>& perm) {
  for (size_t k = 0; k < perm.size(); ++k) {
    if (perm[k] != static_cast<int64_t>(k)) return false;
  }
  return true;
}

bool try_transpose(Graph& g, const GraphUses& uses, size_t i) {
  const Node& t2 = g.nodes[i];
  if (t2.inputs.size() != 1 || t2.outputs.size() != 1) return false;
  const std::vector<int64_t> p2 = transpose_perm(t2, rank_of(g, t2.inputs[0]));
  if (p2.empty()) return false;
  if (is_identity_perm(p2)) return bypass(g, uses, {i}, t2.inputs[0], t2.outputs[0]);
  // Transpose(Transpose(x, p1), p2) = Transpose(x, q) with q[k] = p1[p2[k]].
  const int p = uses.producer(t2.inputs[0]);
  if (p < 0 || !is_op(g.nodes[static_cast<size_t>(p)], "Transpose") || uses.sole_consumer(t2.inputs[0]) != static_cast<int>(i)) {
    return false;
  }
  const Node& t1 = g.nodes[static_cast<size_t>(p)];
  const std::vector<int64_t> p1 = transpose_perm(t1, rank_of(g, t1.inputs[0]));
  if (p1.size() != p2.size()) return false;
  std::vector<int64_t> q(p2.size());
  for (size_t k = 0; k < q.size(); ++k) q[k] = p1[static_cast<size_t>(p2[k])];
  if (is_identity_perm(q)) return bypass(g, uses, {static_cast<size_t>(p), i}, t1.inputs[0], t2.outputs[0]);
  Node& merged = g.nodes[i];
  merged.inputs[0] = t1.inputs[0];
  Attribute perm;
  perm.type = Attribute::Type::ints;
  perm.ints = q;
  merged.attributes["perm"] = std::move(perm);
  mark_removed(g, static_cast<size_t>(p));
  return true;
}

// Reshape whose output has the same static shape as its input.
bool try_reshape(Graph& g, const GraphUses& uses, size_t i) {
  const Node& n = g.nodes[i];
  if (n.num_inputs() != 2 || n.outputs.size() != 1) return false;
  auto in = static_shape(g, n.inputs[0]);
  auto out = static_shape(g, n.outputs[0]);
  if (!in || !out || *in != *out) return false;
  return bypass(g, uses, {i}, n.inputs[0], n.outputs[0]);
}

// Concat of a single input: a copy. GPT-2's export concatenates each layer's keys and values with an absent
// cache that way, between two Transposes which then merge.
bool try_concat(Graph& g, const GraphUses& uses, size_t i) {
  const Node& n = g.nodes[i];
  if (n.inputs.size() != 1 || n.inputs[0].empty() || n.outputs.size() != 1) return false;
  // The axis must be valid for the input (the importer's shape inference already refuses others). The rank is
  // the inferred one, or a Transpose producer's perm length (with symbolic dims GPT-2's heads have no inferred
  // shape: their Reshape's target is computed at run time).
  int64_t rank = rank_of(g, n.inputs[0]);
  if (const int p = uses.producer(n.inputs[0]); rank < 0 && p >= 0 && is_op(g.nodes[static_cast<size_t>(p)], "Transpose")) {
    rank = static_cast<int64_t>(g.nodes[static_cast<size_t>(p)].attr_ints("perm").size());
  }
  const int64_t axis = n.attr_int("axis", INT64_MAX);
  if (rank < 1 || axis < -rank || axis >= rank) return false;
  return bypass(g, uses, {i}, n.inputs[0], n.outputs[0]);
}

}  // namespace

Result<int> eliminate_no_ops(Graph& g, const PassContext& /*ctx*/) {
  return rewrite_each(g, [](Graph& g, const GraphUses& uses, size_t i) {
    const Node& n = g.nodes[i];
    if (is_op(n, "Identity") && n.inputs.size() == 1 && n.outputs.size() == 1 && !n.inputs[0].empty()) {
      return bypass(g, uses, {i}, n.inputs[0], n.outputs[0]);
    }
    if (is_op(n, "Concat")) return try_concat(g, uses, i);
    if (is_op(n, "Transpose")) return try_transpose(g, uses, i);
    if (is_op(n, "Reshape")) return try_reshape(g, uses, i);
    return false;
  });
}

}  // namespace orchard::graph::passes
