// Host memory with a hard cap on the bytes outstanding at once: an allocation that would pass it fails
// (returns nullptr, so the tensor's creation reports out_of_memory) instead of growing the process.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>

#include "orchard/tensor.hpp"

namespace orchard {

class CappedAllocator final : public Allocator {
 public:
  explicit CappedAllocator(size_t cap) : cap_(cap) {}

  void* allocate(size_t bytes, size_t alignment) override {
    const size_t before = used_.fetch_add(bytes);
    if (bytes > cap_ - std::min(cap_, before)) {  // before + bytes > cap_, without overflow
      used_.fetch_sub(bytes);
      return nullptr;
    }
    void* p = default_allocator().allocate(bytes, alignment);
    if (p == nullptr) used_.fetch_sub(bytes);
    return p;
  }
  void deallocate(void* p, size_t bytes) override {
    default_allocator().deallocate(p, bytes);
    used_.fetch_sub(bytes);
  }

  // Bytes handed out and not yet returned.
  size_t used() const { return used_.load(); }

 private:
  const size_t cap_;
  std::atomic<size_t> used_{0};
};

}  // namespace orchard
