// libFuzzer target: load a fuzzed model, then run it once on small inputs (every dim at most 4; values
// from a fixed seed), with a 200 ms deadline and 64 MiB of tensor memory, so kernels meet fuzzed
// attributes and shapes. A run may fail; it must not crash, leak, hang or pass its memory cap.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "fuzz_common.hpp"

namespace {

// Tensor memory with a hard cap: allocations past it fail (the run gets out_of_memory).
class CappedAllocator final : public orchard::Allocator {
 public:
  explicit CappedAllocator(size_t cap) : cap_(cap) {}
  void* allocate(size_t bytes, size_t alignment) override {
    if (used_.fetch_add(bytes) + bytes > cap_) {
      used_.fetch_sub(bytes);
      return nullptr;
    }
    void* p = orchard::default_allocator().allocate(bytes, alignment);
    if (p == nullptr) used_.fetch_sub(bytes);
    return p;
  }
  void deallocate(void* p, size_t bytes) override {
    orchard::default_allocator().deallocate(p, bytes);
    used_.fetch_sub(bytes);
  }

 private:
  const size_t cap_;
  std::atomic<size_t> used_{0};
};

// A small tensor for `info`: fixed dims kept when <= 4, others 2; returns an undefined tensor when the
// declared shape is too large to be "small".
orchard::Tensor small_input(const orchard::ValueInfo& info, uint32_t seed) {
  using orchard::DType;
  orchard::Shape shape;
  if (info.has_shape) {
    if (info.shape.size() > 6) return {};
    for (const auto& d : info.shape) {
      if (d.fixed() && d.value > 4) return {};
      shape.push_back(d.fixed() ? d.value : 2);
    }
  }
  const DType dt = info.dtype == DType::undefined ? DType::float32 : info.dtype;
  auto t = orchard::Tensor::create(dt, shape);
  if (!t.ok()) return {};
  if (dt == DType::string) {
    for (int64_t i = 0; i < t->numel(); ++i) t->data<std::string>()[i] = std::string(1 + i % 3, 'a');
  } else if (dt == DType::boolean) {
    for (int64_t i = 0; i < t->numel(); ++i) t->data<bool>()[i] = ((seed >> (i % 32)) & 1) != 0;
  } else {
    // Small integers in every dtype (as bytes for half types): valid indices and axes come up often.
    auto* bytes = static_cast<unsigned char*>(t->raw_data());
    const size_t esize = orchard::dtype_size(dt);
    for (int64_t i = 0; i < t->numel(); ++i) {
      seed = seed * 1103515245u + 12345u;
      const int v = static_cast<int>((seed >> 16) % 5) - 1;  // -1..3
      unsigned char* e = bytes + static_cast<size_t>(i) * esize;
      std::memset(e, 0, esize);
      switch (dt) {
        case DType::float32: { const float f = static_cast<float>(v); std::memcpy(e, &f, 4); break; }
        case DType::float64: { const double f = v; std::memcpy(e, &f, 8); break; }
        case DType::float16: case DType::bfloat16: e[1] = v == 0 ? 0 : 0x3c; break;
        default: { const int64_t x = orchard::dtype_is_signed(dt) ? v : v + 1; std::memcpy(e, &x, esize); break; }
      }
    }
  }
  return std::move(t).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const orchard::SessionOptions options = orchard::fuzz::session_options();
  auto session = orchard::Session::load_from_bytes({reinterpret_cast<const std::byte*>(data), size}, options,
                                                   orchard::fuzz::no_such_folder());
  if (!session.ok()) return 0;
  orchard::NamedValues inputs;
  uint32_t seed = 42;
  for (const auto& info : (*session)->inputs()) {
    if (info.kind == orchard::Value::Kind::optional) {
      inputs.emplace_back(info.name, orchard::Value::optional_none());
    } else if (info.kind == orchard::Value::Kind::sequence) {
      inputs.emplace_back(info.name, orchard::Value::sequence({}, info.dtype == orchard::DType::undefined ? orchard::DType::float32 : info.dtype));
    } else {
      orchard::Tensor t = small_input(info, seed++);
      if (!t.defined()) return 0;
      inputs.emplace_back(info.name, std::move(t));
    }
  }
  orchard::RunOptions run;
  run.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  run.allocator = std::make_shared<CappedAllocator>(size_t{64} << 20);
  auto out = (*session)->run(inputs, run);
  (void)out;
  return 0;
}
