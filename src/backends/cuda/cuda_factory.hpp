// The one entry point the backend registry uses: the CUDA backend when it is compiled in and a GPU is present.
// Layer: backends. Defined by cuda_backend.cpp (CUDA builds) or cuda_absent.cpp (builds without CUDA).
#pragma once

#include <memory>

#include "orchard/session.hpp"
#include "runtime/backend.hpp"

namespace orchard::cuda {

// Returns the CUDA backend on device 0, or null when CUDA is not compiled in or no usable GPU is present.
std::shared_ptr<runtime::Backend> make_cuda_backend(const SessionOptions& options);

}  // namespace orchard::cuda
