// Micro-benchmarks of the metrics hot path (the seed's "EWMA update" and "performance tracking") and of
// the Prometheus exposition. Run: ./build/release/bench/orchard_bench --benchmark_filter=Telemetry
#include <benchmark/benchmark.h>

#include <string>

#include "telemetry/metrics.hpp"
#include "telemetry/trace.hpp"

namespace orchard::telemetry {
namespace {

void BM_TelemetryEwmaUpdate(benchmark::State& state) {
  Ewma e(0.1);
  double x = 1.0;
  for (auto _ : state) {
    e.update(x);
    x += 0.5;
  }
  benchmark::DoNotOptimize(e.value());
}
BENCHMARK(BM_TelemetryEwmaUpdate);

void BM_TelemetryCounterIncrement(benchmark::State& state) {
  static Counter c;
  for (auto _ : state) c.inc();
  benchmark::DoNotOptimize(c.value());
}
BENCHMARK(BM_TelemetryCounterIncrement)->Threads(1)->Threads(4);

void BM_TelemetryGaugeAdd(benchmark::State& state) {
  Gauge g;
  for (auto _ : state) g.add(1.0);
  benchmark::DoNotOptimize(g.value());
}
BENCHMARK(BM_TelemetryGaugeAdd);

void BM_TelemetryHistogramObserve(benchmark::State& state) {
  Histogram h(latency_buckets_seconds());
  double v = 0.0001;
  for (auto _ : state) {
    h.observe(v);
    v = v < 1 ? v * 1.7 : 0.0001;  // walk over the buckets
  }
  benchmark::DoNotOptimize(h.sum());
}
BENCHMARK(BM_TelemetryHistogramObserve);

void BM_TelemetryRateRecord(benchmark::State& state) {
  EwmaRate r(std::chrono::seconds(5));
  int64_t t = 0;
  for (auto _ : state) r.record(t += 100'000);
  benchmark::DoNotOptimize(r.value());
}
BENCHMARK(BM_TelemetryRateRecord);

// One request's worth of performance tracking through registered series: outcome counter, latency
// EWMA (the seed's pair) ...
void BM_TelemetryPerformanceTrackingCounterEwma(benchmark::State& state) {
  MetricsRegistry reg;
  auto ok = *reg.counter("orchard_requests", "x", {{"model", "m"}, {"outcome", "ok"}});
  auto ewma = *reg.ewma("orchard_latency_ewma_seconds", "x", 0.1, {{"model", "m"}});
  double latency = 0.001;
  for (auto _ : state) {
    ok->inc();
    ewma->update(latency);
    latency += 1e-6;
  }
}
BENCHMARK(BM_TelemetryPerformanceTrackingCounterEwma);

// ... and the full set the Manager records: counter + histogram + EWMA.
void BM_TelemetryPerformanceTracking(benchmark::State& state) {
  MetricsRegistry reg;
  auto ok = *reg.counter("orchard_requests", "x", {{"model", "m"}, {"outcome", "ok"}});
  auto hist = *reg.histogram("orchard_latency_seconds", "x", latency_buckets_seconds(), {{"model", "m"}});
  auto ewma = *reg.ewma("orchard_latency_ewma_seconds", "x", 0.1, {{"model", "m"}});
  double latency = 0.001;
  for (auto _ : state) {
    ok->inc();
    hist->observe(latency);
    ewma->update(latency);
    latency = latency < 0.05 ? latency * 1.1 : 0.001;
  }
}
BENCHMARK(BM_TelemetryPerformanceTracking);

void BM_TelemetryRegistryLookup(benchmark::State& state) {  // what the hot path avoids
  MetricsRegistry reg;
  for (auto _ : state) (*reg.counter("orchard_requests", "x", {{"model", "m"}, {"outcome", "ok"}}))->inc();
}
BENCHMARK(BM_TelemetryRegistryLookup);

// A registry shaped like the Manager's with 10 models: 5 outcome counters, a latency histogram, a queue
// histogram, an EWMA, a rate and a memory gauge per model, plus global gauges.
void BM_TelemetryPrometheusText10Models(benchmark::State& state) {
  MetricsRegistry reg;
  for (int m = 0; m < 10; ++m) {
    const std::string model = "model_" + std::to_string(m);
    for (const char* outcome : {"ok", "rejected", "deadline_exceeded", "cancelled", "failed"})
      (*reg.counter("orchard_requests", "Requests.", {{"model", model}, {"outcome", outcome}}))->inc(m + 1);
    auto lat = *reg.histogram("orchard_request_duration_seconds", "Latency.", latency_buckets_seconds(),
                              {{"model", model}});
    auto queue = *reg.histogram("orchard_queue_wait_seconds", "Queue wait.", latency_buckets_seconds(),
                                {{"model", model}});
    for (int i = 0; i < 100; ++i) {
      lat->observe(i * 0.002);
      queue->observe(i * 0.0001);
    }
    (*reg.ewma("orchard_request_duration_ewma_seconds", "EWMA.", 0.1, {{"model", model}}))->update(0.01);
    (*reg.rate("orchard_throughput", "Rate.", std::chrono::seconds(5), {{"model", model}}))->record_now();
    (*reg.gauge("orchard_model_memory_bytes", "Memory.", {{"model", model}}))->set(1e8);
  }
  (*reg.gauge("orchard_queue_depth", "Queue depth."))->set(3);
  (*reg.gauge("orchard_memory_reserved_bytes", "Reserved."))->set(5e8);
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = reg.prometheus_text();
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_TelemetryPrometheusText10Models);

void BM_TelemetryTraceJson100Nodes(benchmark::State& state) {
  std::vector<NodeProfile> nodes;
  for (int i = 0; i < 100; ++i)
    nodes.push_back({"node_" + std::to_string(i), "Conv", "cpu", {Shape{1, 64, 56, 56}, Shape{64, 64, 3, 3}},
                     i * 10'000, 9'000});
  RequestTraceOptions o;
  o.queue_wait = TraceInterval{-5'000, 5'000};
  for (auto _ : state) {
    TraceWriter w;
    w.add_profile(nodes, o);
    benchmark::DoNotOptimize(w.json().size());
  }
}
BENCHMARK(BM_TelemetryTraceJson100Nodes);

}  // namespace
}  // namespace orchard::telemetry
