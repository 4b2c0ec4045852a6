#include "manager/manager_metrics.hpp"

#include <map>
#include <mutex>

#include "core/buffer_pool.hpp"
#include "telemetry/metrics.hpp"

namespace orchard::manager {

namespace {

using telemetry::Labels;

constexpr const char* kOutcomeNames[] = {"ok", "rejected", "timed_out", "cancelled", "failed"};
constexpr size_t kOutcomes = 5;
constexpr double kEwmaAlpha = 0.1;
constexpr auto kRateHalfLife = std::chrono::seconds(1);

// The series one scope (a model, or all models) records into; created once, updated lock-free.
struct Scope {
  std::shared_ptr<telemetry::Counter> outcomes[kOutcomes];
  std::shared_ptr<telemetry::Counter> failovers;
  std::shared_ptr<telemetry::Counter> bytes_copied;
  std::shared_ptr<telemetry::Histogram> latency, queue_time, compute_time;
  std::shared_ptr<telemetry::Ewma> latency_ewma;
  std::shared_ptr<telemetry::EwmaRate> throughput;
  std::shared_ptr<telemetry::Gauge> memory;  // per model: weights charged
};

template <class T>
std::shared_ptr<T> must(Result<std::shared_ptr<T>> r) {
  // Names and labels here are fixed by this file; a failure is a programming error.
  if (!r.ok()) std::abort();
  return std::move(r).value();
}

Scope make_scope(telemetry::MetricsRegistry& reg, const Labels& labels) {
  Scope s;
  const auto bounds = telemetry::latency_buckets_seconds();
  for (size_t i = 0; i < kOutcomes; ++i) {
    Labels l = labels;
    l.emplace_back("outcome", kOutcomeNames[i]);
    s.outcomes[i] = must(reg.counter("orchard_requests", "Requests finished, by outcome", l));
  }
  s.failovers = must(reg.counter("orchard_failovers", "Nodes moved to a later backend after a failure", labels));
  s.bytes_copied = must(reg.counter("orchard_copied_bytes", "Bytes copied between host and device memories by runs", labels));
  s.latency = must(reg.histogram("orchard_request_latency_seconds", "End-to-end request latency, queue included", bounds, labels));
  s.queue_time = must(reg.histogram("orchard_queue_time_seconds", "Time requests waited for a slot", bounds, labels));
  s.compute_time = must(reg.histogram("orchard_compute_time_seconds", "Time requests ran", bounds, labels));
  s.latency_ewma = must(reg.ewma("orchard_request_latency_ewma_seconds", "End-to-end latency, EWMA", kEwmaAlpha, labels));
  s.throughput = must(reg.rate("orchard_throughput_requests_per_second", "Completed requests per second, EWMA",
                               std::chrono::duration_cast<std::chrono::nanoseconds>(kRateHalfLife), labels));
  return s;
}

}  // namespace

struct ManagerMetrics::Impl {
  telemetry::MetricsRegistry registry;
  std::atomic<bool> enabled{true};
  Scope global;
  mutable std::mutex mu;  // guards `models` (the map, not the series)
  std::map<ModelId, std::shared_ptr<Scope>> models;
  std::shared_ptr<telemetry::Gauge> queue_depth, running, memory_used, memory_limit, weights;

  Impl() {
    global = make_scope(registry, {{"model", "_all"}});
    queue_depth = must(registry.gauge("orchard_queue_depth", "Requests waiting for a slot"));
    running = must(registry.gauge("orchard_running_requests", "Requests running"));
    memory_used = must(registry.gauge("orchard_memory_used_bytes", "Bytes charged to the memory budget"));
    memory_limit = must(registry.gauge("orchard_memory_limit_bytes", "The memory budget"));
    weights = must(registry.gauge("orchard_model_weights_bytes", "Weights of all loaded models"));
  }

  std::shared_ptr<Scope> model(ModelId id) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = models.find(id);
    return it == models.end() ? nullptr : it->second;
  }
};

ManagerMetrics::ManagerMetrics() : impl_(std::make_unique<Impl>()) {}
ManagerMetrics::~ManagerMetrics() = default;

void ManagerMetrics::set_enabled(bool on) { impl_->enabled = on; }
bool ManagerMetrics::enabled() const { return impl_->enabled; }

void ManagerMetrics::add_model(ModelId id, const std::string& name) {
  auto scope = std::make_shared<Scope>(make_scope(impl_->registry, {{"model", name}}));
  scope->memory = must(impl_->registry.gauge("orchard_model_memory_bytes", "Memory charged to a model (weights)", {{"model", name}}));
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->models[id] = std::move(scope);
  names_[id] = name;
}

void ManagerMetrics::remove_model(ModelId id) {
  std::string name;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->models.erase(id);
    name = names_[id];
    names_.erase(id);
  }
  impl_->registry.remove_matching({{"model", name}});
}

void ManagerMetrics::record(ModelId id, Outcome outcome, double queue_ms, double compute_ms, double total_ms) {
  if (!impl_->enabled.load(std::memory_order_relaxed)) return;
  const auto o = static_cast<size_t>(outcome);
  auto apply = [&](Scope& s) {
    s.outcomes[o]->inc();
    if (outcome != Outcome::ok) return;  // latency and throughput describe served requests
    s.latency->observe(total_ms / 1e3);
    s.queue_time->observe(queue_ms / 1e3);
    s.compute_time->observe(compute_ms / 1e3);
    s.latency_ewma->update(total_ms / 1e3);
    s.throughput->record_now();
  };
  apply(impl_->global);
  if (auto s = impl_->model(id)) apply(*s);
}

void ManagerMetrics::add_failovers(ModelId id, int64_t n) {
  impl_->global.failovers->inc(static_cast<uint64_t>(n));
  if (auto s = impl_->model(id)) s->failovers->inc(static_cast<uint64_t>(n));
}

void ManagerMetrics::add_bytes_copied(ModelId id, int64_t n) {
  impl_->global.bytes_copied->inc(static_cast<uint64_t>(n));
  if (auto s = impl_->model(id)) s->bytes_copied->inc(static_cast<uint64_t>(n));
}

void ManagerMetrics::set_placement(ModelId id, const PlacementInfo& placement) {
  std::string name;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = names_.find(id);
    if (it == names_.end()) return;
    name = it->second;
  }
  std::map<std::string, int64_t> nodes;
  std::map<std::pair<std::string, std::string>, int64_t> units;  // (backend, compute unit) -> operations
  for (const auto& p : placement.partitions) {
    nodes[p.backend] += static_cast<int64_t>(p.nodes.size());
    for (const auto& [unit, n] : p.device_units) units[{p.backend, unit}] += n;
  }
  must(impl_->registry.gauge("orchard_model_partitions", "Partitions a model is cut into across backends", {{"model", name}}))
      ->set(static_cast<double>(placement.partitions.size()));
  for (const auto& [backend, n] : nodes) {
    must(impl_->registry.gauge("orchard_model_nodes", "Nodes of a model per backend", {{"model", name}, {"backend", backend}}))
        ->set(static_cast<double>(n));
  }
  for (const auto& [key, n] : units) {
    must(impl_->registry.gauge("orchard_model_device_operations",
                               "Operations of a model per backend and compute unit, as the device reports them",
                               {{"model", name}, {"backend", key.first}, {"unit", key.second}}))
        ->set(static_cast<double>(n));
  }
}

void ManagerMetrics::set_queue_depth(int64_t n) { impl_->queue_depth->set(static_cast<double>(n)); }
void ManagerMetrics::set_running(int64_t n) { impl_->running->set(static_cast<double>(n)); }

void ManagerMetrics::set_memory(int64_t used, int64_t limit, int64_t weights) {
  impl_->memory_used->set(static_cast<double>(used));
  impl_->memory_limit->set(static_cast<double>(limit));
  impl_->weights->set(static_cast<double>(weights));
}

void ManagerMetrics::set_device_memory(const std::string& device, int64_t used, int64_t limit, int64_t peak, int64_t refused) {
  auto& r = impl_->registry;
  const telemetry::Labels l{{"device", device}};
  must(r.gauge("orchard_device_memory_used_bytes", "Device memory in use, per accelerator", l))->set(static_cast<double>(used));
  must(r.gauge("orchard_device_memory_limit_bytes", "Device memory cap (0: none)", l))->set(static_cast<double>(limit));
  must(r.gauge("orchard_device_memory_peak_bytes", "Most device memory in use at once", l))->set(static_cast<double>(peak));
  must(r.gauge("orchard_device_memory_refused", "Device allocations the cap refused", l))->set(static_cast<double>(refused));
}

void ManagerMetrics::set_model_memory(ModelId id, int64_t bytes) {
  if (auto s = impl_->model(id)) s->memory->set(static_cast<double>(bytes));
}

void ManagerMetrics::watch_pool(std::shared_ptr<const BufferPool> pool) {
  auto& r = impl_->registry;
  (void)r.gauge_callback("orchard_buffer_pool_hits", "Buffer pool allocations served from a free list", {},
                         [pool] { return static_cast<double>(pool->stats().hits); });
  (void)r.gauge_callback("orchard_buffer_pool_misses", "Buffer pool allocations that went upstream", {},
                         [pool] { return static_cast<double>(pool->stats().misses); });
  (void)r.gauge_callback("orchard_buffer_pool_cached_bytes", "Bytes the buffer pool holds idle", {},
                         [pool] { return static_cast<double>(pool->stats().bytes_cached); });
}

PerformanceSummary ManagerMetrics::summary(std::optional<ModelId> id, int64_t queue_depth, int64_t running) const {
  PerformanceSummary out;
  std::shared_ptr<Scope> scope = id ? impl_->model(*id) : nullptr;
  const Scope* s = id ? scope.get() : &impl_->global;
  if (s == nullptr) return out;
  out.ok = s->outcomes[0]->value();
  out.rejected = s->outcomes[1]->value();
  out.timed_out = s->outcomes[2]->value();
  out.cancelled = s->outcomes[3]->value();
  out.failed = s->outcomes[4]->value();
  out.failovers = s->failovers->value();
  out.latency_ms = s->latency_ewma->value() * 1e3;
  out.queue_ms_total = s->queue_time->sum() * 1e3;
  out.compute_ms_total = s->compute_time->sum() * 1e3;
  const auto snap = s->latency->snapshot();
  out.latency_p50_ms = snap.percentile(0.50) * 1e3;
  out.latency_p90_ms = snap.percentile(0.90) * 1e3;
  out.latency_p99_ms = snap.percentile(0.99) * 1e3;
  out.throughput_ips = s->throughput->value_at(telemetry::steady_now_ns());
  if (scope && scope->memory) out.memory_usage_mb = scope->memory->value() / (1024.0 * 1024.0);
  out.queue_depth = queue_depth;
  out.running = running;
  return out;
}

std::string ManagerMetrics::prometheus_text() const { return impl_->registry.prometheus_text(); }

}  // namespace orchard::manager
