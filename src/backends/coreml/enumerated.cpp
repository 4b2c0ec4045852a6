// Enumerated shapes: one program per shape, merged into one whose varying dims are unknown.
#include <algorithm>

#include "backends/coreml/blob_storage.hpp"
#include "backends/coreml/converter.hpp"
#include "backends/coreml/mil_builder.hpp"

namespace orchard::coreml {

namespace {

using Model = CoreML::Specification::Model;

// Makes the dims of `into` that differ in `other` unknown. Returns false when ranks or dtypes differ.
bool merge_type(mil::ValueType& into, const mil::ValueType& other) {
  auto* a = into.mutable_tensortype();
  const auto& b = other.tensortype();
  if (a->datatype() != b.datatype() || a->dimensions_size() != b.dimensions_size()) return false;
  for (int i = 0; i < a->dimensions_size(); ++i) {
    const auto& db = b.dimensions(i);
    auto* da = a->mutable_dimensions(i);
    if (da->has_constant() && db.has_constant() && da->constant().size() == db.constant().size()) continue;
    da->mutable_unknown()->set_variadic(false);
  }
  return true;
}

bool same(const google::protobuf::MessageLite& a, const google::protobuf::MessageLite& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

// Returns the payload of the blob whose metadata is at `offset`, or an empty span.
std::span<const std::byte> blob_payload(const std::vector<std::byte>& file, uint64_t offset) {
  auto blobs = parse_blob_storage(file);
  if (!blobs.ok()) return {};
  for (const auto& b : *blobs) {
    if (b.metadata_offset == offset) return std::span(file).subspan(b.data_offset, b.size);
  }
  return {};
}

// Merges op `b` (the same op converted for another shape, with weight file `wb`) into `a` (weights `wa`).
Status merge_op(mil::Operation& a, const mil::Operation& b, const std::vector<std::byte>& wa, const std::vector<std::byte>& wb) {
  const std::string name = a.attributes().count("name") ? a.attributes().at("name").immediatevalue().tensor().strings().values(0) : a.type();
  if (a.type() != b.type() || a.outputs_size() != b.outputs_size() || a.inputs_size() != b.inputs_size()) {
    return unsupported("op '", name, "' differs in structure between the enumerated shapes");
  }
  for (int i = 0; i < a.outputs_size(); ++i) {
    if (a.outputs(i).name() != b.outputs(i).name() || !merge_type(*a.mutable_outputs(i)->mutable_type(), b.outputs(i).type())) {
      return unsupported("op '", name, "' output ", i, " differs in name, dtype or rank between the enumerated shapes");
    }
  }
  if (a.type() == "const") {
    const auto& va = a.attributes().at("val");
    const auto& vb = b.attributes().at("val");
    bool equal = same(va, vb);
    if (equal && va.has_blobfilevalue()) {
      const auto pa = blob_payload(wa, va.blobfilevalue().offset()), pb = blob_payload(wb, vb.blobfilevalue().offset());
      equal = pa.size() == pb.size() && std::equal(pa.begin(), pa.end(), pb.begin());
    }
    if (!equal) {
      return unsupported("constant '", name, "' depends on the input shape (folded from a shape computation)");
    }
    return Status::OK();
  }
  for (auto& [key, arg] : *a.mutable_inputs()) {
    auto it = b.inputs().find(key);
    if (it == b.inputs().end()) return unsupported("op '", name, "' lacks '", key, "' for another shape");
    if (same(arg, it->second)) continue;
    // A reshape target whose one entry follows the input shape becomes -1 (inferred by Core ML).
    if (a.type() == "reshape" && key == "shape" && arg.arguments(0).has_value() && it->second.arguments(0).has_value()) {
      auto* va = arg.mutable_arguments(0)->mutable_value()->mutable_immediatevalue()->mutable_tensor()->mutable_ints();
      const auto& vb = it->second.arguments(0).value().immediatevalue().tensor().ints();
      int differing = -1, count = 0;
      for (int i = 0; i < va->values_size() && i < vb.values_size(); ++i) {
        if (va->values(i) != vb.values(i) || va->values(i) == -1) {
          differing = i;
          ++count;
        }
      }
      if (count == 1 && va->values_size() == vb.values_size()) {
        va->set_values(differing, -1);
        continue;
      }
    }
    return unsupported("op '", name, "' (", a.type(), ") parameter '", key, "' depends on the input shape");
  }
  return Status::OK();
}

}  // namespace

Result<Converted> convert_enumerated(std::span<const graph::Graph* const> graphs, std::span<const size_t> nodes,
                                     const ConvertOptions& options) {
  if (graphs.empty()) return invalid_argument("[coreml] convert_enumerated: no graphs");
  std::vector<Converted> parts;
  std::vector<Model> models;
  for (const graph::Graph* g : graphs) {
    ORCHARD_ASSIGN_OR_RETURN(Converted c, convert(*g, nodes, options));
    Model m;
    if (!m.ParseFromString(c.package.model)) return internal_error("[coreml] convert_enumerated: reparse failed");
    parts.push_back(std::move(c));
    models.push_back(std::move(m));
  }
  Converted result = parts[0];
  Model& merged = models[0];
  const char* opset = opset_name(options.target);
  auto& fn = (*merged.mutable_mlprogram()->mutable_functions())["main"];
  auto& block = (*fn.mutable_block_specializations())[opset];
  auto* desc = merged.mutable_description();
  for (size_t k = 1; k < models.size(); ++k) {
    const std::string where = "[coreml] enumerated shape " + std::to_string(k) + ": ";
    if (parts[k].inputs != result.inputs || parts[k].outputs != result.outputs) return unsupported(where, "the partition's inputs or outputs differ");
    const auto& fk = models[k].mlprogram().functions().at("main");
    const auto& bk = fk.block_specializations().at(opset);
    if (bk.operations_size() != block.operations_size()) return unsupported(where, "the programs have different op counts");
    for (int i = 0; i < fn.inputs_size(); ++i) {
      if (!merge_type(*fn.mutable_inputs(i)->mutable_type(), fk.inputs(i).type())) return unsupported(where, "input ", i, " changes rank or dtype");
    }
    for (int i = 0; i < block.operations_size(); ++i) {
      Status s = merge_op(*block.mutable_operations(i), bk.operations(i), result.package.weights, parts[k].package.weights);
      if (!s.ok()) return s.with_prefix(where);
    }
    if (parts[k].package.weights != result.package.weights) return unsupported(where, "weights differ (shape-dependent constants)");
  }
  // Feature descriptions: varying inputs list their shapes; varying outputs leave the shape unset.
  int varying_inputs = 0;
  for (int i = 0; i < desc->input_size(); ++i) {
    auto* arr = desc->mutable_input(i)->mutable_type()->mutable_multiarraytype();
    bool varies = false;
    for (const auto& m : models) varies = varies || !same(m.description().input(i), models[0].description().input(i));
    if (!varies) continue;
    ++varying_inputs;
    auto* shapes = arr->mutable_enumeratedshapes();
    for (const auto& m : models) {
      auto* s = shapes->add_shapes();
      for (int64_t d : m.description().input(i).type().multiarraytype().shape()) s->add_shape(d);
    }
  }
  if (varying_inputs > 1 && options.target != Target::macos15) {
    return unsupported("[coreml] ", varying_inputs, " inputs have enumerated shapes; before macOS 15 Core ML allows one");
  }
  for (int i = 0; i < desc->output_size(); ++i) {
    bool varies = false;
    for (const auto& m : models) varies = varies || !same(m.description().output(i), models[0].description().output(i));
    if (varies) desc->mutable_output(i)->mutable_type()->mutable_multiarraytype()->clear_shape();
  }
  ORCHARD_ASSIGN_OR_RETURN(result.package.model, serialize_model(merged));
  return result;
}

}  // namespace orchard::coreml
