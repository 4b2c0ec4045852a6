#include <cmath>
#include <random>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

TEST(Softmax, AlongAxisZero) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 6, 0});
  auto y = run_op(OpCase("Softmax", 13).input("x", x).attr("axis", int64_t{0}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 3}, {0.04742587f, 0.01798621f, 0.95257413f, 0.95257413f,
                                                                             0.98201379f, 0.04742587f}));
}

TEST(Softmax, Opset11CoercesTo2D) {
  // axis 1 of [2, 2, 2] normalises each row of 4.
  Tensor x = Tensor::from_vector<double>({2, 2, 2}, {1, 2, 3, 4, 0, 0, 0, 0});
  auto y = run_op(OpCase("Softmax", 11).input("x", x));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<double>({2, 2, 2}, {0.0320586, 0.08714432, 0.23688282, 0.64391426,
                                                                               0.25, 0.25, 0.25, 0.25}));
}

TEST(Softmax, WideInnerBlockColumnsSumToOne) {
  const int64_t n = 37, inner = 150;  // more than one column tile
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-20, 20);
  std::vector<float> v(static_cast<size_t>(2 * n * inner));
  for (float& f : v) f = dist(rng);
  auto y = run_op(OpCase("Softmax", 13).input("x", Tensor::from_vector<float>({2, n, inner}, v)).attr("axis", int64_t{1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const float* p = (*y)[0].tensor().data<float>();
  for (int64_t o = 0; o < 2; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      double s = 0, mx = -1e30;
      int64_t arg = 0;
      for (int64_t r = 0; r < n; ++r) {
        s += p[(o * n + r) * inner + i];
        const float xv = v[static_cast<size_t>((o * n + r) * inner + i)];
        if (xv > mx) mx = xv, arg = r;
      }
      EXPECT_NEAR(s, 1.0, 1e-5);
      for (int64_t r = 0; r < n; ++r) EXPECT_LE(p[(o * n + r) * inner + i], p[(o * n + arg) * inner + i]);
    }
  }
}

TEST(Softmax, LogSoftmaxLargeNumbersAndHardmaxTies) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 1001, 1002, 1003});
  auto y = run_op(OpCase("LogSoftmax", 13).input("x", x));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 3}, {-2.40760596f, -1.40760596f, -0.40760596f, -2.40760596f,
                                                                             -1.40760596f, -0.40760596f}));
  Tensor t = Tensor::from_vector<float>({2, 3}, {2, 5, 5, 1, 1, 1});
  auto h = run_op(OpCase("Hardmax", 13).input("x", t));
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  expect_tensor_near((*h)[0].tensor(), Tensor::from_vector<float>({2, 3}, {0, 1, 0, 1, 0, 0}));
}

TEST(Softmax, RejectsBadAxis) {
  auto y = run_op(OpCase("Softmax", 13).input("x", Tensor::from_vector<float>({2}, {1, 2})).attr("axis", int64_t{3}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

// log-probabilities of rows (0.2 0.3 0.5), (0.1 0.6 0.3), (0.25 0.25 0.5).
Tensor log_probs() {
  std::vector<float> p{0.2f, 0.3f, 0.5f, 0.1f, 0.6f, 0.3f, 0.25f, 0.25f, 0.5f};
  for (float& v : p) v = std::log(v);
  return Tensor::from_vector<float>({3, 3}, p);
}

TEST(Loss, NllWeightedMeanWithIgnoreIndex) {
  Tensor target = Tensor::from_vector<int64_t>({3}, {2, 1, 0});
  Tensor weight = Tensor::from_vector<float>({3}, {1, 2, 3});
  auto y = run_op(OpCase("NegativeLogLikelihoodLoss", 13).input("x", log_probs()).input("t", target).input("w", weight)
                      .attr("ignore_index", int64_t{0}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({}, {0.6202185578f}));
  auto none = run_op(OpCase("NegativeLogLikelihoodLoss", 13).input("x", log_probs()).input("t", target)
                         .attr("reduction", std::string("none")));
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  expect_tensor_near((*none)[0].tensor(), Tensor::from_vector<float>({3}, {-std::log(0.5f), -std::log(0.6f), -std::log(0.25f)}));
}

TEST(Loss, NllRejectsOutOfRangeTarget) {
  Tensor target = Tensor::from_vector<int64_t>({3}, {2, 3, 0});
  auto y = run_op(OpCase("NegativeLogLikelihoodLoss", 13).input("x", log_probs()).input("t", target));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

TEST(Loss, SoftmaxCrossEntropySumWithLogProb) {
  // Scores whose softmax is the rows of log_probs(): the log-probabilities themselves.
  Tensor target = Tensor::from_vector<int32_t>({3}, {2, 1, 0});
  auto y = run_op(OpCase("SoftmaxCrossEntropyLoss", 13).input("x", log_probs()).input("t", target)
                      .attr("reduction", std::string("sum")).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({}, {-std::log(0.5f * 0.6f * 0.25f)}));
  expect_tensor_near((*y)[1].tensor(), log_probs(), 1e-5, 1e-5);
}

}  // namespace
}  // namespace orchard::testing
