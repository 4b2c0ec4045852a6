// Graph passes of OptimizationLevel::extended: pure rewrites of the main graph (no kernel runs here;
// constant folding, which executes kernels, stays in src/runtime/graph_optimizer.cpp).
// Layer: depends on graph and core only. The runtime tells a pass which fused ops the session's backends
// take through PassContext, so this layer never sees a backend.
//
// Every pass keeps the graph's contract: graph outputs keep their names, a value still read by another
// node, a graph output or a subgraph (implicit inputs) is never removed, and it only fuses through
// intermediate values that have a single consumer and are not graph outputs.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/graph.hpp"
#include "orchard/status.hpp"

namespace orchard::graph::passes {

// The domain of Orchard's own fused ops (docs/fused_ops.md).
inline constexpr std::string_view kOrchardDomain = "com.orchard";

struct PassContext {
  // Returns true when op (domain, op_type, opset) may replace `original`: every backend of the session's
  // chain that takes `original`'s op also takes the new one. Null: every replacement is allowed (tests).
  std::function<bool(const Node& original, std::string_view domain, std::string_view op_type, int opset)> may_replace;
  // Returns true when the backend that would run `node` (the first of the chain taking its op) wants channels-last
  // convolutions. Null: none does.
  std::function<bool(const Node& node)> channels_last;
  // Below this many multiply-adds per image over the convolutions channels_last would rewrite, to_channels_last
  // leaves the graph in NCHW (Backend::channels_last_min_macs; 0: always rewrite).
  int64_t channels_last_min_macs = 0;

  // Returns true when `op_type` of `domain` at `opset` may replace every node of `originals`.
  bool allows(const std::vector<const Node*>& originals, std::string_view domain, std::string_view op_type,
              int opset) const;
};

// Each pass returns how many rewrites it made (a fused pattern, an eliminated node, a folded constant).
using PassFn = Result<int> (*)(Graph&, const PassContext&);

// Shape of a value whose dims are statically known, Gather/Slice of such dims → int64 initializers.
Result<int> fold_shapes(Graph& g, const PassContext& ctx);
// Identity, Reshape to the input's own shape, Transpose pairs that cancel (or merge into one), Dropout
// in inference (opset ≥ 12 with training_mode absent) → removed.
Result<int> eliminate_no_ops(Graph& g, const PassContext& ctx);
// Reshape [..., K] → [M, K], Gemm with a constant [N] bias, Reshape back to [..., N] → MatMul + Add (the bias).
Result<int> unflatten_gemm(Graph& g, const PassContext& ctx);
// BatchNormalization (inference) after a Conv, and Mul/Add by constant per-channel tensors after a
// Conv → folded into the Conv's weights and bias.
Result<int> fold_conv_affine(Graph& g, const PassContext& ctx);
// The ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div(/Mul/Add) chain over the last axis → LayerNormalization.
Result<int> fuse_layer_norm(Graph& g, const PassContext& ctx);
// The erf and tanh GELU formulas → com.orchard Gelu.
Result<int> fuse_gelu(Graph& g, const PassContext& ctx);
// MatMul(Softmax(scale · MatMul(Q, Kt) (+ mask)), V) → com.orchard FusedAttention.
Result<int> fuse_attention(Graph& g, const PassContext& ctx);
// Conv / MatMul (+ constant bias) (+ residual Add) (+ activation) → com.orchard FusedConv / FusedMatMul.
Result<int> fuse_conv_matmul(Graph& g, const PassContext& ctx);
// 2-D Conv / FusedConv whose backend wants channels last → FusedConv with layout nhwc between Transposes, the
// weights transposed once; Transposes back and forth between two such convolutions cancel.
Result<int> to_channels_last(Graph& g, const PassContext& ctx);

// One pass of the extended level, by name (for stats and `orchard inspect`).
struct NamedPass {
  const char* name;
  PassFn fn;
};
// The passes after shape folding, in the order the runtime runs them.
const std::vector<NamedPass>& rewrite_passes();

}  // namespace orchard::graph::passes
