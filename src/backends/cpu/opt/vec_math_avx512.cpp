// The vec_math loops for AVX-512 (x86-64 only; built with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma).
#define ORCHARD_VEC_BYTES 64
#include "backends/cpu/opt/vec_math_impl.hpp"

namespace orchard::cpu {

const VecKernels& vec_kernels_avx512() {
  static const VecKernels k{"avx512",     unary,           binary_vv,   binary_vs, binary_sv,
                            softmax_rows, layer_norm_rows, scale_shift, row_sums};
  return k;
}

}  // namespace orchard::cpu
