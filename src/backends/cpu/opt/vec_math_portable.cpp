// The vec_math loops for 128-bit vectors: SSE2 on x86-64, NEON on aarch64 (the baseline flags).
#define ORCHARD_VEC_BYTES 16
#include "backends/cpu/opt/vec_math_impl.hpp"

namespace orchard::cpu {

const VecKernels& vec_kernels_portable() {
  static const VecKernels k{"portable",   unary,           binary_vv,   binary_vs, binary_sv,
                            softmax_rows, layer_norm_rows, scale_shift, row_sums};
  return k;
}

}  // namespace orchard::cpu
