// Enumerated shapes: one package for several input shapes, its varying dims unknown, checked by round
// trips at every listed shape.
#include <gtest/gtest.h>

#include <random>

#include "backends/coreml/mil_builder.hpp"
#include "backends/coreml/onnx_bridge.hpp"
#include "onnx/proto_convert.hpp"
#include "testing/model_builder.hpp"

namespace orchard::coreml {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

void weight(ModelBuilder& b, const std::string& name, std::vector<int64_t> dims, std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(n);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  for (auto& x : v) x = nd(rng);
  onnx_import::tensor_to_proto(Tensor::from_vector<float>(Shape(dims), v), name, *b.proto().mutable_graph()->add_initializer());
}

// Conv → Relu → GlobalAveragePool → Flatten → Gemm with a symbolic batch N.
std::string cnn() {
  std::mt19937 rng(7);
  ModelBuilder b;
  b.input("x", F, {"N", 2, 6, 6});
  weight(b, "w", {3, 2, 3, 3}, rng);
  weight(b, "fc", {4, 3}, rng);
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Relu", {"c"}, {"r"});
  b.node("GlobalAveragePool", {"r"}, {"p"});
  b.node("Flatten", {"p"}, {"f"});
  auto& g = b.node("Gemm", {"f", "fc"}, {"y"});
  auto* a = g.add_attribute();
  a->set_name("transB");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(1);
  b.output("y", F, {"N", 4});
  return b.bytes();
}

struct Specialized {
  std::vector<std::string> bytes;
  std::vector<graph::Model> models;
  std::vector<const graph::Graph*> graphs() const {
    std::vector<const graph::Graph*> g;
    for (const auto& m : models) g.push_back(m.graph.get());
    return g;
  }
};

Specialized specialize_all(const std::string& model, const std::vector<std::map<std::string, int64_t>>& dims) {
  Specialized s;
  for (const auto& d : dims) {
    auto bytes = specialize_onnx(model, {}, d);
    EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
    auto m = import_for_conversion(*bytes);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    s.bytes.push_back(*bytes);
    s.models.push_back(std::move(*m));
  }
  return s;
}

TEST(CoreMLEnumerated, OnePackageServesEveryListedBatch) {
  const Specialized s = specialize_all(cnn(), {{{"N", 1}}, {{"N", 3}}, {{"N", 5}}});
  const std::vector<size_t> all{0, 1, 2, 3, 4};
  for (Precision p : {Precision::fp32, Precision::fp16}) {
    ConvertOptions o;
    o.precision = p;
    auto conv = convert_enumerated(s.graphs(), all, o);
    ASSERT_TRUE(conv.ok()) << conv.status().to_string();
    CoreML::Specification::Model m;
    ASSERT_TRUE(m.ParseFromString(conv->package.model));
    const auto& arr = m.description().input(0).type().multiarraytype();
    EXPECT_EQ(std::vector<int64_t>(arr.shape().begin(), arr.shape().end()), (std::vector<int64_t>{1, 2, 6, 6}));  // the default
    ASSERT_TRUE(arr.has_enumeratedshapes());
    ASSERT_EQ(arr.enumeratedshapes().shapes_size(), 3);
    EXPECT_EQ(arr.enumeratedshapes().shapes(2).shape(0), 5);
    EXPECT_EQ(m.description().output(0).type().multiarraytype().shape_size(), 0);  // varying output: shape unset
    const auto& fn = m.mlprogram().functions().at("main");
    EXPECT_TRUE(fn.inputs(0).type().tensortype().dimensions(0).has_unknown());
    EXPECT_TRUE(fn.inputs(0).type().tensortype().dimensions(1).has_constant());
    bool reshape_infers = false;
    for (const auto& op : fn.block_specializations().at("CoreML6").operations()) {
      if (op.type() != "reshape") continue;
      const auto& v = op.inputs().at("shape").arguments(0).value().immediatevalue().tensor().ints();
      reshape_infers = v.values(0) == -1 && v.values(1) == 3;
    }
    EXPECT_TRUE(reshape_infers);
    const std::vector<Converted> packages{*conv};
    std::mt19937 rng(3);
    for (size_t k = 0; k < s.bytes.size(); ++k) {
      const int64_t n = std::vector<int64_t>{1, 3, 5}[k];
      Tensor x = Tensor::empty(DType::float32, Shape{n, 2, 6, 6});
      std::normal_distribution<float> nd;
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
      auto r = round_trip(s.bytes[k], o, {{"x", Value(x)}}, &packages);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      EXPECT_LE(r->max_abs_error, (p == Precision::fp32 ? 1e-5 : 1e-2) * std::max(1.0, r->max_ref)) << "batch " << n;
    }
  }
}

TEST(CoreMLEnumerated, ShapeDependentConstantsAndTooManyInputsAreRefused) {
  // y = x · N, where N comes from Shape(x): folding makes it a constant that differs per shape.
  ModelBuilder b;
  b.input("x", F, {"N", 3});
  b.node("Shape", {"x"}, {"s"});
  onnx_import::tensor_to_proto(Tensor::scalar<int64_t>(0), "zero", *b.proto().mutable_graph()->add_initializer());
  b.node("Gather", {"s", "zero"}, {"n"});
  b.node("Cast", {"n"}, {"sf"}).add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("to");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(F);
    return a;
  }());
  b.node("Mul", {"x", "sf"}, {"y"});
  b.output("y", F, {"N", 3});
  const Specialized s = specialize_all(b.bytes(), {{{"N", 3}}, {{"N", 4}}});
  ASSERT_EQ(s.models[0].graph->nodes.size(), 1u);  // only the Mul is left
  auto conv = convert_enumerated(s.graphs(), std::vector<size_t>{0}, {});
  ASSERT_FALSE(conv.ok());
  EXPECT_NE(conv.status().message().find("depends on the input shape"), std::string::npos) << conv.status().to_string();

  ModelBuilder two;
  two.input("a", F, {"N", 3});
  two.input("c", F, {"M", 3});
  two.node("Concat", {"a", "c"}, {"y"}).add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(0);
    return a;
  }());
  two.output("y", F, {"K", 3});
  const Specialized t = specialize_all(two.bytes(), {{{"N", 1}, {"M", 2}}, {{"N", 2}, {"M", 3}}});
  auto refused = convert_enumerated(t.graphs(), std::vector<size_t>{0}, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("before macOS 15"), std::string::npos) << refused.status().to_string();
  ConvertOptions o15;
  o15.target = Target::macos15;
  EXPECT_TRUE(convert_enumerated(t.graphs(), std::vector<size_t>{0}, o15).ok());
}

}  // namespace
}  // namespace orchard::coreml
