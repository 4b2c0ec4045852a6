#include "backends/coreml/coreml_backend.hpp"

#include <algorithm>
#include <set>

#include "backends/coreml/coreml_factory.hpp"
#include "backends/coreml/mil_reader.hpp"
#include "backends/coreml/op_builder.hpp"
#include "backends/cpu/cpu_backend.hpp"
#include "runtime/executor.hpp"
#include "runtime/partitioner.hpp"

namespace orchard::coreml {

namespace {

// The feature type of an ONNX value: floats travel as float32, integers and bools as int32.
DType feature_dtype(DType t) { return (t == DType::float32 || t == DType::float16) ? DType::float32 : DType::int32; }

template <class To, class From>
void convert_elements(const From* src, To* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<To, float16>) {
      dst[i] = float16(static_cast<float>(src[i]));
    } else if constexpr (std::is_same_v<From, float16>) {
      dst[i] = static_cast<To>(static_cast<float>(src[i]));
    } else {
      dst[i] = static_cast<To>(src[i]);
    }
  }
}

template <class To>
Status convert_from(const Tensor& src, Tensor& dst) {
  To* out = dst.data<To>();
  const int64_t n = src.numel();
  switch (src.dtype()) {
    case DType::float32: convert_elements(src.data<float>(), out, n); break;
    case DType::float16: convert_elements(src.data<float16>(), out, n); break;
    case DType::int64: convert_elements(src.data<int64_t>(), out, n); break;
    case DType::int32: convert_elements(src.data<int32_t>(), out, n); break;
    case DType::boolean: convert_elements(src.data<bool>(), out, n); break;
    default: return unsupported("[coreml] cannot cast ", src.description(), " for a Core ML feature");
  }
  return Status::OK();
}

// A compiled partition: the program's runner and the mapping between the partition's edge values (in
// PartitionSpec order) and the program's features.
class CoreMlExecutable final : public runtime::Executable {
 public:
  CoreMlExecutable(std::unique_ptr<ProgramRunner> runner, std::vector<int> input_of_feature,
                   std::vector<int> feature_of_output, std::vector<DType> input_types, std::vector<DType> output_types)
      : runner_(std::move(runner)),
        input_of_feature_(std::move(input_of_feature)),
        feature_of_output_(std::move(feature_of_output)),
        input_types_(std::move(input_types)),
        output_types_(std::move(output_types)) {}

  Status run(runtime::ExecContext& ctx) const override {
    std::vector<Tensor> features;
    features.reserve(input_of_feature_.size());
    for (size_t f = 0; f < input_of_feature_.size(); ++f) {
      const Value* v = ctx.inputs[static_cast<size_t>(input_of_feature_[f])];
      if (!v || !v->is_tensor()) return invalid_argument("[coreml] program input ", f, " is missing or not a tensor");
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, cast_feature(v->tensor(), input_types_[f], ctx.allocator));
      features.push_back(std::move(t));
    }
    ORCHARD_ASSIGN_OR_RETURN(std::vector<Tensor> outs, runner_->run(std::move(features), ctx.env));
    for (size_t o = 0; o < feature_of_output_.size() && o < ctx.outputs.size(); ++o) {
      const size_t f = static_cast<size_t>(feature_of_output_[o]);
      if (f >= outs.size()) return internal_error("[coreml] the program returned ", outs.size(), " outputs, expected more");
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, cast_feature(outs[f], output_types_[o], ctx.allocator));
      ctx.outputs[o] = Value(std::move(t));
    }
    return Status::OK();
  }

  std::vector<std::pair<std::string, int>> device_units() const override { return runner_->units(); }

 private:
  std::unique_ptr<ProgramRunner> runner_;
  std::vector<int> input_of_feature_;   // per program input: index in PartitionSpec::inputs
  std::vector<int> feature_of_output_;  // per PartitionSpec output: index among the program's outputs
  std::vector<DType> input_types_;      // per program input: its feature dtype
  std::vector<DType> output_types_;     // per PartitionSpec output: the ONNX dtype
};

// The verification executor: the package read back by the MIL reader (MIL semantics expressed as
// ONNX-domain nodes, fp16 programs as fp16 graphs) and run by the CPU reference kernels.
class SimulatedRunner final : public ProgramRunner {
 public:
  explicit SimulatedRunner(std::shared_ptr<runtime::CompiledGraph> g) : g_(std::move(g)) {}
  // The program's operations as the MIL reader expressed them, all run by the CPU reference kernels.
  std::vector<std::pair<std::string, int>> units() const override {
    return {{"cpu-simulated", static_cast<int>(g_->graph().nodes.size())}};
  }
  Result<std::vector<Tensor>> run(std::vector<Tensor> inputs, runtime::RunEnv& outer) const override {
    std::vector<Value> values(inputs.begin(), inputs.end());
    runtime::RunEnv env;
    env.pool = outer.pool;
    env.allocator = outer.allocator;
    env.shared_allocator = outer.shared_allocator;
    env.abort = outer.abort;
    env.deadline = outer.deadline;
    ORCHARD_ASSIGN_OR_RETURN(auto outs, g_->run(values, env, nullptr));
    std::vector<Tensor> tensors;
    for (auto& v : outs) {
      if (!v.is_tensor()) return internal_error("[coreml] simulated program produced a non-tensor output");
      tensors.push_back(v.tensor());
    }
    return tensors;
  }

 private:
  std::shared_ptr<runtime::CompiledGraph> g_;
};

Result<std::unique_ptr<ProgramRunner>> load_simulated(const Converted& program, const std::shared_ptr<runtime::Backend>& cpu) {
  ORCHARD_ASSIGN_OR_RETURN(graph::Graph pg, read_program(program.package));
  if (pg.inputs.size() != program.inputs.size() || pg.outputs.size() != program.outputs.size()) {
    return internal_error("[coreml] the program read back has ", pg.inputs.size(), " inputs and ", pg.outputs.size(),
                          " outputs; the converter wrote ", program.inputs.size(), " and ", program.outputs.size());
  }
  auto g = std::make_shared<graph::Graph>(std::move(pg));
  ORCHARD_ASSIGN_OR_RETURN(auto compiled, runtime::CompiledGraph::compile(g, {cpu}, nullptr));
  return std::unique_ptr<ProgramRunner>(new SimulatedRunner(std::move(compiled)));
}

std::string describe(const BackendOptions& o) {
  const std::string precision = o.convert.precision == Precision::fp16 ? "fp16" : "fp32";
  const std::string program = "ML Program " + precision + ", " + target_name(o.convert.target);
  if (o.executor == Executor::native) return "Core ML (" + program + ")";
  return "coreml (simulated on the CPU: " + program + " read back by the MIL reader and run by the reference kernels)";
}

}  // namespace

std::vector<std::pair<std::string, int>> count_units(const std::vector<std::string>& device_of_operation) {
  std::vector<std::pair<std::string, int>> out = {{"ane", 0}, {"gpu", 0}, {"cpu", 0}};
  for (const auto& d : device_of_operation) {
    if (d.empty()) continue;
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& u) { return u.first == d; });
    if (it == out.end()) it = out.insert(out.end(), {d, 0});
    ++it->second;
  }
  std::erase_if(out, [](const auto& u) { return u.second == 0; });
  return out;
}

Result<Tensor> cast_feature(const Tensor& t, DType dtype, Allocator& allocator) {
  if (t.dtype() == dtype || dtype == DType::undefined) return t;
  ORCHARD_ASSIGN_OR_RETURN(Tensor out, Tensor::create(dtype, t.shape(), allocator));
  switch (dtype) {
    case DType::float32: ORCHARD_RETURN_IF_ERROR(convert_from<float>(t, out)); break;
    case DType::float16: ORCHARD_RETURN_IF_ERROR(convert_from<float16>(t, out)); break;
    case DType::int64: ORCHARD_RETURN_IF_ERROR(convert_from<int64_t>(t, out)); break;
    case DType::int32: ORCHARD_RETURN_IF_ERROR(convert_from<int32_t>(t, out)); break;
    case DType::boolean: ORCHARD_RETURN_IF_ERROR(convert_from<bool>(t, out)); break;
    default: return unsupported("[coreml] cannot cast to ", dtype_name(dtype), " for a Core ML feature");
  }
  return out;
}

CoreMlBackend::CoreMlBackend(BackendOptions options) : options_(std::move(options)) {
  info_.name = options_.name;
  info_.kind = runtime::DeviceKind::npu;
  info_.description = describe(options_);
  info_.caps.dynamic_shapes = false;
  info_.caps.fp16 = options_.convert.precision == Precision::fp16;
  if (options_.executor == Executor::simulated) {
    SessionOptions cpu_options;
    cpu_options.intra_op_threads = 1;
    cpu_ = std::make_shared<cpu::CpuBackend>(cpu_options);
  }
}

bool CoreMlBackend::has_op(const std::string& domain, const std::string& op, int opset) const {
  return (domain.empty() || domain == "ai.onnx") && find_op_builder(op, opset) != nullptr;
}

runtime::Capability CoreMlBackend::get_capability(const runtime::GraphView& view) const {
  runtime::Capability cap;
  const graph::Graph& g = view.graph();
  std::vector<int> take;
  for (int n : view.candidates()) {
    Status s = check_node(g, view.node(n), options_.convert);
    if (s.ok()) {
      take.push_back(n);
    } else {
      cap.rejected.push_back({n, s.message()});
    }
  }
  // A Core ML model needs an input: a set reading only constants is left to the others (the optimizer
  // folds such nodes, so this is rare).
  for (auto& group : runtime::convex_groups(view, take)) {
    const std::set<int> inside(group.begin(), group.end());
    bool reads_input = false;
    for (int n : group) {
      for (const auto& in : view.node(n).inputs) {
        if (!in.empty() && !view.constant(in) && !inside.count(view.producer(in))) reads_input = true;
      }
    }
    if (reads_input) {
      cap.partitions.push_back(std::move(group));
      continue;
    }
    for (int n : group) cap.rejected.push_back({n, "its Core ML partition would read only constants (a model needs an input)"});
  }
  return cap;
}

Result<std::unique_ptr<runtime::Executable>> CoreMlBackend::compile(const runtime::CompileContext& ctx) const {
  const runtime::PartitionSpec& spec = ctx.partition;
  const graph::Graph& g = *spec.graph;
  const std::vector<size_t> nodes(spec.nodes.begin(), spec.nodes.end());
  ORCHARD_ASSIGN_OR_RETURN(Converted program, convert(g, nodes, options_.convert));
  if (options_.on_package) ORCHARD_RETURN_IF_ERROR(options_.on_package(program));

  // Map the partition's edge values onto the program's features (the converter orders them itself).
  auto index_in = [](const std::vector<std::string>& list, const std::string& name) {
    auto it = std::find(list.begin(), list.end(), name);
    return it == list.end() ? -1 : static_cast<int>(it - list.begin());
  };
  const runtime::GraphView view(g, spec.nodes);
  std::vector<int> input_of_feature, feature_of_output;
  std::vector<DType> input_types, output_types;
  for (const auto& name : program.inputs) {
    const int i = index_in(spec.inputs, name);
    if (i < 0) return internal_error("[coreml] program input '", name, "' is not an input of the partition");
    input_of_feature.push_back(i);
    input_types.push_back(feature_dtype(view.type_of(name).dtype));
  }
  for (const auto& name : spec.outputs) {
    const int f = index_in(program.outputs, name);
    if (f < 0) return internal_error("[coreml] partition output '", name, "' is not an output of the program");
    feature_of_output.push_back(f);
    output_types.push_back(view.type_of(name).dtype);
  }

  std::unique_ptr<ProgramRunner> runner;
  if (options_.executor == Executor::native) {
    ORCHARD_ASSIGN_OR_RETURN(runner, load_native(program, options_));
  } else {
    ORCHARD_ASSIGN_OR_RETURN(runner, load_simulated(program, cpu_));
  }
  compiled_.fetch_add(1);
  mil_operations_.fetch_add(program.operations);
  return std::unique_ptr<runtime::Executable>(new CoreMlExecutable(std::move(runner), std::move(input_of_feature),
                                                                   std::move(feature_of_output), std::move(input_types),
                                                                   std::move(output_types)));
}

std::shared_ptr<runtime::Backend> make_coreml_backend(const SessionOptions& options) {
  BackendOptions o;
  if (native_available()) {
    o.executor = Executor::native;
    return std::make_shared<CoreMlBackend>(std::move(o));
  }
  // Elsewhere the simulated executor exists to verify the backend; it is no accelerator, so it joins the
  // chain only when named.
  const auto& want = options.backend_preference;
  if (std::find(want.begin(), want.end(), o.name) == want.end()) return nullptr;
  return std::make_shared<CoreMlBackend>(std::move(o));
}

}  // namespace orchard::coreml
