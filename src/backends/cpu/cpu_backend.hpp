// The CPU backend: reference kernels (the oracle for every other backend) plus ISA variants.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel_registry.hpp"
#include "runtime/backend.hpp"

namespace orchard::cpu {

class CpuBackend final : public runtime::Backend {
 public:
  explicit CpuBackend(const SessionOptions& options);
  const runtime::DeviceInfo& device() const override { return info_; }
  bool supports_op(const std::string& domain, const std::string& op, int opset) const override;
  Result<std::unique_ptr<OpKernel>> create_kernel(const KernelCreateContext& ctx) const override;

 private:
  const KernelDef* find(const std::string& domain, const std::string& op, int opset) const;
  runtime::DeviceInfo info_;
};

}  // namespace orchard::cpu
