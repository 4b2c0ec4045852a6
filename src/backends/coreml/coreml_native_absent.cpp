// Platforms without Core ML (everything but Apple's): the native executor does not exist.
#include "backends/coreml/coreml_backend.hpp"

namespace orchard::coreml {

bool native_available() { return false; }

Result<std::unique_ptr<ProgramRunner>> load_native(const Converted&, const BackendOptions&) {
  return unavailable("[coreml] Core ML exists only on Apple platforms");
}

}  // namespace orchard::coreml
