#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  return y.ok() ? (*y)[0].tensor() : Tensor();
}

// Direct convolution for float inputs of rank 4 (oracle for im2col + GEMM, groups, strides, pads).
Tensor naive_conv2d(const Tensor& x, const Tensor& w, int64_t group, std::vector<int64_t> s, std::vector<int64_t> p,
                    std::vector<int64_t> d) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), M = w.dim(0), KH = w.dim(2), KW = w.dim(3);
  const int64_t OH = (H + p[0] + p[2] - ((KH - 1) * d[0] + 1)) / s[0] + 1;
  const int64_t OW = (W + p[1] + p[3] - ((KW - 1) * d[1] + 1)) / s[1] + 1;
  Tensor y = Tensor::zeros(DType::float32, Shape{N, M, OH, OW});
  const int64_t cg = C / group, mg = M / group;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double acc = 0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ky = 0; ky < KH; ++ky)
              for (int64_t kx = 0; kx < KW; ++kx) {
                const int64_t iy = oy * s[0] - p[0] + ky * d[0], ix = ox * s[1] - p[1] + kx * d[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const int64_t ci = (m / mg) * cg + c;
                acc += x.data<float>()[((n * C + ci) * H + iy) * W + ix] * w.data<float>()[((m * cg + c) * KH + ky) * KW + kx];
              }
          y.data<float>()[((n * M + m) * OH + oy) * OW + ox] = static_cast<float>(acc);
        }
  return y;
}

TEST(Conv, MatchesDirectConvolution) {
  struct Case {
    int64_t C, M, group, k;
    std::vector<int64_t> s, p, d;
  };
  const Case cases[] = {
      {3, 4, 1, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},  // plain 3x3
      {4, 6, 2, 3, {2, 1}, {0, 1, 2, 0}, {1, 2}},  // groups, strides, asymmetric pads, dilation
      {5, 5, 5, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},  // depthwise
      {4, 8, 4, 3, {2, 2}, {1, 0, 1, 0}, {1, 1}},  // depthwise with multiplier 2, strided
      {6, 3, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},  // 1x1 (no im2col)
  };
  unsigned seed = 1;
  for (const Case& c : cases) {
    Tensor x = random_float_tensor({2, c.C, 7, 9}, seed++);
    Tensor w = random_float_tensor({c.M, c.C / c.group, c.k, c.k}, seed++);
    auto y = run1(OpCase("Conv", 11)
                      .input("x", x)
                      .input("w", w)
                      .attr("group", c.group)
                      .attr("strides", c.s)
                      .attr("pads", c.p)
                      .attr("dilations", c.d));
    expect_tensor_near(y, naive_conv2d(x, w, c.group, c.s, c.p, c.d), 1e-4, 1e-5);
  }
}

// The optimized variants (constant weights, packed at load): 1x1 as a GEMM, im2col + GEMM with odd channel
// counts around the register tiles, groups, strides, pads and dilations, and depthwise 3x3 / 5x5 / 7x7 at
// strides 1 and 2, against the direct convolution (and, through the harness, the reference kernel).
TEST(Conv, VariantsOnConstantWeights) {
  struct Case {
    int64_t N, C, H, W, M, group, k;
    std::vector<int64_t> s, p, d;
  };
  const Case cases[] = {
      {1, 5, 6, 7, 13, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},    // 1x1, direct GEMM
      {2, 17, 5, 3, 25, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},   // 1x1, batch 2, M past one tile
      {1, 3, 9, 11, 14, 1, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},   // 3x3 pad 1
      {1, 4, 10, 9, 33, 1, 3, {2, 2}, {1, 0, 0, 1}, {1, 1}},   // strided, asymmetric pads
      {1, 6, 11, 11, 9, 3, 3, {1, 2}, {2, 2, 2, 2}, {2, 2}},   // groups, dilation
      {2, 2, 8, 8, 4, 1, 7, {2, 2}, {3, 3, 3, 3}, {1, 1}},     // 7x7/2 stem-like
      {1, 1, 4, 4, 3, 1, 1, {2, 2}, {0, 0, 0, 0}, {1, 1}},     // 1x1 strided: im2col path
      {1, 7, 9, 10, 7, 7, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},    // depthwise 3x3
      {2, 5, 11, 9, 5, 5, 3, {2, 2}, {1, 1, 1, 1}, {1, 1}},    // depthwise 3x3/2
      {1, 6, 12, 13, 6, 6, 5, {1, 1}, {2, 2, 2, 2}, {1, 1}},   // depthwise 5x5
      {1, 3, 9, 9, 3, 3, 5, {2, 2}, {2, 2, 2, 2}, {1, 1}},     // depthwise 5x5/2
      {1, 4, 14, 15, 4, 4, 7, {1, 1}, {3, 3, 3, 3}, {1, 1}},   // depthwise 7x7 (convnext)
      {1, 4, 8, 8, 4, 4, 3, {1, 1}, {2, 2, 2, 2}, {2, 2}},     // depthwise dilated
      {1, 5, 10, 7, 5, 5, 3, {2, 1}, {0, 1, 2, 0}, {1, 1}},    // depthwise, mixed strides, asymmetric pads
      {1, 3, 13, 37, 3, 3, 3, {3, 3}, {1, 1, 1, 1}, {1, 2}},   // depthwise stride 3, wide rows
      {1, 4, 6, 6, 8, 4, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},     // channel multiplier 2: im2col per group
      {1, 45, 81, 79, 13, 1, 3, {2, 2}, {1, 1, 1, 1}, {1, 1}}, // K 405, 1640 outputs: several GEMM blocks each way
      // Short output rows: through the gather table (small), and past its size limit through Im2colSource.
      {1, 8, 8, 8, 16, 1, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},    // the digits model's second convolution
      {2, 6, 7, 5, 10, 2, 3, {2, 1}, {0, 1, 2, 0}, {1, 2}},    // groups, batch 2, strides, uneven pads, dilation
      {1, 130, 10, 10, 7, 1, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}}, // K 1170 x 100 outputs: past the table's limit
      // Depthwise over more channels than a vector has lanes (channel blocks of 16 / 8 / 4 and a partial one):
      {2, 37, 7, 7, 37, 37, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},  // 3x3 on 7x7 planes, batch 2
      {1, 21, 9, 11, 21, 21, 5, {2, 2}, {2, 1, 2, 3}, {1, 1}}, // 5x5/2, asymmetric pads
      {1, 19, 14, 13, 19, 19, 7, {1, 1}, {3, 3, 3, 3}, {1, 1}}, // 7x7 on 14x13
      {1, 18, 12, 12, 18, 18, 3, {3, 2}, {0, 1, 1, 0}, {2, 1}}, // strides 3/2, dilation, uneven pads
      {1, 17, 5, 33, 17, 17, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},  // 33-pixel planes: transposes with a tail
      // Rows of a vector or more by runs of pixels; large planes by bands of output rows (16 / 8 / 4 lanes: over
      // 4096 / 8192 / 16384 padded pixels), rows two bands share transposed again:
      {1, 17, 101, 120, 17, 17, 3, {2, 2}, {1, 1, 1, 1}, {1, 1}}, // 3x3/2, bands of 1-7 rows, a partial last one
      {1, 16, 70, 80, 16, 16, 3, {2, 2}, {0, 0, 0, 0}, {1, 1}},   // last input column unread: runs overlap
      {1, 16, 66, 62, 16, 16, 5, {1, 1}, {2, 2, 2, 2}, {1, 1}},   // 5x5: bands of at least 8 rows
      {1, 5, 255, 140, 5, 5, 3, {2, 2}, {1, 1, 1, 1}, {1, 1}},    // bands with 4 lanes too
      // Depthwise with rows of 64+ outputs at horizontal stride 1: one plane at a time.
      {1, 5, 6, 70, 5, 5, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}},     // 3x3 on 6x70
      {1, 3, 9, 67, 3, 3, 5, {2, 1}, {0, 2, 1, 3}, {1, 2}},     // 5x5, vertical stride 2, dilation, uneven pads
      // ... square kernels at stride 1 without dilation by aligned loads and lane shifts, 4 rows at a time:
      {1, 3, 9, 67, 3, 3, 5, {1, 1}, {2, 2, 2, 2}, {1, 1}},     // 5x5: two blocks of 4 rows and one row
      {1, 2, 6, 80, 2, 2, 7, {1, 1}, {3, 3, 3, 3}, {1, 1}},     // 7x7: shifts past a 4-lane vector
      {1, 2, 7, 65, 2, 2, 3, {1, 1}, {1, 0, 1, 2}, {1, 1}},     // no left pad, uneven pads
  };
  unsigned seed = 500;
  for (const Case& c : cases) {
    Tensor x = random_float_tensor({c.N, c.C, c.H, c.W}, seed++);
    Tensor w = random_float_tensor({c.M, c.C / c.group, c.k, c.k}, seed++);
    Tensor b = random_float_tensor({c.M}, seed++);
    auto y = run1(OpCase("Conv", 11)
                      .input("x", x)
                      .constant("w", w)
                      .constant("b", b)
                      .attr("group", c.group)
                      .attr("strides", c.s)
                      .attr("pads", c.p)
                      .attr("dilations", c.d));
    Tensor want = naive_conv2d(x, w, c.group, c.s, c.p, c.d);
    const int64_t plane = want.dim(2) * want.dim(3);
    for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] += b.data<float>()[(i / plane) % c.M];
    expect_tensor_near(y, want, 1e-4, 1e-5);
  }
}

// Conv1d as whisper's encoder uses it (k 3, pad 1, stride 1 and 2), weights constant and fed; the larger
// size spans several GEMM blocks along K (420) and the outputs (1700).
TEST(Conv, Conv1dVariants) {
  for (const int64_t C : {10, 140}) {
    const int64_t L = C == 10 ? 23 : 1700;
    for (int64_t stride : {1, 2}) {
      for (bool constant : {true, false}) {
        Tensor x = random_float_tensor({1, C, L}, 7);
        Tensor w = random_float_tensor({14, C, 3}, 8);
        OpCase c = OpCase("Conv", 11).input("x", x);
        if (constant) c.constant("w", w);
        else c.input("w", w);
        c.attr("strides", std::vector<int64_t>{stride}).attr("pads", std::vector<int64_t>{1, 1});
        const Tensor y = run1(c);
        EXPECT_EQ(y.shape(), (Shape{1, 14, stride == 1 ? L : (L + 1) / 2}));
      }
    }
  }
}

TEST(Conv, BiasAndSameUpper1D) {
  Tensor x = Tensor::from_vector<float>({1, 1, 4}, {1, 2, 3, 4});
  Tensor w = Tensor::from_vector<float>({1, 1, 2}, {1, 1});
  Tensor b = Tensor::from_vector<float>({1}, {10});
  // SAME_UPPER, stride 1, kernel 2: one pad at the end.
  expect_tensor_near(run1(OpCase("Conv", 11).input("x", x).input("w", w).input("b", b).attr("auto_pad", std::string("SAME_UPPER"))),
                     Tensor::from_vector<float>({1, 1, 4}, {13, 15, 17, 14}));
  expect_tensor_near(run1(OpCase("Conv", 11).input("x", x).input("w", w).input("b", b).attr("auto_pad", std::string("SAME_LOWER"))),
                     Tensor::from_vector<float>({1, 1, 4}, {11, 13, 15, 17}));
}

TEST(Conv, RejectsChannelMismatch) {
  Tensor x = Tensor::zeros(DType::float32, Shape{1, 3, 4, 4});
  Tensor w = Tensor::zeros(DType::float32, Shape{2, 2, 3, 3});
  auto y = run_op(OpCase("Conv", 11).input("x", x).input("w", w));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("do not match group"), std::string::npos) << y.status().message();
}

TEST(ConvTranspose, StridesOutputPaddingAndGroups) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2}, {1, 2});
  Tensor w = Tensor::from_vector<float>({1, 1, 3}, {1, 1, 1});
  // stride 2: positions 0..2 get 1, positions 2..4 get 2; output_padding adds one zero at the end.
  expect_tensor_near(run1(OpCase("ConvTranspose", 11).input("x", x).input("w", w).attr("strides", std::vector<int64_t>{2}).attr("output_padding", std::vector<int64_t>{1})),
                     Tensor::from_vector<float>({1, 1, 6}, {1, 1, 3, 2, 2, 0}));
  // pads crop the ends.
  expect_tensor_near(run1(OpCase("ConvTranspose", 11).input("x", x).input("w", w).attr("strides", std::vector<int64_t>{2}).attr("pads", std::vector<int64_t>{1, 1})),
                     Tensor::from_vector<float>({1, 1, 3}, {1, 3, 2}));
  // Two groups, one channel each, with bias.
  Tensor x2 = Tensor::from_vector<float>({1, 2, 1}, {1, 2});
  Tensor w2 = Tensor::from_vector<float>({2, 1, 2}, {1, 2, 3, 4});
  Tensor b2 = Tensor::from_vector<float>({2}, {0.5f, -1});
  expect_tensor_near(run1(OpCase("ConvTranspose", 11).input("x", x2).input("w", w2).input("b", b2).attr("group", int64_t{2})),
                     Tensor::from_vector<float>({1, 2, 2}, {1.5f, 2.5f, 5, 7}));
}

TEST(ConvInteger, SubtractsZeroPointsIncludingPadding) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 3}, {2, 3, 4});
  Tensor w = Tensor::from_vector<uint8_t>({1, 1, 2}, {1, 2});
  // x - 1 = [1,2,3], padded with zeros: [0,1,2,3,0] * [1,2]
  expect_tensor_near(run1(OpCase("ConvInteger", 10).input("x", x).input("w", w).input("xz", Tensor::scalar<uint8_t>(1)).attr("pads", std::vector<int64_t>{1, 1})),
                     Tensor::from_vector<int32_t>({1, 1, 4}, {2, 5, 8, 3}));
}

TEST(QLinearConv, PerChannelScaleAndBias) {
  Tensor x = Tensor::from_vector<uint8_t>({1, 1, 2}, {10, 20});
  Tensor w = Tensor::from_vector<int8_t>({2, 1, 1}, {1, -2});
  auto c = OpCase("QLinearConv", 10)
               .input("x", x)
               .input("xs", Tensor::scalar<float>(0.5f))
               .input("xz", Tensor::scalar<uint8_t>(0))
               .input("w", w)
               .input("ws", Tensor::from_vector<float>({2}, {1.0f, 0.5f}))
               .input("wz", Tensor::from_vector<int8_t>({2}, {0, 0}))
               .input("ys", Tensor::scalar<float>(1.0f))
               .input("yz", Tensor::scalar<int8_t>(0))
               .input("b", Tensor::from_vector<int32_t>({2}, {1, 0}));
  // channel 0: (x*1 + 1) * 0.5 = [5.5, 10.5] -> [6, 10]; channel 1: x*-2 * 0.25 = [-5, -10]
  expect_tensor_near(run1(c), Tensor::from_vector<int8_t>({1, 2, 2}, {6, 10, -5, -10}));
}

}  // namespace
}  // namespace orchard::testing

namespace orchard::testing {
namespace {

TEST(ConvTranspose, OutputShapeLargerOrSmallerThanNatural) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2}, {1, 2});
  Tensor w = Tensor::from_vector<float>({1, 1, 3}, {1, 1, 1});
  // Natural size 4 ([1,3,3,2]); 6 pads zeros at the end, 2 crops (total padding 2 -> 1 each side).
  expect_tensor_near(run1(OpCase("ConvTranspose", 11).input("x", x).input("w", w).attr("output_shape", std::vector<int64_t>{6})),
                     Tensor::from_vector<float>({1, 1, 6}, {1, 3, 3, 2, 0, 0}));
  expect_tensor_near(run1(OpCase("ConvTranspose", 11).input("x", x).input("w", w).attr("output_shape", std::vector<int64_t>{2})),
                     Tensor::from_vector<float>({1, 1, 2}, {3, 3}));
  auto bad = run_op(OpCase("ConvTranspose", 11).input("x", x).input("w", w).attr("pads", std::vector<int64_t>{3, 3}));
  ASSERT_FALSE(bad.ok());
}

TEST(Conv, RejectsBadAttributes) {
  Tensor x = Tensor::zeros(DType::float32, Shape{1, 1, 4, 4});
  Tensor w = Tensor::zeros(DType::float32, Shape{1, 1, 3, 3});
  EXPECT_FALSE(run_op(OpCase("Conv", 11).input("x", x).input("w", w).attr("strides", std::vector<int64_t>{0, 1})).ok());
  EXPECT_FALSE(run_op(OpCase("Conv", 11).input("x", x).input("w", w).attr("pads", std::vector<int64_t>{1, 1})).ok());
  EXPECT_FALSE(run_op(OpCase("Conv", 11).input("x", x).input("w", w).attr("dilations", std::vector<int64_t>{3, 3})).ok());
  EXPECT_FALSE(run_op(OpCase("Conv", 11).input("x", x).input("w", w).input("b", Tensor::zeros(DType::float32, Shape{2}))).ok());
}

}  // namespace
}  // namespace orchard::testing
