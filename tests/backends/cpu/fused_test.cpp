// com.orchard FusedConv and FusedMatMul (docs/fused_ops.md) against the unfused ops: Conv / MatMul run
// through the harness, then bias, residual and activation computed here in double.
#include <cmath>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  return y.ok() ? (*y)[0].tensor() : Tensor();
}

struct Act {
  std::string name;
  std::vector<float> params;
};

const Act kActs[] = {{"", {}},        {"Relu", {}},      {"Clip", {-0.5f, 0.75f}}, {"Sigmoid", {}}, {"SiLU", {}},
                     {"HardSwish", {}}, {"LeakyRelu", {0.1f}}, {"Gelu", {}},         {"GeluTanh", {}},
                     {"Tanh", {}}};

double activate(const Act& a, double v) {
  if (a.name == "Relu") return v > 0 ? v : 0;
  if (a.name == "Clip") return std::min(std::max(v, double(a.params[0])), double(a.params[1]));
  if (a.name == "Sigmoid") return 1 / (1 + std::exp(-v));
  if (a.name == "SiLU") return v / (1 + std::exp(-v));
  if (a.name == "HardSwish") return v * std::min(std::max(v / 6 + 0.5, 0.0), 1.0);
  if (a.name == "LeakyRelu") return v >= 0 ? v : a.params[0] * v;
  if (a.name == "Gelu") return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  if (a.name == "GeluTanh") return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  if (a.name == "Tanh") return std::tanh(v);
  return v;
}

// want = act(base + bias[channel] + z), channel = (i / inner) % channels.
Tensor expected(const Tensor& base, const Tensor* bias, int64_t inner, const Tensor* z, const Act& act) {
  Tensor want = Tensor::empty(DType::float32, base.shape());
  const int64_t channels = bias ? bias->numel() : 1;
  for (int64_t i = 0; i < base.numel(); ++i) {
    double v = base.data<float>()[i];
    if (bias) v += bias->data<float>()[(i / inner) % channels];
    if (z) v += z->data<float>()[i];
    want.data<float>()[i] = static_cast<float>(activate(act, v));
  }
  return want;
}

OpCase with_activation(OpCase c, const Act& act) {
  c.attr("activation", act.name);
  if (!act.params.empty()) c.attr("activation_params", act.params);
  return c;
}

TEST(FusedMatMul, EveryActivationWithAndWithoutBiasAndResidual) {
  unsigned seed = 1;
  for (const Act& act : kActs) {
    for (int variant = 0; variant < 4; ++variant) {
      const bool has_bias = variant & 1, has_z = variant & 2;
      // Batched A times a 2-D B (A's batch folded), odd sizes.
      Tensor a = random_float_tensor({2, 5, 19}, seed++);
      Tensor b = random_float_tensor({19, 13}, seed++);
      Tensor bias = random_float_tensor({13}, seed++);
      Tensor z = random_float_tensor({2, 5, 13}, seed++);
      OpCase c = with_activation(OpCase("FusedMatMul", 1, "com.orchard"), act);
      c.input("a", a);
      if (seed % 2) c.constant("b", b);  // packed at load
      else c.input("b", b);
      if (has_bias) c.input("bias", bias);
      else if (has_z) c.omitted_input();
      if (has_z) c.input("z", z);
      const Tensor base = run1(OpCase("MatMul", 13).input("a", a).input("b", b));
      expect_tensor_near(run1(c), expected(base, has_bias ? &bias : nullptr, 1, has_z ? &z : nullptr, act), 1e-4, 1e-5);
    }
  }
}

// Products of many rows with a constant B and declared shapes (a transformer's projections as a model with static
// shapes declares them), every activation, with and without bias and residual, on pools of 1 to 3 threads; MatMul
// and Gemm (transB, C as [N] and [1, N]) too. run_op also holds each to the reference.
TEST(FusedMatMul, ManyRowsInBandsMatchTheUnfusedOps) {
  unsigned seed = 300;
  const Shape a_shapes[] = {{2, 70, 33}, {1, 64, 96}, {3, 37, 21}, {1, 129, 5}};
  size_t k = 0;
  for (const Act& act : kActs) {
    const Shape& as = a_shapes[k % std::size(a_shapes)];
    const int threads = static_cast<int>(k % 3) + 1;
    const bool has_bias = k % 2 == 0, has_z = k % 3 != 1;
    ++k;
    SCOPED_TRACE(as.to_string() + " " + act.name + ", " + std::to_string(threads) + " threads");
    const int64_t K = as[as.rank() - 1], N = 17 + static_cast<int64_t>(k);
    Tensor a = random_float_tensor(as, seed++), b = random_float_tensor({K, N}, seed++);
    Tensor bias = random_float_tensor({N}, seed++);
    Shape out = as;
    out[out.rank() - 1] = N;
    Tensor z = random_float_tensor(out, seed++);
    OpCase c = with_activation(OpCase("FusedMatMul", 1, "com.orchard"), act);
    c.input("a", a).constant("b", b);
    if (has_bias) c.input("bias", bias);
    else if (has_z) c.omitted_input();
    if (has_z) c.input("z", z);
    c.with_threads(threads).with_declared_shapes();
    const Tensor base = run1(OpCase("MatMul", 13).input("a", a).input("b", b));
    expect_tensor_near(run1(c), expected(base, has_bias ? &bias : nullptr, 1, has_z ? &z : nullptr, act), 1e-4, 1e-5);
    expect_tensor_near(run1(OpCase("MatMul", 13).input("a", a).constant("b", b).with_threads(threads).with_declared_shapes()),
                       base, 1e-4, 1e-5);
  }
  for (const bool trans_b : {false, true}) {
    for (const Shape& cs : {Shape{23}, Shape{1, 23}}) {
      Tensor a = random_float_tensor({80, 19}, seed++), b = random_float_tensor(trans_b ? Shape{23, 19} : Shape{19, 23}, seed++);
      Tensor c = random_float_tensor(cs, seed++);
      OpCase fast = OpCase("Gemm", 13).input("a", a).constant("b", b).constant("c", c).attr("transB", int64_t{trans_b});
      const Tensor base = run1(OpCase("Gemm", 13).input("a", a).input("b", b).input("c", c).attr("transB", int64_t{trans_b}));
      expect_tensor_near(run1(fast.with_threads(2).with_declared_shapes()), base, 1e-4, 1e-5);
    }
  }
}

TEST(FusedMatMul, BroadcastBatchesAndVectors) {
  // B batched, A broadcast over it; and a 1-D A.
  Tensor a = random_float_tensor({1, 3, 4, 6}, 7);
  Tensor b = random_float_tensor({2, 1, 6, 5}, 8);
  Tensor bias = random_float_tensor({5}, 9);
  const Act relu{"Relu", {}};
  const Tensor base = run1(OpCase("MatMul", 13).input("a", a).input("b", b));
  expect_tensor_near(run1(with_activation(OpCase("FusedMatMul", 1, "com.orchard"), relu).input("a", a).input("b", b).input("bias", bias)),
                     expected(base, &bias, 1, nullptr, relu), 1e-4, 1e-5);
  Tensor v = random_float_tensor({6}, 10);
  Tensor m = random_float_tensor({6, 5}, 11);
  const Tensor vbase = run1(OpCase("MatMul", 13).input("a", v).input("b", m));
  expect_tensor_near(run1(with_activation(OpCase("FusedMatMul", 1, "com.orchard"), relu).input("a", v).input("b", m).input("bias", bias)),
                     expected(vbase, &bias, 1, nullptr, relu), 1e-4, 1e-5);
}

TEST(FusedMatMul, RejectsBadBiasResidualAndActivation) {
  Tensor a = random_float_tensor({3, 4}, 1);
  Tensor b = random_float_tensor({4, 5}, 2);
  auto bad_bias = run_op(OpCase("FusedMatMul", 1, "com.orchard").input("a", a).input("b", b).input("bias", random_float_tensor({4}, 3)));
  ASSERT_FALSE(bad_bias.ok());
  EXPECT_NE(bad_bias.status().message().find("bias of shape [4]"), std::string::npos) << bad_bias.status().message();
  auto bad_z = run_op(OpCase("FusedMatMul", 1, "com.orchard").input("a", a).input("b", b).omitted_input().input("z", random_float_tensor({5}, 3)));
  ASSERT_FALSE(bad_z.ok());
  EXPECT_NE(bad_z.status().message().find("Z of shape [5]"), std::string::npos) << bad_z.status().message();
  auto bad_act = run_op(OpCase("FusedMatMul", 1, "com.orchard").input("a", a).input("b", b).attr("activation", std::string("Swish")));
  ASSERT_FALSE(bad_act.ok());
  EXPECT_NE(bad_act.status().message().find("unknown activation 'Swish'"), std::string::npos) << bad_act.status().message();
  auto bad_params = run_op(OpCase("FusedMatMul", 1, "com.orchard").input("a", a).input("b", b).attr("activation", std::string("Clip")));
  ASSERT_FALSE(bad_params.ok());
}

TEST(FusedConv, EveryActivationWithAndWithoutBiasAndResidual) {
  unsigned seed = 100;
  for (const Act& act : kActs) {
    for (int variant = 0; variant < 4; ++variant) {
      const bool has_bias = variant & 1, has_z = variant & 2;
      Tensor x = random_float_tensor({2, 6, 7, 9}, seed++);
      Tensor w = random_float_tensor({10, 3, 3, 3}, seed++);  // two groups
      Tensor bias = random_float_tensor({10}, seed++);
      Tensor z = random_float_tensor({2, 10, 4, 9}, seed++);
      auto conv_attrs = [](OpCase c) {
        return c.attr("group", int64_t{2})
            .attr("strides", std::vector<int64_t>{2, 1})
            .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
            .attr("dilations", std::vector<int64_t>{1, 1});
      };
      OpCase c = conv_attrs(with_activation(OpCase("FusedConv", 1, "com.orchard"), act));
      c.input("x", x);
      if (seed % 2) c.constant("w", w);  // packed at load
      else c.input("w", w);
      if (has_bias) c.input("b", bias);
      else if (has_z) c.omitted_input();
      if (has_z) c.input("z", z);
      const Tensor base = run1(conv_attrs(OpCase("Conv", 11)).input("x", x).input("w", w));
      expect_tensor_near(run1(c), expected(base, has_bias ? &bias : nullptr, 4 * 9, has_z ? &z : nullptr, act), 1e-4,
                         1e-5);
    }
  }
}

TEST(FusedConv, OneByOneDepthwiseAndConv1d) {
  // 1x1 (a GEMM on NCHW), depthwise (channel blocks, one plane at a time), 1-D with padding: each with bias,
  // residual and every activation (Relu / Clip applied by the kernels as they store, the others after).
  struct Case {
    Shape x, w, z;
    int64_t group;
    std::vector<int64_t> strides, pads;
  };
  const Case cases[] = {
      {{1, 5, 6, 7}, {9, 5, 1, 1}, {1, 9, 6, 7}, 1, {1, 1}, {0, 0, 0, 0}},
      {{1, 8, 9, 9}, {8, 1, 3, 3}, {1, 8, 5, 5}, 8, {2, 2}, {1, 1, 1, 1}},
      {{2, 35, 7, 7}, {35, 1, 5, 5}, {2, 35, 7, 7}, 35, {1, 1}, {2, 2, 2, 2}},   // channel blocks
      {{1, 6, 5, 66}, {6, 1, 3, 3}, {1, 6, 5, 66}, 6, {1, 1}, {1, 1, 1, 1}},     // one plane at a time
      {{2, 4, 11}, {6, 4, 3}, {2, 6, 11}, 1, {1}, {1, 1}},
  };
  unsigned seed = 300;
  for (const Case& k : cases) {
    for (const Act& act : kActs) {
      for (const bool has_z : {true, false}) {
        Tensor x = random_float_tensor(k.x, seed++), w = random_float_tensor(k.w, seed++);
        Tensor z = random_float_tensor(k.z, seed++), bias = random_float_tensor({k.w[0]}, seed++);
        auto attrs = [&](OpCase c) { return c.attr("group", k.group).attr("strides", k.strides).attr("pads", k.pads); };
        const Tensor base = run1(attrs(OpCase("Conv", 11)).input("x", x).input("w", w));
        int64_t inner = 1;
        for (size_t d = 2; d < k.z.rank(); ++d) inner *= k.z[d];
        OpCase c = attrs(with_activation(OpCase("FusedConv", 1, "com.orchard"), act));
        c.input("x", x).constant("w", w).input("b", bias);
        if (has_z) c.input("z", z);
        expect_tensor_near(run1(c), expected(base, &bias, inner, has_z ? &z : nullptr, act), 1e-4, 1e-5);
      }
    }
  }
}

Tensor transpose(const Tensor& x, std::vector<int64_t> perm) {
  return run1(OpCase("Transpose", 13).input("x", x).attr("perm", std::move(perm)));
}

// A convolution for the nhwc tests: NCHW input, OIHW weights and the attributes.
struct NhwcCase {
  Shape x, w;
  int64_t group;
  std::vector<int64_t> strides, pads, dilations;
};

// Expects FusedConv layout nhwc (X, Z, Y [N, H, W, C], W [M, kH, kW, C/group]) of the case's transposed operands to
// equal the NCHW FusedConv's output transposed, on a pool of `threads` threads (0: the default).
void expect_nhwc_matches_nchw(const NhwcCase& k, const Act& act, bool has_bias, bool has_z, int threads, unsigned& seed) {
  SCOPED_TRACE(k.x.to_string() + " * " + k.w.to_string() + " " + act.name + (has_bias ? " +B" : "") +
               (has_z ? " +Z" : "") + ", " + std::to_string(threads) + " threads");
  const Tensor x = random_float_tensor(k.x, seed++), w = random_float_tensor(k.w, seed++);
  const Tensor bias = has_bias ? random_float_tensor({k.w[0]}, seed++) : Tensor::zeros(DType::float32, Shape{k.w[0]});
  auto attrs = [&](OpCase c) {
    return c.attr("group", k.group).attr("strides", k.strides).attr("pads", k.pads).attr("dilations", k.dilations);
  };
  OpCase nchw = attrs(with_activation(OpCase("FusedConv", 1, "com.orchard"), act));
  nchw.input("x", x).input("w", w).input("b", bias);
  const Shape out = run1(attrs(OpCase("Conv", 11)).input("x", x).input("w", w)).shape();
  const Tensor z = random_float_tensor(out, seed++);
  if (has_z) nchw.input("z", z);
  OpCase nhwc = attrs(with_activation(OpCase("FusedConv", 1, "com.orchard"), act)).attr("layout", std::string("nhwc"));
  nhwc.input("x", transpose(x, {0, 2, 3, 1})).constant("w", transpose(w, {0, 2, 3, 1}));
  if (has_bias) {
    nhwc.input("b", bias);
  } else if (has_z) {
    nhwc.omitted_input();
  }
  if (has_z) nhwc.input("z", transpose(z, {0, 2, 3, 1}));
  nhwc.with_threads(threads);
  expect_tensor_near(run1(nhwc), transpose(run1(nchw), {0, 2, 3, 1}), 1e-4, 1e-5);
}

// layout nhwc against the NCHW convolution between Transposes: grouped with strides and dilations, 1x1, depthwise
// with stride 2, odd sizes; bias, residual and activations.
TEST(FusedConv, NhwcLayoutMatchesNchwBetweenTransposes) {
  const NhwcCase cases[] = {
      {{2, 6, 7, 9}, {10, 3, 3, 3}, 2, {2, 1}, {1, 1, 1, 1}, {1, 2}},
      {{1, 5, 6, 7}, {9, 5, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},
      {{1, 8, 9, 11}, {8, 1, 3, 3}, 8, {2, 2}, {1, 1, 1, 1}, {1, 1}},
      {{3, 3, 13, 10}, {7, 3, 5, 5}, 1, {1, 2}, {2, 2, 2, 2}, {1, 1}},
  };
  const Act acts[] = {{"", {}}, {"Relu", {}}, {"Clip", {0.f, 6.f}}, {"HardSwish", {}}};
  unsigned seed = 900;
  for (const NhwcCase& k : cases) {
    for (const Act& act : acts) {
      for (const bool has_z : {true, false}) expect_nhwc_matches_nchw(k, act, true, has_z, 0, seed);
    }
  }
  OpCase bad("FusedConv", 1, "com.orchard");
  bad.input("x", random_float_tensor({1, 4, 4, 2}, 1)).input("w", random_float_tensor({2, 1, 1, 2}, 2));
  bad.attr("layout", std::string("nwhc"));
  auto r = run_op(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nwhc"), std::string::npos) << r.status().to_string();
}

// Strided convolutions whose last input rows no window reads (resnet50's stride-2 downsampling 1x1 on 14 rows):
// each band of output rows also takes those rows, on one to three threads (bands of one image), against NCHW.
TEST(FusedConv, NhwcStridedBandsWithUnreadRowsMatchNchw) {
  const NhwcCase cases[] = {
      {{1, 16, 14, 14}, {24, 16, 1, 1}, 1, {2, 2}, {0, 0, 0, 0}, {1, 1}},
      {{2, 8, 9, 7}, {8, 8, 1, 1}, 1, {3, 2}, {0, 0, 0, 0}, {1, 1}},
      {{1, 6, 10, 10}, {6, 6, 3, 3}, 1, {2, 2}, {0, 0, 0, 0}, {1, 1}},
      {{1, 6, 12, 11}, {6, 1, 3, 3}, 6, {3, 3}, {1, 1, 0, 0}, {1, 1}},
  };
  unsigned seed = 4000;
  for (const NhwcCase& k : cases) {
    for (const int threads : {1, 2, 3}) expect_nhwc_matches_nchw(k, {"Relu", {}}, true, threads == 2, threads, seed);
  }
}

// Pointwise (1x1) convolutions in nhwc over a few pixels per image, as squeeze-excitation blocks have on
// [N, 1, 1, C]: one GEMM on the pixels (the oneDNN variant hands such runs to it; without oneDNN the pointwise
// variant takes every pointwise nhwc convolution), against the NCHW convolution; one and two threads.
TEST(FusedConv, NhwcPointwiseOverFewPixelsMatchesNchw) {
  const NhwcCase cases[] = {
      {{1, 48, 1, 1}, {1152, 48, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},  // efficientnet's expand
      {{3, 96, 1, 1}, {4, 96, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},     // its reduce, three images
      {{2, 20, 2, 2}, {33, 20, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},    // four pixels an image
      {{1, 7, 2, 3}, {5, 7, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},       // six: oneDNN's
  };
  const Act acts[] = {{"", {}}, {"Relu", {}}, {"SiLU", {}}, {"Sigmoid", {}}, {"HardSwish", {}}};
  unsigned seed = 3000;
  size_t a = 0;
  for (const NhwcCase& k : cases) {
    for (const int threads : {1, 2}) {
      for (const Act& act : acts) {
        ++a;
        expect_nhwc_matches_nchw(k, act, a % 3 != 0, a % 2 == 0, threads, seed);
      }
    }
  }
}

// The nhwc layout on more shapes and on pools of 1, 2, 3 and 5 threads: where oneDNN is built in, its kernel
// splits a run into bands of output rows when there are fewer images than threads, each band a convolution with
// its own edge padding (run_op also holds it to the reference kernel).
TEST(FusedConv, NhwcLayoutMatchesNchwInBandsOfRows) {
  const NhwcCase cases[] = {
      {{1, 3, 23, 21}, {8, 3, 7, 7}, 1, {2, 2}, {3, 3, 3, 3}, {1, 1}},      // a stem
      {{2, 16, 9, 11}, {24, 16, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}},    // 3x3, two images
      {{1, 24, 13, 13}, {24, 1, 3, 3}, 24, {2, 2}, {1, 1, 1, 1}, {1, 1}},   // depthwise, stride 2
      {{1, 32, 7, 7}, {32, 1, 5, 5}, 32, {1, 1}, {2, 2, 2, 2}, {1, 1}},     // depthwise 5x5 on 7x7
      {{3, 40, 5, 6}, {17, 40, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},     // 1x1, three images
      {{1, 16, 10, 9}, {8, 4, 3, 3}, 4, {1, 1}, {1, 1, 1, 1}, {1, 1}},      // four groups
      {{1, 8, 12, 12}, {8, 8, 3, 3}, 1, {1, 1}, {2, 2, 2, 2}, {2, 2}},      // dilated
      {{1, 6, 11, 10}, {5, 6, 3, 3}, 1, {3, 3}, {0, 0, 0, 0}, {1, 1}},      // stride 3, rows left over
      {{1, 4, 2, 3}, {6, 4, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}},        // two output rows
  };
  const Act acts[] = {{"", {}}, {"Relu", {}}, {"Clip", {0.f, 6.f}}, {"SiLU", {}}, {"LeakyRelu", {0.1f}}, {"Sigmoid", {}}};
  unsigned seed = 2000;
  size_t a = 0;
  for (const NhwcCase& k : cases) {
    for (const int threads : {1, 2, 3, 5}) {
      ++a;
      expect_nhwc_matches_nchw(k, acts[a % std::size(acts)], a % 3 != 0, a % 2 == 0, threads, seed);
    }
  }
}

TEST(FusedConv, RejectsBadResidualAndBias) {
  Tensor x = random_float_tensor({1, 2, 4, 4}, 1);
  Tensor w = random_float_tensor({3, 2, 3, 3}, 2);
  auto bad_z = run_op(OpCase("FusedConv", 1, "com.orchard").input("x", x).input("w", w).omitted_input().input("z", random_float_tensor({1, 3, 4, 4}, 3)));
  ASSERT_FALSE(bad_z.ok());
  EXPECT_NE(bad_z.status().message().find("Z of shape [1,3,4,4]"), std::string::npos) << bad_z.status().message();
  auto bad_b = run_op(OpCase("FusedConv", 1, "com.orchard").input("x", x).input("w", w).input("b", random_float_tensor({2}, 3)));
  ASSERT_FALSE(bad_b.ok());
  EXPECT_NE(bad_b.status().message().find("B has 2 values"), std::string::npos) << bad_b.status().message();
}

}  // namespace
}  // namespace orchard::testing
