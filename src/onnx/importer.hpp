// ONNX import: bytes or file → validated graph::Model (checker, shape inference, external data,
// Constant folding into initializers, function-op expansion where no kernel exists).
// Layer: depends on core and graph; the runtime calls it. No backend knowledge beyond `has_kernel`.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

#include "graph/graph.hpp"
#include "orchard/status.hpp"

namespace orchard::onnx_import {

struct ImportOptions {
  // Returns whether some backend runs (domain, op, opset). Ops without a kernel whose ONNX schema
  // defines a function body are expanded into that body; null: never expand.
  std::function<bool(const std::string& domain, const std::string& op, int opset)> has_kernel;
  // Largest model file (or byte buffer) read; protobuf cannot parse more than 2 GiB anyway.
  uint64_t max_model_bytes = uint64_t{2} << 30;
  // Most bytes of external data one model may read, all its tensors together.
  uint64_t max_external_data_bytes = uint64_t{64} << 30;
};

// Lowest and highest versions Orchard accepts.
inline constexpr int64_t kMinIrVersion = 3;
inline constexpr int64_t kMaxIrVersion = 8;
inline constexpr int kMaxDefaultOpset = 17;

// Imports the model at `path` (a regular file); external data is read relative to its folder. No
// exception escapes: every failure is a Status naming the file and what was wrong.
Result<graph::Model> import_model_file(const std::filesystem::path& path, const ImportOptions& options);
// Imports a model from bytes; external data is read relative to `base_dir`.
Result<graph::Model> import_model_bytes(std::span<const std::byte> bytes, const std::filesystem::path& base_dir,
                                        const ImportOptions& options);

}  // namespace orchard::onnx_import
