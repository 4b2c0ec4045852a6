#include "orchard/manager.hpp"

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/buffer_pool.hpp"
#include "core/logging.hpp"
#include "manager/manager_metrics.hpp"
#include "manager/memory_budget.hpp"
#include "orchard/device_memory.hpp"
#include "orchard/trace.hpp"

namespace orchard {

using Clock = std::chrono::steady_clock;
using manager::Outcome;

namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
// Share of the budget set aside for the buffer pool's idle buffers, so that pooled memory in use plus
// memory held idle never passes the configured budget.
constexpr int64_t kPoolCacheShare = 8;

double mib(int64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(kMiB); }

std::string mib_text(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", mib(bytes));
  return buf;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct LoadedModel {
  ModelId id = 0;
  std::string name;
  std::filesystem::path path;
  SessionOptions options;  // as loaded (pool and chain filled in)
  std::mutex compile_mu;   // one compile at a time for by_preference
  std::shared_ptr<Session> session;
  int64_t weights_bytes = 0;  // charged to the budget: the main session's plus every by_preference one's
  // Sessions compiled for a request's backend preference, by preference ("cuda,cpu").
  std::map<std::string, std::shared_ptr<Session>> by_preference;
  int64_t in_flight = 0;  // queued + running; guarded by Manager::Impl::mu
  int max_running = 0;        // LoadOptions::max_concurrent; 0: no limit of its own
  int64_t memory_limit = 0;   // LoadOptions::memory_limit_mb in bytes; 0: no share of its own
  int64_t running = 0;        // its requests running now; guarded by Manager::Impl::mu
  int64_t reserved = 0;       // their activation reservations; guarded by Manager::Impl::mu
  bool unloading = false;
  std::map<const Session*, int64_t> failovers_seen;  // per session, guarded by Manager::Impl::mu
  std::map<const Session*, int64_t> copied_seen;     // per session, guarded by Manager::Impl::mu
  // The last request's input signature and activation estimate (requests mostly repeat the same shapes);
  // guarded by Manager::Impl::mu.
  struct InputSignature {
    std::string name;
    DType dtype;
    Shape shape;
  };
  std::vector<InputSignature> estimated_inputs;
  int64_t estimated_need = -1;  // -1: none cached

  // Returns the activation bytes a request with `inputs` reserves (Session::estimate_memory), from the cache
  // when its inputs have the last request's names, dtypes and shapes. Requires Manager::Impl::mu.
  int64_t activation_need_locked(const NamedValues& inputs) {
    bool cacheable = true, same = estimated_need >= 0 && estimated_inputs.size() == inputs.size();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto& [in_name, value] = inputs[i];
      cacheable &= value.is_tensor() && value.tensor().dtype() != DType::string;
      if (!cacheable) break;
      const Tensor& t = value.tensor();
      same = same && estimated_inputs[i].name == in_name && estimated_inputs[i].dtype == t.dtype() &&
             estimated_inputs[i].shape == t.shape();
    }
    if (cacheable && same) return estimated_need;
    const int64_t need = session->estimate_memory(inputs).activation_bytes;
    if (!cacheable) return need;
    estimated_inputs.clear();
    for (const auto& [in_name, value] : inputs)
      estimated_inputs.push_back({in_name, value.tensor().dtype(), value.tensor().shape()});
    estimated_need = need;
    return need;
  }
};

struct Request {
  RequestId id = 0;
  std::shared_ptr<LoadedModel> model;
  NamedValues inputs;
  InferenceOptions options;
  Completion done;
  Clock::time_point submitted;
  Clock::time_point deadline = Clock::time_point::max();
  uint64_t seq = 0;
  int64_t need = 0;  // activation bytes reserved before it runs (Session::estimate_memory)
  bool running = false;
  std::atomic<bool> abort{false};
};

// Queue order: higher priority first, then arrival.
struct QueueOrder {
  bool operator()(const Request* a, const Request* b) const {
    if (a->options.priority != b->options.priority) return a->options.priority > b->options.priority;
    return a->seq < b->seq;
  }
};

}  // namespace

struct Manager::Impl {
  ManagerConfig config;
  std::shared_ptr<ThreadPool> pool;
  int64_t pool_cache_bytes;
  std::shared_ptr<manager::MemoryBudget> budget_owner;  // shared with request arenas, which may outlive us
  manager::MemoryBudget& budget;
  // Lets a release wake the workers while the Manager lives, and do nothing after.
  struct Wake {
    std::mutex guard;
    bool alive = true;
  };
  std::shared_ptr<Wake> wake = std::make_shared<Wake>();
  std::atomic<int> memory_waiters{0};  // workers that found no memory for the head of the queue
  std::shared_ptr<BufferPool> buffer_pool;
  manager::ManagerMetrics metrics;

  mutable std::mutex mu;
  std::condition_variable work_cv;     // workers: queue non-empty or stopping
  std::condition_variable reaper_cv;   // reaper: earliest queued deadline changed
  std::condition_variable unload_cv;   // unload_model: a model's in_flight dropped
  std::set<Request*, QueueOrder> queue;
  std::multimap<Clock::time_point, Request*> deadlines;  // queued requests that have a deadline
  std::map<RequestId, std::shared_ptr<Request>> active;  // queued or running
  std::map<ModelId, std::shared_ptr<LoadedModel>> models;
  ModelId next_model = 1;
  RequestId next_request = 1;
  uint64_t next_seq = 0;
  int64_t running = 0;
  bool stopping = false;
  int64_t device_cap_before = 0;  // the process's device memory cap before config.device_memory_mb replaced it
  std::vector<std::thread> workers;
  std::thread reaper;

  explicit Impl(const ManagerConfig& c)
      : config(c),
        pool_cache_bytes(c.memory_pool_mb * kMiB / kPoolCacheShare),
        budget_owner(std::make_shared<manager::MemoryBudget>(c.memory_pool_mb * kMiB - pool_cache_bytes)),
        budget(*budget_owner) {
    // The pool keeps its upstream alive: request tensors may outlive the Manager.
    std::shared_ptr<Allocator> upstream = c.allocator ? c.allocator : std::shared_ptr<Allocator>(&default_allocator(), [](Allocator*) {});
    BufferPoolOptions po;
    po.max_cached_bytes = static_cast<size_t>(pool_cache_bytes);
    buffer_pool = std::shared_ptr<BufferPool>(new BufferPool(*upstream, po), [upstream](BufferPool* p) { delete p; });
    // Freed memory may let the head of the queue start. Taking `mu` orders this wake-up after a worker's
    // failed try_charge, so it cannot be lost. (release() is never called with `mu` held.)
    budget.set_release_hook([this, w = wake] {
      std::lock_guard<std::mutex> g(w->guard);
      if (!w->alive || memory_waiters.load() == 0) return;  // common case: nobody waits for memory
      { std::lock_guard<std::mutex> lock(mu); }
      work_cv.notify_all();
    });
  }

  void worker_loop();
  void reaper_loop();
  void run_request(const std::shared_ptr<Request>& r);
  // Removes `r` from the queue indexes; requires mu.
  void dequeue_locked(Request* r);
  // Answers a request and forgets it. Call without mu held.
  void finish(const std::shared_ptr<Request>& r, Result<NamedValues> result, Outcome outcome, Clock::time_point started);
  void update_gauges_locked();
  // True when `model` has a slot and memory share left for a request reserving `need` bytes; requires mu.
  static bool model_admits_locked(const LoadedModel& model, int64_t need);
  // The first queued request, in queue order, whose model admits it; null when none. Requires mu.
  Request* next_runnable_locked() const;
  // Marks r running on a slot of the Manager and of its model; requires mu.
  void start_locked(Request& r);
  Result<std::shared_ptr<Session>> session_for(LoadedModel& m, const std::vector<std::string>& preference);
  void write_trace(const Request& r, const std::vector<NodeProfile>& nodes, Clock::time_point started, Clock::time_point run_start);
};

Manager::Manager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Manager>> Manager::create(const ManagerConfig& config) {
  if (config.max_queue_depth < 0) return invalid_argument("[manager] max_queue_depth must be >= 0, got ", config.max_queue_depth);
  if (config.memory_pool_mb <= 0) return invalid_argument("[manager] memory_pool_mb must be > 0, got ", config.memory_pool_mb);
  if (config.default_timeout_ms < 0) return invalid_argument("[manager] default_timeout_ms must be >= 0, got ", config.default_timeout_ms);
  if (config.max_concurrent_operations < 0) {
    return invalid_argument("[manager] max_concurrent_operations must be >= 0, got ", config.max_concurrent_operations);
  }
  if (config.device_memory_mb < 0) return invalid_argument("[manager] device_memory_mb must be >= 0, got ", config.device_memory_mb);
  auto impl = std::make_unique<Impl>(config);
  if (config.device_memory_mb > 0) impl->device_cap_before = set_device_memory_limit(config.device_memory_mb * kMiB);
  impl->pool = std::make_shared<ThreadPool>(config.intra_op_threads);
  impl->metrics.set_enabled(config.metrics_enabled);
  impl->metrics.set_memory(0, impl->budget.limit(), 0);
  impl->metrics.watch_pool(impl->buffer_pool);
  const int slots = config.max_concurrent_operations > 0 ? config.max_concurrent_operations : ThreadPool::default_threads();
  impl->config.max_concurrent_operations = slots;
  Impl* raw = impl.get();
  for (int i = 0; i < slots; ++i) impl->workers.emplace_back([raw] { raw->worker_loop(); });
  impl->reaper = std::thread([raw] { raw->reaper_loop(); });
  return std::unique_ptr<Manager>(new Manager(std::move(impl)));
}

Manager::~Manager() {
  std::vector<std::shared_ptr<Request>> dropped;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    for (Request* r : impl_->queue) dropped.push_back(impl_->active.at(r->id));
    impl_->queue.clear();
    impl_->deadlines.clear();
    for (auto& [id, r] : impl_->active) r->abort = true;
  }
  impl_->work_cv.notify_all();
  impl_->reaper_cv.notify_all();
  for (auto& r : dropped) {
    impl_->finish(r, unavailable("[manager] shutting down: request ", r->id, " was not run"), Outcome::rejected, Clock::time_point{});
  }
  for (auto& t : impl_->workers) t.join();
  impl_->reaper.join();
  std::lock_guard<std::mutex> g(impl_->wake->guard);
  impl_->wake->alive = false;  // outputs still held by clients release into the budget without waking anyone
  if (impl_->config.device_memory_mb > 0) set_device_memory_limit(impl_->device_cap_before);
}

// ---- models ----

Result<ModelId> Manager::load_model(const std::filesystem::path& path, const LoadOptions& options) {
  Impl& m = *impl_;
  std::error_code ec;
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (ec) return not_found("[manager] cannot read model file '", path.string(), "': ", ec.message());
  const std::string name = options.name.empty() ? path.stem().string() : options.name;
  if (options.max_concurrent < 0) {
    return invalid_argument("[manager] model '", name, "': max_concurrent must be >= 0, got ", options.max_concurrent);
  }
  if (options.memory_limit_mb < 0) {
    return invalid_argument("[manager] model '", name, "': memory_limit_mb must be >= 0, got ", options.memory_limit_mb);
  }
  // A model's weights take about its file size: refuse before reading what cannot fit.
  if (file_bytes > m.budget.available()) {
    return out_of_memory("[manager] model '", name, "' needs about ", mib_text(file_bytes), " for its weights, ",
                         mib_text(m.budget.available()), " of ", mib_text(m.budget.limit()), " available");
  }
  SessionOptions so = options.session;
  so.thread_pool = m.pool;
  so.profiling = true;  // free unless a request asks for a trace
  if (so.backend_preference.empty()) so.backend_preference = m.config.backend_chain;
  ORCHARD_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::load(path, so));
  // Planned workspace: one request with every symbolic dim at 1.
  NamedValues probe;
  for (const auto& in : session->inputs()) {
    if (in.kind != Value::Kind::tensor || in.dtype == DType::undefined || in.dtype == DType::string) continue;
    Shape shape;
    for (const auto& d : in.shape) shape.push_back(d.fixed() ? d.value : 1);
    probe.emplace_back(in.name, Tensor::view(in.dtype, shape, nullptr));
  }
  const MemoryEstimate est = session->estimate_memory(probe);
  if (est.weights_bytes + est.activation_bytes > m.budget.available() || !m.budget.try_charge(est.weights_bytes)) {
    return out_of_memory("[manager] model '", name, "' needs ", mib_text(est.weights_bytes + est.activation_bytes), " (weights ",
                         mib_text(est.weights_bytes), " + workspace ", mib_text(est.activation_bytes), "), ",
                         mib_text(m.budget.available()), " of ", mib_text(m.budget.limit()), " available");
  }
  const int64_t share = options.memory_limit_mb * kMiB;
  if (share > 0 && est.weights_bytes + est.activation_bytes > share) {
    m.budget.release(est.weights_bytes);
    return out_of_memory("[manager] model '", name, "' needs ", mib_text(est.weights_bytes + est.activation_bytes),
                         " (weights ", mib_text(est.weights_bytes), " + workspace ", mib_text(est.activation_bytes),
                         "), more than its memory share of ", mib_text(share));
  }
  auto model = std::make_shared<LoadedModel>();
  model->max_running = options.max_concurrent;
  model->memory_limit = share;
  model->name = name;
  model->path = path;
  model->options = so;
  model->session = std::move(session);
  model->weights_bytes = est.weights_bytes;
  std::lock_guard<std::mutex> lock(m.mu);
  model->id = m.next_model++;
  m.models[model->id] = model;
  m.metrics.add_model(model->id, name);
  m.metrics.set_model_memory(model->id, est.weights_bytes);
  m.metrics.set_placement(model->id, model->session->placement());
  m.update_gauges_locked();
  return model->id;
}

Status Manager::unload_model(ModelId id) {
  Impl& m = *impl_;
  std::shared_ptr<LoadedModel> model;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    auto it = m.models.find(id);
    if (it == m.models.end() || it->second->unloading) return not_found("[manager] no loaded model with id ", id);
    model = it->second;
    model->unloading = true;
    m.unload_cv.wait(lock, [&] { return model->in_flight == 0; });
    m.models.erase(id);
    m.metrics.remove_model(id);
  }
  m.budget.release(model->weights_bytes);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.update_gauges_locked();
  }
  return Status::OK();
}

Result<std::shared_ptr<const Session>> Manager::session(ModelId id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(id);
  if (it == impl_->models.end() || it->second->unloading) return not_found("[manager] no loaded model with id ", id);
  return std::shared_ptr<const Session>(it->second->session);
}

Result<std::shared_ptr<Session>> Manager::Impl::session_for(LoadedModel& model, const std::vector<std::string>& preference) {
  if (preference.empty() || preference == model.options.backend_preference) return model.session;
  std::string key;
  for (const auto& b : preference) key += (key.empty() ? "" : ",") + b;
  std::lock_guard<std::mutex> compile_lock(model.compile_mu);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = model.by_preference.find(key);
    if (it != model.by_preference.end()) return it->second;
  }
  // Compiled on first use and kept while the model is loaded; its weights are charged like a model's.
  SessionOptions so = model.options;
  so.backend_preference = preference;
  ORCHARD_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::load(model.path, so));
  const int64_t weights = session->estimate_memory({}).weights_bytes;
  if (!budget.try_charge(weights)) {
    return out_of_memory("[manager] model '", model.name, "' on backends '", key, "' needs ", mib_text(weights), " for weights, ",
                         mib_text(budget.available()), " available");
  }
  std::shared_ptr<Session> shared = std::move(session);
  std::lock_guard<std::mutex> lock(mu);
  model.by_preference[key] = shared;
  model.weights_bytes += weights;
  metrics.set_model_memory(model.id, model.weights_bytes);
  return shared;
}

// ---- requests ----

RequestId Manager::execute(ModelId id, NamedValues inputs, const InferenceOptions& options, Completion done) {
  Impl& m = *impl_;
  auto r = std::make_shared<Request>();
  r->inputs = std::move(inputs);
  r->options = options;
  r->done = std::move(done);
  r->submitted = Clock::now();
  const int64_t timeout = options.timeout_ms < 0 ? m.config.default_timeout_ms : options.timeout_ms;
  if (timeout > 0) r->deadline = r->submitted + std::chrono::milliseconds(timeout);
  Status refused;
  bool wake_reaper = false;
  bool run_here = false;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    r->id = m.next_request++;
    auto it = m.models.find(id);
    if (m.stopping) {
      refused = unavailable("[manager] shutting down");
    } else if (it == m.models.end() || it->second->unloading) {
      refused = not_found("[manager] no loaded model with id ", id);
    } else if (static_cast<int64_t>(m.queue.size()) >= m.config.max_queue_depth &&
               m.running >= m.config.max_concurrent_operations) {
      refused = resource_exhausted("[manager] queue full: ", m.queue.size(), " requests waiting (max_queue_depth ",
                                   m.config.max_queue_depth, "), ", m.running, " running");
    } else if ((r->need = it->second->activation_need_locked(r->inputs)) >
               m.budget.limit() - it->second->weights_bytes) {
      refused = out_of_memory("[manager] request ", r->id, " for model '", it->second->name, "' needs ", mib_text(r->need),
                              " of activation memory; the budget leaves ", mib_text(m.budget.limit() - it->second->weights_bytes),
                              " beside the model's weights");
    } else if (it->second->memory_limit > 0 && r->need > it->second->memory_limit - it->second->weights_bytes) {
      refused = out_of_memory("[manager] request ", r->id, " for model '", it->second->name, "' needs ", mib_text(r->need),
                              " of activation memory; the model's memory share of ", mib_text(it->second->memory_limit),
                              " leaves ", mib_text(it->second->memory_limit - it->second->weights_bytes), " beside its weights");
    } else if (options.run_inline && m.queue.empty() && m.running < m.config.max_concurrent_operations &&
               Impl::model_admits_locked(*it->second, r->need) && m.budget.try_charge(r->need)) {
      // A free slot and nobody waiting: this thread runs it, as a worker would (run_request releases r->need).
      r->model = it->second;
      r->model->in_flight++;
      r->seq = m.next_seq++;
      m.active[r->id] = r;
      m.start_locked(*r);
      m.update_gauges_locked();
      run_here = true;
    } else {
      r->model = it->second;
      r->model->in_flight++;
      r->seq = m.next_seq++;
      m.active[r->id] = r;
      m.queue.insert(r.get());
      if (r->deadline != Clock::time_point::max()) {
        m.deadlines.emplace(r->deadline, r.get());
        wake_reaper = m.deadlines.begin()->second == r.get();  // only a new earliest deadline moves its alarm
      }
      m.update_gauges_locked();
    }
  }
  if (!refused.ok()) {  // refused before admission: nothing to undo
    m.metrics.record(id, Outcome::rejected, 0, 0, 0);
    if (r->done) r->done(std::move(refused));
    return r->id;
  }
  if (run_here) {
    const RequestId id = r->id;
    m.run_request(r);  // finish() frees the slot and wakes a worker if requests queued meanwhile
    return id;
  }
  m.work_cv.notify_one();
  if (wake_reaper) m.reaper_cv.notify_one();
  return r->id;
}

Manager::Pending Manager::execute(ModelId id, NamedValues inputs, const InferenceOptions& options) {
  auto promise = std::make_shared<std::promise<Result<NamedValues>>>();
  Pending p;
  p.result = promise->get_future();
  p.id = execute(id, std::move(inputs), options, [promise](Result<NamedValues> r) { promise->set_value(std::move(r)); });
  return p;
}

Status Manager::cancel(RequestId id) {
  Impl& m = *impl_;
  std::shared_ptr<Request> queued;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    auto it = m.active.find(id);
    if (it == m.active.end()) return not_found("[manager] request ", id, " is not queued or running");
    std::shared_ptr<Request> r = it->second;
    r->abort = true;
    // Only a request still in the queue is answered here; one that the reaper or shutdown has just taken
    // out is being answered by them, and a running one stops at its next node boundary.
    if (!r->running && m.queue.count(r.get())) {
      m.dequeue_locked(r.get());
      queued = r;
    }
  }
  if (queued) {
    m.finish(queued, cancelled("[manager] request ", id, " cancelled while queued"), Outcome::cancelled, Clock::time_point{});
  }
  m.work_cv.notify_all();  // the head of the queue may have changed
  return Status::OK();
}

void Manager::Impl::dequeue_locked(Request* r) {
  queue.erase(r);
  if (r->deadline != Clock::time_point::max()) {
    auto [lo, hi] = deadlines.equal_range(r->deadline);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == r) {
        deadlines.erase(it);
        break;
      }
    }
  }
}

bool Manager::Impl::model_admits_locked(const LoadedModel& model, int64_t need) {
  if (model.max_running > 0 && model.running >= model.max_running) return false;
  return model.memory_limit == 0 || model.weights_bytes + model.reserved + need <= model.memory_limit;
}

Request* Manager::Impl::next_runnable_locked() const {
  for (Request* r : queue) {
    if (model_admits_locked(*r->model, r->need)) return r;
  }
  return nullptr;
}

void Manager::Impl::start_locked(Request& r) {
  r.running = true;
  ++running;
  ++r.model->running;
  r.model->reserved += r.need;
}

void Manager::Impl::update_gauges_locked() {
  metrics.set_queue_depth(static_cast<int64_t>(queue.size()));
  metrics.set_running(running);
  int64_t weights = 0;
  for (const auto& [id, model] : models) weights += model->weights_bytes;
  metrics.set_memory(budget.used(), budget.limit(), weights);
}

void Manager::Impl::finish(const std::shared_ptr<Request>& r, Result<NamedValues> result, Outcome outcome,
                           Clock::time_point started) {
  const auto now = Clock::now();
  const double total_ms = ms_between(r->submitted, now);
  const double queue_ms = started == Clock::time_point{} ? total_ms : ms_between(r->submitted, started);
  const double compute_ms = started == Clock::time_point{} ? 0.0 : ms_between(started, now);
  if (r->model) metrics.record(r->model->id, outcome, queue_ms, compute_ms, total_ms);
  Completion done = std::move(r->done);
  bool wake_worker = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    active.erase(r->id);
    if (r->running) {  // the slot is free before the client hears back
      r->running = false;
      --running;
      --r->model->running;
      r->model->reserved -= r->need;
      wake_worker = !queue.empty();  // a worker may be waiting for this slot (the Manager's or the model's)
    }
    if (r->model && --r->model->in_flight == 0) unload_cv.notify_all();
    update_gauges_locked();
  }
  if (wake_worker) work_cv.notify_one();
  if (done) done(std::move(result));
}

void Manager::Impl::reaper_loop() {
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    if (deadlines.empty()) {
      reaper_cv.wait(lock);
      continue;
    }
    const auto earliest = deadlines.begin()->first;
    if (Clock::now() < earliest) {
      reaper_cv.wait_until(lock, earliest);
      continue;
    }
    // Requests whose deadline passed while queued are answered without running.
    std::vector<std::shared_ptr<Request>> expired;
    const auto now = Clock::now();
    while (!deadlines.empty() && deadlines.begin()->first <= now) {
      Request* r = deadlines.begin()->second;
      deadlines.erase(deadlines.begin());
      queue.erase(r);
      expired.push_back(active.at(r->id));
    }
    lock.unlock();
    if (!expired.empty()) work_cv.notify_all();  // the head of the queue may have changed
    for (auto& r : expired) {
      finish(r, deadline_exceeded("[manager] request ", r->id, " passed its deadline after ", ms_between(r->submitted, Clock::now()),
                                  " ms in the queue; not run"),
             Outcome::timed_out, Clock::time_point{});
    }
    lock.lock();
  }
}

void Manager::Impl::worker_loop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    // Callers running inline hold slots too (InferenceOptions::run_inline), so a worker also waits for one.
    // A model at its own limit (LoadOptions::max_concurrent, memory_limit_mb) holds back only its requests.
    Request* head = nullptr;
    work_cv.wait(lock, [&] {
      if (stopping) return true;
      if (running >= config.max_concurrent_operations) return false;
      head = next_runnable_locked();
      return head != nullptr;
    });
    if (stopping) return;
    // Memory goes to requests in queue order: the head reserves its activations or everyone waits, so a
    // large request is not starved and a client reading answers in submission order cannot deadlock.
    // Announced before trying, so that a release racing the try sees a waiter (both are seq_cst).
    memory_waiters.fetch_add(1);
    const bool reserved = budget.try_charge(head->need);
    if (!reserved && !config.reject_on_memory_pressure) {
      work_cv.wait(lock);  // woken by a release, a new request, or the queue changing
      memory_waiters.fetch_sub(1);
      continue;
    }
    memory_waiters.fetch_sub(1);
    dequeue_locked(head);
    std::shared_ptr<Request> r = active.at(head->id);
    if (!reserved) {
      lock.unlock();
      finish(r, out_of_memory("[manager] request ", r->id, " needs ", mib_text(r->need), " of activation memory, ",
                              mib_text(budget.available()), " of ", mib_text(budget.limit()), " available"),
             Outcome::rejected, Clock::time_point{});
      lock.lock();
      continue;
    }
    start_locked(*r);
    update_gauges_locked();
    lock.unlock();
    run_request(r);  // finish() frees the slot
    lock.lock();
  }
}

void Manager::Impl::run_request(const std::shared_ptr<Request>& r) {
  const auto started = Clock::now();
  if (r->abort || started > r->deadline) {
    budget.release(r->need);
    if (r->abort) return finish(r, cancelled("[manager] request ", r->id, " cancelled"), Outcome::cancelled, started);
    return finish(r, deadline_exceeded("[manager] request ", r->id, " passed its deadline before it ran"), Outcome::timed_out, started);
  }
  LoadedModel& model = *r->model;
  // The worker has charged r->need; the arena owns that grant from here on.
  auto arena = std::make_shared<manager::RequestArena>(budget_owner, buffer_pool, r->need, [](size_t bytes) {
    return bytes <= BufferPoolOptions{}.max_pooled_bytes ? BufferPool::size_class_bytes(bytes) : bytes;
  });
  auto session_or = session_for(model, r->options.backend_preference);
  if (!session_or.ok()) return finish(r, session_or.status(), Outcome::failed, started);
  std::shared_ptr<Session> session = *session_or;

  RunOptions ro;
  ro.abort = &r->abort;
  ro.deadline = r->deadline;
  ro.allocator = arena;
  std::vector<NodeProfile> profile;
  if (!r->options.trace_path.empty()) ro.profile = &profile;
  const auto run_start = Clock::now();
  auto result = session->run(r->inputs, ro);
  arena->close();
  arena.reset();  // outputs keep their part alive and charged until the client drops them

  const int64_t failovers = session->failover_count();
  {
    std::lock_guard<std::mutex> lock(mu);
    int64_t& copied = model.copied_seen[session.get()];
    const int64_t copied_now = session->bytes_copied();
    if (copied_now > copied) {
      metrics.add_bytes_copied(model.id, copied_now - copied);
      copied = copied_now;
    }
    int64_t& seen = model.failovers_seen[session.get()];
    if (failovers > seen) {
      metrics.add_failovers(model.id, failovers - seen);
      log_once("failover:" + model.name, LogLevel::warn, "manager", "nodes moved to the next backend after a failure",
               {{"model", model.name}, {"failovers", failovers}});
      seen = failovers;
    }
  }
  if (!r->options.trace_path.empty() && result.ok()) write_trace(*r, profile, r->submitted, run_start);
  Outcome outcome = Outcome::ok;
  if (!result.ok()) {
    switch (result.status().code()) {
      case StatusCode::cancelled: outcome = Outcome::cancelled; break;
      case StatusCode::deadline_exceeded: outcome = Outcome::timed_out; break;
      default: outcome = Outcome::failed; break;
    }
  }
  finish(r, std::move(result), outcome, started);
}

void Manager::Impl::write_trace(const Request& r, const std::vector<NodeProfile>& nodes, Clock::time_point submitted,
                                Clock::time_point run_start) {
  TraceInfo info;
  info.name = "request " + std::to_string(r.id);
  info.queue_wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(run_start - submitted).count();
  info.args = {{"model", r.model->name}, {"request", std::to_string(r.id)}, {"priority", std::to_string(r.options.priority)}};
  Status st = write_chrome_trace(r.options.trace_path, nodes, info);
  if (!st.ok()) log(LogLevel::warn, "manager", "cannot write request trace", {{"request", static_cast<int64_t>(r.id)}, {"error", st.message()}});
}

// ---- metrics ----

void Manager::enable_metrics(bool on) { impl_->metrics.set_enabled(on); }

int64_t Manager::trim_buffers() {
  return static_cast<int64_t>(impl_->buffer_pool->trim());
}

PerformanceSummary Manager::performance_summary(std::optional<ModelId> id) const {
  int64_t queued, running;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    queued = static_cast<int64_t>(impl_->queue.size());
    running = impl_->running;
  }
  PerformanceSummary s = impl_->metrics.summary(id, queued, running);
  if (!id) s.memory_usage_mb = mib(impl_->budget.used());
  return s;
}

std::string Manager::metrics_text() const {
  for (const auto& d : device_memory_budgets()) {
    impl_->metrics.set_device_memory(d->device(), d->used(), d->limit(), d->peak(), d->refused());
  }
  return impl_->metrics.prometheus_text();
}

}  // namespace orchard
