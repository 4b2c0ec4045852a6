#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "orchard/dtype.hpp"

namespace orchard {
namespace {

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(Float16, EveryNonNanHalfRoundTripsExactly) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    const float f = float16::to_float(bits);
    if (std::isnan(f)) continue;
    EXPECT_EQ(float16::from_float(f), bits) << "half 0x" << std::hex << h << " → " << f;
  }
}

TEST(Float16, KnownValues) {
  EXPECT_EQ(float16::from_float(1.0f), 0x3c00);
  EXPECT_EQ(float16::from_float(-2.0f), 0xc000);
  EXPECT_EQ(float16::from_float(65504.0f), 0x7bff);  // largest finite
  EXPECT_EQ(float16::from_float(0.0f), 0x0000);
  EXPECT_EQ(float16::from_float(-0.0f), 0x8000);
  EXPECT_EQ(float16::to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(float16::to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
}

TEST(Float16, Subnormals) {
  EXPECT_EQ(float16::to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(float16::to_float(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(float16::to_float(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(float16::from_float(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float16::from_float(std::ldexp(3.0f, -24)), 0x0003);
  // Half the smallest subnormal is a tie between 0 and 0x0001: rounds to even (0).
  EXPECT_EQ(float16::from_float(std::ldexp(1.0f, -25)), 0x0000);
  // Just above the tie rounds up.
  EXPECT_EQ(float16::from_float(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  // 1.5 * 2^-24 is a tie between 0x0001 and 0x0002: rounds to even (0x0002).
  EXPECT_EQ(float16::from_float(std::ldexp(3.0f, -25)), 0x0002);
  // 2.5 * 2^-24 ties to 0x0002.
  EXPECT_EQ(float16::from_float(std::ldexp(5.0f, -25)), 0x0002);
  // Far below the subnormal range: signed zero.
  EXPECT_EQ(float16::from_float(-1e-10f), 0x8000);
  // The largest subnormal rounded up becomes the smallest normal.
  EXPECT_EQ(float16::from_float(std::ldexp(1023.75f, -24)), 0x0400);
}

TEST(Float16, RoundToNearestEvenAtTies) {
  // Between 1.0 (0x3c00) and 1+2^-10 (0x3c01): the midpoint goes to the even 0x3c00.
  EXPECT_EQ(float16::from_float(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // Between 0x3c01 and 0x3c02: the midpoint goes to the even 0x3c02.
  EXPECT_EQ(float16::from_float(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Off the midpoint rounds to nearest.
  EXPECT_EQ(float16::from_float(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
  EXPECT_EQ(float16::from_float(std::nextafter(1.0f + 3 * std::ldexp(1.0f, -11), 0.0f)), 0x3c01);
  // Mantissa carry into the exponent: 2 - 2^-12 rounds up to 2.0.
  EXPECT_EQ(float16::from_float(2.0f - std::ldexp(1.0f, -12)), 0x4000);
}

TEST(Float16, OverflowInfinityAndNan) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float16::from_float(inf), 0x7c00);
  EXPECT_EQ(float16::from_float(-inf), 0xfc00);
  EXPECT_EQ(float16::to_float(0x7c00), inf);
  EXPECT_EQ(float16::to_float(0xfc00), -inf);
  // 65520 is the tie between 65504 (odd mantissa) and 65536 (overflow): rounds to inf.
  EXPECT_EQ(float16::from_float(65520.0f), 0x7c00);
  EXPECT_EQ(float16::from_float(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(float16::from_float(1e10f), 0x7c00);
  EXPECT_EQ(float16::from_float(-1e10f), 0xfc00);
  EXPECT_EQ(float16::from_float(std::numeric_limits<float>::max()), 0x7c00);
  const uint16_t nan = float16::from_float(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  // A NaN whose payload sits only in the low float bits must still be a NaN, not inf.
  const uint16_t low_payload = float16::from_float(bits_to_float(0x7f800001u));
  EXPECT_NE(low_payload & 0x03ff, 0) << std::hex << low_payload;
  EXPECT_TRUE(std::isnan(float16::to_float(0x7e00)));
  EXPECT_TRUE(std::isnan(float16::to_float(0xfc01)));
  EXPECT_EQ(float16::from_float(-std::numeric_limits<float>::quiet_NaN()) & 0x8000, 0x8000);
}

TEST(Float16, NegationFlipsSign) {
  float16 h(3.5f);
  EXPECT_EQ(static_cast<float>(-h), -3.5f);
}

TEST(BFloat16, RoundsToNearestEven) {
  EXPECT_EQ(bfloat16::from_float(1.0f), 0x3f80);
  // 1 + 2^-8 is the tie between 0x3f80 and 0x3f81: even 0x3f80.
  EXPECT_EQ(bfloat16::from_float(bits_to_float(0x3f808000u)), 0x3f80);
  // 0x3f818000 ties between 0x3f81 and 0x3f82: even 0x3f82.
  EXPECT_EQ(bfloat16::from_float(bits_to_float(0x3f818000u)), 0x3f82);
  EXPECT_EQ(bfloat16::from_float(bits_to_float(0x3f808001u)), 0x3f81);
  EXPECT_EQ(bfloat16::from_float(bits_to_float(0x3f807fffu)), 0x3f80);
  // Rounding carries into the exponent and overflows to inf at the top.
  EXPECT_EQ(bfloat16::from_float(bits_to_float(0x3fffffffu)), 0x4000);
  EXPECT_EQ(bfloat16::from_float(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(bfloat16::from_float(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(bfloat16::to_float(0x4049), bits_to_float(0x40490000u));
}

TEST(BFloat16, NanStaysNanAndSubnormalsSurvive) {
  const uint16_t nan = bfloat16::from_float(bits_to_float(0x7f800001u));  // payload below bit 16
  EXPECT_TRUE(std::isnan(bfloat16::to_float(nan))) << std::hex << nan;
  const float sub = bits_to_float(0x00010000u);
  EXPECT_EQ(bfloat16::from_float(sub), 0x0001);
  EXPECT_EQ(float_to_bits(bfloat16::to_float(0x0001)), 0x00010000u);
}

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::float32), 4u);
  EXPECT_EQ(dtype_size(DType::float16), 2u);
  EXPECT_EQ(dtype_size(DType::bfloat16), 2u);
  EXPECT_EQ(dtype_size(DType::float64), 8u);
  EXPECT_EQ(dtype_size(DType::int8), 1u);
  EXPECT_EQ(dtype_size(DType::uint16), 2u);
  EXPECT_EQ(dtype_size(DType::int32), 4u);
  EXPECT_EQ(dtype_size(DType::uint64), 8u);
  EXPECT_EQ(dtype_size(DType::boolean), sizeof(bool));
  EXPECT_EQ(dtype_size(DType::string), sizeof(std::string));
  EXPECT_EQ(dtype_size(DType::undefined), 0u);
  EXPECT_EQ(dtype_name(DType::float32), "float32");
  EXPECT_EQ(dtype_name(DType::bfloat16), "bfloat16");
  EXPECT_EQ(dtype_name(DType::uint32), "uint32");
  EXPECT_EQ(dtype_name(DType::boolean), "bool");
  EXPECT_EQ(dtype_name(DType::string), "string");
  EXPECT_EQ(dtype_name(DType::undefined), "undefined");
}

TEST(DType, Predicates) {
  EXPECT_TRUE(dtype_is_float(DType::bfloat16));
  EXPECT_FALSE(dtype_is_float(DType::int32));
  EXPECT_TRUE(dtype_is_integer(DType::uint8));
  EXPECT_FALSE(dtype_is_integer(DType::boolean));
  EXPECT_FALSE(dtype_is_integer(DType::float16));
  EXPECT_TRUE(dtype_is_signed(DType::int16));
  EXPECT_TRUE(dtype_is_signed(DType::float64));
  EXPECT_FALSE(dtype_is_signed(DType::uint64));
  EXPECT_EQ(dtype_of<float16>(), DType::float16);
  EXPECT_EQ(dtype_of<bool>(), DType::boolean);
  EXPECT_EQ(dtype_of<std::string>(), DType::string);
}

}  // namespace
}  // namespace orchard
