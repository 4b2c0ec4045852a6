// CUDA kernels of Orchard's fused ops (docs/fused_ops.md): the epilogue that FusedMatMul and FusedConv run after
// their cuBLAS / cuDNN product (bias, residual Z and activation in one pass), com.orchard Gelu (a unary op) and
// com.orchard FusedAttention (two batched cuBLAS products with a masked-softmax kernel between them, reading every
// layout in place; else one warp per row: scores, mask, softmax and the product by V without the score matrix in
// device memory; on request and for float16, one tensor-core kernel keeping the scores on chip).
#include <algorithm>
#include <array>
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

// The one element stride that steps an operand (per-dim strides `st`) through the flat index over a's batch
// dims, or -1 when no single stride does (0 when the operand broadcasts over all of them).
int64_t uniform_stride(const Attention& a, const int64_t* st) {
  int inner = a.batch_rank - 1;
  while (inner >= 0 && a.batch_dims[inner] == 1) --inner;
  if (inner < 0) return 0;  // one batch: any stride
  int64_t expected = st[inner];
  for (int d = inner; d >= 0; --d) {
    if (a.batch_dims[d] != 1 && st[d] != expected) return -1;
    expected *= a.batch_dims[d];
  }
  return st[inner];
}

// Which kernel computes FusedAttention (ORCHARD_CUDA_ATTENTION, read when the kernel is made): the best that takes
// the shapes (gemm: two cuBLAS products around a softmax kernel; kernel: one warp per row), or one forced, for A/B
// runs and for testing each on shapes another would take. flash (one tensor-core kernel, cuda_attention.cu) is
// taken only when asked for: right on the GPU, but slower than the cuBLAS products on gpt2 and bert_base at
// batch 1 and 32 (an H200, session 12: gpt2 batch 1 1.33 against 0.99 ms; bench/RESULTS.md).
enum class AttentionPath { best, flash, gemm, kernel };

// com.orchard FusedAttention: Y = softmax(scale * Q Kt + mask) V with MatMul's and Add's broadcasting.
class FusedAttentionKernel final : public runtime::OpKernel {
 public:
  FusedAttentionKernel(cpu::reference::AttentionAttrs attrs, AttentionPath path) : attrs_(attrs), path_(path) {}

  Status run(runtime::OpContext& ctx) const override {
    const Tensor* in[4] = {};
    const bool packed = attrs_.layout == cpu::reference::AttentionLayout::bs3hd;
    const char* names[4] = {packed ? "QKV" : "Q", "Kt", "V", "mask"};
    for (size_t i = 0; i < 4; ++i) {
      if (i == 3 && !ctx.has_input(3)) break;
      if (packed && (i == 1 || i == 2)) {  // K and V are read from the QKV input
        in[i] = in[0];
        continue;
      }
      ORCHARD_ASSIGN_OR_RETURN(in[i], ctx.input_tensor(i));
      if (in[i]->dtype() != in[0]->dtype()) {
        return invalid_argument("[FusedAttention] ", names[i], " ", in[i]->description(), " differs in dtype from Q ",
                                in[0]->description());
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Elem t, elem_of(in[0]->dtype()));
    // The same geometry as the CPU kernels (shape checks and broadcasting), then strides for the device kernel.
    const Shape* mask_shape = in[3] ? &in[3]->shape() : nullptr;
    auto plan = cpu::reference::plan_attention(in[0]->shape(), in[1]->shape(), in[2]->shape(), mask_shape, attrs_.layout,
                                               attrs_.num_heads);
    if (!plan.ok()) return invalid_argument("[FusedAttention] ", plan.status().message());
    const cpu::reference::AttentionPlan& p = *plan;
    const int rank = static_cast<int>(p.batch.rank());
    if (rank > kMaxRank) {
      return unsupported("[FusedAttention] ", rank, " batch dims, above the CUDA kernel's ", kMaxRank);
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, in[0]->dtype(), p.out));
    if (y.numel() == 0) return Status::OK();
    Attention a;
    a.batch_rank = rank;
    for (int d = 0; d < rank; ++d) {
      const size_t k = static_cast<size_t>(d);
      a.batch_dims[d] = p.batch[k];
      a.q_bs[d] = p.q_bs[k];
      a.kt_bs[d] = p.kt_bs[k];
      a.v_bs[d] = p.v_bs[k];
      a.o_bs[d] = p.out_bs[k];
      if (in[3]) a.m_bs[d] = p.mask_bs[k];
    }
    a.m_row = p.mask_row;
    a.m_col = p.mask_col;
    a.batches = p.batches;
    a.sq = p.Sq;
    a.sk = p.Sk;
    a.d = p.D;
    a.dv = p.Dv;
    a.q_row = p.q_row;
    a.kt_row = p.kt_d;
    a.kt_col = p.kt_j;
    a.v_row = p.v_row;
    a.o_row = p.out_row;
    a.scale = cpu::reference::attention_scale(attrs_, p);
    a.nan_to_zero = attrs_.nan_to_zero;
    // Each operand's matrices start at its base offset (bs3hd: K and V are the second and third thirds of QKV);
    // the kernels add the per-batch strides.
    const size_t es = dtype_size(in[0]->dtype());
    const void* qp = static_cast<const char*>(in[0]->raw_data()) + p.q_off[0] * static_cast<int64_t>(es);
    const void* kp = static_cast<const char*>(in[1]->raw_data()) + p.kt_off[0] * static_cast<int64_t>(es);
    const void* vp = static_cast<const char*>(in[2]->raw_data()) + p.v_off[0] * static_cast<int64_t>(es);
    const void* mask = in[3] ? in[3]->raw_data() : nullptr;
    // The flash kernel is float16's alone: bfloat16 takes the cuBLAS products or the per-row kernel.
    const bool float16 = in[0]->dtype() == DType::float16;
    if (float16 && path_ == AttentionPath::flash && flash_attention_fits(a)) {
      return launch_status(flash_attention(qp, kp, vp, mask, y.raw_data(), a, current_cuda_stream()),
                           "FusedAttention");
    }
    // cuBLAS reads Kt as it lies: row-major [D, Sk], or the transpose of a row-major K [Sk, D] (bshd, bs3hd).
    const bool kt_rows = p.kt_j == 1 && p.kt_d >= p.Sk, kt_cols = p.kt_d == 1 && p.kt_j >= p.D;
    if ((path_ == AttentionPath::best || path_ == AttentionPath::gemm) && p.Sk > 0 && p.q_row >= p.D &&
        p.v_row >= p.Dv && p.score_cols == p.Sk && (kt_rows || kt_cols)) {
      const std::array<int64_t, 4> strides = {uniform_stride(a, a.q_bs), uniform_stride(a, a.kt_bs),
                                              uniform_stride(a, a.v_bs), uniform_stride(a, a.o_bs)};
      const bool uniform = std::all_of(strides.begin(), strides.end(), [](int64_t s) { return s >= 0; });
      return on_tensor_cores(ctx, in, {qp, kp, vp}, y, a, p, kt_rows, uniform, strides);
    }
    const cudaError_t err = attention(t, qp, kp, vp, mask, y.raw_data(), a, current_cuda_stream());
    if (err == cudaErrorInvalidValue) {
      return unsupported("[FusedAttention] rows of ", p.Sk, " scores and ", p.D,
                         " query values do not fit the CUDA kernel's shared memory");
    }
    return launch_status(err, "FusedAttention");
  }

 private:
  // Y = softmax(scale * Q Kt + mask) V as two batched cuBLAS products (float32 accumulation, tensor cores for
  // float16 and bfloat16) and the masked softmax between them: float32 scores, then probabilities in Y's dtype,
  // both in one contiguous scratch block [batches, Sq, Sk] from the run's stream-ordered pool. When every operand
  // steps through all batch dims by one stride (`strides`: Q's, Kt's, V's and Y's; `uniform`), strided-batched
  // calls; else (bshd, bs3hd with more than one sequence) pointer-array calls, the pointers written on the device
  // by a small kernel in the same scratch block. Kt is read as it lies: kt_rows, row-major [D, Sk] (row stride
  // kt_d); else the transpose of a row-major K [Sk, D] (row stride kt_j).
  Status on_tensor_cores(runtime::OpContext& ctx, const Tensor* const* in, std::array<const void*, 3> operands,
                         Tensor& y, const Attention& a, const cpu::reference::AttentionPlan& p, bool kt_rows,
                         bool uniform, std::array<int64_t, 4> strides) const {
    const DType t = in[0]->dtype();
    const int64_t es = static_cast<int64_t>(dtype_size(t));
    auto aligned = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };
    const int64_t cells = a.batches * a.sq * a.sk;
    const int64_t p_at = aligned(cells * 4);  // probabilities after the scores
    const int64_t ptr_at = aligned(p_at + cells * es);  // then the pointer arrays, when used
    const int64_t bytes = uniform ? p_at + cells * es : ptr_at + 6 * a.batches * static_cast<int64_t>(sizeof(void*));
    ORCHARD_ASSIGN_OR_RETURN(Tensor scratch, Tensor::create(DType::uint8, Shape{bytes}, ctx.allocator()));
    char* base = static_cast<char*>(scratch.raw_data());
    float* scores = reinterpret_cast<float*>(base);
    char* probs = base + p_at;
    const int64_t ldk = kt_rows ? p.kt_d : p.kt_j;
    ORCHARD_ASSIGN_OR_RETURN(Elem e, elem_of(t));
    const void* mask = in[3] ? in[3]->raw_data() : nullptr;
    if (uniform) {
      ORCHARD_RETURN_IF_ERROR(gemm_rowmajor(t, DType::float32, false, !kt_rows, a.sq, a.sk, a.d, a.scale, operands[0],
                                            a.q_row, strides[0], operands[1], ldk, strides[1], 0.f, scores, a.sk,
                                            a.sq * a.sk, a.batches));
      ORCHARD_RETURN_IF_ERROR(launch_status(attention_softmax(e, scores, mask, probs, a, current_cuda_stream()),
                                            "FusedAttention softmax"));
      return gemm_rowmajor(t, t, false, false, a.sq, a.dv, a.sk, 1.f, probs, a.sk, a.sq * a.sk, operands[2], a.v_row,
                           strides[2], 0.f, y.raw_data(), a.o_row, strides[3], a.batches);
    }
    void** ptrs = reinterpret_cast<void**>(base + ptr_at);
    ORCHARD_RETURN_IF_ERROR(launch_status(attention_pointers(operands[0], operands[1], operands[2], scores, probs,
                                                             y.raw_data(), es, es, a, ptrs, current_cuda_stream()),
                                          "FusedAttention pointers"));
    const int64_t n = a.batches;
    ORCHARD_RETURN_IF_ERROR(gemm_rowmajor_batched(t, DType::float32, false, !kt_rows, a.sq, a.sk, a.d, a.scale, ptrs,
                                                  a.q_row, ptrs + n, ldk, 0.f, ptrs + 2 * n, a.sk, n));
    ORCHARD_RETURN_IF_ERROR(launch_status(attention_softmax(e, scores, mask, probs, a, current_cuda_stream()),
                                          "FusedAttention softmax"));
    return gemm_rowmajor_batched(t, t, false, false, a.sq, a.dv, a.sk, 1.f, ptrs + 3 * n, a.sk, ptrs + 4 * n, a.v_row,
                                 0.f, ptrs + 5 * n, a.o_row, n);
  }

  cpu::reference::AttentionAttrs attrs_;
  AttentionPath path_;
};

}  // namespace

KernelResult create_fused_attention(const runtime::KernelCreateContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(cpu::reference::AttentionAttrs attrs, cpu::reference::attention_attrs(ctx.node));
  const char* env = std::getenv("ORCHARD_CUDA_ATTENTION");
  const std::string_view e = env ? env : "";
  const AttentionPath path = e == "flash"    ? AttentionPath::flash
                             : e == "gemm"   ? AttentionPath::gemm
                             : e == "kernel" ? AttentionPath::kernel
                                             : AttentionPath::best;
  return std::unique_ptr<runtime::OpKernel>(new FusedAttentionKernel(attrs, path));
}

}  // namespace orchard::cuda
