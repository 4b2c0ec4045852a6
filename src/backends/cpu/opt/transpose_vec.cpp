// Float32 Transpose by 4x4 blocks transposed in registers: the copy's dims merged as the reference merges them
// (copy_util.hpp: merge_copy_dims, transpose_plan), then, when it is a batch of 2-D transposes, 32x32 tiles of
// 4x4 blocks (vectors of 4 floats: the baseline of every target), tiles split over the pool. Other permutations,
// an alias (the data's order unchanged), other dtypes and bad perms go to the reference kernel.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/copy_util.hpp"
#include "backends/cpu/opt/vec_math_kernels.hpp"
#include "backends/cpu/shape_util.hpp"

namespace orchard::cpu::opt {

namespace {

typedef float v4 __attribute__((vector_size(16)));

inline v4 load4(const float* p) {
  v4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, v4 v) { std::memcpy(p, &v, sizeof v); }

// out[i * ldo + k] = in[i + k * ldi] for i < rows, k < cols: 4x4 blocks in registers, the edges one by one.
void transpose_tile(const float* in, int64_t ldi, float* out, int64_t ldo, int64_t rows, int64_t cols) {
  int64_t k = 0;
  for (; k + 4 <= cols; k += 4) {
    int64_t i = 0;
    for (; i + 4 <= rows; i += 4) {
      const float* s = in + i + k * ldi;
      const v4 a0 = load4(s), a1 = load4(s + ldi), a2 = load4(s + 2 * ldi), a3 = load4(s + 3 * ldi);
      const v4 t0 = __builtin_shufflevector(a0, a1, 0, 4, 1, 5), t1 = __builtin_shufflevector(a0, a1, 2, 6, 3, 7);
      const v4 t2 = __builtin_shufflevector(a2, a3, 0, 4, 1, 5), t3 = __builtin_shufflevector(a2, a3, 2, 6, 3, 7);
      float* d = out + i * ldo + k;
      store4(d, __builtin_shufflevector(t0, t2, 0, 1, 4, 5));
      store4(d + ldo, __builtin_shufflevector(t0, t2, 2, 3, 6, 7));
      store4(d + 2 * ldo, __builtin_shufflevector(t1, t3, 0, 1, 4, 5));
      store4(d + 3 * ldo, __builtin_shufflevector(t1, t3, 2, 3, 6, 7));
    }
    for (; i < rows; ++i) {
      for (int64_t q = 0; q < 4; ++q) out[i * ldo + k + q] = in[i + (k + q) * ldi];
    }
  }
  for (; k < cols; ++k) {
    for (int64_t i = 0; i < rows; ++i) out[i * ldo + k] = in[i + k * ldi];
  }
}

class TransposeKernel final : public VecKernel {
 public:
  TransposeKernel(const KernelCreateContext&, std::unique_ptr<OpKernel> reference) : VecKernel(std::move(reference)) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor()) return run_reference(ctx);
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::float32) return run_reference(ctx);
    const size_t r = x.rank();
    std::vector<int64_t> perm = ctx.node().attr_ints("perm");
    if (!ctx.node().attr("perm")) {
      perm.resize(r);
      for (size_t i = 0; i < r; ++i) perm[i] = static_cast<int64_t>(r - 1 - i);
    }
    if (perm.size() != r) return run_reference(ctx);  // the reference words the error
    std::vector<bool> seen(r, false);
    for (int64_t& p : perm) {
      if (p < 0) p += static_cast<int64_t>(r);
      if (p < 0 || p >= static_cast<int64_t>(r) || seen[static_cast<size_t>(p)]) return run_reference(ctx);
      seen[static_cast<size_t>(p)] = true;
    }
    const std::vector<int64_t> in_strides = strides_of(x.shape());
    std::vector<int64_t> odims(r), ostrides(r);
    for (size_t i = 0; i < r; ++i) {
      odims[i] = x.dim(static_cast<size_t>(perm[i]));
      ostrides[i] = in_strides[static_cast<size_t>(perm[i])];
    }
    std::vector<int64_t> d2, s2;
    TransposePlan plan;
    // Empty, an alias (non-unit dims in order) or not a batch of 2-D transposes: the reference's cases.
    if (!merge_copy_dims(odims, ostrides, d2, s2) || !transpose_plan(d2, s2, plan)) return run_reference(ctx);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, Shape(odims)));
    const float* px = x.data<float>();
    float* py = y.data<float>();
    constexpr int64_t kTile = 32;
    const int64_t row_tiles = (plan.rows + kTile - 1) / kTile, col_tiles = (plan.inner + kTile - 1) / kTile;
    const int64_t per_outer = row_tiles * col_tiles;
    int64_t outer = 1;
    for (int64_t d : plan.outer_dims) outer *= d;
    const StridedWalk<2> base(plan.outer_dims, {plan.outer_in_strides, plan.outer_out_steps});
    parallel_items(ctx.pool(), outer * per_outer, kTile * kTile, [&](int64_t b, int64_t e) {
      StridedWalk<2> w = base;
      for (int64_t t = b; t < e; ++t) {
        if (t == b || t % per_outer == 0) w.seek(t / per_outer);
        const int64_t i0 = (t % per_outer) / col_tiles * kTile, k0 = (t % per_outer) % col_tiles * kTile;
        transpose_tile(px + w.offset(0) + i0 + k0 * plan.inner_stride, plan.inner_stride,
                       py + w.offset(1) + i0 * plan.row_out_stride + k0, plan.row_out_stride,
                       std::min(kTile, plan.rows - i0), std::min(kTile, plan.inner - k0));
      }
    });
    return Status::OK();
  }
};

constexpr KernelDef kKernels[] = {
    vec_def("", "Transpose", 1, kVerifiedOpset, make_vec<TransposeKernel>),
};

}  // namespace

std::span<const KernelDef> transpose_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
