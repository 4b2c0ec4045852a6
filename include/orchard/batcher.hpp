// Batcher: dynamic batching in front of one Manager model. Requests whose inputs differ only in the first
// (batch) dimension are concatenated into one Manager request of at most max_batch_size rows, waiting at
// most max_queue_delay_us for company; outputs are split back per request. Each request keeps its own
// deadline and can be cancelled alone. See docs/serving.md ("Dynamic batching").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "orchard/manager.hpp"

namespace orchard {

struct BatchingConfig {
  int64_t max_batch_size = 8;                  // rows per batch (sum of the requests' first dims)
  int64_t max_queue_delay_us = 0;              // how long a partial batch may wait; 0: send what is queued
  std::vector<int64_t> preferred_batch_sizes;  // a partial batch of one of these sizes is sent at once
  int max_inflight_batches = 2;                // batches running in the Manager at once; the rest queue here
  int64_t max_queue_size = 1024;               // requests waiting here; beyond it resource_exhausted
};

// Counts of one Batcher (monotonic, except pending).
struct BatcherStats {
  uint64_t requests_ok = 0;      // requests answered with outputs
  uint64_t requests_failed = 0;  // answered with an error (cancelled and deadline included)
  uint64_t executions = 0;       // batches sent to the Manager
  uint64_t inferences = 0;       // rows in those batches (batch n counts n)
  int64_t pending = 0;           // requests waiting here now
};

// Metrics shared by many Batchers (one family per metric, a "model" label per Batcher).
class BatchingMetrics {
 public:
  BatchingMetrics();
  ~BatchingMetrics();
  BatchingMetrics(const BatchingMetrics&) = delete;
  BatchingMetrics& operator=(const BatchingMetrics&) = delete;
  // Returns every Batcher's metrics in the Prometheus text exposition format.
  std::string prometheus_text() const;

  struct Impl;
  std::unique_ptr<Impl> impl;
};

class Batcher {
 public:
  // Batches requests to `model` of `manager` (both must outlive the Batcher). `name` labels the metrics
  // in `metrics` (may be null).
  static Result<std::unique_ptr<Batcher>> create(Manager& manager, ModelId model, const BatchingConfig& config,
                                                 std::string name = "model",
                                                 std::shared_ptr<BatchingMetrics> metrics = nullptr);
  // Answers queued requests `unavailable` and waits for the batches in flight.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Submits one request whose every input has the batch as its first dimension. `done` is called exactly
  // once, on a Manager worker or the Batcher's thread, or before submit returns when refused at once.
  // options.timeout_ms and priority apply to this request; trace_path and backend_preference are ignored.
  RequestId submit(NamedValues inputs, const InferenceOptions& options, Completion done);
  // Queued or running: answered `cancelled` at once (a running batch goes on for the others). Returns
  // not_found when the request has already been answered.
  Status cancel(RequestId id);
  BatcherStats stats() const;

  struct Impl;

 private:
  explicit Batcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchard
