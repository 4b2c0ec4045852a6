#include "runtime/memory_planner.hpp"

#include <algorithm>
#include <map>

#include "core/logging.hpp"

namespace orchard::runtime {

namespace {

// Returns the bytes of a value declared as `info`, or -1 when a dim or the dtype is unknown.
int64_t declared_bytes(const ValueInfo& info, const std::map<std::string, int64_t>& symbols) {
  if (info.kind != Value::Kind::tensor || info.dtype == DType::undefined || !info.has_shape) return -1;
  int64_t n = static_cast<int64_t>(dtype_size(info.dtype));
  for (const Dim& d : info.shape) {
    int64_t v = d.value;
    if (!d.fixed()) {
      auto it = symbols.find(d.symbol);
      if (d.symbol.empty() || it == symbols.end()) return -1;
      v = it->second;
    }
    n *= v;
  }
  return n;
}

}  // namespace

std::vector<ValueLifetime> value_lifetimes(const CompiledGraph& cg) {
  const graph::Graph& g = cg.graph();
  const auto& order = cg.node_order();
  std::vector<int> position(g.nodes.size(), 0);
  for (size_t i = 0; i < order.size(); ++i) position[static_cast<size_t>(order[i])] = static_cast<int>(i);
  std::vector<int> partition_of(g.nodes.size(), 0);
  for (size_t p = 0; p < cg.partitions().size(); ++p) {
    for (int n : cg.partitions()[p].spec.nodes) partition_of[static_cast<size_t>(n)] = static_cast<int>(p);
  }
  std::vector<ValueLifetime> out;
  std::map<int, size_t> index;  // slot -> entry in out
  for (int n : order) {
    const graph::Node& node = g.nodes[static_cast<size_t>(n)];
    const auto& part = cg.partitions()[static_cast<size_t>(partition_of[static_cast<size_t>(n)])];
    for (const auto& name : node.outputs) {
      if (name.empty()) continue;
      ValueLifetime v;
      v.slot = cg.slot_of(name);
      v.first = v.last = position[static_cast<size_t>(n)];
      v.place = cg.chain()[static_cast<size_t>(part.backend)]->allocator().place();
      index[v.slot] = out.size();
      out.push_back(v);
    }
    for (const auto& name : node_reads(node)) {
      auto it = index.find(cg.slot_of(name));
      if (it != index.end()) out[it->second].last = std::max(out[it->second].last, position[static_cast<size_t>(n)]);
    }
  }
  for (const auto& o : g.outputs) {
    auto it = index.find(cg.slot_of(o.name));
    if (it != index.end()) out[it->second].kept = true;
  }
  return out;
}

MemoryEstimator::MemoryEstimator(const CompiledGraph& cg) : cg_(&cg), lifetimes_(value_lifetimes(cg)) {
  for (const auto& [slot, t] : cg.constants()) weights_bytes_ += static_cast<int64_t>(t.nbytes());
}

MemoryEstimate MemoryEstimator::estimate(const std::vector<const Tensor*>& inputs) const {
  const graph::Graph& g = cg_->graph();
  MemoryEstimate est;
  est.weights_bytes = weights_bytes_;

  std::map<std::string, int64_t> symbols;
  int64_t largest_input = 0;
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i) {
    const Tensor* t = inputs[i];
    if (t == nullptr) continue;
    largest_input = std::max<int64_t>(largest_input, static_cast<int64_t>(t->nbytes()));
    const ValueInfo& info = g.inputs[i];
    if (!info.has_shape || info.shape.size() != t->rank()) continue;
    for (size_t d = 0; d < t->rank(); ++d) {
      if (!info.shape[d].symbol.empty()) symbols.emplace(info.shape[d].symbol, t->dim(d));
    }
  }
  const size_t steps = cg_->node_order().size();
  std::vector<int64_t> born(steps + 1, 0), dies(steps + 1, 0);
  for (const ValueLifetime& v : lifetimes_) {
    const ValueInfo* info = cg_->slot_info(v.slot);
    int64_t bytes = info == nullptr ? -1 : declared_bytes(*info, symbols);
    if (bytes < 0) {
      ++est.unknown_values;
      bytes = largest_input;
    }
    born[static_cast<size_t>(v.first)] += bytes;
    if (!v.kept) dies[static_cast<size_t>(v.last)] += bytes;
  }
  int64_t live = 0, peak = 0;
  for (size_t i = 0; i < steps; ++i) {
    live += born[i];
    peak = std::max(peak, live);
    live -= dies[i];
  }
  est.activation_bytes = peak;
  return est;
}

}  // namespace orchard::runtime

namespace orchard::runtime {

// ---- RunArena ----

RunArena::RunArena(const CompiledGraph& cg)
    : graph_(&cg),
      bytes_(static_cast<size_t>(cg.num_slots()), -1),
      alias_of_(static_cast<size_t>(cg.num_slots()), -1),
      escaped_(static_cast<size_t>(cg.num_slots()), false) {}

RunArena::RunArena(const CompiledGraph& cg, std::shared_ptr<const ArenaPlan> plan, std::shared_ptr<void> block)
    : graph_(&cg), plan_(std::move(plan)), block_(std::move(block)) {}

PlannedOutput RunArena::place(int slot) const {
  if (!plan_ || slot < 0 || plan_->offset[static_cast<size_t>(slot)] < 0) return {};
  return {static_cast<std::byte*>(block_.get()) + plan_->offset[static_cast<size_t>(slot)],
          plan_->capacity[static_cast<size_t>(slot)], &block_};
}

namespace {

// True when `t`'s bytes start inside [base, base + bytes).
bool starts_inside(const Tensor& t, const void* base, size_t bytes) {
  const auto* p = static_cast<const std::byte*>(t.raw_data());
  const auto* b = static_cast<const std::byte*>(base);
  return p != nullptr && b != nullptr && p >= b && p < b + bytes;
}

}  // namespace

void RunArena::after_step(std::span<const int> out_slots, std::span<const Value> outs, std::span<const int> in_slots,
                          std::span<const Value* const> ins, uint64_t made) {
  for (size_t k = 0; k < out_slots.size() && k < outs.size(); ++k) {
    const int s = out_slots[k];
    if (s < 0) continue;
    const Value& v = outs[k];
    bool fresh = k < 64 && ((made >> k) & 1u);
    if (plan_) {
      // Planned: a value inside the arena must be where the plan put it (its place, or within its group's
      // place for an alias); anything else is an alias the plan did not foresee.
      if (!v.is_tensor() || !starts_inside(v.tensor(), block_.get(), static_cast<size_t>(plan_->size))) continue;
      const size_t si = static_cast<size_t>(s);
      const auto* at = static_cast<const std::byte*>(block_.get()) + plan_->offset[si];
      const bool where_planned =
          plan_->offset[si] >= 0 &&
          (plan_->alias[si] ? starts_inside(v.tensor(), at, static_cast<size_t>(std::max<int64_t>(plan_->capacity[si], 1)))
                            : v.tensor().raw_data() == at);
      if (!where_planned) broken_ = true;
      continue;
    }
    // A made output that starts inside an input is the kernel handing back (part of) that input.
    for (size_t j = 0; fresh && v.is_tensor() && j < ins.size(); ++j) {
      if (ins[j] && ins[j]->is_tensor() &&
          starts_inside(v.tensor(), ins[j]->tensor().raw_data(), std::max<size_t>(ins[j]->tensor().nbytes(), 1))) {
        fresh = false;
      }
    }
    if (v.is_tensor() && fresh) {
      const Tensor& t = v.tensor();
      if (t.place().host_visible() && t.dtype() != DType::string) {
        bytes_[static_cast<size_t>(s)] = std::max(bytes_[static_cast<size_t>(s)], static_cast<int64_t>(t.nbytes()));
      }
      continue;
    }
    // Set to an existing value: an alias of the input whose storage it starts in (Reshape, Identity, ...), or a
    // sequence / optional that may hold inputs' storage (they escape the plan).
    for (size_t j = 0; j < in_slots.size() && j < ins.size(); ++j) {
      if (in_slots[j] < 0 || ins[j] == nullptr || !ins[j]->is_tensor()) continue;
      const Tensor& in = ins[j]->tensor();
      if (!v.is_tensor()) {
        escaped_[static_cast<size_t>(in_slots[j])] = true;
      } else if (starts_inside(v.tensor(), in.raw_data(), std::max<size_t>(in.nbytes(), 1))) {
        alias_of_[static_cast<size_t>(s)] = in_slots[j];
        break;
      }
    }
  }
}

// ---- building a plan ----

namespace {

// Ops whose kernels compute each output element from the inputs' elements at the same index only, so the
// output may take the storage of an input of the same size that dies there.
bool elementwise_in_place(const graph::Node& n) {
  static const char* const kOps[] = {"Add",  "Sub",  "Mul",       "Div",         "Relu",      "Sigmoid", "Tanh",
                                     "Erf",  "Exp",  "Neg",       "Abs",         "Sqrt",      "Reciprocal",
                                     "Clip", "Gelu", "LeakyRelu", "HardSigmoid", "HardSwish"};
  if (n.domain != "" && !(n.domain == "com.orchard" && n.op_type == "Gelu")) return false;
  return std::any_of(std::begin(kOps), std::end(kOps), [&](const char* op) { return n.op_type == op; });
}

struct Group {
  int root = -1;
  int first = 0, last = 0;
  int64_t bytes = 0;
  bool excluded = false;
  std::vector<int> members;
  int64_t offset = -1;
};

}  // namespace

ArenaPlan build_arena_plan(const CompiledGraph& cg, const RunArena& rec) {
  const graph::Graph& g = cg.graph();
  const size_t slots = static_cast<size_t>(cg.num_slots());
  ArenaPlan plan;
  plan.offset.assign(slots, -1);
  plan.capacity.assign(slots, 0);
  plan.alias.assign(slots, false);
  const auto& bytes = rec.recorded_bytes();
  const auto& alias = rec.aliases();

  const auto& order = cg.node_order();
  std::vector<int> position(g.nodes.size(), 0);
  for (size_t i = 0; i < order.size(); ++i) position[static_cast<size_t>(order[i])] = static_cast<int>(i);
  std::vector<int> first(slots, -1), last(slots, -1);
  std::vector<bool> kept(slots, false), excluded(slots, false);
  for (const ValueLifetime& v : value_lifetimes(cg)) {
    first[static_cast<size_t>(v.slot)] = v.first;
    last[static_cast<size_t>(v.slot)] = v.last;
    kept[static_cast<size_t>(v.slot)] = v.kept;
  }
  for (size_t s = 0; s < slots; ++s) excluded[s] = rec.escaped()[s];
  // Values read by a node with subgraphs (its bodies may return or keep them) stay out of the arena.
  for (const auto& node : g.nodes) {
    const bool has_subgraph = std::any_of(node.attributes.begin(), node.attributes.end(), [](const auto& a) {
      return a.second.g != nullptr || !a.second.graphs.empty();
    });
    if (!has_subgraph) continue;
    for (const auto& name : node_reads(node)) {
      if (const int s = cg.slot_of(name); s >= 0) excluded[static_cast<size_t>(s)] = true;
    }
  }
  // A partition's inputs live until its last node (a failover re-runs it from its start); a device partition
  // may still be copying them asynchronously after that, so they stay out of the arena.
  for (const auto& p : cg.partitions()) {
    int end = 0;
    for (int n : p.spec.nodes) end = std::max(end, position[static_cast<size_t>(n)]);
    const bool host = cg.chain()[static_cast<size_t>(p.backend)]->allocator().place().host_visible();
    for (int s : p.input_slots) {
      if (s < 0) continue;
      last[static_cast<size_t>(s)] = std::max(last[static_cast<size_t>(s)], end);
      if (!host) excluded[static_cast<size_t>(s)] = true;
    }
  }

  // Groups: a recorded value and the values aliasing its storage; each group is one place in the arena.
  auto root_of = [&](int s) {
    for (int hops = 0; alias[static_cast<size_t>(s)] >= 0 && hops < static_cast<int>(slots); ++hops) s = alias[static_cast<size_t>(s)];
    return s;
  };
  std::vector<int> group_of(slots, -1);
  std::vector<Group> groups;
  for (size_t s = 0; s < slots; ++s) {
    if (bytes[s] < 0 || alias[s] >= 0 || first[s] < 0) continue;
    group_of[s] = static_cast<int>(groups.size());
    Group gr;
    gr.root = static_cast<int>(s);
    gr.first = first[s];
    gr.last = last[s];
    gr.bytes = bytes[s];
    gr.excluded = excluded[s] || kept[s];
    gr.members = {static_cast<int>(s)};
    groups.push_back(gr);
  }
  for (size_t s = 0; s < slots; ++s) {
    if (alias[s] < 0) continue;
    const int r = root_of(static_cast<int>(s));
    if (group_of[static_cast<size_t>(r)] < 0) continue;  // an alias of an input or constant
    Group& gr = groups[static_cast<size_t>(group_of[static_cast<size_t>(r)])];
    group_of[s] = group_of[static_cast<size_t>(r)];
    gr.last = std::max(gr.last, last[s]);
    gr.excluded = gr.excluded || excluded[s] || kept[s] || last[s] < 0;
    gr.members.push_back(static_cast<int>(s));
  }
  // Unplanned peak of these values (each allocated on its own), for comparison.
  {
    std::vector<int64_t> delta(order.size() + 1, 0);
    for (const Group& gr : groups) {
      if (gr.excluded) continue;
      delta[static_cast<size_t>(gr.first)] += gr.bytes;
      delta[static_cast<size_t>(gr.last) + 1] -= gr.bytes;
    }
    int64_t live = 0;
    for (int64_t d : delta) plan.unplanned_peak = std::max(plan.unplanned_peak, live += d);
  }
  // In place: an elementwise op's output takes the group of an input of the same size whose life ends there.
  for (int n : order) {
    const graph::Node& node = g.nodes[static_cast<size_t>(n)];
    if (!elementwise_in_place(node) || node.outputs.size() != 1) continue;
    const int o = cg.slot_of(node.outputs[0]);
    if (o < 0 || group_of[static_cast<size_t>(o)] < 0) continue;
    Group& og = groups[static_cast<size_t>(group_of[static_cast<size_t>(o)])];
    if (og.root != o || og.excluded || og.members.empty()) continue;
    const int t = position[static_cast<size_t>(n)];
    for (const auto& in : node.inputs) {
      const int x = in.empty() ? -1 : cg.slot_of(in);
      if (x < 0 || group_of[static_cast<size_t>(x)] < 0) continue;
      Group& xg = groups[static_cast<size_t>(group_of[static_cast<size_t>(x)])];
      if (&xg == &og || xg.excluded || xg.last != t || xg.bytes != og.bytes) continue;
      for (int m : og.members) {
        group_of[static_cast<size_t>(m)] = group_of[static_cast<size_t>(x)];
        xg.members.push_back(m);
      }
      xg.last = og.last;
      og.members.clear();
      og.excluded = true;
      ++plan.in_place;
      break;
    }
  }
  // Offsets, largest first: the lowest 64-byte aligned offset clear of every placed group alive at the same time.
  std::vector<Group*> order_by_size;
  for (Group& gr : groups) {
    if (!gr.excluded && !gr.members.empty()) order_by_size.push_back(&gr);
  }
  std::stable_sort(order_by_size.begin(), order_by_size.end(), [](const Group* a, const Group* b) { return a->bytes > b->bytes; });
  std::vector<const Group*> placed;
  auto align = [](int64_t v) { return (v + 63) / 64 * 64; };
  for (Group* gr : order_by_size) {
    std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of overlapping lives
    for (const Group* p : placed) {
      if (p->first <= gr->last && gr->first <= p->last) busy.emplace_back(p->offset, p->offset + align(p->bytes));
    }
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (const auto& [b, e] : busy) {
      if (at + align(gr->bytes) <= b) break;
      at = std::max(at, e);
    }
    gr->offset = at;
    placed.push_back(gr);
    plan.size = std::max(plan.size, at + align(gr->bytes));
    for (int m : gr->members) {
      plan.offset[static_cast<size_t>(m)] = at;
      plan.capacity[static_cast<size_t>(m)] = gr->bytes;
      plan.alias[static_cast<size_t>(m)] = alias[static_cast<size_t>(m)] >= 0;
      ++plan.planned;
    }
  }
  return plan;
}

// ---- ArenaPlanner ----

namespace {

constexpr size_t kMaxSignatures = 16;  // input-shape signatures planned per session
constexpr size_t kMaxIdle = 2;         // idle arenas kept per signature (concurrent runs)

std::vector<int64_t> signature(std::span<const Value> inputs) {
  size_t n = 0;
  for (const Value& v : inputs) n += 3 + (v.is_tensor() ? v.tensor().rank() : 0);
  std::vector<int64_t> sig;
  sig.reserve(n);  // one allocation per run
  for (const Value& v : inputs) {
    sig.push_back(static_cast<int64_t>(v.kind()));
    if (!v.is_tensor()) continue;
    sig.push_back(static_cast<int64_t>(v.tensor().dtype()));
    sig.push_back(static_cast<int64_t>(v.tensor().rank()));
    for (int64_t d : v.tensor().shape()) sig.push_back(d);
  }
  return sig;
}

}  // namespace

std::unique_ptr<RunArena> ArenaPlanner::begin(std::span<const Value> inputs, const std::shared_ptr<Allocator>& request) {
  const auto sig = signature(inputs);
  std::shared_ptr<const ArenaPlan> plan;
  std::shared_ptr<void> block;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(sig);
    if (it == entries_.end()) {
      if (entries_.size() >= kMaxSignatures) return nullptr;
      auto rec = std::make_unique<RunArena>(cg_);
      rec->signature_ = sig;
      return rec;
    }
    Entry& e = it->second;
    if (e.disabled) return nullptr;
    plan = e.plan;
    if (!request && !e.idle.empty()) {
      block = std::move(e.idle.back());
      e.idle.pop_back();
    }
  }
  if (plan->planned == 0) return nullptr;
  if (!block) {
    const size_t size = static_cast<size_t>(plan->size);
    Allocator& from = request ? *request : default_allocator();
    void* p = from.allocate(size, Tensor::kAlignment);
    if (p == nullptr) return nullptr;  // the run allocates value by value (and fails naming the node if it must)
    std::shared_ptr<Allocator> keep = request;
    block = std::shared_ptr<void>(p, [&from, size, keep](void* q) { from.deallocate(q, size); });
  }
  auto run = std::make_unique<RunArena>(cg_, std::move(plan), std::move(block));
  run->signature_ = sig;
  run->reusable_ = !request;
  return run;
}

void ArenaPlanner::end(std::unique_ptr<RunArena> run, bool ok) {
  if (!run) return;
  const std::vector<int64_t> sig = std::move(run->signature_);
  if (!run->planned()) {
    if (!ok) return;
    auto plan = std::make_shared<const ArenaPlan>(build_arena_plan(cg_, *run));
    log(LogLevel::info, "runtime", "memory plan",
        {{"arena_bytes", std::to_string(plan->size)}, {"unplanned_bytes", std::to_string(plan->unplanned_peak)},
         {"values", std::to_string(plan->planned)}, {"in_place", std::to_string(plan->in_place)}});
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[sig];
    if (!e.plan && !e.disabled) e.plan = std::move(plan);
    return;
  }
  std::shared_ptr<void> block = std::move(run->block_);
  const bool broken = run->broken();
  const bool own_memory = run->reusable_;
  run.reset();
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[sig];
  if (broken) {
    e.disabled = true;
    e.plan.reset();
    e.idle.clear();
    return;
  }
  // Reused only when nothing holds it any more (no tensor of the run escaped with it).
  if (own_memory && block.use_count() == 1 && e.idle.size() < kMaxIdle) e.idle.push_back(std::move(block));
}

std::shared_ptr<const ArenaPlan> ArenaPlanner::plan_for(std::span<const Value> inputs) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(signature(inputs));
  return it == entries_.end() ? nullptr : it->second.plan;
}

}  // namespace orchard::runtime
