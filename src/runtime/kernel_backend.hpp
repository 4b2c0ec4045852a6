// KernelBackend: the adapter that gives a kernel table (one factory per op and opset range, with optional
// dtype, CPU-feature and priority) the Backend interface: capability per node, compile by creating each
// node's kernel once. The CPU backend is one; CUDA and Metal will be others.
// Layer: runtime.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/cpu_features.hpp"
#include "runtime/backend.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::runtime {

using KernelFactory = Result<std::unique_ptr<OpKernel>> (*)(const KernelCreateContext&);

// The last ONNX opset every kernel table was verified against (the conformance suite's). A table line
// ends here rather than at "latest", so a newer opset never silently runs an older kernel.
inline constexpr int kVerifiedOpset = 17;

// A set of dtypes, one bit per DType value.
class DTypeSet {
 public:
  constexpr DTypeSet() = default;
  constexpr DTypeSet(std::initializer_list<DType> types) {
    for (DType t : types) bits_ |= uint64_t{1} << static_cast<unsigned>(t);
  }
  // Returns the set of every dtype.
  static constexpr DTypeSet all() {
    DTypeSet s;
    s.bits_ = ~uint64_t{0};
    return s;
  }
  constexpr bool contains(DType t) const { return (bits_ >> static_cast<unsigned>(t)) & 1u; }

 private:
  uint64_t bits_ = 0;
};

// One registration: `op` of `domain` for model opsets since..until (inclusive).
struct KernelDef {
  std::string_view domain;  // "" for ai.onnx
  std::string_view op;
  int since;
  int until;
  KernelFactory create;
  // Element types the kernel takes for input `dtype_input` (checked when the model declares the type).
  DTypeSet dtypes = DTypeSet::all();
  int dtype_input = 0;
  // CPU features the variant needs (cpu_features.hpp); 0 for portable code.
  uint32_t cpu_features = 0;
  // Among applicable variants of one op the highest priority is tried first (reference kernels: 0).
  int priority = 0;
  // Inputs (bit i: input i) the kernel reads on the host, such as a Reshape's shape: a backend with
  // device memory gets them in host memory.
  uint32_t host_inputs = 0;
  // The kernel reads only its inputs' shapes and dtypes and writes its outputs in host memory (Shape, Size):
  // on a device backend it runs with no copy of its inputs and its outputs stay on the host.
  bool metadata_only = false;
};

// A backend made of per-op kernels.
class KernelBackend : public Backend {
 public:
  // `table` must outlive the backend. Variants needing features `available_features` lacks are dropped.
  // `static_table`: the table has static storage duration and never changes, so its index is built once per
  // process and shared by every backend made from it (backends are created per session load, and building
  // the index was most of a small model's load time).
  KernelBackend(DeviceInfo info, std::span<const KernelDef> table, uint32_t available_features,
                bool static_table = false);

  const DeviceInfo& device() const override { return info_; }
  Capability get_capability(const GraphView& view) const override;
  Result<std::unique_ptr<Executable>> compile(const CompileContext& ctx) const override;
  bool merges_partitions() const override { return true; }
  bool has_op(const std::string& domain, const std::string& op, int opset) const override;

  // Returns the applicable variants for a node, best first (empty: the reason is in `why`).
  std::vector<const KernelDef*> variants(const GraphView& view, const graph::Node& node, std::string* why) const;

 protected:
  DeviceInfo info_;

 private:
  using Index = std::map<std::pair<std::string, std::string>, std::vector<const KernelDef*>, std::less<>>;
  static std::shared_ptr<const Index> build_index(std::span<const KernelDef> table, uint32_t available_features);
  static std::shared_ptr<const Index> shared_index(std::span<const KernelDef> table, uint32_t available_features);
  std::shared_ptr<const Index> index_;
};

}  // namespace orchard::runtime
