#include "backends/cpu/cpu_backend.hpp"

#include "core/cpu_features.hpp"
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

}  // namespace

CpuBackend::CpuBackend(const SessionOptions& options)
    : runtime::KernelBackend(cpu_device_info(options), all_kernels(), cpu_features()) {}

}  // namespace orchard::cpu
