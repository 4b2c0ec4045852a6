// Packed weights are not held twice: during a load, the data of a constant whose only reader packed it at create
// (OpKernel::packed_inputs) is freed (CompiledGraph::compile's release_packed), and runs give the same outputs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "orchard/session.hpp"
#include "testing/model_builder.hpp"

namespace orchard {
namespace {

using testing::ModelBuilder;
constexpr int kFloat = onnx::TensorProto::FLOAT;

// `nchw`: the CPU backend told not to ask for channels-last convolutions (ORCHARD_CPU_CHANNELS_LAST=0), so its own
// NCHW kernels run them.
std::unique_ptr<Session> load(const ModelBuilder& b, bool release, bool nchw = false) {
  if (!release) setenv("ORCHARD_RELEASE_PACKED", "0", 1);
  if (nchw) setenv("ORCHARD_CPU_CHANNELS_LAST", "0", 1);
  const std::string bytes = b.bytes();
  SessionOptions o;
  o.intra_op_threads = 1;
  o.backend_preference = {"cpu"};
  auto s = Session::load_from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), o);
  unsetenv("ORCHARD_RELEASE_PACKED");
  unsetenv("ORCHARD_CPU_CHANNELS_LAST");
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(*s) : nullptr;
}

Tensor random_tensor(Shape shape, uint32_t seed) {
  Tensor t = Tensor::empty(DType::float32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// Runs both sessions on the same inputs and expects bit-equal outputs.
void expect_same_outputs(const Session& a, const Session& b, const NamedValues& inputs) {
  auto ya = a.run(inputs);
  auto yb = b.run(inputs);
  ASSERT_TRUE(ya.ok()) << ya.status().to_string();
  ASSERT_TRUE(yb.ok()) << yb.status().to_string();
  ASSERT_EQ(ya->size(), yb->size());
  for (size_t i = 0; i < ya->size(); ++i) {
    const Tensor& ta = (*ya)[i].second.tensor();
    const Tensor& tb = (*yb)[i].second.tensor();
    ASSERT_EQ(ta.shape(), tb.shape()) << (*ya)[i].first;
    EXPECT_EQ(std::memcmp(ta.raw_data(), tb.raw_data(), ta.nbytes()), 0) << (*ya)[i].first;
  }
}

TEST(ReleasePackedConstants, FreesWeightsOnlyEveryReaderPacked) {
  ModelBuilder b;
  b.input("x", kFloat, {"n", 8}).input("u", kFloat, {16, 16});
  b.output("y", kFloat, {"n", 4}).output("d", kFloat, {16, 16}).output("o", kFloat, {4});
  b.initializer("w", {8, 16}, 0.25f);   // MatMul's B only: packed, freed
  b.initializer("v", {16, 16}, -0.5f);  // MatMul's B and Add's input (Add reads it): kept
  b.initializer("g", {16, 4}, 0.75f);   // Gemm's B only: packed, freed
  b.initializer("o", {4}, 2.0f);        // a graph output: kept
  b.node("MatMul", {"x", "w"}, {"a"});
  b.node("MatMul", {"a", "v"}, {"c"});
  b.node("Add", {"v", "u"}, {"d"});
  b.node("Gemm", {"c", "g"}, {"y"});
  auto released = load(b, true);
  auto kept = load(b, false);
  ASSERT_TRUE(released && kept);
  EXPECT_EQ(released->model_info().released_weight_bytes, (8 * 16 + 16 * 4) * 4);
  EXPECT_EQ(kept->model_info().released_weight_bytes, 0);
  const NamedValues inputs{{"x", Value(random_tensor({3, 8}, 1))}, {"u", Value(random_tensor({16, 16}, 2))}};
  expect_same_outputs(*released, *kept, inputs);
  auto again = released->run(inputs);  // the freed weights stay freed across runs
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ((*again)[2].second.tensor().data<float>()[3], 2.0f);  // the constant output kept its data
}

TEST(ReleasePackedConstants, ConvolutionWeightsButNotDepthwiseOnes) {
  ModelBuilder b;
  b.input("x", kFloat, {1, 3, 8, 8}).output("y", kFloat, {1, 4, 8, 8});
  b.initializer("w", {4, 3, 3, 3}, 0.1f);  // a dense 3x3 convolution: packed, freed
  b.initializer("k", {4, 1, 3, 3}, 0.2f);  // depthwise: read at run, kept
  auto& conv = b.node("Conv", {"x", "w"}, {"h"});
  auto* pads = conv.add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) pads->add_ints(1);
  auto& dw = b.node("Conv", {"h", "k"}, {"y"});
  *dw.add_attribute() = *pads;
  auto* group = dw.add_attribute();
  group->set_name("group");
  group->set_type(onnx::AttributeProto::INT);
  group->set_i(4);
  // The CPU's NCHW kernels pack the dense weight and read the depthwise one at run.
  auto released = load(b, true, /*nchw=*/true);
  auto kept = load(b, false, /*nchw=*/true);
  ASSERT_TRUE(released && kept);
  EXPECT_EQ(released->model_info().released_weight_bytes, 4 * 3 * 3 * 3 * 4);
  expect_same_outputs(*released, *kept, {{"x", Value(random_tensor({1, 3, 8, 8}, 3))}});
}

}  // namespace
}  // namespace orchard
