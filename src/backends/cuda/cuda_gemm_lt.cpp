// FusedMatMul's GEMM and epilogue in one cuBLASLt call: y = act(a b + bias + z), so that a linear layer is one
// kernel rather than a GEMM and an epilogue kernel over its whole output (at batch 1 each kernel costs several µs;
// at batch 32 the epilogue reads and writes the output once more). cuBLASLt's epilogues cover the bias, Relu and
// the tanh GELU; the residual z is its C operand (beta 1), taken only without an activation, so the order of
// residual and activation does not matter. Plans (descriptors and the algorithm cuBLASLt's heuristic picked) are
// cached per shape. ORCHARD_CUDA_LT=0 turns the path off (the GEMM and the epilogue kernel then run as before).
#include "backends/cuda/cuda_gemm_lt.hpp"

#include <cstdlib>
#include <cstring>

#include "backends/cuda/cublas_loader.hpp"
#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/cuda_ops.hpp"

namespace orchard::cuda {

namespace {

bool lt_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ORCHARD_CUDA_LT");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

}  // namespace

LtGemm::~LtGemm() { clear(); }

void LtGemm::clear() {
  auto api = cublaslt_api();
  if (!api.ok()) return;
  for (auto& [key, p] : plans_) {
    (*api)->desc_destroy(p.desc);
    (*api)->layout_destroy(p.a);
    (*api)->layout_destroy(p.b);
    (*api)->layout_destroy(p.c);
  }
  plans_.clear();
}

bool LtGemm::takes(DType t, UnaryOp act, bool residual) {
  if (!lt_enabled() || (t != DType::float32 && t != DType::float16 && t != DType::bfloat16)) return false;
  if (act != UnaryOp::identity && act != UnaryOp::relu && act != UnaryOp::gelu_tanh) return false;
  return !residual || act == UnaryOp::identity;
}

Result<bool> LtGemm::run(DType t, int64_t m, int64_t n, int64_t k, const void* a, const void* b, const void* bias,
                         const void* z, void* y, UnaryOp act) {
  if (!takes(t, act, z != nullptr) || m <= 0 || n <= 0 || k <= 0) return false;
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) return false;
  ORCHARD_ASSIGN_OR_RETURN(const CublasLtApi* api, cublaslt_api());
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (act == UnaryOp::relu) epi = bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
  else if (act == UnaryOp::gelu_tanh) epi = bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  else if (bias) epi = CUBLASLT_EPILOGUE_BIAS;
  const Key key{t, m, n, k, static_cast<int>(epi), z != nullptr};
  std::lock_guard<std::mutex> lock(mu_);  // a plan's descriptor takes this call's bias pointer
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    // Inputs of ever new shapes (a server's batch sizes times sequence lengths) must not grow the cache without
    // bound: past kMaxPlans it starts again. A descriptor is read when cublasLtMatmul is called, so the ones of
    // calls already queued may go.
    if (plans_.size() >= kMaxPlans) clear();
    // Row-major y [m x n] = a [m x k] b [k x n] is column-major y^T [n x m] = b^T [n x k] a^T [k x m]: cuBLASLt's
    // A is our b (n x k, ld n), its B our a (k x m, ld k), C and D y (n x m, ld n); the bias runs along D's rows,
    // our columns.
    ORCHARD_ASSIGN_OR_RETURN(const cudaDataType dt, blas_type(t));  // the bias too is of y's type
    Plan p{};
    // float32 stays float32 (no TF32), as the cuBLAS path. A failed step leaves no half-made plan behind.
    cublasStatus_t st = api->desc_create(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const char* call = "cublasLtMatmulDescCreate";
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = api->desc_set(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
      call = "cublasLtMatmulDescSetAttribute";
    }
    const uint64_t rows[3] = {static_cast<uint64_t>(n), static_cast<uint64_t>(k), static_cast<uint64_t>(n)};
    const uint64_t cols[3] = {static_cast<uint64_t>(k), static_cast<uint64_t>(m), static_cast<uint64_t>(m)};
    cublasLtMatrixLayout_t* layouts[3] = {&p.a, &p.b, &p.c};
    for (int i = 0; i < 3 && st == CUBLAS_STATUS_SUCCESS; ++i) {
      st = api->layout_create(layouts[i], dt, rows[i], cols[i], static_cast<int64_t>(rows[i]));
      call = "cublasLtMatrixLayoutCreate";
    }
    if (st != CUBLAS_STATUS_SUCCESS) {
      if (p.desc) api->desc_destroy(p.desc);
      for (auto* l : layouts) {
        if (*l) api->layout_destroy(*l);
      }
      return cublas_error(st, call);
    }
    cublasLtMatmulPreference_t pref = nullptr;
    if (st = api->pref_create(&pref); st != CUBLAS_STATUS_SUCCESS) {
      api->desc_destroy(p.desc);
      for (auto* l : layouts) api->layout_destroy(*l);
      return cublas_error(st, "cublasLtMatmulPreferenceCreate");
    }
    const size_t no_workspace = 0;  // algorithms that need none: nothing to allocate, inside a graph capture or not
    api->pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &no_workspace, sizeof no_workspace);
    cublasLtMatmulHeuristicResult_t found{};
    int count = 0;
    st = api->heuristic(api->handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &found, &count);
    api->pref_destroy(pref);
    p.usable = st == CUBLAS_STATUS_SUCCESS && count > 0;
    p.algo = found.algo;
    it = plans_.emplace(key, p).first;
  }
  const Plan& p = it->second;
  if (!p.usable) return false;  // cuBLASLt has no algorithm for it: the caller's cuBLAS path
  if (bias) {
    if (cublasStatus_t st = api->desc_set(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        st != CUBLAS_STATUS_SUCCESS) {
      return cublas_error(st, "cublasLtMatmulDescSetAttribute");
    }
  }
  const float one = 1.f, beta = z ? 1.f : 0.f;
  const cublasStatus_t st = api->matmul(api->handle, p.desc, &one, b, p.a, a, p.b, &beta, z ? z : y, p.c, y, p.c,
                                        &p.algo, nullptr, 0, current_cuda_stream());
  if (st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, "cublasLtMatmul");
  return true;
}

}  // namespace orchard::cuda
