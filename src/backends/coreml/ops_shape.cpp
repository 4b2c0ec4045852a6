// Data movement: Reshape/Flatten/Squeeze/Unsqueeze (→ reshape to the static output shape), Transpose,
// Concat, Split, Slice (→ slice_by_index), Gather, GatherElements, Expand/Tile (→ tile), Pad, Resize.
#include <algorithm>
#include <limits>

#include "backends/coreml/op_builder.hpp"

namespace orchard::coreml {

namespace {

mil::DataType natural(const TensorDesc& d, const ConvertContext& ctx) { return mil_type_for(d.dtype, ctx.options().precision); }

Status build_reshape(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], natural(out, ctx)));
  ctx.bind(node.outputs[0], ctx.op("reshape", {{"x", x.name}, {"shape", ints_value(to_int32(out.shape))}}, x.dtype, out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_transpose(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], natural(out, ctx)));
  std::vector<int64_t> perm = node.attr_ints("perm");
  if (perm.empty()) {
    for (size_t i = out.rank(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  ctx.bind(node.outputs[0], ctx.op("transpose", {{"x", x.name}, {"perm", ints_value(to_int32(perm))}}, x.dtype, out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_concat(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), out.rank()));
  std::vector<std::string> values;
  for (const auto& in : node.inputs) {
    if (in.empty()) continue;
    ORCHARD_ASSIGN_OR_RETURN(Var v, ctx.input(in, natural(out, ctx)));
    values.push_back(v.name);
  }
  ctx.bind(node.outputs[0], ctx.op("concat", {{"values", values}, {"axis", int_value(static_cast<int32_t>(axis))}, {"interleave", bool_value(false)}},
                                   natural(out, ctx), out.shape, node.outputs[0]));
  return Status::OK();
}

Status build_split(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc in, ctx.desc(node.inputs[0]));
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), in.rank()));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], natural(in, ctx)));
  std::vector<int32_t> sizes;
  std::vector<std::pair<mil::DataType, std::vector<int64_t>>> outs;
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    ORCHARD_ASSIGN_OR_RETURN(TensorDesc o, out_desc(node, ctx, i));
    sizes.push_back(static_cast<int32_t>(o.shape[axis]));  // the static output shapes fix the split sizes
    outs.emplace_back(x.dtype, o.shape);
  }
  auto vars = ctx.op_multi("split", {{"x", x.name}, {"split_sizes", ints_value(sizes)}, {"axis", int_value(static_cast<int32_t>(axis))}}, outs,
                           node.outputs[0]);
  for (size_t i = 0; i < vars.size(); ++i) ctx.bind(node.outputs[i], vars[i]);
  return Status::OK();
}

Status check_split(const graph::Node& node, const graph::Graph&, const ConvertOptions&) {
  for (const auto& o : node.outputs) {
    if (o.empty()) return unsupported("Split with an unused output");
  }
  return Status::OK();
}

// Slice: starts/ends/axes/steps must be constant; each axis is resolved with ONNX's clamping rules into
// non-negative begin/end, with end_mask for a negative step running past index 0.
struct SliceSpec {
  std::vector<int32_t> begin, end, stride;
  std::vector<bool> end_mask;
};

Result<SliceSpec> slice_spec(const graph::Node& node, const graph::Graph& graph) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  std::vector<int64_t> starts, ends, axes, steps;
  if (node.opset < 10) {
    starts = node.attr_ints("starts");
    ends = node.attr_ints("ends");
    axes = node.attr_ints("axes");
  } else {
    ORCHARD_ASSIGN_OR_RETURN(starts, const_ints(node, graph, 1));
    ORCHARD_ASSIGN_OR_RETURN(ends, const_ints(node, graph, 2));
    if (node.has_input(3)) {
      ORCHARD_ASSIGN_OR_RETURN(axes, const_ints(node, graph, 3));
    }
    if (node.has_input(4)) {
      ORCHARD_ASSIGN_OR_RETURN(steps, const_ints(node, graph, 4));
    }
  }
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    return invalid_argument("Slice starts/ends/axes/steps lengths differ");
  }
  SliceSpec s;
  for (size_t i = 0; i < x.rank(); ++i) {
    s.begin.push_back(0);
    s.end.push_back(static_cast<int32_t>(x.shape[i]));
    s.stride.push_back(1);
    s.end_mask.push_back(false);
  }
  for (size_t k = 0; k < starts.size(); ++k) {
    ORCHARD_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, axes[k], x.rank()));
    const int64_t dim = x.shape[a], step = steps[k];
    if (step == 0) return invalid_argument("Slice step 0");
    int64_t b = starts[k] < 0 ? starts[k] + dim : starts[k];
    int64_t e = ends[k] < 0 && ends[k] > std::numeric_limits<int64_t>::min() / 2 ? ends[k] + dim : ends[k];
    if (step > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
    } else {
      b = std::clamp<int64_t>(b, -1, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
    }
    s.begin[a] = static_cast<int32_t>(std::max<int64_t>(b, 0));
    s.end[a] = static_cast<int32_t>(std::max<int64_t>(e, 0));
    s.end_mask[a] = step < 0 && e < 0;
    s.stride[a] = static_cast<int32_t>(std::clamp<int64_t>(step, -dim - 1, dim + 1));
  }
  return s;
}

Status check_slice(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, find_desc(graph, node.outputs[0]));
  for (int64_t d : out.shape) {
    if (d == 0) return unsupported("Slice with an empty result");
  }
  return slice_spec(node, graph).status();
}

Status build_slice(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(SliceSpec s, slice_spec(node, ctx.graph()));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], natural(out, ctx)));
  const std::vector<bool> none(s.begin.size(), false);
  ctx.bind(node.outputs[0], ctx.op("slice_by_index",
                                   {{"x", x.name},
                                    {"begin", ints_value(s.begin)},
                                    {"end", ints_value(s.end)},
                                    {"stride", ints_value(s.stride)},
                                    {"begin_mask", bools_value(none)},
                                    {"end_mask", bools_value(s.end_mask)},
                                    {"squeeze_mask", bools_value(none)}},
                                   x.dtype, out.shape, node.outputs[0]));
  return Status::OK();
}

// gather's parameters by opset: batch_dims from iOS16 (CoreML6), validate_indices from iOS17 (CoreML7).
void add_gather_params(Params& p, const ConvertContext& ctx, bool batch_dims) {
  if (batch_dims) p.emplace_back("batch_dims", int_value(0));
  if (ctx.options().target != Target::macos13) p.emplace_back("validate_indices", bool_value(false));
}

Status build_gather(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc in, ctx.desc(node.inputs[0]));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], natural(out, ctx)));
  ORCHARD_ASSIGN_OR_RETURN(Var idx, ctx.input(node.inputs[1], mil::INT32));
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), in.rank()));
  const bool elements = node.op_type == "GatherElements";
  Params p{{"x", x.name}, {"indices", idx.name}, {"axis", int_value(static_cast<int32_t>(axis))}};
  add_gather_params(p, ctx, !elements);
  ctx.bind(node.outputs[0], ctx.op(elements ? "gather_along_axis" : "gather", p, x.dtype, out.shape, node.outputs[0]));
  return Status::OK();
}

// Expand and Tile both become tile; Expand first reshapes to the output's rank (leading 1s).
Status build_tile(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], natural(out, ctx)));
  std::vector<int64_t> shape = x.shape;
  if (shape.size() < out.rank()) {
    shape.insert(shape.begin(), out.rank() - shape.size(), 1);
    x = ctx.op("reshape", {{"x", x.name}, {"shape", ints_value(to_int32(shape))}}, x.dtype, shape, node.outputs[0] + "_ranked");
  }
  std::vector<int32_t> reps;
  for (size_t i = 0; i < out.rank(); ++i) reps.push_back(static_cast<int32_t>(out.shape[i] / shape[i]));
  if (std::all_of(reps.begin(), reps.end(), [](int32_t r) { return r == 1; })) {
    ctx.bind(node.outputs[0], x);
    return Status::OK();
  }
  ctx.bind(node.outputs[0], ctx.op("tile", {{"x", x.name}, {"reps", ints_value(reps)}}, x.dtype, out.shape, node.outputs[0]));
  return Status::OK();
}

Status check_tile(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, find_desc(graph, node.outputs[0]));
  if (x.rank() > out.rank()) return unsupported("Expand to a lower rank");
  const size_t lead = out.rank() - x.rank();
  for (size_t i = 0; i < x.rank(); ++i) {
    if (out.shape[lead + i] % x.shape[i] != 0) return unsupported("output dim ", out.shape[lead + i], " is not a multiple of ", x.shape[i]);
  }
  return Status::OK();  // reps follow from the static shapes
}

Status check_pad(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  const std::string mode = node.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge") return unsupported("Pad mode '", mode, "'");
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  if (!dtype_is_float(x.dtype)) return unsupported("Pad on ", dtype_name(x.dtype));
  std::vector<int64_t> pads = node.attr_ints("pads");
  if (node.opset >= 11) {
    ORCHARD_ASSIGN_OR_RETURN(pads, const_ints(node, graph, 1));
  }
  if (node.opset >= 18 && node.has_input(3)) return unsupported("Pad axes input");
  if (node.has_input(2)) ORCHARD_RETURN_IF_ERROR(require_const(node, graph, 2, "the pad value"));
  for (size_t i = 0; i < pads.size(); ++i) {
    if (pads[i] < 0) return unsupported("negative pads (cropping)");
    if (mode != "constant" && pads[i] != 0 && i % x.rank() + 2 < x.rank()) return unsupported(mode, " padding beyond the last two dims");
  }
  return Status::OK();
}

Status build_pad(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const size_t rank = out.rank();
  std::vector<int64_t> pads = node.attr_ints("pads");
  if (node.opset >= 11) {
    ORCHARD_ASSIGN_OR_RETURN(pads, const_ints(node, ctx.graph(), 1));
  }
  const std::string mode = node.attr_string("mode", "constant");
  float value = node.attr_float("value", 0.0f);
  if (node.opset >= 11 && node.has_input(2)) value = ctx.constant(node.inputs[2])->data<float>()[0];
  // MIL pads the last N dims with (begin, end) pairs; reflect/replicate pad only the last two.
  const size_t first = mode == "constant" ? 0 : rank - 2;
  std::vector<int32_t> pairs;
  for (size_t i = first; i < rank; ++i) {
    pairs.push_back(static_cast<int32_t>(pads[i]));
    pairs.push_back(static_cast<int32_t>(pads[i + rank]));
  }
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  ctx.bind(node.outputs[0], ctx.op("pad",
                                   {{"x", x.name}, {"pad", ints_value(pairs)},
                                    {"mode", string_value(mode == "edge" ? "replicate" : mode)},
                                    {"constant_val", float_value(value, t)}},
                                   t, out.shape, node.outputs[0]));
  return Status::OK();
}

// Resize: 4-D, scaling the last two dims by integer factors; nearest (asymmetric, floor) →
// upsample_nearest_neighbor; linear → upsample_bilinear (align_corners or half_pixel_centers).
Status check_resize(const graph::Node& node, const graph::Graph& graph, const ConvertOptions&) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc x, find_desc(graph, node.inputs[0]));
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, find_desc(graph, node.outputs[0]));
  if (node.opset < 11) return unsupported("Resize before opset 11");
  if (x.rank() != 4 || !dtype_is_float(x.dtype)) return unsupported("Resize of rank ", x.rank(), " ", dtype_name(x.dtype));
  if (out.shape[0] != x.shape[0] || out.shape[1] != x.shape[1]) return unsupported("Resize of the batch or channel dim");
  for (size_t i = 2; i < 4; ++i) {
    if (out.shape[i] % x.shape[i] != 0) return unsupported("Resize by a non-integer factor");
  }
  const std::string mode = node.attr_string("mode", "nearest");
  const std::string ct = node.attr_string("coordinate_transformation_mode", "half_pixel");
  if (mode == "nearest") {
    if (ct != "asymmetric" || node.attr_string("nearest_mode", "round_prefer_floor") != "floor") {
      return unsupported("nearest Resize needs asymmetric coordinates and floor rounding");
    }
  } else if (mode == "linear") {
    if (ct != "align_corners" && ct != "half_pixel" && ct != "pytorch_half_pixel") return unsupported("linear Resize with ", ct, " coordinates");
  } else {
    return unsupported("Resize mode '", mode, "'");
  }
  return Status::OK();
}

Status build_resize(const graph::Node& node, ConvertContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc out, out_desc(node, ctx));
  const mil::DataType t = ctx.float_type();
  ORCHARD_ASSIGN_OR_RETURN(Var x, ctx.input(node.inputs[0], t));
  const float sh = static_cast<float>(out.shape[2] / x.shape[2]), sw = static_cast<float>(out.shape[3] / x.shape[3]);
  const std::string ct = node.attr_string("coordinate_transformation_mode", "half_pixel");
  Var r;
  if (node.attr_string("mode", "nearest") == "nearest") {
    r = ctx.op("upsample_nearest_neighbor", {{"x", x.name}, {"scale_factor_height", float_value(sh, mil::FLOAT32)}, {"scale_factor_width", float_value(sw, mil::FLOAT32)}},
               t, out.shape, node.outputs[0]);
  } else {
    r = ctx.op("upsample_bilinear",
               {{"x", x.name}, {"scale_factor_height", float_value(sh, mil::FLOAT32)}, {"scale_factor_width", float_value(sw, mil::FLOAT32)},
                {"align_corners", bool_value(ct == "align_corners")}, {"half_pixel_centers", bool_value(ct != "align_corners")}},
               t, out.shape, node.outputs[0]);
  }
  ctx.bind(node.outputs[0], r);
  return Status::OK();
}

constexpr OpBuilder kBuilders[] = {
    {"Reshape", 5, kOpsetMax, 1, nullptr, build_reshape},
    {"Flatten", 1, kOpsetMax, 1, nullptr, build_reshape},
    {"Squeeze", 1, kOpsetMax, 1, nullptr, build_reshape},
    {"Unsqueeze", 1, kOpsetMax, 1, nullptr, build_reshape},
    {"Transpose", 1, kOpsetMax, -1, nullptr, build_transpose},
    {"Concat", 4, kOpsetMax, -1, nullptr, build_concat},
    {"Split", 2, kOpsetMax, 1, check_split, build_split},
    {"Slice", 1, kOpsetMax, 1, check_slice, build_slice},
    {"Gather", 1, kOpsetMax, -1, nullptr, build_gather},
    {"GatherElements", 11, kOpsetMax, -1, nullptr, build_gather},
    {"Expand", 8, kOpsetMax, 1, check_tile, build_tile},
    {"Tile", 6, kOpsetMax, 1, check_tile, build_tile},
    {"Pad", 2, kOpsetMax, 1, check_pad, build_pad},
    {"Resize", 11, kOpsetMax, 1, check_resize, build_resize},
};

}  // namespace

std::span<const OpBuilder> shape_builders() { return kBuilders; }

}  // namespace orchard::coreml
