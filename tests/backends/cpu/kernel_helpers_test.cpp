// The helpers CPU kernels share (element_types, numeric_cast, shape_util, strided_walk, copy_util).
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/numeric_cast.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"

#include "backends/cpu/copy_util.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace orchard::cpu {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(KernelHelpers, DtypeFromOnnxType) {
  EXPECT_EQ(*dtype_from_onnx_type(1), DType::float32);
  EXPECT_EQ(*dtype_from_onnx_type(7), DType::int64);
  EXPECT_EQ(*dtype_from_onnx_type(8), DType::string);
  EXPECT_EQ(*dtype_from_onnx_type(16), DType::bfloat16);
  const auto complex64 = dtype_from_onnx_type(14);
  ASSERT_FALSE(complex64.ok());
  EXPECT_EQ(complex64.status().code(), StatusCode::unsupported);
  EXPECT_FALSE(dtype_from_onnx_type(0).ok());
}

TEST(KernelHelpers, SaturateCastTruncatesAndClamps) {
  EXPECT_EQ(saturate_cast<int8_t>(-3.9), -3);
  EXPECT_EQ(saturate_cast<int8_t>(300.0), 127);
  EXPECT_EQ(saturate_cast<int8_t>(-300.0), -128);
  EXPECT_EQ(saturate_cast<uint8_t>(-1.0), 0);
  EXPECT_EQ(saturate_cast<int32_t>(kNaN), 0);
  EXPECT_EQ(saturate_cast<int64_t>(1e300), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(saturate_cast<uint64_t>(1e300), std::numeric_limits<uint64_t>::max());
  EXPECT_FLOAT_EQ(saturate_cast<float>(2.5), 2.5f);
}

TEST(KernelHelpers, RoundSaturateCastRoundsHalfToEven) {
  EXPECT_EQ(round_saturate_cast<int8_t>(2.5), 2);
  EXPECT_EQ(round_saturate_cast<int8_t>(3.5), 4);
  EXPECT_EQ(round_saturate_cast<int8_t>(-2.6), -3);
  EXPECT_EQ(round_saturate_cast<uint8_t>(255.6), 255);
  EXPECT_EQ(round_saturate_cast<int16_t>(kNaN), 0);
  EXPECT_DOUBLE_EQ(round_saturate_cast<double>(2.5), 2.5);
}

TEST(KernelHelpers, WrappingCastWrapsLikeNumpy) {
  EXPECT_EQ(wrapping_cast<int8_t>(-3.9), -3);
  EXPECT_EQ(wrapping_cast<uint8_t>(300.0), 44);  // 300 mod 256
  EXPECT_EQ(wrapping_cast<int8_t>(200.0), -56);
  EXPECT_EQ(wrapping_cast<int32_t>(kNaN), 0);
  EXPECT_EQ(wrapping_cast<int64_t>(1e300), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(wrapping_cast<uint64_t>(1.5e19), uint64_t{15000000000000000000u});
  EXPECT_EQ(wrapping_cast<uint64_t>(1e300), std::numeric_limits<uint64_t>::max());
}

TEST(KernelHelpers, AxisViewsAndOffsets) {
  const Shape s{2, 3, 4, 5};
  const AxisView v = view_around(s, 2);
  EXPECT_EQ(v.outer, 6);
  EXPECT_EQ(v.n, 4);
  EXPECT_EQ(v.inner, 5);
  EXPECT_EQ(dims_product(s, 1, 3), 12);
  EXPECT_EQ(dims_product(s, 2, 2), 1);
  EXPECT_EQ(grain_for(1), kGrainElems);
  EXPECT_EQ(grain_for(kGrainElems * 4), 1);
  std::vector<int64_t> offs;
  for_each_offset({2, 3}, {10, 1}, [&](int64_t o) { offs.push_back(o); });
  EXPECT_EQ(offs, (std::vector<int64_t>{0, 1, 2, 10, 11, 12}));
  EXPECT_EQ(offset_of(4, {2, 3}, {10, 1}), 11);
  offs.clear();
  for_each_offset({}, {}, [&](int64_t o) { offs.push_back(o); });
  EXPECT_EQ(offs, (std::vector<int64_t>{0}));
}

TEST(KernelHelpers, StridedWalkKeepsEveryOffsetAndWraps) {
  // A 2x3 box read by a row-major tensor, a transposed one and a row broadcast along dim 0.
  StridedWalk<3> w({2, 3}, {std::vector<int64_t>{3, 1}, std::vector<int64_t>{1, 2}, std::vector<int64_t>{0, 1}});
  std::vector<std::array<int64_t, 3>> seen;
  for (int i = 0; i < 7; ++i, w.next()) seen.push_back(w.offsets());
  const std::vector<std::array<int64_t, 3>> want = {{0, 0, 0}, {1, 2, 1}, {2, 4, 2}, {3, 1, 0},
                                                    {4, 3, 1}, {5, 5, 2}, {0, 0, 0}};  // the 7th wrapped
  EXPECT_EQ(seen, want);
  w.seek(4);
  EXPECT_EQ(w.index(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(w.offsets(), (std::array<int64_t, 3>{4, 3, 1}));
  StridedWalk<0> idx({2, 2}, {});
  idx.seek(1);
  idx.next();
  EXPECT_EQ(idx.index(), (std::vector<int64_t>{1, 0}));
  // Negative strides walk backwards from the offset of the box's first element.
  StridedWalk<1> back({3}, {std::vector<int64_t>{-2}});
  back.next();
  back.next();
  EXPECT_EQ(back.offset(), -4);
}

TEST(KernelHelpers, SpatialOutputShape) {
  const std::vector<int64_t> in{5, 6}, k{3, 3}, s{2, 2}, dil{1, 1};
  std::vector<int64_t> pb{0, 0}, pe{0, 0};
  EXPECT_EQ(*spatial_output_shape(in, k, s, dil, pb, pe, "NOTSET", false), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(*spatial_output_shape(in, k, s, dil, pb, pe, "NOTSET", true), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(*spatial_output_shape(in, k, s, dil, pb, pe, "SAME_UPPER", false), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(pb, (std::vector<int64_t>{1, 0}));  // totals 2 and 1: the odd pad goes at the end
  EXPECT_EQ(pe, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(*spatial_output_shape(in, k, s, dil, pb, pe, "SAME_LOWER", false), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(pb, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(*spatial_output_shape(in, k, s, dil, pb, pe, "VALID", false), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(pb, (std::vector<int64_t>{0, 0}));
  EXPECT_FALSE(spatial_output_shape(in, k, s, dil, pb, pe, "SAME", false).ok());
  const std::vector<int64_t> big{7, 7};
  EXPECT_FALSE(spatial_output_shape(in, big, s, dil, pb, pe, "NOTSET", false).ok());
}

TEST(CopyUtil, StridedCopyTransposesAndBroadcasts) {
  ThreadPool pool(1);
  // A 6x5 matrix read transposed (exercises the tiled path: the unit-stride dim is not innermost).
  std::vector<int> in(30);
  for (int i = 0; i < 30; ++i) in[static_cast<size_t>(i)] = i;
  std::vector<int> out(30, -1);
  strided_copy<int>(in.data(), 0, {5, 6}, {1, 5}, out.data(), pool);
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 6; ++c) EXPECT_EQ(out[static_cast<size_t>(r * 6 + c)], c * 5 + r);
  }
  // A row broadcast down 3 rows (stride 0), starting at offset 2.
  std::vector<int> b(12, -1);
  strided_copy<int>(in.data(), 2, {3, 4}, {0, 1}, b.data(), pool);
  EXPECT_EQ(b, (std::vector<int>{2, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5}));
}

TEST(CopyUtil, CopyAxisRangeMovesBlocksAlongTheMiddleAxis) {
  // src [2, 3, 2] -> positions 1..2 of its axis into dst [2, 4, 2] at positions 2..3.
  std::vector<float> src(12), dst(16, 0.0f);
  for (int i = 0; i < 12; ++i) src[static_cast<size_t>(i)] = static_cast<float>(i);
  copy_axis_range(DType::float32, 2, 2, 2, src.data(), 3, 1, dst.data(), 4, 2);
  EXPECT_EQ(dst, (std::vector<float>{0, 0, 0, 0, 2, 3, 4, 5, 0, 0, 0, 0, 8, 9, 10, 11}));
  std::vector<std::string> s{"a", "b"}, d(2);
  copy_elements(DType::string, s.data(), 0, d.data(), 0, 2);
  EXPECT_EQ(d, s);
}

TEST(CopyUtil, ChecksShapesFromData) {
  EXPECT_TRUE(check_numel({2, 3}).ok());
  EXPECT_TRUE(check_numel({0, int64_t{1} << 62, int64_t{1} << 62}).ok());
  EXPECT_FALSE(check_numel({2, -1}).ok());
  EXPECT_FALSE(check_numel({int64_t{1} << 40, int64_t{1} << 40}).ok());
  const Status s = dispatch_copy(DType::undefined, "Test", [](auto) { return Status::OK(); });
  EXPECT_EQ(s.code(), StatusCode::unsupported);
}

TEST(KernelHelpers, ComputeOutputConvertsHalfResults) {
  Tensor y = Tensor::zeros(DType::float16, Shape{2});
  ComputeOutput<float16> out(y);
  out.data()[0] = 1.5f;
  out.data()[1] = -2.0f;
  EXPECT_EQ(static_cast<float>(y.data<float16>()[0]), 0.0f);  // not stored until finish()
  out.finish();
  EXPECT_EQ(static_cast<float>(y.data<float16>()[0]), 1.5f);
  EXPECT_EQ(static_cast<float>(y.data<float16>()[1]), -2.0f);
  Tensor z = Tensor::zeros(DType::float32, Shape{1});
  ComputeOutput<float> direct(z);
  EXPECT_EQ(direct.data(), z.data<float>());
}

}  // namespace
}  // namespace orchard::cpu
