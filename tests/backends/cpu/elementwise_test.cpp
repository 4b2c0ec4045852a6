#include <cmath>
#include <limits>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs `c` and returns output 0, failing the test when the op fails.
Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  if (!y.ok()) return Tensor();
  return (*y)[0].tensor();
}

// Expects `t` to hold exactly `want` (any element type, bit-exact for integers).
template <class T>
void expect_values(const Tensor& t, const Shape& shape, const std::vector<T>& want) {
  ASSERT_EQ(t.dtype(), dtype_of<T>()) << t.description();
  ASSERT_EQ(t.shape(), shape) << t.description();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(t.data<T>()[i], want[i]) << "at " << i;
}

void expect_bools(const Tensor& t, const Shape& shape, const std::vector<bool>& want) {
  ASSERT_EQ(t.dtype(), DType::boolean) << t.description();
  ASSERT_EQ(t.shape(), shape) << t.description();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(t.data<bool>()[i], want[i]) << "at " << i;
}

TEST(Elementwise, AddBroadcastsRowOverMatrix) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto y = run_op(OpCase("Add", 14).input("a", a).input("b", b));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 3}, {11, 22, 33, 14, 25, 36}));
}

TEST(Elementwise, AddRejectsMismatchedShapes) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({2}, {1, 2});
  auto y = run_op(OpCase("Add", 14).input("a", a).input("b", b));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("cannot be broadcast"), std::string::npos) << y.status().message();
}

TEST(Elementwise, AddRejectsMixedTypes) {
  auto y = run_op(OpCase("Add", 14)
                      .input("a", Tensor::from_vector<float>({2}, {1, 2}))
                      .input("b", Tensor::from_vector<int32_t>({2}, {1, 2})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("different element types"), std::string::npos) << y.status().message();
}

TEST(Elementwise, LegacyBroadcastAlignsBAtAxis) {
  // Opset 6: B [2] lines up with A's dim 0 (numpy would align it with the last dim and fail).
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({2}, {10, 20});
  Tensor y = run1(OpCase("Add", 6).input("a", a).input("b", b).attr("broadcast", int64_t{1}).attr("axis", int64_t{0}));
  expect_tensor_near(y, Tensor::from_vector<float>({2, 3}, {11, 12, 13, 24, 25, 26}));
  auto clash = run_op(OpCase("Mul", 6).input("a", a).input("b", b).attr("broadcast", int64_t{1}).attr("axis", int64_t{1}));
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.status().message().find("cannot be broadcast"), std::string::npos) << clash.status().message();
  auto bad = run_op(OpCase("Mul", 6).input("a", a).input("b", b).attr("broadcast", int64_t{1}).attr("axis", int64_t{2}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("broadcast axis 2"), std::string::npos) << bad.status().message();
}

TEST(Elementwise, IntegerArithmeticWrapsAndDividesSafely) {
  Tensor a = Tensor::from_vector<int32_t>({3}, {std::numeric_limits<int32_t>::max(), -7, std::numeric_limits<int32_t>::min()});
  Tensor b = Tensor::from_vector<int32_t>({3}, {1, 2, -1});
  expect_values<int32_t>(run1(OpCase("Add", 14).input("a", a).input("b", b)), {3},
                         {std::numeric_limits<int32_t>::min(), -5, std::numeric_limits<int32_t>::max()});
  expect_values<int32_t>(run1(OpCase("Div", 14).input("a", a).input("b", b)), {3},
                         {std::numeric_limits<int32_t>::max(), -3, std::numeric_limits<int32_t>::min()});
  Tensor zero = Tensor::from_vector<int32_t>({1}, {0});
  expect_values<int32_t>(run1(OpCase("Div", 14).input("a", a).input("b", zero)), {3}, {0, 0, 0});
}

TEST(Elementwise, LargeBroadcastMatchesSmallPath) {
  // Big enough for the parallel split over dim 0; [N,1] + [1,M] exercises strided runs.
  const int64_t n = 300, m = 257;
  std::vector<float> col(n), row(m), want(n * m);
  for (int64_t i = 0; i < n; ++i) col[i] = static_cast<float>(i);
  for (int64_t j = 0; j < m; ++j) row[j] = static_cast<float>(j) * 1000.0f;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) want[i * m + j] = col[i] - row[j];
  Tensor y = run1(OpCase("Sub", 14)
                      .input("a", Tensor::from_vector<float>({n, 1}, col))
                      .input("b", Tensor::from_vector<float>({1, m}, row)));
  expect_tensor_near(y, Tensor::from_vector<float>({n, m}, want));
}

TEST(Elementwise, ModFollowsDivisorOrDividendSign) {
  Tensor x = Tensor::from_vector<int32_t>({6}, {-4, 7, 5, 4, -7, 8});
  Tensor d = Tensor::from_vector<int32_t>({6}, {2, -3, 8, -2, 3, 0});
  expect_values<int32_t>(run1(OpCase("Mod", 13).input("x", x).input("d", d)), {6}, {0, -2, 5, 0, 2, 0});
  expect_values<int32_t>(run1(OpCase("Mod", 13).input("x", x).input("d", d).attr("fmod", int64_t{1})), {6},
                         {0, 1, 5, 0, -1, 0});
  Tensor xf = Tensor::from_vector<float>({2}, {-4.5f, 7.5f});
  Tensor df = Tensor::from_vector<float>({2}, {2.0f, -2.0f});
  expect_tensor_near(run1(OpCase("Mod", 13).input("x", xf).input("d", df).attr("fmod", int64_t{1})),
                     Tensor::from_vector<float>({2}, {-0.5f, 1.5f}));
  auto bad = run_op(OpCase("Mod", 13).input("x", x).input("d", d).attr("fmod", int64_t{2}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("fmod"), std::string::npos) << bad.status().message();
}

TEST(Elementwise, PowMixesBaseAndExponentTypes) {
  Tensor base_i = Tensor::from_vector<int64_t>({4}, {2, 3, -2, 5});
  Tensor exp_i = Tensor::from_vector<int64_t>({4}, {10, 0, 3, -1});
  expect_values<int64_t>(run1(OpCase("Pow", 15).input("x", base_i).input("y", exp_i)), {4}, {1024, 1, -8, 0});
  Tensor exp_f = Tensor::from_vector<float>({4}, {0.5f, 2.0f, 2.0f, 1.5f});
  expect_values<int64_t>(run1(OpCase("Pow", 15).input("x", base_i).input("y", exp_f)), {4}, {1, 9, 4, 11});
  Tensor base_f = Tensor::from_vector<float>({3}, {2, 4, 9});
  Tensor exp_u = Tensor::from_vector<uint32_t>({1}, {3});
  expect_tensor_near(run1(OpCase("Pow", 15).input("x", base_f).input("y", exp_u)),
                     Tensor::from_vector<float>({3}, {8, 64, 729}));
}

TEST(Elementwise, UnaryMath) {
  Tensor x = Tensor::from_vector<float>({6}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f});
  expect_tensor_near(run1(OpCase("Round", 11).input("x", x)), Tensor::from_vector<float>({6}, {0, 2, 2, -0.0f, -2, 2}));
  expect_tensor_near(run1(OpCase("Floor", 13).input("x", x)), Tensor::from_vector<float>({6}, {0, 1, 2, -1, -2, 2}));
  expect_tensor_near(run1(OpCase("Sign", 13).input("x", x)), Tensor::from_vector<float>({6}, {1, 1, 1, -1, -1, 1}));
  Tensor xi = Tensor::from_vector<int8_t>({3}, {-128, -3, 4});
  expect_values<int8_t>(run1(OpCase("Abs", 13).input("x", xi)), {3}, {-128, 3, 4});
  expect_values<int8_t>(run1(OpCase("Neg", 13).input("x", xi)), {3}, {-128, 3, -4});
  Tensor h = Tensor::from_vector<float16>({2}, {float16(0.25f), float16(4.0f)});
  expect_tensor_near(run1(OpCase("Sqrt", 13).input("x", h)),
                     Tensor::from_vector<float16>({2}, {float16(0.5f), float16(2.0f)}));
  Tensor e = Tensor::from_vector<double>({2}, {0.0, 1.0});
  expect_tensor_near(run1(OpCase("Erf", 13).input("x", e)), Tensor::from_vector<double>({2}, {0.0, 0.8427007929497149}));
  auto bad = run_op(OpCase("Sqrt", 13).input("x", xi));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("int8"), std::string::npos) << bad.status().message();
}

TEST(Elementwise, IsNaNAndIsInf) {
  Tensor x = Tensor::from_vector<float>({4}, {kNaN, kInf, -kInf, 1.0f});
  expect_bools(run1(OpCase("IsNaN", 13).input("x", x)), {4}, {true, false, false, false});
  expect_bools(run1(OpCase("IsInf", 10).input("x", x)), {4}, {false, true, true, false});
  expect_bools(run1(OpCase("IsInf", 10).input("x", x).attr("detect_positive", int64_t{0})), {4},
               {false, false, true, false});
}

TEST(Elementwise, VariadicMaxMinSumMean) {
  Tensor a = Tensor::from_vector<float>({2, 2}, {1, kNaN, 3, 4});
  Tensor b = Tensor::from_vector<float>({2}, {2, 2});
  Tensor c = Tensor::from_vector<float>({1}, {3.5f});
  expect_tensor_near(run1(OpCase("Max", 13).input("a", a).input("b", b).input("c", c)),
                     Tensor::from_vector<float>({2, 2}, {3.5f, kNaN, 3.5f, 4}));
  expect_tensor_near(run1(OpCase("Min", 13).input("a", a).input("b", b)),
                     Tensor::from_vector<float>({2, 2}, {1, kNaN, 2, 2}));
  expect_tensor_near(run1(OpCase("Sum", 13).input("a", a).input("b", b).input("c", c)),
                     Tensor::from_vector<float>({2, 2}, {6.5f, kNaN, 8.5f, 9.5f}));
  expect_tensor_near(run1(OpCase("Mean", 13).input("a", a).input("b", b)),
                     Tensor::from_vector<float>({2, 2}, {1.5f, kNaN, 2.5f, 3}));
  Tensor u = Tensor::from_vector<uint16_t>({3}, {1, 60000, 7});
  Tensor v = Tensor::from_vector<uint16_t>({3}, {2, 5, 7});
  expect_values<uint16_t>(run1(OpCase("Max", 13).input("u", u).input("v", v)), {3}, {2, 60000, 7});
  expect_values<uint16_t>(run1(OpCase("Max", 13).input("u", u)), {3}, {1, 60000, 7});
  auto bad = run_op(OpCase("Max", 13).input("a", a).input("u", u));
  ASSERT_FALSE(bad.ok());
}

TEST(Elementwise, ComparisonsAndLogic) {
  Tensor a = Tensor::from_vector<uint8_t>({2, 2}, {1, 5, 3, 7});
  Tensor b = Tensor::from_vector<uint8_t>({2}, {3, 5});
  expect_bools(run1(OpCase("Greater", 13).input("a", a).input("b", b)), {2, 2}, {false, false, false, true});
  expect_bools(run1(OpCase("LessOrEqual", 16).input("a", a).input("b", b)), {2, 2}, {true, true, true, false});
  expect_bools(run1(OpCase("Equal", 13).input("a", a).input("b", b)), {2, 2}, {false, true, true, false});
  Tensor s = Tensor::from_vector<std::string>({3}, {"a", "bc", ""});
  Tensor t = Tensor::from_vector<std::string>({3}, {"a", "b", ""});
  expect_bools(run1(OpCase("Equal", 19).input("s", s).input("t", t)), {3}, {true, false, true});
  Tensor p = Tensor::from_vector<bool>({4}, {true, true, false, false});
  Tensor q = Tensor::from_vector<bool>({4}, {true, false, true, false});
  expect_bools(run1(OpCase("Xor", 7).input("p", p).input("q", q)), {4}, {false, true, true, false});
  expect_bools(run1(OpCase("And", 7).input("p", p).input("q", q)), {4}, {true, false, false, false});
  expect_bools(run1(OpCase("Not", 1).input("p", p)), {4}, {false, false, true, true});
  auto bad = run_op(OpCase("And", 7).input("a", a).input("b", b));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("uint8"), std::string::npos) << bad.status().message();
}

TEST(Elementwise, BitShift) {
  Tensor x = Tensor::from_vector<uint8_t>({4}, {16, 4, 1, 255});
  Tensor n = Tensor::from_vector<uint8_t>({4}, {1, 2, 8, 9});
  expect_values<uint8_t>(run1(OpCase("BitShift", 11).input("x", x).input("n", n).attr("direction", std::string("LEFT"))),
                         {4}, {32, 16, 0, 0});
  expect_values<uint8_t>(run1(OpCase("BitShift", 11).input("x", x).input("n", n).attr("direction", std::string("RIGHT"))),
                         {4}, {8, 1, 0, 0});
  auto bad = run_op(OpCase("BitShift", 11).input("x", x).input("n", n).attr("direction", std::string("UP")));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("direction"), std::string::npos) << bad.status().message();
}

TEST(Elementwise, WhereBroadcastsThreeInputs) {
  Tensor c = Tensor::from_vector<bool>({2, 1}, {true, false});
  Tensor x = Tensor::from_vector<std::string>({2}, {"x0", "x1"});
  Tensor y = Tensor::from_vector<std::string>({1}, {"y"});
  expect_values<std::string>(run1(OpCase("Where", 16).input("c", c).input("x", x).input("y", y)), {2, 2},
                             {"x0", "x1", "y", "y"});
  auto bad = run_op(OpCase("Where", 16).input("c", Tensor::from_vector<float>({1}, {1})).input("x", x).input("y", y));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("condition must be bool"), std::string::npos) << bad.status().message();
}

TEST(Elementwise, ClipAttributeAndInputForms) {
  Tensor x = Tensor::from_vector<float>({4}, {-2, 0.25f, 3, kNaN});
  expect_tensor_near(run1(OpCase("Clip", 6).input("x", x).attr("min", -1.0f).attr("max", 1.0f)),
                     Tensor::from_vector<float>({4}, {-1, 0.25f, 1, kNaN}));
  Tensor xi = Tensor::from_vector<int8_t>({3}, {-100, 5, 100});
  expect_values<int8_t>(run1(OpCase("Clip", 13).input("x", xi).omitted_input().input("hi", Tensor::scalar<int8_t>(10))),
                        {3}, {-100, 5, 10});
  auto bad = run_op(OpCase("Clip", 13).input("x", xi).input("lo", Tensor::from_vector<int8_t>({2}, {1, 2})));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("one-element"), std::string::npos) << bad.status().message();
}

TEST(Elementwise, Shrink) {
  Tensor x = Tensor::from_vector<float>({5}, {-2, -1, 0, 1, 2});
  expect_tensor_near(run1(OpCase("Shrink", 9).input("x", x).attr("lambd", 1.5f).attr("bias", 0.5f)),
                     Tensor::from_vector<float>({5}, {-1.5f, 0, 0, 0, 1.5f}));
}

}  // namespace
}  // namespace orchard::testing
