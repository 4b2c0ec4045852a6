// Memory planning: what a run of a compiled graph will hold at its peak, from the shapes the importer
// inferred, with symbolic dims bound to the actual inputs. The Manager reserves this before a run.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "runtime/executor.hpp"

namespace orchard::runtime {

// One intermediate value's life in execution order (positions index CompiledGraph::node_order()) and
// the memory it lives in (the estimate below sums sizes by these lifetimes; the arena planner places them).
struct ValueLifetime {
  int slot = -1;
  int first = 0;  // position of the producing node
  int last = 0;   // position of the last reader (the producer's own position when nothing reads it)
  bool kept = false;  // a graph output: lives until the run returns
  MemoryPlace place;
};

// Returns the lifetimes of every value produced by a node of `cg` (not inputs or constants).
std::vector<ValueLifetime> value_lifetimes(const CompiledGraph& cg);

// Estimates weights and peak activation bytes of running a compiled graph on inputs of given shapes. What
// does not depend on the shapes (lifetimes, weight bytes) is computed once here: the Manager estimates every
// request before admitting it.
class MemoryEstimator {
 public:
  explicit MemoryEstimator(const CompiledGraph& cg);
  // `inputs` in graph input order; a null entry is an input that is not a tensor.
  MemoryEstimate estimate(const std::vector<const Tensor*>& inputs) const;

 private:
  const CompiledGraph* cg_;
  std::vector<ValueLifetime> lifetimes_;
  int64_t weights_bytes_ = 0;
};


}  // namespace orchard::runtime

namespace orchard::runtime {

// ---- Arena planning (per input-shape signature) ----
//
// The first run of a top-level graph with given input shapes records, for every value a host kernel allocates,
// its size, and which outputs alias (share the storage of) an input. Its plan then places those values at
// offsets of one arena by lifetime (greedy by size: a value may reuse the bytes of any value whose lifetime it
// does not overlap), puts the output of an elementwise op over an input that dies there (in place), and later
// runs with the same input shapes allocate nothing else for them. Not planned: graph outputs, values read by a
// node with subgraphs (If/Loop/Scan) or by a partition on a device backend, strings, device memory, subgraphs.
struct ArenaPlan {
  std::vector<int64_t> offset;    // per slot: byte offset in the arena, -1 when not planned
  std::vector<int64_t> capacity;  // per slot: bytes reserved at that offset
  std::vector<bool> alias;        // per slot: the value shares the storage of another planned value
  int64_t size = 0;               // arena bytes
  int64_t unplanned_peak = 0;     // peak bytes of the same values allocated one by one (for comparison)
  int planned = 0;                // values placed in the arena
  int in_place = 0;               // values placed over an input that dies at their producer
};

// One run's side of the plan: recording sizes and aliases (first run), or handing out planned places.
class RunArena {
 public:
  // Recording mode for a run of `cg`.
  explicit RunArena(const CompiledGraph& cg);
  // Planned mode: `block` holds plan->size bytes.
  RunArena(const CompiledGraph& cg, std::shared_ptr<const ArenaPlan> plan, std::shared_ptr<void> block);

  const CompiledGraph* graph() const { return graph_; }
  bool planned() const { return plan_ != nullptr; }
  const std::shared_ptr<const ArenaPlan>& plan() const { return plan_; }
  const std::shared_ptr<void>& block() const { return block_; }
  // Planned mode: the place of the value in `slot` (data null when it has none).
  PlannedOutput place(int slot) const;
  // Called after each host kernel of the graph: outputs (frame slots, values before they are stored), its
  // inputs (frame slots, values), and OpContext::made_outputs(). Records sizes and aliases; in planned mode
  // notes an output that aliases arena memory the plan did not foresee (broken()).
  void after_step(std::span<const int> out_slots, std::span<const Value> outs, std::span<const int> in_slots,
                  std::span<const Value* const> ins, uint64_t made);
  // Planned mode: true when an output aliased arena memory unforeseen by the plan (the run must be redone).
  bool broken() const { return broken_; }
  // Recording mode: per slot, the bytes a kernel allocated (-1: none) and the slot whose storage it aliases (-1).
  const std::vector<int64_t>& recorded_bytes() const { return bytes_; }
  const std::vector<int>& aliases() const { return alias_of_; }
  // Recording mode: slots whose storage escaped into a sequence or optional (never planned).
  const std::vector<bool>& escaped() const { return escaped_; }

 private:
  const CompiledGraph* graph_;
  std::shared_ptr<const ArenaPlan> plan_;
  std::shared_ptr<void> block_;
  std::vector<int64_t> bytes_;
  std::vector<int> alias_of_;
  std::vector<bool> escaped_;
  bool broken_ = false;
  std::vector<int64_t> signature_;  // the input shapes it was begun for (ArenaPlanner)
  bool reusable_ = false;           // the arena is the planner's own (not a request's): it may be reused
  friend class ArenaPlanner;
};

// Returns the plan for the values `recorded` saw in a successful run of `cg`.
ArenaPlan build_arena_plan(const CompiledGraph& cg, const RunArena& recorded);

// A session's plans, one per input-shape signature, and the arenas idle between runs.
class ArenaPlanner {
 public:
  explicit ArenaPlanner(const CompiledGraph& cg) : cg_(cg) {}
  // Returns the arena side of a run with these graph inputs: planned when these shapes have a plan, else
  // recording (null past the signature limit). With `request` (the Manager's per-request allocator) the arena
  // comes from it and is freed with the run; else from the idle pool.
  std::unique_ptr<RunArena> begin(std::span<const Value> inputs, const std::shared_ptr<Allocator>& request);
  // Ends a run: a successful recording becomes the plan of its shapes; a broken plan is dropped for good; an
  // arena that no tensor holds any more goes back to the idle pool.
  void end(std::unique_ptr<RunArena> run, bool ok);
  // Returns the plan for these input shapes, or null when none was made yet.
  std::shared_ptr<const ArenaPlan> plan_for(std::span<const Value> inputs) const;

 private:
  struct Entry {
    std::shared_ptr<const ArenaPlan> plan;
    std::vector<std::shared_ptr<void>> idle;  // arenas of plan->size bytes, free for the next run
    bool disabled = false;                    // a planned run aliased unforeseen memory: run unplanned
  };
  const CompiledGraph& cg_;
  mutable std::mutex mu_;
  std::map<std::vector<int64_t>, Entry> entries_;
};

}  // namespace orchard::runtime
