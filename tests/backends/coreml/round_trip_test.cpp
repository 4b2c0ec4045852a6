// Core ML converter round trips, op by op on random shapes: ONNX → ML Program → reader → CPU backend,
// compared with the ONNX model on the CPU backend. fp32 programs must match closely, fp16 within fp16
// tolerance. Also: what is not claimed, and why.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "backends/coreml/onnx_bridge.hpp"
#include "onnx/proto_convert.hpp"
#include "testing/model_builder.hpp"

namespace orchard::coreml {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

struct OpCase {
  std::string name;
  // Builds the model for `rng`'s random shapes; the graph's output is "y".
  std::function<void(ModelBuilder&, std::mt19937&)> build;
};

int64_t rnd(std::mt19937& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

// Adds a random float initializer.
void weight(ModelBuilder& b, const std::string& name, std::vector<int64_t> dims, std::mt19937& rng, float scale = 0.5f) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(n);
  std::normal_distribution<float> nd(0.0f, scale);
  for (auto& x : v) x = nd(rng);
  onnx_import::tensor_to_proto(Tensor::from_vector<float>(Shape(dims), v), name, *b.proto().mutable_graph()->add_initializer());
}

void ints(ModelBuilder& b, const std::string& name, std::vector<int64_t> v) {
  onnx_import::tensor_to_proto(Tensor::from_vector<int64_t>(Shape{static_cast<int64_t>(v.size())}, v), name,
                               *b.proto().mutable_graph()->add_initializer());
}

void input(ModelBuilder& b, const std::string& name, const std::vector<int64_t>& dims) {
  auto* v = b.proto().mutable_graph()->add_input();
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(F);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
}

onnx::AttributeProto* attr(onnx::NodeProto& n, const std::string& name) {
  auto* a = n.add_attribute();
  a->set_name(name);
  return a;
}
void set_i(onnx::NodeProto& n, const std::string& k, int64_t v) {
  auto* a = attr(n, k);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void set_f(onnx::NodeProto& n, const std::string& k, float v) {
  auto* a = attr(n, k);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void set_s(onnx::NodeProto& n, const std::string& k, const std::string& v) {
  auto* a = attr(n, k);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}
void set_ints(onnx::NodeProto& n, const std::string& k, std::vector<int64_t> v) {
  auto* a = attr(n, k);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

// Random NCHW shape.
std::vector<int64_t> image(std::mt19937& rng) { return {rnd(rng, 1, 2), rnd(rng, 1, 4), rnd(rng, 5, 9), rnd(rng, 5, 9)}; }

std::vector<OpCase> cases() {
  std::vector<OpCase> c;
  auto unary = [&](const std::string& op, std::function<void(onnx::NodeProto&)> attrs = nullptr) {
    c.push_back({op, [op, attrs](ModelBuilder& b, std::mt19937& rng) {
                   input(b, "x", {rnd(rng, 1, 3), rnd(rng, 2, 6), rnd(rng, 2, 6)});
                   auto& n = b.node(op, {"x"}, {"y"});
                   if (attrs) attrs(n);
                 }});
  };
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Softplus", "Erf", "Exp", "Abs", "Floor", "Ceil", "Sin", "Cos", "Neg", "HardSwish"}) unary(op);
  unary("LeakyRelu", [](onnx::NodeProto& n) { set_f(n, "alpha", 0.2f); });
  unary("Elu", [](onnx::NodeProto& n) { set_f(n, "alpha", 0.7f); });
  unary("HardSigmoid", [](onnx::NodeProto& n) { set_f(n, "alpha", 0.3f); });
  unary("Softmax", [](onnx::NodeProto& n) { set_i(n, "axis", 1); });
  c.push_back({"SqrtLogOfAbs", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {rnd(rng, 1, 4), rnd(rng, 1, 5)});
                 b.node("Abs", {"x"}, {"a"});
                 weight(b, "one", {1}, rng, 0.0f);
                 b.node("Sqrt", {"a"}, {"s"});
                 b.node("Log", {"s"}, {"y"});
               }});
  c.push_back({"Clip", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {rnd(rng, 1, 4), rnd(rng, 1, 5)});
                 weight(b, "lo", {}, rng);
                 onnx_import::tensor_to_proto(Tensor::scalar<float>(0.6f), "hi", *b.proto().mutable_graph()->add_initializer());
                 b.node("Clip", {"x", "", "hi"}, {"y"});
               }});
  for (const char* op : {"Add", "Sub", "Mul", "Max", "Min"}) {
    c.push_back({std::string(op) + "Broadcast", [op](ModelBuilder& b, std::mt19937& rng) {
                   const int64_t m = rnd(rng, 1, 4), n = rnd(rng, 1, 5);
                   input(b, "x", {rnd(rng, 1, 3), m, n});
                   input(b, "z", {m, 1});
                   b.node(op, {"x", "z"}, {"y"});
                 }});
  }
  c.push_back({"DivPowConst", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {rnd(rng, 1, 3), rnd(rng, 1, 5)});
                 onnx_import::tensor_to_proto(Tensor::scalar<float>(2.0f), "two", *b.proto().mutable_graph()->add_initializer());
                 b.node("Pow", {"x", "two"}, {"p"});
                 b.node("Add", {"p", "two"}, {"q"});
                 b.node("Div", {"x", "q"}, {"y"});
               }});
  c.push_back({"WhereGreaterEqualNot", [](ModelBuilder& b, std::mt19937& rng) {
                 const std::vector<int64_t> s{rnd(rng, 1, 3), rnd(rng, 2, 5)};
                 input(b, "x", s);
                 input(b, "z", s);
                 b.node("Greater", {"x", "z"}, {"g"});
                 b.node("Equal", {"x", "x"}, {"e"});
                 b.node("Not", {"g"}, {"ng"});
                 b.node("And", {"ng", "e"}, {"c"});
                 b.node("Where", {"c", "x", "z"}, {"y"});
               }});
  c.push_back({"MaskWithHugeConstant", [](ModelBuilder& b, std::mt19937& rng) {  // fp32 island in fp16 programs
                 const int64_t s = rnd(rng, 2, 6);
                 input(b, "x", {2, s});
                 input(b, "m", {2, s});
                 // Column 0 is never masked (m > -inf); other columns are masked where m <= 0.
                 std::vector<float> floor(s, 0.0f);
                 floor[0] = -INFINITY;
                 onnx_import::tensor_to_proto(Tensor::from_vector<float>(Shape{s}, floor), "floor", *b.proto().mutable_graph()->add_initializer());
                 onnx_import::tensor_to_proto(Tensor::scalar<float>(0.0f), "zero", *b.proto().mutable_graph()->add_initializer());
                 onnx_import::tensor_to_proto(Tensor::scalar<float>(-3.4e38f), "big", *b.proto().mutable_graph()->add_initializer());
                 b.node("Greater", {"m", "floor"}, {"keep"});
                 b.node("Where", {"keep", "zero", "big"}, {"bias"});
                 b.node("Add", {"x", "bias"}, {"scores"});
                 b.node("Softmax", {"scores"}, {"y"});
               }});
  c.push_back({"MatMulBatched", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t k = rnd(rng, 1, 8);
                 input(b, "x", {rnd(rng, 1, 3), rnd(rng, 1, 4), k});
                 weight(b, "w", {k, rnd(rng, 1, 6)}, rng);
                 b.node("MatMul", {"x", "w"}, {"y"});
               }});
  c.push_back({"GemmConstB", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t k = rnd(rng, 1, 8), n = rnd(rng, 1, 6);
                 input(b, "x", {rnd(rng, 1, 4), k});
                 weight(b, "w", {n, k}, rng);
                 weight(b, "bias", {n}, rng);
                 auto& g = b.node("Gemm", {"x", "w", "bias"}, {"y"});
                 set_i(g, "transB", 1);
                 set_f(g, "alpha", 0.5f);
                 set_f(g, "beta", 2.0f);
               }});
  c.push_back({"GemmRuntimeB", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t k = rnd(rng, 1, 8), m = rnd(rng, 1, 4);
                 input(b, "x", {k, m});
                 input(b, "z", {k, rnd(rng, 1, 5)});
                 auto& g = b.node("Gemm", {"x", "z"}, {"y"});
                 set_i(g, "transA", 1);
               }});
  c.push_back({"ConvGroupedStridedPadded", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t g = rnd(rng, 1, 2), cin = g * rnd(rng, 1, 2), cout = g * rnd(rng, 1, 3), k = rnd(rng, 1, 3);
                 input(b, "x", {1, cin, rnd(rng, 5, 9), rnd(rng, 5, 9)});
                 weight(b, "w", {cout, cin / g, k, k}, rng);
                 weight(b, "bias", {cout}, rng);
                 auto& n = b.node("Conv", {"x", "w", "bias"}, {"y"});
                 set_i(n, "group", g);
                 set_ints(n, "strides", {rnd(rng, 1, 2), rnd(rng, 1, 2)});
                 set_ints(n, "pads", {rnd(rng, 0, 1), 0, 1, rnd(rng, 0, 1)});
                 set_ints(n, "dilations", {rnd(rng, 1, 2), 1});
               }});
  c.push_back({"ConvSameUpper1d", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {1, 2, rnd(rng, 5, 12)});
                 weight(b, "w", {3, 2, 3}, rng);
                 auto& n = b.node("Conv", {"x", "w"}, {"y"});
                 set_s(n, "auto_pad", "SAME_UPPER");
                 set_ints(n, "strides", {2});
               }});
  c.push_back({"ConvTranspose", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {1, 2, rnd(rng, 3, 6), rnd(rng, 3, 6)});
                 weight(b, "w", {2, 3, 2, 2}, rng);
                 auto& n = b.node("ConvTranspose", {"x", "w"}, {"y"});
                 set_ints(n, "strides", {2, 2});
               }});
  c.push_back({"MaxPoolCeil", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", image(rng));
                 auto& n = b.node("MaxPool", {"x"}, {"y"});
                 set_ints(n, "kernel_shape", {3, 3});
                 set_ints(n, "strides", {2, 2});
                 set_ints(n, "pads", {1, 1, 1, 1});
                 set_i(n, "ceil_mode", rnd(rng, 0, 1));
               }});
  c.push_back({"AveragePoolExcludePad", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", image(rng));
                 auto& n = b.node("AveragePool", {"x"}, {"y"});
                 set_ints(n, "kernel_shape", {2, 3});
                 set_ints(n, "pads", {1, 0, 0, 1});
                 set_i(n, "count_include_pad", rnd(rng, 0, 1));
               }});
  c.push_back({"GlobalPools", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", image(rng));
                 b.node("GlobalAveragePool", {"x"}, {"a"});
                 b.node("GlobalMaxPool", {"x"}, {"m"});
                 b.node("Add", {"a", "m"}, {"y"});
               }});
  c.push_back({"BatchNorm", [](ModelBuilder& b, std::mt19937& rng) {
                 auto s = image(rng);
                 input(b, "x", s);
                 weight(b, "g", {s[1]}, rng);
                 weight(b, "be", {s[1]}, rng);
                 weight(b, "mu", {s[1]}, rng);
                 b.node("Abs", {"g"}, {"unused"});  // keeps a non-const-only node out of the way
                 onnx_import::tensor_to_proto(Tensor::from_vector<float>(Shape{s[1]}, std::vector<float>(s[1], 1.5f)), "var",
                                              *b.proto().mutable_graph()->add_initializer());
                 b.node("BatchNormalization", {"x", "g", "be", "mu", "var"}, {"y"});
               }});
  c.push_back({"LayerNormTinyEpsilon", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t d = rnd(rng, 2, 8);
                 input(b, "x", {rnd(rng, 1, 3), rnd(rng, 1, 4), d});
                 weight(b, "g", {d}, rng);
                 weight(b, "be", {d}, rng);
                 auto& n = b.node("LayerNormalization", {"x", "g", "be"}, {"y"});
                 set_f(n, "epsilon", 1e-12f);
               }});
  c.push_back({"InstanceNorm", [](ModelBuilder& b, std::mt19937& rng) {
                 auto s = image(rng);
                 input(b, "x", s);
                 weight(b, "g", {s[1]}, rng);
                 weight(b, "be", {s[1]}, rng);
                 b.node("InstanceNormalization", {"x", "g", "be"}, {"y"});
               }});
  c.push_back({"Reductions", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {rnd(rng, 1, 3), rnd(rng, 2, 5), rnd(rng, 2, 5)});
                 auto& m = b.node("ReduceMean", {"x"}, {"m"});
                 set_ints(m, "axes", {-1});
                 ints(b, "ax", {1});
                 auto& s = b.node("ReduceSum", {"x", "ax"}, {"s"});
                 set_i(s, "keepdims", 0);
                 auto& mx = b.node("ReduceMax", {"x"}, {"mx"});
                 set_ints(mx, "axes", {1, 2});
                 b.node("Unsqueeze", {"s", "ax"}, {"su"});
                 b.node("Add", {"m", "su"}, {"t"});
                 b.node("Add", {"t", "mx"}, {"y"});
               }});
  c.push_back({"ArgMaxCast", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {rnd(rng, 1, 3), rnd(rng, 2, 7)});
                 auto& n = b.node("ArgMax", {"x"}, {"i"});
                 set_i(n, "axis", 1);
                 auto& c2 = b.node("Cast", {"i"}, {"y"});
                 set_i(c2, "to", F);
               }});
  c.push_back({"ReshapeTransposeFlatten", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t a = rnd(rng, 1, 3), bb = rnd(rng, 1, 4), cc = rnd(rng, 1, 4);
                 input(b, "x", {a, bb * cc});
                 ints(b, "shape", {a, bb, cc});
                 b.node("Reshape", {"x", "shape"}, {"r"});
                 auto& t = b.node("Transpose", {"r"}, {"t"});
                 set_ints(t, "perm", {2, 0, 1});
                 auto& f = b.node("Flatten", {"t"}, {"y"});
                 set_i(f, "axis", 2);
               }});
  c.push_back({"ConcatSplit", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t r = rnd(rng, 1, 3), n1 = rnd(rng, 1, 4), n2 = rnd(rng, 1, 4);
                 input(b, "x", {r, n1});
                 input(b, "z", {r, n2});
                 auto& c1 = b.node("Concat", {"x", "z", "x"}, {"c"});
                 set_i(c1, "axis", 1);
                 ints(b, "sizes", {n2, 2 * n1});
                 auto& s = b.node("Split", {"c", "sizes"}, {"s0", "s1"});
                 set_i(s, "axis", 1);
                 b.node("ReduceSumSquare", {"s0"}, {"q0"});
                 b.node("Mul", {"s1", "q0"}, {"y"});
               }});
  c.push_back({"SliceNegativeStep", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", {rnd(rng, 2, 4), rnd(rng, 4, 8)});
                 ints(b, "starts", {-1, 1});
                 ints(b, "ends", {std::numeric_limits<int64_t>::min(), 1000});
                 ints(b, "axes", {0, 1});
                 ints(b, "steps", {-1, 2});
                 b.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"});
               }});
  c.push_back({"GatherEmbeddingAndElements", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t v = rnd(rng, 3, 9), d = rnd(rng, 1, 5);
                 input(b, "x", {2, d});
                 weight(b, "table", {v, d}, rng);
                 ints(b, "ids", {0, v - 1, -1, 1});
                 b.node("Gather", {"table", "ids"}, {"e"});
                 onnx_import::tensor_to_proto(Tensor::from_vector<int64_t>(Shape{2, 1}, {0, -1}), "gi", *b.proto().mutable_graph()->add_initializer());
                 auto& ge = b.node("GatherElements", {"x", "gi"}, {"g"});
                 set_i(ge, "axis", 1);
                 b.node("ReduceMean", {"e"}, {"m"});
                 b.node("Add", {"g", "m"}, {"y"});
               }});
  c.push_back({"ExpandTile", [](ModelBuilder& b, std::mt19937& rng) {
                 const int64_t n = rnd(rng, 1, 4);
                 input(b, "x", {n, 1});
                 ints(b, "shape", {2, n, 3});
                 b.node("Expand", {"x", "shape"}, {"e"});
                 ints(b, "reps", {1, 2, 1});
                 b.node("Tile", {"e", "reps"}, {"y"});
               }});
  for (const char* mode : {"constant", "reflect", "edge"}) {
    c.push_back({std::string("Pad_") + mode, [mode](ModelBuilder& b, std::mt19937& rng) {
                   input(b, "x", image(rng));
                   ints(b, "pads", {0, 0, 1, 2, 0, 0, 2, 1});
                   onnx_import::tensor_to_proto(Tensor::scalar<float>(0.75f), "v", *b.proto().mutable_graph()->add_initializer());
                   auto& n = b.node("Pad", {"x", "pads", std::string(mode) == "constant" ? "v" : ""}, {"y"});
                   set_s(n, "mode", mode);
                 }});
  }
  c.push_back({"ResizeNearest", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", image(rng));
                 onnx_import::tensor_to_proto(Tensor::from_vector<float>(Shape{4}, {1, 1, 2, 3}), "scales", *b.proto().mutable_graph()->add_initializer());
                 auto& n = b.node("Resize", {"x", "", "scales"}, {"y"});
                 set_s(n, "coordinate_transformation_mode", "asymmetric");
                 set_s(n, "nearest_mode", "floor");
               }});
  c.push_back({"ResizeBilinearHalfPixel", [](ModelBuilder& b, std::mt19937& rng) {
                 input(b, "x", image(rng));
                 onnx_import::tensor_to_proto(Tensor::from_vector<float>(Shape{4}, {1, 1, 2, 2}), "scales", *b.proto().mutable_graph()->add_initializer());
                 auto& n = b.node("Resize", {"x", "", "scales"}, {"y"});
                 set_s(n, "mode", "linear");
               }});
  return c;
}

NamedValues random_inputs(const std::string& onnx_bytes, std::mt19937& rng) {
  onnx::ModelProto m;
  m.ParseFromString(onnx_bytes);
  NamedValues out;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& in : m.graph().input()) {
    std::vector<int64_t> dims;
    for (const auto& d : in.type().tensor_type().shape().dim()) dims.push_back(d.dim_value());
    Tensor t = Tensor::empty(DType::float32, Shape(dims));
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
    out.emplace_back(in.name(), Value(t));
  }
  return out;
}

class CoreMLRoundTrip : public ::testing::TestWithParam<OpCase> {};

TEST_P(CoreMLRoundTrip, RandomShapesMatchInFp32AndFp16) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    std::mt19937 rng(seed);
    ModelBuilder b;
    GetParam().build(b, rng);
    b.proto().mutable_graph()->add_output()->set_name("y");
    auto specialized = specialize_onnx(b.bytes(), {}, {});  // infers the output's type
    ASSERT_TRUE(specialized.ok()) << specialized.status().to_string();
    const NamedValues inputs = random_inputs(*specialized, rng);
    for (Precision p : {Precision::fp32, Precision::fp16}) {
      ConvertOptions o;
      o.precision = p;
      o.target = seed == 2 ? Target::macos14 : Target::macos13;
      auto r = round_trip(*specialized, o, inputs);
      ASSERT_TRUE(r.ok()) << GetParam().name << " seed " << seed << ": " << r.status().to_string();
      ASSERT_EQ(r->claimed, r->nodes) << (r->unclaimed.empty() ? "" : r->unclaimed[0]);
      EXPECT_EQ(r->partitions.size(), 1u);
      const double tol = p == Precision::fp32 ? 1e-5 * std::max(1.0, r->max_ref) : 2e-2 * std::max(1.0, r->max_ref);
      EXPECT_LE(r->max_abs_error, tol) << GetParam().name << " seed " << seed << (p == Precision::fp16 ? " fp16" : " fp32");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, CoreMLRoundTrip, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<OpCase>& i) { return i.param.name; });

// Nodes Core ML cannot take are left out with the reason, and the rest still round-trips.
TEST(CoreMLCapability, UnclaimedNodesSayWhy) {
  ModelBuilder b;
  input(b, "x", {1, 4});
  std::mt19937 rng(1);
  weight(b, "w", {4, 20000}, rng, 0.1f);  // a dim above 16384
  b.node("Relu", {"x"}, {"r"});
  b.node("MatMul", {"r", "w"}, {"m"});
  b.node("TopK", {"m", "k"}, {"y", "idx"});
  ints(b, "k", {2});
  b.proto().mutable_graph()->add_output()->set_name("y");
  auto specialized = specialize_onnx(b.bytes(), {}, {});
  ASSERT_TRUE(specialized.ok()) << specialized.status().to_string();
  auto model = import_for_conversion(*specialized);
  ASSERT_TRUE(model.ok());
  Capability cap = get_capability(*model->graph, {});
  ASSERT_EQ(cap.claimed.size(), 3u);
  EXPECT_TRUE(cap.claimed[0]);
  EXPECT_FALSE(cap.claimed[1]);
  EXPECT_NE(cap.reasons[1].find("dim 20000 > 16384"), std::string::npos) << cap.reasons[1];
  EXPECT_FALSE(cap.claimed[2]);
  EXPECT_NE(cap.reasons[2].find("no Core ML builder for TopK"), std::string::npos) << cap.reasons[2];
  EXPECT_EQ(cap.partitions.size(), 1u);
}

TEST(CoreMLCapability, RuntimeWeightsRankAndSymbolicShapes) {
  ModelBuilder b;
  input(b, "x", {1, 2, 5, 5});
  input(b, "w", {3, 2, 3, 3});
  input(b, "z", {1, 1, 1, 1, 2, 3});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Relu", {"z"}, {"y6"});
  b.proto().mutable_graph()->add_output()->set_name("c");
  b.proto().mutable_graph()->add_output()->set_name("y6");
  auto specialized = specialize_onnx(b.bytes(), {}, {});
  ASSERT_TRUE(specialized.ok());
  auto model = import_for_conversion(*specialized);
  ASSERT_TRUE(model.ok());
  Capability cap = get_capability(*model->graph, {});
  EXPECT_NE(cap.reasons[0].find("weight must be a constant"), std::string::npos) << cap.reasons[0];
  EXPECT_NE(cap.reasons[1].find("rank 6 > 5"), std::string::npos) << cap.reasons[1];
  ModelBuilder sym;
  sym.input("x", F, {"N", 3});
  sym.node("Relu", {"x"}, {"y"});
  sym.output("y", F, {"N", 3});
  EXPECT_NE(specialize_onnx(sym.bytes(), {}, {}).status().message().find("dim 'N' is symbolic"), std::string::npos);
  EXPECT_TRUE(specialize_onnx(sym.bytes(), {}, {{"N", 4}}).ok());
}

}  // namespace
}  // namespace orchard::coreml
