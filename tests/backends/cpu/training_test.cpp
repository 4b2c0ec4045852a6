#include <cmath>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

constexpr const char* kDomain = "ai.onnx.preview.training";

TEST(Adagrad, UpdatesTwoTensorsWithDecayedRate) {
  auto y = run_op(OpCase("Adagrad", 1, kDomain)
                      .input("R", Tensor::scalar<float>(0.1f))
                      .input("T", Tensor::scalar<int64_t>(1))
                      .input("X1", Tensor::from_vector<float>({1}, {1.0f}))
                      .input("X2", Tensor::from_vector<float>({2}, {1.0f, 2.0f}))
                      .input("G1", Tensor::from_vector<float>({1}, {-1.0f}))
                      .input("G2", Tensor::from_vector<float>({2}, {3.0f, 0.0f}))
                      .input("H1", Tensor::from_vector<float>({1}, {3.0f}))
                      .input("H2", Tensor::from_vector<float>({2}, {0.0f, 4.0f}))
                      .attr("decay_factor", 1.0f)
                      .attr("epsilon", 0.0f)
                      .outputs(4));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // r = 0.1 / (1 + 1*1) = 0.05; h1 = 3 + 1 = 4, x1 = 1 - 0.05 * -1 / 2; h2 = {9, 4}, x2 = {1 - 0.05*3/3, 2}.
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1}, {1.025f}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2}, {0.95f, 2.0f}));
  expect_tensor_near((*y)[2].tensor(), Tensor::from_vector<float>({1}, {4.0f}));
  expect_tensor_near((*y)[3].tensor(), Tensor::from_vector<float>({2}, {9.0f, 4.0f}));
}

TEST(Adam, BiasCorrectionFromSecondStep) {
  auto y = run_op(OpCase("Adam", 1, kDomain)
                      .input("R", Tensor::scalar<double>(0.1))
                      .input("T", Tensor::scalar<int64_t>(1))
                      .input("X", Tensor::from_vector<double>({1}, {1.0}))
                      .input("G", Tensor::from_vector<double>({1}, {2.0}))
                      .input("V", Tensor::from_vector<double>({1}, {0.0}))
                      .input("H", Tensor::from_vector<double>({1}, {0.0}))
                      .attr("alpha", 0.5f)
                      .attr("beta", 0.75f)
                      .attr("epsilon", 0.0f)
                      .outputs(3));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // v = 0.5*2 = 1, h = 0.25*4 = 1, r' = 0.1 * sqrt(1-0.75) / (1-0.5) = 0.1; x = 1 - 0.1 * 1/1.
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<double>({1}, {0.9}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<double>({1}, {1.0}));
  expect_tensor_near((*y)[2].tensor(), Tensor::from_vector<double>({1}, {1.0}));
}

OpCase momentum(const std::string& mode, int64_t t) {
  OpCase c("Momentum", 1, kDomain);
  c.input("R", Tensor::scalar<float>(0.5f))
      .input("T", Tensor::scalar<int64_t>(t))
      .input("X", Tensor::from_vector<float>({2}, {1.0f, 2.0f}))
      .input("G", Tensor::from_vector<float>({2}, {1.0f, -1.0f}))
      .input("V", Tensor::from_vector<float>({2}, {2.0f, 0.0f}))
      .attr("alpha", 0.5f)
      .attr("beta", 0.25f)
      .attr("norm_coefficient", 0.0f)
      .attr("mode", mode)
      .outputs(2);
  return c;
}

TEST(Momentum, StandardUsesBetaAfterFirstStep) {
  auto y = run_op(momentum("standard", 3));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // v = 0.5*{2,0} + 0.25*{1,-1} = {1.25, -0.25}; x = x - 0.5 v.
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2}, {0.375f, 2.125f}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2}, {1.25f, -0.25f}));
}

TEST(Momentum, NesterovFirstStepTakesWholeGradient) {
  auto y = run_op(momentum("nesterov", 0));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // v = 0.5*{2,0} + {1,-1} = {2, -1}; x = x - 0.5 * (g + 0.5 v) = {1 - 0.5*2, 2 - 0.5*(-1.5)}.
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2}, {0.0f, 2.75f}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2}, {2.0f, -1.0f}));
}

TEST(Momentum, RejectsUnknownMode) {
  auto y = run_op(momentum("heavy", 0));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("heavy"), std::string::npos) << y.status().message();
}

TEST(Adagrad, RejectsMismatchedGradientShape) {
  auto y = run_op(OpCase("Adagrad", 1, kDomain)
                      .input("R", Tensor::scalar<float>(0.1f))
                      .input("T", Tensor::scalar<int64_t>(0))
                      .input("X", Tensor::from_vector<float>({2}, {1, 2}))
                      .input("G", Tensor::from_vector<float>({3}, {1, 2, 3}))
                      .input("H", Tensor::from_vector<float>({2}, {1, 2}))
                      .outputs(2));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("float32[3]"), std::string::npos) << y.status().message();
}

TEST(Adam, RejectsWrongInputCount) {
  auto y = run_op(OpCase("Adam", 1, kDomain)
                      .input("R", Tensor::scalar<float>(0.1f))
                      .input("T", Tensor::scalar<int64_t>(0))
                      .input("X", Tensor::from_vector<float>({1}, {1}))
                      .input("G", Tensor::from_vector<float>({1}, {1}))
                      .input("V", Tensor::from_vector<float>({1}, {1}))
                      .outputs(3));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("4 inputs per optimized tensor"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
