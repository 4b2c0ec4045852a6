// Image and geometry kernels: Resize, Upsample, GridSample, RoiAlign, NonMaxSuppression, Det.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/numeric_cast.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// Largest output (elements) a resampling kernel will allocate; guards against absurd scales.
constexpr double kMaxElements = 1ull << 40;

// Keys cubic convolution weights for the 4 taps at offsets -1, 0, 1, 2 around a point at fraction t.
std::array<double, 4> cubic_weights(double t, double a) {
  auto near = [a](double x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };              // |x| <= 1
  auto far = [a](double x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };        // 1 < |x| < 2
  return {far(t + 1), near(t), near(1 - t), far(2 - t)};
}

// ---------------------------------------------------------------------------------------------------
// Resize and Upsample

enum class InterpMode { nearest, linear, cubic };
enum class CoordMode { half_pixel, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn, tf_crop_and_resize };
enum class NearestMode { round_prefer_floor, round_prefer_ceil, floor, ceil, legacy };

struct ResizeAttrs {
  InterpMode mode = InterpMode::nearest;
  CoordMode coord = CoordMode::half_pixel;
  NearestMode nearest = NearestMode::round_prefer_floor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
};

Result<InterpMode> parse_interp_mode(const std::string& s, bool allow_cubic) {
  if (s == "nearest") return InterpMode::nearest;
  if (s == "linear" || s == "bilinear") return InterpMode::linear;
  if (s == "cubic" && allow_cubic) return InterpMode::cubic;
  return invalid_argument("mode '", s, "' is not supported");
}

Result<ResizeAttrs> parse_resize_attrs(const graph::Node& node) {
  ResizeAttrs a;
  const bool legacy = node.op_type == "Upsample" || node.opset < 11;
  ORCHARD_ASSIGN_OR_RETURN(a.mode, parse_interp_mode(node.attr_string("mode", "nearest"), !legacy));
  if (legacy) {
    // Upsample and Resize-10: asymmetric coordinates; nearest floors when upsampling, rounds up when
    // downsampling (what runtimes have always done for these versions).
    a.coord = CoordMode::asymmetric;
    a.nearest = NearestMode::legacy;
    return a;
  }
  const std::string coord = node.attr_string("coordinate_transformation_mode", "half_pixel");
  if (coord == "half_pixel") a.coord = CoordMode::half_pixel;
  else if (coord == "pytorch_half_pixel") a.coord = CoordMode::pytorch_half_pixel;
  else if (coord == "align_corners") a.coord = CoordMode::align_corners;
  else if (coord == "asymmetric") a.coord = CoordMode::asymmetric;
  else if (coord == "tf_half_pixel_for_nn") a.coord = CoordMode::tf_half_pixel_for_nn;
  else if (coord == "tf_crop_and_resize") a.coord = CoordMode::tf_crop_and_resize;
  else return invalid_argument("coordinate_transformation_mode '", coord, "' is not supported");
  const std::string nearest = node.attr_string("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") a.nearest = NearestMode::round_prefer_floor;
  else if (nearest == "round_prefer_ceil") a.nearest = NearestMode::round_prefer_ceil;
  else if (nearest == "floor") a.nearest = NearestMode::floor;
  else if (nearest == "ceil") a.nearest = NearestMode::ceil;
  else return invalid_argument("nearest_mode '", nearest, "' is not supported");
  a.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = node.attr_float("extrapolation_value", 0.0f);
  return a;
}

// How one axis is resampled: for output index o, taps (index, weight) at [o*taps, (o+1)*taps).
struct AxisPlan {
  int64_t in = 0, out = 0;
  int taps = 1;
  std::vector<int64_t> index;
  std::vector<double> weight;
  std::vector<uint8_t> outside;  // tf_crop_and_resize: the output index maps outside the input
  bool identity = false;
};

// Maps output coordinate x to the input coordinate along one axis.
double source_coordinate(const ResizeAttrs& a, double x, int64_t in, int64_t out, double scale, double roi_start,
                         double roi_end) {
  const double in_len = static_cast<double>(in);
  const double out_len = scale * in_len;  // the (possibly fractional) resized length the coordinate maps use
  switch (a.coord) {
    case CoordMode::half_pixel: return (x + 0.5) / scale - 0.5;
    case CoordMode::pytorch_half_pixel: return out > 1 ? (x + 0.5) / scale - 0.5 : -0.5;
    case CoordMode::align_corners: return out_len == 1 ? 0.0 : x * (in_len - 1) / (out_len - 1);
    case CoordMode::asymmetric: return x / scale;
    case CoordMode::tf_half_pixel_for_nn: return (x + 0.5) / scale;
    case CoordMode::tf_crop_and_resize: {
      const double v = out_len == 1 ? (roi_end - roi_start) * (in_len - 1) / 2
                                    : x * (roi_end - roi_start) * (in_len - 1) / (out_len - 1);
      return v + roi_start * (in_len - 1);
    }
  }
  return x;
}

AxisPlan plan_axis(const ResizeAttrs& a, int64_t in, int64_t out, double scale, double roi_start, double roi_end) {
  AxisPlan p;
  p.in = in;
  p.out = out;
  p.taps = a.mode == InterpMode::nearest ? 1 : a.mode == InterpMode::linear ? 2 : 4;
  p.index.assign(static_cast<size_t>(out * p.taps), 0);
  p.weight.assign(static_cast<size_t>(out * p.taps), 0.0);
  p.outside.assign(static_cast<size_t>(out), 0);
  const double hi = static_cast<double>(in - 1);
  auto clamp_index = [in](double v) -> int64_t {
    if (!(v > 0)) return 0;  // also NaN
    if (v >= static_cast<double>(in - 1)) return in - 1;
    return static_cast<int64_t>(v);
  };
  bool identity = in == out;
  for (int64_t o = 0; o < out; ++o) {
    const double x = source_coordinate(a, static_cast<double>(o), in, out, scale, roi_start, roi_end);
    int64_t* idx = &p.index[static_cast<size_t>(o * p.taps)];
    double* w = &p.weight[static_cast<size_t>(o * p.taps)];
    if (a.coord == CoordMode::tf_crop_and_resize && !(x >= 0 && x <= hi)) {
      p.outside[static_cast<size_t>(o)] = 1;
      identity = false;
      continue;
    }
    const double fl = std::floor(x);
    const bool integral = x == fl;
    if (a.mode == InterpMode::nearest) {
      double pick = fl;
      if (!integral) {
        const double frac = x - fl;
        switch (a.nearest) {
          case NearestMode::round_prefer_floor: pick = frac <= 0.5 ? fl : fl + 1; break;
          case NearestMode::round_prefer_ceil: pick = frac < 0.5 ? fl : fl + 1; break;
          case NearestMode::floor: pick = fl; break;
          case NearestMode::ceil: pick = fl + 1; break;
          case NearestMode::legacy: pick = scale < 1 ? fl + 1 : fl; break;
        }
      }
      idx[0] = clamp_index(pick);
      w[0] = 1;
      identity = identity && idx[0] == o;
      continue;
    }
    // The left neighbour is strictly below x (an integral x uses ratio 1 on the tap to its left).
    const double base = integral ? fl - 1 : fl;
    const double ratio = x - base;
    if (a.mode == InterpMode::linear) {
      w[0] = 1 - ratio;
      w[1] = ratio;
    } else {
      const auto c = cubic_weights(ratio, a.cubic_a);
      std::copy(c.begin(), c.end(), w);
    }
    const double first = a.mode == InterpMode::linear ? base : base - 1;
    double sum = 0;
    for (int k = 0; k < p.taps; ++k) {
      const double pos = first + k;
      if (a.exclude_outside && (pos < 0 || pos > hi)) w[k] = 0;
      idx[k] = clamp_index(pos);
      sum += w[k];
    }
    if (a.exclude_outside && sum != 0) {
      for (int k = 0; k < p.taps; ++k) w[k] /= sum;
    }
    for (int k = 0; k < p.taps; ++k) {
      if (!(w[k] == 0 || (w[k] == 1 && idx[k] == o))) identity = false;
    }
  }
  p.identity = identity;
  return p;
}

// Nearest resampling: a gather of input elements (exact for every type).
template <class T>
void resize_nearest(OpContext& ctx, const Tensor& x, Tensor& y, const std::vector<AxisPlan>& plans, double extrapolation) {
  const size_t rank = x.rank();
  const T* in = x.data<T>();
  T* out = y.data<T>();
  const T fill = round_saturate_cast<T>(extrapolation);
  if (rank == 0) {
    out[0] = in[0];
    return;
  }
  const auto in_strides = strides_of(x.shape());
  // Per axis and output index: the input offset, or -1 when it maps outside (extrapolation).
  std::vector<std::vector<int64_t>> offs(rank);
  for (size_t d = 0; d < rank; ++d) {
    offs[d].resize(static_cast<size_t>(plans[d].out));
    for (int64_t o = 0; o < plans[d].out; ++o) {
      offs[d][static_cast<size_t>(o)] = plans[d].outside[static_cast<size_t>(o)] ? -1 : plans[d].index[static_cast<size_t>(o)] * in_strides[d];
    }
  }
  const int64_t row = y.dim(rank - 1);
  if (row == 0) return;
  const int64_t rows = y.numel() / row;
  const std::vector<int64_t>& last = offs[rank - 1];
  ctx.pool().parallel_for(rows, std::max<int64_t>(1, 4096 / row), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t base = 0;
      bool outside = false;
      int64_t rem = r;
      for (size_t d = rank - 1; d-- > 0;) {
        const int64_t o = rem % y.dim(d);
        rem /= y.dim(d);
        const int64_t off = offs[d][static_cast<size_t>(o)];
        if (off < 0) outside = true;
        base += off;
      }
      T* dst = out + r * row;
      if (outside) {
        std::fill(dst, dst + row, fill);
        continue;
      }
      for (int64_t i = 0; i < row; ++i) {
        const int64_t off = last[static_cast<size_t>(i)];
        dst[i] = off < 0 ? fill : in[base + off];
      }
    }
  });
}

// Linear / cubic resampling: separable passes in double, innermost axis first.
template <class T>
void resize_separable(OpContext& ctx, const Tensor& x, Tensor& y, const std::vector<AxisPlan>& plans, double extrapolation) {
  const size_t rank = x.rank();
  std::vector<double> cur(static_cast<size_t>(x.numel()));
  const T* in = x.data<T>();
  for (int64_t i = 0; i < x.numel(); ++i) cur[static_cast<size_t>(i)] = static_cast<double>(load(in[i]));
  std::vector<int64_t> shape = x.shape().dims();
  std::vector<double> next;
  for (size_t d = rank; d-- > 0;) {
    const AxisPlan& p = plans[d];
    if (p.identity) continue;
    int64_t outer = 1, inner = 1;
    for (size_t k = 0; k < d; ++k) outer *= shape[k];
    for (size_t k = d + 1; k < rank; ++k) inner *= shape[k];
    next.assign(static_cast<size_t>(outer * p.out * inner), 0.0);
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner * p.taps));
    ctx.pool().parallel_for(outer * p.out, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t oo = r / p.out, o = r % p.out;
        double* dst = next.data() + r * inner;
        if (p.outside[static_cast<size_t>(o)]) {
          std::fill(dst, dst + inner, extrapolation);
          continue;
        }
        for (int k = 0; k < p.taps; ++k) {
          const double w = p.weight[static_cast<size_t>(o * p.taps + k)];
          if (w == 0) continue;
          const double* src = cur.data() + (oo * p.in + p.index[static_cast<size_t>(o * p.taps + k)]) * inner;
          for (int64_t i = 0; i < inner; ++i) dst[i] += w * src[i];
        }
      }
    });
    cur.swap(next);
    shape[d] = p.out;
  }
  T* out = y.data<T>();
  for (int64_t i = 0; i < y.numel(); ++i) out[i] = round_saturate_cast<T>(cur[static_cast<size_t>(i)]);
}

// Reads a float tensor that may be empty (meaning "not given") into doubles.
std::vector<double> read_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = element_as_double(t, i);
  return v;
}

class ResizeKernel final : public OpKernel {
 public:
  static Status validate(const KernelCreateContext& ctx) {
    auto a = parse_resize_attrs(ctx.node);
    if (!a.ok()) return a.status();
    if (ctx.node.op_type == "Upsample" && ctx.node.opset < 9 && !ctx.node.attr("scales")) {
      return invalid_argument("attribute 'scales' is required");
    }
    return Status::OK();
  }
  explicit ResizeKernel(const KernelCreateContext& ctx) : attrs_(*parse_resize_attrs(ctx.node)) {}

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    const graph::Node& node = ctx.node();
    const size_t rank = x->rank();
    const bool upsample = node.op_type == "Upsample";
    const bool legacy_inputs = upsample || node.opset < 11;  // (X, scales) instead of (X, roi, scales, sizes)

    std::vector<double> scales, roi;
    std::vector<int64_t> sizes;
    if (upsample && node.opset < 9) {
      for (float s : node.attr_floats("scales")) scales.push_back(s);
    } else {
      const size_t scales_at = legacy_inputs ? 1 : 2;
      if (ctx.has_input(scales_at)) scales = read_doubles(ctx.input(scales_at));
      if (!legacy_inputs && ctx.has_input(3) && ctx.input(3).numel() > 0) {
        ORCHARD_ASSIGN_OR_RETURN(sizes, tensor_to_ints(ctx.input(3), "sizes"));
      }
      if (!legacy_inputs && ctx.has_input(1)) roi = read_doubles(ctx.input(1));
    }
    if (!scales.empty() && !sizes.empty()) return invalid_argument("only one of 'scales' and 'sizes' may be given");
    if (scales.empty() && sizes.empty()) return invalid_argument("one of 'scales' and 'sizes' must be given");
    if (!scales.empty() && scales.size() != rank) {
      return invalid_argument("scales has ", scales.size(), " elements but the input has rank ", rank);
    }
    if (!sizes.empty() && sizes.size() != rank) {
      return invalid_argument("sizes has ", sizes.size(), " elements but the input has rank ", rank);
    }
    const bool crop = attrs_.coord == CoordMode::tf_crop_and_resize;
    if (crop && roi.size() != 2 * rank) {
      return invalid_argument("roi has ", roi.size(), " elements; tf_crop_and_resize needs ", 2 * rank, " for rank ", rank);
    }

    Shape out_shape(std::vector<int64_t>(rank, 0));
    std::vector<double> axis_scale(rank, 1.0);
    double total = 1;
    for (size_t d = 0; d < rank; ++d) {
      const int64_t in = x->dim(d);
      const double r0 = crop ? roi[d] : 0.0, r1 = crop ? roi[rank + d] : 1.0;
      if (!scales.empty()) {
        const double s = scales[d];
        if (!(s > 0) || !std::isfinite(s)) return invalid_argument("scale ", s, " for axis ", d, " must be positive");
        const double len = std::floor(static_cast<double>(in) * (r1 - r0) * s);
        if (!(len >= 0) || len > kMaxElements) return invalid_argument("scale ", s, " for axis ", d, " gives an invalid output size");
        out_shape[d] = static_cast<int64_t>(len);
        axis_scale[d] = s;
      } else {
        if (sizes[d] < 0) return invalid_argument("sizes[", d, "] = ", sizes[d], " is negative");
        out_shape[d] = sizes[d];
        if (in > 0) axis_scale[d] = static_cast<double>(sizes[d]) / static_cast<double>(in);
      }
      if (in == 0 && out_shape[d] > 0) return invalid_argument("cannot resize axis ", d, " of length 0 to ", out_shape[d]);
      total *= static_cast<double>(out_shape[d]);
    }
    if (total > kMaxElements) return invalid_argument("output shape ", out_shape.to_string(), " is too large");

    return dispatch<kNumeric>(x->dtype(), node.op_type, [&](auto tag) -> Status {
      using T = decltype(tag);
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out_shape));
      if (y.numel() == 0) return Status::OK();
      std::vector<AxisPlan> plans;
      plans.reserve(rank);
      for (size_t d = 0; d < rank; ++d) {
        const double r0 = crop ? roi[d] : 0.0, r1 = crop ? roi[rank + d] : 1.0;
        plans.push_back(plan_axis(attrs_, x->dim(d), out_shape[d], axis_scale[d], r0, r1));
      }
      if (attrs_.mode == InterpMode::nearest) {
        resize_nearest<T>(ctx, *x, y, plans, attrs_.extrapolation);
      } else {
        resize_separable<T>(ctx, *x, y, plans, attrs_.extrapolation);
      }
      return Status::OK();
    });
  }

 private:
  ResizeAttrs attrs_;
};

// ---------------------------------------------------------------------------------------------------
// GridSample (2-D, PyTorch grid_sample semantics)

enum class GridPadding { zeros, border, reflection };

// Reflects x into [lo2/2, hi2/2] (bounds given doubled so half-pixel limits stay integral).
double reflect_coordinate(double x, double lo2, double hi2) {
  if (lo2 == hi2) return 0;
  const double lo = lo2 / 2, span = (hi2 - lo2) / 2;
  x = std::fabs(x - lo);
  const double extra = std::fmod(x, span);
  const double flips = std::floor(x / span);
  return std::fmod(flips, 2.0) == 0 ? extra + lo : span - extra + lo;
}

class GridSampleKernel final : public OpKernel {
 public:
  static Status validate(const KernelCreateContext& ctx) {
    const std::string mode = ctx.node.attr_string("mode", "bilinear");
    if (mode != "bilinear" && mode != "nearest" && mode != "bicubic") return invalid_argument("mode '", mode, "' is not supported");
    const std::string pad = ctx.node.attr_string("padding_mode", "zeros");
    if (pad != "zeros" && pad != "border" && pad != "reflection") {
      return invalid_argument("padding_mode '", pad, "' is not supported");
    }
    return Status::OK();
  }
  explicit GridSampleKernel(const KernelCreateContext& ctx) {
    const std::string mode = ctx.node.attr_string("mode", "bilinear");
    mode_ = mode == "bilinear" ? InterpMode::linear : mode == "nearest" ? InterpMode::nearest : InterpMode::cubic;
    const std::string pad = ctx.node.attr_string("padding_mode", "zeros");
    padding_ = pad == "zeros" ? GridPadding::zeros : pad == "border" ? GridPadding::border : GridPadding::reflection;
    align_corners_ = ctx.node.attr_int("align_corners", 0) != 0;
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* grid, ctx.input_tensor(1));
    if (x->rank() != 4) return invalid_argument("X must have rank 4 (N, C, H, W), got ", x->description());
    if (grid->rank() != 4 || grid->dim(3) != 2 || grid->dim(0) != x->dim(0)) {
      return invalid_argument("grid ", grid->description(), " must have shape (N, H_out, W_out, 2) with N = ", x->dim(0));
    }
    if (!dtype_is_float(grid->dtype())) return invalid_argument("grid must be a float tensor, got ", grid->description());
    const int64_t n = x->dim(0), c = x->dim(1), h = x->dim(2), w = x->dim(3);
    const int64_t ho = grid->dim(1), wo = grid->dim(2);
    return dispatch<kFloats>(x->dtype(), "GridSample", [&](auto tag) -> Status {
      using T = decltype(tag);
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), Shape{n, c, ho, wo}));
      const T* in = x->data<T>();
      T* out = y.data<T>();
      const int64_t points = ho * wo;
      ctx.pool().parallel_for(n * points, 64, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int64_t bi = r / points, pt = r % points;
          const double gx = element_as_double(*grid, r * 2), gy = element_as_double(*grid, r * 2 + 1);
          const T* src = in + bi * c * h * w;
          T* dst = out + bi * c * points + pt;
          sample_point(src, dst, c, h, w, points, gx, gy);
        }
      });
      return Status::OK();
    });
  }

 private:
  double unnormalize(double g, int64_t size) const {
    return align_corners_ ? (g + 1) / 2 * static_cast<double>(size - 1) : ((g + 1) * static_cast<double>(size) - 1) / 2;
  }
  // Applies the padding mode to a source coordinate (border clips, reflection mirrors then clips).
  double pad_coordinate(double v, int64_t size) const {
    const double hi = static_cast<double>(size - 1);
    if (padding_ == GridPadding::border) return std::clamp(v, 0.0, hi);
    if (padding_ == GridPadding::reflection) {
      v = align_corners_ ? reflect_coordinate(v, 0, 2 * hi) : reflect_coordinate(v, -1, 2 * static_cast<double>(size) - 1);
      return std::clamp(v, 0.0, hi);
    }
    return v;
  }
  // Returns the in-bounds integer index for coordinate v, or -1.
  static int64_t to_index(double v, int64_t size) {
    if (!(v >= 0 && v <= static_cast<double>(size - 1))) return -1;
    return static_cast<int64_t>(v);
  }

  template <class T>
  void sample_point(const T* src, T* dst, int64_t c, int64_t h, int64_t w, int64_t plane, double gx, double gy) const {
    const int64_t hw = h * w;
    double x = unnormalize(gx, w), y = unnormalize(gy, h);
    if (mode_ == InterpMode::cubic) {
      if (!std::isfinite(x) || !std::isfinite(y)) x = y = -1e9;  // every tap reads as zero
      x = std::clamp(x, -1e9, 1e9);
      y = std::clamp(y, -1e9, 1e9);
      const double x0 = std::floor(x), y0 = std::floor(y);
      const auto wx = cubic_weights(x - x0, -0.75), wy = cubic_weights(y - y0, -0.75);
      std::array<int64_t, 4> ix, iy;
      for (int k = 0; k < 4; ++k) {
        ix[k] = to_index(pad_coordinate(x0 - 1 + k, w), w);
        iy[k] = to_index(pad_coordinate(y0 - 1 + k, h), h);
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        const T* p = src + ch * hw;
        double acc = 0;
        for (int j = 0; j < 4; ++j) {
          if (iy[j] < 0) continue;
          double row = 0;
          for (int i = 0; i < 4; ++i) {
            if (ix[i] >= 0) row += wx[i] * static_cast<double>(load(p[iy[j] * w + ix[i]]));
          }
          acc += wy[j] * row;
        }
        dst[ch * plane] = store<T>(acc);
      }
      return;
    }
    x = pad_coordinate(x, w);
    y = pad_coordinate(y, h);
    if (mode_ == InterpMode::nearest) {
      const int64_t ix = to_index(std::nearbyint(x), w), iy = to_index(std::nearbyint(y), h);
      for (int64_t ch = 0; ch < c; ++ch) {
        dst[ch * plane] = ix >= 0 && iy >= 0 ? src[ch * hw + iy * w + ix] : store<T>(0.0);
      }
      return;
    }
    const double x0 = std::floor(x), y0 = std::floor(y);
    const double tx = x - x0, ty = y - y0;
    const std::array<int64_t, 2> ix{to_index(x0, w), to_index(x0 + 1, w)};
    const std::array<int64_t, 2> iy{to_index(y0, h), to_index(y0 + 1, h)};
    const std::array<double, 2> wx{1 - tx, tx}, wy{1 - ty, ty};
    for (int64_t ch = 0; ch < c; ++ch) {
      const T* p = src + ch * hw;
      double acc = 0;
      for (int j = 0; j < 2; ++j) {
        if (iy[j] < 0) continue;
        for (int i = 0; i < 2; ++i) {
          if (ix[i] >= 0) acc += wy[j] * wx[i] * static_cast<double>(load(p[iy[j] * w + ix[i]]));
        }
      }
      dst[ch * plane] = store<T>(acc);
    }
  }

  InterpMode mode_ = InterpMode::linear;
  GridPadding padding_ = GridPadding::zeros;
  bool align_corners_ = false;
};

// ---------------------------------------------------------------------------------------------------
// RoiAlign

class RoiAlignKernel final : public OpKernel {
 public:
  static Status validate(const KernelCreateContext& ctx) {
    const std::string mode = ctx.node.attr_string("mode", "avg");
    if (mode != "avg" && mode != "max") return invalid_argument("mode '", mode, "' is not supported");
    const std::string coord = ctx.node.attr_string("coordinate_transformation_mode", "half_pixel");
    if (coord != "half_pixel" && coord != "output_half_pixel") {
      return invalid_argument("coordinate_transformation_mode '", coord, "' is not supported");
    }
    if (ctx.node.attr_int("output_height", 1) < 1 || ctx.node.attr_int("output_width", 1) < 1) {
      return invalid_argument("output_height and output_width must be positive");
    }
    if (ctx.node.attr_int("sampling_ratio", 0) < 0) return invalid_argument("sampling_ratio must not be negative");
    return Status::OK();
  }
  explicit RoiAlignKernel(const KernelCreateContext& ctx) {
    max_mode_ = ctx.node.attr_string("mode", "avg") == "max";
    // Opset 10 had no attribute and behaved as output_half_pixel.
    half_pixel_ = ctx.node.opset >= 16 &&
                  ctx.node.attr_string("coordinate_transformation_mode", "half_pixel") == "half_pixel";
    out_h_ = ctx.node.attr_int("output_height", 1);
    out_w_ = ctx.node.attr_int("output_width", 1);
    sampling_ratio_ = ctx.node.attr_int("sampling_ratio", 0);
    spatial_scale_ = ctx.node.attr_float("spatial_scale", 1.0f);
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* rois, ctx.input_tensor(1));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* batch, ctx.input_tensor(2));
    if (x->rank() != 4) return invalid_argument("X must have rank 4 (N, C, H, W), got ", x->description());
    if (rois->rank() != 2 || rois->dim(1) != 4) return invalid_argument("rois must have shape (num_rois, 4), got ", rois->description());
    if (batch->rank() != 1 || batch->dim(0) != rois->dim(0) || !dtype_is_integer(batch->dtype())) {
      return invalid_argument("batch_indices ", batch->description(), " must be an integer tensor of shape (", rois->dim(0), ")");
    }
    const int64_t num_rois = rois->dim(0);
    const int64_t n = x->dim(0), c = x->dim(1), h = x->dim(2), w = x->dim(3);
    std::vector<RoiGeometry> geo;
    geo.reserve(static_cast<size_t>(num_rois));
    for (int64_t r = 0; r < num_rois; ++r) {
      const int64_t b = element_as_int(*batch, r);
      if (b < 0 || b >= n) return invalid_argument("batch_indices[", r, "] = ", b, " is out of range for batch size ", n);
      std::array<double, 4> box;
      for (int k = 0; k < 4; ++k) {
        box[static_cast<size_t>(k)] = element_as_double(*rois, r * 4 + k);
        if (!std::isfinite(box[static_cast<size_t>(k)])) return invalid_argument("rois[", r, "] has a non-finite coordinate");
      }
      ORCHARD_ASSIGN_OR_RETURN(RoiGeometry g, geometry(box));
      geo.push_back(g);
    }
    return dispatch<kFloats>(x->dtype(), "RoiAlign", [&](auto tag) -> Status {
      using T = decltype(tag);
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), Shape{num_rois, c, out_h_, out_w_}));
      const T* in = x->data<T>();
      T* out = y.data<T>();
      ctx.pool().parallel_for(num_rois, 1, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const T* src = in + element_as_int(*batch, r) * c * h * w;
          align_one(src, out + r * c * out_h_ * out_w_, c, h, w, geo[static_cast<size_t>(r)]);
        }
      });
      return Status::OK();
    });
  }

 private:
  // The geometry of one roi: where it starts, its bin sizes and how many samples each bin takes.
  struct RoiGeometry {
    double y0, x0, bin_h, bin_w;
    int64_t grid_h, grid_w;
  };

  // One bilinear sample position along one axis: two input indices and their weights (both 0 when the
  // sample lies outside, which then contributes nothing).
  struct AxisSample {
    int64_t lo = 0, hi = 0;
    double w_lo = 0, w_hi = 0;
  };

  Result<RoiGeometry> geometry(const std::array<double, 4>& box) const {
    const double off = half_pixel_ ? 0.5 : 0.0;
    RoiGeometry g;
    g.x0 = box[0] * spatial_scale_ - off;
    g.y0 = box[1] * spatial_scale_ - off;
    double roi_w = box[2] * spatial_scale_ - off - g.x0, roi_h = box[3] * spatial_scale_ - off - g.y0;
    if (!half_pixel_) {  // legacy: rois are at least one pixel
      roi_w = std::max(roi_w, 1.0);
      roi_h = std::max(roi_h, 1.0);
    }
    g.bin_h = roi_h / static_cast<double>(out_h_);
    g.bin_w = roi_w / static_cast<double>(out_w_);
    if (sampling_ratio_ > 0) {
      g.grid_h = g.grid_w = sampling_ratio_;
    } else {
      // Adaptive: about one sample per input pixel.
      const double gh = std::ceil(g.bin_h), gw = std::ceil(g.bin_w);
      if (!(gh < 65536 && gw < 65536)) return invalid_argument("roi of ", roi_h, " x ", roi_w, " is too large for adaptive sampling");
      g.grid_h = std::max<int64_t>(static_cast<int64_t>(gh), 0);
      g.grid_w = std::max<int64_t>(static_cast<int64_t>(gw), 0);
    }
    return g;
  }

  // Samples along one axis of length `size`: for bin p and sample i, entry p * grid + i.
  static std::vector<AxisSample> axis_samples(double start, double bin, int64_t bins, int64_t grid, int64_t size) {
    std::vector<AxisSample> v(static_cast<size_t>(bins * grid));
    for (int64_t p = 0; p < bins; ++p) {
      for (int64_t i = 0; i < grid; ++i) {
        double pos = start + static_cast<double>(p) * bin + (static_cast<double>(i) + 0.5) * bin / static_cast<double>(grid);
        AxisSample& s = v[static_cast<size_t>(p * grid + i)];
        if (pos < -1.0 || pos > static_cast<double>(size) || size == 0) continue;
        pos = std::max(pos, 0.0);
        s.lo = static_cast<int64_t>(pos);
        if (s.lo >= size - 1) {
          s.lo = s.hi = size - 1;
          pos = static_cast<double>(s.lo);
        } else {
          s.hi = s.lo + 1;
        }
        s.w_hi = pos - static_cast<double>(s.lo);
        s.w_lo = 1 - s.w_hi;
      }
    }
    return v;
  }

  template <class T>
  void align_one(const T* src, T* dst, int64_t c, int64_t h, int64_t w, const RoiGeometry& g) const {
    const auto ys = axis_samples(g.y0, g.bin_h, out_h_, g.grid_h, h);
    const auto xs = axis_samples(g.x0, g.bin_w, out_w_, g.grid_w, w);
    const double count = static_cast<double>(std::max<int64_t>(g.grid_h * g.grid_w, 1));
    if (h == 0 || w == 0) {  // nothing to sample: every bin is 0
      std::fill(dst, dst + c * out_h_ * out_w_, store<T>(0.0));
      return;
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      const T* p = src + ch * h * w;
      auto at = [&](int64_t yi, int64_t xi) { return static_cast<double>(load(p[yi * w + xi])); };
      for (int64_t ph = 0; ph < out_h_; ++ph) {
        for (int64_t pw = 0; pw < out_w_; ++pw) {
          double acc = 0;
          bool first = true;
          for (int64_t iy = 0; iy < g.grid_h; ++iy) {
            const AxisSample& sy = ys[static_cast<size_t>(ph * g.grid_h + iy)];
            for (int64_t ix = 0; ix < g.grid_w; ++ix) {
              const AxisSample& sx = xs[static_cast<size_t>(pw * g.grid_w + ix)];
              const double w1 = sy.w_lo * sx.w_lo, w2 = sy.w_lo * sx.w_hi, w3 = sy.w_hi * sx.w_lo, w4 = sy.w_hi * sx.w_hi;
              const double v1 = w1 * at(sy.lo, sx.lo), v2 = w2 * at(sy.lo, sx.hi);
              const double v3 = w3 * at(sy.hi, sx.lo), v4 = w4 * at(sy.hi, sx.hi);
              if (max_mode_) {
                // Max mode takes the largest weighted corner of each sample, as the reference runtimes do.
                const double v = std::max(std::max(v1, v2), std::max(v3, v4));
                acc = first ? v : std::max(acc, v);
                first = false;
              } else {
                acc += v1 + v2 + v3 + v4;
              }
            }
          }
          dst[(ch * out_h_ + ph) * out_w_ + pw] = store<T>(max_mode_ ? acc : acc / count);
        }
      }
    }
  }

  bool max_mode_ = false;
  bool half_pixel_ = true;
  int64_t out_h_ = 1, out_w_ = 1, sampling_ratio_ = 0;
  double spatial_scale_ = 1.0;
};

// ---------------------------------------------------------------------------------------------------
// NonMaxSuppression

struct Box {
  double y1, x1, y2, x2;
};

double box_iou(const Box& a, const Box& b) {
  const double area_a = (a.y2 - a.y1) * (a.x2 - a.x1), area_b = (b.y2 - b.y1) * (b.x2 - b.x1);
  if (area_a <= 0 || area_b <= 0) return 0;
  const double ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  const double iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  if (ih <= 0 || iw <= 0) return 0;
  const double inter = ih * iw;
  const double uni = area_a + area_b - inter;
  return uni <= 0 ? 0 : inter / uni;
}

Status non_max_suppression(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* boxes, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* scores, ctx.input_tensor(1));
  if (boxes->rank() != 3 || boxes->dim(2) != 4) return invalid_argument("boxes must have shape (batch, spatial, 4), got ", boxes->description());
  if (scores->rank() != 3 || scores->dim(0) != boxes->dim(0) || scores->dim(2) != boxes->dim(1)) {
    return invalid_argument("scores ", scores->description(), " must have shape (", boxes->dim(0), ", classes, ", boxes->dim(1), ")");
  }
  if (!dtype_is_float(boxes->dtype()) || !dtype_is_float(scores->dtype())) {
    return invalid_argument("boxes and scores must be float tensors");
  }
  int64_t max_out = 0;
  double iou_threshold = 0, score_threshold = 0;
  const bool has_score_threshold = ctx.has_input(4) && ctx.input(4).numel() > 0;
  if (ctx.has_input(2) && ctx.input(2).numel() > 0) max_out = element_as_int(ctx.input(2), 0);
  if (ctx.has_input(3) && ctx.input(3).numel() > 0) iou_threshold = element_as_double(ctx.input(3), 0);
  if (has_score_threshold) score_threshold = element_as_double(ctx.input(4), 0);
  if (iou_threshold < 0 || iou_threshold > 1) return invalid_argument("iou_threshold ", iou_threshold, " must be in [0, 1]");
  const bool center = ctx.node().attr_int("center_point_box", 0) != 0;

  const int64_t batches = boxes->dim(0), spatial = boxes->dim(1), classes = scores->dim(1);
  std::vector<Box> all(static_cast<size_t>(batches * spatial));
  for (int64_t i = 0; i < batches * spatial; ++i) {
    const double a = element_as_double(*boxes, i * 4), b = element_as_double(*boxes, i * 4 + 1);
    const double c = element_as_double(*boxes, i * 4 + 2), d = element_as_double(*boxes, i * 4 + 3);
    Box& bx = all[static_cast<size_t>(i)];
    if (center) {  // [x_center, y_center, width, height]
      bx = {b - d / 2, a - c / 2, b + d / 2, a + c / 2};
    } else {  // [y1, x1, y2, x2] with either corner pair
      bx = {std::min(a, c), std::min(b, d), std::max(a, c), std::max(b, d)};
    }
  }
  std::vector<std::array<int64_t, 3>> selected;
  std::vector<int64_t> order, kept;
  std::vector<double> class_scores(static_cast<size_t>(spatial));
  for (int64_t bi = 0; bi < batches && max_out > 0; ++bi) {
    for (int64_t ci = 0; ci < classes; ++ci) {
      const int64_t score_base = (bi * classes + ci) * spatial;
      order.clear();
      for (int64_t s = 0; s < spatial; ++s) {
        const double sc = element_as_double(*scores, score_base + s);
        class_scores[static_cast<size_t>(s)] = sc;
        if (!has_score_threshold || sc > score_threshold) order.push_back(s);
      }
      // Highest score first; equal scores keep the lower box index first.
      std::stable_sort(order.begin(), order.end(), [&](int64_t p, int64_t q) {
        return class_scores[static_cast<size_t>(p)] > class_scores[static_cast<size_t>(q)];
      });
      kept.clear();
      for (int64_t s : order) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        const Box& cand = all[static_cast<size_t>(bi * spatial + s)];
        bool keep = true;
        for (int64_t k : kept) {
          if (box_iou(cand, all[static_cast<size_t>(bi * spatial + k)]) > iou_threshold) {
            keep = false;
            break;
          }
        }
        if (keep) {
          kept.push_back(s);
          selected.push_back({bi, ci, s});
        }
      }
    }
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::int64, Shape{static_cast<int64_t>(selected.size()), 3}));
  int64_t* out = y.data<int64_t>();
  for (size_t i = 0; i < selected.size(); ++i) std::copy(selected[i].begin(), selected[i].end(), out + i * 3);
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------------
// Det

Status det(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const size_t rank = x->rank();
  if (rank < 2 || x->dim(rank - 1) != x->dim(rank - 2)) {
    return invalid_argument("input must have shape [*, M, M], got ", x->description());
  }
  const int64_t m = x->dim(rank - 1);
  Shape out_shape(std::vector<int64_t>(x->shape().begin(), x->shape().end() - 2));
  return dispatch<kFloats>(x->dtype(), "Det", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out_shape));
    const T* in = x->data<T>();
    T* out = y.data<T>();
    const int64_t mm = m * m;
    ctx.pool().parallel_for(y.numel(), std::max<int64_t>(1, 4096 / std::max<int64_t>(1, mm * m)), [&](int64_t b, int64_t e) {
      std::vector<double> a(static_cast<size_t>(mm));
      for (int64_t bi = b; bi < e; ++bi) {
        for (int64_t i = 0; i < mm; ++i) a[static_cast<size_t>(i)] = static_cast<double>(load(in[bi * mm + i]));
        // LU decomposition with partial pivoting; det = sign * prod(diag(U)).
        double d = 1;
        for (int64_t k = 0; k < m && d != 0; ++k) {
          int64_t piv = k;
          for (int64_t i = k + 1; i < m; ++i) {
            if (std::fabs(a[static_cast<size_t>(i * m + k)]) > std::fabs(a[static_cast<size_t>(piv * m + k)])) piv = i;
          }
          const double pv = a[static_cast<size_t>(piv * m + k)];
          if (pv == 0) {
            d = 0;
            break;
          }
          if (piv != k) {
            std::swap_ranges(a.begin() + k * m, a.begin() + (k + 1) * m, a.begin() + piv * m);
            d = -d;
          }
          d *= pv;
          for (int64_t i = k + 1; i < m; ++i) {
            const double f = a[static_cast<size_t>(i * m + k)] / pv;
            if (f == 0) continue;
            for (int64_t j = k + 1; j < m; ++j) a[static_cast<size_t>(i * m + j)] -= f * a[static_cast<size_t>(k * m + j)];
          }
        }
        out[bi] = store<T>(d);
      }
    });
    return Status::OK();
  });
}

constexpr KernelDef kKernels[] = {
    {"", "Upsample", 7, 9, make<ResizeKernel>},
    {"", "Resize", 10, 10, make<ResizeKernel>},
    {"", "Resize", 11, 12, make<ResizeKernel>},
    {"", "Resize", 13, 17, make<ResizeKernel>},  // 18 adds antialias, axes and keep_aspect_ratio
    {"", "GridSample", 16, 19, make<GridSampleKernel>},  // 20 generalises to N-D with renamed modes
    {"", "RoiAlign", 10, 15, make<RoiAlignKernel>},
    {"", "RoiAlign", 16, kVerifiedOpset, make<RoiAlignKernel>},
    {"", "NonMaxSuppression", 10, kVerifiedOpset, stateless<non_max_suppression>},
    {"", "Det", 11, kVerifiedOpset, stateless<det>},
};

}  // namespace

std::span<const KernelDef> image_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
