// The Manager's metrics: per-model and global counters, gauges, histograms and EWMAs, exposed as a
// PerformanceSummary and as Prometheus text. Recording is lock-free on the request path.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "orchard/manager.hpp"
#include "orchard/session.hpp"

namespace orchard {
class BufferPool;
}  // namespace orchard

namespace orchard::manager {

enum class Outcome : unsigned char { ok, rejected, timed_out, cancelled, failed };

class ManagerMetrics {
 public:
  ManagerMetrics();
  ~ManagerMetrics();

  void set_enabled(bool on);
  bool enabled() const;
  void add_model(ModelId id, const std::string& name);
  void remove_model(ModelId id);

  // One finished request: its outcome, time queued and computing (ms), and end-to-end latency (ms).
  void record(ModelId id, Outcome outcome, double queue_ms, double compute_ms, double total_ms);
  void add_failovers(ModelId id, int64_t n);
  // Bytes a model's runs copied between memories (host and devices).
  void add_bytes_copied(ModelId id, int64_t n);
  // How a model is cut across backends: its partitions and its nodes per backend.
  void set_placement(ModelId id, const PlacementInfo& placement);
  // Gauges, set by the Manager as they change.
  void set_queue_depth(int64_t n);
  void set_running(int64_t n);
  void set_memory(int64_t used_bytes, int64_t limit_bytes, int64_t model_weights_bytes);
  void set_model_memory(ModelId id, int64_t bytes);
  // Device memory of one accelerator (a DeviceMemoryBudget): bytes in use, cap (0: none), peak, refusals.
  void set_device_memory(const std::string& device, int64_t used, int64_t limit, int64_t peak, int64_t refused);
  // Exports `pool`'s statistics (hits, misses, bytes held idle), read when the metrics are rendered (reading
  // them sums every size class's shards: too much to do per request).
  void watch_pool(std::shared_ptr<const BufferPool> pool);

  PerformanceSummary summary(std::optional<ModelId> id, int64_t queue_depth, int64_t running) const;
  std::string prometheus_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::map<ModelId, std::string> names_;  // guarded by Impl::mu
};

}  // namespace orchard::manager
