// BufferPool: a size-class caching Allocator for tensor and scratch memory, one per device.
//
// Per device: the owner of a device (the Manager for the CPU, a GPU backend for its device memory)
// constructs one pool wrapping that device's Allocator. The pool never reads or writes the memory it
// hands out (free lists live outside the buffers), so it works unchanged for device pointers: a CUDA
// backend wraps its cudaMalloc-based Allocator the same way the CPU wraps default_allocator().
// Layering: depends only on include/orchard/ and src/core/.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard {

struct BufferPoolOptions {
  // Idle bytes the pool may hold; a buffer returned beyond this goes back upstream. SIZE_MAX: no cap.
  size_t max_cached_bytes = SIZE_MAX;
  // Requests larger than this bypass the pool (allocated and freed upstream directly).
  size_t max_pooled_bytes = size_t{256} << 20;
  // Free-list shards per size class (rounded down to a power of two); 0 picks min(hardware threads, 8).
  // Each thread uses its own shard and steals from the others before going upstream.
  int shards = 0;
};

class BufferPool;

// RAII handle to a raw pooled buffer (64-byte aligned); move-only; the destructor returns the memory.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(PooledBuffer&& other) noexcept;
  PooledBuffer& operator=(PooledBuffer&& other) noexcept;
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  ~PooledBuffer() { reset(); }

  // Returns the memory (nullptr when empty).
  void* data() const { return data_; }
  template <class T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }
  // Returns the size requested at acquire (the usable size; the size class may be larger).
  size_t size() const { return bytes_; }
  explicit operator bool() const { return data_ != nullptr; }
  // Returns the memory to the pool now; the handle becomes empty.
  void reset();

 private:
  friend class BufferPool;
  PooledBuffer(BufferPool* pool, void* data, size_t bytes) : pool_(pool), data_(data), bytes_(bytes) {}

  BufferPool* pool_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Size classes: multiples of 64 B up to 256 B, then 4 classes per power of two (320, 384, 448, 512, 640,
// ...), so a buffer wastes less than 25% beyond the 64-byte rounding that alignment needs anyway.
// Thread-safe. The pool must outlive every buffer (and Tensor) allocated from it.
class BufferPool final : public Allocator {
 public:
  // A snapshot; exact when no allocation runs concurrently. Byte counts are size-class bytes (what the
  // pool holds from upstream), so upstream outstanding == bytes_in_use + bytes_cached.
  struct Stats {
    uint64_t hits = 0;          // pooled allocations served from a free list
    uint64_t misses = 0;        // pooled allocations that went upstream
    uint64_t bypassed = 0;      // allocations too large or over-aligned for the pool, served upstream
    uint64_t released = 0;      // idle buffers given back upstream (cap exceeded, trim)
    size_t bytes_in_use = 0;    // handed out and not yet returned, bypassed allocations included
    size_t bytes_cached = 0;    // held idle in free lists
    size_t peak_in_use = 0;     // high-water mark of bytes_in_use
  };

  explicit BufferPool(Allocator& upstream = default_allocator(), BufferPoolOptions options = {});
  explicit BufferPool(BufferPoolOptions options) : BufferPool(default_allocator(), options) {}
  // Releases the idle buffers; logs a warning if buffers are still in use (they would leak).
  ~BufferPool() override;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Returns a buffer of at least `bytes` aligned to max(alignment, 64), or nullptr when upstream fails
  // even after the idle buffers were released. `alignment` must be a power of two.
  void* allocate(size_t bytes, size_t alignment) override;
  // Returns `p` (from allocate(bytes, ...) on this pool) to its free list, or upstream if over the cap.
  void deallocate(void* p, size_t bytes) override;

  // Returns a scratch buffer of `bytes`, or out_of_memory.
  Result<PooledBuffer> acquire(size_t bytes);

  // Releases every idle buffer upstream; returns the bytes released.
  size_t trim() { return trim(0); }
  // Releases idle buffers, largest classes first, until bytes_cached <= target_bytes; returns the bytes released.
  size_t trim(size_t target_bytes);
  // Changes the cap on idle bytes, trimming down to it at once.
  void set_max_cached_bytes(size_t bytes);

  Stats stats() const;
  Allocator& upstream() const { return upstream_; }
  int shards() const { return static_cast<int>(shard_mask_ + 1); }

  // Returns the size class (bytes actually reserved) for a pooled request of `bytes`.
  static size_t size_class_bytes(size_t bytes) { return class_size(class_index(bytes)); }

 private:
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<void*> free;     // idle buffers of this class
    std::atomic<uint64_t> hits{0};  // counted under mu; read without it (stats)
    std::atomic<size_t> count{0};  // free.size(), readable without mu (steal scan)
    std::atomic<uint64_t> misses{0};
  };

  static size_t class_index(size_t bytes);
  static size_t class_size(size_t index);
  Shard& shard(size_t cls, size_t s) { return shards_[cls * (shard_mask_ + 1) + s]; }
  size_t home_shard() const;
  void* pop(Shard& sh);
  void add_in_use(size_t bytes);
  void* allocate_overaligned(size_t bytes, size_t alignment);
  bool release_overaligned(void* p);

  Allocator& upstream_;
  const size_t max_pooled_;
  const size_t num_classes_;
  size_t shard_mask_ = 0;
  std::unique_ptr<Shard[]> shards_;

  std::atomic<size_t> max_cached_;
  std::atomic<size_t> cached_{0};
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> peak_{0};
  std::atomic<uint64_t> bypassed_{0};
  std::atomic<uint64_t> released_{0};

  // Over-aligned (> 64 B) allocations bypass the pool; deallocate recognises them by address.
  std::atomic<size_t> overaligned_live_{0};
  std::mutex overaligned_mu_;
  std::unordered_map<void*, size_t> overaligned_;
};

}  // namespace orchard
