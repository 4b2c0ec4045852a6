// MatMul → matmul; Gemm → linear (constant B: weight [N, K] with alpha folded in, bias = beta·C) or
// matmul + mul + add otherwise.
#include "backends/coreml/op_builder.hpp"

namespace orchard::coreml {

namespace {

Status check_matmul(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  for (size_t i = 0; i < 2; ++i) {
    ORCHARD_ASSIGN_OR_RETURN(TensorDesc d, find_desc(graph, node.inputs[i]));
    if (!dtype_is_float(d.dtype)) return unsupported("MatMul on ", dtype_name(d.dtype), " is not converted");
    if (d.rank() < 2) return unsupported("MatMul with a rank-1 operand is not converted");
  }
  return Status::OK();
}

Status build_matmul(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(Var y, ctx.input(node.inputs[1], t));
  ctx.bind(node.outputs[0], ctx.op("matmul", {{"x", x.name}, {"y", y.name}, {"transpose_x", bool_value(false)}, {"transpose_y", bool_value(false)}},
                                   t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status check_gemm(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (!node.has_input(i)) continue;
    ORCHARD_ASSIGN_OR_RETURN(TensorDesc d, find_desc(graph, node.inputs[i]));
    if (!dtype_is_float(d.dtype)) return unsupported("Gemm on ", dtype_name(d.dtype), " is not converted");
  }
  return Status::OK();
}

// Returns beta·C as a [N] vector when C broadcasts along rows only (scalar, [N], [1, N]), else nothing.
std::optional<std::vector<float>> row_bias(const Tensor* c, int64_t n, float beta) {
  if (!c || c->dtype() != DType::float32) return std::nullopt;
  const bool scalar = c->numel() == 1;
  const bool row = c->numel() == n && (c->rank() == 1 || (c->rank() == 2 && c->dim(0) == 1));
  if (!scalar && !row) return std::nullopt;
  std::vector<float> b(n);
  for (int64_t j = 0; j < n; ++j) b[j] = beta * c->data<float>()[scalar ? 0 : j];
  return b;
}

Status build_gemm(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  const bool trans_a = node.attr_int("transA", 0) != 0, trans_b = node.attr_int("transB", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
  const int64_t n = out.shape[1];
  ORCHARD_ASSIGN_OR_RETURN(Var a, ctx.input(node.inputs[0], t));
  if (trans_a) {
    a = ctx.op("transpose", {{"x", a.name}, {"perm", ints_value({1, 0})}}, t, {a.shape[1], a.shape[0]}, node.outputs[0] + "_at");
  }
  const Tensor* b = ctx.constant(node.inputs[1]);
  const Tensor* c = node.has_input(2) ? ctx.constant(node.inputs[2]) : nullptr;
  std::optional<std::vector<float>> bias = node.has_input(2) ? row_bias(c, n, beta) : std::vector<float>(n, 0.0f);
  if (b && b->dtype() == DType::float32 && bias) {
    const int64_t k = trans_b ? b->dim(1) : b->dim(0);
    Tensor w = Tensor::empty(DType::float32, Shape{n, k});
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < k; ++j) w.data<float>()[i * k + j] = alpha * b->data<float>()[trans_b ? i * k + j : j * n + i];
    }
    Var wv = ctx.add_const(w, t, node.inputs[1] + "_weight");
    Var bv = ctx.add_const(Tensor::from_vector<float>(Shape{n}, *bias), t, node.outputs[0] + "_bias");
    ctx.bind(node.outputs[0], ctx.op("linear", {{"x", a.name}, {"weight", wv.name}, {"bias", bv.name}}, t, out.shape, node.outputs[0]));
    return Status::OK();
  }
  ORCHARD_ASSIGN_OR_RETURN(Var bv, ctx.input(node.inputs[1], t));
  Var r = ctx.op("matmul", {{"x", a.name}, {"y", bv.name}, {"transpose_x", bool_value(false)}, {"transpose_y", bool_value(trans_b)}}, t,
                 out.shape, node.outputs[0] + "_mm");
  if (alpha != 1.0f) r = ctx.op("mul", {{"x", r.name}, {"y", float_value(alpha, t)}}, t, out.shape, node.outputs[0] + "_alpha");
  if (node.has_input(2)) {
    ORCHARD_ASSIGN_OR_RETURN(Var cv, ctx.input(node.inputs[2], t));
    if (beta != 1.0f) cv = ctx.op("mul", {{"x", cv.name}, {"y", float_value(beta, t)}}, t, cv.shape, node.outputs[0] + "_beta");
    r = ctx.op("add", {{"x", r.name}, {"y", cv.name}}, t, out.shape, node.outputs[0]);
  }
  ctx.bind(node.outputs[0], r);
  return Status::OK();
}

constexpr OpBuilder kBuilders[] = {
    {"MatMul", 1, kOpsetMax, -1, check_matmul, build_matmul},
    {"Gemm", 7, kOpsetMax, -1, check_gemm, build_gemm},
};

}  // namespace

std::span<const OpBuilder> linear_builders() { return kBuilders; }

}  // namespace orchard::coreml
