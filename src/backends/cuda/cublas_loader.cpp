#include "backends/cuda/cublas_loader.hpp"

#include <dlfcn.h>

#include <string>

namespace orchard::cuda {

namespace {

#define ORCHARD_STR2(x) #x
#define ORCHARD_STR(x) ORCHARD_STR2(x)

// Opens libNAME.so.<cuBLAS major> from the loader's path, else the toolkit's lib64.
Result<void*> open_library(const char* name) {
  const std::string soname = std::string(name) + ".so." ORCHARD_STR(CUBLAS_VER_MAJOR);
  void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef ORCHARD_CUDA_LIB_DIR
  if (!lib) lib = dlopen((std::string(ORCHARD_CUDA_LIB_DIR) + "/" + soname).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
  if (!lib) return unavailable("[cuda] cannot load ", soname, ": ", dlerror());
  return lib;
}

// Resolves symbols of `lib` into function pointers, collecting the names it lacks.
struct Symbols {
  void* lib;
  std::string missing;
  template <class F>
  void operator()(F& fn, const char* name) {
    fn = reinterpret_cast<F>(dlsym(lib, name));
    if (!fn) missing += std::string(missing.empty() ? "" : ", ") + name;
  }
};

Result<CublasApi> load() {
  ORCHARD_ASSIGN_OR_RETURN(void* lib, open_library("libcublas"));
  CublasApi api{};
  Symbols sym{lib, {}};
  sym(api.create, "cublasCreate_v2");
  sym(api.destroy, "cublasDestroy_v2");
  sym(api.set_stream, "cublasSetStream_v2");
  sym(api.set_math_mode, "cublasSetMathMode");
  sym(api.set_workspace, "cublasSetWorkspace_v2");
  sym(api.gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
  sym(api.gemm_batched_ex, "cublasGemmBatchedEx");
  sym(api.status_string, "cublasGetStatusString");
  if (!sym.missing.empty()) {
    dlclose(lib);
    return unavailable("[cuda] libcublas lacks ", sym.missing);
  }
  return api;  // the library stays loaded for the life of the process
}

Result<CublasLtApi> load_lt() {
  ORCHARD_ASSIGN_OR_RETURN(void* lib, open_library("libcublasLt"));
  CublasLtApi api{};
  Symbols sym{lib, {}};
  sym(api.create, "cublasLtCreate");
  sym(api.desc_create, "cublasLtMatmulDescCreate");
  sym(api.desc_destroy, "cublasLtMatmulDescDestroy");
  sym(api.desc_set, "cublasLtMatmulDescSetAttribute");
  sym(api.layout_create, "cublasLtMatrixLayoutCreate");
  sym(api.layout_destroy, "cublasLtMatrixLayoutDestroy");
  sym(api.pref_create, "cublasLtMatmulPreferenceCreate");
  sym(api.pref_destroy, "cublasLtMatmulPreferenceDestroy");
  sym(api.pref_set, "cublasLtMatmulPreferenceSetAttribute");
  sym(api.heuristic, "cublasLtMatmulAlgoGetHeuristic");
  sym(api.matmul, "cublasLtMatmul");
  if (!sym.missing.empty()) {
    dlclose(lib);
    return unavailable("[cuda] libcublasLt lacks ", sym.missing);
  }
  if (cublasStatus_t st = api.create(&api.handle); st != CUBLAS_STATUS_SUCCESS) {
    return unavailable("[cuda] cublasLtCreate failed (status ", static_cast<int>(st), ")");
  }
  return api;  // library and handle live as long as the process
}

#undef ORCHARD_STR
#undef ORCHARD_STR2

}  // namespace

Result<const CublasApi*> cublas_api() {
  static const Result<CublasApi> api = load();
  if (!api.ok()) return api.status();
  return &*api;
}

Result<const CublasLtApi*> cublaslt_api() {
  static const Result<CublasLtApi> api = load_lt();
  if (!api.ok()) return api.status();
  return &*api;
}

}  // namespace orchard::cuda
