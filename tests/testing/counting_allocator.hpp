// An Allocator for tests that counts the bytes it has live and the most it ever had live at once.
#pragma once

#include <atomic>
#include <cstdint>

#include "orchard/tensor.hpp"

namespace orchard::testing {

class CountingAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t alignment) override {
    const int64_t now = live_.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return default_allocator().allocate(bytes, alignment);
  }
  void deallocate(void* p, size_t bytes) override {
    live_.fetch_sub(static_cast<int64_t>(bytes));
    default_allocator().deallocate(p, bytes);
  }
  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }

 private:
  std::atomic<int64_t> live_{0}, peak_{0};
};

}  // namespace orchard::testing
