// com.orchard FusedAttention (docs/fused_ops.md): Y = MatMul(Softmax(scale * MatMul(Q, Kt) + mask), V), the
// softmax over the last axis, MatMul's batch broadcasting; operands read in place in either layout (split heads,
// or [B, S, H, D]). Plain loops, one output row at a time, float32.
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

namespace {

// An operand as the math sees it (Q [..., Sq, D], Kt [..., D, Sk], V [..., Sk, Dv]) and where each element lies.
struct OperandView {
  Shape shape;
  std::vector<int64_t> strides;
  int64_t base = 0;  // offset of element 0
};

OperandView contiguous_view(const Shape& s) {
  OperandView v{s, std::vector<int64_t>(s.rank())};
  int64_t st = 1;
  for (size_t d = s.rank(); d-- > 0;) {
    v.strides[d] = st;
    st *= s[d];
  }
  return v;
}

// The view of contiguous `s` with its dims reordered by `perm` (view dim k is dim perm[k] of s).
OperandView permuted_view(const Shape& s, std::initializer_list<size_t> perm) {
  const OperandView c = contiguous_view(s);
  OperandView v;
  for (size_t d : perm) {
    v.shape.push_back(s[d]);
    v.strides.push_back(c.strides[d]);
  }
  return v;
}

// Part `part` (0: Q, 1: K, 2: V) of QKV [B, S, 3·H·D] as the math reads it: [B, H, S, D] (K: [B, H, D, S]).
OperandView packed_view(const Shape& qkv, int64_t heads, int part) {
  const int64_t B = qkv[0], S = qkv[1], E = qkv[2] / 3, D = E / heads;
  OperandView v;
  v.base = part * E;
  if (part == 1) {
    v.shape = Shape{B, heads, D, S};
    v.strides = {S * 3 * E, D, 1, 3 * E};
  } else {
    v.shape = Shape{B, heads, S, D};
    v.strides = {S * 3 * E, D, 3 * E, 1};
  }
  return v;
}

// The view's stride per dim of `batch` (right-aligned over the view's leading dims; 0 where it repeats).
std::vector<int64_t> batch_strides_of(const OperandView& v, const Shape& batch) {
  const size_t r = v.shape.rank() - 2, br = batch.rank();
  std::vector<int64_t> st(br, 0);
  for (size_t d = br - std::min(r, br); d < br; ++d) {
    const size_t od = d - (br - r);
    st[d] = v.shape[od] == 1 ? 0 : v.strides[od];
  }
  return st;
}

}  // namespace

Result<AttentionPlan> plan_attention(const Shape& q_in, const Shape& kt_in, const Shape& v_in, const Shape* mask,
                                     AttentionLayout layout, int64_t num_heads) {
  const bool packed = layout == AttentionLayout::bs3hd;
  const bool bshd = layout == AttentionLayout::bshd || packed;
  if (packed && (q_in.rank() != 3 || num_heads < 1 || q_in[2] % (3 * num_heads) != 0)) {
    return invalid_argument("layout bs3hd takes QKV [B, S, 3·H·D] with H = num_heads (", num_heads, "), got ",
                            q_in.to_string());
  }
  if (layout == AttentionLayout::bshd && (q_in.rank() != 4 || kt_in.rank() != 4 || v_in.rank() != 4)) {
    return invalid_argument("layout bshd takes Q, K and V of rank 4, got ", q_in.to_string(), ", ", kt_in.to_string(),
                            ", ", v_in.to_string());
  }
  if (q_in.rank() < 2 || kt_in.rank() < 2 || v_in.rank() < 2) {
    return invalid_argument("Q, Kt and V must have rank 2 or more, got ", q_in.to_string(), ", ", kt_in.to_string(),
                            ", ", v_in.to_string());
  }
  // bshd reads [B, S, H, D] as the [B, H, S, D] (Kt: [B, H, D, S]) the math multiplies.
  const OperandView qv = packed ? packed_view(q_in, num_heads, 0) : bshd ? permuted_view(q_in, {0, 2, 1, 3}) : contiguous_view(q_in);
  const OperandView ktv = packed ? packed_view(q_in, num_heads, 1) : bshd ? permuted_view(kt_in, {0, 2, 3, 1}) : contiguous_view(kt_in);
  const OperandView vv = packed ? packed_view(q_in, num_heads, 2) : bshd ? permuted_view(v_in, {0, 2, 1, 3}) : contiguous_view(v_in);
  const Shape &q = qv.shape, &kt = ktv.shape, &v = vv.shape;
  const Shape q_batch(q.dims().begin(), q.dims().end() - 2), kt_batch(kt.dims().begin(), kt.dims().end() - 2);
  const Shape v_batch(v.dims().begin(), v.dims().end() - 2);
  const int64_t D = q[q.rank() - 1], score_rows = q[q.rank() - 2], score_cols = kt[kt.rank() - 1];
  if (kt[kt.rank() - 2] != D) return invalid_argument("Q ", q_in.to_string(), " and K ", kt_in.to_string(), " do not multiply");
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
  if (v[v.rank() - 2] != p.Sk) {
    return invalid_argument("softmax rows of ", p.Sk, " and V ", v_in.to_string(), " do not multiply");
  }
  const Shape x_batch(x.dims().begin(), x.dims().end() - 2);
  ORCHARD_ASSIGN_OR_RETURN(p.batch, broadcast_shapes({&x_batch, &v_batch}));
  p.batches = p.batch.numel();
  if (bshd && p.batch.rank() != 2) {
    return invalid_argument("layout bshd needs scores of rank 4, the mask ", mask ? mask->to_string() : "",
                            " makes them rank ", p.batch.rank() + 2);
  }
  p.q_bs = batch_strides_of(qv, p.batch);
  p.kt_bs = batch_strides_of(ktv, p.batch);
  p.v_bs = batch_strides_of(vv, p.batch);
  p.q_row = score_rows == p.Sq ? qv.strides[q.rank() - 2] : 0;
  p.kt_d = ktv.strides[kt.rank() - 2];
  p.kt_j = score_cols == 1 ? 0 : ktv.strides[kt.rank() - 1];
  p.v_row = vv.strides[v.rank() - 2];
  if (bshd) {
    p.out = Shape{p.batch[0], p.Sq, p.batch[1], p.Dv};
    p.out_bs = {p.Sq * p.batch[1] * p.Dv, p.Dv};
    p.out_row = p.batch[1] * p.Dv;
  } else {
    p.out = p.batch;
    p.out.push_back(p.Sq);
    p.out.push_back(p.Dv);
    const OperandView ov = contiguous_view(p.out);
    p.out_bs.assign(ov.strides.begin(), ov.strides.end() - 2);
    p.out_row = p.Dv;
  }
  auto offsets = [&](const std::vector<int64_t>& bs, std::vector<int64_t>& offs, int64_t base = 0) {
    for_each_offset(p.batch.dims(), bs, [&](int64_t o) { offs.push_back(base + o); });
  };
  offsets(p.q_bs, p.q_off, qv.base);
  offsets(p.kt_bs, p.kt_off, ktv.base);
  offsets(p.v_bs, p.v_off, vv.base);
  offsets(p.out_bs, p.out_off);
  if (mask != nullptr) {
    // The mask's strides over [batch..., Sq, Sk] (0 on broadcast dims).
    Shape full = p.batch;
    full.push_back(p.Sq);
    full.push_back(p.Sk);
    const std::vector<int64_t> st = broadcast_strides(*mask, full);
    p.mask_row = st[st.size() - 2];
    p.mask_col = st[st.size() - 1];
    p.mask_bs.assign(st.begin(), st.end() - 2);
    offsets(p.mask_bs, p.mask_off);
  }
  return p;
}

Result<AttentionPlan> attention_inputs(const OpContext& ctx, const AttentionAttrs& attrs, const Tensor* (&in)[4]) {
  const bool packed = attrs.layout == AttentionLayout::bs3hd;
  const char* names[4] = {packed ? "QKV" : "Q", "Kt", "V", "mask"};
  for (size_t i = 0; i < 4; ++i) {
    in[i] = nullptr;
    if (i == 3 && !ctx.has_input(3)) break;
    if (packed && (i == 1 || i == 2)) {
      in[i] = in[0];
      continue;
    }
    ORCHARD_ASSIGN_OR_RETURN(in[i], ctx.input_tensor(i));
    if (in[i]->dtype() != DType::float32) return invalid_argument(names[i], " must be float32, got ", in[i]->description());
  }
  return plan_attention(in[0]->shape(), in[1]->shape(), in[2]->shape(), in[3] ? &in[3]->shape() : nullptr, attrs.layout,
                        attrs.num_heads);
}

Result<AttentionAttrs> attention_attrs(const graph::Node& node) {
  AttentionAttrs a;
  a.scale = node.attr_float("scale", 1.0f);
  a.head_dim_scale = node.attr_int("head_dim_scale", 0) != 0;
  a.nan_to_zero = node.attr_int("nan_to_zero", 0) != 0;
  const std::string layout = node.attr_string("layout", "split_heads");
  if (layout != "split_heads" && node.opset < 2) {
    return invalid_argument("FusedAttention layout '", layout, "' needs version 2 of the op");
  }
  if (layout == "bshd") {
    a.layout = AttentionLayout::bshd;
  } else if (layout == "bs3hd") {
    a.layout = AttentionLayout::bs3hd;
    a.num_heads = node.attr_int("num_heads", 0);
    if (a.num_heads < 1) return invalid_argument("FusedAttention layout bs3hd needs num_heads >= 1");
  } else if (layout != "split_heads") {
    return invalid_argument("FusedAttention layout '", layout, "' (split_heads, bshd or bs3hd)");
  }
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
      const float* qr = q + p.q_off[bi] + i * p.q_row;
      for (int64_t j = 0; j < p.Sk; ++j) {
        float acc = 0;
        for (int64_t d = 0; d < p.D; ++d) acc += qr[d] * kt[p.kt_off[bi] + d * p.kt_d + j * p.kt_j];
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
      float* o = out + p.out_off[bi] + i * p.out_row;
      for (int64_t c = 0; c < p.Dv; ++c) {
        float acc = 0;
        for (int64_t j = 0; j < p.Sk; ++j) acc += row[static_cast<size_t>(j)] * v[p.v_off[bi] + j * p.v_row + c];
        o[c] = acc;
      }
    }
  }
}

namespace {

class FusedAttentionRef final : public OpKernel {
 public:
  explicit FusedAttentionRef(const KernelCreateContext& ctx) : attrs_(*attention_attrs(ctx.node)) {}
  static Status validate(const KernelCreateContext& ctx) { return attention_attrs(ctx.node).status(); }

  Status run(OpContext& ctx) const override {
    const Tensor* in[4] = {};
    ORCHARD_ASSIGN_OR_RETURN(AttentionPlan p, attention_inputs(ctx, attrs_, in));
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, p.out));
    attention_plain(p, in[0]->data<float>(), in[1]->data<float>(), in[2]->data<float>(),
                    in[3] ? in[3]->data<float>() : nullptr, attrs_, y.data<float>());
    return Status::OK();
  }

 private:
  AttentionAttrs attrs_;
};

constexpr KernelDef kKernels[] = {
    {"com.orchard", "FusedAttention", 1, 2, make<FusedAttentionRef>},
};

}  // namespace

std::span<const KernelDef> attention_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
