#include "backends/cpu/opt/vec_math_kernels.hpp"

#include "runtime/backend.hpp"

namespace orchard::cpu::opt {

Result<std::unique_ptr<OpKernel>> create_reference(const KernelCreateContext& ctx) {
  const graph::Node& n = ctx.node;
  for (const KernelDef& k : all_kernels()) {
    if (k.priority == 0 && k.cpu_features == 0 && k.domain == n.domain && k.op == n.op_type && k.since <= n.opset &&
        n.opset <= k.until) {
      return k.create(ctx);
    }
  }
  return internal_error("[cpu] ", n.op_type, " opset ", n.opset, ": a vectorised variant has no reference kernel");
}

bool maybe_f32(const KernelCreateContext& ctx, size_t i) {
  if (i >= ctx.node.inputs.size() || ctx.node.inputs[i].empty()) return true;
  const DType t = ctx.input_type(i).dtype;
  return t == DType::float32 || t == DType::undefined;
}

}  // namespace orchard::cpu::opt
