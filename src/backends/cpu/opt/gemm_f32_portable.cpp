// The portable GEMM micro-kernel over four-float vectors (GCC/Clang vector extensions): an 8 x 8 tile of C
// on aarch64 (NEON, 32 registers; FMA through -ffp-contract=fast on this file), 6 x 8 elsewhere (SSE2 on
// baseline x86-64 has 16 registers). The fallback for CPUs without AVX2.
#include "backends/cpu/opt/gemm_f32_tile.hpp"

namespace orchard::cpu::opt {

namespace {

#if defined(__aarch64__)
constexpr int MR = 8;
#else
constexpr int MR = 6;
#endif
constexpr int NR = 8;
typedef float v4 __attribute__((vector_size(16)));

inline v4 load4(const float* p) {
  v4 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline void store4(float* p, v4 v) { __builtin_memcpy(p, &v, sizeof(v)); }

void kernel_mr_x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, bool accumulate,
                 const TileEpilogue* ep) {
  v4 acc[MR][2] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const v4 b0 = load4(b), b1 = load4(b + 4);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const v4 ai = v4{} + a[i];
      acc[i][0] += ai * b0;
      acc[i][1] += ai * b1;
    }
    a += MR;
    b += NR;
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      v4 v0 = acc[i][0], v1 = acc[i][1];
      if (accumulate) {
        v0 += load4(ci);
        v1 += load4(ci + 4);
      }
      if (ep != nullptr) {
        v0 = tile_finish(*ep, i, 0, v0);
        v1 = tile_finish(*ep, i, 4, v1);
      }
      store4(ci, v0);
      store4(ci + 4, v1);
    }
    return;
  }
  float tile[MR][NR];
  for (int i = 0; i < MR; ++i) {
    store4(tile[i], acc[i][0]);
    store4(tile[i] + 4, acc[i][1]);
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

const GemmMicroKernel& gemm_micro_kernel_portable() {
  static const GemmMicroKernel k{"portable", MR, NR, kernel_mr_x8};
  return k;
}

}  // namespace orchard::cpu::opt
