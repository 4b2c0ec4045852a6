// Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
// ONNX pads [x1_begin, x2_begin, …, x1_end, x2_end] become MIL pad [x1_begin, x1_end, x2_begin, …].
#include "backends/coreml/op_builder.hpp"

namespace orchard::coreml {

namespace {

std::vector<int32_t> mil_pads(const std::vector<int64_t>& onnx_pads, size_t spatial) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < spatial; ++i) {
    out.push_back(onnx_pads.empty() ? 0 : static_cast<int32_t>(onnx_pads[i]));
    out.push_back(onnx_pads.empty() ? 0 : static_cast<int32_t>(onnx_pads[i + spatial]));
  }
  return out;
}

Result<const char*> pad_type(const graph::Node& node) {
  const std::string a = node.attr_string("auto_pad", "NOTSET");
  if (a == "NOTSET") return "custom";
  if (a == "VALID") return "valid";
  if (a == "SAME_UPPER") return "same";
  if (a == "SAME_LOWER") return "same_lower";
  return unsupported("auto_pad '", a, "'");
}

// Common checks: float data, 1–3 spatial dims, constant weight (Conv/ConvTranspose).
Status check_spatial(const graph::Node& node, const graph::Graph& graph, bool needs_const_weight) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(x.dtype)) return unsupported(node.op_type, " on ", dtype_name(x.dtype));
  if (x.rank() < 3 || x.rank() > 5) return unsupported(node.op_type, " on rank ", x.rank(), " (MIL: 1–3 spatial dims)");
  ORCHARD_RETURN_IF_ERROR(pad_type(node).status());
  if (needs_const_weight) {
    ORCHARD_RETURN_IF_ERROR(require_const(node, graph, 1, "the weight"));
    if (node.has_input(2)) ORCHARD_RETURN_IF_ERROR(require_const(node, graph, 2, "the bias"));
  }
  return Status::OK();
}

Status check_conv(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  return check_spatial(node, graph, true);
}

Status check_conv_transpose(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_RETURN_IF_ERROR(check_spatial(node, graph, true));
  for (int64_t p : node.attr_ints("output_padding")) {
    if (p != 0) return unsupported("ConvTranspose output_padding is not converted");
  }
  if (node.attr("output_shape")) return unsupported("ConvTranspose output_shape is not converted");
  if (node.attr_string("auto_pad", "NOTSET") != "NOTSET") return unsupported("ConvTranspose auto_pad is not converted");
  return Status::OK();
}

Status build_conv(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const size_t spatial = out.rank() - 2;
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(Var w, ctx.input(node.inputs[1], t));
  ORCHARD_ASSIGN_OR_RETURN(const char* pt, pad_type(node));
  Params p{{"x", x.name}, {"weight", w.name}};
  if (node.has_input(2)) {
    ORCHARD_ASSIGN_OR_RETURN(Var b, ctx.input(node.inputs[2], t));
    p.emplace_back("bias", b.name);
  }
  const std::vector<int64_t> ones(spatial, 1);
  p.emplace_back("strides", ints_value(to_int32(node.attr_ints("strides", ones))));
  p.emplace_back("pad_type", string_value(pt));
  p.emplace_back("pad", ints_value(mil_pads(std::string(pt) == "custom" ? node.attr_ints("pads") : std::vector<int64_t>{}, spatial)));
  p.emplace_back("dilations", ints_value(to_int32(node.attr_ints("dilations", ones))));
  p.emplace_back("groups", int_value(static_cast<int32_t>(node.attr_int("group", 1))));
  const bool transpose = node.op_type == "ConvTranspose";
  ctx.bind(node.outputs[0], ctx.op(transpose ? "conv_transpose" : "conv", p, t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status check_pool(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_RETURN_IF_ERROR(check_spatial(node, graph, false));
  if (node.outputs.size() > 1 && !node.outputs[1].empty()) return unsupported("MaxPool's Indices output is not converted");
  for (int64_t d : node.attr_ints("dilations")) {
    if (d != 1) return unsupported("pooling with dilation ", d);
  }
  if (node.attr_int("storage_order", 0) != 0) return unsupported("MaxPool storage_order 1");
  const std::vector<int64_t> pads = node.attr_ints("pads");
  if (node.attr_int("ceil_mode", 0) != 0) {
    for (size_t i = 0; i < pads.size() / 2; ++i) {
      if (pads[i] != pads[i + pads.size() / 2]) return unsupported("ceil_mode with asymmetric pads");
    }
  }
  return Status::OK();
}

Status build_pool(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const size_t spatial = out.rank() - 2;
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ORCHARD_ASSIGN_OR_RETURN(const char* pt, pad_type(node));
  const std::vector<int64_t> ones(spatial, 1);
  Params p{{"x", x.name},
           {"kernel_sizes", ints_value(to_int32(node.attr_ints("kernel_shape")))},
           {"strides", ints_value(to_int32(node.attr_ints("strides", ones)))},
           {"pad_type", string_value(pt)},
           {"pad", ints_value(mil_pads(std::string(pt) == "custom" ? node.attr_ints("pads") : std::vector<int64_t>{}, spatial))},
           {"ceil_mode", bool_value(node.attr_int("ceil_mode", 0) != 0)}};
  const bool avg = node.op_type == "AveragePool";
  if (avg) p.emplace_back("exclude_padding_from_average", bool_value(node.attr_int("count_include_pad", 0) == 0));
  ctx.bind(node.outputs[0], ctx.op(avg ? "avg_pool" : "max_pool", p, t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_global_pool(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  std::vector<int32_t> axes;
  for (size_t i = 2; i < out.rank(); ++i) axes.push_back(static_cast<int32_t>(i));
  const char* op = node.op_type == "GlobalAveragePool" ? "reduce_mean" : "reduce_max";
  ctx.bind(node.outputs[0], ctx.op(op, {{"x", x.name}, {"axes", ints_value(axes)}, {"keep_dims", bool_value(true)}}, t, out.shape, node.outputs[0]));
  return Status::OK();
}

Status check_global_pool(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  return check_spatial(node, graph, false);
}

constexpr OpBuilder kBuilders[] = {
    {"Conv", 1, kOpsetMax, -1, check_conv, build_conv},
    {"ConvTranspose", 1, kOpsetMax, -1, check_conv_transpose, build_conv},
    {"MaxPool", 8, kOpsetMax, -1, check_pool, build_pool},
    {"AveragePool", 7, kOpsetMax, -1, check_pool, build_pool},
    {"GlobalAveragePool", 1, kOpsetMax, -1, check_global_pool, build_global_pool},
    {"GlobalMaxPool", 1, kOpsetMax, -1, check_global_pool, build_global_pool},
};

}  // namespace

std::span<const OpBuilder> conv_builders() { return kBuilders; }

}  // namespace orchard::coreml
