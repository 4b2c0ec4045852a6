// Convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv (1-D to N-D spatial, groups).
// Conv is the direct convolution of dense.hpp (plain loops; the fast paths are the variants in opt/).
// ConvTranspose is the portable blocked GEMM (gemm.hpp) + col2im. Float16 computes in float; the integer
// convolutions compute exactly in float64 after subtracting zero points.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/gemm.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/requantize.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/reference/dense.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

// ---- geometry ------------------------------------------------------------------------------------

void ConvGeom::finish() {
  in_size = out_size = kernel_size = 1;
  for (size_t d = 0; d < in.size(); ++d) {
    in_size *= in[d];
    out_size *= out[d];
    kernel_size *= kernel[d];
  }
}

Status read_conv_attributes(const graph::Node& node, const std::vector<int64_t>& w_spatial, ConvGeom& g) {
  const size_t r = w_spatial.size();
  g.kernel = node.attr_ints("kernel_shape", w_spatial);
  if (g.kernel != w_spatial) {
    return invalid_argument("kernel_shape ", Shape(g.kernel).to_string(), " does not match the weight's spatial dims ",
                            Shape(w_spatial).to_string());
  }
  g.stride = node.attr_ints("strides", std::vector<int64_t>(r, 1));
  g.dilation = node.attr_ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  if (g.stride.size() != r || g.dilation.size() != r || pads.size() != 2 * r) {
    return invalid_argument("strides, dilations and pads must have ", r, ", ", r, " and ", 2 * r,
                            " values for a ", r, "-D convolution");
  }
  for (size_t d = 0; d < r; ++d) {
    if (g.stride[d] < 1 || g.dilation[d] < 1 || g.kernel[d] < 1 || pads[d] < 0 || pads[d + r] < 0) {
      return invalid_argument("strides, dilations and kernel dims must be positive and pads non-negative");
    }
  }
  g.pad_begin.assign(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(r));
  g.pad_end.assign(pads.begin() + static_cast<std::ptrdiff_t>(r), pads.end());
  g.group = node.attr_int("group", 1);
  if (g.group < 1) return invalid_argument("group ", g.group, " must be positive");
  return Status::OK();
}

Result<ConvGeom> conv_geometry(const graph::Node& node, const Shape& x, const Shape& w) {
  if (x.rank() < 3 || w.rank() != x.rank()) {
    return invalid_argument("input ", x.to_string(), " and weight ", w.to_string(),
                            " must have the same rank, at least 3");
  }
  ConvGeom g;
  ORCHARD_RETURN_IF_ERROR(read_conv_attributes(node, std::vector<int64_t>(w.begin() + 2, w.end()), g));
  g.N = x[0];
  g.C = x[1];
  g.M = w[0];
  if (g.C != w[1] * g.group || g.M % g.group != 0) {
    return invalid_argument("input channels ", g.C, " and weight ", w.to_string(), " do not match group ", g.group);
  }
  g.in.assign(x.begin() + 2, x.end());
  ORCHARD_ASSIGN_OR_RETURN(g.out, spatial_output_shape(g.in, g.kernel, g.stride, g.dilation, g.pad_begin, g.pad_end,
                                                       node.attr_string("auto_pad", "NOTSET"), false));
  g.finish();
  return g;
}

Shape conv_output_shape(const ConvGeom& g) {
  Shape s{g.N, g.M};
  for (int64_t d : g.out) s.push_back(d);
  return s;
}

Status validate_conv(const runtime::KernelCreateContext& ctx) {
  const Tensor* w = ctx.constant_input(1);
  if (w == nullptr || w->rank() < 3) return Status::OK();  // checked per shape in conv_state()
  ConvGeom g;
  return read_conv_attributes(ctx.node, std::vector<int64_t>(w->shape().begin() + 2, w->shape().end()), g);
}

Result<std::shared_ptr<const runtime::KernelState>> conv_state(const graph::Node& node, std::span<const Shape> shapes) {
  if (shapes.size() < 2) return invalid_argument("needs inputs X and W");
  auto state = std::make_shared<ConvState>();
  ORCHARD_ASSIGN_OR_RETURN(state->g, conv_geometry(node, shapes[0], shapes[1]));
  return std::shared_ptr<const runtime::KernelState>(std::move(state));
}

template <class C>
void conv_direct(const ConvGeom& g, const C* x, const C* w, const C* bias, C* y, ThreadPool& pool) {
  const size_t r = g.rank();
  const int64_t cg = g.c_per_group(), mg = g.m_per_group();
  // One task per output plane (image n, output channel m).
  pool.parallel_for(g.N * g.M, 1, [&](int64_t p0, int64_t p1) {
    std::vector<int64_t> o(r), k(r);
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / g.M, m = p % g.M, first_c = (m / mg) * cg;
      for (int64_t oi = 0; oi < g.out_size; ++oi) {
        for (int64_t i = oi, d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
          o[static_cast<size_t>(d)] = i % g.out[static_cast<size_t>(d)];
          i /= g.out[static_cast<size_t>(d)];
        }
        C acc = bias ? bias[m] : C(0);
        for (int64_t c = 0; c < cg; ++c) {
          const C* xc = x + (n * g.C + first_c + c) * g.in_size;
          const C* wc = w + (m * cg + c) * g.kernel_size;
          for (int64_t ki = 0; ki < g.kernel_size; ++ki) {
            for (int64_t i = ki, d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
              k[static_cast<size_t>(d)] = i % g.kernel[static_cast<size_t>(d)];
              i /= g.kernel[static_cast<size_t>(d)];
            }
            // The input position output o sees through kernel offset k; outside the image it reads 0.
            int64_t at = 0;
            bool inside = true;
            for (size_t d = 0; d < r && inside; ++d) {
              const int64_t pos = o[d] * g.stride[d] - g.pad_begin[d] + k[d] * g.dilation[d];
              inside = pos >= 0 && pos < g.in[d];
              at = at * g.in[d] + pos;
            }
            if (inside) acc += xc[at] * wc[ki];
          }
        }
        y[p * g.out_size + oi] = acc;
      }
    }
  });
}

template void conv_direct<float>(const ConvGeom&, const float*, const float*, const float*, float*, ThreadPool&);
template void conv_direct<double>(const ConvGeom&, const double*, const double*, const double*, double*, ThreadPool&);

namespace {

// Geometry of ConvTranspose for x [N, C, D...] and w [C, M/group, k...]; g.in is the input's spatial
// size (the small side), g.out the output's.
Result<ConvGeom> conv_transpose_geometry(const graph::Node& node, const Shape& x, const Shape& w) {
  if (x.rank() < 3 || w.rank() != x.rank()) {
    return invalid_argument("input ", x.to_string(), " and weight ", w.to_string(),
                            " must have the same rank, at least 3");
  }
  ConvGeom g;
  const size_t r = x.rank() - 2;
  ORCHARD_RETURN_IF_ERROR(read_conv_attributes(node, std::vector<int64_t>(w.begin() + 2, w.end()), g));
  g.N = x[0];
  g.C = x[1];
  if (w[0] != g.C || g.C % g.group != 0) {
    return invalid_argument("input channels ", g.C, " and weight ", w.to_string(), " do not match group ", g.group);
  }
  g.M = w[1] * g.group;
  g.in.assign(x.begin() + 2, x.end());
  g.out.resize(r);
  const std::vector<int64_t> out_pad = node.attr_ints("output_padding", std::vector<int64_t>(r, 0));
  std::vector<int64_t> out_shape = node.attr_ints("output_shape");
  if (out_shape.size() == r + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (out_pad.size() != r || (!out_shape.empty() && out_shape.size() != r)) {
    return invalid_argument("output_padding and output_shape must have ", r, " values");
  }
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") {
    return invalid_argument("auto_pad '", auto_pad, "' is not supported");
  }
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  for (size_t d = 0; d < r; ++d) {
    const int64_t eff_k = (g.kernel[d] - 1) * g.dilation[d] + 1;
    const int64_t full = g.stride[d] * (g.in[d] - 1) + out_pad[d] + eff_k;
    if (!out_shape.empty() || same) {
      g.out[d] = out_shape.empty() ? g.in[d] * g.stride[d] : out_shape[d];
      // An output larger than the natural size grows at the end (no negative padding), as in
      // onnxruntime; a smaller one is cropped per auto_pad.
      const int64_t total = std::max<int64_t>(0, full - g.out[d]);
      const int64_t half = total / 2;
      if (auto_pad == "SAME_UPPER") {
        g.pad_begin[d] = half;
        g.pad_end[d] = total - half;
      } else {
        g.pad_begin[d] = total - half;
        g.pad_end[d] = half;
      }
    } else {
      if (auto_pad == "VALID") g.pad_begin[d] = g.pad_end[d] = 0;
      g.out[d] = full - g.pad_begin[d] - g.pad_end[d];
    }
    if (g.out[d] < 0) return invalid_argument("output size ", g.out[d], " in spatial dim ", d, " is negative");
  }
  g.finish();
  return g;
}

// ---- col2im --------------------------------------------------------------------------------------

// Splits kernel offset k (row-major over g.kernel) into per-dim kernel indices.
void unravel_kernel(const ConvGeom& g, int64_t k, std::vector<int64_t>& kidx) {
  for (size_t d = g.rank(); d-- > 0;) {
    kidx[d] = k % g.kernel[d];
    k /= g.kernel[d];
  }
}

// The positions p in [0, n) with 0 <= p * stride + off < extent, as [lo, hi).
std::pair<int64_t, int64_t> valid_range(int64_t off, int64_t stride, int64_t extent, int64_t n) {
  int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t hi = extent - off <= 0 ? 0 : (extent - off + stride - 1) / stride;
  lo = std::min(lo, n);
  hi = std::min(std::max(hi, lo), n);
  return {lo, hi};
}

// The offset in an image of spatial dims `image` (row strides `strides`) of the row that row `row` of a
// grid of dims `grid` (both without their last dim) sees through kernel indices kidx; -1 in the padding.
int64_t image_row_offset(const ConvGeom& g, const std::vector<int64_t>& grid, const std::vector<int64_t>& image,
                         const std::vector<int64_t>& strides, const std::vector<int64_t>& kidx, int64_t row) {
  int64_t off = 0;
  for (size_t d = g.rank() - 1; d-- > 0;) {
    const int64_t p = row % grid[d];
    row /= grid[d];
    const int64_t c = p * g.stride[d] - g.pad_begin[d] + kidx[d] * g.dilation[d];
    if (c < 0 || c >= image[d]) return -1;
    off += c * strides[d];
  }
  return off;
}

// Row-major strides of the spatial dims `dims`.
std::vector<int64_t> spatial_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t d = dims.size() - 1; d-- > 0;) s[d] = s[d + 1] * dims[d + 1];
  return s;
}

// Adds cols [(channels * kernel_size) x in_size] into y [channels, out...] (the transpose of im2col, with
// g.in the columns' spatial grid and g.out the image's).
template <class C>
void col2im(const ConvGeom& g, const C* cols, int64_t channels, C* y, ThreadPool& pool) {
  const size_t r = g.rank();
  const int64_t rows_per_in = g.in_size / g.in[r - 1];
  const int64_t iw = g.in[r - 1], ow = g.out[r - 1], sw = g.stride[r - 1], dw = g.dilation[r - 1], pw = g.pad_begin[r - 1];
  const std::vector<int64_t> out_strides = spatial_strides(g.out);
  // Parallel over output channels: each channel's kernel rows add into its own image only.
  pool.parallel_for(channels, 1, [&](int64_t c0, int64_t c1) {
    std::vector<int64_t> kidx(r);
    for (int64_t c = c0; c < c1; ++c) {
      C* yc = y + c * g.out_size;
      for (int64_t kk = 0; kk < g.kernel_size; ++kk) {
        unravel_kernel(g, kk, kidx);
        const C* src = cols + (c * g.kernel_size + kk) * g.in_size;
        const int64_t kx_off = kidx[r - 1] * dw - pw;
        // Valid input range along the last dim: 0 <= ix*sw + kx_off < ow.
        const auto [lo, hi] = valid_range(kx_off, sw, ow, iw);
        for (int64_t irow = 0; irow < rows_per_in; ++irow) {
          const int64_t off = image_row_offset(g, g.in, g.out, out_strides, kidx, irow);
          if (off < 0) continue;
          const C* s = src + irow * iw;
          C* dst = yc + off + kx_off;
          for (int64_t i = lo; i < hi; ++i) dst[i * sw] += s[i];
        }
      }
    }
  });
}

// ---- compute cores -------------------------------------------------------------------------------

// ConvTranspose's products: the portable blocked GEMM of gemm.hpp (not plain loops; it has no variant yet).
template <class C>
void gemm_c(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const C* A, int64_t lda, const C* B, int64_t ldb,
            C beta, C* Y, int64_t ldc, ThreadPool* pool) {
  if constexpr (std::is_same_v<C, float>) gemm_f32(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, Y, ldc, pool);
  else gemm_f64(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, Y, ldc, pool);
}

// y [N, M, out...] = conv_transpose(x [N, C, in...], w [C, M/group, k...]) + bias [M].
template <class C>
void conv_transpose_core(const ConvGeom& g, const C* x, const C* w, const C* bias, C* y, ThreadPool& pool) {
  if (g.N == 0 || g.M == 0) return;
  const int64_t cg = g.c_per_group(), mg = g.m_per_group();
  const int64_t rows = mg * g.kernel_size;
  std::vector<C> cols(static_cast<size_t>(rows * g.in_size));
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t gi = 0; gi < g.group; ++gi) {
      const C* xg = x + (n * g.C + gi * cg) * g.in_size;
      const C* wg = w + gi * cg * rows;
      C* yg = y + (n * g.M + gi * mg) * g.out_size;
      for (int64_t m = 0; m < mg; ++m) {
        std::fill(yg + m * g.out_size, yg + (m + 1) * g.out_size, bias ? bias[gi * mg + m] : C(0));
      }
      if (g.in_size == 0) continue;
      // cols = w_g^T x_g: [(M/g * k) x C/g] times [C/g x in_size].
      gemm_c<C>(true, false, rows, g.in_size, cg, wg, rows, xg, g.in_size, C(0), cols.data(), g.in_size, &pool);
      col2im(g, cols.data(), mg, yg, pool);
    }
  }
}

// ---- float kernels -------------------------------------------------------------------------------

// Conv and ConvTranspose on float types. Attributes are checked at create when the weight is a constant;
// the geometry is computed per input shape in reshape().
template <bool Transpose>
class ConvFloatKernel final : public OpKernel {
 public:
  explicit ConvFloatKernel(const KernelCreateContext& ctx) : node_(ctx.node) {}

  static Status validate(const KernelCreateContext& ctx) { return validate_conv(ctx); }

  bool has_reshape() const override { return true; }

  Result<std::shared_ptr<const runtime::KernelState>> reshape(std::span<const Shape> shapes) const override {
    if constexpr (Transpose) {
      if (shapes.size() < 2) return invalid_argument("needs inputs X and W");
      auto state = std::make_shared<ConvState>();
      ORCHARD_ASSIGN_OR_RETURN(state->g, conv_transpose_geometry(node_, shapes[0], shapes[1]));
      return std::shared_ptr<const runtime::KernelState>(std::move(state));
    } else {
      return conv_state(node_, shapes);
    }
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* w, ctx.input_tensor(1));
    const Tensor* b = nullptr;
    if (ctx.has_input(2)) {
      ORCHARD_ASSIGN_OR_RETURN(b, ctx.input_tensor(2));
    }
    if (w->dtype() != x->dtype() || (b && b->dtype() != x->dtype())) {
      return invalid_argument("X, W and B must share an element type, got ", x->description(), ", ", w->description());
    }
    const ConvState* state = ctx.state<ConvState>();
    if (state == nullptr) return internal_error("run without reshape");
    const ConvGeom& g = state->g;
    if (b && b->numel() != g.M) return invalid_argument("bias has ", b->numel(), " values for ", g.M, " output channels");
    return dispatch<kFloats>(x->dtype(), node_.op_type, [&](auto tag) -> Status {
      using T = decltype(tag);
      using C = compute_t<T>;
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), conv_output_shape(g)));
      auto run_core = [&](const C* px, const C* pw, const C* pb, C* py) {
        if constexpr (Transpose) conv_transpose_core<C>(g, px, pw, pb, py, ctx.pool());
        else conv_direct<C>(g, px, pw, pb, py, ctx.pool());
      };
      std::vector<C> xs, ws, bs;
      ComputeOutput<T> out(y);
      run_core(as_compute<T>(*x, xs), as_compute<T>(*w, ws), b ? as_compute<T>(*b, bs) : nullptr, out.data());
      out.finish();
      return Status::OK();
    });
  }

 private:
  const graph::Node& node_;
};

// ---- integer kernels -----------------------------------------------------------------------------

// A zero point or scale that is per tensor (one value) or per output channel (M values).
Result<std::vector<double>> per_channel(const OpContext& ctx, size_t input, const char* what, int64_t M, double fallback,
                                        bool allow_per_channel) {
  if (!ctx.has_input(input)) return std::vector<double>(static_cast<size_t>(M), fallback);
  const Tensor& t = ctx.input(input);
  if (t.numel() == 1) return std::vector<double>(static_cast<size_t>(M), element_as_double(t, 0));
  if (!allow_per_channel || t.numel() != M) {
    return invalid_argument(what, " of shape ", t.shape().to_string(), " must be a scalar",
                            allow_per_channel ? " or have one value per output channel" : "");
  }
  std::vector<double> v(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) v[static_cast<size_t>(i)] = element_as_double(t, i);
  return v;
}

// Computes the exact integer convolution of (x - x_zp) and (w - w_zp[m]), plus `bias`, into `acc`.
Result<ConvGeom> integer_conv(OpContext& ctx, const Tensor& x, const Tensor& w, double x_zp,
                              const std::vector<double>& w_zp, const Tensor* bias, std::vector<double>& acc) {
  if (!is_8bit(x.dtype()) || !is_8bit(w.dtype())) {
    return unsupported(ctx.node().op_type, ": x and w must be int8 or uint8, got ", x.description(), " and ",
                       w.description());
  }
  ORCHARD_ASSIGN_OR_RETURN(ConvGeom g, conv_geometry(ctx.node(), x.shape(), w.shape()));
  std::vector<double> xd(static_cast<size_t>(x.numel())), wd(static_cast<size_t>(w.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) xd[static_cast<size_t>(i)] = element_as_double(x, i) - x_zp;
  const int64_t per_m = g.M ? w.numel() / g.M : 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    wd[static_cast<size_t>(i)] = element_as_double(w, i) - w_zp[static_cast<size_t>(i / per_m)];
  }
  std::vector<double> bd;
  if (bias != nullptr) {
    if (bias->numel() != g.M) return invalid_argument("B has ", bias->numel(), " values for ", g.M, " output channels");
    bd.resize(static_cast<size_t>(g.M));
    for (int64_t i = 0; i < g.M; ++i) bd[static_cast<size_t>(i)] = element_as_double(*bias, i);
  }
  acc.assign(static_cast<size_t>(g.N * g.M * g.out_size), 0.0);
  conv_direct<double>(g, xd.data(), wd.data(), bias ? bd.data() : nullptr, acc.data(), ctx.pool());
  return g;
}

Status conv_integer(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* w, ctx.input_tensor(1));
  double x_zp = 0;
  if (ctx.has_input(2)) {
    if (ctx.input(2).numel() != 1) return invalid_argument("x_zero_point must be a scalar");
    x_zp = element_as_double(ctx.input(2), 0);
  }
  if (w->rank() < 3) return invalid_argument("w must have rank >= 3, got ", w->description());
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> w_zp, per_channel(ctx, 3, "w_zero_point", w->dim(0), 0.0, true));
  std::vector<double> acc;
  ORCHARD_ASSIGN_OR_RETURN(ConvGeom g, integer_conv(ctx, *x, *w, x_zp, w_zp, nullptr, acc));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::int32, conv_output_shape(g)));
  int32_t* o = y.data<int32_t>();
  for (int64_t i = 0; i < y.numel(); ++i) o[i] = static_cast<int32_t>(static_cast<int64_t>(acc[static_cast<size_t>(i)]));
  return Status::OK();
}

Status qlinear_conv(OpContext& ctx) {
  for (size_t i = 0; i < 8; ++i) {
    if (!ctx.has_input(i)) return invalid_argument("input ", i, " is required");
  }
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(3);
  const Tensor& y_zp = ctx.input(7);
  if (!is_8bit(y_zp.dtype())) return unsupported("QLinearConv: y_zero_point must be int8 or uint8, got ", y_zp.description());
  if (ctx.input(1).numel() != 1 || ctx.input(2).numel() != 1 || ctx.input(6).numel() != 1 || y_zp.numel() != 1) {
    return invalid_argument("x_scale, x_zero_point, y_scale and y_zero_point must be scalars");
  }
  const Tensor* bias = ctx.has_input(8) ? &ctx.input(8) : nullptr;
  if (bias && bias->dtype() != DType::int32) return invalid_argument("B must be int32, got ", bias->description());
  if (w.rank() < 3) return invalid_argument("w must have rank >= 3, got ", w.description());
  const int64_t M = w.dim(0);
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> w_zp, per_channel(ctx, 5, "w_zero_point", M, 0.0, true));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> w_scale, per_channel(ctx, 4, "w_scale", M, 1.0, true));
  std::vector<double> acc;
  ORCHARD_ASSIGN_OR_RETURN(ConvGeom g, integer_conv(ctx, x, w, element_as_double(ctx.input(2), 0), w_zp, bias, acc));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, y_zp.dtype(), conv_output_shape(g)));
  const float x_scale = static_cast<float>(element_as_double(ctx.input(1), 0));
  const float y_scale = static_cast<float>(element_as_double(ctx.input(6), 0));
  const double zero = element_as_double(y_zp, 0);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t m = (i / g.out_size) % g.M;
    const float multiplier = x_scale * static_cast<float>(w_scale[static_cast<size_t>(m)]) / y_scale;
    store_requantized(y, i, acc[static_cast<size_t>(i)], multiplier, zero);
  }
  return Status::OK();
}

constexpr KernelDef kKernels[] = {
    {"", "Conv", 1, kVerifiedOpset, make<ConvFloatKernel<false>>},
    {"", "ConvTranspose", 1, kVerifiedOpset, make<ConvFloatKernel<true>>},
    {"", "ConvInteger", 10, kVerifiedOpset, stateless<conv_integer>},
    {"", "QLinearConv", 10, kVerifiedOpset, stateless<qlinear_conv>},
};

}  // namespace

std::span<const KernelDef> conv_kernels() { return kKernels; }

void im2col(const ConvGeom& g, const float* x, int64_t channels, float* cols, ThreadPool& pool) {
  const size_t r = g.rank();
  const int64_t rows_per_out = g.out_size / g.out[r - 1];
  const int64_t ow = g.out[r - 1], iw = g.in[r - 1], sw = g.stride[r - 1], dw = g.dilation[r - 1], pw = g.pad_begin[r - 1];
  const std::vector<int64_t> in_strides = spatial_strides(g.in);
  const int64_t rows = channels * g.kernel_size;
  pool.parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.out_size)), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> kidx(r);
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t c = row / g.kernel_size;
      unravel_kernel(g, row % g.kernel_size, kidx);
      const float* xc = x + c * g.in_size;
      float* dst = cols + row * g.out_size;
      const int64_t kx_off = kidx[r - 1] * dw - pw;
      // Valid output range along the last dim: 0 <= ox*sw + kx_off < iw.
      const auto [lo, hi] = valid_range(kx_off, sw, iw, ow);
      for (int64_t orow = 0; orow < rows_per_out; ++orow) {
        const int64_t off = image_row_offset(g, g.out, g.in, in_strides, kidx, orow);
        float* out = dst + orow * ow;
        if (off < 0) {
          std::fill(out, out + ow, 0.0f);
          continue;
        }
        const float* src = xc + off + kx_off;
        std::fill(out, out + lo, 0.0f);
        if (sw == 1) {
          std::copy(src + lo, src + hi, out + lo);
        } else {
          for (int64_t o = lo; o < hi; ++o) out[o] = src[o * sw];
        }
        std::fill(out + hi, out + ow, 0.0f);
      }
    }
  });
}

}  // namespace orchard::cpu::reference
