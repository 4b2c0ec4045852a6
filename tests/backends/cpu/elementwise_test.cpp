#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

TEST(Elementwise, AddBroadcastsRowOverMatrix) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto y = run_op(OpCase("Add", 14).input("a", a).input("b", b));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 3}, {11, 22, 33, 14, 25, 36}));
}

TEST(Elementwise, AddRejectsMismatchedShapes) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({2}, {1, 2});
  auto y = run_op(OpCase("Add", 14).input("a", a).input("b", b));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("cannot be broadcast"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
