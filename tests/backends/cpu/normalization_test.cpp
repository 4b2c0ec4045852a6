#include <cmath>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

TEST(Normalization, BatchNormInference) {
  Tensor x = Tensor::from_vector<float>({1, 2, 1, 2}, {1, 3, 10, 20});
  auto y = run_op(OpCase("BatchNormalization", 15)
                      .input("x", x)
                      .input("s", Tensor::from_vector<float>({2}, {2, 1}))
                      .input("b", Tensor::from_vector<float>({2}, {0, 1}))
                      .input("m", Tensor::from_vector<float>({2}, {1, 10}))
                      .input("v", Tensor::from_vector<float>({2}, {4, 25}))
                      .attr("epsilon", 0.0f));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1, 2, 1, 2}, {0, 2, 1, 3}));
}

TEST(Normalization, BatchNormTrainingOutputsRunningStats) {
  // Channel 0 holds {1, 3, 5, 7} (mean 4, variance 5), channel 1 {2, 4, 4, 2} (mean 3, variance 1).
  Tensor x = Tensor::from_vector<float>({2, 2, 2}, {1, 3, 2, 4, 5, 7, 4, 2});
  auto y = run_op(OpCase("BatchNormalization", 15)
                      .input("x", x)
                      .input("s", Tensor::from_vector<float>({2}, {1, 1}))
                      .input("b", Tensor::from_vector<float>({2}, {0, 0}))
                      .input("m", Tensor::from_vector<float>({2}, {0, 0}))
                      .input("v", Tensor::from_vector<float>({2}, {1, 1}))
                      .attr("epsilon", 0.0f)
                      .attr("training_mode", int64_t{1})
                      .outputs(3));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const float s = 1 / std::sqrt(5.0f);
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 2, 2}, {-3 * s, -s, -1, 1, s, 3 * s, 1, -1}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2}, {0.4f, 0.3f}));
  expect_tensor_near((*y)[2].tensor(), Tensor::from_vector<float>({2}, {1.4f, 1.0f}));
}

TEST(Normalization, BatchNormRejectsWrongScaleSize) {
  Tensor p3 = Tensor::from_vector<float>({3}, {1, 1, 1});
  Tensor p2 = Tensor::from_vector<float>({2}, {1, 1});
  auto y = run_op(OpCase("BatchNormalization", 15).input("x", Tensor::from_vector<float>({1, 2}, {1, 2}))
                      .input("s", p3).input("b", p2).input("m", p2).input("v", p2));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("scale"), std::string::npos) << y.status().message();
}

TEST(Normalization, InstanceNorm) {
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {1, 3, 4, 8});
  auto y = run_op(OpCase("InstanceNormalization", 6).input("x", x).input("s", Tensor::from_vector<float>({2}, {2, 1}))
                      .input("b", Tensor::from_vector<float>({2}, {1, 7})).attr("epsilon", 0.0f));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({1, 2, 2}, {-1, 3, 6, 8}));
}

TEST(Normalization, LayerNormWithStatistics) {
  Tensor x = Tensor::from_vector<float>({2, 2, 2}, {1, 2, 3, 4, 5, 7, 6, 9});
  auto y = run_op(OpCase("LayerNormalization", 17).input("x", x).input("s", Tensor::from_vector<float>({2}, {1, 2}))
                      .input("b", Tensor::from_vector<float>({2}, {0, 1})).attr("axis", int64_t{1}).outputs(3));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // Scale [1, 2] and B [0, 1] broadcast over the normalised [2, 2] block.
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 2, 2}, {-1.34163542f, 1 - 2 * 0.44721181f, 0.44721181f,
                                                                              1 + 2 * 1.34163542f, -1.18321325f, 1 + 2 * 0.16903046f,
                                                                              -0.50709139f, 1 + 2 * 1.52127418f}),
                     1e-5, 1e-5);
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2, 1, 1}, {2.5f, 6.75f}));
  expect_tensor_near((*y)[2].tensor(), Tensor::from_vector<float>({2, 1, 1}, {0.89442361f, 0.67612186f}), 1e-5, 1e-5);
}

TEST(Normalization, LpNormAndLrn) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {3, 4, 0, 0});
  auto l2 = run_op(OpCase("LpNormalization", 1).input("x", x));
  ASSERT_TRUE(l2.ok()) << l2.status().to_string();
  expect_tensor_near((*l2)[0].tensor(), Tensor::from_vector<float>({2, 2}, {0.6f, 0.8f, 0, 0}));
  auto l1 = run_op(OpCase("LpNormalization", 1).input("x", x).attr("p", int64_t{1}).attr("axis", int64_t{0}));
  ASSERT_TRUE(l1.ok()) << l1.status().to_string();
  expect_tensor_near((*l1)[0].tensor(), Tensor::from_vector<float>({2, 2}, {1, 1, 0, 0}));
  // size 2: the window of channel c is [c, c + 1]; bias 1, alpha 2 (alpha / size = 1), beta 1.
  Tensor c = Tensor::from_vector<float>({1, 3, 1}, {1, 2, 3});
  auto lrn = run_op(OpCase("LRN", 13).input("x", c).attr("size", int64_t{2}).attr("alpha", 2.0f).attr("beta", 1.0f).attr("bias", 1.0f));
  ASSERT_TRUE(lrn.ok()) << lrn.status().to_string();
  expect_tensor_near((*lrn)[0].tensor(), Tensor::from_vector<float>({1, 3, 1}, {1.0f / 6, 2.0f / 14, 3.0f / 10}));
}

TEST(Normalization, MeanVarianceNormalization) {
  Tensor x = Tensor::from_vector<float>({2, 1, 1, 2}, {1, 3, 5, 7});
  auto y = run_op(OpCase("MeanVarianceNormalization", 13).input("x", x));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const float s = 1 / std::sqrt(5.0f);
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 1, 1, 2}, {-3 * s, -s, s, 3 * s}));
}

TEST(Normalization, LayerNormRejectsMismatchedScale) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto y = run_op(OpCase("LayerNormalization", 17).input("x", x).input("s", Tensor::from_vector<float>({2}, {1, 1})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("does not broadcast"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
