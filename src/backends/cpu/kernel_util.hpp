// Helpers shared by CPU kernels: dtype dispatch, float16/bfloat16 arithmetic, conversions, parallel
// loops, axis views, broadcasting. Copying by element size lives in copy_util.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::cpu {

using runtime::OpContext;

// ---- element types ----------------------------------------------------------------------------------

// The type arithmetic is done in: float for float16/bfloat16, the type itself otherwise.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>, float, T>;

// Returns v in its compute type; store<T> converts a compute value back to T.
template <class T>
inline compute_t<T> load(T v) {
  if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) return static_cast<float>(v);
  else return v;
}

template <class T, class C>
inline T store(C v) {
  if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;
template <class T>
inline constexpr bool is_float_v = std::is_floating_point_v<T> || is_half_v<T>;

// Type tags for dispatch sets.
enum DTypeSet : unsigned {
  kFloats = 1u << 0,     // float32, float64, float16, bfloat16
  kSignedInts = 1u << 1, // int8..int64
  kUnsignedInts = 1u << 2,
  kBool = 1u << 3,
  kString = 1u << 4,
  kInts = kSignedInts | kUnsignedInts,
  kNumeric = kFloats | kInts,
  kAll = kNumeric | kBool | kString,
};

// Calls f(T{}) (T the element type of `dt`) when dt is in `Set`, else returns unsupported naming the
// dtype and `what`. f must return Status.
template <unsigned Set, class F>
Status dispatch(DType dt, std::string_view what, F&& f) {
  switch (dt) {
    case DType::float32: if constexpr (Set & kFloats) return f(float{}); break;
    case DType::float64: if constexpr (Set & kFloats) return f(double{}); break;
    case DType::float16: if constexpr (Set & kFloats) return f(float16{}); break;
    case DType::bfloat16: if constexpr (Set & kFloats) return f(bfloat16{}); break;
    case DType::int8: if constexpr (Set & kSignedInts) return f(int8_t{}); break;
    case DType::int16: if constexpr (Set & kSignedInts) return f(int16_t{}); break;
    case DType::int32: if constexpr (Set & kSignedInts) return f(int32_t{}); break;
    case DType::int64: if constexpr (Set & kSignedInts) return f(int64_t{}); break;
    case DType::uint8: if constexpr (Set & kUnsignedInts) return f(uint8_t{}); break;
    case DType::uint16: if constexpr (Set & kUnsignedInts) return f(uint16_t{}); break;
    case DType::uint32: if constexpr (Set & kUnsignedInts) return f(uint32_t{}); break;
    case DType::uint64: if constexpr (Set & kUnsignedInts) return f(uint64_t{}); break;
    case DType::boolean: if constexpr (Set & kBool) return f(bool{}); break;
    case DType::string: if constexpr (Set & kString) return f(std::string{}); break;
    case DType::undefined: break;
  }
  return unsupported(what, ": element type ", dtype_name(dt), " is not supported");
}

// Returns the DType of ONNX TensorProto.DataType number `onnx_type`; unsupported for types Orchard lacks.
Result<DType> dtype_from_onnx_type(int64_t onnx_type);


// ---- conversions from double ------------------------------------------------------------------------

// Returns v as T: float types by one rounding; integers truncated toward zero, clamped to T's range, NaN 0.
template <class T>
T saturate_cast(double v) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    v = std::trunc(v);
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
    if (v <= lo) return std::numeric_limits<T>::lowest();
    if (v >= hi) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return store<T>(v);
  }
}

// Returns v as T like saturate_cast, but integers round to nearest first (ties to even).
template <class T>
T round_saturate_cast(double v) {
  if constexpr (std::is_integral_v<T>) return saturate_cast<T>(std::nearbyint(v));
  else return store<T>(v);
}

// Returns v as integer T like numpy's astype: truncated, NaN 0, values past int64 saturated (past uint64
// for uint64), then wrapped modulo 2^bits into T.
template <class T>
T wrapping_cast(double v) {
  if (std::isnan(v)) return T(0);
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (v >= 9223372036854775808.0) {
      return v >= 18446744073709551616.0 ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(v);
    }
  }
  if (v >= 9223372036854775807.0) return static_cast<T>(std::numeric_limits<int64_t>::max());
  if (v <= -9223372036854775808.0) return static_cast<T>(std::numeric_limits<int64_t>::min());
  return static_cast<T>(static_cast<int64_t>(v));
}

// ---- compute-type buffers ---------------------------------------------------------------------------

// Returns the elements of `t` (element type T) in compute_t<T>: t's own storage when T needs no
// conversion, else a converted copy held in `tmp`.
template <class T>
const compute_t<T>* as_compute(const Tensor& t, std::vector<compute_t<T>>& tmp) {
  if constexpr (std::is_same_v<T, compute_t<T>>) {
    return t.data<T>();
  } else {
    tmp.resize(static_cast<size_t>(t.numel()));
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) tmp[static_cast<size_t>(i)] = load(p[i]);
    return tmp.data();
  }
}

// Output storage in compute_t<T> for a tensor `y` of element type T: y's own data when T needs no
// conversion, else a temporary that finish() converts into y.
template <class T>
class ComputeOutput {
 public:
  explicit ComputeOutput(Tensor& y) : y_(y) {
    if constexpr (!std::is_same_v<T, compute_t<T>>) tmp_.resize(static_cast<size_t>(y.numel()));
  }
  compute_t<T>* data() {
    if constexpr (std::is_same_v<T, compute_t<T>>) return y_.data<T>();
    else return tmp_.data();
  }
  // Stores the computed values into y (nothing to do when data() is y's own storage).
  void finish() {
    if constexpr (!std::is_same_v<T, compute_t<T>>) {
      T* out = y_.data<T>();
      for (size_t i = 0; i < tmp_.size(); ++i) out[i] = store<T>(tmp_[i]);
    }
  }

 private:
  Tensor& y_;
  std::vector<compute_t<T>> tmp_;
};

// ---- parallel loops ---------------------------------------------------------------------------------

inline constexpr int64_t kGrainElems = 1 << 15;  // elements a parallel task should touch at least

// Returns a parallel_for grain (items per task) for items that each touch `work` elements.
inline int64_t grain_for(int64_t work) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, work)); }

// Calls body(begin, end) over [0, n): in chunks of kGrainElems on `pool` when n is large, else inline.
template <class F>
void parallel_range(ThreadPool& pool, int64_t n, const F& body) {
  if (n >= 2 * kGrainElems) {
    pool.parallel_for(n, kGrainElems, body);
  } else if (n > 0) {
    body(int64_t{0}, n);
  }
}

// y[i] = f(x[i]) into a new output 0 of dtype out_dt and x's shape.
template <class In, class Out, class F>
Status unary_map(OpContext& ctx, const Tensor& x, DType out_dt, const F& f) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, out_dt, x.shape()));
  const In* in = x.data<In>();
  Out* out = y.data<Out>();
  parallel_range(ctx.pool(), x.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = f(in[i]);
  });
  return Status::OK();
}

// A unary op on input 0 whose output has its dtype: y = store(fn(load(x))), for the dtypes in Set.
template <unsigned Set, class F>
Status unary_same(OpContext& ctx, const F& fn) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  return dispatch<Set>(x->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    return unary_map<T, T>(ctx, *x, x->dtype(), [&](T v) { return store<T>(fn(load(v))); });
  });
}

// ---- axes, views and broadcasting -------------------------------------------------------------------

// Returns the product of dims [begin, end) of `s` (1 for an empty range).
inline int64_t dims_product(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= s[d];
  return p;
}

// A tensor viewed as [outer, n, inner] around one axis.
struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
};

// Returns `s` viewed around `axis` (in [0, rank)).
inline AxisView view_around(const Shape& s, int64_t axis) {
  const size_t a = static_cast<size_t>(axis);
  return {dims_product(s, 0, a), s[a], dims_product(s, a + 1, s.rank())};
}

// Calls fn(offset) for each index of the row-major box `dims` (offset = sum idx[d] * strides[d]).
// An empty box calls fn(0) once; a box with a zero dim never calls it.
template <class F>
void for_each_offset(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides, F&& fn) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  std::vector<int64_t> idx(dims.size(), 0);
  int64_t off = 0;
  for (int64_t t = 0; t < total; ++t) {
    fn(off);
    for (size_t d = dims.size(); d-- > 0;) {
      if (++idx[d] < dims[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (dims[d] - 1);
      idx[d] = 0;
    }
  }
}

// Returns the offset of row-major index `i` of the box `dims` (strides as for for_each_offset).
inline int64_t offset_of(int64_t i, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t d = dims.size(); d-- > 0;) {
    off += (i % dims[d]) * strides[d];
    i /= dims[d];
  }
  return off;
}

// Returns `axis` normalised to [0, rank), or invalid_argument when out of range.
Result<int64_t> normalize_axis(int64_t axis, int64_t rank, std::string_view what = "axis");
// Normalises every axis; rejects duplicates.
Result<std::vector<int64_t>> normalize_axes(std::vector<int64_t> axes, int64_t rank);

// Returns the numpy-style broadcast of `shapes`, or invalid_argument naming the clashing dims.
Result<Shape> broadcast_shapes(std::initializer_list<const Shape*> shapes);
Result<Shape> broadcast_shapes(const std::vector<const Shape*>& shapes);

// Row-major strides of `shape` (in elements).
std::vector<int64_t> strides_of(const Shape& shape);

// Strides of `in` when broadcast to `out` (0 on broadcast dims), aligned to out's rank.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Walks `out` in runs along its innermost dim: calls fn(out_offset, in_offsets, count, inner_strides)
// where in_offsets[k] is the element offset of input k at the run's start and inner_strides[k] its step.
template <size_t N, class F>
void broadcast_runs(const Shape& out, const std::array<std::vector<int64_t>, N>& strides, F&& fn) {
  const int64_t total = out.numel();
  if (total == 0) return;
  const size_t rank = out.rank();
  std::array<int64_t, N> inner{};
  const int64_t run = rank ? out[rank - 1] : 1;
  for (size_t k = 0; k < N; ++k) inner[k] = rank ? strides[k][rank - 1] : 0;
  std::vector<int64_t> idx(rank ? rank - 1 : 0, 0);
  std::array<int64_t, N> offs{};
  for (int64_t o = 0; o < total; o += run) {
    fn(o, offs, run, inner);
    // advance the outer index (all dims but the last)
    for (int64_t d = static_cast<int64_t>(rank) - 2; d >= 0; --d) {
      if (++idx[d] < out[d]) {
        for (size_t k = 0; k < N; ++k) offs[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k) offs[k] -= strides[k][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

// Walks `out` in runs like broadcast_runs, calling run(out_offset, in_offsets, count, in_steps) for inputs
// of shapes `in` (each broadcastable to out). Inputs equal to `out` or of one element are walked as one
// flat run; large outputs are split over dim 0 on `pool`.
template <size_t N, class F>
void for_each_run(ThreadPool& pool, const Shape& out, const std::array<const Shape*, N>& in, const F& run) {
  const int64_t total = out.numel();
  if (total == 0) return;
  bool flat = true;
  for (const Shape* s : in) flat = flat && (*s == out || s->numel() == 1);
  if (flat) {
    std::array<int64_t, N> step{};
    for (size_t k = 0; k < N; ++k) step[k] = *in[k] == out ? 1 : 0;
    parallel_range(pool, total, [&](int64_t b, int64_t e) {
      std::array<int64_t, N> off{};
      for (size_t k = 0; k < N; ++k) off[k] = b * step[k];
      run(b, off, e - b, step);
    });
    return;
  }
  std::array<std::vector<int64_t>, N> strides;
  for (size_t k = 0; k < N; ++k) strides[k] = broadcast_strides(*in[k], out);
  if (total < 2 * kGrainElems || out.rank() < 2 || out[0] < 2) {
    broadcast_runs<N>(out, strides, run);
    return;
  }
  const Shape inner(out.begin() + 1, out.end());
  std::array<std::vector<int64_t>, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k].assign(strides[k].begin() + 1, strides[k].end());
  const int64_t slice = inner.numel();
  pool.parallel_for(out[0], grain_for(slice), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      broadcast_runs<N>(inner, inner_strides,
                        [&](int64_t o, const std::array<int64_t, N>& off, int64_t n, const std::array<int64_t, N>& st) {
                          std::array<int64_t, N> at = off;
                          for (size_t k = 0; k < N; ++k) at[k] += i * strides[k][0];
                          run(i * slice + o, at, n, st);
                        });
    }
  });
}

// ---- sliding windows and quantized outputs ----------------------------------------------------------

// Returns the output sizes of a window (Conv, pools) sliding over spatial dims `in`, and rewrites
// pad_begin/pad_end per `auto_pad`: SAME_UPPER/SAME_LOWER give ceil(in / stride) outputs (the odd pad at
// the end / start), VALID zero pads, NOTSET keeps them; ceil_mode rounds the window count up (the last
// window still starting inside the input or its leading pad). Errors: an unknown auto_pad, or a window
// larger than the padded input.
Result<std::vector<int64_t>> spatial_output_shape(std::span<const int64_t> in, std::span<const int64_t> kernel,
                                                  std::span<const int64_t> stride, std::span<const int64_t> dilation,
                                                  std::span<int64_t> pad_begin, std::span<int64_t> pad_end,
                                                  std::string_view auto_pad, bool ceil_mode);

// True for the 8-bit integer types of quantized ops (int8, uint8).
inline bool is_8bit(DType t) { return t == DType::uint8 || t == DType::int8; }

// Writes nearbyint(float(acc) * multiplier) + zero, saturated to the range of y's 8-bit type, to y[i].
inline void store_requantized(Tensor& y, int64_t i, double acc, float multiplier, double zero) {
  const double v = std::nearbyint(static_cast<float>(acc) * multiplier) + zero;
  if (y.dtype() == DType::uint8) y.data<uint8_t>()[i] = static_cast<uint8_t>(std::min(255.0, std::max(0.0, v)));
  else y.data<int8_t>()[i] = static_cast<int8_t>(std::min(127.0, std::max(-128.0, v)));
}

// ---- reading inputs and attributes ------------------------------------------------------------------

// Reads element i of a numeric tensor as double / int64 (for shape-like inputs of any integer type).
double element_as_double(const Tensor& t, int64_t i);
int64_t element_as_int(const Tensor& t, int64_t i);
// Returns the elements of an integer tensor as int64 values (e.g. a shape or axes input).
Result<std::vector<int64_t>> tensor_to_ints(const Tensor& t, std::string_view what);

// Returns a tensor of the request's tensor memory (charged to its budget; out_of_memory past it) that
// keeps the request's allocator alive like an output, for values that may outlive the kernel (sequence
// items, Loop/Scan results and slices). It is allocated through output `slot` (clamped to the node's
// outputs), so the kernel must set that output with set_output before it returns.
inline Result<Tensor> make_request_tensor(runtime::OpContext& ctx, size_t slot, DType dt, const Shape& shape) {
  if (ctx.num_outputs() == 0) return Tensor::create(dt, shape, ctx.allocator());  // nothing can outlive the kernel
  return ctx.make_output(std::min(slot, ctx.num_outputs() - 1), dt, shape);
}

// Returns graph attribute `name` of `node`, or invalid_argument when it is absent.
Result<const graph::Graph*> graph_attr(const graph::Node& node, std::string_view name);
// Compiles graph attribute `name` of the node being created; errors name the attribute.
Result<std::shared_ptr<const runtime::CompiledGraph>> compile_graph_attr(const runtime::KernelCreateContext& ctx,
                                                                        std::string_view name);

}  // namespace orchard::cpu
