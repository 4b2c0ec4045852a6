// The float16 session option's partition conversion (float16_partition.hpp), without a GPU: the converted graph
// declares float16 wherever the partition computes in float16 (the CUDA kernels commit to the declared dtype at
// creation), and a session on the simulated device in float16 mode keeps float32 at every partition edge.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/float16_partition.hpp"
#include "orchard/session.hpp"
#include "testing/model_builder.hpp"
#include "testing/test_backends.hpp"

namespace orchard {
namespace {

graph::Node make_node(std::string op, std::vector<std::string> ins, std::vector<std::string> outs) {
  graph::Node n;
  n.name = op + "_" + outs[0];
  n.op_type = std::move(op);
  n.opset = 17;
  n.inputs = std::move(ins);
  n.outputs = std::move(outs);
  return n;
}

ValueInfo info(const std::string& name, DType t) {
  ValueInfo v;
  v.name = name;
  v.dtype = t;
  return v;
}

// x -> MatMul(w) -> xw -> Add(b) -> h -> Cast(to=float) -> c -> Relu -> y; ConstantOfShape(shape) -> z;
// outside the partition: Add(h, w2) -> o. Every intermediate is declared float32, as shape inference leaves it.
graph::Graph typed_graph() {
  graph::Graph g;
  g.inputs = {info("x", DType::float32)};
  g.outputs = {info("y", DType::float32), info("z", DType::float32), info("o", DType::float32)};
  g.initializers.emplace("w", Tensor::from_vector<float>({2, 2}, {0.1f, 0.2f, 0.3f, 0.4f}));
  g.initializers.emplace("b", Tensor::from_vector<float>({2}, {1.5f, -2.5f}));
  g.initializers.emplace("w2", Tensor::from_vector<float>({2}, {7.f, 8.f}));
  g.initializers.emplace("shape", Tensor::from_vector<int64_t>({1}, {3}));
  g.nodes.push_back(make_node("MatMul", {"x", "w"}, {"xw"}));
  g.nodes.push_back(make_node("Add", {"xw", "b"}, {"h"}));
  graph::Node cast = make_node("Cast", {"h"}, {"c"});
  cast.attributes["to"].type = graph::Attribute::Type::i;
  cast.attributes["to"].i = 1;
  g.nodes.push_back(cast);
  g.nodes.push_back(make_node("Relu", {"c"}, {"y"}));
  graph::Node fill = make_node("ConstantOfShape", {"shape"}, {"z"});
  fill.attributes["value"].type = graph::Attribute::Type::t;
  fill.attributes["value"].t = Tensor::from_vector<float>({1}, {0.5f});
  g.nodes.push_back(fill);
  g.nodes.push_back(make_node("Add", {"h", "w2"}, {"o"}));
  for (const char* v : {"xw", "h", "c"}) g.value_info[v] = info(v, DType::float32);
  return g;
}

TEST(Float16Partition, DeclaresFloat16WhereThePartitionComputesInFloat16) {
  const graph::Graph g = typed_graph();
  runtime::PartitionSpec spec;
  spec.graph = &g;
  spec.nodes = {0, 1, 2, 3, 4};
  spec.inputs = {"x"};
  spec.outputs = {"h", "y", "z"};
  const backends::HalfPartition half = backends::make_half_partition(spec);
  ASSERT_NE(half.graph, nullptr);
  EXPECT_EQ(half.spec.graph, half.graph.get());
  EXPECT_EQ(half.spec.nodes, spec.nodes);
  const runtime::GraphView view(*half.graph, half.spec.nodes);
  // Edge values and intermediates: the kernels are created for what they will be handed.
  for (const char* v : {"x", "xw", "h", "c", "y", "z"}) EXPECT_EQ(view.type_of(v).dtype, DType::float16) << v;
  // Constants the partition reads are converted; integer ones are not; those it does not read are left out.
  ASSERT_NE(view.constant("w"), nullptr);
  EXPECT_EQ(view.constant("w")->dtype(), DType::float16);
  EXPECT_EQ(static_cast<float>(view.constant("w")->data<float16>()[3]), static_cast<float>(float16(0.4f)));
  EXPECT_EQ(view.constant("b")->dtype(), DType::float16);
  EXPECT_EQ(view.constant("shape")->dtype(), DType::int64);
  EXPECT_EQ(view.constant("w2"), nullptr);
  EXPECT_EQ(half.graph->nodes[2].attr_int("to", 0), 10);
  EXPECT_EQ(half.graph->nodes[4].attributes.at("value").t.dtype(), DType::float16);
  EXPECT_EQ(half.keep_half, (std::vector<bool>{false, false, false}));
  // The model's graph is untouched (other partitions, the CPU among them, read it in float32).
  const runtime::GraphView before(g, {});
  for (const char* v : {"x", "xw", "h", "c", "y"}) EXPECT_EQ(before.type_of(v).dtype, DType::float32) << v;
  EXPECT_EQ(g.initializers.at("w").dtype(), DType::float32);
  EXPECT_EQ(g.nodes[2].attr_int("to", 0), 1);
  EXPECT_EQ(g.nodes[4].attributes.at("value").t.dtype(), DType::float32);
}

TEST(Float16Partition, OutputsDeclaredFloat16StayFloat16) {
  graph::Graph g = typed_graph();
  g.outputs[0].dtype = DType::float16;  // y
  runtime::PartitionSpec spec{&g, {0, 1, 2, 3}, {"x"}, {"y", "h"}};
  EXPECT_EQ(backends::make_half_partition(spec).keep_half, (std::vector<bool>{true, false}));
}

TEST(Float16Partition, HostCastRefusesOtherDtypes) {
  auto r = backends::cast_float_on_host(Tensor::from_vector<int64_t>({1}, {3}), DType::float16, default_allocator());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("int64"), std::string::npos) << r.status().to_string();
  const Tensor f32 = Tensor::from_vector<float>({2}, {0.1f, -3.f});
  auto h = backends::cast_float_on_host(f32, DType::float16, default_allocator());
  ASSERT_TRUE(h.ok());
  auto f = backends::cast_float_on_host(*h, DType::float32, default_allocator());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->data<float>()[1], -3.f);
  EXPECT_NEAR(f->data<float>()[0], 0.1f, 1e-4);
}

// A session on the simulated device in float16 mode, its partitions split by a CPU node (Dropout) and a weight
// read by both device partitions and by the CPU: float32 at every edge, float16 accuracy, fp32 not bit-equal.
TEST(Float16Partition, SimulatedDeviceSessionKeepsFloat32AtEveryEdge) {
  testing::ModelBuilder m(17);
  m.input("x", onnx::TensorProto::FLOAT, {"batch", 16}).output("y", onnx::TensorProto::FLOAT, {"batch", 16});
  m.output("h", onnx::TensorProto::FLOAT, {"batch", 16});
  m.initializer("w", {16, 16}, 0.1f).initializer("bias", {16}, 0.3f);
  m.node("MatMul", {"x", "w"}, {"xw"});
  m.node("Add", {"xw", "bias"}, {"h"});
  m.node("Dropout", {"h"}, {"d"});         // on the CPU: not in the simulated device's op list
  m.node("Dropout", {"bias"}, {"bd"});     // the CPU reads the weight in float32
  m.node("Mul", {"d", "x"}, {"e"});
  m.node("Add", {"e", "bias"}, {"f"});
  m.node("Add", {"f", "bd"}, {"g"});
  m.node("Softmax", {"g"}, {"y"});
  const std::string bytes = m.bytes();
  auto load = [&](const std::string& device) {
    SessionOptions o;
    if (!device.empty()) o.custom_backends = {testing::make_test_backend(device)};
    o.backend_preference = device.empty() ? std::vector<std::string>{"cpu"} : std::vector<std::string>{device, "cpu"};
    o.intra_op_threads = 1;
    return Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), o);
  };
  auto hs = load("simdev16");
  ASSERT_TRUE(hs.ok()) << hs.status().to_string();
  auto cs = load("");
  ASSERT_TRUE(cs.ok()) << cs.status().to_string();
  int device_parts = 0;
  for (const auto& p : (*hs)->placement().partitions) device_parts += p.backend == "simdev16";
  EXPECT_GE(device_parts, 2) << "the CPU's Dropout splits the device's work";
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  Tensor x = Tensor::empty(DType::float32, {3, 16});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  auto hy = (*hs)->run({{"x", Value(x)}});
  ASSERT_TRUE(hy.ok()) << hy.status().to_string();
  auto cy = (*cs)->run({{"x", Value(x)}});
  ASSERT_TRUE(cy.ok()) << cy.status().to_string();
  for (size_t k = 0; k < 2; ++k) {
    const Tensor& got = (*hy)[k].second.tensor();
    const Tensor& want = (*cy)[k].second.tensor();
    ASSERT_EQ(got.dtype(), DType::float32) << "output " << k;
    ASSERT_EQ(got.shape(), want.shape());
    double scale = 1, worst = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(want.data<float>()[i])));
    }
    for (int64_t i = 0; i < want.numel(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(got.data<float>()[i] - want.data<float>()[i])));
    }
    EXPECT_LE(worst, 1e-2 * scale) << "output " << k;
    EXPECT_GT(worst, 0) << "output " << k << " is bit-identical to float32: was it run in float16?";
  }
  EXPECT_EQ((*hs)->failover_count(), 0) << "a float16 partition failed and the CPU ran it";
}

}  // namespace
}  // namespace orchard
