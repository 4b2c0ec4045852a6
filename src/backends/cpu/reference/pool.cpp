// Pooling: AveragePool, MaxPool (+ Indices), LpPool, their Global forms, and MaxUnpool. Windows are
// walked per (image, channel) plane with clipped index ranges, 1 to 3 spatial dims.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

constexpr size_t kMaxSpatial = 3;

// Pool geometry, padded to 3 spatial dims with leading unit dims (kernel 1, stride 1, no padding).
struct PoolGeom {
  int64_t N = 0, C = 0;
  size_t rank = 0;  // the real number of spatial dims
  int64_t in[kMaxSpatial], out[kMaxSpatial], kernel[kMaxSpatial], stride[kMaxSpatial], dilation[kMaxSpatial],
      pad_begin[kMaxSpatial], pad_end[kMaxSpatial];
  int64_t in_size = 1, out_size = 1;
};

Result<PoolGeom> pool_geometry(const graph::Node& node, const Shape& x) {
  if (x.rank() < 3 || x.rank() > 2 + kMaxSpatial) {
    return unsupported(node.op_type, ": input ", x.to_string(), " must have 1 to 3 spatial dims");
  }
  const size_t r = x.rank() - 2;
  const std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  if (kernel.size() != r) {
    return invalid_argument("kernel_shape has ", kernel.size(), " dims, input ", x.to_string(), " has ", r, " spatial dims");
  }
  const std::vector<int64_t> stride = node.attr_ints("strides", std::vector<int64_t>(r, 1));
  const std::vector<int64_t> dilation = node.attr_ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  if (stride.size() != r || dilation.size() != r || pads.size() != 2 * r) {
    return invalid_argument("strides, dilations and pads must have ", r, ", ", r, " and ", 2 * r, " values");
  }
  PoolGeom g;
  g.N = x[0];
  g.C = x[1];
  g.rank = r;
  const size_t lead = kMaxSpatial - r;
  for (size_t d = 0; d < kMaxSpatial; ++d) {
    if (d < lead) {
      g.in[d] = g.out[d] = g.kernel[d] = g.stride[d] = g.dilation[d] = 1;
      g.pad_begin[d] = g.pad_end[d] = 0;
      continue;
    }
    const size_t s = d - lead;
    g.in[d] = x[2 + s];
    g.kernel[d] = kernel[s];
    g.stride[d] = stride[s];
    g.dilation[d] = dilation[s];
    g.pad_begin[d] = pads[s];
    g.pad_end[d] = pads[s + r];
    if (g.kernel[d] < 1 || g.stride[d] < 1 || g.dilation[d] < 1 || g.pad_begin[d] < 0 || g.pad_end[d] < 0) {
      return invalid_argument("kernel_shape, strides and dilations must be positive and pads non-negative");
    }
  }
  ORCHARD_ASSIGN_OR_RETURN(
      const std::vector<int64_t> out,
      spatial_output_shape(std::span(g.in + lead, r), std::span(g.kernel + lead, r), std::span(g.stride + lead, r),
                           std::span(g.dilation + lead, r), std::span(g.pad_begin + lead, r),
                           std::span(g.pad_end + lead, r), node.attr_string("auto_pad", "NOTSET"),
                           node.attr_int("ceil_mode", 0) != 0));
  std::copy(out.begin(), out.end(), g.out + lead);
  for (size_t d = 0; d < kMaxSpatial; ++d) {
    g.in_size *= g.in[d];
    g.out_size *= g.out[d];
  }
  return g;
}

Shape pool_out_shape(const PoolGeom& g) {
  Shape s{g.N, g.C};
  for (size_t d = kMaxSpatial - g.rank; d < kMaxSpatial; ++d) s.push_back(g.out[d]);
  return s;
}

// The window of output position o along dim d: first input coordinate `start` and the kernel index
// range [k_lo, k_hi) whose coordinates start + k * dilation lie inside the input.
struct Range {
  int64_t start, k_lo, k_hi;
};
inline Range window(const PoolGeom& g, size_t d, int64_t o) {
  const int64_t start = o * g.stride[d] - g.pad_begin[d];
  const int64_t dil = g.dilation[d];
  const int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
  const int64_t hi = std::min(g.kernel[d], g.in[d] - start <= 0 ? 0 : (g.in[d] - start + dil - 1) / dil);
  return {start, lo, std::max(lo, hi)};
}

// Calls fn(plane, out_index, ranges[3]) for every output element, planes in parallel.
template <class F>
void for_each_window(OpContext& ctx, const PoolGeom& g, F&& fn) {
  const int64_t planes = g.N * g.C;
  const int64_t work = std::max<int64_t>(1, g.out_size * g.kernel[0] * g.kernel[1] * g.kernel[2]);
  ctx.pool().parallel_for(planes, grain_for(work), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      int64_t o = 0;
      for (int64_t od = 0; od < g.out[0]; ++od) {
        const Range rd = window(g, 0, od);
        for (int64_t oh = 0; oh < g.out[1]; ++oh) {
          const Range rh = window(g, 1, oh);
          for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
            const Range rw = window(g, 2, ow);
            const Range r[3] = {rd, rh, rw};
            fn(p, o, r);
          }
        }
      }
    }
  });
}

// Calls fn(v, id, ih, iw) for each element v = plane[id][ih][iw] of window `r`, in row-major order.
template <class T, class F>
void for_each_in_window(const PoolGeom& g, const T* plane, const Range* r, F&& fn) {
  for (int64_t kd = r[0].k_lo; kd < r[0].k_hi; ++kd) {
    const int64_t id = r[0].start + kd * g.dilation[0];
    for (int64_t kh = r[1].k_lo; kh < r[1].k_hi; ++kh) {
      const int64_t ih = r[1].start + kh * g.dilation[1];
      const T* row = plane + (id * g.in[1] + ih) * g.in[2];
      for (int64_t kw = r[2].k_lo; kw < r[2].k_hi; ++kw) {
        const int64_t iw = r[2].start + kw * g.dilation[2];
        fn(row[iw], id, ih, iw);
      }
    }
  }
}

// ---- MaxPool -------------------------------------------------------------------------------------

Status max_pool(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  ORCHARD_ASSIGN_OR_RETURN(PoolGeom g, pool_geometry(node, x->shape()));
  const int64_t storage_order = node.attr_int("storage_order", 0);
  if (storage_order != 0 && storage_order != 1) return invalid_argument("storage_order ", storage_order, " must be 0 or 1");
  const bool want_indices = ctx.has_output(1);
  return dispatch<kFloats | kSignedInts | kUnsignedInts>(x->dtype(), "MaxPool", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    const Shape out_shape = pool_out_shape(g);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out_shape));
    Tensor idx;
    if (want_indices) {
      ORCHARD_ASSIGN_OR_RETURN(idx, ctx.make_output(1, DType::int64, out_shape));
    }
    const T* in = x->data<T>();
    T* out = y.data<T>();
    int64_t* out_idx = want_indices ? idx.data<int64_t>() : nullptr;
    // Column-major strides of the spatial dims for storage_order 1 (first dim fastest).
    int64_t col_stride[kMaxSpatial];
    int64_t acc = 1;
    for (size_t d = kMaxSpatial - g.rank; d < kMaxSpatial; ++d) {
      col_stride[d] = acc;
      acc *= g.in[d];
    }
    for (size_t d = 0; d < kMaxSpatial - g.rank; ++d) col_stride[d] = 0;
    for_each_window(ctx, g, [&](int64_t p, int64_t o, const Range* r) {
      const T* plane = in + p * g.in_size;
      C best = std::numeric_limits<C>::lowest();
      if constexpr (std::is_floating_point_v<C>) best = -std::numeric_limits<C>::infinity();
      int64_t bd = -1, bh = 0, bw = 0;
      for_each_in_window(g, plane, r, [&](const T& e, int64_t id, int64_t ih, int64_t iw) {
        const C v = load(e);
        if (bd < 0 || v > best) {
          best = v;
          bd = id;
          bh = ih;
          bw = iw;
        }
      });
      out[p * g.out_size + o] = store<T>(best);
      if (out_idx != nullptr) {
        const int64_t flat = bd < 0 ? -1
                             : storage_order == 0 ? (bd * g.in[1] + bh) * g.in[2] + bw
                                                  : bd * col_stride[0] + bh * col_stride[1] + bw * col_stride[2];
        out_idx[p * g.out_size + o] = bd < 0 ? -1 : p * g.in_size + flat;
      }
    });
    return Status::OK();
  });
}

// ---- AveragePool, LpPool -------------------------------------------------------------------------

Status average_pool(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  ORCHARD_ASSIGN_OR_RETURN(PoolGeom g, pool_geometry(node, x->shape()));
  const bool include_pad = node.attr_int("count_include_pad", 0) != 0;
  return dispatch<kFloats>(x->dtype(), "AveragePool", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), pool_out_shape(g)));
    const T* in = x->data<T>();
    T* out = y.data<T>();
    for_each_window(ctx, g, [&](int64_t p, int64_t o, const Range* r) {
      const T* plane = in + p * g.in_size;
      C sum = 0;
      for_each_in_window(g, plane, r, [&](const T& e, int64_t, int64_t, int64_t) { sum += load(e); });
      int64_t count = 1;
      for (size_t d = 0; d < kMaxSpatial; ++d) {
        if (include_pad) {
          // Window positions inside the padded input [-pad_begin, in + pad_end).
          int64_t n = 0;
          for (int64_t k = 0; k < g.kernel[d]; ++k) {
            const int64_t c = r[d].start + k * g.dilation[d];
            n += c >= -g.pad_begin[d] && c < g.in[d] + g.pad_end[d];
          }
          count *= n;
        } else {
          count *= r[d].k_hi - r[d].k_lo;
        }
      }
      out[p * g.out_size + o] = store<T>(count > 0 ? sum / static_cast<C>(count) : C(0));
    });
    return Status::OK();
  });
}

Status lp_pool(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  ORCHARD_ASSIGN_OR_RETURN(PoolGeom g, pool_geometry(node, x->shape()));
  const double pn = node.attr_float("p", 2.0f);  // a float before opset 2, an int after
  if (!(pn > 0)) return invalid_argument("p ", pn, " must be positive");
  return dispatch<kFloats>(x->dtype(), "LpPool", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), pool_out_shape(g)));
    const T* in = x->data<T>();
    T* out = y.data<T>();
    const C p = static_cast<C>(pn);
    for_each_window(ctx, g, [&](int64_t pl, int64_t o, const Range* r) {
      const T* plane = in + pl * g.in_size;
      C sum = 0;
      for_each_in_window(g, plane, r, [&](const T& e, int64_t, int64_t, int64_t) {
        const C v = std::fabs(load(e));
        sum += p == C(2) ? v * v : std::pow(v, p);
      });
      out[pl * g.out_size + o] = store<T>(p == C(2) ? std::sqrt(sum) : std::pow(sum, C(1) / p));
    });
    return Status::OK();
  });
}

// ---- Global pools --------------------------------------------------------------------------------

enum class GlobalKind { average, max, lp };

template <GlobalKind Kind>
Status global_pool(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  if (x->rank() < 2) return invalid_argument("input ", x->description(), " must have rank >= 2");
  const double pn = Kind == GlobalKind::lp ? ctx.node().attr_float("p", 2.0f) : 2.0;
  if (!(pn > 0)) return invalid_argument("p ", pn, " must be positive");
  Shape out_shape{x->dim(0), x->dim(1)};
  int64_t inner = 1;
  for (size_t d = 2; d < x->rank(); ++d) {
    out_shape.push_back(1);
    inner *= x->dim(d);
  }
  return dispatch<kFloats>(x->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out_shape));
    const T* in = x->data<T>();
    T* out = y.data<T>();
    const int64_t planes = x->dim(0) * x->dim(1);
    ctx.pool().parallel_for(planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* src = in + p * inner;
        C r;
        if constexpr (Kind == GlobalKind::max) {
          r = inner ? load(src[0]) : C(0);
          for (int64_t i = 1; i < inner; ++i) r = std::max(r, load(src[i]));  // NaN-free inputs assumed
        } else if constexpr (Kind == GlobalKind::average) {
          r = 0;
          for (int64_t i = 0; i < inner; ++i) r += load(src[i]);
          r = inner ? r / static_cast<C>(inner) : C(0);
        } else {
          const C p = static_cast<C>(pn);
          r = 0;
          for (int64_t i = 0; i < inner; ++i) {
            const C v = std::fabs(load(src[i]));
            r += p == C(2) ? v * v : std::pow(v, p);
          }
          r = p == C(2) ? std::sqrt(r) : std::pow(r, C(1) / p);
        }
        out[p] = store<T>(r);
      }
    });
    return Status::OK();
  });
}

// ---- MaxUnpool -----------------------------------------------------------------------------------

Status max_unpool(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* ind, ctx.input_tensor(1));
  const graph::Node& node = ctx.node();
  if (ind->dtype() != DType::int64) return invalid_argument("indices must be int64, got ", ind->description());
  if (ind->shape() != x->shape()) {
    return invalid_argument("indices ", ind->shape().to_string(), " must have the shape of X ", x->shape().to_string());
  }
  if (x->rank() < 3) return invalid_argument("X ", x->description(), " must have rank >= 3");
  const size_t r = x->rank() - 2;
  const std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  const std::vector<int64_t> stride = node.attr_ints("strides", std::vector<int64_t>(r, 1));
  const std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  if (kernel.size() != r || stride.size() != r || pads.size() != 2 * r) {
    return invalid_argument("kernel_shape, strides and pads must have ", r, ", ", r, " and ", 2 * r, " values");
  }
  // The default output shape, which the indices refer to.
  Shape inferred{x->dim(0), x->dim(1)};
  for (size_t d = 0; d < r; ++d) {
    const int64_t v = (x->dim(2 + d) - 1) * stride[d] + kernel[d] - pads[d] - pads[d + r];
    if (v < 0) return invalid_argument("output size ", v, " in spatial dim ", d, " is negative");
    inferred.push_back(v);
  }
  Shape out_shape = inferred;
  if (ctx.has_input(2)) {
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> os, tensor_to_ints(ctx.input(2), "output_shape"));
    if (os.size() != x->rank()) {
      return invalid_argument("output_shape has ", os.size(), " values for an input of rank ", x->rank());
    }
    if (std::any_of(os.begin(), os.end(), [](int64_t v) { return v < 0; })) {
      return invalid_argument("output_shape ", Shape(os).to_string(), " has a negative dim");
    }
    out_shape = Shape(os);
    if (out_shape[0] != inferred[0] || out_shape[1] != inferred[1]) {
      return invalid_argument("output_shape ", out_shape.to_string(), " must keep batch and channels of ", inferred.to_string());
    }
  }
  return dispatch<kFloats | kSignedInts | kUnsignedInts>(x->dtype(), "MaxUnpool", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out_shape));
    T* out = y.data<T>();
    std::fill(out, out + y.numel(), store<T>(0));
    const T* in = x->data<T>();
    const int64_t* idx = ind->data<int64_t>();
    const int64_t total = inferred.numel();
    const auto in_strides = strides_of(inferred);
    const auto out_strides = strides_of(out_shape);
    for (int64_t i = 0; i < x->numel(); ++i) {
      int64_t k = idx[i];
      if (k < 0 || k >= total) return invalid_argument("index ", k, " is out of range for output ", inferred.to_string());
      // Same coordinates in the (possibly larger) requested output; dropped when they fall outside it.
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < inferred.rank(); ++d) {
        const int64_t c = k / in_strides[d];
        k %= in_strides[d];
        inside = inside && c < out_shape[d];
        off += c * out_strides[d];
      }
      if (inside) out[off] = in[i];
    }
    return Status::OK();
  });
}

constexpr KernelDef kKernels[] = {
    {"", "MaxPool", 1, kVerifiedOpset, stateless<max_pool>},
    {"", "AveragePool", 1, kVerifiedOpset, stateless<average_pool>},
    {"", "LpPool", 1, kVerifiedOpset, stateless<lp_pool>},
    {"", "GlobalAveragePool", 1, kVerifiedOpset, stateless<global_pool<GlobalKind::average>>},
    {"", "GlobalMaxPool", 1, kVerifiedOpset, stateless<global_pool<GlobalKind::max>>},
    {"", "GlobalLpPool", 1, kVerifiedOpset, stateless<global_pool<GlobalKind::lp>>},
    {"", "MaxUnpool", 9, kVerifiedOpset, stateless<max_unpool>},
};

}  // namespace

std::span<const KernelDef> pool_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
