// Training kernels of domain ai.onnx.preview.training (opset 1): Adagrad, Adam, Momentum.
// Each node updates n tensors at once: inputs R, T, then n X's, n G's, and n of each optimizer state;
// outputs the n new X's followed by the n new states of each kind. Arithmetic is done in double.
// (Gradient needs automatic differentiation and has no kernel.)
#include <cmath>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

constexpr std::string_view kTrainingDomain = "ai.onnx.preview.training";

// The checked inputs of an optimizer node: learning rate, step count, and n groups of `per_tensor`
// same-shaped tensors (X, G, states...).
struct OptimizerArgs {
  double r = 0;
  int64_t t = 0;
  size_t n = 0;
};

Result<OptimizerArgs> optimizer_args(OpContext& ctx, size_t per_tensor, size_t states_out) {
  OptimizerArgs a;
  const size_t count = ctx.num_inputs();
  if (count < 2 + per_tensor || (count - 2) % per_tensor != 0) {
    return invalid_argument("expects R, T and ", per_tensor, " inputs per optimized tensor, got ", count, " inputs");
  }
  a.n = (count - 2) / per_tensor;
  if (ctx.num_outputs() != a.n * (1 + states_out)) {
    return invalid_argument("has ", ctx.num_outputs(), " outputs, ", a.n, " optimized tensors need ", a.n * (1 + states_out));
  }
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* r, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(1));
  if (r->numel() != 1 || (r->dtype() != DType::float32 && r->dtype() != DType::float64)) {
    return invalid_argument("learning rate R must be a float32 or float64 scalar, got ", r->description());
  }
  if (t->numel() != 1 || t->dtype() != DType::int64) {
    return invalid_argument("iteration count T must be an int64 scalar, got ", t->description());
  }
  a.r = element_as_double(*r, 0);
  a.t = t->data<int64_t>()[0];
  for (size_t k = 0; k < a.n; ++k) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(2 + k));
    if (x->dtype() != DType::float32 && x->dtype() != DType::float64) {
      return invalid_argument("optimized tensor ", k, " must be float32 or float64, got ", x->description());
    }
    for (size_t j = 1; j < per_tensor; ++j) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* other, ctx.input_tensor(2 + j * a.n + k));
      if (other->dtype() != x->dtype() || other->shape() != x->shape()) {
        return invalid_argument("input ", 2 + j * a.n + k, " (", other->description(), ") does not match tensor ", k, " (",
                                x->description(), ")");
      }
    }
  }
  return a;
}

// Runs `update(i, in, out)` for each element of optimized tensor k, with in[j] the j-th input of the
// group (X, G, states...) and out[j] the j-th output (X_new, new states...), all as double.
template <size_t In, size_t Out, class F>
Status for_each_group(OpContext& ctx, const OptimizerArgs& a, F&& update) {
  for (size_t k = 0; k < a.n; ++k) {
    const Tensor& x = ctx.input(2 + k);
    Status st = dispatch<kFloats>(x.dtype(), "optimizer", [&](auto tag) -> Status {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        std::array<const T*, In> in{};
        std::array<T*, Out> out{};
        for (size_t j = 0; j < In; ++j) in[j] = ctx.input(2 + j * a.n + k).template data<T>();
        for (size_t j = 0; j < Out; ++j) {
          ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(j * a.n + k, x.dtype(), x.shape()));
          out[j] = y.template data<T>();
        }
        std::array<double, In> vin{};
        std::array<double, Out> vout{};
        for (int64_t i = 0; i < x.numel(); ++i) {
          for (size_t j = 0; j < In; ++j) vin[j] = static_cast<double>(in[j][i]);
          update(vin, vout);
          for (size_t j = 0; j < Out; ++j) out[j][i] = static_cast<T>(vout[j]);
        }
        return Status::OK();
      } else {
        return unsupported("optimizer: element type ", dtype_name(x.dtype()), " is not supported");
      }
    });
    ORCHARD_RETURN_IF_ERROR(st);
  }
  return Status::OK();
}

// Adagrad: inputs R, T, X..., G..., H...; outputs X_new..., H_new....
class AdagradKernel final : public OpKernel {
 public:
  explicit AdagradKernel(const KernelCreateContext& ctx)
      : norm_(ctx.node.attr_float("norm_coefficient", 0.0f)),
        epsilon_(ctx.node.attr_float("epsilon", 1e-6f)),
        decay_(ctx.node.attr_float("decay_factor", 0.0f)) {}

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(OptimizerArgs a, optimizer_args(ctx, 3, 1));
    const double r = a.r / (1.0 + static_cast<double>(a.t) * decay_);
    return for_each_group<3, 2>(ctx, a, [&](const std::array<double, 3>& in, std::array<double, 2>& out) {
      const double x = in[0], g = norm_ * in[0] + in[1];
      const double h = in[2] + g * g;
      out[0] = x - r * g / (std::sqrt(h) + epsilon_);
      out[1] = h;
    });
  }

 private:
  double norm_, epsilon_, decay_;
};

// Adam: inputs R, T, X..., G..., V..., H...; outputs X_new..., V_new..., H_new....
class AdamKernel final : public OpKernel {
 public:
  explicit AdamKernel(const KernelCreateContext& ctx)
      : alpha_(ctx.node.attr_float("alpha", 0.9f)),
        beta_(ctx.node.attr_float("beta", 0.999f)),
        epsilon_(ctx.node.attr_float("epsilon", 1e-6f)),
        norm_(ctx.node.attr_float("norm_coefficient", 0.0f)),
        norm_post_(ctx.node.attr_float("norm_coefficient_post", 0.0f)) {}

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(OptimizerArgs a, optimizer_args(ctx, 4, 2));
    double r = a.r;
    if (a.t > 0) {  // bias correction of both momentums
      const auto t = static_cast<double>(a.t);
      r = r * std::sqrt(1.0 - std::pow(beta_, t)) / (1.0 - std::pow(alpha_, t));
    }
    return for_each_group<4, 3>(ctx, a, [&](const std::array<double, 4>& in, std::array<double, 3>& out) {
      const double x = in[0], g = norm_ * in[0] + in[1];
      const double v = alpha_ * in[2] + (1.0 - alpha_) * g;
      const double h = beta_ * in[3] + (1.0 - beta_) * g * g;
      const double x_new = x - r * v / (std::sqrt(h) + epsilon_);
      out[0] = (1.0 - norm_post_) * x_new;
      out[1] = v;
      out[2] = h;
    });
  }

 private:
  double alpha_, beta_, epsilon_, norm_, norm_post_;
};

// Momentum (standard or Nesterov): inputs R, T, X..., G..., V...; outputs X_new..., V_new....
class MomentumKernel final : public OpKernel {
 public:
  static Status validate(const KernelCreateContext& ctx) {
    const graph::Node& n = ctx.node;
    for (const char* name : {"alpha", "beta", "norm_coefficient", "mode"}) {
      if (n.attr(name) == nullptr) return invalid_argument("required attribute '", name, "' is missing");
    }
    const std::string mode = n.attr_string("mode", "");
    if (mode != "standard" && mode != "nesterov") return invalid_argument("mode '", mode, "' is not 'standard' or 'nesterov'");
    return Status::OK();
  }

  explicit MomentumKernel(const KernelCreateContext& ctx)
      : alpha_(ctx.node.attr_float("alpha", 0.0f)),
        beta_(ctx.node.attr_float("beta", 0.0f)),
        norm_(ctx.node.attr_float("norm_coefficient", 0.0f)),
        nesterov_(ctx.node.attr_string("mode", "standard") == "nesterov") {}

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(OptimizerArgs a, optimizer_args(ctx, 3, 1));
    const double beta = a.t > 0 ? beta_ : 1.0;  // the first step takes the whole gradient
    return for_each_group<3, 2>(ctx, a, [&](const std::array<double, 3>& in, std::array<double, 2>& out) {
      const double x = in[0], g = norm_ * in[0] + in[1];
      const double v = alpha_ * in[2] + beta * g;
      out[0] = nesterov_ ? x - a.r * (g + alpha_ * v) : x - a.r * v;
      out[1] = v;
    });
  }

 private:
  double alpha_, beta_, norm_;
  bool nesterov_;
};

constexpr KernelDef kKernels[] = {
    {kTrainingDomain, "Adagrad", 1, kVerifiedOpset, make<AdagradKernel>},
    {kTrainingDomain, "Adam", 1, kVerifiedOpset, make<AdamKernel>},
    {kTrainingDomain, "Momentum", 1, kVerifiedOpset, make<MomentumKernel>},
};

}  // namespace

std::span<const KernelDef> training_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
