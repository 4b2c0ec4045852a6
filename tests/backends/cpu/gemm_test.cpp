// gemm_f32 / gemm_f64 against a naive triple loop, on odd sizes, every transpose combination, strided
// leading dimensions, alpha/beta, and with a thread pool.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backends/cpu/gemm.hpp"

namespace orchard::cpu {
namespace {

template <class T>
void naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
           int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = ta ? A[k * lda + i] : A[i * lda + k];
        const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
      }
      const double prev = beta == T(0) ? 0.0 : static_cast<double>(beta) * C[i * ldc + j];
      C[i * ldc + j] = static_cast<T>(alpha * s + prev);
    }
}

template <class T>
void check(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta, ThreadPool* pool, int pad = 0) {
  std::mt19937 rng(static_cast<unsigned>(M * 131 + N * 17 + K + ta * 7 + tb * 3));
  std::uniform_real_distribution<double> dist(-1, 1);
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
  std::vector<T> A(static_cast<size_t>(a_rows * lda + 1)), B(static_cast<size_t>(b_rows * ldb + 1));
  std::vector<T> C(static_cast<size_t>(M * ldc + 1));
  for (auto& v : A) v = static_cast<T>(dist(rng));
  for (auto& v : B) v = static_cast<T>(dist(rng));
  for (auto& v : C) v = static_cast<T>(dist(rng));
  if (beta == T(0)) std::fill(C.begin(), C.end(), std::numeric_limits<T>::quiet_NaN());  // must not be read
  std::vector<T> want = C;
  naive<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
  if constexpr (std::is_same_v<T, float>) {
    gemm_f32(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, pool);
  } else {
    gemm_f64(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, pool);
  }
  const double tol = (std::is_same_v<T, float> ? 2e-5 : 1e-12) * static_cast<double>(K + 1);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      ASSERT_NEAR(C[at], want[at], tol) << "M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb
                                        << " at (" << i << "," << j << ")";
    }
  // Padding between rows of C is left alone.
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (!std::isnan(want[at])) {
        ASSERT_EQ(C[at], want[at]);
      }
    }
}

TEST(GemmKernel, OddSizesAllTransposesF32) {
  const int64_t sizes[] = {1, 2, 7, 33, 130};
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : sizes)
        for (int t = 0; t < 4; ++t) check<float>(t & 1, t & 2, M, N, K, 1.0f, 0.0f, nullptr);
}

TEST(GemmKernel, AlphaBetaAndStridesF32) {
  for (int t = 0; t < 4; ++t) {
    check<float>(t & 1, t & 2, 37, 45, 300, 0.5f, 2.0f, nullptr, 3);    // K spans two blocks
    check<float>(t & 1, t & 2, 1, 300, 19, -1.0f, 1.0f, nullptr, 1);    // matrix-vector row
    check<float>(t & 1, t & 2, 300, 1, 19, 2.0f, 0.5f, nullptr, 2);     // matrix-vector column
    check<float>(t & 1, t & 2, 200, 600, 5, 1.0f, 0.0f, nullptr, 0);    // N spans two blocks
  }
}

TEST(GemmKernel, ThreadPoolMatchesF32) {
  ThreadPool pool(4);
  for (int t = 0; t < 4; ++t) {
    check<float>(t & 1, t & 2, 130, 257, 270, 1.0f, 0.0f, &pool);
    check<float>(t & 1, t & 2, 1, 1000, 300, 1.0f, 1.0f, &pool);
    check<float>(t & 1, t & 2, 1000, 1, 300, 1.0f, 0.0f, &pool);
  }
}

TEST(GemmKernel, F64) {
  ThreadPool pool(0);  // default_threads(): 2 natively, 1 under qemu
  const int64_t sizes[] = {1, 7, 33, 130};
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int t = 0; t < 4; ++t) check<double>(t & 1, t & 2, M, N, 29, 1.5, 0.25, &pool, 1);
}

TEST(GemmKernel, EmptyKScalesC) {
  std::vector<float> C = {1, 2, 3, 4};
  gemm_f32(false, false, 2, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 3.0f, C.data(), 2, nullptr);
  EXPECT_EQ(C, (std::vector<float>{3, 6, 9, 12}));
  gemm_f32(false, false, 2, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 0.0f, C.data(), 2, nullptr);
  EXPECT_EQ(C, (std::vector<float>{0, 0, 0, 0}));
}

}  // namespace
}  // namespace orchard::cpu
