#include "onnx/importer.hpp"

#include <new>
#include <set>
#include <unordered_map>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include "core/file_read.hpp"
#include "onnx/inference_guard.hpp"
#include "onnx/proto_convert.hpp"

namespace orchard::onnx_import {

namespace {

constexpr int kMaxFunctionDepth = 8;

using TypeMap = std::unordered_map<std::string, onnx::TypeProto>;

// State of one import: options, the folder for external data, inferred types for function expansion.
class Importer {
 public:
  Importer(const ImportOptions& options, std::filesystem::path base_dir)
      : options_(options), base_dir_(std::move(base_dir)) {}

  Result<graph::Model> import(onnx::ModelProto& proto);

 private:
  Result<std::shared_ptr<graph::Graph>> convert_graph(const onnx::GraphProto& g, bool top_level);
  Status convert_node(const onnx::NodeProto& n, int opset, int depth, graph::Graph& out);
  Status expand_function(const onnx::NodeProto& n, int opset, int depth, const onnx::OpSchema& schema, graph::Graph& out);
  Result<graph::Attribute> convert_attribute(const onnx::AttributeProto& a, const std::string& node_label);
  Status add_constant(const onnx::NodeProto& n, graph::Graph& out);
  void collect_types(const onnx::GraphProto& g);
  int opset_of(const std::string& domain) const;

  const ImportOptions& options_;
  std::filesystem::path base_dir_;
  std::map<std::string, int, std::less<>> opsets_;
  TypeMap types_;
  int unnamed_ = 0;
  std::map<std::string, Tensor, std::less<>> top_initializers_;  // converted before convert_graph (see import)
};

std::string node_label(const onnx::NodeProto& n) { return "node '" + n.name() + "' (" + n.op_type() + ")"; }

// Returns the names `g` reads that it does not define (its nodes' inputs and implicit inputs).
std::set<std::string> free_names(const graph::Graph& g) {
  std::set<std::string> defined, free;
  for (const auto& i : g.inputs) defined.insert(i.name);
  for (const auto& [name, t] : g.initializers) defined.insert(name);
  auto use = [&](const std::string& name) {
    if (!name.empty() && !defined.count(name)) free.insert(name);
  };
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) use(in);
    for (const auto& in : n.implicit_inputs) use(in);
    for (const auto& out : n.outputs) defined.insert(out);
  }
  for (const auto& o : g.outputs) use(o.name);
  return free;
}

// Applies `mapped` to the names `g` (a subgraph of a function body) reads but does not define,
// recursing into its own subgraphs. `defined` holds the names defined by enclosing subgraphs.
template <class Map>
void rename_free_names(onnx::GraphProto& g, std::set<std::string> defined, Map& mapped) {
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (const auto& t : g.sparse_initializer()) defined.insert(t.values().name());
  for (auto& node : *g.mutable_node()) {
    for (auto& in : *node.mutable_input()) {
      if (!in.empty() && !defined.count(in)) in = mapped(in);
    }
    for (auto& a : *node.mutable_attribute()) {
      if (a.has_g()) rename_free_names(*a.mutable_g(), defined, mapped);
      for (auto& sg : *a.mutable_graphs()) rename_free_names(sg, defined, mapped);
    }
    for (const auto& o : node.output()) defined.insert(o);
  }
  for (auto& o : *g.mutable_output()) {
    if (!defined.count(o.name())) o.set_name(mapped(o.name()));
  }
}

// True when `t` is or holds (as a sequence, optional or map element) a sparse tensor type.
bool holds_sparse_type(const onnx::TypeProto& t) {
  switch (t.value_case()) {
    case onnx::TypeProto::kSparseTensorType: return true;
    case onnx::TypeProto::kSequenceType: return holds_sparse_type(t.sequence_type().elem_type());
    case onnx::TypeProto::kOptionalType: return holds_sparse_type(t.optional_type().elem_type());
    case onnx::TypeProto::kMapType: return holds_sparse_type(t.map_type().value_type());
    default: return false;
  }
}

// Refuses sparse tensor types on the values `g` and its subgraphs declare (inputs, outputs, value_info). Orchard
// takes sparse tensors only as initializers and Constant values (made dense); libonnx 1.12's inference functions
// read a declared sparse type as an empty dense shape and dereference dims that are not there.
Status refuse_sparse_types(const onnx::GraphProto& g) {
  for (const auto* list : {&g.input(), &g.output(), &g.value_info()}) {
    for (const auto& v : *list) {
      if (v.has_type() && holds_sparse_type(v.type())) {
        return unsupported("[onnx] value '", v.name(), "' of graph '", g.name(),
                           "' has a sparse tensor type; Orchard takes sparse tensors only as initializers and "
                           "Constant values");
      }
    }
  }
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_g()) ORCHARD_RETURN_IF_ERROR(refuse_sparse_types(a.g()));
      for (const auto& sub : a.graphs()) ORCHARD_RETURN_IF_ERROR(refuse_sparse_types(sub));
    }
  }
  return Status::OK();
}

// Checks that the raw bytes of one tensor match its dims and element type. libonnx 1.12's ParseData, which shape
// inference calls on Constant values and initializers (Reshape's shape, Tile's repeats, ...), copies all of
// raw_data into a vector sized by raw_data's length divided by the element size, and overruns it when the
// length is not a multiple.
Status check_raw_data_size(const onnx::TensorProto& t, const std::string& where) {
  if (!t.has_raw_data()) return Status::OK();
  auto dtype = dtype_from_onnx(t.data_type());
  if (!dtype.ok() || *dtype == DType::string) return Status::OK();  // refused or read later, with its own message
  int64_t numel = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || __builtin_mul_overflow(numel, d, &numel)) {
      return invalid_argument("[onnx] ", where, ": dims ", Shape(std::vector<int64_t>(t.dims().begin(), t.dims().end())).to_string(),
                              " are negative or too large");
    }
  }
  const uint64_t need = static_cast<uint64_t>(numel) * dtype_size(*dtype);
  if (numel > (int64_t{1} << 56) || t.raw_data().size() != need) {
    return invalid_argument("[onnx] ", where, ": raw_data has ", t.raw_data().size(), " bytes, but dims ",
                            Shape(std::vector<int64_t>(t.dims().begin(), t.dims().end())).to_string(), " of ",
                            dtype_name(*dtype), " need ", need);
  }
  return Status::OK();
}

// check_raw_data_size for every tensor of `g` and its subgraphs: initializers, sparse initializers and tensor
// attributes (Constant values), before the checker and shape inference read them.
Status check_raw_data_sizes(const onnx::GraphProto& g) {
  for (const auto& t : g.initializer()) ORCHARD_RETURN_IF_ERROR(check_raw_data_size(t, "initializer '" + t.name() + "'"));
  for (const auto& s : g.sparse_initializer()) {
    ORCHARD_RETURN_IF_ERROR(check_raw_data_size(s.values(), "sparse initializer '" + s.values().name() + "' values"));
    ORCHARD_RETURN_IF_ERROR(check_raw_data_size(s.indices(), "sparse initializer '" + s.values().name() + "' indices"));
  }
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      const std::string where = "node '" + n.name() + "' (" + n.op_type() + ") attribute '" + a.name() + "'";
      if (a.has_t()) ORCHARD_RETURN_IF_ERROR(check_raw_data_size(a.t(), where));
      for (const auto& t : a.tensors()) ORCHARD_RETURN_IF_ERROR(check_raw_data_size(t, where));
      if (a.has_sparse_tensor()) {
        ORCHARD_RETURN_IF_ERROR(check_raw_data_size(a.sparse_tensor().values(), where + " values"));
        ORCHARD_RETURN_IF_ERROR(check_raw_data_size(a.sparse_tensor().indices(), where + " indices"));
      }
      if (a.has_g()) ORCHARD_RETURN_IF_ERROR(check_raw_data_sizes(a.g()));
      for (const auto& sub : a.graphs()) ORCHARD_RETURN_IF_ERROR(check_raw_data_sizes(sub));
    }
  }
  return Status::OK();
}

// Reads every externally stored tensor of `g` (initializers, tensor attributes, subgraphs) into its proto.
// This runs before the ONNX checker, which would otherwise look for the files relative to the working
// directory (libonnx 1.12 has no model folder for in-memory models) and without Orchard's path checks.
// `budget_left`: the bytes of external data the model may still read.
Status inline_external_data(onnx::GraphProto& g, const std::filesystem::path& base_dir, uint64_t& budget_left) {
  auto sparse = [&](onnx::SparseTensorProto& s) -> Status {
    ORCHARD_RETURN_IF_ERROR(load_external_data(*s.mutable_values(), base_dir, budget_left));
    return load_external_data(*s.mutable_indices(), base_dir, budget_left);
  };
  for (auto& t : *g.mutable_initializer()) ORCHARD_RETURN_IF_ERROR(load_external_data(t, base_dir, budget_left));
  for (auto& s : *g.mutable_sparse_initializer()) ORCHARD_RETURN_IF_ERROR(sparse(s));
  for (auto& n : *g.mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_t()) ORCHARD_RETURN_IF_ERROR(load_external_data(*a.mutable_t(), base_dir, budget_left));
      for (auto& t : *a.mutable_tensors()) ORCHARD_RETURN_IF_ERROR(load_external_data(t, base_dir, budget_left));
      if (a.has_sparse_tensor()) ORCHARD_RETURN_IF_ERROR(sparse(*a.mutable_sparse_tensor()));
      if (a.has_g()) ORCHARD_RETURN_IF_ERROR(inline_external_data(*a.mutable_g(), base_dir, budget_left));
      for (auto& sub : *a.mutable_graphs()) ORCHARD_RETURN_IF_ERROR(inline_external_data(sub, base_dir, budget_left));
    }
  }
  return Status::OK();
}

int Importer::opset_of(const std::string& domain) const {
  const std::string key = domain == "ai.onnx" ? "" : domain;
  auto it = opsets_.find(key);
  return it == opsets_.end() ? 0 : it->second;
}

void Importer::collect_types(const onnx::GraphProto& g) {
  for (const auto& v : g.input()) types_[v.name()] = v.type();
  for (const auto& v : g.value_info()) types_[v.name()] = v.type();
  for (const auto& v : g.output()) types_[v.name()] = v.type();
  for (const auto& t : g.initializer()) {
    onnx::TypeProto tp;
    tp.mutable_tensor_type()->set_elem_type(t.data_type());
    auto* shape = tp.mutable_tensor_type()->mutable_shape();
    for (int64_t d : t.dims()) shape->add_dim()->set_dim_value(d);
    types_[t.name()] = tp;
  }
}

Result<graph::Attribute> Importer::convert_attribute(const onnx::AttributeProto& a, const std::string& label) {
  using T = graph::Attribute::Type;
  graph::Attribute out;
  const std::string where = "[onnx] " + label + ": attribute '" + a.name() + "': ";
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT: out.type = T::f; out.f = a.f(); break;
    case onnx::AttributeProto::INT: out.type = T::i; out.i = a.i(); break;
    case onnx::AttributeProto::STRING: out.type = T::s; out.s = a.s(); break;
    case onnx::AttributeProto::TENSOR: {
      out.type = T::t;
      auto t = tensor_from_proto(a.t(), base_dir_);
      if (!t.ok()) return t.status().with_prefix(where);
      out.t = std::move(t).value();
      break;
    }
    case onnx::AttributeProto::SPARSE_TENSOR: {
      out.type = T::t;
      auto t = tensor_from_sparse(a.sparse_tensor(), base_dir_);
      if (!t.ok()) return t.status().with_prefix(where);
      out.t = std::move(t).value();
      break;
    }
    case onnx::AttributeProto::GRAPH: {
      out.type = T::g;
      ORCHARD_ASSIGN_OR_RETURN(out.g, convert_graph(a.g(), false));
      break;
    }
    case onnx::AttributeProto::FLOATS: out.type = T::floats; out.floats.assign(a.floats().begin(), a.floats().end()); break;
    case onnx::AttributeProto::INTS: out.type = T::ints; out.ints.assign(a.ints().begin(), a.ints().end()); break;
    case onnx::AttributeProto::STRINGS: out.type = T::strings; out.strings.assign(a.strings().begin(), a.strings().end()); break;
    case onnx::AttributeProto::TENSORS:
      out.type = T::tensors;
      for (const auto& tp : a.tensors()) {
        auto t = tensor_from_proto(tp, base_dir_);
        if (!t.ok()) return t.status().with_prefix(where);
        out.tensors.push_back(std::move(t).value());
      }
      break;
    case onnx::AttributeProto::GRAPHS:
      out.type = T::graphs;
      for (const auto& gp : a.graphs()) {
        ORCHARD_ASSIGN_OR_RETURN(auto g, convert_graph(gp, false));
        out.graphs.push_back(std::move(g));
      }
      break;
    case onnx::AttributeProto::TYPE_PROTO: {
      out.type = T::type;
      auto info = value_info_from_type(a.name(), a.tp());
      if (!info.ok()) return info.status().with_prefix(where);
      out.type_decl = {info->kind, info->dtype};
      break;
    }
    default: return unsupported(where, "type ", onnx::AttributeProto::AttributeType_Name(a.type()), " is not supported");
  }
  return out;
}

// A Constant node becomes an initializer: kernels then see it as a known value at compile time.
Status Importer::add_constant(const onnx::NodeProto& n, graph::Graph& out) {
  if (n.attribute_size() != 1 || n.output_size() != 1) {
    return invalid_argument("[onnx] ", node_label(n), ": Constant needs exactly one value attribute and one output");
  }
  ORCHARD_ASSIGN_OR_RETURN(graph::Attribute a, convert_attribute(n.attribute(0), node_label(n)));
  const std::string& key = n.attribute(0).name();
  Tensor t;
  if (key == "value" || key == "sparse_value") t = a.t;
  else if (key == "value_float") t = Tensor::scalar<float>(a.f);
  else if (key == "value_int") t = Tensor::scalar<int64_t>(a.i);
  else if (key == "value_string") t = Tensor::scalar<std::string>(a.s);
  else if (key == "value_floats") t = Tensor::from_vector<float>(Shape{static_cast<int64_t>(a.floats.size())}, a.floats);
  else if (key == "value_ints") t = Tensor::from_vector<int64_t>(Shape{static_cast<int64_t>(a.ints.size())}, a.ints);
  else if (key == "value_strings") t = Tensor::from_vector<std::string>(Shape{static_cast<int64_t>(a.strings.size())}, a.strings);
  else return invalid_argument("[onnx] ", node_label(n), ": unknown Constant attribute '", key, "'");
  out.initializers[n.output(0)] = std::move(t);
  return Status::OK();
}

Status Importer::expand_function(const onnx::NodeProto& n, int opset, int depth, const onnx::OpSchema& schema,
                                 graph::Graph& out) {
  onnx::FunctionProto fn;
  if (schema.HasFunction()) {
    fn = *schema.GetFunction();
  } else {
    std::vector<onnx::TypeProto> input_types;
    for (const auto& in : n.input()) {
      auto it = types_.find(in);
      input_types.push_back(it == types_.end() ? onnx::TypeProto() : it->second);
    }
    onnx::FunctionBodyBuildContextImpl ctx(n, input_types);
    bool built = false;
    try {
      built = schema.BuildContextDependentFunction(ctx, fn);
    } catch (const std::exception& e) {
      return unsupported("[onnx] ", node_label(n), ": cannot expand function body: ", e.what());
    }
    if (!built) return unsupported("[onnx] ", node_label(n), ": no kernel, and its function body cannot be built");
  }
  std::unordered_map<std::string, std::string> rename;
  for (int i = 0; i < fn.input_size(); ++i) rename[fn.input(i)] = i < n.input_size() ? n.input(i) : "";
  for (int i = 0; i < fn.output_size(); ++i) rename[fn.output(i)] = i < n.output_size() ? n.output(i) : "";
  const std::string prefix = n.name() + "/";
  auto mapped = [&](const std::string& name) -> std::string {
    if (name.empty()) return name;
    auto it = rename.find(name);
    if (it != rename.end()) return it->second;
    return rename[name] = prefix + name;
  };
  std::map<std::string, int> fn_opsets;
  for (const auto& o : fn.opset_import()) fn_opsets[o.domain() == "ai.onnx" ? "" : o.domain()] = static_cast<int>(o.version());
  std::map<std::string, const onnx::AttributeProto*> node_attrs;
  for (const auto& a : n.attribute()) node_attrs[a.name()] = &a;

  for (int k = 0; k < fn.node_size(); ++k) {
    onnx::NodeProto body = fn.node(k);
    body.set_name(prefix + (body.name().empty() ? body.op_type() + "_" + std::to_string(k) : body.name()));
    for (auto& in : *body.mutable_input()) in = mapped(in);
    for (auto& o : *body.mutable_output()) o = mapped(o);
    // Attributes that refer to the caller's attributes take the caller's value, or the op default.
    auto* attrs = body.mutable_attribute();
    for (int i = attrs->size() - 1; i >= 0; --i) {
      auto& a = (*attrs)[i];
      if (a.ref_attr_name().empty()) {
        // The body's own subgraphs read function-scope names, which are renamed like the body's.
        if (a.has_g()) rename_free_names(*a.mutable_g(), {}, mapped);
        for (auto& sg : *a.mutable_graphs()) rename_free_names(sg, {}, mapped);
        continue;
      }
      auto it = node_attrs.find(a.ref_attr_name());
      if (it == node_attrs.end()) {
        attrs->DeleteSubrange(i, 1);
      } else {
        const std::string name = a.name();
        a = *it->second;
        a.set_name(name);
      }
    }
    const std::string dom = body.domain() == "ai.onnx" ? "" : body.domain();
    auto fo = fn_opsets.find(dom);
    const int body_opset = fo != fn_opsets.end() ? fo->second : (dom == n.domain() ? opset : opset_of(dom));
    ORCHARD_RETURN_IF_ERROR(convert_node(body, body_opset, depth + 1, out));
  }
  return Status::OK();
}

Status Importer::convert_node(const onnx::NodeProto& n_in, int opset, int depth, graph::Graph& out) {
  onnx::NodeProto named;
  const onnx::NodeProto* np = &n_in;
  if (n_in.name().empty()) {
    named = n_in;
    named.set_name(n_in.op_type() + "_" + std::to_string(unnamed_++));
    np = &named;
  }
  const onnx::NodeProto& n = *np;
  const std::string domain = n.domain() == "ai.onnx" ? "" : n.domain();
  if (domain.empty() && n.op_type() == "Constant") return add_constant(n, out);

  if (options_.has_kernel && !options_.has_kernel(domain, n.op_type(), opset)) {
    const auto* schema = onnx::OpSchemaRegistry::Schema(n.op_type(), opset, domain);
    if (schema == nullptr) {
      return unsupported("[onnx] ", node_label(n), ": unknown operator '", n.op_type(), "' in domain '",
                         domain.empty() ? "ai.onnx" : domain, "' at opset ", opset);
    }
    if ((schema->HasFunction() || schema->HasContextDependentFunction()) && depth < kMaxFunctionDepth) {
      return expand_function(n, opset, depth, *schema, out);
    }
    return unsupported("[onnx] ", node_label(n), ": no backend implements ", n.op_type(), " at opset ", opset);
  }

  graph::Node node;
  node.name = n.name();
  node.op_type = n.op_type();
  node.domain = domain;
  node.opset = opset;
  node.inputs.assign(n.input().begin(), n.input().end());
  node.outputs.assign(n.output().begin(), n.output().end());
  std::set<std::string> implicit;
  for (const auto& a : n.attribute()) {
    ORCHARD_ASSIGN_OR_RETURN(graph::Attribute attr, convert_attribute(a, node_label(n)));
    auto add_free = [&](const graph::Graph& g) {
      for (const auto& name : free_names(g)) implicit.insert(name);
    };
    if (attr.g) add_free(*attr.g);
    for (const auto& g : attr.graphs) add_free(*g);
    node.attributes[a.name()] = std::move(attr);
  }
  node.implicit_inputs.assign(implicit.begin(), implicit.end());
  out.nodes.push_back(std::move(node));
  return Status::OK();
}

Result<std::shared_ptr<graph::Graph>> Importer::convert_graph(const onnx::GraphProto& g, bool top_level) {
  collect_types(g);
  auto out = std::make_shared<graph::Graph>();
  out->name = g.name();
  if (top_level) {
    out->initializers = std::move(top_initializers_);
  } else {
    for (const auto& t : g.initializer()) {
      auto tensor = tensor_from_proto(t, base_dir_);
      if (!tensor.ok()) return tensor.status().with_prefix("initializer: ");
      out->initializers[t.name()] = std::move(tensor).value();
    }
  }
  for (const auto& s : g.sparse_initializer()) {
    auto tensor = tensor_from_sparse(s, base_dir_);
    if (!tensor.ok()) return tensor.status().with_prefix("sparse initializer: ");
    out->initializers[s.values().name()] = std::move(tensor).value();
  }
  for (const auto& v : g.input()) {
    // Before IR 4, initializers were also listed as inputs; they stay overridable but not required.
    if (top_level && out->initializers.count(v.name())) continue;
    auto info = value_info_from_type(v.name(), v.type());
    if (!info.ok()) return info.status();
    out->inputs.push_back(std::move(info).value());
  }
  for (const auto& v : g.output()) {
    auto info = value_info_from_type(v.name(), v.type());
    if (!info.ok()) return info.status();
    out->outputs.push_back(std::move(info).value());
  }
  for (const auto& v : g.value_info()) {
    auto info = value_info_from_type(v.name(), v.type());
    if (info.ok()) out->value_info[v.name()] = std::move(info).value();
  }
  for (const auto& n : g.node()) {
    const std::string domain = n.domain() == "ai.onnx" ? "" : n.domain();
    ORCHARD_RETURN_IF_ERROR(convert_node(n, opset_of(domain), 0, *out));
  }
  return out;
}

Result<graph::Model> Importer::import(onnx::ModelProto& proto) {
  if (!proto.has_graph()) {
    // Any protobuf message parses as a ModelProto (unknown fields are skipped): a TensorProto's dims read
    // as an IR version. Without a graph the bytes are not a model, whatever the other fields say.
    return invalid_argument("[onnx] not an ONNX model: the bytes hold no graph (another kind of protobuf message, such as a "
                            "TensorProto .pb file?)");
  }
  if (proto.ir_version() < kMinIrVersion || proto.ir_version() > kMaxIrVersion) {
    return unsupported("[onnx] IR version ", proto.ir_version(), " is not supported (supported: ", kMinIrVersion, "..",
                       kMaxIrVersion, ")");
  }
  for (const auto& o : proto.opset_import()) {
    const std::string domain = o.domain() == "ai.onnx" ? "" : o.domain();
    if (domain.empty() && o.version() > kMaxDefaultOpset) {
      return unsupported("[onnx] opset ", o.version(), " of the default domain is not supported (highest: ", kMaxDefaultOpset, ")");
    }
    opsets_[domain] = static_cast<int>(o.version());
  }
  if (!opsets_.count("")) opsets_[""] = 1;
  uint64_t external_budget = options_.max_external_data_bytes;
  ORCHARD_RETURN_IF_ERROR(inline_external_data(*proto.mutable_graph(), base_dir_, external_budget));
  ORCHARD_RETURN_IF_ERROR(refuse_sparse_types(proto.graph()));
  ORCHARD_RETURN_IF_ERROR(check_raw_data_sizes(proto.graph()));
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    return invalid_argument("[onnx] model fails the ONNX checker: ", e.what());
  }
  try {
    onnx::ShapeInferenceOptions opts(/*check_type=*/false, /*error_mode=*/1, /*data_prop=*/false);
    // The guarded registry checks what libonnx's inference functions assume (ranks, attribute lengths).
    onnx::shape_inference::InferShapes(proto, &guarded_schema_registry(), opts);
  } catch (const std::exception& e) {
    return invalid_argument("[onnx] shape inference failed: ", e.what());
  }
  // The top graph's initializers (the weights), each freed from the proto as soon as it is converted: the
  // model's weights are held once, not twice, at the peak of loading.
  for (auto& t : *proto.mutable_graph()->mutable_initializer()) {
    auto tensor = tensor_from_proto(t, base_dir_);
    if (!tensor.ok()) return tensor.status().with_prefix("initializer: ");
    top_initializers_[t.name()] = std::move(tensor).value();
    std::string().swap(*t.mutable_raw_data());
  }
  graph::Model model;
  model.ir_version = proto.ir_version();
  model.producer = proto.producer_name();
  model.opsets = opsets_;
  ORCHARD_ASSIGN_OR_RETURN(model.graph, convert_graph(proto.graph(), true));
  return model;
}

// Protobuf's limit on message nesting (its default recursion limit).
constexpr int kProtobufNestingLimit = 100;

Result<graph::Model> import_proto_bytes(const void* data, size_t size, const std::filesystem::path& base_dir,
                                        const ImportOptions& options) {
  if (size == 0) return invalid_argument("[onnx] the model is empty (0 bytes)");
  if (size > options.max_model_bytes || size > static_cast<size_t>(INT32_MAX)) {
    return resource_exhausted("[onnx] the model has ", size, " bytes; the limit is ",
                              std::min<uint64_t>(options.max_model_bytes, INT32_MAX), " (ImportOptions::max_model_bytes)");
  }
  onnx::ModelProto proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) {
    // Tell a too-deep nesting (e.g. If inside If 33 levels deep) from corrupt bytes: parse again with a
    // higher limit, only to name the cause; such a model is still refused.
    google::protobuf::io::CodedInputStream deep(static_cast<const uint8_t*>(data), static_cast<int>(size));
    deep.SetRecursionLimit(4 * kProtobufNestingLimit);
    onnx::ModelProto probe;
    if (probe.ParseFromCodedStream(&deep) && deep.ConsumedEntireMessage()) {
      return unsupported("[onnx] the model nests messages more than ", kProtobufNestingLimit,
                         " levels deep (subgraphs of If/Loop/Scan nested about 33 deep), which protobuf refuses to parse");
    }
    return invalid_argument("[onnx] cannot parse the model: ", size, " bytes are not a valid ONNX ModelProto (truncated or corrupt?)");
  }
  Importer importer(options, base_dir);
  return importer.import(proto);
}

// Runs `import`, turning any exception (from libonnx or protobuf) into a Status naming `what`.
template <class F>
Result<graph::Model> without_exceptions(const std::string& what, F&& import) {
  try {
    return import();
  } catch (const std::bad_alloc&) {
    return out_of_memory("[onnx] ", what, ": out of memory while importing the model");
  } catch (const std::exception& e) {
    return invalid_argument("[onnx] ", what, ": ", e.what());
  } catch (...) {
    return internal_error("[onnx] ", what, ": unknown exception while importing the model");
  }
}

}  // namespace

Result<graph::Model> import_model_file(const std::filesystem::path& path, const ImportOptions& options) {
  return without_exceptions("model file '" + path.string() + "'", [&]() -> Result<graph::Model> {
    // A FIFO, device or folder is refused before any byte is read; the size is checked against the cap first.
    const uint64_t cap = std::min<uint64_t>(options.max_model_bytes, INT32_MAX);
    {
      // Parsed as a stream, so the file's bytes and the parsed model are not both held at once.
      auto file = open_regular_file(path, "[onnx] model file", cap);
      if (!file.ok()) return file.status();
      onnx::ModelProto proto;
      google::protobuf::io::FileInputStream in(file->fd());
      if (file->size() > 0 && proto.ParseFromZeroCopyStream(&in)) {
        Importer importer(options, path.parent_path());
        return importer.import(proto);
      }
    }
    // Empty or not parsable: read the bytes for import_proto_bytes's diagnosis of what is wrong.
    auto bytes = read_regular_file(path, "[onnx] model file", cap);
    if (!bytes.ok()) return bytes.status();
    auto model = import_proto_bytes(bytes->data(), bytes->size(), path.parent_path(), options);
    if (!model.ok() && bytes->empty()) return invalid_argument("[onnx] model file '", path.string(), "' is empty (0 bytes)");
    return model;
  });
}

Result<graph::Model> import_model_bytes(std::span<const std::byte> bytes, const std::filesystem::path& base_dir,
                                        const ImportOptions& options) {
  return without_exceptions("model bytes", [&] { return import_proto_bytes(bytes.data(), bytes.size(), base_dir, options); });
}

}  // namespace orchard::onnx_import
