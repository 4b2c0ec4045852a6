#include <limits>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor ints(Shape s, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(std::move(s), v); }
Tensor floats(Shape s, std::vector<float> v) { return Tensor::from_vector<float>(std::move(s), v); }

TEST(Index, ConcatAxis1AndStrings) {
  auto y = run_op(OpCase("Concat", 13).input("a", floats({2, 1}, {1, 2})).input("b", floats({2, 2}, {3, 4, 5, 6}))
                      .attr("axis", int64_t{-1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), floats({2, 3}, {1, 3, 4, 2, 5, 6}));
  auto s = run_op(OpCase("Concat", 13).input("a", Tensor::from_vector<std::string>({1}, {"x"}))
                      .input("b", Tensor::from_vector<std::string>({2}, {"y", "z"})).attr("axis", int64_t{0}));
  ASSERT_TRUE(s.ok());
  expect_tensor_near((*s)[0].tensor(), Tensor::from_vector<std::string>({3}, {"x", "y", "z"}));
  auto bad = run_op(OpCase("Concat", 13).input("a", floats({2, 1}, {1, 2})).input("b", floats({3, 1}, {3, 4, 5}))
                        .attr("axis", int64_t{1}));
  EXPECT_FALSE(bad.ok());
}

TEST(Index, SplitByInputAndEqually) {
  Tensor x = floats({2, 3}, {1, 2, 3, 4, 5, 6});
  auto y = run_op(OpCase("Split", 13).input("x", x).input("s", ints({2}, {1, 2})).attr("axis", int64_t{1}).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), floats({2, 1}, {1, 4}));
  expect_tensor_near((*y)[1].tensor(), floats({2, 2}, {2, 3, 5, 6}));
  auto e = run_op(OpCase("Split", 11).input("x", x).outputs(2));
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  expect_tensor_near((*e)[1].tensor(), floats({1, 3}, {4, 5, 6}));
  auto bad = run_op(OpCase("Split", 13).input("x", x).input("s", ints({2}, {1, 1})).attr("axis", int64_t{1}).outputs(2));
  EXPECT_FALSE(bad.ok());
}

TEST(Index, SliceNegativeStepsAndClamping) {
  Tensor x = floats({2, 4}, {0, 1, 2, 3, 4, 5, 6, 7});
  const int64_t big = std::numeric_limits<int64_t>::max();
  auto y = run_op(OpCase("Slice", 13).input("x", x).input("s", ints({2}, {-1, big})).input("e", ints({2}, {-big, -big}))
                      .input("a", ints({2}, {1, 0})).input("t", ints({2}, {-2, -1})));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), floats({2, 2}, {7, 5, 3, 1}));
  auto v1 = run_op(OpCase("Slice", 1).input("x", x).attr("starts", std::vector<int64_t>{1}).attr("ends", std::vector<int64_t>{3})
                       .attr("axes", std::vector<int64_t>{1}));
  ASSERT_TRUE(v1.ok());
  expect_tensor_near((*v1)[0].tensor(), floats({2, 2}, {1, 2, 5, 6}));
  auto bad = run_op(OpCase("Slice", 13).input("x", x).input("s", ints({1}, {0})).input("e", ints({1}, {1}))
                        .input("a", ints({1}, {0})).input("t", ints({1}, {0})));
  EXPECT_FALSE(bad.ok());
}

TEST(Index, GatherNegativeAndOutOfRange) {
  Tensor x = floats({3, 2}, {1, 2, 3, 4, 5, 6});
  auto y = run_op(OpCase("Gather", 13).input("x", x).input("i", ints({2}, {-1, 0})));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), floats({2, 2}, {5, 6, 1, 2}));
  auto c = run_op(OpCase("Gather", 13).input("x", x).input("i", Tensor::scalar<int32_t>(1)).attr("axis", int64_t{1}));
  ASSERT_TRUE(c.ok());
  expect_tensor_near((*c)[0].tensor(), floats({3}, {2, 4, 6}));
  auto bad = run_op(OpCase("Gather", 13).input("x", x).input("i", ints({1}, {3})));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("out of range"), std::string::npos) << bad.status().message();
}

TEST(Index, GatherElementsAndGatherND) {
  Tensor x = floats({2, 2}, {1, 2, 3, 4});
  auto y = run_op(OpCase("GatherElements", 13).input("x", x).input("i", ints({2, 2}, {0, 0, 1, 0})).attr("axis", int64_t{1}));
  ASSERT_TRUE(y.ok());
  expect_tensor_near((*y)[0].tensor(), floats({2, 2}, {1, 1, 4, 3}));
  auto n = run_op(OpCase("GatherND", 13).input("x", x).input("i", ints({2, 2}, {0, 1, 1, -2})));
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  expect_tensor_near((*n)[0].tensor(), floats({2}, {2, 3}));
  auto b = run_op(OpCase("GatherND", 13).input("x", x).input("i", ints({2, 1}, {1, 0})).attr("batch_dims", int64_t{1}));
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  expect_tensor_near((*b)[0].tensor(), floats({2}, {2, 3}));
  auto bad = run_op(OpCase("GatherElements", 13).input("x", x).input("i", ints({1, 1}, {2})));
  EXPECT_FALSE(bad.ok());
}

TEST(Index, ScatterElementsAndScatterNDWithReduction) {
  Tensor x = floats({1, 4}, {1, 2, 3, 4});
  auto y = run_op(OpCase("ScatterElements", 16).input("x", x).input("i", ints({1, 2}, {1, 1})).input("u", floats({1, 2}, {10, 20}))
                      .attr("axis", int64_t{1}).attr("reduction", std::string("add")));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), floats({1, 4}, {1, 32, 3, 4}));
  auto n = run_op(OpCase("ScatterND", 16).input("x", x).input("i", ints({1, 2}, {0, -1})).input("u", floats({1}, {3}))
                      .attr("reduction", std::string("mul")));
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  expect_tensor_near((*n)[0].tensor(), floats({1, 4}, {1, 2, 3, 12}));
  auto bad = run_op(OpCase("ScatterND", 16).input("x", x).input("i", ints({1, 2}, {0, 4})).input("u", floats({1}, {3})));
  EXPECT_FALSE(bad.ok());
}

TEST(Index, PadModesAndNegativePads) {
  Tensor x = floats({1, 3}, {1, 2, 3});
  auto c = run_op(OpCase("Pad", 13).input("x", x).input("p", ints({4}, {0, 2, 0, -1})).input("v", Tensor::scalar<float>(9)));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  expect_tensor_near((*c)[0].tensor(), floats({1, 4}, {9, 9, 1, 2}));
  auto r = run_op(OpCase("Pad", 13).input("x", x).input("p", ints({4}, {0, 2, 0, 2})).attr("mode", std::string("reflect")));
  ASSERT_TRUE(r.ok());
  expect_tensor_near((*r)[0].tensor(), floats({1, 7}, {3, 2, 1, 2, 3, 2, 1}));
  auto e = run_op(OpCase("Pad", 2).input("x", x).attr("pads", std::vector<int64_t>{1, 1, 0, 0}).attr("mode", std::string("edge")));
  ASSERT_TRUE(e.ok());
  expect_tensor_near((*e)[0].tensor(), floats({2, 4}, {1, 1, 2, 3, 1, 1, 2, 3}));
  auto bad = run_op(OpCase("Pad", 13).input("x", x).input("p", ints({2}, {0, 1})));
  EXPECT_FALSE(bad.ok());
}

TEST(Index, CompressOneHotNonZero) {
  Tensor x = floats({3, 2}, {1, 2, 3, 4, 5, 6});
  auto c = run_op(OpCase("Compress", 11).input("x", x).input("c", Tensor::from_vector<bool>({2}, {false, true}))
                      .attr("axis", int64_t{0}));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  expect_tensor_near((*c)[0].tensor(), floats({1, 2}, {3, 4}));
  auto o = run_op(OpCase("OneHot", 11).input("i", ints({2}, {1, -1})).input("d", Tensor::scalar<float>(3))
                      .input("v", floats({2}, {0, 5})));
  ASSERT_TRUE(o.ok()) << o.status().to_string();
  expect_tensor_near((*o)[0].tensor(), floats({2, 3}, {0, 5, 0, 0, 0, 5}));
  auto n = run_op(OpCase("NonZero", 13).input("x", floats({2, 2}, {1, 0, 0, 2})));
  ASSERT_TRUE(n.ok());
  expect_tensor_near((*n)[0].tensor(), ints({2, 2}, {0, 1, 0, 1}));
  auto bad = run_op(OpCase("Compress", 11).input("x", x).input("c", Tensor::from_vector<bool>({4}, {false, false, false, true}))
                        .attr("axis", int64_t{0}));
  EXPECT_FALSE(bad.ok());
}

TEST(Index, UniqueUnsortedWithAllOutputs) {
  auto y = run_op(OpCase("Unique", 11).input("x", floats({6}, {2, 1, 1, 3, 4, 3})).attr("sorted", int64_t{0}).outputs(4));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), floats({4}, {2, 1, 3, 4}));
  expect_tensor_near((*y)[1].tensor(), ints({4}, {0, 1, 3, 4}));
  expect_tensor_near((*y)[2].tensor(), ints({6}, {0, 1, 1, 2, 3, 2}));
  expect_tensor_near((*y)[3].tensor(), ints({4}, {1, 2, 2, 1}));
  auto a = run_op(OpCase("Unique", 11).input("x", floats({3, 2}, {2, 0, 1, 5, 2, 0})).attr("axis", int64_t{0}).outputs(4));
  ASSERT_TRUE(a.ok());
  expect_tensor_near((*a)[0].tensor(), floats({2, 2}, {1, 5, 2, 0}));
  expect_tensor_near((*a)[2].tensor(), ints({3}, {1, 0, 1}));
}

TEST(Index, ReverseSequence) {
  Tensor x = floats({3, 2}, {0, 1, 2, 3, 4, 5});  // [time, batch]
  auto y = run_op(OpCase("ReverseSequence", 10).input("x", x).input("l", ints({2}, {3, 2})));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), floats({3, 2}, {4, 3, 2, 1, 0, 5}));
  auto bad = run_op(OpCase("ReverseSequence", 10).input("x", x).input("l", ints({2}, {4, 1})));
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace orchard::testing
