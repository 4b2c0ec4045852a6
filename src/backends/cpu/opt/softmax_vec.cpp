// Vectorised float32 Softmax and LogSoftmax along the last axis (every opset-1..12 case, whose 2-D
// coercion makes rows contiguous; from opset 13 when the axis is the last one). Other axes go to the
// reference kernel.
#include "backends/cpu/opt/vec_math_kernels.hpp"
#include "backends/cpu/shape_util.hpp"

namespace orchard::cpu::opt {

namespace {

template <bool Log>
class SoftmaxKernel final : public VecKernel {
 public:
  SoftmaxKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)), axis_(c.node.attr_int("axis", c.node.opset < 13 ? 1 : -1)) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor() || ctx.input(0).dtype() != DType::float32) {
      return run_reference(ctx);
    }
    const Tensor& x = ctx.input(0);
    const int64_t rank = static_cast<int64_t>(x.rank());
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    const bool coerce = ctx.node().opset < 13;
    // Opset 13: only the last axis is contiguous. Opset < 13: rows are dims [axis, rank) (axis may be rank).
    if (rank == 0 || axis < 0 || axis > rank || (!coerce && axis != rank - 1)) return run_reference(ctx);
    const int64_t n = dims_product(x.shape(), static_cast<size_t>(axis), x.rank());
    if (n == 0) return run_reference(ctx);
    const int64_t rows = x.numel() / n;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, x.shape()));
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const VecKernels& vk = vec_kernels();
    parallel_items(ctx.pool(), rows, n,
                   [&](int64_t b, int64_t e) { vk.softmax_rows(px + b * n, py + b * n, e - b, n, Log); });
    return Status::OK();
  }

 private:
  int64_t axis_;
};

constexpr KernelDef kKernels[] = {
    vec_def("", "Softmax", 1, kVerifiedOpset, make_vec<SoftmaxKernel<false>>),
    vec_def("", "LogSoftmax", 1, kVerifiedOpset, make_vec<SoftmaxKernel<true>>),
};

}  // namespace

std::span<const KernelDef> softmax_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
