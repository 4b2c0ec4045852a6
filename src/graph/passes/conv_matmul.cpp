// Conv / MatMul with what follows them → com.orchard FusedConv / FusedMatMul (docs/fused_ops.md):
//   MatMul → Add of a constant bias [N] → Add of a residual of the output's shape → activation;
//   Conv → Add of a residual of the output's shape → activation (constant per-channel Adds are already
//   folded into the Conv's bias by fold_conv_affine).
//   Gemm (no transposes, alpha and beta 1, a constant [N] bias or none) → activation, directly or through a Reshape
//   of the product (PyTorch's linear layer on a flattened input, GPT-2's MLP, where shapes are not declared well
//   enough for unflatten_gemm): an activation commutes with a Reshape, so the Reshape then reads the FusedMatMul.
// Activations: Relu, Clip (constant bounds), Sigmoid, Tanh, LeakyRelu, HardSwish, x·Sigmoid(x) (SiLU),
// x·HardSigmoid(x) with alpha 1/6 and beta 0.5 (HardSwish), and com.orchard Gelu (approximate "none": Gelu,
// "tanh": GeluTanh).
#include <cmath>
#include <limits>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

struct Fusion {
  std::string bias, residual;  // "" when absent
  std::string activation;      // "" when none
  std::vector<float> params;
  std::vector<size_t> nodes;   // the pattern, anchor first; the last produces the result
  std::string out;
};

bool same_dims(const std::optional<std::vector<Dim>>& a, const std::optional<std::vector<Dim>>& b) {
  if (!a || !b || a->size() != b->size()) return false;
  for (size_t k = 0; k < a->size(); ++k) {
    if (!same_dim((*a)[k], (*b)[k])) return false;
  }
  return true;
}

// N, the last dim of MatMul `n`'s B and output, when statically known and B has rank >= 2; else -1.
int64_t matmul_n(const Graph& g, const Node& n) {
  auto b = declared_shape(g, n.inputs[1]);
  if (!b || b->size() < 2) return -1;
  if (b->back().fixed()) return b->back().value;
  auto y = declared_shape(g, n.outputs[0]);
  if (y && !y->empty() && y->back().fixed()) return y->back().value;
  return -1;
}

// x·gate(x): `cur` read by exactly a `gate` node and a Mul of `cur` and the gate's output.
bool match_gated(const Graph& g, const GraphUses& uses, const std::string& cur, std::string_view gate, Fusion& f) {
  if (uses.count(cur) != 2 || uses.read_outside(cur)) return false;
  const auto readers = uses.consumers(cur);
  if (readers.size() != 2) return false;
  for (int k = 0; k < 2; ++k) {
    const Node& s = g.nodes[static_cast<size_t>(readers[static_cast<size_t>(k)])];
    const int mul = readers[static_cast<size_t>(1 - k)];
    const Node& m = g.nodes[static_cast<size_t>(mul)];
    if (!is_op(s, gate) || !is_op(m, "Mul") || s.outputs.size() != 1) continue;
    if (uses.sole_consumer(s.outputs[0]) != mul || other_input(m, cur) != s.outputs[0]) continue;
    if (gate == "HardSigmoid" &&
        (std::fabs(s.attr_float("alpha", 0.2f) - 1.0f / 6) > 1e-6f || std::fabs(s.attr_float("beta", 0.5f) - 0.5f) > 1e-6f)) {
      return false;
    }
    f.activation = gate == "Sigmoid" ? "SiLU" : "HardSwish";
    f.nodes.push_back(static_cast<size_t>(readers[static_cast<size_t>(k)]));
    f.nodes.push_back(static_cast<size_t>(mul));
    f.out = m.outputs[0];
    return true;
  }
  return false;
}

// Clip's bounds: attributes before opset 11, constant inputs after.
bool clip_bounds(const Graph& g, const Node& n, std::vector<float>& params) {
  float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  if (n.opset < 11) {
    lo = n.attr_float("min", lo);
    hi = n.attr_float("max", hi);
  } else {
    if (n.has_input(1)) {
      auto v = scalar_constant(g, n.inputs[1]);
      if (!v) return false;
      lo = *v;
    }
    if (n.has_input(2)) {
      auto v = scalar_constant(g, n.inputs[2]);
      if (!v) return false;
      hi = *v;
    }
  }
  params = {lo, hi};
  return true;
}

// Matches the activation reading `cur`, if any.
void match_activation(const Graph& g, const GraphUses& uses, Fusion& f) {
  const std::string cur = f.out;
  if (match_gated(g, uses, cur, "Sigmoid", f) || match_gated(g, uses, cur, "HardSigmoid", f)) return;
  const int c = uses.sole_consumer(cur);
  if (c < 0) return;
  const Node& n = g.nodes[static_cast<size_t>(c)];
  if (n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0] != cur) return;
  std::vector<float> params;
  if (is_op(n, "Relu") || is_op(n, "Sigmoid") || is_op(n, "Tanh") || is_op(n, "HardSwish")) {
    f.activation = n.op_type;
  } else if (is_op(n, "LeakyRelu")) {
    f.activation = n.op_type;
    params = {n.attr_float("alpha", 0.01f)};
  } else if (is_op(n, "Clip")) {
    if (!clip_bounds(g, n, params)) return;
    f.activation = n.op_type;
  } else if (n.domain == kOrchardDomain && n.op_type == "Gelu" && n.attr_string("approximate", "none") == "none") {
    f.activation = "Gelu";
  } else if (n.domain == kOrchardDomain && n.op_type == "Gelu" && n.attr_string("approximate", "none") == "tanh") {
    f.activation = "GeluTanh";
  } else {
    return;
  }
  f.params = std::move(params);
  f.nodes.push_back(static_cast<size_t>(c));
  f.out = n.outputs[0];
}

// Matches Adds after the anchor: a constant bias [n] (n > 0 only) and a residual of the output's shape.
void match_adds(const Graph& g, const GraphUses& uses, int64_t n, Fusion& f) {
  const auto shape = declared_shape(g, f.out);
  for (;;) {
    const int c = uses.sole_consumer(f.out);
    if (c < 0 || !is_op(g.nodes[static_cast<size_t>(c)], "Add")) return;
    const Node& add = g.nodes[static_cast<size_t>(c)];
    const std::string other = other_input(add, f.out);
    if (other.empty() || add.outputs.size() != 1) return;
    const Tensor* t = constant(g, other);
    // A [N] bias on a [..., N] MatMul output leaves its shape as it is, known or not.
    if (n > 0 && f.bias.empty() && t && t->dtype() == DType::float32 && t->rank() == 1 && t->dim(0) == n) {
      f.bias = other;
    } else if (f.residual.empty() && value_dtype(g, other) == DType::float32 && same_dims(declared_shape(g, other), shape) &&
               same_dims(declared_shape(g, add.outputs[0]), shape)) {
      f.residual = other;
    } else {
      return;
    }
    f.nodes.push_back(static_cast<size_t>(c));
    f.out = add.outputs[0];
  }
}

// Makes the FusedMatMul or FusedConv node `op` of fusion f anchored at `anchor`, reading `inputs` (then f's
// residual; trailing empty inputs dropped) and writing f.out.
Node fused_node(const Graph& g, const Node& anchor, const char* op, std::vector<std::string> inputs, const Fusion& f) {
  Node fused;
  fused.name = unique_name(g, anchor.name + "_fused");
  fused.op_type = op;
  fused.domain = std::string(kOrchardDomain);
  fused.opset = 1;
  fused.inputs = std::move(inputs);
  fused.inputs.push_back(f.residual);
  while (!fused.inputs.empty() && fused.inputs.back().empty()) fused.inputs.pop_back();
  fused.outputs = {f.out};
  Attribute act;
  act.type = Attribute::Type::s;
  act.s = f.activation;
  fused.attributes["activation"] = std::move(act);
  if (!f.params.empty()) {
    Attribute params;
    params.type = Attribute::Type::floats;
    params.floats = f.params;
    fused.attributes["activation_params"] = std::move(params);
  }
  return fused;
}

// Gemm → [Reshape →] activation (see the top of the file).
bool try_fuse_gemm(Graph& g, const GraphUses& uses, size_t i, const PassContext& ctx) {
  const Node& gemm = g.nodes[i];
  if (gemm.num_inputs() < 2 || gemm.outputs.size() != 1 || gemm.attr_int("transA", 0) != 0 ||
      gemm.attr_int("transB", 0) != 0 || gemm.attr_float("alpha", 1.0f) != 1.0f ||
      gemm.attr_float("beta", 1.0f) != 1.0f) {
    return false;
  }
  const std::string c = gemm.has_input(2) ? gemm.inputs[2] : "";
  const auto b_shape = static_shape(g, gemm.inputs[1]);
  if (!b_shape || b_shape->size() != 2 || value_dtype(g, gemm.inputs[0]) != DType::float32 ||
      value_dtype(g, gemm.inputs[1]) != DType::float32) {
    return false;
  }
  if (!c.empty()) {
    const Tensor* bias = constant(g, c);
    if (!bias || bias->dtype() != DType::float32 || bias->rank() != 1 || bias->dim(0) != (*b_shape)[1]) return false;
  }
  Fusion f;
  f.nodes = {i};
  f.out = gemm.outputs[0];
  int reshape = uses.sole_consumer(f.out);  // the Reshape between the product and the activation, if any
  if (reshape >= 0) {
    const Node& r = g.nodes[static_cast<size_t>(reshape)];
    if (is_op(r, "Reshape") && r.inputs[0] == f.out && r.outputs.size() == 1) {
      f.out = r.outputs[0];
    } else {
      reshape = -1;
    }
  }
  match_activation(g, uses, f);
  if (f.activation.empty()) return false;
  std::vector<const Node*> originals;
  for (size_t k : f.nodes) originals.push_back(&g.nodes[k]);
  if (!ctx.allows(originals, kOrchardDomain, "FusedMatMul", 1)) return false;
  const std::string result = f.out;
  if (reshape >= 0) f.out = gemm.outputs[0];  // the Reshape reads the activated product and makes the result
  Node fused = fused_node(g, gemm, "FusedMatMul", {gemm.inputs[0], gemm.inputs[1], c}, f);
  for (size_t k = 1; k < f.nodes.size(); ++k) mark_removed(g, f.nodes[k]);
  if (reshape >= 0) {
    g.nodes[i] = std::move(fused);
    g.nodes[static_cast<size_t>(reshape)].outputs[0] = result;
  } else {
    mark_removed(g, i);
    g.nodes[f.nodes.back()] = std::move(fused);
  }
  return true;
}

bool try_fuse(Graph& g, const GraphUses& uses, size_t i, const PassContext& ctx) {
  const Node& anchor = g.nodes[i];
  if (is_op(anchor, "Gemm")) return try_fuse_gemm(g, uses, i, ctx);
  const bool conv = is_op(anchor, "Conv");
  if (!conv && !is_op(anchor, "MatMul")) return false;
  if (anchor.num_inputs() < 2 || anchor.outputs.size() != 1 || (!conv && anchor.num_inputs() != 2)) return false;
  if (value_dtype(g, anchor.inputs[0]) != DType::float32 || value_dtype(g, anchor.inputs[1]) != DType::float32) return false;
  Fusion f;
  f.nodes = {i};
  f.out = anchor.outputs[0];
  match_adds(g, uses, conv ? -1 : matmul_n(g, anchor), f);
  match_activation(g, uses, f);
  if (f.nodes.size() == 1) return false;
  const char* op = conv ? "FusedConv" : "FusedMatMul";
  std::vector<const Node*> originals;
  for (size_t k : f.nodes) originals.push_back(&g.nodes[k]);
  if (!ctx.allows(originals, kOrchardDomain, op, 1)) return false;

  const std::string third = conv ? (anchor.has_input(2) ? anchor.inputs[2] : "") : f.bias;  // the bias
  Node fused = fused_node(g, anchor, op, {anchor.inputs[0], anchor.inputs[1], third}, f);
  if (conv) {  // the Conv's attributes as well
    for (const auto& [name, attr] : anchor.attributes) fused.attributes.emplace(name, attr);
  }
  for (size_t k : f.nodes) mark_removed(g, k);
  g.nodes[f.nodes.back()] = std::move(fused);
  return true;
}

}  // namespace

Result<int> fuse_conv_matmul(Graph& g, const PassContext& ctx) {
  return rewrite_each(g, [&ctx](Graph& g, const GraphUses& uses, size_t i) { return try_fuse(g, uses, i, ctx); });
}

}  // namespace orchard::graph::passes
