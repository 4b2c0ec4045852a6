// The backend interface (DESIGN.md "The backend interface"): device, capability, compile, buffers.
// Layer: runtime. The compiled-in backends are listed in src/backends/registry.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "orchard/session.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::runtime {

enum class DeviceKind : unsigned char { cpu, gpu, npu };

// Optional features of a backend (members that may be absent are flags here, not null pointers).
struct DeviceCaps {
  bool dynamic_shapes = true;
  bool async_copies = false;
  bool fp16 = false;
  bool int8 = false;
};

struct DeviceInfo {
  std::string name;           // "cpu", "cuda", "coreml", ...
  DeviceKind kind = DeviceKind::cpu;
  std::string description;    // e.g. "x86-64 AVX-512, 2 threads"
  uint64_t memory_total = 0;  // bytes; 0 when unknown
  DeviceCaps caps;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Returns what this backend runs on.
  virtual const DeviceInfo& device() const = 0;
  // Returns whether the backend has an implementation of (domain, op) at `opset`.
  virtual bool supports_op(const std::string& domain, const std::string& op, int opset) const = 0;
  // Returns whether the backend can run `node` (default: supports_op on its op and opset).
  virtual bool supports(const graph::Node& node) const { return supports_op(node.domain, node.op_type, node.opset); }
  // Returns a kernel for `ctx.node`; requires supports(ctx.node). Weights may be pre-packed here.
  virtual Result<std::unique_ptr<OpKernel>> create_kernel(const KernelCreateContext& ctx) const = 0;
};

// Returns the compiled-in backends available on this machine, in fallback-chain order (CPU last).
// Defined by src/backends/registry.cpp.
std::vector<std::shared_ptr<Backend>> available_backends(const SessionOptions& options);

// Test hook (fault injection): puts `backends` ahead of the compiled-in ones in every chain that
// available_backends() returns from now on; an empty vector removes them.
void set_extra_backends_for_testing(std::vector<std::shared_ptr<Backend>> backends);

}  // namespace orchard::runtime
