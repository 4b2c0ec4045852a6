#include <cmath>
#include <random>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor first_output(const Result<std::vector<Value>>& y) { return (*y)[0].tensor(); }

TEST(Reduction, ReduceSumAxesInputNoKeepdims) {
  Tensor x = Tensor::from_vector<float>({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  auto y = run_op(OpCase("ReduceSum", 13).input("x", x).input("axes", Tensor::from_vector<int64_t>({1}, {1})).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near(first_output(y), Tensor::from_vector<float>({2, 2}, {6, 9, 24, 27}));
}

TEST(Reduction, ReduceSumEmptyAxesReducesAllOrIsNoop) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  Tensor empty = Tensor::from_vector<int64_t>({0}, {});
  auto all = run_op(OpCase("ReduceSum", 13).input("x", x).input("axes", empty));
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  expect_tensor_near(first_output(all), Tensor::from_vector<float>({1, 1}, {10}));
  auto noop = run_op(OpCase("ReduceSum", 13).input("x", x).input("axes", empty).attr("noop_with_empty_axes", int64_t{1}));
  ASSERT_TRUE(noop.ok()) << noop.status().to_string();
  expect_tensor_near(first_output(noop), x);
}

TEST(Reduction, ReduceMeanOverNonAdjacentAxes) {
  Tensor x = Tensor::from_vector<float>({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  auto y = run_op(OpCase("ReduceMean", 13).input("x", x).attr("axes", std::vector<int64_t>{0, -1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near(first_output(y), Tensor::from_vector<float>({1, 3, 1}, {3.5f, 5.5f, 7.5f}));
}

TEST(Reduction, IntegerMaxProdAndL1) {
  Tensor x = Tensor::from_vector<int32_t>({2, 3}, {-5, 2, 7, 1, -9, 3});
  auto mx = run_op(OpCase("ReduceMax", 13).input("x", x).attr("axes", std::vector<int64_t>{1}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(mx.ok()) << mx.status().to_string();
  expect_tensor_near(first_output(mx), Tensor::from_vector<int32_t>({2}, {7, 3}));
  auto pr = run_op(OpCase("ReduceProd", 13).input("x", x).attr("axes", std::vector<int64_t>{0}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(pr.ok()) << pr.status().to_string();
  expect_tensor_near(first_output(pr), Tensor::from_vector<int32_t>({3}, {-5, -18, 21}));
  auto l1 = run_op(OpCase("ReduceL1", 13).input("x", x).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(l1.ok()) << l1.status().to_string();
  expect_tensor_near(first_output(l1), Tensor::from_vector<int32_t>({}, {27}));
}

TEST(Reduction, LogSumExpIsStableAndL2LogSum) {
  Tensor x = Tensor::from_vector<double>({2, 2}, {1000, 1000, 3, 4});
  auto y = run_op(OpCase("ReduceLogSumExp", 13).input("x", x).attr("axes", std::vector<int64_t>{1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near(first_output(y), Tensor::from_vector<double>({2, 1}, {1000 + std::log(2.0), std::log(std::exp(3.0) + std::exp(4.0))}));
  auto l2 = run_op(OpCase("ReduceL2", 13).input("x", x).attr("axes", std::vector<int64_t>{0}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(l2.ok()) << l2.status().to_string();
  expect_tensor_near(first_output(l2), Tensor::from_vector<double>({2}, {std::sqrt(1000009.0), std::sqrt(1000016.0)}));
  auto ls = run_op(OpCase("ReduceLogSum", 6).input("x", x));
  ASSERT_TRUE(ls.ok()) << ls.status().to_string();
  expect_tensor_near(first_output(ls), Tensor::from_vector<double>({1, 1}, {std::log(2007.0)}));
}

TEST(Reduction, LargeSumAndSumSquareMatchNaiveLoops) {
  const int64_t a = 5, b = 70, c = 130;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(static_cast<size_t>(a * b * c));
  for (float& f : v) f = dist(rng);
  Tensor x = Tensor::from_vector<float>({a, b, c}, v);
  // axes {0, 2}: kept middle dim, reduced outer and inner dims.
  std::vector<float> want(static_cast<size_t>(b), 0.f), want_sq(static_cast<size_t>(a * c), 0.f);
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < c; ++k) {
        const float e = v[static_cast<size_t>((i * b + j) * c + k)];
        want[static_cast<size_t>(j)] += e;
        want_sq[static_cast<size_t>(i * c + k)] += e * e;
      }
  auto y = run_op(OpCase("ReduceSum", 11).input("x", x).attr("axes", std::vector<int64_t>{0, 2}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near(first_output(y), Tensor::from_vector<float>({b}, want), 1e-4, 1e-4);
  auto sq = run_op(OpCase("ReduceSumSquare", 13).input("x", x).attr("axes", std::vector<int64_t>{1}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(sq.ok()) << sq.status().to_string();
  expect_tensor_near(first_output(sq), Tensor::from_vector<float>({a, c}, want_sq), 1e-4, 1e-4);
}

TEST(Reduction, RejectsOutOfRangeAxis) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  auto y = run_op(OpCase("ReduceMean", 13).input("x", x).attr("axes", std::vector<int64_t>{2}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

TEST(Reduction, ArgMaxFirstAndLastIndex) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 5, 5, 7, 2, 7});
  auto first = run_op(OpCase("ArgMax", 13).input("x", x).attr("axis", int64_t{1}));
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  expect_tensor_near(first_output(first), Tensor::from_vector<int64_t>({2, 1}, {1, 0}));
  auto last = run_op(OpCase("ArgMax", 13).input("x", x).attr("axis", int64_t{1}).attr("select_last_index", int64_t{1}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(last.ok()) << last.status().to_string();
  expect_tensor_near(first_output(last), Tensor::from_vector<int64_t>({2}, {2, 2}));
  auto amin = run_op(OpCase("ArgMin", 13).input("x", x).attr("axis", int64_t{0}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(amin.ok()) << amin.status().to_string();
  expect_tensor_near(first_output(amin), Tensor::from_vector<int64_t>({3}, {0, 1, 0}));
}

TEST(Reduction, CumSumExclusiveReverse) {
  Tensor x = Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor axis = Tensor::scalar<int64_t>(1);
  auto y = run_op(OpCase("CumSum", 14).input("x", x).input("axis", axis).attr("exclusive", int64_t{1}).attr("reverse", int64_t{1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near(first_output(y), Tensor::from_vector<int32_t>({2, 3}, {5, 3, 0, 11, 6, 0}));
  auto y0 = run_op(OpCase("CumSum", 14).input("x", x).input("axis", Tensor::scalar<int32_t>(0)));
  ASSERT_TRUE(y0.ok()) << y0.status().to_string();
  expect_tensor_near(first_output(y0), Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 5, 7, 9}));
}

TEST(Reduction, TopKTiesKeepLowerIndex) {
  Tensor x = Tensor::from_vector<float>({2, 4}, {3, 1, 3, 2, 0, 0, 5, -1});
  auto y = run_op(OpCase("TopK", 11).input("x", x).input("k", Tensor::from_vector<int64_t>({1}, {2})).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 2}, {3, 3, 5, 0}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<int64_t>({2, 2}, {0, 2, 2, 0}));
  auto s = run_op(OpCase("TopK", 11).input("x", x).input("k", Tensor::from_vector<int64_t>({1}, {3})).attr("largest", int64_t{0}).attr("axis", int64_t{-1}).outputs(2));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  expect_tensor_near((*s)[0].tensor(), Tensor::from_vector<float>({2, 3}, {1, 2, 3, -1, 0, 0}));
  expect_tensor_near((*s)[1].tensor(), Tensor::from_vector<int64_t>({2, 3}, {1, 3, 0, 3, 0, 1}));
}

TEST(Reduction, TopKRejectsTooLargeK) {
  Tensor x = Tensor::from_vector<float>({4}, {1, 2, 3, 4});
  auto y = run_op(OpCase("TopK", 11).input("x", x).input("k", Tensor::from_vector<int64_t>({1}, {5})).outputs(2));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
