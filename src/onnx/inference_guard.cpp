#include "onnx/inference_guard.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <onnx/defs/shape_inference.h>

namespace orchard::onnx_import {

namespace {

using onnx::InferenceContext;

// Rank of input i when its type and shape are known.
std::optional<int> input_rank(InferenceContext& ctx, size_t i) {
  if (i >= ctx.getNumInputs()) return std::nullopt;
  const onnx::TypeProto* t = ctx.getInputType(i);
  if (t == nullptr || !t->has_tensor_type() || !t->tensor_type().has_shape()) return std::nullopt;
  return t->tensor_type().shape().dim_size();
}

// Fails inference unless the ints attribute `name`, when present, has `want` entries.
void check_attr_length(InferenceContext& ctx, const char* name, int want) {
  const onnx::AttributeProto* a = ctx.getAttribute(name);
  if (a != nullptr && a->ints_size() != want) {
    fail_shape_inference("attribute '", name, "' has ", a->ints_size(), " entries; the input's spatial rank needs ", want);
  }
}

// Fails inference unless every entry of the ints attribute `name`, when present, is at least `min`.
void check_attr_min(InferenceContext& ctx, const char* name, int64_t min) {
  const onnx::AttributeProto* a = ctx.getAttribute(name);
  if (a == nullptr) return;
  for (int64_t v : a->ints()) {
    if (v < min) fail_shape_inference("attribute '", name, "' has entry ", v, "; entries must be >= ", min);
  }
}

// Conv-like and pooling ops: data input X (index 0) of rank >= 3 (N, C, spatial dims), per-spatial-dim
// attributes of matching length and sensible values (libonnx divides by strides unchecked), and a weight
// input (index `w`, if any) of the same rank as X.
void check_spatial(InferenceContext& ctx, int w) {
  for (const char* name : {"kernel_shape", "strides", "dilations"}) check_attr_min(ctx, name, 1);
  for (const char* name : {"pads", "output_padding"}) check_attr_min(ctx, name, 0);
  const std::optional<int> x = input_rank(ctx, 0);
  if (x && *x < 3) fail_shape_inference("input X has rank ", *x, "; it needs rank >= 3 (N, C and spatial dims)");
  if (w >= 0) {
    const std::optional<int> wr = input_rank(ctx, static_cast<size_t>(w));
    if (wr && *wr < 3) fail_shape_inference("weight input ", w, " has rank ", *wr, "; it needs rank >= 3");
    if (x && wr && *x != *wr) fail_shape_inference("input X has rank ", *x, " but weight input ", w, " has rank ", *wr);
  }
  if (!x) return;
  const int spatial = *x - 2;
  for (const char* name : {"kernel_shape", "strides", "dilations", "output_padding", "output_shape"}) {
    check_attr_length(ctx, name, spatial);
  }
  check_attr_length(ctx, "pads", 2 * spatial);
}

// RNN, GRU, LSTM: X, W and R have rank 3.
void check_recurrent(InferenceContext& ctx) {
  constexpr const char* kNames[] = {"X", "W", "R"};
  for (size_t i = 0; i < 3; ++i) {
    const std::optional<int> r = input_rank(ctx, i);
    if (r && *r != 3) fail_shape_inference("input ", kNames[i], " has rank ", *r, "; it needs rank 3");
  }
}

// Gemm: A and B are matrices (the opset-6 inference reads dims 0 and 1 unchecked).
void check_gemm(InferenceContext& ctx) {
  for (size_t i = 0; i < 2; ++i) {
    const std::optional<int> r = input_rank(ctx, i);
    if (r && *r != 2) fail_shape_inference("input ", i == 0 ? "A" : "B", " has rank ", *r, "; it needs rank 2");
  }
}

// STFT: the signal is [batch, length, 1 or 2] (libonnx 1.12 reads its dims 1 and 2 unchecked).
void check_stft(InferenceContext& ctx) {
  const std::optional<int> r = input_rank(ctx, 0);
  if (r && *r != 3) fail_shape_inference("input signal has rank ", *r, "; it needs rank 3 (batch, length, 1 or 2)");
}

// MaxUnpool: X as for pooling; the indices I have X's shape (libonnx 1.12 copies I's dim 1 as the channel
// count unchecked) and output_shape, when given, is a 1-D tensor.
void check_max_unpool(InferenceContext& ctx) {
  check_spatial(ctx, -1);
  const std::optional<int> x = input_rank(ctx, 0), i = input_rank(ctx, 1), shape = input_rank(ctx, 2);
  if (x && i && *x != *i) fail_shape_inference("input I has rank ", *i, " but input X has rank ", *x, "; they must match");
  if (i && *i < 2) fail_shape_inference("input I has rank ", *i, "; it needs rank >= 2");
  if (shape && *shape != 1) fail_shape_inference("input output_shape has rank ", *shape, "; it needs rank 1");
}

// LayerNormalization: X has rank >= 1 and `axis` (default -1) names one of its dims (libonnx 1.12 indexes the
// shape with the normalized axis unchecked).
void check_layer_norm(InferenceContext& ctx) {
  const std::optional<int> r = input_rank(ctx, 0);
  if (!r) return;
  if (*r < 1) fail_shape_inference("input X has rank ", *r, "; it needs rank >= 1");
  const onnx::AttributeProto* a = ctx.getAttribute("axis");
  const int64_t axis = a != nullptr ? a->i() : -1;
  if (axis < -*r || axis >= *r) fail_shape_inference("axis ", axis, " is outside [", -*r, ", ", *r, ") for input X of rank ", *r);
}

// Einsum without "->": libonnx 1.12 counts each letter of the equation in a 26-entry array indexed by
// `c - 'a'`, unchecked, so any other character writes outside it. The spec's terms are lower-case letters.
void check_einsum(InferenceContext& ctx) {
  const onnx::AttributeProto* a = ctx.getAttribute("equation");
  if (a == nullptr || !a->has_s()) return;
  const std::string& eq = a->s();
  if (eq.find("->") != std::string::npos) return;
  for (const char c : eq) {
    if (!((c >= 'a' && c <= 'z') || c == ',' || c == '.' || c == ' ')) {
      fail_shape_inference("equation '", eq, "' has the character '", c,
                           "'; terms are lower-case letters (and '...'), separated by commas");
    }
  }
}

using Guard = void (*)(InferenceContext&);

// The checks each guarded operator of the default domain gets, whatever its opset.
Guard guard_for(std::string_view domain, std::string_view op) {
  if (!domain.empty() && domain != "ai.onnx") return nullptr;
  if (op == "Conv" || op == "ConvInteger" || op == "ConvTranspose") return [](InferenceContext& c) { check_spatial(c, 1); };
  if (op == "QLinearConv") return [](InferenceContext& c) { check_spatial(c, 3); };
  if (op == "MaxUnpool") return check_max_unpool;
  if (op == "AveragePool" || op == "MaxPool" || op == "LpPool" || op == "GlobalAveragePool" ||
      op == "GlobalMaxPool" || op == "GlobalLpPool") {
    return [](InferenceContext& c) { check_spatial(c, -1); };
  }
  if (op == "RNN" || op == "GRU" || op == "LSTM") return check_recurrent;
  if (op == "Gemm") return check_gemm;
  if (op == "STFT") return check_stft;
  if (op == "Einsum") return check_einsum;
  if (op == "LayerNormalization") return check_layer_norm;
  return nullptr;
}

class GuardedRegistry final : public onnx::ISchemaRegistry {
 public:
  const onnx::OpSchema* GetSchema(const std::string& key, const int max_version, const std::string& domain) const override {
    const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(key, max_version, domain);
    if (schema == nullptr || !schema->has_type_and_shape_inference_function()) return schema;
    const Guard guard = guard_for(domain, key);
    if (guard == nullptr) return schema;
    std::lock_guard<std::mutex> lock(mu_);
    auto& copy = guarded_[schema];
    if (!copy) {
      copy = std::make_unique<onnx::OpSchema>(*schema);
      copy->TypeAndShapeInferenceFunction([guard, inner = schema->GetTypeAndShapeInferenceFunction()](InferenceContext& ctx) {
        guard(ctx);
        inner(ctx);
      });
    }
    return copy.get();
  }

 private:
  mutable std::mutex mu_;
  // One guarded copy per registered schema (a bounded set: the schemas libonnx knows).
  mutable std::map<const onnx::OpSchema*, std::unique_ptr<onnx::OpSchema>> guarded_;
};

}  // namespace

const onnx::ISchemaRegistry& guarded_schema_registry() {
  static const GuardedRegistry registry;
  return registry;
}

}  // namespace orchard::onnx_import
