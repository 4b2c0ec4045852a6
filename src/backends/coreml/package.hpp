// .mlpackage directories: Manifest.json, Data/com.apple.CoreML/model.mlmodel, .../weights/weight.bin.
// Layer: portable, depends on core only (the model bytes are an opaque serialized protobuf here).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "orchard/status.hpp"

namespace orchard::coreml {

inline constexpr const char* kPackageAuthor = "com.apple.CoreML";
inline constexpr const char* kModelItemName = "model.mlmodel";
inline constexpr const char* kWeightsItemName = "weights";
inline constexpr const char* kWeightFileName = "weight.bin";
// How a program names its weight file (relative to the folder holding model.mlmodel).
inline constexpr const char* kWeightFileRef = "@model_path/weights/weight.bin";

// The contents of one package, in memory.
struct Package {
  std::string model;                // serialized CoreML.Specification.Model
  std::vector<std::byte> weights;   // weight.bin (blob storage v2); empty vector still writes a header-only file
};

// Returns Manifest.json text for the two items. Item identifiers are UUID-shaped strings derived from
// `content_key`, so the same package contents give the same bytes (a cache key stays stable).
std::string manifest_json(const std::string& content_key);

// Writes `pkg` as directory `dir` (its name must end in ".mlpackage"); an existing package there is replaced.
Status write_package(const Package& pkg, const std::filesystem::path& dir);

// Reads a package: parses Manifest.json, checks its version and that every item's Data/<path> exists and
// that the root model item is a file, then loads model.mlmodel and weights/weight.bin (if present).
Result<Package> read_package(const std::filesystem::path& dir);

// Returns a 64-bit FNV-1a hash of `bytes` continuing from `seed` (content keys, cache keys).
uint64_t fnv1a64(const void* bytes, size_t size, uint64_t seed = 0xcbf29ce484222325ull);

}  // namespace orchard::coreml
