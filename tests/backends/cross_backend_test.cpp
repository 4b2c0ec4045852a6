// Random cases for the cross-backend check of the op harness: every case runs on the CPU reference and on
// every other backend that takes the op (run_op compares them). Shapes are drawn with odd sizes, size-1
// broadcasting and empty dims; the seed is in each failure message.
#include <gtest/gtest.h>

#include <random>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

class RandomCases {
 public:
  explicit RandomCases(uint32_t seed) : rng_(seed) {}

  int64_t dim() {
    const int r = pick(0, 9);
    return r == 0 ? 0 : r <= 2 ? 1 : pick(2, 7) * 2 - 1;  // empty, broadcastable or odd
  }
  Shape shape(size_t rank) {
    Shape s;
    for (size_t i = 0; i < rank; ++i) s.push_back(dim());
    return s;
  }
  // A shape that broadcasts against `s`: some dims set to 1, maybe a lower rank.
  Shape broadcast_of(const Shape& s) {
    const size_t drop = s.rank() ? static_cast<size_t>(pick(0, static_cast<int>(s.rank()))) : 0;
    Shape b;
    for (size_t i = drop; i < s.rank(); ++i) b.push_back(pick(0, 2) == 0 ? 1 : s[i]);
    return b;
  }
  Tensor floats(const Shape& s) {
    Tensor t = Tensor::empty(DType::float32, s);
    std::uniform_real_distribution<float> u(-2.f, 2.f);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng_);
    return t;
  }
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  std::mt19937 rng_;
};

constexpr int kCases = 40;

TEST(CrossBackend, BinaryElementwiseWithBroadcasting) {
  for (int seed = 0; seed < kCases; ++seed) {
    RandomCases r(static_cast<uint32_t>(seed));
    const Shape a = r.shape(static_cast<size_t>(r.pick(0, 4)));
    const Shape b = r.broadcast_of(a);
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
      SCOPED_TRACE(std::string(op) + " seed " + std::to_string(seed) + " " + a.to_string() + " " + b.to_string());
      auto y = run_op(OpCase{op, 13}.input("a", Value(r.floats(a))).input("b", Value(r.floats(b))));
      EXPECT_TRUE(y.ok()) << y.status().to_string();
    }
  }
}

TEST(CrossBackend, UnaryAndActivations) {
  for (int seed = 0; seed < kCases; ++seed) {
    RandomCases r(static_cast<uint32_t>(seed) + 1000);
    const Shape s = r.shape(static_cast<size_t>(r.pick(0, 4)));
    for (const char* op : {"Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Abs", "Neg", "Sqrt", "Softsign"}) {
      SCOPED_TRACE(std::string(op) + " seed " + std::to_string(seed) + " " + s.to_string());
      auto y = run_op(OpCase{op, 13}.input("x", Value(r.floats(s))));
      EXPECT_TRUE(y.ok()) << y.status().to_string();
    }
  }
}

TEST(CrossBackend, SoftmaxTransposeAndReductions) {
  for (int seed = 0; seed < kCases; ++seed) {
    RandomCases r(static_cast<uint32_t>(seed) + 2000);
    const size_t rank = static_cast<size_t>(r.pick(1, 4));
    const Shape s = r.shape(rank);
    const int64_t axis = r.pick(-static_cast<int>(rank), static_cast<int>(rank) - 1);
    SCOPED_TRACE("seed " + std::to_string(seed) + " " + s.to_string() + " axis " + std::to_string(axis));
    EXPECT_TRUE(run_op(OpCase{"Softmax", 13}.input("x", Value(r.floats(s))).attr("axis", axis)).ok());
    std::vector<int64_t> perm(rank);
    for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(i);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(static_cast<uint32_t>(seed)));
    EXPECT_TRUE(run_op(OpCase{"Transpose", 13}.input("x", Value(r.floats(s))).attr("perm", perm)).ok());
    const Tensor axes = Tensor::from_vector<int64_t>({1}, {axis});
    EXPECT_TRUE(run_op(OpCase{"ReduceSum", 13}.input("x", Value(r.floats(s))).input("axes", Value(axes))).ok());
    EXPECT_TRUE(run_op(OpCase{"ReduceMean", 13}.input("x", Value(r.floats(s))).attr("axes", std::vector<int64_t>{axis})).ok());
  }
}

TEST(CrossBackend, MatMulConcatAndConv) {
  for (int seed = 0; seed < kCases; ++seed) {
    RandomCases r(static_cast<uint32_t>(seed) + 3000);
    const int64_t m = r.dim(), k = r.dim(), n = r.dim(), batch = r.pick(1, 3);
    SCOPED_TRACE("seed " + std::to_string(seed));
    EXPECT_TRUE(run_op(OpCase{"MatMul", 13}
                           .input("a", Value(r.floats({batch, m, k})))
                           .input("b", Value(r.floats({k, n}))))
                    .ok());
    const Shape s = r.shape(3);
    Shape t = s;
    t[1] = r.dim();
    EXPECT_TRUE(run_op(OpCase{"Concat", 13}.input("a", Value(r.floats(s))).input("b", Value(r.floats(t))).attr("axis", int64_t{1})).ok());
    const int64_t c = r.pick(1, 3), h = r.pick(3, 9), w = r.pick(3, 9), kh = r.pick(1, 3);
    EXPECT_TRUE(run_op(OpCase{"Conv", 11}
                           .input("x", Value(r.floats({1, c, h, w})))
                           .input("w", Value(r.floats({2, c, kh, kh})))
                           .attr("pads", std::vector<int64_t>{kh / 2, kh / 2, kh / 2, kh / 2}))
                    .ok());
  }
}

}  // namespace
}  // namespace orchard::testing
