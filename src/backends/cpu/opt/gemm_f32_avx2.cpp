// The AVX2 GEMM micro-kernel: a 6 x 16 tile of C in 12 ymm accumulators (16 registers in all). Compiled with
// -mavx2 -mfma (CMakeLists.txt); called only when cpu_features() has kCpuAvx2. No standard-library templates
// here (see gemm_f32_avx512.cpp).
#include <immintrin.h>

#include "backends/cpu/opt/gemm_f32_tile.hpp"

namespace orchard::cpu::opt {

namespace {

constexpr int MR = 6, NR = 16;

void kernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, bool accumulate,
                 const TileEpilogue* ep) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  if (m == MR && n == NR) {
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      __m256 v0 = acc[i][0], v1 = acc[i][1];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
      }
      if (ep != nullptr) {
        v0 = tile_finish(*ep, i, 0, v0);
        v1 = tile_finish(*ep, i, 8, v1);
      }
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    }
    return;
  }
  alignas(32) float tile[MR][NR];
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(tile[i], acc[i][0]);
    _mm256_store_ps(tile[i] + 8, acc[i][1]);
  }
  for (int i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < n; ++j) {
      const float v = accumulate ? ci[j] + tile[i][j] : tile[i][j];
      ci[j] = ep != nullptr ? tile_finish_one(*ep, i, j, v) : v;
    }
  }
}

}  // namespace

const GemmMicroKernel& gemm_micro_kernel_avx2() {
  static const GemmMicroKernel k{"avx2", MR, NR, kernel_6x16};
  return k;
}

}  // namespace orchard::cpu::opt
