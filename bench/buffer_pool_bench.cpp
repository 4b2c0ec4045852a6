// BufferPool hit path against malloc/free, single-threaded and contended from 2 threads, plus the cost
// of a disabled log statement. Build ad hoc (one line):
//   g++ -O2 -std=c++20 -I include -I src bench/buffer_pool_bench.cpp src/core/buffer_pool.cpp
//       src/core/logging.cpp src/core/tensor.cpp src/core/dtype.cpp src/core/status.cpp
//       src/core/thread_pool.cpp -lbenchmark -lpthread -o /tmp/bpbench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>

#include "core/buffer_pool.hpp"
#include "core/logging.hpp"

namespace orchard {
namespace {

// Shared by the threads of a run; the argument is the size in bytes.
BufferPool& sharded_pool() {
  static BufferPool pool(BufferPoolOptions{.shards = 8});
  return pool;
}
BufferPool& single_lock_pool() {  // one lock per size class
  static BufferPool pool(BufferPoolOptions{.shards = 1});
  return pool;
}

void pool_allocate_release(benchmark::State& state, BufferPool& pool) {
  const auto bytes = static_cast<size_t>(state.range(0));
  pool.deallocate(pool.allocate(bytes, 64), bytes);  // warm: the loop below runs the hit path
  for (auto _ : state) {
    void* p = pool.allocate(bytes, 64);
    benchmark::DoNotOptimize(p);
    pool.deallocate(p, bytes);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Pool_Sharded(benchmark::State& state) { pool_allocate_release(state, sharded_pool()); }
void BM_Pool_LockPerClass(benchmark::State& state) { pool_allocate_release(state, single_lock_pool()); }

void BM_Pool_PooledBuffer(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  BufferPool& pool = sharded_pool();
  for (auto _ : state) {
    auto buf = pool.acquire(bytes);
    benchmark::DoNotOptimize(buf->data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_AlignedAlloc_Free(benchmark::State& state) {  // what default_allocator() does
  const auto bytes = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::aligned_alloc(64, bytes);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Malloc_Free(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(bytes);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// Allocate, write every page, release: fresh memory costs page faults; reused memory does not.
void BM_Pool_TouchPages(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  BufferPool& pool = sharded_pool();
  for (auto _ : state) {
    auto* p = static_cast<char*>(pool.allocate(bytes, 64));
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    benchmark::ClobberMemory();
    pool.deallocate(p, bytes);
  }
}

void BM_AlignedAlloc_TouchPages(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    auto* p = static_cast<char*>(std::aligned_alloc(64, bytes));
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    benchmark::ClobberMemory();
    std::free(p);
  }
}

void BM_Log_Disabled(benchmark::State& state) {
  set_log_level(LogLevel::warn);
  int i = 0;
  for (auto _ : state) {
    ORCHARD_LOG_DEBUG("bench", "never written", {"i", ++i});
    benchmark::DoNotOptimize(i);
  }
}

#define ORCHARD_SIZES Arg(4096)->Arg(1 << 20)
BENCHMARK(BM_Pool_Sharded)->ORCHARD_SIZES->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Pool_LockPerClass)->ORCHARD_SIZES->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Pool_PooledBuffer)->ORCHARD_SIZES->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_AlignedAlloc_Free)->ORCHARD_SIZES->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Malloc_Free)->ORCHARD_SIZES->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Pool_TouchPages)->Arg(1 << 20)->Threads(1)->UseRealTime();
BENCHMARK(BM_AlignedAlloc_TouchPages)->Arg(1 << 20)->Threads(1)->UseRealTime();
BENCHMARK(BM_Log_Disabled);

}  // namespace
}  // namespace orchard

BENCHMARK_MAIN();
