// Reading files named by untrusted input (model files, external data, tensor files): only regular files
// are read, never FIFOs, devices or folders; sizes are checked against a cap before any byte is read.
// Layer: core (depends on include/orchard only). No exceptions escape.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "orchard/status.hpp"

namespace orchard {

// Returns the bytes [offset, offset + length) of the regular file at `path` (length -1: to the end).
// Errors (messages start with `component`, name the path): not_found when it does not exist,
// invalid_argument when it is a folder, FIFO, device or socket, or the range is past its end,
// resource_exhausted when the bytes to read exceed `max_bytes`.
Result<std::string> read_regular_file(const std::filesystem::path& path, std::string_view component, uint64_t max_bytes,
                                      int64_t offset = 0, int64_t length = -1);

}  // namespace orchard
