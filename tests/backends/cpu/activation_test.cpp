#include <cmath>
#include <limits>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  if (!y.ok()) return Tensor();
  return (*y)[0].tensor();
}

const Tensor kX = Tensor::from_vector<float>({5}, {-2, -0.5f, 0, 0.5f, 3});

TEST(Activation, ReluOnFloatsAndInts) {
  expect_tensor_near(run1(OpCase("Relu", 14).input("x", kX)), Tensor::from_vector<float>({5}, {0, 0, 0, 0.5f, 3}));
  expect_tensor_near(run1(OpCase("Relu", 14).input("x", Tensor::from_vector<int32_t>({2}, {-5, 5}))),
                     Tensor::from_vector<int32_t>({2}, {0, 5}));
  auto bad = run_op(OpCase("Relu", 14).input("x", Tensor::from_vector<bool>({1}, {true})));
  ASSERT_FALSE(bad.ok());
}

TEST(Activation, ParameterisedActivations) {
  expect_tensor_near(run1(OpCase("LeakyRelu", 16).input("x", kX).attr("alpha", 0.1f)),
                     Tensor::from_vector<float>({5}, {-0.2f, -0.05f, 0, 0.5f, 3}));
  expect_tensor_near(run1(OpCase("Elu", 6).input("x", kX).attr("alpha", 2.0f)),
                     Tensor::from_vector<float>({5}, {2 * std::expm1(-2.0f), 2 * std::expm1(-0.5f), 0, 0.5f, 3}));
  const float a = 1.67326319217681884765625f, g = 1.05070102214813232421875f;
  expect_tensor_near(run1(OpCase("Selu", 6).input("x", kX)),
                     Tensor::from_vector<float>({5}, {g * a * std::expm1(-2.0f), g * a * std::expm1(-0.5f), 0, g * 0.5f, g * 3}));
  expect_tensor_near(run1(OpCase("Celu", 12).input("x", kX).attr("alpha", 2.0f)),
                     Tensor::from_vector<float>({5}, {2 * std::expm1(-1.0f), 2 * std::expm1(-0.25f), 0, 0.5f, 3}));
  expect_tensor_near(run1(OpCase("HardSigmoid", 6).input("x", kX)),
                     Tensor::from_vector<float>({5}, {0.1f, 0.4f, 0.5f, 0.6f, 1.0f}));
  expect_tensor_near(run1(OpCase("HardSwish", 14).input("x", kX)),
                     Tensor::from_vector<float>({5}, {-2 * (1.0f / 6), -0.5f * (5.0f / 12), 0, 0.5f * (7.0f / 12), 3}));
  expect_tensor_near(run1(OpCase("ThresholdedRelu", 10).input("x", kX).attr("alpha", 0.5f)),
                     Tensor::from_vector<float>({5}, {0, 0, 0, 0, 3}));
  auto bad = run_op(OpCase("Celu", 12).input("x", kX).attr("alpha", 0.0f));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("alpha"), std::string::npos) << bad.status().message();
}

TEST(Activation, SigmoidSoftplusSoftsignStayFiniteAtExtremes) {
  Tensor x = Tensor::from_vector<float>({4}, {-100, 0, 100, 1});
  expect_tensor_near(run1(OpCase("Sigmoid", 13).input("x", x)),
                     Tensor::from_vector<float>({4}, {0, 0.5f, 1, 1 / (1 + std::exp(-1.0f))}));
  expect_tensor_near(run1(OpCase("Softplus", 1).input("x", x)),
                     Tensor::from_vector<float>({4}, {0, std::log(2.0f), 100, std::log1p(std::exp(1.0f))}));
  expect_tensor_near(run1(OpCase("Softsign", 1).input("x", x)),
                     Tensor::from_vector<float>({4}, {-100.0f / 101, 0, 100.0f / 101, 0.5f}));
}

TEST(Activation, PReluBroadcastsSlope) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {-1, 2, -3, -4});
  expect_tensor_near(run1(OpCase("PRelu", 16).input("x", x).input("s", Tensor::from_vector<float>({2}, {0.1f, 0.5f}))),
                     Tensor::from_vector<float>({2, 2}, {-0.1f, 2, -0.3f, -2}));
  // Before opset 7 a 1-D slope is per channel (dim 1): here [3] against [1,3,2].
  Tensor x3 = Tensor::from_vector<float>({1, 3, 2}, {-1, -1, -1, -1, -1, 1});
  expect_tensor_near(run1(OpCase("PRelu", 6).input("x", x3).input("s", Tensor::from_vector<float>({3}, {1, 2, 3}))),
                     Tensor::from_vector<float>({1, 3, 2}, {-1, -1, -2, -2, -3, 1}));
  auto bad = run_op(OpCase("PRelu", 16).input("x", x).input("s", Tensor::from_vector<float>({3}, {1, 2, 3})));
  ASSERT_FALSE(bad.ok());
  auto grow = run_op(OpCase("PRelu", 16).input("x", Tensor::from_vector<float>({2}, {1, 2}))
                         .input("s", Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4})));
  ASSERT_FALSE(grow.ok());
  EXPECT_NE(grow.status().message().find("does not broadcast"), std::string::npos) << grow.status().message();
}

TEST(Activation, PReluLargeStridedSlope) {
  // [64, 3, 400] with slope [3, 1]: parallel path with a broadcast slope.
  const int64_t n = 64, c = 3, w = 400;
  std::vector<float> xs(n * c * w), want(n * c * w);
  for (int64_t i = 0; i < n * c * w; ++i) {
    xs[i] = (i % 2) ? -1.0f : 1.0f;
    const int64_t ch = (i / w) % c;
    want[i] = xs[i] < 0 ? -static_cast<float>(ch + 1) : 1.0f;
  }
  expect_tensor_near(run1(OpCase("PRelu", 16)
                              .input("x", Tensor::from_vector<float>({n, c, w}, xs))
                              .input("s", Tensor::from_vector<float>({c, 1}, {1, 2, 3}))),
                     Tensor::from_vector<float>({n, c, w}, want));
}

}  // namespace
}  // namespace orchard::testing
