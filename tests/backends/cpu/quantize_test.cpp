#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  return y.ok() ? (*y)[0].tensor() : Tensor();
}

TEST(QuantizeLinear, RoundsHalfToEvenAndSaturates) {
  Tensor x = Tensor::from_vector<float>({6}, {1, 3, 5, -3, 1000, -1000});
  auto y = run1(OpCase("QuantizeLinear", 13).input("x", x).input("s", Tensor::scalar<float>(2)).input("z", Tensor::scalar<int8_t>(0)));
  expect_tensor_near(y, Tensor::from_vector<int8_t>({6}, {0, 2, 2, -2, 127, -128}));
  // No zero point: uint8 with zero point 0.
  auto u = run1(OpCase("QuantizeLinear", 13).input("x", x).input("s", Tensor::scalar<float>(2)));
  expect_tensor_near(u, Tensor::from_vector<uint8_t>({6}, {0, 2, 2, 0, 255, 0}));
}

TEST(QuantizeLinear, PerAxis) {
  Tensor x = Tensor::from_vector<float>({2, 2}, {10, 10, 10, 10});
  auto y = run1(OpCase("QuantizeLinear", 13)
                    .input("x", x)
                    .input("s", Tensor::from_vector<float>({2}, {1, 5}))
                    .input("z", Tensor::from_vector<uint8_t>({2}, {0, 100}))
                    .attr("axis", int64_t{0}));
  expect_tensor_near(y, Tensor::from_vector<uint8_t>({2, 2}, {10, 10, 102, 102}));
}

TEST(DequantizeLinear, PerAxisAndScalar) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 2, 2}, {0, 255, 128, 130});
  auto y = run1(OpCase("DequantizeLinear", 13)
                    .input("x", x)
                    .input("s", Tensor::from_vector<float>({2}, {1, 0.5f}))
                    .input("z", Tensor::from_vector<uint8_t>({2}, {0, 128})));
  expect_tensor_near(y, Tensor::from_vector<float>({1, 2, 2}, {0, 255, 0, 1}));
  Tensor i = Tensor::from_vector<int32_t>({2}, {-4, 6});
  expect_tensor_near(run1(OpCase("DequantizeLinear", 10).input("x", i).input("s", Tensor::scalar<float>(0.5f))),
                     Tensor::from_vector<float>({2}, {-2, 3}));
}

TEST(DequantizeLinear, RejectsScaleOfWrongLength) {
  Tensor x = Tensor::from_vector<uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto y = run_op(OpCase("DequantizeLinear", 13).input("x", x).input("s", Tensor::from_vector<float>({2}, {1, 2})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("scale has 2 values"), std::string::npos) << y.status().message();
}

TEST(DynamicQuantizeLinear, ScaleZeroPointAndValues) {
  Tensor x = Tensor::from_vector<float>({3}, {0, 2.55f, -2.55f});
  auto y = run_op(OpCase("DynamicQuantizeLinear", 11).input("x", x).outputs(3));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[1].tensor(), Tensor::scalar<float>(0.02f));
  expect_tensor_near((*y)[2].tensor(), Tensor::scalar<uint8_t>(128));
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<uint8_t>({3}, {128, 255, 0}));
}

}  // namespace
}  // namespace orchard::testing
