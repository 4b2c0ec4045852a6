// The Manager's memory budget: every byte of model weights, request reservations and tensor memory
// handed out through a RequestArena is charged here first, and nothing is charged past the limit.
// Layer: manager (depends on include/orchard only).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <utility>
#include <memory>
#include <mutex>

#include "orchard/tensor.hpp"

namespace orchard::manager {

class MemoryBudget {
 public:
  explicit MemoryBudget(int64_t limit_bytes) : limit_(limit_bytes) {}

  int64_t limit() const { return limit_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  int64_t available() const { return limit_ - used(); }
  // Highest `used()` ever seen.
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }

  // Charges `bytes` if they fit; returns whether they did.
  bool try_charge(int64_t bytes);
  // Returns `bytes` to the budget, then calls the release hook (the Manager wakes its workers there).
  void release(int64_t bytes);
  // Sets the hook release() calls; set it before any concurrent use.
  void set_release_hook(std::function<void()> hook) { on_release_ = std::move(hook); }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::function<void()> on_release_;
};

// Tensor memory of one request. It starts with a grant charged to the budget (the request's
// reservation); allocations beyond the grant grow it from the budget or fail (out_of_memory for the
// request, never for the process). close() returns the unused part of the grant when the request ends;
// tensors still alive (the outputs handed to the client) stay charged until they are freed.
class RequestArena final : public Allocator, public std::enable_shared_from_this<RequestArena> {
 public:
  // `grant` must already be charged to `budget`; the arena keeps the budget alive (outputs may outlive
  // the Manager). `charge_rounding` maps a request size to the bytes upstream really spends on it (a pool's size class).
  RequestArena(std::shared_ptr<MemoryBudget> budget, std::shared_ptr<Allocator> upstream, int64_t grant,
               std::function<size_t(size_t)> charge_rounding = {})
      : budget_(std::move(budget)), upstream_(std::move(upstream)), charge_rounding_(std::move(charge_rounding)), grant_(grant) {}
  ~RequestArena() override;

  void* allocate(size_t bytes, size_t alignment) override;
  void deallocate(void* p, size_t bytes) override;
  // Ends the request: keeps only the bytes still in use charged.
  void close();

  int64_t in_use() const;
  int64_t peak_in_use() const;

 private:
  int64_t charged_bytes(size_t bytes) const;

  std::shared_ptr<MemoryBudget> budget_;
  std::shared_ptr<Allocator> upstream_;
  std::function<size_t(size_t)> charge_rounding_;
  mutable std::mutex mu_;
  int64_t grant_;
  int64_t in_use_ = 0;
  int64_t peak_ = 0;
  bool closed_ = false;
};

}  // namespace orchard::manager
