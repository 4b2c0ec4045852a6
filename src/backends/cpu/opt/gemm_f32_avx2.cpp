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
  // Twelve named accumulators, not an array: GCC 12 kept an accumulator array in memory and stored all twelve
  // registers to the stack at every k step, which halved the kernel's speed on CPUs with one store port.
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += MR;
    b += NR;
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
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
