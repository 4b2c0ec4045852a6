// ThreadPool: intra-op parallelism, shareable by several Sessions (SessionOptions::thread_pool).
// Several threads may call parallel_for at once; callers help run their own work, so nested or
// concurrent calls cannot deadlock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace orchard {

class ThreadPool {
 public:
  // `threads` is the total parallelism including the calling thread; <= 0 means default_threads().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Returns the total parallelism (workers + caller).
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of at least `grain` items and returns when all are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Returns the number of hardware threads (at least 1).
  static int hardware_threads();
  // Returns the parallelism used when none is configured: $ORCHARD_NUM_THREADS if set to a positive
  // integer, else hardware_threads(). (Tests under qemu-user set it to 1: see tests/CMakeLists.txt.)
  static int default_threads();

 private:
  struct Job;
  void worker_loop();
  static void run_chunks(Job& job);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
  std::atomic<int> queued_{0};  // jobs_.size() (+1 once stopping), read by polling workers without the lock
  int sleepers_ = 0;            // workers blocked on cv_ (under mu_)
  bool stop_ = false;
};

}  // namespace orchard
