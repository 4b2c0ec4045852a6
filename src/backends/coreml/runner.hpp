// macOS runner for converted packages (runner.mm, Objective-C++, built only on Apple platforms).
// NOT EXECUTED: no Mac exists in this project; written against ../shared/research/coreml-format.md §6.
// Every decision (what to convert, shapes, cache keys) is made by portable, tested code; this only calls
// Apple's API.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backends/coreml/model_cache.hpp"
#include "orchard/session.hpp"

namespace orchard::coreml {

enum class ComputeUnits : unsigned char { cpu_and_ne, all, cpu_and_gpu, cpu_only };

// Returns "cpu_and_ne" etc. (also the cache key part).
const char* compute_units_name(ComputeUnits u);

// One op's placement from MLComputePlan (macOS 14.4+).
struct OpPlacement {
  std::string op;      // MIL operator name, e.g. "ios16.conv"
  std::string device;  // "ane", "gpu", "cpu"
};

// The cache's compiler on macOS: +[MLModel compileModelAtURL:error:], result moved to `out_dir`.
Status compile_with_coreml(const std::filesystem::path& package_dir, const std::filesystem::path& out_dir);

// A loaded Core ML model.
class Runner {
 public:
  // Compiles (through `cache`) and loads `pkg` with `units`.
  static Result<std::unique_ptr<Runner>> load(const Package& pkg, ComputeUnits units, ModelCache& cache);
  ~Runner();
  // Runs one prediction: inputs bound zero-copy, outputs copied out honouring strides. One call at a time.
  Result<NamedValues> run(const NamedValues& inputs) const;
  // Returns each op's preferred device (empty before macOS 14.4).
  Result<std::vector<OpPlacement>> placement() const;
  // Returns whether this Mac has a Neural Engine (MLAllComputeDevices on macOS 14+, else Apple Silicon).
  static bool has_neural_engine();

  struct Impl;

 private:
  explicit Runner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchard::coreml
