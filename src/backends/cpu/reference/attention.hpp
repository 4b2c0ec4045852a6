// The geometry of com.orchard FusedAttention (docs/fused_ops.md), shared by the reference kernel and the
// optimized variant: X = scale * MatMul(Q, Kt) + mask (broadcast), Y = MatMul(Softmax(X), V), exactly as the
// unfused ops broadcast (the mask may broadcast the scores up, V may broadcast X's batch dims).
#pragma once

#include <vector>

#include "orchard/status.hpp"
#include "runtime/op_kernel.hpp"
#include "orchard/tensor.hpp"

namespace orchard::cpu::reference {

// How FusedAttention's operands lie in memory (the `layout` attribute, docs/fused_ops.md).
enum class AttentionLayout {
  split_heads,  // Q [..., Sq, D], Kt [..., D, Sk], V [..., Sk, Dv]; output [..., Sq, Dv]
  bshd,         // Q [B, Sq, H, D], K [B, Sk, H, D] (not transposed), V [B, Sk, H, Dv]; output [B, Sq, H, Dv]
  bs3hd,        // one input QKV [B, S, 3·H·D]: Q, K and V side by side in each row (num_heads H); output [B, S, H, D]
};

// The geometry of one FusedAttention: the scores X [batch..., Sq, Sk] and every operand's element strides.
// Operands are read in place: per output batch an offset, within it a row stride (columns contiguous), so both
// layouts run through the same loops.
struct AttentionPlan {
  Shape out;                      // the output's shape ([batch..., Sq, Dv]; bshd: [B, Sq, H, Dv])
  Shape batch;                    // the output's batch dims ([B, H] for bshd)
  int64_t Sq = 0, Sk = 0;         // rows and columns of X
  int64_t D = 0, Dv = 0;          // Q's columns, V's columns
  int64_t score_cols = 0;         // columns of MatMul(Q, Kt): Sk, or 1 when the mask broadcasts them to Sk
  int64_t batches = 0;            // product of the batch dims
  // Per batch dim (right-aligned; 0 where the operand broadcasts): each operand's element stride.
  std::vector<int64_t> q_bs, kt_bs, v_bs, out_bs, mask_bs;
  int64_t q_row = 0;              // Q's row stride, 0 when Q has one row that the mask broadcasts to Sq
  int64_t kt_d = 0, kt_j = 0;     // Kt's element (d, j) lies at d * kt_d + j * kt_j (kt_j 0: one broadcast column)
  int64_t v_row = 0;              // V's row stride
  int64_t out_row = 0;            // the output's row stride
  int64_t mask_row = 0, mask_col = 0;                   // the mask's row and column strides (0: broadcast)
  std::vector<int64_t> q_off, kt_off, v_off, out_off, mask_off;  // per output batch: offset of its matrices
};

// Returns the plan of Q, Kt (K for bshd), V and `mask` (null when absent) in `layout`, or invalid_argument naming
// the shapes that do not fit as the unfused Transposes / MatMul / Add / MatMul.
// bs3hd reads all three from `q` (kt and v are ignored) with `num_heads` heads.
Result<AttentionPlan> plan_attention(const Shape& q, const Shape& kt, const Shape& v, const Shape* mask,
                                     AttentionLayout layout = AttentionLayout::split_heads, int64_t num_heads = 0);


// The op's attributes: scale, whether it is also divided by sqrt(D) (D: Q's last dim at run time), and whether
// NaN probabilities become 0 (Where(IsNaN(P), 0, P)).
struct AttentionAttrs {
  float scale = 1;
  bool head_dim_scale = false;
  bool nan_to_zero = false;
  AttentionLayout layout = AttentionLayout::split_heads;
  int64_t num_heads = 0;  // bs3hd
};

// Reads the attributes of a FusedAttention node; invalid_argument for an unknown layout.
Result<AttentionAttrs> attention_attrs(const graph::Node& node);

// Reads the op's inputs into `in` (Q, Kt, V, mask; null when absent; for bs3hd Q, Kt and V are all the QKV input),
// each a float32 tensor, and plans it; invalid_argument naming a bad input or shape.
Result<AttentionPlan> attention_inputs(const runtime::OpContext& ctx, const AttentionAttrs& attrs,
                                       const Tensor* (&in)[4]);
// The factor applied to MatMul(Q, Kt) for plan `p`: scale, divided by sqrt(D) when head_dim_scale is set and D > 0.
float attention_scale(const AttentionAttrs& attrs, const AttentionPlan& p);

// The plain computation, one output row at a time: out (p.out) = softmax(scale * q kt + mask) v.
void attention_plain(const AttentionPlan& p, const float* q, const float* kt, const float* v, const float* mask,
                     const AttentionAttrs& attrs, float* out);

}  // namespace orchard::cpu::reference
