// Backends for tests of the runtime, the Manager and the conformance suite, injected through
// SessionOptions::custom_backends (never compiled into the library):
//   GateBackend        runs Identity, blocking each run until the test opens the gate (or the run is stopped);
//   FaultyBackend      claims Relu but fails every run (unavailable), and claims Sigmoid but fails to compile it;
//   SimDeviceBackend   "simdev": a kernel backend with its own (host-simulated) device memory, an explicit
//                      transfer object and streams, running CPU kernels of the ops it lists; exercises copy
//                      insertion and device-resident constants without a GPU; "simdev16" runs float32 work
//                      in float16 the way the CUDA backend's float16 mode does (float16_partition.hpp);
//   TestCompileBackend "testcompile": a compiling backend that claims connected subgraphs of the ops it lists
//                      and compiles each into one executable (a nested graph run on the CPU), the shape Core
//                      ML and MPSGraph plug in with.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/backend.hpp"
#include "orchard/device_memory.hpp"
#include "runtime/kernel_backend.hpp"

namespace orchard::testing {

class GateBackend final : public runtime::KernelBackend {
 public:
  GateBackend();
  void open();
  // Returns how many runs have entered the kernel.
  int entered() const { return entered_.load(); }
  // Waits until `n` runs have entered (or 5 s pass); returns whether they did.
  bool wait_entered(int n) const;

 private:
  friend class GateKernel;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::atomic<int> entered_{0};
};

class FaultyBackend final : public runtime::KernelBackend {
 public:
  FaultyBackend();
  int runs() const { return runs_.load(); }

 private:
  friend class FaultyKernel;
  std::atomic<int> runs_{0};
};

// Simulated device memory: host bytes that the runtime must treat as device memory (place device:1), charged
// to the device budget "simdev:1" (orchard/device_memory.hpp) like the CUDA pool's.
class SimDeviceAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t alignment) override;
  void deallocate(void* p, size_t bytes) override;
  MemoryPlace place() const override { return {MemoryKind::device, 1}; }
  int64_t live_bytes() const { return live_.load(); }

 private:
  std::atomic<int64_t> live_{0};
  std::shared_ptr<DeviceMemoryBudget> budget_ = device_memory_budget("simdev:1");
};

class SimDeviceTransfer final : public runtime::DataTransfer {
 public:
  bool can_copy(MemoryPlace src, MemoryPlace dst) const override;
  Status copy(const Tensor& src, Tensor& dst, runtime::Stream* stream) const override;
  mutable std::atomic<int64_t> to_device{0}, to_host{0};  // bytes
};

class SimDeviceBackend final : public runtime::KernelBackend {
 public:
  // `float16`: partitions are compiled in float16 (backends::compile_half), device name "simdev16".
  explicit SimDeviceBackend(bool float16 = false);
  Result<std::unique_ptr<runtime::Executable>> compile(const runtime::CompileContext& ctx) const override;
  Allocator& allocator() const override { return allocator_; }
  const runtime::DataTransfer& transfer() const override { return transfer_; }
  Result<std::unique_ptr<runtime::Stream>> new_stream() const override;
  const SimDeviceTransfer& sim_transfer() const { return transfer_; }
  int64_t streams_made() const { return streams_.load(); }

 private:
  mutable SimDeviceAllocator allocator_;
  SimDeviceTransfer transfer_;
  mutable std::atomic<int64_t> streams_{0};
  bool float16_;
};

class TestCompileBackend final : public runtime::Backend {
 public:
  TestCompileBackend();
  const runtime::DeviceInfo& device() const override { return info_; }
  runtime::Capability get_capability(const runtime::GraphView& view) const override;
  Result<std::unique_ptr<runtime::Executable>> compile(const runtime::CompileContext& ctx) const override;
  bool has_op(const std::string& domain, const std::string& op, int opset) const override;
  int64_t compiled() const { return compiled_.load(); }

 private:
  runtime::DeviceInfo info_;
  std::shared_ptr<runtime::Backend> cpu_;
  mutable std::atomic<int64_t> compiled_{0};
};

// Returns a fresh backend by name ("simdev", "simdev16", "testcompile", "gate", "faulty"), or null.
std::shared_ptr<runtime::Backend> make_test_backend(const std::string& name);

}  // namespace orchard::testing
