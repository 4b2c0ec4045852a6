// NOT EXECUTED, NOT BUILT BY APPLE'S COMPILER: no Mac exists in this project (like runner.mm, which it uses);
// clang checks it here against declarations written from Apple's docs (tests/backends/coreml/objc_check).
// The native executor: each partition's package compiled through the compiled-model cache and loaded
// by Core ML with the configured compute units; inputs and outputs are the program's features.
#include <cstdlib>
#include <filesystem>

#include "backends/coreml/coreml_backend.hpp"
#include "backends/coreml/runner.hpp"

namespace orchard::coreml {

namespace {

// One cache per process: $ORCHARD_COREML_CACHE, else <temp>/orchard-coreml-cache, capped at 2 GiB.
ModelCache& process_cache() {
  static ModelCache cache = [] {
    const char* dir = std::getenv("ORCHARD_COREML_CACHE");
    std::filesystem::path path = dir ? std::filesystem::path(dir) : std::filesystem::temp_directory_path() / "orchard-coreml-cache";
    return ModelCache(path, uint64_t{2} << 30, compile_with_coreml);
  }();
  return cache;
}

class NativeRunner final : public ProgramRunner {
 public:
  NativeRunner(std::unique_ptr<Runner> runner, std::vector<std::string> in, std::vector<std::string> out)
      : runner_(std::move(runner)), in_(std::move(in)), out_(std::move(out)) {}
  Result<std::vector<Tensor>> run(std::vector<Tensor> inputs, runtime::RunEnv&) const override {
    NamedValues named;
    for (size_t i = 0; i < inputs.size() && i < in_.size(); ++i) named.emplace_back(in_[i], Value(std::move(inputs[i])));
    ORCHARD_ASSIGN_OR_RETURN(NamedValues got, runner_->run(named));  // Runner serializes calls itself
    std::vector<Tensor> outs;
    for (const auto& feature : out_) {
      const Value* v = nullptr;
      for (const auto& [name, value] : got) {
        if (name == feature) v = &value;
      }
      if (!v || !v->is_tensor()) return internal_error("[coreml] Core ML returned no output '", feature, "'");
      outs.push_back(v->tensor());
    }
    return outs;
  }

 private:
  std::unique_ptr<Runner> runner_;
  std::vector<std::string> in_, out_;
};

}  // namespace

bool native_available() { return true; }

Result<std::unique_ptr<ProgramRunner>> load_native(const Converted& program, const BackendOptions& options) {
  ORCHARD_ASSIGN_OR_RETURN(auto runner, Runner::load(program.package, options.units, process_cache()));
  return std::unique_ptr<ProgramRunner>(new NativeRunner(std::move(runner), program.input_features, program.output_features));
}

}  // namespace orchard::coreml
