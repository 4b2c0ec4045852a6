// Shape arithmetic of the CPU kernels: views around an axis, axis normalisation, broadcasting, strides and
// the output size of sliding windows.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard::cpu {

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

// Returns the output sizes of a window (Conv, pools) sliding over spatial dims `in`, and rewrites
// pad_begin/pad_end per `auto_pad`: SAME_UPPER/SAME_LOWER give ceil(in / stride) outputs (the odd pad at
// the end / start), VALID zero pads, NOTSET keeps them; ceil_mode rounds the window count up (the last
// window still starting inside the input or its leading pad). Errors: an unknown auto_pad, or a window
// larger than the padded input.
Result<std::vector<int64_t>> spatial_output_shape(std::span<const int64_t> in, std::span<const int64_t> kernel,
                                                  std::span<const int64_t> stride, std::span<const int64_t> dilation,
                                                  std::span<int64_t> pad_begin, std::span<int64_t> pad_end,
                                                  std::string_view auto_pad, bool ceil_mode);

}  // namespace orchard::cpu
