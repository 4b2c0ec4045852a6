// Micro-benchmarks of the Manager's request path, next to the seed's figures (bench/RESULTS.md):
// admission, concurrent admission, performance tracking, memory estimation and charging, error
// creation, and the end-to-end overhead of Manager::execute over a bare Session::run on a tiny model.
// EWMA update and the counter+EWMA pair live in telemetry_bench.cpp. Run:
//   ./build/bench/orchard_bench --benchmark_filter='Manager|Status|Session'
#include <benchmark/benchmark.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <semaphore>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <time.h>

#include "core/buffer_pool.hpp"
#include "manager/manager_metrics.hpp"
#include "manager/memory_budget.hpp"
#include "orchard/manager.hpp"
#include "orchard/session.hpp"
#include "orchard/status.hpp"

namespace orchard {
namespace {

// ---- a tiny model, encoded by hand (no protobuf dependency): y = x + w, x and w float32[1, 4] ----

// Appends protobuf wire-format fields.
class Pb {
 public:
  Pb& varint(int field, uint64_t v) {
    key(field, 0);
    put_varint(v);
    return *this;
  }
  Pb& bytes(int field, std::string_view b) {
    key(field, 2);
    put_varint(b.size());
    s_.append(b);
    return *this;
  }
  Pb& msg(int field, const Pb& m) { return bytes(field, m.s_); }
  const std::string& str() const { return s_; }

 private:
  void key(int field, int wire) { put_varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
  void put_varint(uint64_t v) {
    while (v >= 0x80) {
      s_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    s_.push_back(static_cast<char>(v));
  }
  std::string s_;
};

constexpr int kOnnxFloat = 1;

// ValueInfoProto of a float32[1, 4] tensor.
Pb value_info_1x4(std::string_view name) {
  Pb shape;
  shape.msg(1, Pb().varint(1, 1)).msg(1, Pb().varint(1, 4));         // TensorShapeProto.dim: dim_value
  Pb tensor_type;
  tensor_type.varint(1, kOnnxFloat).msg(2, shape);                     // elem_type, shape
  return Pb().bytes(1, name).msg(2, Pb().msg(1, tensor_type));         // name, type.tensor_type
}

// ModelProto bytes of the one-node graph y = Add(x, w), opset 17.
std::string tiny_add_model_bytes() {
  Pb node;
  node.bytes(1, "x").bytes(1, "w").bytes(2, "y").bytes(3, "add").bytes(4, "Add");
  const float w[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  Pb init;
  init.varint(1, 1).varint(1, 4).varint(2, kOnnxFloat).bytes(8, "w")
      .bytes(9, std::string_view(reinterpret_cast<const char*>(w), sizeof w));  // dims, data_type, name, raw_data
  Pb graph;
  graph.msg(1, node).bytes(2, "tiny").msg(5, init).msg(11, value_info_1x4("x")).msg(12, value_info_1x4("y"));
  Pb model;
  model.varint(1, 8).msg(7, graph).msg(8, Pb().varint(2, 17));  // ir_version, graph, opset_import {"" 17}
  return model.str();
}

// Writes the tiny model once and returns its path.
const std::filesystem::path& tiny_model_path() {
  static const std::filesystem::path path = [] {
    auto p = std::filesystem::temp_directory_path() / "orchard_bench_tiny_add.onnx";
    std::ofstream(p, std::ios::binary) << tiny_add_model_bytes();
    return p;
  }();
  return path;
}

// CPU time of the whole process (every thread: client, Manager workers, reaper), in ns. On this shared
// machine wall time includes time spent waiting for a core; this does not.
int64_t process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Adds `proc_cpu_us`: process CPU time per iteration, all threads included.
class ProcessCpuCounter {
 public:
  explicit ProcessCpuCounter(benchmark::State& state) : state_(state), start_(process_cpu_ns()) {}
  ~ProcessCpuCounter() {
    const double us = static_cast<double>(process_cpu_ns() - start_) / 1e3;
    state_.counters["proc_cpu_us"] = us / static_cast<double>(std::max<int64_t>(state_.iterations(), 1));
  }
  ProcessCpuCounter(const ProcessCpuCounter&) = delete;
  ProcessCpuCounter& operator=(const ProcessCpuCounter&) = delete;

 private:
  benchmark::State& state_;
  int64_t start_;
};

NamedValues tiny_inputs() { return {{"x", Value(Tensor::from_vector<float>({1, 4}, {1.f, 2.f, 3.f, 4.f}))}}; }

// A bare session like the Manager's: one intra-op thread, profiling on (the Manager always loads with it).
std::unique_ptr<Session> load_tiny_session(bool profiling) {
  SessionOptions so;
  so.intra_op_threads = 1;
  so.profiling = profiling;
  const std::string bytes = tiny_add_model_bytes();
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), so);
  if (!s.ok()) std::abort();
  return std::move(s).value();
}

// One Manager shared by every Manager benchmark (and all their threads): slots 0 = one per core (the
// default), a deep queue so no client is ever rejected, one intra-op thread.
struct SharedManager {
  std::unique_ptr<Manager> manager;
  ModelId model = 0;
};

SharedManager& shared_manager() {
  static SharedManager shared = [] {
    ManagerConfig c;
    c.max_queue_depth = 1024;
    c.memory_pool_mb = 64;
    c.intra_op_threads = 1;
    auto m = Manager::create(c);
    if (!m.ok()) std::abort();
    SharedManager s;
    s.manager = std::move(m).value();
    auto id = s.manager->load_model(tiny_model_path());
    if (!id.ok()) std::abort();
    s.model = *id;
    return s;
  }();
  return shared;
}

// ---- admission ----

// The Manager has no separate semaphore: a "slot" is one of max_concurrent_operations worker threads
// popping the priority queue. What can be isolated through the public API:
//  * the admission decision alone, for a request refused at once (no worker involved);
//  * a full admitted round trip (queue -> worker -> run -> slot freed -> client answered), below in
//    the overhead section.
// MemoryBudget::try_charge/release is the lock-free acquire/release pair every admitted request does.

void BM_ManagerAdmissionBudgetChargeRelease(benchmark::State& state) {
  manager::MemoryBudget budget(int64_t{64} << 20);
  for (auto _ : state) {
    const bool ok = budget.try_charge(4096);
    benchmark::DoNotOptimize(ok);
    budget.release(4096);
  }
}
BENCHMARK(BM_ManagerAdmissionBudgetChargeRelease);

// Same pair from several threads on one budget (cache-line contention on `used_`).
void BM_ManagerAdmissionBudgetChargeReleaseContended(benchmark::State& state) {
  static manager::MemoryBudget budget(int64_t{64} << 20);
  for (auto _ : state) {
    const bool ok = budget.try_charge(4096);
    benchmark::DoNotOptimize(ok);
    budget.release(4096);
  }
}
BENCHMARK(BM_ManagerAdmissionBudgetChargeReleaseContended)->Threads(2)->UseRealTime();

// Reference point, not Orchard code: an uncontended std::counting_semaphore acquire/release, the
// primitive a seed-style "concurrency slot" is.
void BM_ManagerAdmissionReferenceSemaphore(benchmark::State& state) {
  std::counting_semaphore<64> slots(4);
  for (auto _ : state) {
    slots.acquire();
    slots.release();
  }
}
BENCHMARK(BM_ManagerAdmissionReferenceSemaphore);

// execute() on an unknown model id: Request allocation, the Manager lock, the model lookup, a
// not_found Status, the rejected counter and the callback, all on the caller's thread.
void BM_ManagerAdmissionRefusedAtOnce(benchmark::State& state) {
  SharedManager& s = shared_manager();
  int answered = 0;
  const InferenceOptions options;
  for (auto _ : state) {
    s.manager->execute(s.model + 1000, {}, options, [&answered](Result<NamedValues> r) { answered += !r.ok(); });
  }
  if (answered != static_cast<int>(state.iterations())) state.SkipWithError("a request was not refused");
}
BENCHMARK(BM_ManagerAdmissionRefusedAtOnce);

// ---- end-to-end overhead: Manager::execute(...).result.get() against Session::run, same tiny model ----

void BM_SessionRunTinyAdd(benchmark::State& state) {
  const auto session = load_tiny_session(state.range(0) != 0);
  const NamedValues inputs = tiny_inputs();
  ProcessCpuCounter cpu(state);
  for (auto _ : state) {
    auto r = session->run(inputs);
    if (!r.ok()) state.SkipWithError(r.status().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_SessionRunTinyAdd)->ArgName("profiling")->Arg(0)->Arg(1)->UseRealTime();

// The session the Manager loaded, run directly (its pool, its options): the baseline the overhead is
// measured against.
void BM_SessionRunTinyAddManagersSession(benchmark::State& state) {
  SharedManager& s = shared_manager();
  auto session = s.manager->session(s.model);
  if (!session.ok()) std::abort();
  const NamedValues inputs = tiny_inputs();
  ProcessCpuCounter cpu(state);
  for (auto _ : state) {
    auto r = (*session)->run(inputs);
    if (!r.ok()) state.SkipWithError(r.status().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_SessionRunTinyAddManagersSession)->UseRealTime();

// One client, one request at a time: submit, wait on the future, read the output.
void BM_ManagerExecuteTinyAdd(benchmark::State& state) {
  SharedManager& s = shared_manager();
  const NamedValues inputs = tiny_inputs();
  ProcessCpuCounter cpu(state);
  for (auto _ : state) {
    auto p = s.manager->execute(s.model, inputs);
    auto r = p.result.get();
    if (!r.ok()) state.SkipWithError(r.status().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ManagerExecuteTinyAdd)->UseRealTime();

// Same, with the callback form and a futex wait instead of a promise/future pair.
void BM_ManagerExecuteTinyAddCallback(benchmark::State& state) {
  SharedManager& s = shared_manager();
  const NamedValues inputs = tiny_inputs();
  const InferenceOptions options;
  std::atomic<int> done{0};
  ProcessCpuCounter cpu(state);
  for (auto _ : state) {
    done.store(0, std::memory_order_relaxed);
    s.manager->execute(s.model, inputs, options, [&done](Result<NamedValues> r) {
      benchmark::DoNotOptimize(r);
      done.store(r.ok() ? 1 : 2, std::memory_order_release);
      done.notify_one();
    });
    done.wait(0, std::memory_order_acquire);
    if (done.load(std::memory_order_relaxed) != 1) state.SkipWithError("request failed");
  }
}
BENCHMARK(BM_ManagerExecuteTinyAddCallback)->UseRealTime();

// Reference point, not Orchard code: the floor of any design that hands a request to a worker thread
// and waits for the answer. A client pushes onto a mutex-guarded queue and notifies a condition
// variable; the worker pops and fulfils a promise; the client waits on its future. With arg 1 the client
// also notifies a second idle thread, as Manager::execute notifies its deadline reaper on every request.
class HandoffRig {
 public:
  HandoffRig() {
    worker_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        work_cv_.wait(lock, [this] { return stop_ || pending_ != nullptr; });
        if (stop_) return;
        std::promise<int>* p = std::exchange(pending_, nullptr);
        lock.unlock();
        p->set_value(1);
        lock.lock();
      }
    });
    reaper_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) reaper_cv_.wait(lock);
    });
  }
  ~HandoffRig() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    reaper_cv_.notify_all();
    worker_.join();
    reaper_.join();
  }
  HandoffRig(const HandoffRig&) = delete;
  HandoffRig& operator=(const HandoffRig&) = delete;

  int round_trip(bool wake_reaper) {
    std::promise<int> p;
    auto f = p.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ = &p;
    }
    work_cv_.notify_one();
    if (wake_reaper) reaper_cv_.notify_one();
    return f.get();
  }

 private:
  std::mutex mu_;
  std::condition_variable work_cv_, reaper_cv_;
  std::promise<int>* pending_ = nullptr;
  bool stop_ = false;
  std::thread worker_, reaper_;
};

void BM_ManagerReferenceThreadHandoff(benchmark::State& state) {
  HandoffRig rig;
  const bool wake_reaper = state.range(0) != 0;
  ProcessCpuCounter cpu(state);
  for (auto _ : state) benchmark::DoNotOptimize(rig.round_trip(wake_reaper));
}
BENCHMARK(BM_ManagerReferenceThreadHandoff)->ArgName("wake_reaper")->Arg(0)->Arg(1)->UseRealTime();

// ---- concurrent admission: N client threads on one Manager (slots = cores), tiny model ----
// Reported time is wall time / all requests (inverse throughput); `req_us` is the mean latency one
// client sees per request (submit to answer, queue wait included).
void BM_ManagerConcurrentExecuteTinyAdd(benchmark::State& state) {
  SharedManager& s = shared_manager();
  const NamedValues inputs = tiny_inputs();
  const auto start = std::chrono::steady_clock::now();
  const int64_t cpu_start = state.thread_index() == 0 ? process_cpu_ns() : 0;
  for (auto _ : state) {
    auto p = s.manager->execute(s.model, inputs);
    auto r = p.result.get();
    if (!r.ok()) state.SkipWithError(r.status().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  state.counters["req_us"] =
      benchmark::Counter(us / static_cast<double>(state.iterations()), benchmark::Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations());
  // Thread 0 finishes with the others (Google Benchmark stops all threads together): its process CPU
  // delta covers every client's requests.
  if (state.thread_index() == 0) {
    const double cpu_us = static_cast<double>(process_cpu_ns() - cpu_start) / 1e3;
    state.counters["proc_cpu_us"] =
        cpu_us / static_cast<double>(state.iterations() * static_cast<int64_t>(state.threads()));
  }
}
BENCHMARK(BM_ManagerConcurrentExecuteTinyAdd)->Threads(1)->Threads(2)->Threads(4)->Threads(8)->UseRealTime();

// ---- performance tracking: recording one finished request ----

void BM_ManagerMetricsRecordOk(benchmark::State& state) {
  manager::ManagerMetrics metrics;
  metrics.add_model(1, "tiny");
  double ms = 0.5;
  for (auto _ : state) {
    metrics.record(1, manager::Outcome::ok, 0.01, ms, ms + 0.01);
    ms = ms < 50 ? ms * 1.1 : 0.5;  // walk over the histogram buckets
  }
}
BENCHMARK(BM_ManagerMetricsRecordOk);

// A non-ok outcome records only the outcome counters (global and per model).
void BM_ManagerMetricsRecordRejected(benchmark::State& state) {
  manager::ManagerMetrics metrics;
  metrics.add_model(1, "tiny");
  for (auto _ : state) metrics.record(1, manager::Outcome::rejected, 0, 0, 0);
}
BENCHMARK(BM_ManagerMetricsRecordRejected);

void BM_ManagerMetricsRecordDisabled(benchmark::State& state) {
  manager::ManagerMetrics metrics;
  metrics.add_model(1, "tiny");
  metrics.set_enabled(false);
  for (auto _ : state) metrics.record(1, manager::Outcome::ok, 0.01, 0.5, 0.51);
}
BENCHMARK(BM_ManagerMetricsRecordDisabled);

// ---- memory estimation and charging ----

void BM_SessionEstimateMemoryTinyAdd(benchmark::State& state) {
  const auto session = load_tiny_session(false);
  const NamedValues inputs = {{"x", Value(Tensor::view(DType::float32, {1, 4}, nullptr))}};
  for (auto _ : state) {
    const MemoryEstimate e = session->estimate_memory(inputs);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_SessionEstimateMemoryTinyAdd);

// What run_request does around Session::run for memory: charge the reservation, make the request's
// arena over the buffer pool, close it, drop it (which releases the grant).
void BM_ManagerReservationArenaLifecycle(benchmark::State& state) {
  auto budget_owner = std::make_shared<manager::MemoryBudget>(int64_t{64} << 20);
  manager::MemoryBudget& budget = *budget_owner;
  auto pool = std::make_shared<BufferPool>();
  static constexpr size_t kPooledMax = BufferPoolOptions{}.max_pooled_bytes;
  const auto rounding = [](size_t bytes) {
    return bytes <= kPooledMax ? BufferPool::size_class_bytes(bytes) : bytes;
  };
  const bool allocate = state.range(0) != 0;
  for (auto _ : state) {
    if (!budget.try_charge(64)) state.SkipWithError("budget full");
    auto arena = std::make_shared<manager::RequestArena>(budget_owner, pool, 64, rounding);
    if (allocate) {  // one [1, 4] float output, as the tiny model makes
      void* p = arena->allocate(16, 64);
      benchmark::DoNotOptimize(p);
      arena->deallocate(p, 16);
    }
    arena->close();
  }
  if (budget.used() != 0) state.SkipWithError("budget leaked");
}
BENCHMARK(BM_ManagerReservationArenaLifecycle)->ArgName("alloc")->Arg(0)->Arg(1);

// ---- error creation and formatting ----

void BM_StatusOk(benchmark::State& state) {
  for (auto _ : state) {
    Status s = Status::OK();
    benchmark::DoNotOptimize(s);
    if (!s.ok()) state.SkipWithError("not ok");
  }
}
BENCHMARK(BM_StatusOk);

Result<int> maybe_fail(int v) {
  if (v < 0) return invalid_argument("[x] negative: ", v);
  return v;
}

void BM_StatusResultOkPath(benchmark::State& state) {
  int v = 1;
  for (auto _ : state) {
    auto r = maybe_fail(v);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_StatusResultOkPath);

void BM_StatusCreateLiteral(benchmark::State& state) {
  for (auto _ : state) {
    Status s = invalid_argument("[x] axis is out of range");
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_StatusCreateLiteral);

void BM_StatusCreateFormatted(benchmark::State& state) {
  int64_t axis = 5, rank = 3;
  for (auto _ : state) {
    benchmark::DoNotOptimize(axis);
    Status s = invalid_argument("[x] axis ", axis, " is out of range for rank ", rank);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_StatusCreateFormatted);

// Reference point, not Orchard code: the same message and Status built with std::string appends and
// std::to_chars instead of std::ostringstream (what detail::str_cat uses), to show where the time goes.
void append_piece(std::string& out, std::string_view v) { out.append(v); }
void append_piece(std::string& out, int64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}
template <class... Args>
std::string append_cat(const Args&... args) {
  std::string out;
  (append_piece(out, args), ...);
  return out;
}

void BM_StatusCreateFormattedReferenceToChars(benchmark::State& state) {
  int64_t axis = 5, rank = 3;
  for (auto _ : state) {
    benchmark::DoNotOptimize(axis);
    Status s(StatusCode::invalid_argument, append_cat("[x] axis ", axis, " is out of range for rank ", rank));
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_StatusCreateFormattedReferenceToChars);

// Reference point: one empty std::ostringstream constructed and read, the fixed cost inside str_cat.
void BM_StatusReferenceEmptyOstringstream(benchmark::State& state) {
  for (auto _ : state) {
    std::ostringstream os;
    std::string text = os.str();
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_StatusReferenceEmptyOstringstream);

void BM_StatusToString(benchmark::State& state) {
  const Status s = invalid_argument("[x] axis ", 5, " is out of range for rank ", 3);
  for (auto _ : state) {
    std::string text = s.to_string();
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_StatusToString);

void BM_StatusCreateFormattedToString(benchmark::State& state) {
  int64_t axis = 5, rank = 3;
  for (auto _ : state) {
    benchmark::DoNotOptimize(axis);
    std::string text = invalid_argument("[x] axis ", axis, " is out of range for rank ", rank).to_string();
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_StatusCreateFormattedToString);

// An error travelling up one level through Result and ORCHARD_ASSIGN_OR_RETURN, then prefixed.
Status caller(int v) {
  ORCHARD_ASSIGN_OR_RETURN(int x, maybe_fail(v));
  benchmark::DoNotOptimize(x);
  return Status::OK();
}

void BM_StatusPropagateWithPrefix(benchmark::State& state) {
  int v = -1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(v);
    Status s = caller(v).with_prefix("[cpu] node 'n' (Add): ");
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_StatusPropagateWithPrefix);

}  // namespace
}  // namespace orchard
