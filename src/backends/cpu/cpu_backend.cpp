#include "backends/cpu/cpu_backend.hpp"

#include <thread>

#include "orchard/thread_pool.hpp"

namespace orchard::cpu {

namespace {

// Kernel lookup by (domain, op), built once from the explicit tables.
const std::map<std::pair<std::string, std::string>, std::vector<const KernelDef*>>& kernel_index() {
  static const auto index = [] {
    std::map<std::pair<std::string, std::string>, std::vector<const KernelDef*>> m;
    for (const KernelDef& k : all_kernels()) m[{std::string(k.domain), std::string(k.op)}].push_back(&k);
    return m;
  }();
  return index;
}

}  // namespace

CpuBackend::CpuBackend(const SessionOptions& options) {
  info_.name = "cpu";
  info_.kind = runtime::DeviceKind::cpu;
#if defined(__aarch64__)
  info_.description = "aarch64 NEON";
#elif defined(__x86_64__)
  info_.description = "x86-64";
#else
  info_.description = "generic";
#endif
  const int threads = options.intra_op_threads > 0 ? options.intra_op_threads : ThreadPool::default_threads();
  info_.description += ", " + std::to_string(threads) + " threads";
  info_.caps.fp16 = true;
  info_.caps.int8 = true;
}

const KernelDef* CpuBackend::find(const std::string& domain, const std::string& op, int opset) const {
  const auto& index = kernel_index();
  auto it = index.find({domain, op});
  if (it == index.end()) return nullptr;
  for (const KernelDef* k : it->second) {
    if (k->since <= opset && opset <= k->until) return k;
  }
  return nullptr;
}

bool CpuBackend::supports_op(const std::string& domain, const std::string& op, int opset) const {
  return find(domain, op, opset) != nullptr;
}

Result<std::unique_ptr<OpKernel>> CpuBackend::create_kernel(const KernelCreateContext& ctx) const {
  const KernelDef* k = find(ctx.node.domain, ctx.node.op_type, ctx.node.opset);
  if (k == nullptr) return unsupported("no CPU kernel for opset ", ctx.node.opset);
  return k->create(ctx);
}

}  // namespace orchard::cpu
