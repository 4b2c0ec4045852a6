// Metrics: counters, gauges, histograms and EWMAs, grouped by a registry into named families of label
// sets, exposed as Prometheus text (format 0.0.4). Depends only on include/orchard/status.hpp.
//
// Hot path: a metric is registered once (name + labels -> shared_ptr) and then updated through that
// pointer with one or two relaxed atomic operations: no lookup, no lock, no allocation.
#pragma once

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "orchard/status.hpp"

namespace orchard::telemetry {

// A label set, e.g. {{"model", "resnet"}, {"outcome", "ok"}}. Order does not matter.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Returns the steady-clock time in nanoseconds (the timeline EwmaRate and traces use).
inline int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A monotonic count of events.
class alignas(64) Counter {
 public:
  // Adds `n` (default 1).
  void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (queue depth, bytes in use).
class alignas(64) Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  // Adds `d` (may be negative) atomically.
  void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  void sub(double d) noexcept { add(-d); }
  void inc() noexcept { add(1.0); }
  void dec() noexcept { add(-1.0); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A histogram's contents at one moment.
struct HistogramSnapshot {
  std::vector<double> upper_bounds;  // finite, strictly increasing; the +Inf bucket is implicit
  std::vector<uint64_t> counts;      // per bucket, not cumulative; size upper_bounds.size() + 1 (last: +Inf)
  uint64_t count = 0;                // total observations (the sum of counts)
  double sum = 0;                    // sum of observed values
  // Returns an estimate of the q-quantile (q in [0, 1]) by linear interpolation inside the bucket that
  // holds it (as PromQL histogram_quantile does); the largest finite bound when it falls in +Inf; NaN
  // when empty.
  double percentile(double q) const;
};

// Counts observations into buckets with fixed upper bounds (bucket i holds v <= upper_bounds[i]).
class Histogram {
 public:
  // `upper_bounds` should be finite and strictly increasing (MetricsRegistry checks); otherwise they
  // are sorted, de-duplicated and non-finite ones dropped.
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Records one value; NaN is ignored.
  void observe(double v) noexcept {
    if (std::isnan(v)) return;
    buckets_[bucket_index(v)].value.fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
  }
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Returns the number of observations.
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  HistogramSnapshot snapshot() const;
  // Returns snapshot().percentile(q).
  double percentile(double q) const { return snapshot().percentile(q); }

 private:
  // Returns the index of the first bound >= v (bounds_.size() for +Inf). A linear scan beats binary
  // search for the usual dozen bounds.
  size_t bucket_index(double v) const noexcept {
    const size_t n = bounds_.size();
    if (n > 16) {
      size_t lo = 0, hi = n;
      while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (bounds_[mid] < v) lo = mid + 1; else hi = mid;
      }
      return lo;
    }
    size_t i = 0;
    while (i < n && bounds_[i] < v) ++i;
    return i;
  }
  struct Bucket {
    std::atomic<uint64_t> value{0};
  };
  std::vector<double> bounds_;
  std::unique_ptr<Bucket[]> buckets_;  // bounds_.size() + 1
  alignas(64) std::atomic<double> sum_{0.0};
};

// Returns `count` bounds start, start*factor, start*factor^2, ... (start > 0, factor > 1).
std::vector<double> exponential_buckets(double start, double factor, size_t count);
// Returns `count` bounds start, start+width, ... (width > 0).
std::vector<double> linear_buckets(double start, double width, size_t count);
// Returns request-latency bounds in seconds, 100 µs to 60 s (Prometheus names use base units).
std::vector<double> latency_buckets_seconds();

// Exponentially weighted moving average of samples: v <- v + alpha * (x - v). The first sample sets v.
// Lock-free: one compare-and-swap on the double's bits per update.
class alignas(64) Ewma {
 public:
  // `alpha` in (0, 1]: the weight of each new sample (values outside are clamped into that range).
  explicit Ewma(double alpha) : alpha_(clamp_alpha(alpha)) {}
  // Returns the alpha with which a sample's weight halves after `samples` further updates: 1 - 2^(-1/samples).
  static double alpha_for_half_life(double samples) {
    return samples > 0 ? -std::expm1(-std::log(2.0) / samples) : 1.0;
  }

  // Folds in one sample; non-finite samples are ignored.
  void update(double x) noexcept {
    if (!std::isfinite(x)) return;
    uint64_t old_bits = bits_.load(std::memory_order_relaxed);
    for (;;) {
      const double old = std::bit_cast<double>(old_bits);
      const double next = std::isnan(old) ? x : old + alpha_ * (x - old);
      if (bits_.compare_exchange_weak(old_bits, std::bit_cast<uint64_t>(next), std::memory_order_relaxed,
                                      std::memory_order_relaxed))
        return;
    }
  }
  // Returns the average, or 0 before the first sample.
  double value() const noexcept {
    const double v = std::bit_cast<double>(bits_.load(std::memory_order_relaxed));
    return std::isnan(v) ? 0.0 : v;
  }
  bool has_value() const noexcept { return !std::isnan(std::bit_cast<double>(bits_.load(std::memory_order_relaxed))); }
  double alpha() const { return alpha_; }
  // Forgets every sample.
  void reset() noexcept { bits_.store(kEmpty, std::memory_order_relaxed); }

 private:
  static double clamp_alpha(double a) { return a > 1 ? 1.0 : (a > 1e-12 ? a : 1e-12); }  // NaN -> 1e-12
  static constexpr uint64_t kEmpty = 0x7ff8000000000000ull;  // quiet NaN: no sample yet
  const double alpha_;
  std::atomic<uint64_t> bits_{kEmpty};
};

// Event rate (events per second) as an exponentially time-decayed average over event timestamps:
// on an event after dt, r <- r * exp(-dt/tau) + n * (1 - exp(-dt/tau)) / dt, with tau = half_life / ln 2.
// A steady stream of one event every D seconds converges to 1/D; simultaneous events add n/tau each.
// Lock-free; timestamps from several threads may arrive slightly out of order (counted as dt = 0).
class alignas(64) EwmaRate {
 public:
  explicit EwmaRate(std::chrono::nanoseconds half_life);

  // Records `n` events at `now_ns` (steady_now_ns() timeline). The very first call only starts the clock.
  void record(int64_t now_ns, uint64_t n = 1) noexcept;
  void record_now(uint64_t n = 1) noexcept { record(steady_now_ns(), n); }
  // Returns the rate as of the last event, in events per second.
  double value() const noexcept { return std::bit_cast<double>(rate_bits_.load(std::memory_order_relaxed)); }
  // Returns the rate decayed over the idle time from the last event to `now_ns`.
  double value_at(int64_t now_ns) const noexcept;
  std::chrono::nanoseconds half_life() const { return half_life_; }

 private:
  static constexpr int64_t kNoEvent = INT64_MIN;
  const std::chrono::nanoseconds half_life_;
  const double tau_ns_;
  std::atomic<int64_t> last_ns_{kNoEvent};
  std::atomic<uint64_t> rate_bits_{0};  // bits of a double, events per second
};

// What a family exports as; Ewma and EwmaRate export as Prometheus gauges.
enum class MetricType : unsigned char { counter, gauge, histogram, ewma, rate, gauge_callback };

// Named metric families, each with label sets ("series"). Thread-safe; registration, removal and
// exposition take a mutex, updates through the returned pointers do not.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Each returns the series `labels` of family `name`, creating the family (with `help`) and the series
  // on first use. A name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* without a
  // leading "__"; every series of a family has the same label names; asking again with another type or
  // other parameters (bounds, alpha, half-life) is invalid_argument. Counter names get a "_total" suffix
  // when they lack one. The pointer stays valid after remove(); the series then just stops being exported.
  Result<std::shared_ptr<Counter>> counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Result<std::shared_ptr<Gauge>> gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Result<std::shared_ptr<Histogram>> histogram(std::string_view name, std::string_view help,
                                               std::span<const double> upper_bounds, const Labels& labels = {});
  Result<std::shared_ptr<Ewma>> ewma(std::string_view name, std::string_view help, double alpha,
                                     const Labels& labels = {});
  Result<std::shared_ptr<EwmaRate>> rate(std::string_view name, std::string_view help,
                                         std::chrono::nanoseconds half_life, const Labels& labels = {});
  // Registers (or replaces) a gauge series whose value `fn` computes at exposition time, under the
  // registry's mutex: `fn` must be thread-safe and must not call this registry.
  Status gauge_callback(std::string_view name, std::string_view help, const Labels& labels,
                        std::function<double()> fn);

  // Removes one series; returns whether it existed. A family left without series is not exported.
  bool remove(std::string_view name, const Labels& labels);
  // Removes, from every family, each series whose labels include all of `match` (e.g. {{"model", "m1"}}
  // when model m1 unloads); returns how many were removed.
  size_t remove_matching(const Labels& match);
  // Returns the number of series in all families.
  size_t series_count() const;

  // Returns every non-empty family in the Prometheus text exposition format 0.0.4, families sorted by
  // name and series by label values.
  std::string prometheus_text() const;

 private:
  struct Family;
  struct Params;
  Result<std::shared_ptr<void>> get_or_create(std::string_view name, std::string_view help, const Labels& labels,
                                              const Params& params);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
};

}  // namespace orchard::telemetry
