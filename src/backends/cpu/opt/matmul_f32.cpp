// MatMul, Gemm and FusedMatMul on float32 through the GEMM core (gemm_f32.hpp): a constant B (weights) is
// packed once at create; bias, residual and activation run in the GEMM's epilogue on cache-hot tiles.
// Declined (the reference kernel takes the node): inputs not known to be float32.
#include <algorithm>
#include <vector>

#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/opt/families.hpp"
#include "backends/cpu/opt/gemm_f32.hpp"
#include "backends/cpu/reference/dense.hpp"
#include "runtime/backend.hpp"

namespace orchard::cpu::opt {

namespace {

using reference::MatMulPlan;

constexpr double kBatchParallelFlops = 2e7;  // smaller batched products run one batch per task

// Declines the node unless inputs [0, n) that are present are known to be float32.
Status require_float32(const KernelCreateContext& ctx, size_t n) {
  for (size_t i = 0; i < n && i < ctx.node.inputs.size(); ++i) {
    if (ctx.node.inputs[i].empty()) continue;
    const DType t = ctx.input_type(i).dtype;
    if (t != DType::float32) {
      return unsupported(ctx.node.op_type, ": the float32 variant does not take input ", i, " of type ", dtype_name(t));
    }
  }
  return Status::OK();
}

// Returns input i as a float32 tensor, or invalid_argument naming it.
Result<const Tensor*> float_input(const OpContext& ctx, size_t i, const char* name) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
  if (t->dtype() != DType::float32) return invalid_argument(name, " must be float32, got ", t->description());
  return t;
}

// MatMul and FusedMatMul (Fused: inputs bias [N] and Z, attributes activation / activation_params).
template <bool Fused>
class MatMulF32 final : public OpKernel {
 public:
  explicit MatMulF32(const KernelCreateContext& ctx) {
    if constexpr (Fused) act_ = *parse_activation(ctx.node);
    const Tensor* b = ctx.constant_input(1);
    if (b != nullptr && b->dtype() == DType::float32 && b->rank() == 2) {
      packed_b_ = gemm_pack_b(false, b->dim(0), b->dim(1), b->data<float>(), b->dim(1));
    }
  }

  static Status validate(const KernelCreateContext& ctx) {
    if constexpr (Fused) ORCHARD_RETURN_IF_ERROR(parse_activation(ctx.node).status());
    return require_float32(ctx, Fused ? 4 : 2);
  }

  uint32_t packed_inputs() const override { return packed_b_ ? 1u << 1 : 0; }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, float_input(ctx, 0, "A"));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, float_input(ctx, 1, "B"));
    ORCHARD_ASSIGN_OR_RETURN(MatMulPlan p, reference::plan_matmul(a->shape(), b->shape()));
    GemmEpilogue ep;
    ep.act = act_;
    const Tensor* z = nullptr;
    if constexpr (Fused) {
      if (ctx.has_input(2)) {
        ORCHARD_ASSIGN_OR_RETURN(const Tensor* bias, float_input(ctx, 2, "bias"));
        if (bias->rank() != 1 || bias->dim(0) != p.N) {
          return invalid_argument("bias of shape ", bias->shape().to_string(), " must have shape [", p.N, "]");
        }
        ep.bias = bias->data<float>();
      }
      if (ctx.has_input(3)) {
        ORCHARD_ASSIGN_OR_RETURN(z, float_input(ctx, 3, "Z"));
        if (z->shape() != p.out) {
          return invalid_argument("Z of shape ", z->shape().to_string(), " must have the output's shape ",
                                  p.out.to_string());
        }
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, p.out));
    if (y.numel() == 0) return Status::OK();
    const float* pa = a->data<float>();
    // The packed B is this node's constant, so it matches b whenever it is set; b's data is then never read
    // (the runtime may have freed it: packed_inputs).
    const PackedMatrix* packed = packed_b_.get();
    const float* pb = packed ? nullptr : b->data<float>();
    float* py = y.data<float>();
    const int64_t M = p.M, N = p.N, K = p.K;
    auto one = [&](int64_t bi, ThreadPool* pool) {
      GemmEpilogue e = ep;
      if (z != nullptr) {
        e.residual = z->data<float>() + bi * M * N;
        e.ld_residual = N;
      }
      const GemmOperand ga{pa + p.a_off[static_cast<size_t>(bi)], K, false, nullptr};
      const GemmOperand gb{packed ? nullptr : pb + p.b_off[static_cast<size_t>(bi)], N, false, packed};
      gemm_f32(M, N, K, ga, gb, py + bi * M * N, N, e, pool);
    };
    ThreadPool& pool = ctx.pool();
    const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
    if (p.batches > 1 && pool.size() > 1 && flops < kBatchParallelFlops) {
      pool.parallel_for(p.batches, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t bi = b0; bi < b1; ++bi) one(bi, nullptr);
      });
    } else {
      for (int64_t bi = 0; bi < p.batches; ++bi) one(bi, &pool);
    }
    return Status::OK();
  }

 private:
  ActivationSpec act_;
  std::shared_ptr<const PackedMatrix> packed_b_;
};

// Gemm: Y = alpha * op(A) op(B) + beta * C, C broadcast to [M, N] (as a bias per row or column, or a residual).
class GemmF32 final : public OpKernel {
 public:
  explicit GemmF32(const KernelCreateContext& ctx)
      : trans_a_(ctx.node.attr_int("transA", 0) != 0),
        trans_b_(ctx.node.attr_int("transB", 0) != 0),
        alpha_(ctx.node.attr_float("alpha", 1.0f)),
        beta_(ctx.node.attr_float("beta", 1.0f)) {
    const Tensor* b = ctx.constant_input(1);
    if (b != nullptr && b->dtype() == DType::float32 && b->rank() == 2) {
      const int64_t K = trans_b_ ? b->dim(1) : b->dim(0), N = trans_b_ ? b->dim(0) : b->dim(1);
      packed_b_ = gemm_pack_b(trans_b_, K, N, b->data<float>(), b->dim(1));
    }
  }

  static Status validate(const KernelCreateContext& ctx) { return require_float32(ctx, 3); }

  uint32_t packed_inputs() const override { return packed_b_ ? 1u << 1 : 0; }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, float_input(ctx, 0, "A"));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, float_input(ctx, 1, "B"));
    if (a->rank() != 2 || b->rank() != 2) {
      return invalid_argument("A and B must be matrices, got ", a->description(), " and ", b->description());
    }
    const int64_t M = trans_a_ ? a->dim(1) : a->dim(0), K = trans_a_ ? a->dim(0) : a->dim(1);
    const int64_t Kb = trans_b_ ? b->dim(1) : b->dim(0), N = trans_b_ ? b->dim(0) : b->dim(1);
    if (K != Kb) return invalid_argument("inner dimensions differ: op(A) is ", M, "x", K, ", op(B) is ", Kb, "x", N);
    const Shape out{M, N};
    GemmEpilogue ep;
    ep.alpha = alpha_;
    std::vector<float> bias;  // beta * C as a per-row or per-column bias
    if (ctx.has_input(2)) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* c, float_input(ctx, 2, "C"));
      auto bs = broadcast_shapes({&c->shape(), &out});
      if (!bs.ok() || *bs != out) {
        return invalid_argument("C of shape ", c->shape().to_string(), " cannot be broadcast to ", out.to_string());
      }
      if (beta_ != 0) {
        const int64_t cm = c->rank() == 2 ? c->dim(0) : 1, cn = c->rank() >= 1 ? c->dim(c->rank() - 1) : 1;
        const float* pc = c->data<float>();
        if (cm == M && cn == N && M * N > 1) {
          ep.residual = pc;
          ep.ld_residual = N;
          ep.residual_scale = beta_;
        } else {
          ep.bias_per_row = cm == M && cn == 1 && M > 1;
          bias.resize(static_cast<size_t>(ep.bias_per_row ? M : N));
          for (size_t i = 0; i < bias.size(); ++i) bias[i] = beta_ * pc[c->numel() == 1 ? 0 : i];
          ep.bias = bias.data();
        }
      }
    } else if (ctx.node().opset < 11) {
      return invalid_argument("input C is required before opset 11");
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, out));
    if (y.numel() == 0) return Status::OK();
    const GemmOperand ga{a->data<float>(), a->dim(1), trans_a_, nullptr};
    const GemmOperand gb{packed_b_ ? nullptr : b->data<float>(), b->dim(1), trans_b_, packed_b_.get()};
    gemm_f32(M, N, K, ga, gb, y.data<float>(), N, ep, &ctx.pool());
    return Status::OK();
  }

 private:
  bool trans_a_, trans_b_;
  float alpha_, beta_;
  std::shared_ptr<const PackedMatrix> packed_b_;
};

constexpr int kPriority = 10;

constexpr KernelDef kVariants[] = {
    {"", "MatMul", 1, kVerifiedOpset, make<MatMulF32<false>>, {DType::float32}, 0, 0, kPriority},
    {"", "Gemm", 1, kVerifiedOpset, make<GemmF32>, {DType::float32}, 0, 0, kPriority},
    {"com.orchard", "FusedMatMul", 1, 1, make<MatMulF32<true>>, {DType::float32}, 0, 0, kPriority},
};

}  // namespace

std::span<const KernelDef> matmul_variants() { return kVariants; }

}  // namespace orchard::cpu::opt
