// A portable blocked, packed, threaded GEMM (gemm.cpp, C++ written for auto-vectorisation) for the reference
// kernels that have no optimized variant yet: Einsum, ConvTranspose and the 8-bit integer products (float64).
// MatMul, Gemm and Conv are plain loops in reference/ and run on opt/gemm_f32.hpp in their variants. Its
// oracle is the plain triple loop in tests/backends/cpu/gemm_test.cpp (GemmKernel tests).
#pragma once

#include <cstdint>

#include "orchard/thread_pool.hpp"

namespace orchard::cpu {

// C = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is MxK (A is KxM when trans_a), op(B) is
// KxN (B is NxK when trans_b); lda/ldb/ldc are row strides in elements. When beta == 0, C is not read
// (it may hold NaNs). `pool` may be null (single-threaded). Sizes of 0 are allowed.
void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool);

// The float64 version of gemm_f32 (same contract).
void gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
              int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc, ThreadPool* pool);

}  // namespace orchard::cpu
