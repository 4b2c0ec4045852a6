// The CPU kernel table: every family's registrations, reference kernels and optimized variants (opt/),
// listed explicitly (STYLE.md "Explicit tables").
#include <vector>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/opt/families.hpp"
#include "backends/cpu/opt/vec_math_kernels.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu {

std::span<const KernelDef> all_kernels() {
  static const std::vector<KernelDef> table = [] {
    std::vector<KernelDef> all;
    for (auto family : {
             reference::elementwise_kernels,
             reference::activation_kernels,
             reference::cast_kernels,
             reference::reduction_kernels,
             reference::normalization_kernels,
             reference::softmax_kernels,
             reference::matmul_kernels,
             reference::conv_kernels,
             reference::pool_kernels,
             reference::quantize_kernels,
             reference::shape_kernels,
             reference::index_kernels,
             reference::image_kernels,
             reference::control_flow_kernels,
             reference::sequence_kernels,
             reference::rnn_kernels,
             reference::signal_kernels,
             reference::string_kernels,
             reference::training_kernels,
             reference::random_kernels,
             reference::fused_kernels,
             reference::gelu_kernels,
             reference::attention_kernels,
             // Optimized variants (priority > 0), tried before the reference kernels of their ops.
             opt::matmul_variants,
             opt::conv_variants,
             opt::attention_variants,
             opt::elementwise_vec_kernels,
             opt::softmax_vec_kernels,
             opt::norm_vec_kernels,
             opt::reduce_vec_kernels,
             opt::pool_vec_kernels,
             opt::transpose_vec_kernels,
#if defined(ORCHARD_HAVE_DNNL)
             opt::dnnl_conv_variants,
#endif
         }) {
      auto defs = family();
      all.insert(all.end(), defs.begin(), defs.end());
    }
    return all;
  }();
  return table;
}

}  // namespace orchard::cpu
