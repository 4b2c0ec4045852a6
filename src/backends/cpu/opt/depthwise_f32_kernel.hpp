// The depthwise convolution of one channel plane, written once over GCC/Clang vector extensions of W floats
// and compiled by each ISA file (depthwise_f32_{avx512,avx2,portable}.cpp) with its own flags. Include it in
// those files only: everything here has internal linkage, so each ISA keeps its own copy.
//
// The plane is first copied into zero-padded rows split by column phase (column c of the padded image goes
// to phase c % stride_w at c / stride_w), so every kernel tap reads W consecutive floats for W consecutive
// outputs, at any stride or dilation. Four output rows are computed at once (independent accumulators).
#pragma once

#include <cstring>

#include "backends/cpu/opt/depthwise_f32.hpp"

namespace orchard::cpu::opt {
namespace {

// Integer min / max (no standard-library templates in ISA files: see gemm_f32_avx512.cpp).
inline int64_t lmin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t lmax(int64_t a, int64_t b) { return a > b ? a : b; }

// Padded rows the outputs read, and the width of one phase row (with room for a vector past the last output).
int64_t padded_rows(const DepthwisePlane& g) { return (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1; }
template <int W>
int64_t phase_width(const DepthwisePlane& g) {
  return ((g.ow - 1) * g.sw + (g.kw - 1) * g.dw + g.sw) / g.sw + W;
}

template <int W>
int64_t scratch_floats(const DepthwisePlane& g) {
  return g.sw * padded_rows(g) * phase_width<W>(g);
}

// W floats in one vector, loaded and stored unaligned (store: the first n lanes).
template <int W>
struct Vec {
  typedef float type __attribute__((vector_size(W * sizeof(float))));
};
template <int W>
typename Vec<W>::type load(const float* p) {
  typename Vec<W>::type v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <int W>
void store(float* p, typename Vec<W>::type v, int64_t n) {
  if (n == W) {
    std::memcpy(p, &v, sizeof(v));  // one vector store
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = v[i];
  }
}

template <int W>
void depthwise_plane_impl(const DepthwisePlane& g, const float* x, const float* w, float bias, float* y,
                          float* scratch) {
  using vf = typename Vec<W>::type;
  const int64_t hp = padded_rows(g), wq = phase_width<W>(g);
  // Padded, phase-split copy of the input plane: phase q, padded row r at scratch + (q * hp + r) * wq.
  for (int64_t q = 0; q < g.sw; ++q) {
    for (int64_t r = 0; r < hp; ++r) {
      float* dst = scratch + (q * hp + r) * wq;
      const int64_t iy = r - g.ph;
      if (iy < 0 || iy >= g.ih) {
        std::memset(dst, 0, static_cast<size_t>(wq) * sizeof(float));
        continue;
      }
      const float* src = x + iy * g.iw;
      if (g.sw == 1) {
        const int64_t lead = lmin(g.pw, wq), n = lmax(0, lmin(g.iw, wq - lead));
        std::memset(dst, 0, static_cast<size_t>(lead) * sizeof(float));
        std::memcpy(dst + lead, src, static_cast<size_t>(n) * sizeof(float));
        std::memset(dst + lead + n, 0, static_cast<size_t>(wq - lead - n) * sizeof(float));
      } else {
        // Phase entries i read column i * sw + q - pw: inside the row for i in [lo, hi).
        const int64_t lo = lmin(wq, lmax(0, (g.pw - q + g.sw - 1) / g.sw));
        const int64_t hi = lmax(lo, lmin(wq, (g.iw + g.pw - q + g.sw - 1) / g.sw));
        std::memset(dst, 0, static_cast<size_t>(lo) * sizeof(float));
        const int64_t shift = q - g.pw;
        if (g.sw == 2) {
          for (int64_t i = lo; i < hi; ++i) dst[i] = src[2 * i + shift];  // a constant stride vectorises
        } else {
          for (int64_t i = lo; i < hi; ++i) dst[i] = src[i * g.sw + shift];
        }
        std::memset(dst + hi, 0, static_cast<size_t>(wq - hi) * sizeof(float));
      }
    }
  }
  // Where each tap reads, relative to output (0, 0): phase row block, row and column offsets folded.
  const int64_t taps = g.kh * g.kw;
  int64_t tap_off[kDepthwiseMaxTaps];
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t ky = t / g.kw, off = (t % g.kw) * g.dw;
    tap_off[t] = ((off % g.sw) * hp + ky * g.dh) * wq + off / g.sw;
  }
  constexpr int R = 4;
  const int64_t row_step = g.sh * wq;
  int64_t oy = 0;
  for (; oy + R <= g.oh; oy += R) {
    for (int64_t ox = 0; ox < g.ow; ox += W) {
      vf acc[R];
      for (int rr = 0; rr < R; ++rr) acc[rr] = vf{} + bias;
      const float* origin = scratch + oy * g.sh * wq + ox;
      for (int64_t t = 0; t < taps; ++t) {
        const float* base = origin + tap_off[t];
        const vf wv = vf{} + w[t];
        for (int rr = 0; rr < R; ++rr) acc[rr] += wv * load<W>(base + rr * row_step);
      }
      const int64_t n = lmin(W, g.ow - ox);
      for (int rr = 0; rr < R; ++rr) store<W>(y + (oy + rr) * g.ow + ox, acc[rr], n);
    }
  }
  for (; oy < g.oh; ++oy) {
    for (int64_t ox = 0; ox < g.ow; ox += W) {
      vf acc = vf{} + bias;
      const float* origin = scratch + oy * g.sh * wq + ox;
      for (int64_t t = 0; t < taps; ++t) acc += (vf{} + w[t]) * load<W>(origin + tap_off[t]);
      store<W>(y + oy * g.ow + ox, acc, lmin(W, g.ow - ox));
    }
  }
}

}  // namespace
}  // namespace orchard::cpu::opt
