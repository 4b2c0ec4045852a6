// Activation builders: Relu, Sigmoid, Tanh, LeakyRelu, Elu, Softplus, HardSigmoid, HardSwish, Clip,
// Softmax. MIL requires every scalar parameter (ONNX defaults written out) in the dtype of x.
#include <limits>

#include "backends/coreml/op_builder.hpp"

namespace orchard::coreml {

namespace {

Status check_float_input(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc a, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(a.dtype)) return unsupported(node.op_type, " on ", dtype_name(a.dtype), " (MIL: fp16/fp32)");
  return Status::OK();
}

// Emits `mil_op`(x, extra params) for a float activation.
Status emit(const graph::Node& node, ConvertContext& ctx, const char* mil_op, Params extra = {}) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], ctx.float_type()));
  Params p{{"x", x.name}};
  p.insert(p.end(), extra.begin(), extra.end());
  ctx.bind(node.outputs[0], ctx.op(mil_op, p, ctx.float_type(), out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_simple(const graph::Node& node, ConvertContext& ctx) {
  const std::string& op = node.op_type;
  return emit(node, ctx, op == "Relu" ? "relu" : op == "Sigmoid" ? "sigmoid" : op == "Tanh" ? "tanh" : "softplus");
}

Status build_leaky_relu(const graph::Node& node, ConvertContext& ctx) {
  return emit(node, ctx, "leaky_relu", {{"alpha", float_value(node.attr_float("alpha", 0.01f), ctx.float_type())}});
}

Status build_elu(const graph::Node& node, ConvertContext& ctx) {
  return emit(node, ctx, "elu", {{"alpha", float_value(node.attr_float("alpha", 1.0f), ctx.float_type())}});
}

Status build_hard_sigmoid(const graph::Node& node, ConvertContext& ctx) {
  const mil::DataType t = ctx.float_type();
  return emit(node, ctx, "sigmoid_hard",
              {{"alpha", float_value(node.attr_float("alpha", 0.2f), t)}, {"beta", float_value(node.attr_float("beta", 0.5f), t)}});
}

// HardSwish(x) = x · HardSigmoid(x; 1/6, 1/2): MIL has no op for it.
Status build_hard_swish(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  Var hs = ctx.op("sigmoid_hard", {{"x", x.name}, {"alpha", float_value(1.0f / 6, t)}, {"beta", float_value(0.5f, t)}}, t, out.shape,
                  node.outputs[0] + "_gate");
  ctx.bind(node.outputs[0], ctx.op("mul", {{"x", x.name}, {"y", hs.name}}, t, out.shape, node.outputs[0]));
  return Status::OK();
}

// Returns Clip's (min, max): attributes before opset 11, optional constant inputs from 11.
Result<std::pair<float, float>> clip_bounds(const graph::Node& node, const graph::Graph& graph, float range) {
  float lo = -range, hi = range;
  if (node.opset < 11) return std::pair{node.attr_float("min", lo), node.attr_float("max", hi)};
  for (size_t i : {size_t{1}, size_t{2}}) {
    if (!node.has_input(i)) continue;
    const Tensor* t = find_constant(graph, node.inputs[i]);
    if (!t || t->numel() != 1 || t->dtype() != DType::float32) return unsupported("Clip bound ", i, " must be a float32 constant scalar");
    (i == 1 ? lo : hi) = t->data<float>()[0];
  }
  return std::pair{lo, hi};
}

float float_range(const ConvertOptions& o) { return o.precision == Precision::fp16 ? 65504.0f : std::numeric_limits<float>::max(); }

Status check_clip(const graph::Node& node, const graph::Graph& graph, const ConvertOptions& options) {
  ORCHARD_RETURN_IF_ERROR(check_float_input(node, graph, options));
  ORCHARD_ASSIGN_OR_RETURN(auto b, clip_bounds(node, graph, float_range(options)));
  if (!(b.first < b.second)) return unsupported("Clip needs min < max (MIL clip), got ", b.first, " and ", b.second);
  return Status::OK();
}

Status build_clip(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(auto b, clip_bounds(node, ctx.graph(), float_range(ctx.options())));
  const float range = float_range(ctx.options());
  const mil::DataType t = ctx.float_type();
  return emit(node, ctx, "clip", {{"alpha", float_value(std::max(b.first, -range), t)}, {"beta", float_value(std::min(b.second, range), t)}});
}

Status check_softmax(const graph::Node& node, const graph::Graph& graph, const ConvertOptions& options) {
  ORCHARD_RETURN_IF_ERROR(check_float_input(node, graph, options));
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc a, find_desc(graph, node.inputs[0]));
  const int64_t axis = node.attr_int("axis", node.opset < 13 ? 1 : -1);
  ORCHARD_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, axis, a.rank()));
  // Before opset 13 Softmax flattens from `axis`: the same as MIL's only when axis is the last one.
  if (node.opset < 13 && ax != static_cast<int64_t>(a.rank()) - 1) return unsupported("Softmax-", node.opset, " over a non-last axis flattens");
  return Status::OK();
}

Status build_softmax(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc a, ctx.desc(node.inputs[0]));
  ORCHARD_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, node.attr_int("axis", node.opset < 13 ? 1 : -1), a.rank()));
  return emit(node, ctx, "softmax", {{"axis", int_value(static_cast<int32_t>(ax))}});
}

constexpr OpBuilder kBuilders[] = {
    {"Relu", 6, kOpsetMax, -1, check_float_input, build_simple},
    {"Sigmoid", 6, kOpsetMax, -1, check_float_input, build_simple},
    {"Tanh", 6, kOpsetMax, -1, check_float_input, build_simple},
    {"Softplus", 1, kOpsetMax, -1, check_float_input, build_simple},
    {"LeakyRelu", 6, kOpsetMax, -1, check_float_input, build_leaky_relu},
    {"Elu", 6, kOpsetMax, -1, check_float_input, build_elu},
    {"HardSigmoid", 6, kOpsetMax, -1, check_float_input, build_hard_sigmoid},
    {"HardSwish", 14, kOpsetMax, -1, check_float_input, build_hard_swish},
    {"Clip", 6, kOpsetMax, 1, check_clip, build_clip},
    {"Softmax", 1, kOpsetMax, -1, check_softmax, build_softmax},
};

}  // namespace

std::span<const OpBuilder> activation_builders() { return kBuilders; }

}  // namespace orchard::coreml
