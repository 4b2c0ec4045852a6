// com.orchard FusedAttention (docs/fused_ops.md): Y = MatMul(Softmax(scale * MatMul(Q, Kt) + mask), V), the
// softmax over the last axis, MatMul's batch broadcasting. Plain loops, one output row at a time, float32.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"
#include "backends/cpu/reference/attention.hpp"
#include "backends/cpu/reference/dense.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

Result<AttentionPlan> plan_attention(const Shape& q, const Shape& kt, const Shape& v, const Shape* mask) {
  if (q.rank() < 2 || kt.rank() < 2 || v.rank() < 2) {
    return invalid_argument("Q, Kt and V must have rank 2 or more, got ", q.to_string(), ", ", kt.to_string(), ", ",
                            v.to_string());
  }
  const Shape q_batch(q.dims().begin(), q.dims().end() - 2), kt_batch(kt.dims().begin(), kt.dims().end() - 2);
  const Shape v_batch(v.dims().begin(), v.dims().end() - 2);
  const int64_t D = q[q.rank() - 1], score_rows = q[q.rank() - 2], score_cols = kt[kt.rank() - 1];
  if (kt[kt.rank() - 2] != D) return invalid_argument("Q ", q.to_string(), " and Kt ", kt.to_string(), " do not multiply");
  ORCHARD_ASSIGN_OR_RETURN(Shape scores, broadcast_shapes({&q_batch, &kt_batch}));
  scores.push_back(score_rows);
  scores.push_back(score_cols);
  Shape x = scores;
  if (mask != nullptr) {
    auto bx = broadcast_shapes({&scores, mask});
    if (!bx.ok()) return invalid_argument("mask ", mask->to_string(), " does not broadcast with the scores ", scores.to_string());
    x = *bx;
  }
  const size_t r = x.rank();
  AttentionPlan p;
  p.Sq = x[r - 2];
  p.Sk = x[r - 1];
  p.D = D;
  p.Dv = v[v.rank() - 1];
  p.score_cols = score_cols;
  p.q_row_stride = score_rows == p.Sq ? D : 0;
  if (v[v.rank() - 2] != p.Sk) {
    return invalid_argument("softmax rows of ", p.Sk, " and V ", v.to_string(), " do not multiply");
  }
  const Shape x_batch(x.dims().begin(), x.dims().end() - 2);
  ORCHARD_ASSIGN_OR_RETURN(p.out, broadcast_shapes({&x_batch, &v_batch}));
  const Shape batch = p.out;
  p.batches = batch.numel();
  p.out.push_back(p.Sq);
  p.out.push_back(p.Dv);
  auto offsets = [&](const Shape& in_batch, int64_t mat, std::vector<int64_t>& offs) {
    for_each_offset(batch.dims(), broadcast_strides(in_batch, batch), [&](int64_t o) { offs.push_back(o * mat); });
  };
  offsets(q_batch, score_rows * D, p.q_off);
  offsets(kt_batch, D * score_cols, p.kt_off);
  offsets(v_batch, p.Sk * p.Dv, p.v_off);
  if (mask != nullptr) {
    // The mask's strides over [batch..., Sq, Sk] (0 on broadcast dims).
    Shape full = batch;
    full.push_back(p.Sq);
    full.push_back(p.Sk);
    const std::vector<int64_t> st = broadcast_strides(*mask, full);
    p.mask_row = st[st.size() - 2];
    p.mask_col = st[st.size() - 1];
    for_each_offset(batch.dims(), std::vector<int64_t>(st.begin(), st.end() - 2), [&](int64_t o) { p.mask_off.push_back(o); });
  }
  return p;
}

Result<AttentionPlan> attention_inputs(const OpContext& ctx, const Tensor* (&in)[4]) {
  const char* names[4] = {"Q", "Kt", "V", "mask"};
  for (size_t i = 0; i < 4; ++i) {
    in[i] = nullptr;
    if (i == 3 && !ctx.has_input(3)) break;
    ORCHARD_ASSIGN_OR_RETURN(in[i], ctx.input_tensor(i));
    if (in[i]->dtype() != DType::float32) return invalid_argument(names[i], " must be float32, got ", in[i]->description());
  }
  return plan_attention(in[0]->shape(), in[1]->shape(), in[2]->shape(), in[3] ? &in[3]->shape() : nullptr);
}

AttentionAttrs attention_attrs(const graph::Node& node) {
  AttentionAttrs a;
  a.scale = node.attr_float("scale", 1.0f);
  a.head_dim_scale = node.attr_int("head_dim_scale", 0) != 0;
  a.nan_to_zero = node.attr_int("nan_to_zero", 0) != 0;
  return a;
}

float attention_scale(const AttentionAttrs& attrs, const AttentionPlan& p) {
  if (!attrs.head_dim_scale || p.D <= 0) return attrs.scale;
  return static_cast<float>(static_cast<double>(attrs.scale) / std::sqrt(static_cast<double>(p.D)));
}

void attention_plain(const AttentionPlan& p, const float* q, const float* kt, const float* v, const float* mask,
                     const AttentionAttrs& attrs, float* out) {
  std::vector<float> row(static_cast<size_t>(p.Sk));
  const float scale = attention_scale(attrs, p);
  for (int64_t b = 0; b < p.batches; ++b) {
    const size_t bi = static_cast<size_t>(b);
    for (int64_t i = 0; i < p.Sq; ++i) {
      // Row i of X: scaled scores (their one column repeated when the mask broadcasts it), plus the mask.
      const float* qr = q + p.q_off[bi] + i * p.q_row_stride;
      for (int64_t j = 0; j < p.Sk; ++j) {
        const int64_t col = p.score_cols == 1 ? 0 : j;
        float acc = 0;
        for (int64_t d = 0; d < p.D; ++d) acc += qr[d] * kt[p.kt_off[bi] + d * p.score_cols + col];
        row[static_cast<size_t>(j)] = scale * acc;
        if (mask) row[static_cast<size_t>(j)] += mask[p.mask_off[bi] + i * p.mask_row + j * p.mask_col];
      }
      // Softmax of the row.
      float mx = -std::numeric_limits<float>::infinity();
      for (float s : row) mx = std::max(mx, s);
      float sum = 0;
      for (float& s : row) {
        s = std::exp(s - mx);
        sum += s;
      }
      for (float& s : row) s /= sum;
      if (attrs.nan_to_zero) {
        for (float& s : row) s = std::isnan(s) ? 0.0f : s;
      }
      // Row i of the output: the softmax row times V.
      float* o = out + (b * p.Sq + i) * p.Dv;
      for (int64_t c = 0; c < p.Dv; ++c) {
        float acc = 0;
        for (int64_t j = 0; j < p.Sk; ++j) acc += row[static_cast<size_t>(j)] * v[p.v_off[bi] + j * p.Dv + c];
        o[c] = acc;
      }
    }
  }
}

namespace {

class FusedAttentionRef final : public OpKernel {
 public:
  explicit FusedAttentionRef(const KernelCreateContext& ctx)
      : attrs_(attention_attrs(ctx.node)) {}

  Status run(OpContext& ctx) const override {
    const Tensor* in[4] = {};
    ORCHARD_ASSIGN_OR_RETURN(AttentionPlan p, attention_inputs(ctx, in));
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, p.out));
    attention_plain(p, in[0]->data<float>(), in[1]->data<float>(), in[2]->data<float>(),
                    in[3] ? in[3]->data<float>() : nullptr, attrs_, y.data<float>());
    return Status::OK();
  }

 private:
  AttentionAttrs attrs_;
};

constexpr KernelDef kKernels[] = {
    {"com.orchard", "FusedAttention", 1, 1, make<FusedAttentionRef>},
};

}  // namespace

std::span<const KernelDef> attention_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
