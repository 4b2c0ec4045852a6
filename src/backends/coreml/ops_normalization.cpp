// BatchNormalization, LayerNormalization, InstanceNormalization and the reductions (ReduceMean/Sum/
// Max/Min/Prod/L1/L2/SumSquare, ArgMax/ArgMin). fp16 programs raise epsilons below kMinEpsilonFp16.
#include <algorithm>

#include "backends/coreml/op_builder.hpp"

namespace orchard::coreml {

namespace {

// Epsilons below this vanish in fp16 (Apple's distilbert port raises 1e-12 to 1e-7 for the Neural Engine).
constexpr float kMinEpsilonFp16 = 1e-7f;

mil::Value epsilon_value(const graph::Node& node, ConvertContext& ctx, float fallback) {
  float eps = node.attr_float("epsilon", fallback);
  if (ctx.options().precision == Precision::fp16) eps = std::max(eps, kMinEpsilonFp16);
  return float_value(eps, ctx.float_type());
}

Status check_batch_norm(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(x.dtype) || x.rank() < 3) return unsupported("BatchNormalization on ", dtype_name(x.dtype), " rank ", x.rank());
  if (node.attr_int("training_mode", 0) != 0 || node.outputs.size() > 1) return unsupported("BatchNormalization in training mode");
  for (size_t i = 1; i < 5; ++i) ORCHARD_RETURN_IF_ERROR(require_const(node, graph, i, "scale, bias, mean and variance"));
  return Status::OK();
}

Status build_batch_norm(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(Var gamma, ctx.input(node.inputs[1], t));
  ORCHARD_ASSIGN_OR_RETURN(Var beta, ctx.input(node.inputs[2], t));
  ORCHARD_ASSIGN_OR_RETURN(Var mean, ctx.input(node.inputs[3], t));
  ORCHARD_ASSIGN_OR_RETURN(Var var, ctx.input(node.inputs[4], t));
  ctx.bind(node.outputs[0], ctx.op("batch_norm",
                                   {{"x", x.name}, {"mean", mean.name}, {"variance", var.name}, {"gamma", gamma.name}, {"beta", beta.name},
                                    {"epsilon", epsilon_value(node, ctx, 1e-5f)}},
                                   t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status check_layer_norm(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(x.dtype)) return unsupported("LayerNormalization on ", dtype_name(x.dtype));
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (!node.outputs[i].empty()) return unsupported("LayerNormalization's Mean/InvStdDev outputs are not converted");
  }
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), x.rank()));
  const std::vector<int64_t> normalized(x.shape.begin() + axis, x.shape.end());
  for (size_t i = 1; i < 3; ++i) {
    if (!node.has_input(i)) continue;
    ORCHARD_RETURN_IF_ERROR(require_const(node, graph, i, "scale and bias"));
    if (find_constant(graph, node.inputs[i])->shape().dims() != normalized) return unsupported("LayerNormalization scale/bias not of the normalized shape");
  }
  return Status::OK();
}

Status build_layer_norm(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), out.rank()));
  std::vector<int32_t> axes;
  for (size_t i = axis; i < out.rank(); ++i) axes.push_back(static_cast<int32_t>(i));
  Params p{{"x", x.name}, {"axes", ints_value(axes)}};
  ORCHARD_ASSIGN_OR_RETURN(Var gamma, ctx.input(node.inputs[1], t));
  p.emplace_back("gamma", gamma.name);
  if (node.has_input(2)) {
    ORCHARD_ASSIGN_OR_RETURN(Var beta, ctx.input(node.inputs[2], t));
    p.emplace_back("beta", beta.name);
  }
  p.emplace_back("epsilon", epsilon_value(node, ctx, 1e-5f));
  ctx.bind(node.outputs[0], ctx.op("layer_norm", p, t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status check_instance_norm(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(x.dtype) || x.rank() < 3 || x.rank() > 4) return unsupported("InstanceNormalization on rank ", x.rank(), " (MIL: 3–4)");
  for (size_t i = 1; i < 3; ++i) ORCHARD_RETURN_IF_ERROR(require_const(node, graph, i, "scale and bias"));
  return Status::OK();
}

Status build_instance_norm(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(Var gamma, ctx.input(node.inputs[1], t));
  ORCHARD_ASSIGN_OR_RETURN(Var beta, ctx.input(node.inputs[2], t));
  ctx.bind(node.outputs[0], ctx.op("instance_norm", {{"x", x.name}, {"gamma", gamma.name}, {"beta", beta.name}, {"epsilon", epsilon_value(node, ctx, 1e-5f)}},
                                   t, out.shape, node.outputs[0]));
  return Status::OK();
}

const char* reduce_mil_op(const std::string& op) {
  if (op == "ReduceMean") return "reduce_mean";
  if (op == "ReduceSum") return "reduce_sum";
  if (op == "ReduceMax") return "reduce_max";
  if (op == "ReduceMin") return "reduce_min";
  if (op == "ReduceProd") return "reduce_prod";
  if (op == "ReduceL1") return "reduce_l1_norm";
  if (op == "ReduceL2") return "reduce_l2_norm";
  if (op == "ReduceSumSquare") return "reduce_sum_square";
  return nullptr;
}

// Returns the reduction's axes (attribute, or input 1 for ReduceSum-13), normalized; empty = all.
Result<std::vector<int64_t>> reduce_axes(const graph::Node& node, const graph::Graph& graph, size_t rank) {
  std::vector<int64_t> axes = node.attr_ints("axes");
  if (node.op_type == "ReduceSum" && node.opset >= 13 && node.has_input(1)) {
    ORCHARD_ASSIGN_OR_RETURN(axes, const_ints(node, graph, 1));
  }
  for (auto& a : axes) {
    ORCHARD_ASSIGN_OR_RETURN(a, normalize_axis(node, a, rank));
  }
  if (axes.empty()) {
    for (size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  return axes;
}

Status check_reduce(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(x.dtype)) return unsupported(node.op_type, " on ", dtype_name(x.dtype));
  if (node.attr_int("noop_with_empty_axes", 0) != 0) return unsupported("noop_with_empty_axes");
  return reduce_axes(node, graph, x.rank()).status();
}

Status build_reduce(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc in, ctx.desc(node.inputs[0]));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axes, reduce_axes(node, ctx.graph(), in.rank()));
  ctx.bind(node.outputs[0], ctx.op(reduce_mil_op(node.op_type),
                                   {{"x", x.name}, {"axes", ints_value(to_int32(axes))}, {"keep_dims", bool_value(node.attr_int("keepdims", 1) != 0)}},
                                   t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status check_arg(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(x.dtype)) return unsupported(node.op_type, " on ", dtype_name(x.dtype));
  if (node.attr_int("select_last_index", 0) != 0) return unsupported("select_last_index 1");
  return Status::OK();
}

Status build_arg(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc in, ctx.desc(node.inputs[0]));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], ctx.float_type()));
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), in.rank()));
  const char* op = node.op_type == "ArgMax" ? "reduce_argmax" : "reduce_argmin";
  ctx.bind(node.outputs[0], ctx.op(op, {{"x", x.name}, {"axis", int_value(static_cast<int32_t>(axis))}, {"keep_dims", bool_value(node.attr_int("keepdims", 1) != 0)}},
                                   mil::INT32, out.shape, node.outputs[0]));
  return Status::OK();
}

constexpr OpBuilder kBuilders[] = {
    {"BatchNormalization", 9, kOpsetMax, -1, check_batch_norm, build_batch_norm},
    {"LayerNormalization", 17, kOpsetMax, -1, check_layer_norm, build_layer_norm},
    {"InstanceNormalization", 6, kOpsetMax, -1, check_instance_norm, build_instance_norm},
    {"ReduceMean", 1, kOpsetMax, -1, check_reduce, build_reduce},
    {"ReduceSum", 1, kOpsetMax, 1, check_reduce, build_reduce},
    {"ReduceMax", 1, kOpsetMax, -1, check_reduce, build_reduce},
    {"ReduceMin", 1, kOpsetMax, -1, check_reduce, build_reduce},
    {"ReduceProd", 1, kOpsetMax, -1, check_reduce, build_reduce},
    {"ReduceL1", 1, kOpsetMax, -1, check_reduce, build_reduce},
    {"ReduceL2", 1, kOpsetMax, -1, check_reduce, build_reduce},
    {"ReduceSumSquare", 1, kOpsetMax, -1, check_reduce, build_reduce},
    {"ArgMax", 1, kOpsetMax, -1, check_arg, build_arg},
    {"ArgMin", 1, kOpsetMax, -1, check_arg, build_arg},
};

}  // namespace

std::span<const OpBuilder> normalization_builders() { return kBuilders; }

}  // namespace orchard::coreml
