// Compiled-model cache: compiled .mlmodelc directories kept under a cache folder, keyed by a content hash
// of the package bytes, the OS version and the compute units, size-capped with least-recently-used
// eviction. Portable: the compiler is a callback (Core ML's on macOS, a fake in tests).
// Layer: depends on core only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

#include "backends/coreml/package.hpp"
#include "orchard/status.hpp"

namespace orchard::coreml {

// Everything a compiled model depends on besides the package bytes.
struct CacheKeyParts {
  std::string os_version;     // e.g. "14.4.1 (23E224)"
  std::string compute_units;  // "cpu_and_ne", "all", "cpu_and_gpu", "cpu_only"
};

// Returns the cache key: 16 hex digits of a hash over the package's model and weight bytes and `parts`.
std::string cache_key(const Package& pkg, const CacheKeyParts& parts);

class ModelCache {
 public:
  // Compiles the package at `package_dir` into the (not yet existing) directory `out_dir`.
  using Compiler = std::function<Status(const std::filesystem::path& package_dir, const std::filesystem::path& out_dir)>;

  // `dir` is created when missing; `max_bytes` caps the total size of the cached compiled models.
  ModelCache(std::filesystem::path dir, uint64_t max_bytes, Compiler compiler);

  // Returns the compiled model for `pkg`: the cached one (its use time refreshed) or a fresh compile
  // (written to a temporary package, compiled, moved into place), then evicts least recently used
  // entries until the cache fits `max_bytes` (the entry just returned is never evicted).
  Result<std::filesystem::path> get(const Package& pkg, const CacheKeyParts& parts);

  uint64_t hits() const { return hits_; }
  uint64_t compiles() const { return compiles_; }
  // Returns the bytes the cached entries occupy now.
  uint64_t size_bytes() const;

 private:
  void evict(const std::string& keep);

  std::filesystem::path dir_;
  uint64_t max_bytes_;
  Compiler compiler_;
  mutable std::mutex mu_;
  uint64_t hits_ = 0, compiles_ = 0;
};

}  // namespace orchard::coreml
