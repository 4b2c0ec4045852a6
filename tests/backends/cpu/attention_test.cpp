// com.orchard FusedAttention (docs/fused_ops.md) against the unfused ops it replaces: MatMul, Mul by the scale,
// Add of the mask, Softmax over the last axis and MatMul by V, each run through the harness. run_op also holds
// the blocked float32 variant to the reference kernel on every case.
#include <cmath>
#include <limits>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  return y.ok() ? (*y)[0].tensor() : Tensor();
}

// The unfused graph, op by op.
Tensor unfused(const Tensor& q, const Tensor& kt, const Tensor& v, const Tensor* mask, float scale) {
  Tensor s = run1(OpCase("MatMul", 13).input("q", q).input("kt", kt));
  s = run1(OpCase("Mul", 14).input("s", s).input("c", Tensor::scalar(scale)));
  if (mask) s = run1(OpCase("Add", 14).input("s", s).input("m", *mask));
  const Tensor p = run1(OpCase("Softmax", 13).input("x", s).attr("axis", int64_t{-1}));
  return run1(OpCase("MatMul", 13).input("p", p).input("v", v));
}

Tensor fused(const Tensor& q, const Tensor& kt, const Tensor& v, const Tensor* mask, float scale) {
  OpCase c("FusedAttention", 1, "com.orchard");
  c.input("q", q).input("kt", kt).input("v", v).attr("scale", scale);
  if (mask) c.input("mask", *mask);
  return run1(c);
}

struct Case {
  Shape q, kt, v, mask;  // mask empty: none
};

TEST(FusedAttention, MatchesTheUnfusedOpsOnOddShapesAndBroadcastMasks) {
  const Case cases[] = {
      {{1, 2, 5, 3}, {1, 2, 3, 7}, {1, 2, 7, 4}, {}},
      {{1, 3, 13, 8}, {1, 3, 8, 13}, {1, 3, 13, 8}, {1, 1, 13, 13}},      // causal-style mask per position
      {{2, 3, 9, 5}, {2, 3, 5, 11}, {2, 3, 11, 6}, {2, 1, 1, 11}},        // padding mask broadcast over heads, rows
      {{1, 2, 37, 16}, {1, 2, 16, 37}, {1, 2, 37, 16}, {37}},              // 1-D mask over the columns
      {{2, 1, 4, 3}, {1, 5, 3, 6}, {2, 5, 6, 2}, {}},                      // batch dims broadcast between operands
      {{3, 7, 5}, {3, 5, 9}, {9, 4}, {3, 7, 9}},                           // rank 3, V unbatched
      {{1, 1, 1, 6}, {1, 1, 6, 10}, {1, 1, 10, 3}, {1, 4, 5, 10}},         // the mask broadcasts the scores up
      {{1, 2, 6, 4}, {1, 2, 4, 1}, {1, 2, 7, 5}, {1, 2, 6, 7}},            // one score column broadcast to 7
      {{1, 6, 300, 64}, {1, 6, 64, 300}, {1, 6, 300, 64}, {1, 1, 300, 300}},  // several row blocks per head
      {{1, 2, 0, 4}, {1, 2, 4, 5}, {1, 2, 5, 3}, {}},                      // no rows
  };
  unsigned seed = 1;
  for (const Case& c : cases) {
    const Tensor q = random_float_tensor(c.q, seed++), kt = random_float_tensor(c.kt, seed++);
    const Tensor v = random_float_tensor(c.v, seed++);
    Tensor mask = random_float_tensor(c.mask.rank() ? c.mask : Shape{1}, seed++);
    const Tensor* m = c.mask.rank() ? &mask : nullptr;
    for (float scale : {1.0f, 0.125f}) {
      SCOPED_TRACE(c.q.to_string() + " x " + c.kt.to_string() + " x " + c.v.to_string() + " mask " +
                   c.mask.to_string() + " scale " + std::to_string(scale));
      expect_tensor_near(fused(q, kt, v, m, scale), unfused(q, kt, v, m, scale), 1e-4, 1e-5);
    }
  }
}

// head_dim_scale: the scale is also divided by sqrt(D), D being Q's last dim when the op runs.
TEST(FusedAttention, HeadDimScaleDividesByTheRootOfQsLastDim) {
  const Case cases[] = {
      {{1, 2, 5, 3}, {1, 2, 3, 7}, {1, 2, 7, 4}, {}},
      {{1, 3, 13, 16}, {1, 3, 16, 13}, {1, 3, 13, 16}, {1, 1, 13, 13}},
      {{1, 2, 37, 64}, {1, 2, 64, 37}, {1, 2, 37, 64}, {}},
  };
  unsigned seed = 50;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.q.to_string());
    const Tensor q = random_float_tensor(c.q, seed++), kt = random_float_tensor(c.kt, seed++);
    const Tensor v = random_float_tensor(c.v, seed++);
    Tensor mask = random_float_tensor(c.mask.rank() ? c.mask : Shape{1}, seed++);
    const Tensor* m = c.mask.rank() ? &mask : nullptr;
    OpCase op("FusedAttention", 1, "com.orchard");
    op.input("q", q).input("kt", kt).input("v", v).attr("scale", 0.5f).attr("head_dim_scale", int64_t{1});
    if (m) op.input("mask", mask);
    const float d = static_cast<float>(c.q[c.q.rank() - 1]);
    expect_tensor_near(run1(op), unfused(q, kt, v, m, 0.5f / std::sqrt(d)), 1e-4, 1e-5);
  }
}

TEST(FusedAttention, MaskedPositionsGetNoWeightAndNanToZeroClearsFullyMaskedRows) {
  // Row 0 masked at columns 2.., row 1 fully masked: softmax of row 1 is NaN, which nan_to_zero makes 0.
  const int64_t S = 5, D = 3;
  const Tensor q = random_float_tensor({1, 1, 2, D}, 3), kt = random_float_tensor({1, 1, D, S}, 4);
  const Tensor v = random_float_tensor({1, 1, S, 2}, 5);
  Tensor mask = Tensor::zeros(DType::float32, {1, 1, 2, S});
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t j = 2; j < S; ++j) mask.data<float>()[j] = ninf;
  for (int64_t j = 0; j < S; ++j) mask.data<float>()[S + j] = ninf;
  OpCase c("FusedAttention", 1, "com.orchard");
  c.input("q", q).input("kt", kt).input("v", v).input("mask", mask).attr("nan_to_zero", int64_t{1});
  const Tensor y = run1(c);
  // Row 0 equals attention over the first two columns only.
  const Tensor y0 = fused(run1(OpCase("Slice", 13)
                                   .input("x", q)
                                   .constant("s", Tensor::from_vector<int64_t>({1}, {0}))
                                   .constant("e", Tensor::from_vector<int64_t>({1}, {1}))
                                   .constant("a", Tensor::from_vector<int64_t>({1}, {2}))),
                          run1(OpCase("Slice", 13)
                                   .input("x", kt)
                                   .constant("s", Tensor::from_vector<int64_t>({1}, {0}))
                                   .constant("e", Tensor::from_vector<int64_t>({1}, {2}))
                                   .constant("a", Tensor::from_vector<int64_t>({1}, {3}))),
                          run1(OpCase("Slice", 13)
                                   .input("x", v)
                                   .constant("s", Tensor::from_vector<int64_t>({1}, {0}))
                                   .constant("e", Tensor::from_vector<int64_t>({1}, {2}))
                                   .constant("a", Tensor::from_vector<int64_t>({1}, {2}))),
                          nullptr, 1.0f);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  for (int64_t k = 0; k < 2; ++k) EXPECT_NEAR(y.data<float>()[k], y0.data<float>()[k], 1e-5);
  for (int64_t k = 2; k < 4; ++k) EXPECT_EQ(y.data<float>()[k], 0.0f) << k;
}

Tensor transpose(const Tensor& x, std::vector<int64_t> perm) {
  return run1(OpCase("Transpose", 13).input("x", x).attr("perm", std::move(perm)));
}

// layout bshd: Q, K and V as [B, S, H, D], read in place, against the unfused graph with the head Transposes an
// export has (Q and V by [0,2,1,3], K by [0,2,3,1], the result back by [0,2,1,3]). Odd sizes, masks broadcast
// over heads and rows, several row blocks per head (the blocked variant's strided panels), K and V of one batch
// shared by two (batch broadcast), head_dim_scale and a fully masked row with nan_to_zero.
TEST(FusedAttention, BshdLayoutReadsHeadsInPlace) {
  struct BshdCase {
    Shape q, k, v, mask;
  };
  const BshdCase cases[] = {
      {{1, 5, 2, 3}, {1, 7, 2, 3}, {1, 7, 2, 4}, {}},
      {{2, 13, 3, 8}, {2, 11, 3, 8}, {2, 11, 3, 6}, {2, 1, 1, 11}},
      {{1, 128, 12, 64}, {1, 128, 12, 64}, {1, 128, 12, 64}, {1, 1, 128, 128}},
      {{1, 300, 2, 16}, {1, 300, 2, 16}, {1, 300, 2, 16}, {300}},
      {{2, 9, 3, 5}, {1, 6, 3, 5}, {1, 6, 3, 4}, {2, 3, 9, 6}},
  };
  unsigned seed = 700;
  for (const BshdCase& c : cases) {
    SCOPED_TRACE(c.q.to_string() + " x " + c.k.to_string() + " x " + c.v.to_string() + " mask " + c.mask.to_string());
    const Tensor q = random_float_tensor(c.q, seed++), k = random_float_tensor(c.k, seed++);
    const Tensor v = random_float_tensor(c.v, seed++);
    Tensor mask = random_float_tensor(c.mask.rank() ? c.mask : Shape{1}, seed++);
    if (c.mask.rank() == 4 && c.mask[2] > 1) {
      const int64_t sk = c.mask[3];
      for (int64_t j = 0; j < sk; ++j) mask.data<float>()[sk + j] = -std::numeric_limits<float>::infinity();  // row 1
    }
    const Tensor* m = c.mask.rank() ? &mask : nullptr;
    const float d = static_cast<float>(c.q[3]);
    for (const int64_t nan_to_zero : {int64_t{0}, int64_t{1}}) {
      OpCase op("FusedAttention", 2, "com.orchard");
      op.input("q", q).input("k", k).input("v", v).attr("scale", 0.5f).attr("head_dim_scale", int64_t{1});
      op.attr("layout", std::string("bshd")).attr("nan_to_zero", nan_to_zero);
      if (m) op.input("mask", mask);
      const Tensor y = run1(op);
      Tensor want = transpose(unfused(transpose(q, {0, 2, 1, 3}), transpose(k, {0, 2, 3, 1}), transpose(v, {0, 2, 1, 3}),
                                      m, 0.5f / std::sqrt(d)),
                              {0, 2, 1, 3});
      if (nan_to_zero) {
        for (int64_t e = 0; e < want.numel(); ++e) {
          if (std::isnan(want.data<float>()[e])) want.data<float>()[e] = 0.0f;
        }
      }
      expect_tensor_near(y, want, 1e-4, 1e-5);
    }
  }
}

// layout bs3hd: one input QKV [B, S, 3·H·D] (GPT-2's fused projection), against bshd on its three thirds.
TEST(FusedAttention, Bs3hdLayoutReadsOneFusedProjection) {
  struct PackedCase {
    int64_t B, S, H, D;
    Shape mask;
  };
  const PackedCase cases[] = {{1, 7, 2, 3, {}}, {2, 13, 3, 8, {2, 1, 1, 13}}, {1, 130, 12, 64, {1, 1, 130, 130}}};
  unsigned seed = 800;
  for (const PackedCase& c : cases) {
    SCOPED_TRACE(std::to_string(c.B) + "x" + std::to_string(c.S) + " heads " + std::to_string(c.H) + "x" +
                 std::to_string(c.D));
    const int64_t E = c.H * c.D;
    const Tensor qkv = random_float_tensor({c.B, c.S, 3 * E}, seed++);
    Tensor parts[3];
    for (int64_t k = 0; k < 3; ++k) {
      parts[k] = run1(OpCase("Slice", 13)
                          .input("x", qkv)
                          .constant("s", Tensor::from_vector<int64_t>({1}, {k * E}))
                          .constant("e", Tensor::from_vector<int64_t>({1}, {(k + 1) * E}))
                          .constant("a", Tensor::from_vector<int64_t>({1}, {2})))
                     .reshaped(Shape{c.B, c.S, c.H, c.D});
    }
    const Tensor mask = random_float_tensor(c.mask.rank() ? c.mask : Shape{1}, seed++);
    OpCase packed("FusedAttention", 2, "com.orchard");
    packed.input("qkv", qkv).omitted_input().omitted_input().attr("scale", 0.125f);
    packed.attr("layout", std::string("bs3hd")).attr("num_heads", c.H);
    OpCase split("FusedAttention", 2, "com.orchard");
    split.input("q", parts[0]).input("k", parts[1]).input("v", parts[2]).attr("scale", 0.125f);
    split.attr("layout", std::string("bshd"));
    if (c.mask.rank()) {
      packed.input("mask", mask);
      split.input("mask", mask);
    }
    expect_tensor_near(run1(packed), run1(split), 1e-5, 1e-6);
  }
  OpCase bad("FusedAttention", 2, "com.orchard");
  bad.input("qkv", random_float_tensor({1, 4, 10}, 1)).omitted_input().omitted_input();
  bad.attr("layout", std::string("bs3hd")).attr("num_heads", int64_t{2});
  auto r = run_op(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("num_heads"), std::string::npos) << r.status().to_string();
}

TEST(FusedAttention, BadShapesAreRefusedNamingThem) {
  OpCase c("FusedAttention", 1, "com.orchard");
  c.input("q", random_float_tensor({1, 4, 3}, 1)).input("kt", random_float_tensor({1, 5, 4}, 2));
  c.input("v", random_float_tensor({1, 4, 2}, 3));
  auto r = run_op(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[1,4,3]"), std::string::npos) << r.status().to_string();
  OpCase m("FusedAttention", 1, "com.orchard");
  m.input("q", random_float_tensor({1, 4, 3}, 1)).input("kt", random_float_tensor({1, 3, 6}, 2));
  m.input("v", random_float_tensor({1, 6, 2}, 3)).input("mask", random_float_tensor({5}, 4));
  r = run_op(m);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("mask"), std::string::npos) << r.status().to_string();
  // bshd takes rank-4 operands only, and no other layout exists.
  OpCase b("FusedAttention", 2, "com.orchard");
  b.input("q", random_float_tensor({1, 4, 3}, 1)).input("k", random_float_tensor({1, 4, 3}, 2));
  b.input("v", random_float_tensor({1, 4, 3}, 3)).attr("layout", std::string("bshd"));
  r = run_op(b);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("rank 4"), std::string::npos) << r.status().to_string();
  OpCase u("FusedAttention", 2, "com.orchard");
  u.input("q", random_float_tensor({1, 4, 3}, 1)).input("kt", random_float_tensor({1, 3, 4}, 2));
  u.input("v", random_float_tensor({1, 4, 3}, 3)).attr("layout", std::string("sbhd"));
  r = run_op(u);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sbhd"), std::string::npos) << r.status().to_string();
  // The layout attribute is version 2's.
  OpCase v1("FusedAttention", 1, "com.orchard");
  v1.input("q", random_float_tensor({1, 4, 2, 3}, 1)).input("k", random_float_tensor({1, 4, 2, 3}, 2));
  v1.input("v", random_float_tensor({1, 4, 2, 3}, 3)).attr("layout", std::string("bshd"));
  r = run_op(v1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("version 2"), std::string::npos) << r.status().to_string();
}

}  // namespace
}  // namespace orchard::testing
