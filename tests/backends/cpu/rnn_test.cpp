#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

TEST(Rnn, ForwardTanhTwoSteps) {
  // h1 = tanh(0.5 * 1), h2 = tanh(0.5 * 2 + 0.5 * h1)
  Tensor x = Tensor::from_vector<float>({2, 1, 1}, {1, 2});
  Tensor w = Tensor::from_vector<float>({1, 1, 1}, {0.5f});
  Tensor r = Tensor::from_vector<float>({1, 1, 1}, {0.5f});
  auto y = run_op(OpCase("RNN", 14).input("x", x).input("w", w).input("r", r).attr("hidden_size", int64_t{1}).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 1, 1, 1}, {0.46211716f, 0.84288610f}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({1, 1, 1}, {0.84288610f}));
}

TEST(Rnn, GruReverseLinearBeforeResetWithInitialState) {
  Tensor x = Tensor::from_vector<float>({2, 1, 1}, {1, -1});
  Tensor w = Tensor::from_vector<float>({1, 6, 1}, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f});
  std::vector<float> rv, bv;
  for (int i = 0; i < 12; ++i) rv.push_back(i * 0.05f - 0.3f);
  for (int i = 0; i < 12; ++i) bv.push_back(i * 0.1f - 0.5f);
  Tensor r = Tensor::from_vector<float>({1, 6, 2}, rv);
  Tensor b = Tensor::from_vector<float>({1, 12}, bv);
  Tensor h0 = Tensor::from_vector<float>({1, 1, 2}, {0.1f, -0.2f});
  auto y = run_op(OpCase("GRU", 14)
                      .input("x", x).input("w", w).input("r", r).input("b", b).omitted_input().input("h0", h0)
                      .attr("hidden_size", int64_t{2}).attr("direction", std::string("reverse"))
                      .attr("linear_before_reset", int64_t{1}).outputs(2));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(),
                     Tensor::from_vector<float>({2, 1, 1, 2}, {0.22364105f, 0.20246437f, -0.19422808f, -0.27857198f}));
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({1, 1, 2}, {0.22364105f, 0.20246437f}));
}

TEST(Rnn, LstmBidirectionalPeepholesSequenceLens) {
  Tensor x = Tensor::from_vector<float>({3, 2, 2}, {1, 2, 0.5f, -1, 0, 1, 1, 1, -1, 0.5f, 9, 9});
  Tensor w = Tensor::from_vector<float>({2, 4, 2}, {0.1f, 0.2f, 0.3f, -0.1f, 0.2f, 0.2f, -0.3f, 0.4f,
                                                    0.2f, -0.2f, 0.1f, 0.1f, -0.1f, 0.3f, 0.4f, 0.1f});
  Tensor r = Tensor::from_vector<float>({2, 4, 1}, {0.5f, -0.5f, 0.25f, 0.1f, 0.3f, 0.2f, -0.4f, 0.6f});
  Tensor b = Tensor::from_vector<float>({2, 8}, {0.1f, 0.2f, 0.3f, 0.4f, 0.0f, -0.1f, 0.1f, 0.0f,
                                                 0.0f, 0.1f, -0.2f, 0.1f, 0.2f, 0.0f, 0.1f, 0.3f});
  Tensor lens = Tensor::from_vector<int32_t>({2}, {3, 2});
  Tensor p = Tensor::from_vector<float>({2, 3}, {0.1f, 0.2f, 0.3f, -0.1f, 0.2f, -0.3f});
  auto y = run_op(OpCase("LSTM", 14)
                      .input("x", x).input("w", w).input("r", r).input("b", b).input("lens", lens)
                      .omitted_input().omitted_input().input("p", p)
                      .attr("hidden_size", int64_t{1}).attr("direction", std::string("bidirectional")).outputs(3));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(),
                     Tensor::from_vector<float>({3, 2, 2, 1}, {0.2474265f, -0.0422478f, 0.3110889f, 0.2474677f, 0.3170967f,
                                                               0.1289288f, 0.1362388f, 0.2223953f, 0.3177022f, 0, 0.01218806f, 0}),
                     1e-5, 1e-6);
  expect_tensor_near((*y)[1].tensor(), Tensor::from_vector<float>({2, 2, 1}, {0.3177022f, 0.1289288f, 0.3110889f, 0.2474677f}));
  expect_tensor_near((*y)[2].tensor(), Tensor::from_vector<float>({2, 2, 1}, {0.9012084f, 0.2219592f, 0.5403165f, 0.4868771f}));
}

TEST(Rnn, BatchwiseLayoutMatchesSequenceMajor) {
  // layout=1 takes X as [batch, seq, input] and returns Y as [batch, seq, dirs, hidden].
  Tensor x0 = Tensor::from_vector<float>({2, 2, 1}, {1, 3, 2, 4});  // [seq, batch, in]
  Tensor x1 = Tensor::from_vector<float>({2, 2, 1}, {1, 2, 3, 4});  // [batch, seq, in]
  Tensor w = Tensor::from_vector<float>({1, 1, 1}, {0.3f});
  Tensor r = Tensor::from_vector<float>({1, 1, 1}, {-0.2f});
  auto a = run_op(OpCase("RNN", 14).input("x", x0).input("w", w).input("r", r).attr("hidden_size", int64_t{1}));
  auto b = run_op(OpCase("RNN", 14).input("x", x1).input("w", w).input("r", r).attr("hidden_size", int64_t{1}).attr("layout", int64_t{1}));
  ASSERT_TRUE(a.ok() && b.ok());
  const float* ya = (*a)[0].tensor().data<float>();  // [seq, 1, batch, 1]
  const Tensor& yb = (*b)[0].tensor();                // [batch, seq, 1, 1]
  ASSERT_EQ(yb.shape(), Shape({2, 2, 1, 1}));
  for (int s = 0; s < 2; ++s) {
    for (int n = 0; n < 2; ++n) EXPECT_FLOAT_EQ(yb.data<float>()[n * 2 + s], ya[s * 2 + n]);
  }
}

TEST(Rnn, RejectsWrongWeightShape) {
  Tensor x = Tensor::from_vector<float>({2, 1, 2}, {1, 2, 3, 4});
  Tensor w = Tensor::from_vector<float>({1, 3, 3}, std::vector<float>(9, 0.1f));
  Tensor r = Tensor::from_vector<float>({1, 3, 1}, {0.1f, 0.1f, 0.1f});
  auto y = run_op(OpCase("GRU", 14).input("x", x).input("w", w).input("r", r).attr("hidden_size", int64_t{1}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("W"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
