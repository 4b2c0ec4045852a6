// Dynamic batching over the public Manager API: one scheduler thread per Batcher forms batches from its
// queue and hands each to Manager::execute; the Manager's memory estimate therefore covers the whole batch.
#include "orchard/batcher.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "telemetry/metrics.hpp"

namespace orchard {

using Clock = std::chrono::steady_clock;

struct BatchingMetrics::Impl {
  telemetry::MetricsRegistry registry;
};

BatchingMetrics::BatchingMetrics() : impl(std::make_unique<Impl>()) {}
BatchingMetrics::~BatchingMetrics() = default;
std::string BatchingMetrics::prometheus_text() const { return impl->registry.prometheus_text(); }

namespace {

template <class T>
std::shared_ptr<T> must(Result<std::shared_ptr<T>> r) {  // names and bounds below are fixed and valid
  return r.ok() ? std::move(r).value() : std::make_shared<T>();
}
std::shared_ptr<telemetry::Histogram> must(Result<std::shared_ptr<telemetry::Histogram>> r) {
  return r.ok() ? std::move(r).value() : std::make_shared<telemetry::Histogram>(std::vector<double>{1});
}

// One queued request.
struct Item {
  RequestId id = 0;
  NamedValues inputs;
  InferenceOptions options;
  Completion done;
  Clock::time_point enqueued;
  Clock::time_point deadline = Clock::time_point::max();
  int64_t rows = 0;
  std::atomic<bool> answered{false};

  // Returns true for the one caller that may answer this request (the others find it answered).
  bool claim() { return !answered.exchange(true); }
};

// Whether two requests can share a batch: same input names, dtypes, and shapes past the first dim.
bool same_signature(const NamedValues& a, const NamedValues& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first) return false;
    const Tensor& x = a[i].second.tensor();
    const Tensor& y = b[i].second.tensor();
    if (x.dtype() != y.dtype() || x.rank() != y.rank()) return false;
    for (size_t d = 1; d < x.rank(); ++d)
      if (x.dim(d) != y.dim(d)) return false;
  }
  return true;
}

// Concatenates `t` of every item along dim 0 (input `index`).
Result<Tensor> concat_rows(const std::vector<std::shared_ptr<Item>>& items, size_t index, int64_t rows) {
  const Tensor& first = items[0]->inputs[index].second.tensor();
  Shape shape = first.shape();
  shape[0] = rows;
  ORCHARD_ASSIGN_OR_RETURN(Tensor out, Tensor::create(first.dtype(), shape));
  int64_t at = 0;  // elements written
  for (const auto& item : items) {
    const Tensor& t = item->inputs[index].second.tensor();
    if (t.dtype() == DType::string) {
      for (int64_t i = 0; i < t.numel(); ++i) out.data<std::string>()[at + i] = t.data<std::string>()[i];
    } else if (t.nbytes()) {
      std::memcpy(static_cast<char*>(out.raw_data()) + at * dtype_size(t.dtype()), t.raw_data(), t.nbytes());
    }
    at += t.numel();
  }
  return out;
}

// Returns rows [begin, begin + count) of `t` as a new tensor.
Result<Tensor> slice_rows(const Tensor& t, int64_t begin, int64_t count) {
  Shape shape = t.shape();
  const int64_t row = shape[0] ? t.numel() / shape[0] : 0;
  shape[0] = count;
  ORCHARD_ASSIGN_OR_RETURN(Tensor out, Tensor::create(t.dtype(), shape));
  if (t.dtype() == DType::string) {
    for (int64_t i = 0; i < out.numel(); ++i) out.data<std::string>()[i] = t.data<std::string>()[begin * row + i];
  } else if (out.nbytes()) {
    std::memcpy(out.raw_data(), static_cast<const char*>(t.raw_data()) + begin * row * dtype_size(t.dtype()),
                out.nbytes());
  }
  return out;
}

}  // namespace

struct Batcher::Impl {
  Manager& manager;
  ModelId model;
  BatchingConfig config;
  std::string name;
  std::shared_ptr<BatchingMetrics> metrics;

  std::mutex mu;
  std::condition_variable cv;       // scheduler: queue changed, a batch finished, or stop
  std::condition_variable idle_cv;  // destructor: in-flight batches finished
  std::deque<std::shared_ptr<Item>> queue;
  std::unordered_map<RequestId, std::shared_ptr<Item>> live;  // queued or in a running batch
  int inflight = 0;
  bool stopping = false;
  RequestId next_id = 1;
  std::thread scheduler;

  std::atomic<uint64_t> ok{0}, failed{0}, executions{0}, inferences{0};
  std::shared_ptr<telemetry::Histogram> batch_size, queue_delay;
  std::shared_ptr<telemetry::Counter> c_ok, c_failed, c_exec, c_infer;
  std::shared_ptr<telemetry::Gauge> g_pending;

  Impl(Manager& m, ModelId id, BatchingConfig c, std::string n, std::shared_ptr<BatchingMetrics> mt)
      : manager(m), model(id), config(std::move(c)), name(std::move(n)), metrics(std::move(mt)) {
    if (!metrics) metrics = std::make_shared<BatchingMetrics>();
    auto& reg = metrics->impl->registry;
    const telemetry::Labels labels{{"model", name}};
    const auto sizes = telemetry::exponential_buckets(1, 2, 10);
    batch_size = must(reg.histogram("orchard_batch_size", "Rows per executed batch", sizes, labels));
    queue_delay = must(reg.histogram("orchard_batch_queue_delay_seconds", "Time requests waited in the batcher",
                                     telemetry::latency_buckets_seconds(), labels));
    c_ok = must(reg.counter("orchard_batch_request_success", "Batched requests answered with outputs", labels));
    c_failed = must(reg.counter("orchard_batch_request_failure", "Batched requests answered with an error", labels));
    c_exec = must(reg.counter("orchard_batch_exec_count", "Batches executed (one per Manager request)", labels));
    c_infer = must(reg.counter("orchard_batch_inference_count", "Rows executed (a batch of n counts n)", labels));
    g_pending = must(reg.gauge("orchard_batch_pending_requests", "Requests waiting in the batcher", labels));
  }

  // Answers `item` unless it was answered already; counts before answering, so a client that sees its
  // answer also sees it counted.
  void finish(const std::shared_ptr<Item>& item, Result<NamedValues> r) {
    if (!item->claim()) return;
    const bool good = r.ok();
    (good ? ok : failed).fetch_add(1, std::memory_order_relaxed);
    (good ? c_ok : c_failed)->inc();
    item->done(std::move(r));
  }

  // Picks the next batch from the queue (lock held). Returns empty when it should wait; `wake` gets the
  // time at which the oldest partial batch must go.
  std::vector<std::shared_ptr<Item>> take_batch(Clock::time_point now, Clock::time_point* wake) {
    std::vector<std::shared_ptr<Item>> batch;
    if (queue.empty() || inflight >= config.max_inflight_batches) return batch;
    const auto& head = queue.front();
    int64_t rows = 0;
    std::vector<size_t> picked;
    for (size_t i = 0; i < queue.size() && rows < config.max_batch_size; ++i) {
      if (!same_signature(head->inputs, queue[i]->inputs)) continue;
      if (rows + queue[i]->rows > config.max_batch_size) break;
      rows += queue[i]->rows;
      picked.push_back(i);
    }
    const bool full = rows >= config.max_batch_size;
    const bool preferred = std::find(config.preferred_batch_sizes.begin(), config.preferred_batch_sizes.end(), rows) !=
                           config.preferred_batch_sizes.end();
    const auto due = head->enqueued + std::chrono::microseconds(config.max_queue_delay_us);
    if (!full && !preferred && !stopping && now < due) {
      *wake = due;
      return batch;
    }
    for (size_t k = picked.size(); k-- > 0;) {
      batch.push_back(queue[picked[k]]);
      queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(picked[k]));
    }
    std::reverse(batch.begin(), batch.end());
    return batch;
  }

  void run_scheduler() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      const auto now = Clock::now();
      // Requests past their deadline leave the queue now.
      for (auto it = queue.begin(); it != queue.end();) {
        if ((*it)->deadline <= now) {
          auto item = *it;
          it = queue.erase(it);
          live.erase(item->id);
          lock.unlock();
          finish(item, deadline_exceeded("[batcher] request ", item->id, " to '", name, "' waited past its deadline"));
          lock.lock();
          it = queue.begin();
        } else {
          ++it;
        }
      }
      if (stopping && queue.empty()) return;
      Clock::time_point wake = Clock::time_point::max();
      auto batch = take_batch(now, &wake);
      g_pending->set(static_cast<double>(queue.size()));
      if (batch.empty()) {
        for (const auto& item : queue) wake = std::min(wake, item->deadline);
        if (wake == Clock::time_point::max())
          cv.wait(lock);
        else
          cv.wait_until(lock, wake);
        continue;
      }
      ++inflight;
      lock.unlock();
      dispatch(std::move(batch));
      lock.lock();
    }
  }

  void dispatch(std::vector<std::shared_ptr<Item>> batch) {
    const auto now = Clock::now();
    int64_t rows = 0;
    int priority = batch[0]->options.priority;
    Clock::time_point deadline = Clock::time_point::min();
    bool no_deadline = false;
    for (const auto& item : batch) {
      rows += item->rows;
      priority = std::max(priority, item->options.priority);
      if (item->options.timeout_ms < 0) no_deadline = true;  // the Manager's default applies
      deadline = std::max(deadline, item->deadline);
      queue_delay->observe(std::chrono::duration<double>(now - item->enqueued).count());
    }
    InferenceOptions options;
    options.priority = priority;
    if (no_deadline) {
      options.timeout_ms = -1;
    } else if (deadline == Clock::time_point::max()) {
      options.timeout_ms = 0;
    } else {
      options.timeout_ms = std::max<int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
    }
    NamedValues inputs;
    if (batch.size() == 1) {
      inputs = batch[0]->inputs;
    } else {
      for (size_t i = 0; i < batch[0]->inputs.size(); ++i) {
        auto t = concat_rows(batch, i, rows);
        if (!t.ok()) {
          complete(batch, rows, t.status());
          return;
        }
        inputs.emplace_back(batch[0]->inputs[i].first, std::move(t).value());
      }
    }
    executions.fetch_add(1, std::memory_order_relaxed);
    inferences.fetch_add(static_cast<uint64_t>(rows), std::memory_order_relaxed);
    c_exec->inc();
    c_infer->inc(static_cast<uint64_t>(rows));
    batch_size->observe(static_cast<double>(rows));
    manager.execute(model, std::move(inputs), options,
                    [this, batch, rows](Result<NamedValues> r) mutable { complete(batch, rows, std::move(r)); });
  }

  // Answers each member of a finished batch with its rows of every batch-shaped output.
  void complete(const std::vector<std::shared_ptr<Item>>& batch, int64_t rows, Result<NamedValues> r) {
    const auto now = Clock::now();
    int64_t begin = 0;
    for (const auto& item : batch) {
      if (!r.ok()) {
        finish(item, r.status());
      } else if (now > item->deadline) {
        finish(item, deadline_exceeded("[batcher] request ", item->id, " to '", name, "' finished past its deadline"));
      } else if (!item->answered.load()) {
        NamedValues mine;
        Status bad;
        for (const auto& [oname, value] : r.value()) {
          if (batch.size() == 1 || !value.is_tensor() || value.tensor().rank() == 0 || value.tensor().dim(0) != rows) {
            mine.emplace_back(oname, value);  // not batch-shaped: every member gets all of it
            continue;
          }
          auto part = slice_rows(value.tensor(), begin, item->rows);
          if (!part.ok()) {
            bad = part.status();
            break;
          }
          mine.emplace_back(oname, std::move(part).value());
        }
        if (bad.ok())
          finish(item, std::move(mine));
        else
          finish(item, bad);
      }
      begin += item->rows;
    }
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& item : batch) live.erase(item->id);
    --inflight;
    cv.notify_all();
    idle_cv.notify_all();
  }
};

Result<std::unique_ptr<Batcher>> Batcher::create(Manager& manager, ModelId model, const BatchingConfig& config,
                                                 std::string name, std::shared_ptr<BatchingMetrics> metrics) {
  if (config.max_batch_size < 1) return invalid_argument("[batcher] max_batch_size ", config.max_batch_size, " < 1");
  if (config.max_queue_delay_us < 0)
    return invalid_argument("[batcher] max_queue_delay_us ", config.max_queue_delay_us, " < 0");
  if (config.max_inflight_batches < 1)
    return invalid_argument("[batcher] max_inflight_batches ", config.max_inflight_batches, " < 1");
  for (int64_t p : config.preferred_batch_sizes)
    if (p < 1 || p > config.max_batch_size)
      return invalid_argument("[batcher] preferred batch size ", p, " outside [1, ", config.max_batch_size, "]");
  ORCHARD_ASSIGN_OR_RETURN(auto session, manager.session(model));
  (void)session;
  auto impl = std::make_unique<Impl>(manager, model, config, std::move(name), std::move(metrics));
  Impl* raw = impl.get();
  impl->scheduler = std::thread([raw] { raw->run_scheduler(); });
  return std::unique_ptr<Batcher>(new Batcher(std::move(impl)));
}

Batcher::Batcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Batcher::~Batcher() {
  std::deque<std::shared_ptr<Item>> dropped;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    dropped.swap(impl_->queue);
    for (const auto& item : dropped) impl_->live.erase(item->id);
    impl_->cv.notify_all();
  }
  for (const auto& item : dropped)
    impl_->finish(item, unavailable("[batcher] '", impl_->name, "' is shutting down; request ", item->id, " not run"));
  impl_->scheduler.join();
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(lock, [&] { return impl_->inflight == 0; });
}

RequestId Batcher::submit(NamedValues inputs, const InferenceOptions& options, Completion done) {
  auto item = std::make_shared<Item>();
  item->inputs = std::move(inputs);
  item->options = options;
  item->done = std::move(done);
  item->enqueued = Clock::now();
  if (options.timeout_ms > 0) item->deadline = item->enqueued + std::chrono::milliseconds(options.timeout_ms);
  Status bad;
  if (item->inputs.empty()) bad = invalid_argument("[batcher] request to '", impl_->name, "' has no inputs");
  for (const auto& [iname, v] : item->inputs) {
    if (!bad.ok()) break;
    if (!v.is_tensor() || v.tensor().rank() == 0) {
      bad = invalid_argument("[batcher] input '", iname, "' of '", impl_->name, "' needs a batch dimension, got ",
                             v.description());
    } else if (item->rows == 0) {
      item->rows = v.tensor().dim(0);
    } else if (v.tensor().dim(0) != item->rows) {
      bad = invalid_argument("[batcher] input '", iname, "' has batch ", v.tensor().dim(0), ", other inputs ",
                             item->rows);
    }
  }
  if (bad.ok() && (item->rows < 1 || item->rows > impl_->config.max_batch_size))
    bad = invalid_argument("[batcher] request batch ", item->rows, " outside [1, ", impl_->config.max_batch_size,
                           "] for '", impl_->name, "'");
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    item->id = impl_->next_id++;
    if (bad.ok() && impl_->stopping) bad = unavailable("[batcher] '", impl_->name, "' is shutting down");
    if (bad.ok() && static_cast<int64_t>(impl_->queue.size()) >= impl_->config.max_queue_size)
      bad = resource_exhausted("[batcher] queue of '", impl_->name, "' is full (", impl_->config.max_queue_size, ")");
    if (bad.ok()) {
      impl_->queue.push_back(item);
      impl_->live.emplace(item->id, item);
      impl_->cv.notify_all();
    }
  }
  if (!bad.ok()) impl_->finish(item, bad);
  return item->id;
}

Status Batcher::cancel(RequestId id) {
  std::shared_ptr<Item> item;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->live.find(id);
    if (it == impl_->live.end() || it->second->answered.load())
      return not_found("[batcher] request ", id, " is not pending");
    item = it->second;
    auto q = std::find(impl_->queue.begin(), impl_->queue.end(), item);
    if (q != impl_->queue.end()) {
      impl_->queue.erase(q);
      impl_->live.erase(it);
    }
  }
  impl_->finish(item, cancelled("[batcher] request ", id, " cancelled"));
  return Status::OK();
}

BatcherStats Batcher::stats() const {
  BatcherStats s;
  s.requests_ok = impl_->ok.load();
  s.requests_failed = impl_->failed.load();
  s.executions = impl_->executions.load();
  s.inferences = impl_->inferences.load();
  std::lock_guard<std::mutex> lock(impl_->mu);
  s.pending = static_cast<int64_t>(impl_->queue.size());
  return s;
}

}  // namespace orchard
