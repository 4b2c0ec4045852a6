#include "core/buffer_pool.hpp"

#include <algorithm>
#include <bit>
#include <new>
#include <thread>
#include <utility>

#include "core/logging.hpp"

namespace orchard {

namespace {

constexpr size_t kAlign = Tensor::kAlignment;
constexpr size_t kLinearLimit = 256;  // classes are multiples of 64 up to here, then 4 per power of two
constexpr size_t kMaxPooledLimit = size_t{1} << 40;

// Threads are spread over the shards round-robin, in order of first use.
std::atomic<size_t> g_next_thread_slot{0};
thread_local const size_t t_thread_slot = g_next_thread_slot.fetch_add(1, std::memory_order_relaxed);

size_t default_shards() { return std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8); }

}  // namespace

// ---- PooledBuffer ---------------------------------------------------------------------------------

PooledBuffer::PooledBuffer(PooledBuffer&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = std::exchange(other.pool_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void PooledBuffer::reset() {
  if (data_ != nullptr) pool_->deallocate(data_, bytes_);
  pool_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

// ---- size classes -----------------------------------------------------------------------------------

size_t BufferPool::class_index(size_t bytes) {
  if (bytes <= kLinearLimit) return bytes == 0 ? 0 : (bytes - 1) / kAlign;  // 64, 128, 192, 256
  // 2^k < bytes <= 2^(k+1), k >= 8: classes 2^k + j * 2^(k-2), j = 1..4.
  const unsigned k = static_cast<unsigned>(std::bit_width(bytes - 1)) - 1;
  const size_t j = ((bytes - (size_t{1} << k)) + (size_t{1} << (k - 2)) - 1) >> (k - 2);
  return 4 + (k - 8) * 4 + (j - 1);
}

size_t BufferPool::class_size(size_t index) {
  if (index < 4) return (index + 1) * kAlign;
  const size_t k = 8 + (index - 4) / 4;
  const size_t j = (index - 4) % 4 + 1;
  return (size_t{1} << k) + (j << (k - 2));
}

// ---- BufferPool ---------------------------------------------------------------------------------------

BufferPool::BufferPool(Allocator& upstream, BufferPoolOptions options)
    : upstream_(upstream),
      max_pooled_(std::min(options.max_pooled_bytes, kMaxPooledLimit)),
      num_classes_(class_index(std::max<size_t>(max_pooled_, 1)) + 1),
      max_cached_(options.max_cached_bytes) {
  size_t shards = options.shards > 0 ? static_cast<size_t>(options.shards) : default_shards();
  shards = std::bit_floor(std::clamp<size_t>(shards, 1, 64));
  shard_mask_ = shards - 1;
  shards_ = std::make_unique<Shard[]>(num_classes_ * shards);
}

BufferPool::~BufferPool() {
  trim();
  const size_t in_use = in_use_.load();
  if (in_use != 0) {
    log(LogLevel::warn, "buffer_pool", "destroyed while buffers are in use; they will not be returned",
        {{"bytes_in_use", in_use}});
  }
}

size_t BufferPool::home_shard() const { return t_thread_slot & shard_mask_; }

void* BufferPool::pop(Shard& sh) {
  std::lock_guard lock(sh.mu);
  if (sh.free.empty()) return nullptr;
  void* p = sh.free.back();
  sh.free.pop_back();
  sh.count.store(sh.free.size(), std::memory_order_relaxed);
  sh.hits.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void BufferPool::add_in_use(size_t bytes) {
  const size_t now = in_use_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  size_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void* BufferPool::allocate(size_t bytes, size_t alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment)) return nullptr;
  if (alignment > kAlign) return allocate_overaligned(bytes, alignment);
  if (bytes > max_pooled_) {
    void* p = upstream_.allocate(bytes, kAlign);
    if (p == nullptr) {
      trim();
      p = upstream_.allocate(bytes, kAlign);
      if (p == nullptr) return nullptr;
    }
    bypassed_.fetch_add(1, std::memory_order_relaxed);
    add_in_use(bytes);
    return p;
  }

  const size_t cls = class_index(bytes);
  const size_t size = class_size(cls);
  const size_t home = home_shard();
  void* p = pop(shard(cls, home));
  for (size_t i = 1; p == nullptr && i <= shard_mask_; ++i) {  // steal before going upstream
    Shard& other = shard(cls, (home + i) & shard_mask_);
    if (other.count.load(std::memory_order_relaxed) != 0) p = pop(other);
  }
  if (p != nullptr) {
    cached_.fetch_sub(size, std::memory_order_relaxed);
    add_in_use(size);
    return p;
  }

  shard(cls, home).misses.fetch_add(1, std::memory_order_relaxed);
  p = upstream_.allocate(size, kAlign);
  if (p == nullptr) {  // memory pressure: give the idle buffers back and retry once
    trim();
    p = upstream_.allocate(size, kAlign);
    if (p == nullptr) return nullptr;
  }
  add_in_use(size);
  return p;
}

void BufferPool::deallocate(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (overaligned_live_.load(std::memory_order_relaxed) != 0 && release_overaligned(p)) return;
  if (bytes > max_pooled_) {
    in_use_.fetch_sub(bytes, std::memory_order_relaxed);
    upstream_.deallocate(p, bytes);
    return;
  }
  const size_t cls = class_index(bytes);
  const size_t size = class_size(cls);
  in_use_.fetch_sub(size, std::memory_order_relaxed);

  // Count the bytes as cached before they are visible in a free list, so the cap is never exceeded.
  const size_t before = cached_.fetch_add(size, std::memory_order_relaxed);
  if (before + size > max_cached_.load(std::memory_order_relaxed)) {
    cached_.fetch_sub(size, std::memory_order_relaxed);
    released_.fetch_add(1, std::memory_order_relaxed);
    upstream_.deallocate(p, size);
    return;
  }
  Shard& sh = shard(cls, home_shard());
  {
    std::lock_guard lock(sh.mu);
    try {
      sh.free.push_back(p);
      sh.count.store(sh.free.size(), std::memory_order_relaxed);
      return;
    } catch (const std::bad_alloc&) {  // no room for the free-list entry: fall through, release it
    }
  }
  cached_.fetch_sub(size, std::memory_order_relaxed);
  released_.fetch_add(1, std::memory_order_relaxed);
  upstream_.deallocate(p, size);
}

void* BufferPool::allocate_overaligned(size_t bytes, size_t alignment) {
  void* p = upstream_.allocate(bytes, alignment);
  if (p == nullptr) {
    trim();
    p = upstream_.allocate(bytes, alignment);
    if (p == nullptr) return nullptr;
  }
  try {
    std::lock_guard lock(overaligned_mu_);
    overaligned_.emplace(p, bytes);
  } catch (const std::bad_alloc&) {
    upstream_.deallocate(p, bytes);
    return nullptr;
  }
  overaligned_live_.fetch_add(1, std::memory_order_relaxed);
  bypassed_.fetch_add(1, std::memory_order_relaxed);
  add_in_use(bytes);
  return p;
}

bool BufferPool::release_overaligned(void* p) {
  size_t bytes = 0;
  {
    std::lock_guard lock(overaligned_mu_);
    auto it = overaligned_.find(p);
    if (it == overaligned_.end()) return false;
    bytes = it->second;
    overaligned_.erase(it);
  }
  overaligned_live_.fetch_sub(1, std::memory_order_relaxed);
  in_use_.fetch_sub(bytes, std::memory_order_relaxed);
  upstream_.deallocate(p, bytes);
  return true;
}

Result<PooledBuffer> BufferPool::acquire(size_t bytes) {
  void* p = allocate(bytes, kAlign);
  if (p == nullptr) return out_of_memory("[buffer_pool] cannot allocate ", bytes, " bytes");
  return PooledBuffer(this, p, bytes);
}

size_t BufferPool::trim(size_t target_bytes) {
  // Buffers are released under the shard lock: trim runs on the out-of-memory path and must not allocate.
  size_t released_bytes = 0;
  for (size_t cls = num_classes_; cls-- > 0;) {
    const size_t size = class_size(cls);
    for (size_t s = 0; s <= shard_mask_; ++s) {
      if (cached_.load(std::memory_order_relaxed) <= target_bytes) return released_bytes;
      Shard& sh = shard(cls, s);
      if (sh.count.load(std::memory_order_relaxed) == 0) continue;
      std::lock_guard lock(sh.mu);
      size_t n = 0;
      while (!sh.free.empty() && cached_.load(std::memory_order_relaxed) > target_bytes) {
        upstream_.deallocate(sh.free.back(), size);
        sh.free.pop_back();
        cached_.fetch_sub(size, std::memory_order_relaxed);
        ++n;
      }
      sh.count.store(sh.free.size(), std::memory_order_relaxed);
      if (sh.free.empty()) sh.free.shrink_to_fit();
      released_.fetch_add(n, std::memory_order_relaxed);
      released_bytes += n * size;
    }
  }
  return released_bytes;
}

void BufferPool::set_max_cached_bytes(size_t bytes) {
  max_cached_.store(bytes, std::memory_order_relaxed);
  (void)trim(bytes);
}

BufferPool::Stats BufferPool::stats() const {
  Stats st;
  for (size_t i = 0; i < num_classes_ * (shard_mask_ + 1); ++i) {
    const Shard& sh = shards_[i];
    st.hits += sh.hits.load(std::memory_order_relaxed);
    st.misses += sh.misses.load(std::memory_order_relaxed);
  }
  st.bypassed = bypassed_.load(std::memory_order_relaxed);
  st.released = released_.load(std::memory_order_relaxed);
  st.bytes_in_use = in_use_.load(std::memory_order_relaxed);
  st.bytes_cached = cached_.load(std::memory_order_relaxed);
  st.peak_in_use = peak_.load(std::memory_order_relaxed);
  return st;
}

}  // namespace orchard
