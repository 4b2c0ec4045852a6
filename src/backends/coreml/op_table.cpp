// The Core ML builder table: every family's builders, listed explicitly (STYLE.md "Explicit tables").
#include <vector>

#include "backends/coreml/op_builder.hpp"

namespace orchard::coreml {

std::span<const OpBuilder> op_builders() {
  static const std::vector<OpBuilder> table = [] {
    std::vector<OpBuilder> all;
    for (auto family : {elementwise_builders, activation_builders, linear_builders, conv_builders, normalization_builders, shape_builders}) {
      auto defs = family();
      all.insert(all.end(), defs.begin(), defs.end());
    }
    return all;
  }();
  return table;
}

const OpBuilder* find_op_builder(const std::string& op, int opset) {
  for (const auto& b : op_builders()) {
    if (op == b.op && opset >= b.since && opset <= b.until) return &b;
  }
  return nullptr;
}

bool is_data_input(const graph::Node& node, size_t i) {
  const OpBuilder* b = find_op_builder(node.op_type, node.opset);
  return b && (b->data_inputs < 0 || i < static_cast<size_t>(b->data_inputs));
}

}  // namespace orchard::coreml
