// cuBLAS, loaded on first use with dlopen rather than linked: linking libcublas (and the libcublasLt it
// pulls in) costs every process ~210 MB of resident memory at start-up, GPU or not, which a CPU-only
// user of a CUDA-enabled build should not pay. Call sites use the function pointers below.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>

#include "orchard/status.hpp"

namespace orchard::cuda {

// The cuBLAS entry points the backend uses.
struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n, int k,
                                            const void* alpha, const void* a, cudaDataType a_type, int lda,
                                            long long stride_a, const void* b, cudaDataType b_type, int ldb,
                                            long long stride_b, const void* beta, void* c, cudaDataType c_type,
                                            int ldc, long long stride_c, int batch, cublasComputeType_t compute,
                                            cublasGemmAlgo_t algo);  // (the header overloads this name)
  cublasStatus_t (*gemm_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n, int k,
                                    const void* alpha, const void* const a[], cudaDataType a_type, int lda,
                                    const void* const b[], cudaDataType b_type, int ldb, const void* beta,
                                    void* const c[], cudaDataType c_type, int ldc, int batch,
                                    cublasComputeType_t compute, cublasGemmAlgo_t algo);
  decltype(&cublasGetStatusString) status_string;
};

// Returns cuBLAS, loaded once (libcublas.so.<major> from the loader's path, else the toolkit's lib64), or
// why it could not be loaded.
Result<const CublasApi*> cublas_api();

// The cuBLASLt entry points the backend uses (GEMMs with their bias / activation / residual epilogue), and the
// process's one cuBLASLt handle (thread-safe; the stream is given per call).
struct CublasLtApi {
  decltype(&cublasLtCreate) create;
  decltype(&cublasLtMatmulDescCreate) desc_create;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set;
  decltype(&cublasLtMatrixLayoutCreate) layout_create;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy;
  decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
  decltype(&cublasLtMatmul) matmul;
  cublasLtHandle_t handle;
};

// Returns cuBLASLt (libcublasLt.so.<major>, found as cuBLAS is) with its handle, loaded once, or why not.
Result<const CublasLtApi*> cublaslt_api();

}  // namespace orchard::cuda
