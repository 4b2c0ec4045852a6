#include "telemetry/metrics.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace orchard::telemetry {
namespace {

using namespace std::chrono_literals;

constexpr int kThreads = 8;
constexpr int kPerThread = 50000;

// tests/CMakeLists.txt sets ORCHARD_NUM_THREADS=1 when the suite runs under qemu-user, where a process with
// a second thread crawls (8 threads x 10 atomic increments did not finish in 60 s there).
#define SKIP_IF_SINGLE_THREADED_RUN()                                                                      \
  do {                                                                                                     \
    const char* n = std::getenv("ORCHARD_NUM_THREADS");                                                    \
    if (n && std::string(n) == "1") GTEST_SKIP() << "ORCHARD_NUM_THREADS=1 (qemu-user run): no threads"; \
  } while (0)

// Runs fn(thread_index) on kThreads threads released together.
template <class Fn>
void run_threads(Fn fn) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&fn, &ready, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      fn(t);
    });
  }
  for (auto& th : threads) th.join();
}

// ---------------------------------------------------------------------------------------------------------------
// Counter, Gauge

TEST(Counter, CountsIncrements) {
  Counter c;
  EXPECT_EQ(c.value(), 0u);
  c.inc();
  c.inc(41);
  EXPECT_EQ(c.value(), 42u);
}

TEST(Gauge, SetAddSub) {
  Gauge g;
  g.set(10);
  g.add(2.5);
  g.sub(0.5);
  g.inc();
  g.dec();
  g.dec();
  EXPECT_DOUBLE_EQ(g.value(), 11.0);
}

TEST(MetricsConcurrency, CounterFromEightThreadsSumsExactly) {
  SKIP_IF_SINGLE_THREADED_RUN();
  Counter c;
  run_threads([&](int) {
    for (int i = 0; i < kPerThread; ++i) c.inc();
  });
  EXPECT_EQ(c.value(), uint64_t{kThreads} * kPerThread);
}

TEST(MetricsConcurrency, GaugeFromEightThreadsSumsExactly) {
  SKIP_IF_SINGLE_THREADED_RUN();
  Gauge g;
  run_threads([&](int t) {
    for (int i = 0; i < kPerThread; ++i) g.add(t % 2 ? 3.0 : -1.0);  // small integers: exact in double
  });
  EXPECT_EQ(g.value(), (kThreads / 2) * kPerThread * 3.0 - (kThreads / 2) * kPerThread * 1.0);
}

TEST(MetricsConcurrency, HistogramFromEightThreadsCountsExactly) {
  SKIP_IF_SINGLE_THREADED_RUN();
  Histogram h({1, 2, 3});
  run_threads([&](int t) {
    for (int i = 0; i < kPerThread; ++i) h.observe(static_cast<double>(t % 4 + 1));  // 1, 2, 3, 4 (+Inf)
  });
  const HistogramSnapshot s = h.snapshot();
  const uint64_t per_bucket = uint64_t{2} * kPerThread;  // two threads per value
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{per_bucket, per_bucket, per_bucket, per_bucket}));
  EXPECT_EQ(s.count, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.sum, 2.0 * kPerThread * (1 + 2 + 3 + 4));
}

TEST(MetricsConcurrency, EwmaAndRateFromEightThreadsStayConsistent) {
  SKIP_IF_SINGLE_THREADED_RUN();
  Ewma e(0.1);
  EwmaRate r(100ms);
  run_threads([&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      e.update(5.0);  // every update of a constant keeps it exactly
      r.record(int64_t{i} * 1000 + t, 1);
    }
  });
  EXPECT_EQ(e.value(), 5.0);
  EXPECT_TRUE(std::isfinite(r.value()));
  EXPECT_GT(r.value(), 0.0);
}

// ---------------------------------------------------------------------------------------------------------------
// Histogram

TEST(Histogram, BucketBoundsAreInclusiveUpperBounds) {
  Histogram h({1, 2, 5});
  for (double v : {-3.0, 0.5, 1.0}) h.observe(v);        // le=1
  for (double v : {1.0000001, 2.0}) h.observe(v);        // le=2
  for (double v : {2.5, 5.0}) h.observe(v);              // le=5
  for (double v : {5.1, 1e300, double(INFINITY)}) h.observe(v);  // +Inf
  h.observe(NAN);                                        // ignored
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{3, 2, 2, 3}));
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(h.count(), 10u);
}

TEST(Histogram, ManyBoundsUseTheSameInclusiveRule) {
  const std::vector<double> bounds = linear_buckets(1, 1, 40);  // 1..40: the binary-search path
  Histogram h(bounds);
  for (int v = 0; v <= 41; ++v) h.observe(v);
  h.observe(7.5);
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.counts[0], 2u);  // 0 and 1
  EXPECT_EQ(s.counts[6], 1u);  // 7
  EXPECT_EQ(s.counts[7], 2u);  // 7.5 and 8
  EXPECT_EQ(s.counts[39], 1u);
  EXPECT_EQ(s.counts[40], 1u);  // 41
  EXPECT_EQ(s.count, 43u);
}

TEST(Histogram, SumOfKnownWorkload) {
  Histogram h(latency_buckets_seconds());
  for (int i = 1; i <= 100; ++i) h.observe(i * 0.001);
  EXPECT_NEAR(h.sum(), 5.05, 1e-12);
  EXPECT_EQ(h.count(), 100u);
}

TEST(Histogram, PercentileInterpolatesInsideTheBucket) {
  Histogram h(linear_buckets(1, 1, 10));  // 1..10
  for (int b = 0; b < 10; ++b)
    for (int k = 0; k < 10; ++k) h.observe(b + 0.5);  // 10 per bucket
  EXPECT_DOUBLE_EQ(h.percentile(0.5), 5.0);
  EXPECT_DOUBLE_EQ(h.percentile(0.9), 9.0);
  EXPECT_DOUBLE_EQ(h.percentile(0.95), 9.5);
  EXPECT_DOUBLE_EQ(h.percentile(0.05), 0.5);  // the first bucket starts at 0
  EXPECT_DOUBLE_EQ(h.percentile(1.0), 10.0);
}

TEST(Histogram, PercentileEdgeCases) {
  Histogram h({1, 2});
  EXPECT_TRUE(std::isnan(h.percentile(0.5)));  // empty
  h.observe(100);
  EXPECT_DOUBLE_EQ(h.percentile(0.99), 2.0);  // in +Inf: the largest finite bound
  h.observe(1.5);
  h.observe(1.5);
  h.observe(1.5);
  EXPECT_DOUBLE_EQ(h.percentile(0.5), 1.0 + 2.0 / 3.0);  // rank 2 of 3 in (1, 2]
}

TEST(Histogram, BadBoundsAreSanitised) {
  Histogram h({5, 1, NAN, 1, INFINITY, 2});
  EXPECT_EQ(h.upper_bounds(), (std::vector<double>{1, 2, 5}));
}

TEST(Histogram, BucketHelpers) {
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(linear_buckets(0.5, 0.5, 3), (std::vector<double>{0.5, 1.0, 1.5}));
  EXPECT_TRUE(exponential_buckets(0, 2, 4).empty());
  const auto lat = latency_buckets_seconds();
  EXPECT_TRUE(std::is_sorted(lat.begin(), lat.end()));
}

// ---------------------------------------------------------------------------------------------------------------
// Ewma, EwmaRate

TEST(Ewma, FirstSampleSetsTheValue) {
  Ewma e(0.2);
  EXPECT_FALSE(e.has_value());
  EXPECT_EQ(e.value(), 0.0);
  e.update(8);
  EXPECT_TRUE(e.has_value());
  EXPECT_EQ(e.value(), 8.0);
  e.update(18);
  EXPECT_DOUBLE_EQ(e.value(), 10.0);
  e.update(NAN);
  e.update(INFINITY);
  EXPECT_DOUBLE_EQ(e.value(), 10.0);  // non-finite samples are ignored
  e.reset();
  EXPECT_FALSE(e.has_value());
}

TEST(Ewma, ClosedFormAfterKUpdates) {
  // From v0 = 0, k updates with a constant c give v_k = c (1 - (1 - alpha)^k).
  const double alpha = 0.05, c = 3.0;
  Ewma e(alpha);
  e.update(0);
  for (int k = 1; k <= 200; ++k) {
    e.update(c);
    ASSERT_NEAR(e.value(), c * (1 - std::pow(1 - alpha, k)), 1e-12) << "after " << k << " updates";
  }
}

TEST(Ewma, ConvergesToAConstant) {
  Ewma e(0.1);
  e.update(1000);
  for (int i = 0; i < 500; ++i) e.update(-2.5);
  EXPECT_NEAR(e.value(), -2.5, 1e-9);
}

TEST(Ewma, HalfLifeInSamples) {
  const double alpha = Ewma::alpha_for_half_life(10);
  EXPECT_NEAR(std::pow(1 - alpha, 10), 0.5, 1e-15);
  Ewma e(alpha);
  e.update(0);
  for (int i = 0; i < 10; ++i) e.update(100);
  EXPECT_NEAR(e.value(), 50.0, 1e-9);  // the seed's weight halved
}

TEST(EwmaRate, SteadyStreamFollowsTheClosedForm) {
  // One event every D from rate 0: r_k = (1/D) (1 - exp(-k D / tau)) = (1/D) (1 - 2^(-k D / half_life)).
  const auto half_life = 100ms;
  EwmaRate r(half_life);
  const int64_t d_ns = 1'000'000;  // 1 ms: 1000 events/s
  int64_t t = 5'000'000'000;
  r.record(t);  // starts the clock
  EXPECT_EQ(r.value(), 0.0);
  for (int k = 1; k <= 2000; ++k) {
    t += d_ns;
    r.record(t);
    if (k % 100 == 0) {
      const double expected = 1000.0 * (1 - std::exp2(-k * 1e-3 / 0.1));
      ASSERT_NEAR(r.value(), expected, 1e-9 * 1000) << "after " << k << " events";
    }
  }
  EXPECT_NEAR(r.value(), 1000.0, 1e-3);  // 20 half-lives: converged
  // Idle: the rate read later decays with the half-life.
  EXPECT_NEAR(r.value_at(t + 100'000'000), 500.0, 1e-3);
  EXPECT_NEAR(r.value_at(t), r.value(), 0.0);
}

TEST(EwmaRate, BatchesCountEveryEvent) {
  // 4 events at once every 4 ms: about 1000 events/s.
  EwmaRate r(50ms);
  int64_t t = 0;
  r.record(t);
  for (int k = 0; k < 5000; ++k) {
    t += 4'000'000;
    r.record(t, 2);
    r.record(t, 1);
    r.record(t - 10, 1);  // slightly out of order (another thread): counted at dt = 0
  }
  EXPECT_NEAR(r.value(), 1000.0, 1000.0 * 0.05);
}

// ---------------------------------------------------------------------------------------------------------------
// MetricsRegistry

TEST(MetricsRegistry, SameNameAndLabelsGiveTheSameSeries) {
  MetricsRegistry reg;
  auto a = reg.counter("orchard_requests", "Requests.", {{"model", "m"}, {"outcome", "ok"}});
  auto b = reg.counter("orchard_requests_total", "Requests.", {{"outcome", "ok"}, {"model", "m"}});
  auto c = reg.counter("orchard_requests", "Requests.", {{"model", "m"}, {"outcome", "failed"}});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), c->get());
  (*a)->inc(3);
  (*b)->inc();
  EXPECT_EQ((*a)->value(), 4u);
  EXPECT_EQ(reg.series_count(), 2u);
}

TEST(MetricsRegistry, RejectsBadRegistrations) {
  MetricsRegistry reg;
  ASSERT_TRUE(reg.gauge("queue_depth", "Queued.", {{"model", "m"}}).ok());
  EXPECT_EQ(reg.counter("queue_depth", "x", {{"model", "m"}}).status().code(), StatusCode::ok);  // -> _total
  EXPECT_EQ(reg.histogram("queue_depth", "x", std::vector<double>{1}, {{"model", "m"}}).status().code(),
            StatusCode::invalid_argument);  // another type
  EXPECT_EQ(reg.gauge("queue_depth", "x", {{"backend", "cpu"}}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.gauge("queue_depth", "x").status().code(), StatusCode::invalid_argument);  // label names differ
  EXPECT_EQ(reg.gauge("9lives", "x").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.gauge("a-b", "x").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.gauge("ok_name", "x", {{"__reserved", "v"}}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.gauge("ok_name", "x", {{"a b", "v"}}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.gauge("ok_name", "x", {{"a", "1"}, {"a", "2"}}).status().code(), StatusCode::invalid_argument);

  const std::vector<double> bounds{0.1, 1};
  ASSERT_TRUE(reg.histogram("latency_seconds", "x", bounds).ok());
  EXPECT_EQ(reg.histogram("latency_seconds", "x", std::vector<double>{0.1, 2}).status().code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(reg.histogram("h2_seconds", "x", std::vector<double>{2, 1}).status().code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(reg.histogram("h3_seconds", "x", bounds, {{"le", "1"}}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.gauge("latency_seconds_count", "x").status().code(), StatusCode::invalid_argument);  // collides

  ASSERT_TRUE(reg.ewma("lat_ewma_seconds", "x", 0.1).ok());
  EXPECT_EQ(reg.ewma("lat_ewma_seconds", "x", 0.2).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.ewma("bad_alpha", "x", 0).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.rate("bad_rate", "x", 0ns).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.gauge_callback("cb", "x", {}, nullptr).code(), StatusCode::invalid_argument);
}

TEST(MetricsRegistry, ExpositionOfAKnownWorkload) {
  MetricsRegistry reg;
  auto ok = *reg.counter("orchard_requests", "Requests by outcome.", {{"model", "m1"}, {"outcome", "ok"}});
  auto rejected = *reg.counter("orchard_requests", "Requests by outcome.", {{"model", "m1"}, {"outcome", "rejected"}});
  auto depth = *reg.gauge("orchard_queue_depth", "Queued requests.");
  auto lat = *reg.histogram("orchard_latency_seconds", "Request latency.", std::vector<double>{0.01, 0.1, 1},
                            {{"model", "m1"}});
  auto ewma = *reg.ewma("orchard_latency_ewma_seconds", "Latency EWMA.", 0.5, {{"model", "m1"}});
  ASSERT_TRUE(reg.gauge_callback("orchard_pool_bytes", "Pool bytes.", {}, [] { return 4096.0; }).ok());
  for (int i = 0; i < 7; ++i) ok->inc();
  rejected->inc(2);
  depth->set(3);
  for (double v : {0.005, 0.01, 0.05, 0.5, 2.0}) lat->observe(v);
  ewma->update(0.25);
  ewma->update(0.75);

  EXPECT_EQ(reg.prometheus_text(),
            "# HELP orchard_latency_ewma_seconds Latency EWMA.\n"
            "# TYPE orchard_latency_ewma_seconds gauge\n"
            "orchard_latency_ewma_seconds{model=\"m1\"} 0.5\n"
            "# HELP orchard_latency_seconds Request latency.\n"
            "# TYPE orchard_latency_seconds histogram\n"
            "orchard_latency_seconds_bucket{model=\"m1\",le=\"0.01\"} 2\n"
            "orchard_latency_seconds_bucket{model=\"m1\",le=\"0.1\"} 3\n"
            "orchard_latency_seconds_bucket{model=\"m1\",le=\"1\"} 4\n"
            "orchard_latency_seconds_bucket{model=\"m1\",le=\"+Inf\"} 5\n"
            "orchard_latency_seconds_sum{model=\"m1\"} 2.565\n"
            "orchard_latency_seconds_count{model=\"m1\"} 5\n"
            "# HELP orchard_pool_bytes Pool bytes.\n"
            "# TYPE orchard_pool_bytes gauge\n"
            "orchard_pool_bytes 4096\n"
            "# HELP orchard_queue_depth Queued requests.\n"
            "# TYPE orchard_queue_depth gauge\n"
            "orchard_queue_depth 3\n"
            "# HELP orchard_requests_total Requests by outcome.\n"
            "# TYPE orchard_requests_total counter\n"
            "orchard_requests_total{model=\"m1\",outcome=\"ok\"} 7\n"
            "orchard_requests_total{model=\"m1\",outcome=\"rejected\"} 2\n");
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  MetricsRegistry reg;
  auto c = *reg.counter("escapes", "Help with \\ backslash\nand \"quotes\".",
                        {{"path", "C:\\models\\\"x\"\nnext"}, {"bad", std::string("a\xff" "b")}});
  c->inc();
  EXPECT_EQ(reg.prometheus_text(),
            "# HELP escapes_total Help with \\\\ backslash\\nand \"quotes\".\n"
            "# TYPE escapes_total counter\n"
            "escapes_total{bad=\"a\xef\xbf\xbd" "b\",path=\"C:\\\\models\\\\\\\"x\\\"\\nnext\"} 1\n");
}

TEST(MetricsRegistry, SpecialValues) {
  MetricsRegistry reg;
  (*reg.gauge("g_inf", "x"))->set(INFINITY);
  (*reg.gauge("g_nan", "x"))->set(NAN);
  (*reg.gauge("g_small", "x"))->set(1e-7);
  const std::string text = reg.prometheus_text();
  EXPECT_NE(text.find("g_inf +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("g_nan NaN\n"), std::string::npos) << text;
  EXPECT_NE(text.find("g_small 1e-07\n"), std::string::npos) << text;
}

TEST(MetricsRegistry, RemovalOfOneSeriesAndOfAModel) {
  MetricsRegistry reg;
  auto a_ok = *reg.counter("req", "x", {{"model", "a"}, {"outcome", "ok"}});
  auto a_fail = *reg.counter("req", "x", {{"model", "a"}, {"outcome", "failed"}});
  auto b_ok = *reg.counter("req", "x", {{"model", "b"}, {"outcome", "ok"}});
  auto a_lat = *reg.histogram("lat_seconds", "x", std::vector<double>{1}, {{"model", "a"}});
  auto global = *reg.gauge("global_depth", "x");
  a_ok->inc();
  EXPECT_EQ(reg.series_count(), 5u);

  EXPECT_TRUE(reg.remove("req", {{"outcome", "failed"}, {"model", "a"}}));
  EXPECT_FALSE(reg.remove("req", {{"outcome", "failed"}, {"model", "a"}}));
  EXPECT_FALSE(reg.remove("req", {{"model", "a"}}));  // not a full label set
  EXPECT_EQ(reg.series_count(), 4u);

  EXPECT_EQ(reg.remove_matching({{"model", "a"}}), 2u);  // req{a,ok} and lat_seconds{a}
  EXPECT_EQ(reg.series_count(), 2u);
  const std::string text = reg.prometheus_text();
  EXPECT_EQ(text.find("model=\"a\""), std::string::npos) << text;
  EXPECT_EQ(text.find("lat_seconds"), std::string::npos) << text;  // family left empty: not exported
  EXPECT_NE(text.find("req_total{model=\"b\",outcome=\"ok\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("global_depth 0"), std::string::npos) << text;

  a_ok->inc();  // a holder of a removed series may still update it
  a_lat->observe(0.5);
  EXPECT_EQ(a_ok->value(), 2u);
  auto again = *reg.counter("req", "x", {{"model", "a"}, {"outcome", "ok"}});
  EXPECT_NE(again.get(), a_ok.get());  // re-registering after removal starts afresh
  EXPECT_EQ(again->value(), 0u);
  (void)a_fail;
  (void)b_ok;
  (void)global;
}

TEST(MetricsRegistry, RateExportsTheDecayedValue) {
  MetricsRegistry reg;
  auto r = *reg.rate("orchard_throughput", "Completions per second.", 1s);
  const int64_t now = steady_now_ns();
  r->record(now - 2'000'000'000);
  r->record(now - 1'000'000'000);  // rate 1/s * (1 - 2^-1) = 0.5 at now - 1 s
  EXPECT_NEAR(r->value(), 0.5, 1e-12);
  const std::string text = reg.prometheus_text();
  const auto pos = text.find("\norchard_throughput ");  // the sample line, not HELP or TYPE
  ASSERT_NE(pos, std::string::npos) << text;
  const double exported = std::stod(text.substr(pos + 20));
  EXPECT_LE(exported, 0.25 + 1e-9);  // decayed over at least one more half-life of idleness
  EXPECT_GT(exported, 0.1);
}

// ---------------------------------------------------------------------------------------------------------------
// promtool: the exposition format checked by Prometheus's own linter.

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::path(::testing::TempDir()) / ("orchard_" + std::to_string(::getpid()) + "_" + name);
}

// Runs `promtool check metrics` on `text`; returns its exit status and puts its output in out_.
int promtool_check(const std::string& text, const std::string& tag, std::string& out_) {
  const auto in = temp_path(tag + ".prom"), log = temp_path(tag + ".log");
  std::ofstream(in, std::ios::binary) << text;
  const std::string cmd = "promtool check metrics < '" + in.string() + "' > '" + log.string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::stringstream ss;
  ss << std::ifstream(log).rdbuf();
  out_ = ss.str();
  std::filesystem::remove(in);
  std::filesystem::remove(log);
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

bool have_promtool() { return std::system("command -v promtool > /dev/null 2>&1") == 0; }

TEST(Promtool, AcceptsAPopulatedRegistry) {
  ASSERT_TRUE(have_promtool()) << "promtool not found: run scripts/setup.sh (Debian package prometheus)";
  MetricsRegistry reg;
  for (const char* model : {"resnet", "bert\\base", "odd \"name\"\nwith newline", "caf\xc3\xa9"}) {
    for (const char* outcome : {"ok", "rejected", "deadline_exceeded", "cancelled", "failed"})
      (*reg.counter("orchard_requests", "Requests by model and outcome.", {{"model", model}, {"outcome", outcome}}))
          ->inc(3);
    auto lat = *reg.histogram("orchard_request_duration_seconds", "Request latency, queue wait included.",
                              latency_buckets_seconds(), {{"model", model}});
    for (int i = 0; i < 50; ++i) lat->observe(i * 0.003);
    (*reg.ewma("orchard_request_duration_ewma_seconds", "EWMA of request latency.", 0.1, {{"model", model}}))
        ->update(0.02);
    (*reg.rate("orchard_throughput_requests_per_second", "EWMA of completed requests per second.", 5s,
               {{"model", model}}))
        ->record_now();
    (*reg.gauge("orchard_model_memory_bytes", "Weights and workspace of a loaded model.", {{"model", model}}))
        ->set(1 << 20);
  }
  (*reg.gauge("orchard_queue_depth", "Requests waiting for a slot."))->set(4);
  (*reg.counter("orchard_failovers", "Backend failovers.", {{"from", "coreml"}, {"to", "cpu"}}))->inc();
  ASSERT_TRUE(reg.gauge_callback("orchard_buffer_pool_held_bytes", "Bytes held by the buffer pool.", {},
                                 [] { return 123456.0; })
                  .ok());
  ASSERT_TRUE(reg.histogram("orchard_empty_seconds", "A histogram without observations.", std::vector<double>{1}).ok());
  const std::string text = reg.prometheus_text();
  std::string out;
  const int rc = promtool_check(text, "good", out);
  EXPECT_EQ(rc, 0) << "promtool check metrics reported:\n" << out << "\non:\n" << text;
  EXPECT_EQ(out, "") << "promtool check metrics reported:\n" << out;
}

TEST(Promtool, RejectsBadText) {  // the check above can fail
  ASSERT_TRUE(have_promtool()) << "promtool not found: run scripts/setup.sh (Debian package prometheus)";
  std::string out;
  EXPECT_NE(promtool_check("# TYPE requests counter\nrequests 1\n", "lint", out), 0);  // no _total, no HELP
  EXPECT_NE(out.find("_total"), std::string::npos) << out;
  EXPECT_NE(promtool_check("bad{x=\"1\" 1\n", "parse", out), 0);
}

}  // namespace
}  // namespace orchard::telemetry
