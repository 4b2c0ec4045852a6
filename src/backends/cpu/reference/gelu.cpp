// com.orchard Gelu (docs/fused_ops.md): x * Phi(x), exact with erf (`approximate` = "none") or by the tanh
// approximation (`approximate` = "tanh"). float16/bfloat16 compute in float.
#include <cmath>
#include <string>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

class GeluKernel final : public OpKernel {
 public:
  explicit GeluKernel(const KernelCreateContext& c) : tanh_(c.node.attr_string("approximate", "none") == "tanh") {}
  static Status validate(const KernelCreateContext& c) {
    const std::string a = c.node.attr_string("approximate", "none");
    if (a != "none" && a != "tanh")
      return invalid_argument("approximate must be \"none\" or \"tanh\", got \"", a, "\"");
    return Status::OK();
  }

  Status run(OpContext& ctx) const override {
    if (tanh_) {
      return unary_same<kFloats>(ctx, [](auto v) -> decltype(v) {
        using C = decltype(v);
        const C k = C(0.7978845608028654);  // sqrt(2 / pi)
        return C(0.5) * v * (C(1) + std::tanh(k * (v + C(0.044715) * v * v * v)));
      });
    }
    return unary_same<kFloats>(ctx, [](auto v) -> decltype(v) {
      using C = decltype(v);
      return C(0.5) * v * (C(1) + std::erf(v * C(0.7071067811865476)));  // 1 / sqrt(2)
    });
  }

 private:
  bool tanh_;
};

constexpr KernelDef kKernels[] = {
    {"com.orchard", "Gelu", 1, 1, make<GeluKernel>},
};

}  // namespace

std::span<const KernelDef> gelu_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
