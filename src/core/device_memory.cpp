#include "orchard/device_memory.hpp"

#include <cstdio>
#include <mutex>
#include <string>
#include <utility>

namespace orchard {

namespace {

// The last refusal on this thread. It keeps the device's name, not the budget: a budget owned by a backend (a
// CUDA backend made with its own memory limit) may be gone by the time the refusal is read or cleared.
struct Refusal {
  bool set = false;
  std::string device;
  int64_t bytes = 0, used = 0, limit = 0;
};
thread_local Refusal t_refusal;

struct Registry {
  std::mutex mu;
  int64_t default_limit = 0;
  std::vector<std::shared_ptr<DeviceMemoryBudget>> budgets;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: backends may release memory during exit
  return *r;
}

std::string mib_text(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

bool DeviceMemoryBudget::try_charge(int64_t bytes) {
  int64_t cur = used_.load(std::memory_order_relaxed);
  const int64_t cap = limit();
  do {
    if (cap > 0 && cur + bytes > cap) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      t_refusal = {true, device_, bytes, cur, cap};
      return false;
    }
  } while (!used_.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (cur + bytes > peak && !peak_.compare_exchange_weak(peak, cur + bytes, std::memory_order_relaxed)) {
  }
  return true;
}

std::shared_ptr<DeviceMemoryBudget> device_memory_budget(const std::string& device) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const auto& b : r.budgets) {
    if (b->device() == device) return b;
  }
  r.budgets.push_back(std::make_shared<DeviceMemoryBudget>(device, r.default_limit));
  return r.budgets.back();
}

std::vector<std::shared_ptr<DeviceMemoryBudget>> device_memory_budgets() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.budgets;
}

int64_t set_device_memory_limit(int64_t bytes) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  const int64_t before = r.default_limit;
  r.default_limit = bytes < 0 ? 0 : bytes;
  for (const auto& b : r.budgets) b->set_limit(r.default_limit);
  return before;
}

std::string take_device_memory_refusal() {
  if (!t_refusal.set) return {};
  const Refusal r = std::move(t_refusal);
  t_refusal = {};
  return "[" + r.device + "] device memory cap of " + mib_text(r.limit) + " reached: " + std::to_string(r.bytes) +
         " bytes asked with " + mib_text(r.used) + " in use";
}

}  // namespace orchard
