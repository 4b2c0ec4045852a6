// Vectorised float32 GlobalAveragePool: the mean of each (n, c) plane as one contiguous row.
#include "backends/cpu/opt/vec_math_kernels.hpp"

namespace orchard::cpu::opt {

namespace {

class GlobalAveragePoolKernel final : public VecKernel {
 public:
  GlobalAveragePoolKernel(const KernelCreateContext&, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor()) return run_reference(ctx);
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::float32 || x.rank() < 3) return run_reference(ctx);
    const int64_t inner = dims_product(x.shape(), 2, x.rank());
    if (inner == 0) return run_reference(ctx);
    Shape out{x.dim(0), x.dim(1)};
    for (size_t d = 2; d < x.rank(); ++d) out.push_back(1);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, out));
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const VecKernels& vk = vec_kernels();
    const float mul = 1.0f / static_cast<float>(inner);
    parallel_items(ctx.pool(), y.numel(), inner, [&](int64_t b, int64_t e) {
      vk.row_sums(px + b * inner, py + b, e - b, inner, mul);
    });
    return Status::OK();
  }
};

constexpr KernelDef kKernels[] = {
    vec_def("", "GlobalAveragePool", 1, kVerifiedOpset, make_vec<GlobalAveragePoolKernel>),
};

}  // namespace

std::span<const KernelDef> pool_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
