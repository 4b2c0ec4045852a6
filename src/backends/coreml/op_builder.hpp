// One builder per ONNX op (grouped in ops_<family>.cpp files), listed in op_table.cpp.
// check: can this node be expressed (beyond the generic checks in converter.cpp)? build: emit MIL ops.
// Internal to src/backends/coreml.
#pragma once

#include <span>

#include "backends/coreml/mil_builder.hpp"

namespace orchard::coreml {

struct OpBuilder {
  const char* op;  // ONNX op type, default domain
  int since;       // first ONNX opset the builder handles
  int until;       // last one
  int data_inputs; // inputs [0, data_inputs) are tensors the program reads; later ones are parameters the
                   // builder takes from constants or static shapes (never partition inputs). -1: all.
  Status (*check)(const graph::Node& node, const graph::Graph& graph, const ConvertOptions& options);  // null: always ok
  Status (*build)(const graph::Node& node, ConvertContext& ctx);
};

// Returns whether input `i` of `node` is data the converted program reads (see OpBuilder::data_inputs).
bool is_data_input(const graph::Node& node, size_t i);
// Returns the builder for (op, opset), or null.
const OpBuilder* find_op_builder(const std::string& op, int opset);
// Returns the whole table.
std::span<const OpBuilder> op_builders();

// Family tables (one per ops_<family>.cpp), joined by op_table.cpp.
std::span<const OpBuilder> elementwise_builders();
std::span<const OpBuilder> activation_builders();
std::span<const OpBuilder> linear_builders();
std::span<const OpBuilder> conv_builders();
std::span<const OpBuilder> normalization_builders();
std::span<const OpBuilder> shape_builders();

inline constexpr int kOpsetMax = 17;  // the newest default-domain opset Orchard imports

// Helpers shared by the builders.
// Returns the node's static output desc `i`.
Result<TensorDesc> out_desc(const graph::Node& node, ConvertContext& ctx, size_t i = 0);
// Returns the non-negative axis for `axis` of a rank-`rank` tensor, or an error naming the node.
Result<int64_t> normalize_axis(const graph::Node& node, int64_t axis, size_t rank);
// Returns the integer values of constant input `i` (int64 or int32), or an error when it is not constant.
Result<std::vector<int64_t>> const_ints(const graph::Node& node, const graph::Graph& graph, size_t i);
// Returns ok when input `i` is a constant initializer, else unsupported naming it.
Status require_const(const graph::Node& node, const graph::Graph& graph, size_t i, const char* what);

}  // namespace orchard::coreml
