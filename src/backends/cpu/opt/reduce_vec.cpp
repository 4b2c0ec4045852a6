// Vectorised float32 ReduceSum and ReduceMean over one run of adjacent axes (from the attribute or a constant
// axes input): trailing axes {k, ..., rank-1} make each output the sum of one contiguous row; a run that ends
// before the last axis (a channels-last image's H and W: GlobalAveragePool in NHWC) sums rows of the inner
// block into one. Other axes, empty axes and noop_with_empty_axes go to the reference kernel.
#include <algorithm>
#include <vector>

#include "backends/cpu/opt/vec_math_kernels.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/kernel_inputs.hpp"

namespace orchard::cpu::opt {

namespace {

template <bool Mean>
class ReduceKernel final : public VecKernel {
 public:
  ReduceKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)),
        keepdims_(c.node.attr_int("keepdims", 1) != 0),
        axes_(c.node.attr_ints("axes")),
        axes_input_(axes_input(c.node)) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor() || ctx.input(0).dtype() != DType::float32) {
      return run_reference(ctx);
    }
    std::vector<int64_t> axes = axes_;
    if (axes_input_ && ctx.has_input(1)) {
      auto given = tensor_to_ints(ctx.input(1), "axes");
      if (!given.ok()) return run_reference(ctx);
      axes = *given;
    }
    const Tensor& x = ctx.input(0);
    const int64_t rank = static_cast<int64_t>(x.rank());
    auto norm = normalize_axes(axes, rank);
    if (axes.empty() || !norm.ok()) return run_reference(ctx);
    std::vector<int64_t> sorted = *norm;
    std::sort(sorted.begin(), sorted.end());
    const int64_t first = sorted.front(), last = sorted.back();
    for (size_t i = 0; i < sorted.size(); ++i) {
      if (sorted[i] != first + static_cast<int64_t>(i)) return run_reference(ctx);  // not adjacent axes
    }
    const int64_t n = dims_product(x.shape(), static_cast<size_t>(first), static_cast<size_t>(last) + 1);
    const int64_t inner = dims_product(x.shape(), static_cast<size_t>(last) + 1, x.rank());
    if (n == 0) return run_reference(ctx);
    Shape out;
    for (int64_t d = 0; d < rank; ++d) {
      if (d < first || d > last)
        out.push_back(x.dim(static_cast<size_t>(d)));
      else if (keepdims_)
        out.push_back(1);
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, out));
    const int64_t rows = y.numel();
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const float mul = Mean ? 1.0f / static_cast<float>(n) : 1.0f;
    if (inner > 1) {  // y[o, i] = mul * sum over r of x[o, r, i]
      // Items of kBlock columns of one o, so that one image (a channels-last GlobalAveragePool) splits over
      // threads too; each item sums its columns in a local block.
      constexpr int64_t kBlock = 64;
      const int64_t outer = rows / inner, blocks = (inner + kBlock - 1) / kBlock;
      parallel_items(ctx.pool(), outer * blocks, n * kBlock, [&](int64_t b, int64_t e) {
        for (int64_t item = b; item < e; ++item) {
          const int64_t o = item / blocks, i0 = item % blocks * kBlock, w = std::min(kBlock, inner - i0);
          const float* xo = px + o * n * inner + i0;
          float acc[kBlock];
          std::copy(xo, xo + w, acc);
          for (int64_t r = 1; r < n; ++r) {
            const float* xr = xo + r * inner;
            for (int64_t i = 0; i < w; ++i) acc[i] += xr[i];
          }
          float* yo = py + o * inner + i0;
          for (int64_t i = 0; i < w; ++i) yo[i] = acc[i] * mul;
        }
      });
      return Status::OK();
    }
    const VecKernels& vk = vec_kernels();
    parallel_items(ctx.pool(), rows, n, [&](int64_t b, int64_t e) { vk.row_sums(px + b * n, py + b, e - b, n, mul); });
    return Status::OK();
  }

 private:
  // ReduceSum takes its axes as input 1 from opset 13, the others from 18.
  static bool axes_input(const graph::Node& n) { return n.opset >= (n.op_type == "ReduceSum" ? 13 : 18); }

  bool keepdims_;
  std::vector<int64_t> axes_;
  bool axes_input_;
};

constexpr KernelDef kKernels[] = {
    vec_def("", "ReduceSum", 1, kVerifiedOpset, make_vec<ReduceKernel<false>>),
    vec_def("", "ReduceMean", 1, kVerifiedOpset, make_vec<ReduceKernel<true>>),
};

}  // namespace

std::span<const KernelDef> reduce_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
