// How CPU kernels are declared: one KernelDef (runtime/kernel_backend.hpp) per (op, opset range), collected
// in per-family tables that kernel_table.cpp lists explicitly. Adding an op: its kernel, one line in its
// family's table, one test line.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "runtime/kernel_backend.hpp"

namespace orchard::cpu {

using runtime::KernelCreateContext;
using runtime::OpContext;
using runtime::OpKernel;

using runtime::KernelDef;
using runtime::KernelFactory;
using runtime::kVerifiedOpset;

// A kernel that is a plain function of its context (attributes read from ctx.node() at run time).
using KernelFn = Status (*)(OpContext&);

template <KernelFn F>
class FnKernel final : public OpKernel {
 public:
  Status run(OpContext& ctx) const override { return F(ctx); }
};

// Factory for a stateless kernel: `{"", "Relu", 6, 13, stateless<relu>}`.
template <KernelFn F>
Result<std::unique_ptr<OpKernel>> stateless(const KernelCreateContext&) {
  return std::unique_ptr<OpKernel>(new FnKernel<F>());
}

// Factory for a kernel class whose constructor takes the create context:
// `{"", "Conv", 11, kVerifiedOpset, make<ConvKernel>}`. The class may validate attributes in a static
// `Status validate(const KernelCreateContext&)` if it declares one.
template <class K>
Result<std::unique_ptr<OpKernel>> make(const KernelCreateContext& ctx) {
  if constexpr (requires { K::validate(ctx); }) {
    ORCHARD_RETURN_IF_ERROR(K::validate(ctx));
  }
  return std::unique_ptr<OpKernel>(new K(ctx));
}

// The family tables (one per file in reference/), listed by kernel_table.cpp.
std::span<const KernelDef> all_kernels();

}  // namespace orchard::cpu
