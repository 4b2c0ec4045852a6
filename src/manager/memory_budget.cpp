#include "manager/memory_budget.hpp"

#include <algorithm>

namespace orchard::manager {

bool MemoryBudget::try_charge(int64_t bytes) {
  int64_t cur = used_.load();  // seq_cst: pairs with release() for the Manager's wake-up protocol
  do {
    if (cur + bytes > limit_) return false;
  } while (!used_.compare_exchange_weak(cur, cur + bytes));
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (cur + bytes > peak && !peak_.compare_exchange_weak(peak, cur + bytes, std::memory_order_relaxed)) {
  }
  return true;
}

void MemoryBudget::release(int64_t bytes) {
  used_.fetch_sub(bytes);  // seq_cst, see try_charge
  if (on_release_) on_release_();
}

RequestArena::~RequestArena() {
  // Every tensor keeps its arena alive, so by now nothing is in use; return whatever is still charged.
  budget_->release(grant_);
}

void* RequestArena::allocate(size_t bytes, size_t alignment) {
  const int64_t n = charged_bytes(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_use_ + n > grant_) {
      const int64_t grow = in_use_ + n - grant_;
      if (!budget_->try_charge(grow)) return nullptr;  // Tensor::create turns this into out_of_memory
      grant_ += grow;
    }
    in_use_ += n;
    peak_ = std::max(peak_, in_use_);
  }
  void* p = upstream_->allocate(bytes, alignment);
  if (p == nullptr) deallocate(nullptr, bytes);
  return p;
}

int64_t RequestArena::charged_bytes(size_t bytes) const {
  return static_cast<int64_t>(charge_rounding_ ? charge_rounding_(bytes) : bytes);
}

void RequestArena::deallocate(void* p, size_t bytes) {
  if (p != nullptr) upstream_->deallocate(p, bytes);
  const int64_t n = charged_bytes(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  in_use_ -= n;
  if (closed_) {  // after the request: the grant shrinks with its outputs
    grant_ -= n;
    budget_->release(n);
  }
}

void RequestArena::close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  closed_ = true;
  const int64_t unused = grant_ - in_use_;
  grant_ = in_use_;
  if (unused > 0) budget_->release(unused);
}

int64_t RequestArena::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

int64_t RequestArena::peak_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

}  // namespace orchard::manager
