// The compiled-in backends, in fallback-chain order. One explicit list; no self-registration.
#include "backends/coreml/coreml_factory.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "backends/cuda/cuda_factory.hpp"
#include "runtime/backend.hpp"

namespace orchard::runtime {

std::vector<std::shared_ptr<Backend>> available_backends(const SessionOptions& options) {
  std::vector<std::shared_ptr<Backend>> chain(options.custom_backends.begin(), options.custom_backends.end());
  // Accelerator backends are added here, ahead of the CPU, as they land.
  // Core ML heads the chain on Apple platforms; elsewhere its simulated executor is there only when named.
  if (auto coreml = coreml::make_coreml_backend(options)) chain.push_back(std::move(coreml));
  if (auto cuda = cuda::make_cuda_backend(options)) chain.push_back(std::move(cuda));
  chain.push_back(std::make_shared<cpu::CpuBackend>(options));
  return chain;
}

}  // namespace orchard::runtime
