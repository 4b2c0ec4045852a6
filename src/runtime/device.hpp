// What a backend runs on, and how bytes reach it: Device information, streams and events, data transfer.
// Layer: runtime. Backends implement these; the runtime never includes a backend header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard::runtime {

enum class DeviceKind : unsigned char { cpu, gpu, npu };

// Returns "cpu", "gpu" or "npu".
const char* device_kind_name(DeviceKind kind);

// Optional features of a device (absent features are flags here, not null members).
struct DeviceCaps {
  bool dynamic_shapes = true;   // runs any input shape without recompiling
  bool async_copies = false;    // DataTransfer::copy may return before the bytes have moved (see Stream)
  bool fp16 = false;            // has float16 kernels
  bool int8 = false;            // has 8-bit quantized kernels
};

struct DeviceMemory {
  uint64_t total = 0;              // bytes; 0 when unknown
  uint64_t free = 0;               // bytes free when the device was queried; 0 when unknown
  uint64_t recommended_working_set = 0;  // bytes the device prefers a process to stay under; 0 when unknown
};

struct DeviceInfo {
  std::string name;         // the backend's name in chains and reports: "cpu", "cuda", "coreml", ...
  DeviceKind kind = DeviceKind::cpu;
  std::string description;  // e.g. "x86-64 AVX-512, 2 threads"
  DeviceMemory memory;
  DeviceCaps caps;
};

// A point in a stream's work; wait() blocks the calling thread until everything before it has finished.
class Event {
 public:
  virtual ~Event() = default;
  // Blocks until the work recorded before this event is done; returns that work's first error.
  virtual Status wait() = 0;
};

// An in-order queue of device work (kernels and copies). Work enqueued on one stream runs in order.
class Stream {
 public:
  virtual ~Stream() = default;
  // Returns an event marking everything enqueued so far.
  virtual Result<std::unique_ptr<Event>> record() = 0;
  // Blocks until everything enqueued so far is done; returns the first error of that work.
  virtual Status synchronize() = 0;
};

// Moves tensor bytes between host memory and a backend's memory (and between two places of one backend).
class DataTransfer {
 public:
  virtual ~DataTransfer() = default;
  // Returns whether copy() handles bytes going from `src` to `dst`.
  virtual bool can_copy(MemoryPlace src, MemoryPlace dst) const = 0;
  // Copies src's bytes into dst (same dtype and numel; dst already allocated). With a stream the copy
  // may be enqueued and finish later (DeviceCaps::async_copies); without one it is done on return.
  virtual Status copy(const Tensor& src, Tensor& dst, Stream* stream) const = 0;
};

// A DataTransfer for host-visible memory only (plain memcpy); the CPU backend's.
class HostTransfer final : public DataTransfer {
 public:
  bool can_copy(MemoryPlace src, MemoryPlace dst) const override { return src.host_visible() && dst.host_visible(); }
  Status copy(const Tensor& src, Tensor& dst, Stream* stream) const override;
};

}  // namespace orchard::runtime
