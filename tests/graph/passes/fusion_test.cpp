// The passes that emit com.orchard ops (docs/fused_ops.md): GELU fusion and Conv/MatMul epilogue
// fusion. Each pattern is checked for the rewrite and, through a Session, for the same outputs as the
// unoptimized graph on random inputs of random sizes; near-misses must be left alone.
#include "graph/passes/pass_testing.hpp"
#include "testing/test_backends.hpp"

namespace orchard::graph::passes::testing {
namespace {

const Node* find_op(const Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) {
    if (n.op_type == op) return &n;
  }
  return nullptr;
}

// ---- GELU ----

enum class ErfForm { div_x_a_half, mul_half_x_a, a_half_x };

// x [n,6] → Relu → r → erf GELU of r (written as `form`) → y.
void erf_gelu(ModelBuilder& b, ErfForm form) {
  b.input("x", kFloat, {"n", 6}).output("y", kFloat, {"n", 6});
  values_init(b, "sqrt2", {}, {1.4142135f});
  values_init(b, "rsqrt2", {1}, {0.70710677f});
  values_init(b, "one", {}, {1.f});
  values_init(b, "half", {}, {0.5f});
  b.node("Relu", {"x"}, {"r0"});
  b.node("Neg", {"r0"}, {"r"});  // GELU of a value with negative and zero parts
  if (form == ErfForm::div_x_a_half) b.node("Div", {"r", "sqrt2"}, {"s"});
  else b.node("Mul", {"rsqrt2", "r"}, {"s"});
  b.node("Erf", {"s"}, {"e"});
  b.node("Add", {"one", "e"}, {"a"});
  switch (form) {
    case ErfForm::div_x_a_half:
      b.node("Mul", {"r", "a"}, {"xa"});
      b.node("Mul", {"xa", "half"}, {"y"});
      break;
    case ErfForm::mul_half_x_a:
      b.node("Mul", {"half", "r"}, {"h"});
      b.node("Mul", {"a", "h"}, {"y"});
      break;
    case ErfForm::a_half_x:
      b.node("Mul", {"a", "half"}, {"ah"});
      b.node("Mul", {"r", "ah"}, {"y"});
      break;
  }
}

TEST(FuseGelu, ErfFormsBecomeGelu) {
  for (ErfForm form : {ErfForm::div_x_a_half, ErfForm::mul_half_x_a, ErfForm::a_half_x}) {
    ModelBuilder b;
    erf_gelu(b, form);
    auto g = import(b);
    EXPECT_EQ(*fuse_gelu(*g, {}), 1) << static_cast<int>(form);
    const Node* gelu = find_op(*g, "Gelu");
    ASSERT_NE(gelu, nullptr);
    EXPECT_EQ(gelu->domain, "com.orchard");
    EXPECT_EQ(gelu->inputs[0], "r");
    EXPECT_EQ(gelu->outputs[0], "y");
    EXPECT_EQ(gelu->attr_string("approximate", ""), "none");
    EXPECT_EQ(g->nodes.size(), 3u);
    expect_same_outputs(b);
  }
}

TEST(FuseGelu, GptTanhFormBecomesTanhGelu) {
  ModelBuilder b;
  b.input("x", kFloat, {"n", "s", 6}).output("y", kFloat, {"n", "s", 6});
  values_init(b, "three", {}, {3.f});
  values_init(b, "c", {}, {0.044715f});
  values_init(b, "k", {}, {0.7978845834732056f});
  values_init(b, "one", {}, {1.f});
  values_init(b, "half", {}, {0.5f});
  b.node("Mul", {"x", "half"}, {"h"});
  b.node("Pow", {"x", "three"}, {"p"});
  b.node("Mul", {"p", "c"}, {"q"});
  b.node("Add", {"x", "q"}, {"r"});
  b.node("Mul", {"r", "k"}, {"s"});
  b.node("Tanh", {"s"}, {"t"});
  b.node("Add", {"t", "one"}, {"u"});
  b.node("Mul", {"h", "u"}, {"y"});
  auto g = import(b);
  EXPECT_EQ(*fuse_gelu(*g, {}), 1);
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].op_type, "Gelu");
  EXPECT_EQ(g->nodes[0].attr_string("approximate", ""), "tanh");
  expect_same_outputs(b);
}

TEST(FuseGelu, NearMissesStay) {
  {
    ModelBuilder b;  // the erf result is also a graph output
    erf_gelu(b, ErfForm::div_x_a_half);
    b.output("e", kFloat, {"n", 6});
    auto g = import(b);
    EXPECT_EQ(*fuse_gelu(*g, {}), 0);
  }
  {
    ModelBuilder b;  // divides by 2, not √2
    erf_gelu(b, ErfForm::div_x_a_half);
    b.proto().mutable_graph()->mutable_node(2)->set_input(1, "two");
    values_init(b, "two", {}, {2.f});
    auto g = import(b);
    EXPECT_EQ(*fuse_gelu(*g, {}), 0);
  }
  {
    ModelBuilder b;  // a backend of the chain lacks Gelu
    erf_gelu(b, ErfForm::div_x_a_half);
    PassContext refuse;
    refuse.may_replace = [](const Node&, std::string_view, std::string_view op, int) { return op != "Gelu"; };
    auto g = import(b);
    EXPECT_EQ(*fuse_gelu(*g, refuse), 0);
  }
}

// ---- MatMul / Conv fusion ----

// x [n,5] (or [n,s,5]) → MatMul(W [5,7]) → m.
void matmul_front(ModelBuilder& b, bool rank3 = false) {
  if (rank3) b.input("x", kFloat, {"n", "s", 5});
  else b.input("x", kFloat, {"n", 5});
  random_init(b, "W", {5, 7}, 21);
  random_init(b, "bias", {7}, 22);
  b.node("MatMul", {"x", "W"}, {"m"});
}

TEST(FuseConvMatMul, MatMulWithBiasInEitherOrder) {
  for (bool bias_first : {true, false}) {
    ModelBuilder b;
    matmul_front(b, true);
    b.output("y", kFloat, {"n", "s", 7});
    b.node("Add", bias_first ? std::vector<std::string>{"bias", "m"} : std::vector<std::string>{"m", "bias"}, {"y"});
    auto g = optimized(b);
    ASSERT_EQ(g->nodes.size(), 1u);
    EXPECT_EQ(g->nodes[0].op_type, "FusedMatMul");
    EXPECT_EQ(g->nodes[0].inputs, (std::vector<std::string>{"x", "W", "bias"}));
    EXPECT_EQ(g->nodes[0].attr_string("activation", "?"), "");
    expect_same_outputs(b);
  }
}

TEST(FuseConvMatMul, MatMulBiasErfGeluBecomesOneNode) {
  ModelBuilder b;
  matmul_front(b);
  b.output("y", kFloat, {"n", 7});
  values_init(b, "sqrt2", {}, {1.4142135f});
  values_init(b, "one", {}, {1.f});
  values_init(b, "half", {}, {0.5f});
  b.node("Add", {"bias", "m"}, {"r"});
  b.node("Div", {"r", "sqrt2"}, {"s"});
  b.node("Erf", {"s"}, {"e"});
  b.node("Add", {"e", "one"}, {"a"});
  b.node("Mul", {"r", "a"}, {"xa"});
  b.node("Mul", {"xa", "half"}, {"y"});
  auto g = optimized(b);
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].op_type, "FusedMatMul");
  EXPECT_EQ(g->nodes[0].attr_string("activation", ""), "Gelu");
  expect_same_outputs(b);
}

TEST(FuseConvMatMul, MatMulBiasResidualRelu) {
  ModelBuilder b;
  matmul_front(b);
  b.input("z", kFloat, {"n", 7}).output("y", kFloat, {"n", 7});
  b.node("Add", {"m", "bias"}, {"mb"});
  b.node("Add", {"z", "mb"}, {"mz"});
  b.node("Relu", {"mz"}, {"y"});
  auto g = optimized(b);
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].inputs, (std::vector<std::string>{"x", "W", "bias", "z"}));
  EXPECT_EQ(g->nodes[0].attr_string("activation", ""), "Relu");
  expect_same_outputs(b);
}

// x [n,s,5] → Reshape to [ns,5] → Gemm(W [5,7], bias [7]) → Reshape to [n,s,7] (the target computed from x's
// shape, as PyTorch exports a Linear layer) → y3; the values' types declared as shape inference would (unless
// `declare` is false: a model loaded with its dims symbolic and no intermediate shapes).
void flattened_gemm(ModelBuilder& b, int64_t trans_b = 0, bool swap_leading = false, bool declare = true) {
  b.input("x", kFloat, {"n", "s", 5});
  random_init(b, "W", trans_b ? std::vector<int64_t>{7, 5} : std::vector<int64_t>{5, 7}, 21);
  random_init(b, "bias", {7}, 22);
  int_init(b, "flat", {2}, {-1, 5});
  int_init(b, "zero", {1}, {0});
  int_init(b, "two", {1}, {2});
  int_init(b, "seven", {1}, {7});
  b.node("Reshape", {"x", "flat"}, {"a"});
  auto& gemm = b.node("Gemm", {"a", "W", "bias"}, {"g"});
  if (trans_b) {
    auto* t = gemm.add_attribute();
    t->set_name("transB");
    t->set_type(onnx::AttributeProto::INT);
    t->set_i(1);
  }
  b.node("Shape", {"x"}, {"xs"});
  b.node("Slice", {"xs", "zero", "two"}, {"lead"});
  b.node("Concat", {"lead", "seven"}, {"target"}).add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(0);
    return a;
  }());
  b.node("Reshape", {"g", "target"}, {"y3"});
  if (!declare) return;
  orchard::testing::set_type(b.proto().mutable_graph()->add_value_info(), "a", kFloat, {"ns", 5});
  orchard::testing::set_type(b.proto().mutable_graph()->add_value_info(), "g", kFloat, {"ns", 7});
  if (swap_leading) orchard::testing::set_type(b.proto().mutable_graph()->add_value_info(), "y3", kFloat, {"s", "n", 7});
  else orchard::testing::set_type(b.proto().mutable_graph()->add_value_info(), "y3", kFloat, {"n", "s", 7});
}

TEST(UnflattenGemm, FlattenedLinearBecomesOneFusedMatMul) {
  ModelBuilder b;
  flattened_gemm(b);
  b.input("z", kFloat, {"n", "s", 7}).output("y", kFloat, {"n", "s", 7});
  values_init(b, "half", {}, {0.5f});
  b.node("Add", {"y3", "z"}, {"r"});
  b.node("Relu", {"r"}, {"y"});
  auto g = optimized(b);
  const auto ops = op_counts(*g);
  EXPECT_EQ(ops.count("Reshape"), 0u);
  EXPECT_EQ(ops.count("Gemm"), 0u);
  const Node* fused = find_op(*g, "FusedMatMul");
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(fused->inputs, (std::vector<std::string>{"x", "W", "bias", "z"}));
  EXPECT_EQ(fused->attr_string("activation", ""), "Relu");
  expect_same_outputs(b);
}

TEST(UnflattenGemm, TanhGeluAfterTheLinearIsFused) {
  ModelBuilder b;
  flattened_gemm(b);
  b.output("y", kFloat, {"n", "s", 7});
  auto& gelu = b.node("Gelu", {"y3"}, {"y"});
  gelu.set_domain("com.orchard");
  auto* a = gelu.add_attribute();
  a->set_name("approximate");
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s("tanh");
  auto* o = b.proto().add_opset_import();
  o->set_domain("com.orchard");
  o->set_version(1);
  auto g = optimized(b);
  const Node* fused = find_op(*g, "FusedMatMul");
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(fused->attr_string("activation", ""), "GeluTanh");
  EXPECT_EQ(g->nodes.size(), 1u);
  expect_same_outputs(b);
}

// Without declared intermediate shapes unflatten_gemm cannot remove the Reshapes; the activation after the
// unflattening Reshape still joins the Gemm (it commutes with the Reshape), directly after a Gemm too.
TEST(FuseConvMatMul, GemmActivationThroughItsReshape) {
  {
    ModelBuilder b;
    flattened_gemm(b, 0, false, /*declare=*/false);
    b.output("y", kFloat, {"n", "s", 7});
    b.node("Sigmoid", {"y3"}, {"sg"});
    b.node("Mul", {"y3", "sg"}, {"y"});  // SiLU
    auto g = optimized(b);
    const auto ops = op_counts(*g);
    EXPECT_EQ(ops.count("Gemm") + ops.count("Sigmoid") + ops.count("Mul"), 0u);
    EXPECT_EQ(ops.at("Reshape"), 2);  // the flattening one, and the unflattening one now reading the FusedMatMul
    const Node* fused = find_op(*g, "FusedMatMul");
    ASSERT_NE(fused, nullptr);
    EXPECT_EQ(fused->inputs, (std::vector<std::string>{"a", "W", "bias"}));
    EXPECT_EQ(fused->attr_string("activation", ""), "SiLU");
    expect_same_outputs(b);
  }
  {  // Gemm → Relu, no Reshape
    ModelBuilder b;
    b.input("x", kFloat, {"m", 5}).output("y", kFloat, {"m", 7});
    random_init(b, "W", {5, 7}, 31);
    random_init(b, "bias", {7}, 32);
    b.node("Gemm", {"x", "W", "bias"}, {"g"});
    b.node("Relu", {"g"}, {"y"});
    auto g = optimized(b);
    ASSERT_EQ(g->nodes.size(), 1u);
    EXPECT_EQ(g->nodes[0].op_type, "FusedMatMul");
    EXPECT_EQ(g->nodes[0].attr_string("activation", ""), "Relu");
    expect_same_outputs(b);
  }
}

TEST(FuseConvMatMul, GemmNearMissesStay) {
  for (int variant = 0; variant < 2; ++variant) {
    ModelBuilder b;
    // 0: transB; 1: the product also read by a second Reshape
    flattened_gemm(b, variant == 0 ? 1 : 0, false, /*declare=*/false);
    b.output("y", kFloat, {"n", "s", 7});
    b.node("Relu", {"y3"}, {"y"});
    if (variant == 1) {
      b.node("Reshape", {"g", "target"}, {"y4"});
      b.output("y4", kFloat, {"n", "s", 7});
    }
    auto g = import(b);
    EXPECT_EQ(*fuse_conv_matmul(*g, {}), 0) << "variant " << variant;
    expect_same_outputs(b);
  }
}

TEST(UnflattenGemm, NearMissesStay) {
  for (int variant = 0; variant < 3; ++variant) {
    ModelBuilder b;
    // 0: transB; 1: unflattened to other leading dims; 2: the flat product also read elsewhere
    flattened_gemm(b, variant == 0 ? 1 : 0, variant == 1);
    if (variant == 1) b.output("y3", kFloat, {"s", "n", 7});
    else b.output("y3", kFloat, {"n", "s", 7});
    if (variant == 2) b.output("g", kFloat, {"ns", 7});
    auto g = import(b);
    EXPECT_EQ(*unflatten_gemm(*g, {}), 0) << "variant " << variant;
    if (variant != 1) expect_same_outputs(b);
  }
}

TEST(FuseConvMatMul, MatMulNearMissesStay) {
  {
    ModelBuilder b;  // m is read twice
    matmul_front(b);
    b.output("y", kFloat, {"n", 7}).output("w", kFloat, {"n", 7});
    b.node("Add", {"m", "bias"}, {"y"});
    b.node("Relu", {"m"}, {"w"});
    EXPECT_EQ(op_counts(*optimized(b))["com.orchard.FusedMatMul"], 0);
  }
  {
    ModelBuilder b;  // the added [7] is an input, not a constant, and not of the output's shape
    matmul_front(b);
    b.input("v", kFloat, {7}).output("y", kFloat, {"n", 7});
    b.node("Add", {"m", "v"}, {"y"});
    EXPECT_EQ(op_counts(*optimized(b))["com.orchard.FusedMatMul"], 0);
  }
  {
    ModelBuilder b;  // a residual that broadcasts (would grow the output) is no residual
    matmul_front(b);
    b.input("z", kFloat, {"k", "n", 7}).output("y", kFloat, {"k", "n", 7});
    b.node("Add", {"m", "z"}, {"y"});
    EXPECT_EQ(op_counts(*optimized(b))["com.orchard.FusedMatMul"], 0);
  }
  {
    ModelBuilder b;  // the biased value is a graph output
    matmul_front(b);
    b.output("mb", kFloat, {"n", 7}).output("y", kFloat, {"n", 7});
    b.node("Add", {"m", "bias"}, {"mb"});
    b.node("Relu", {"mb"}, {"y"});
    auto g = optimized(b);
    ASSERT_EQ(op_counts(*g)["com.orchard.FusedMatMul"], 1);
    EXPECT_EQ(op_counts(*g)["Relu"], 1) << "the Relu reads a graph output: not fused";
    expect_same_outputs(b);
  }
}

// x [n,3,6,6] → Conv(W [4,3,3,3], B [4], pads 1) → c, then `tail` → y [n,4,6,6].
ModelBuilder conv_model(const std::function<void(ModelBuilder&)>& tail, int opset = 17) {
  ModelBuilder b(opset);
  b.input("x", kFloat, {"n", 3, 6, 6}).output("y", kFloat, {"n", 4, 6, 6});
  random_init(b, "W", {4, 3, 3, 3}, 31);
  random_init(b, "B", {4}, 32);
  attr_ints(b.node("Conv", {"x", "W", "B"}, {"c"}), "pads", {1, 1, 1, 1});
  tail(b);
  return b;
}

TEST(FuseConvMatMul, ConvActivations) {
  struct Case {
    const char* name;
    std::function<void(ModelBuilder&)> tail;
    const char* activation;
  };
  const std::vector<Case> cases = {
      {"relu", [](ModelBuilder& b) { b.node("Relu", {"c"}, {"y"}); }, "Relu"},
      {"silu", [](ModelBuilder& b) {
         b.node("Sigmoid", {"c"}, {"s"});
         b.node("Mul", {"s", "c"}, {"y"});
       }, "SiLU"},
      {"hardswish", [](ModelBuilder& b) {
         attr_float(b.node("HardSigmoid", {"c"}, {"s"}), "alpha", 1.f / 6);
         b.node("Mul", {"c", "s"}, {"y"});
       }, "HardSwish"},
      {"clip", [](ModelBuilder& b) {
         values_init(b, "lo", {}, {0.f});
         values_init(b, "hi", {}, {6.f});
         b.node("Clip", {"c", "lo", "hi"}, {"y"});
       }, "Clip"},
      {"leaky", [](ModelBuilder& b) { attr_float(b.node("LeakyRelu", {"c"}, {"y"}), "alpha", 0.2f); }, "LeakyRelu"},
      {"sigmoid", [](ModelBuilder& b) { b.node("Sigmoid", {"c"}, {"y"}); }, "Sigmoid"},
      {"tanh", [](ModelBuilder& b) { b.node("Tanh", {"c"}, {"y"}); }, "Tanh"},
      {"hardswish_op", [](ModelBuilder& b) { b.node("HardSwish", {"c"}, {"y"}); }, "HardSwish"},
      {"residual_relu", [](ModelBuilder& b) {
         b.input("z", kFloat, {"n", 4, 6, 6});
         b.node("Add", {"c", "z"}, {"a"});
         b.node("Relu", {"a"}, {"y"});
       }, "Relu"},
  };
  for (const auto& c : cases) {
    ModelBuilder b = conv_model(c.tail);
    auto g = optimized(b);
    ASSERT_EQ(g->nodes.size(), 1u) << c.name;
    EXPECT_EQ(g->nodes[0].op_type, "FusedConv") << c.name;
    EXPECT_EQ(g->nodes[0].attr_string("activation", ""), c.activation) << c.name;
    EXPECT_EQ(g->nodes[0].attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1})) << c.name;
    expect_same_outputs(b);
  }
}

TEST(FuseConvMatMul, ClipBeforeOpset11UsesAttributes) {
  ModelBuilder b = conv_model([](ModelBuilder& b) {
    auto& n = b.node("Clip", {"c"}, {"y"});
    attr_float(n, "min", -1.f);
    attr_float(n, "max", 2.f);
  }, 9);
  auto g = optimized(b);
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].attr_floats("activation_params"), (std::vector<float>{-1.f, 2.f}));
  expect_same_outputs(b);
}

TEST(FuseConvMatMul, ConvNearMissesStay) {
  {
    // A Sigmoid that gates another value (squeeze-excite) is no SiLU: the Sigmoid alone is fused.
    ModelBuilder b = conv_model([](ModelBuilder& b) {
      b.input("v", kFloat, {"n", 4, 6, 6});
      b.node("Sigmoid", {"c"}, {"s"});
      b.node("Mul", {"s", "v"}, {"y"});
    });
    auto g = optimized(b);
    const Node* fused = find_op(*g, "FusedConv");
    ASSERT_NE(fused, nullptr);
    EXPECT_EQ(fused->attr_string("activation", ""), "Sigmoid");
    EXPECT_EQ(op_counts(*g)["Mul"], 1);
    expect_same_outputs(b);
  }
  // HardSigmoid with other constants, Clip with a non-constant bound, a Conv followed by nothing fusable.
  const std::vector<std::function<void(ModelBuilder&)>> tails = {
      [](ModelBuilder& b) {
        b.node("HardSigmoid", {"c"}, {"s"});  // alpha 0.2: not HardSwish
        b.node("Mul", {"c", "s"}, {"y"});
      },
      [](ModelBuilder& b) {
        b.input("hi", kFloat, {});
        b.node("Clip", {"c", "", "hi"}, {"y"});
      },
      [](ModelBuilder& b) { b.node("Neg", {"c"}, {"y"}); },
  };
  for (size_t k = 0; k < tails.size(); ++k) {
    ModelBuilder b = conv_model(tails[k]);
    auto g = optimized(b);
    EXPECT_EQ(op_counts(*g)["com.orchard.FusedConv"], 0) << k;
    expect_same_outputs(b);
  }
}

TEST(FuseConvMatMul, ValueReadBySubgraphIsNotFusedThrough) {
  ModelBuilder b;
  matmul_front(b);
  b.input("cond", onnx::TensorProto::BOOL, {}).output("y", kFloat, {"n", 7}).output("w", kFloat, {"n", 7});
  b.node("Add", {"m", "bias"}, {"mb"});
  b.node("Relu", {"mb"}, {"y"});
  auto& node = b.node("If", {"cond"}, {"w"});
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = node.add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* sub = a->mutable_g();
    sub->set_name(branch);
    orchard::testing::add_node(sub, "Neg", {"mb"}, {"o"});
    orchard::testing::set_type(sub->add_output(), "o", kFloat, {"n", 7});
  }
  auto g = optimized(b);
  const Node* fused = find_op(*g, "FusedMatMul");
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(fused->outputs[0], "mb") << "the bias is fused, the Relu is not: the If reads mb";
  EXPECT_EQ(op_counts(*g)["Relu"], 1);
}

TEST(FuseConvMatMul, FusionKeepsWorkOnABackendWithoutTheFusedOp) {
  // simdev runs MatMul, Add and Relu but no com.orchard op: fusing would move the work to the CPU.
  ModelBuilder b;
  matmul_front(b);
  b.output("y", kFloat, {"n", 7});
  b.node("Add", {"m", "bias"}, {"mb"});
  b.node("Relu", {"mb"}, {"y"});
  SessionOptions o;
  o.custom_backends = {std::make_shared<orchard::testing::SimDeviceBackend>()};
  o.backend_preference = {"simdev", "cpu"};
  auto s = load(b, OptimizationLevel::extended, o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->backends(), (std::vector<std::string>{"simdev"}));
  EXPECT_EQ(s->model_info().optimized_node_count, 3);
  auto g = import(b);
  auto stats = runtime::optimize_graph(*g, {o.custom_backends[0]}, OptimizationLevel::extended);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(op_counts(*g)["com.orchard.FusedMatMul"], 0);
}

TEST(FuseConvMatMul, ModelInfoReportsEachStep) {
  ModelBuilder b = conv_model([](ModelBuilder& b) { b.node("Relu", {"c"}, {"y"}); });
  auto s = load(b, OptimizationLevel::extended, nchw_cpu_options());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->model_info().optimized_node_count, 1);
  bool saw = false;
  for (const auto& [step, n] : s->model_info().optimization_steps) {
    if (step == "fuse_conv_matmul") {
      EXPECT_EQ(n, 1);
      saw = true;
    }
  }
  EXPECT_TRUE(saw);
  auto none = load(b, OptimizationLevel::none);
  EXPECT_EQ(none->model_info().optimized_node_count, 2);
  EXPECT_TRUE(none->model_info().optimization_steps.empty());
}

}  // namespace
}  // namespace orchard::graph::passes::testing
