#include "backends/coreml/converter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "backends/coreml/mil_builder.hpp"
#include "backends/coreml/op_builder.hpp"


namespace orchard::coreml {

namespace {

bool value_dtype_ok(DType t) {
  return t == DType::float32 || t == DType::float16 || t == DType::int64 || t == DType::int32 || t == DType::boolean;
}

// True when a float constant holds a finite value outside fp16's range (it would become infinity).
bool overflows_fp16(const Tensor& t) {
  if (t.dtype() != DType::float32) return false;
  const float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (std::isfinite(p[i]) && std::fabs(p[i]) > 65504.0f) return true;
  }
  return false;
}

bool int64_fits_int32(const Tensor& t) {
  if (t.dtype() != DType::int64) return true;
  const int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (p[i] < std::numeric_limits<int32_t>::min() || p[i] > std::numeric_limits<int32_t>::max()) return false;
  }
  return true;
}

// Ops whose builders compute in fp32 around a constant that overflows fp16 (see ops_elementwise.cpp).
bool handles_fp16_overflow(const std::string& op) {
  static const std::set<std::string, std::less<>> ops = {"Add", "Sub", "Mul", "Div", "Where", "Max", "Min"};
  return ops.count(op) > 0;
}

Status check_value(const graph::Graph& g, const std::string& name) {
  ORCHARD_ASSIGN_OR_RETURN(TensorDesc d, find_desc(g, name));
  if (!value_dtype_ok(d.dtype)) return unsupported("value '", name, "' has dtype ", dtype_name(d.dtype), " (MIL: fp16, fp32, int32, bool)");
  if (d.rank() > kMaxRank) return unsupported("value '", name, "' has rank ", d.rank(), " > ", kMaxRank);
  for (int64_t dim : d.shape) {
    if (dim == 0) return unsupported("value '", name, "' has a zero dim");
    if (dim > kMaxDim) return unsupported("value '", name, "' has dim ", dim, " > ", kMaxDim);
  }
  return Status::OK();
}

// Feature (I/O) types: float → fp32 (fp16 programs cast inside); int64, int32 and bool → int32 (Core ML
// features have neither int64 nor bool; bool is cast inside the program).
mil::DataType io_type(DType t) { return (t == DType::float32 || t == DType::float16) ? mil::FLOAT32 : mil::INT32; }

CoreML::Specification::ArrayDataType feature_type(mil::DataType t) {
  return t == mil::FLOAT32 ? CoreML::Specification::FLOAT32 : CoreML::Specification::INT32;
}

}  // namespace

int specification_version(Target t) { return t == Target::macos13 ? 7 : t == Target::macos14 ? 8 : 9; }
const char* opset_name(Target t) { return t == Target::macos13 ? "CoreML6" : t == Target::macos14 ? "CoreML7" : "CoreML8"; }
const char* target_name(Target t) { return t == Target::macos13 ? "macos13" : t == Target::macos14 ? "macos14" : "macos15"; }

Result<Target> parse_target(const std::string& s) {
  for (Target t : {Target::macos13, Target::macos14, Target::macos15}) {
    if (s == target_name(t)) return t;
  }
  return invalid_argument("[coreml] unknown deployment target '", s, "' (macos13, macos14, macos15)");
}

Result<TensorDesc> out_desc(const graph::Node& node, ConvertContext& ctx, size_t i) {
  return ctx.desc(node.outputs.at(i));
}

Result<int64_t> normalize_axis(const graph::Node& node, int64_t axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= std::max<int64_t>(r, 1)) return invalid_argument("[coreml] ", node.label(), ": axis ", axis, " out of range for rank ", rank);
  return axis < 0 ? axis + r : axis;
}

Result<std::vector<int64_t>> const_ints(const graph::Node& node, const graph::Graph& graph, size_t i) {
  const Tensor* t = node.has_input(i) ? find_constant(graph, node.inputs[i]) : nullptr;
  if (!t) return unsupported("input ", i, " of ", node.label(), " is not a constant");
  std::vector<int64_t> out;
  for (int64_t k = 0; k < t->numel(); ++k) {
    if (t->dtype() == DType::int64) out.push_back(t->data<int64_t>()[k]);
    else if (t->dtype() == DType::int32) out.push_back(t->data<int32_t>()[k]);
    else return unsupported("input ", i, " of ", node.label(), " is ", dtype_name(t->dtype()), ", not integers");
  }
  return out;
}

Status require_const(const graph::Node& node, const graph::Graph& graph, size_t i, const char* what) {
  if (node.has_input(i) && find_constant(graph, node.inputs[i])) return Status::OK();
  return unsupported(what, " must be a constant (Core ML needs it at compile time)");
}

Status check_node(const graph::Graph& graph, const graph::Node& node, const ConvertOptions& options) {
  if (!node.domain.empty() && node.domain != "ai.onnx") return unsupported("domain '", node.domain, "' is not converted");
  const OpBuilder* b = find_op_builder(node.op_type, node.opset);
  if (!b) return unsupported("no Core ML builder for ", node.op_type, " at opset ", node.opset);
  if (!node.implicit_inputs.empty()) return unsupported("subgraphs are not converted");
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (node.inputs[i].empty() || !is_data_input(node, i)) continue;
    ORCHARD_RETURN_IF_ERROR(check_value(graph, node.inputs[i]));
    if (const Tensor* t = find_constant(graph, node.inputs[i])) {
      if (options.precision == Precision::fp16 && overflows_fp16(*t) && !handles_fp16_overflow(node.op_type)) {
        return unsupported("constant '", node.inputs[i], "' exceeds the fp16 range and ", node.op_type, " has no fp32 fallback");
      }
      if (!int64_fits_int32(*t) && node.op_type != "Slice") return unsupported("int64 constant '", node.inputs[i], "' does not fit int32");
    }
  }
  for (const auto& o : node.outputs) {
    if (!o.empty()) ORCHARD_RETURN_IF_ERROR(check_value(graph, o));
  }
  return b->check ? b->check(node, graph, options) : Status::OK();
}

Capability get_capability(const graph::Graph& graph, const ConvertOptions& options) {
  const size_t n = graph.nodes.size();
  Capability cap;
  cap.claimed.assign(n, false);
  cap.reasons.assign(n, "");
  for (size_t i = 0; i < n; ++i) {
    Status s = check_node(graph, graph.nodes[i], options);
    cap.claimed[i] = s.ok();
    if (!s.ok()) cap.reasons[i] = s.message();
  }
  // Kahn walk: take every ready claimed node before any unclaimed one; a group closes only when no
  // claimed node is ready, so no path leaves a group and re-enters it (each group is convex).
  std::map<std::string, size_t, std::less<>> producer;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& o : graph.nodes[i].outputs) {
      if (!o.empty()) producer[o] = i;
    }
  }
  std::vector<std::vector<size_t>> consumers(n);
  std::vector<int> pending(n, 0);
  for (size_t i = 0; i < n; ++i) {
    std::set<size_t> deps;
    for (const auto& in : graph.nodes[i].inputs) {
      if (auto it = producer.find(in); !in.empty() && it != producer.end()) deps.insert(it->second);
    }
    for (const auto& in : graph.nodes[i].implicit_inputs) {
      if (auto it = producer.find(in); it != producer.end()) deps.insert(it->second);
    }
    pending[i] = static_cast<int>(deps.size());
    for (size_t d : deps) consumers[d].push_back(i);
  }
  std::set<size_t> ready_claimed, ready_other;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) (cap.claimed[i] ? ready_claimed : ready_other).insert(i);
  }
  auto finish = [&](size_t i) {
    for (size_t c : consumers[i]) {
      if (--pending[c] == 0) (cap.claimed[c] ? ready_claimed : ready_other).insert(c);
    }
  };
  std::vector<size_t> group;
  while (!ready_claimed.empty() || !ready_other.empty()) {
    if (!ready_claimed.empty()) {
      const size_t i = *ready_claimed.begin();
      ready_claimed.erase(ready_claimed.begin());
      group.push_back(i);
      finish(i);
      continue;
    }
    if (!group.empty()) {
      cap.partitions.push_back(std::move(group));
      group.clear();
    }
    const std::set<size_t> batch = std::move(ready_other);
    ready_other.clear();
    for (size_t i : batch) finish(i);
  }
  if (!group.empty()) cap.partitions.push_back(std::move(group));
  return cap;
}

Result<Converted> convert(const graph::Graph& graph, std::span<const size_t> nodes, const ConvertOptions& options) {
  if (nodes.empty()) return invalid_argument("[coreml] convert: no nodes");
  std::set<std::string, std::less<>> produced;
  std::set<size_t> inside(nodes.begin(), nodes.end());
  Converted result;
  for (size_t i : nodes) {
    if (i >= graph.nodes.size()) return invalid_argument("[coreml] convert: node index ", i, " out of range");
    const graph::Node& node = graph.nodes[i];
    Status s = check_node(graph, node, options);
    if (!s.ok()) return s.with_prefix("[coreml] " + node.label() + ": ");
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const std::string& in = node.inputs[k];
      if (in.empty() || !is_data_input(node, k) || produced.count(in) || find_constant(graph, in)) continue;
      if (std::find(result.inputs.begin(), result.inputs.end(), in) == result.inputs.end()) result.inputs.push_back(in);
    }
    for (const auto& o : node.outputs) {
      if (!o.empty()) produced.insert(o);
    }
  }
  // Outputs: values made here that a node outside the set or the graph's outputs read.
  std::set<std::string, std::less<>> needed;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (inside.count(i)) continue;
    for (const auto& in : graph.nodes[i].inputs) needed.insert(in);
    for (const auto& in : graph.nodes[i].implicit_inputs) needed.insert(in);
  }
  for (const auto& o : graph.outputs) needed.insert(o.name);
  for (size_t i : nodes) {
    for (const auto& o : graph.nodes[i].outputs) {
      if (!o.empty() && needed.count(o)) result.outputs.push_back(o);
    }
  }
  if (result.outputs.empty()) return invalid_argument("[coreml] convert: the nodes produce no value anyone reads");
  // Core ML refuses models without inputs (research §2); such node sets read only constants and fold away.
  if (result.inputs.empty()) return unsupported("[coreml] convert: the nodes read no input (a Core ML model needs one)");

  CoreML::Specification::Model model;
  model.set_specificationversion(specification_version(options.target));
  auto* program = model.mutable_mlprogram();
  program->set_version(1);
  mil::Function& fn = (*program->mutable_functions())["main"];
  fn.set_opset(opset_name(options.target));
  mil::Block& block = (*fn.mutable_block_specializations())[opset_name(options.target)];
  BlobWriter blobs;
  ConvertContext ctx(graph, options, block, blobs);
  auto* description = model.mutable_description();
  auto* meta = description->mutable_metadata();
  meta->set_author("Orchard");
  meta->set_shortdescription("Converted from ONNX graph '" + graph.name + "' by orchard");
  auto& user = *meta->mutable_userdefined();
  user["orchard.precision"] = options.precision == Precision::fp16 ? "fp16" : "fp32";

  auto add_feature = [&](google::protobuf::RepeatedPtrField<CoreML::Specification::FeatureDescription>* list,
                         const std::string& feature, mil::DataType t, const std::vector<int64_t>& shape) {
    auto* f = list->Add();
    f->set_name(feature);
    auto* arr = f->mutable_type()->mutable_multiarraytype();
    arr->set_datatype(feature_type(t));
    for (int64_t d : shape) arr->add_shape(d);
  };
  std::vector<std::string> out_features;
  for (const auto& o : result.outputs) {
    out_features.push_back(ctx.fresh_name(o));  // reserved before any op can take the name
  }
  for (const auto& in : result.inputs) {
    ORCHARD_ASSIGN_OR_RETURN(TensorDesc d, find_desc(graph, in));
    const mil::DataType t = io_type(d.dtype);
    const std::string feature = ctx.fresh_name(in);
    auto* fi = fn.add_inputs();
    fi->set_name(feature);
    *fi->mutable_type() = tensor_value_type(t, d.shape);
    add_feature(description->mutable_input(), feature, t, d.shape);
    user["orchard.onnx_name." + feature] = in;
    result.input_features.push_back(feature);
    Var v{feature, t, d.shape};
    const mil::DataType natural = mil_type_for(d.dtype, options.precision);
    ctx.bind(in, natural == t ? v : ctx.cast(v, natural));
  }
  for (size_t i : nodes) {
    const graph::Node& node = graph.nodes[i];
    const OpBuilder* b = find_op_builder(node.op_type, node.opset);
    Status s = b->build(node, ctx);
    if (!s.ok()) return s.with_prefix("[coreml] " + node.label() + ": ");
  }
  for (size_t k = 0; k < result.outputs.size(); ++k) {
    const std::string& o = result.outputs[k];
    ORCHARD_ASSIGN_OR_RETURN(TensorDesc d, find_desc(graph, o));
    const mil::DataType t = io_type(d.dtype);
    ORCHARD_ASSIGN_OR_RETURN(Var v, ctx.input(o));
    // The feature's var is named exactly like the feature: a cast, or an identity when no cast is needed.
    const std::string& feature = out_features[k];
    const Params params = v.dtype == t ? Params{{"x", v.name}} : Params{{"x", v.name}, {"dtype", string_value(mil_type_string(t))}};
    ctx.op_named(feature, v.dtype == t ? "identity" : "cast", params, t, d.shape);
    block.add_outputs(feature);
    add_feature(description->mutable_output(), feature, t, d.shape);
    user["orchard.onnx_name." + feature] = o;
    result.output_features.push_back(feature);
  }
  ORCHARD_ASSIGN_OR_RETURN(result.package.model, serialize_model(model));
  result.package.weights = blobs.bytes();
  result.operations = ctx.operations();
  return result;
}

}  // namespace orchard::coreml
