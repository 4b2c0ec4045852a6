#include "backends/coreml/mil_reader.hpp"

#include <cstring>
#include <set>
#include <functional>
#include <limits>

#include "backends/coreml/blob_storage.hpp"
#include "coreml_model.pb.h"

namespace orchard::coreml {

namespace {

namespace mil = ::CoreML::Specification::MILSpec;
using graph::Attribute;

Result<DType> dtype_from_mil(int t) {
  switch (t) {
    case mil::FLOAT16: return DType::float16;
    case mil::FLOAT32: return DType::float32;
    case mil::INT32: return DType::int32;
    case mil::BOOL: return DType::boolean;
    case mil::STRING: return DType::string;
    case mil::INT8: return DType::int8;
    case mil::UINT8: return DType::uint8;
    default: return unsupported("[coreml] MIL data type ", t, " is not read");
  }
}

Result<std::pair<DType, std::vector<int64_t>>> tensor_type(const mil::ValueType& vt, const std::string& what) {
  if (!vt.has_tensortype()) return invalid_argument("[coreml] ", what, ": not a tensor type");
  const auto& tt = vt.tensortype();
  ORCHARD_ASSIGN_OR_RETURN(DType d, dtype_from_mil(tt.datatype()));
  if (tt.rank() != tt.dimensions_size()) return invalid_argument("[coreml] ", what, ": rank ", tt.rank(), " but ", tt.dimensions_size(), " dims");
  std::vector<int64_t> shape;
  for (const auto& dim : tt.dimensions()) {
    if (dim.has_unknown() && dim.unknown().variadic()) return unsupported("[coreml] ", what, ": variadic dims are not read");
    shape.push_back(dim.has_constant() ? static_cast<int64_t>(dim.constant().size()) : -1);  // -1: unknown (enumerated shapes)
  }
  return std::pair{d, shape};
}

Attribute attr_i(int64_t v) {
  Attribute a;
  a.type = Attribute::Type::i;
  a.i = v;
  return a;
}
Attribute attr_f(float v) {
  Attribute a;
  a.type = Attribute::Type::f;
  a.f = v;
  return a;
}
Attribute attr_s(std::string v) {
  Attribute a;
  a.type = Attribute::Type::s;
  a.s = std::move(v);
  return a;
}
Attribute attr_ints(std::vector<int64_t> v) {
  Attribute a;
  a.type = Attribute::Type::ints;
  a.ints = std::move(v);
  return a;
}

// Reads the program's ops one by one into `g`.
class Reader {
 public:
  Reader(const std::vector<std::byte>& weights, graph::Graph& g) : weights_(weights), g_(g) {}

  Status init() {
    if (!weights_.empty()) {
      ORCHARD_ASSIGN_OR_RETURN(blobs_, parse_blob_storage(weights_));
    }
    return Status::OK();
  }

  Result<Tensor> value_tensor(const mil::Value& v, const std::string& what);
  Status read_op(const mil::Operation& op);
  // Records a var defined outside ops (function inputs) with its declared shape.
  void declare(const std::string& name, std::vector<int64_t> shape) { shapes_[name] = std::move(shape); }

 private:
  // Parameter access. `var` returns the graph value name of a binding (an initializer for an
  // immediate value); `tensor` returns a compile-time value (immediate or const op output).
  Result<std::string> var(const mil::Operation& op, const std::string& key);
  Result<Tensor> tensor(const mil::Operation& op, const std::string& key);
  bool has(const mil::Operation& op, const std::string& key) const { return op.inputs().count(key) > 0; }
  Result<std::vector<int64_t>> ints(const mil::Operation& op, const std::string& key);
  Result<float> scalar_float(const mil::Operation& op, const std::string& key);
  Result<bool> scalar_bool(const mil::Operation& op, const std::string& key);
  Result<std::string> scalar_string(const mil::Operation& op, const std::string& key);
  std::string out(const mil::Operation& op, int i = 0) const { return op.outputs(i).name(); }
  std::string temp(const std::string& base) { return base + "__r" + std::to_string(temp_++); }
  std::string add_initializer(const std::string& base, Tensor t) {
    const std::string name = temp(base);
    g_.initializers[name] = std::move(t);
    return name;
  }
  void node(const std::string& op_type, std::vector<std::string> inputs, std::vector<std::string> outputs,
            std::map<std::string, Attribute, std::less<>> attrs = {}) {
    graph::Node n;
    n.name = temp(outputs.empty() ? op_type : outputs[0]);
    n.op_type = op_type;
    n.opset = kReaderOnnxOpset;
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    n.attributes = std::move(attrs);
    g_.nodes.push_back(std::move(n));
  }
  Result<DType> out_dtype(const mil::Operation& op, int i = 0) {
    ORCHARD_ASSIGN_OR_RETURN(auto t, tensor_type(op.outputs(i).type(), "output of " + op.type()));
    return t.first;
  }
  Result<std::vector<int64_t>> out_shape(const mil::Operation& op, int i = 0) {
    ORCHARD_ASSIGN_OR_RETURN(auto t, tensor_type(op.outputs(i).type(), "output of " + op.type()));
    return t.second;
  }
  Result<std::vector<int64_t>> in_shape(const mil::Operation& op, const std::string& key);

  Status read_conv(const mil::Operation& op, bool transpose);
  Status read_pool(const mil::Operation& op, bool avg);
  Status read_slice(const mil::Operation& op);
  Status read_pad(const mil::Operation& op);
  Status read_upsample(const mil::Operation& op, bool bilinear);

  const std::vector<std::byte>& weights_;
  std::vector<BlobInfo> blobs_;
  graph::Graph& g_;
  std::map<std::string, Tensor, std::less<>> consts_;          // const op outputs
  std::map<std::string, std::vector<int64_t>, std::less<>> shapes_;  // every var's declared shape
  int temp_ = 0;
};

Result<Tensor> Reader::value_tensor(const mil::Value& v, const std::string& what) {
  ORCHARD_ASSIGN_OR_RETURN(auto type, tensor_type(v.type(), what));
  const auto [dtype, shape] = type;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("[coreml] ", what, ": a constant with an unknown dim");
  }
  Tensor t = Tensor::zeros(dtype, Shape(shape));
  const size_t elem = dtype_size(dtype);
  if (v.has_blobfilevalue()) {
    const BlobDType bt = dtype == DType::float16 ? BlobDType::float16
                         : dtype == DType::float32 ? BlobDType::float32
                         : dtype == DType::int8 ? BlobDType::int8
                         : dtype == DType::uint8 ? BlobDType::uint8
                                                 : BlobDType::int32;
    ORCHARD_ASSIGN_OR_RETURN(BlobInfo b, find_blob(blobs_, v.blobfilevalue().offset(), bt));
    if (b.size != t.nbytes()) return invalid_argument("[coreml] ", what, ": blob holds ", b.size, " bytes, type needs ", t.nbytes());
    if (t.nbytes()) std::memcpy(t.raw_data(), weights_.data() + b.data_offset, b.size);
    return t;
  }
  if (!v.has_immediatevalue() || !v.immediatevalue().has_tensor()) return invalid_argument("[coreml] ", what, ": no tensor value");
  const auto& tv = v.immediatevalue().tensor();
  const int64_t n = t.numel();
  auto count_ok = [&](int64_t got) -> Status {
    if (got != n) return invalid_argument("[coreml] ", what, ": ", got, " values for ", n, " elements");
    return Status::OK();
  };
  if (tv.has_floats() && dtype == DType::float32) {
    ORCHARD_RETURN_IF_ERROR(count_ok(tv.floats().values_size()));
    for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = tv.floats().values(static_cast<int>(i));
  } else if (tv.has_ints() && dtype == DType::int32) {
    ORCHARD_RETURN_IF_ERROR(count_ok(tv.ints().values_size()));
    for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = tv.ints().values(static_cast<int>(i));
  } else if (tv.has_bools() && dtype == DType::boolean) {
    ORCHARD_RETURN_IF_ERROR(count_ok(tv.bools().values_size()));
    for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = tv.bools().values(static_cast<int>(i));
  } else if (tv.has_strings() && dtype == DType::string) {
    ORCHARD_RETURN_IF_ERROR(count_ok(tv.strings().values_size()));
    for (int64_t i = 0; i < n; ++i) t.data<std::string>()[i] = tv.strings().values(static_cast<int>(i));
  } else if (tv.has_bytes() && (dtype == DType::float16 || dtype == DType::int8 || dtype == DType::uint8)) {
    ORCHARD_RETURN_IF_ERROR(count_ok(static_cast<int64_t>(tv.bytes().values().size() / elem)));
    if (tv.bytes().values().size() != t.nbytes()) return invalid_argument("[coreml] ", what, ": byte count mismatch");
    if (t.nbytes()) std::memcpy(t.raw_data(), tv.bytes().values().data(), t.nbytes());
  } else {
    return invalid_argument("[coreml] ", what, ": immediate value's encoding does not match type ", dtype_name(dtype));
  }
  return t;
}

Result<std::string> Reader::var(const mil::Operation& op, const std::string& key) {
  auto it = op.inputs().find(key);
  if (it == op.inputs().end() || it->second.arguments_size() != 1) {
    return invalid_argument("[coreml] op '", op.type(), "': parameter '", key, "' missing or variadic");
  }
  const auto& b = it->second.arguments(0);
  if (b.has_name()) {
    if (!shapes_.count(b.name())) return invalid_argument("[coreml] op '", op.type(), "': '", key, "' reads undefined var '", b.name(), "'");
    return b.name();
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, value_tensor(b.value(), op.type() + "." + key));
  return add_initializer(key, std::move(t));
}

Result<Tensor> Reader::tensor(const mil::Operation& op, const std::string& key) {
  auto it = op.inputs().find(key);
  if (it == op.inputs().end() || it->second.arguments_size() != 1) {
    return invalid_argument("[coreml] op '", op.type(), "': parameter '", key, "' missing or variadic");
  }
  const auto& b = it->second.arguments(0);
  if (b.has_name()) {
    auto c = consts_.find(b.name());
    if (c == consts_.end()) return invalid_argument("[coreml] op '", op.type(), "': '", key, "' must be a compile-time constant");
    return c->second;
  }
  return value_tensor(b.value(), op.type() + "." + key);
}

Result<std::vector<int64_t>> Reader::ints(const mil::Operation& op, const std::string& key) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, tensor(op, key));
  if (t.dtype() != DType::int32) return invalid_argument("[coreml] op '", op.type(), "': '", key, "' is not int32");
  return std::vector<int64_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel());
}

Result<float> Reader::scalar_float(const mil::Operation& op, const std::string& key) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, tensor(op, key));
  if (t.numel() != 1) return invalid_argument("[coreml] op '", op.type(), "': '", key, "' is not a scalar");
  if (t.dtype() == DType::float16) return float16::to_float(t.data<float16>()[0].bits);
  if (t.dtype() == DType::float32) return t.data<float>()[0];
  return invalid_argument("[coreml] op '", op.type(), "': '", key, "' is not a float");
}

Result<bool> Reader::scalar_bool(const mil::Operation& op, const std::string& key) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, tensor(op, key));
  if (t.numel() != 1 || t.dtype() != DType::boolean) return invalid_argument("[coreml] op '", op.type(), "': '", key, "' is not a bool scalar");
  return t.data<bool>()[0];
}

Result<std::string> Reader::scalar_string(const mil::Operation& op, const std::string& key) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, tensor(op, key));
  if (t.numel() != 1 || t.dtype() != DType::string) return invalid_argument("[coreml] op '", op.type(), "': '", key, "' is not a string scalar");
  return t.data<std::string>()[0];
}

Result<std::vector<int64_t>> Reader::in_shape(const mil::Operation& op, const std::string& key) {
  ORCHARD_ASSIGN_OR_RETURN(std::string v, var(op, key));
  auto it = shapes_.find(v);
  if (it != shapes_.end()) return it->second;
  return g_.initializers.at(v).shape().dims();
}

// MIL pad = (begin, end) per spatial dim; ONNX pads = all begins, then all ends.
std::vector<int64_t> onnx_pads(const std::vector<int64_t>& pad) {
  const size_t n = pad.size() / 2;
  std::vector<int64_t> pads(2 * n);
  for (size_t i = 0; i < n; ++i) {
    pads[i] = pad[2 * i];
    pads[i + n] = pad[2 * i + 1];
  }
  return pads;
}

// conv/pool padding: custom → explicit pads; valid, same (extra at the end), same_lower → auto_pad.
Status set_padding(const std::string& pad_type, const std::vector<int64_t>& pad, std::map<std::string, Attribute, std::less<>>& attrs) {
  if (pad_type == "custom") {
    attrs["pads"] = attr_ints(onnx_pads(pad));
  } else if (pad_type == "valid") {
    attrs["auto_pad"] = attr_s("VALID");
  } else if (pad_type == "same") {
    attrs["auto_pad"] = attr_s("SAME_UPPER");
  } else if (pad_type == "same_lower") {
    attrs["auto_pad"] = attr_s("SAME_LOWER");
  } else {
    return invalid_argument("[coreml] pad_type '", pad_type, "'");
  }
  return Status::OK();
}

Tensor int64_tensor(const std::vector<int64_t>& v) { return Tensor::from_vector<int64_t>(Shape{static_cast<int64_t>(v.size())}, v); }

// A scalar of `like`'s float type (ONNX Clip/Add need matching element types).
Tensor float_scalar(float v, DType like) {
  if (like == DType::float16) return Tensor::scalar<float16>(float16(v));
  return Tensor::scalar<float>(v);
}

// MIL op type → ONNX op type for ops whose operands and semantics match one to one.
const std::map<std::string, std::string, std::less<>>& direct_ops() {
  static const std::map<std::string, std::string, std::less<>> m = {
      {"add", "Add"},          {"sub", "Sub"},           {"mul", "Mul"},         {"real_div", "Div"},      {"pow", "Pow"},
      {"maximum", "Max"},      {"minimum", "Min"},       {"equal", "Equal"},     {"less", "Less"},         {"greater", "Greater"},
      {"less_equal", "LessOrEqual"}, {"greater_equal", "GreaterOrEqual"}, {"logical_and", "And"}, {"logical_or", "Or"},
      {"logical_xor", "Xor"},  {"logical_not", "Not"},   {"sqrt", "Sqrt"},       {"exp", "Exp"},           {"erf", "Erf"},
      {"abs", "Abs"},          {"floor", "Floor"},       {"ceil", "Ceil"},       {"sin", "Sin"},           {"cos", "Cos"},
      {"tanh", "Tanh"},        {"sigmoid", "Sigmoid"},   {"relu", "Relu"},       {"softplus", "Softplus"}, {"identity", "Identity"}};
  return m;
}

// Operand names per direct op: binary ops read x, y; unary x; logical_not x.
std::vector<std::string> direct_operands(const std::string& type) {
  static const std::set<std::string> unary = {"logical_not", "sqrt", "exp", "erf", "abs", "floor", "ceil", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "identity"};
  return unary.count(type) ? std::vector<std::string>{"x"} : std::vector<std::string>{"x", "y"};
}

const char* reduce_onnx_op(const std::string& t) {
  if (t == "reduce_mean") return "ReduceMean";
  if (t == "reduce_sum") return "ReduceSum";
  if (t == "reduce_max") return "ReduceMax";
  if (t == "reduce_min") return "ReduceMin";
  if (t == "reduce_prod") return "ReduceProd";
  if (t == "reduce_l1_norm") return "ReduceL1";
  if (t == "reduce_l2_norm") return "ReduceL2";
  if (t == "reduce_sum_square") return "ReduceSumSquare";
  return nullptr;
}


}  // namespace

namespace {

Status Reader::read_conv(const mil::Operation& op, bool transpose) {
  ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
  ORCHARD_ASSIGN_OR_RETURN(std::string w, var(op, "weight"));
  std::vector<std::string> inputs{x, w};
  if (has(op, "bias")) {
    ORCHARD_ASSIGN_OR_RETURN(std::string b, var(op, "bias"));
    inputs.push_back(b);
  }
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> strides, ints(op, "strides"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> dilations, ints(op, "dilations"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> pad, ints(op, "pad"));
  ORCHARD_ASSIGN_OR_RETURN(std::string pad_type, scalar_string(op, "pad_type"));
  ORCHARD_ASSIGN_OR_RETURN(Tensor groups, tensor(op, "groups"));
  std::map<std::string, Attribute, std::less<>> attrs{{"strides", attr_ints(strides)}, {"dilations", attr_ints(dilations)},
                                                       {"group", attr_i(groups.data<int32_t>()[0])}};
  ORCHARD_RETURN_IF_ERROR(set_padding(pad_type, pad, attrs));
  node(transpose ? "ConvTranspose" : "Conv", inputs, {out(op)}, attrs);
  return Status::OK();
}

Status Reader::read_pool(const mil::Operation& op, bool avg) {
  ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, ints(op, "kernel_sizes"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> strides, ints(op, "strides"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> pad, ints(op, "pad"));
  ORCHARD_ASSIGN_OR_RETURN(std::string pad_type, scalar_string(op, "pad_type"));
  ORCHARD_ASSIGN_OR_RETURN(bool ceil_mode, scalar_bool(op, "ceil_mode"));
  std::map<std::string, Attribute, std::less<>> attrs{{"kernel_shape", attr_ints(kernel)}, {"strides", attr_ints(strides)},
                                                       {"ceil_mode", attr_i(ceil_mode)}};
  ORCHARD_RETURN_IF_ERROR(set_padding(pad_type, pad, attrs));
  if (avg) {
    ORCHARD_ASSIGN_OR_RETURN(bool exclude, scalar_bool(op, "exclude_padding_from_average"));
    attrs["count_include_pad"] = attr_i(exclude ? 0 : 1);
  }
  node(avg ? "AveragePool" : "MaxPool", {x}, {out(op)}, attrs);
  return Status::OK();
}

// slice_by_index: numpy-style begin/end/stride per dim; a set mask means "from the start" / "to the
// end" in the stride's direction; squeeze_mask drops the dim (its size must then be 1).
Status Reader::read_slice(const mil::Operation& op) {
  ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> begin, ints(op, "begin"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> end, ints(op, "end"));
  const size_t rank = begin.size();
  std::vector<int64_t> stride(rank, 1);
  if (has(op, "stride")) {
    ORCHARD_ASSIGN_OR_RETURN(stride, ints(op, "stride"));
  }
  auto mask = [&](const char* key) -> Result<std::vector<bool>> {
    std::vector<bool> m(rank, false);
    if (!has(op, key)) return m;
    ORCHARD_ASSIGN_OR_RETURN(Tensor t, tensor(op, key));
    for (int64_t i = 0; i < t.numel() && i < static_cast<int64_t>(rank); ++i) m[i] = t.data<bool>()[i];
    return m;
  };
  ORCHARD_ASSIGN_OR_RETURN(std::vector<bool> begin_mask, mask("begin_mask"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<bool> end_mask, mask("end_mask"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<bool> squeeze_mask, mask("squeeze_mask"));
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  std::vector<int64_t> starts(rank), ends(rank), squeeze;
  for (size_t i = 0; i < rank; ++i) {
    starts[i] = begin_mask[i] ? (stride[i] > 0 ? 0 : kMax) : begin[i];
    ends[i] = end_mask[i] ? (stride[i] > 0 ? kMax : kMin) : end[i];
    if (squeeze_mask[i]) {
      ends[i] = starts[i] + 1;  // one element
      if (ends[i] == 0) ends[i] = kMax;  // begin −1 means the last element
      squeeze.push_back(static_cast<int64_t>(i));
    }
  }
  std::vector<int64_t> axes(rank);
  for (size_t i = 0; i < rank; ++i) axes[i] = static_cast<int64_t>(i);
  const std::string sliced = squeeze.empty() ? out(op) : temp(out(op));
  node("Slice", {x, add_initializer("starts", int64_tensor(starts)), add_initializer("ends", int64_tensor(ends)), add_initializer("axes", int64_tensor(axes)),
                 add_initializer("steps", int64_tensor(stride))},
       {sliced});
  if (!squeeze.empty()) node("Squeeze", {sliced, add_initializer("axes", int64_tensor(squeeze))}, {out(op)});
  return Status::OK();
}

// pad: (begin, end) pairs for the last N dims; modes constant, reflect, replicate.
Status Reader::read_pad(const mil::Operation& op) {
  ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> pairs, ints(op, "pad"));
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> shape, in_shape(op, "x"));
  ORCHARD_ASSIGN_OR_RETURN(std::string mode, scalar_string(op, "mode"));
  const size_t rank = shape.size(), n = pairs.size() / 2;
  if (n > rank) return invalid_argument("[coreml] pad: ", n, " padded dims for rank ", rank);
  std::vector<int64_t> pads(2 * rank, 0);
  for (size_t i = 0; i < n; ++i) {
    pads[rank - n + i] = pairs[2 * i];
    pads[2 * rank - n + i] = pairs[2 * i + 1];
  }
  std::vector<std::string> inputs{x, add_initializer("pads", int64_tensor(pads))};
  if (mode == "constant") {
    ORCHARD_ASSIGN_OR_RETURN(std::string v, var(op, "constant_val"));
    inputs.push_back(v);
  }
  if (mode != "constant" && mode != "reflect" && mode != "replicate") return invalid_argument("[coreml] pad mode '", mode, "'");
  node("Pad", inputs, {out(op)}, {{"mode", attr_s(mode == "replicate" ? "edge" : mode)}});
  return Status::OK();
}

// upsample_nearest_neighbor: out = floor(in·scale), source index floor(i / scale) (asymmetric, floor).
// upsample_bilinear: align_corners → align_corners grid; else half_pixel_centers → half-pixel grid;
// else the asymmetric grid.
Status Reader::read_upsample(const mil::Operation& op, bool bilinear) {
  ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
  ORCHARD_ASSIGN_OR_RETURN(float sh, scalar_float(op, "scale_factor_height"));
  ORCHARD_ASSIGN_OR_RETURN(float sw, scalar_float(op, "scale_factor_width"));
  const std::string scales = add_initializer("scales", Tensor::from_vector<float>(Shape{4}, {1.0f, 1.0f, sh, sw}));
  std::map<std::string, Attribute, std::less<>> attrs;
  if (!bilinear) {
    attrs = {{"mode", attr_s("nearest")}, {"coordinate_transformation_mode", attr_s("asymmetric")}, {"nearest_mode", attr_s("floor")}};
  } else {
    bool align = false, half = false;
    if (has(op, "align_corners")) {
      ORCHARD_ASSIGN_OR_RETURN(align, scalar_bool(op, "align_corners"));
    }
    if (has(op, "half_pixel_centers")) {
      ORCHARD_ASSIGN_OR_RETURN(half, scalar_bool(op, "half_pixel_centers"));
    }
    attrs = {{"mode", attr_s("linear")}, {"coordinate_transformation_mode", attr_s(align ? "align_corners" : half ? "half_pixel" : "asymmetric")}};
  }
  node("Resize", {x, "", scales}, {out(op)}, attrs);
  return Status::OK();
}

Status Reader::read_op(const mil::Operation& op) {
  const std::string& t = op.type();
  if (op.outputs_size() < 1) return invalid_argument("[coreml] op '", t, "' has no outputs");
  for (int i = 0; i < op.outputs_size(); ++i) {
    ORCHARD_ASSIGN_OR_RETURN(auto type, tensor_type(op.outputs(i).type(), "output '" + op.outputs(i).name() + "'"));
    if (shapes_.count(op.outputs(i).name())) return invalid_argument("[coreml] var '", op.outputs(i).name(), "' defined twice");
    shapes_[op.outputs(i).name()] = type.second;
  }
  if (t == "const") {
    auto it = op.attributes().find("val");
    if (it == op.attributes().end()) return invalid_argument("[coreml] const '", out(op), "' has no val");
    ORCHARD_ASSIGN_OR_RETURN(Tensor v, value_tensor(it->second, "const '" + out(op) + "'"));
    consts_[out(op)] = v;
    g_.initializers[out(op)] = v;
    return Status::OK();
  }
  if (auto d = direct_ops().find(t); d != direct_ops().end()) {
    std::vector<std::string> inputs;
    for (const auto& key : direct_operands(t)) {
      ORCHARD_ASSIGN_OR_RETURN(std::string v, var(op, key));
      inputs.push_back(v);
    }
    node(d->second, inputs, {out(op)});
    return Status::OK();
  }
  if (t == "not_equal") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::string y, var(op, "y"));
    const std::string eq = temp(out(op));
    node("Equal", {x, y}, {eq});
    node("Not", {eq}, {out(op)});
    return Status::OK();
  }
  if (t == "cast") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::string to, scalar_string(op, "dtype"));
    const std::map<std::string, int, std::less<>> types = {{"fp16", 10}, {"fp32", 1}, {"int32", 6}, {"bool", 9}, {"int8", 3}, {"uint8", 2}};
    auto it = types.find(to);
    if (it == types.end()) return invalid_argument("[coreml] cast to '", to, "'");
    node("Cast", {x}, {out(op)}, {{"to", attr_i(it->second)}});
    return Status::OK();
  }
  if (t == "select") {
    ORCHARD_ASSIGN_OR_RETURN(std::string c, var(op, "cond"));
    ORCHARD_ASSIGN_OR_RETURN(std::string a, var(op, "a"));
    ORCHARD_ASSIGN_OR_RETURN(std::string b, var(op, "b"));
    node("Where", {c, a, b}, {out(op)});
    return Status::OK();
  }
  if (t == "log") {  // log(x + epsilon)
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::string eps, var(op, "epsilon"));
    const std::string sum = temp(out(op));
    node("Add", {x, eps}, {sum});
    node("Log", {sum}, {out(op)});
    return Status::OK();
  }
  if (t == "leaky_relu" || t == "elu") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(float alpha, scalar_float(op, "alpha"));
    node(t == "elu" ? "Elu" : "LeakyRelu", {x}, {out(op)}, {{"alpha", attr_f(alpha)}});
    return Status::OK();
  }
  if (t == "sigmoid_hard") {  // min(max(alpha·x + beta, 0), 1)
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(float alpha, scalar_float(op, "alpha"));
    ORCHARD_ASSIGN_OR_RETURN(float beta, scalar_float(op, "beta"));
    node("HardSigmoid", {x}, {out(op)}, {{"alpha", attr_f(alpha)}, {"beta", attr_f(beta)}});
    return Status::OK();
  }
  if (t == "clip") {  // min(max(x, alpha), beta)
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(float lo, scalar_float(op, "alpha"));
    ORCHARD_ASSIGN_OR_RETURN(float hi, scalar_float(op, "beta"));
    ORCHARD_ASSIGN_OR_RETURN(DType d, out_dtype(op));
    node("Clip", {x, add_initializer("lo", float_scalar(lo, d)), add_initializer("hi", float_scalar(hi, d))}, {out(op)});
    return Status::OK();
  }
  if (t == "softmax") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axis, ints(op, "axis"));
    node("Softmax", {x}, {out(op)}, {{"axis", attr_i(axis.at(0))}});
    return Status::OK();
  }
  if (t == "matmul") {
    std::vector<std::string> operands;
    for (const char* key : {"x", "y"}) {
      ORCHARD_ASSIGN_OR_RETURN(std::string v, var(op, key));
      ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> shape, in_shape(op, key));
      bool transpose = false;
      const std::string flag = std::string("transpose_") + key;
      if (has(op, flag)) {
        ORCHARD_ASSIGN_OR_RETURN(transpose, scalar_bool(op, flag));
      }
      if (transpose) {  // swap the last two dims
        std::vector<int64_t> perm(shape.size());
        for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
        std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
        const std::string tv = temp(v);
        node("Transpose", {v}, {tv}, {{"perm", attr_ints(perm)}});
        v = tv;
      }
      operands.push_back(v);
    }
    node("MatMul", operands, {out(op)});
    return Status::OK();
  }
  if (t == "linear") {  // x · weightᵀ + bias, weight [D_out, D_in]
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::string w, var(op, "weight"));
    const std::string wt = temp(w), mm = temp(out(op));
    node("Transpose", {w}, {wt}, {{"perm", attr_ints({1, 0})}});
    if (!has(op, "bias")) {
      node("MatMul", {x, wt}, {out(op)});
      return Status::OK();
    }
    ORCHARD_ASSIGN_OR_RETURN(std::string b, var(op, "bias"));
    node("MatMul", {x, wt}, {mm});
    node("Add", {mm, b}, {out(op)});
    return Status::OK();
  }
  if (t == "conv" || t == "conv_transpose") return read_conv(op, t == "conv_transpose");
  if (t == "max_pool" || t == "avg_pool") return read_pool(op, t == "avg_pool");
  if (const char* r = reduce_onnx_op(t)) {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ints(op, "axes"));
    bool keep = false;  // MIL's default, unlike ONNX's
    if (has(op, "keep_dims")) {
      ORCHARD_ASSIGN_OR_RETURN(keep, scalar_bool(op, "keep_dims"));
    }
    if (std::string(r) == "ReduceSum") {
      node(r, {x, add_initializer("axes", int64_tensor(axes))}, {out(op)}, {{"keepdims", attr_i(keep)}});
    } else {
      node(r, {x}, {out(op)}, {{"axes", attr_ints(axes)}, {"keepdims", attr_i(keep)}});
    }
    return Status::OK();
  }
  if (t == "reduce_argmax" || t == "reduce_argmin") {  // int32 indices
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axis, ints(op, "axis"));
    bool keep = false;
    if (has(op, "keep_dims")) {
      ORCHARD_ASSIGN_OR_RETURN(keep, scalar_bool(op, "keep_dims"));
    }
    const std::string idx = temp(out(op));
    node(t == "reduce_argmax" ? "ArgMax" : "ArgMin", {x}, {idx}, {{"axis", attr_i(axis.at(0))}, {"keepdims", attr_i(keep)}});
    node("Cast", {idx}, {out(op)}, {{"to", attr_i(6)}});
    return Status::OK();
  }
  if (t == "batch_norm") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::string mean, var(op, "mean"));
    ORCHARD_ASSIGN_OR_RETURN(std::string variance, var(op, "variance"));
    ORCHARD_ASSIGN_OR_RETURN(std::string gamma, var(op, "gamma"));
    ORCHARD_ASSIGN_OR_RETURN(std::string beta, var(op, "beta"));
    ORCHARD_ASSIGN_OR_RETURN(float eps, scalar_float(op, "epsilon"));
    node("BatchNormalization", {x, gamma, beta, mean, variance}, {out(op)}, {{"epsilon", attr_f(eps)}});
    return Status::OK();
  }
  if (t == "instance_norm") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::string gamma, var(op, "gamma"));
    ORCHARD_ASSIGN_OR_RETURN(std::string beta, var(op, "beta"));
    ORCHARD_ASSIGN_OR_RETURN(float eps, scalar_float(op, "epsilon"));
    node("InstanceNormalization", {x, gamma, beta}, {out(op)}, {{"epsilon", attr_f(eps)}});
    return Status::OK();
  }
  if (t == "layer_norm") {  // normalizes over `axes`; gamma/beta have shape x.shape[axes]
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> shape, in_shape(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ints(op, "axes"));
    ORCHARD_ASSIGN_OR_RETURN(float eps, scalar_float(op, "epsilon"));
    const int64_t rank = static_cast<int64_t>(shape.size());
    for (auto& a : axes) a = a < 0 ? a + rank : a;
    for (size_t i = 0; i < axes.size(); ++i) {
      if (axes[i] != rank - static_cast<int64_t>(axes.size()) + static_cast<int64_t>(i)) {
        return unsupported("[coreml] layer_norm over non-trailing axes is not read");
      }
    }
    std::vector<std::string> inputs{x};
    ORCHARD_ASSIGN_OR_RETURN(std::string gamma, var(op, "gamma"));
    inputs.push_back(gamma);
    if (has(op, "beta")) {
      ORCHARD_ASSIGN_OR_RETURN(std::string beta, var(op, "beta"));
      inputs.push_back(beta);
    }
    node("LayerNormalization", inputs, {out(op)}, {{"axis", attr_i(rank - static_cast<int64_t>(axes.size()))}, {"epsilon", attr_f(eps)}});
    return Status::OK();
  }
  if (t == "reshape") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ints(op, "shape"));
    node("Reshape", {x, add_initializer("shape", int64_tensor(shape))}, {out(op)});
    return Status::OK();
  }
  if (t == "transpose") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> perm, ints(op, "perm"));
    node("Transpose", {x}, {out(op)}, {{"perm", attr_ints(perm)}});
    return Status::OK();
  }
  if (t == "concat") {
    auto it = op.inputs().find("values");
    if (it == op.inputs().end()) return invalid_argument("[coreml] concat without values");
    std::vector<std::string> values;
    for (const auto& b : it->second.arguments()) {
      if (b.has_name()) {
        values.push_back(b.name());
      } else {
        ORCHARD_ASSIGN_OR_RETURN(Tensor v, value_tensor(b.value(), "concat value"));
        values.push_back(add_initializer("value", v));
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axis, ints(op, "axis"));
    if (has(op, "interleave")) {
      ORCHARD_ASSIGN_OR_RETURN(bool interleave, scalar_bool(op, "interleave"));
      if (interleave) return unsupported("[coreml] concat with interleave is not read");
    }
    node("Concat", values, {out(op)}, {{"axis", attr_i(axis.at(0))}});
    return Status::OK();
  }
  if (t == "split") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> sizes, ints(op, "split_sizes"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axis, ints(op, "axis"));
    std::vector<std::string> outs;
    for (const auto& o : op.outputs()) outs.push_back(o.name());
    node("Split", {x, add_initializer("split", int64_tensor(sizes))}, outs, {{"axis", attr_i(axis.at(0))}});
    return Status::OK();
  }
  if (t == "slice_by_index") return read_slice(op);
  if (t == "gather" || t == "gather_along_axis") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::string idx, var(op, "indices"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axis, ints(op, "axis"));
    if (has(op, "batch_dims")) {
      ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> bd, ints(op, "batch_dims"));
      if (bd.at(0) != 0) return unsupported("[coreml] gather with batch_dims ", bd[0], " is not read");
    }
    node(t == "gather" ? "Gather" : "GatherElements", {x, idx}, {out(op)}, {{"axis", attr_i(axis.at(0))}});
    return Status::OK();
  }
  if (t == "tile") {
    ORCHARD_ASSIGN_OR_RETURN(std::string x, var(op, "x"));
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> reps, ints(op, "reps"));
    node("Tile", {x, add_initializer("reps", int64_tensor(reps))}, {out(op)});
    return Status::OK();
  }
  if (t == "pad") return read_pad(op);
  if (t == "upsample_nearest_neighbor") return read_upsample(op, false);
  if (t == "upsample_bilinear") return read_upsample(op, true);
  return unsupported("[coreml] MIL op '", t, "' is not read");
}

}  // namespace

Result<graph::Graph> read_program(const Package& pkg, ProgramInfo* info) {
  CoreML::Specification::Model model;
  if (!model.ParseFromString(pkg.model)) return invalid_argument("[coreml] model.mlmodel does not parse as CoreML.Specification.Model");
  if (!model.has_mlprogram()) return unsupported("[coreml] the model is not an ML Program");
  const auto& program = model.mlprogram();
  auto fit = program.functions().find("main");
  if (fit == program.functions().end()) return invalid_argument("[coreml] the program has no 'main' function");
  const mil::Function& fn = fit->second;
  auto bit = fn.block_specializations().find(fn.opset());
  if (bit == fn.block_specializations().end()) return invalid_argument("[coreml] no block for the function's opset '", fn.opset(), "'");
  const mil::Block& block = bit->second;
  const auto& user = model.description().metadata().userdefined();
  auto onnx_name = [&](const std::string& feature) {
    auto it = user.find("orchard.onnx_name." + feature);
    return it == user.end() ? feature : it->second;
  };

  graph::Graph g;
  g.name = "coreml_main";
  Reader reader(pkg.weights, g);
  ORCHARD_RETURN_IF_ERROR(reader.init());
  for (const auto& in : fn.inputs()) {
    ORCHARD_ASSIGN_OR_RETURN(auto type, tensor_type(in.type(), "input '" + in.name() + "'"));
    ValueInfo vi;
    vi.name = in.name();
    vi.dtype = type.first;
    vi.has_shape = true;
    for (int64_t d : type.second) vi.shape.push_back(Dim{d, d < 0 ? "d" + std::to_string(vi.shape.size()) + "_" + in.name() : ""});
    g.inputs.push_back(vi);
    reader.declare(in.name(), type.second);
  }
  if (info) {
    info->specification_version = model.specificationversion();
    info->opset = fn.opset();
    info->operations = block.operations_size();
  }
  for (const auto& op : block.operations()) {
    ORCHARD_RETURN_IF_ERROR(reader.read_op(op));
    if (!info) continue;
    info->op_counts[op.type()]++;
    if (op.type() == "const") continue;
    for (const auto& o : op.outputs()) {
      ORCHARD_ASSIGN_OR_RETURN(auto type, tensor_type(o.type(), o.name()));
      info->declared[o.name()] = type;
    }
  }
  std::map<std::string, std::pair<DType, std::vector<int64_t>>, std::less<>> out_types;
  for (const auto& op : block.operations()) {
    for (const auto& o : op.outputs()) {
      ORCHARD_ASSIGN_OR_RETURN(out_types[o.name()], tensor_type(o.type(), o.name()));
    }
  }
  for (const auto& name : block.outputs()) {
    auto it = out_types.find(name);
    if (it == out_types.end()) return invalid_argument("[coreml] block output '", name, "' is not defined by any op");
    ValueInfo vi;
    vi.name = name;
    vi.dtype = it->second.first;
    vi.has_shape = true;
    for (int64_t d : it->second.second) vi.shape.push_back(Dim{d, ""});
    g.outputs.push_back(vi);
  }
  // Restore the ONNX names the converter recorded for the features.
  std::map<std::string, std::string> rename;
  for (auto& v : g.inputs) rename[v.name] = onnx_name(v.name);
  for (auto& v : g.outputs) rename[v.name] = onnx_name(v.name);
  auto apply = [&](std::string& n) {
    if (auto it = rename.find(n); it != rename.end()) n = it->second;
  };
  for (auto& v : g.inputs) apply(v.name);
  for (auto& v : g.outputs) apply(v.name);
  for (auto& n : g.nodes) {
    for (auto& i : n.inputs) apply(i);
    for (auto& o : n.outputs) apply(o);
  }
  return g;
}

}  // namespace orchard::coreml
