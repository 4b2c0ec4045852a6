// Element types of the CPU kernels: the type arithmetic is done in, dispatch from a DType to a C++ type,
// and buffers holding a tensor's elements in that arithmetic type (float16/bfloat16 widened to float).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard::cpu {

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

}  // namespace orchard::cpu
