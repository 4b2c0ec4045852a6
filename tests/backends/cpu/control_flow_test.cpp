#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

ValueInfo info(const std::string& name, DType dt = DType::float32) {
  ValueInfo v;
  v.name = name;
  v.dtype = dt;
  return v;
}

graph::Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  graph::Node n;
  n.name = op + "_" + out[0];
  n.op_type = op;
  n.opset = 17;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// A graph with no inputs whose single output is Identity(`outer`), an enclosing-scope name.
std::shared_ptr<graph::Graph> identity_of(const std::string& outer, const std::string& out) {
  auto g = std::make_shared<graph::Graph>();
  g->nodes.push_back(node("Identity", {outer}, {out}));
  g->outputs = {info(out)};
  return g;
}

Tensor vec(std::vector<float> v) { return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v); }

TEST(ControlFlow, IfPicksBranchReadingOuterScope) {
  for (bool c : {true, false}) {
    auto y = run_op(OpCase("If", 13)
                        .input("c", Tensor::scalar<bool>(c)).attr("then_branch", identity_of("a", "t")).attr("else_branch", identity_of("b", "e"))
                        .input("a", vec({1})).input("b", vec({2})));
    // a and b are extra node inputs here only so the harness declares them as graph inputs; If ignores them.
    ASSERT_TRUE(y.ok()) << y.status().to_string();
    expect_tensor_near((*y)[0].tensor(), vec({c ? 1.0f : 2.0f}));
  }
}

TEST(ControlFlow, IfRejectsNonScalarCondition) {
  auto y = run_op(OpCase("If", 13)
                      .input("c", Tensor::from_vector<bool>({2}, {true, false}))
                      .attr("then_branch", identity_of("c", "t")).attr("else_branch", identity_of("c", "e")));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("one element"), std::string::npos) << y.status().message();
}

// Loop body: x_out = x_in + one; scan = Identity(x_out); cond_out = Identity(cond_in).
std::shared_ptr<graph::Graph> counting_body() {
  auto g = std::make_shared<graph::Graph>();
  g->inputs = {info("i", DType::int64), info("cond_in", DType::boolean), info("x_in")};
  g->initializers["one"] = vec({1, 1});
  g->nodes.push_back(node("Identity", {"cond_in"}, {"cond_out"}));
  g->nodes.push_back(node("Add", {"x_in", "one"}, {"x_out"}));
  g->nodes.push_back(node("Identity", {"x_out"}, {"scan"}));
  g->outputs = {info("cond_out", DType::boolean), info("x_out"), info("scan")};
  return g;
}

TEST(ControlFlow, LoopCarriesValuesAndStacksScanOutputs) {
  auto y = run_op(OpCase("Loop", 13)
                      .input("m", Tensor::scalar<int64_t>(3)).input("cond", Tensor::scalar<bool>(true)).input("x", vec({0, 10}))
                      .attr("body", counting_body()).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), vec({3, 13}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({3, 2}, {1, 11, 2, 12, 3, 13}));
}

TEST(ControlFlow, LoopWithFalseConditionRunsNoIteration) {
  auto y = run_op(OpCase("Loop", 13)
                      .omitted_input().input("cond", Tensor::scalar<bool>(false)).input("x", vec({5, 6}))
                      .attr("body", counting_body()).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), vec({5, 6}));
  EXPECT_EQ((*y)[1].tensor().dim(0), 0);
}

TEST(ControlFlow, IfInsideLoopReadsTopLevelValue) {
  // body: scan = If(cond_in) then Identity(m) else Identity(i); `m` is read two scopes up.
  auto body = std::make_shared<graph::Graph>();
  body->inputs = {info("i", DType::int64), info("cond_in", DType::boolean), info("x_in")};
  graph::Node if_node = node("If", {"cond_in"}, {"scan"});
  graph::Attribute then_a, else_a;
  then_a.type = else_a.type = graph::Attribute::Type::g;
  then_a.g = identity_of("m", "t");
  else_a.g = identity_of("i", "e");
  if_node.attributes["then_branch"] = then_a;
  if_node.attributes["else_branch"] = else_a;
  if_node.implicit_inputs = {"i", "m"};  // as the importer computes
  body->nodes.push_back(node("Identity", {"cond_in"}, {"cond_out"}));
  body->nodes.push_back(node("Identity", {"x_in"}, {"x_out"}));
  body->nodes.push_back(if_node);
  body->outputs = {info("cond_out", DType::boolean), info("x_out"), info("scan", DType::int64)};
  auto y = run_op(OpCase("Loop", 13)
                      .input("m", Tensor::scalar<int64_t>(2)).input("cond", Tensor::scalar<bool>(true)).input("x", vec({1}))
                      .attr("body", body).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), vec({1}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<int64_t>({2}, {2, 2}));
}

TEST(ControlFlow, Scan9ReverseDirectionAndOutputAxis) {
  // Running sum over rows of x, scanned last row first; scan output stacked along axis 1.
  auto body = std::make_shared<graph::Graph>();
  body->inputs = {info("s_in"), info("row")};
  body->nodes.push_back(node("Add", {"s_in", "row"}, {"s_out"}));
  body->nodes.push_back(node("Identity", {"s_out"}, {"scan"}));
  body->outputs = {info("s_out"), info("scan")};
  Tensor x = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  auto y = run_op(OpCase("Scan", 11)
                      .input("init", vec({0, 0})).input("x", x).attr("body", body).attr("num_scan_inputs", int64_t{1})
                      .attr("scan_input_directions", std::vector<int64_t>{1}).attr("scan_output_axes", std::vector<int64_t>{1})
                      .outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), vec({9, 12}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2, 3}, {5, 8, 9, 6, 10, 12}));
}

TEST(ControlFlow, Scan8BatchWithSequenceLens) {
  auto body = std::make_shared<graph::Graph>();
  body->inputs = {info("s_in"), info("v")};
  body->nodes.push_back(node("Add", {"s_in", "v"}, {"s_out"}));
  body->nodes.push_back(node("Identity", {"s_out"}, {"scan"}));
  body->outputs = {info("s_out"), info("scan")};
  Tensor init = Tensor::from_vector<float>({2, 1}, {0, 100});
  Tensor x = Tensor::from_vector<float>({2, 3, 1}, {1, 2, 3, 4, 5, 6});
  auto y = run_op(OpCase("Scan", 8)
                      .input("lens", Tensor::from_vector<int64_t>({2}, {3, 2})).input("init", init).input("x", x)
                      .attr("body", body).attr("num_scan_inputs", int64_t{1}).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 1}, {6, 109}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2, 3, 1}, {1, 3, 6, 104, 109, 0}));
}

TEST(ControlFlow, ScanRejectsMismatchedScanLengths) {
  auto body = std::make_shared<graph::Graph>();
  body->inputs = {info("a"), info("b")};
  body->nodes.push_back(node("Add", {"a", "b"}, {"o"}));
  body->outputs = {info("o")};
  auto y = run_op(OpCase("Scan", 11)
                      .input("a", vec({1, 2})).input("b", vec({1, 2, 3})).attr("body", body).attr("num_scan_inputs", int64_t{2}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("steps"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
