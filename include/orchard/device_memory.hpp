// Device memory budgets: the bytes the accelerator backends' pools hand out, per device and apart from host
// memory, under an optional cap (like ONNX Runtime's gpu_mem_limit). There is one budget per device in the
// process: every session and Manager using a device shares its pool, so they share its cap.
// Layer: public API (core); backends charge it, the Manager sets the cap and reports it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace orchard {

class DeviceMemoryBudget {
 public:
  explicit DeviceMemoryBudget(std::string device, int64_t limit_bytes = 0)
      : device_(std::move(device)), limit_(limit_bytes) {}
  DeviceMemoryBudget(const DeviceMemoryBudget&) = delete;
  DeviceMemoryBudget& operator=(const DeviceMemoryBudget&) = delete;

  // Returns the device's name, e.g. "cuda:0".
  const std::string& device() const { return device_; }
  // Returns the cap in bytes (0: none).
  int64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  // Sets the cap (0: none); bytes already charged stay charged, later charges must fit under it.
  void set_limit(int64_t bytes) { limit_.store(bytes < 0 ? 0 : bytes, std::memory_order_relaxed); }
  // Returns the bytes charged now.
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  // Returns the most bytes charged at once since creation or the last reset_peak().
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  // Returns how many charges the cap refused.
  int64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // Sets peak() to used().
  void reset_peak() { peak_.store(used(), std::memory_order_relaxed); }
  // Charges `bytes` if they fit under the cap; else counts the refusal, records it for this thread
  // (take_device_memory_refusal) and returns false.
  bool try_charge(int64_t bytes);
  // Returns `bytes` charged earlier.
  void release(int64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  const std::string device_;
  std::atomic<int64_t> limit_;
  std::atomic<int64_t> used_{0}, peak_{0}, refused_{0};
};

// Returns the budget of `device` ("cuda:0"), made on first use with the cap set_device_memory_limit gave last.
std::shared_ptr<DeviceMemoryBudget> device_memory_budget(const std::string& device);
// Returns every device budget made so far, in the order they were made.
std::vector<std::shared_ptr<DeviceMemoryBudget>> device_memory_budgets();
// Sets the cap of every device budget, those made later included (0: none); returns the cap it replaces.
int64_t set_device_memory_limit(int64_t bytes);
// Returns and forgets this thread's last refused charge as a message naming the device, the cap, the bytes
// asked and those in use ("" when none was refused since the last call).
std::string take_device_memory_refusal();

}  // namespace orchard
