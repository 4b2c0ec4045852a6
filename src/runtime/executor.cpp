#include "runtime/executor.hpp"

#include <algorithm>
#include <cstring>

#include "core/logging.hpp"
#include "orchard/device_memory.hpp"

namespace orchard::runtime {

// ---- OpContext ----

Result<const Tensor*> OpContext::input_tensor(size_t i) const {
  if (!has_input(i)) return invalid_argument("input ", i, " is missing");
  if (!inputs_[i]->is_tensor()) {
    return invalid_argument("input ", i, " ('", node_.inputs[i], "') must be a tensor, got ", inputs_[i]->description());
  }
  return &inputs_[i]->tensor();
}

namespace {

// Hands out one planned place of a run's arena (once); keeps the arena alive while the tensor lives.
class ArenaSlice final : public Allocator {
 public:
  ArenaSlice(void* data, size_t capacity, std::shared_ptr<void> arena)
      : data_(data), capacity_(capacity), arena_(std::move(arena)) {}
  void* allocate(size_t bytes, size_t) override { return bytes <= capacity_ ? data_ : nullptr; }
  void deallocate(void*, size_t) override {}

 private:
  void* data_;
  size_t capacity_;
  std::shared_ptr<void> arena_;
};

}  // namespace

Result<Tensor> OpContext::make_output(size_t i, DType dtype, const Shape& shape) {
  if (i >= outputs_.size()) return internal_error("output index ", i, " out of range (", outputs_.size(), " outputs)");
  if (env_.planned_node == &node_ && i < 64) env_.made_outputs |= uint64_t{1} << i;
  const auto& planned = env_.planned_outputs;
  if (env_.planned_node == &node_ && i < planned.size() && planned[i].data != nullptr && dtype != DType::string) {
    int64_t bytes = static_cast<int64_t>(dtype_size(dtype));
    bool fits = true;
    for (int64_t d : shape) fits = fits && d >= 0 && !__builtin_mul_overflow(bytes, d, &bytes) && bytes <= planned[i].capacity;
    if (fits) {
      auto slice = std::make_shared<ArenaSlice>(planned[i].data, static_cast<size_t>(bytes), *planned[i].arena);
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, shape, std::move(slice)));
      outputs_[i] = Value(t);
      return t;
    }
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, env_.create_tensor(dtype, shape, allocator_));
  outputs_[i] = Value(t);
  return t;
}

ThreadPool& OpContext::pool() const { return *env_.pool; }

Status OpContext::check_abort() const { return env_.check_abort(); }

Result<std::vector<Value>> OpContext::run_subgraph(const CompiledGraph& graph, std::span<const Value> inputs) const {
  return graph.run(inputs, env_, &frame_);
}

// ---- RunEnv ----

Result<Tensor> RunEnv::create_tensor(DType dtype, const Shape& shape, Allocator& alloc) const {
  if (shared_allocator && &alloc == shared_allocator.get()) return Tensor::create(dtype, shape, shared_allocator);
  return Tensor::create(dtype, shape, alloc);
}

Status RunEnv::check_abort() const {
  if (abort && abort->load(std::memory_order_relaxed)) return cancelled("run cancelled");
  if (deadline != std::chrono::steady_clock::time_point::max() && std::chrono::steady_clock::now() > deadline) {
    return deadline_exceeded("run passed its deadline");
  }
  return Status::OK();
}

Result<Stream*> RunEnv::stream_for(const Backend* backend) {
  for (auto& [b, s] : streams_) {
    if (b == backend) return s.get();
  }
  ORCHARD_ASSIGN_OR_RETURN(auto stream, backend->new_stream());
  Stream* raw = stream.get();
  streams_.emplace_back(backend, std::move(stream));
  return raw;
}

Status RunEnv::synchronize_all() {
  Status first;
  for (auto& [b, s] : streams_) {
    if (!s) continue;
    Status st = s->synchronize();
    if (!st.ok() && first.ok()) first = st.with_prefix("[" + b->device().name + "] ");
  }
  keep_alive_.clear();
  return first;
}

// ---- moving values between memories ----

namespace {

// Returns whether code of `backend` reads memory at `place` directly.
bool reads(const Backend& backend, MemoryPlace place) {
  const MemoryPlace mine = backend.allocator().place();
  return place == mine || (place.host_visible() && mine.host_visible());
}

// Records a profiled step; callers test env.profile first, so that an unprofiled run builds no names.
void record(RunEnv& env, const std::string& name, const std::string& backend, const char* category,
            std::chrono::steady_clock::time_point t0, std::vector<Shape> shapes = {}) {
  if (!env.profile) return;
  const auto t1 = std::chrono::steady_clock::now();
  NodeProfile p;
  p.name = name;
  p.op = category;
  p.backend = backend;
  p.category = category;
  p.input_shapes = std::move(shapes);
  p.start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t0 - env.start).count();
  p.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
  env.profile->push_back(std::move(p));
}

}  // namespace

Result<Value> move_to(const Value& v, const Backend& backend, const std::vector<std::shared_ptr<Backend>>& chain,
                      RunEnv& env, Stream* stream) {
  if (!v.is_tensor()) {
    if (backend.allocator().place().host_visible()) return v;
    return unsupported("[", backend.device().name, "] cannot hold ", v.description(), " in device memory");
  }
  const Tensor& src = v.tensor();
  if (reads(backend, src.place())) return v;
  const auto t0 = std::chrono::steady_clock::now();
  const MemoryPlace dst_place = backend.allocator().place();
  Allocator& to = dst_place.host_visible() ? env.host_allocator() : backend.allocator();
  ORCHARD_ASSIGN_OR_RETURN(Tensor dst, env.create_tensor(src.dtype(), src.shape(), to));
  // The destination's transfer when it can (uploads, on this partition's stream), else the source owner's
  // (downloads, on its stream, finished before the host reads the bytes).
  if (backend.transfer().can_copy(src.place(), dst.place())) {
    ORCHARD_RETURN_IF_ERROR(backend.transfer().copy(src, dst, stream));
    if (stream) env.keep_alive(v);
  } else {
    const Backend* owner = nullptr;
    for (const auto& b : chain) {
      if (b->allocator().place() == src.place() && b->transfer().can_copy(src.place(), dst.place())) owner = b.get();
    }
    if (owner == nullptr) {
      return unsupported("[", backend.device().name, "] no transfer from ", src.place().to_string(), " to ",
                         dst.place().to_string());
    }
    ORCHARD_ASSIGN_OR_RETURN(Stream * owner_stream, env.stream_for(owner));
    ORCHARD_RETURN_IF_ERROR(owner->transfer().copy(src, dst, owner_stream));
    if (owner_stream) ORCHARD_RETURN_IF_ERROR(owner_stream->synchronize());
  }
  env.bytes_copied += static_cast<int64_t>(src.nbytes());
  if (env.profile) record(env, "copy to " + backend.device().name, backend.device().name, "copy", t0, {src.shape()});
  return Value(dst);
}

Result<Value> move_to_host(const Value& v, const std::vector<std::shared_ptr<Backend>>& chain, RunEnv& env) {
  if (!v.is_tensor() || v.tensor().place().host_visible()) return v;
  const Tensor& src = v.tensor();
  for (const auto& b : chain) {
    if (b->allocator().place() != src.place()) continue;
    const auto t0 = std::chrono::steady_clock::now();
    ORCHARD_ASSIGN_OR_RETURN(Stream * stream, env.stream_for(b.get()));
    ORCHARD_ASSIGN_OR_RETURN(Tensor dst, env.create_tensor(src.dtype(), src.shape(), env.host_allocator()));
    ORCHARD_RETURN_IF_ERROR(b->transfer().copy(src, dst, stream));
    if (stream) ORCHARD_RETURN_IF_ERROR(stream->synchronize());
    env.bytes_copied += static_cast<int64_t>(src.nbytes());
    if (env.profile) record(env, "copy from " + b->device().name, b->device().name, "copy", t0, {src.shape()});
    return Value(dst);
  }
  return internal_error("[runtime] no backend owns memory ", src.place().to_string(), " of ", src.description());
}

Status HostTransfer::copy(const Tensor& src, Tensor& dst, Stream*) const {
  if (src.dtype() != dst.dtype() || src.numel() != dst.numel()) {
    return invalid_argument("[transfer] copy of ", src.description(), " into ", dst.description());
  }
  if (src.dtype() == DType::string) {
    for (int64_t i = 0; i < src.numel(); ++i) dst.data<std::string>()[i] = src.data<std::string>()[i];
  } else if (src.nbytes()) {
    std::memcpy(dst.raw_data(), src.raw_data(), src.nbytes());
  }
  return Status::OK();
}

const DataTransfer& Backend::transfer() const {
  static const HostTransfer host;
  return host;
}

const char* device_kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::cpu: return "cpu";
    case DeviceKind::gpu: return "gpu";
    case DeviceKind::npu: return "npu";
  }
  return "?";
}

// ---- CompiledGraph ----

int CompiledGraph::slot_of(const std::string& name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? -1 : it->second;
}

CompileContext CompiledGraph::compile_context(const PartitionSpec& spec, std::vector<int>* failed) const {
  const CompiledGraph* self = this;
  const auto* chain = &chain_;
  return CompileContext{
      spec, [self](const std::string& name) { return self->slot_of(name); },
      [self, chain](const graph::Graph& sub) -> Result<std::shared_ptr<const CompiledGraph>> {
        // Subgraphs are owned by their node's attribute, which the parent graph keeps alive.
        std::shared_ptr<const graph::Graph> alias(self->graph_, &sub);
        ORCHARD_ASSIGN_OR_RETURN(auto compiled, compile(alias, *chain, self));
        return std::shared_ptr<const CompiledGraph>(std::move(compiled));
      },
      failed, {}};
}

Result<std::shared_ptr<CompiledGraph>> CompiledGraph::compile(std::shared_ptr<const graph::Graph> g,
                                                              const std::vector<std::shared_ptr<Backend>>& chain,
                                                              const CompiledGraph* parent, bool require_first,
                                                              graph::Graph* release_packed, int64_t* released_bytes) {
  if (parent != nullptr || release_packed != g.get()) release_packed = nullptr;
  auto cg = std::make_shared<CompiledGraph>();
  cg->graph_ = g;
  cg->chain_ = chain;
  cg->failovers_ = parent ? parent->failovers_ : std::make_shared<std::atomic<int64_t>>(0);
  auto new_slot = [&](const std::string& name) {
    auto [it, inserted] = cg->slots_.emplace(name, cg->num_slots_);
    if (inserted) {
      ++cg->num_slots_;
      cg->slot_names_.push_back(name);
    }
    return it->second;
  };
  std::vector<bool> defined;
  auto define = [&](const std::string& name) {
    int s = new_slot(name);
    if (defined.size() <= static_cast<size_t>(s)) defined.resize(s + 1, false);
    defined[s] = true;
    return s;
  };
  for (const auto& [name, t] : g->initializers) cg->constants_.emplace_back(define(name), t);
  for (const auto& in : g->inputs) cg->input_slots_.push_back(define(in.name));

  // Resolves a name read by a node: defined here, or (for subgraphs) an outer-scope name.
  auto resolve = [&](const std::string& name, const graph::Node* reader) -> Result<int> {
    auto it = cg->slots_.find(name);
    if (it != cg->slots_.end() && it->second < static_cast<int>(defined.size()) && defined[it->second]) return it->second;
    const int outer = parent ? parent->slot_of(name) : -1;
    if (outer < 0) {
      if (reader) return invalid_argument("[runtime] ", reader->label(), ": input '", name, "' is not produced by any earlier node, input or initializer");
      return invalid_argument("[runtime] graph output '", name, "' is not produced by any node, input or initializer");
    }
    const int s = define(name);
    cg->outer_refs_.emplace_back(outer, s);
    return s;
  };
  for (const auto& node : g->nodes) {
    for (const auto& in : node_reads(node)) ORCHARD_RETURN_IF_ERROR(resolve(in, &node).status());
    for (const auto& out : node.outputs) {
      if (!out.empty()) define(out);
    }
  }
  for (const auto& out : g->outputs) {
    ORCHARD_ASSIGN_OR_RETURN(int s, resolve(out.name, nullptr));
    cg->output_slots_.push_back(s);
  }
  cg->slot_info_.assign(static_cast<size_t>(cg->num_slots_), nullptr);
  for (int s = 0; s < cg->num_slots_; ++s) {
    auto vi = g->value_info.find(cg->slot_names_[static_cast<size_t>(s)]);
    if (vi != g->value_info.end()) cg->slot_info_[static_cast<size_t>(s)] = &vi->second;
  }
  for (const auto& out : g->outputs) cg->slot_info_[static_cast<size_t>(cg->slots_.at(out.name))] = &out;

  // Constants that may be freed once packed: read by exactly one node (subgraph reads included), neither a graph
  // output nor a graph input's default. `release` frees one (CompileContext::constant_packed).
  std::vector<int> readers(static_cast<size_t>(cg->num_slots_), 0);
  for (const auto& node : g->nodes) {
    for (const auto& in : node_reads(node)) ++readers[static_cast<size_t>(cg->slots_.at(in))];
  }
  for (const auto& out : g->outputs) readers[static_cast<size_t>(cg->slots_.at(out.name))] += 2;
  for (const auto& in : g->inputs) readers[static_cast<size_t>(cg->slots_.at(in.name))] += 2;
  int64_t released = 0;
  auto release = [&cg, &readers, &released, release_packed](const std::string& name) {
    const auto slot = cg->slots_.find(name);
    auto init = release_packed->initializers.find(name);
    if (slot == cg->slots_.end() || init == release_packed->initializers.end() ||
        readers[static_cast<size_t>(slot->second)] != 1) {
      return;
    }
    for (auto& [s, t] : cg->constants_) {
      if (s != slot->second || t.raw_data() == nullptr) continue;
      released += static_cast<int64_t>(t.nbytes());
      t = Tensor::view(t.dtype(), t.shape(), nullptr, t.place());
      init->second = t;
    }
  };

  // Partition and compile. A partition whose compile fails leaves its backend (only the failing nodes
  // when the backend names them) and the graph is partitioned again: a compile-time failover.
  std::vector<std::vector<std::string>> excluded(chain.size(), std::vector<std::string>(g->nodes.size()));
  for (size_t attempt = 0;; ++attempt) {
    ORCHARD_ASSIGN_OR_RETURN(cg->placement_, place_graph(*g, chain, excluded));
    if (require_first && !chain.empty()) {
      std::string off;
      for (size_t n = 0; n < g->nodes.size(); ++n) {
        if (cg->placement_.node_backend[n] == 0) continue;
        std::string why = "claimed by no earlier backend";
        for (const auto& d : cg->placement_.declined[n]) {
          if (d.backend == 0) why = d.reason;
        }
        off += "\n  " + g->nodes[n].label() + ": " + why;
      }
      if (!off.empty()) {
        return unsupported("[runtime] fallback is disabled and these nodes cannot run on '", chain[0]->device().name, "':", off);
      }
    }
    cg->partitions_.clear();
    cg->partitions_.reserve(cg->placement_.partitions.size());
    for (auto& pp : cg->placement_.partitions) {
      CompiledPartition cp;
      cp.backend = pp.backend;
      cp.spec = pp.spec;
      cg->partitions_.push_back(std::move(cp));
    }
    // The chain's last backend compiles after the others: its failure fails the load, so once it has freed
    // packed constants (release_packed) no failover compiles from them again.
    std::vector<size_t> order;
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < cg->partitions_.size(); ++i) {
        const bool last = static_cast<size_t>(cg->partitions_[i].backend) + 1 == chain.size();
        if (last == (pass == 1)) order.push_back(i);
      }
    }
    bool failed = false;
    for (size_t i : order) {
      CompiledPartition& p = cg->partitions_[i];
      const Backend& backend = *chain[static_cast<size_t>(p.backend)];
      const bool last = static_cast<size_t>(p.backend) + 1 == chain.size();
      std::vector<int> failed_nodes;
      CompileContext ctx = cg->compile_context(p.spec, &failed_nodes);
      if (last && release_packed != nullptr) ctx.constant_packed = release;
      auto exe = backend.compile(ctx);
      if (exe.ok()) {
        p.executable = std::move(exe).value();
        continue;
      }
      if (last || attempt > g->nodes.size() + chain.size()) return exe.status();
      if (failed_nodes.empty()) failed_nodes = p.spec.nodes;
      const std::string reason = "compile failed: " + exe.status().message();
      for (int n : failed_nodes) excluded[static_cast<size_t>(p.backend)][static_cast<size_t>(n)] = reason;
      cg->failovers_->fetch_add(1);
      log(LogLevel::warn, "runtime", "failover", {{"from", backend.device().name}, {"nodes", std::to_string(failed_nodes.size())},
                                      {"reason", exe.status().to_string()}});
      failed = true;
      break;
    }
    if (!failed) break;
  }

  // Slots at each partition's edge, fallbacks, and releases after the last reading partition.
  std::vector<int> last_reader(static_cast<size_t>(cg->num_slots_), -1);
  for (size_t pi = 0; pi < cg->partitions_.size(); ++pi) {
    CompiledPartition& p = cg->partitions_[pi];
    for (const auto& in : p.spec.inputs) p.input_slots.push_back(cg->slot_of(in));
    for (const auto& out : p.spec.outputs) p.output_slots.push_back(cg->slot_of(out));
    for (int s : p.input_slots) last_reader[static_cast<size_t>(s)] = static_cast<int>(pi);
    for (int n : p.spec.nodes) cg->node_order_.push_back(n);
    for (size_t b = static_cast<size_t>(p.backend) + 1; b < chain.size() && p.fallback_backend < 0; ++b) {
      bool all = chain[b]->merges_partitions();
      for (int n : p.spec.nodes) all = all && excluded[b][static_cast<size_t>(n)].empty();
      if (all) p.fallback_backend = static_cast<int>(b);
    }
  }
  std::vector<bool> keep(static_cast<size_t>(cg->num_slots_), false);
  for (int s : cg->output_slots_) keep[static_cast<size_t>(s)] = true;
  for (int s : cg->input_slots_) keep[static_cast<size_t>(s)] = true;
  for (const auto& [s, t] : cg->constants_) keep[static_cast<size_t>(s)] = true;
  for (const auto& [outer, s] : cg->outer_refs_) keep[static_cast<size_t>(s)] = true;
  for (int s = 0; s < cg->num_slots_; ++s) {
    if (!keep[static_cast<size_t>(s)] && last_reader[static_cast<size_t>(s)] >= 0) {
      cg->partitions_[static_cast<size_t>(last_reader[static_cast<size_t>(s)])].release.push_back(s);
    }
  }
  if (released_bytes != nullptr) *released_bytes = released;
  return cg;
}

std::vector<PartitionReport> CompiledGraph::report() const {
  // Where each value is produced: a partition's memory, or the host for inputs and constants.
  std::vector<int> producer(static_cast<size_t>(num_slots_), -1);
  for (size_t pi = 0; pi < partitions_.size(); ++pi) {
    for (int s : partitions_[pi].output_slots) producer[static_cast<size_t>(s)] = static_cast<int>(pi);
  }
  auto place_of = [&](int partition) {
    return partition < 0 ? MemoryPlace{} : chain_[static_cast<size_t>(partitions_[static_cast<size_t>(partition)].backend)]->allocator().place();
  };
  std::vector<PartitionReport> out;
  for (const auto& p : partitions_) {
    PartitionReport r;
    const MemoryPlace here = chain_[static_cast<size_t>(p.backend)]->allocator().place();
    r.backend = chain_[static_cast<size_t>(p.backend)]->device().name;
    r.nodes = p.spec.nodes;
    r.inputs = p.spec.inputs;
    r.outputs = p.spec.outputs;
    r.device_units = p.executable->device_units();
    for (int s : p.input_slots) {
      const MemoryPlace from = place_of(producer[static_cast<size_t>(s)]);
      if (from == here || (from.host_visible() && here.host_visible()) || r.copied_bytes < 0) continue;
      const ValueInfo* info = slot_info(s);
      int64_t n = info && info->has_shape && info->dtype != DType::undefined ? static_cast<int64_t>(dtype_size(info->dtype)) : -1;
      if (info) {
        for (const Dim& d : info->shape) n = d.fixed() && n >= 0 ? n * d.value : -1;
      }
      r.copied_bytes = n < 0 ? -1 : r.copied_bytes + n;
    }
    out.push_back(std::move(r));
  }
  return out;
}

namespace {
// Errors that say a backend could not do its job (as opposed to bad input or a stopped run): the
// partition moves to the next backend of the chain.
bool is_backend_fault(StatusCode code) {
  return code == StatusCode::internal || code == StatusCode::unavailable || code == StatusCode::unsupported ||
         code == StatusCode::out_of_memory;
}
}  // namespace

const Executable* CompiledGraph::fallback_of(const CompiledPartition& p) const {
  auto& f = *p.fallback;
  std::call_once(f.once, [&] {
    const Backend& b = *chain_[static_cast<size_t>(p.fallback_backend)];
    auto exe = b.compile(compile_context(p.spec, nullptr));
    if (exe.ok()) {
      f.executable = std::move(exe).value();
    } else {
      f.status = exe.status().with_prefix("[" + b.device().name + "] fallback compile: ");
    }
  });
  return f.executable.get();
}

Status CompiledGraph::run_partition(const CompiledPartition& p, Frame& frame, RunEnv& env) const {
  bool use_fallback = p.failed_over->load(std::memory_order_relaxed);
  std::vector<Value> inputs(p.input_slots.size());
  std::vector<const Value*> in_ptrs(p.input_slots.size());
  std::vector<Value> outs(p.output_slots.size());
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int b = use_fallback ? p.fallback_backend : p.backend;
    const Backend& backend = *chain_[static_cast<size_t>(b)];
    const Executable* exe = p.executable.get();
    if (use_fallback) {
      if (!fallback_of(p)) return p.fallback->status;
      exe = p.fallback->executable.get();
    }
    ORCHARD_ASSIGN_OR_RETURN(Stream * stream, env.stream_for(&backend));
    (void)take_device_memory_refusal();  // only this attempt's refusals count below
    Status st;
    for (size_t i = 0; i < p.input_slots.size() && st.ok(); ++i) {
      const Value& v = frame.slots[static_cast<size_t>(p.input_slots[i])];
      in_ptrs[i] = nullptr;
      if (v.kind() == Value::Kind::none) continue;
      if (v.is_tensor() && v.tensor().place().host_visible() && exe->reads_on_host(i)) {
        in_ptrs[i] = &v;  // read where it is: no upload, and no download back for the kernel
        continue;
      }
      auto moved = move_to(v, backend, chain_, env, stream);
      if (!moved.ok()) {
        st = moved.status();
        break;
      }
      inputs[i] = std::move(moved).value();
      in_ptrs[i] = &inputs[i];
    }
    if (st.ok()) {
      std::fill(outs.begin(), outs.end(), Value());
      const bool host = backend.allocator().place().host_visible();
      ExecContext ctx{in_ptrs, outs, frame, env, host ? env.host_allocator() : backend.allocator(), stream};
      const auto t0 = std::chrono::steady_clock::now();
      st = exe->run(ctx);
      if (env.profile) {
        record(env, backend.device().name + " partition (" + std::to_string(p.spec.nodes.size()) + " nodes)",
               backend.device().name, "partition", t0);
      }
    }
    if (st.ok()) break;
    // A device memory cap refused an allocation: this request fails, naming the cap; the partition stays where
    // it is (the next request may fit), and the process keeps serving.
    if (std::string cap = take_device_memory_refusal(); !cap.empty() && st.code() == StatusCode::out_of_memory) {
      return resource_exhausted(cap, " (", st.message(), ")");
    }
    const bool can_fail_over = !use_fallback && p.fallback_backend >= 0 && is_backend_fault(st.code());
    if (!can_fail_over) return st;
    // Remembered: later runs go straight to the fallback backend.
    if (!p.failed_over->exchange(true)) {
      failovers_->fetch_add(1);
      log(LogLevel::warn, "runtime", "failover", {{"from", backend.device().name},
                                      {"to", chain_[static_cast<size_t>(p.fallback_backend)]->device().name},
                                      {"reason", st.to_string()}});
    }
    use_fallback = true;
  }
  for (size_t k = 0; k < p.output_slots.size(); ++k) {
    if (outs[k].kind() == Value::Kind::none) {
      return internal_error("[runtime] partition on ", chain_[static_cast<size_t>(p.backend)]->device().name,
                            " did not produce '", p.spec.outputs[k], "'");
    }
    frame.slots[static_cast<size_t>(p.output_slots[k])] = std::move(outs[k]);
  }
  return Status::OK();
}

Result<std::vector<Value>> CompiledGraph::run(std::span<const Value> inputs, RunEnv& env, const Frame* outer) const {
  Frame frame;
  frame.graph = this;
  frame.slots.resize(static_cast<size_t>(num_slots_));
  for (const auto& [s, t] : constants_) frame.slots[static_cast<size_t>(s)] = Value(t);
  for (size_t i = 0; i < input_slots_.size() && i < inputs.size(); ++i) {
    if (inputs[i].kind() != Value::Kind::none) frame.slots[static_cast<size_t>(input_slots_[i])] = inputs[i];
  }
  if (!outer_refs_.empty()) {
    if (outer == nullptr) return internal_error("[runtime] subgraph run without its enclosing frame");
    for (const auto& [o, s] : outer_refs_) frame.slots[static_cast<size_t>(s)] = outer->slots[static_cast<size_t>(o)];
  }
  for (const CompiledPartition& p : partitions_) {
    ORCHARD_RETURN_IF_ERROR(env.check_abort());
    ORCHARD_RETURN_IF_ERROR(run_partition(p, frame, env));
    for (int s : p.release) frame.slots[static_cast<size_t>(s)] = Value();
  }
  std::vector<Value> result;
  result.reserve(output_slots_.size());
  for (size_t i = 0; i < output_slots_.size(); ++i) {
    const Value& v = frame.slots[static_cast<size_t>(output_slots_[i])];
    if (v.kind() == Value::Kind::none) {
      return invalid_argument("[runtime] output '", graph_->outputs[i].name, "' has no value (an input it depends on was not given?)");
    }
    // A subgraph's outputs go to the kernel that ran it (If, Loop, Scan: host kernels), so they come back to
    // the host too; only top-level outputs may stay on a device, when the caller asks.
    if (outer != nullptr || !env.device_outputs) {
      ORCHARD_ASSIGN_OR_RETURN(Value host, move_to_host(v, chain_, env));
      result.push_back(std::move(host));
    } else {
      result.push_back(v);
    }
  }
  if (outer == nullptr) ORCHARD_RETURN_IF_ERROR(env.synchronize_all());
  return result;
}

}  // namespace orchard::runtime
