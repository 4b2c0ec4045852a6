// Builds small ONNX models in tests, without files from elsewhere:
//   ModelBuilder b(17);
//   b.input("x", onnx::TensorProto::FLOAT, {"batch", 4}).output("y", onnx::TensorProto::FLOAT, {"batch", 4});
//   b.node("Relu", {"x"}, {"y"});
//   std::string path = b.save(::testing::TempDir() + "relu.onnx");
#pragma once

#include <onnx/onnx_pb.h>

#include <fstream>
#include <string>
#include <vector>

namespace orchard::testing {

// A dim of a declared shape: a size or a symbol.
struct D {
  int64_t value = -1;
  std::string symbol;
  D(int64_t v) : value(v) {}       // NOLINT: implicit for brace lists
  D(int v) : value(v) {}           // NOLINT
  D(const char* s) : symbol(s) {}  // NOLINT
};

// Declares `v` as a tensor named `name` of ONNX element type `elem` with `dims`.
inline void set_type(onnx::ValueInfoProto* v, const std::string& name, int elem, std::initializer_list<D> dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (const D& d : dims) {
    auto* dim = shape->add_dim();
    if (d.symbol.empty()) dim->set_dim_value(d.value);
    else dim->set_dim_param(d.symbol);
  }
}

// Appends a node named "<op>_<count>" to `g`.
inline onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, std::vector<std::string> ins,
                                 std::vector<std::string> outs, const std::string& domain = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + std::to_string(g->node_size()));
  if (!domain.empty()) n->set_domain(domain);
  for (auto& i : ins) n->add_input(i);
  for (auto& o : outs) n->add_output(o);
  return n;
}

class ModelBuilder {
 public:
  using D = testing::D;

  explicit ModelBuilder(int opset = 17, int ir_version = 8) {
    model_.set_ir_version(ir_version);
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    model_.mutable_graph()->set_name("test");
  }

  ModelBuilder& input(const std::string& name, int elem, std::initializer_list<D> dims) {
    set_type(model_.mutable_graph()->add_input(), name, elem, dims);
    return *this;
  }
  ModelBuilder& output(const std::string& name, int elem, std::initializer_list<D> dims) {
    set_type(model_.mutable_graph()->add_output(), name, elem, dims);
    return *this;
  }
  // Adds a float initializer of `dims` filled with `fill`.
  ModelBuilder& initializer(const std::string& name, std::vector<int64_t> dims, float fill) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    std::vector<float> data(static_cast<size_t>(n), fill);
    t->set_raw_data(data.data(), data.size() * sizeof(float));
    return *this;
  }
  onnx::NodeProto& node(const std::string& op, std::vector<std::string> ins, std::vector<std::string> outs) {
    return *add_node(model_.mutable_graph(), op, std::move(ins), std::move(outs));
  }
  std::string bytes() const { return model_.SerializeAsString(); }
  // Writes the model to `path` and returns the path.
  std::string save(const std::string& path) const {
    std::ofstream out(path, std::ios::binary);
    model_.SerializeToOstream(&out);
    return path;
  }
  onnx::ModelProto& proto() { return model_; }

 private:
  onnx::ModelProto model_;
};

}  // namespace orchard::testing
