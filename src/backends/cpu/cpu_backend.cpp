#include "backends/cpu/cpu_backend.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cpu_features.hpp"
#if defined(ORCHARD_HAVE_DNNL)
#include "backends/cpu/opt/dnnl_util.hpp"
#endif
#include "orchard/thread_pool.hpp"

namespace orchard::cpu {

namespace {

runtime::DeviceInfo cpu_device_info(const SessionOptions& options) {
  runtime::DeviceInfo info;
  info.name = "cpu";
  info.kind = runtime::DeviceKind::cpu;
#if defined(__aarch64__)
  info.description = "aarch64";
#elif defined(__x86_64__)
  info.description = "x86-64";
#else
  info.description = "generic";
#endif
  info.description += " (" + cpu_features_string(cpu_features()) + ")";
  const int threads = options.intra_op_threads > 0 ? options.intra_op_threads : ThreadPool::default_threads();
  info.description += ", " + std::to_string(threads) + " threads";
  info.caps.fp16 = true;
  info.caps.int8 = true;
  return info;
}

// True when the graph should give this CPU its 2-D convolutions in NHWC: oneDNN's FusedConv variant is built in
// (conv_dnnl.cpp) and can run (AVX2 or AVX-512), unless ORCHARD_CPU_CHANNELS_LAST=0 or ORCHARD_ONEDNN=0 (comparisons).
bool wants_channels_last() {
#if defined(ORCHARD_HAVE_DNNL)
  const char* env = std::getenv("ORCHARD_CPU_CHANNELS_LAST");
  if (opt::dnnl_util::disabled_by_env() || (env != nullptr && std::strcmp(env, "0") == 0)) return false;
  return (cpu_features() & (kCpuAvx2 | kCpuAvx512)) != 0;
#else
  return false;
#endif
}

}  // namespace

CpuBackend::CpuBackend(const SessionOptions& options)
    : runtime::KernelBackend(cpu_device_info(options), all_kernels(), cpu_features(), /*static_table=*/true),
      channels_last_(wants_channels_last()) {}

CpuBackend::CpuBackend(runtime::DeviceInfo info, std::span<const KernelDef> table, uint32_t features, bool static_table)
    : runtime::KernelBackend(std::move(info), table, features, static_table) {}

std::shared_ptr<CpuBackend> CpuBackend::reference_only(const SessionOptions& options) {
  static const std::vector<KernelDef> reference = [] {
    std::vector<KernelDef> out;
    for (const KernelDef& k : all_kernels()) {
      if (k.priority == 0 && k.cpu_features == 0) out.push_back(k);
    }
    return out;
  }();
  runtime::DeviceInfo info = cpu_device_info(options);
  info.name = "cpu-reference";
  info.description += ", reference kernels only";
  return std::shared_ptr<CpuBackend>(new CpuBackend(std::move(info), reference, 0, /*static_table=*/true));
}

}  // namespace orchard::cpu
