// Builds without CUDA (ORCHARD_CUDA=off, no toolkit, cross builds): there is never a CUDA backend.
#include "backends/cuda/cuda_factory.hpp"

namespace orchard::cuda {

std::shared_ptr<runtime::Backend> make_cuda_backend(const SessionOptions&) { return nullptr; }

}  // namespace orchard::cuda
