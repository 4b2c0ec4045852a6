// Reshape → Gemm → Reshape → MatMul (+ Add of the bias): how PyTorch exports a linear layer on a [..., K] input
// (GPT-2's Conv1D): the input flattened to [M, K], a Gemm with a constant [N] bias, the product unflattened to
// [..., N]. MatMul takes the unflattened input as it is, so both Reshapes go, and fuse_conv_matmul can then fuse
// the bias, a residual Add and the activation that follow (they read the unflattened product, which the Gemm
// could not reach through its Reshape).
//
// Matched: Gemm without transposes, alpha 1 and beta 1, B [K, N], C absent or a float32 constant [N]; its A made
// by a Reshape of X [..., K] (any value [M, K] made from X [..., K] is X's rows in order); its product read only by
// a Reshape to X's leading dims and N. Declared shapes decide: an unknown dim that is not the same symbol on both
// sides leaves the pattern as it is.
#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

bool try_unflatten(Graph& g, const GraphUses& uses, size_t i, const PassContext& ctx) {
  const Node& gemm = g.nodes[i];
  if (!is_op(gemm, "Gemm") || gemm.num_inputs() < 2 || gemm.outputs.size() != 1) return false;
  if (gemm.attr_int("transA", 0) != 0 || gemm.attr_int("transB", 0) != 0 || gemm.attr_float("alpha", 1.0f) != 1.0f ||
      gemm.attr_float("beta", 1.0f) != 1.0f) {
    return false;
  }
  const std::string a = gemm.inputs[0], b = gemm.inputs[1], c = gemm.has_input(2) ? gemm.inputs[2] : "";
  const auto b_shape = static_shape(g, b);
  if (!b_shape || b_shape->size() != 2 || value_dtype(g, b) != DType::float32) return false;
  const int64_t K = (*b_shape)[0], N = (*b_shape)[1];
  if (!c.empty()) {
    const Tensor* bias = constant(g, c);
    if (!bias || bias->dtype() != DType::float32 || bias->rank() != 1 || bias->dim(0) != N) return false;
  }
  // A = Reshape(X [..., K]) as [M, K].
  const int in = uses.producer(a);
  if (in < 0 || !is_op(g.nodes[static_cast<size_t>(in)], "Reshape")) return false;
  const std::string x = g.nodes[static_cast<size_t>(in)].inputs[0];
  const auto x_shape = declared_shape(g, x), a_shape = declared_shape(g, a);
  if (!x_shape || x_shape->size() < 3 || !a_shape || a_shape->size() != 2) return false;
  if (!same_dim(x_shape->back(), Dim{K, {}}) || !same_dim((*a_shape)[1], Dim{K, {}})) return false;
  if (value_dtype(g, x) != DType::float32) return false;
  // The product read only by a Reshape to [X's leading dims..., N].
  const int out = uses.sole_consumer(gemm.outputs[0]);
  if (out < 0 || !is_op(g.nodes[static_cast<size_t>(out)], "Reshape")) return false;
  const Node& unflatten = g.nodes[static_cast<size_t>(out)];
  if (unflatten.outputs.size() != 1) return false;
  const std::string y = unflatten.outputs[0];
  const auto y_shape = declared_shape(g, y);
  if (!y_shape || y_shape->size() != x_shape->size() || !same_dim(y_shape->back(), Dim{N, {}})) return false;
  for (size_t k = 0; k + 1 < x_shape->size(); ++k) {
    if (!same_dim((*x_shape)[k], (*y_shape)[k])) return false;
  }
  if (!ctx.allows({&gemm, &unflatten}, "", "MatMul", 13) || (!c.empty() && !ctx.allows({&gemm}, "", "Add", 14))) {
    return false;
  }

  Node matmul;
  matmul.name = unique_name(g, gemm.name + "_matmul");
  matmul.op_type = "MatMul";
  matmul.opset = 13;
  matmul.inputs = {x, b};
  if (c.empty()) {
    matmul.outputs = {y};
  } else {
    // The product gets Y's declared type, for the fusions after this pass.
    const std::string product = unique_name(g, gemm.outputs[0] + "_unflattened");
    matmul.outputs = {product};
    auto it = g.value_info.find(y);
    ValueInfo info = it != g.value_info.end() ? it->second : ValueInfo{};
    if (it == g.value_info.end()) {
      info.dtype = DType::float32;
      info.has_shape = true;
      info.shape = *y_shape;
    }
    info.name = product;
    g.value_info[product] = std::move(info);
    Node add;
    add.name = unique_name(g, gemm.name + "_bias");
    add.op_type = "Add";
    add.opset = 14;
    add.inputs = {product, c};
    add.outputs = {y};
    g.nodes[static_cast<size_t>(out)] = std::move(add);
  }
  const bool flatten_dies = uses.count(a) == 1 && !uses.read_outside(a);
  g.nodes[i] = std::move(matmul);
  if (c.empty()) mark_removed(g, static_cast<size_t>(out));
  if (flatten_dies) mark_removed(g, static_cast<size_t>(in));
  return true;
}

}  // namespace

Result<int> unflatten_gemm(Graph& g, const PassContext& ctx) {
  return rewrite_each(g, [&ctx](Graph& g, const GraphUses& uses, size_t i) { return try_unflatten(g, uses, i, ctx); });
}

}  // namespace orchard::graph::passes
