// Dynamic batching: concatenation and split, max size, preferred sizes, queue delay, per-request deadline
// and cancellation, shapes that must not mix, shutdown, and the counts that tell requests from batches.
#include "orchard/batcher.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "testing/model_builder.hpp"

namespace orchard {
namespace {

using testing::ModelBuilder;
using Clock = std::chrono::steady_clock;
constexpr int kFloat = onnx::TensorProto::FLOAT;

// y = x + x, x float32[N, k].
std::string double_model() {
  ModelBuilder b;
  b.input("x", kFloat, {"N", "k"}).output("y", kFloat, {"N", "k"});
  b.node("Add", {"x", "x"}, {"y"});
  return b.save(::testing::TempDir() + "batcher_double.onnx");
}

// `rows` x `k` tensor whose element (r, c) is base + r * k + c.
NamedValues rows_of(int64_t rows, int64_t k, float base) {
  std::vector<float> v(static_cast<size_t>(rows * k));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<float>(i);
  return {{"x", Value(Tensor::from_vector<float>({rows, k}, v))}};
}

struct Call {
  std::promise<Result<NamedValues>> promise;
  std::future<Result<NamedValues>> future = promise.get_future();
  Completion done() {
    return [this](Result<NamedValues> r) { promise.set_value(std::move(r)); };
  }
};

class ManagerBatcher : public ::testing::Test {
 protected:
  void SetUp() override {
    ManagerConfig c;
    c.max_concurrent_operations = 2;
    c.intra_op_threads = 1;
    c.memory_pool_mb = 64;
    auto m = Manager::create(c);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    manager = std::move(m).value();
    auto id = manager->load_model(double_model());
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    model = *id;
  }
  std::unique_ptr<Batcher> make(BatchingConfig c) {
    auto b = Batcher::create(*manager, model, c, "double", metrics);
    EXPECT_TRUE(b.ok()) << b.status().to_string();
    return b.ok() ? std::move(b).value() : nullptr;
  }
  // Checks that `r` holds 2 * rows_of(rows, k, base).
  static void expect_doubled(const Result<NamedValues>& r, int64_t rows, int64_t k, float base) {
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const Tensor& y = r.value()[0].second.tensor();
    ASSERT_EQ(y.shape(), Shape({rows, k}));
    for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.data<float>()[i], 2 * (base + static_cast<float>(i))) << i;
  }

  std::unique_ptr<Manager> manager;
  ModelId model = 0;
  std::shared_ptr<BatchingMetrics> metrics = std::make_shared<BatchingMetrics>();
};

TEST_F(ManagerBatcher, FullBatchRunsOnceAndEachRequestGetsItsRows) {
  BatchingConfig c;
  c.max_batch_size = 4;
  c.max_queue_delay_us = 10'000'000;  // only a full batch goes
  auto b = make(c);
  Call a, bb, cc;
  b->submit(rows_of(1, 3, 0), {}, a.done());
  b->submit(rows_of(2, 3, 100), {}, bb.done());
  b->submit(rows_of(1, 3, 200), {}, cc.done());
  expect_doubled(a.future.get(), 1, 3, 0);
  expect_doubled(bb.future.get(), 2, 3, 100);
  expect_doubled(cc.future.get(), 1, 3, 200);
  const BatcherStats s = b->stats();
  EXPECT_EQ(s.executions, 1u);
  EXPECT_EQ(s.inferences, 4u);
  EXPECT_EQ(s.requests_ok, 3u);
  const std::string text = metrics->prometheus_text();
  EXPECT_NE(text.find("orchard_batch_size_bucket{model=\"double\",le=\"4\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("orchard_batch_request_success_total{model=\"double\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("orchard_batch_exec_count_total{model=\"double\"} 1"), std::string::npos) << text;
}

TEST_F(ManagerBatcher, PreferredSizeGoesWithoutWaitingForTheDelay) {
  BatchingConfig c;
  c.max_batch_size = 8;
  c.max_queue_delay_us = 10'000'000;
  c.preferred_batch_sizes = {2};
  auto b = make(c);
  const auto t0 = Clock::now();
  Call a, bb;
  b->submit(rows_of(1, 2, 0), {}, a.done());
  b->submit(rows_of(1, 2, 10), {}, bb.done());
  expect_doubled(a.future.get(), 1, 2, 0);
  expect_doubled(bb.future.get(), 1, 2, 10);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(b->stats().executions, 1u);
}

TEST_F(ManagerBatcher, PartialBatchGoesWhenTheDelayExpires) {
  BatchingConfig c;
  c.max_batch_size = 8;
  c.max_queue_delay_us = 50'000;
  auto b = make(c);
  const auto t0 = Clock::now();
  Call a;
  b->submit(rows_of(3, 2, 0), {}, a.done());
  expect_doubled(a.future.get(), 3, 2, 0);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(50));
  EXPECT_EQ(b->stats().inferences, 3u);
}

TEST_F(ManagerBatcher, QueuedRequestPastItsDeadlineLeavesAlone) {
  BatchingConfig c;
  c.max_batch_size = 2;
  c.max_queue_delay_us = 10'000'000;
  auto b = make(c);
  Call late, a, bb;
  InferenceOptions short_deadline;
  short_deadline.timeout_ms = 20;
  b->submit(rows_of(1, 2, 0), short_deadline, late.done());
  auto r = late.future.get();
  EXPECT_EQ(r.status().code(), StatusCode::deadline_exceeded) << r.status().to_string();
  b->submit(rows_of(1, 2, 5), {}, a.done());
  b->submit(rows_of(1, 2, 7), {}, bb.done());
  expect_doubled(a.future.get(), 1, 2, 5);
  expect_doubled(bb.future.get(), 1, 2, 7);
  EXPECT_EQ(b->stats().executions, 1u);
  EXPECT_EQ(b->stats().requests_failed, 1u);
}

TEST_F(ManagerBatcher, CancelledRequestLeavesTheBatchOthersComplete) {
  BatchingConfig c;
  c.max_batch_size = 3;
  c.max_queue_delay_us = 10'000'000;
  auto b = make(c);
  Call gone, a, bb, cc;
  const RequestId id = b->submit(rows_of(1, 2, 0), {}, gone.done());
  b->submit(rows_of(1, 2, 10), {}, a.done());
  EXPECT_TRUE(b->cancel(id).ok());
  EXPECT_EQ(gone.future.get().status().code(), StatusCode::cancelled);
  EXPECT_EQ(b->cancel(id).code(), StatusCode::not_found);
  b->submit(rows_of(1, 2, 20), {}, bb.done());
  b->submit(rows_of(1, 2, 30), {}, cc.done());
  expect_doubled(a.future.get(), 1, 2, 10);
  expect_doubled(bb.future.get(), 1, 2, 20);
  expect_doubled(cc.future.get(), 1, 2, 30);
  EXPECT_EQ(b->stats().inferences, 3u);
}

TEST_F(ManagerBatcher, DifferentInnerShapesDoNotMix) {
  BatchingConfig c;
  c.max_batch_size = 2;
  c.max_queue_delay_us = 10'000'000;
  auto b = make(c);
  Call a, bb, cc, dd;
  b->submit(rows_of(1, 2, 0), {}, a.done());
  b->submit(rows_of(1, 5, 0), {}, bb.done());
  b->submit(rows_of(1, 2, 50), {}, cc.done());
  b->submit(rows_of(1, 5, 60), {}, dd.done());
  expect_doubled(a.future.get(), 1, 2, 0);
  expect_doubled(bb.future.get(), 1, 5, 0);
  expect_doubled(cc.future.get(), 1, 2, 50);
  expect_doubled(dd.future.get(), 1, 5, 60);
  EXPECT_EQ(b->stats().executions, 2u);
}

TEST_F(ManagerBatcher, RefusesBadRequestsAndConfigs) {
  BatchingConfig c;
  c.max_batch_size = 2;
  auto b = make(c);
  Call big, scalar;
  b->submit(rows_of(3, 2, 0), {}, big.done());
  auto r = big.future.get();
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("batch 3"), std::string::npos) << r.status().message();
  b->submit({{"x", Value(Tensor::scalar<float>(1.f))}}, {}, scalar.done());
  EXPECT_EQ(scalar.future.get().status().code(), StatusCode::invalid_argument);

  BatchingConfig bad;
  bad.max_batch_size = 0;
  EXPECT_EQ(Batcher::create(*manager, model, bad).status().code(), StatusCode::invalid_argument);
  bad.max_batch_size = 4;
  bad.preferred_batch_sizes = {5};
  EXPECT_EQ(Batcher::create(*manager, model, bad).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(Batcher::create(*manager, model + 100, BatchingConfig{}).status().code(), StatusCode::not_found);
}

TEST_F(ManagerBatcher, ShutdownAnswersQueuedRequests) {
  BatchingConfig c;
  c.max_batch_size = 8;
  c.max_queue_delay_us = 10'000'000;
  auto b = make(c);
  Call a;
  b->submit(rows_of(1, 2, 0), {}, a.done());
  b.reset();
  EXPECT_EQ(a.future.get().status().code(), StatusCode::unavailable);
}

TEST_F(ManagerBatcher, ConcurrentSubmittersAllGetTheirOwnRows) {
  BatchingConfig c;
  c.max_batch_size = 8;
  c.max_queue_delay_us = 2000;
  auto b = make(c);
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const float base = static_cast<float>(t * 1000 + i * 10);
        Call call;
        b->submit(rows_of(1 + i % 2, 3, base), {}, call.done());
        auto r = call.future.get();
        if (r.ok() && r.value()[0].second.tensor().data<float>()[0] == 2 * base) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), kThreads * kEach);
  const BatcherStats s = b->stats();
  EXPECT_EQ(s.requests_ok, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_LE(s.executions, s.requests_ok);
}

}  // namespace
// InferenceOptions::run_inline (used by orchard serve for small models): an idle Manager runs the request on
// the calling thread before execute returns; under load it queues as usual and every request still completes.
TEST_F(ManagerBatcher, InlineRequestRunsOnTheCallerWhenASlotIsFree) {
  InferenceOptions inline_options;
  inline_options.run_inline = true;
  std::thread::id ran_on;
  bool answered = false;
  Result<NamedValues> result = internal_error("not answered");
  manager->execute(model, rows_of(2, 3, 5), inline_options, [&](Result<NamedValues> r) {
    ran_on = std::this_thread::get_id();
    answered = true;
    result = std::move(r);
  });
  EXPECT_TRUE(answered);  // before execute returned
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  expect_doubled(result, 2, 3, 5);

  // Many callers at once, inline and queued mixed: each gets its own rows, none is lost.
  constexpr int kThreads = 4, kEach = 100;
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        InferenceOptions o;
        o.run_inline = (i + t) % 3 != 0;
        const float base = static_cast<float>(t * 1000 + i);
        auto p = manager->execute(model, rows_of(1, 4, base), o);
        auto r = p.result.get();
        if (r.ok() && r.value()[0].second.tensor().data<float>()[3] == 2 * (base + 3)) ok.fetch_add(1);
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(manager->performance_summary(model).ok, static_cast<uint64_t>(kThreads * kEach + 1));
  EXPECT_EQ(manager->performance_summary(model).running, 0);
}

}  // namespace orchard
