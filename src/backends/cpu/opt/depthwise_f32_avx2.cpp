// The depthwise plane kernel (depthwise_f32_kernel.hpp) in vectors of 8 floats, compiled with
// -mavx2 -mfma and -ffp-contract=fast (CMakeLists.txt).
#include "backends/cpu/opt/depthwise_f32_kernel.hpp"

namespace orchard::cpu::opt {

const DepthwiseKernel& depthwise_kernel_avx2() {
  static const DepthwiseKernel k{"avx2", scratch_floats<8>, depthwise_plane_impl<8>, 8,
                                 block_scratch_floats<8>, depthwise_block_impl<8>};
  return k;
}

}  // namespace orchard::cpu::opt
