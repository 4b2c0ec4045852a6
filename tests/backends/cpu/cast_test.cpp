#include <cmath>
#include <limits>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

constexpr int64_t kFloat = 1, kUint8 = 2, kInt32 = 6, kInt64 = 7, kString = 8, kBool = 9, kFloat16 = 10,
                  kBfloat16 = 16;

Tensor cast(const Tensor& x, int64_t to) {
  auto y = run_op(OpCase("Cast", 13).input("x", x).attr("to", to));
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  if (!y.ok()) return Tensor();
  return (*y)[0].tensor();
}

template <class T>
void expect_values(const Tensor& t, const std::vector<T>& want) {
  ASSERT_EQ(t.dtype(), dtype_of<T>()) << t.description();
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size())) << t.description();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(t.data<T>()[i], want[i]) << "at " << i;
}

TEST(Cast, FloatToStringMatchesNumpyStr) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector<float>(
      {14}, {0.0f, -0.0f, 1.0f, 1e16f, 1.5e16f, 123456789.0f, 1e-4f, 9.9e-5f, 0.1f, 3.14159265f, nan, -inf, 0.47892547f, 12345.678f});
  expect_values<std::string>(cast(x, kString), {"0.0", "-0.0", "1.0", "1e+16", "1.5e+16", "123456790.0", "1e-04", "9.9e-05",
                                                "0.1", "3.1415927", "nan", "-inf", "0.47892547", "12345.678"});
  Tensor d = Tensor::from_vector<double>({3}, {1e-4, 3.14159265, 1e15});
  expect_values<std::string>(cast(d, kString), {"0.0001", "3.14159265", "1000000000000000.0"});
  Tensor h = Tensor::from_vector<float16>({3}, {float16(65504.0f), float16(0.1f), float16(12345.678f)});
  expect_values<std::string>(cast(h, kString), {"65500.0", "0.1", "12344.0"});
  Tensor i = Tensor::from_vector<int64_t>({2}, {-5, 1234567890123});
  expect_values<std::string>(cast(i, kString), {"-5", "1234567890123"});
  Tensor b = Tensor::from_vector<bool>({2}, {true, false});
  expect_values<std::string>(cast(b, kString), {"True", "False"});
}

TEST(Cast, StringToNumbers) {
  Tensor s = Tensor::from_vector<std::string>({5}, {"0.5", "+INF", "-inf", " 1.25 ", "NaN"});
  Tensor f = cast(s, kFloat);
  ASSERT_EQ(f.dtype(), DType::float32);
  EXPECT_EQ(f.data<float>()[0], 0.5f);
  EXPECT_TRUE(std::isinf(f.data<float>()[1]) && f.data<float>()[1] > 0);
  EXPECT_TRUE(std::isinf(f.data<float>()[2]) && f.data<float>()[2] < 0);
  EXPECT_EQ(f.data<float>()[3], 1.25f);
  EXPECT_TRUE(std::isnan(f.data<float>()[4]));
  expect_values<int64_t>(cast(Tensor::from_vector<std::string>({3}, {"42", "-7", "+3"}), kInt64), {42, -7, 3});
  expect_values<bool>(cast(Tensor::from_vector<std::string>({3}, {"True", "0", "2.5"}), kBool), {true, false, true});
  auto bad = run_op(OpCase("Cast", 13).input("x", Tensor::from_vector<std::string>({2}, {"1", "abc"})).attr("to", kFloat));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"abc\""), std::string::npos) << bad.status().message();
}

TEST(Cast, NumericConversions) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({4}, {-1.7f, 2.9f, nan, -1.0f});
  expect_values<int32_t>(cast(x, kInt32), {-1, 2, 0, -1});
  expect_values<uint8_t>(cast(x, kUint8), {255, 2, 0, 255});
  expect_values<bool>(cast(x, kBool), {true, true, true, true});
  expect_values<float>(cast(Tensor::from_vector<bool>({2}, {true, false}), kFloat), {1.0f, 0.0f});
  // 1 + 2^-11 + 2^-40 lies just above the midpoint of two float16 neighbours: rounding through float would
  // tie to 1.0; a single rounding gives 1 + 2^-10.
  Tensor d = Tensor::from_vector<double>({1}, {1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)});
  Tensor h = cast(d, kFloat16);
  ASSERT_EQ(h.dtype(), DType::float16);
  EXPECT_EQ(static_cast<float>(h.data<float16>()[0]), 1.0f + std::ldexp(1.0f, -10));
  // float -> bfloat16 rounds to nearest even: 0.48033667 is 0x3EF5_EC.. -> 0x3EF6.
  Tensor bf = cast(Tensor::from_vector<float>({1}, {0.48033667f}), kBfloat16);
  ASSERT_EQ(bf.dtype(), DType::bfloat16);
  EXPECT_EQ(bf.data<bfloat16>()[0].bits, 0x3EF6);
}

TEST(Cast, OpsetOneTypeNameAndCastLike) {
  Tensor x = Tensor::from_vector<float>({2}, {1.5f, -2.5f});
  auto y = run_op(OpCase("Cast", 1).input("x", x).attr("to", std::string("INT32")));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_values<int32_t>((*y)[0].tensor(), {1, -2});
  auto like = run_op(OpCase("CastLike", 15).input("x", x).input("like", Tensor::from_vector<double>({1}, {0.0})));
  ASSERT_TRUE(like.ok()) << like.status().to_string();
  expect_values<double>((*like)[0].tensor(), {1.5, -2.5});
  auto bad = run_op(OpCase("Cast", 13).input("x", x).attr("to", int64_t{14}));  // complex64
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("14"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace orchard::testing
