// Division by a divisor known at launch, as a multiply-high, an add and a shift: a GPU has no integer divide
// unit, and the index arithmetic of strided kernels (one division and one remainder per dim and element) done
// with 64-bit division can cost more than the memory traffic it serves. Valid for numerators and divisors in
// [1, 2^31) (numerator 0 too). Plain C++ with a device path, so the host tests check it.
// Layer: backends (CUDA).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ORCHARD_HOST_DEVICE __host__ __device__
#else
#define ORCHARD_HOST_DEVICE
#endif

namespace orchard::cuda {

struct FastDiv {
  uint32_t d = 1;      // the divisor
  uint32_t mul = 1;    // floor(2^32 * (2^shift - d) / d) + 1
  uint32_t shift = 0;  // ceil(log2(d))
};

inline FastDiv make_fast_div(uint32_t d) {
  FastDiv f;
  f.d = d;
  while ((uint64_t{1} << f.shift) < d) ++f.shift;
  f.mul = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << f.shift) - d)) / d + 1);
  return f;
}

// n / f.d for n < 2^31: with m = mul, q = (umulhi(n, m) + n) >> shift; the sum stays below 2^32.
ORCHARD_HOST_DEVICE inline uint32_t fast_div(const FastDiv& f, uint32_t n) {
#if defined(__CUDA_ARCH__)
  const uint32_t hi = __umulhi(n, f.mul);
#else
  const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * f.mul) >> 32);
#endif
  return (hi + n) >> f.shift;
}

}  // namespace orchard::cuda
