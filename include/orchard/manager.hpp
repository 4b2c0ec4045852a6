// Manager: many models, many clients, one process that keeps serving. Requests are admitted under a
// concurrency limit and a bounded priority queue, charged against a memory budget, bounded by deadlines,
// cancellable, measured, and failed over to the next backend when one breaks. See docs/manager.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "orchard/session.hpp"
#include "orchard/status.hpp"

namespace orchard {

using ModelId = uint64_t;
using RequestId = uint64_t;

struct ManagerConfig {
  int max_concurrent_operations = 0;  // requests running at once; 0: one per core
  int max_queue_depth = 64;           // requests waiting for a slot; a request beyond it is rejected at once
  int64_t memory_pool_mb = 1024;      // budget for weights, reservations and request tensors (1/8 of it is
                                      // set aside for the buffer pool's idle buffers)
  int64_t default_timeout_ms = 0;     // deadline of requests that set none; 0: no deadline
  bool metrics_enabled = true;
  // A request whose activation reservation does not fit now: false waits (until its deadline) for
  // memory to free up; true rejects it at once with out_of_memory.
  bool reject_on_memory_pressure = false;
  int intra_op_threads = 0;                 // size of the one intra-op pool all models share; 0: one per core
  std::vector<std::string> backend_chain;   // default backend preference of loaded models; empty: platform chain
  // Where the Manager's buffer pool gets request tensor memory from. Null: the process allocator.
  std::shared_ptr<Allocator> allocator;
  // Cap on each accelerator's device memory while this Manager lives (orchard/device_memory.hpp; like ONNX Runtime's
  // gpu_mem_limit), a budget apart from memory_pool_mb: a request that needs more fails with resource_exhausted
  // naming the cap, and later requests run. Device pools are per process, so the cap holds for every session on
  // the device. 0: leave the process's cap.
  int64_t device_memory_mb = 0;
};

struct LoadOptions {
  std::string name;        // shown in metrics and logs; default: the file's stem
  SessionOptions session;  // optimization level and backend preference (the pool and allocator are the Manager's)
  // Requests of this model running at once (its instances); 0: only max_concurrent_operations limits it.
  // Its queued requests wait for one of its own slots while other models' requests go ahead.
  int max_concurrent = 0;
  // This model's share of the memory budget: its weights plus the activation reservations of its running
  // requests stay within it (outputs a client still holds count against the whole budget only); 0: none.
  int64_t memory_limit_mb = 0;
};

struct InferenceOptions {
  int64_t timeout_ms = -1;  // -1: the config's default_timeout_ms; 0: no deadline
  int priority = 0;         // higher runs first; equal priorities run in arrival order
  std::vector<std::string> backend_preference;  // empty: the model's chain; else a session compiled for it
  std::string trace_path;   // non-empty: write this request's Chrome trace (queue wait + one event per node)
  // True: when a slot and the memory are free and no request is queued, run on the calling thread before
  // execute returns (no worker hand-off; for small models whose callers may block for one run); else queue.
  bool run_inline = false;
};

// Counts and rates for one model, or all of them.
struct PerformanceSummary {
  double throughput_ips = 0;   // completed requests per second (EWMA)
  double latency_ms = 0;       // end-to-end latency (EWMA), queue wait included
  double latency_p50_ms = 0, latency_p90_ms = 0, latency_p99_ms = 0;
  double memory_usage_mb = 0;  // weights + reservations + request tensors still held
  uint64_t ok = 0, rejected = 0, timed_out = 0, cancelled = 0, failed = 0;
  uint64_t failovers = 0;      // nodes moved to a later backend after a failure
  // Summed over the requests answered with outputs (`ok` of them): time queued and time running.
  double queue_ms_total = 0, compute_ms_total = 0;
  int64_t queue_depth = 0;     // requests waiting now
  int64_t running = 0;         // requests running now
};

using Completion = std::function<void(Result<NamedValues>)>;

class Manager {
 public:
  static Result<std::unique_ptr<Manager>> create(const ManagerConfig& config);
  // Answers queued requests with `unavailable`, cancels running ones and waits for them.
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Loads, validates and compiles a model and charges its weights to the budget. Refuses with
  // out_of_memory, naming the bytes needed and available, when its weights and planned workspace do not fit.
  Result<ModelId> load_model(const std::filesystem::path& path, const LoadOptions& options = {});
  // Stops new requests for the model, waits for its queued and running ones, then frees it.
  Status unload_model(ModelId id);
  // Returns the loaded model's session (for its input/output metadata).
  Result<std::shared_ptr<const Session>> session(ModelId id) const;

  // Submits a request. `done` is called exactly once: on a worker thread, or before execute returns when
  // the request is refused at once (unknown model, full queue, bad timeout).
  RequestId execute(ModelId id, NamedValues inputs, const InferenceOptions& options, Completion done);
  struct Pending {
    RequestId id;
    std::future<Result<NamedValues>> result;
  };
  Pending execute(ModelId id, NamedValues inputs, const InferenceOptions& options = {});

  // Queued: answered `cancelled` at once. Running: stopped at the next node boundary, answered
  // `cancelled`, its slot and memory released. Returns not_found when the request has already finished.
  Status cancel(RequestId id);

  void enable_metrics(bool on);
  // Returns the buffer pool's idle buffers to the system; returns the bytes released.
  int64_t trim_buffers();
  // Summary of one model, or of all models when `id` is empty.
  PerformanceSummary performance_summary(std::optional<ModelId> id = std::nullopt) const;
  // All metrics in the Prometheus text exposition format.
  std::string metrics_text() const;

  struct Impl;

 private:
  explicit Manager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchard
