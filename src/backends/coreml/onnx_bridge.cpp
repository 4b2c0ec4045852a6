#include "backends/coreml/onnx_bridge.hpp"

#include <cmath>
#include <set>

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include "backends/coreml/mil_builder.hpp"
#include "backends/coreml/mil_reader.hpp"
#include "onnx/importer.hpp"
#include "onnx/proto_convert.hpp"

namespace orchard::coreml {

namespace {

using onnx_import::dtype_to_onnx;
using onnx_import::tensor_to_proto;

constexpr int kTargetOpset = 17;

int default_opset(const onnx::ModelProto& m) {
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return static_cast<int>(o.version());
  }
  return 0;
}

// Runs ONNX shape inference in place; nodes it cannot type keep their old value_info.
void infer_shapes(onnx::ModelProto& m) {
  m.mutable_graph()->clear_value_info();
  try {
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(false, 0, true));
  } catch (const std::exception&) {
    // Partial inference is still useful: folding continues with the shapes that were found.
  }
}

// Returns name → static shape for every value whose shape inference (or declaration) is fully known.
std::map<std::string, std::vector<int64_t>> static_shapes(const onnx::GraphProto& g) {
  std::map<std::string, std::vector<int64_t>> out;
  auto take = [&](const onnx::ValueInfoProto& v) {
    if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
    std::vector<int64_t> dims;
    for (const auto& d : v.type().tensor_type().shape().dim()) {
      if (!d.has_dim_value()) return;
      dims.push_back(d.dim_value());
    }
    out[v.name()] = dims;
  };
  for (const auto& v : g.input()) take(v);
  for (const auto& v : g.value_info()) take(v);
  for (const auto& v : g.output()) take(v);
  for (const auto& t : g.initializer()) out[t.name()] = std::vector<int64_t>(t.dims().begin(), t.dims().end());
  return out;
}

bool has_subgraph(const onnx::NodeProto& n) {
  for (const auto& a : n.attribute()) {
    if (a.has_g() || a.graphs_size() > 0) return true;
  }
  return false;
}

bool nondeterministic(const std::string& op) {
  return op.rfind("Random", 0) == 0 || op == "Multinomial" || op == "Bernoulli";
}

// One folding round: Shape/Size of static values become constants, then every node that reads only
// constants is evaluated. Returns whether anything changed.
Result<bool> fold_round(onnx::ModelProto& m) {
  infer_shapes(m);
  auto* g = m.mutable_graph();
  const auto shapes = static_shapes(*g);
  std::set<std::string> constant;
  for (const auto& t : g->initializer()) constant.insert(t.name());
  bool changed = false;
  for (auto& n : *g->mutable_node()) {
    if ((n.op_type() != "Shape" && n.op_type() != "Size") || !n.domain().empty() || n.input_size() != 1) continue;
    auto it = shapes.find(n.input(0));
    if (it == shapes.end()) continue;
    const auto& dims = it->second;
    std::vector<int64_t> value;
    if (n.op_type() == "Size") {
      int64_t p = 1;
      for (int64_t d : dims) p *= d;
      value = {p};
    } else {
      const int64_t r = static_cast<int64_t>(dims.size());
      int64_t start = 0, end = r;
      for (const auto& a : n.attribute()) {
        if (a.name() == "start") start = a.i();
        if (a.name() == "end") end = a.i();
      }
      start = std::clamp<int64_t>(start < 0 ? start + r : start, 0, r);
      end = std::clamp<int64_t>(end < 0 ? end + r : end, 0, r);
      for (int64_t i = start; i < end; ++i) value.push_back(dims[i]);
    }
    Tensor t = n.op_type() == "Size" ? Tensor::scalar<int64_t>(value[0])
                                     : Tensor::from_vector<int64_t>(Shape{static_cast<int64_t>(value.size())}, value);
    tensor_to_proto(t, n.output(0), *g->add_initializer());
    n.set_op_type("");  // marked for removal
    changed = true;
  }
  for (const auto& t : g->initializer()) constant.insert(t.name());
  // Values whose type and rank inference knows (the folding model must declare its outputs' types).
  std::map<std::string, onnx::TypeProto> typed;
  for (const auto& v : g->value_info()) {
    if (v.type().has_tensor_type() && v.type().tensor_type().has_shape()) typed[v.name()] = v.type();
  }
  for (const auto& v : g->output()) {
    if (v.type().has_tensor_type() && v.type().tensor_type().has_shape()) typed[v.name()] = v.type();
  }
  // Nodes that read only constants (Constant nodes included), in order.
  std::vector<int> fold;
  for (int i = 0; i < g->node_size(); ++i) {
    const auto& n = g->node(i);
    if (n.op_type().empty() || has_subgraph(n) || nondeterministic(n.op_type()) || !n.domain().empty()) continue;
    bool all = true;
    for (const auto& in : n.input()) all = all && (in.empty() || constant.count(in));
    for (const auto& o : n.output()) all = all && (o.empty() || typed.count(o));
    if (!all) continue;
    fold.push_back(i);
    for (const auto& o : n.output()) constant.insert(o);
  }
  if (!fold.empty()) {
    // The values the rest of the graph reads from the folded nodes.
    std::set<std::string> folded_outputs, needed;
    for (int i : fold) {
      for (const auto& o : g->node(i).output()) folded_outputs.insert(o);
    }
    std::set<int> fold_set(fold.begin(), fold.end());
    for (int i = 0; i < g->node_size(); ++i) {
      if (fold_set.count(i) || g->node(i).op_type().empty()) continue;
      for (const auto& in : g->node(i).input()) {
        if (folded_outputs.count(in)) needed.insert(in);
      }
    }
    for (const auto& o : g->output()) {
      if (folded_outputs.count(o.name())) needed.insert(o.name());
    }
    if (!needed.empty()) {
      onnx::ModelProto sub = m;
      auto* sg = sub.mutable_graph();
      sg->clear_node();
      sg->clear_input();
      sg->clear_output();
      sg->clear_value_info();
      for (int i : fold) *sg->add_node() = g->node(i);
      for (const auto& name : needed) sg->add_output()->set_name(name);
      for (auto& o : *sg->mutable_output()) *o.mutable_type() = typed[o.name()];
      std::string bytes;
      sub.SerializeToString(&bytes);
      SessionOptions so;
      so.intra_op_threads = 1;
      auto session = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), so);
      if (!session.ok()) return session.status().with_prefix("[coreml] folding constants: ");
      auto values = (*session)->run({});
      if (!values.ok()) return values.status().with_prefix("[coreml] folding constants: ");
      for (const auto& [name, v] : *values) {
        if (!v.is_tensor()) return unsupported("[coreml] folding constants: '", name, "' is not a tensor");
        tensor_to_proto(v.tensor(), name, *g->add_initializer());
      }
    }
    for (int i : fold) g->mutable_node(i)->set_op_type("");
    changed = true;
  }
  if (changed) {
    google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
    for (auto& n : *g->mutable_node()) {
      if (!n.op_type().empty()) *kept.Add() = std::move(n);
    }
    g->mutable_node()->Swap(&kept);
  }
  return changed;
}

void set_attr(const std::string& name, const graph::Attribute& a, onnx::AttributeProto& p) {
  using T = graph::Attribute::Type;
  p.set_name(name);
  switch (a.type) {
    case T::f: p.set_type(onnx::AttributeProto::FLOAT); p.set_f(a.f); break;
    case T::i: p.set_type(onnx::AttributeProto::INT); p.set_i(a.i); break;
    case T::s: p.set_type(onnx::AttributeProto::STRING); p.set_s(a.s); break;
    case T::t: p.set_type(onnx::AttributeProto::TENSOR); tensor_to_proto(a.t, "", *p.mutable_t()); break;
    case T::floats: p.set_type(onnx::AttributeProto::FLOATS); for (float f : a.floats) p.add_floats(f); break;
    case T::ints: p.set_type(onnx::AttributeProto::INTS); for (int64_t i : a.ints) p.add_ints(i); break;
    case T::strings: p.set_type(onnx::AttributeProto::STRINGS); for (const auto& s : a.strings) p.add_strings(s); break;
    case T::tensors:
      p.set_type(onnx::AttributeProto::TENSORS);
      for (const auto& t : a.tensors) tensor_to_proto(t, "", *p.add_tensors());
      break;
    default: break;  // graphs and types are refused by graph_to_onnx before this point
  }
}

void set_value_info(const ValueInfo& v, onnx::ValueInfoProto& p) {
  p.set_name(v.name);
  auto* tt = p.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_to_onnx(v.dtype));
  if (!v.has_shape) return;
  auto* shape = tt->mutable_shape();
  for (const auto& d : v.shape) {
    auto* dim = shape->add_dim();
    if (d.fixed()) dim->set_dim_value(d.value);
    else if (!d.symbol.empty()) dim->set_dim_param(d.symbol);
  }
}

// Orders `nodes` topologically (stable: a node moves only behind what it reads).
Result<std::vector<graph::Node>> topo_sort(std::vector<graph::Node> nodes, const std::set<std::string>& available) {
  std::vector<graph::Node> out;
  std::set<std::string> have = available;
  std::vector<bool> done(nodes.size(), false);
  size_t remaining = nodes.size();
  while (remaining) {
    bool progress = false;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (done[i]) continue;
      bool ready = true;
      for (const auto& in : nodes[i].inputs) ready = ready && (in.empty() || have.count(in));
      if (!ready) continue;
      for (const auto& o : nodes[i].outputs) have.insert(o);
      out.push_back(std::move(nodes[i]));
      done[i] = true;
      --remaining;
      progress = true;
    }
    if (!progress) return internal_error("[coreml] round trip: composed graph has a cycle or an undefined input");
  }
  return out;
}

// Returns the elements of a numeric tensor as doubles.
std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::float32: v[i] = t.data<float>()[i]; break;
      case DType::float16: v[i] = float16::to_float(t.data<float16>()[i].bits); break;
      case DType::int32: v[i] = t.data<int32_t>()[i]; break;
      case DType::int64: v[i] = static_cast<double>(t.data<int64_t>()[i]); break;
      case DType::boolean: v[i] = t.data<bool>()[i]; break;
      default: v[i] = NAN;
    }
  }
  return v;
}

// Returns a Cast node from `in` to `out` (named after `out`).
graph::Node cast_node(const std::string& in, const std::string& out, DType to) {
  graph::Node c;
  c.name = out + "__cast";
  c.op_type = "Cast";
  c.opset = kReaderOnnxOpset;
  c.inputs = {in};
  c.outputs = {out};
  c.attributes["to"].type = graph::Attribute::Type::i;
  c.attributes["to"].i = dtype_to_onnx(to);
  return c;
}

}  // namespace

Result<std::string> specialize_onnx(const std::string& onnx_bytes, const std::map<std::string, std::vector<int64_t>>& shapes,
                                    const std::map<std::string, int64_t>& dims, const std::vector<std::string>& extra_outputs) {
  onnx::ModelProto m;
  if (!m.ParseFromString(onnx_bytes)) return invalid_argument("[coreml] the model does not parse as ONNX");
  if (default_opset(m) < kTargetOpset) {
    try {
      m = onnx::version_conversion::ConvertVersion(m, kTargetOpset);
    } catch (const std::exception& e) {
      return unsupported("[coreml] upgrading the model to opset ", kTargetOpset, " failed: ", e.what());
    }
  }
  std::set<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.insert(t.name());
  for (auto& in : *m.mutable_graph()->mutable_input()) {
    if (inits.count(in.name())) continue;
    auto* shape = in.mutable_type()->mutable_tensor_type()->mutable_shape();
    if (auto it = shapes.find(in.name()); it != shapes.end()) {
      if (static_cast<int>(it->second.size()) != shape->dim_size()) {
        return invalid_argument("[coreml] --shape ", in.name(), " has ", it->second.size(), " dims, the input has ", shape->dim_size());
      }
      for (int i = 0; i < shape->dim_size(); ++i) shape->mutable_dim(i)->set_dim_value(it->second[i]);
      continue;
    }
    for (auto& d : *shape->mutable_dim()) {
      if (d.has_dim_value()) continue;
      auto it = dims.find(d.dim_param());
      if (it == dims.end()) return invalid_argument("[coreml] input '", in.name(), "' dim '", d.dim_param(), "' is symbolic: give --shape");
      d.set_dim_value(it->second);
    }
  }
  for (int round = 0; round < 16; ++round) {
    ORCHARD_ASSIGN_OR_RETURN(bool changed, fold_round(m));
    if (!changed) break;
  }
  infer_shapes(m);
  for (const auto& name : extra_outputs) {
    const onnx::ValueInfoProto* found = nullptr;
    for (const auto& v : m.graph().value_info()) {
      if (v.name() == name) found = &v;
    }
    if (!found) return invalid_argument("[coreml] --output '", name, "' is not an intermediate value with an inferred type");
    *m.mutable_graph()->add_output() = *found;
  }
  std::string out;
  m.SerializeToString(&out);
  return out;
}

Result<std::string> graph_to_onnx(const graph::Graph& g, int opset) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("orchard-coreml-reader");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* gp = m.mutable_graph();
  gp->set_name(g.name.empty() ? "graph" : g.name);
  for (const auto& n : g.nodes) {
    auto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    np->set_domain(n.domain);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& [name, a] : n.attributes) {
      if (a.type == graph::Attribute::Type::g || a.type == graph::Attribute::Type::graphs || a.type == graph::Attribute::Type::type) {
        return unsupported("[coreml] export: ", n.label(), " attribute '", name, "' is not exported");
      }
      set_attr(name, a, *np->add_attribute());
    }
  }
  for (const auto& [name, t] : g.initializers) tensor_to_proto(t, name, *gp->add_initializer());
  for (const auto& v : g.inputs) set_value_info(v, *gp->add_input());
  for (const auto& v : g.outputs) set_value_info(v, *gp->add_output());
  std::string out;
  if (!m.SerializeToString(&out)) return internal_error("[coreml] export: serialization failed");
  return out;
}

Result<graph::Model> import_for_conversion(const std::string& onnx_bytes) {
  return onnx_import::import_model_bytes(std::as_bytes(std::span(onnx_bytes.data(), onnx_bytes.size())), {}, {});
}

Result<RoundTripReport> round_trip(const std::string& onnx_bytes, const ConvertOptions& options, const NamedValues& inputs,
                                   const std::vector<Converted>* packages) {
  ORCHARD_ASSIGN_OR_RETURN(graph::Model model, import_for_conversion(onnx_bytes));
  const graph::Graph& g = *model.graph;
  RoundTripReport report;
  report.nodes = g.nodes.size();
  Capability cap = get_capability(g, options);
  report.partitions = cap.partitions;
  graph::Graph comp;
  comp.name = "round_trip";
  comp.inputs = g.inputs;
  comp.outputs = g.outputs;
  comp.initializers = g.initializers;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (cap.claimed[i]) {
      ++report.claimed;
    } else {
      report.unclaimed.push_back(g.nodes[i].label() + ": " + cap.reasons[i]);
      comp.nodes.push_back(g.nodes[i]);
    }
  }
  if (packages && packages->size() != cap.partitions.size()) {
    return invalid_argument("[coreml] round trip: ", packages->size(), " packages for ", cap.partitions.size(), " partitions");
  }
  for (size_t k = 0; k < cap.partitions.size(); ++k) {
    Converted conv;
    if (packages) {
      conv = (*packages)[k];
    } else {
      ORCHARD_ASSIGN_OR_RETURN(conv, convert(g, cap.partitions[k], options));
    }
    ProgramInfo info;
    ORCHARD_ASSIGN_OR_RETURN(graph::Graph pg, read_program(conv.package, &info));
    report.mil_operations += info.operations;
    const std::string prefix = "p" + std::to_string(k) + "__";
    std::set<std::string> io(conv.inputs.begin(), conv.inputs.end());
    io.insert(conv.outputs.begin(), conv.outputs.end());
    std::map<std::string, std::string> rename;
    auto name_of = [&](const std::string& n) {
      if (n.empty()) return n;
      if (auto it = rename.find(n); it != rename.end()) return it->second;
      return io.count(n) ? n : prefix + n;
    };
    // Feature types differ from the ONNX types for int64 (int32 in Core ML): cast at the boundary.
    for (const auto& vi : pg.inputs) {
      ORCHARD_ASSIGN_OR_RETURN(TensorDesc d, find_desc(g, vi.name));
      if (d.dtype == vi.dtype) continue;
      rename[vi.name] = prefix + vi.name + "__in";
      comp.nodes.push_back(cast_node(vi.name, rename[vi.name], vi.dtype));
    }
    std::vector<graph::Node> out_casts;
    for (const auto& vo : pg.outputs) {
      ORCHARD_ASSIGN_OR_RETURN(TensorDesc d, find_desc(g, vo.name));
      if (d.dtype == vo.dtype) continue;
      rename[vo.name] = prefix + vo.name + "__out";
      out_casts.push_back(cast_node(rename[vo.name], vo.name, d.dtype));
    }
    for (auto& n : pg.nodes) {
      n.name = prefix + n.name;
      for (auto& i : n.inputs) i = name_of(i);
      for (auto& o : n.outputs) o = name_of(o);
      comp.nodes.push_back(std::move(n));
    }
    for (auto& c : out_casts) comp.nodes.push_back(std::move(c));
    for (auto& [name, t] : pg.initializers) comp.initializers[name_of(name)] = t;
    report.packages.push_back(std::move(conv));
  }
  std::set<std::string> available;
  for (const auto& v : comp.inputs) available.insert(v.name);
  for (const auto& [name, t] : comp.initializers) available.insert(name);
  ORCHARD_ASSIGN_OR_RETURN(comp.nodes, topo_sort(std::move(comp.nodes), available));
  ORCHARD_ASSIGN_OR_RETURN(std::string comp_bytes, graph_to_onnx(comp, kReaderOnnxOpset));

  SessionOptions so;
  so.intra_op_threads = 0;
  auto as_span = [](const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); };
  ORCHARD_ASSIGN_OR_RETURN(auto ref_session, Session::load_from_bytes(as_span(onnx_bytes), so));
  auto rt_session = Session::load_from_bytes(as_span(comp_bytes), so);
  if (!rt_session.ok()) return rt_session.status().with_prefix("[coreml] round trip: the re-imported program does not load: ");
  ORCHARD_ASSIGN_OR_RETURN(NamedValues want, ref_session->run(inputs));
  auto got = (*rt_session)->run(inputs);
  if (!got.ok()) return got.status().with_prefix("[coreml] round trip: the re-imported program does not run: ");
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& [name, w] = want[i];
    const Value* gv = nullptr;
    for (const auto& [n2, v2] : *got) {
      if (n2 == name) gv = &v2;
    }
    if (!gv || !gv->is_tensor() || !w.is_tensor()) return internal_error("[coreml] round trip: output '", name, "' missing");
    if (gv->tensor().shape() != w.tensor().shape()) {
      return internal_error("[coreml] round trip: output '", name, "' has shape ", gv->tensor().shape().to_string(), ", expected ",
                            w.tensor().shape().to_string());
    }
    const auto a = as_doubles(w.tensor()), b = as_doubles(gv->tensor());
    for (size_t k = 0; k < a.size(); ++k) {
      const double err = std::isnan(a[k]) && std::isnan(b[k]) ? 0.0 : std::fabs(a[k] - b[k]);
      report.max_ref = std::max(report.max_ref, std::fabs(a[k]));
      if (!(err <= report.max_abs_error)) {  // also catches NaN
        report.max_abs_error = std::isnan(err) ? INFINITY : err;
        report.worst_output = name;
      }
    }
  }
  return report;
}

}  // namespace orchard::coreml
