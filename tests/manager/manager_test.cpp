// The Manager under load: admission, priorities, deadlines, cancellation, the memory budget (counted
// through the allocator), unload with requests in flight, failover, and metrics after a known workload.
#include "orchard/manager.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "orchard/device_memory.hpp"
#include "testing/counting_allocator.hpp"
#include "testing/model_builder.hpp"
#include "testing/test_backends.hpp"

namespace orchard {
namespace {

using testing::ModelBuilder;
constexpr int kFloat = onnx::TensorProto::FLOAT;

NamedValues feed(int64_t n = 4, float v = 1.f) {
  return {{"x", Value(Tensor::from_vector<float>({1, n}, std::vector<float>(static_cast<size_t>(n), v)))}};
}

// x -> Identity -> y, run by the GateBackend.
std::string gate_model() {
  ModelBuilder b;
  b.input("x", kFloat, {1, "n"}).output("y", kFloat, {1, "n"});
  b.node("Identity", {"x"}, {"y"});
  return b.save(::testing::TempDir() + "gate.onnx");
}

// x -> Relu -> Sigmoid -> y (both claimed by the FaultyBackend, which fails them).
std::string faulty_model() {
  ModelBuilder b;
  b.input("x", kFloat, {1, "n"}).output("y", kFloat, {1, "n"});
  b.node("Relu", {"x"}, {"r"});
  b.node("Sigmoid", {"r"}, {"y"});
  return b.save(::testing::TempDir() + "faulty.onnx");
}

// y = x + W with W float32[1, n] of `weight_floats`.
std::string weights_model(int64_t weight_floats) {
  ModelBuilder b;
  b.input("x", kFloat, {1, weight_floats}).output("y", kFloat, {1, weight_floats});
  b.initializer("w", {1, weight_floats}, 0.5f);
  b.node("Add", {"x", "w"}, {"y"});
  return b.save(::testing::TempDir() + "weights" + std::to_string(weight_floats) + ".onnx");
}

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gate = std::make_shared<testing::GateBackend>();
  }
  // Load options whose sessions have the gate ahead of the CPU.
  LoadOptions gated(std::string name = "") const {
    LoadOptions o;
    o.name = std::move(name);
    o.session.custom_backends = {gate};
    return o;
  }

  std::unique_ptr<Manager> make(int slots, int queue, int64_t memory_mb = 64) {
    ManagerConfig c;
    c.max_concurrent_operations = slots;
    c.max_queue_depth = queue;
    c.memory_pool_mb = memory_mb;
    c.intra_op_threads = 1;
    auto m = Manager::create(c);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return std::move(m).value();
  }

  std::shared_ptr<testing::GateBackend> gate;
};

// InferenceOptions::run_inline with every slot busy: the request queues (execute returns at once) and a
// worker runs it when the slot frees; it never runs on the caller, and never beside the busy slot.
TEST_F(ManagerTest, InlineRequestQueuesWhenNoSlotIsFree) {
  auto m = make(/*slots=*/1, /*queue=*/4);
  auto id = m->load_model(gate_model(), gated());
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto first = m->execute(*id, feed());
  ASSERT_TRUE(gate->wait_entered(1));
  InferenceOptions inline_options;
  inline_options.run_inline = true;
  std::promise<std::thread::id> ran_on;
  auto ran = ran_on.get_future();
  m->execute(*id, feed(), inline_options, [&](Result<NamedValues> r) {
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    ran_on.set_value(std::this_thread::get_id());
  });
  EXPECT_EQ(ran.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "queued, not run";
  EXPECT_EQ(m->performance_summary(*id).queue_depth, 1);
  EXPECT_EQ(gate->entered(), 1) << "the only slot is busy";
  gate->open();
  EXPECT_TRUE(first.result.get().ok());
  EXPECT_NE(ran.get(), std::this_thread::get_id());
  EXPECT_EQ(m->performance_summary(*id).ok, 2u);
}

TEST_F(ManagerTest, RejectsWhenSlotsAndQueueAreFull) {
  auto m = make(/*slots=*/1, /*queue=*/2);
  auto id = m->load_model(gate_model(), gated());
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto first = m->execute(*id, feed());
  ASSERT_TRUE(gate->wait_entered(1));
  auto second = m->execute(*id, feed());
  auto third = m->execute(*id, feed());
  auto fourth = m->execute(*id, feed());
  ASSERT_EQ(fourth.result.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "rejected at once";
  auto rejected = fourth.result.get();
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), StatusCode::resource_exhausted);
  EXPECT_NE(rejected.status().message().find("queue full"), std::string::npos) << rejected.status().message();
  EXPECT_EQ(m->performance_summary(*id).queue_depth, 2);
  gate->open();
  EXPECT_TRUE(first.result.get().ok());
  EXPECT_TRUE(second.result.get().ok());
  EXPECT_TRUE(third.result.get().ok());
  auto s = m->performance_summary(*id);
  EXPECT_EQ(s.ok, 3u);
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(s.queue_depth, 0);
}

TEST_F(ManagerTest, HigherPriorityRunsFirstThenArrivalOrder) {
  auto m = make(1, 8);
  auto id = *m->load_model(gate_model(), gated());
  auto blocker = m->execute(*&id, feed());
  ASSERT_TRUE(gate->wait_entered(1));
  std::mutex mu;
  std::vector<std::string> order;
  std::atomic<int> left{4};
  auto submit = [&](const std::string& tag, int priority) {
    InferenceOptions o;
    o.priority = priority;
    m->execute(id, feed(), o, [&, tag](Result<NamedValues> r) {
      EXPECT_TRUE(r.ok());
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(tag);
      --left;
    });
  };
  submit("low1", 0);
  submit("low2", 0);
  submit("high", 5);
  submit("mid", 2);
  gate->open();
  ASSERT_TRUE(blocker.result.get().ok());
  while (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(order, (std::vector<std::string>{"high", "mid", "low1", "low2"}));
}

TEST_F(ManagerTest, QueuedRequestPastDeadlineIsAnsweredWithoutRunning) {
  auto m = make(1, 8);
  auto id = *m->load_model(gate_model(), gated());
  auto blocker = m->execute(id, feed());
  ASSERT_TRUE(gate->wait_entered(1));
  InferenceOptions o;
  o.timeout_ms = 30;
  auto late = m->execute(id, feed(), o);
  // Answered while the slot is still taken: the reaper, not a worker, expired it.
  ASSERT_EQ(late.result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto r = late.result.get();
  EXPECT_EQ(r.status().code(), StatusCode::deadline_exceeded);
  EXPECT_NE(r.status().message().find("in the queue"), std::string::npos) << r.status().message();
  EXPECT_EQ(gate->entered(), 1) << "the expired request never ran";
  gate->open();
  EXPECT_TRUE(blocker.result.get().ok());
  EXPECT_EQ(m->performance_summary(id).timed_out, 1u);
}

TEST_F(ManagerTest, RunningRequestStopsAtDeadlineAndReleasesMemory) {
  auto m = make(1, 8);
  auto id = *m->load_model(gate_model(), gated());
  const double before = m->performance_summary().memory_usage_mb;
  InferenceOptions o;
  o.timeout_ms = 40;
  auto r = m->execute(id, feed(1024), o).result.get();
  EXPECT_EQ(r.status().code(), StatusCode::deadline_exceeded) << r.status().to_string();
  EXPECT_DOUBLE_EQ(m->performance_summary().memory_usage_mb, before);
  EXPECT_EQ(m->performance_summary(id).running, 0);
}

TEST_F(ManagerTest, CancelQueuedAndRunning) {
  auto m = make(1, 8);
  auto id = *m->load_model(gate_model(), gated());
  auto running = m->execute(id, feed());
  ASSERT_TRUE(gate->wait_entered(1));
  auto queued = m->execute(id, feed());
  EXPECT_TRUE(m->cancel(queued.id).ok());
  EXPECT_EQ(queued.result.get().status().code(), StatusCode::cancelled);
  EXPECT_TRUE(m->cancel(running.id).ok());
  EXPECT_EQ(running.result.get().status().code(), StatusCode::cancelled);
  EXPECT_EQ(m->cancel(running.id).code(), StatusCode::not_found);
  auto s = m->performance_summary(id);
  EXPECT_EQ(s.cancelled, 2u);
  EXPECT_EQ(s.running, 0);
  gate->open();
  EXPECT_TRUE(m->execute(id, feed()).result.get().ok()) << "the slot was released";
}

TEST_F(ManagerTest, RefusesModelThatDoesNotFit) {
  auto m = make(1, 8, /*memory_mb=*/1);
  auto id = m->load_model(weights_model(512 * 1024));  // 2 MiB of weights
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::out_of_memory);
  EXPECT_NE(id.status().message().find("MiB"), std::string::npos) << id.status().message();
  EXPECT_NE(id.status().message().find("available"), std::string::npos) << id.status().message();
  EXPECT_TRUE(m->load_model(weights_model(1024)).ok()) << "a small one still fits";
}

TEST_F(ManagerTest, RequestsOverTheBudgetAreRejectedOrWait) {
  ManagerConfig c;
  c.max_concurrent_operations = 2;
  c.memory_pool_mb = 2;
  c.reject_on_memory_pressure = true;
  c.intra_op_threads = 1;
  auto m = std::move(Manager::create(c)).value();
  auto id = *m->load_model(gate_model(), gated());
  // 1 Mi floats: its 4 MiB output can never fit a 2 MiB budget.
  auto huge = m->execute(id, feed(1 << 20)).result.get();
  EXPECT_EQ(huge.status().code(), StatusCode::out_of_memory);
  EXPECT_NE(huge.status().message().find("4.0 MiB"), std::string::npos) << huge.status().message();
  // 1.5 MiB held by a running request; another 1 MiB does not fit now: rejected at once under this policy.
  auto holder = m->execute(id, feed(384 * 1024));
  ASSERT_TRUE(gate->wait_entered(1));
  auto pressed = m->execute(id, feed(256 * 1024)).result.get();
  EXPECT_EQ(pressed.status().code(), StatusCode::out_of_memory) << pressed.status().to_string();
  EXPECT_NE(pressed.status().message().find("available"), std::string::npos);
  gate->open();
  EXPECT_TRUE(holder.result.get().ok());
  EXPECT_TRUE(m->execute(id, feed(256 * 1024)).result.get().ok()) << "fits once the memory is back";
  EXPECT_EQ(m->performance_summary(id).rejected, 2u);
}

// The Manager keeps the last request's activation estimate per model: a request with other shapes must get
// its own, whichever came before it.
TEST_F(ManagerTest, ActivationEstimateFollowsEachRequestsShapes) {
  auto m = make(1, 8, 2);
  auto id = *m->load_model(gate_model());
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(m->execute(id, feed(4)).result.get().ok()) << round;
    EXPECT_TRUE(m->execute(id, feed(4, 2.f)).result.get().ok()) << round;  // same shapes: the cached estimate
    auto huge = m->execute(id, feed(1 << 20)).result.get();  // a 4 MiB output never fits the 2 MiB budget
    EXPECT_EQ(huge.status().code(), StatusCode::out_of_memory) << round;
    EXPECT_NE(huge.status().message().find("needs 4.0 MiB of activation memory"), std::string::npos)
        << "refused at admission, from its own estimate: " << huge.status().message();
    EXPECT_TRUE(m->execute(id, feed(64 * 1024)).result.get().ok()) << round;
  }
  EXPECT_EQ(m->performance_summary(id).rejected, 3u);
}

// LoadOptions::max_concurrent: the model's second request waits for its only instance, while a later
// request of another model runs on a free Manager slot.
TEST_F(ManagerTest, ModelInstanceLimitHoldsBackOnlyItsOwnRequests) {
  auto m = make(/*slots=*/3, /*queue=*/8);
  LoadOptions one = gated("one_instance");
  one.max_concurrent = 1;
  auto a = m->load_model(gate_model(), one);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = m->load_model(weights_model(16));
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  auto first = m->execute(*a, feed());
  ASSERT_TRUE(gate->wait_entered(1));
  auto second = m->execute(*a, feed());
  // Queued after `second`: without the model's limit a free worker would take `second` first.
  EXPECT_TRUE(m->execute(*b, feed(16)).result.get().ok()) << "another model is not held back";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(gate->entered(), 1) << "the second request waits for the model's only instance";
  EXPECT_EQ(second.result.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  gate->open();
  EXPECT_TRUE(first.result.get().ok());
  EXPECT_TRUE(second.result.get().ok());
  EXPECT_EQ(gate->entered(), 2);
  const PerformanceSummary s = m->performance_summary(*a);
  EXPECT_EQ(s.ok, 2u);
  EXPECT_GE(s.queue_ms_total, 50.0) << "the second request's wait is counted";
  EXPECT_GE(s.compute_ms_total, 50.0) << "the first ran (held by the gate) while the second waited";
  LoadOptions bad;
  bad.max_concurrent = -1;
  EXPECT_EQ(m->load_model(gate_model(), bad).status().code(), StatusCode::invalid_argument);
}

// LoadOptions::memory_limit_mb: the activation reservations of a model's running requests and its weights
// stay within its share, even with Manager slots and budget to spare.
TEST_F(ManagerTest, ModelMemoryShareBoundsItsRunningRequests) {
  auto m = make(/*slots=*/3, /*queue=*/8, /*memory_mb=*/64);
  LoadOptions share = gated("one_mib");
  share.memory_limit_mb = 1;
  auto a = m->load_model(gate_model(), share);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  // 160 Ki floats: a 640 KiB output per request, so one fits the 1 MiB share and two do not.
  auto first = m->execute(*a, feed(160 * 1024));
  ASSERT_TRUE(gate->wait_entered(1));
  auto second = m->execute(*a, feed(160 * 1024));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(gate->entered(), 1) << "the second request would pass the model's share";
  auto huge = m->execute(*a, feed(512 * 1024)).result.get();  // 2 MiB: can never fit the share
  EXPECT_EQ(huge.status().code(), StatusCode::out_of_memory);
  EXPECT_NE(huge.status().message().find("memory share of 1.0 MiB"), std::string::npos) << huge.status().message();
  gate->open();
  EXPECT_TRUE(first.result.get().ok());
  EXPECT_TRUE(second.result.get().ok());
  EXPECT_EQ(gate->entered(), 2);
  LoadOptions tight;
  tight.memory_limit_mb = 1;
  auto big = m->load_model(weights_model(512 * 1024), tight);  // 2 MiB of weights
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::out_of_memory);
  EXPECT_NE(big.status().message().find("memory share"), std::string::npos) << big.status().message();
  EXPECT_TRUE(m->load_model(weights_model(512 * 1024)).ok()) << "the refused load gave its weights back";
}

using testing::CountingAllocator;  // counts live and peak bytes of every allocation that reaches it

// Runs 24 requests of y = x + W (1 MiB each) four at a time under a 3 MiB budget, loaded with `options`, and
// checks through the upstream allocator that request tensors, idle pooled buffers and weights stayed within it.
void expect_tensor_memory_within_budget(const LoadOptions& options) {
  auto counting = std::make_shared<CountingAllocator>();
  ManagerConfig c;
  c.max_concurrent_operations = 4;
  c.max_queue_depth = 64;
  c.memory_pool_mb = 3;
  c.allocator = counting;  // upstream of the Manager's buffer pool: sees in-use and idle pooled bytes
  c.intra_op_threads = 1;
  auto m = std::move(Manager::create(c)).value();
  // y = x + W over 256 Ki floats: every request needs 1 MiB of output; 4 at once would need 4 MiB.
  auto id = *m->load_model(weights_model(256 * 1024), options);
  const int64_t weights = int64_t{1} << 20;
  std::vector<Manager::Pending> pending;
  for (int i = 0; i < 24; ++i) pending.push_back(m->execute(id, {{"x", Value(Tensor::zeros(DType::float32, {1, 256 * 1024}))}}));
  int ok = 0;
  for (auto& p : pending) {
    auto r = p.result.get();  // outputs are dropped at once, returning their memory
    if (r.ok()) ++ok;
  }
  EXPECT_EQ(ok, 24) << "requests wait for memory instead of failing";
  EXPECT_GT(counting->peak(), 0);
  EXPECT_LE(counting->peak() + weights, int64_t{3} << 20)
      << "request tensors, idle pooled buffers and weights stayed within the 3 MiB budget";
  m.reset();
  EXPECT_EQ(counting->live(), 0) << "the pool returned everything when the Manager went away";
}

TEST_F(ManagerTest, TensorMemoryNeverExceedsTheBudget) {
  expect_tensor_memory_within_budget(LoadOptions{});  // the platform's chain: CUDA where there is a GPU
}

// The output is computed in (simulated) device memory and copied to the host by the runtime: that copy is the
// request's tensor, charged to its arena, and keeps the arena alive after the request (it once did not, so the
// budget was released while the client still held the output, and freeing it later touched a dead arena).
TEST_F(ManagerTest, OutputsCopiedFromADeviceStayChargedUntilFreed) {
  LoadOptions device;
  device.session.custom_backends = {testing::make_test_backend("simdev")};
  device.session.backend_preference = {"simdev", "cpu"};
  expect_tensor_memory_within_budget(device);
}

// x -> Relu -> y on the simulated device under a 1 MiB device memory cap: a request whose tensors need 2 MiB
// there fails with resource_exhausted naming the cap, the partition stays on the device (no failover), smaller
// requests before and after run, and the metrics show the device budget.
TEST_F(ManagerTest, DeviceMemoryCapFailsTheRequestAndKeepsServing) {
  ManagerConfig c;
  c.max_concurrent_operations = 1;
  c.device_memory_mb = 1;
  c.intra_op_threads = 1;
  auto m = std::move(Manager::create(c)).value();
  ModelBuilder b;
  b.input("x", kFloat, {1, "n"}).output("y", kFloat, {1, "n"});
  b.node("Relu", {"x"}, {"y"});
  LoadOptions device;
  device.session.custom_backends = {testing::make_test_backend("simdev")};
  device.session.backend_preference = {"simdev", "cpu"};
  auto id = *m->load_model(b.save(::testing::TempDir() + "relu_n.onnx"), device);
  auto budget = device_memory_budget("simdev:1");
  EXPECT_EQ(budget->limit(), int64_t{1} << 20);
  const int64_t refused_before = budget->refused();

  auto small = m->execute(id, feed(64 * 1024, -1.f)).result.get();  // 256 KiB in, 256 KiB out
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  auto big = m->execute(id, feed(256 * 1024)).result.get();  // 1 MiB in and 1 MiB out: over the cap
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::resource_exhausted) << big.status().to_string();
  EXPECT_NE(big.status().message().find("[simdev:1] device memory cap of 1.0 MiB reached"), std::string::npos)
      << big.status().to_string();
  EXPECT_EQ(budget->refused(), refused_before + 1);
  auto again = m->execute(id, feed(64 * 1024, 2.f)).result.get();
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->at(0).second.tensor().data<float>()[7], 2.f);
  EXPECT_EQ(m->performance_summary(id).failovers, 0u) << "a cap refusal is no backend fault";
  EXPECT_EQ(budget->used(), 0) << "every device tensor went back";
  const std::string text = m->metrics_text();
  EXPECT_NE(text.find("orchard_device_memory_limit_bytes{device=\"simdev:1\"} 1048576"), std::string::npos) << text;
  EXPECT_NE(text.find("orchard_device_memory_peak_bytes{device=\"simdev:1\"}"), std::string::npos) << text;
  m.reset();
  EXPECT_EQ(budget->limit(), 0) << "the cap ends with the Manager that set it";
}

TEST_F(ManagerTest, BufferPoolReusesMemoryAcrossRequests) {
  auto m = make(1, 8);
  auto id = *m->load_model(weights_model(1024));
  for (int i = 0; i < 10; ++i) {
    auto r = m->execute(id, {{"x", Value(Tensor::zeros(DType::float32, {1, 1024}))}}).result.get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }  // each output is dropped before the next request, so its buffer comes back to the pool
  const std::string text = m->metrics_text();
  const std::string sample = "\norchard_buffer_pool_hits ";  // the sample line, not its # HELP line
  const auto at = text.find(sample);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GE(std::stod(text.substr(at + sample.size())), 9.0) << "requests after the first reuse the pooled buffer";
  EXPECT_GT(m->trim_buffers(), 0) << "the idle buffer goes back upstream";
  EXPECT_EQ(m->trim_buffers(), 0);
}

TEST_F(ManagerTest, UnloadWaitsForRequestsInFlight) {
  auto m = make(1, 8);
  auto id = *m->load_model(gate_model(), gated());
  auto running = m->execute(id, feed());
  ASSERT_TRUE(gate->wait_entered(1));
  auto queued = m->execute(id, feed());
  std::atomic<bool> unloaded{false};
  std::thread unloader([&] {
    EXPECT_TRUE(m->unload_model(id).ok());
    unloaded = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(unloaded) << "unload waits while requests are in flight";
  EXPECT_EQ(m->execute(id, feed()).result.get().status().code(), StatusCode::not_found) << "no new requests while unloading";
  gate->open();
  EXPECT_TRUE(running.result.get().ok());
  EXPECT_TRUE(queued.result.get().ok());
  unloader.join();
  EXPECT_TRUE(unloaded);
  EXPECT_EQ(m->execute(id, feed()).result.get().status().code(), StatusCode::not_found);
  EXPECT_EQ(m->unload_model(id).code(), StatusCode::not_found);
}

TEST(ManagerFailover, FailingBackendHandsNodesToCpu) {
  auto faulty = std::make_shared<testing::FaultyBackend>();
  LoadOptions with_faulty;
  with_faulty.session.custom_backends = {faulty};
  ManagerConfig c;
  c.max_concurrent_operations = 1;
  c.intra_op_threads = 1;
  auto m = std::move(Manager::create(c)).value();
  auto id = m->load_model(faulty_model(), with_faulty);
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto r = m->execute(*id, {{"x", Value(Tensor::from_vector<float>({1, 2}, {-1.f, 0.f}))}}).result.get();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FLOAT_EQ((*r)[0].second.tensor().data<float>()[0], 0.5f);  // sigmoid(relu(-1))
  EXPECT_EQ(m->performance_summary(*id).failovers, 2u) << "Sigmoid at compile time, Relu at run time";
  EXPECT_EQ(faulty->runs(), 1);
  ASSERT_TRUE(m->execute(*id, {{"x", Value(Tensor::from_vector<float>({1, 2}, {1.f, 2.f}))}}).result.get().ok());
  EXPECT_EQ(faulty->runs(), 1) << "the failover is remembered";
  EXPECT_EQ(m->performance_summary(*id).failovers, 2u);
}

TEST_F(ManagerTest, MetricsAfterAKnownWorkload) {
  gate->open();
  auto m = make(2, 8);
  auto id = *m->load_model(gate_model(), gated("gate_model"));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(m->execute(id, feed()).result.get().ok());
  NamedValues bad{{"x", Value(Tensor::zeros(DType::int32, {1, 4}))}};
  EXPECT_EQ(m->execute(id, bad).result.get().status().code(), StatusCode::invalid_argument);
  auto s = m->performance_summary(id);
  EXPECT_EQ(s.ok, 5u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_GT(s.latency_ms, 0.0);
  EXPECT_GE(s.latency_p99_ms, s.latency_p50_ms);
  const std::string text = m->metrics_text();
  EXPECT_NE(text.find("model=\"gate_model\""), std::string::npos) << text;
  EXPECT_NE(text.find("outcome=\"ok\"} 5"), std::string::npos) << text;
}

TEST(ManagerConfig, RejectsBadConfig) {
  ManagerConfig c;
  c.memory_pool_mb = 0;
  EXPECT_EQ(Manager::create(c).status().code(), StatusCode::invalid_argument);
  c.memory_pool_mb = 16;
  c.max_queue_depth = -1;
  EXPECT_EQ(Manager::create(c).status().code(), StatusCode::invalid_argument);
}

}  // namespace
}  // namespace orchard
