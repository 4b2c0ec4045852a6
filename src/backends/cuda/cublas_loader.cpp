#include "backends/cuda/cublas_loader.hpp"

#include <dlfcn.h>

#include <string>

namespace orchard::cuda {

namespace {

#define ORCHARD_STR2(x) #x
#define ORCHARD_STR(x) ORCHARD_STR2(x)

Result<CublasApi> load() {
  const std::string soname = "libcublas.so." ORCHARD_STR(CUBLAS_VER_MAJOR);
  void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef ORCHARD_CUDA_LIB_DIR
  if (!lib) lib = dlopen((std::string(ORCHARD_CUDA_LIB_DIR) + "/" + soname).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
  if (!lib) return unavailable("[cuda] cannot load ", soname, ": ", dlerror());
  CublasApi api{};
  std::string missing;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (!fn) missing += std::string(missing.empty() ? "" : ", ") + name;
  };
  sym(api.create, "cublasCreate_v2");
  sym(api.destroy, "cublasDestroy_v2");
  sym(api.set_stream, "cublasSetStream_v2");
  sym(api.set_math_mode, "cublasSetMathMode");
  sym(api.set_workspace, "cublasSetWorkspace_v2");
  sym(api.gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
  sym(api.status_string, "cublasGetStatusString");
  if (!missing.empty()) {
    dlclose(lib);
    return unavailable("[cuda] ", soname, " lacks ", missing);
  }
  return api;  // the library stays loaded for the life of the process
}

#undef ORCHARD_STR
#undef ORCHARD_STR2

}  // namespace

Result<const CublasApi*> cublas_api() {
  static const Result<CublasApi> api = load();
  if (!api.ok()) return api.status();
  return &*api;
}

}  // namespace orchard::cuda
