// Helpers of the CPU kernels that move elements without computing on them (Transpose, Expand, Tile,
// Slice, Concat, Split, Gather, Scan, sequences): dispatch by element size, strided and blocked copies,
// copies along an axis, and the checks of shapes and index lists read from data.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/strided_walk.hpp"

namespace orchard::cpu {

// An element moved as raw bytes: copying ops work on any dtype by element size (strings by assignment).
template <size_t N>
struct Bytes {
  unsigned char b[N];
};

// Calls f(T{}) with T = Bytes<element size>, or std::string for strings. f must return Status.
template <class F>
Status dispatch_copy(DType dt, std::string_view what, F&& f) {
  if (dt == DType::string) return f(std::string{});
  if (dt != DType::undefined) {
    switch (dtype_size(dt)) {
      case 1: return f(Bytes<1>{});
      case 2: return f(Bytes<2>{});
      case 4: return f(Bytes<4>{});
      case 8: return f(Bytes<8>{});
      default: break;
    }
  }
  return unsupported(what, ": element type ", dtype_name(dt), " is not supported");
}

// A strided copy into a contiguous output (row-major over `dims`, read with `strides` per dim) with its unit
// dims dropped and the dims contiguous in both merged. Returns false when a dim is 0 (nothing to copy).
inline bool merge_copy_dims(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                            std::vector<int64_t>& d2, std::vector<int64_t>& s2) {
  d2.clear();
  s2.clear();
  // First, so an empty copy's strides (saturated when its other dims are huge: strides_of) are never multiplied.
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) return false;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    if (!d2.empty() && s2.back() == strides[i] * dims[i]) {
      d2.back() *= dims[i];
      s2.back() = strides[i];
    } else {
      d2.push_back(dims[i]);
      s2.push_back(strides[i]);
    }
  }
  return true;
}

// A merged copy (merge_copy_dims) as a batch of 2-D transposes: for each position of the outer dims (walked
// with `outer_in_strides` / `outer_out_steps`), out[i * row_out_stride + k] = in[i + k * inner_stride] for
// i < rows (the output dim the input reads with stride 1) and k < inner (the innermost output dim).
struct TransposePlan {
  int64_t rows = 0, inner = 0, inner_stride = 0, row_out_stride = 0;
  std::vector<int64_t> outer_dims, outer_in_strides, outer_out_steps;
};

// Fills `p` and returns true when the merged copy (d2, s2) has that form: its innermost output dim is read with
// a stride other than 1 and another output dim (of 4 or more) with stride 1.
inline bool transpose_plan(const std::vector<int64_t>& d2, const std::vector<int64_t>& s2, TransposePlan& p) {
  const size_t r = d2.size();
  if (r < 2 || s2[r - 1] == 1) return false;
  size_t j = r;
  for (size_t k = 0; k + 1 < r; ++k) {
    if (s2[k] == 1 && d2[k] >= 4) j = k;
  }
  if (j == r) return false;
  std::vector<int64_t> out_strides(r);
  int64_t acc = 1;
  for (size_t k = r; k-- > 0;) {
    out_strides[k] = acc;
    acc *= d2[k];
  }
  p = TransposePlan{};
  for (size_t k = 0; k + 1 < r; ++k) {
    if (k == j) continue;
    p.outer_dims.push_back(d2[k]);
    p.outer_in_strides.push_back(s2[k]);
    p.outer_out_steps.push_back(out_strides[k]);
  }
  p.rows = d2[j];
  p.row_out_stride = out_strides[j];
  p.inner = d2[r - 1];
  p.inner_stride = s2[r - 1];
  return true;
}

// Fills the contiguous `out` (row-major over `dims`) from `in + offset` read with `strides` per dim (0 for
// broadcast dims, any sign). Drops unit dims, merges dims that are contiguous in both, copies inner runs,
// and transposes 2-D tiles when the input's unit-stride dim is not the output's innermost.
template <class T>
void strided_copy(const T* in, int64_t offset, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                  T* out, ThreadPool& pool) {
  std::vector<int64_t> d2, s2;
  if (!merge_copy_dims(dims, strides, d2, s2)) return;
  if (d2.empty()) {
    out[0] = in[offset];
    return;
  }
  const size_t r = d2.size();
  const int64_t inner = d2[r - 1];
  const int64_t inner_stride = s2[r - 1];

  // A tiled transpose between output dim j (input stride 1) and the innermost output dim.
  TransposePlan plan;
  if (transpose_plan(d2, s2, plan)) {
    const int64_t rows = plan.rows, row_out_stride = plan.row_out_stride;
    int64_t outer = 1;
    for (int64_t s : plan.outer_dims) outer *= s;
    const StridedWalk<2> base(plan.outer_dims, {plan.outer_in_strides, plan.outer_out_steps});
    pool.parallel_for(outer, grain_for(rows * inner), [&](int64_t begin, int64_t end) {
      StridedWalk<2> w = base;
      w.seek(begin);
      constexpr int64_t kTile = 32;
      for (int64_t o = begin; o < end; ++o, w.next()) {
        for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
          const int64_t i1 = std::min(rows, i0 + kTile);
          for (int64_t k0 = 0; k0 < inner; k0 += kTile) {
            const int64_t k1 = std::min(inner, k0 + kTile);
            for (int64_t i = i0; i < i1; ++i) {
              const T* src = in + offset + w.offset(0) + i;
              T* dst = out + w.offset(1) + i * row_out_stride;
              for (int64_t k = k0; k < k1; ++k) dst[k] = src[k * inner_stride];
            }
          }
        }
      }
    });
    return;
  }

  int64_t outer = 1;
  for (size_t k = 0; k + 1 < r; ++k) outer *= d2[k];
  const StridedWalk<1> base(std::vector<int64_t>(d2.begin(), d2.end() - 1),
                            {std::vector<int64_t>(s2.begin(), s2.end() - 1)});
  pool.parallel_for(outer, grain_for(inner), [&](int64_t begin, int64_t end) {
    StridedWalk<1> w = base;
    w.seek(begin);
    for (int64_t o = begin; o < end; ++o, w.next()) {
      const T* src = in + offset + w.offset();
      T* dst = out + o * inner;
      if (inner_stride == 1) {
        std::copy(src, src + inner, dst);
      } else if (inner_stride == 0) {
        std::fill(dst, dst + inner, *src);
      } else {
        for (int64_t k = 0; k < inner; ++k) dst[k] = src[k * inner_stride];
      }
    }
  });
}

// Copies `outer` blocks of `block` elements: block o goes from src + o*src_stride to dst + o*dst_stride.
template <class T>
void copy_blocks(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t outer, int64_t block,
                 ThreadPool& pool) {
  if (block == 0 || outer == 0) return;
  pool.parallel_for(outer, grain_for(block), [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) std::copy(src + o * src_stride, src + o * src_stride + block, dst + o * dst_stride);
  });
}

// Copies n elements of dtype dt from src[src_off] to dst[dst_off] (strings by assignment, else bytes).
inline void copy_elements(DType dt, const void* src, int64_t src_off, void* dst, int64_t dst_off, int64_t n) {
  if (n <= 0) return;
  if (dt == DType::string) {
    std::copy_n(static_cast<const std::string*>(src) + src_off, n, static_cast<std::string*>(dst) + dst_off);
    return;
  }
  const size_t es = dtype_size(dt);
  std::memcpy(static_cast<char*>(dst) + dst_off * es, static_cast<const char*>(src) + src_off * es,
              static_cast<size_t>(n) * es);
}

// Copies positions [src_at, src_at + len) of the middle axis of src viewed as [outer, src_n, inner] to
// positions [dst_at, dst_at + len) of dst viewed as [outer, dst_n, inner].
inline void copy_axis_range(DType dt, int64_t outer, int64_t inner, int64_t len, const void* src, int64_t src_n,
                            int64_t src_at, void* dst, int64_t dst_n, int64_t dst_at) {
  for (int64_t o = 0; o < outer; ++o) {
    copy_elements(dt, src, (o * src_n + src_at) * inner, dst, (o * dst_n + dst_at) * inner, len * inner);
  }
}

// Rejects shapes from data (Expand, Tile, ConstantOfShape, Pad, ...) with a negative dim, or whose element
// count no tensor can hold.
inline Status check_numel(const std::vector<int64_t>& dims) {
  constexpr int64_t kMaxElements = int64_t{1} << 56;
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return invalid_argument("shape ", Shape(dims).to_string(), " has a negative dim");
    if (d == 0) return Status::OK();
  }
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n) || n > kMaxElements) {
      return invalid_argument("shape ", Shape(dims).to_string(), " has too many elements");
    }
  }
  return Status::OK();
}

// Returns the integer elements of input i, a scalar or 1-D tensor (a shape, axes, pads or split input).
inline Result<std::vector<int64_t>> ints_input(OpContext& ctx, size_t i, std::string_view what) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
  if (t->rank() > 1) return invalid_argument(what, " must be a 1-D tensor, got ", t->description());
  return tensor_to_ints(*t, what);
}

}  // namespace orchard::cpu
