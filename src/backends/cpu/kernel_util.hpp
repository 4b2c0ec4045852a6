// Helpers shared by CPU kernels: dtype dispatch, float16/bfloat16 arithmetic, broadcasting, axes.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard::cpu {

// The type arithmetic is done in: float for float16/bfloat16, the type itself otherwise.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>, float, T>;

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

// ---- conversions from double --------------------------------------------------------------------

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

// Returns the DType of ONNX TensorProto.DataType number `onnx_type`; unsupported for types Orchard lacks.
Result<DType> dtype_from_onnx_type(int64_t onnx_type);

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

// Reads element i of a numeric tensor as double / int64 (for shape-like inputs of any integer type).
double element_as_double(const Tensor& t, int64_t i);
int64_t element_as_int(const Tensor& t, int64_t i);
// Returns the elements of an integer tensor as int64 values (e.g. a shape or axes input).
Result<std::vector<int64_t>> tensor_to_ints(const Tensor& t, std::string_view what);

}  // namespace orchard::cpu
