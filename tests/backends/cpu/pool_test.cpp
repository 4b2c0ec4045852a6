#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Result<std::vector<Value>> run(const OpCase& c) { return run_op(c); }

Tensor grid4() {
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  return Tensor::from_vector<float>({1, 1, 4, 4}, v);
}

TEST(MaxPool, StridesIndicesAndStorageOrder) {
  auto c = OpCase("MaxPool", 12).input("x", grid4()).attr("kernel_shape", std::vector<int64_t>{2, 2}).attr("strides", std::vector<int64_t>{2, 2}).outputs(2);
  auto y = run(c);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1, 1, 2, 2}, {6, 8, 14, 16}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15}));
  c.attr("storage_order", int64_t{1});
  y = run(c);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // Column-major: (row, col) -> col * 4 + row.
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<int64_t>({1, 1, 2, 2}, {5, 13, 7, 15}));
}

TEST(MaxPool, CeilModeAndUint8) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 5}, {1, 9, 3, 4, 200});
  auto y = run(OpCase("MaxPool", 12).input("x", x).attr("kernel_shape", std::vector<int64_t>{2}).attr("strides", std::vector<int64_t>{2}).attr("ceil_mode", int64_t{1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<uint8_t>({1, 1, 3}, {9, 4, 200}));
}

TEST(AveragePool, PadsWithAndWithoutCountIncludePad) {
  Tensor x = Tensor::from_vector<float>({1, 1, 3}, {3, 6, 9});
  auto base = OpCase("AveragePool", 11).input("x", x).attr("kernel_shape", std::vector<int64_t>{2}).attr("pads", std::vector<int64_t>{1, 1});
  auto y = run(base);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1, 1, 4}, {3, 4.5f, 7.5f, 9}));
  base.attr("count_include_pad", int64_t{1});
  y = run(base);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1, 1, 4}, {1.5f, 4.5f, 7.5f, 4.5f}));
}

TEST(LpPool, TwoNorm) {
  Tensor x = Tensor::from_vector<float>({1, 1, 4}, {3, 4, -6, 8});
  auto y = run(OpCase("LpPool", 11).input("x", x).attr("kernel_shape", std::vector<int64_t>{2}).attr("strides", std::vector<int64_t>{2}).attr("p", int64_t{2}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1, 1, 2}, {5, 10}));
}

TEST(GlobalPools, AverageMaxLp) {
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {1, 3, -4, 0});
  auto avg = run(OpCase("GlobalAveragePool", 1).input("x", x));
  auto mx = run(OpCase("GlobalMaxPool", 1).input("x", x));
  auto lp = run(OpCase("GlobalLpPool", 2).input("x", x).attr("p", int64_t{1}));
  ASSERT_TRUE(avg.ok() && mx.ok() && lp.ok());
  expect_tensor_near((*avg)[0].tensor(), Tensor::from_vector<float>({1, 2, 1}, {2, -2}));
  expect_tensor_near((*mx)[0].tensor(), Tensor::from_vector<float>({1, 2, 1}, {3, 0}));
  expect_tensor_near((*lp)[0].tensor(), Tensor::from_vector<float>({1, 2, 1}, {4, 4}));
}

TEST(MaxUnpool, ScattersAndRejectsBadIndex) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2}, {5, 7});
  Tensor i = Tensor::from_vector<int64_t>({1, 1, 2}, {1, 2});
  auto y = run(OpCase("MaxUnpool", 11).input("x", x).input("i", i).attr("kernel_shape", std::vector<int64_t>{2}).attr("strides", std::vector<int64_t>{2}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1, 1, 4}, {0, 5, 7, 0}));
  Tensor bad = Tensor::from_vector<int64_t>({1, 1, 2}, {1, 9});
  y = run(OpCase("MaxUnpool", 11).input("x", x).input("i", bad).attr("kernel_shape", std::vector<int64_t>{2}).attr("strides", std::vector<int64_t>{2}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

TEST(MaxPool, RejectsKernelRankMismatch) {
  auto y = run(OpCase("MaxPool", 12).input("x", grid4()).attr("kernel_shape", std::vector<int64_t>{2}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("kernel_shape"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
