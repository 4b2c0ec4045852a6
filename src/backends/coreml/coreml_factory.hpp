// The one entry point the backend registry uses for Core ML. Layer: backends; defined by coreml_backend.cpp.
#pragma once

#include <memory>

#include "orchard/session.hpp"
#include "runtime/backend.hpp"

namespace orchard::coreml {

// Returns the Core ML backend: on Apple platforms the native one (it heads the chain); elsewhere the
// simulated one (the verification executor), only when `options.backend_preference` names "coreml";
// else null.
std::shared_ptr<runtime::Backend> make_coreml_backend(const SessionOptions& options);

}  // namespace orchard::coreml
