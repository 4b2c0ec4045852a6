// The compiled-in backends, in fallback-chain order. One explicit list; no self-registration.
#include "backends/cpu/cpu_backend.hpp"
#include "runtime/backend.hpp"

#include <mutex>

namespace orchard::runtime {

namespace {
std::mutex& extra_mutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::shared_ptr<Backend>>& extra_backends() {
  static std::vector<std::shared_ptr<Backend>> extra;
  return extra;
}
}  // namespace

void set_extra_backends_for_testing(std::vector<std::shared_ptr<Backend>> backends) {
  std::lock_guard<std::mutex> lock(extra_mutex());
  extra_backends() = std::move(backends);
}

std::vector<std::shared_ptr<Backend>> available_backends(const SessionOptions& options) {
  std::vector<std::shared_ptr<Backend>> chain;
  {
    std::lock_guard<std::mutex> lock(extra_mutex());
    chain = extra_backends();
  }
  // Accelerator backends are added here, ahead of the CPU, as they land.
  chain.push_back(std::make_shared<cpu::CpuBackend>(options));
  return chain;
}

}  // namespace orchard::runtime
