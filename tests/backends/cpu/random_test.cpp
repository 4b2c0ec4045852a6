#include <cmath>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor x345() {
  std::vector<float> v(60);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) - 30.0f;
  return Tensor::from_vector<float>({3, 4, 5}, v);
}

TEST(Dropout, InferenceIsIdentityWithAllTrueMask) {
  Tensor x = x345();
  auto y = run_op(OpCase("Dropout", 13).input("x", x).input("r", Tensor::scalar<float>(0.3f)).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), x);
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<bool>({3, 4, 5}, std::vector<bool>(60, true)));
}

TEST(Dropout, OldOpsetMaskHasDataType) {
  Tensor x = Tensor::from_vector<double>({2}, {1.5, -2.0});
  auto y = run_op(OpCase("Dropout", 7).input("x", x).attr("ratio", 0.9f).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), x);
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<double>({2}, {1.0, 1.0}));
}

TEST(Dropout, TrainingZeroRatioIsIdentity) {
  Tensor x = x345();
  auto y = run_op(OpCase("Dropout", 13)
                      .input("x", x)
                      .input("r", Tensor::scalar<float>(0.0f))
                      .input("t", Tensor::scalar<bool>(true))
                      .outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), x);
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<bool>({3, 4, 5}, std::vector<bool>(60, true)));
}

TEST(Dropout, TrainingScalesKeptAndZeroesDropped) {
  Tensor x = x345();
  OpCase c = OpCase("Dropout", 13)
                 .input("x", x)
                 .input("r", Tensor::scalar<float>(0.75f))
                 .input("t", Tensor::scalar<bool>(true))
                 .attr("seed", int64_t{0})
                 .outputs(2);
  auto y = run_op(c);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const Tensor& out = (*y)[0].tensor();
  const Tensor& mask = (*y)[1].tensor();
  ASSERT_EQ(mask.dtype(), DType::boolean);
  int kept = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float want = mask.data<bool>()[i] ? x.data<float>()[i] * 4.0f : 0.0f;
    EXPECT_EQ(out.data<float>()[i], want) << "at " << i;
    kept += mask.data<bool>()[i];
  }
  EXPECT_GT(kept, 3);
  EXPECT_LT(kept, 30);
  // The stream is numpy's RandomState(0).uniform: 0.5488, 0.7152, 0.6028, ... all below 0.75, so dropped.
  EXPECT_FALSE(mask.data<bool>()[0]);
  EXPECT_FALSE(mask.data<bool>()[1]);
  EXPECT_FALSE(mask.data<bool>()[2]);
  // A seeded node is reproducible.
  auto again = run_op(c);
  ASSERT_TRUE(again.ok());
  expect_tensor_near((*again)[1].tensor(), mask);
}

TEST(Dropout, RejectsRatioOutOfRange) {
  auto y = run_op(OpCase("Dropout", 13)
                      .input("x", x345())
                      .input("r", Tensor::scalar<float>(1.5f))
                      .input("t", Tensor::scalar<bool>(true)));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("ratio 1.5"), std::string::npos) << y.status().message();
}

TEST(RandomUniform, SeededValuesInRangeAndReproducible) {
  OpCase c = OpCase("RandomUniform", 1)
                 .attr("shape", std::vector<int64_t>{4, 25})
                 .attr("low", 2.0f)
                 .attr("high", 3.0f)
                 .attr("seed", 5.0f)
                 .attr("dtype", int64_t{11});
  auto a = run_op(c);
  auto b = run_op(c);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok());
  const Tensor& t = (*a)[0].tensor();
  ASSERT_EQ(t.description(), "float64[4,25]");
  double sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    EXPECT_GE(t.data<double>()[i], 2.0);
    EXPECT_LT(t.data<double>()[i], 3.0);
    sum += t.data<double>()[i];
  }
  EXPECT_NEAR(sum / 100, 2.5, 0.1);
  expect_tensor_near((*b)[0].tensor(), t, 0, 0);
}

TEST(RandomNormalLike, TakesShapeAndDtypeFromInput) {
  std::vector<float> zeros(2000, 0.0f);
  auto y = run_op(OpCase("RandomNormalLike", 1)
                      .input("x", Tensor::from_vector<float>({40, 50}, zeros))
                      .attr("mean", 10.0f)
                      .attr("scale", 2.0f));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const Tensor& t = (*y)[0].tensor();
  ASSERT_EQ(t.description(), "float32[40,50]");
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    sum += t.data<float>()[i];
    sq += t.data<float>()[i] * t.data<float>()[i];
  }
  const double mean = sum / 2000, var = sq / 2000 - mean * mean;
  EXPECT_NEAR(mean, 10.0, 0.3);
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.2);
}

TEST(RandomUniformLike, RejectsIntegerInputWithoutDtype) {
  auto y = run_op(OpCase("RandomUniformLike", 1).input("x", Tensor::from_vector<int32_t>({2}, {1, 2})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("int32[2]"), std::string::npos) << y.status().message();
}

TEST(Bernoulli, ZeroAndOneProbabilitiesAreExact) {
  auto y = run_op(OpCase("Bernoulli", 15)
                      .input("p", Tensor::from_vector<float>({4}, {0.0f, 1.0f, 1.0f, 0.0f}))
                      .attr("dtype", int64_t{7}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<int64_t>({4}, {0, 1, 1, 0}));
}

TEST(Bernoulli, RejectsProbabilityAboveOne) {
  auto y = run_op(OpCase("Bernoulli", 15).input("p", Tensor::from_vector<float>({2}, {0.5f, 1.5f})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("1.5"), std::string::npos) << y.status().message();
}

TEST(Multinomial, SamplesOnlyClassesWithProbability) {
  const float ninf = -INFINITY;
  auto y = run_op(OpCase("Multinomial", 7)
                      .input("x", Tensor::from_vector<float>({2, 3}, {ninf, 0.0f, ninf, 0.0f, ninf, 0.0f}))
                      .attr("sample_size", int64_t{50})
                      .attr("seed", 1.0f));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const Tensor& t = (*y)[0].tensor();
  ASSERT_EQ(t.description(), "int32[2,50]");
  int twos = 0;
  for (int64_t s = 0; s < 50; ++s) {
    EXPECT_EQ(t.data<int32_t>()[s], 1);
    const int32_t k = t.data<int32_t>()[50 + s];
    EXPECT_TRUE(k == 0 || k == 2) << k;
    twos += k == 2;
  }
  EXPECT_GT(twos, 10);
  EXPECT_LT(twos, 40);
}

TEST(Multinomial, RejectsRank1Input) {
  auto y = run_op(OpCase("Multinomial", 7).input("x", Tensor::from_vector<float>({3}, {0, 0, 0})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("float32[3]"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
