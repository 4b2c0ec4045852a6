#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "orchard/thread_pool.hpp"

namespace orchard {
namespace {

// Runs parallel_for(n, grain) and checks each index in [0, n) is visited exactly once, by chunks that
// lie within [0, n) and are non-empty; with `check_grain`, also that every chunk but the last holds at
// least `grain` items, as thread_pool.hpp promises.
void expect_exact_cover(ThreadPool& pool, int64_t n, int64_t grain, bool check_grain = false) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::atomic<int> bad_chunks{0};
  pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    if (begin < 0 || end > n || begin >= end) {
      bad_chunks.fetch_add(1);
      return;
    }
    if (check_grain && end - begin < grain && end != n) bad_chunks.fetch_add(1);
    for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  EXPECT_EQ(bad_chunks.load(), 0) << "n=" << n << " grain=" << grain;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " n=" << n << " grain=" << grain;
  }
}

TEST(ThreadPool, SizeCountsCaller) {
  ThreadPool one(1);
  EXPECT_EQ(one.size(), 1);
  ThreadPool four(4);
  EXPECT_EQ(four.size(), 4);
  ThreadPool automatic(0);
  EXPECT_EQ(automatic.size(), ThreadPool::default_threads());
}

TEST(ThreadPool, CoversEachIndexExactlyOnce) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 7, 16, 17, 100, 1000, 4097}) {
      for (int64_t grain : {0, 1, 2, 3, 8, 64, 1000, 5000}) expect_exact_cover(pool, n, grain);
    }
  }
}

// Disabled: parallel_for computes chunks = min(ceil(n / grain), 4 * size) and then chunk = ceil(n / chunks),
// which can be below grain (n=17, grain=8: chunks of 6, 6, 5). Fix in thread_pool.cpp: chunks =
// min(max(n / grain, 1), 4 * size) (floor), so that ceil(n / chunks) >= grain. Enable once fixed.
TEST(ThreadPool, ChunksHoldAtLeastGrainItems) {
  ThreadPool pool(4);
  for (int64_t n : {17, 100, 1000, 4097}) {
    for (int64_t grain : {3, 8, 64, 1000}) expect_exact_cover(pool, n, grain, /*check_grain=*/true);
  }
}

TEST(ThreadPool, NegativeCountRunsNothing) {
  ThreadPool pool(3);
  std::atomic<int> calls{0};
  pool.parallel_for(-5, 1, [&](int64_t, int64_t) { calls.fetch_add(1); });
  pool.parallel_for(0, 1, [&](int64_t, int64_t) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 0);
}

TEST(ThreadPool, UsesMoreThanOneThreadForSlowChunks) {
  ThreadPool pool(4);
  std::mutex mu;
  std::set<std::thread::id> ids;
  pool.parallel_for(16, 1, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_GT(ids.size(), 1u);
}

TEST(ThreadPool, ConcurrentCallersEachGetExactCover) {
  ThreadPool pool(4);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 6; ++c) {
    callers.emplace_back([&, c] {
      for (int rep = 0; rep < 40; ++rep) {
        const int64_t n = 50 + 37 * c + rep;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, 1 + c, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (auto& h : hits) {
          if (h.load() != 1) failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ThreadPool, NestedParallelForCompletes) {
  ThreadPool pool(3);
  // Run with a watchdog: a deadlock fails the test instead of hanging the suite.
  auto done = std::async(std::launch::async, [&] {
    std::atomic<int64_t> total{0};
    pool.parallel_for(12, 1, [&](int64_t b0, int64_t e0) {
      for (int64_t i = b0; i < e0; ++i) {
        pool.parallel_for(100, 1, [&](int64_t b1, int64_t e1) {
          for (int64_t j = b1; j < e1; ++j) {
            pool.parallel_for(3, 1, [&](int64_t b2, int64_t e2) { total.fetch_add(e2 - b2); });
          }
        });
      }
    });
    return total.load();
  });
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "ThreadPool.NestedParallelForCompletes: nested parallel_for deadlocked\n");
    std::abort();  // the stuck future cannot be destroyed, so fail loudly instead of hanging
  }
  EXPECT_EQ(done.get(), 12 * 100 * 3);
}

TEST(ThreadPool, ManyPoolsCreatedAndDestroyed) {
  for (int i = 0; i < 20; ++i) {
    ThreadPool pool(3);
    expect_exact_cover(pool, 64, 4);
  }
}

}  // namespace
}  // namespace orchard
