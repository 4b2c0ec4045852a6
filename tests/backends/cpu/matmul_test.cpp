#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  return y.ok() ? (*y)[0].tensor() : Tensor();
}

TEST(MatMul, BatchBroadcastAndVectors) {
  // [2,1,2,3] x [3,2] -> [2,1,2,2]; B is shared by both batches.
  Tensor a = Tensor::from_vector<float>({2, 1, 2, 3}, {1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0});
  Tensor b = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  expect_tensor_near(run1(OpCase("MatMul", 13).input("a", a).input("b", b)),
                     Tensor::from_vector<float>({2, 1, 2, 2}, {22, 28, 49, 64, 1, 2, 3, 4}));
  // 1-D x 2-D drops the row dim, 2-D x 1-D the column dim, 1-D x 1-D gives a scalar.
  Tensor v = Tensor::from_vector<float>({3}, {1, 1, 1});
  expect_tensor_near(run1(OpCase("MatMul", 13).input("a", v).input("b", b)), Tensor::from_vector<float>({2}, {9, 12}));
  Tensor m = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_tensor_near(run1(OpCase("MatMul", 13).input("a", m).input("b", v)), Tensor::from_vector<float>({2}, {6, 15}));
  expect_tensor_near(run1(OpCase("MatMul", 13).input("a", v).input("b", v)), Tensor::scalar<float>(3));
  // A broadcasts over B's batch.
  Tensor bb = Tensor::from_vector<float>({2, 3, 1}, {1, 0, 0, 0, 0, 1});
  expect_tensor_near(run1(OpCase("MatMul", 13).input("a", m).input("b", bb)),
                     Tensor::from_vector<float>({2, 2, 1}, {1, 4, 3, 6}));
}

TEST(MatMul, IntegerAndHalf) {
  Tensor a = Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::from_vector<int64_t>({2, 2}, {5, 6, 7, 8});
  expect_tensor_near(run1(OpCase("MatMul", 13).input("a", a).input("b", b)),
                     Tensor::from_vector<int64_t>({2, 2}, {19, 22, 43, 50}));
  Tensor ha = Tensor::from_vector<float16>({1, 2}, {float16(1.5f), float16(2.0f)});
  Tensor hb = Tensor::from_vector<float16>({2, 1}, {float16(2.0f), float16(0.25f)});
  expect_tensor_near(run1(OpCase("MatMul", 13).input("a", ha).input("b", hb)),
                     Tensor::from_vector<float16>({1, 1}, {float16(3.5f)}));
}

TEST(MatMul, RejectsMismatchedInnerDims) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto y = run_op(OpCase("MatMul", 13).input("a", a).input("b", a));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("inner dimensions"), std::string::npos) << y.status().message();
}

TEST(GemmOp, TransposesAlphaBetaAndBroadcastC) {
  Tensor a = Tensor::from_vector<float>({3, 2}, {1, 4, 2, 5, 3, 6});  // A^T = [[1,2,3],[4,5,6]]
  Tensor b = Tensor::from_vector<float>({2, 3}, {1, 3, 5, 2, 4, 6});  // B^T = [[1,2],[3,4],[5,6]]
  Tensor c = Tensor::from_vector<float>({2}, {1, 2});
  auto out = run1(OpCase("Gemm", 13)
                      .input("a", a)
                      .input("b", b)
                      .input("c", c)
                      .attr("transA", int64_t{1})
                      .attr("transB", int64_t{1})
                      .attr("alpha", 0.5f)
                      .attr("beta", 2.0f));
  // A^T B^T = [[22,28],[49,64]]
  expect_tensor_near(out, Tensor::from_vector<float>({2, 2}, {13, 18, 26.5f, 36}));
  // C is optional from opset 11.
  Tensor i2 = Tensor::from_vector<double>({2, 2}, {1, 0, 0, 1});
  Tensor m = Tensor::from_vector<double>({2, 2}, {1, 2, 3, 4});
  expect_tensor_near(run1(OpCase("Gemm", 11).input("a", i2).input("b", m)), m);
}

TEST(GemmOp, RejectsBadC) {
  Tensor a = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  Tensor c = Tensor::from_vector<float>({3}, {1, 2, 3});
  auto y = run_op(OpCase("Gemm", 13).input("a", a).input("b", a).input("c", c));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("cannot be broadcast"), std::string::npos) << y.status().message();
}

// The float32 variant (GEMM core) on odd sizes around its register tiles, with B fed or constant (packed at
// load), batch broadcasting both ways; the harness holds it to the reference's triple loop.
TEST(MatMul, VariantOddSizesAndBatches) {
  struct Case {
    Shape a, b, out;
  };
  const Case cases[] = {
      {{1, 1}, {1, 1}, {1, 1}},
      {{1, 33}, {33, 47}, {1, 47}},
      {{13, 7}, {7, 1}, {13, 1}},
      {{25, 40}, {40, 33}, {25, 33}},
      {{30, 300}, {300, 70}, {30, 70}},          // K spans two blocks
      {{2, 3, 13, 17}, {17, 35}, {2, 3, 13, 35}},  // batch folded into M
      {{3, 1, 5, 9}, {2, 9, 11}, {3, 2, 5, 11}},   // both batched, broadcast
      {{5, 9}, {4, 9, 11}, {4, 5, 11}},            // A broadcast over B's batch
      {{9}, {9, 20}, {20}},                        // vector times matrix
  };
  unsigned seed = 900;
  for (const Case& c : cases) {
    Tensor a = random_float_tensor(c.a, seed++), b = random_float_tensor(c.b, seed++);
    EXPECT_EQ(run1(OpCase("MatMul", 13).input("a", a).input("b", b)).shape(), c.out);
    EXPECT_EQ(run1(OpCase("MatMul", 13).input("a", a).constant("b", b)).shape(), c.out);
  }
}

// The float32 Gemm variant: transposes, B fed or constant, alpha/beta, and every shape C may broadcast from.
TEST(GemmOp, VariantTransposesAndShapesOfC) {
  const int64_t M = 14, N = 37, K = 19;
  const Shape c_shapes[] = {{}, {N}, {1, N}, {M, 1}, {M, N}, {1}, {1, 1}};
  unsigned seed = 1000;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    Tensor a = random_float_tensor(ta ? Shape{K, M} : Shape{M, K}, seed++);
    Tensor b = random_float_tensor(tb ? Shape{N, K} : Shape{K, N}, seed++);
    for (const Shape& cs : c_shapes) {
      for (float beta : {0.0f, 2.0f}) {
        OpCase c = OpCase("Gemm", 13).input("a", a);
        if (seed % 2) c.constant("b", b);
        else c.input("b", b);
        if (cs.rank() > 0) c.input("c", random_float_tensor(cs, seed));
        c.attr("transA", int64_t{ta}).attr("transB", int64_t{tb}).attr("alpha", 0.5f).attr("beta", beta);
        ++seed;
        EXPECT_EQ(run1(c).shape(), (Shape{M, N})) << "C " << cs.to_string();
      }
    }
  }
}

TEST(Einsum, MatmulTraceDiagonalAndImplicitOutput) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  expect_tensor_near(run1(OpCase("Einsum", 12).input("a", a).input("b", b).attr("equation", std::string("ij,jk->ik"))),
                     Tensor::from_vector<float>({2, 2}, {22, 28, 49, 64}));
  // Implicit output: letters used once, alphabetically -> "ik".
  expect_tensor_near(run1(OpCase("Einsum", 12).input("a", a).input("b", b).attr("equation", std::string("ij,jk"))),
                     Tensor::from_vector<float>({2, 2}, {22, 28, 49, 64}));
  Tensor sq = Tensor::from_vector<float>({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  expect_tensor_near(run1(OpCase("Einsum", 12).input("x", sq).attr("equation", std::string("...ii->...i"))),
                     Tensor::from_vector<float>({2, 2}, {1, 4, 5, 8}));
  expect_tensor_near(run1(OpCase("Einsum", 12).input("x", sq).attr("equation", std::string("bii->b"))),
                     Tensor::from_vector<float>({2}, {5, 13}));
  // Three operands with an outer product and a reduction.
  Tensor u = Tensor::from_vector<float>({2}, {1, 2});
  Tensor v = Tensor::from_vector<float>({3}, {1, 1, 1});
  expect_tensor_near(
      run1(OpCase("Einsum", 12).input("u", u).input("a", a).input("v", v).attr("equation", std::string("i,ij,j->"))),
      Tensor::scalar<float>(1 * 6 + 2 * 15));
}

TEST(Einsum, RejectsWrongOperandCount) {
  Tensor a = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  auto y = run_op(OpCase("Einsum", 12).input("a", a).attr("equation", std::string("ij,jk->ik")));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("operands"), std::string::npos) << y.status().message();
}

TEST(Einsum, RejectsMalformedEquations) {
  Tensor a = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  for (const char* eq : {"ij->k", "i.j->ij", "ijk->i", "ij->ii", "i$->i", "ij->ij->ij"}) {
    auto y = run_op(OpCase("Einsum", 12).input("a", a).attr("equation", std::string(eq)));
    EXPECT_FALSE(y.ok()) << eq;
  }
  Tensor b = Tensor::from_vector<float>({3}, {1, 2, 3});
  EXPECT_FALSE(run_op(OpCase("Einsum", 12).input("a", a).input("b", b).attr("equation", std::string("ij,j->i"))).ok());
}

TEST(MatMulInteger, ZeroPoints) {
  Tensor a = Tensor::from_vector<uint8_t>({2, 2}, {11, 12, 13, 14});
  Tensor b = Tensor::from_vector<int8_t>({2, 1}, {1, -1});
  Tensor za = Tensor::scalar<uint8_t>(10);
  Tensor zb = Tensor::from_vector<int8_t>({1}, {-1});
  // (a - 10) = [[1,2],[3,4]], (b + 1) = [[2],[0]]
  expect_tensor_near(
      run1(OpCase("MatMulInteger", 10).input("a", a).input("b", b).input("za", za).input("zb", zb)),
      Tensor::from_vector<int32_t>({2, 1}, {2, 6}));
}

TEST(QLinearMatMul, RoundsAndSaturates) {
  Tensor a = Tensor::from_vector<uint8_t>({1, 2}, {2, 4});
  Tensor b = Tensor::from_vector<uint8_t>({2, 2}, {1, 0, 1, 100});
  auto c = OpCase("QLinearMatMul", 10)
               .input("a", a)
               .input("sa", Tensor::scalar<float>(1.0f))
               .input("za", Tensor::scalar<uint8_t>(0))
               .input("b", b)
               .input("sb", Tensor::scalar<float>(1.0f))
               .input("zb", Tensor::scalar<uint8_t>(0))
               .input("sy", Tensor::scalar<float>(4.0f))
               .input("zy", Tensor::scalar<uint8_t>(1));
  // a*b = [6, 400]; /4 = [1.5, 100] -> round half even [2, 100] + 1
  expect_tensor_near(run1(c), Tensor::from_vector<uint8_t>({1, 2}, {3, 101}));
}

}  // namespace
}  // namespace orchard::testing
