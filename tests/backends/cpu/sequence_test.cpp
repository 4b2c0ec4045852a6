#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Value seq_of(std::vector<Tensor> items) {
  const DType dt = items.empty() ? DType::float32 : items[0].dtype();
  return Value::sequence(std::move(items), dt);
}

Tensor vec(std::vector<float> v) { return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v); }

TEST(Sequence, EmptyUsesDtypeAttribute) {
  auto y = run_op(OpCase("SequenceEmpty", 11).attr("dtype", int64_t{7}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_TRUE((*y)[0].is_sequence());
  EXPECT_EQ((*y)[0].items().size(), 0u);
  EXPECT_EQ((*y)[0].sequence_dtype(), DType::int64);
}

TEST(Sequence, InsertAtNegativePositionAndAt) {
  Value s = seq_of({vec({1}), vec({2})});
  auto y = run_op(OpCase("SequenceInsert", 11).input("s", s).input("t", vec({9})).input("p", Tensor::scalar<int64_t>(-1)));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ((*y)[0].items().size(), 3u);
  expect_tensor_near((*y)[0].items()[1], vec({9}));
  auto at = run_op(OpCase("SequenceAt", 11).input("s", (*y)[0]).input("p", Tensor::scalar<int32_t>(-1)));
  ASSERT_TRUE(at.ok()) << at.status().to_string();
  expect_tensor_near((*at)[0].tensor(), vec({2}));
}

TEST(Sequence, AtRejectsOutOfRangePosition) {
  auto y = run_op(OpCase("SequenceAt", 11).input("s", seq_of({vec({1})})).input("p", Tensor::scalar<int64_t>(1)));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

TEST(Sequence, EraseDefaultsToLastAndLength) {
  auto y = run_op(OpCase("SequenceErase", 11).input("s", seq_of({vec({1}), vec({2}), vec({3})})));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ((*y)[0].items().size(), 2u);
  expect_tensor_near((*y)[0].items()[1], vec({2}));
  auto n = run_op(OpCase("SequenceLength", 11).input("s", (*y)[0]));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ((*n)[0].tensor().data<int64_t>()[0], 2);
}

TEST(Sequence, ConcatFromSequenceAlongAxisAndNewAxis) {
  Value s = seq_of({Tensor::from_vector<float>({2, 1}, {1, 2}), Tensor::from_vector<float>({2, 1}, {3, 4})});
  auto y = run_op(OpCase("ConcatFromSequence", 11).input("s", s).attr("axis", int64_t{1}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 2}, {1, 3, 2, 4}));
  auto z = run_op(OpCase("ConcatFromSequence", 11).input("s", s).attr("axis", int64_t{-1}).attr("new_axis", int64_t{1}));
  ASSERT_TRUE(z.ok()) << z.status().to_string();
  expect_tensor_near((*z)[0].tensor(), Tensor::from_vector<float>({2, 1, 2}, {1, 3, 2, 4}));
}

TEST(Sequence, ConcatFromSequenceRejectsMismatchedShapes) {
  Value s = seq_of({Tensor::from_vector<float>({2, 1}, {1, 2}), Tensor::from_vector<float>({3, 1}, {3, 4, 5})});
  auto y = run_op(OpCase("ConcatFromSequence", 11).input("s", s).attr("axis", int64_t{1}));
  ASSERT_FALSE(y.ok());
}

TEST(Sequence, SplitToSequenceScalarSplitAndKeepdims) {
  Tensor x = Tensor::from_vector<float>({5}, {1, 2, 3, 4, 5});
  auto y = run_op(OpCase("SplitToSequence", 11).input("x", x).input("split", Tensor::scalar<int64_t>(2)));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ((*y)[0].items().size(), 3u);
  expect_tensor_near((*y)[0].items()[2], vec({5}));
  Tensor m = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  auto z = run_op(OpCase("SplitToSequence", 11).input("x", m).attr("axis", int64_t{1}).attr("keepdims", int64_t{0}));
  ASSERT_TRUE(z.ok()) << z.status().to_string();
  ASSERT_EQ((*z)[0].items().size(), 2u);
  expect_tensor_near((*z)[0].items()[1], vec({2, 4}));
  auto bad = run_op(OpCase("SplitToSequence", 11).input("x", x).input("split", Tensor::from_vector<int64_t>({2}, {2, 2})));
  EXPECT_FALSE(bad.ok());
}

TEST(Sequence, MapAddsTensorToEachElement) {
  auto body = std::make_shared<graph::Graph>();
  body->inputs = {ValueInfo{"e", Value::Kind::tensor, DType::float32, false, {}},
                  ValueInfo{"k", Value::Kind::tensor, DType::float32, false, {}}};
  body->outputs = {ValueInfo{"o", Value::Kind::tensor, DType::float32, false, {}}};
  graph::Node add;
  add.name = "add";
  add.op_type = "Add";
  add.opset = 17;
  add.inputs = {"e", "k"};
  add.outputs = {"o"};
  body->nodes.push_back(add);
  auto y = run_op(OpCase("SequenceMap", 17).input("s", seq_of({vec({1, 2}), vec({3, 4})})).input("k", vec({10, 20})).attr("body", body));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ((*y)[0].items().size(), 2u);
  expect_tensor_near((*y)[0].items()[1], vec({13, 24}));
}

TEST(Optional, WrapHasAndGet) {
  auto o = run_op(OpCase("Optional", 15).input("x", vec({1, 2})));
  ASSERT_TRUE(o.ok()) << o.status().to_string();
  ASSERT_TRUE((*o)[0].is_optional() && (*o)[0].has_element());
  auto has = run_op(OpCase("OptionalHasElement", 15).input("o", (*o)[0]));
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE((*has)[0].tensor().data<bool>()[0]);
  auto none = run_op(OpCase("OptionalHasElement", 15).input("o", Value::optional_none()));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE((*none)[0].tensor().data<bool>()[0]);
  auto get = run_op(OpCase("OptionalGetElement", 15).input("o", (*o)[0]));
  ASSERT_TRUE(get.ok());
  expect_tensor_near((*get)[0].tensor(), vec({1, 2}));
  auto empty = run_op(OpCase("OptionalGetElement", 15).input("o", Value::optional_none()));
  EXPECT_FALSE(empty.ok());
}

}  // namespace
}  // namespace orchard::testing
