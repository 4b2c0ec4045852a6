// to_channels_last (src/graph/passes/layout.cpp) through a session whose first backend wants channels-last
// convolutions: a CPU kernel backend that says so (the CUDA backend says so in float16). The convolutions become
// FusedConv nhwc, the Transposes between them cancel, and the outputs equal the unoptimized graph's. Without such a
// backend nothing changes.
#include <map>
#include <random>

#include "backends/cpu/cpu_backend.hpp"
#include "backends/cpu/kernel_registry.hpp"
#include "core/cpu_features.hpp"
#include "backends/op_harness.hpp"
#include "graph/passes/pass_testing.hpp"
#include "runtime/kernel_backend.hpp"

namespace orchard::graph::passes::testing {
namespace {

// x [n, 3, 9, 7] → Conv 3x3 (pad 1) + bias → Relu → r; Conv 1x1 (stride 1) of r + r (residual) → Relu → s;
// MaxPool 2x2 of s → y; a depthwise Conv 3x3 (group 4, stride 2) of s → z.
void residual_block(ModelBuilder& b) {
  b.input("x", kFloat, {"n", 3, 9, 7});
  b.output("y", kFloat, {"n", 4, 4, 3}).output("z", kFloat, {"n", 4, 5, 4});
  random_init(b, "w1", {4, 3, 3, 3}, 1);
  random_init(b, "b1", {4}, 2);
  random_init(b, "w2", {4, 4, 1, 1}, 3);
  random_init(b, "w3", {4, 1, 3, 3}, 4);
  auto& c1 = b.node("Conv", {"x", "w1", "b1"}, {"c1"});
  attr_ints(c1, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r"});
  b.node("Conv", {"r", "w2"}, {"c2"});
  b.node("Add", {"c2", "r"}, {"a"});
  b.node("Relu", {"a"}, {"s"});
  auto& pool = b.node("MaxPool", {"s"}, {"y"});
  attr_ints(pool, "kernel_shape", {2, 2});
  attr_ints(pool, "strides", {2, 2});
  auto& dw = b.node("Conv", {"s", "w3"}, {"z"});
  attr_int(dw, "group", 4);
  attr_ints(dw, "pads", {1, 1, 1, 1});
  attr_ints(dw, "strides", {2, 2});
}

std::map<std::string, int> placed_ops(const Session& s) {
  std::map<std::string, int> ops;
  for (const auto& p : s.placement().partitions) {
    for (const auto& [op, count] : p.op_counts) ops[op] += count;
  }
  return ops;
}

TEST(ChannelsLast, ConvolutionsRunNhwcAndTheTransposesBetweenThemCancel) {
  ModelBuilder b;
  residual_block(b);
  auto nhwc = load(b, OptimizationLevel::extended, cpu_kernels_options(true));
  auto plain = load(b, OptimizationLevel::none);
  ASSERT_TRUE(nhwc && plain);
  const auto ops = placed_ops(*nhwc);
  EXPECT_EQ(ops.count("Conv"), 0u);
  EXPECT_EQ(ops.at("FusedConv"), 3);
  // x into NHWC, and s back to NCHW for the MaxPool; the block's own values stay NHWC (c2 reads r and its residual
  // r, the depthwise convolution reads s, without a Transpose).
  EXPECT_EQ(ops.at("Transpose"), 3) << "x in, s out for MaxPool, z out";
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (int64_t n : {1, 2}) {
    Tensor x = Tensor::empty(DType::float32, {n, 3, 9, 7});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
    auto got = nhwc->run({{"x", Value(x)}});
    auto want = plain->run({{"x", Value(x)}});
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    for (size_t k = 0; k < 2; ++k) {
      orchard::testing::expect_tensor_near((*got)[k].second.tensor(), (*want)[k].second.tensor(), 1e-4, 1e-5);
    }
  }
}

// A squeeze-and-excitation block and a residual Add between convolutions: GlobalAveragePool becomes a ReduceMean
// over NHWC's H and W, the Sigmoid, Mul and Add run on NHWC values, and only the model's input and output are
// transposed.
TEST(ChannelsLast, SqueezeExcitationAndResidualAddStayNhwc) {
  ModelBuilder b;
  b.input("x", kFloat, {"n", 8, 6, 5});
  b.output("y", kFloat, {"n", 8, 6, 5});
  random_init(b, "w1", {8, 8, 3, 3}, 11);
  random_init(b, "w2", {4, 8, 1, 1}, 12);
  random_init(b, "w3", {8, 4, 1, 1}, 13);
  random_init(b, "w4", {8, 8, 1, 1}, 14);
  attr_ints(b.node("Conv", {"x", "w1"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("GlobalAveragePool", {"c"}, {"g"});
  b.node("Conv", {"g", "w2"}, {"s1"});
  b.node("Relu", {"s1"}, {"s2"});
  b.node("Conv", {"s2", "w3"}, {"s3"});
  b.node("Sigmoid", {"s3"}, {"s"});
  b.node("Mul", {"c", "s"}, {"m"});
  b.node("Add", {"m", "c"}, {"a"});
  b.node("Conv", {"a", "w4"}, {"y"});
  auto nhwc = load(b, OptimizationLevel::extended, cpu_kernels_options(true));
  auto plain = load(b, OptimizationLevel::none);
  ASSERT_TRUE(nhwc && plain);
  const auto ops = placed_ops(*nhwc);
  EXPECT_EQ(ops.at("Transpose"), 2) << "x in and y out";
  EXPECT_EQ(ops.count("GlobalAveragePool"), 0u);
  EXPECT_EQ(ops.at("ReduceMean"), 1);
  EXPECT_EQ(ops.at("FusedConv"), 4);
  for (int64_t n : {1, 3}) {
    Tensor x = orchard::testing::random_float_tensor({n, 8, 6, 5}, static_cast<unsigned>(20 + n));
    auto got = nhwc->run({{"x", Value(x)}});
    auto want = plain->run({{"x", Value(x)}});
    ASSERT_TRUE(got.ok() && want.ok());
    orchard::testing::expect_tensor_near((*got)[0].second.tensor(), (*want)[0].second.tensor(), 1e-4, 1e-5);
  }
}

// ConvNeXt's residual: a layer scale [C, 1, 1] (a constant first input), per-channel and per-pixel constants
// [1, C, 1, 1] and [6, 5] between convolutions. The binary ops read NHWC copies of the constants, so the
// Transposes still cancel; outputs equal the unoptimized graph's (distinct values per channel and pixel, so a
// copy in the wrong order shows).
TEST(ChannelsLast, BinaryOpsWithConstantsStayNhwc) {
  ModelBuilder b;
  b.input("x", kFloat, {"n", 8, 6, 5});
  b.output("y", kFloat, {"n", 8, 6, 5});
  random_init(b, "w1", {8, 8, 3, 3}, 31);
  random_init(b, "w2", {8, 8, 1, 1}, 32);
  random_init(b, "w3", {8, 8, 1, 1}, 33);
  random_init(b, "scale", {8, 1, 1}, 34);
  random_init(b, "shift", {1, 8, 1, 1}, 35);
  random_init(b, "pixel", {6, 5}, 36);
  b.node("Conv", {"x", "w2"}, {"skip"});
  attr_ints(b.node("Conv", {"skip", "w1"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"});  // keeps the scale out of the convolution's weights
  b.node("Mul", {"scale", "r"}, {"m"});
  b.node("Add", {"m", "skip"}, {"a"});
  b.node("Sub", {"a", "shift"}, {"d"});
  b.node("Mul", {"d", "pixel"}, {"e"});
  b.node("Conv", {"e", "w3"}, {"y"});
  auto nhwc = load(b, OptimizationLevel::extended, cpu_kernels_options(true));
  auto plain = load(b, OptimizationLevel::none);
  ASSERT_TRUE(nhwc && plain);
  const auto ops = placed_ops(*nhwc);
  EXPECT_EQ(ops.at("Transpose"), 2) << "x in and y out";
  for (int64_t n : {1, 2}) {
    Tensor x = orchard::testing::random_float_tensor({n, 8, 6, 5}, static_cast<unsigned>(40 + n));
    auto got = nhwc->run({{"x", Value(x)}});
    auto want = plain->run({{"x", Value(x)}});
    ASSERT_TRUE(got.ok() && want.ok());
    orchard::testing::expect_tensor_near((*got)[0].second.tensor(), (*want)[0].second.tensor(), 1e-4, 1e-5);
  }
}

TEST(ChannelsLast, NothingChangesForBackendsThatDoNotAsk) {
  ModelBuilder b;
  residual_block(b);
  auto s = load(b, OptimizationLevel::extended, nchw_cpu_options());
  ASSERT_TRUE(s);
  const auto ops = placed_ops(*s);
  EXPECT_EQ(ops.count("Transpose"), 0u);
  EXPECT_EQ(ops.at("FusedConv"), 2);
  EXPECT_EQ(ops.at("Conv"), 1) << "the depthwise convolution has nothing to fuse";
}

// The CPU backend asks where oneDNN's NHWC convolutions are built in and the CPU has AVX2 or AVX-512; its own kernels
// (oneDNN's for FusedConv nhwc) then match the unoptimized graph.
TEST(ChannelsLast, TheCpuBackendAsksWhereOneDnnRuns) {
  const bool asks = cpu::CpuBackend(SessionOptions{}).prefers_channels_last();
  bool dnnl = false;
  for (const runtime::KernelDef& k : cpu::all_kernels()) dnnl |= k.op == "FusedConv" && k.cpu_features == kCpuAvx2;
  EXPECT_EQ(asks, dnnl && (cpu_features() & (kCpuAvx2 | kCpuAvx512)) != 0);
  if (!asks) GTEST_SKIP() << "this build or CPU has no oneDNN convolutions";
  // A tiny CNN (under Backend::channels_last_min_macs) stays NCHW.
  ModelBuilder tiny;
  residual_block(tiny);
  auto small = load(tiny, OptimizationLevel::extended);
  ASSERT_TRUE(small);
  EXPECT_EQ(placed_ops(*small).count("Transpose"), 0u);
  // 3x3 32→64 and 1x1 64→64 on 40x40 planes (~35 M multiply-adds): NHWC, and oneDNN's kernels match the
  // unoptimized graph.
  ModelBuilder b;
  b.input("x", kFloat, {"n", 32, 40, 40});
  b.output("y", kFloat, {"n", 64, 40, 40});
  random_init(b, "w1", {64, 32, 3, 3}, 31);
  random_init(b, "b1", {64}, 32);
  random_init(b, "w2", {64, 64, 1, 1}, 33);
  attr_ints(b.node("Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r"});
  b.node("Conv", {"r", "w2"}, {"c2"});
  b.node("Add", {"c2", "r"}, {"y"});
  auto nhwc = load(b, OptimizationLevel::extended);
  auto plain = load(b, OptimizationLevel::none);
  ASSERT_TRUE(nhwc && plain);
  const auto ops = placed_ops(*nhwc);
  EXPECT_EQ(ops.count("Conv"), 0u);
  EXPECT_EQ(ops.at("FusedConv"), 2);
  EXPECT_EQ(ops.at("Transpose"), 2) << "x in, y out";
  Tensor x = orchard::testing::random_float_tensor({2, 32, 40, 40}, 5);
  auto got = nhwc->run({{"x", Value(x)}});
  auto want = plain->run({{"x", Value(x)}});
  ASSERT_TRUE(got.ok() && want.ok());
  // Sums of 352 products of magnitude ~1 in another order: compared at 2e-4 absolute.
  orchard::testing::expect_tensor_near((*got)[0].second.tensor(), (*want)[0].second.tensor(), 1e-4, 2e-4);
}

}  // namespace
}  // namespace orchard::graph::passes::testing
