#include "runtime/kernel_backend.hpp"

#include <algorithm>
#include <mutex>
#include <tuple>

#include "runtime/executor.hpp"
#include "runtime/memory_planner.hpp"

namespace orchard::runtime {

namespace {

// One node of a kernel partition: its kernel, where its inputs come from and where its outputs go.
struct Step {
  const graph::Node* node = nullptr;
  std::string backend_name;
  std::unique_ptr<OpKernel> kernel;
  // Per input: >= 0 a frame slot; kPartitionInput - k: partition input k; kBound - k: bound constant k; -1 omitted.
  std::vector<int> inputs;
  std::vector<Value> bound;  // constants, in this backend's memory (uploaded once at compile)
  std::vector<int> input_slots;  // frame slot per input (-1 omitted), for the memory planner
  std::vector<int> outputs;  // frame slot per output, -1 when unused
  uint32_t host_inputs = 0;  // inputs the kernel reads on the host (KernelDef::host_inputs)
  bool metadata_only = false;  // KernelDef::metadata_only on a device backend: host outputs, inputs left in place
  std::vector<int> release;  // frame slots whose last reader in the partition is this step
  // The kernel's shape-dependent state for the last input shapes seen (kernels with reshape()).
  mutable std::mutex state_mu;
  mutable std::vector<Shape> state_shapes;
  mutable std::shared_ptr<const KernelState> state;
};

constexpr int kPartitionInput = -1000000;
constexpr int kBound = -2000000;

class KernelExecutable final : public Executable {
 public:
  KernelExecutable(std::vector<std::unique_ptr<Step>> steps, std::vector<int> output_slots, const Backend& backend,
                   size_t num_inputs)
      : steps_(std::move(steps)),
        output_slots_(std::move(output_slots)),
        backend_(backend),
        host_(backend.allocator().place().host_visible()) {
    // Partition inputs that only host inputs and metadata-only kernels read.
    std::vector<bool> host_use(num_inputs, false), data_use(num_inputs, false);
    for (const auto& step : steps_) {
      for (size_t i = 0; i < step->inputs.size(); ++i) {
        const int s = step->inputs[i];
        if (s > kPartitionInput || s <= kBound) continue;
        const size_t k = static_cast<size_t>(kPartitionInput - s);
        const bool on_host = step->metadata_only || (i < 32 && ((step->host_inputs >> i) & 1u));
        (on_host ? host_use : data_use)[k] = true;
      }
    }
    host_only_.resize(num_inputs);
    for (size_t k = 0; k < num_inputs; ++k) host_only_[k] = !host_ && host_use[k] && !data_use[k];
  }

  bool reads_on_host(size_t i) const override { return i < host_only_.size() && host_only_[i]; }

  Status run(ExecContext& ctx) const override {
    std::vector<const Value*> in_ptrs;
    std::vector<Value> outs;
    std::vector<Shape> shapes;
    std::vector<Value> host_copies;
    std::vector<PlannedOutput> planned;
    // The memory plan covers the host kernels of the run's top-level graph (not subgraphs, not devices).
    RunArena* arena = host_ && ctx.env.arena && ctx.env.arena->graph() == ctx.frame.graph ? ctx.env.arena : nullptr;
    for (const auto& step_ptr : steps_) {
      const Step& step = *step_ptr;
      ORCHARD_RETURN_IF_ERROR(ctx.env.check_abort());
      in_ptrs.clear();
      for (int s : step.inputs) {
        const Value* v = nullptr;
        if (s >= 0) {
          v = &ctx.frame.slots[static_cast<size_t>(s)];
        } else if (s <= kBound) {
          v = &step.bound[static_cast<size_t>(kBound - s)];
        } else if (s <= kPartitionInput) {
          v = ctx.inputs[static_cast<size_t>(kPartitionInput - s)];
        }
        in_ptrs.push_back(v && v->kind() != Value::Kind::none ? v : nullptr);
      }
      if (!host_ && !step.metadata_only) ORCHARD_RETURN_IF_ERROR(place_inputs(step, in_ptrs, host_copies, ctx));
      if (host_) {
        // A host kernel handed device memory would read garbage: a runtime bug, caught here.
        for (size_t i = 0; i < in_ptrs.size(); ++i) {
          if (in_ptrs[i] && in_ptrs[i]->is_tensor() && !in_ptrs[i]->tensor().place().host_visible()) {
            return internal_error("[runtime] ", step.node->label(), ": input ", i, " is in ",
                                  in_ptrs[i]->tensor().place().to_string(), " memory, which the host cannot read");
          }
        }
      }
      std::shared_ptr<const KernelState> state;
      if (step.kernel->has_reshape()) {
        std::lock_guard<std::mutex> lock(step.state_mu);
        if (!step.state || !same_shapes(in_ptrs, step.state_shapes)) {  // (no copies of the shapes while they repeat)
          shapes.clear();
          for (const Value* v : in_ptrs) shapes.push_back(v && v->is_tensor() ? v->tensor().shape() : Shape{});
          auto r = step.kernel->reshape(shapes);
          if (!r.ok()) return r.status().with_prefix("[" + step.backend_name + "] " + step.node->label() + ": ");
          step.state = std::move(r).value();
          step.state_shapes = shapes;
        }
        state = step.state;
      }
      outs.assign(step.outputs.size(), Value());
      OpContext op(*step.node, in_ptrs, outs, ctx.env, ctx.frame, step.metadata_only ? ctx.env.host_allocator() : ctx.allocator,
                   state.get());
      if (arena) {
        planned.clear();
        if (arena->planned()) {
          for (int s : step.outputs) planned.push_back(arena->place(s));
        }
        ctx.env.planned_node = step.node;
        ctx.env.planned_outputs = planned;
        ctx.env.made_outputs = 0;
      }
      const auto t0 = ctx.env.profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      Status st = step.kernel->run(op);
      if (arena) ctx.env.planned_node = nullptr;
      if (!st.ok()) return st.with_prefix("[" + step.backend_name + "] " + step.node->label() + ": ");
      if (arena) arena->after_step(step.outputs, outs, step.input_slots, in_ptrs, ctx.env.made_outputs);
      if (ctx.env.profile) {
        // A device kernel is only queued: a profiled run waits for it, so the time is the device's.
        if (ctx.stream) ORCHARD_RETURN_IF_ERROR(ctx.stream->synchronize());
        const auto t1 = std::chrono::steady_clock::now();
        NodeProfile p;
        p.name = step.node->name;
        p.op = step.node->op_type;
        p.backend = step.backend_name;
        p.category = "kernel";
        for (const Value* v : in_ptrs) p.input_shapes.push_back(v && v->is_tensor() ? v->tensor().shape() : Shape{});
        p.start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t0 - ctx.env.start).count();
        p.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
        ctx.env.profile->push_back(std::move(p));
      }
      for (size_t k = 0; k < step.outputs.size(); ++k) {
        if (step.outputs[k] < 0) continue;
        if (outs[k].kind() == Value::Kind::none) {
          return internal_error("[runtime] ", step.node->label(), ": kernel did not produce output ", k, " ('",
                                step.node->outputs[k], "')");
        }
        ctx.frame.slots[static_cast<size_t>(step.outputs[k])] = std::move(outs[k]);
      }
      for (int s : step.release) ctx.frame.slots[static_cast<size_t>(s)] = Value();
    }
    for (size_t k = 0; k < output_slots_.size(); ++k) ctx.outputs[k] = ctx.frame.slots[static_cast<size_t>(output_slots_[k])];
    return Status::OK();
  }

 private:
  // True when the inputs have `shapes` (an absent or non-tensor input: the empty shape).
  static bool same_shapes(const std::vector<const Value*>& in, const std::vector<Shape>& shapes) {
    if (in.size() != shapes.size()) return false;
    for (size_t i = 0; i < in.size(); ++i) {
      const bool tensor = in[i] && in[i]->is_tensor();
      if (tensor ? in[i]->tensor().shape() != shapes[i] : shapes[i] != Shape{}) return false;
    }
    return true;
  }

  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<int> output_slots_;
  const Backend& backend_;
  const bool host_;  // the backend computes in host-visible memory
  std::vector<bool> host_only_;  // per partition input: read only on the host (see reads_on_host)

  // Puts each input where a device kernel reads it: the step's host inputs (KernelDef::host_inputs) in host
  // memory, the others in this backend's memory (a kernel such as the CUDA Shape, which reads only metadata,
  // may leave its small output in host memory). Copies are kept in `copies` until the step is done.
  Status place_inputs(const Step& step, std::vector<const Value*>& in_ptrs, std::vector<Value>& copies,
                      ExecContext& ctx) const {
    copies.assign(in_ptrs.size(), Value());
    for (size_t i = 0; i < in_ptrs.size(); ++i) {
      if (!in_ptrs[i] || !in_ptrs[i]->is_tensor()) continue;
      const Tensor& src = in_ptrs[i]->tensor();
      const bool want_host = i < 32 && ((step.host_inputs >> i) & 1u);
      if (src.place().host_visible() == want_host || src.dtype() == DType::string) continue;
      Allocator& to = want_host ? ctx.env.host_allocator() : backend_.allocator();
      ORCHARD_ASSIGN_OR_RETURN(Tensor dst, ctx.env.create_tensor(src.dtype(), src.shape(), to));
      ORCHARD_RETURN_IF_ERROR(backend_.transfer().copy(src, dst, ctx.stream));
      // The host reads a download at once; an upload is ordered before the kernel on the stream.
      if (want_host && ctx.stream) ORCHARD_RETURN_IF_ERROR(ctx.stream->synchronize());
      ctx.env.bytes_copied += static_cast<int64_t>(src.nbytes());
      copies[i] = Value(dst);
      in_ptrs[i] = &copies[i];
    }
    return Status::OK();
  }
};

}  // namespace

std::shared_ptr<const KernelBackend::Index> KernelBackend::build_index(std::span<const KernelDef> table,
                                                                       uint32_t available_features) {
  auto index = std::make_shared<Index>();
  for (const KernelDef& k : table) {
    if ((k.cpu_features & available_features) != k.cpu_features) continue;
    (*index)[{std::string(k.domain), std::string(k.op)}].push_back(&k);
  }
  for (auto& [key, defs] : *index) {
    std::stable_sort(defs.begin(), defs.end(), [](const KernelDef* a, const KernelDef* b) { return a->priority > b->priority; });
  }
  return index;
}

std::shared_ptr<const KernelBackend::Index> KernelBackend::shared_index(std::span<const KernelDef> table,
                                                                        uint32_t available_features) {
  static std::mutex mutex;
  static std::map<std::tuple<const KernelDef*, size_t, uint32_t>, std::shared_ptr<const Index>> cache;
  std::lock_guard lock(mutex);
  auto& slot = cache[{table.data(), table.size(), available_features}];
  if (!slot) slot = build_index(table, available_features);
  return slot;
}

KernelBackend::KernelBackend(DeviceInfo info, std::span<const KernelDef> table, uint32_t available_features,
                             bool static_table)
    : info_(std::move(info)),
      index_(static_table ? shared_index(table, available_features) : build_index(table, available_features)) {}

bool KernelBackend::has_op(const std::string& domain, const std::string& op, int opset) const {
  auto it = index_->find(std::make_pair(domain, op));
  if (it == index_->end()) return false;
  return std::any_of(it->second.begin(), it->second.end(), [&](const KernelDef* k) { return k->since <= opset && opset <= k->until; });
}

std::vector<const KernelDef*> KernelBackend::variants(const GraphView& view, const graph::Node& node, std::string* why) const {
  std::vector<const KernelDef*> out;
  auto it = index_->find(std::make_pair(node.domain, node.op_type));
  if (it == index_->end()) {
    if (why) *why = "no kernel for " + node.op_type;
    return out;
  }
  if (!allocator().place().host_visible()) {
    // Strings, sequences and optionals stay in host memory.
    for (const auto* names : {&node.inputs, &node.outputs}) {
      for (const auto& name : *names) {
        if (name.empty()) continue;
        const ValueType& t = view.type_of(name);
        if (t.kind != Value::Kind::tensor || t.dtype == DType::string) {
          if (why) *why = "'" + name + "' is a string tensor, sequence or optional, which stay in host memory";
          return out;
        }
      }
    }
  }
  bool opset_match = false;
  DType rejected = DType::undefined;
  for (const KernelDef* k : it->second) {
    if (node.opset < k->since || node.opset > k->until) continue;
    opset_match = true;
    const size_t in = static_cast<size_t>(k->dtype_input);
    if (in < node.inputs.size() && !node.inputs[in].empty()) {
      const DType t = view.type_of(node.inputs[in]).dtype;
      if (t != DType::undefined && !k->dtypes.contains(t)) {
        rejected = t;
        continue;
      }
    }
    out.push_back(k);
  }
  if (out.empty() && why) {
    *why = !opset_match ? node.op_type + " has no kernel for opset " + std::to_string(node.opset)
                        : node.op_type + " has no kernel for dtype " + std::string(dtype_name(rejected));
  }
  return out;
}

Capability KernelBackend::get_capability(const GraphView& view) const {
  Capability cap;
  for (int n : view.candidates()) {
    std::string why;
    if (variants(view, view.node(n), &why).empty()) {
      cap.rejected.push_back({n, why});
    } else {
      cap.partitions.push_back({n});
    }
  }
  return cap;
}

Result<std::unique_ptr<Executable>> KernelBackend::compile(const CompileContext& ctx) const {
  const PartitionSpec& spec = ctx.partition;
  const graph::Graph& g = *spec.graph;
  const GraphView view(g, spec.nodes);
  const MemoryPlace place = allocator().place();
  std::vector<std::unique_ptr<Step>> steps;
  // Last reader in this partition of each internal value (neither a partition output nor read later).
  std::map<std::string, size_t, std::less<>> last_read;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    for (const auto& in : node_reads(g.nodes[static_cast<size_t>(spec.nodes[i])])) last_read[in] = i;
  }
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const graph::Node& node = g.nodes[static_cast<size_t>(spec.nodes[i])];
    auto step = std::make_unique<Step>();
    step->node = &node;
    step->backend_name = info_.name;
    for (const auto& in : node.inputs) step->input_slots.push_back(in.empty() ? -1 : ctx.slot_of(in));
    for (const auto& in : node.inputs) {
      if (in.empty()) {
        step->inputs.push_back(-1);
        continue;
      }
      auto pi = std::find(spec.inputs.begin(), spec.inputs.end(), in);
      if (pi != spec.inputs.end()) {
        step->inputs.push_back(kPartitionInput - static_cast<int>(pi - spec.inputs.begin()));
      } else if (const Tensor* c = view.constant(in); c && !place.host_visible()) {
        // Constants live on the device that reads them, uploaded once below (unless read on the host).
        step->inputs.push_back(kBound - static_cast<int>(step->bound.size()));
        step->bound.emplace_back(*c);
      } else {
        step->inputs.push_back(ctx.slot_of(in));
      }
    }
    for (const auto& out : node.outputs) step->outputs.push_back(out.empty() ? -1 : ctx.slot_of(out));

    std::string why;
    const auto candidates = variants(view, node, &why);
    if (candidates.empty()) {
      if (ctx.failed_nodes) ctx.failed_nodes->push_back(spec.nodes[i]);
      return unsupported("[", info_.name, "] ", node.label(), ": ", why);
    }
    KernelCreateContext kctx{
        node,
        this,
        [&view, &node](size_t k) -> const Tensor* {
          return k < node.inputs.size() && !node.inputs[k].empty() ? view.constant(node.inputs[k]) : nullptr;
        },
        [&view, &node](size_t k) -> const ValueType& {
          static const ValueType unknown;
          return k < node.inputs.size() && !node.inputs[k].empty() ? view.type_of(node.inputs[k]) : unknown;
        },
        ctx.compile_subgraph};
    // The best variant whose create succeeds runs the node; the others stay unused.
    Status first_error;
    for (const KernelDef* def : candidates) {
      auto kernel = def->create(kctx);
      if (kernel.ok()) {
        step->kernel = std::move(kernel).value();
        step->host_inputs = place.host_visible() ? 0 : def->host_inputs;
        step->metadata_only = !place.host_visible() && def->metadata_only;
        break;
      }
      if (first_error.ok()) first_error = kernel.status();
    }
    if (!step->kernel) {
      if (ctx.failed_nodes) ctx.failed_nodes->push_back(spec.nodes[i]);
      return first_error.with_prefix("[" + info_.name + "] " + node.label() + ": ");
    }
    if (const uint32_t packed = step->kernel->packed_inputs(); packed != 0 && ctx.constant_packed) {
      for (size_t k = 0; k < node.inputs.size() && k < 32; ++k) {
        // Only constants the step reads from the frame (a device backend's bound copies are its own).
        if (((packed >> k) & 1u) && step->inputs[k] >= 0 && view.constant(node.inputs[k])) ctx.constant_packed(node.inputs[k]);
      }
    }
    for (size_t k = 0; k < step->inputs.size(); ++k) {
      const int s = step->inputs[k];
      if (s > kBound) continue;
      if (step->metadata_only || (k < 32 && ((step->host_inputs >> k) & 1u))) continue;  // stays in host memory
      Value& v = step->bound[static_cast<size_t>(kBound - s)];
      const Tensor& c = v.tensor();
      ORCHARD_ASSIGN_OR_RETURN(Tensor dst, Tensor::create(c.dtype(), c.shape(), allocator()));
      ORCHARD_RETURN_IF_ERROR(transfer().copy(c, dst, nullptr));
      v = Value(dst);
    }
    steps.push_back(std::move(step));
  }
  // Internal values are dropped after their last reader here; the executor releases the others.
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    for (const auto& out : g.nodes[static_cast<size_t>(spec.nodes[i])].outputs) {
      if (out.empty() || std::find(spec.outputs.begin(), spec.outputs.end(), out) != spec.outputs.end()) continue;
      auto it = last_read.find(out);
      const int slot = ctx.slot_of(out);
      if (slot < 0) continue;
      steps[it == last_read.end() ? i : it->second]->release.push_back(slot);
    }
  }
  std::vector<int> output_slots;
  for (const auto& out : spec.outputs) output_slots.push_back(ctx.slot_of(out));
  return std::unique_ptr<Executable>(new KernelExecutable(std::move(steps), std::move(output_slots), *this, spec.inputs.size()));
}

}  // namespace orchard::runtime
