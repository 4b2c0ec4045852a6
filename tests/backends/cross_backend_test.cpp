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

// Shapes that reach the accelerators' fast paths: widths that are multiples of 8 (16-byte accesses of float16 and
// float32), same shapes, trailing row vectors, scalars, per-row and per-channel columns, masks broadcast over
// heads, both operands broadcast, and layouts that collapse to more than three dims (the general strided kernel);
// each also with a width of 7 or 9 (one element per thread), an empty dim, and in float32 and float16.
Tensor to_float16(const Tensor& f) {
  Tensor h = Tensor::empty(DType::float16, f.shape());
  for (int64_t i = 0; i < f.numel(); ++i) h.data<float16>()[i] = float16(f.data<float>()[i]);
  return h;
}

TEST(CrossBackend, BinaryFastPathShapesInFloat32AndFloat16) {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 5, 16}, {3, 5, 16}},      {{7, 9}, {7, 9}},           {{2, 3, 8, 8}, {8}},
      {{4, 24}, {1}},                {{2, 3, 8, 8}, {2, 3, 8, 1}}, {{2, 4, 24, 24}, {2, 1, 1, 24}},
      {{2, 8, 5, 5}, {1, 8, 1, 1}},  {{4, 1}, {1, 16}},          {{2, 1, 3, 1, 8}, {1, 4, 1, 5, 8}},
      {{0, 8}, {8}},                 {{3, 1, 9}, {3, 7, 9}},     {{16}, {5, 1, 16}},
  };
  uint32_t seed = 4000;
  for (const auto& [a, b] : pairs) {
    for (const bool half : {false, true}) {
      for (const char* op : {"Add", "Sub", "Mul", "Div", "Max"}) {
        SCOPED_TRACE(std::string(op) + " " + a.to_string() + " " + b.to_string() + (half ? " float16" : " float32"));
        Tensor ta = random_float_tensor(a, seed++), tb = random_float_tensor(b, seed++);
        if (half) {
          ta = to_float16(ta);
          tb = to_float16(tb);
        }
        // Both operand orders: a non-commutative op with the broadcast operand first, then second.
        auto y = run_op(OpCase{op, 13}.input("a", Value(ta)).input("b", Value(tb)));
        EXPECT_TRUE(y.ok()) << y.status().to_string();
        auto z = run_op(OpCase{op, 13}.input("b", Value(tb)).input("a", Value(ta)));
        EXPECT_TRUE(z.ok()) << z.status().to_string();
      }
    }
  }
}

// Transposes whose innermost dim stays in place (attention's head split) move 16, 8 or 4 bytes at a time on the
// accelerators; odd widths and a moved innermost dim take the element-wise copy.
TEST(CrossBackend, TransposeKeepingTheInnermostDimInFloat32AndFloat16) {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{2, 5, 3, 16}, {0, 2, 1, 3}}, {{2, 3, 5, 8}, {0, 2, 1, 3}}, {{3, 4, 6}, {1, 0, 2}},
      {{2, 5, 3, 9}, {0, 2, 1, 3}},  {{2, 5, 3, 16}, {0, 2, 3, 1}}, {{4, 0, 8}, {1, 0, 2}},
  };
  uint32_t seed = 4500;
  for (const auto& [s, perm] : cases) {
    for (const bool half : {false, true}) {
      SCOPED_TRACE(s.to_string() + (half ? " float16" : " float32"));
      Tensor x = random_float_tensor(s, seed++);
      if (half) x = to_float16(x);
      EXPECT_TRUE(run_op(OpCase{"Transpose", 13}.input("x", Value(x)).attr("perm", perm)).ok());
    }
  }
}

}  // namespace
}  // namespace orchard::testing
