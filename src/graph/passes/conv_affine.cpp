// Conv followed by an inference BatchNormalization, or by Mul/Add with a constant per-channel tensor:
// folded into new Conv weights and bias (float32 constants only).
#include <cmath>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

// Returns the M per-channel values of constant `t` broadcast against a Conv output of rank `out_rank`
// (channel axis 1), or nullopt when `t` varies along another axis or would grow the output.
std::optional<std::vector<float>> per_channel(const Tensor* t, int64_t m, size_t out_rank) {
  if (!t || t->dtype() != DType::float32 || t->rank() > out_rank) return std::nullopt;
  const size_t lead = out_rank - t->rank();
  bool along_channel = false;
  for (size_t j = 0; j < t->rank(); ++j) {
    const int64_t d = t->dim(j);
    if (j + lead == 1 && d == m) along_channel = true;
    else if (d != 1) return std::nullopt;
  }
  const float* v = t->data<float>();
  std::vector<float> out(static_cast<size_t>(m));
  for (int64_t c = 0; c < m; ++c) out[static_cast<size_t>(c)] = along_channel ? v[c] : v[0];
  return out;
}

// A 1-D float32 constant of m elements.
std::optional<std::vector<float>> vector_constant(const Graph& g, const std::string& name, int64_t m) {
  const Tensor* t = constant(g, name);
  if (!t || t->dtype() != DType::float32 || t->rank() != 1 || t->dim(0) != m) return std::nullopt;
  return std::vector<float>(t->data<float>(), t->data<float>() + m);
}

// Rewrites Conv i to y = scale[m] * Conv(x) + shift[m] and to produce `out`; removes node `follower`.
void apply(Graph& g, size_t i, size_t follower, const std::vector<float>& scale, const std::vector<float>& shift) {
  Node& conv = g.nodes[i];
  const Tensor& w = *constant(g, conv.inputs[1]);
  const auto m = static_cast<int64_t>(scale.size());
  const int64_t per = w.numel() / m;
  Tensor nw = w.clone();
  float* pw = nw.data<float>();
  for (int64_t c = 0; c < m; ++c) {
    for (int64_t k = 0; k < per; ++k) pw[c * per + k] *= scale[static_cast<size_t>(c)];
  }
  std::vector<float> bias(static_cast<size_t>(m), 0.f);
  if (conv.has_input(2)) bias = *vector_constant(g, conv.inputs[2], m);
  for (size_t c = 0; c < bias.size(); ++c) bias[c] = bias[c] * scale[c] + shift[c];
  const std::string wname = unique_name(g, conv.inputs[1] + "_folded");
  g.initializers[wname] = std::move(nw);
  const std::string bname = unique_name(g, conv.name + "_bias_folded");
  g.initializers[bname] = Tensor::from_vector(Shape{m}, bias);
  conv.inputs.resize(3);
  conv.inputs[1] = wname;
  conv.inputs[2] = bname;
  g.value_info.erase(conv.outputs[0]);
  conv.outputs[0] = g.nodes[follower].outputs[0];
  mark_removed(g, follower);
}

bool try_fold(Graph& g, const GraphUses& uses, size_t i) {
  const Node& conv = g.nodes[i];
  if (!is_op(conv, "Conv") || conv.num_inputs() < 2 || conv.outputs.size() != 1) return false;
  const Tensor* w = constant(g, conv.inputs[1]);
  if (!w || w->dtype() != DType::float32 || w->rank() < 3) return false;
  const int64_t m = w->dim(0);
  if (m <= 0 || (conv.has_input(2) && !vector_constant(g, conv.inputs[2], m))) return false;
  const int f = uses.sole_consumer(conv.outputs[0]);
  if (f < 0) return false;
  const Node& next = g.nodes[static_cast<size_t>(f)];
  if (next.outputs.empty() || next.outputs[0].empty()) return false;
  std::vector<float> scale(static_cast<size_t>(m), 1.f), shift(static_cast<size_t>(m), 0.f);
  if (is_op(next, "BatchNormalization")) {
    // Inference form only: one output, training_mode off, inputs X, scale, B, mean, var.
    if (next.num_inputs() != 5 || next.inputs[0] != conv.outputs[0] || next.attr_int("training_mode", 0) != 0 ||
        next.attr_int("spatial", 1) != 1) {
      return false;
    }
    for (size_t k = 1; k < next.outputs.size(); ++k) {
      if (!next.outputs[k].empty()) return false;
    }
    auto gamma = vector_constant(g, next.inputs[1], m);
    auto beta = vector_constant(g, next.inputs[2], m);
    auto mean = vector_constant(g, next.inputs[3], m);
    auto var = vector_constant(g, next.inputs[4], m);
    if (!gamma || !beta || !mean || !var) return false;
    const float eps = next.attr_float("epsilon", 1e-5f);
    for (size_t c = 0; c < scale.size(); ++c) {
      scale[c] = (*gamma)[c] / std::sqrt((*var)[c] + eps);
      shift[c] = (*beta)[c] - (*mean)[c] * scale[c];
    }
  } else if ((is_op(next, "Mul") || is_op(next, "Add")) && next.num_inputs() == 2 && next.outputs.size() == 1) {
    const std::string& other = next.inputs[0] == conv.outputs[0] ? next.inputs[1] : next.inputs[0];
    auto c = per_channel(constant(g, other), m, w->rank());
    if (!c) return false;
    if (is_op(next, "Mul")) scale = *c;
    else shift = *c;
  } else {
    return false;
  }
  apply(g, i, static_cast<size_t>(f), scale, shift);
  return true;
}

}  // namespace

Result<int> fold_conv_affine(Graph& g, const PassContext& /*ctx*/) { return rewrite_each(g, try_fold); }

}  // namespace orchard::graph::passes
