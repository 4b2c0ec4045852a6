#include "backends/float16_partition.hpp"

#include <map>
#include <string>

#include "runtime/executor.hpp"

namespace orchard::backends {

namespace {

// Refuses what a partition edge never casts (only float32 <-> float16).
Status check_edge_cast(const Tensor& t, DType to) {
  const bool widen = t.dtype() == DType::float16 && to == DType::float32;
  const bool narrow = t.dtype() == DType::float32 && to == DType::float16;
  if (widen || narrow) return Status::OK();
  return invalid_argument("[float16] cannot cast ", t.description(), " to ", dtype_name(to), " at a partition edge");
}

// Casts host tensor `t` into `out` (float32 <-> float16, same shape; check_edge_cast passed).
void cast_into(const Tensor& t, Tensor& out) {
  if (t.dtype() == DType::float16) {
    for (int64_t i = 0; i < t.numel(); ++i) out.data<float>()[i] = static_cast<float>(t.data<float16>()[i]);
  } else {
    for (int64_t i = 0; i < t.numel(); ++i) out.data<float16>()[i] = float16(t.data<float>()[i]);
  }
}

Tensor to_half(const Tensor& c) {
  Tensor h = Tensor::empty(DType::float16, c.shape());
  const float* src = c.data<float>();
  float16* dst = h.data<float16>();
  for (int64_t i = 0; i < c.numel(); ++i) dst[i] = float16(src[i]);
  return h;
}

void retype(ValueInfo& info) {
  if (info.kind == Value::Kind::tensor && info.dtype == DType::float32) info.dtype = DType::float16;
}

// Runs the float16 executable between casts at the partition's edge.
class HalfExecutable final : public runtime::Executable {
 public:
  HalfExecutable(std::unique_ptr<runtime::Executable> inner, HalfPartition part, DeviceCast cast)
      : inner_(std::move(inner)), part_(std::move(part)), cast_(std::move(cast)) {}

  Status run(runtime::ExecContext& ctx) const override {
    std::vector<Value> cast_inputs(ctx.inputs.size());
    std::vector<const Value*> ptrs(ctx.inputs.begin(), ctx.inputs.end());
    for (size_t i = 0; i < ptrs.size(); ++i) {
      if (!ptrs[i] || !ptrs[i]->is_tensor() || ptrs[i]->tensor().dtype() != DType::float32) continue;
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, edge_cast(ptrs[i]->tensor(), DType::float16, ctx));
      cast_inputs[i] = Value(std::move(t));
      ptrs[i] = &cast_inputs[i];
    }
    runtime::ExecContext half{ptrs, ctx.outputs, ctx.frame, ctx.env, ctx.allocator, ctx.stream};
    ORCHARD_RETURN_IF_ERROR(inner_->run(half));
    for (size_t k = 0; k < ctx.outputs.size(); ++k) {
      if (!ctx.outputs[k].is_tensor() || ctx.outputs[k].tensor().dtype() != DType::float16) continue;
      if (k < part_.keep_half.size() && part_.keep_half[k]) continue;
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, edge_cast(ctx.outputs[k].tensor(), DType::float32, ctx));
      ctx.outputs[k] = Value(std::move(t));
    }
    return Status::OK();
  }
  bool reads_on_host(size_t i) const override { return inner_->reads_on_host(i); }

 private:
  std::unique_ptr<runtime::Executable> inner_;
  HalfPartition part_;  // keeps the graph the kernels were made from alive
  DeviceCast cast_;

  // A tensor the partition reads on the host (a kernel's host input) is cast there; the others on the device.
  Result<Tensor> edge_cast(const Tensor& t, DType to, runtime::ExecContext& ctx) const {
    if (t.place().host_visible()) {  // an output cast here may outlive the run: it keeps a request's arena alive
      ORCHARD_RETURN_IF_ERROR(check_edge_cast(t, to));
      ORCHARD_ASSIGN_OR_RETURN(Tensor out, ctx.env.create_tensor(to, t.shape(), ctx.env.host_allocator()));
      cast_into(t, out);
      return out;
    }
    return cast_(t, to, ctx);
  }
};

}  // namespace

HalfPartition make_half_partition(const runtime::PartitionSpec& spec) {
  const graph::Graph& src = *spec.graph;
  HalfPartition part;
  auto g = std::make_shared<graph::Graph>();
  g->name = src.name;
  g->nodes = src.nodes;
  g->inputs = src.inputs;
  g->outputs = src.outputs;
  g->value_info = src.value_info;
  const runtime::GraphView original(src, {});
  for (const auto& out : spec.outputs) part.keep_half.push_back(original.type_of(out).dtype == DType::float16);
  // Declared types: a kernel commits to the dtype it is created for (cuDNN descriptors, a binary kernel's check
  // that both operands agree), so what the partition computes in float16 must be declared float16.
  for (auto& [name, info] : g->value_info) retype(info);
  for (auto& info : g->inputs) retype(info);
  for (auto& info : g->outputs) retype(info);
  for (int n : spec.nodes) {
    graph::Node& node = g->nodes[static_cast<size_t>(n)];
    for (const auto& in : runtime::node_reads(node)) {
      auto it = src.initializers.find(in);
      if (it == src.initializers.end() || g->initializers.count(in)) continue;
      const Tensor& c = it->second;
      g->initializers.emplace(in, c.dtype() == DType::float32 ? to_half(c) : c);
    }
    if (node.op_type == "Cast" && node.attr_int("to", 0) == 1) node.attributes["to"].i = 10;
    if (node.op_type == "ConstantOfShape") {
      auto it = node.attributes.find("value");
      if (it != node.attributes.end() && it->second.t.dtype() == DType::float32) it->second.t = to_half(it->second.t);
    }
  }
  // An initializer that is also a graph input is a default the caller may replace: it stays a partition
  // input (cast at the edge), as GraphView::constant says.
  part.spec = spec;
  part.spec.graph = g.get();
  part.graph = std::move(g);
  return part;
}

Result<Tensor> cast_float_on_host(const Tensor& t, DType to, Allocator& alloc) {
  ORCHARD_RETURN_IF_ERROR(check_edge_cast(t, to));
  ORCHARD_ASSIGN_OR_RETURN(Tensor out, Tensor::create(to, t.shape(), alloc));
  cast_into(t, out);
  return out;
}

Result<std::unique_ptr<runtime::Executable>> compile_half(
    const runtime::CompileContext& ctx,
    const std::function<Result<std::unique_ptr<runtime::Executable>>(const runtime::CompileContext&)>& compile,
    DeviceCast cast, bool drop_host_constants) {
  HalfPartition part = make_half_partition(ctx.partition);
  ORCHARD_ASSIGN_OR_RETURN(auto inner, compile({part.spec, ctx.slot_of, ctx.compile_subgraph, ctx.failed_nodes, {}}));
  if (drop_host_constants) part.graph->initializers.clear();
  return std::unique_ptr<runtime::Executable>(new HalfExecutable(std::move(inner), std::move(part), std::move(cast)));
}

}  // namespace orchard::backends
