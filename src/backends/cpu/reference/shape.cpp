// Shape kernels: Reshape, Flatten, Squeeze, Unsqueeze (aliases of their input), Shape, Size, Transpose,
// Expand, Tile, ConstantOfShape, Range, EyeLike, Trilu, DepthToSpace, SpaceToDepth.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/copy_util.hpp"
#include "backends/cpu/reference/families.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/shape_util.hpp"

namespace orchard::cpu::reference {

namespace {

// Writes x transposed by `perm` (a permutation of x's dims) to a new output 0 of shape dims[perm[i]]...
// reshaped to `out_shape`.
Status transpose_to_output(OpContext& ctx, const Tensor& x, const std::vector<int64_t>& dims,
                           const std::vector<int64_t>& perm, const Shape& out_shape) {
  const std::vector<int64_t> in_strides = strides_of(Shape(dims));
  std::vector<int64_t> odims(perm.size()), ostrides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    odims[i] = dims[static_cast<size_t>(perm[i])];
    ostrides[i] = in_strides[static_cast<size_t>(perm[i])];
  }
  return dispatch_copy(x.dtype(), ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x.dtype(), out_shape));
    strided_copy<T>(x.data<T>(), 0, odims, ostrides, y.data<T>(), ctx.pool());
    return Status::OK();
  });
}

// ---- Reshape, Flatten, Squeeze, Unsqueeze: outputs alias the input storage ----

Status reshape(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  std::vector<int64_t> req;
  if (ctx.node().opset < 5) {
    if (!ctx.node().attr("shape")) return invalid_argument("attribute 'shape' is missing");
    req = ctx.node().attr_ints("shape");
  } else {
    ORCHARD_ASSIGN_OR_RETURN(req, ints_input(ctx, 1, "shape"));
  }
  const bool allowzero = ctx.node().attr_int("allowzero", 0) != 0;
  std::vector<int64_t> dims(req.size());
  int64_t infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < req.size(); ++i) {
    int64_t d = req[i];
    if (d == 0 && !allowzero) {
      if (i >= x->rank()) {
        return invalid_argument("shape ", Shape(req).to_string(), " copies dim ", i, " of input ", x->description(),
                                " which has rank ", x->rank());
      }
      d = x->dim(i);
    } else if (d == -1) {
      if (infer >= 0) return invalid_argument("shape ", Shape(req).to_string(), " has more than one -1");
      infer = static_cast<int64_t>(i);
      continue;
    } else if (d < 0) {
      return invalid_argument("shape ", Shape(req).to_string(), " has invalid dim ", d);
    }
    dims[i] = d;
    if (__builtin_mul_overflow(known, d, &known)) {  // (dims come from data: no element count can match)
      return invalid_argument("shape ", Shape(req).to_string(), " has more elements than any tensor can hold");
    }
  }
  if (infer >= 0) {
    if (known == 0 || x->numel() % known != 0) {
      return invalid_argument("cannot infer the -1 dim of shape ", Shape(req).to_string(), " for input ",
                              x->description());
    }
    dims[static_cast<size_t>(infer)] = x->numel() / known;
  }
  Shape out(std::move(dims));
  if (out.numel() != x->numel()) {
    return invalid_argument("cannot reshape ", x->description(), " to ", out.to_string(), " (requested ",
                            Shape(req).to_string(), ")");
  }
  ctx.set_output(0, x->reshaped(std::move(out)));
  return Status::OK();
}

Status flatten(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t r = static_cast<int64_t>(x->rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < -r || axis > r) return invalid_argument("axis ", axis, " is out of range for rank ", r);
  if (axis < 0) axis += r;
  const size_t split = static_cast<size_t>(axis);
  ctx.set_output(0, x->reshaped(Shape{dims_product(x->shape(), 0, split), dims_product(x->shape(), split, x->rank())}));
  return Status::OK();
}

Status squeeze(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t r = static_cast<int64_t>(x->rank());
  std::vector<int64_t> axes;
  bool given = false;
  if (ctx.node().opset < 13) {
    given = ctx.node().attr("axes") != nullptr;
    axes = ctx.node().attr_ints("axes");
  } else if (ctx.has_input(1)) {
    ORCHARD_ASSIGN_OR_RETURN(axes, ints_input(ctx, 1, "axes"));
    given = !axes.empty();  // an empty axes input squeezes every unit dim, as when it is omitted
  }
  std::vector<bool> drop(static_cast<size_t>(r), false);
  if (given) {
    ORCHARD_ASSIGN_OR_RETURN(axes, normalize_axes(axes, r));
    for (int64_t a : axes) {
      if (x->dim(static_cast<size_t>(a)) != 1) {
        return invalid_argument("cannot squeeze axis ", a, " of ", x->description(), ": its size is not 1");
      }
      drop[static_cast<size_t>(a)] = true;
    }
  } else {
    for (int64_t d = 0; d < r; ++d) drop[static_cast<size_t>(d)] = x->dim(static_cast<size_t>(d)) == 1;
  }
  Shape out;
  for (int64_t d = 0; d < r; ++d) {
    if (!drop[static_cast<size_t>(d)]) out.push_back(x->dim(static_cast<size_t>(d)));
  }
  ctx.set_output(0, x->reshaped(std::move(out)));
  return Status::OK();
}

Status unsqueeze(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  std::vector<int64_t> axes;
  if (ctx.node().opset < 13) {
    if (!ctx.node().attr("axes")) return invalid_argument("attribute 'axes' is missing");
    axes = ctx.node().attr_ints("axes");
  } else {
    if (!ctx.has_input(1)) return invalid_argument("input 'axes' is missing");
    ORCHARD_ASSIGN_OR_RETURN(axes, ints_input(ctx, 1, "axes"));
  }
  const int64_t out_rank = static_cast<int64_t>(x->rank() + axes.size());
  ORCHARD_ASSIGN_OR_RETURN(axes, normalize_axes(axes, out_rank));
  std::vector<bool> inserted(static_cast<size_t>(out_rank), false);
  for (int64_t a : axes) inserted[static_cast<size_t>(a)] = true;
  Shape out;
  size_t src = 0;
  for (int64_t d = 0; d < out_rank; ++d) out.push_back(inserted[static_cast<size_t>(d)] ? 1 : x->dim(src++));
  ctx.set_output(0, x->reshaped(std::move(out)));
  return Status::OK();
}

// ---- Shape, Size ----

Status shape_op(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t r = static_cast<int64_t>(x->rank());
  auto clamp = [r](int64_t v) {
    if (v < 0) v += r;
    return std::clamp<int64_t>(v, 0, r);
  };
  const int64_t start = clamp(ctx.node().attr_int("start", 0));
  const int64_t end = clamp(ctx.node().attr_int("end", r));
  const int64_t n = std::max<int64_t>(0, end - start);
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::int64, Shape{n}));
  for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = x->dim(static_cast<size_t>(start + i));
  return Status::OK();
}

Status size_op(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::int64, Shape{}));
  y.data<int64_t>()[0] = x->numel();
  return Status::OK();
}

// ---- Transpose ----

Status transpose(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const size_t r = x->rank();
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (!ctx.node().attr("perm")) {
    perm.resize(r);
    for (size_t i = 0; i < r; ++i) perm[i] = static_cast<int64_t>(r - 1 - i);
  }
  if (perm.size() != r) {
    return invalid_argument("perm has ", perm.size(), " entries but the input ", x->description(), " has rank ", r);
  }
  std::vector<bool> seen(r, false);
  for (int64_t& p : perm) {
    if (p < 0) p += static_cast<int64_t>(r);  // tolerated, as numpy does
    if (p < 0 || p >= static_cast<int64_t>(r) || seen[static_cast<size_t>(p)]) {
      return invalid_argument("perm ", Shape(ctx.node().attr_ints("perm")).to_string(), " is not a permutation of ",
                              r, " axes");
    }
    seen[static_cast<size_t>(p)] = true;
  }
  Shape out;
  for (int64_t p : perm) out.push_back(x->dim(static_cast<size_t>(p)));
  // When the non-unit dims keep their order, the data is unchanged: alias it.
  int64_t last = -1;
  bool in_order = true;
  for (int64_t p : perm) {
    if (x->dim(static_cast<size_t>(p)) == 1) continue;
    if (p < last) in_order = false;
    last = p;
  }
  if (in_order) {
    ctx.set_output(0, x->reshaped(std::move(out)));
    return Status::OK();
  }
  return transpose_to_output(ctx, *x, x->shape().dims(), perm, out);
}

// ---- Expand, Tile ----

Status expand(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> req, ints_input(ctx, 1, "shape"));
  for (int64_t d : req) {
    if (d < 0) return invalid_argument("shape ", Shape(req).to_string(), " has a negative dim");
  }
  Shape want(req);
  ORCHARD_ASSIGN_OR_RETURN(Shape out, broadcast_shapes({&x->shape(), &want}));
  ORCHARD_RETURN_IF_ERROR(check_numel(out.dims()));
  std::vector<int64_t> strides = broadcast_strides(x->shape(), out);
  return dispatch_copy(x->dtype(), "Expand", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out));
    strided_copy<T>(x->data<T>(), 0, out.dims(), strides, y.data<T>(), ctx.pool());
    return Status::OK();
  });
}

Status tile(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const size_t r = x->rank();
  std::vector<int64_t> reps;
  if (ctx.node().opset < 6) {
    // Tile-1: a scalar `tiles` count for one `axis`.
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> tiles, ints_input(ctx, 1, "tiles"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axis, ints_input(ctx, 2, "axis"));
    if (tiles.size() != 1 || axis.size() != 1) return invalid_argument("tiles and axis must be scalars");
    ORCHARD_ASSIGN_OR_RETURN(int64_t a, normalize_axis(axis[0], static_cast<int64_t>(r)));
    reps.assign(r, 1);
    reps[static_cast<size_t>(a)] = tiles[0];
  } else {
    ORCHARD_ASSIGN_OR_RETURN(reps, ints_input(ctx, 1, "repeats"));
  }
  if (reps.size() != r) {
    return invalid_argument("repeats has ", reps.size(), " entries but the input ", x->description(), " has rank ", r);
  }
  // The output, viewed as [reps[0], dim[0], reps[1], dim[1], ...], reads the input with stride 0 on the
  // repeat dims.
  std::vector<int64_t> dims, strides;
  Shape out;
  const std::vector<int64_t> in_strides = strides_of(x->shape());
  for (size_t d = 0; d < r; ++d) {
    if (reps[d] < 0) return invalid_argument("repeats ", Shape(reps).to_string(), " has a negative entry");
    dims.push_back(reps[d]);
    strides.push_back(0);
    dims.push_back(x->dim(d));
    strides.push_back(in_strides[d]);
  }
  if (!check_numel(dims).ok()) {
    return invalid_argument("repeats ", Shape(reps).to_string(), " of ", x->description(), " give too many elements");
  }
  for (size_t d = 0; d < r; ++d) {
    // Each output dim must fit on its own, even when another dim makes the output empty.
    int64_t n = 0;
    if (__builtin_mul_overflow(reps[d], x->dim(d), &n)) {
      return invalid_argument("repeats ", Shape(reps).to_string(), " of ", x->description(), " give dim ", d,
                              " more than 2^63 elements");
    }
    out.push_back(n);
  }
  return dispatch_copy(x->dtype(), "Tile", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out));
    strided_copy<T>(x->data<T>(), 0, dims, strides, y.data<T>(), ctx.pool());
    return Status::OK();
  });
}

// ---- ConstantOfShape, Range, EyeLike ----

Status constant_of_shape(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> dims, ints_input(ctx, 0, "shape"));
  ORCHARD_RETURN_IF_ERROR(check_numel(dims));
  Tensor value;
  if (const graph::Attribute* a = ctx.node().attr("value")) {
    value = a->t;
    if (value.numel() != 1) return invalid_argument("attribute 'value' must hold one element, got ", value.description());
  } else {
    value = Tensor::zeros(DType::float32, Shape{1});
  }
  return dispatch_copy(value.dtype(), "ConstantOfShape", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, value.dtype(), Shape(dims)));
    std::fill(y.data<T>(), y.data<T>() + y.numel(), value.data<T>()[0]);
    return Status::OK();
  });
}

Status range(OpContext& ctx) {
  const Tensor* in[3];
  for (size_t i = 0; i < 3; ++i) {
    ORCHARD_ASSIGN_OR_RETURN(in[i], ctx.input_tensor(i));
    if (in[i]->numel() != 1) return invalid_argument("input ", i, " must be a scalar, got ", in[i]->description());
    if (in[i]->dtype() != in[0]->dtype()) {
      return invalid_argument("inputs have different element types: ", in[0]->description(), " and ",
                              in[i]->description());
    }
  }
  return dispatch<kFloats | kSignedInts>(in[0]->dtype(), "Range", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    const C start = load(in[0]->data<T>()[0]);
    const C limit = load(in[1]->data<T>()[0]);
    const C delta = load(in[2]->data<T>()[0]);
    if (delta == C(0)) return invalid_argument("delta must not be zero");
    int64_t n = 0;
    if constexpr (std::is_integral_v<C>) {
      const __int128 span = static_cast<__int128>(limit) - start;
      if ((delta > 0 && span > 0) || (delta < 0 && span < 0)) {
        const __int128 mag = span < 0 ? -span : span;
        const __int128 step = delta < 0 ? -static_cast<__int128>(delta) : delta;
        n = static_cast<int64_t>((mag + step - 1) / step);
      }
    } else {
      const double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
      if (!std::isfinite(count)) return invalid_argument("range ", start, " to ", limit, " step ", delta, " is not finite");
      n = static_cast<int64_t>(std::clamp(count, 0.0, 9.0e18));
    }
    ORCHARD_RETURN_IF_ERROR(check_numel({n}));
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, in[0]->dtype(), Shape{n}));
    T* out = y.data<T>();
    for (int64_t i = 0; i < n; ++i) out[i] = store<T>(start + static_cast<C>(i) * delta);
    return Status::OK();
  });
}

Status eye_like(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  if (x->rank() != 2) return invalid_argument("input must be 2-D, got ", x->description());
  DType dt = x->dtype();
  if (ctx.node().attr("dtype")) {
    const int64_t onnx_type = ctx.node().attr_int("dtype", 0);
    const Result<DType> type = dtype_from_onnx_type(onnx_type);
    if (!type.ok() || *type == DType::string) return invalid_argument("dtype ", onnx_type, " is not supported");
    dt = *type;
  }
  const int64_t k = ctx.node().attr_int("k", 0);
  return dispatch<kNumeric | kBool>(dt, "EyeLike", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dt, x->shape()));
    T* out = y.data<T>();
    const int64_t rows = x->dim(0), cols = x->dim(1);
    std::fill(out, out + y.numel(), store<T>(0));
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t j = i + k;
      if (j >= 0 && j < cols) out[i * cols + j] = store<T>(1);
    }
    return Status::OK();
  });
}

// ---- Trilu ----

Status trilu(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  if (x->rank() < 2) return invalid_argument("input must have rank >= 2, got ", x->description());
  int64_t k = 0;
  if (ctx.has_input(1)) {
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> kv, ints_input(ctx, 1, "k"));
    if (kv.size() != 1) return invalid_argument("k must be a scalar");
    k = kv[0];
  }
  const bool upper = ctx.node().attr_int("upper", 1) != 0;
  const int64_t rows = x->dim(x->rank() - 2), cols = x->dim(x->rank() - 1);
  const int64_t mats = rows * cols == 0 ? 0 : x->numel() / (rows * cols);
  return dispatch_copy(x->dtype(), "Trilu", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    const T* in = x->data<T>();
    T* out = y.data<T>();
    for (int64_t m = 0; m < mats; ++m) {
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t base = (m * rows + i) * cols;
        // Kept columns: j >= i + k (upper) or j <= i + k (lower).
        const int64_t edge = std::clamp<int64_t>(upper ? i + k : i + k + 1, 0, cols);
        const int64_t keep_lo = upper ? edge : 0, keep_hi = upper ? cols : edge;
        for (int64_t j = 0; j < cols; ++j) out[base + j] = (j >= keep_lo && j < keep_hi) ? in[base + j] : T{};
      }
    }
    return Status::OK();
  });
}

// ---- DepthToSpace, SpaceToDepth ----

Result<int64_t> blocksize_of(OpContext& ctx, const Tensor& x) {
  if (x.rank() != 4) return invalid_argument("input must be 4-D (N,C,H,W), got ", x.description());
  const int64_t b = ctx.node().attr_int("blocksize", 0);
  if (b <= 0) return invalid_argument("blocksize ", b, " must be positive");
  return b;
}

Status depth_to_space(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(int64_t b, blocksize_of(ctx, *x));
  const int64_t n = x->dim(0), c = x->dim(1), h = x->dim(2), w = x->dim(3);
  if (c % (b * b) != 0) return invalid_argument("channels ", c, " are not a multiple of blocksize^2 = ", b * b);
  const int64_t oc = c / (b * b);
  const std::string mode = ctx.node().attr_string("mode", "DCR");
  Shape out{n, oc, h * b, w * b};
  if (mode == "DCR") return transpose_to_output(ctx, *x, {n, b, b, oc, h, w}, {0, 3, 4, 1, 5, 2}, out);
  if (mode == "CRD") return transpose_to_output(ctx, *x, {n, oc, b, b, h, w}, {0, 1, 4, 2, 5, 3}, out);
  return invalid_argument("mode '", mode, "' is not DCR or CRD");
}

Status space_to_depth(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(int64_t b, blocksize_of(ctx, *x));
  const int64_t n = x->dim(0), c = x->dim(1), h = x->dim(2), w = x->dim(3);
  if (h % b != 0 || w % b != 0) {
    return invalid_argument("spatial dims ", h, "x", w, " are not multiples of blocksize ", b);
  }
  Shape out{n, c * b * b, h / b, w / b};
  return transpose_to_output(ctx, *x, {n, c, h / b, b, w / b, b}, {0, 3, 5, 1, 2, 4}, out);
}

constexpr KernelDef kKernels[] = {
    {"", "Reshape", 1, 4, stateless<reshape>},
    {"", "Reshape", 5, kVerifiedOpset, stateless<reshape>},
    {"", "Flatten", 1, kVerifiedOpset, stateless<flatten>},
    {"", "Squeeze", 1, 12, stateless<squeeze>},
    {"", "Squeeze", 13, kVerifiedOpset, stateless<squeeze>},
    {"", "Unsqueeze", 1, 12, stateless<unsqueeze>},
    {"", "Unsqueeze", 13, kVerifiedOpset, stateless<unsqueeze>},
    {"", "Shape", 1, kVerifiedOpset, stateless<shape_op>},
    {"", "Size", 1, kVerifiedOpset, stateless<size_op>},
    {"", "Transpose", 1, kVerifiedOpset, stateless<transpose>},
    {"", "Expand", 8, kVerifiedOpset, stateless<expand>},
    {"", "Tile", 1, 5, stateless<tile>},
    {"", "Tile", 6, kVerifiedOpset, stateless<tile>},
    {"", "ConstantOfShape", 9, kVerifiedOpset, stateless<constant_of_shape>},
    {"", "Range", 11, kVerifiedOpset, stateless<range>},
    {"", "EyeLike", 9, kVerifiedOpset, stateless<eye_like>},
    {"", "Trilu", 14, kVerifiedOpset, stateless<trilu>},
    {"", "DepthToSpace", 1, kVerifiedOpset, stateless<depth_to_space>},
    {"", "SpaceToDepth", 1, kVerifiedOpset, stateless<space_to_depth>},
};

}  // namespace

std::span<const KernelDef> shape_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
