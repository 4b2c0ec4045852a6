// What each libFuzzer target does with one input (tests/fuzz/README.md), shared by the targets and by
// tests/onnx/fuzz_regression_test.cpp, which replays the inputs that once crashed.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "core/capped_allocator.hpp"
#include "orchard/io.hpp"
#include "orchard/session.hpp"

namespace orchard::fuzz {

// Options for loading fuzzed models: one shared single-thread pool, small size caps, external data looked
// up in a folder that does not exist (a fuzzed model must not read files of the machine it runs on).
inline SessionOptions session_options() {
  static const std::shared_ptr<ThreadPool> pool = std::make_shared<ThreadPool>(1);
  SessionOptions o;
  o.thread_pool = pool;
  o.max_model_bytes = 1 << 20;
  o.max_external_data_bytes = 1 << 20;
  return o;
}

inline const char* no_such_folder() { return "/nonexistent/orchard-fuzz"; }

// A regular file in memory (memfd) whose contents are replaced by each input; path() names it.
class MemFile {
 public:
  MemFile() : fd_(::memfd_create("orchard-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  // Replaces the contents with `size` bytes at `data`.
  void write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

namespace detail {

// A small tensor for `info`: fixed dims kept when <= 4, others 2; returns an undefined tensor when the
// declared shape is too large to be "small".
inline Tensor small_input(const ValueInfo& info, uint32_t seed) {
  Shape shape;
  if (info.has_shape) {
    if (info.shape.size() > 6) return {};
    for (const auto& d : info.shape) {
      if (d.fixed() && d.value > 4) return {};
      shape.push_back(d.fixed() ? d.value : 2);
    }
  }
  const DType dt = info.dtype == DType::undefined ? DType::float32 : info.dtype;
  auto t = Tensor::create(dt, shape);
  if (!t.ok()) return {};
  if (dt == DType::string) {
    for (int64_t i = 0; i < t->numel(); ++i) t->data<std::string>()[i] = std::string(1 + i % 3, 'a');
  } else if (dt == DType::boolean) {
    for (int64_t i = 0; i < t->numel(); ++i) t->data<bool>()[i] = ((seed >> (i % 32)) & 1) != 0;
  } else {
    // Small integers in every dtype (as bytes for half types): valid indices and axes come up often.
    auto* bytes = static_cast<unsigned char*>(t->raw_data());
    const size_t esize = dtype_size(dt);
    for (int64_t i = 0; i < t->numel(); ++i) {
      seed = seed * 1103515245u + 12345u;
      const int v = static_cast<int>((seed >> 16) % 5) - 1;  // -1..3
      unsigned char* e = bytes + static_cast<size_t>(i) * esize;
      std::memset(e, 0, esize);
      switch (dt) {
        case DType::float32: { const float f = static_cast<float>(v); std::memcpy(e, &f, 4); break; }
        case DType::float64: { const double f = v; std::memcpy(e, &f, 8); break; }
        case DType::float16: case DType::bfloat16: e[1] = v == 0 ? 0 : 0x3c; break;
        default: { const int64_t x = dtype_is_signed(dt) ? v : v + 1; std::memcpy(e, &x, esize); break; }
      }
    }
  }
  return std::move(t).value();
}

}  // namespace detail

// fuzz_load: loads (parses, checks, imports, optimizes, compiles) a model from the bytes.
inline void load_one(const uint8_t* data, size_t size) {
  static const SessionOptions options = session_options();
  auto session = Session::load_from_bytes({reinterpret_cast<const std::byte*>(data), size}, options, no_such_folder());
  (void)session;
}

// fuzz_run: loads a model from the bytes and, when it loads and its inputs can be small, runs it once on
// small inputs with a 200 ms deadline and 64 MiB of tensor memory.
inline void run_one(const uint8_t* data, size_t size) {
  using namespace detail;
  static const SessionOptions options = session_options();
  auto session = Session::load_from_bytes({reinterpret_cast<const std::byte*>(data), size}, options, no_such_folder());
  if (!session.ok()) return;
  NamedValues inputs;
  uint32_t seed = 42;
  for (const auto& info : (*session)->inputs()) {
    if (info.kind == Value::Kind::optional) {
      inputs.emplace_back(info.name, Value::optional_none());
    } else if (info.kind == Value::Kind::sequence) {
      inputs.emplace_back(info.name, Value::sequence({}, info.dtype == DType::undefined ? DType::float32 : info.dtype));
    } else {
      Tensor t = small_input(info, seed++);
      if (!t.defined()) return;
      inputs.emplace_back(info.name, std::move(t));
    }
  }
  RunOptions run;
  run.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  run.allocator = std::make_shared<CappedAllocator>(size_t{64} << 20);
  auto out = (*session)->run(inputs, run);
  (void)out;
}

// fuzz_tensor_pb: the first byte picks the kind (tensor, sequence, optional); the rest is the .pb file.
inline void tensor_pb_one(const uint8_t* data, size_t size) {
  static MemFile file;
  if (size == 0) return;
  constexpr Value::Kind kKinds[] = {Value::Kind::tensor, Value::Kind::sequence, Value::Kind::optional};
  file.write(data + 1, size - 1);
  std::string name;
  auto v = load_value_pb(file.path(), kKinds[data[0] % 3], &name);
  (void)v;
}

// fuzz_npy: the bytes are a .npy file.
inline void npy_one(const uint8_t* data, size_t size) {
  static MemFile file;
  file.write(data, size);
  auto t = load_npy(file.path());
  (void)t;
}

}  // namespace orchard::fuzz
