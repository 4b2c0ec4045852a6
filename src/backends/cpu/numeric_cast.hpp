// Conversions of a double to an element type, for kernels that compute in double (Cast, Range, random
// generators, ConstantOfShape values): saturating, rounding and numpy-style wrapping.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "backends/cpu/element_types.hpp"

namespace orchard::cpu {

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

}  // namespace orchard::cpu
