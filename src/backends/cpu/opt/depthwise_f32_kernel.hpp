// The direct depthwise convolution kernels of the optimized Conv variants, written once over GCC/Clang vector
// extensions of W floats and compiled by each ISA file (depthwise_f32_{avx512,avx2,portable}.cpp) with its own
// flags. Include it in those files only: everything here has internal linkage, so each ISA keeps its own copy.
//
// Plane kernel (horizontal stride 1): the plane is copied into zero-padded rows, so every tap reads W
// consecutive floats for W consecutive outputs; four output rows at once (independent accumulators).
// Channel-block kernel (any stride): W channel planes transposed in registers into pixels of W channels, so
// every tap is one full-width FMA whatever the plane's size; the result is transposed back.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include "backends/cpu/opt/depthwise_f32.hpp"
#include "backends/cpu/opt/gemm_f32_tile.hpp"

namespace orchard::cpu::opt {
namespace {

// Integer min / max (no standard-library templates in ISA files: see gemm_f32_avx512.cpp).
inline int64_t lmin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t lmax(int64_t a, int64_t b) { return a > b ? a : b; }

// Padded rows the outputs read, and the width of one padded row (with room for a vector past the last output).
int64_t padded_rows(const DepthwisePlane& g) { return (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1; }
template <int W>
int64_t padded_width(const DepthwisePlane& g) {
  return g.ow + (g.kw - 1) * g.dw + W;
}

// The aligned plane kernel's row width (a multiple of W): vectors at every W-th output column and the ones after
// them that the kx shifts take lanes from.
template <int W>
int64_t aligned_width(const DepthwisePlane& g) {
  return ((g.ow + W - 1) / W + (g.kw - 1) / W + 1) * W;
}

template <int W>
int64_t scratch_floats(const DepthwisePlane& g) {
  const int64_t width = padded_width<W>(g) > aligned_width<W>(g) ? padded_width<W>(g) : aligned_width<W>(g);
  return padded_rows(g) * width + W;  // + W: room to align the start
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

// The zero-padded copy of the input plane x for the plane kernels: padded row r (input row r - ph, from column
// pw on) at s + r * wq, zeros elsewhere. In vectors, no library calls (a 112-wide row is a few of them): zeros are
// stored in whole vectors, up to W - 1 floats past a row's end, into the next row (written after it) or, for the
// last row, into the W floats of room scratch_floats leaves.
template <int W>
void pad_plane(const DepthwisePlane& g, const float* x, float* s, int64_t wq) {
  using vf = typename Vec<W>::type;
  for (int64_t r = 0; r < padded_rows(g); ++r) {
    float* dst = s + r * wq;
    const int64_t iy = r - g.ph;
    const int64_t lead = lmin(g.pw, wq), n = iy < 0 || iy >= g.ih ? 0 : lmax(0, lmin(g.iw, wq - lead));
    for (int64_t i = 0; i < lead; i += W) store<W>(dst + i, vf{}, W);  // the data below overwrites the overrun
    const float* src = n > 0 ? x + iy * g.iw : x;
    int64_t i = 0;
    for (; i + W <= n; i += W) store<W>(dst + lead + i, load<W>(src + i), W);
    for (; i < n; ++i) dst[lead + i] = src[i];
    for (int64_t k = lead + n; k < wq; k += W) store<W>(dst + k, vf{}, W);
  }
}

// Lanes SHIFT .. SHIFT + W - 1 of the pair (a, b).
template <int W, int SHIFT>
inline typename Vec<W>::type shifted(typename Vec<W>::type a, typename Vec<W>::type b) {
  if constexpr (SHIFT == 0) {
    return a;
  } else {
    return [&]<__SIZE_TYPE__... J>(std::index_sequence<J...>) {
      return __builtin_shufflevector(a, b, (SHIFT + J)...);
    }(std::make_index_sequence<W>{});
  }
}

// Calls f(std::integral_constant<int, i>) for i in [0, N).
template <int N, class F>
inline void static_for(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) { (f(std::integral_constant<int, I>{}), ...); }(
      std::make_integer_sequence<int, N>{});
}

// R output rows from oy of the aligned plane kernel (K x K taps, stride 1, no dilation): every input row the R
// rows read is loaded once per W outputs as aligned vectors, each tap's column shift taken by a lane shuffle, and
// used by every output row that reads it.
template <int W, int K, int R>
void plane_rows_aligned(const DepthwisePlane& g, const float* s, int64_t wq, const float* w, float bias, int64_t oy,
                        float* y) {
  using vf = typename Vec<W>::type;
  constexpr int NV = (K - 1) / W + 2;  // vectors the shifts take lanes from
  for (int64_t ox = 0; ox < g.ow; ox += W) {
    vf acc[R];
    for (int rr = 0; rr < R; ++rr) acc[rr] = vf{} + bias;
    static_for<R + K - 1>([&](auto rin) {  // input row oy + rin: tap row rin - rr of output row oy + rr
      const float* row = s + (oy + decltype(rin)::value) * wq + ox;
      vf v[NV];
      for (int i = 0; i < NV; ++i) v[i] = load<W>(row + i * W);
      static_for<K>([&](auto kx) {
        constexpr int X = decltype(kx)::value;
        const vf sv = shifted<W, X % W>(v[X / W], v[X / W + 1]);
        static_for<R>([&](auto rr) {
          constexpr int KY = decltype(rin)::value - decltype(rr)::value;
          if constexpr (KY >= 0 && KY < K) acc[decltype(rr)::value] += (vf{} + w[KY * K + X]) * sv;
        });
      });
    });
    const int64_t n = lmin(W, g.ow - ox);
    for (int rr = 0; rr < R; ++rr) store<W>(y + (oy + rr) * g.ow + ox, acc[rr], n);
  }
}

// The plane kernel for K x K taps, stride 1, no dilation: the zero-padded plane in rows of aligned_width floats
// from a vector-aligned start, so that every load is aligned (unaligned vector loads cost 2-4 aligned ones on the
// machine measured, bench/RESULTS.md).
template <int W, int K>
void depthwise_plane_aligned(const DepthwisePlane& g, const float* x, const float* w, float bias, float* y,
                             float* scratch) {
  float* s = scratch + (W - reinterpret_cast<uintptr_t>(scratch) / sizeof(float) % W) % W;
  const int64_t wq = aligned_width<W>(g);
  pad_plane<W>(g, x, s, wq);
  int64_t oy = 0;
  for (; oy + 4 <= g.oh; oy += 4) plane_rows_aligned<W, K, 4>(g, s, wq, w, bias, oy, y);
  for (; oy < g.oh; ++oy) plane_rows_aligned<W, K, 1>(g, s, wq, w, bias, oy, y);
}

template <int W>
void depthwise_plane_impl(const DepthwisePlane& g, const float* x, const float* w, float bias, float* y,
                          float* scratch) {
  using vf = typename Vec<W>::type;
  if (g.sh == 1 && g.dh == 1 && g.dw == 1 && g.kh == g.kw) {  // the aligned kernel for the common square kernels
    if (g.kw == 3) return depthwise_plane_aligned<W, 3>(g, x, w, bias, y, scratch);
    if (g.kw == 5) return depthwise_plane_aligned<W, 5>(g, x, w, bias, y, scratch);
    if (g.kw == 7) return depthwise_plane_aligned<W, 7>(g, x, w, bias, y, scratch);
  }
  const int64_t wq = padded_width<W>(g);
  pad_plane<W>(g, x, scratch, wq);
  // Where each tap reads, relative to output (0, 0).
  const int64_t taps = g.kh * g.kw;
  int64_t tap_off[kDepthwiseMaxTaps];
  for (int64_t t = 0; t < taps; ++t) tap_off[t] = (t / g.kw) * g.dh * wq + (t % g.kw) * g.dw;
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

// Padded rows and columns the outputs read (the channel-block kernel's input block, one pixel per W lanes).
int64_t block_rows(const DepthwisePlane& g) { return padded_rows(g); }
int64_t block_cols(const DepthwisePlane& g) { return (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1; }

// The channel-block kernel's transposed input: whole when it takes at most kWholeBytes (it stays in L2), else
// in bands of output rows whose input rows take about kBandBytes (they stay in L1). Measured on efficientnet_b0's
// and mobilenet_v2's depthwise layers (bench/RESULTS.md): 96 channels of 112x112 at stride 2 (817 KB whole)
// 30% faster by bands; 56x56 planes (223 KB) slower by bands, the rows two bands share being transposed twice.
inline constexpr int64_t kWholeBytes = 256 << 10;
inline constexpr int64_t kBandBytes = 32 << 10;

// Output rows per band of the channel-block kernel: all of them when the whole input fits kWholeBytes; else as
// many as fit their input rows in kBandBytes, but enough that rows transposed twice (those two bands share) are
// at most half of the others (tall kernels).
template <int W>
int64_t block_band(const DepthwisePlane& g) {
  const int64_t row_bytes = block_cols(g) * W * static_cast<int64_t>(sizeof(float));
  if (block_rows(g) * row_bytes <= kWholeBytes) return g.oh;
  const int64_t span = (g.kh - 1) * g.dh + 1;  // padded rows one output row reads
  const int64_t fit = (kBandBytes / row_bytes - span) / g.sh + 1;
  const int64_t bounded = (2 * (span - g.sh) + g.sh - 1) / g.sh;
  return lmin(g.oh, lmax(1, lmax(fit, bounded)));
}

template <int W>
int64_t block_scratch_floats(const DepthwisePlane& g) {
  const int64_t band_rows = lmin(block_rows(g), (block_band<W>(g) - 1) * g.sh + (g.kh - 1) * g.dh + 1);
  return (band_rows * block_cols(g) + g.kh * g.kw + 1 + g.oh * g.ow) * W + W;  // + W: room to align the start
}

// Transposes the W x W matrix in r (r[i] its row i): stage h swaps bit h of the row and column indices.
template <int W, int H, __SIZE_TYPE__... J>
inline void swap_blocks(typename Vec<W>::type& a, typename Vec<W>::type& b, std::index_sequence<J...>) {
  const typename Vec<W>::type lo = __builtin_shufflevector(a, b, ((J & H) ? W + J - H : J)...);
  const typename Vec<W>::type hi = __builtin_shufflevector(a, b, ((J & H) ? W + J : J + H)...);
  a = lo;
  b = hi;
}
template <int W, int H>
inline void transpose_stage(typename Vec<W>::type (&r)[W]) {
  for (int i = 0; i < W; ++i) {
    if (!(i & H)) swap_blocks<W, H>(r[i], r[i | H], std::make_index_sequence<W>{});
  }
  if constexpr (H > 1) transpose_stage<W, H / 2>(r);
}

// Output rows [oy0, oy1) of the channel-block kernel, [oh x ow] pixels of W channels at `out`, from the input
// band `in` (padded rows from oy0 * sh on, wp pixels a row), weights wt [taps x W] followed by the bias, and each
// tap's offset in `in`. KT: the tap count when fixed at compile time (0: g's).
template <int W, int KT>
void block_outputs(const DepthwisePlane& g, int64_t oy0, int64_t oy1, int64_t wp, const float* in, const float* wt,
                   const int64_t* tap_off, float* out) {
  using vf = typename Vec<W>::type;
  const int64_t taps = KT > 0 ? KT : g.kh * g.kw;
  const vf bv = load<W>(wt + taps * W);
  const int64_t col_step = g.sw * W;
  // Pixels at once, each its own accumulator: with 4, a pixel's FMAs (one per tap) waited on each other (latency
  // 4 cycles); 8 keep both FMA ports busy (96 channels of 56x56, 7x7: 915 -> 530 us).
  constexpr int R = 8;
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    const float* row = in + (oy - oy0) * g.sh * wp * W;
    float* o = out + oy * g.ow * W;
    int64_t ox = 0;
    for (; ox + R <= g.ow; ox += R) {
      vf acc[R];
      for (int i = 0; i < R; ++i) acc[i] = bv;
      const float* origin = row + ox * col_step;
      for (int64_t t = 0; t < taps; ++t) {
        const vf wv = load<W>(wt + t * W);
        const float* base = origin + tap_off[t];
        for (int i = 0; i < R; ++i) acc[i] += wv * load<W>(base + i * col_step);
      }
      for (int i = 0; i < R; ++i) store<W>(o + (ox + i) * W, acc[i], W);
    }
    for (; ox + 4 <= g.ow; ox += 4) {  // the rest of a row by fours
      vf acc[4] = {bv, bv, bv, bv};
      const float* origin = row + ox * col_step;
      for (int64_t t = 0; t < taps; ++t) {
        const vf wv = load<W>(wt + t * W);
        const float* base = origin + tap_off[t];
        for (int i = 0; i < 4; ++i) acc[i] += wv * load<W>(base + i * col_step);
      }
      for (int i = 0; i < 4; ++i) store<W>(o + (ox + i) * W, acc[i], W);
    }
    for (; ox < g.ow; ++ox) {
      vf acc = bv;
      const float* origin = row + ox * col_step;
      for (int64_t t = 0; t < taps; ++t) acc += load<W>(wt + t * W) * load<W>(origin + tap_off[t]);
      store<W>(o + ox * W, acc, W);
    }
  }
}

// `lanes` <= W channels at once, one per vector lane: channel l reads x + l * x_plane and w + l * taps, writes
// y + l * y_plane. Planes with rows of W pixels or more go by bands of output rows (block_band: one band
// unless the plane is large), each band's input rows transposed into `in` by runs of W pixels just before its
// outputs are computed (rows two bands share are transposed twice); narrower planes pixel by pixel, whole.
template <int W>
void depthwise_block_impl(const DepthwisePlane& g, int64_t lanes, const float* x, int64_t x_plane, const float* w,
                          const float* bias, const TileEpilogue* ep, float* y, int64_t y_plane, float* scratch) {
  using vf = typename Vec<W>::type;
  const int64_t hp = block_rows(g), wp = block_cols(g), taps = g.kh * g.kw, out_size = g.oh * g.ow;
  const int64_t span = (g.kh - 1) * g.dh + 1;  // padded rows one output row reads
  // Input pixel (iy, ix) is padded pixel (iy + ph, ix + pw), when inside the block (the convolution may not read
  // every input row or column): iy < r_hi, ix < c_hi.
  const int64_t in_size = g.ih * g.iw, r_hi = lmin(g.ih, hp - g.ph), c_hi = lmin(g.iw, wp - g.pw);
  const bool by_rows = c_hi >= W;
  const int64_t band = by_rows ? block_band<W>(g) : g.oh;
  const int64_t band_rows = lmin(hp, (band - 1) * g.sh + span);
  // The band: padded row r0 + r, pixel c at in + (r * wp + c) * W. Vector-aligned: from a 16-byte aligned start,
  // every 64-byte load and store of the AVX-512 build split two cache lines (measured: the same convolution
  // took 530 or 1078 us depending on where the allocator put the scratch).
  float* in = scratch + (W - reinterpret_cast<uintptr_t>(scratch) / sizeof(float) % W) % W;
  float* wt = in + band_rows * wp * W;
  float* out = wt + (taps + 1) * W;
  // W pixels of W channels at a time, transposed in registers (the loops over W unrolled, so that the vectors
  // stay in registers).
  auto load_pixels = [&](int64_t p, vf (&v)[W]) {
    if (lanes == W) {
#pragma GCC unroll 16
      for (int l = 0; l < W; ++l) v[l] = load<W>(x + l * x_plane + p);
    } else {
      for (int l = 0; l < W; ++l) v[l] = l < lanes ? load<W>(x + l * x_plane + p) : vf{};
    }
    transpose_stage<W, W / 2>(v);
  };
  auto zero = [&](float* at, int64_t pixels) {
    std::memset(at, 0, static_cast<size_t>(pixels * W) * sizeof(float));
  };
  const int64_t c0 = lmin(g.pw, wp), c1 = lmax(c0, lmin(wp, g.pw + c_hi));  // columns [c0, c1) hold input
  // Padded rows [r0, r1) into the band, row r0 first.
  auto fill_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = in + (r - r0) * wp * W;
      const int64_t iy = r - g.ph;
      if (iy < 0 || iy >= r_hi) {
        zero(row, wp);
        continue;
      }
      zero(row, c0);
      zero(row + c1 * W, wp - c1);
      for (int64_t ix0 = 0; ix0 < c_hi; ix0 += W) {  // runs of W pixels within the row
        const int64_t ix = lmin(ix0, c_hi - W);     // the last run may overlap the one before: same values again
        vf v[W];
        load_pixels(iy * g.iw + ix, v);
#pragma GCC unroll 16
        for (int k = 0; k < W; ++k) store<W>(row + (ix + g.pw + k) * W, v[k], W);
      }
    }
  };
  if (!by_rows) {  // rows narrower than a vector: the whole block at once, the plane's pixels in order
    const int64_t r0 = lmin(g.ph, hp), r1 = lmax(r0, lmin(hp, g.ph + r_hi));
    zero(in, r0 * wp);
    for (int64_t r = r0; r < r1; ++r) {
      zero(in + r * wp * W, c0);
      zero(in + (r * wp + c1) * W, wp - c1);
    }
    zero(in + r1 * wp * W, (hp - r1) * wp);
    int64_t iy = 0, ix = 0;  // of pixel p
    auto in_pixel = [&]() -> float* {
      float* d = iy < r_hi && ix < c_hi ? in + ((iy + g.ph) * wp + ix + g.pw) * W : nullptr;
      if (++ix == g.iw) {
        ix = 0;
        ++iy;
      }
      return d;
    };
    int64_t p = 0;
    for (; p + W <= in_size; p += W) {
      vf v[W];
      load_pixels(p, v);
      for (int k = 0; k < W; ++k) {
        if (float* d = in_pixel()) store<W>(d, v[k], W);
      }
    }
    for (; p < in_size; ++p) {
      if (float* d = in_pixel()) {
        for (int64_t l = 0; l < W; ++l) d[l] = l < lanes ? x[l * x_plane + p] : 0.0f;
      }
    }
  }
  // Weights [taps x W] and the bias (lanes past `lanes` zero).
  for (int64_t t = 0; t <= taps; ++t) {
    for (int64_t l = 0; l < W; ++l) {
      float v = 0;
      if (l < lanes) v = t < taps ? w[l * taps + t] : (bias != nullptr ? bias[l] : 0.0f);
      wt[t * W + l] = v;
    }
  }
  int64_t tap_off[kDepthwiseMaxTaps];
  for (int64_t t = 0; t < taps; ++t) tap_off[t] = ((t / g.kw) * g.dh * wp + (t % g.kw) * g.dw) * W;
  auto outputs = block_outputs<W, 0>;
  if (taps == 9) outputs = block_outputs<W, 9>;
  else if (taps == 25) outputs = block_outputs<W, 25>;
  else if (taps == 49) outputs = block_outputs<W, 49>;
  for (int64_t oy0 = 0; oy0 < g.oh; oy0 += band) {
    const int64_t oy1 = lmin(g.oh, oy0 + band);
    if (by_rows) fill_rows(oy0 * g.sh, lmin(hp, (oy1 - 1) * g.sh + span));
    outputs(g, oy0, oy1, wp, in, wt, tap_off, out);
  }
  int64_t q = 0;
  for (; q + W <= out_size; q += W) {
    vf v[W];
#pragma GCC unroll 16
    for (int k = 0; k < W; ++k) v[k] = load<W>(out + (q + k) * W);
    transpose_stage<W, W / 2>(v);
    if (lanes == W) {  // unrolled: the vectors stay in registers
      if (ep != nullptr) {
#pragma GCC unroll 16
        for (int l = 0; l < W; ++l) v[l] = tile_finish(*ep, l, static_cast<int>(q), v[l]);
      }
#pragma GCC unroll 16
      for (int l = 0; l < W; ++l) store<W>(y + l * y_plane + q, v[l], W);
      continue;
    }
    if (ep != nullptr) {
      for (int64_t l = 0; l < lanes; ++l) v[l] = tile_finish(*ep, static_cast<int>(l), static_cast<int>(q), v[l]);
    }
    for (int64_t l = 0; l < lanes; ++l) store<W>(y + l * y_plane + q, v[l], W);
  }
  for (int64_t l = 0; l < lanes; ++l) {
    for (int64_t i = q; i < out_size; ++i) {
      const float v = out[i * W + l];
      y[l * y_plane + i] = ep != nullptr ? tile_finish_one(*ep, static_cast<int>(l), static_cast<int>(i), v) : v;
    }
  }
}

}  // namespace
}  // namespace orchard::cpu::opt
