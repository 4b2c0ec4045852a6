// BatchNormalization, InstanceNormalization, LayerNormalization, LpNormalization, LRN and
// MeanVarianceNormalization. Statistics accumulate in double; elements are computed in compute_t<T>.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// Returns the elements of a float parameter tensor as doubles, checking it holds `numel` of them.
Result<std::vector<double>> param_values(const Tensor& t, int64_t numel, std::string_view what) {
  if (!dtype_is_float(t.dtype())) return invalid_argument(what, " must be a float tensor, got ", t.description());
  if (t.numel() != numel) return invalid_argument(what, " must hold ", numel, " values, got ", t.description());
  std::vector<double> v(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) v[static_cast<size_t>(i)] = element_as_double(t, i);
  return v;
}

// Writes `values` to output `i` as a tensor of `dtype` and `shape`.
Status write_output(OpContext& ctx, size_t i, DType dtype, const Shape& shape, const std::vector<double>& values) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, ctx.make_output(i, dtype, shape));
  return dispatch<kFloats>(dtype, "output", [&](auto tag) -> Status {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (size_t k = 0; k < values.size(); ++k) p[k] = store<T>(values[k]);
    return Status::OK();
  });
}

// Mean and population variance of each of `planes` contiguous planes of `size` elements.
template <class T>
void plane_moments(const T* x, int64_t planes, int64_t size, std::vector<double>& mean, std::vector<double>& var,
                   ThreadPool& pool) {
  mean.assign(static_cast<size_t>(planes), 0.0);
  var.assign(static_cast<size_t>(planes), 0.0);
  if (size == 0) return;
  pool.parallel_for(planes, grain_for(size), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* src = x + p * size;
      double s = 0;
      for (int64_t i = 0; i < size; ++i) s += static_cast<double>(load(src[i]));
      const double m = s / static_cast<double>(size);
      double q = 0;
      for (int64_t i = 0; i < size; ++i) {
        const double d = static_cast<double>(load(src[i])) - m;
        q += d * d;
      }
      mean[static_cast<size_t>(p)] = m;
      var[static_cast<size_t>(p)] = q / static_cast<double>(size);
    }
  });
}

// y = x * a[k] + b[k] where k = (plane index) % period, each plane `size` contiguous elements.
template <class T>
void affine_planes(const T* x, T* y, int64_t planes, int64_t size, int64_t period, const std::vector<double>& a,
                   const std::vector<double>& b, ThreadPool& pool) {
  using C = compute_t<T>;
  pool.parallel_for(planes, grain_for(size), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const size_t k = static_cast<size_t>(p % period);
      const C ak = static_cast<C>(a[k]), bk = static_cast<C>(b[k]);
      const T* src = x + p * size;
      T* dst = y + p * size;
      for (int64_t i = 0; i < size; ++i) dst[i] = store<T>(load(src[i]) * ak + bk);
    }
  });
}

// BatchNormalization over X [N, C, d...]. Inference uses the given mean/var; training (training_mode from
// opset 14, or requested statistics outputs before it) uses the batch's and also writes running stats.
Status batch_norm(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  for (size_t i = 1; i < 5; ++i) ORCHARD_RETURN_IF_ERROR(ctx.input_tensor(i).status());
  const graph::Node& node = ctx.node();
  if (x->rank() < 2) return invalid_argument("X must have rank >= 2 (N, C, ...), got ", x->description());
  const int64_t n = x->dim(0), c = x->dim(1), size = dims_product(x->shape(), 2, x->rank());
  const double eps = node.attr_float("epsilon", 1e-5f);
  const double momentum = node.attr_float("momentum", 0.9f);
  bool training;
  if (node.opset >= 14) {
    training = node.attr_int("training_mode", 0) != 0;
  } else {
    bool stats_used = false;
    for (size_t i = 1; i < 5; ++i) stats_used = stats_used || ctx.has_output(i);
    training = stats_used && (node.opset >= 7 || node.attr_int("is_test", 0) == 0);
  }
  // spatial = 0 (before opset 9) gives each of C * size positions its own parameters.
  const bool per_position = node.opset < 9 && node.attr_int("spatial", 1) == 0 && !training;
  const int64_t params = per_position ? c * size : c;
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> scale, param_values(ctx.input(1), params, "scale"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> bias, param_values(ctx.input(2), params, "B"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> mean, param_values(ctx.input(3), params, "mean"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> var, param_values(ctx.input(4), params, "var"));
  return dispatch<kFloats>(x->dtype(), "BatchNormalization", [&](auto tag) -> Status {
    using T = decltype(tag);
    const T* px = x->data<T>();
    std::vector<double> use_mean = mean, use_var = var;
    if (training) {
      // Per-channel moments over N and the spatial dims, from per-plane moments.
      std::vector<double> pm, pv;
      plane_moments(px, n * c, size, pm, pv, ctx.pool());
      for (int64_t ch = 0; ch < c; ++ch) {
        double m = 0, q = 0;
        for (int64_t b = 0; b < n; ++b) m += pm[static_cast<size_t>(b * c + ch)];
        m = n ? m / static_cast<double>(n) : 0.0;
        for (int64_t b = 0; b < n; ++b) {
          const size_t k = static_cast<size_t>(b * c + ch);
          q += pv[k] + (pm[k] - m) * (pm[k] - m);
        }
        use_mean[static_cast<size_t>(ch)] = m;
        use_var[static_cast<size_t>(ch)] = n ? q / static_cast<double>(n) : 0.0;
      }
    }
    std::vector<double> a(static_cast<size_t>(params)), b(static_cast<size_t>(params));
    for (size_t k = 0; k < a.size(); ++k) {
      a[k] = scale[k] / std::sqrt(use_var[k] + eps);
      b[k] = bias[k] - use_mean[k] * a[k];
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    if (per_position) {
      affine_planes(px, y.data<T>(), n * c * size, 1, c * size, a, b, ctx.pool());
    } else {
      affine_planes(px, y.data<T>(), n * c, size, c, a, b, ctx.pool());
    }
    if (training) {
      std::vector<double> run_mean(a.size()), run_var(a.size());
      for (size_t k = 0; k < a.size(); ++k) {
        run_mean[k] = mean[k] * momentum + use_mean[k] * (1 - momentum);
        run_var[k] = var[k] * momentum + use_var[k] * (1 - momentum);
      }
      const Shape pshape{c};
      if (ctx.has_output(1)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 1, ctx.input(3).dtype(), pshape, run_mean));
      if (ctx.has_output(2)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 2, ctx.input(4).dtype(), pshape, run_var));
      if (ctx.has_output(3)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 3, x->dtype(), pshape, use_mean));
      if (ctx.has_output(4)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 4, x->dtype(), pshape, use_var));
    } else if (!per_position) {
      // Statistics outputs declared in inference mode pass the given statistics through.
      const Shape pshape{c};
      if (ctx.has_output(1)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 1, ctx.input(3).dtype(), pshape, mean));
      if (ctx.has_output(2)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 2, ctx.input(4).dtype(), pshape, var));
    }
    return Status::OK();
  });
}

// InstanceNormalization: each (n, c) plane normalised by its own mean and variance.
Status instance_norm(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* scale_t, ctx.input_tensor(1));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* bias_t, ctx.input_tensor(2));
  if (x->rank() < 2) return invalid_argument("input must have rank >= 2 (N, C, ...), got ", x->description());
  const int64_t n = x->dim(0), c = x->dim(1), size = dims_product(x->shape(), 2, x->rank());
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> scale, param_values(*scale_t, c, "scale"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> bias, param_values(*bias_t, c, "B"));
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  return dispatch<kFloats>(x->dtype(), "InstanceNormalization", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    std::vector<double> mean, var;
    plane_moments(x->data<T>(), n * c, size, mean, var, ctx.pool());
    std::vector<double> a(mean.size()), b(mean.size());
    for (size_t p = 0; p < mean.size(); ++p) {
      const size_t ch = p % static_cast<size_t>(c);
      a[p] = scale[ch] / std::sqrt(var[p] + eps);
      b[p] = bias[ch] - mean[p] * a[p];
    }
    affine_planes(x->data<T>(), y.data<T>(), n * c, size, n * c, a, b, ctx.pool());
    return Status::OK();
  });
}

// Expands a tensor that broadcasts (unidirectionally) to `shape` into shape.numel() doubles.
Result<std::vector<double>> expand_to(const Tensor& t, const Shape& shape, std::string_view what) {
  if (!dtype_is_float(t.dtype())) return invalid_argument(what, " must be a float tensor, got ", t.description());
  bool ok = t.rank() <= shape.rank();
  for (size_t d = 0; ok && d < t.rank(); ++d) {
    const int64_t td = t.dim(d), sd = shape[shape.rank() - t.rank() + d];
    ok = td == sd || td == 1;
  }
  if (!ok) return invalid_argument(what, " ", t.description(), " does not broadcast to ", shape.to_string());
  std::vector<double> out(static_cast<size_t>(shape.numel()));
  if (out.empty()) return out;
  std::array<std::vector<int64_t>, 1> strides{broadcast_strides(t.shape(), shape)};
  broadcast_runs<1>(shape, strides, [&](int64_t o, const std::array<int64_t, 1>& off, int64_t cnt,
                                        const std::array<int64_t, 1>& st) {
    for (int64_t k = 0; k < cnt; ++k) out[static_cast<size_t>(o + k)] = element_as_double(t, off[0] + k * st[0]);
  });
  return out;
}

// LayerNormalization (opset 17): rows are X flattened at `axis`; optional outputs Mean and InvStdDev
// have X's dims before axis and 1s after, in the stash type.
Status layer_norm(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* scale_t, ctx.input_tensor(1));
  const graph::Node& node = ctx.node();
  const int64_t rank = static_cast<int64_t>(x->rank());
  ORCHARD_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node.attr_int("axis", -1), rank));
  const double eps = node.attr_float("epsilon", 1e-5f);
  const int64_t stash = node.attr_int("stash_type", 1);
  DType stash_dtype;
  if (stash == 1) stash_dtype = DType::float32;
  else if (stash == 16) stash_dtype = DType::bfloat16;
  else return unsupported("stash_type ", stash, " is not supported (float 1 or bfloat16 16)");
  const Shape norm_shape(x->shape().begin() + axis, x->shape().end());
  const int64_t cols = norm_shape.numel();
  const int64_t rows = cols ? x->numel() / cols : 0;
  ORCHARD_ASSIGN_OR_RETURN(std::vector<double> scale, expand_to(*scale_t, norm_shape, "Scale"));
  std::vector<double> bias(static_cast<size_t>(cols), 0.0);
  if (ctx.has_input(2)) {
    ORCHARD_ASSIGN_OR_RETURN(bias, expand_to(ctx.input(2), norm_shape, "B"));
  }
  Shape stat_shape;
  for (int64_t d = 0; d < rank; ++d) stat_shape.push_back(d < axis ? x->dim(static_cast<size_t>(d)) : 1);
  return dispatch<kFloats>(x->dtype(), "LayerNormalization", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    std::vector<double> mean, var;
    plane_moments(x->data<T>(), rows, cols, mean, var, ctx.pool());
    std::vector<double> inv(mean.size());
    for (size_t r = 0; r < inv.size(); ++r) inv[r] = 1.0 / std::sqrt(var[r] + eps);
    const T* px = x->data<T>();
    T* py = y.data<T>();
    ctx.pool().parallel_for(rows, grain_for(cols), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const C m = static_cast<C>(mean[static_cast<size_t>(r)]), s = static_cast<C>(inv[static_cast<size_t>(r)]);
        const T* src = px + r * cols;
        T* dst = py + r * cols;
        for (int64_t i = 0; i < cols; ++i) {
          const size_t k = static_cast<size_t>(i);
          dst[i] = store<T>((load(src[i]) - m) * s * static_cast<C>(scale[k]) + static_cast<C>(bias[k]));
        }
      }
    });
    if (ctx.has_output(1)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 1, stash_dtype, stat_shape, mean));
    if (ctx.has_output(2)) ORCHARD_RETURN_IF_ERROR(write_output(ctx, 2, stash_dtype, stat_shape, inv));
    return Status::OK();
  });
}

// LpNormalization: x / ||x||_p along axis (p = 1 or 2); a zero norm gives zeros.
Status lp_norm(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t rank = static_cast<int64_t>(x->rank());
  ORCHARD_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(ctx.node().attr_int("axis", -1), rank));
  const int64_t p = ctx.node().attr_int("p", 2);
  if (p != 1 && p != 2) return invalid_argument("p ", p, " must be 1 or 2");
  const AxisView v = view_around(x->shape(), axis);
  const int64_t outer = v.outer, n = v.n, inner = v.inner;
  return dispatch<kFloats>(x->dtype(), "LpNormalization", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    const T* px = x->data<T>();
    T* py = y.data<T>();
    ctx.pool().parallel_for(outer, grain_for(n * inner), [&](int64_t begin, int64_t end) {
      std::vector<double> norm(static_cast<size_t>(inner));
      for (int64_t o = begin; o < end; ++o) {
        const T* src = px + o * n * inner;
        T* dst = py + o * n * inner;
        std::fill(norm.begin(), norm.end(), 0.0);
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t i = 0; i < inner; ++i) {
            const double v = static_cast<double>(load(src[r * inner + i]));
            norm[static_cast<size_t>(i)] += p == 1 ? std::abs(v) : v * v;
          }
        }
        for (double& v : norm) v = p == 1 ? v : std::sqrt(v);
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t i = 0; i < inner; ++i) {
            const double nv = norm[static_cast<size_t>(i)];
            dst[r * inner + i] = store<T>(nv == 0 ? C(0) : static_cast<C>(load(src[r * inner + i]) / nv));
          }
        }
      }
    });
    return Status::OK();
  });
}

// LRN across channels: y = x / (bias + alpha / size * sum of x^2 over the channel window) ^ beta, the
// window [c - floor((size-1)/2), c + ceil((size-1)/2)].
Status lrn(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  if (!node.attr("size")) return invalid_argument("attribute size is required");
  const int64_t size = node.attr_int("size", 0);
  if (size <= 0) return invalid_argument("size ", size, " must be positive");
  if (x->rank() < 2) return invalid_argument("X must have rank >= 2 (N, C, ...), got ", x->description());
  const double alpha = node.attr_float("alpha", 1e-4f), beta = node.attr_float("beta", 0.75f);
  const double bias = node.attr_float("bias", 1.0f);
  const int64_t n = x->dim(0), c = x->dim(1), plane = dims_product(x->shape(), 2, x->rank());
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  return dispatch<kFloats>(x->dtype(), "LRN", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    const T* px = x->data<T>();
    T* py = y.data<T>();
    ctx.pool().parallel_for(n * c, grain_for(plane * size), [&](int64_t begin, int64_t end) {
      std::vector<double> sq(static_cast<size_t>(plane));
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / c, ch = p % c;
        std::fill(sq.begin(), sq.end(), 0.0);
        for (int64_t k = std::max<int64_t>(0, ch - before); k <= std::min(c - 1, ch + after); ++k) {
          const T* src = px + (b * c + k) * plane;
          for (int64_t i = 0; i < plane; ++i) {
            const double v = static_cast<double>(load(src[i]));
            sq[static_cast<size_t>(i)] += v * v;
          }
        }
        const T* src = px + p * plane;
        T* dst = py + p * plane;
        for (int64_t i = 0; i < plane; ++i) {
          const double den = std::pow(bias + alpha / static_cast<double>(size) * sq[static_cast<size_t>(i)], beta);
          dst[i] = store<T>(static_cast<double>(load(src[i])) / den);
        }
      }
    });
    return Status::OK();
  });
}

// MeanVarianceNormalization: (x - mean) / (sqrt(var) + 1e-9) with moments over `axes` (default 0, 2, 3).
Status mvn(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t rank = static_cast<int64_t>(x->rank());
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axes, normalize_axes(ctx.node().attr_ints("axes", {0, 2, 3}), rank));
  Shape stat_shape = x->shape();
  int64_t count = 1;
  for (int64_t a : axes) {
    count *= x->dim(static_cast<size_t>(a));
    stat_shape[static_cast<size_t>(a)] = 1;
  }
  return dispatch<kFloats>(x->dtype(), "MeanVarianceNormalization", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    if (x->numel() == 0) return Status::OK();
    const T* px = x->data<T>();
    T* py = y.data<T>();
    std::vector<double> mean(static_cast<size_t>(stat_shape.numel()), 0.0), var(mean.size(), 0.0);
    const std::array<std::vector<int64_t>, 1> strides{broadcast_strides(stat_shape, x->shape())};
    // Each pass walks x in runs; off[0] is the run's statistics index and st[0] its step.
    auto pass = [&](auto&& fn) {
      broadcast_runs<1>(x->shape(), strides, [&](int64_t o, const std::array<int64_t, 1>& off, int64_t cnt,
                                                 const std::array<int64_t, 1>& st) {
        for (int64_t k = 0; k < cnt; ++k) fn(o + k, static_cast<size_t>(off[0] + k * st[0]));
      });
    };
    pass([&](int64_t i, size_t s) { mean[s] += static_cast<double>(load(px[i])); });
    for (double& m : mean) m /= static_cast<double>(count);
    pass([&](int64_t i, size_t s) {
      const double d = static_cast<double>(load(px[i])) - mean[s];
      var[s] += d * d;
    });
    std::vector<double> den(var.size());
    for (size_t s = 0; s < den.size(); ++s) den[s] = std::sqrt(var[s] / static_cast<double>(count)) + 1e-9;
    pass([&](int64_t i, size_t s) { py[i] = store<T>((static_cast<double>(load(px[i])) - mean[s]) / den[s]); });
    return Status::OK();
  });
}

constexpr KernelDef kKernels[] = {
    {"", "BatchNormalization", 1, kVerifiedOpset, stateless<batch_norm>},
    {"", "InstanceNormalization", 1, kVerifiedOpset, stateless<instance_norm>},
    {"", "LayerNormalization", 17, kVerifiedOpset, stateless<layer_norm>},
    {"", "LpNormalization", 1, kVerifiedOpset, stateless<lp_norm>},
    {"", "LRN", 1, kVerifiedOpset, stateless<lrn>},
    {"", "MeanVarianceNormalization", 9, kVerifiedOpset, stateless<mvn>},
};

}  // namespace

std::span<const KernelDef> normalization_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
