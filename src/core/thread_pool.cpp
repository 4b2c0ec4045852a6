#include "orchard/thread_pool.hpp"

#include <algorithm>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace orchard {

namespace {

// Polls before sleeping: a run's kernels call parallel_for back to back, and waking a sleeping thread
// costs tens of microseconds, more than many kernels take. About 50-100 us of polling on current CPUs.
constexpr int kSpinIterations = 4000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t n, chunk, chunks;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
};

int ThreadPool::hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

int ThreadPool::default_threads() {
  if (const char* env = std::getenv("ORCHARD_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return hardware_threads();
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = default_threads();
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queued_.fetch_add(1, std::memory_order_release);  // ends the workers' polling
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(Job& job) {
  for (;;) {
    const int64_t c = job.next.fetch_add(1);
    if (c >= job.chunks) return;
    const int64_t begin = c * job.chunk;
    (*job.fn)(begin, std::min(job.n, begin + job.chunk));
    if (job.done.fetch_add(1) + 1 == job.chunks) {
      std::lock_guard<std::mutex> lock(job.mu);
      job.cv.notify_all();
    }
  }
}

void ThreadPool::worker_loop() {
  for (;;) {
    int spun = 0;
    for (; spun < kSpinIterations && queued_.load(std::memory_order_acquire) == 0; ++spun) cpu_relax();
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        // Jobs whose chunks are all handed out leave the queue; their callers wait for completion.
        while (!jobs_.empty() && jobs_.front()->next.load() >= jobs_.front()->chunks) {
          jobs_.pop_front();
          queued_.fetch_sub(1, std::memory_order_relaxed);
        }
        if (stop_) return;
        if (!jobs_.empty()) {
          job = jobs_.front();
          break;
        }
        // Only jobs already handed out were queued (the worker finished its chunk before the caller removed
        // the job): poll again rather than sleep, as the caller's next job usually follows at once.
        if (spun < kSpinIterations) break;
        ++sleepers_;
        cv_.wait(lock);
        --sleepers_;
      }
    }
    if (job) run_chunks(*job);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = static_cast<int64_t>(size()) * 4;
  // Rounded down, so that every chunk holds at least `grain` items.
  int64_t chunks = std::min<int64_t>(std::max<int64_t>(n / grain, 1), max_chunks);
  if (chunks <= 1 || workers_.empty()) {
    fn(0, n);
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->chunk = (n + chunks - 1) / chunks;
  job->chunks = (n + job->chunk - 1) / job->chunk;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(job);
    queued_.fetch_add(1, std::memory_order_release);
    wake = sleepers_ > 0;  // polling workers see queued_ without a wake-up
  }
  if (wake) cv_.notify_all();
  run_chunks(*job);
  for (int i = 0; i < kSpinIterations && job->done.load(std::memory_order_acquire) != job->chunks; ++i) cpu_relax();
  if (job->done.load(std::memory_order_acquire) != job->chunks) {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done.load() == job->chunks; });
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(jobs_.begin(), jobs_.end(), job);
  if (it != jobs_.end()) {
    jobs_.erase(it);
    queued_.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace orchard
