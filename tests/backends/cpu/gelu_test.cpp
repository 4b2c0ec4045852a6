// com.orchard Gelu: known values of both forms, attribute checks, and long inputs of odd lengths (which
// hold the vectorised variant to the reference kernel through the op harness).
#include <cmath>
#include <limits>
#include <random>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

OpCase gelu_case(const Tensor& x, const char* approximate = nullptr) {
  OpCase c("Gelu", 1, "com.orchard");
  c.input("x", x);
  if (approximate) c.attr("approximate", std::string(approximate));
  return c;
}

const Tensor kX = Tensor::from_vector<float>({7}, {-3, -1, -0.5f, 0, 0.5f, 1, 2});

TEST(Gelu, ExactFormKnownValues) {
  auto y = run_op(gelu_case(kX));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(),
                     Tensor::from_vector<float>({7}, {-0.00404969409f, -0.158655254f, -0.154268769f, 0, 0.345731231f,
                                                      0.841344746f, 1.95449974f}),
                     1e-6, 1e-7);
  auto d = run_op(gelu_case(Tensor::from_vector<double>({2}, {1, -1}), "none"));
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  expect_tensor_near((*d)[0].tensor(), Tensor::from_vector<double>({2}, {0.8413447460685429, -0.15865525393145707}),
                     1e-14, 1e-15);
}

TEST(Gelu, TanhFormKnownValues) {
  auto y = run_op(gelu_case(kX, "tanh"));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(),
                     Tensor::from_vector<float>(
                         {7}, {-0.00363739208f, -0.158808009f, -0.15428599f, 0, 0.34571401f, 0.84119199f, 1.95459769f}),
                     1e-6, 1e-7);
}

TEST(Gelu, RejectsUnknownApproximation) {
  auto y = run_op(gelu_case(kX, "sigmoid"));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("sigmoid"), std::string::npos) << y.status().message();
}

TEST(Gelu, OddLengthsSpecialValuesAndHalf) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-12, 12);
  for (int64_t n : {0, 1, 3, 15, 17, 33, 1000}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = dist(rng);
    if (n >= 3) {
      v[0] = std::numeric_limits<float>::infinity();
      v[1] = -std::numeric_limits<float>::infinity();
      v[2] = std::numeric_limits<float>::quiet_NaN();
    }
    for (const char* a : {"none", "tanh"}) {
      auto y = run_op(gelu_case(Tensor::from_vector<float>({n}, v), a));
      ASSERT_TRUE(y.ok()) << y.status().to_string();
      const Tensor& t = (*y)[0].tensor();
      if (n >= 3) {
        EXPECT_EQ(t.data<float>()[0], std::numeric_limits<float>::infinity()) << a;
        EXPECT_TRUE(std::isnan(t.data<float>()[1])) << a;  // -inf * 0, as the unfused Erf pattern gives
        EXPECT_TRUE(std::isnan(t.data<float>()[2])) << a;
      }
    }
  }
  auto h = run_op(gelu_case(Tensor::from_vector<float16>({2}, {float16(1.0f), float16(-1.0f)})));
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  expect_tensor_near((*h)[0].tensor(), Tensor::from_vector<float16>({2}, {float16(0.8413f), float16(-0.1587f)}), 1e-3,
                     1e-3);
}

}  // namespace
}  // namespace orchard::testing
