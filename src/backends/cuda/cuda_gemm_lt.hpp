// A GEMM with FusedMatMul's epilogue in one cuBLASLt call (cuda_gemm_lt.cpp says which epilogues and why).
#pragma once

#include <cublasLt.h>

#include <map>
#include <mutex>
#include <tuple>

#include "backends/cuda/cuda_kernels.hpp"
#include "orchard/tensor.hpp"

namespace orchard::cuda {

// One kernel's cuBLASLt plans, per shape (at most kMaxPlans); safe to call from concurrent runs.
class LtGemm {
 public:
  LtGemm() = default;
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;
  ~LtGemm();

  // Whether the path takes dtype t (float32, float16, bfloat16) with activation `act` (and a residual when
  // `residual`); false when turned off.
  static bool takes(DType t, UnaryOp act, bool residual);

  // y [m x n] = act(a [m x k] b [k x n] + bias [n] + z [m x n]), row-major and contiguous, on the current stream;
  // bias and z may be null. Returns false, queuing nothing, when cuBLASLt does not take it (the caller then runs
  // the GEMM and the epilogue kernel), or the cuBLASLt error.
  Result<bool> run(DType t, int64_t m, int64_t n, int64_t k, const void* a, const void* b, const void* bias,
                   const void* z, void* y, UnaryOp act);

 private:
  static constexpr size_t kMaxPlans = 64;  // plans kept per kernel (each a few host descriptors)
  void clear();  // destroys every plan (the mutex held, or in the destructor)
  using Key = std::tuple<DType, int64_t, int64_t, int64_t, int, bool>;
  struct Plan {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    bool usable;
  };
  std::mutex mu_;
  std::map<Key, Plan> plans_;
};

}  // namespace orchard::cuda
