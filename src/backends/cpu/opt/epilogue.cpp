#include "backends/cpu/opt/epilogue.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

namespace orchard::cpu {

namespace {

struct Named {
  std::string_view name;
  Activation kind;
  size_t params;  // how many activation_params the activation takes
};

constexpr std::array<Named, 10> kActivations = {{
    {"", Activation::none, 0},
    {"Relu", Activation::relu, 0},
    {"Clip", Activation::clip, 2},
    {"Sigmoid", Activation::sigmoid, 0},
    {"SiLU", Activation::silu, 0},
    {"HardSwish", Activation::hardswish, 0},
    {"LeakyRelu", Activation::leaky_relu, 1},
    {"Gelu", Activation::gelu, 0},
    {"GeluTanh", Activation::gelu_tanh, 0},
    {"Tanh", Activation::tanh, 0},
}};

}  // namespace

Result<ActivationSpec> parse_activation(const graph::Node& node) {
  const std::string name = node.attr_string("activation", "");
  const std::vector<float> params = node.attr_floats("activation_params");
  for (const Named& a : kActivations) {
    if (a.name != name) continue;
    if (params.size() != a.params) {
      return invalid_argument("[", node.op_type, "] node '", node.name, "': activation '", name, "' takes ", a.params,
                              " activation_params, got ", params.size());
    }
    ActivationSpec spec;
    spec.kind = a.kind;
    if (!params.empty()) spec.p0 = params[0];
    if (params.size() > 1) spec.p1 = params[1];
    return spec;
  }
  return invalid_argument("[", node.op_type, "] node '", node.name, "': unknown activation '", name, "'");
}

std::string_view activation_name(Activation kind) {
  for (const Named& a : kActivations) {
    if (a.kind == kind) return a.name;
  }
  return "";
}

void apply_activation_ref(const ActivationSpec& act, float* x, int64_t n) {
  const float p0 = act.p0, p1 = act.p1;
  auto each = [&](auto f) {
    for (int64_t i = 0; i < n; ++i) x[i] = f(x[i]);
  };
  switch (act.kind) {
    case Activation::none: return;
    case Activation::relu: return each([](float v) { return v > 0 ? v : 0.0f; });
    case Activation::clip: return each([&](float v) { return std::min(std::max(v, p0), p1); });
    case Activation::sigmoid: return each([](float v) { return 1.0f / (1.0f + std::exp(-v)); });
    case Activation::silu: return each([](float v) { return v / (1.0f + std::exp(-v)); });
    case Activation::hardswish:
      return each([](float v) { return v * std::min(std::max(v / 6.0f + 0.5f, 0.0f), 1.0f); });
    case Activation::leaky_relu: return each([&](float v) { return v >= 0 ? v : p0 * v; });
    case Activation::gelu:
      return each([](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); });
    case Activation::gelu_tanh:
      return each([](float v) { return 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v))); });
    case Activation::tanh: return each([](float v) { return std::tanh(v); });
  }
}

}  // namespace orchard::cpu
