// The Core ML backend for Runtime v2: a compiling backend (docs/architecture.md) over the converter.
//   capability  the converter's check_node per candidate node (its reason when declined), claimed nodes
//               grouped by runtime::convex_groups; shapes are the ones the graph knows (static only)
//   compile     one partition → one ML Program (fp16 by default) → a ProgramRunner: Core ML itself on
//               Apple platforms (coreml_native.*), elsewhere the verification executor (the program read
//               back by the MIL reader and run by the CPU kernels)
// Layer: backends. The registry creates it through make_coreml_backend (coreml_factory.hpp).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/coreml/converter.hpp"
#include "backends/coreml/runner.hpp"
#include "runtime/backend.hpp"

namespace orchard::runtime {
struct RunEnv;
}  // namespace orchard::runtime

namespace orchard::coreml {

// Runs one converted program. Inputs come in Converted::inputs order, typed as the program's features
// (float32 or int32); outputs come back in Converted::outputs order, typed likewise.
class ProgramRunner {
 public:
  virtual ~ProgramRunner() = default;
  // Runs the program once; const and safe to call from concurrent runs.
  virtual Result<std::vector<Tensor>> run(std::vector<Tensor> inputs, runtime::RunEnv& env) const = 0;
  // Returns where the program's operations run, as (compute unit, count): Core ML's compute plan natively.
  virtual std::vector<std::pair<std::string, int>> units() const = 0;
};

// Returns the per-unit operation counts of a compute plan's per-operation devices ("ane", "gpu", "cpu" first, in
// that order, then any other name), skipping empty device names.
std::vector<std::pair<std::string, int>> count_units(const std::vector<std::string>& device_of_operation);

// How the backend turns a package into a ProgramRunner.
enum class Executor : unsigned char {
  native,     // Core ML (Apple platforms only; written, not executed in this project)
  simulated,  // the verification executor: MIL reader + CPU reference kernels, on every platform
};

struct BackendOptions {
  ConvertOptions convert;                 // precision (fp16 by default: the Neural Engine's) and target
  Executor executor = Executor::simulated;
  ComputeUnits units = ComputeUnits::cpu_and_ne;  // native only: MLModelConfiguration.computeUnits
  std::string name = "coreml";            // the name in chains and reports
  // (optional) Called with each partition's package before it is loaded; an error fails that compile
  // (the runtime then moves the partition to the next backend). Tests inject faults; tools may save it.
  std::function<Status(const Converted&)> on_package;
};

class CoreMlBackend final : public runtime::Backend {
 public:
  explicit CoreMlBackend(BackendOptions options);
  const runtime::DeviceInfo& device() const override { return info_; }
  runtime::Capability get_capability(const runtime::GraphView& view) const override;
  Result<std::unique_ptr<runtime::Executable>> compile(const runtime::CompileContext& ctx) const override;
  bool has_op(const std::string& domain, const std::string& op, int opset) const override;
  // Returns the number of partitions compiled so far, and the MIL operations written for them.
  int64_t compiled() const { return compiled_.load(); }
  int64_t mil_operations() const { return mil_operations_.load(); }
  // Returns the options the backend was made with.
  const BackendOptions& options() const { return options_; }

 private:
  BackendOptions options_;
  runtime::DeviceInfo info_;
  std::shared_ptr<runtime::Backend> cpu_;  // the simulated executor's kernels
  mutable std::atomic<int64_t> compiled_{0}, mil_operations_{0};
};

// Returns `t` as `dtype` (float32, float16, int64, int32, bool); `t` itself when it already is.
Result<Tensor> cast_feature(const Tensor& t, DType dtype, Allocator& allocator);

// The native executor (coreml_native.mm on Apple platforms, coreml_native_absent.cpp elsewhere).
// Returns whether Core ML can run programs on this machine.
bool native_available();
// Compiles (through the compiled-model cache) and loads `program` with Core ML.
Result<std::unique_ptr<ProgramRunner>> load_native(const Converted& program, const BackendOptions& options);

}  // namespace orchard::coreml
