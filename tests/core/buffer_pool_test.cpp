#include "core/buffer_pool.hpp"
#include "core/logging.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

namespace orchard {
namespace {

// Upstream that counts what the pool holds and checks every deallocate matches an allocate exactly.
class CountingAllocator final : public Allocator {
 public:
  explicit CountingAllocator(size_t capacity = SIZE_MAX) : capacity_(capacity) {}
  ~CountingAllocator() override {
    for (auto& [p, bytes] : live_) default_allocator().deallocate(p, bytes);
  }

  void* allocate(size_t bytes, size_t alignment) override {
    std::lock_guard lock(mu_);
    if (outstanding_ + bytes > capacity_) return nullptr;
    void* p = default_allocator().allocate(bytes, alignment);
    if (p == nullptr) return nullptr;
    live_.emplace(p, bytes);
    outstanding_ += bytes;
    ++allocations_;
    return p;
  }
  void deallocate(void* p, size_t bytes) override {
    std::lock_guard lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end() || it->second != bytes) {
      ++mismatches_;
      return;
    }
    live_.erase(it);
    outstanding_ -= bytes;
    ++deallocations_;
    default_allocator().deallocate(p, bytes);
  }

  size_t outstanding() const {
    std::lock_guard lock(mu_);
    return outstanding_;
  }
  size_t live_count() const {
    std::lock_guard lock(mu_);
    return live_.size();
  }
  uint64_t allocations() const {
    std::lock_guard lock(mu_);
    return allocations_;
  }
  uint64_t mismatches() const {
    std::lock_guard lock(mu_);
    return mismatches_;
  }

 private:
  mutable std::mutex mu_;
  size_t capacity_;
  std::unordered_map<void*, size_t> live_;
  size_t outstanding_ = 0;
  uint64_t allocations_ = 0;
  uint64_t deallocations_ = 0;
  uint64_t mismatches_ = 0;
};

size_t round64(size_t n) { return n == 0 ? 64 : (n + 63) / 64 * 64; }

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

TEST(BufferPool, SizeClassesRoundWithinBound) {
  EXPECT_EQ(BufferPool::size_class_bytes(0), 64u);
  EXPECT_EQ(BufferPool::size_class_bytes(1), 64u);
  EXPECT_EQ(BufferPool::size_class_bytes(64), 64u);
  EXPECT_EQ(BufferPool::size_class_bytes(65), 128u);
  EXPECT_EQ(BufferPool::size_class_bytes(256), 256u);
  EXPECT_EQ(BufferPool::size_class_bytes(257), 320u);
  EXPECT_EQ(BufferPool::size_class_bytes(512), 512u);
  EXPECT_EQ(BufferPool::size_class_bytes(513), 640u);
  EXPECT_EQ(BufferPool::size_class_bytes(1000), 1024u);
  EXPECT_EQ(BufferPool::size_class_bytes(1025), 1280u);
  EXPECT_EQ(BufferPool::size_class_bytes(size_t{3} << 20), size_t{3} << 20);
  EXPECT_EQ(BufferPool::size_class_bytes((size_t{1} << 20) + 1), size_t{5} << 18);

  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 70000; ++n) sizes.push_back(n);
  for (size_t k = 16; k < 40; ++k) {
    for (size_t d : {size_t{1} << k, (size_t{1} << k) + 1, (size_t{1} << k) - 1, (size_t{5} << k) / 4 + 1}) {
      sizes.push_back(d);
    }
  }
  size_t previous = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t n = sizes[i];
    const size_t c = BufferPool::size_class_bytes(n);
    ASSERT_GE(c, n) << n;
    ASSERT_EQ(c % 64, 0u) << n;
    // Less than 25% beyond the 64-byte rounding the alignment needs anyway.
    ASSERT_LT((c - round64(n)) * 4, round64(n)) << n << " -> " << c;
    if (i <= 70000) {
      ASSERT_GE(c, previous) << n;  // monotone
      previous = c;
    }
  }
}

TEST(BufferPool, HitAfterReleaseOfSameClass) {
  CountingAllocator up;
  BufferPool pool(up);
  void* a = pool.allocate(1000, 64);
  ASSERT_NE(a, nullptr);
  pool.deallocate(a, 1000);
  void* b = pool.allocate(900, 64);  // same class (1024)
  EXPECT_EQ(b, a);
  void* c = pool.allocate(2000, 64);  // another class
  EXPECT_NE(c, a);
  auto st = pool.stats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.bytes_in_use, 1024u + 2048u);
  EXPECT_EQ(up.allocations(), 2u);
  pool.deallocate(b, 900);
  pool.deallocate(c, 2000);
}

TEST(BufferPool, MemoryIs64ByteAligned) {
  BufferPool pool;
  std::vector<std::pair<void*, size_t>> held;
  for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{63}, size_t{65}, size_t{100}, size_t{333}, size_t{4097},
                   size_t{70001}, size_t{1} << 20}) {
    for (size_t a : {size_t{1}, size_t{8}, size_t{16}, size_t{64}}) {
      void* p = pool.allocate(n, a);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(aligned(p, 64)) << n << " align " << a;
      held.emplace_back(p, n);
    }
  }
  for (auto& [p, n] : held) pool.deallocate(p, n);
  // Reused buffers keep the alignment.
  void* p = pool.allocate(100, 16);
  EXPECT_TRUE(aligned(p, 64));
  pool.deallocate(p, 100);
  EXPECT_EQ(pool.allocate(100, 3), nullptr);  // not a power of two
}

TEST(BufferPool, OveralignedRequestsBypassThePool) {
  CountingAllocator up;
  BufferPool pool(up);
  void* p = pool.allocate(1000, 4096);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned(p, 4096));
  EXPECT_EQ(pool.stats().bypassed, 1u);
  EXPECT_EQ(pool.stats().bytes_in_use, 1000u);
  pool.deallocate(p, 1000);
  EXPECT_EQ(up.outstanding(), 0u);
  EXPECT_EQ(pool.stats().bytes_cached, 0u);
  EXPECT_EQ(up.mismatches(), 0u);
}

TEST(BufferPool, LargeRequestsBypassThePool) {
  CountingAllocator up;
  BufferPool pool(up, {.max_pooled_bytes = size_t{1} << 20});
  const size_t big = (size_t{1} << 20) + 1;
  void* p = pool.allocate(big, 64);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(up.outstanding(), big);  // exact size, no class rounding
  EXPECT_EQ(pool.stats().bytes_in_use, big);
  pool.deallocate(p, big);
  EXPECT_EQ(up.outstanding(), 0u);  // not cached
  auto st = pool.stats();
  EXPECT_EQ(st.bypassed, 1u);
  EXPECT_EQ(st.hits + st.misses, 0u);
  EXPECT_EQ(st.bytes_cached, 0u);
  EXPECT_EQ(st.peak_in_use, big);
}

TEST(BufferPool, BytesAccountingIsExact) {
  CountingAllocator up;
  BufferPool pool(up, {.max_cached_bytes = 1 << 20, .max_pooled_bytes = 1 << 18});
  std::mt19937 rng(7);
  std::vector<std::pair<void*, size_t>> live;
  size_t expected_in_use = 0;
  size_t peak = 0;
  for (int step = 0; step < 5000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      size_t n = rng() % 4 == 0 ? rng() % (1 << 19) : rng() % 5000;  // some above the bypass threshold
      void* p = pool.allocate(n, 64);
      ASSERT_NE(p, nullptr);
      live.emplace_back(p, n);
      expected_in_use += n > (1u << 18) ? n : BufferPool::size_class_bytes(n);
    } else {
      size_t i = rng() % live.size();
      auto [p, n] = live[i];
      live[i] = live.back();
      live.pop_back();
      pool.deallocate(p, n);
      expected_in_use -= n > (1u << 18) ? n : BufferPool::size_class_bytes(n);
    }
    peak = std::max(peak, expected_in_use);
    auto st = pool.stats();
    ASSERT_EQ(st.bytes_in_use, expected_in_use) << "step " << step;
    ASSERT_EQ(up.outstanding(), st.bytes_in_use + st.bytes_cached) << "step " << step;
    ASSERT_LE(st.bytes_cached, size_t{1} << 20);
  }
  EXPECT_EQ(pool.stats().peak_in_use, peak);
  for (auto& [p, n] : live) pool.deallocate(p, n);
  auto st = pool.stats();
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_EQ(up.outstanding(), st.bytes_cached);
  EXPECT_EQ(pool.trim(), st.bytes_cached);
  EXPECT_EQ(up.outstanding(), 0u);
  EXPECT_EQ(up.mismatches(), 0u);
}

TEST(BufferPool, TrimReleasesIdleBuffersToUpstream) {
  CountingAllocator up;
  BufferPool pool(up);
  std::vector<std::pair<void*, size_t>> held;
  for (size_t n : {1024, 1024, 4096, 65536, 65536}) held.emplace_back(pool.allocate(n, 64), n);
  for (auto& [p, n] : held) pool.deallocate(p, n);
  EXPECT_EQ(pool.stats().bytes_cached, 2 * 1024u + 4096u + 2 * 65536u);
  EXPECT_EQ(up.outstanding(), pool.stats().bytes_cached);

  // Largest classes go first: one 64 KiB buffer is enough to get under 100 000 bytes.
  EXPECT_EQ(pool.trim(100000), 65536u);
  EXPECT_EQ(pool.stats().bytes_cached, 2 * 1024u + 4096u + 65536u);
  EXPECT_EQ(pool.trim(), 2 * 1024u + 4096u + 65536u);
  EXPECT_EQ(pool.stats().bytes_cached, 0u);
  EXPECT_EQ(pool.stats().released, 5u);
  EXPECT_EQ(up.outstanding(), 0u);
  EXPECT_EQ(up.live_count(), 0u);
  // After a trim the next request misses.
  void* p = pool.allocate(1024, 64);
  EXPECT_EQ(pool.stats().misses, 6u);
  pool.deallocate(p, 1024);
}

TEST(BufferPool, CapOnCachedBytesIsRespected) {
  CountingAllocator up;
  BufferPool pool(up, {.max_cached_bytes = 4096});
  std::vector<void*> held;
  for (int i = 0; i < 10; ++i) held.push_back(pool.allocate(1024, 64));
  EXPECT_EQ(up.outstanding(), 10 * 1024u);
  for (void* p : held) {
    pool.deallocate(p, 1024);
    EXPECT_LE(pool.stats().bytes_cached, 4096u);
  }
  auto st = pool.stats();
  EXPECT_EQ(st.bytes_cached, 4096u);
  EXPECT_EQ(st.released, 6u);
  EXPECT_EQ(up.outstanding(), 4096u);

  pool.set_max_cached_bytes(1024);
  EXPECT_EQ(pool.stats().bytes_cached, 1024u);
  EXPECT_EQ(up.outstanding(), 1024u);
  pool.set_max_cached_bytes(0);  // no caching at all
  void* p = pool.allocate(100, 64);
  pool.deallocate(p, 100);
  EXPECT_EQ(pool.stats().bytes_cached, 0u);
  EXPECT_EQ(up.outstanding(), 0u);
}

TEST(BufferPool, PeakInUse) {
  BufferPool pool;
  void* a = pool.allocate(1024, 64);
  void* b = pool.allocate(1024, 64);
  void* c = pool.allocate(1024, 64);
  pool.deallocate(a, 1024);
  pool.deallocate(b, 1024);
  void* d = pool.allocate(1024, 64);
  pool.deallocate(c, 1024);
  pool.deallocate(d, 1024);
  auto st = pool.stats();
  EXPECT_EQ(st.peak_in_use, 3 * 1024u);
  EXPECT_EQ(st.bytes_in_use, 0u);
}

TEST(BufferPool, UpstreamFailureReleasesIdleBuffersAndRetries) {
  CountingAllocator up(/*capacity=*/4096);
  BufferPool pool(up);
  void* a = pool.allocate(2048, 64);
  void* b = pool.allocate(2048, 64);
  pool.deallocate(a, 2048);
  pool.deallocate(b, 2048);
  EXPECT_EQ(pool.stats().bytes_cached, 4096u);
  void* c = pool.allocate(4096, 64);  // upstream is full of idle 2 KiB buffers: trim, then retry
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(pool.stats().bytes_cached, 0u);
  EXPECT_EQ(pool.allocate(64, 64), nullptr);  // truly out of memory
  auto r = pool.acquire(64);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::out_of_memory);
  EXPECT_NE(r.status().message().find("64 bytes"), std::string::npos) << r.status().message();
  pool.deallocate(c, 4096);
}

TEST(BufferPool, PooledBufferIsRaiiAndMoveOnly) {
  static_assert(!std::is_copy_constructible_v<PooledBuffer>);
  static_assert(std::is_nothrow_move_constructible_v<PooledBuffer>);
  CountingAllocator up;
  BufferPool pool(up);
  {
    auto r = pool.acquire(3000);
    ASSERT_TRUE(r.ok());
    PooledBuffer buf = std::move(r).value();
    ASSERT_TRUE(buf);
    EXPECT_EQ(buf.size(), 3000u);
    EXPECT_TRUE(aligned(buf.data(), 64));
    std::memset(buf.data(), 0xab, buf.size());
    EXPECT_EQ(pool.stats().bytes_in_use, BufferPool::size_class_bytes(3000));

    PooledBuffer moved = std::move(buf);
    EXPECT_FALSE(buf);  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(moved.data_as<unsigned char>()[2999], 0xab);
    PooledBuffer other = std::move(pool.acquire(10).value());
    other = std::move(moved);  // returns other's old buffer, takes moved's
    EXPECT_EQ(pool.stats().bytes_in_use, BufferPool::size_class_bytes(3000));
    other.reset();
    EXPECT_FALSE(other);
    EXPECT_EQ(pool.stats().bytes_in_use, 0u);
    auto again = pool.acquire(3000);
    EXPECT_EQ(pool.stats().hits, 1u);
  }
  auto st = pool.stats();
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_EQ(up.outstanding(), st.bytes_cached);
  EXPECT_EQ(up.mismatches(), 0u);
}

TEST(BufferPool, TensorCreateThroughThePool) {
  CountingAllocator up;
  BufferPool pool(up);
  void* first = nullptr;
  {
    auto t = Tensor::create(DType::float32, Shape{16, 16}, pool);
    ASSERT_TRUE(t.ok());
    first = t->raw_data();
    EXPECT_TRUE(aligned(first, Tensor::kAlignment));
    EXPECT_EQ(pool.stats().bytes_in_use, 1024u);
    auto s = Tensor::create(DType::string, Shape{3}, pool);  // strings are constructed and destroyed
    ASSERT_TRUE(s.ok());
    s->data<std::string>()[1] = std::string(100, 'x');
  }
  EXPECT_EQ(pool.stats().bytes_in_use, 0u);
  EXPECT_EQ(up.outstanding(), pool.stats().bytes_cached);
  auto t = Tensor::create(DType::float32, Shape{256}, pool);  // same class: the same buffer again
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->raw_data(), first);
  EXPECT_GE(pool.stats().hits, 1u);
  auto empty = Tensor::create(DType::float32, Shape{0, 4}, pool);
  ASSERT_TRUE(empty.ok());
}

TEST(BufferPool, DestroyedWhileInUseWarns) {
  CountingAllocator up;  // frees what the pool leaks, at the end of the test
  std::vector<LogRecord> records;
  const LogLevel saved = log_level();
  set_log_level(LogLevel::warn);
  set_log_sink([&](const LogRecord& r) { records.push_back(r); });
  {
    BufferPool pool(up);
    pool.deallocate(pool.allocate(100, 64), 100);
    (void)pool.allocate(1000, 64);
  }
  set_log_sink({});
  set_log_level(saved);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].component, "buffer_pool");
  ASSERT_EQ(records[0].fields.size(), 1u);
  EXPECT_EQ(records[0].fields[0].value, "1024");
  EXPECT_EQ(up.outstanding(), 1024u);  // the idle buffer went back; the one in use could not
}

TEST(BufferPoolConcurrency, AnotherThreadReusesFreedBuffers) {
  BufferPool pool(BufferPoolOptions{.shards = 4});
  EXPECT_EQ(pool.shards(), 4);
  void* p = nullptr;
  std::thread([&] { p = pool.allocate(5000, 64); }).join();
  std::thread([&] { pool.deallocate(p, 5000); }).join();
  void* q = nullptr;
  std::thread([&] { q = pool.allocate(5000, 64); }).join();  // a hit, whichever shard holds it
  EXPECT_EQ(q, p);
  EXPECT_EQ(pool.stats().hits, 1u);
  pool.deallocate(q, 5000);
}

TEST(BufferPoolConcurrency, AcquireReleaseFrom8ThreadsStaysBalanced) {
  CountingAllocator up;
  BufferPool pool(up, {.max_cached_bytes = 256 << 10, .max_pooled_bytes = 1 << 20});
  constexpr int kThreads = 8;
  constexpr int kIters = 3000;
  std::atomic<int> corrupted{0};
  std::atomic<uint64_t> pooled_allocations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      std::vector<std::pair<unsigned char*, size_t>> held;
      uint64_t pooled = 0;
      for (int i = 0; i < kIters; ++i) {
        if (held.size() < 8 && (held.empty() || rng() % 2 == 0)) {
          const size_t sizes[] = {64, 200, 1000, 4096, 5000, 65536, (1 << 20) + 64};
          size_t n = sizes[rng() % 7];
          auto* p = static_cast<unsigned char*>(pool.allocate(n, 64));
          if (p == nullptr) {
            corrupted.fetch_add(1);
            continue;
          }
          if (n <= (1 << 20)) ++pooled;
          p[0] = p[n / 2] = p[n - 1] = static_cast<unsigned char>(t + 1);  // checked at release: exclusive
          held.emplace_back(p, n);
        } else {
          size_t k = rng() % held.size();
          auto [p, n] = held[k];
          if (p[0] != t + 1 || p[n / 2] != t + 1 || p[n - 1] != t + 1) corrupted.fetch_add(1);
          pool.deallocate(p, n);
          held[k] = held.back();
          held.pop_back();
        }
      }
      for (auto& [p, n] : held) pool.deallocate(p, n);
      pooled_allocations.fetch_add(pooled);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(corrupted.load(), 0);
  auto st = pool.stats();
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_LE(st.bytes_cached, size_t{256} << 10);
  EXPECT_EQ(st.hits + st.misses, pooled_allocations.load());
  EXPECT_GT(st.hits, 0u);
  EXPECT_EQ(up.outstanding(), st.bytes_cached);
  pool.trim();
  EXPECT_EQ(up.outstanding(), 0u);
  EXPECT_EQ(up.live_count(), 0u);
  EXPECT_EQ(up.mismatches(), 0u);
}

}  // namespace
}  // namespace orchard
