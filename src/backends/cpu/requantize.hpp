// Writing the 8-bit outputs of the quantized ops (QLinearConv, QLinearMatMul).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "orchard/tensor.hpp"

namespace orchard::cpu {

// True for the 8-bit integer types of quantized ops (int8, uint8).
inline bool is_8bit(DType t) { return t == DType::uint8 || t == DType::int8; }

// Writes nearbyint(float(acc) * multiplier) + zero, saturated to the range of y's 8-bit type, to y[i].
inline void store_requantized(Tensor& y, int64_t i, double acc, float multiplier, double zero) {
  const double v = std::nearbyint(static_cast<float>(acc) * multiplier) + zero;
  if (y.dtype() == DType::uint8) y.data<uint8_t>()[i] = static_cast<uint8_t>(std::min(255.0, std::max(0.0, v)));
  else y.data<int8_t>()[i] = static_cast<int8_t>(std::min(127.0, std::max(-128.0, v)));
}

}  // namespace orchard::cpu
