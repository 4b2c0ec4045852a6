// What the CUDA tests share: a GPU or a skip with the reason, random inputs, and the CUDA kernel table's capability
// on simulated device memory (placement tests that need no GPU).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>

#include "backends/cuda/cuda_backend.hpp"
#include "runtime/kernel_backend.hpp"
#include "testing/test_backends.hpp"

namespace orchard::testing {

// Returns the backend on device 0 (`limit`: its own memory cap, 0 none), or null where there is no usable GPU.
inline std::shared_ptr<cuda::CudaBackend> gpu_or_null(uint64_t limit = 0) {
  auto b = cuda::CudaBackend::create({0, limit});
  return b.ok() ? std::move(b).value() : nullptr;
}

// Declares `var`, the GPU's backend (optional argument: its memory cap), or skips the test naming why there is none.
#define ORCHARD_REQUIRE_GPU(var, ...)    \
  auto var = gpu_or_null(__VA_ARGS__);   \
  if (!var) GTEST_SKIP() << "no usable CUDA device: " << cuda::CudaBackend::create({}).status().to_string()

// float32 values uniform in [-scale, scale) from `seed`.
inline Tensor random_floats(const Shape& s, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  Tensor t = Tensor::empty(DType::float32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

inline Tensor to_half(const Tensor& f) {
  Tensor h = Tensor::empty(DType::float16, f.shape());
  for (int64_t i = 0; i < f.numel(); ++i) h.data<float16>()[i] = float16(f.data<float>()[i]);
  return h;
}

inline std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// The CUDA kernel table's capability (and its declines) on simulated device memory: nothing here touches a GPU.
class CudaTableBackend final : public runtime::KernelBackend {
 public:
  explicit CudaTableBackend(std::span<const runtime::KernelDef> table = cuda::cuda_kernels())
      : KernelBackend(info(), table, 0) {}
  Allocator& allocator() const override { return allocator_; }
  runtime::Capability get_capability(const runtime::GraphView& view) const override {
    return cuda::drop_declined(KernelBackend::get_capability(view), view);
  }

 private:
  static runtime::DeviceInfo info() {
    runtime::DeviceInfo i;
    i.name = "cuda";
    i.kind = runtime::DeviceKind::gpu;
    return i;
  }
  mutable SimDeviceAllocator allocator_;
};

}  // namespace orchard::testing
