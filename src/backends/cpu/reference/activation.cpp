// Activations: Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Sigmoid, HardSigmoid, HardSwish, Softplus, Softsign,
// ThresholdedRelu. (Tanh lives with the other math functions in elementwise.cpp.) float16/bfloat16 compute
// in float.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

Status relu(OpContext& ctx) {
  return unary_same<kFloats | kSignedInts>(ctx, [](auto v) { return v > decltype(v)(0) ? v : decltype(v)(0); });
}

// The attributes an activation reads; each op names its defaults.
struct Params {
  float alpha, beta, gamma;
};

// A float activation `Op::apply(x, params)` with attributes alpha/beta/gamma parsed once.
template <class Op>
class ActivationKernel final : public OpKernel {
 public:
  explicit ActivationKernel(const KernelCreateContext& c)
      : p_{c.node.attr_float("alpha", Op::kAlpha), c.node.attr_float("beta", Op::kBeta),
           c.node.attr_float("gamma", Op::kGamma)} {}
  static Status validate(const KernelCreateContext& c) {
    if constexpr (requires { Op::validate(Params{}); }) {
      return Op::validate(Params{c.node.attr_float("alpha", Op::kAlpha), c.node.attr_float("beta", Op::kBeta),
                                 c.node.attr_float("gamma", Op::kGamma)});
    } else {
      (void)c;
      return Status::OK();
    }
  }
  Status run(OpContext& ctx) const override {
    const Params p = p_;
    return unary_same<kFloats>(ctx, [p](auto v) -> decltype(v) { return Op::apply(v, p); });
  }

 private:
  Params p_;
};

struct LeakyReluOp {
  static constexpr float kAlpha = 0.01f, kBeta = 0, kGamma = 0;
  template <class C>
  static C apply(C x, const Params& p) {
    return x >= 0 ? x : C(p.alpha) * x;
  }
};

struct EluOp {
  static constexpr float kAlpha = 1.0f, kBeta = 0, kGamma = 0;
  template <class C>
  static C apply(C x, const Params& p) {
    return x >= 0 ? x : C(p.alpha) * std::expm1(x);
  }
};

struct SeluOp {
  static constexpr float kAlpha = 1.67326319217681884765625f, kBeta = 0, kGamma = 1.05070102214813232421875f;
  template <class C>
  static C apply(C x, const Params& p) {
    return C(p.gamma) * (x > 0 ? x : C(p.alpha) * std::expm1(x));
  }
};

struct CeluOp {
  static constexpr float kAlpha = 1.0f, kBeta = 0, kGamma = 0;
  static Status validate(const Params& p) {
    if (p.alpha == 0) return invalid_argument("alpha must not be 0");
    return Status::OK();
  }
  template <class C>
  static C apply(C x, const Params& p) {
    const C a = C(p.alpha);
    return std::max(C(0), x) + std::min(C(0), a * std::expm1(x / a));
  }
};

struct SigmoidOp {
  static constexpr float kAlpha = 0, kBeta = 0, kGamma = 0;
  template <class C>
  static C apply(C x, const Params&) {
    if (x >= 0) return C(1) / (C(1) + std::exp(-x));
    const C e = std::exp(x);
    return e / (C(1) + e);
  }
};

struct HardSigmoidOp {
  static constexpr float kAlpha = 0.2f, kBeta = 0.5f, kGamma = 0;
  template <class C>
  static C apply(C x, const Params& p) {
    return std::clamp(C(p.alpha) * x + C(p.beta), C(0), C(1));
  }
};

struct HardSwishOp {
  static constexpr float kAlpha = 0, kBeta = 0, kGamma = 0;
  template <class C>
  static C apply(C x, const Params&) {
    return x * std::clamp(x / C(6) + C(0.5), C(0), C(1));
  }
};

struct SoftplusOp {
  static constexpr float kAlpha = 0, kBeta = 0, kGamma = 0;
  template <class C>
  static C apply(C x, const Params&) {
    return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
};

struct SoftsignOp {
  static constexpr float kAlpha = 0, kBeta = 0, kGamma = 0;
  template <class C>
  static C apply(C x, const Params&) {
    return x / (C(1) + std::fabs(x));
  }
};

struct ThresholdedReluOp {
  static constexpr float kAlpha = 1.0f, kBeta = 0, kGamma = 0;
  template <class C>
  static C apply(C x, const Params& p) {
    return x > C(p.alpha) ? x : C(0);
  }
};

// PRelu: y = x < 0 ? slope * x : x, with slope broadcast to x (unidirectionally). Before opset 7 a 1-D slope
// of X's channel count applies per channel (dim 1), as old pytorch exports expect.
Status prelu(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* s, ctx.input_tensor(1));
  if (x->dtype() != s->dtype()) {
    return invalid_argument("X and slope have different element types: ", x->description(), " and ",
                            s->description());
  }
  Shape slope_shape = s->shape();
  if (ctx.node().opset < 7 && s->rank() == 1 && x->rank() >= 2 && s->numel() == x->dim(1) && s->numel() != 1) {
    std::vector<int64_t> dims(x->rank() - 1, 1);
    dims[0] = s->numel();
    slope_shape = Shape(std::move(dims));
  }
  ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes({&x->shape(), &slope_shape}));
  if (shape != x->shape()) {
    return invalid_argument("slope ", s->shape().to_string(), " does not broadcast to X ", x->shape().to_string());
  }
  return dispatch<kFloats | kSignedInts>(x->dtype(), "PRelu", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), shape));
    const T* px = x->data<T>();
    const T* ps = s->data<T>();
    T* py = y.data<T>();
    for_each_run<2>(ctx.pool(), shape, {&x->shape(), &slope_shape},
                    [&](int64_t o, const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                      for (int64_t k = 0; k < n; ++k) {
                        const T v = px[off[0] + k * st[0]];
                        const auto c = load(v);
                        py[o + k] = c < 0 ? store<T>(load(ps[off[1] + k * st[1]]) * c) : v;
                      }
                    });
    return Status::OK();
  });
}

constexpr KernelDef kKernels[] = {
    {"", "Relu", 1, kVerifiedOpset, stateless<relu>},
    {"", "LeakyRelu", 1, kVerifiedOpset, make<ActivationKernel<LeakyReluOp>>},
    {"", "PRelu", 1, kVerifiedOpset, stateless<prelu>},
    {"", "Elu", 1, kVerifiedOpset, make<ActivationKernel<EluOp>>},
    {"", "Selu", 1, kVerifiedOpset, make<ActivationKernel<SeluOp>>},
    {"", "Celu", 12, kVerifiedOpset, make<ActivationKernel<CeluOp>>},
    {"", "Sigmoid", 1, kVerifiedOpset, make<ActivationKernel<SigmoidOp>>},
    {"", "HardSigmoid", 1, kVerifiedOpset, make<ActivationKernel<HardSigmoidOp>>},
    {"", "HardSwish", 14, kVerifiedOpset, make<ActivationKernel<HardSwishOp>>},
    {"", "Softplus", 1, kVerifiedOpset, make<ActivationKernel<SoftplusOp>>},
    {"", "Softsign", 1, kVerifiedOpset, make<ActivationKernel<SoftsignOp>>},
    {"", "ThresholdedRelu", 10, kVerifiedOpset, make<ActivationKernel<ThresholdedReluOp>>},
};

}  // namespace

std::span<const KernelDef> activation_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
