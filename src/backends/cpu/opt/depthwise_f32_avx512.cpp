// The depthwise plane kernel (depthwise_f32_kernel.hpp) in vectors of 16 floats, compiled with
// -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma and -ffp-contract=fast (CMakeLists.txt).
#include "backends/cpu/opt/depthwise_f32_kernel.hpp"

namespace orchard::cpu::opt {

const DepthwiseKernel& depthwise_kernel_avx512() {
  static const DepthwiseKernel k{"avx512", scratch_floats<16>, depthwise_plane_impl<16>, 16,
                                 block_scratch_floats<16>, depthwise_block_impl<16>};
  return k;
}

}  // namespace orchard::cpu::opt
