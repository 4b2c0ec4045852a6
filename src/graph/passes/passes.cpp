#include "graph/passes/pass.hpp"

namespace orchard::graph::passes {

const std::vector<NamedPass>& rewrite_passes() {
  // Order matters: no-ops go first so patterns are contiguous; Gemms unflattened before the MatMul fusion, which
  // then fuses their bias, residual and activation; Conv affine folding before the Conv fusion
  // (it needs the plain Conv); Gelu before the MatMul fusion, which takes the erf Gelu as its activation;
  // attention before the MatMul fusion, which would take the scores' mask Add as a residual; the layout change
  // last, on the fused convolutions.
  static const std::vector<NamedPass> kPasses = {
      {"eliminate_no_ops", eliminate_no_ops}, {"unflatten_gemm", unflatten_gemm},
      {"fold_conv_affine", fold_conv_affine},
      {"fuse_layer_norm", fuse_layer_norm},   {"fuse_gelu", fuse_gelu},
      {"fuse_attention", fuse_attention},     {"fuse_conv_matmul", fuse_conv_matmul},
      {"to_channels_last", to_channels_last},
  };
  return kPasses;
}

}  // namespace orchard::graph::passes
