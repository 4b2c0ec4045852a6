// bfloat16 on the CUDA backend. Op cases in bfloat16 held to the CPU's reference kernels through the harness
// (within 2e-2 of the output's scale), each required to run on the GPU rather than be left to the CPU; the fused
// ops, which the CPU takes in float32 only, held to the CPU in float32 on the same bfloat16-rounded values; a
// bfloat16 model placed wholly on the GPU. The GPU tests skip, with the reason, where no GPU is present; the
// placement test runs the CUDA kernel table through the partitioner without one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backends/cuda/cuda_backend.hpp"
#include "backends/cuda/cuda_test_util.hpp"
#include "backends/op_harness.hpp"
#include "onnx/importer.hpp"
#include "orchard/session.hpp"
#include "runtime/kernel_backend.hpp"
#include "runtime/partitioner.hpp"
#include "testing/model_builder.hpp"
#include "testing/test_backends.hpp"

namespace orchard::testing {
namespace {

constexpr int kBf16 = onnx::TensorProto::BFLOAT16;

Tensor to_bf16(const Tensor& f) {
  Tensor h = Tensor::empty(DType::bfloat16, f.shape());
  for (int64_t i = 0; i < f.numel(); ++i) h.data<bfloat16>()[i] = bfloat16(f.data<float>()[i]);
  return h;
}


// bfloat16 values uniform in [-scale, scale).
Tensor random_bf16(const Shape& s, uint32_t seed, float scale = 1.f) { return to_bf16(random_floats(s, seed, scale)); }

// Returns a float32, float16 or bfloat16 tensor as float32 (exact).
Tensor to_float(const Tensor& t) {
  if (t.dtype() == DType::float32) return t.clone();
  Tensor f = Tensor::empty(DType::float32, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    f.data<float>()[i] = t.dtype() == DType::bfloat16 ? static_cast<float>(t.data<bfloat16>()[i])
                                                      : static_cast<float>(t.data<float16>()[i]);
  }
  return f;
}

// Expects `got` (bfloat16 or float32) within 2e-2 of `want` (any float type) relative to want's scale (largest
// finite |value|, at least 1), NaN where want is NaN and equal infinities.
void expect_bf16_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const Tensor g = to_float(got), w = to_float(want);
  double scale = 1;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double v = std::fabs(w.data<float>()[i]);
    if (std::isfinite(v)) scale = std::max(scale, v);
  }
  const double tol = 2e-2 * scale;
  int64_t bad = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float x = g.data<float>()[i], y = w.data<float>()[i];
    const bool ok = std::isnan(y) ? std::isnan(x) : (std::isinf(y) ? x == y : std::fabs(x - y) <= tol);
    if (!ok && bad++ < 3)
      ADD_FAILURE() << what << " at " << i << ": " << x << " vs " << y << " (tolerance " << tol << ")";
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << w.numel() << " elements beyond " << tol;
}

// Runs `c` through the harness, required to run on the GPU, and expects it to succeed with a first output of
// dtype `out` (the CPU's result, which the harness held the GPU's to).
void expect_op(const OpCase& c, DType out = DType::bfloat16) {
  OpCase on_gpu = c;
  auto y = run_op(on_gpu.on_accelerator());
  ASSERT_TRUE(y.ok()) << c.op << ": " << y.status().to_string();
  ASSERT_FALSE(y->empty()) << c.op;
  EXPECT_EQ((*y)[0].tensor().dtype(), out) << c.op;
}

OpCase op(const char* type, int opset, const char* domain = "") { return OpCase(type, opset, domain); }

TEST(CudaBf16, ElementwiseWithBroadcastingAndOddSizes) {
  ORCHARD_REQUIRE_GPU(b);
  const Tensor a = random_bf16(Shape{2, 3, 17, 40}, 1, 4.f);
  expect_op(op("Add", 14).input("a", Value(a)).input("b", Value(random_bf16(Shape{40}, 2))));
  expect_op(op("Add", 14)
                .input("a", Value(random_bf16(Shape{3, 1, 5}, 3)))
                .input("b", Value(random_bf16(Shape{1, 4, 1}, 4))));
  // 1001 elements: no 16-byte packs; a scalar operand; an operand offset by a broadcast that is not innermost.
  expect_op(
      op("Mul", 14).input("a", Value(random_bf16(Shape{1001}, 5))).input("b", Value(random_bf16(Shape{1001}, 6))));
  expect_op(op("Sub", 14).input("a", Value(random_bf16(Shape{7, 13}, 7))).input("b", Value(random_bf16(Shape{}, 8))));
  expect_op(op("Div", 14).input("a", Value(a)).input("b", Value(to_bf16(random_floats(Shape{17, 1}, 9, 1.f)))));
  expect_op(
      op("Max", 13).input("a", Value(random_bf16(Shape{9, 7}, 10))).input("b", Value(random_bf16(Shape{9, 7}, 11))));
  expect_op(op("Min", 13).input("a", Value(random_bf16(Shape{9, 7}, 12))).input("b", Value(random_bf16(Shape{7}, 13))));
}

TEST(CudaBf16, Activations) {
  ORCHARD_REQUIRE_GPU(b);
  const Tensor x = random_bf16(Shape{3, 5, 37}, 20, 4.f);
  for (const char* type : {"Tanh", "Sigmoid", "Relu", "Erf", "Exp", "Neg", "Abs", "Softplus", "HardSwish"}) {
    SCOPED_TRACE(type);
    expect_op(op(type, 14).input("x", Value(x)));
  }
  expect_op(op("LeakyRelu", 16).input("x", Value(x)).attr("alpha", 0.2f));
  for (const char* approx : {"none", "tanh"}) {
    SCOPED_TRACE(approx);
    expect_op(op("Gelu", 1, "com.orchard").input("x", Value(x)).attr("approximate", std::string(approx)));
  }
  // Clip's bounds are bfloat16 scalars read on the host.
  expect_op(op("Clip", 13)
                .input("x", Value(x))
                .input("lo", Value(Tensor::scalar(bfloat16(-1.5f))))
                .input("hi", Value(Tensor::scalar(bfloat16(0.75f)))));
}

TEST(CudaBf16, MatMulBatchedAndGemmWithBias) {
  ORCHARD_REQUIRE_GPU(b);
  const Tensor a = random_bf16(Shape{2, 3, 17, 40}, 30);
  // Strided batches, one B for every batch (folded into M), and batch dims broadcast between the operands.
  expect_op(op("MatMul", 13).input("a", Value(a)).input("b", Value(random_bf16(Shape{2, 3, 40, 9}, 31))));
  expect_op(op("MatMul", 13).input("a", Value(a)).input("b", Value(random_bf16(Shape{40, 33}, 32))));
  expect_op(op("MatMul", 13)
                .input("a", Value(random_bf16(Shape{2, 1, 5, 8}, 33)))
                .input("b", Value(random_bf16(Shape{1, 3, 8, 6}, 34))));
  expect_op(
      op("MatMul", 13).input("a", Value(random_bf16(Shape{8}, 35))).input("b", Value(random_bf16(Shape{3, 8, 6}, 36))));
  expect_op(op("Gemm", 13)
                .input("a", Value(random_bf16(Shape{8, 5}, 37)))
                .input("b", Value(random_bf16(Shape{7, 8}, 38)))
                .input("c", Value(random_bf16(Shape{7}, 39)))
                .attr("transA", int64_t{1})
                .attr("transB", int64_t{1})
                .attr("alpha", 0.5f)
                .attr("beta", 2.f));
  expect_op(op("Gemm", 13)
                .input("a", Value(random_bf16(Shape{33, 65}, 40)))
                .input("b", Value(random_bf16(Shape{65, 17}, 41)))
                .input("c", Value(random_bf16(Shape{33, 1}, 42))));
}

TEST(CudaBf16, SoftmaxNormalizationReductionsAndPooling) {
  ORCHARD_REQUIRE_GPU(b);
  const Tensor x = random_bf16(Shape{2, 3, 17, 40}, 50, 3.f);
  expect_op(op("Softmax", 13).input("x", Value(x)).attr("axis", int64_t{2}));
  expect_op(op("LogSoftmax", 13).input("x", Value(x)));
  expect_op(op("Softmax", 11).input("x", Value(x)).attr("axis", int64_t{1}));  // coerced to 2-D
  expect_op(op("LayerNormalization", 17)
                .input("x", Value(x))
                .input("g", Value(random_bf16(Shape{40}, 51, 2.f)))
                .input("b", Value(random_bf16(Shape{40}, 52))));
  expect_op(
      op("ReduceMean", 17).input("x", Value(x)).attr("axes", std::vector<int64_t>{1, 3}).attr("keepdims", int64_t{0}));
  expect_op(op("ReduceMax", 17).input("x", Value(x)).attr("axes", std::vector<int64_t>{2}));
  expect_op(op("ReduceSumSquare", 17).input("x", Value(x)).attr("axes", std::vector<int64_t>{3}));
  expect_op(op("ReduceSum", 13).input("x", Value(x)).constant("axes", Tensor::from_vector<int64_t>(Shape{1}, {-1})));
  const Tensor img = random_bf16(Shape{2, 6, 13, 11}, 53, 2.f);
  expect_op(op("GlobalAveragePool", 1).input("x", Value(img)));
  expect_op(op("MaxPool", 12)
                .input("x", Value(img))
                .attr("kernel_shape", std::vector<int64_t>{3, 3})
                .attr("strides", std::vector<int64_t>{2, 2})
                .attr("pads", std::vector<int64_t>{1, 1, 1, 1}));
  expect_op(op("AveragePool", 11)
                .input("x", Value(img))
                .attr("kernel_shape", std::vector<int64_t>{2, 3})
                .attr("count_include_pad", int64_t{1})
                .attr("pads", std::vector<int64_t>{0, 1, 0, 1}));
  Tensor var = random_floats(Shape{6}, 54);
  for (int64_t i = 0; i < 6; ++i) var.data<float>()[i] = std::fabs(var.data<float>()[i]) + 0.5f;
  expect_op(op("BatchNormalization", 15)
                .input("x", Value(img))
                .input("scale", Value(random_bf16(Shape{6}, 55)))
                .input("bias", Value(random_bf16(Shape{6}, 56)))
                .input("mean", Value(random_bf16(Shape{6}, 57)))
                .input("var", Value(to_bf16(var))));
}

// Casts between the float types and to and from integers. Float32 to bfloat16 rounds to nearest even on both
// devices, so its result must be the CPU's bit for bit (FLT_MAX rounds to infinity; a half-way value rounds to
// even), which the harness's tolerance alone would not show.
TEST(CudaBf16, CastsBetweenFloatTypesAndIntegers) {
  ORCHARD_REQUIRE_GPU(b);
  Tensor f = random_floats(Shape{5, 201}, 60, 300.f);
  f.data<float>()[0] = FLT_MAX;
  f.data<float>()[1] = -INFINITY;
  f.data<float>()[2] = 1.f + 1.f / 256.f;  // half-way between two bfloat16 values: rounds to 1
  f.data<float>()[3] = 1e-40f;             // subnormal
  f.data<float>()[4] = 0.f;
  const OpCase narrow = op("Cast", 13).input("x", Value(f)).attr("to", int64_t{16});
  expect_op(narrow);
  auto chain = runtime::available_backends(SessionOptions{});
  int ran_on = -1;
  auto gpu = run_op_on(narrow, {chain.front(), chain.back()}, &ran_on);
  auto cpu = run_op_on(narrow, {chain.back()});
  ASSERT_TRUE(gpu.ok() && cpu.ok()) << (gpu.ok() ? cpu.status() : gpu.status()).to_string();
  EXPECT_EQ(ran_on, 0);
  const Tensor& g = (*gpu)[0].tensor();
  const Tensor& c = (*cpu)[0].tensor();
  ASSERT_EQ(g.description(), c.description());
  for (int64_t i = 0; i < c.numel(); ++i) {
    EXPECT_EQ(g.data<bfloat16>()[i].bits, c.data<bfloat16>()[i].bits) << "at " << i << ": " << f.data<float>()[i];
  }
  const Tensor x = random_bf16(Shape{3, 77}, 61, 50.f);
  expect_op(op("Cast", 13).input("x", Value(x)).attr("to", int64_t{1}), DType::float32);
  expect_op(op("Cast", 13).input("x", Value(x)).attr("to", int64_t{10}), DType::float16);
  expect_op(op("Cast", 13).input("x", Value(to_half(random_floats(Shape{3, 77}, 62, 50.f)))).attr("to", int64_t{16}));
  expect_op(op("Cast", 13).input("x", Value(x)).attr("to", int64_t{7}), DType::int64);
  expect_op(op("Cast", 13).input("x", Value(x)).attr("to", int64_t{6}), DType::int32);
  Tensor some_zero = x.clone();
  for (int64_t i = 0; i < some_zero.numel(); i += 3) some_zero.data<bfloat16>()[i] = bfloat16(0.f);
  expect_op(op("Cast", 13).input("x", Value(some_zero)).attr("to", int64_t{9}), DType::boolean);
  std::vector<int32_t> ints(231);
  for (size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<int32_t>(i * 37) - 4000;  // some round in bfloat16
  expect_op(op("Cast", 13).input("x", Value(Tensor::from_vector<int32_t>(Shape{231}, ints))).attr("to", int64_t{16}));
}

TEST(CudaBf16, ConvThroughCudnn) {
  ORCHARD_REQUIRE_GPU(b);
  if (!b->has_op("", "Conv", 11)) GTEST_SKIP() << "the CUDA backend was built without cuDNN: no Conv kernel";
  const Tensor x = random_bf16(Shape{2, 6, 13, 11}, 70);
  expect_op(op("Conv", 11)
                .input("x", Value(x))
                .input("w", Value(random_bf16(Shape{8, 3, 3, 3}, 71)))  // 2 groups
                .input("b", Value(random_bf16(Shape{8}, 72)))
                .attr("group", int64_t{2})
                .attr("pads", std::vector<int64_t>{1, 2, 1, 2})
                .attr("strides", std::vector<int64_t>{2, 1})
                .attr("dilations", std::vector<int64_t>{1, 2}));
  expect_op(op("Conv", 11)  // depthwise, SAME_UPPER, no bias
                .input("x", Value(x))
                .input("w", Value(random_bf16(Shape{6, 1, 3, 3}, 73)))
                .attr("group", int64_t{6})
                .attr("auto_pad", std::string("SAME_UPPER")));
  expect_op(op("Conv", 11).input("x", Value(x)).input("w", Value(random_bf16(Shape{4, 6, 1, 1}, 74))));
  expect_op(op("Conv", 11)  // 1-D, with bias
                .input("x", Value(random_bf16(Shape{2, 5, 31}, 75)))
                .input("w", Value(random_bf16(Shape{7, 5, 3}, 76)))
                .input("b", Value(random_bf16(Shape{7}, 77)))
                .attr("pads", std::vector<int64_t>{1, 1}));
}

TEST(CudaBf16, SelectionAndDataMovement) {
  ORCHARD_REQUIRE_GPU(b);
  const Tensor x = random_bf16(Shape{17, 40}, 80);
  Tensor cond = Tensor::empty(DType::boolean, Shape{17, 1});
  for (int64_t i = 0; i < 17; ++i) cond.data<bool>()[i] = i % 3 == 0;
  expect_op(op("Where", 16).input("c", Value(cond)).input("x", Value(x)).input("y", Value(random_bf16(Shape{40}, 81))));
  expect_op(op("Greater", 13).input("a", Value(x)).input("b", Value(random_bf16(Shape{40}, 82))), DType::boolean);
  expect_op(op("Equal", 13).input("a", Value(x)).input("b", Value(x)), DType::boolean);
  Tensor with_nan = x.clone();
  with_nan.data<bfloat16>()[5] = bfloat16(NAN);
  expect_op(op("IsNaN", 13).input("x", Value(with_nan)), DType::boolean);
  const Tensor t4 = random_bf16(Shape{2, 3, 17, 40}, 83);
  expect_op(op("Transpose", 13).input("x", Value(t4)).attr("perm", std::vector<int64_t>{0, 2, 1, 3}));
  expect_op(op("Transpose", 13)
                .input("x", Value(random_bf16(Shape{5, 7, 3}, 84)))
                .attr("perm", std::vector<int64_t>{2, 0, 1}));
  expect_op(op("Concat", 13)
                .input("a", Value(random_bf16(Shape{2, 3, 5}, 85)))
                .input("b", Value(random_bf16(Shape{2, 4, 5}, 86)))
                .input("c", Value(random_bf16(Shape{2, 1, 5}, 87)))
                .attr("axis", int64_t{1}));
  expect_op(op("Slice", 13)
                .input("x", Value(t4))
                .constant("starts", Tensor::from_vector<int64_t>(Shape{2}, {1, 3}))
                .constant("ends", Tensor::from_vector<int64_t>(Shape{2}, {17, 39}))
                .constant("axes", Tensor::from_vector<int64_t>(Shape{2}, {2, 3}))
                .constant("steps", Tensor::from_vector<int64_t>(Shape{2}, {2, 3})));
  expect_op(op("Gather", 13)
                .input("table", Value(x))
                .input("ids", Value(Tensor::from_vector<int64_t>(Shape{2, 3}, {0, 16, -1, 4, 4, 9})))
                .attr("axis", int64_t{0}));
  expect_op(op("Expand", 13)
                .input("x", Value(random_bf16(Shape{3, 1}, 88)))
                .constant("shape", Tensor::from_vector<int64_t>(Shape{3}, {2, 3, 5})));
}

TEST(CudaBf16, EmptyTensorsAndFills) {
  ORCHARD_REQUIRE_GPU(b);
  expect_op(op("Add", 14).input("a", Value(random_bf16(Shape{0, 5}, 90))).input("b", Value(random_bf16(Shape{5}, 91))));
  expect_op(op("Relu", 14).input("x", Value(random_bf16(Shape{3, 0}, 92))));
  expect_op(op("Softmax", 13).input("x", Value(random_bf16(Shape{0, 7}, 93))));
  expect_op(
      op("MatMul", 13).input("a", Value(random_bf16(Shape{0, 4}, 94))).input("b", Value(random_bf16(Shape{4, 3}, 95))));
  expect_op(
      op("MatMul", 13).input("a", Value(random_bf16(Shape{2, 0}, 96))).input("b", Value(random_bf16(Shape{0, 3}, 97))));
  expect_op(op("Cast", 13).input("x", Value(random_floats(Shape{0, 3}, 98))).attr("to", int64_t{16}));
  expect_op(op("ConstantOfShape", 9)
                .input("shape", Value(Tensor::from_vector<int64_t>(Shape{3}, {2, 5, 3})))
                .attr("value", Tensor::from_vector<bfloat16>(Shape{1}, {bfloat16(-2.75f)})));
  expect_op(op("Range", 11)
                .input("start", Value(Tensor::scalar(bfloat16(-3.f))))
                .input("limit", Value(Tensor::scalar(bfloat16(20.f))))
                .input("delta", Value(Tensor::scalar(bfloat16(0.5f)))));
}

// The fused ops: the CPU's kernels take float32 only, so each case runs in bfloat16 on the GPU (no fallback) and in
// float32 on the CPU on the same values.
void expect_fused_matches_float32(const OpCase& c) {
  SCOPED_TRACE(c.op);
  auto chain = runtime::available_backends(SessionOptions{});
  ASSERT_EQ(chain.front()->device().name, "cuda");
  int ran_on = -1;
  auto gpu = run_op_on(c, {chain.front(), chain.back()}, &ran_on);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  EXPECT_EQ(ran_on, 0) << c.op << " was left to the CPU";
  OpCase wide = c;
  for (auto& [name, v] : wide.inputs) {
    if (v.is_tensor() && v.tensor().dtype() == DType::bfloat16) v = Value(to_float(v.tensor()));
  }
  auto cpu = run_op_on(wide, {chain.back()});
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  ASSERT_EQ(gpu->size(), cpu->size());
  EXPECT_EQ((*gpu)[0].tensor().dtype(), DType::bfloat16);
  expect_bf16_close((*gpu)[0].tensor(), (*cpu)[0].tensor(), c.op);
}

TEST(CudaBf16, FusedMatMulMatchesFloat32) {
  ORCHARD_REQUIRE_GPU(b);
  const Tensor a = random_bf16(Shape{3, 37, 64}, 100), w = random_bf16(Shape{64, 48}, 101);
  const Tensor bias = random_bf16(Shape{48}, 102), z = random_bf16(Shape{3, 37, 48}, 103);
  // cuBLASLt with its bias epilogues (Relu, the tanh GELU) and with the residual as C; then activations that only
  // the epilogue kernel applies.
  for (const char* act : {"", "Relu", "GeluTanh", "Sigmoid", "Gelu"}) {
    SCOPED_TRACE(act);
    expect_fused_matches_float32(op("FusedMatMul", 1, "com.orchard")
                                     .input("a", Value(a))
                                     .input("w", Value(w))
                                     .input("bias", Value(bias))
                                     .attr("activation", std::string(act)));
  }
  expect_fused_matches_float32(op("FusedMatMul", 1, "com.orchard")
                                   .input("a", Value(a))
                                   .input("w", Value(w))
                                   .input("bias", Value(bias))
                                   .input("z", Value(z)));
  expect_fused_matches_float32(op("FusedMatMul", 1, "com.orchard")
                                   .input("a", Value(random_bf16(Shape{2, 5, 9}, 104)))
                                   .input("w", Value(random_bf16(Shape{2, 9, 7}, 105)))
                                   .input("bias", Value(random_bf16(Shape{7}, 106)))
                                   .attr("activation", std::string("Relu")));
}

// FusedAttention in bfloat16: two cuBLAS products around the masked-softmax kernel by default, the one-warp-per-row
// kernel when asked for, and, asked for the float16 flash kernel, never that (bfloat16 falls back to the per-row
// kernel).
TEST(CudaBf16, FusedAttentionMatchesFloat32) {
  ORCHARD_REQUIRE_GPU(b);
  Tensor mask = random_floats(Shape{2, 1, 9, 70}, 110);
  for (int64_t j = 0; j < 70; ++j) mask.data<float>()[9 * 70 + 70 + j] = -INFINITY;  // batch 1, row 1
  auto attention = [&](const Shape& q, const Shape& kt, const Shape& v, uint32_t seed) {
    return op("FusedAttention", 1, "com.orchard")
        .input("q", Value(random_bf16(q, seed)))
        .input("kt", Value(random_bf16(kt, seed + 1)))
        .input("v", Value(random_bf16(v, seed + 2)))
        .input("mask", Value(to_bf16(mask)))
        .attr("scale", 0.125f)
        .attr("nan_to_zero", int64_t{1});
  };
  for (const char* path : {"", "kernel", "flash"}) {
    SCOPED_TRACE(std::string("ORCHARD_CUDA_ATTENTION=") + path);
    if (*path) setenv("ORCHARD_CUDA_ATTENTION", path, 1);  // read when the kernel is made
    expect_fused_matches_float32(attention(Shape{2, 4, 9, 64}, Shape{2, 4, 64, 70}, Shape{2, 4, 70, 64}, 111));
    expect_fused_matches_float32(attention(Shape{2, 4, 9, 40}, Shape{1, 4, 40, 70}, Shape{2, 4, 70, 24}, 114));
    unsetenv("ORCHARD_CUDA_ATTENTION");
  }
}

// Adds a bfloat16 initializer holding `t` (bfloat16) to the model.
void add_bf16_initializer(ModelBuilder& m, const std::string& name, const Tensor& t) {
  auto* init = m.proto().mutable_graph()->add_initializer();
  init->set_name(name);
  init->set_data_type(kBf16);
  for (size_t d = 0; d < t.rank(); ++d) init->add_dims(t.dim(d));
  init->set_raw_data(t.raw_data(), t.nbytes());
}

void set_int(onnx::NodeProto& n, const char* name, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

// A small bfloat16 network: y = Softmax(Relu(LayerNorm(Tanh(x W + bias)))) transposed, and its float32 copy yf.
std::string bf16_model() {
  ModelBuilder m(17);
  m.input("x", kBf16, {"batch", 64})
      .output("y", kBf16, {32, "batch"})
      .output("yf", onnx::TensorProto::FLOAT, {32, "batch"});
  add_bf16_initializer(m, "w", random_bf16(Shape{64, 32}, 120, 0.2f));
  add_bf16_initializer(m, "bias", random_bf16(Shape{32}, 121));
  add_bf16_initializer(m, "g", random_bf16(Shape{32}, 122, 2.f));
  add_bf16_initializer(m, "beta", random_bf16(Shape{32}, 123));
  m.node("MatMul", {"x", "w"}, {"xw"});
  m.node("Add", {"xw", "bias"}, {"h"});
  m.node("Tanh", {"h"}, {"t"});
  m.node("LayerNormalization", {"t", "g", "beta"}, {"n"});
  m.node("Relu", {"n"}, {"r"});
  m.node("Softmax", {"r"}, {"s"});
  auto& tr = m.node("Transpose", {"s"}, {"y"});
  auto* perm = tr.add_attribute();
  perm->set_name("perm");
  perm->set_type(onnx::AttributeProto::INTS);
  perm->add_ints(1);
  perm->add_ints(0);
  set_int(m.node("Cast", {"y"}, {"yf"}), "to", onnx::TensorProto::FLOAT);
  return m.bytes();
}

// The session places the whole bfloat16 model on the GPU (fallback disabled: a node the GPU declined would fail the
// load), runs it there without failing over, and matches the CPU's bfloat16 run.
TEST(CudaBf16, Bfloat16ModelRunsWhollyOnTheGpu) {
  ORCHARD_REQUIRE_GPU(b);
  const std::string model = bf16_model();
  SessionOptions on_gpu;
  on_gpu.backend_preference = {"cuda", "cpu"};
  on_gpu.disable_fallback = true;
  SessionOptions on_cpu;
  on_cpu.backend_preference = {"cpu"};
  auto gs = Session::load_from_bytes(as_bytes(model), on_gpu);
  ASSERT_TRUE(gs.ok()) << gs.status().to_string();
  auto cs = Session::load_from_bytes(as_bytes(model), on_cpu);
  ASSERT_TRUE(cs.ok()) << cs.status().to_string();
  const PlacementInfo placement = (*gs)->placement();
  ASSERT_EQ(placement.partitions.size(), 1u);
  EXPECT_EQ(placement.partitions[0].backend, "cuda");
  EXPECT_TRUE(placement.fallbacks.empty());
  for (int64_t batch : {1, 5, 33}) {
    SCOPED_TRACE(batch);
    const Tensor x = random_bf16(Shape{batch, 64}, 130 + static_cast<uint32_t>(batch), 3.f);
    auto gy = (*gs)->run({{"x", Value(x)}});
    ASSERT_TRUE(gy.ok()) << gy.status().to_string();
    auto cy = (*cs)->run({{"x", Value(x)}});
    ASSERT_TRUE(cy.ok()) << cy.status().to_string();
    ASSERT_EQ(gy->size(), 2u);
    EXPECT_EQ((*gy)[0].second.tensor().dtype(), DType::bfloat16);
    EXPECT_EQ((*gy)[1].second.tensor().dtype(), DType::float32);
    expect_bf16_close((*gy)[0].second.tensor(), (*cy)[0].second.tensor(), "y");
    expect_bf16_close((*gy)[1].second.tensor(), (*cy)[1].second.tensor(), "yf");
  }
  EXPECT_EQ((*gs)->failover_count(), 0);
}

// A bfloat16 graph of the ops above, casts to and from it and bfloat16 fills: the CUDA table claims every node
// (none is left to the CPU, and no decline names bfloat16).
TEST(CudaBf16Placement, EveryNodeOfABfloat16GraphGoesToCuda) {
  ModelBuilder m(17);
  m.input("x", onnx::TensorProto::FLOAT, {"N", 8, 16}).input("shape", onnx::TensorProto::INT64, {2});
  m.output("y", onnx::TensorProto::FLOAT, {"N", 8, 1}).output("fill", kBf16, {"a", "b"});
  add_bf16_initializer(m, "w", random_bf16(Shape{16, 16}, 140));
  add_bf16_initializer(m, "g", random_bf16(Shape{16}, 141));
  add_bf16_initializer(m, "zero", Tensor::zeros(DType::bfloat16, Shape{1}));
  set_int(m.node("Cast", {"x"}, {"xb"}), "to", kBf16);
  m.node("MatMul", {"xb", "w"}, {"q"});
  m.node("Add", {"q", "g"}, {"h"});
  m.node("Tanh", {"h"}, {"t"});
  m.node("LayerNormalization", {"t", "g", "g"}, {"n"});
  m.node("Greater", {"n", "zero"}, {"pos"});
  m.node("Where", {"pos", "n", "zero"}, {"r"});
  m.node("Softmax", {"r"}, {"s"});
  auto& tr = m.node("Transpose", {"s"}, {"st"});
  auto* perm = tr.add_attribute();
  perm->set_name("perm");
  perm->set_type(onnx::AttributeProto::INTS);
  for (int64_t p : {0, 2, 1}) perm->add_ints(p);
  set_int(m.node("Concat", {"st", "st"}, {"c"}), "axis", 1);
  auto& mean = m.node("ReduceMean", {"c"}, {"y16"});
  auto* axes = mean.add_attribute();
  axes->set_name("axes");
  axes->set_type(onnx::AttributeProto::INTS);
  axes->add_ints(1);
  set_int(mean, "keepdims", 1);
  set_int(m.node("Cast", {"y16"}, {"yc"}), "to", onnx::TensorProto::FLOAT);
  m.node("Mul", {"yc", "yc"}, {"y0"});
  auto& tr2 = m.node("Transpose", {"y0"}, {"y"});
  auto* perm2 = tr2.add_attribute();
  perm2->set_name("perm");
  perm2->set_type(onnx::AttributeProto::INTS);
  for (int64_t p : {0, 2, 1}) perm2->add_ints(p);
  auto& fill = m.node("ConstantOfShape", {"shape"}, {"fill"});
  auto* value = fill.add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  value->mutable_t()->set_data_type(kBf16);
  value->mutable_t()->add_dims(1);
  const uint16_t bits = bfloat16(1.5f).bits;
  value->mutable_t()->set_raw_data(&bits, sizeof bits);
  const std::string bytes = m.bytes();
  auto model = onnx_import::import_model_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), {}, {});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const graph::Graph& g = *model->graph;
  auto cuda = std::make_shared<CudaTableBackend>();
  auto cpu = runtime::available_backends(SessionOptions{}).back();
  auto placement = runtime::place_graph(g, {cuda, cpu}, {});
  ASSERT_TRUE(placement.ok()) << placement.status().to_string();
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    std::string why;
    for (const auto& d : placement->declined[n]) why += d.reason + "; ";
    EXPECT_EQ(placement->node_backend[n], 0) << g.nodes[n].label() << " left to the CPU: " << why;
  }
  // A float64 Tanh still goes to the CPU: the table adds bfloat16, not every float type.
  ModelBuilder d(17);
  d.input("x", onnx::TensorProto::DOUBLE, {4}).output("y", onnx::TensorProto::DOUBLE, {4});
  d.node("Tanh", {"x"}, {"y"});
  const std::string dbytes = d.bytes();
  auto dmodel = onnx_import::import_model_bytes(std::as_bytes(std::span(dbytes.data(), dbytes.size())), {}, {});
  ASSERT_TRUE(dmodel.ok()) << dmodel.status().to_string();
  auto dplacement = runtime::place_graph(*dmodel->graph, {cuda, cpu}, {});
  ASSERT_TRUE(dplacement.ok()) << dplacement.status().to_string();
  EXPECT_EQ(dplacement->node_backend[0], 1);
}

}  // namespace
}  // namespace orchard::testing
