// The rewrite passes that emit only standard ONNX ops: no-op elimination, shape folding, Conv affine
// folding, layer-norm fusion. Each pattern is checked for the rewrite and for unchanged outputs, and
// near-misses for being left alone.
#include "graph/passes/pass_testing.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes::testing {
namespace {

// ---- no-op elimination ----

TEST(EliminateNoOps, IdentityBetweenNodesIsRemoved) {
  ModelBuilder b;
  b.input("x", kFloat, {"n", 4}).output("y", kFloat, {"n", 4});
  b.node("Relu", {"x"}, {"r"});
  b.node("Identity", {"r"}, {"i"});
  b.node("Sigmoid", {"i"}, {"y"});
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 1);
  EXPECT_EQ(op_counts(*g), (std::map<std::string, int>{{"Relu", 1}, {"Sigmoid", 1}}));
  EXPECT_EQ(g->nodes[1].inputs[0], "r");
  expect_same_outputs(b);
}

TEST(EliminateNoOps, IdentityIntoAGraphOutputRenamesItsProducer) {
  ModelBuilder b;
  b.input("x", kFloat, {"n", 4}).output("y", kFloat, {"n", 4});
  b.node("Relu", {"x"}, {"r"});
  b.node("Identity", {"r"}, {"y"});
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 1);
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].outputs[0], "y") << "the graph output keeps its name";
  expect_same_outputs(b);
}

TEST(EliminateNoOps, IdentityWhoseSourceIsAlsoReadElsewhereStays) {
  // y = Identity(r) is a graph output and r is read by another node: renaming r's producer would be wrong.
  ModelBuilder b;
  b.input("x", kFloat, {"n", 4}).output("y", kFloat, {"n", 4}).output("z", kFloat, {"n", 4});
  b.node("Relu", {"x"}, {"r"});
  b.node("Identity", {"r"}, {"y"});
  b.node("Neg", {"r"}, {"z"});
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 0);
  EXPECT_EQ(g->nodes.size(), 3u);
  // Input straight to output: nothing to rename either.
  ModelBuilder c;
  c.input("x", kFloat, {"n", 4}).output("y", kFloat, {"n", 4});
  c.node("Identity", {"x"}, {"y"});
  auto h = import(c);
  EXPECT_EQ(*eliminate_no_ops(*h, {}), 0);
}

TEST(EliminateNoOps, TransposePairsCancelOrMerge) {
  ModelBuilder b;
  b.input("x", kFloat, {"n", 3, 5}).output("y", kFloat, {"n", 3, 5}).output("z", kFloat, {3, "n", 5});
  attr_ints(b.node("Transpose", {"x"}, {"t1"}), "perm", {0, 2, 1});
  attr_ints(b.node("Transpose", {"t1"}, {"t2"}), "perm", {0, 2, 1});
  b.node("Relu", {"t2"}, {"y"});
  attr_ints(b.node("Transpose", {"x"}, {"u1"}), "perm", {2, 0, 1});
  attr_ints(b.node("Transpose", {"u1"}, {"z"}), "perm", {2, 1, 0});  // [5,n,3] → [3,n,5]
  auto g = import(b);
  const int n = *eliminate_no_ops(*g, {});
  EXPECT_EQ(n, 2);
  EXPECT_EQ(op_counts(*g), (std::map<std::string, int>{{"Relu", 1}, {"Transpose", 1}}));
  for (const auto& node : g->nodes) {
    if (node.op_type == "Relu") {
      EXPECT_EQ(node.inputs[0], "x") << "the cancelled pair is bypassed";
    }
    if (node.op_type == "Transpose") {
      EXPECT_EQ(node.inputs[0], "x");
      EXPECT_EQ(node.outputs[0], "z");
      EXPECT_EQ(node.attr_ints("perm"), (std::vector<int64_t>{1, 0, 2}));  // q[k] = p1[p2[k]]
    }
  }
  expect_same_outputs(b);
}

TEST(EliminateNoOps, ConcatOfOneInputGoesAndItsTransposesMerge) {
  // GPT-2's keys: Transpose to heads, Concat with no cache, Transpose for the product → one Transpose.
  ModelBuilder b;
  b.input("x", kFloat, {2, 5, 3, 4}).output("y", kFloat, {2, 3, 4, 5});
  attr_ints(b.node("Transpose", {"x"}, {"t1"}), "perm", {0, 2, 1, 3});
  attr_int(b.node("Concat", {"t1"}, {"c"}), "axis", -2);
  attr_ints(b.node("Transpose", {"c"}, {"y"}), "perm", {0, 1, 3, 2});
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 2);
  ASSERT_EQ(op_counts(*g), (std::map<std::string, int>{{"Transpose", 1}}));
  EXPECT_EQ(g->nodes[0].attr_ints("perm"), (std::vector<int64_t>{0, 2, 3, 1}));
  expect_same_outputs(b);
}

TEST(EliminateNoOps, ConcatOfOneInputGoesWhenOnlyTheTransposeGivesItsRank) {
  // With symbolic dims GPT-2's heads have no inferred shape (their Reshape's target is computed at run time):
  // the rank comes from the Transpose producing the Concat's input. Here a Reshape to a shape of unknown length.
  ModelBuilder b;
  b.input("x", kFloat, {2, 3, 4, 5}).input("s", onnx::TensorProto::INT64, {"k"});
  b.output("y", kFloat, {"a", "b", "c", "d"});
  b.node("Reshape", {"x", "s"}, {"r"});
  attr_ints(b.node("Transpose", {"r"}, {"t1"}), "perm", {0, 2, 1, 3});
  attr_int(b.node("Concat", {"t1"}, {"c"}), "axis", -2);
  attr_ints(b.node("Transpose", {"c"}, {"y"}), "perm", {0, 1, 3, 2});
  auto g = import(b);
  EXPECT_FALSE(declared_shape(*g, "t1")) << "the test needs a Concat input of unknown shape";
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 2);
  ASSERT_EQ(op_counts(*g), (std::map<std::string, int>{{"Reshape", 1}, {"Transpose", 1}}));
  for (const auto& node : g->nodes) {
    if (node.op_type == "Transpose") {
      EXPECT_EQ(node.attr_ints("perm"), (std::vector<int64_t>{0, 2, 3, 1}));
    }
  }
}

TEST(EliminateNoOps, ConcatOfTwoInputsStays) {
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("y", kFloat, {4, 3});
  attr_int(b.node("Concat", {"x", "x"}, {"y"}), "axis", 0);
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 0);
  EXPECT_EQ(g->nodes.size(), 1u);
}

TEST(EliminateNoOps, TransposeReadTwiceIsNotMerged) {
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("t1", kFloat, {3, 2}).output("y", kFloat, {2, 3});
  b.node("Transpose", {"x"}, {"t1"});
  b.node("Transpose", {"t1"}, {"y"});
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 0) << "t1 is a graph output";
  EXPECT_EQ(g->nodes.size(), 2u);
}

TEST(EliminateNoOps, ReshapeToTheSameShapeIsRemovedOtherReshapesStay) {
  ModelBuilder b;
  b.input("x", kFloat, {2, 6}).output("y", kFloat, {3, 4});
  int_init(b, "same", {2}, {2, 6});
  int_init(b, "other", {2}, {3, 4});
  b.node("Reshape", {"x", "same"}, {"r"});
  b.node("Relu", {"r"}, {"s"});
  b.node("Reshape", {"s", "other"}, {"y"});
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 1);
  EXPECT_EQ(op_counts(*g), (std::map<std::string, int>{{"Relu", 1}, {"Reshape", 1}}));
  expect_same_outputs(b);
}

TEST(EliminateNoOps, ValueReadBySubgraphKeepsItsName) {
  // The If's branches read "i" by name: the Identity goes, and its source's producer now makes "i".
  ModelBuilder b;
  b.input("x", kFloat, {4}).input("c", onnx::TensorProto::BOOL, {}).output("y", kFloat, {4});
  b.node("Relu", {"x"}, {"r"});
  b.node("Identity", {"r"}, {"i"});
  auto& node = b.node("If", {"c"}, {"y"});
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = node.add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* sub = a->mutable_g();
    sub->set_name(branch);
    orchard::testing::add_node(sub, std::string(branch) == "then_branch" ? "Neg" : "Abs", {"i"}, {"o"});
    orchard::testing::set_type(sub->add_output(), "o", kFloat, {4});
  }
  auto g = import(b);
  EXPECT_EQ(*eliminate_no_ops(*g, {}), 1);
  EXPECT_EQ(op_counts(*g)["Identity"], 0);
  EXPECT_EQ(g->nodes[0].outputs[0], "i");
  expect_same_outputs(b, 6);
  // With "r" read by another node too, renaming is impossible: the Identity stays.
  b.output("z", kFloat, {4});
  b.node("Neg", {"r"}, {"z"});
  auto h = import(b);
  EXPECT_EQ(*eliminate_no_ops(*h, {}), 0);
}

// ---- shape folding ----

TEST(FoldShapes, KnownDimsOfAShapeBecomeConstantsUnknownOnesStay) {
  // y = Reshape(x, [Shape(x)[0], Shape(x)[1] * Shape(x)[2]]) the way exporters write it: the batch dim
  // is symbolic, the others fold.
  ModelBuilder b;
  b.input("x", kFloat, {"n", 3, 4}).output("y", kFloat, {"n", 12});
  int_init(b, "i0", {}, {0});
  int_init(b, "i1", {}, {1});
  int_init(b, "i2", {}, {2});
  int_init(b, "ax", {1}, {0});
  b.node("Shape", {"x"}, {"s"});
  b.node("Gather", {"s", "i0"}, {"d0"});
  b.node("Gather", {"s", "i1"}, {"d1"});
  b.node("Gather", {"s", "i2"}, {"d2"});
  b.node("Mul", {"d1", "d2"}, {"d12"});
  b.node("Unsqueeze", {"d0", "ax"}, {"u0"});
  b.node("Unsqueeze", {"d12", "ax"}, {"u12"});
  attr_int(b.node("Concat", {"u0", "u12"}, {"shape"}), "axis", 0);
  b.node("Reshape", {"x", "shape"}, {"y"});
  auto g = optimized(b);
  auto ops = op_counts(*g);
  EXPECT_EQ(ops["Gather"], 1) << "only the symbolic dim is still gathered";
  EXPECT_EQ(ops["Mul"], 0) << "3 * 4 folded";
  EXPECT_EQ(ops["Unsqueeze"], 1);
  auto basic = optimized(b, OptimizationLevel::basic);
  EXPECT_EQ(op_counts(*basic)["Gather"], 3) << "basic folds no shapes";
  expect_same_outputs(b);
}

TEST(FoldShapes, FullyStaticShapeAndSliceFold) {
  ModelBuilder b;
  b.input("x", kFloat, {2, 3, 4}).input("z", kFloat, {"n", 5, 6}).output("y", kFloat, {6, 4}).output("w", kFloat, {"n", 30});
  int_init(b, "start", {1}, {1});
  int_init(b, "end", {1}, {3});
  int_init(b, "m1", {1}, {-1});
  b.node("Shape", {"x"}, {"sx"});
  b.node("ReduceProd", {"sx"}, {"unused"});
  int_init(b, "rs", {2}, {6, 4});
  b.node("Reshape", {"x", "rs"}, {"y"});
  b.node("Shape", {"z"}, {"sz"});
  b.node("Slice", {"sz", "start", "end"}, {"tail"});  // [5, 6]: known although dim 0 is not
  attr_int(b.node("ReduceProd", {"tail"}, {"p"}), "keepdims", 1);
  attr_int(b.node("Concat", {"m1", "p"}, {"shape2"}), "axis", 0);
  b.node("Reshape", {"z", "shape2"}, {"w"});
  auto g = optimized(b);
  auto ops = op_counts(*g);
  EXPECT_EQ(ops["Shape"], 0);
  EXPECT_EQ(ops["Slice"], 0);
  EXPECT_EQ(ops["Concat"], 0);
  EXPECT_EQ(ops["Reshape"], 2);
  expect_same_outputs(b);
}

TEST(FoldShapes, ShapeThatIsAGraphOutputStaysComputed) {
  ModelBuilder b;
  b.input("x", kFloat, {2, 3}).output("s", onnx::TensorProto::INT64, {2});
  b.node("Shape", {"x"}, {"s"});
  auto g = import(b);
  EXPECT_EQ(*fold_shapes(*g, {}), 0);
  EXPECT_EQ(g->nodes.size(), 1u);
}

// ---- Conv affine folding ----

// x [n,3,7,7] → Conv(W [4,3,3,3], B [4]) → ...
void conv_front(ModelBuilder& b, bool bias = true) {
  b.input("x", kFloat, {"n", 3, 7, 7});
  random_init(b, "W", {4, 3, 3, 3}, 1);
  if (bias) random_init(b, "B", {4}, 2);
  auto& c = b.node("Conv", bias ? std::vector<std::string>{"x", "W", "B"} : std::vector<std::string>{"x", "W"}, {"c"});
  attr_ints(c, "pads", {1, 1, 1, 1});
}

TEST(FoldConvAffine, BatchNormFoldsIntoTheConv) {
  for (bool bias : {true, false}) {
    ModelBuilder b;
    conv_front(b, bias);
    b.output("y", kFloat, {"n", 4, 7, 7});
    random_init(b, "gamma", {4}, 3);
    random_init(b, "beta", {4}, 4);
    random_init(b, "mean", {4}, 5);
    random_init(b, "var", {4}, 6, 2.f, 0.5f);  // positive
    attr_float(b.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}), "epsilon", 1e-3f);
    auto g = import(b);
    EXPECT_EQ(*fold_conv_affine(*g, {}), 1);
    EXPECT_EQ(op_counts(*g), (std::map<std::string, int>{{"Conv", 1}}));
    EXPECT_EQ(g->nodes[0].outputs[0], "y");
    EXPECT_EQ(g->nodes[0].inputs.size(), 3u) << "a bias is made when the Conv had none";
    expect_same_outputs(b);
  }
}

TEST(FoldConvAffine, PerChannelMulAndAddFoldInEitherOperandOrder) {
  ModelBuilder b;
  conv_front(b);
  b.output("y", kFloat, {"n", 4, 7, 7});
  random_init(b, "s", {4, 1, 1}, 7);
  random_init(b, "t", {1, 4, 1, 1}, 8);
  random_init(b, "u", {1}, 9);
  b.node("Mul", {"s", "c"}, {"m"});
  b.node("Add", {"m", "t"}, {"a"});
  b.node("Mul", {"a", "u"}, {"y"});  // a scalar is per-channel too
  auto g = import(b);
  EXPECT_EQ(*fold_conv_affine(*g, {}), 3);
  EXPECT_EQ(op_counts(*g), (std::map<std::string, int>{{"Conv", 1}}));
  expect_same_outputs(b);
}

TEST(FoldConvAffine, NearMissesStay) {
  // Not per channel (varies along width), not constant, Conv output read twice, BN in training mode.
  auto check = [](const std::function<void(ModelBuilder&)>& tail, const char* what) {
    ModelBuilder b;
    conv_front(b);
    b.output("y", kFloat, {"n", 4, 7, 7});
    tail(b);
    auto g = import(b);
    EXPECT_EQ(*fold_conv_affine(*g, {}), 0) << what;
  };
  check([](ModelBuilder& b) {
    random_init(b, "s", {1, 1, 1, 7}, 7);
    b.node("Mul", {"c", "s"}, {"y"});
  }, "varies along width");
  check([](ModelBuilder& b) {
    b.input("s", kFloat, {4, 1, 1});
    b.node("Mul", {"c", "s"}, {"y"});
  }, "not constant");
  check([](ModelBuilder& b) {
    random_init(b, "s", {4, 1, 1}, 7);
    b.node("Mul", {"c", "s"}, {"m"});
    b.node("Add", {"m", "c"}, {"y"});
  }, "conv output read twice");
}

// ---- layer norm ----

// x [n,5,8] → the exported layer-norm chain over the last axis → y.
void layer_norm_chain(ModelBuilder& b, bool pow, bool swap, int axis = -1) {
  b.input("x", kFloat, {"n", 5, 8}).output("y", kFloat, {"n", 5, 8});
  values_init(b, "two", {}, {2.f});
  values_init(b, "eps", {}, {1e-5f});
  random_init(b, "gamma", {8}, 11);
  random_init(b, "beta", {8}, 12);
  attr_ints(b.node("ReduceMean", {"x"}, {"m"}), "axes", {axis});
  b.node("Sub", {"x", "m"}, {"d"});
  if (pow) b.node("Pow", {"d", "two"}, {"sq"});
  else b.node("Mul", {"d", "d"}, {"sq"});
  attr_ints(b.node("ReduceMean", {"sq"}, {"v"}), "axes", {axis});
  b.node("Add", swap ? std::vector<std::string>{"eps", "v"} : std::vector<std::string>{"v", "eps"}, {"ve"});
  b.node("Sqrt", {"ve"}, {"sd"});
  b.node("Div", {"d", "sd"}, {"nrm"});
  b.node("Mul", swap ? std::vector<std::string>{"gamma", "nrm"} : std::vector<std::string>{"nrm", "gamma"}, {"sc"});
  b.node("Add", swap ? std::vector<std::string>{"beta", "sc"} : std::vector<std::string>{"sc", "beta"}, {"y"});
}

TEST(FuseLayerNorm, ChainBecomesLayerNormalization) {
  for (bool pow : {true, false}) {
    for (bool swap : {false, true}) {
      ModelBuilder b(14);  // LayerNormalization is opset 17: the fused node says so
      layer_norm_chain(b, pow, swap);
      auto g = import(b);
      EXPECT_EQ(*fuse_layer_norm(*g, {}), 1) << "pow " << pow << " swap " << swap;
      ASSERT_EQ(g->nodes.size(), 1u);
      EXPECT_EQ(g->nodes[0].op_type, "LayerNormalization");
      EXPECT_EQ(g->nodes[0].opset, 17);
      EXPECT_EQ(g->nodes[0].inputs, (std::vector<std::string>{"x", "gamma", "beta"}));
      expect_same_outputs(b);
    }
  }
}

TEST(FuseLayerNorm, OtherAxesAndReadIntermediatesStay) {
  {
    ModelBuilder b;
    layer_norm_chain(b, true, false, 1);
    auto g = import(b);
    EXPECT_EQ(*fuse_layer_norm(*g, {}), 0) << "axis 1 is not the last axis";
  }
  {
    ModelBuilder b;
    layer_norm_chain(b, true, false);
    b.output("v", kFloat, {"n", 5, 1});  // the variance is a graph output
    auto g = import(b);
    EXPECT_EQ(*fuse_layer_norm(*g, {}), 0);
  }
  {
    ModelBuilder b;
    layer_norm_chain(b, true, false);
    PassContext refuse;
    refuse.may_replace = [](const Node&, std::string_view, std::string_view, int) { return false; };
    auto g = import(b);
    EXPECT_EQ(*fuse_layer_norm(*g, refuse), 0) << "a backend of the chain lacks LayerNormalization";
  }
}

}  // namespace
}  // namespace orchard::graph::passes::testing
