// The helpers CPU kernels share (backends/cpu/kernel_util.hpp).
#include "backends/cpu/kernel_util.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace orchard::cpu {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(KernelUtil, DtypeFromOnnxType) {
  EXPECT_EQ(*dtype_from_onnx_type(1), DType::float32);
  EXPECT_EQ(*dtype_from_onnx_type(7), DType::int64);
  EXPECT_EQ(*dtype_from_onnx_type(8), DType::string);
  EXPECT_EQ(*dtype_from_onnx_type(16), DType::bfloat16);
  const auto complex64 = dtype_from_onnx_type(14);
  ASSERT_FALSE(complex64.ok());
  EXPECT_EQ(complex64.status().code(), StatusCode::unsupported);
  EXPECT_FALSE(dtype_from_onnx_type(0).ok());
}

TEST(KernelUtil, SaturateCastTruncatesAndClamps) {
  EXPECT_EQ(saturate_cast<int8_t>(-3.9), -3);
  EXPECT_EQ(saturate_cast<int8_t>(300.0), 127);
  EXPECT_EQ(saturate_cast<int8_t>(-300.0), -128);
  EXPECT_EQ(saturate_cast<uint8_t>(-1.0), 0);
  EXPECT_EQ(saturate_cast<int32_t>(kNaN), 0);
  EXPECT_EQ(saturate_cast<int64_t>(1e300), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(saturate_cast<uint64_t>(1e300), std::numeric_limits<uint64_t>::max());
  EXPECT_FLOAT_EQ(saturate_cast<float>(2.5), 2.5f);
}

TEST(KernelUtil, RoundSaturateCastRoundsHalfToEven) {
  EXPECT_EQ(round_saturate_cast<int8_t>(2.5), 2);
  EXPECT_EQ(round_saturate_cast<int8_t>(3.5), 4);
  EXPECT_EQ(round_saturate_cast<int8_t>(-2.6), -3);
  EXPECT_EQ(round_saturate_cast<uint8_t>(255.6), 255);
  EXPECT_EQ(round_saturate_cast<int16_t>(kNaN), 0);
  EXPECT_DOUBLE_EQ(round_saturate_cast<double>(2.5), 2.5);
}

TEST(KernelUtil, WrappingCastWrapsLikeNumpy) {
  EXPECT_EQ(wrapping_cast<int8_t>(-3.9), -3);
  EXPECT_EQ(wrapping_cast<uint8_t>(300.0), 44);  // 300 mod 256
  EXPECT_EQ(wrapping_cast<int8_t>(200.0), -56);
  EXPECT_EQ(wrapping_cast<int32_t>(kNaN), 0);
  EXPECT_EQ(wrapping_cast<int64_t>(1e300), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(wrapping_cast<uint64_t>(1.5e19), uint64_t{15000000000000000000u});
  EXPECT_EQ(wrapping_cast<uint64_t>(1e300), std::numeric_limits<uint64_t>::max());
}

}  // namespace
}  // namespace orchard::cpu
