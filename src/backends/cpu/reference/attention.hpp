// The geometry of com.orchard FusedAttention (docs/fused_ops.md), shared by the reference kernel and the
// optimized variant: X = scale * MatMul(Q, Kt) + mask (broadcast), Y = MatMul(Softmax(X), V), exactly as the
// unfused ops broadcast (the mask may broadcast the scores up, V may broadcast X's batch dims).
#pragma once

#include <vector>

#include "orchard/status.hpp"
#include "runtime/op_kernel.hpp"
#include "orchard/tensor.hpp"

namespace orchard::cpu::reference {

struct AttentionPlan {
  Shape out;                      // [batch..., Sq, Dv]
  int64_t Sq = 0, Sk = 0;         // rows and columns of X
  int64_t D = 0, Dv = 0;          // Q's columns, V's columns
  int64_t score_cols = 0;         // columns of MatMul(Q, Kt): Sk, or 1 when the mask broadcasts them to Sk
  int64_t q_row_stride = 0;       // D, or 0 when Q has one row that the mask broadcasts to Sq
  int64_t batches = 0;            // product of out's batch dims
  std::vector<int64_t> q_off, kt_off, v_off, mask_off;  // per output batch: offset of its matrices
  int64_t mask_row = 0, mask_col = 0;                   // the mask's row and column strides (0: broadcast)
};

// Returns the plan of Q [..., Sq, D], Kt [..., D, Sk], V [..., Sk, Dv] (each of rank >= 2) and `mask` (null when
// absent), or invalid_argument naming the shapes that do not fit as the unfused MatMul / Add / MatMul.
Result<AttentionPlan> plan_attention(const Shape& q, const Shape& kt, const Shape& v, const Shape* mask);

// Reads the op's inputs into `in` (Q, Kt, V, mask; null when absent), each a float32 tensor, and plans it;
// invalid_argument naming a bad input or shape.
Result<AttentionPlan> attention_inputs(const runtime::OpContext& ctx, const Tensor* (&in)[4]);

// The op's attributes: scale, whether it is also divided by sqrt(D) (D: Q's last dim at run time), and whether
// NaN probabilities become 0 (Where(IsNaN(P), 0, P)).
struct AttentionAttrs {
  float scale = 1;
  bool head_dim_scale = false;
  bool nan_to_zero = false;
};

// Reads the attributes of a FusedAttention node.
AttentionAttrs attention_attrs(const graph::Node& node);
// The factor applied to MatMul(Q, Kt) for plan `p`: scale, divided by sqrt(D) when head_dim_scale is set and D > 0.
float attention_scale(const AttentionAttrs& attrs, const AttentionPlan& p);

// The plain computation, one output row at a time: out (p.out) = softmax(scale * q kt + mask) v.
void attention_plain(const AttentionPlan& p, const float* q, const float* kt, const float* v, const float* mask,
                     const AttentionAttrs& attrs, float* out);

}  // namespace orchard::cpu::reference
