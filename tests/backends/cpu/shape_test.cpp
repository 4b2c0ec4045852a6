#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor ints(Shape s, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(std::move(s), v); }

std::vector<float> iota_f(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);
  return v;
}

TEST(Shape, ReshapeCopiesZeroAndInfersMinusOneAndAliases) {
  Tensor x = Tensor::from_vector<float>({2, 3, 4}, iota_f(24));
  auto y = run_op(OpCase("Reshape", 14).input("x", x).input("s", ints({2}, {0, -1})));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const Tensor& t = (*y)[0].tensor();
  EXPECT_EQ(t.shape(), (Shape{2, 12}));
  EXPECT_EQ(t.raw_data(), x.raw_data());  // no copy
}

TEST(Shape, ReshapeAllowZeroAndOpset1Attribute) {
  Tensor x = Tensor::from_vector<float>({0, 3}, {});
  auto y = run_op(OpCase("Reshape", 14).input("x", x).input("s", ints({2}, {3, 0})).attr("allowzero", int64_t{1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_EQ((*y)[0].tensor().shape(), (Shape{3, 0}));
  Tensor x2 = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  auto y2 = run_op(OpCase("Reshape", 1).input("x", x2).attr("shape", std::vector<int64_t>{4}));
  ASSERT_TRUE(y2.ok()) << y2.status().to_string();
  expect_tensor_near((*y2)[0].tensor(), Tensor::from_vector<float>({4}, {1, 2, 3, 4}));
}

TEST(Shape, ReshapeRejectsWrongElementCount) {
  Tensor x = Tensor::from_vector<float>({2, 3}, iota_f(6));
  auto y = run_op(OpCase("Reshape", 14).input("x", x).input("s", ints({2}, {4, 2})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("cannot reshape"), std::string::npos) << y.status().message();
}

TEST(Shape, SqueezeUnsqueezeFlatten) {
  Tensor x = Tensor::from_vector<float>({1, 3, 1}, {1, 2, 3});
  auto s = run_op(OpCase("Squeeze", 13).input("x", x).input("a", ints({1}, {-1})));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)[0].tensor().shape(), (Shape{1, 3}));
  auto s11 = run_op(OpCase("Squeeze", 11).input("x", x));
  ASSERT_TRUE(s11.ok());
  EXPECT_EQ((*s11)[0].tensor().shape(), (Shape{3}));
  auto bad = run_op(OpCase("Squeeze", 11).input("x", x).attr("axes", std::vector<int64_t>{1}));
  EXPECT_FALSE(bad.ok());
  auto u = run_op(OpCase("Unsqueeze", 13).input("x", x).input("a", ints({2}, {4, 0})));
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  EXPECT_EQ((*u)[0].tensor().shape(), (Shape{1, 1, 3, 1, 1}));
  auto f = run_op(OpCase("Flatten", 13).input("x", x).attr("axis", int64_t{-1}));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)[0].tensor().shape(), (Shape{3, 1}));
}

TEST(Shape, ShapeWithStartEndAndSize) {
  Tensor x = Tensor::zeros(DType::float32, {2, 3, 4, 5});
  auto y = run_op(OpCase("Shape", 15).input("x", x).attr("start", int64_t{1}).attr("end", int64_t{-1}));
  ASSERT_TRUE(y.ok());
  expect_tensor_near((*y)[0].tensor(), ints({2}, {3, 4}));
  auto z = run_op(OpCase("Size", 13).input("x", x));
  ASSERT_TRUE(z.ok());
  expect_tensor_near((*z)[0].tensor(), Tensor::scalar<int64_t>(120));
}

TEST(Shape, Transpose3dAndStrings) {
  Tensor x = Tensor::from_vector<float>({2, 3, 2}, iota_f(12));
  auto y = run_op(OpCase("Transpose", 13).input("x", x).attr("perm", std::vector<int64_t>{2, 0, 1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(),
                     Tensor::from_vector<float>({2, 2, 3}, {0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11}));
  Tensor s = Tensor::from_vector<std::string>({2, 2}, {"a", "b", "c", "d"});
  auto t = run_op(OpCase("Transpose", 13).input("s", s));
  ASSERT_TRUE(t.ok());
  expect_tensor_near((*t)[0].tensor(), Tensor::from_vector<std::string>({2, 2}, {"a", "c", "b", "d"}));
}

TEST(Shape, TransposeLargeMatchesNaive) {
  const int64_t a = 37, b = 5, c = 41;
  Tensor x = Tensor::from_vector<float>({a, b, c}, iota_f(static_cast<int>(a * b * c)));
  auto y = run_op(OpCase("Transpose", 13).input("x", x).attr("perm", std::vector<int64_t>{2, 1, 0}));
  ASSERT_TRUE(y.ok());
  const Tensor& t = (*y)[0].tensor();
  ASSERT_EQ(t.shape(), (Shape{c, b, a}));
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < c; ++k)
        ASSERT_EQ(t.data<float>()[(k * b + j) * a + i], x.data<float>()[(i * b + j) * c + k]);
}

TEST(Shape, TransposeRejectsBadPerm) {
  Tensor x = Tensor::from_vector<float>({2, 3}, iota_f(6));
  auto y = run_op(OpCase("Transpose", 13).input("x", x).attr("perm", std::vector<int64_t>{0, 0}));
  EXPECT_FALSE(y.ok());
}

TEST(Shape, ExpandAndTile) {
  Tensor x = Tensor::from_vector<int32_t>({3, 1}, {1, 2, 3});
  auto e = run_op(OpCase("Expand", 13).input("x", x).input("s", ints({3}, {2, 1, 2})));
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  expect_tensor_near((*e)[0].tensor(), Tensor::from_vector<int32_t>({2, 3, 2}, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  Tensor m = Tensor::from_vector<int32_t>({2, 2}, {1, 2, 3, 4});
  auto t = run_op(OpCase("Tile", 13).input("x", m).input("r", ints({2}, {2, 2})));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  expect_tensor_near((*t)[0].tensor(), Tensor::from_vector<int32_t>(
                                           {4, 4}, {1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4}));
  auto bad = run_op(OpCase("Expand", 13).input("x", x).input("s", ints({2}, {2, 2})));
  EXPECT_FALSE(bad.ok());
}

TEST(Shape, ConstantOfShapeRangeEyeLike) {
  auto c = run_op(OpCase("ConstantOfShape", 9).input("s", ints({2}, {2, 2})).attr("value", Tensor::from_vector<int32_t>({1}, {7})));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  expect_tensor_near((*c)[0].tensor(), Tensor::from_vector<int32_t>({2, 2}, {7, 7, 7, 7}));
  auto r = run_op(OpCase("Range", 11).input("a", Tensor::scalar<int32_t>(10)).input("b", Tensor::scalar<int32_t>(4))
                      .input("c", Tensor::scalar<int32_t>(-3)));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_tensor_near((*r)[0].tensor(), Tensor::from_vector<int32_t>({2}, {10, 7}));
  auto e = run_op(OpCase("EyeLike", 9).input("x", Tensor::zeros(DType::int32, {2, 3})).attr("k", int64_t{1}));
  ASSERT_TRUE(e.ok());
  expect_tensor_near((*e)[0].tensor(), Tensor::from_vector<int32_t>({2, 3}, {0, 1, 0, 0, 0, 1}));
  auto bad = run_op(OpCase("Range", 11).input("a", Tensor::scalar<float>(0)).input("b", Tensor::scalar<float>(1))
                        .input("c", Tensor::scalar<float>(0)));
  EXPECT_FALSE(bad.ok());
}

TEST(Shape, HugeShapesAreRejectedNotAllocated) {
  const int64_t big = int64_t{1} << 40;
  auto c = run_op(OpCase("ConstantOfShape", 9).input("s", ints({2}, {big, big})));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("too many elements"), std::string::npos) << c.status().message();
  auto t = run_op(OpCase("Tile", 13).input("x", Tensor::from_vector<float>({1}, {1})).input("r", ints({1}, {-1})));
  EXPECT_FALSE(t.ok());
}

TEST(Shape, TileOpset1UsesTilesAndAxis) {
  Tensor x = Tensor::from_vector<float>({2, 1}, {1, 2});
  auto t = run_op(OpCase("Tile", 1).input("x", x).input("t", Tensor::scalar<int64_t>(3)).input("a", Tensor::scalar<int64_t>(1)));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  expect_tensor_near((*t)[0].tensor(), Tensor::from_vector<float>({2, 3}, {1, 1, 1, 2, 2, 2}));
}

TEST(Shape, TriluUpperAndLower) {
  Tensor x = Tensor::from_vector<float>({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto u = run_op(OpCase("Trilu", 14).input("x", x).input("k", Tensor::scalar<int64_t>(1)));
  ASSERT_TRUE(u.ok());
  expect_tensor_near((*u)[0].tensor(), Tensor::from_vector<float>({3, 3}, {0, 2, 3, 0, 0, 6, 0, 0, 0}));
  auto l = run_op(OpCase("Trilu", 14).input("x", x).attr("upper", int64_t{0}));
  ASSERT_TRUE(l.ok());
  expect_tensor_near((*l)[0].tensor(), Tensor::from_vector<float>({3, 3}, {1, 0, 0, 4, 5, 0, 7, 8, 9}));
}

TEST(Shape, DepthToSpaceRoundTrip) {
  Tensor x = Tensor::from_vector<float>({1, 8, 2, 3}, iota_f(48));
  for (const char* mode : {"DCR", "CRD"}) {
    auto d = run_op(OpCase("DepthToSpace", 13).input("x", x).attr("blocksize", int64_t{2}).attr("mode", std::string(mode)));
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    EXPECT_EQ((*d)[0].tensor().shape(), (Shape{1, 2, 4, 6}));
  }
  // DCR: y[0, c, h*b+i, w*b+j] = x[0, (i*b+j)*C' + c, h, w]
  auto d = run_op(OpCase("DepthToSpace", 13).input("x", x).attr("blocksize", int64_t{2}));
  ASSERT_TRUE(d.ok());
  const Tensor& y = (*d)[0].tensor();
  EXPECT_EQ(y.data<float>()[0 * 24 + 1 * 6 + 3], x.data<float>()[((1 * 2 + 1) * 2 + 0) * 6 + 0 * 3 + 1]);
  auto s = run_op(OpCase("SpaceToDepth", 13).input("y", y).attr("blocksize", int64_t{2}));
  ASSERT_TRUE(s.ok());
  expect_tensor_near((*s)[0].tensor(), x);
  auto bad = run_op(OpCase("DepthToSpace", 13).input("x", x).attr("blocksize", int64_t{3}));
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace orchard::testing
