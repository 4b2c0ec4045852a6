// The AVX-512 GEMM micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators; per k, two loads of B and 12
// broadcasts of A feed 24 FMAs. Compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma (CMakeLists.txt);
// called only when cpu_features() has kCpuAvx512. No standard-library templates here: an inline function
// instantiated with these flags could be picked by the linker for the whole program.
#include <immintrin.h>

#include "backends/cpu/opt/gemm_f32.hpp"

namespace orchard::cpu::opt {

namespace {

constexpr int MR = 12, NR = 32;

void kernel_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, bool accumulate) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  // Column masks for a partial tile (n < 32); rows past m are not stored.
  const __mmask16 k0 = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
  const __mmask16 k1 = n >= 32 ? __mmask16(0xffff) : n <= 16 ? __mmask16(0) : __mmask16((1u << (n - 16)) - 1);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* ci = c + i * ldc;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, ci));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, k0, v0);
    _mm512_mask_storeu_ps(ci + 16, k1, v1);
  }
}

}  // namespace

const GemmMicroKernel& gemm_micro_kernel_avx512() {
  static const GemmMicroKernel k{"avx512", MR, NR, kernel_12x32};
  return k;
}

}  // namespace orchard::cpu::opt
