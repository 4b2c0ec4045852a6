#include "runtime/graph_optimizer.hpp"

#include <gtest/gtest.h>

#include "runtime/executor.hpp"

namespace orchard::runtime {
namespace {

graph::Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  graph::Node n;
  n.name = op + "_" + out[0];
  n.op_type = op;
  n.opset = 14;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// y = x + (a + b); (a + b) is constant; "unused" feeds nothing the outputs read.
std::shared_ptr<graph::Graph> sample_graph() {
  auto g = std::make_shared<graph::Graph>();
  g->initializers["a"] = Tensor::from_vector<float>({2}, {1, 2});
  g->initializers["b"] = Tensor::from_vector<float>({2}, {10, 20});
  ValueInfo x;
  x.name = "x";
  x.dtype = DType::float32;
  g->inputs.push_back(x);
  ValueInfo y;
  y.name = "y";
  g->outputs.push_back(y);
  g->nodes.push_back(node("Add", {"a", "b"}, {"ab"}));
  g->nodes.push_back(node("Relu", {"x"}, {"unused"}));
  g->nodes.push_back(node("Add", {"x", "ab"}, {"y"}));
  return g;
}

TEST(GraphOptimizer, FoldsConstantsAndRemovesDeadNodes) {
  auto g = sample_graph();
  auto chain = available_backends(SessionOptions{});
  auto stats = optimize_graph(*g, chain);
  ASSERT_TRUE(stats.ok()) << stats.status().to_string();
  EXPECT_EQ(stats->folded, 1);
  EXPECT_EQ(stats->removed, 1);
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].outputs[0], "y");
  ASSERT_TRUE(g->initializers.count("ab"));
  EXPECT_FALSE(g->initializers.count("a")) << "inputs of folded nodes are dropped";

  auto compiled = CompiledGraph::compile(g, chain, nullptr);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  ThreadPool pool(1);
  RunEnv env;
  env.pool = &pool;
  env.allocator = &default_allocator();
  std::vector<Value> in{Value(Tensor::from_vector<float>({2}, {100, 200}))};
  auto out = (*compiled)->run(in, env, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_FLOAT_EQ((*out)[0].tensor().data<float>()[0], 111.f);
  EXPECT_FLOAT_EQ((*out)[0].tensor().data<float>()[1], 222.f);
}

TEST(GraphOptimizer, LeavesRandomOpsAlone) {
  auto g = std::make_shared<graph::Graph>();
  ValueInfo y;
  y.name = "y";
  g->outputs.push_back(y);
  g->initializers["shape_like"] = Tensor::from_vector<float>({2}, {0, 0});
  g->nodes.push_back(node("RandomUniformLike", {"shape_like"}, {"y"}));
  auto stats = optimize_graph(*g, available_backends(SessionOptions{}));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->folded, 0);
  EXPECT_EQ(g->nodes.size(), 1u);
}

}  // namespace
}  // namespace orchard::runtime
