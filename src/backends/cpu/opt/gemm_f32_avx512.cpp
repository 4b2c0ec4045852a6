// The AVX-512 GEMM micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators; per k, two loads of B and 12
// broadcasts of A feed 24 FMAs. A partial tile computes only its m rows and, when n <= 16, one vector of
// columns (one-row and one-column tiles have their own loops). Compiled with -mavx512f
// -mavx512bw -mavx512dq -mavx512vl -mfma (CMakeLists.txt); called only when cpu_features() has kCpuAvx512. No
// standard-library templates here: an inline function instantiated with these flags could be picked by the
// linker for the whole program.
#include <immintrin.h>

// GCC 12 warns that _mm512_max_ps / _mm512_min_ps read the "undefined" vector they pass as merge source.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "backends/cpu/opt/gemm_f32.hpp"

namespace orchard::cpu::opt {

namespace {

constexpr int MR = 12, NR = 32;
constexpr int kStreamNone = 0, kStreamB = 1, kStreamA = 2;  // what the kernel prefetches

// Applies ep to row i of a tile (columns under masks k0 / k1; cb0 / cb1: the column bias).
inline void finish_row(const TileEpilogue& ep, int i, __mmask16 k0, __mmask16 k1, __m512 cb0, __m512 cb1, __m512& v0,
                       __m512& v1) {
  if (ep.alpha != 1) {
    const __m512 a = _mm512_set1_ps(ep.alpha);
    v0 = _mm512_mul_ps(v0, a);
    v1 = _mm512_mul_ps(v1, a);
  }
  if (ep.row_bias != nullptr) {
    const __m512 rb = _mm512_set1_ps(ep.row_bias[i]);
    v0 = _mm512_add_ps(v0, rb);
    v1 = _mm512_add_ps(v1, rb);
  }
  v0 = _mm512_add_ps(v0, cb0);
  v1 = _mm512_add_ps(v1, cb1);
  if (ep.residual != nullptr) {
    const float* z = ep.residual + i * ep.ld_residual;
    const __m512 s = _mm512_set1_ps(ep.residual_scale);
    v0 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(k0, z), v0);
    v1 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(k1, z + 16), v1);
  }
  if (ep.clamp == TileEpilogue::Clamp::relu) {
    v0 = _mm512_max_ps(v0, _mm512_setzero_ps());  // NaN gives the second operand, 0
    v1 = _mm512_max_ps(v1, _mm512_setzero_ps());
  } else if (ep.clamp == TileEpilogue::Clamp::clip) {
    const __m512 lo = _mm512_set1_ps(ep.lo), hi = _mm512_set1_ps(ep.hi);
    v0 = _mm512_min_ps(hi, _mm512_max_ps(lo, v0));  // NaN gives the second operand, kept
    v1 = _mm512_min_ps(hi, _mm512_max_ps(lo, v1));
  }
}

// acc[i][v] += a[i] * b[16 v ..] over kc steps, for rows i < R and V vectors of columns (the others untouched).
// Prefetch into L2 (operands streamed from memory): kStreamB the same k step of the next B panel (b + kc * NR),
// kStreamA that of the next A panel (a + kc * MR).
template <int R, int V, int Prefetch>
__attribute__((always_inline)) inline void accumulate_rows(int64_t kc, const float* a, const float* b,
                                                           __m512 (&acc)[MR][2]) {
#pragma GCC unroll 4  // measured 1-3% faster on the standard models' shapes than the rolled loop
  for (int64_t k = 0; k < kc; ++k) {
    if (Prefetch == kStreamB) {
      _mm_prefetch(reinterpret_cast<const char*>(b + kc * NR), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(b + kc * NR + 16), _MM_HINT_T1);
    } else if (Prefetch == kStreamA) {
      _mm_prefetch(reinterpret_cast<const char*>(a + kc * MR), _MM_HINT_T1);
    }
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = V == 2 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      if (V == 2) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
}

template <int V, int Prefetch>
void accumulate_m(int m, int64_t kc, const float* a, const float* b, __m512 (&acc)[MR][2]) {
  switch (m) {
    case 2: return accumulate_rows<2, V, Prefetch>(kc, a, b, acc);
    case 3: return accumulate_rows<3, V, Prefetch>(kc, a, b, acc);
    case 4: return accumulate_rows<4, V, Prefetch>(kc, a, b, acc);
    case 5: return accumulate_rows<5, V, Prefetch>(kc, a, b, acc);
    case 6: return accumulate_rows<6, V, Prefetch>(kc, a, b, acc);
    case 7: return accumulate_rows<7, V, Prefetch>(kc, a, b, acc);
    case 8: return accumulate_rows<8, V, Prefetch>(kc, a, b, acc);
    case 9: return accumulate_rows<9, V, Prefetch>(kc, a, b, acc);
    case 10: return accumulate_rows<10, V, Prefetch>(kc, a, b, acc);
    case 11: return accumulate_rows<11, V, Prefetch>(kc, a, b, acc);
    default: return accumulate_rows<MR, V, Prefetch>(kc, a, b, acc);
  }
}

template <int Prefetch>
void kernel_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, bool accumulate,
                  const TileEpilogue* ep) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  if (m == 1) {  // a row vector times B (batch-1 Gemm / MatMul): only row 0, two chains per half
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, t0 = s0, t1 = s0;
    int64_t k = 0;
    for (; k + 2 <= kc; k += 2) {
      s0 = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR]), _mm512_loadu_ps(b + k * NR), s0);
      s1 = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR]), _mm512_loadu_ps(b + k * NR + 16), s1);
      t0 = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR + MR]), _mm512_loadu_ps(b + k * NR + NR), t0);
      t1 = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR + MR]), _mm512_loadu_ps(b + k * NR + NR + 16), t1);
    }
    if (k < kc) {
      s0 = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR]), _mm512_loadu_ps(b + k * NR), s0);
      s1 = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR]), _mm512_loadu_ps(b + k * NR + 16), s1);
    }
    acc[0][0] = _mm512_add_ps(s0, t0);
    acc[0][1] = _mm512_add_ps(s1, t1);
  } else if (n == 1) {  // A times a column vector (a 1x1 convolution on a 1x1 image): rows in lanes
    __m512 s = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(0xfff, a + k * MR), _mm512_set1_ps(b[k * NR]), s);
    float rows[16];
    _mm512_storeu_ps(rows, s);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) acc[i][0] = _mm512_set1_ps(rows[i]);
  } else if (n > 16) {
    accumulate_m<2, Prefetch>(m, kc, a, b, acc);
  } else {  // the second vector of columns is all past n: left zero, never stored
    accumulate_m<1, Prefetch>(m, kc, a, b, acc);
  }
  // Column masks for a partial tile (n < 32); rows past m are not stored. A full tile uses plain stores (a
  // masked store cannot forward to a later load of the same data).
  const bool full = n == NR;
  const __mmask16 k0 = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
  const __mmask16 k1 = n >= 32 ? __mmask16(0xffff) : n <= 16 ? __mmask16(0) : __mmask16((1u << (n - 16)) - 1);
  __m512 cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();
  if (ep != nullptr && ep->col_bias != nullptr) {
    cb0 = _mm512_maskz_loadu_ps(k0, ep->col_bias);
    cb1 = _mm512_maskz_loadu_ps(k1, ep->col_bias + 16);
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* ci = c + i * ldc;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, ci));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, ci + 16));
    }
    if (ep != nullptr) finish_row(*ep, i, k0, k1, cb0, cb1, v0, v1);
    if (full) {
      _mm512_storeu_ps(ci, v0);
      _mm512_storeu_ps(ci + 16, v1);
    } else {
      _mm512_mask_storeu_ps(ci, k0, v0);
      _mm512_mask_storeu_ps(ci + 16, k1, v1);
    }
  }
}

}  // namespace

const GemmMicroKernel& gemm_micro_kernel_avx512() {
  // Partial tiles compute only their rows and their 16-column vectors.
  static const GemmMicroKernel k{"avx512", MR, NR, kernel_12x32<kStreamNone>, kernel_12x32<kStreamB>,
                                 kernel_12x32<kStreamA>, MR, 2};
  return k;
}

}  // namespace orchard::cpu::opt
