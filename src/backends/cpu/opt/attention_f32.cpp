// com.orchard FusedAttention on float32 (docs/fused_ops.md): softmax(scale * Q Kt + mask) V computed a block of
// query rows at a time, so the full score matrix is never materialized: each task computes its rows' scores
// into a buffer that stays in cache (GEMM core, alpha = scale), adds the mask, takes the softmax in place
// (vec_math) and multiplies by V straight into the output. Each batch's Kt and V are packed once for the GEMM
// core; tasks are then (batch x head, row block) pairs.
// Declined (the reference kernel takes the node): inputs not known to be float32.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/parallel.hpp"
#include "backends/cpu/opt/families.hpp"
#include "backends/cpu/opt/gemm_f32.hpp"
#include "backends/cpu/opt/vec_math.hpp"
#include "backends/cpu/reference/attention.hpp"

namespace orchard::cpu::opt {

namespace {

using reference::AttentionPlan;

constexpr int64_t kScoreBlockFloats = 65536;  // one task's score rows (256 KiB): they stay in L2 between the steps

class FusedAttentionF32 final : public OpKernel {
 public:
  explicit FusedAttentionF32(const KernelCreateContext& ctx)
      : attrs_(*reference::attention_attrs(ctx.node)) {}

  static Status validate(const KernelCreateContext& ctx) {
    ORCHARD_RETURN_IF_ERROR(reference::attention_attrs(ctx.node).status());
    for (size_t i = 0; i < 4 && i < ctx.node.inputs.size(); ++i) {
      if (ctx.node.inputs[i].empty()) continue;
      const DType t = ctx.input_type(i).dtype;
      if (t != DType::float32) {
        return unsupported("FusedAttention: the float32 variant does not take input ", i, " of type ", dtype_name(t));
      }
    }
    return Status::OK();
  }

  Status run(OpContext& ctx) const override {
    const Tensor* in[4] = {};
    ORCHARD_ASSIGN_OR_RETURN(AttentionPlan p, reference::attention_inputs(ctx, attrs_, in));
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, p.out));
    if (y.numel() == 0) return Status::OK();
    const int64_t Sq = p.Sq, Sk = p.Sk, D = p.D, Dv = p.Dv;
    const float* mask = in[3] ? in[3]->data<float>() : nullptr;
    const bool kt_rows = p.kt_j == 1, kt_cols = p.kt_d == 1;  // Kt row-major, or K row-major (bshd)
    if (Sk == 0 || p.score_cols != Sk || (p.q_row == 0 && Sq > 1) || !(kt_rows || kt_cols)) {
      // No columns, or a mask that broadcasts the scores' one column or Q's one row: the plain loops.
      reference::attention_plain(p, in[0]->data<float>(), in[1]->data<float>(), in[2]->data<float>(), mask, attrs_,
                                 y.data<float>());
      return Status::OK();
    }
    // Rows per task: a multiple of the micro-kernel's rows, the scores of a block staying in L2.
    const int64_t mr = gemm_micro_kernel().mr;
    const int64_t rows = std::min(Sq, std::max<int64_t>(mr, kScoreBlockFloats / Sk / mr * mr));
    const int64_t blocks = (Sq + rows - 1) / rows;
    const float* q = in[0]->data<float>();
    const float* kt = in[1]->data<float>();
    const float* v = in[2]->data<float>();
    float* out = y.data<float>();
    const VecKernels& vk = vec_kernels();
    GemmEpilogue scaled;
    scaled.alpha = reference::attention_scale(attrs_, p);
    const GemmEpilogue plain;
    // Kt and V of each batch packed once, shared by that batch's row blocks.
    std::vector<std::shared_ptr<const PackedMatrix>> kt_packed(static_cast<size_t>(p.batches));
    std::vector<std::shared_ptr<const PackedMatrix>> v_packed(static_cast<size_t>(p.batches));
    auto pack = [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const size_t bi = static_cast<size_t>(b);
        kt_packed[bi] = kt_rows ? gemm_pack_b(false, D, Sk, kt + p.kt_off[bi], p.kt_d)
                                : gemm_pack_b(true, D, Sk, kt + p.kt_off[bi], p.kt_j);
        v_packed[bi] = gemm_pack_b(false, Sk, Dv, v + p.v_off[bi], p.v_row);
      }
    };
    auto task = [&](int64_t t0, int64_t t1) {
      std::vector<float> s(static_cast<size_t>(rows * Sk));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / blocks, r0 = (t % blocks) * rows, n = std::min(rows, Sq - r0);
        const size_t bi = static_cast<size_t>(b);
        const GemmOperand qa{q + p.q_off[bi] + r0 * p.q_row, p.q_row, false, nullptr};
        const GemmOperand kb{nullptr, 0, false, kt_packed[bi].get()};
        gemm_f32(n, Sk, D, qa, kb, s.data(), Sk, scaled, nullptr);
        for (int64_t i = 0; i < n && mask; ++i) {
          const float* m = mask + p.mask_off[bi] + (r0 + i) * p.mask_row;
          float* row = s.data() + i * Sk;
          if (p.mask_col == 1) vk.binary_vv(BinaryOp::add, row, m, row, Sk);
          else vk.binary_vs(BinaryOp::add, row, *m, row, Sk);
        }
        vk.softmax_rows(s.data(), s.data(), n, Sk, false);
        if (attrs_.nan_to_zero) {
          for (int64_t k = 0; k < n * Sk; ++k) s[static_cast<size_t>(k)] = std::isnan(s[static_cast<size_t>(k)]) ? 0.0f : s[static_cast<size_t>(k)];
        }
        const GemmOperand pa{s.data(), Sk, false, nullptr};
        const GemmOperand vb{nullptr, 0, false, v_packed[bi].get()};
        gemm_f32(n, Dv, Sk, pa, vb, out + p.out_off[bi] + r0 * p.out_row, p.out_row, plain, nullptr);
      }
    };
    const int64_t tasks = p.batches * blocks;
    ThreadPool& pool = ctx.pool();
    const double flops = 2.0 * static_cast<double>(Sq) * static_cast<double>(Sk) * static_cast<double>(D + Dv) *
                         static_cast<double>(p.batches);
    if (pool.size() > 1 && tasks > 1 && flops > 1e6) {
      pool.parallel_for(p.batches, 1, pack);
      pool.parallel_for(tasks, 1, task);
    } else {
      pack(0, p.batches);
      task(0, tasks);
    }
    return Status::OK();
  }

 private:
  reference::AttentionAttrs attrs_;
};

constexpr KernelDef kVariants[] = {
    {"com.orchard", "FusedAttention", 1, 2, make<FusedAttentionF32>, {DType::float32}, 0, 0, 10},
};

}  // namespace

std::span<const KernelDef> attention_variants() { return kVariants; }

}  // namespace orchard::cpu::opt
