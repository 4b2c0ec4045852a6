// CUDA kernels of Orchard's fused ops (docs/fused_ops.md): the epilogue that FusedMatMul and FusedConv run after
// their cuBLAS / cuDNN product (bias, residual Z and activation in one pass), com.orchard Gelu (a unary op) and
// com.orchard FusedAttention (two cuBLAS products with a masked-softmax kernel between them where each operand's
// batches are one stride apart, else one kernel: scores, mask, softmax and the product by V without the score
// matrix in device memory).
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "backends/cpu/opt/epilogue.hpp"
#include "backends/cpu/reference/attention.hpp"
#include "backends/cuda/cuda_ops.hpp"

namespace orchard::cuda {

Result<FusedEpilogue> fused_epilogue(const graph::Node& node) {
  ORCHARD_ASSIGN_OR_RETURN(cpu::ActivationSpec spec, cpu::parse_activation(node));
  FusedEpilogue e;
  e.alpha = spec.p0;
  e.beta = spec.p1;
  switch (spec.kind) {
    case cpu::Activation::none: e.act = UnaryOp::identity; break;
    case cpu::Activation::relu: e.act = UnaryOp::relu; break;
    case cpu::Activation::clip: e.act = UnaryOp::clip; break;
    case cpu::Activation::sigmoid: e.act = UnaryOp::sigmoid; break;
    case cpu::Activation::silu: e.act = UnaryOp::silu; break;
    case cpu::Activation::hardswish: e.act = UnaryOp::hard_swish; break;
    case cpu::Activation::leaky_relu: e.act = UnaryOp::leaky_relu; break;
    case cpu::Activation::gelu: e.act = UnaryOp::gelu; break;
    case cpu::Activation::gelu_tanh: e.act = UnaryOp::gelu_tanh; break;
    case cpu::Activation::tanh: e.act = UnaryOp::tanh; break;
  }
  return e;
}

Status apply_epilogue(runtime::OpContext& ctx, const FusedEpilogue& e, Tensor& y, int64_t channels, int64_t inner) {
  const char* op = ctx.node().op_type.c_str();
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (bias && (bias->dtype() != y.dtype() || bias->numel() != channels)) {
    return invalid_argument("[", op, "] bias ", bias->description(), " for ", channels, " output channels of ",
                            dtype_name(y.dtype()));
  }
  if (z && (z->dtype() != y.dtype() || z->shape() != y.shape())) {
    return invalid_argument("[", op, "] Z ", z->description(), " must have the output's shape ",
                            y.shape().to_string(), " and dtype");
  }
  if (y.numel() == 0 || (!bias && !z && e.act == UnaryOp::identity)) return Status::OK();
  ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(y.dtype()));
  return launch_status(epilogue(t, y.raw_data(), y.numel(), bias ? bias->raw_data() : nullptr, channels, inner,
                                z ? z->raw_data() : nullptr, e.act, e.alpha, e.beta, current_cuda_stream()),
                       op);
}

namespace {

// The strides of a contiguous tensor of shape `in` over the leading `rank` dims of `target` (right-aligned
// broadcast over target's full rank; 0 where `in` repeats).
void batch_strides(const Shape& in, const Shape& target, int rank, int64_t* out) {
  Layout l;
  l.rank = static_cast<int>(target.rank());
  set_broadcast_operand(l, 0, in);
  for (int d = 0; d < rank; ++d) out[d] = l.stride[0][d];
}

// The one element stride per output batch (flat index over a.batch_dims) that reaches an operand's matrices, given
// its per-dim strides `st` and its matrix size: `matrix` when it has a matrix for every output batch (contiguous),
// 0 when it has one for all; -1 when it broadcasts over some batch dims only (no single stride).
int64_t flat_batch_stride(const Attention& a, const int64_t* st, int64_t matrix) {
  for (const int64_t s : {matrix, int64_t{0}}) {
    bool ok = true;
    int64_t inner = s;
    for (int d = a.batch_rank - 1; d >= 0 && ok; --d) {
      ok = a.batch_dims[d] == 1 || st[d] == inner;
      inner *= a.batch_dims[d];
    }
    if (ok) return s;
  }
  return -1;
}

// com.orchard FusedAttention: Y = softmax(scale * Q Kt + mask) V with MatMul's and Add's broadcasting.
class FusedAttentionKernel final : public runtime::OpKernel {
 public:
  FusedAttentionKernel(cpu::reference::AttentionAttrs attrs, bool one_kernel) : attrs_(attrs), one_kernel_(one_kernel) {}

  Status run(runtime::OpContext& ctx) const override {
    const Tensor* in[4] = {};
    const char* names[4] = {"Q", "Kt", "V", "mask"};
    for (size_t i = 0; i < 4; ++i) {
      if (i == 3 && !ctx.has_input(3)) break;
      ORCHARD_ASSIGN_OR_RETURN(in[i], ctx.input_tensor(i));
      if (in[i]->dtype() != in[0]->dtype()) {
        return invalid_argument("[FusedAttention] ", names[i], " ", in[i]->description(), " differs in dtype from Q ",
                                in[0]->description());
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(in[0]->dtype()));
    // The same geometry as the CPU kernels (shape checks and broadcasting), then strides for the device kernel.
    const Shape* mask_shape = in[3] ? &in[3]->shape() : nullptr;
    auto plan = cpu::reference::plan_attention(in[0]->shape(), in[1]->shape(), in[2]->shape(), mask_shape);
    if (!plan.ok()) return invalid_argument("[FusedAttention] ", plan.status().message());
    const cpu::reference::AttentionPlan& p = *plan;
    const int rank = static_cast<int>(p.out.rank()) - 2;
    if (p.out.rank() > static_cast<size_t>(kMaxRank)) {
      return unsupported("[FusedAttention] output rank ", p.out.rank(), " above the CUDA kernel's ", kMaxRank);
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, in[0]->dtype(), p.out));
    if (y.numel() == 0) return Status::OK();
    Attention a;
    a.batch_rank = rank;
    for (int d = 0; d < rank; ++d) a.batch_dims[d] = p.out[static_cast<size_t>(d)];
    Shape scores(p.out.dims().begin(), p.out.dims().end() - 2);
    scores.push_back(p.Sq);
    scores.push_back(p.Sk);
    batch_strides(in[0]->shape(), scores, rank, a.q_bs);
    batch_strides(in[1]->shape(), scores, rank, a.kt_bs);
    batch_strides(in[2]->shape(), scores, rank, a.v_bs);
    if (in[3]) {
      Layout l;
      l.rank = static_cast<int>(scores.rank());
      set_broadcast_operand(l, 0, *mask_shape);
      for (int d = 0; d < rank; ++d) a.m_bs[d] = l.stride[0][d];
      a.m_row = l.stride[0][rank];
      a.m_col = l.stride[0][rank + 1];
    }
    a.batches = p.batches;
    a.sq = p.Sq;
    a.sk = p.Sk;
    a.d = p.D;
    a.dv = p.Dv;
    a.q_row = p.q_row_stride;
    a.kt_row = p.score_cols;
    a.kt_col = p.score_cols == 1 ? 0 : 1;
    a.scale = cpu::reference::attention_scale(attrs_, p);
    a.nan_to_zero = attrs_.nan_to_zero;
    if (!one_kernel_ && p.Sk > 0 && p.q_row_stride == p.D && p.score_cols == p.Sk) {
      const int64_t sq_ = flat_batch_stride(a, a.q_bs, p.Sq * p.D), skt = flat_batch_stride(a, a.kt_bs, p.D * p.Sk);
      const int64_t sv = flat_batch_stride(a, a.v_bs, p.Sk * p.Dv);
      if (sq_ >= 0 && skt >= 0 && sv >= 0) {
        return on_tensor_cores(ctx, in, y, a, sq_, skt, sv);
      }
    }
    const cudaError_t err = attention(t, in[0]->raw_data(), in[1]->raw_data(), in[2]->raw_data(),
                                      in[3] ? in[3]->raw_data() : nullptr, y.raw_data(), a, current_cuda_stream());
    if (err == cudaErrorInvalidValue) {
      return unsupported("[FusedAttention] rows of ", p.Sk, " scores and ", p.D,
                         " query values do not fit the CUDA kernel's shared memory");
    }
    return launch_status(err, "FusedAttention");
  }

 private:
  // Y = softmax(scale * Q Kt + mask) V as two strided-batched cuBLAS products (float32 accumulation, tensor cores
  // for float16) and the masked softmax between them: float32 scores, then probabilities in Y's dtype, both in one
  // scratch block from the run's stream-ordered pool. sq_, skt, sv: each operand's stride per output batch.
  Status on_tensor_cores(runtime::OpContext& ctx, const Tensor* const* in, Tensor& y, const Attention& a,
                         int64_t sq_, int64_t skt, int64_t sv) const {
    const DType t = in[0]->dtype();
    const int64_t cells = a.batches * a.sq * a.sk;
    const int64_t p_at = (cells * 4 + 255) / 256 * 256;  // probabilities after the scores, 256-byte aligned
    const int64_t bytes = p_at + cells * static_cast<int64_t>(dtype_size(t));
    ORCHARD_ASSIGN_OR_RETURN(Tensor scratch, Tensor::create(DType::uint8, Shape{bytes}, ctx.allocator()));
    float* scores = static_cast<float*>(scratch.raw_data());
    void* probs = static_cast<char*>(scratch.raw_data()) + p_at;
    ORCHARD_RETURN_IF_ERROR(gemm_rowmajor(t, DType::float32, false, false, a.sq, a.sk, a.d, a.scale, in[0]->raw_data(),
                                          a.d, sq_, in[1]->raw_data(), a.sk, skt, 0.f, scores, a.sk, a.sq * a.sk,
                                          a.batches));
    ORCHARD_ASSIGN_OR_RETURN(Elem e, elem_of(t));
    ORCHARD_RETURN_IF_ERROR(launch_status(
        attention_softmax(e, scores, in[3] ? in[3]->raw_data() : nullptr, probs, a, current_cuda_stream()),
        "FusedAttention softmax"));
    return gemm_rowmajor(t, t, false, false, a.sq, a.dv, a.sk, 1.f, probs, a.sk, a.sq * a.sk, in[2]->raw_data(), a.dv,
                         sv, 0.f, y.raw_data(), a.dv, a.sq * a.dv, a.batches);
  }

  cpu::reference::AttentionAttrs attrs_;
  bool one_kernel_;  // ORCHARD_CUDA_ATTENTION=kernel: always the one-kernel version
};

}  // namespace

KernelResult create_fused_attention(const runtime::KernelCreateContext& ctx) {
  // ORCHARD_CUDA_ATTENTION=kernel (read when the kernel is made) keeps every FusedAttention on the one-kernel
  // version: an A/B of the two in one binary, and the tests of that version on shapes the products would take.
  const char* env = std::getenv("ORCHARD_CUDA_ATTENTION");
  const bool one_kernel = env && std::string_view(env) == "kernel";
  return std::unique_ptr<runtime::OpKernel>(
      new FusedAttentionKernel(cpu::reference::attention_attrs(ctx.node), one_kernel));
}

}  // namespace orchard::cuda
