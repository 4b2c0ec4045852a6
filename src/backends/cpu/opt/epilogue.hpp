// What a fused kernel does to its output after the main computation: add a bias, add a residual, apply an
// activation, in that order: y = act(acc + bias + residual). Shared by the fused ops of the "com.orchard"
// domain (FusedConv, FusedMatMul: see docs/fused_ops.md) and the optimized kernels that implement them.
#pragma once

#include <cstdint>
#include <string_view>

#include "graph/graph.hpp"
#include "orchard/status.hpp"

namespace orchard::cpu {

// The activations a fused op may carry, by their ONNX op name ("" for none).
enum class Activation : unsigned char { none, relu, clip, sigmoid, silu, hardswish, leaky_relu, gelu, gelu_tanh, tanh };

struct ActivationSpec {
  Activation kind = Activation::none;
  float p0 = 0, p1 = 0;  // Clip: min, max; LeakyRelu: alpha; others: unused
};

// Reads a fused node's `activation` (string) and `activation_params` (floats) attributes; an unknown name
// or a wrong parameter count is an error naming the node.
Result<ActivationSpec> parse_activation(const graph::Node& node);

// Returns the attribute value that names `kind` ("Relu", "SiLU", ...; "" for none).
std::string_view activation_name(Activation kind);

// Applies the activation to n floats in place: plain scalar code, the reference for vectorised versions.
void apply_activation_ref(const ActivationSpec& act, float* x, int64_t n);

}  // namespace orchard::cpu
