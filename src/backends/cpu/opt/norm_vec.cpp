// Vectorised float32 LayerNormalization (opset 17; scale and bias of the normalised shape, statistics
// outputs unused) and BatchNormalization in inference mode (opset 9+). Other cases go to the reference.
#include <cmath>
#include <vector>

#include "backends/cpu/opt/vec_math_kernels.hpp"
#include "backends/cpu/shape_util.hpp"

namespace orchard::cpu::opt {

namespace {

// True when t is a float32 tensor of dims.numel() values that broadcasts to `dims` (so, leading 1s aside,
// has them), as a full row of scale or bias.
bool f32_of_dims(const Tensor& t, const Shape& dims) {
  if (t.dtype() != DType::float32 || t.rank() > dims.rank() || t.numel() != dims.numel()) return false;
  for (size_t d = 0; d < t.rank(); ++d) {
    const int64_t td = t.dim(d), sd = dims[dims.rank() - t.rank() + d];
    if (td != sd && td != 1) return false;
  }
  return true;
}

class LayerNormKernel final : public VecKernel {
 public:
  LayerNormKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)),
        axis_(c.node.attr_int("axis", -1)),
        eps_(c.node.attr_float("epsilon", 1e-5f)),
        stash_(c.node.attr_int("stash_type", 1)) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (stash_ != 1 || ctx.has_output(1) || ctx.has_output(2) || !ctx.has_input(0) || !ctx.has_input(1)) {
      return run_reference(ctx);
    }
    const Tensor& x = ctx.input(0);
    const Tensor& scale = ctx.input(1);
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    const int64_t rank = static_cast<int64_t>(x.rank());
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (x.dtype() != DType::float32 || axis < 0 || axis >= rank) return run_reference(ctx);
    const Shape norm(x.shape().begin() + axis, x.shape().end());
    if (!f32_of_dims(scale, norm) || (bias && !f32_of_dims(*bias, norm))) return run_reference(ctx);
    const int64_t cols = norm.numel();
    if (cols == 0) return run_reference(ctx);
    const int64_t rows = x.numel() / cols;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, x.shape()));
    const float* px = x.data<float>();
    const float* ps = scale.data<float>();
    const float* pb = bias ? bias->data<float>() : nullptr;
    float* py = y.data<float>();
    const VecKernels& vk = vec_kernels();
    const float eps = eps_;
    parallel_items(ctx.pool(), rows, cols, [&](int64_t b, int64_t e) {
      vk.layer_norm_rows(px + b * cols, py + b * cols, e - b, cols, ps, pb, eps, nullptr, nullptr);
    });
    return Status::OK();
  }

 private:
  int64_t axis_;
  float eps_;
  int64_t stash_;
};

class BatchNormKernel final : public VecKernel {
 public:
  BatchNormKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)),
        eps_(c.node.attr_float("epsilon", 1e-5f)),
        training_(c.node.attr_int("training_mode", 0) != 0) {}
  static bool accepts(const KernelCreateContext& c) { return c.node.opset >= 9 && maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    bool plain = !training_;
    for (size_t i = 1; i < 5; ++i) plain = plain && !ctx.has_output(i);
    for (size_t i = 0; i < 5; ++i) plain = plain && ctx.has_input(i) && ctx.value(i).is_tensor();
    if (!plain) return run_reference(ctx);
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::float32 || x.rank() < 2) return run_reference(ctx);
    const int64_t n = x.dim(0), c = x.dim(1), size = dims_product(x.shape(), 2, x.rank());
    for (size_t i = 1; i < 5; ++i) {
      if (ctx.input(i).dtype() != DType::float32 || ctx.input(i).numel() != c) return run_reference(ctx);
    }
    const float* scale = ctx.input(1).data<float>();
    const float* bias = ctx.input(2).data<float>();
    const float* mean = ctx.input(3).data<float>();
    const float* var = ctx.input(4).data<float>();
    std::vector<float> a(static_cast<size_t>(c)), b(static_cast<size_t>(c));
    for (int64_t k = 0; k < c; ++k) {
      const double ak = static_cast<double>(scale[k]) / std::sqrt(static_cast<double>(var[k]) + eps_);
      a[static_cast<size_t>(k)] = static_cast<float>(ak);
      b[static_cast<size_t>(k)] = static_cast<float>(static_cast<double>(bias[k]) - static_cast<double>(mean[k]) * ak);
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, x.shape()));
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const VecKernels& vk = vec_kernels();
    parallel_items(ctx.pool(), n * c, size, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const size_t k = static_cast<size_t>(p % c);
        vk.scale_shift(px + p * size, py + p * size, size, a[k], b[k]);
      }
    });
    return Status::OK();
  }

 private:
  double eps_;
  bool training_;
};

constexpr KernelDef kKernels[] = {
    vec_def("", "LayerNormalization", 17, kVerifiedOpset, make_vec<LayerNormKernel>),
    vec_def("", "BatchNormalization", 9, kVerifiedOpset, make_vec<BatchNormKernel>),
};

}  // namespace

std::span<const KernelDef> norm_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
