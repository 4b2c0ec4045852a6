// Walking N-d boxes: the one multi-index walker of the CPU kernels (StridedWalk) and the loops built on it,
// over strided offsets and over broadcast inputs in runs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"

namespace orchard::cpu {

// Walks the row-major multi-index of the box `dims`, keeping the element offset of N tensors, each with its
// own strides over the box (0 on broadcast dims, any sign). The one N-d index walker of the CPU kernels.
template <size_t N>
class StridedWalk {
 public:
  StridedWalk() = default;
  StridedWalk(std::vector<int64_t> dims, std::array<std::vector<int64_t>, N> strides)
      : dims_(std::move(dims)), strides_(std::move(strides)), idx_(dims_.size(), 0) {}

  // Moves to row-major position `linear` of a non-empty box.
  void seek(int64_t linear) {
    off_.fill(0);
    for (size_t d = dims_.size(); d-- > 0;) {
      idx_[d] = linear % dims_[d];
      linear /= dims_[d];
      for (size_t k = 0; k < N; ++k) off_[k] += idx_[d] * strides_[k][d];
    }
  }
  // Moves to the next position; after the last one it wraps to the first.
  void next() {
    for (size_t d = dims_.size(); d-- > 0;) {
      if (++idx_[d] < dims_[d]) {
        for (size_t k = 0; k < N; ++k) off_[k] += strides_[k][d];
        return;
      }
      for (size_t k = 0; k < N; ++k) off_[k] -= strides_[k][d] * (dims_[d] - 1);
      idx_[d] = 0;
    }
  }
  // The element offset of tensor k at the current position.
  int64_t offset(size_t k = 0) const { return off_[k]; }
  const std::array<int64_t, N>& offsets() const { return off_; }
  // The current multi-index.
  const std::vector<int64_t>& index() const { return idx_; }

 private:
  std::vector<int64_t> dims_;
  std::array<std::vector<int64_t>, N> strides_;
  std::vector<int64_t> idx_;
  std::array<int64_t, N> off_{};
};

// Calls fn(offset) for each index of the row-major box `dims` (offset = sum idx[d] * strides[d]).
// An empty box calls fn(0) once; a box with a zero dim never calls it.
template <class F>
void for_each_offset(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides, F&& fn) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  StridedWalk<1> w(dims, {strides});
  for (int64_t t = 0; t < total; ++t, w.next()) fn(w.offset());
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

// Walks `out` in runs along its innermost dim: calls fn(out_offset, in_offsets, count, inner_strides)
// where in_offsets[k] is the element offset of input k at the run's start and inner_strides[k] its step.
template <size_t N, class F>
void broadcast_runs(const Shape& out, const std::array<std::vector<int64_t>, N>& strides, F&& fn) {
  const int64_t total = out.numel();
  if (total == 0) return;
  const size_t outer_rank = out.rank() ? out.rank() - 1 : 0;
  const int64_t run = out.rank() ? out[outer_rank] : 1;
  std::array<int64_t, N> inner{};
  std::array<std::vector<int64_t>, N> outer_strides;
  for (size_t k = 0; k < N; ++k) {
    inner[k] = out.rank() ? strides[k][outer_rank] : 0;
    outer_strides[k].assign(strides[k].begin(), strides[k].begin() + static_cast<std::ptrdiff_t>(outer_rank));
  }
  StridedWalk<N> w(std::vector<int64_t>(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(outer_rank)),
                   std::move(outer_strides));
  for (int64_t o = 0; o < total; o += run, w.next()) fn(o, w.offsets(), run, inner);
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

}  // namespace orchard::cpu
