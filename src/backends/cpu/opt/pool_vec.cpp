// Vectorised float32 GlobalAveragePool (the mean of each (n, c) plane as one contiguous row) and 2-D
// MaxPool without dilation or Indices output (per output row: an elementwise max of the window's input rows,
// then the max of each window along it). Other pools go to the reference kernel.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/opt/vec_math_kernels.hpp"
#include "backends/cpu/shape_util.hpp"

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
    parallel_items(ctx.pool(), y.numel(), inner,
                   [&](int64_t b, int64_t e) { vk.row_sums(px + b * inner, py + b, e - b, inner, mul); });
    return Status::OK();
  }
};

// col[w] = max(col[w], row[w]) with NaNs in row skipped; returns whether row held a NaN.
bool max_into(const float* __restrict row, float* __restrict col, int64_t n) {
  int nan = 0;
  for (int64_t w = 0; w < n; ++w) {
    const float v = row[w];
    col[w] = v > col[w] ? v : col[w];
    nan |= v != v;
  }
  return nan != 0;
}

class MaxPoolKernel final : public VecKernel {
 public:
  MaxPoolKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)),
        kernel_(c.node.attr_ints("kernel_shape")),
        stride_(c.node.attr_ints("strides", {1, 1})),
        dilation_(c.node.attr_ints("dilations", {1, 1})),
        pads_(c.node.attr_ints("pads", {0, 0, 0, 0})),
        auto_pad_(c.node.attr_string("auto_pad", "NOTSET")),
        ceil_mode_(c.node.attr_int("ceil_mode", 0) != 0),
        storage_order_(c.node.attr_int("storage_order", 0)) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor() || ctx.has_output(1)) return run_reference(ctx);
    const Tensor& x = ctx.input(0);
    const bool plain = x.dtype() == DType::float32 && x.rank() == 4 && kernel_.size() == 2 && stride_.size() == 2 &&
                       dilation_ == std::vector<int64_t>{1, 1} && pads_.size() == 4 &&
                       (storage_order_ == 0 || storage_order_ == 1);
    if (!plain || kernel_[0] < 1 || kernel_[1] < 1 || stride_[0] < 1 || stride_[1] < 1 ||
        std::any_of(pads_.begin(), pads_.end(), [](int64_t p) { return p < 0; })) {
      return run_reference(ctx);  // other pools, or the reference's error
    }
    const int64_t H = x.dim(2), W = x.dim(3);
    const int64_t in[2] = {H, W};
    int64_t pad_begin[2] = {pads_[0], pads_[1]}, pad_end[2] = {pads_[2], pads_[3]};
    auto out = spatial_output_shape(in, kernel_, stride_, dilation_, pad_begin, pad_end, auto_pad_, ceil_mode_);
    if (!out.ok()) return run_reference(ctx);
    const int64_t OH = (*out)[0], OW = (*out)[1], kh = kernel_[0], kw = kernel_[1], sh = stride_[0], sw = stride_[1];
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, Shape{x.dim(0), x.dim(1), OH, OW}));
    const float* px = x.data<float>();
    float* py = y.data<float>();
    if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && pad_begin[0] == 0 && pad_begin[1] == 0 && 2 * OH <= H &&
        2 * OW <= W) {
      // 2x2 windows at stride 2 inside the image (the common pool of small CNNs): each window read in the
      // reference's order, the first value kept unless a later one is greater (so NaNs behave alike).
      parallel_items(ctx.pool(), x.dim(0) * x.dim(1), std::max<int64_t>(1, OH * OW * 4), [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          for (int64_t oh = 0; oh < OH; ++oh) {
            const float* r0 = px + (p * H + 2 * oh) * W;
            const float* r1 = r0 + W;
            float* out = py + (p * OH + oh) * OW;
            for (int64_t ow = 0; ow < OW; ++ow) {
              float m = r0[2 * ow];
              for (const float v : {r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]}) m = v > m ? v : m;
              out[ow] = m;
            }
          }
        }
      });
      return Status::OK();
    }
    constexpr float kLowest = -std::numeric_limits<float>::infinity();
    // The row of column maxima is kept with pad_begin[1] slots of -inf before it and enough after it for the
    // last window (ceil_mode), so every window reads inside the row: max over j < kw of cp[ow * sw + j].
    const int64_t lead = pad_begin[1], width = std::max(lead + W, (OW - 1) * sw + kw);
    parallel_items(ctx.pool(), x.dim(0) * x.dim(1), std::max<int64_t>(1, OH * OW * kh * kw), [&](int64_t b, int64_t e) {
      // cp: the padded row; even / odd: its even and odd slots apart, for stride 2 (contiguous reads).
      std::vector<float> buf(static_cast<size_t>(2 * width + 2));
      float* cp = buf.data();
      float* even = cp + width;
      float* odd = even + (width + 1) / 2;
      std::fill(cp, cp + width, kLowest);
      for (int64_t p = b; p < e; ++p) {
        const float* plane = px + p * H * W;
        float* dst = py + p * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t hs = oh * sh - pad_begin[0];
          const int64_t h0 = std::max<int64_t>(0, hs), h1 = std::min(H, hs + kh);
          // col[w] = max of rows h0..h1 at w, NaNs skipped (a NaN first in its window is put back below).
          float* col = cp + lead;
          std::fill(col, col + W, kLowest);
          bool nan_seen = false;
          for (int64_t h = h0; h < h1; ++h) nan_seen |= max_into(plane + h * W, col, W);
          float* out = dst + oh * OW;
          if (sw == 2) {
            const int64_t ne = (width + 1) / 2, no = width / 2;
            for (int64_t i = 0; i < ne; ++i) even[i] = cp[2 * i];
            for (int64_t i = 0; i < no; ++i) odd[i] = cp[2 * i + 1];
            for (int64_t ow = 0; ow < OW; ++ow) out[ow] = even[ow];
            for (int64_t j = 1; j < kw; ++j) {
              const float* src = (j % 2 ? odd : even) + j / 2;
              for (int64_t ow = 0; ow < OW; ++ow) out[ow] = src[ow] > out[ow] ? src[ow] : out[ow];
            }
          } else {
            for (int64_t ow = 0; ow < OW; ++ow) out[ow] = cp[ow * sw];
            for (int64_t j = 1; j < kw; ++j) {
              const float* src = cp + j;
              for (int64_t ow = 0; ow < OW; ++ow) out[ow] = src[ow * sw] > out[ow] ? src[ow * sw] : out[ow];
            }
          }
          if (nan_seen && h0 < h1) {  // the reference keeps a NaN that comes first in its window
            for (int64_t ow = 0; ow < OW; ++ow) {
              const int64_t w0 = std::max<int64_t>(0, ow * sw - lead);
              if (w0 < std::min(W, ow * sw - lead + kw) && std::isnan(plane[h0 * W + w0])) out[ow] = plane[h0 * W + w0];
            }
          }
        }
      }
    });
    return Status::OK();
  }

 private:
  std::vector<int64_t> kernel_, stride_, dilation_, pads_;
  std::string auto_pad_;
  bool ceil_mode_;
  int64_t storage_order_;
};

constexpr KernelDef kKernels[] = {
    vec_def("", "GlobalAveragePool", 1, kVerifiedOpset, make_vec<GlobalAveragePoolKernel>),
    vec_def("", "MaxPool", 1, kVerifiedOpset, make_vec<MaxPoolKernel>),
};

}  // namespace

std::span<const KernelDef> pool_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
