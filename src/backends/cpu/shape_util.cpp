#include "backends/cpu/shape_util.hpp"

#include <algorithm>
#include <cstdint>

namespace orchard::cpu {

Result<int64_t> normalize_axis(int64_t axis, int64_t rank, std::string_view what) {
  const int64_t lo = -rank, hi = rank - 1;
  if (axis < lo || axis > hi) return invalid_argument(what, " ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

Result<std::vector<int64_t>> normalize_axes(std::vector<int64_t> axes, int64_t rank) {
  for (auto& a : axes) {
    ORCHARD_ASSIGN_OR_RETURN(a, normalize_axis(a, rank));
  }
  std::vector<int64_t> sorted = axes;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return invalid_argument("axes contain a duplicate");
  return axes;
}

Result<Shape> broadcast_shapes(const std::vector<const Shape*>& shapes) {
  size_t rank = 0;
  for (const Shape* s : shapes) rank = std::max(rank, s->rank());
  Shape out(std::vector<int64_t>(rank, 1));
  for (const Shape* s : shapes) {
    const size_t off = rank - s->rank();
    for (size_t d = 0; d < s->rank(); ++d) {
      const int64_t v = (*s)[d];
      int64_t& o = out[off + d];
      if (v == o || v == 1) continue;
      if (o == 1) {
        o = v;
        continue;
      }
      std::string all;
      for (const Shape* t : shapes) all += (all.empty() ? "" : " and ") + t->to_string();
      return invalid_argument("shapes ", all, " cannot be broadcast (dim ", off + d, ": ", o, " vs ", v, ")");
    }
  }
  return out;
}

Result<Shape> broadcast_shapes(std::initializer_list<const Shape*> shapes) {
  return broadcast_shapes(std::vector<const Shape*>(shapes));
}

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> s(shape.rank());
  int64_t acc = 1;
  for (size_t d = shape.rank(); d-- > 0;) {
    s[d] = acc;
    // Only an empty shape (some dim 0) can have a product of trailing dims past int64: its strides address no
    // element, so they saturate instead of overflowing.
    if (__builtin_mul_overflow(acc, shape[d], &acc)) acc = INT64_MAX;
  }
  return s;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> s(out.rank(), 0);
  const auto own = strides_of(in);
  const size_t off = out.rank() - in.rank();
  for (size_t d = 0; d < in.rank(); ++d) s[off + d] = in[d] == 1 ? 0 : own[d];
  return s;
}

Result<std::vector<int64_t>> spatial_output_shape(std::span<const int64_t> in, std::span<const int64_t> kernel,
                                                  std::span<const int64_t> stride, std::span<const int64_t> dilation,
                                                  std::span<int64_t> pad_begin, std::span<int64_t> pad_end,
                                                  std::string_view auto_pad, bool ceil_mode) {
  std::vector<int64_t> out(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    const int64_t eff_k = (kernel[d] - 1) * dilation[d] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out[d] = (in[d] + stride[d] - 1) / stride[d];
      const int64_t total = std::max<int64_t>(0, (out[d] - 1) * stride[d] + eff_k - in[d]);
      pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pad_end[d] = total - pad_begin[d];
      continue;
    }
    if (auto_pad == "VALID") pad_begin[d] = pad_end[d] = 0;
    else if (auto_pad != "NOTSET") return invalid_argument("auto_pad '", auto_pad, "' is not supported");
    const int64_t span = in[d] + pad_begin[d] + pad_end[d] - eff_k;
    if (span < 0) {
      return invalid_argument("kernel extent ", eff_k, " exceeds padded input size ", span + eff_k, " in spatial dim ", d);
    }
    out[d] = (ceil_mode ? (span + stride[d] - 1) / stride[d] : span / stride[d]) + 1;
    if (ceil_mode && (out[d] - 1) * stride[d] >= in[d] + pad_begin[d]) --out[d];
  }
  return out;
}

}  // namespace orchard::cpu
