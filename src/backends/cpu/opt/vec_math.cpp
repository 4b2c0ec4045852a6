#include "backends/cpu/opt/vec_math.hpp"

#include <cstring>

#include "backends/cpu/opt/epilogue.hpp"
#include "core/cpu_features.hpp"
#include "core/logging.hpp"

namespace orchard::cpu {

// One per ISA file (vec_math_<isa>.cpp); the x86 ones exist only in x86-64 builds.
const VecKernels& vec_kernels_portable();
#if defined(__x86_64__)
const VecKernels& vec_kernels_avx2();
const VecKernels& vec_kernels_avx512();
#endif

const VecKernels* vec_kernels_named(const char* isa) {
  const uint32_t f = cpu_features();
  (void)f;
#if defined(__x86_64__)
  if (std::strcmp(isa, "avx512") == 0) return (f & kCpuAvx512) ? &vec_kernels_avx512() : nullptr;
  if (std::strcmp(isa, "avx2") == 0) return (f & kCpuAvx2) ? &vec_kernels_avx2() : nullptr;
#endif
  if (std::strcmp(isa, "portable") == 0) return &vec_kernels_portable();
  return nullptr;
}

const VecKernels& vec_kernels() {
  static const VecKernels* const chosen = [] {
    const VecKernels* k = vec_kernels_named("avx512");
    if (!k) k = vec_kernels_named("avx2");
    if (!k) k = &vec_kernels_portable();
    ORCHARD_LOG_DEBUG("cpu", "vector kernels chosen", {"isa", k->isa});
    return k;
  }();
  return *chosen;
}

void vec_exp_f32(const float* x, float* y, int64_t n) { vec_kernels().unary(UnaryOp::exp, 0, 0, x, y, n); }
void vec_log_f32(const float* x, float* y, int64_t n) { vec_kernels().unary(UnaryOp::log, 0, 0, x, y, n); }
void vec_sigmoid_f32(const float* x, float* y, int64_t n) { vec_kernels().unary(UnaryOp::sigmoid, 0, 0, x, y, n); }
void vec_tanh_f32(const float* x, float* y, int64_t n) { vec_kernels().unary(UnaryOp::tanh, 0, 0, x, y, n); }
void vec_erf_f32(const float* x, float* y, int64_t n) { vec_kernels().unary(UnaryOp::erf, 0, 0, x, y, n); }
void vec_gelu_f32(const float* x, float* y, int64_t n, bool tanh_approximation) {
  vec_kernels().unary(tanh_approximation ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, 0, 0, x, y, n);
}

void apply_activation_vec(const ActivationSpec& act, float* x, int64_t n) {
  const VecKernels& k = vec_kernels();
  switch (act.kind) {
    case Activation::none:
      return;
    case Activation::relu:
      return k.unary(UnaryOp::relu, 0, 0, x, x, n);
    case Activation::clip:
      return k.unary(UnaryOp::clip, act.p0, act.p1, x, x, n);
    case Activation::sigmoid:
      return k.unary(UnaryOp::sigmoid, 0, 0, x, x, n);
    case Activation::silu:
      return k.unary(UnaryOp::silu, 0, 0, x, x, n);
    case Activation::hardswish:
      return k.unary(UnaryOp::hardswish, 0, 0, x, x, n);
    case Activation::leaky_relu:
      return k.unary(UnaryOp::leaky_relu, act.p0, 0, x, x, n);
    case Activation::gelu:
      return k.unary(UnaryOp::gelu_erf, 0, 0, x, x, n);
    case Activation::gelu_tanh:
      return k.unary(UnaryOp::gelu_tanh, 0, 0, x, x, n);
    case Activation::tanh:
      return k.unary(UnaryOp::tanh, 0, 0, x, x, n);
  }
}

}  // namespace orchard::cpu
