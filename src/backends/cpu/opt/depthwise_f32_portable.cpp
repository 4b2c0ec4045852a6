// The depthwise plane kernel (depthwise_f32_kernel.hpp) in vectors of 4 floats, compiled with
// baseline flags (NEON on aarch64, SSE2 on x86-64) and -ffp-contract=fast (CMakeLists.txt).
#include "backends/cpu/opt/depthwise_f32_kernel.hpp"

namespace orchard::cpu::opt {

const DepthwiseKernel& depthwise_kernel_portable() {
  static const DepthwiseKernel k{"portable", scratch_floats<4>, depthwise_plane_impl<4>, 4,
                                 block_scratch_floats<4>, depthwise_block_impl<4>};
  return k;
}

}  // namespace orchard::cpu::opt
