// The optimized float32 GEMM core (opt/gemm_f32.hpp) against a triple loop in double: odd sizes around the
// tile sizes, transposes, packed and unpacked operands, K spanning several blocks, every epilogue part, and
// a thread pool. Run with ORCHARD_CPU_FEATURES=avx2 / none to cover the other micro-kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/opt/gemm_f32.hpp"

namespace orchard::cpu::opt {
namespace {

struct Case {
  int64_t M, N, K;
  bool ta, tb, pack_a, pack_b;
  int64_t ldc_pad = 2;  // C's row stride is N + ldc_pad
};

void check(const Case& c, const GemmEpilogue& ep_in, ThreadPool* pool) {
  std::mt19937 rng(static_cast<unsigned>(c.M * 131 + c.N * 17 + c.K));
  std::uniform_real_distribution<float> dist(-1, 1);
  const int64_t lda = (c.ta ? c.M : c.K) + 3, ldb = (c.tb ? c.K : c.N) + 1, ldc = c.N + c.ldc_pad;
  std::vector<float> A(static_cast<size_t>((c.ta ? c.K : c.M) * lda)), B(static_cast<size_t>((c.tb ? c.N : c.K) * ldb));
  for (auto& v : A) v = dist(rng);
  for (auto& v : B) v = dist(rng);
  std::vector<float> bias(static_cast<size_t>(std::max(c.M, c.N))), res(static_cast<size_t>(c.M * c.N));
  for (auto& v : bias) v = dist(rng);
  for (auto& v : res) v = dist(rng);
  GemmEpilogue ep = ep_in;
  if (ep.bias) ep.bias = bias.data();
  if (ep.residual) {
    ep.residual = res.data();
    ep.ld_residual = c.N;
  }
  std::vector<float> C(static_cast<size_t>(c.M * ldc), std::nanf(""));  // C is never read
  auto pa = c.pack_a ? gemm_pack_a(c.ta, c.M, c.K, A.data(), lda) : nullptr;
  auto pb = c.pack_b ? gemm_pack_b(c.tb, c.K, c.N, B.data(), ldb) : nullptr;
  GemmOperand a{A.data(), lda, c.ta, pa.get()}, b{B.data(), ldb, c.tb, pb.get()};
  gemm_f32(c.M, c.N, c.K, a, b, C.data(), ldc, ep, pool);
  for (int64_t i = 0; i < c.M; ++i) {
    std::vector<float> want(static_cast<size_t>(c.N));
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        s += double(c.ta ? A[k * lda + i] : A[i * lda + k]) * double(c.tb ? B[j * ldb + k] : B[k * ldb + j]);
      }
      s *= ep.alpha;
      if (ep.bias) s += ep.bias_per_row ? bias[i] : bias[j];
      if (ep.residual) s += ep.residual_scale * res[i * c.N + j];
      want[j] = static_cast<float>(s);
    }
    apply_activation_ref(ep.act, want.data(), c.N);
    for (int64_t j = 0; j < c.N; ++j) {
      ASSERT_NEAR(C[i * ldc + j], want[j], 2e-5 * (c.K + 1))
          << gemm_micro_kernel().name << " M=" << c.M << " N=" << c.N << " K=" << c.K << " ta=" << c.ta << " tb=" << c.tb
          << " packed " << c.pack_a << c.pack_b << " at (" << i << "," << j << ")";
    }
    for (int64_t j = c.N; j < ldc; ++j) ASSERT_TRUE(std::isnan(C[i * ldc + j])) << "row padding written";
  }
}

TEST(GemmF32Opt, OddSizesTransposesAndPacking) {
  const int64_t sizes[] = {1, 5, 13, 33, 47};
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : {int64_t{1}, int64_t{17}, int64_t{300}})
        for (int t = 0; t < 16; ++t) check({M, N, K, bool(t & 1), bool(t & 2), bool(t & 4), bool(t & 8)}, {}, nullptr);
}

// Every row count of a partial register tile (M 1..25 covers the 12-, 8- and 6-row tiles) against column
// counts of one partial vector, one full and one partial, and two full vectors: the micro-kernels compute only
// the rows and column vectors a tile has. With the Relu / residual / row-bias epilogue on every other size.
TEST(GemmF32Opt, EveryPartialTile) {
  GemmEpilogue relu;
  relu.bias = reinterpret_cast<const float*>(1);  // replaced by check()
  relu.bias_per_row = true;
  relu.residual = reinterpret_cast<const float*>(1);
  relu.act.kind = Activation::relu;
  for (int64_t M = 1; M <= 25; ++M) {
    for (int64_t N : {int64_t{3}, int64_t{16}, int64_t{17}, int64_t{32}, int64_t{45}}) {
      check({M, N, 19, false, false, true, false}, (M + N) % 2 ? relu : GemmEpilogue{}, nullptr);
    }
  }
}

TEST(GemmF32Opt, EpilogueParts) {
  GemmEpilogue col_bias;
  col_bias.bias = reinterpret_cast<const float*>(1);  // replaced by check()
  GemmEpilogue row_bias = col_bias;
  row_bias.bias_per_row = true;
  GemmEpilogue everything = row_bias;
  everything.alpha = 0.5f;
  everything.residual = reinterpret_cast<const float*>(1);
  everything.residual_scale = 2.0f;
  everything.act.kind = Activation::silu;
  GemmEpilogue clip = col_bias;
  clip.residual = reinterpret_cast<const float*>(1);
  clip.act = {Activation::clip, -0.25f, 0.5f};
  GemmEpilogue relu = row_bias;  // applied by the micro-kernel in registers, like clip
  relu.alpha = -1.5f;
  relu.residual = reinterpret_cast<const float*>(1);
  relu.act.kind = Activation::relu;
  for (const GemmEpilogue& ep : {col_bias, row_bias, everything, clip, relu}) {
    check({29, 70, 263, false, false, false, true}, ep, nullptr);
    check({29, 70, 263, true, true, true, false}, ep, nullptr);
    check({29, 70, 700, false, false, true, false}, ep, nullptr);  // the epilogue after two K blocks
    check({1, 70, 263, false, true, false, true}, ep, nullptr);    // a row vector (M = 1)
    check({29, 1, 700, false, false, true, false}, ep, nullptr);   // a column vector (N = 1)
    check({7, 3, 0, false, false, false, false}, ep, nullptr);  // K = 0: the epilogue of zeros
    check({29, 70, 263, false, false, true, false, 0}, ep, nullptr);  // rows of C contiguous: one activation pass
    check({110, 49, 40, false, false, true, false, 0}, ep, nullptr);  // ... over two M blocks
  }
}

// Thread blocks cut on whole tiles, of equal cost where a partial last tile is cheaper than a full one.
TEST(GemmF32Opt, SplitBalancesPartialTiles) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(gemm_split(196, 32, 2, 2), (V{0, 96, 196}));  // 14x14 image: 6 + 6.25 vectors, not 8 + 4.25
  EXPECT_EQ(gemm_split(196, 32, 1, 2), (V{0, 96, 196}));  // tiles of one cost: 3 + 4 (a tie goes to the first cut)
  EXPECT_EQ(gemm_split(784, 32, 2, 2), (V{0, 384, 784}));
  EXPECT_EQ(gemm_split(512, 12, 12, 2), (V{0, 252, 512}));  // rows: 252 + 260, not 264 + 248
  EXPECT_EQ(gemm_split(100, 32, 1, 3), (V{0, 32, 96, 100}));
  EXPECT_EQ(gemm_split(20, 32, 2, 4), (V{0, 20}));  // one tile: one range
  EXPECT_EQ(gemm_split(7, 6, 1, 1), (V{0, 7}));
  for (int64_t extent = 1; extent <= 150; ++extent) {
    for (int64_t parts = 1; parts <= 5; ++parts) {
      for (int64_t units : {int64_t{1}, int64_t{2}, int64_t{12}}) {
        const V b = gemm_split(extent, 12, units, parts);
        const int64_t tiles = (extent + 11) / 12;
        ASSERT_EQ(static_cast<int64_t>(b.size()), std::min(parts, tiles) + 1) << extent << " " << parts;
        ASSERT_EQ(b.front(), 0);
        ASSERT_EQ(b.back(), extent);
        for (size_t i = 1; i + 1 < b.size(); ++i) {
          ASSERT_EQ(b[i] % 12, 0) << extent << " " << parts << " " << units;
          ASSERT_GT(b[i], b[i - 1]);
          ASSERT_LT(b[i], extent);
        }
      }
    }
  }
}

TEST(GemmF32Opt, ThreadPoolBlocks) {
  ThreadPool pool(4);
  GemmEpilogue relu;
  relu.act.kind = Activation::relu;
  check({130, 257, 270, false, false, false, true}, relu, &pool);
  check({130, 257, 270, false, false, true, false}, relu, &pool);
  check({2, 1100, 300, false, true, false, false}, {}, &pool);
  check({1100, 3, 300, true, false, false, false}, {}, &pool);
}

// Uneven thread blocks (gemm_split): a 196-column product split along N, a 200-row one along M, on 2 and 3 threads.
TEST(GemmF32Opt, ThreadPoolUnevenBlocks) {
  GemmEpilogue relu;
  relu.bias = reinterpret_cast<const float*>(1);  // replaced by check()
  relu.bias_per_row = true;
  relu.act.kind = Activation::relu;
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    check({64, 196, 200, false, false, true, false}, relu, &pool);
    check({200, 49, 300, false, false, true, false}, {}, &pool);
    GemmEpilogue silu;  // activated after each block: by rows when blocks split C's rows, else in one pass
    silu.act.kind = Activation::silu;
    check({64, 196, 200, false, false, true, false, 0}, silu, &pool);
    check({200, 49, 300, false, false, true, false, 0}, silu, &pool);
  }
}

// A batch-1 classifier: under the flop threshold but streaming over 1 MiB of packed weights, so split along N
// on 2 and 3 threads (a block started at the wrong column, or columns left out, fail).
TEST(GemmF32Opt, ThreadPoolSmallProductLargeWeights) {
  GemmEpilogue bias;
  bias.bias = reinterpret_cast<const float*>(1);  // replaced by check()
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    check({1, 451, 600, false, true, false, true}, bias, &pool);
    check({3, 451, 600, false, false, false, true}, {}, &pool);
  }
}

}  // namespace
}  // namespace orchard::cpu::opt
