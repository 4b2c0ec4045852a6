// The vectorised float32 variants (src/backends/cpu/opt/*_vec.cpp) on the shapes they special-case and the
// ones they hand back to the reference: odd lengths (tails of every vector width), one element, empty
// tensors, every broadcast pattern, sizes large enough to split over threads, special values. run_op holds
// each result to the reference kernels; these tests also check a few values outright.
#include <cmath>
#include <limits>
#include <random>

#include "backends/cpu/cpu_backend.hpp"
#include "backends/op_harness.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/executor.hpp"

namespace orchard::testing {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Tensor random_tensor(const Shape& shape, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (float& f : v) f = dist(rng);
  return Tensor::from_vector<float>(shape, v);
}

// Divisors away from 0: magnitudes in [0.5, 2], random signs.
Tensor divisor_tensor(const Shape& shape, uint32_t seed) {
  Tensor t = random_tensor(shape, 0.5f, 2.0f, seed);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); i += 3) p[i] = -p[i];
  return t;
}

Tensor run1(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << c.op << ": " << y.status().to_string();
  if (!y.ok()) return Tensor();
  return (*y)[0].tensor();
}

TEST(VecKernels, BinaryBroadcastPatterns) {
  const std::pair<Shape, Shape> shapes[] = {
      {Shape{1}, Shape{1}},
      {Shape{17}, Shape{17}},  // same shape, odd length
      {Shape{3, 5, 7}, Shape{3, 5, 7}},
      {Shape{3, 5, 7}, Shape{}},  // scalar
      {Shape{}, Shape{3, 5, 7}},
      {Shape{2, 37, 33}, Shape{33}},  // trailing vector [*, N] + [N]
      {Shape{33}, Shape{2, 37, 33}},
      {Shape{2, 13, 9, 7}, Shape{1, 13, 1, 1}},  // channel broadcast NCHW + [1, C, 1, 1]
      {Shape{1, 13, 1, 1}, Shape{2, 13, 9, 7}},
      {Shape{2, 1, 5}, Shape{1, 3, 1}},     // both broadcast (outer product)
      {Shape{4, 3, 1, 6}, Shape{3, 5, 1}},  // general
      {Shape{2, 3, 4, 5}, Shape{2, 1, 4, 1}},
      {Shape{2, 1, 4, 1}, Shape{2, 3, 4, 5}},
      {Shape{2, 0, 3}, Shape{3}},       // empty
      {Shape{8, 64, 129}, Shape{129}},  // large enough to split over threads
      {Shape{3, 40000}, Shape{3, 1}},
      {Shape{70001}, Shape{70001}},  // one run split over threads
      {Shape{}, Shape{1, 70001}},
  };
  uint32_t seed = 1;
  for (const auto& [sa, sb] : shapes) {
    for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
      const Tensor a = random_tensor(sa, -3, 3, seed++);
      const Tensor b = std::string(op) == "Div" ? divisor_tensor(sb, seed++) : random_tensor(sb, -3, 3, seed++);
      const Tensor y = run1(OpCase(op, 14).input("a", a).input("b", b));
      if (y.numel() == 0) continue;
      // One value checked outright: the last element, whose operands are the last of each input.
      const float x0 = a.data<float>()[a.numel() - 1], x1 = b.data<float>()[b.numel() - 1];
      const float want = op[0] == 'A' ? x0 + x1 : op[0] == 'S' ? x0 - x1 : op[0] == 'M' ? x0 * x1 : x0 / x1;
      EXPECT_NEAR(y.data<float>()[y.numel() - 1], want, 1e-5f * std::max(1.0f, std::fabs(want)))
          << op << " " << sa.to_string() << " " << sb.to_string();
    }
  }
}

TEST(VecKernels, BinaryOtherTypesAndErrorsGoToTheReference) {
  const Tensor d = Tensor::from_vector<double>({3}, {1, 2, 3});
  expect_tensor_near(run1(OpCase("Add", 14).input("a", d).input("b", d)), Tensor::from_vector<double>({3}, {2, 4, 6}));
  const Tensor i = Tensor::from_vector<int32_t>({2}, {7, -7});
  expect_tensor_near(run1(OpCase("Div", 14).input("a", i).input("b", Tensor::from_vector<int32_t>({1}, {2}))),
                     Tensor::from_vector<int32_t>({2}, {3, -3}));
  auto bad = run_op(OpCase("Mul", 14)
                        .input("a", Tensor::from_vector<float>({2}, {1, 2}))
                        .input("b", Tensor::from_vector<float>({3}, {1, 2, 3})));
  ASSERT_FALSE(bad.ok());
  auto mixed = run_op(OpCase("Add", 14).input("a", Tensor::from_vector<float>({1}, {1})).input("b", d));
  ASSERT_FALSE(mixed.ok());
  // Opset 6 broadcast by attribute stays with the reference kernel.
  expect_tensor_near(run1(OpCase("Add", 6)
                              .input("a", Tensor::from_vector<float>({2, 3}, {0, 0, 0, 1, 1, 1}))
                              .input("b", Tensor::from_vector<float>({2}, {10, 20}))
                              .attr("broadcast", int64_t{1})
                              .attr("axis", int64_t{0})),
                     Tensor::from_vector<float>({2, 3}, {10, 10, 10, 21, 21, 21}));
}

// Values that cover every activation's branches, the tails of every vector width and special values.
Tensor unary_input(int64_t n, float lo, float hi, uint32_t seed) {
  Tensor t = random_tensor(Shape{n}, lo, hi, seed);
  float* p = t.data<float>();
  const float special[] = {kInf, -kInf, kNaN, 0.0f, -0.0f, 1e-30f, -1e-30f};
  for (int64_t i = 0; i < n && i < 7; ++i) p[i] = special[i];
  return t;
}

TEST(VecKernels, UnaryOpsOddLengths) {
  struct U {
    const char* op;
    int opset;
    float lo, hi;
  };
  const U ops[] = {{"Relu", 14, -5, 5},     {"Neg", 13, -5, 5},        {"Abs", 13, -5, 5},
                   {"Sqrt", 13, 0, 100},    {"Reciprocal", 13, -5, 5}, {"Exp", 13, -100, 100},
                   {"Log", 13, 0, 1000},    {"Sigmoid", 13, -30, 30},  {"Tanh", 13, -12, 12},
                   {"Erf", 13, -5, 5},      {"HardSwish", 14, -8, 8},  {"HardSigmoid", 6, -8, 8},
                   {"LeakyRelu", 16, -5, 5}};
  uint32_t seed = 100;
  for (const U& u : ops) {
    for (int64_t n : {0, 1, 3, 15, 17, 31, 33, 1000, 70001}) {
      const Tensor x = unary_input(n, u.lo, u.hi, seed++);
      const Tensor y = run1(OpCase(u.op, u.opset).input("x", x));
      ASSERT_EQ(y.numel(), n) << u.op;
    }
  }
  // Parameters reach the variants.
  const Tensor x = Tensor::from_vector<float>({3}, {-2, 0.5f, 4});
  expect_tensor_near(run1(OpCase("LeakyRelu", 16).input("x", x).attr("alpha", 0.5f)),
                     Tensor::from_vector<float>({3}, {-1, 0.5f, 4}));
  expect_tensor_near(run1(OpCase("HardSigmoid", 6).input("x", x).attr("alpha", 0.25f).attr("beta", 0.25f)),
                     Tensor::from_vector<float>({3}, {0, 0.375f, 1}));
  // A float64 input runs on the reference kernel.
  expect_tensor_near(run1(OpCase("Exp", 13).input("x", Tensor::from_vector<double>({1}, {1}))),
                     Tensor::from_vector<double>({1}, {2.718281828459045}), 1e-15);
}

TEST(VecKernels, ClipBoundsFromAttributesAndInputs) {
  const Tensor x = unary_input(37, -10, 10, 7);
  const Tensor lo = Tensor::from_vector<float>({}, {-2});
  const Tensor hi = Tensor::from_vector<float>({}, {3});
  for (const Tensor& y : {run1(OpCase("Clip", 6).input("x", x).attr("min", -2.0f).attr("max", 3.0f)),
                          run1(OpCase("Clip", 13).input("x", x).input("lo", lo).input("hi", hi))}) {
    for (int64_t i = 0; i < y.numel(); ++i) {
      const float v = y.data<float>()[i];
      if (!std::isnan(v)) {
        EXPECT_TRUE(v >= -2 && v <= 3) << v;
      }
    }
  }
  run1(OpCase("Clip", 13).input("x", x).input("lo", lo));                  // min only
  run1(OpCase("Clip", 13).input("x", x).omitted_input().input("hi", hi));  // max only
  run1(OpCase("Clip", 13).input("x", x).input("lo", hi).input("hi", lo));  // min > max: every element max
  auto bad = run_op(OpCase("Clip", 13).input("x", x).input("lo", Tensor::from_vector<float>({2}, {0, 1})));
  EXPECT_FALSE(bad.ok());
}

TEST(VecKernels, SoftmaxAndLogSoftmaxRows) {
  uint32_t seed = 300;
  for (const Shape& s :
       {Shape{1, 1}, Shape{3, 7}, Shape{2, 5, 17}, Shape{4, 33}, Shape{12, 128, 128}, Shape{2, 0, 5}, Shape{5}}) {
    for (const char* op : {"Softmax", "LogSoftmax"}) {
      const Tensor y = run1(OpCase(op, 13).input("x", random_tensor(s, -20, 20, seed++)));
      if (std::string(op) == "Softmax" && y.numel() > 0) {
        const int64_t n = s[s.rank() - 1];
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += y.data<float>()[i];
        EXPECT_NEAR(sum, 1.0, 1e-5) << s.to_string();
      }
    }
  }
  // Opset 11 coerces to 2-D at `axis`; axis 0 of opset 13 is not the last (the reference runs it).
  run1(OpCase("Softmax", 11).input("x", random_tensor(Shape{2, 3, 5}, -5, 5, 1)).attr("axis", int64_t{1}));
  run1(OpCase("Softmax", 11).input("x", random_tensor(Shape{2, 3}, -5, 5, 2)).attr("axis", int64_t{2}));
  run1(OpCase("Softmax", 13).input("x", random_tensor(Shape{4, 3}, -5, 5, 3)).attr("axis", int64_t{0}));
  // -inf rows: all -inf gives 0s; one +inf gives NaNs like the reference.
  run1(OpCase("Softmax", 13).input("x", Tensor::from_vector<float>({2, 3}, {-kInf, -kInf, -kInf, 1, -kInf, 2})));
  run1(OpCase("LogSoftmax", 13).input("x", Tensor::from_vector<float>({1, 3}, {kInf, 1, 2})));
}

// Scores spread over hundreds (masked or long attention rows): held to the reference, and no value in the
// subnormal range (the optimized rows give those as 0: producing them is ~10x slower per element).
TEST(VecKernels, SoftmaxWideScoresGiveNoSubnormals) {
  uint32_t seed = 400;
  for (const Shape& s : {Shape{3, 37}, Shape{2, 130}, Shape{1, 197}}) {
    const Tensor y = run1(OpCase("Softmax", 13).input("x", random_tensor(s, -300, 0, seed++)));
    int64_t zeros = 0;
    for (int64_t i = 0; i < y.numel(); ++i) {
      const float v = y.data<float>()[i];
      ASSERT_NE(std::fpclassify(v), FP_SUBNORMAL) << s.to_string() << " at " << i;
      zeros += v == 0.0f;
    }
    EXPECT_GT(zeros, 0) << s.to_string();  // the case reaches the flushed range
    run1(OpCase("LogSoftmax", 13).input("x", random_tensor(s, -300, 0, seed++)));
  }
}

TEST(VecKernels, LayerNormalizationRows) {
  uint32_t seed = 400;
  struct L {
    Shape x;
    int64_t axis;
  };
  for (const L& l : {L{Shape{4, 768}, -1}, L{Shape{3, 5, 17}, -1}, L{Shape{3, 5, 17}, 1}, L{Shape{1, 1}, -1},
                     L{Shape{2, 33}, 1}, L{Shape{0, 8}, -1}, L{Shape{64, 768}, -1}}) {
    const Shape norm(l.x.begin() + (l.axis < 0 ? l.axis + static_cast<int64_t>(l.x.rank()) : l.axis), l.x.end());
    const Tensor x = random_tensor(l.x, -4, 6, seed++);
    const Tensor scale = random_tensor(norm, 0.5f, 1.5f, seed++);
    const Tensor bias = random_tensor(norm, -1, 1, seed++);
    run1(OpCase("LayerNormalization", 17).input("x", x).input("s", scale).input("b", bias).attr("axis", l.axis));
    run1(OpCase("LayerNormalization", 17).input("x", x).input("s", scale).attr("axis", l.axis).attr("epsilon", 1e-3f));
  }
  // A scale broadcast over the normalised shape, and the statistics outputs, take the reference path.
  const Tensor x = random_tensor(Shape{2, 3, 4}, -1, 1, 9);
  run1(OpCase("LayerNormalization", 17)
           .input("x", x)
           .input("s", random_tensor(Shape{4}, 0, 1, 10))
           .attr("axis", int64_t{1}));
  auto three =
      run_op(OpCase("LayerNormalization", 17).input("x", x).input("s", random_tensor(Shape{4}, 0, 1, 11)).outputs(3));
  ASSERT_TRUE(three.ok()) << three.status().to_string();
  // Known values: rows (1, 2, 3) and (-1, 0, 1) both normalise to (-1.2247, 0, 1.2247).
  const Tensor k = Tensor::from_vector<float>({2, 3}, {1, 2, 3, -1, 0, 1});
  expect_tensor_near(run1(OpCase("LayerNormalization", 17)
                              .input("x", k)
                              .input("s", Tensor::from_vector<float>({3}, {1, 1, 1}))
                              .attr("epsilon", 0.0f)),
                     Tensor::from_vector<float>({2, 3}, {-1.2247449f, 0, 1.2247449f, -1.2247449f, 0, 1.2247449f}), 1e-5,
                     1e-6);
}

TEST(VecKernels, BatchNormalizationInference) {
  uint32_t seed = 500;
  for (const Shape& s : {Shape{1, 3, 5, 7}, Shape{2, 13, 1, 1}, Shape{2, 4}, Shape{1, 32, 56, 56}, Shape{0, 3, 2, 2}}) {
    const int64_t c = s[1];
    seed += 5;
    run1(OpCase("BatchNormalization", 15)
             .input("x", random_tensor(s, -3, 3, seed))
             .input("scale", random_tensor(Shape{c}, 0.5f, 2, seed + 1))
             .input("b", random_tensor(Shape{c}, -1, 1, seed + 2))
             .input("mean", random_tensor(Shape{c}, -1, 1, seed + 3))
             .input("var", random_tensor(Shape{c}, 0.1f, 2, seed + 4)));
  }
  // training_mode = 1 runs the reference kernel.
  auto t = run_op(OpCase("BatchNormalization", 15)
                      .input("x", random_tensor(Shape{2, 3, 4}, -3, 3, 1))
                      .input("scale", random_tensor(Shape{3}, 0.5f, 2, 2))
                      .input("b", random_tensor(Shape{3}, -1, 1, 3))
                      .input("mean", random_tensor(Shape{3}, -1, 1, 4))
                      .input("var", random_tensor(Shape{3}, 0.1f, 2, 5))
                      .attr("training_mode", int64_t{1})
                      .outputs(3));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
}

TEST(VecKernels, ReduceOverTrailingAxesAndGlobalAveragePool) {
  uint32_t seed = 600;
  for (const Shape& s : {Shape{3, 7}, Shape{2, 5, 17}, Shape{128, 768}, Shape{1, 1}, Shape{4, 0}}) {
    for (int64_t keep : {0, 1}) {
      const Tensor x = random_tensor(s, -2, 2, seed++);
      run1(OpCase("ReduceMean", 17).input("x", x).attr("axes", std::vector<int64_t>{-1}).attr("keepdims", keep));
      run1(OpCase("ReduceSum", 11).input("x", x).attr("axes", std::vector<int64_t>{-1}).attr("keepdims", keep));
      run1(OpCase("ReduceSum", 13)
               .input("x", x)
               .input("axes", Tensor::from_vector<int64_t>({1}, {-1}))
               .attr("keepdims", keep));
    }
  }
  const Tensor x4 = random_tensor(Shape{2, 3, 5, 7}, -2, 2, 1);
  const Tensor m = run1(OpCase("ReduceMean", 17).input("x", x4).attr("axes", std::vector<int64_t>{2, 3}));
  double want = 0;
  for (int64_t i = 0; i < 35; ++i) want += x4.data<float>()[i];
  EXPECT_NEAR(m.data<float>()[0], want / 35, 1e-5);
  run1(OpCase("ReduceMean", 17).input("x", x4).attr("axes", std::vector<int64_t>{1}));  // not trailing
  // Adjacent axes before the last: a channels-last GlobalAveragePool (H and W of NHWC) and others.
  // Rows wider than the kernel's 64-column blocks, one image split over the blocks on two threads.
  for (const Shape& s : {Shape{2, 7, 5, 13}, Shape{1, 56, 56, 24}, Shape{1, 7, 7, 1}, Shape{3, 4, 5},
                         Shape{2, 9, 11, 150}, Shape{1, 28, 28, 200}}) {
    for (int64_t keep : {0, 1}) {
      const Tensor x = random_tensor(s, -2, 2, seed++);
      run1(OpCase("ReduceMean", 13)
               .input("x", x)
               .attr("axes", std::vector<int64_t>{1, 2})
               .attr("keepdims", keep)
               .with_threads(2));
      run1(OpCase("ReduceSum", 11).input("x", x).attr("axes", std::vector<int64_t>{0, 1}).attr("keepdims", keep));
      run1(OpCase("ReduceMean", 13).input("x", x).attr("axes", std::vector<int64_t>{1}).attr("keepdims", keep));
    }
  }
  run1(OpCase("ReduceSum", 13).input("x", x4));                                         // all axes
  for (const Shape& s :
       {Shape{1, 13, 7, 7}, Shape{2, 3, 1, 1}, Shape{1, 1280, 7, 7}, Shape{2, 5, 9}, Shape{1, 64, 112, 112}}) {
    const Tensor x = random_tensor(s, -2, 2, seed++);
    const Tensor y = run1(OpCase("GlobalAveragePool", 1).input("x", x));
    double sum = 0;
    const int64_t plane = s.numel() / (s[0] * s[1]);
    for (int64_t i = 0; i < plane; ++i) sum += x.data<float>()[i];
    EXPECT_NEAR(y.data<float>()[0], sum / static_cast<double>(plane), 1e-5) << s.to_string();
  }
}

TEST(VecKernels, MaxPool2D) {
  struct P {
    Shape x;
    std::vector<int64_t> kernel, strides, pads;
    int64_t ceil_mode;
    const char* auto_pad;
  };
  const P cases[] = {
      {Shape{1, 64, 112, 112}, {3, 3}, {2, 2}, {1, 1, 1, 1}, 0, "NOTSET"},  // resnet50's stem
      {Shape{2, 3, 7, 9}, {2, 2}, {2, 2}, {0, 0, 0, 0}, 0, "NOTSET"},
      {Shape{1, 16, 8, 8}, {2, 2}, {2, 2}, {0, 0, 0, 0}, 0, "NOTSET"},  // the digits model's (NaN first at 390)
      {Shape{2, 3, 7, 9}, {2, 2}, {2, 2}, {0, 0, 0, 0}, 1, "NOTSET"},  // ceil_mode: partial windows
      {Shape{1, 5, 8, 8}, {3, 3}, {1, 1}, {1, 1, 1, 1}, 0, "NOTSET"},
      {Shape{1, 2, 6, 5}, {3, 2}, {2, 1}, {0, 2, 1, 0}, 0, "NOTSET"},  // asymmetric pads
      {Shape{1, 2, 7, 7}, {3, 3}, {2, 2}, {0, 0, 0, 0}, 0, "SAME_UPPER"},
      {Shape{1, 2, 7, 7}, {4, 4}, {3, 3}, {0, 0, 0, 0}, 0, "SAME_LOWER"},
      {Shape{1, 1, 1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0, "NOTSET"},
      {Shape{1, 3, 11, 37}, {3, 3}, {1, 1}, {1, 1, 1, 1}, 0, "NOTSET"},  // stride 1, rows past a vector
      {Shape{1, 3, 12, 38}, {5, 4}, {2, 2}, {2, 1, 2, 3}, 1, "NOTSET"},  // stride 2, even kernel, wide pads
      {Shape{1, 2, 10, 23}, {3, 3}, {3, 3}, {1, 1, 1, 1}, 1, "NOTSET"},  // stride 3
  };
  uint32_t seed = 800;
  for (const P& c : cases) {
    Tensor x = random_tensor(c.x, -5, 5, seed++);
    if (x.numel() > 20) x.data<float>()[17] = kNaN;  // NaNs: kept where first in a window, else skipped
    if (x.numel() > 400) x.data<float>()[c.x[3] * 3 + 4] = x.data<float>()[390] = kNaN;
    OpCase oc("MaxPool", 12);
    oc.input("x", x).attr("kernel_shape", c.kernel).attr("strides", c.strides).attr("ceil_mode", c.ceil_mode);
    if (std::string(c.auto_pad) == "NOTSET")
      oc.attr("pads", c.pads);
    else
      oc.attr("auto_pad", std::string(c.auto_pad));
    const Tensor y = run1(oc);
    ASSERT_EQ(y.rank(), 4u);
  }
  const Tensor k = Tensor::from_vector<float>({1, 1, 2, 3}, {1, 5, 2, 4, 3, 6});
  expect_tensor_near(run1(OpCase("MaxPool", 12).input("x", k).attr("kernel_shape", std::vector<int64_t>{2, 2})),
                     Tensor::from_vector<float>({1, 1, 1, 2}, {5, 6}));
  // Dilations, the Indices output and other ranks run the reference kernel.
  run1(OpCase("MaxPool", 12)
           .input("x", random_tensor(Shape{1, 2, 9, 9}, -1, 1, 1))
           .attr("kernel_shape", std::vector<int64_t>{2, 2})
           .attr("dilations", std::vector<int64_t>{2, 2}));
  auto two = run_op(OpCase("MaxPool", 12)
                        .input("x", random_tensor(Shape{1, 2, 6, 6}, -1, 1, 2))
                        .attr("kernel_shape", std::vector<int64_t>{2, 2})
                        .outputs(2));
  ASSERT_TRUE(two.ok()) << two.status().to_string();
  run1(OpCase("MaxPool", 12)
           .input("x", random_tensor(Shape{1, 2, 9}, -1, 1, 3))
           .attr("kernel_shape", std::vector<int64_t>{3}));
  EXPECT_FALSE(run_op(OpCase("MaxPool", 12).input("x", k).attr("kernel_shape", std::vector<int64_t>{5, 5})).ok());
}

// Runs Pow(x, e) with the exponent an initializer (run_op feeds every input, so it cannot make one) on
// the CPU's best variants or on the reference kernels alone.
Result<Tensor> pow_with_constant(const Tensor& x, const Tensor& e, bool reference) {
  auto g = std::make_shared<graph::Graph>();
  ValueInfo in;
  in.name = "x";
  in.kind = Value::Kind::tensor;
  in.dtype = x.dtype();
  g->inputs.push_back(in);
  g->initializers["e"] = e;
  graph::Node node;
  node.name = "pow";
  node.op_type = "Pow";
  node.opset = 15;
  node.inputs = {"x", "e"};
  node.outputs = {"y"};
  g->nodes.push_back(node);
  ValueInfo out;
  out.name = "y";
  g->outputs.push_back(out);
  std::shared_ptr<runtime::Backend> cpu;
  if (reference)
    cpu = cpu::CpuBackend::reference_only(SessionOptions{});
  else
    cpu = std::make_shared<cpu::CpuBackend>(SessionOptions{});
  ORCHARD_ASSIGN_OR_RETURN(auto compiled, runtime::CompiledGraph::compile(g, {cpu}, nullptr));
  ThreadPool pool(0);  // default_threads(): all cores natively, 1 under qemu (a second thread slows it ~100x)
  runtime::RunEnv env;
  env.pool = &pool;
  env.allocator = &default_allocator();
  const std::vector<Value> feeds{Value(x)};
  ORCHARD_ASSIGN_OR_RETURN(std::vector<Value> y, compiled->run(feeds, env, nullptr));
  return y[0].tensor();
}

TEST(VecKernels, PowByConstantTwoHalfThree) {
  Tensor x = unary_input(1037, -4, 4, 900);
  x.data<float>()[7] = -4;  // negative base: NaN for 0.5
  for (const Tensor& e : {Tensor::from_vector<float>({}, {2}), Tensor::from_vector<float>({1}, {0.5f}),
                          Tensor::from_vector<int64_t>({}, {3}), Tensor::from_vector<float>({}, {1.5f}),
                          Tensor::from_vector<float>({2}, {2, 2})}) {
    auto got = pow_with_constant(x, e, false);
    auto want = pow_with_constant(x, e, true);
    ASSERT_EQ(got.ok(), want.ok()) << e.description();
    if (!want.ok()) continue;
    ASSERT_EQ(got->shape(), want->shape()) << e.description();
    for (int64_t i = 0; i < want->numel(); ++i) {
      const float g = got->data<float>()[i], w = want->data<float>()[i];
      if (std::isnan(w)) {
        EXPECT_TRUE(std::isnan(g)) << e.description() << " at " << x.data<float>()[i];
      } else if (std::isinf(w)) {
        EXPECT_EQ(g, w) << e.description() << " at " << x.data<float>()[i];
      } else {
        EXPECT_NEAR(g, w, 1e-6f * std::max(1.0f, std::fabs(w))) << e.description() << " at " << x.data<float>()[i];
        EXPECT_EQ(std::signbit(g), std::signbit(w)) << e.description() << " at " << x.data<float>()[i];
      }
    }
  }
  // A [1] exponent on a scalar base makes a [1] output: the variant hands that to the reference.
  auto s = pow_with_constant(Tensor::from_vector<float>({}, {3}), Tensor::from_vector<float>({1}, {2}), false);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->shape(), Shape({1}));
  EXPECT_EQ(s->data<float>()[0], 9.0f);
}

// Transpose keeps its reference kernel (copy_util.hpp strided_copy already coalesces dims and tiles 2-D
// transposes; a separate blocked float32 variant measured no faster): these are the transformers' shapes.
TEST(VecKernels, TransposeShapesFromTransformers) {
  struct T {
    Shape x;
    std::vector<int64_t> perm;
  };
  const T cases[] = {
      {Shape{1, 12, 128, 64}, {0, 2, 1, 3}},  // attention heads: rows of 64 copied
      {Shape{1, 12, 128, 64}, {0, 2, 3, 1}},
      {Shape{1, 12, 128, 64}, {0, 1, 3, 2}},  // K transposed: 2-D tiles
      {Shape{2, 3, 17, 19}, {0, 2, 3, 1}},    // odd sizes, partial tiles
      {Shape{2, 3, 17, 19}, {3, 1, 0, 2}},
      {Shape{33, 7}, {1, 0}},
      {Shape{5, 1, 9}, {2, 1, 0}},  // unit dims
      {Shape{1, 5, 1, 9}, {0, 3, 2, 1}},
      {Shape{4, 6, 8}, {1, 0, 2}},
      {Shape{2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}},
      {Shape{3, 4}, {0, 1}},                  // in order: the reference aliases it
      {Shape{2, 0, 3}, {2, 1, 0}},            // empty
      {Shape{1, 256, 14, 14}, {0, 2, 3, 1}},  // NCHW to NHWC, large enough to split over threads
      {Shape{1, 14, 13, 70}, {0, 3, 1, 2}},   // NHWC back to NCHW (convnext), partial 32x32 tiles and 4x4 blocks
      {Shape{2, 70, 3, 45}, {0, 3, 2, 1}},    // an outer dim between the two transposed ones
  };
  uint32_t seed = 700;
  for (const T& c : cases) {
    const Tensor x = random_tensor(c.x, -1, 1, seed++);
    const Tensor y = run1(OpCase("Transpose", 13).input("x", x).attr("perm", c.perm));
    ASSERT_EQ(y.rank(), c.x.rank());
    // The element at the last input index lands at the permuted last index: check it and the first.
    if (x.numel() == 0) continue;
    EXPECT_EQ(y.data<float>()[0], x.data<float>()[0]);
    EXPECT_EQ(y.data<float>()[y.numel() - 1], x.data<float>()[x.numel() - 1]);
  }
  // The default perm reverses the dims; a bad perm is the reference's error.
  const Tensor m = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_tensor_near(run1(OpCase("Transpose", 13).input("x", m)),
                     Tensor::from_vector<float>({3, 2}, {1, 4, 2, 5, 3, 6}));
  EXPECT_FALSE(run_op(OpCase("Transpose", 13).input("x", m).attr("perm", std::vector<int64_t>{0, 0})).ok());
  expect_tensor_near(run1(OpCase("Transpose", 13)
                              .input("x", Tensor::from_vector<int32_t>({2, 1}, {1, 2}))
                              .attr("perm", std::vector<int64_t>{1, 0})),
                     Tensor::from_vector<int32_t>({1, 2}, {1, 2}));
}

}  // namespace
}  // namespace orchard::testing
