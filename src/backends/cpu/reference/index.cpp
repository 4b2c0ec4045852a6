// Indexing kernels: Concat, Split, Slice, Gather, GatherElements, GatherND, Scatter, ScatterElements,
// ScatterND, Pad, Compress, OneHot, NonZero, Unique, ReverseSequence.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "backends/cpu/copy_util.hpp"
#include "backends/cpu/reference/families.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"
#include "backends/cpu/kernel_inputs.hpp"

namespace orchard::cpu::reference {

namespace {

// Returns index `v` into a dim of size `n` with negatives counted from the end, or an error.
inline Result<int64_t> checked_index(int64_t v, int64_t n, std::string_view what) {
  const int64_t i = v < 0 ? v + n : v;
  if (i < 0 || i >= n) return invalid_argument(what, " ", v, " is out of range for a dim of size ", n);
  return i;
}

// Returns the elements of an index tensor (int32/int64) as int64, each checked against a dim of size n.
Result<std::vector<int64_t>> checked_indices(const Tensor& t, int64_t n, std::string_view what) {
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> v, tensor_to_ints(t, what));
  for (int64_t& i : v) {
    ORCHARD_ASSIGN_OR_RETURN(i, checked_index(i, n, what));
  }
  return v;
}

// ---- Concat, Split ----

Status concat(OpContext& ctx) {
  if (ctx.num_inputs() == 0) return invalid_argument("Concat needs at least one input");
  std::vector<const Tensor*> xs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
    xs.push_back(t);
  }
  const Tensor& first = *xs[0];
  const int64_t r = static_cast<int64_t>(first.rank());
  if (r == 0) return invalid_argument("cannot concatenate scalars");
  const graph::Attribute* axis_attr = ctx.node().attr("axis");
  if (!axis_attr && ctx.node().opset >= 4) return invalid_argument("attribute 'axis' is missing");
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 1), r));
  const size_t ax = static_cast<size_t>(axis);
  Shape out = first.shape();
  out[ax] = 0;
  for (const Tensor* t : xs) {
    if (t->dtype() != first.dtype() || t->rank() != first.rank()) {
      return invalid_argument("inputs ", first.description(), " and ", t->description(), " cannot be concatenated");
    }
    for (size_t d = 0; d < t->rank(); ++d) {
      if (d != ax && t->dim(d) != first.dim(d)) {
        return invalid_argument("inputs ", first.description(), " and ", t->description(),
                                " differ in dim ", d, " (concatenating on axis ", axis, ")");
      }
    }
    out[ax] += t->dim(ax);
  }
  const int64_t outer = dims_product(first.shape(), 0, ax);
  const int64_t inner = dims_product(first.shape(), ax + 1, first.rank());
  return dispatch_copy(first.dtype(), "Concat", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, first.dtype(), out));
    const int64_t out_block = out[ax] * inner;
    int64_t at = 0;
    for (const Tensor* t : xs) {
      const int64_t block = t->dim(ax) * inner;
      copy_blocks<T>(t->data<T>(), block, y.data<T>() + at, out_block, outer, block, ctx.pool());
      at += block;
    }
    return Status::OK();
  });
}

Status split(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t r = static_cast<int64_t>(x->rank());
  if (r == 0) return invalid_argument("cannot split a scalar");
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), r));
  const size_t ax = static_cast<size_t>(axis);
  const int64_t dim = x->dim(ax);
  const int64_t n = static_cast<int64_t>(ctx.num_outputs());
  std::vector<int64_t> sizes;
  bool given = false;
  if (ctx.node().opset >= 13 || (ctx.node().opset == 1 && ctx.has_input(1))) {
    if (ctx.has_input(1)) {
      ORCHARD_ASSIGN_OR_RETURN(sizes, ints_input(ctx, 1, "split"));
      given = !sizes.empty();  // an empty split input means equal parts
    }
  } else if (ctx.node().attr("split")) {
    given = true;
    sizes = ctx.node().attr_ints("split");
  }
  if (!given) {
    if (ctx.node().attr("num_outputs")) {
      const int64_t want = ctx.node().attr_int("num_outputs", 0);
      if (want != n) return invalid_argument("num_outputs ", want, " does not match the node's ", n, " outputs");
      const int64_t chunk = (dim + n - 1) / n;
      for (int64_t i = 0; i < n; ++i) sizes.push_back(std::clamp<int64_t>(dim - i * chunk, 0, chunk));
    } else {
      if (n == 0 || dim % n != 0) return invalid_argument("dim ", dim, " cannot be split into ", n, " equal parts");
      sizes.assign(static_cast<size_t>(n), dim / n);
    }
  }
  if (static_cast<int64_t>(sizes.size()) != n) {
    return invalid_argument("split has ", sizes.size(), " entries but the node has ", n, " outputs");
  }
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) return invalid_argument("split ", Shape(sizes).to_string(), " has a negative entry");
    total += s;
  }
  if (total != dim) {
    return invalid_argument("split ", Shape(sizes).to_string(), " sums to ", total, " but axis ", axis, " of ",
                            x->description(), " has size ", dim);
  }
  const int64_t outer = dims_product(x->shape(), 0, ax);
  const int64_t inner = dims_product(x->shape(), ax + 1, x->rank());
  return dispatch_copy(x->dtype(), "Split", [&](auto tag) -> Status {
    using T = decltype(tag);
    int64_t at = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      Shape s = x->shape();
      s[ax] = sizes[i];
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(i, x->dtype(), s));
      const int64_t block = sizes[i] * inner;
      copy_blocks<T>(x->data<T>() + at, dim * inner, y.data<T>(), block, outer, block, ctx.pool());
      at += block;
    }
    return Status::OK();
  });
}

// ---- Slice ----

Status slice(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t r = static_cast<int64_t>(x->rank());
  std::vector<int64_t> starts, ends, axes, steps;
  bool has_axes = false;
  if (ctx.node().opset < 10) {
    if (!ctx.node().attr("starts") || !ctx.node().attr("ends")) return invalid_argument("attributes 'starts' and 'ends' are required");
    starts = ctx.node().attr_ints("starts");
    ends = ctx.node().attr_ints("ends");
    has_axes = ctx.node().attr("axes") != nullptr;
    axes = ctx.node().attr_ints("axes");
  } else {
    ORCHARD_ASSIGN_OR_RETURN(starts, ints_input(ctx, 1, "starts"));
    ORCHARD_ASSIGN_OR_RETURN(ends, ints_input(ctx, 2, "ends"));
    if (ctx.has_input(3)) {
      has_axes = true;
      ORCHARD_ASSIGN_OR_RETURN(axes, ints_input(ctx, 3, "axes"));
    }
    if (ctx.has_input(4)) {
      ORCHARD_ASSIGN_OR_RETURN(steps, ints_input(ctx, 4, "steps"));
    }
  }
  const size_t n = starts.size();
  if (ends.size() != n) return invalid_argument("starts has ", n, " entries but ends has ", ends.size());
  if (!has_axes) {
    axes.resize(n);
    std::iota(axes.begin(), axes.end(), int64_t{0});
  }
  if (axes.size() != n) return invalid_argument("starts has ", n, " entries but axes has ", axes.size());
  if (steps.empty()) steps.assign(n, 1);
  if (steps.size() != n) return invalid_argument("starts has ", n, " entries but steps has ", steps.size());
  ORCHARD_ASSIGN_OR_RETURN(axes, normalize_axes(axes, r));

  std::vector<int64_t> begin(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1), count(x->shape().dims());
  for (size_t i = 0; i < n; ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    const int64_t d = x->dim(a);
    const int64_t st = steps[i];
    if (st == 0) return invalid_argument("steps must not be zero (axis ", axes[i], ")");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += d;
    if (e < 0) e += d;
    int64_t c = 0;
    if (d == 0) {
      s = 0;
    } else if (st > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      c = e > s ? (e - s - 1) / st + 1 : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
      const int64_t mag = st == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -st;
      c = s > e ? (s - e - 1) / mag + 1 : 0;
    }
    begin[a] = s;
    step[a] = c > 1 ? st : 1;  // a step is irrelevant for one element (and may be huge)
    count[a] = c;
  }
  const std::vector<int64_t> in_strides = strides_of(x->shape());
  int64_t offset = 0;
  std::vector<int64_t> strides(static_cast<size_t>(r));
  for (size_t d = 0; d < static_cast<size_t>(r); ++d) {
    offset += begin[d] * in_strides[d];
    strides[d] = step[d] * in_strides[d];
  }
  Shape out(count);
  return dispatch_copy(x->dtype(), "Slice", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out));
    strided_copy<T>(x->data<T>(), offset, count, strides, y.data<T>(), ctx.pool());
    return Status::OK();
  });
}

// ---- Gather, GatherElements, GatherND ----

Status gather(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* ind, ctx.input_tensor(1));
  const int64_t r = static_cast<int64_t>(x->rank());
  if (r == 0) return invalid_argument("cannot gather from a scalar");
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), r));
  const size_t ax = static_cast<size_t>(axis);
  const int64_t dim = x->dim(ax);
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> idx, checked_indices(*ind, dim, "index"));
  Shape out;
  for (size_t d = 0; d < ax; ++d) out.push_back(x->dim(d));
  for (int64_t d : ind->shape()) out.push_back(d);
  for (size_t d = ax + 1; d < x->rank(); ++d) out.push_back(x->dim(d));
  const int64_t outer = dims_product(x->shape(), 0, ax);
  const int64_t inner = dims_product(x->shape(), ax + 1, x->rank());
  const int64_t n = static_cast<int64_t>(idx.size());
  return dispatch_copy(x->dtype(), "Gather", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out));
    const T* in = x->data<T>();
    T* dst = y.data<T>();
    const int64_t total = outer * n;
    if (total == 0 || inner == 0) return Status::OK();
    ctx.pool().parallel_for(total, grain_for(inner), [&](int64_t b0, int64_t b1) {
      for (int64_t p = b0; p < b1; ++p) {
        const int64_t o = p / n, i = p % n;
        const T* src = in + (o * dim + idx[static_cast<size_t>(i)]) * inner;
        std::copy(src, src + inner, dst + p * inner);
      }
    });
    return Status::OK();
  });
}

// Checks that `ind` has x's rank and fits inside x on every dim but `axis`.
Status check_elements_shape(const Tensor& x, const Tensor& ind, size_t axis) {
  if (ind.rank() != x.rank()) {
    return invalid_argument("indices ", ind.description(), " must have the rank of data ", x.description());
  }
  for (size_t d = 0; d < x.rank(); ++d) {
    if (d != axis && ind.dim(d) > x.dim(d)) {
      return invalid_argument("indices ", ind.description(), " exceed data ", x.description(), " on dim ", d);
    }
  }
  return Status::OK();
}

// Calls fn(p, off) for each element p of `ind` (row-major), with off the offset in x of the element
// that p addresses along `axis`. Indices are checked first.
template <class F>
Status for_each_element_index(const Tensor& x, const Tensor& ind, size_t axis, F&& fn) {
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> idx, checked_indices(ind, x.dim(axis), "index"));
  if (ind.numel() == 0) return Status::OK();
  const std::vector<int64_t> xs = strides_of(x.shape());
  std::vector<int64_t> walk_strides = xs;
  walk_strides[axis] = 0;
  StridedWalk<1> w(ind.shape().dims(), {walk_strides});
  const int64_t axis_stride = xs[axis];
  for (int64_t p = 0; p < ind.numel(); ++p, w.next()) fn(p, w.offset() + idx[static_cast<size_t>(p)] * axis_stride);
  return Status::OK();
}

Status gather_elements(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* ind, ctx.input_tensor(1));
  const int64_t r = static_cast<int64_t>(x->rank());
  if (r == 0) return invalid_argument("cannot gather from a scalar");
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), r));
  ORCHARD_RETURN_IF_ERROR(check_elements_shape(*x, *ind, static_cast<size_t>(axis)));
  return dispatch_copy(x->dtype(), "GatherElements", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), ind->shape()));
    const T* in = x->data<T>();
    T* dst = y.data<T>();
    return for_each_element_index(*x, *ind, static_cast<size_t>(axis), [&](int64_t p, int64_t off) { dst[p] = in[off]; });
  });
}

// The geometry GatherND and ScatterND share: indices [..., k] address slices of data of `slice` elements.
struct NdPlan {
  int64_t batches = 1, per_batch = 1, batch_stride = 0, slice = 1, k = 0;
  std::vector<int64_t> offsets;  // element offset in data of each addressed slice, in indices order
};

Result<NdPlan> plan_nd(const Tensor& x, const Tensor& ind, int64_t batch_dims) {
  const size_t r = x.rank(), q = ind.rank();
  if (q == 0) return invalid_argument("indices must have rank >= 1, got ", ind.description());
  if (batch_dims < 0 || static_cast<size_t>(batch_dims) >= q || static_cast<size_t>(batch_dims) > r) {
    return invalid_argument("batch_dims ", batch_dims, " is out of range for indices ", ind.description(),
                            " and data ", x.description());
  }
  const size_t b = static_cast<size_t>(batch_dims);
  NdPlan p;
  p.k = ind.dim(q - 1);
  if (p.k < 0 || b + static_cast<size_t>(p.k) > r) {
    return invalid_argument("indices ", ind.description(), " address ", p.k, " dims of data ", x.description(),
                            " beyond its rank (batch_dims ", b, ")");
  }
  for (size_t d = 0; d < b; ++d) {
    if (ind.dim(d) != x.dim(d)) {
      return invalid_argument("batch dim ", d, " differs: indices ", ind.description(), ", data ", x.description());
    }
  }
  const size_t kk = static_cast<size_t>(p.k);
  p.batches = dims_product(x.shape(), 0, b);
  p.per_batch = dims_product(ind.shape(), b, q - 1);
  p.batch_stride = dims_product(x.shape(), b, r);
  p.slice = dims_product(x.shape(), b + kk, r);
  const std::vector<int64_t> xs = strides_of(x.shape());
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> iv, tensor_to_ints(ind, "indices"));
  p.offsets.resize(static_cast<size_t>(p.batches * p.per_batch));
  for (int64_t t = 0; t < p.batches * p.per_batch; ++t) {
    int64_t off = (t / std::max<int64_t>(p.per_batch, 1)) * p.batch_stride;
    for (size_t j = 0; j < kk; ++j) {
      ORCHARD_ASSIGN_OR_RETURN(int64_t i, checked_index(iv[static_cast<size_t>(t) * kk + j], x.dim(b + j), "index"));
      off += i * xs[b + j];
    }
    p.offsets[static_cast<size_t>(t)] = off;
  }
  return p;
}

Status gather_nd(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* ind, ctx.input_tensor(1));
  const int64_t batch_dims = ctx.node().attr_int("batch_dims", 0);
  ORCHARD_ASSIGN_OR_RETURN(NdPlan p, plan_nd(*x, *ind, batch_dims));
  Shape out;
  for (size_t d = 0; d + 1 < ind->rank(); ++d) out.push_back(ind->dim(d));
  for (size_t d = static_cast<size_t>(batch_dims + p.k); d < x->rank(); ++d) out.push_back(x->dim(d));
  return dispatch_copy(x->dtype(), "GatherND", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out));
    const T* in = x->data<T>();
    T* dst = y.data<T>();
    for (size_t t = 0; t < p.offsets.size(); ++t) {
      std::copy(in + p.offsets[t], in + p.offsets[t] + p.slice, dst + static_cast<int64_t>(t) * p.slice);
    }
    return Status::OK();
  });
}

// ---- Scatter, ScatterElements, ScatterND ----

enum class Reduction { none, add, mul, max, min };

Result<Reduction> reduction_of(OpContext& ctx) {
  const std::string r = ctx.node().attr_string("reduction", "none");
  if (r == "none") return Reduction::none;
  if (r == "add") return Reduction::add;
  if (r == "mul") return Reduction::mul;
  if (r == "max") return Reduction::max;
  if (r == "min") return Reduction::min;
  return invalid_argument("reduction '", r, "' is not supported");
}

// Runs fn(T{}, combine) where combine(dst, src) stores src into dst with the reduction.
template <class F>
Status dispatch_reduction(DType dt, Reduction red, std::string_view what, F&& fn) {
  if (red == Reduction::none) {
    return dispatch_copy(dt, what, [&](auto tag) { return fn(tag, [](auto& d, const auto& s) { d = s; }); });
  }
  return dispatch<kNumeric>(dt, what, [&](auto tag) {
    using T = decltype(tag);
    return fn(tag, [red](T& d, const T& s) {
      const auto a = load(d), b = load(s);
      switch (red) {
        case Reduction::add: d = store<T>(a + b); break;
        case Reduction::mul: d = store<T>(a * b); break;
        case Reduction::max: d = store<T>(std::max(a, b)); break;
        case Reduction::min: d = store<T>(std::min(a, b)); break;
        case Reduction::none: d = s; break;
      }
    });
  });
}

Status scatter_elements(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* ind, ctx.input_tensor(1));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* upd, ctx.input_tensor(2));
  const int64_t r = static_cast<int64_t>(x->rank());
  if (r == 0) return invalid_argument("cannot scatter into a scalar");
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), r));
  ORCHARD_RETURN_IF_ERROR(check_elements_shape(*x, *ind, static_cast<size_t>(axis)));
  if (upd->shape() != ind->shape() || upd->dtype() != x->dtype()) {
    return invalid_argument("updates ", upd->description(), " must match indices ", ind->description(),
                            " in shape and data ", x->description(), " in type");
  }
  ORCHARD_ASSIGN_OR_RETURN(Reduction red, reduction_of(ctx));
  return dispatch_reduction(x->dtype(), red, ctx.node().op_type, [&](auto tag, auto combine) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    T* dst = y.data<T>();
    std::copy(x->data<T>(), x->data<T>() + x->numel(), dst);
    const T* u = upd->data<T>();
    return for_each_element_index(*x, *ind, static_cast<size_t>(axis),
                                  [&](int64_t p, int64_t off) { combine(dst[off], u[p]); });
  });
}

Status scatter_nd(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* ind, ctx.input_tensor(1));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* upd, ctx.input_tensor(2));
  ORCHARD_ASSIGN_OR_RETURN(NdPlan p, plan_nd(*x, *ind, 0));
  Shape want;
  for (size_t d = 0; d + 1 < ind->rank(); ++d) want.push_back(ind->dim(d));
  for (size_t d = static_cast<size_t>(p.k); d < x->rank(); ++d) want.push_back(x->dim(d));
  if (upd->shape() != want || upd->dtype() != x->dtype()) {
    return invalid_argument("updates ", upd->description(), " must have shape ", want.to_string(), " and the type of ",
                            x->description());
  }
  ORCHARD_ASSIGN_OR_RETURN(Reduction red, reduction_of(ctx));
  return dispatch_reduction(x->dtype(), red, "ScatterND", [&](auto tag, auto combine) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    T* dst = y.data<T>();
    std::copy(x->data<T>(), x->data<T>() + x->numel(), dst);
    const T* u = upd->data<T>();
    for (size_t t = 0; t < p.offsets.size(); ++t) {
      T* d = dst + p.offsets[t];
      const T* s = u + static_cast<int64_t>(t) * p.slice;
      for (int64_t e = 0; e < p.slice; ++e) combine(d[e], s[e]);
    }
    return Status::OK();
  });
}

// ---- Pad ----

// Returns a one-element tensor of `dt` holding the pad value.
Result<Tensor> pad_value(OpContext& ctx, DType dt) {
  Tensor v = Tensor::zeros(dt, Shape{});
  if (ctx.node().opset < 11) {
    const double f = ctx.node().attr_float("value", 0.0f);
    if (f == 0.0) return v;
    ORCHARD_RETURN_IF_ERROR(dispatch<kNumeric | kBool>(dt, "Pad", [&](auto tag) -> Status {
      using T = decltype(tag);
      v.data<T>()[0] = store<T>(f);
      return Status::OK();
    }));
    return v;
  }
  if (!ctx.has_input(2)) return v;
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* c, ctx.input_tensor(2));
  if (c->numel() == 0) return v;  // an empty tensor stands for the default
  if (c->numel() != 1 || c->dtype() != dt) {
    return invalid_argument("constant_value ", c->description(), " must be one element of type ", dtype_name(dt));
  }
  return c->clone().reshaped(Shape{});
}

Status pad(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const size_t r = x->rank();
  std::vector<int64_t> pads;
  if (ctx.node().opset < 2) {
    pads = ctx.node().attr_ints("paddings");
  } else if (ctx.node().opset < 11) {
    pads = ctx.node().attr_ints("pads");
  } else {
    ORCHARD_ASSIGN_OR_RETURN(pads, ints_input(ctx, 1, "pads"));
  }
  std::vector<int64_t> axes(r);
  std::iota(axes.begin(), axes.end(), int64_t{0});
  if (ctx.node().opset >= 11 && ctx.has_input(3)) {
    ORCHARD_ASSIGN_OR_RETURN(axes, ints_input(ctx, 3, "axes"));
    ORCHARD_ASSIGN_OR_RETURN(axes, normalize_axes(axes, static_cast<int64_t>(r)));
  }
  const size_t na = axes.size();
  if (pads.size() != 2 * na) {
    return invalid_argument("pads has ", pads.size(), " entries; expected ", 2 * na, " for ", x->description());
  }
  for (int64_t v : pads) {
    if (v > (int64_t{1} << 56) || v < -(int64_t{1} << 56)) return invalid_argument("pad ", v, " is too large");
  }
  std::vector<int64_t> lo(r, 0), hi(r, 0);
  for (size_t i = 0; i < na; ++i) {
    lo[static_cast<size_t>(axes[i])] = pads[i];
    hi[static_cast<size_t>(axes[i])] = pads[na + i];
  }
  const std::string mode = ctx.node().attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    return invalid_argument("mode '", mode, "' is not constant, reflect, edge or wrap");
  }
  // src[d][o]: the input coordinate output coordinate o reads on dim d, or -1 for the pad value. Negative
  // pads crop the input first; the other modes then reflect/clamp/wrap within the cropped range.
  Shape out;
  std::vector<std::vector<int64_t>> src(r);
  for (size_t d = 0; d < r; ++d) {
    const int64_t crop_lo = std::max<int64_t>(-lo[d], 0), crop_hi = std::max<int64_t>(-hi[d], 0);
    const int64_t pad_lo = std::max<int64_t>(lo[d], 0), pad_hi = std::max<int64_t>(hi[d], 0);
    const int64_t n = x->dim(d) - crop_lo - crop_hi;  // the cropped size
    if (n < 0) {
      return invalid_argument("pads ", Shape(pads).to_string(), " remove more than the ", x->dim(d),
                              " elements of dim ", d);
    }
    const int64_t m = n + pad_lo + pad_hi;
    out.push_back(m);
    src[d].resize(static_cast<size_t>(m));
    for (int64_t o = 0; o < m; ++o) {
      int64_t c = o - pad_lo;
      if (c < 0 || c >= n) {
        if (mode == "constant") {
          src[d][static_cast<size_t>(o)] = -1;
          continue;
        }
        if (n == 0) return invalid_argument("cannot pad empty dim ", d, " in ", mode, " mode");
        if (mode == "edge") {
          c = std::clamp<int64_t>(c, 0, n - 1);
        } else if (mode == "wrap") {
          c = ((c % n) + n) % n;
        } else if (n == 1) {
          c = 0;
        } else {  // reflect, periodic with period 2(n-1)
          const int64_t period = 2 * (n - 1);
          c = ((c % period) + period) % period;
          if (c >= n) c = period - c;
        }
      }
      src[d][static_cast<size_t>(o)] = crop_lo + c;
    }
  }
  ORCHARD_RETURN_IF_ERROR(check_numel(out.dims()));
  ORCHARD_ASSIGN_OR_RETURN(Tensor value, pad_value(ctx, x->dtype()));
  return dispatch_copy(x->dtype(), "Pad", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out));
    const T* in = x->data<T>();
    T* dst = y.data<T>();
    const T fill = value.data<T>()[0];
    if (y.numel() == 0) return Status::OK();
    if (r == 0) {
      dst[0] = in[0];
      return Status::OK();
    }
    const std::vector<int64_t> xs = strides_of(x->shape());
    const int64_t inner = out[r - 1];
    const int64_t rows = y.numel() / inner;
    const std::vector<int64_t>& last = src[r - 1];
    ctx.pool().parallel_for(rows, grain_for(inner), [&](int64_t b0, int64_t b1) {
      StridedWalk<0> w(std::vector<int64_t>(out.begin(), out.end() - 1), {});
      w.seek(b0);
      const std::vector<int64_t>& idx = w.index();
      for (int64_t row = b0; row < b1; ++row, w.next()) {
        T* o = dst + row * inner;
        int64_t base = 0;
        bool padded = false;
        for (size_t d = 0; d + 1 < r; ++d) {
          const int64_t c = src[d][static_cast<size_t>(idx[d])];
          if (c < 0) padded = true;
          base += c * xs[d];
        }
        if (padded) {
          std::fill(o, o + inner, fill);
        } else {
          const T* i = in + base;
          for (int64_t k = 0; k < inner; ++k) {
            const int64_t c = last[static_cast<size_t>(k)];
            o[k] = c < 0 ? fill : i[c];
          }
        }
      }
    });
    return Status::OK();
  });
}

// ---- Compress, OneHot, NonZero ----

Status compress(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* cond, ctx.input_tensor(1));
  if (cond->rank() != 1) return invalid_argument("condition must be 1-D, got ", cond->description());
  const graph::Attribute* axis_attr = ctx.node().attr("axis");
  int64_t outer = 1, dim = x->numel(), inner = 1;
  size_t ax = 0;
  if (axis_attr) {
    ORCHARD_ASSIGN_OR_RETURN(int64_t a, normalize_axis(ctx.node().attr_int("axis", 0), static_cast<int64_t>(x->rank())));
    ax = static_cast<size_t>(a);
    outer = dims_product(x->shape(), 0, ax);
    dim = x->dim(ax);
    inner = dims_product(x->shape(), ax + 1, x->rank());
  }
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond->numel(); ++i) {
    if (element_as_double(*cond, i) == 0.0) continue;
    if (i >= dim) {
      return invalid_argument("condition selects index ", i, " beyond the ", dim, " elements of the compressed axis");
    }
    keep.push_back(i);
  }
  Shape out;
  if (axis_attr) {
    out = x->shape();
    out[ax] = static_cast<int64_t>(keep.size());
  } else {
    out = Shape{static_cast<int64_t>(keep.size())};
  }
  return dispatch_copy(x->dtype(), "Compress", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out));
    const T* in = x->data<T>();
    T* dst = y.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t k : keep) {
        const T* s = in + (o * dim + k) * inner;
        dst = std::copy(s, s + inner, dst);
      }
    }
    return Status::OK();
  });
}

Status one_hot(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* ind, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* depth_t, ctx.input_tensor(1));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* values, ctx.input_tensor(2));
  if (depth_t->numel() != 1 || depth_t->dtype() == DType::string) {
    return invalid_argument("depth must be one number, got ", depth_t->description());
  }
  if (values->numel() != 2) return invalid_argument("values must hold [off, on], got ", values->description());
  if (ind->dtype() == DType::string || ind->dtype() == DType::boolean) {
    return invalid_argument("indices must be numeric, got ", ind->description());
  }
  const double depth_f = element_as_double(*depth_t, 0);
  if (!(depth_f >= 1) || depth_f > 1e12) return invalid_argument("depth ", depth_f, " must be a positive count");
  const int64_t depth = static_cast<int64_t>(depth_f);
  const int64_t r = static_cast<int64_t>(ind->rank());
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", -1), r + 1));
  Shape out;
  for (int64_t d = 0; d < r + 1; ++d) {
    if (d == axis) out.push_back(depth);
    if (d < r) out.push_back(ind->dim(static_cast<size_t>(d)));
  }
  ORCHARD_RETURN_IF_ERROR(check_numel(out.dims()));
  const int64_t outer = dims_product(ind->shape(), 0, static_cast<size_t>(axis));
  const int64_t inner = dims_product(ind->shape(), static_cast<size_t>(axis), ind->rank());
  return dispatch_copy(values->dtype(), "OneHot", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, values->dtype(), out));
    const T off = values->data<T>()[0], on = values->data<T>()[1];
    T* dst = y.data<T>();
    std::fill(dst, dst + y.numel(), off);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const double v = element_as_double(*ind, o * inner + i);
        if (!std::isfinite(v)) continue;
        int64_t k = static_cast<int64_t>(std::clamp(v, -2.0 * depth_f, 2.0 * depth_f));
        if (k < 0) k += depth;
        if (k < 0 || k >= depth) continue;  // out of range: all off values
        dst[(o * depth + k) * inner + i] = on;
      }
    }
    return Status::OK();
  });
}

Status non_zero(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  std::vector<int64_t> hits;
  ORCHARD_RETURN_IF_ERROR(dispatch<kAll>(x->dtype(), "NonZero", [&](auto tag) -> Status {
    using T = decltype(tag);
    const T* in = x->data<T>();
    for (int64_t i = 0; i < x->numel(); ++i) {
      bool nz;
      if constexpr (std::is_same_v<T, std::string>) nz = !in[i].empty();
      else nz = load(in[i]) != decltype(load(in[i]))(0);
      if (nz) hits.push_back(i);
    }
    return Status::OK();
  }));
  const size_t r = x->rank();
  const int64_t n = static_cast<int64_t>(hits.size());
  // A scalar is treated as a 1-element vector (numpy's behaviour).
  const int64_t rows = r == 0 ? 1 : static_cast<int64_t>(r);
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::int64, Shape{rows, n}));
  int64_t* dst = y.data<int64_t>();
  for (int64_t j = 0; j < n; ++j) {
    int64_t rem = hits[static_cast<size_t>(j)];
    if (r == 0) dst[j] = 0;
    for (size_t d = r; d-- > 0;) {
      dst[static_cast<int64_t>(d) * n + j] = rem % x->dim(d);
      rem /= x->dim(d);
    }
  }
  return Status::OK();
}

// ---- Unique ----

Status unique(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const bool sorted = ctx.node().attr_int("sorted", 1) != 0;
  const graph::Attribute* axis_attr = ctx.node().attr("axis");
  // Rows to deduplicate: row i is x[o, i, k] over (o, k); flattened input when no axis.
  int64_t outer = 1, n = x->numel(), inner = 1;
  size_t ax = 0;
  if (axis_attr) {
    ORCHARD_ASSIGN_OR_RETURN(int64_t a, normalize_axis(ctx.node().attr_int("axis", 0), static_cast<int64_t>(x->rank())));
    ax = static_cast<size_t>(a);
    outer = dims_product(x->shape(), 0, ax);
    n = x->dim(ax);
    inner = dims_product(x->shape(), ax + 1, x->rank());
  }
  return dispatch<kAll>(x->dtype(), "Unique", [&](auto tag) -> Status {
    using T = decltype(tag);
    const T* in = x->data<T>();
    auto elem = [&](int64_t row, int64_t o, int64_t k) -> decltype(auto) {
      if constexpr (std::is_same_v<T, std::string>) return (in[(o * n + row) * inner + k]);
      else return load(in[(o * n + row) * inner + k]);
    };
    // A strict weak order on elements: NaNs are equal to each other and after every number.
    auto less = [](const auto& a, const auto& b) {
      if constexpr (std::is_floating_point_v<std::decay_t<decltype(a)>>) {
        if (std::isnan(a)) return false;
        if (std::isnan(b)) return true;
      }
      return a < b;
    };
    // Returns -1, 0 or 1 comparing rows a and b lexicographically.
    auto compare = [&](int64_t a, int64_t b) {
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < inner; ++k) {
          const auto& va = elem(a, o, k);
          const auto& vb = elem(b, o, k);
          if (less(va, vb)) return -1;
          if (less(vb, va)) return 1;
        }
      }
      return 0;
    };
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return compare(a, b) < 0; });
    // Groups of equal rows in sorted order; each group's first member is its first occurrence.
    std::vector<int64_t> first, counts;
    std::vector<int64_t> group_of(static_cast<size_t>(n));
    for (size_t i = 0; i < order.size(); ++i) {
      if (i == 0 || compare(order[i - 1], order[i]) != 0) {
        first.push_back(order[i]);
        counts.push_back(0);
      }
      counts.back() += 1;
      group_of[static_cast<size_t>(order[i])] = static_cast<int64_t>(first.size()) - 1;
    }
    const size_t u = first.size();
    std::vector<size_t> rank_of(u);  // output position of each group
    std::iota(rank_of.begin(), rank_of.end(), size_t{0});
    if (!sorted) {
      std::vector<size_t> by_first(u);
      std::iota(by_first.begin(), by_first.end(), size_t{0});
      std::sort(by_first.begin(), by_first.end(), [&](size_t a, size_t b) { return first[a] < first[b]; });
      for (size_t p = 0; p < u; ++p) rank_of[by_first[p]] = p;
    }
    Shape yshape = axis_attr ? x->shape() : Shape{static_cast<int64_t>(u)};
    if (axis_attr) yshape[ax] = static_cast<int64_t>(u);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), yshape));
    ORCHARD_ASSIGN_OR_RETURN(Tensor indices, ctx.make_output(1, DType::int64, Shape{static_cast<int64_t>(u)}));
    ORCHARD_ASSIGN_OR_RETURN(Tensor inverse, ctx.make_output(2, DType::int64, Shape{n}));
    ORCHARD_ASSIGN_OR_RETURN(Tensor cnt, ctx.make_output(3, DType::int64, Shape{static_cast<int64_t>(u)}));
    T* py = y.data<T>();
    const int64_t uu = static_cast<int64_t>(u);
    for (size_t g = 0; g < u; ++g) {
      const int64_t pos = static_cast<int64_t>(rank_of[g]);
      indices.data<int64_t>()[pos] = first[g];
      cnt.data<int64_t>()[pos] = counts[g];
      for (int64_t o = 0; o < outer; ++o) {
        const T* s = in + (o * n + first[g]) * inner;
        std::copy(s, s + inner, py + (o * uu + pos) * inner);
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      inverse.data<int64_t>()[i] = static_cast<int64_t>(rank_of[static_cast<size_t>(group_of[static_cast<size_t>(i)])]);
    }
    return Status::OK();
  });
}

// ---- ReverseSequence ----

Status reverse_sequence(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* lens_t, ctx.input_tensor(1));
  if (x->rank() < 2) return invalid_argument("input must have rank >= 2, got ", x->description());
  const int64_t time_axis = ctx.node().attr_int("time_axis", 0);
  const int64_t batch_axis = ctx.node().attr_int("batch_axis", 1);
  if (!((time_axis == 0 && batch_axis == 1) || (time_axis == 1 && batch_axis == 0))) {
    return invalid_argument("time_axis ", time_axis, " and batch_axis ", batch_axis, " must be 0 and 1 in some order");
  }
  const int64_t steps = x->dim(static_cast<size_t>(time_axis));
  const int64_t batch = x->dim(static_cast<size_t>(batch_axis));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> lens, tensor_to_ints(*lens_t, "sequence_lens"));
  if (lens_t->rank() != 1 || static_cast<int64_t>(lens.size()) != batch) {
    return invalid_argument("sequence_lens ", lens_t->description(), " must have one entry per batch (", batch, ")");
  }
  for (int64_t l : lens) {
    if (l < 0 || l > steps) return invalid_argument("sequence length ", l, " is out of range [0, ", steps, "]");
  }
  const int64_t inner = dims_product(x->shape(), 2, x->rank());
  auto at = [&](int64_t t, int64_t b) { return (time_axis == 0 ? t * batch + b : b * steps + t) * inner; };
  return dispatch_copy(x->dtype(), "ReverseSequence", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    const T* in = x->data<T>();
    T* dst = y.data<T>();
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t len = lens[static_cast<size_t>(b)];
      for (int64_t t = 0; t < steps; ++t) {
        const T* s = in + at(t < len ? len - 1 - t : t, b);
        std::copy(s, s + inner, dst + at(t, b));
      }
    }
    return Status::OK();
  });
}

constexpr KernelDef kKernels[] = {
    {"", "Concat", 1, kVerifiedOpset, stateless<concat>},
    {"", "Split", 1, 12, stateless<split>},
    {"", "Split", 13, kVerifiedOpset, stateless<split>},
    {"", "Slice", 1, 9, stateless<slice>},
    {"", "Slice", 10, kVerifiedOpset, stateless<slice>},
    {"", "Gather", 1, kVerifiedOpset, stateless<gather>},
    {"", "GatherElements", 11, kVerifiedOpset, stateless<gather_elements>},
    {"", "GatherND", 11, kVerifiedOpset, stateless<gather_nd>},
    {"", "Scatter", 9, kVerifiedOpset, stateless<scatter_elements>},
    {"", "ScatterElements", 11, kVerifiedOpset, stateless<scatter_elements>},
    {"", "ScatterND", 11, kVerifiedOpset, stateless<scatter_nd>},
    {"", "Pad", 1, 1, stateless<pad>},
    {"", "Pad", 2, 10, stateless<pad>},
    {"", "Pad", 11, kVerifiedOpset, stateless<pad>},
    {"", "Compress", 9, kVerifiedOpset, stateless<compress>},
    {"", "OneHot", 9, kVerifiedOpset, stateless<one_hot>},
    {"", "NonZero", 9, kVerifiedOpset, stateless<non_zero>},
    {"", "Unique", 11, kVerifiedOpset, stateless<unique>},
    {"", "ReverseSequence", 10, kVerifiedOpset, stateless<reverse_sequence>},
};

}  // namespace

std::span<const KernelDef> index_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
