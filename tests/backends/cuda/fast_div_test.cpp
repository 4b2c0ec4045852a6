// FastDiv (fast_div.hpp): the multiply-and-shift division the strided CUDA kernels index with, checked on the host
// against plain division over the divisors and numerators where such schemes go wrong (powers of two and their
// neighbours, numerators next to multiples of the divisor, the top of the valid range).
#include "backends/cuda/fast_div.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace orchard::cuda {
namespace {

constexpr uint32_t kTop = (uint32_t{1} << 31) - 1;

std::vector<uint32_t> divisors() {
  std::vector<uint32_t> ds;
  for (uint32_t d = 1; d <= 2048; ++d) ds.push_back(d);
  for (int s = 11; s <= 30; ++s) {
    for (int64_t delta : {-1, 0, 1}) ds.push_back(static_cast<uint32_t>((int64_t{1} << s) + delta));
  }
  ds.push_back(kTop);
  ds.push_back(3 * 7 * 11 * 13 * 17 * 19);
  std::mt19937 rng(7);
  for (int k = 0; k < 2000; ++k) ds.push_back(1 + rng() % kTop);
  return ds;
}

TEST(FastDiv, MatchesDivisionOverTheValidRange) {
  std::mt19937 rng(11);
  int64_t checked = 0;
  for (const uint32_t d : divisors()) {
    const FastDiv f = make_fast_div(d);
    std::vector<uint32_t> ns = {0, 1, d - 1, d, kTop, kTop - 1, kTop - d + 1};
    if (d < kTop) ns.push_back(d + 1);
    const uint32_t top_multiple = kTop / d * d;
    for (int64_t delta = -2; delta <= 2; ++delta) {
      const int64_t n = static_cast<int64_t>(top_multiple) + delta;
      if (n >= 0 && n <= kTop) ns.push_back(static_cast<uint32_t>(n));
    }
    for (int k = 0; k < 64; ++k) {
      ns.push_back(rng() % (uint32_t{1} << 31));
      const uint32_t m = static_cast<uint32_t>(rng() % (kTop / d + 1)) * d;  // a multiple of d and its neighbours
      ns.push_back(m);
      if (m > 0) ns.push_back(m - 1);
      if (m < kTop) ns.push_back(m + 1);
    }
    for (const uint32_t n : ns) {
      ASSERT_EQ(fast_div(f, n), n / d) << n << " / " << d;
      ++checked;
    }
  }
  EXPECT_GT(checked, 500000);
}

TEST(FastDiv, EveryNumeratorForSmallDivisors) {
  // The dims of attention heads and image rows: every numerator up to 2^20 for each divisor up to 64.
  for (uint32_t d = 1; d <= 64; ++d) {
    const FastDiv f = make_fast_div(d);
    for (uint32_t n = 0; n < (uint32_t{1} << 20); ++n) ASSERT_EQ(fast_div(f, n), n / d) << n << " / " << d;
  }
}

}  // namespace
}  // namespace orchard::cuda
