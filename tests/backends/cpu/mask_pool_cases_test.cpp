// Cases for the ops the transformer and CNN graphs need on an accelerator: comparisons, logical ops, IsNaN,
// Where, Split, MaxPool/AveragePool, BatchNormalization, Range, ConstantOfShape, Shape and Size, with odd
// sizes, broadcasting, float16 and integer inputs. Each checks the CPU's answer against values computed here,
// and the harness runs it on every compiled-in accelerator present (CUDA with a GPU) against the CPU.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor random_floats(const Shape& s, unsigned seed, float lo = -2.f, float hi = 2.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor t = Tensor::empty(DType::float32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

Tensor to_half(const Tensor& f) {
  Tensor h = Tensor::empty(DType::float16, f.shape());
  for (int64_t i = 0; i < f.numel(); ++i) h.data<float16>()[i] = float16(f.data<float>()[i]);
  return h;
}

float at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::float16 ? static_cast<float>(t.data<float16>()[i]) : t.data<float>()[i];
}

// Flat index of element `i` of a tensor of shape `out`, read from a tensor of shape `in` broadcast over it.
int64_t broadcast_index(const Shape& out, const Shape& in, int64_t i) {
  int64_t idx = 0, stride = 1;
  for (size_t d = out.rank(); d-- > 0;) {
    const int64_t c = i % out[d];
    i /= out[d];
    const size_t shift = out.rank() - in.rank();
    if (d >= shift) {
      const int64_t n = in[d - shift];
      if (n != 1) idx += c * stride;
      stride *= n;
    }
  }
  return idx;
}

Tensor run1(const OpCase& c, size_t output = 0) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << c.op << ": " << y.status().to_string();
  if (!y.ok() || y->size() <= output) return Tensor();
  return (*y)[output].tensor();
}

TEST(MaskCases, ComparisonsBroadcastOddShapes) {
  const Shape sa{3, 1, 5}, sb{7, 1}, out{3, 7, 5};
  Tensor a = random_floats(sa, 1), b = random_floats(sb, 2);
  b.data<float>()[3] = a.data<float>()[2];  // one equal pair
  struct Cmp {
    const char* op;
    int opset;
    bool (*f)(float, float);
  };
  const Cmp cmps[] = {{"Equal", 13, [](float x, float y) { return x == y; }},
                      {"Less", 13, [](float x, float y) { return x < y; }},
                      {"Greater", 13, [](float x, float y) { return x > y; }},
                      {"LessOrEqual", 16, [](float x, float y) { return x <= y; }},
                      {"GreaterOrEqual", 16, [](float x, float y) { return x >= y; }}};
  for (const bool half : {false, true}) {
    const Tensor ta = half ? to_half(a) : a, tb = half ? to_half(b) : b;
    for (const Cmp& c : cmps) {
      const Tensor y = run1(OpCase(c.op, c.opset).input("a", ta).input("b", tb));
      ASSERT_EQ(y.description(), "bool[3,7,5]") << c.op;
      int64_t trues = 0;
      for (int64_t i = 0; i < out.numel(); ++i) {
        const bool want = c.f(at(ta, broadcast_index(out, sa, i)), at(tb, broadcast_index(out, sb, i)));
        EXPECT_EQ(y.data<bool>()[i], want) << c.op << (half ? " float16" : "") << " at " << i;
        trues += want;
      }
      EXPECT_GT(trues, 0) << c.op;
      EXPECT_LT(trues, out.numel()) << c.op;
    }
  }
  // Integer comparisons (the shape arithmetic's) stay exact.
  const Tensor ia = Tensor::from_vector<int64_t>({3}, {1, -1, 128}), ib = Tensor::from_vector<int64_t>({1}, {-1});
  const Tensor eq = run1(OpCase("Equal", 13).input("a", ia).input("b", ib));
  ASSERT_EQ(eq.numel(), 3);
  EXPECT_FALSE(eq.data<bool>()[0]);
  EXPECT_TRUE(eq.data<bool>()[1]);
  EXPECT_FALSE(eq.data<bool>()[2]);
}

TEST(MaskCases, LogicalOpsBroadcastAndNot) {
  const Shape sp{2, 1, 3}, sq{4, 1}, out{2, 4, 3};
  Tensor p = Tensor::empty(DType::boolean, sp), q = Tensor::empty(DType::boolean, sq);
  for (int64_t i = 0; i < p.numel(); ++i) p.data<bool>()[i] = i % 2 == 0;
  for (int64_t i = 0; i < q.numel(); ++i) q.data<bool>()[i] = i % 3 != 1;
  struct Logic {
    const char* op;
    bool (*f)(bool, bool);
  };
  const Logic ops[] = {{"And", [](bool x, bool y) { return x && y; }},
                       {"Or", [](bool x, bool y) { return x || y; }},
                       {"Xor", [](bool x, bool y) { return x != y; }}};
  for (const Logic& l : ops) {
    const Tensor y = run1(OpCase(l.op, 7).input("p", p).input("q", q));
    ASSERT_EQ(y.description(), "bool[2,4,3]") << l.op;
    for (int64_t i = 0; i < out.numel(); ++i) {
      EXPECT_EQ(y.data<bool>()[i], l.f(p.data<bool>()[broadcast_index(out, sp, i)], q.data<bool>()[broadcast_index(out, sq, i)]))
          << l.op << " at " << i;
    }
  }
  const Tensor n = run1(OpCase("Not", 1).input("p", p));
  for (int64_t i = 0; i < p.numel(); ++i) EXPECT_EQ(n.data<bool>()[i], !p.data<bool>()[i]);
}

TEST(MaskCases, IsNaNAndWhereMaskedSoftmaxPattern) {
  // The exported attention pattern: p = Where(IsNaN(s), 0, s) with s [2,3,5,5] and a broadcast mask.
  Tensor s = random_floats({2, 3, 5, 5}, 3);
  for (int64_t i = 0; i < s.numel(); i += 7) s.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  for (const bool half : {false, true}) {
    const Tensor x = half ? to_half(s) : s;
    const Tensor nan = run1(OpCase("IsNaN", 13).input("x", x));
    ASSERT_EQ(nan.description(), "bool[2,3,5,5]");
    for (int64_t i = 0; i < s.numel(); ++i) EXPECT_EQ(nan.data<bool>()[i], i % 7 == 0) << "at " << i;
    const Tensor zero = half ? to_half(Tensor::from_vector<float>({}, {0.f})) : Tensor::from_vector<float>({}, {0.f});
    const Tensor p = run1(OpCase("Where", 16).input("c", nan).input("z", zero).input("x", x));
    ASSERT_EQ(p.description(), std::string(half ? "float16" : "float32") + "[2,3,5,5]");
    for (int64_t i = 0; i < s.numel(); ++i) EXPECT_EQ(at(p, i), i % 7 == 0 ? 0.f : at(x, i)) << "at " << i;
  }
  // A [1,1,5,5] causal mask against scores [2,3,5,5] and a scalar fill.
  Tensor mask = Tensor::empty(DType::boolean, {1, 1, 5, 5});
  for (int64_t i = 0; i < 25; ++i) mask.data<bool>()[i] = i % 5 <= i / 5;
  const Tensor fill = Tensor::from_vector<float>({}, {-1e4f});
  s = random_floats({2, 3, 5, 5}, 4);
  const Tensor m = run1(OpCase("Where", 16).input("c", mask).input("s", s).input("f", fill));
  ASSERT_EQ(m.description(), "float32[2,3,5,5]");
  for (int64_t i = 0; i < s.numel(); ++i) {
    EXPECT_EQ(m.data<float>()[i], mask.data<bool>()[i % 25] ? s.data<float>()[i] : -1e4f) << "at " << i;
  }
}

TEST(MaskCases, SplitByInputAttributeAndEqualParts) {
  const Tensor x = random_floats({3, 7, 5}, 5);
  auto check = [&](const std::vector<Value>& outs, const std::vector<int64_t>& sizes) {
    ASSERT_EQ(outs.size(), sizes.size());
    int64_t begin = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      const Tensor& y = outs[k].tensor();
      ASSERT_EQ(y.shape(), (Shape{3, sizes[k], 5}));
      for (int64_t i = 0; i < 3; ++i) {
        for (int64_t j = 0; j < sizes[k]; ++j) {
          for (int64_t l = 0; l < 5; ++l) {
            EXPECT_EQ(y.data<float>()[(i * sizes[k] + j) * 5 + l], x.data<float>()[(i * 7 + begin + j) * 5 + l]);
          }
        }
      }
      begin += sizes[k];
    }
  };
  auto by_input = run_op(OpCase("Split", 13).input("x", x).input("split", Tensor::from_vector<int64_t>({3}, {2, 0, 5})).attr("axis", int64_t{-2}).outputs(3));
  ASSERT_TRUE(by_input.ok()) << by_input.status().to_string();
  check(*by_input, {2, 0, 5});
  auto by_attr = run_op(OpCase("Split", 11).input("x", x).attr("axis", int64_t{1}).attr("split", std::vector<int64_t>{4, 3}).outputs(2));
  ASSERT_TRUE(by_attr.ok()) << by_attr.status().to_string();
  check(*by_attr, {4, 3});
  const Tensor y6 = random_floats({2, 6}, 6);
  auto equal = run_op(OpCase("Split", 13).input("x", to_half(y6)).attr("axis", int64_t{1}).outputs(3));
  ASSERT_TRUE(equal.ok()) << equal.status().to_string();
  ASSERT_EQ(equal->size(), 3u);
  EXPECT_EQ((*equal)[2].tensor().description(), "float16[2,2]");
  EXPECT_EQ(static_cast<float>((*equal)[2].tensor().data<float16>()[3]), static_cast<float>(float16(y6.data<float>()[11])));
  auto bad = run_op(OpCase("Split", 13).input("x", x).input("split", Tensor::from_vector<int64_t>({2}, {3, 3})).attr("axis", int64_t{1}).outputs(2));
  EXPECT_FALSE(bad.ok());
}

// A plain 2-D pooling over one [H, W] plane, as the ONNX spec defines it, for the checks below.
float pool_at(const float* plane, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t k, int64_t s, int64_t d,
              int64_t pad, bool max, bool include_pad) {
  float acc = max ? -INFINITY : 0.f;
  int64_t count = 0, padded = 0;
  for (int64_t kh = 0; kh < k; ++kh) {
    for (int64_t kw = 0; kw < k; ++kw) {
      const int64_t ih = oh * s - pad + kh * d, iw = ow * s - pad + kw * d;
      padded += ih >= -pad && ih < h + pad && iw >= -pad && iw < w + pad;
      if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
      const float v = plane[ih * w + iw];
      acc = max ? std::max(acc, v) : acc + v;
      ++count;
    }
  }
  if (max) return acc;
  return acc / static_cast<float>(include_pad ? padded : count);
}

TEST(PoolCases, MaxAndAveragePool2dPadsStridesDilationsCeil) {
  const int64_t H = 9, W = 7;
  const Tensor x = random_floats({2, 3, H, W}, 7);
  struct Geo {
    int64_t k, s, d, pad;
    bool ceil;
  };
  for (const Geo g : {Geo{3, 2, 1, 1, false}, Geo{2, 2, 1, 0, true}, Geo{3, 1, 2, 2, false}, Geo{1, 3, 1, 0, false}}) {
    for (const bool max : {true, false}) {
      for (const bool include_pad : {false, true}) {
        if (max && include_pad) continue;
        if (!max && g.d != 1) continue;  // AveragePool takes dilations from opset 19
        OpCase c(max ? "MaxPool" : "AveragePool", max ? 12 : 11);
        c.input("x", x).attr("kernel_shape", std::vector<int64_t>{g.k, g.k}).attr("strides", std::vector<int64_t>{g.s, g.s});
        c.attr("pads", std::vector<int64_t>{g.pad, g.pad, g.pad, g.pad}).attr("ceil_mode", int64_t{g.ceil});
        if (max) c.attr("dilations", std::vector<int64_t>{g.d, g.d});
        if (!max) c.attr("count_include_pad", int64_t{include_pad});
        const Tensor y = run1(c);
        const int64_t span = g.d * (g.k - 1) + 1;
        auto outs = [&](int64_t n) {
          const double q = static_cast<double>(n + 2 * g.pad - span) / static_cast<double>(g.s);
          return static_cast<int64_t>(g.ceil ? std::ceil(q) : std::floor(q)) + 1;
        };
        const int64_t oh = outs(H), ow = outs(W);
        ASSERT_EQ(y.shape(), (Shape{2, 3, oh, ow})) << c.op << " k" << g.k << " s" << g.s;
        for (int64_t p = 0; p < 6; ++p) {
          for (int64_t i = 0; i < oh; ++i) {
            for (int64_t j = 0; j < ow; ++j) {
              const float want = pool_at(x.data<float>() + p * H * W, H, W, i, j, g.k, g.s, g.d, g.pad, max, include_pad);
              EXPECT_NEAR(y.data<float>()[(p * oh + i) * ow + j], want, 1e-5f) << c.op << " at " << p << "," << i << "," << j;
            }
          }
        }
      }
    }
  }
}

TEST(PoolCases, SameUpperAndFloat16) {
  const Tensor x = random_floats({1, 2, 6, 5}, 8);
  OpCase c("MaxPool", 12);
  c.input("x", to_half(x)).attr("kernel_shape", std::vector<int64_t>{3, 3}).attr("strides", std::vector<int64_t>{2, 2});
  c.attr("auto_pad", std::string("SAME_UPPER"));
  const Tensor y = run1(c);
  ASSERT_EQ(y.description(), "float16[1,2,3,3]");
  // SAME_UPPER, k 3, s 2: 3 outputs per dim. Height 6 pads 0 before and 1 after, width 5 pads 1 on each
  // side: output (0, 0) covers rows 0..2 and columns 0..1.
  float want = -INFINITY;
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 2; ++j) want = std::max(want, static_cast<float>(float16(x.data<float>()[i * 5 + j])));
  }
  EXPECT_EQ(static_cast<float>(y.data<float16>()[0]), want);
}

TEST(NormCases, BatchNormOddShapeAndFloat16) {
  const Tensor x = random_floats({2, 3, 5, 7}, 9);
  const Tensor scale = random_floats({3}, 10), bias = random_floats({3}, 11), mean = random_floats({3}, 12);
  const Tensor var = random_floats({3}, 13, 0.1f, 2.f);
  for (const bool half : {false, true}) {
    auto h = [&](const Tensor& t) { return half ? to_half(t) : t; };
    const Tensor y = run1(OpCase("BatchNormalization", 15).input("x", h(x)).input("s", h(scale)).input("b", h(bias))
                              .input("m", h(mean)).input("v", h(var)).attr("epsilon", 1e-3f));
    ASSERT_EQ(y.shape(), x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t ch = (i / 35) % 3;
      const float want = (at(h(x), i) - at(h(mean), ch)) / std::sqrt(at(h(var), ch) + 1e-3f) * at(h(scale), ch) + at(h(bias), ch);
      EXPECT_NEAR(at(y, i), want, half ? 2e-2f : 1e-5f) << "at " << i;
    }
  }
}

TEST(FillCases, RangeConstantOfShapeShapeAndSize) {
  const Tensor r = run1(OpCase("Range", 11).input("s", Tensor::from_vector<float>({}, {1.5f}))
                            .input("l", Tensor::from_vector<float>({}, {-2.f})).input("d", Tensor::from_vector<float>({}, {-0.75f})));
  ASSERT_EQ(r.description(), "float32[5]");
  for (int64_t i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(r.data<float>()[i], 1.5f - 0.75f * static_cast<float>(i));
  const Tensor ri = run1(OpCase("Range", 11).input("s", Tensor::from_vector<int64_t>({}, {0}))
                             .input("l", Tensor::from_vector<int64_t>({}, {7})).input("d", Tensor::from_vector<int64_t>({}, {3})));
  ASSERT_EQ(ri.description(), "int64[3]");
  EXPECT_EQ(ri.data<int64_t>()[2], 6);
  const Tensor c = run1(OpCase("ConstantOfShape", 9).input("shape", Tensor::from_vector<int64_t>({3}, {2, 3, 5}))
                            .attr("value", Tensor::from_vector<float>({1}, {0.25f})));
  ASSERT_EQ(c.description(), "float32[2,3,5]");
  for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(c.data<float>()[i], 0.25f);
  const Tensor ci = run1(OpCase("ConstantOfShape", 9).input("shape", Tensor::from_vector<int64_t>({1}, {4}))
                             .attr("value", Tensor::from_vector<int64_t>({1}, {-1})));
  ASSERT_EQ(ci.description(), "int64[4]");
  EXPECT_EQ(ci.data<int64_t>()[3], -1);
  const Tensor x = random_floats({3, 1, 4, 7}, 14);
  const Tensor s = run1(OpCase("Shape", 15).input("x", x).attr("start", int64_t{1}).attr("end", int64_t{-1}));
  ASSERT_EQ(s.description(), "int64[2]");
  EXPECT_EQ(s.data<int64_t>()[0], 1);
  EXPECT_EQ(s.data<int64_t>()[1], 4);
  const Tensor n = run1(OpCase("Size", 13).input("x", to_half(x)));
  ASSERT_EQ(n.description(), "int64[]");
  EXPECT_EQ(n.data<int64_t>()[0], 84);
}

}  // namespace
}  // namespace orchard::testing
