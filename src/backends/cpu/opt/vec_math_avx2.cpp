// The vec_math loops for AVX2 + FMA (x86-64 only; built with -mavx2 -mfma).
#define ORCHARD_VEC_BYTES 32
#include "backends/cpu/opt/vec_math_impl.hpp"

namespace orchard::cpu {

const VecKernels& vec_kernels_avx2() {
  static const VecKernels k{"avx2",       unary,           binary_vv,   binary_vs, binary_sv,
                            softmax_rows, layer_norm_rows, scale_shift, row_sums};
  return k;
}

}  // namespace orchard::cpu
