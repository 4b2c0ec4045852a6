// Elementwise builders: binary arithmetic and comparisons (numpy broadcasting in both ONNX and MIL),
// logical ops, Where, unary math, Identity, Cast.
#include <cmath>

#include "backends/coreml/op_builder.hpp"

namespace orchard::coreml {

namespace {

bool overflowing_constant(const ConvertContext& ctx, const std::string& name) {
  const Tensor* t = ctx.constant(name);
  if (!t || t->dtype() != DType::float32) return false;
  for (int64_t i = 0; i < t->numel(); ++i) {
    const float v = t->data<float>()[i];
    if (std::isfinite(v) && std::fabs(v) > 65504.0f) return true;
  }
  return false;
}

const char* binary_mil_op(const std::string& op) {
  if (op == "Add") return "add";
  if (op == "Sub") return "sub";
  if (op == "Mul") return "mul";
  if (op == "Div") return "real_div";
  if (op == "Pow") return "pow";
  if (op == "Max") return "maximum";
  if (op == "Min") return "minimum";
  if (op == "Equal") return "equal";
  if (op == "Less") return "less";
  if (op == "Greater") return "greater";
  if (op == "LessOrEqual") return "less_equal";
  if (op == "GreaterOrEqual") return "greater_equal";
  if (op == "And") return "logical_and";
  if (op == "Or") return "logical_or";
  if (op == "Xor") return "logical_xor";
  return nullptr;
}

// Computes `node` in fp32 when an fp16 program meets a constant beyond fp16's range, then clips the
// result to ±65504 and casts it back: the island stays one op wide (research §7, FP16ComputePrecision).
Status build_arith(const graph::Node& node, ConvertContext& ctx, const char* mil_op, const std::vector<size_t>& data_inputs,
                   const std::vector<std::string>& names) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType natural = mil_type_for(out.dtype, ctx.options().precision);
  bool island = false;
  if (natural == mil::FLOAT16) {
    for (size_t i : data_inputs) island = island || overflowing_constant(ctx, node.inputs[i]);
  }
  const mil::DataType t = island ? mil::FLOAT32 : natural;
  Params params;
  for (size_t k = 0; k < data_inputs.size(); ++k) {
    ORCHARD_ASSIGN_OR_RETURN(Var v, ctx.input(node.inputs[data_inputs[k]], t));
    params.emplace_back(names[k], v.name);
  }
  if (node.op_type == "Where") {
    ORCHARD_ASSIGN_OR_RETURN(Var c, ctx.input(node.inputs[0], mil::BOOL));
    params.insert(params.begin(), {"cond", c.name});
  }
  Var r = ctx.op(mil_op, params, t, out.shape, node.outputs[0]);
  if (island) {
    r = ctx.op("clip", {{"x", r.name}, {"alpha", float_value(-65504.0f, mil::FLOAT32)}, {"beta", float_value(65504.0f, mil::FLOAT32)}},
               mil::FLOAT32, out.shape, node.outputs[0] + "_clipped");
    r = ctx.cast(r, mil::FLOAT16);
  }
  ctx.bind(node.outputs[0], r);
  return Status::OK();
}

Status check_binary(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  if (node.num_inputs() != 2) return unsupported(node.op_type, " with ", node.num_inputs(), " inputs (only 2 are converted)");
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc a, find_desc(graph, node.inputs[0]));
  if (node.op_type == "Div" && !dtype_is_float(a.dtype)) return unsupported("integer Div truncates in ONNX but floors in MIL");
  if (node.op_type == "Pow") {
    ORCHARD_ASSIGN_OR_RETURN(TensorDesc b, find_desc(graph, node.inputs[1]));
    if (!dtype_is_float(a.dtype) || !dtype_is_float(b.dtype)) return unsupported("Pow is converted for float operands only");
  }
  return Status::OK();
}

Status build_binary(const graph::Node& node, ConvertContext& ctx) {
  const char* mil_op = binary_mil_op(node.op_type);
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  if (out.dtype != DType::boolean || node.op_type == "And" || node.op_type == "Or" || node.op_type == "Xor") {
    return build_arith(node, ctx, mil_op, {0, 1}, {"x", "y"});
  }
  // Comparisons: both operands in the natural type of the first.
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc a, ctx.desc(node.inputs[0]));
  const mil::DataType t = mil_type_for(a.dtype, ctx.options().precision);
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(Var y, ctx.input(node.inputs[1], t));
  ctx.bind(node.outputs[0], ctx.op(mil_op, {{"x", x.name}, {"y", y.name}}, mil::BOOL, out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_where(const graph::Node& node, ConvertContext& ctx) {
  return build_arith(node, ctx, "select", {1, 2}, {"a", "b"});
}

Status build_not(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], mil::BOOL));
  ctx.bind(node.outputs[0], ctx.op("logical_not", {{"x", x.name}}, mil::BOOL, out.shape, node.outputs[0]));
  return Status::OK();
}

const char* unary_mil_op(const std::string& op) {
  if (op == "Sqrt") return "sqrt";
  if (op == "Exp") return "exp";
  if (op == "Erf") return "erf";
  if (op == "Abs") return "abs";
  if (op == "Floor") return "floor";
  if (op == "Ceil") return "ceil";
  if (op == "Sin") return "sin";
  if (op == "Cos") return "cos";
  if (op == "Log") return "log";
  return nullptr;
}

Status check_float_unary(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc a, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(a.dtype)) return unsupported(node.op_type, " on ", dtype_name(a.dtype), " (MIL: fp16/fp32)");
  return Status::OK();
}

Status build_unary(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  Params p{{"x", x.name}};
  if (node.op_type == "Log") p.emplace_back("epsilon", float_value(0.0f, t));  // MIL adds it; ONNX has none
  ctx.bind(node.outputs[0], ctx.op(unary_mil_op(node.op_type), p, t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_neg(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = mil_type_for(out.dtype, ctx.options().precision);
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  const mil::Value minus_one = t == mil::INT32 ? int_value(-1) : float_value(-1.0f, t);
  ctx.bind(node.outputs[0], ctx.op("mul", {{"x", x.name}, {"y", minus_one}}, t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_isnan(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], ctx.float_type()));
  ctx.bind(node.outputs[0], ctx.op("not_equal", {{"x", x.name}, {"y", x.name}}, mil::BOOL, out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_identity(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0]));
  ctx.bind(node.outputs[0], x);  // no op: the output is the same var
  return Status::OK();
}

Status check_cast(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc a, find_desc(graph, node.inputs[0]));
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc b, find_desc(graph, node.outputs[0]));
  // Float → integer rounding is not specified by the MIL documentation; such casts stay on the CPU.
  if (dtype_is_float(a.dtype) && !dtype_is_float(b.dtype)) return unsupported("Cast float → ", dtype_name(b.dtype), " (MIL rounding unspecified)");
  return Status::OK();
}

Status build_cast(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0]));
  ctx.bind(node.outputs[0], ctx.cast(x, mil_type_for(out.dtype, ctx.options().precision)));
  return Status::OK();
}

constexpr OpBuilder kBuilders[] = {
    {"Add", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Sub", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Mul", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Div", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Pow", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Max", 8, kOpsetMax, -1, check_binary, build_binary},
    {"Min", 8, kOpsetMax, -1, check_binary, build_binary},
    {"Equal", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Less", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Greater", 7, kOpsetMax, -1, check_binary, build_binary},
    {"LessOrEqual", 12, kOpsetMax, -1, check_binary, build_binary},
    {"GreaterOrEqual", 12, kOpsetMax, -1, check_binary, build_binary},
    {"And", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Or", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Xor", 7, kOpsetMax, -1, check_binary, build_binary},
    {"Not", 1, kOpsetMax, -1, nullptr, build_not},
    {"Where", 9, kOpsetMax, -1, nullptr, build_where},
    {"Sqrt", 6, kOpsetMax, -1, check_float_unary, build_unary},
    {"Exp", 6, kOpsetMax, -1, check_float_unary, build_unary},
    {"Log", 6, kOpsetMax, -1, check_float_unary, build_unary},
    {"Erf", 9, kOpsetMax, -1, check_float_unary, build_unary},
    {"Abs", 6, kOpsetMax, -1, check_float_unary, build_unary},
    {"Floor", 6, kOpsetMax, -1, check_float_unary, build_unary},
    {"Ceil", 6, kOpsetMax, -1, check_float_unary, build_unary},
    {"Sin", 7, kOpsetMax, -1, check_float_unary, build_unary},
    {"Cos", 7, kOpsetMax, -1, check_float_unary, build_unary},
    {"Neg", 6, kOpsetMax, -1, nullptr, build_neg},
    {"IsNaN", 9, kOpsetMax, -1, check_float_unary, build_isnan},
    {"Identity", 1, kOpsetMax, -1, nullptr, build_identity},
    {"Cast", 6, kOpsetMax, -1, check_cast, build_cast},
};

}  // namespace

std::span<const OpBuilder> elementwise_builders() { return kBuilders; }

}  // namespace orchard::coreml
