// LayerNorm pattern → LayerNormalization (opset 17), as exporters write a hand-made layer norm:
//   m = ReduceMean(x, axes=[-1]); d = Sub(x, m); v = ReduceMean(Pow(d, 2) or Mul(d, d), axes=[-1]);
//   y = Div(d, Sqrt(Add(v, eps)))  [· gamma]  [+ beta]
// over the last axis only, with constant eps, gamma [C] and beta [C] (either operand order).
#include <algorithm>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

constexpr int kLayerNormOpset = 17;

// True when ReduceMean `n` reduces only the last axis of a rank-`rank` input, keeping dims.
bool reduces_last_axis(const Graph& g, const Node& n, int64_t rank) {
  if (n.attr_int("keepdims", 1) != 1 || n.outputs.size() != 1) return false;
  std::vector<int64_t> axes;
  if (n.opset >= 18) {
    if (!n.has_input(1)) return false;
    auto a = int_constant(g, n.inputs[1]);
    if (!a) return false;
    axes = *a;
  } else {
    if (n.num_inputs() != 1) return false;
    axes = n.attr_ints("axes");
  }
  return axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1);
}

// The single reader of `value` when it is `op`, else -1.
int next_op(const Graph& g, const GraphUses& uses, const std::string& value, std::string_view op) {
  const int c = uses.sole_consumer(value);
  return c >= 0 && is_op(g.nodes[static_cast<size_t>(c)], op) ? c : -1;
}

// A float32 constant of shape [c].
bool is_channel_vector(const Graph& g, const std::string& name, int64_t c) {
  const Tensor* t = constant(g, name);
  return t && t->dtype() == DType::float32 && t->rank() == 1 && t->dim(0) == c;
}

bool try_fuse(Graph& g, const GraphUses& uses, size_t i, const PassContext& ctx) {
  const Node& mean = g.nodes[i];
  if (!is_op(mean, "ReduceMean") || mean.inputs.empty()) return false;
  const std::string x = mean.inputs[0];
  auto shape = declared_shape(g, x);
  if (!shape || shape->empty() || !shape->back().fixed() || value_dtype(g, x) != DType::float32) return false;
  const auto rank = static_cast<int64_t>(shape->size());
  const int64_t c = shape->back().value;
  if (!reduces_last_axis(g, mean, rank)) return false;
  const int sub = next_op(g, uses, mean.outputs[0], "Sub");
  if (sub < 0) return false;
  const Node& sn = g.nodes[static_cast<size_t>(sub)];
  if (sn.inputs.size() != 2 || sn.inputs[0] != x || sn.inputs[1] != mean.outputs[0]) return false;
  const std::string& d = sn.outputs[0];
  // d is read by the square and by the Div, nothing else.
  const auto readers = uses.consumers(d);
  if (readers.size() != 2 || uses.read_outside(d)) return false;
  int sq = -1, div = -1;
  for (int r : readers) {
    const Node& n = g.nodes[static_cast<size_t>(r)];
    if (is_op(n, "Div") && n.inputs.size() == 2 && n.inputs[0] == d) div = r;
    else if (is_op(n, "Pow") && n.inputs.size() == 2 && n.inputs[0] == d && scalar_constant(g, n.inputs[1]) == 2.0f) sq = r;
    else if (is_op(n, "Mul") && n.inputs.size() == 2 && n.inputs[0] == d && n.inputs[1] == d) sq = r;
  }
  if (sq < 0 || div < 0 || uses.count(d) != (is_op(g.nodes[static_cast<size_t>(sq)], "Mul") ? 3 : 2)) return false;
  const int var = next_op(g, uses, g.nodes[static_cast<size_t>(sq)].outputs[0], "ReduceMean");
  if (var < 0 || !reduces_last_axis(g, g.nodes[static_cast<size_t>(var)], rank)) return false;
  const int add = next_op(g, uses, g.nodes[static_cast<size_t>(var)].outputs[0], "Add");
  if (add < 0) return false;
  auto eps = scalar_constant(g, other_input(g.nodes[static_cast<size_t>(add)], g.nodes[static_cast<size_t>(var)].outputs[0]));
  if (!eps) return false;
  const int sqrt = next_op(g, uses, g.nodes[static_cast<size_t>(add)].outputs[0], "Sqrt");
  if (sqrt < 0 || uses.sole_consumer(g.nodes[static_cast<size_t>(sqrt)].outputs[0]) != div) return false;
  if (g.nodes[static_cast<size_t>(div)].inputs[1] != g.nodes[static_cast<size_t>(sqrt)].outputs[0]) return false;
  std::vector<size_t> nodes = {i, static_cast<size_t>(sub), static_cast<size_t>(sq), static_cast<size_t>(var),
                               static_cast<size_t>(add), static_cast<size_t>(sqrt), static_cast<size_t>(div)};
  std::string out = g.nodes[static_cast<size_t>(div)].outputs[0];
  std::string gamma, beta;
  if (const int mul = next_op(g, uses, out, "Mul"); mul >= 0) {
    const std::string w = other_input(g.nodes[static_cast<size_t>(mul)], out);
    if (is_channel_vector(g, w, c)) {
      gamma = w;
      nodes.push_back(static_cast<size_t>(mul));
      out = g.nodes[static_cast<size_t>(mul)].outputs[0];
      if (const int badd = next_op(g, uses, out, "Add"); badd >= 0) {
        const std::string b = other_input(g.nodes[static_cast<size_t>(badd)], out);
        if (is_channel_vector(g, b, c)) {
          beta = b;
          nodes.push_back(static_cast<size_t>(badd));
          out = g.nodes[static_cast<size_t>(badd)].outputs[0];
        }
      }
    }
  }
  std::vector<const Node*> originals;
  for (size_t k : nodes) originals.push_back(&g.nodes[k]);
  if (!ctx.allows(originals, "", "LayerNormalization", kLayerNormOpset)) return false;
  if (gamma.empty()) {
    gamma = unique_name(g, mean.name + "_ln_scale");
    g.initializers[gamma] = Tensor::from_vector(Shape{c}, std::vector<float>(static_cast<size_t>(c), 1.f));
  }
  Node ln;
  ln.name = unique_name(g, mean.name + "_layer_norm");
  ln.op_type = "LayerNormalization";
  ln.opset = kLayerNormOpset;
  ln.inputs = {x, gamma};
  if (!beta.empty()) ln.inputs.push_back(beta);
  ln.outputs = {out};
  Attribute axis;
  axis.type = Attribute::Type::i;
  axis.i = -1;
  ln.attributes["axis"] = axis;
  Attribute epsilon;
  epsilon.type = Attribute::Type::f;
  epsilon.f = *eps;
  ln.attributes["epsilon"] = epsilon;
  size_t last = 0;
  for (size_t k : nodes) last = std::max(last, k);
  for (size_t k : nodes) mark_removed(g, k);
  g.nodes[last] = std::move(ln);
  return true;
}

}  // namespace

Result<int> fuse_layer_norm(Graph& g, const PassContext& ctx) {
  return rewrite_each(g, [&ctx](Graph& g, const GraphUses& uses, size_t i) { return try_fuse(g, uses, i, ctx); });
}

}  // namespace orchard::graph::passes
