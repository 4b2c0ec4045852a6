#include "testing/test_backends.hpp"

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "backends/cpu/cpu_backend.hpp"
#include "backends/float16_partition.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "core/cpu_features.hpp"
#include "runtime/executor.hpp"
#include "runtime/partitioner.hpp"

namespace orchard::testing {

namespace {

runtime::DeviceInfo info_named(const std::string& name, runtime::DeviceKind kind) {
  runtime::DeviceInfo info;
  info.name = name;
  info.kind = kind;
  info.description = "test backend";
  return info;
}

// Tensor ops the simulated device and the test compiler take (no subgraphs, sequences, strings or
// random numbers): enough to cover most of the conformance suite and the real models.
const std::set<std::string, std::less<>>& tensor_ops() {
  static const std::set<std::string, std::less<>> ops = {
      "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
      "AveragePool", "BatchNormalization", "BitShift", "Cast", "Ceil", "Celu", "Clip", "Concat", "Conv",
      "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "Div", "Einsum", "Elu", "Equal", "Erf", "Exp",
      "Expand", "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gemm", "GlobalAveragePool",
      "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Hardmax", "Identity",
      "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual",
      "Log", "LogSoftmax", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mish", "Mod", "Mul", "Neg", "Not",
      "Or", "PRelu", "Pad", "Pow", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
      "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape",
      "Resize", "Round", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax",
      "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh",
      "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Where", "Xor"};
  return ops;
}

// Inputs the simulated device's kernels read on the host (shapes, axes, starts).
uint32_t host_inputs_of(std::string_view op) {
  static const std::map<std::string, uint32_t, std::less<>> m = {
      {"Reshape", 0b10}, {"Expand", 0b10}, {"Tile", 0b10}, {"Unsqueeze", 0b10}, {"Squeeze", 0b10},
      {"Slice", 0b11110}, {"Pad", 0b1110}, {"Split", 0b10}, {"TopK", 0b10}, {"ReduceSum", 0b10}};
  auto it = m.find(op);
  return it == m.end() ? 0 : it->second;
}

// ---- gate and faulty ----

}  // namespace

class GateKernel final : public runtime::OpKernel {
 public:
  explicit GateKernel(GateBackend* b) : b_(b) {}
  static Result<std::unique_ptr<runtime::OpKernel>> create(const runtime::KernelCreateContext& ctx) {
    auto* b = const_cast<GateBackend*>(static_cast<const GateBackend*>(ctx.backend));
    return std::unique_ptr<runtime::OpKernel>(new GateKernel(b));
  }
  Status run(runtime::OpContext& ctx) const override {
    b_->entered_.fetch_add(1);
    std::unique_lock<std::mutex> lock(b_->mu_);
    while (!b_->open_) {
      ORCHARD_RETURN_IF_ERROR(ctx.check_abort());
      b_->cv_.wait_for(lock, std::chrono::milliseconds(1));
    }
    lock.unlock();
    ctx.set_output(0, ctx.value(0));
    return Status::OK();
  }

 private:
  GateBackend* b_;
};

namespace {
const runtime::KernelDef kGateTable[] = {{"", "Identity", 1, runtime::kVerifiedOpset, GateKernel::create}};
}  // namespace

GateBackend::GateBackend() : KernelBackend(info_named("gate", runtime::DeviceKind::cpu), kGateTable, 0) {}

void GateBackend::open() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
  }
  cv_.notify_all();
}

bool GateBackend::wait_entered(int n) const {
  for (int i = 0; i < 5000 && entered_.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return entered_.load() >= n;
}

class FaultyKernel final : public runtime::OpKernel {
 public:
  explicit FaultyKernel(FaultyBackend* b) : b_(b) {}
  static Result<std::unique_ptr<runtime::OpKernel>> create(const runtime::KernelCreateContext& ctx) {
    if (ctx.node.op_type == "Sigmoid") return unavailable("injected compile fault");
    auto* b = const_cast<FaultyBackend*>(static_cast<const FaultyBackend*>(ctx.backend));
    return std::unique_ptr<runtime::OpKernel>(new FaultyKernel(b));
  }
  Status run(runtime::OpContext&) const override {
    b_->runs_.fetch_add(1);
    return unavailable("injected run fault");
  }

 private:
  FaultyBackend* b_;
};

namespace {
const runtime::KernelDef kFaultyTable[] = {{"", "Relu", 1, runtime::kVerifiedOpset, FaultyKernel::create},
                                           {"", "Sigmoid", 1, runtime::kVerifiedOpset, FaultyKernel::create}};
}  // namespace

FaultyBackend::FaultyBackend() : KernelBackend(info_named("faulty", runtime::DeviceKind::cpu), kFaultyTable, 0) {}

// ---- simulated device ----

void* SimDeviceAllocator::allocate(size_t bytes, size_t alignment) {
  if (!budget_->try_charge(static_cast<int64_t>(bytes))) return nullptr;
  const size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* p = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
  if (p) {
    live_.fetch_add(static_cast<int64_t>(bytes));
  } else {
    budget_->release(static_cast<int64_t>(bytes));
  }
  return p;
}

void SimDeviceAllocator::deallocate(void* p, size_t bytes) {
  live_.fetch_sub(static_cast<int64_t>(bytes));
  budget_->release(static_cast<int64_t>(bytes));
  std::free(p);
}

bool SimDeviceTransfer::can_copy(MemoryPlace src, MemoryPlace dst) const {
  const MemoryPlace dev{MemoryKind::device, 1};
  return (src == dev && (dst == dev || dst.host_visible())) || (dst == dev && src.host_visible());
}

Status SimDeviceTransfer::copy(const Tensor& src, Tensor& dst, runtime::Stream*) const {
  if (src.dtype() != dst.dtype() || src.numel() != dst.numel() || src.dtype() == DType::string) {
    return invalid_argument("[simdev] cannot copy ", src.description(), " into ", dst.description());
  }
  if (!can_copy(src.place(), dst.place())) {
    return invalid_argument("[simdev] no copy from ", src.place().to_string(), " to ", dst.place().to_string());
  }
  if (src.nbytes()) std::memcpy(dst.raw_data(), src.raw_data(), src.nbytes());
  if (!dst.place().host_visible() && src.place().host_visible()) to_device.fetch_add(static_cast<int64_t>(src.nbytes()));
  if (dst.place().host_visible() && !src.place().host_visible()) to_host.fetch_add(static_cast<int64_t>(src.nbytes()));
  return Status::OK();
}

namespace {

// Work on the simulated device is done when enqueued, so a stream only counts its synchronizations.
class SimStream final : public runtime::Stream {
 public:
  class Done final : public runtime::Event {
   public:
    Status wait() override { return Status::OK(); }
  };
  Result<std::unique_ptr<runtime::Event>> record() override { return std::unique_ptr<runtime::Event>(new Done()); }
  Status synchronize() override { return Status::OK(); }
};

const std::vector<runtime::KernelDef>& simdev_table() {
  static const std::vector<runtime::KernelDef> table = [] {
    std::vector<runtime::KernelDef> t;
    for (const runtime::KernelDef& k : cpu::all_kernels()) {
      if (!k.domain.empty() || !tensor_ops().count(k.op)) continue;
      runtime::KernelDef d = k;
      d.host_inputs = host_inputs_of(k.op);
      d.metadata_only = k.op == "Shape" || k.op == "Size";  // as on the CUDA backend
      d.dtypes = {DType::float32, DType::float16, DType::int64, DType::int32, DType::boolean, DType::uint8, DType::int8};
      t.push_back(d);
    }
    return t;
  }();
  return table;
}

}  // namespace

SimDeviceBackend::SimDeviceBackend(bool float16)
    : KernelBackend(info_named(float16 ? "simdev16" : "simdev", runtime::DeviceKind::gpu), simdev_table(), cpu_features()),
      float16_(float16) {
  info_.caps.async_copies = true;
}

Result<std::unique_ptr<runtime::Executable>> SimDeviceBackend::compile(const runtime::CompileContext& ctx) const {
  if (!float16_) return KernelBackend::compile(ctx);
  auto base = [this](const runtime::CompileContext& c) { return KernelBackend::compile(c); };
  // The simulated device memory is host memory: the edge casts run on the host, into device-placed tensors.
  auto cast = [](const Tensor& t, DType to, runtime::ExecContext& ec) { return backends::cast_float_on_host(t, to, ec.allocator); };
  // CPU kernels may keep pointers to constants they were created with: the converted copies stay.
  return backends::compile_half(ctx, base, cast, false);
}

Result<std::unique_ptr<runtime::Stream>> SimDeviceBackend::new_stream() const {
  streams_.fetch_add(1);
  return std::unique_ptr<runtime::Stream>(new SimStream());
}

// ---- test compiler ----

namespace {

// One compiled partition: a nested graph of the claimed nodes, run as a whole on the CPU.
class NestedExecutable final : public runtime::Executable {
 public:
  explicit NestedExecutable(std::shared_ptr<runtime::CompiledGraph> g) : g_(std::move(g)) {}
  Status run(runtime::ExecContext& ctx) const override {
    std::vector<Value> inputs;
    for (const Value* v : ctx.inputs) inputs.push_back(v ? *v : Value());
    runtime::RunEnv env;
    env.pool = ctx.env.pool;
    env.allocator = ctx.env.allocator;
    env.shared_allocator = ctx.env.shared_allocator;
    env.abort = ctx.env.abort;
    env.deadline = ctx.env.deadline;
    ORCHARD_ASSIGN_OR_RETURN(auto outs, g_->run(inputs, env, nullptr));
    for (size_t i = 0; i < outs.size() && i < ctx.outputs.size(); ++i) ctx.outputs[i] = std::move(outs[i]);
    return Status::OK();
  }

 private:
  std::shared_ptr<runtime::CompiledGraph> g_;
};

bool claimable(const runtime::GraphView& view, const graph::Node& n) {
  if (!n.domain.empty() || !tensor_ops().count(n.op_type) || !n.implicit_inputs.empty()) return false;
  for (const auto& in : n.inputs) {
    if (!in.empty() && view.type_of(in).kind != Value::Kind::tensor) return false;
  }
  for (const auto& out : n.outputs) {
    if (!out.empty() && view.type_of(out).kind != Value::Kind::tensor) return false;
  }
  return true;
}

}  // namespace

TestCompileBackend::TestCompileBackend()
    : info_(info_named("testcompile", runtime::DeviceKind::npu)), cpu_(std::make_shared<cpu::CpuBackend>(SessionOptions{})) {}

bool TestCompileBackend::has_op(const std::string& domain, const std::string& op, int) const {
  return domain.empty() && tensor_ops().count(op) > 0;
}

runtime::Capability TestCompileBackend::get_capability(const runtime::GraphView& view) const {
  runtime::Capability cap;
  std::vector<int> take;
  for (int n : view.candidates()) {
    if (claimable(view, view.node(n))) {
      take.push_back(n);
    } else {
      cap.rejected.push_back({n, view.node(n).op_type + " is not in the test compiler's op list"});
    }
  }
  cap.partitions = runtime::convex_groups(view, take);
  return cap;
}

Result<std::unique_ptr<runtime::Executable>> TestCompileBackend::compile(const runtime::CompileContext& ctx) const {
  const runtime::PartitionSpec& spec = ctx.partition;
  const graph::Graph& g = *spec.graph;
  auto sub = std::make_shared<graph::Graph>();
  sub->name = g.name + "/testcompile";
  const runtime::GraphView view(g, spec.nodes);
  auto info_of = [&](const std::string& name) {
    ValueInfo info;
    info.name = name;
    const runtime::ValueType& t = view.type_of(name);
    info.kind = t.kind;
    info.dtype = t.dtype;
    info.has_shape = t.has_shape;
    info.shape = t.shape;
    return info;
  };
  for (const auto& in : spec.inputs) sub->inputs.push_back(info_of(in));
  for (const auto& out : spec.outputs) sub->outputs.push_back(info_of(out));
  for (int n : spec.nodes) {
    const graph::Node& node = g.nodes[static_cast<size_t>(n)];
    sub->nodes.push_back(node);
    for (const auto& in : node.inputs) {
      if (const Tensor* c = view.constant(in)) sub->initializers[in] = *c;
    }
    for (const auto& out : node.outputs) {
      if (auto it = g.value_info.find(out); it != g.value_info.end()) sub->value_info[out] = it->second;
    }
  }
  ORCHARD_ASSIGN_OR_RETURN(auto compiled, runtime::CompiledGraph::compile(sub, {cpu_}, nullptr));
  compiled_.fetch_add(1);
  return std::unique_ptr<runtime::Executable>(new NestedExecutable(std::move(compiled)));
}

std::shared_ptr<runtime::Backend> make_test_backend(const std::string& name) {
  if (name == "simdev") return std::make_shared<SimDeviceBackend>();
  if (name == "simdev16") return std::make_shared<SimDeviceBackend>(true);
  if (name == "testcompile") return std::make_shared<TestCompileBackend>();
  if (name == "gate") return std::make_shared<GateBackend>();
  if (name == "faulty") return std::make_shared<FaultyBackend>();
  return nullptr;
}

}  // namespace orchard::testing
