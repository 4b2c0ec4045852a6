// rnn kernels (see families.hpp).
#include "backends/cpu/kernel_util.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

std::span<const KernelDef> rnn_kernels() { return {}; }

}  // namespace orchard::cpu::reference
