#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run_one(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  if (!y.ok()) return Tensor();
  return (*y)[0].tensor();
}

TEST(Resize, LinearHalfPixelUpsample) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor scales = Tensor::from_vector<float>({4}, {1, 1, 2, 2});
  Tensor y = run_one(OpCase("Resize", 13).input("x", x).omitted_input().input("scales", scales).attr("mode", std::string("linear")));
  expect_tensor_near(y, Tensor::from_vector<float>({1, 1, 4, 4}, {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5,  //
                                                                    2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4}));
}

TEST(Resize, LinearAlignCornersResizesEveryAxisOfRank3) {
  Tensor x = Tensor::from_vector<float>({2, 1, 2}, {0, 1, 2, 3});
  Tensor sizes = Tensor::from_vector<int64_t>({3}, {3, 1, 3});
  Tensor y = run_one(OpCase("Resize", 13)
                         .input("x", x)
                         .omitted_input()
                         .omitted_input()
                         .input("sizes", sizes)
                         .attr("mode", std::string("linear"))
                         .attr("coordinate_transformation_mode", std::string("align_corners")));
  expect_tensor_near(y, Tensor::from_vector<float>({3, 1, 3}, {0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3}));
}

TEST(Resize, NearestIsExactForIntegersAndAcceptsEmptyScalesAtOpset11) {
  Tensor x = Tensor::from_vector<int64_t>({1, 1, 2, 2}, {int64_t{1} << 60, 2, 3, -4});
  Tensor roi = Tensor::from_vector<float>({0}, {});
  Tensor scales = Tensor::from_vector<float>({0}, {});
  Tensor sizes = Tensor::from_vector<int64_t>({4}, {1, 1, 2, 3});
  Tensor y = run_one(OpCase("Resize", 11).input("x", x).input("roi", roi).input("scales", scales).input("sizes", sizes));
  // half_pixel with scale 1.5 on the last axis: x_in = (o + 0.5) / 1.5 - 0.5 = -1/6, 0.5, 7/6 -> 0, 0, 1.
  expect_tensor_near(y, Tensor::from_vector<int64_t>({1, 1, 2, 3}, {int64_t{1} << 60, int64_t{1} << 60, 2, 3, 3, -4}), 0, 0);
}

TEST(Resize, CropAndResizeFillsOutsideWithExtrapolationValue) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor roi = Tensor::from_vector<float>({8}, {0, 0, 0, 0, 1, 1, 1, 2});
  Tensor sizes = Tensor::from_vector<int64_t>({4}, {1, 1, 2, 3});
  Tensor y = run_one(OpCase("Resize", 13)
                         .input("x", x)
                         .input("roi", roi)
                         .omitted_input()
                         .input("sizes", sizes)
                         .attr("mode", std::string("linear"))
                         .attr("coordinate_transformation_mode", std::string("tf_crop_and_resize"))
                         .attr("extrapolation_value", 9.0f));
  // Columns sample x = 0, 1, 2 of a width-2 input: the last is outside.
  expect_tensor_near(y, Tensor::from_vector<float>({1, 1, 2, 3}, {1, 2, 9, 3, 4, 9}));
}

TEST(Resize, Opset10NearestUsesAsymmetricFloor) {
  Tensor x = Tensor::from_vector<float>({1, 3}, {1, 2, 3});
  Tensor scales = Tensor::from_vector<float>({2}, {1, 2});
  Tensor y = run_one(OpCase("Resize", 10).input("x", x).input("scales", scales));
  expect_tensor_near(y, Tensor::from_vector<float>({1, 6}, {1, 1, 2, 2, 3, 3}));
}

TEST(Upsample, Opset7ReadsScalesAttribute) {
  Tensor x = Tensor::from_vector<float>({1, 2}, {1, 3});
  Tensor y = run_one(OpCase("Upsample", 7).input("x", x).attr("scales", std::vector<float>{1, 2}).attr("mode", std::string("linear")));
  expect_tensor_near(y, Tensor::from_vector<float>({1, 4}, {1, 2, 3, 3}));
}

TEST(Resize, RejectsScalesOfWrongLengthAndBothScalesAndSizes) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  auto bad = run_op(OpCase("Resize", 13).input("x", x).omitted_input().input("scales", Tensor::from_vector<float>({2}, {2, 2})));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("scales has 2 elements"), std::string::npos) << bad.status().message();
  auto both = run_op(OpCase("Resize", 13)
                         .input("x", x)
                         .omitted_input()
                         .input("scales", Tensor::from_vector<float>({4}, {1, 1, 2, 2}))
                         .input("sizes", Tensor::from_vector<int64_t>({4}, {1, 1, 4, 4})));
  ASSERT_FALSE(both.ok());
  auto mode = run_op(OpCase("Resize", 13).input("x", x).omitted_input().input("scales", Tensor::from_vector<float>({4}, {1, 1, 2, 2})).attr("mode", std::string("area")));
  ASSERT_FALSE(mode.ok());
}

TEST(GridSample, BilinearAlignCornersAndZeroPadding) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor grid = Tensor::from_vector<float>({1, 1, 5, 2}, {-1, -1, 1, 1, 0, 0, 0, -1, 3, 3});
  Tensor y = run_one(OpCase("GridSample", 16).input("x", x).input("grid", grid).attr("align_corners", int64_t{1}));
  expect_tensor_near(y, Tensor::from_vector<float>({1, 1, 1, 5}, {1, 4, 2.5, 1.5, 0}));
}

TEST(GridSample, BorderPaddingClampsAndNearestRounds) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor grid = Tensor::from_vector<float>({1, 1, 2, 2}, {5, 5, -0.2f, 0.3f});
  Tensor y = run_one(OpCase("GridSample", 16)
                         .input("x", x)
                         .input("grid", grid)
                         .attr("mode", std::string("nearest"))
                         .attr("padding_mode", std::string("border")));
  // (-0.2, 0.3) unnormalises to (0.3, 0.8) -> column 0, row 1.
  expect_tensor_near(y, Tensor::from_vector<float>({1, 1, 1, 2}, {4, 3}));
}

TEST(GridSample, RejectsGridWithWrongLastDim) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor grid = Tensor::from_vector<float>({1, 1, 1, 3}, {0, 0, 0});
  auto y = run_op(OpCase("GridSample", 16).input("x", x).input("grid", grid));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("grid"), std::string::npos) << y.status().message();
}

TEST(RoiAlign, AveragesSamplesOfALinearRamp) {
  std::vector<float> ramp;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) ramp.push_back(static_cast<float>(c));
  Tensor x = Tensor::from_vector<float>({1, 1, 4, 4}, ramp);
  Tensor rois = Tensor::from_vector<float>({1, 4}, {0, 0, 4, 4});
  Tensor idx = Tensor::from_vector<int64_t>({1}, {0});
  Tensor y = run_one(OpCase("RoiAlign", 16)
                         .input("x", x)
                         .input("rois", rois)
                         .input("batch_indices", idx)
                         .attr("output_height", int64_t{2})
                         .attr("output_width", int64_t{2})
                         .attr("sampling_ratio", int64_t{1}));
  // half_pixel: the roi starts at -0.5 with bins of 2; sample columns 0.5 and 2.5.
  expect_tensor_near(y, Tensor::from_vector<float>({1, 1, 2, 2}, {0.5, 2.5, 0.5, 2.5}));
}

TEST(RoiAlign, Opset10MaxModeTakesLargestWeightedCorner) {
  Tensor x = Tensor::from_vector<float>({1, 1, 2, 2}, {4, 4, 4, 4});
  Tensor rois = Tensor::from_vector<float>({1, 4}, {0, 0, 1, 1});
  Tensor idx = Tensor::from_vector<int64_t>({1}, {0});
  auto run_mode = [&](const std::string& mode) {
    return run_one(OpCase("RoiAlign", 10).input("x", x).input("rois", rois).input("batch_indices", idx).attr("mode", mode).attr("sampling_ratio", int64_t{1}));
  };
  // output_half_pixel: one sample at (0.5, 0.5), each corner weighted 0.25.
  expect_tensor_near(run_mode("avg"), Tensor::from_vector<float>({1, 1, 1, 1}, {4}));
  expect_tensor_near(run_mode("max"), Tensor::from_vector<float>({1, 1, 1, 1}, {1}));
}

TEST(RoiAlign, RejectsBatchIndexOutOfRange) {
  Tensor x = Tensor::zeros(DType::float32, Shape{1, 1, 4, 4});
  Tensor rois = Tensor::from_vector<float>({1, 4}, {0, 0, 4, 4});
  Tensor idx = Tensor::from_vector<int64_t>({1}, {3});
  auto y = run_op(OpCase("RoiAlign", 16).input("x", x).input("rois", rois).input("batch_indices", idx));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("batch_indices[0] = 3"), std::string::npos) << y.status().message();
}

TEST(NonMaxSuppression, SuppressesOverlapsPerClassInScoreOrder) {
  Tensor boxes = Tensor::from_vector<float>({1, 3, 4}, {0, 0, 1, 1, 0, 0.05f, 1, 1.05f, 0, 5, 1, 6});
  Tensor scores = Tensor::from_vector<float>({1, 2, 3}, {0.8f, 0.9f, 0.1f, 0.2f, 0.3f, 0.7f});
  Tensor max_out = Tensor::from_vector<int64_t>({1}, {10});
  Tensor iou = Tensor::from_vector<float>({1}, {0.5f});
  Tensor score = Tensor::from_vector<float>({1}, {0.15f});
  Tensor y = run_one(OpCase("NonMaxSuppression", 11)
                         .input("boxes", boxes)
                         .input("scores", scores)
                         .input("max", max_out)
                         .input("iou", iou)
                         .input("score", score));
  // class 0: box 1 (0.9) suppresses box 0; box 2 is below the score threshold.
  // class 1: box 2 (0.7), then box 1 (0.3) which suppresses box 0 (0.2).
  expect_tensor_near(y, Tensor::from_vector<int64_t>({3, 3}, {0, 0, 1, 0, 1, 2, 0, 1, 1}), 0, 0);
}

TEST(NonMaxSuppression, RejectsMismatchedScores) {
  Tensor boxes = Tensor::zeros(DType::float32, Shape{1, 3, 4});
  Tensor scores = Tensor::zeros(DType::float32, Shape{1, 1, 2});
  auto y = run_op(OpCase("NonMaxSuppression", 11).input("boxes", boxes).input("scores", scores));
  ASSERT_FALSE(y.ok());
}

TEST(Det, PivotsAndBatches) {
  Tensor x = Tensor::from_vector<double>({2, 3, 3}, {6, 1, 1, 4, -2, 5, 2, 8, 7,  //
                                                     0, 1, 0, 1, 0, 0, 0, 0, 3});
  Tensor y = run_one(OpCase("Det", 11).input("x", x));
  expect_tensor_near(y, Tensor::from_vector<double>({2}, {-306, -3}), 1e-12, 1e-12);
}

TEST(Det, RejectsNonSquareInput) {
  auto y = run_op(OpCase("Det", 11).input("x", Tensor::zeros(DType::float32, Shape{2, 3})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("[*, M, M]"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
